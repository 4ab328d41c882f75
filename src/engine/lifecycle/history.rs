//! The rollout history: a record opens when a rollout starts, follows how far it gets, and
//! moves into `status.history` (bounded) when the rollout is promoted, rolled back or
//! superseded. Written here, in the pure engine, so `serin simulate` records it as the
//! controller does.

use crate::api::history::{self, Ending, Outcome, RolloutRecord};
use crate::engine::action::Traffic;
use crate::engine::plan::Strategy;
use crate::engine::reasons::Reason;

use super::{Tick, short};

impl Tick<'_> {
    /// A rollout of `revision` starts; one still under way ends, superseded by it.
    pub(super) fn open_record(&mut self, revision: &str) {
        if self.next.current_rollout.is_some() {
            let message = format!("superseded by revision {}", short(revision));
            self.close_record(Outcome::Superseded, Reason::NewRevision, &message);
        }
        self.next.current_rollout = Some(RolloutRecord::start(revision, self.now));
    }

    /// The rollout under way ended. Promotions and rollbacks are recorded even when their
    /// start was not (a status taken over from Flagger); a supersession only ends a rollout
    /// that was recorded, as there is nothing else to supersede.
    pub(super) fn close_record(&mut self, outcome: Outcome, reason: Reason, message: &str) {
        let open = self.next.current_rollout.take();
        if open.is_none() && outcome == Outcome::Superseded {
            return;
        }
        let record = open.unwrap_or_else(|| RolloutRecord {
            started_at: None,
            ..RolloutRecord::start(
                self.next.last_applied_spec.as_deref().unwrap_or_default(),
                self.now,
            )
        });
        let ended = record.end(Ending {
            at: self.now,
            outcome,
            reason: reason.as_str(),
            message,
            iterations: self.next.iterations,
            failed_checks: self.next.failed_checks,
            checks: &self.next.checks,
        });
        history::push(&mut self.next.history, ended);
    }

    /// Notes the canary's weight as reached. Only the canary strategy's weights are steps:
    /// A/B and blue/green send all traffic to the canary for the promotion switch, which is
    /// not analysis reached.
    pub(super) fn note_weight(&mut self, traffic: Traffic) {
        if !matches!(self.plan.strategy, Strategy::Canary { .. }) {
            return;
        }
        if let Some(record) = self.next.current_rollout.as_mut() {
            record.max_weight = record.max_weight.max(traffic.canary);
        }
    }
}
