//! Time: when the next analysis tick is due, deadlines, and when to reconcile again.

use chrono::{DateTime, Utc};

use crate::api::Duration;
use crate::api::status::Phase;

use super::Tick;

impl Tick<'_> {
    pub(super) fn tick_due(&self) -> bool {
        crate::engine::analysis_due(self.plan, self.next.last_analysis_time, self.now)
    }

    /// Time since `since`; unbounded when it never happened.
    pub(super) fn elapsed_since(&self, since: Option<DateTime<Utc>>) -> chrono::Duration {
        since.map_or(chrono::Duration::MAX, |t| self.now - t)
    }

    pub(super) fn deadline_passed(&self, since: Option<DateTime<Utc>>) -> bool {
        since.is_some_and(|t| self.now - t >= self.plan.progress_deadline.as_chrono())
    }

    /// When to look again: the next analysis tick, pause end, deadline or timeout, whichever
    /// comes first; watch events bring anything sooner.
    pub(super) fn requeue_after(&self) -> Duration {
        let next = &self.next;
        let interval = self.plan.interval.as_chrono();
        let deadline = self.plan.progress_deadline.as_chrono();
        let mut at = vec![self.now + interval];
        if !next.phase.is_some_and(Phase::is_settled) && next.frozen_since.is_none() {
            at.extend(next.last_analysis_time.map(|t| t + interval));
            at.extend(next.waiting_since.map(|t| t + deadline));
            at.extend(next.no_data_since.map(|t| t + deadline));
            if next.phase == Some(Phase::WaitingPromotion)
                && let (Some(t), Some(timeout)) =
                    (next.last_transition_time, self.plan.promotion_timeout)
            {
                at.push(t + timeout.as_chrono());
            }
        }
        let soonest = at.into_iter().min().unwrap_or(self.now + interval);
        let wait = (soonest - self.now).to_std().unwrap_or_default();
        Duration::from(wait.max(std::time::Duration::from_secs(1)))
    }
}
