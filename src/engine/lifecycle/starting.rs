//! Starting a rollout: resetting the analysis, the confirm-rollout gate, scaling the canary up.

use crate::api::canary::{HookKind, Severity};
use crate::api::status::Phase;
use crate::engine::action::{Action, Traffic};
use crate::engine::input::Target;
use crate::engine::reasons::Reason;

use super::{Tick, short};

impl Tick<'_> {
    pub(super) fn start_rollout(&mut self, target: &Target, reason: Reason) {
        let restart = matches!(
            self.next.phase,
            Some(Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion)
        );
        if restart {
            // The analysis starts over from no traffic, whatever the old one had reached.
            self.route(Traffic::PRIMARY);
        }
        // Before the reset: a rollout superseded here is recorded with what it reached.
        self.open_record(&target.revision);
        self.reset_analysis();
        self.adopt(target);
        let message = if self.plan.skip_analysis {
            format!(
                "new revision {}: promoting without analysis (skipAnalysis)",
                short(&target.revision)
            )
        } else {
            format!(
                "new revision {}: starting the {} rollout",
                short(&target.revision),
                self.plan.strategy.name()
            )
        };
        let reason = if restart && reason == Reason::NewRevision {
            Reason::RolloutRestarted
        } else {
            reason
        };
        self.alert(Severity::Info, Reason::NewRevision, &message);
        if self.plan.skip_analysis {
            self.decide(reason, message);
            return self.promote();
        }
        if self.plan.has_hooks(HookKind::ConfirmRollout) {
            self.set_phase(Phase::Waiting);
            let message = format!("{message}; waiting for confirm-rollout");
            self.alert(Severity::Info, Reason::WaitingForConfirmation, &message);
            return self.decide(reason, message);
        }
        let replicas = self.start_canary();
        self.decide(
            reason,
            format!("{message}; scaling the canary up to {replicas} replicas"),
        );
    }

    pub(super) fn reset_analysis(&mut self) {
        let next = &mut self.next;
        next.failed_checks = 0;
        next.iterations = 0;
        next.canary_weight = 0;
        next.current_step = None;
        next.step_started_at = None;
        next.last_analysis_time = None;
        next.waiting_since = None;
        next.no_data_since = None;
        next.checks.clear();
    }

    pub(super) fn waiting(&mut self, target: &Target) {
        if self.superseded(target) {
            return;
        }
        if !self.tick_due() {
            return self.note(
                Reason::WaitingForConfirmation,
                "waiting for confirm-rollout",
            );
        }
        self.next.last_analysis_time = Some(self.now);
        if self.gate(HookKind::ConfirmRollout) {
            self.scale_up();
        } else {
            self.note(
                Reason::WaitingForConfirmation,
                "confirm-rollout gate is closed",
            );
        }
    }

    pub(super) fn scale_up(&mut self) {
        let replicas = self.start_canary();
        self.decide(
            Reason::CanaryScaledUp,
            format!("scaling the canary up to {replicas} replicas"),
        );
    }

    /// Scales the canary to the primary's size and starts waiting for its pods.
    pub(super) fn start_canary(&mut self) -> i32 {
        let replicas = self.obs.primary.as_ref().map_or(1, |p| p.replicas.max(1));
        self.actions.push(Action::ScaleCanary { replicas });
        self.next.waiting_since = Some(self.now);
        self.set_phase(Phase::Progressing);
        replicas
    }
}
