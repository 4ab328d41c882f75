//! Before any rollout: creating the primary from the target and waiting until it serves.

use crate::api::canary::Severity;
use crate::api::status::Phase;
use crate::engine::action::{Action, Traffic};
use crate::engine::conditions;
use crate::engine::input::Target;
use crate::engine::reasons::Reason;

use super::Tick;

impl Tick<'_> {
    pub(super) fn initialize(&mut self, target: &Target) {
        self.actions.push(Action::EnsurePrimary);
        self.route(Traffic::PRIMARY);
        self.adopt(target);
        self.next.last_promoted_spec = Some(target.revision.clone());
        self.next.waiting_since = Some(self.now);
        self.set_phase(Phase::Initializing);
        self.decide(
            Reason::Initializing,
            "creating the primary from the target".into(),
        );
    }

    pub(super) fn initializing(&mut self, target: &Target) {
        if self.next.last_promoted_spec.as_deref() != Some(target.revision.as_str()) {
            // Nothing is analysed before initialization ends: the primary simply follows.
            self.actions.push(Action::PromoteTemplate);
            self.adopt(target);
            self.next.last_promoted_spec = Some(target.revision.clone());
        }
        if self.obs.primary.is_none() {
            self.actions.push(Action::EnsurePrimary);
        }
        if self.primary_ready_with(&target.revision) {
            self.scale_canary(0);
            self.next.waiting_since = None;
            self.set_phase(Phase::Initialized);
            let message =
                "primary ready: it serves all traffic and the target is scaled to zero".to_string();
            self.alert(Severity::Info, Reason::Initialized, &message);
            return self.decide(Reason::Initialized, message);
        }
        let progress = self.primary_progress();
        if self.deadline_passed(self.next.waiting_since) {
            // Nothing to roll back to yet: report and keep waiting for the primary.
            self.stalled = true;
            let message = format!(
                "primary not ready within the progress deadline ({}): {progress}",
                self.plan.progress_deadline
            );
            if conditions::status_of(&self.next, conditions::STALLED) != Some("True") {
                self.alert(Severity::Error, Reason::ProgressDeadlineExceeded, &message);
                return self.warn(Reason::ProgressDeadlineExceeded, message);
            }
            return self.note(Reason::ProgressDeadlineExceeded, &message);
        }
        self.note(
            Reason::WaitingForPods,
            &format!("waiting for the primary: {progress}"),
        );
    }
}
