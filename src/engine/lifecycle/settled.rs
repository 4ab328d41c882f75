//! Between rollouts and across revision changes: whether the target's revision starts a rollout,
//! restarts one, or is a return to what the primary already runs.

use crate::api::history::Outcome;
use crate::api::status::Phase;
use crate::engine::action::Traffic;
use crate::engine::input::Target;
use crate::engine::reasons::Reason;

use super::{Tick, short};

impl Tick<'_> {
    pub(super) fn settled(&mut self, target: &Target) {
        if self.obs.primary.is_none() {
            return self.initialize(target);
        }
        if self.is_new_revision(target) {
            return self.start_rollout(target, Reason::NewRevision);
        }
        if self.is_revert(target) {
            return self.reverted(target);
        }
        if target.state.replicas > 0 && self.primary_ready() {
            // Left over from a rollback that waited for the primary, or replicas re-applied
            // from git: the primary serves everything, so the canary goes back to zero.
            self.scale_canary(0);
            return self.decide(
                Reason::UpToDate,
                "scaling the target back to zero: the primary serves all traffic".into(),
            );
        }
        let message = match self.next.phase {
            Some(Phase::Failed) => "rollout failed; waiting for a new revision or a retry request",
            _ => "the primary runs the target's revision",
        };
        self.note(Reason::UpToDate, message);
    }

    /// Records the target's revision as the one under analysis.
    pub(super) fn adopt(&mut self, target: &Target) {
        self.next.last_applied_spec = Some(target.revision.clone());
        self.next.tracked_configs = target.configs.clone();
    }

    pub(super) fn reverted(&mut self, target: &Target) {
        self.adopt(target);
        self.set_phase(Phase::Succeeded);
        let message = format!(
            "the target is back at the promoted revision {}: nothing to roll out",
            short(&target.revision)
        );
        // A rollout under way is cancelled by the return: recorded as superseded.
        self.close_record(Outcome::Superseded, Reason::RevertedToPromoted, &message);
        self.decide(Reason::RevertedToPromoted, message);
    }

    /// A revision change during a rollout: a new revision restarts the analysis, a return to
    /// the promoted revision cancels it. True when it took over this tick.
    pub(super) fn superseded(&mut self, target: &Target) -> bool {
        if self.is_new_revision(target) {
            self.start_rollout(target, Reason::NewRevision);
            return true;
        }
        if self.is_revert(target) {
            self.route(Traffic::PRIMARY);
            if self.primary_ready() {
                self.scale_canary(0);
            }
            self.reverted(target);
            self.reset_analysis();
            return true;
        }
        false
    }

    pub(super) fn is_new_revision(&self, target: &Target) -> bool {
        let revision = Some(target.revision.as_str());
        revision != self.next.last_applied_spec.as_deref()
            && revision != self.next.last_promoted_spec.as_deref()
    }

    /// The target went back to what the primary runs while something else was applied.
    pub(super) fn is_revert(&self, target: &Target) -> bool {
        self.is_revert_target(target)
            && self.next.last_applied_spec.as_deref() != Some(target.revision.as_str())
    }

    pub(super) fn is_revert_target(&self, target: &Target) -> bool {
        self.next.last_promoted_spec.as_deref() == Some(target.revision.as_str())
    }
}
