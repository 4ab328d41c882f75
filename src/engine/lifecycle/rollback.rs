//! Failure: rolling back to the primary (reverting it when a promotion failed), and the hooks
//! that run after any rollout ends.

use crate::api::canary::{HookKind, Severity};
use crate::api::history::Outcome;
use crate::api::status::Phase;
use crate::engine::action::{Action, Traffic};
use crate::engine::analysis;
use crate::engine::reasons::Reason;

use super::Tick;

impl Tick<'_> {
    pub(super) fn rollback(&mut self, reason: Reason, message: String) {
        self.route(Traffic::PRIMARY);
        if matches!(self.next.phase, Some(Phase::Promoting | Phase::Finalising)) {
            self.actions.push(Action::RevertPrimary);
        } else if self.primary_ready() {
            self.scale_canary(0);
        }
        // Otherwise the canary keeps its pods until the primary is ready again: `settled`
        // scales it down then, so no moment leaves the service without ready pods.
        let next = &mut self.next;
        next.current_step = None;
        next.waiting_since = None;
        next.no_data_since = None;
        self.set_phase(Phase::Failed);
        self.post_rollout_hooks();
        let message = format!("rolling back: {message}");
        self.alert(Severity::Error, reason, &message);
        self.close_record(Outcome::RolledBack, reason, &message);
        self.warn(reason, message);
    }

    pub(super) fn rollback_requested_by_hook(&mut self) -> bool {
        if !analysis::any_passed(self.plan, HookKind::Rollback, self.found) {
            return false;
        }
        let results = analysis::hook_results(self.plan, HookKind::Rollback, self.found, self.now);
        self.record(results);
        self.rollback(
            Reason::RollbackRequested,
            "a rollback webhook asked for it".into(),
        );
        true
    }

    pub(super) fn post_rollout_hooks(&mut self) {
        if self.plan.has_hooks(HookKind::PostRollout) {
            self.actions.push(Action::RunHooks(HookKind::PostRollout));
        }
    }
}
