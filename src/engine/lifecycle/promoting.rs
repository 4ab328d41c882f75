//! Promotion: the confirm-promotion gate, copying the template to the primary, shifting traffic
//! back to it and finishing once it runs the new revision.

use crate::api::canary::{HookKind, Severity};
use crate::api::history::Outcome;
use crate::api::status::Phase;
use crate::engine::action::{Action, Traffic};
use crate::engine::input::Target;
use crate::engine::plan::Strategy;
use crate::engine::reasons::Reason;

use super::{Tick, short};

impl Tick<'_> {
    pub(super) fn waiting_promotion(&mut self, target: &Target) {
        if self.superseded(target) || self.rollback_requested_by_hook() {
            return;
        }
        if let Some(timeout) = self.plan.promotion_timeout
            && self.elapsed_since(self.next.last_transition_time) >= timeout.as_chrono()
        {
            return self.rollback(
                Reason::PromotionTimedOut,
                format!("promotion not confirmed within analysis.promotionTimeout ({timeout})"),
            );
        }
        if !self.canary_ready(target) {
            return;
        }
        if !self.tick_due() {
            return self.note(Reason::WaitingForPromotion, "waiting for confirm-promotion");
        }
        self.next.last_analysis_time = Some(self.now);
        if self.judge_tick() {
            self.promotion_gate();
        }
    }

    pub(super) fn promotion_gate(&mut self) {
        if self.gate(HookKind::ConfirmPromotion) {
            return self.promote();
        }
        if self.next.phase != Some(Phase::WaitingPromotion) {
            self.set_phase(Phase::WaitingPromotion);
            let message = "analysis passed; waiting for confirm-promotion".to_string();
            self.alert(Severity::Info, Reason::WaitingForPromotion, &message);
            return self.decide(Reason::WaitingForPromotion, message);
        }
        self.note(
            Reason::WaitingForPromotion,
            "confirm-promotion gate is closed",
        );
    }

    pub(super) fn promote(&mut self) {
        if !matches!(self.plan.strategy, Strategy::Canary { .. }) && !self.plan.skip_analysis {
            // A/B and blue/green switch all traffic to the analysed canary while the primary
            // is updated, then switch back.
            self.route(Traffic::weights(0, 100));
        }
        self.actions.push(Action::PromoteTemplate);
        self.next.current_step = None;
        self.next.last_analysis_time = None;
        self.next.waiting_since = Some(self.now);
        self.set_phase(Phase::Promoting);
        let revision = self.next.last_applied_spec.clone().unwrap_or_default();
        self.decide(
            Reason::Promoting,
            format!("copying revision {} to the primary", short(&revision)),
        );
    }

    pub(super) fn promoting(&mut self) {
        if !self.primary_promoted_or_wait() {
            return;
        }
        let weight = self.next.canary_weight;
        if weight > 0 {
            let next_weight = match self.plan.step_weight_promotion {
                None => 0,
                Some(_) if !self.tick_due() => {
                    return self.note(
                        Reason::TrafficRestored,
                        "shifting traffic back to the primary",
                    );
                }
                Some(step) => (weight - step).max(0),
            };
            self.next.last_analysis_time = Some(self.now);
            self.route(Traffic::weights(100 - next_weight, next_weight));
            if next_weight > 0 {
                return self.decide(
                    Reason::TrafficRestored,
                    format!("primary ready: canary weight down to {next_weight}%"),
                );
            }
        }
        self.set_phase(Phase::Finalising);
        self.finalising();
    }

    pub(super) fn finalising(&mut self) {
        if self.primary_promoted_or_wait() {
            self.scale_canary(0);
            self.succeed();
        }
    }

    pub(super) fn succeed(&mut self) {
        let next = &mut self.next;
        next.last_promoted_spec = next.last_applied_spec.clone();
        next.canary_weight = 0;
        next.current_step = None;
        next.waiting_since = None;
        next.no_data_since = None;
        self.set_phase(Phase::Succeeded);
        self.post_rollout_hooks();
        let revision = self.next.last_promoted_spec.clone().unwrap_or_default();
        let message = format!(
            "promotion completed: the primary runs revision {}",
            short(&revision)
        );
        self.alert(Severity::Info, Reason::Succeeded, &message);
        self.close_record(Outcome::Promoted, Reason::Succeeded, &message);
        self.decide(Reason::Succeeded, message);
    }

    /// True when the primary runs the promoted revision and is ready; otherwise waits, rolling
    /// back (and restoring the primary) at the deadline.
    pub(super) fn primary_promoted_or_wait(&mut self) -> bool {
        let revision = self.next.last_applied_spec.clone().unwrap_or_default();
        if self.primary_ready_with(&revision) {
            self.next.waiting_since = None;
            return true;
        }
        let since = *self.next.waiting_since.get_or_insert(self.now);
        let progress = self.primary_progress_to(&revision);
        if self.deadline_passed(Some(since)) {
            self.rollback(
                Reason::ProgressDeadlineExceeded,
                format!(
                    "primary not ready with the new revision within the progress deadline ({}): {progress}",
                    self.plan.progress_deadline
                ),
            );
        } else {
            self.note(
                Reason::WaitingForPods,
                &format!("waiting for the primary rollout: {progress}"),
            );
        }
        false
    }
}
