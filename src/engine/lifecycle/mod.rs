//! The rollout lifecycle: one reconcile's decision from (plan, status, observations, check
//! results, now). `Tick::run` picks the method of the current phase; the phases and the moves
//! they share (start, promote, roll back, succeed) live in one module per phase group, all
//! methods of the one `Tick`, so every path through a phase sets the same fields.

mod adoption;
mod gates;
mod history;
mod initializing;
mod progressing;
mod promoting;
mod readiness;
mod recording;
mod requests;
mod rollback;
mod settled;
mod starting;
mod timing;

use chrono::{DateTime, Utc};

use crate::api::status::{CanaryStatus, Phase};

use super::Decision;
use super::action::Action;
use super::conditions;
use super::input::{CheckResults, Observations};
use super::plan::Plan;
use super::reasons::Reason;

/// One reconcile being decided: the inputs, and the next status, actions and reason as they
/// are written down.
pub(super) struct Tick<'a> {
    plan: &'a Plan,
    obs: &'a Observations,
    found: &'a CheckResults,
    now: DateTime<Utc>,
    next: CanaryStatus,
    actions: Vec<Action>,
    reason: Reason,
    message: String,
    stalled: bool,
}

impl<'a> Tick<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        status: &CanaryStatus,
        obs: &'a Observations,
        found: &'a CheckResults,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            plan,
            obs,
            found,
            now,
            next: status.clone(),
            actions: Vec::new(),
            reason: Reason::UpToDate,
            message: String::new(),
            stalled: false,
        }
    }

    pub(super) fn run(&mut self) {
        self.next.observed_generation = Some(self.obs.generation);
        let obs = self.obs;
        let Some(target) = obs.target.as_ref() else {
            self.stalled = true;
            let message = format!("the target {} does not exist", self.plan.target_kind);
            return self.note(Reason::TargetNotFound, &message);
        };
        if self.handle_request(target) || self.frozen() || self.taken_over(target) {
            return;
        }
        match self.next.phase {
            None => self.initialize(target),
            Some(Phase::Initializing) => self.initializing(target),
            Some(Phase::Initialized | Phase::Succeeded | Phase::Failed) => self.settled(target),
            Some(Phase::Waiting) => self.waiting(target),
            Some(Phase::Progressing) => self.progressing(target),
            Some(Phase::WaitingPromotion) => self.waiting_promotion(target),
            Some(Phase::Promoting) => self.promoting(),
            Some(Phase::Finalising) => self.finalising(),
            Some(Phase::Terminating | Phase::Terminated) => {
                self.note(Reason::UpToDate, "the Canary is being deleted")
            }
        }
    }

    pub(super) fn finish(mut self) -> Decision {
        // A settled canary re-derives nothing: an idle canary must cost no status write.
        if self.reason != Reason::UpToDate
            || self.next.conditions.is_empty()
            || conditions::carries_failure(&self.next)
        {
            conditions::derive(
                &mut self.next,
                self.reason,
                &self.message,
                self.stalled,
                self.now,
            );
        }
        // Asked to follow at all times, the primary's autoscaler is synced on every reconcile
        // that acts on nothing else; by default it follows at creation and promotion only
        // (`EnsurePrimary`, `PromoteTemplate`), so an autoscaler change rolls out with a release.
        if self.actions.is_empty() && self.plan.autoscaler_always {
            self.actions.push(Action::SyncAutoscaler);
        }
        let requeue_after = self.requeue_after();
        Decision {
            status: self.next,
            actions: self.actions,
            reason: self.reason,
            message: self.message,
            requeue_after,
        }
    }
}

/// Revisions are usually long hex digests; people read the first 10 characters. Other
/// revision names (the simulator's image tags) are shown whole.
pub fn short(revision: &str) -> &str {
    if revision.len() > 10 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        &revision[..10]
    } else {
        revision
    }
}
