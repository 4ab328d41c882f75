//! Manual requests (promote, step, abort, retry, pause, resume) and freezing by suspend or pause.

use crate::api::status::Phase;
use crate::engine::action::Traffic;
use crate::engine::input::{RequestAction, Target};
use crate::engine::plan::Strategy;
use crate::engine::reasons::Reason;

use super::Tick;

impl Tick<'_> {
    /// Acts on a new manual request. True when it decided this tick.
    pub(super) fn handle_request(&mut self, target: &Target) -> bool {
        let Some(request) = &self.obs.request else {
            return false;
        };
        if self.next.last_handled_request.as_deref() == Some(request.id.as_str()) {
            return false;
        }
        self.next.last_handled_request = Some(request.id.clone());
        let action = match &request.action {
            Ok(action) => *action,
            Err(unknown) => {
                self.warn(
                    Reason::RequestIgnored,
                    format!("unknown request {unknown:?}: expected promote, step, abort, retry, pause or resume"),
                );
                return false;
            }
        };
        // Dropped with the reason, by the rule `serin` checks before sending a request.
        if let Err(why) = action.applies_to(&self.next) {
            self.warn(Reason::RequestIgnored, format!("request ignored: {why}"));
            return false;
        }
        match action {
            RequestAction::Pause => {
                self.next.paused = true;
                self.decide(Reason::Paused, "paused by request".into());
                false
            }
            RequestAction::Resume => {
                self.next.paused = false;
                self.decide(Reason::Resumed, "resumed by request".into());
                false
            }
            RequestAction::Promote => {
                self.promote_by_request("promotion requested: skipping the rest of the analysis")
            }
            RequestAction::Step => self.step_by_request(),
            RequestAction::Abort => {
                self.unfreeze_for_request();
                self.rollback(Reason::AbortedByRequest, "aborted by request".into());
                true
            }
            RequestAction::Retry if !self.is_revert_target(target) => {
                self.unfreeze_for_request();
                self.start_rollout(target, Reason::Retried);
                true
            }
            RequestAction::Retry => {
                self.warn(
                    Reason::RequestIgnored,
                    "request ignored: retry does not apply: the target runs the revision it was reverted to".into(),
                );
                false
            }
        }
    }

    /// One step forward now, as a person asking for it decides: the step's pause, the rest of
    /// its analysis and the confirm-traffic-increase gate are skipped (the request is the
    /// confirmation); from the last step the canary is promoted. True when it acted.
    fn step_by_request(&mut self) -> bool {
        if self.next.phase == Some(Phase::WaitingPromotion) {
            return self.promote_by_request("one step requested at the last step: promoting");
        }
        let Some(index) = self.next.current_step else {
            self.warn(
                Reason::RequestIgnored,
                "request ignored: step does not apply before the first analysis has moved traffic"
                    .into(),
            );
            return false;
        };
        self.unfreeze_for_request();
        let upcoming = index.saturating_add(1);
        match &self.plan.strategy {
            Strategy::Canary { steps, .. } => {
                let Some(step) = usize::try_from(upcoming).ok().and_then(|i| steps.get(i)) else {
                    return self
                        .promote_by_request("one step requested at the last step: promoting");
                };
                self.next.current_step = Some(upcoming);
                self.next.step_started_at = Some(self.now);
                // The new weight is analysed a whole interval before the rollout moves on.
                self.next.last_analysis_time = Some(self.now);
                self.route(Traffic::weights(100 - step.weight, step.weight));
                self.decide(
                    Reason::SteppedByRequest,
                    format!(
                        "canary weight {}% (step {} of {}) by request",
                        step.weight,
                        upcoming + 1,
                        steps.len()
                    ),
                );
            }
            Strategy::AbTesting { iterations } | Strategy::BlueGreen { iterations, .. } => {
                let iterations = *iterations;
                self.next.iterations += 1;
                if self.next.iterations >= iterations {
                    return self
                        .promote_by_request("one step requested at the last iteration: promoting");
                }
                self.decide(
                    Reason::SteppedByRequest,
                    format!(
                        "iteration {} of {iterations} counted as passed by request",
                        self.next.iterations
                    ),
                );
            }
        }
        true
    }

    fn promote_by_request(&mut self, message: &str) -> bool {
        self.unfreeze_for_request();
        self.decide(Reason::PromotedByRequest, message.into());
        self.promote();
        true
    }

    pub(super) fn unfreeze_for_request(&mut self) {
        self.next.paused = false;
        self.next.frozen_since = None;
    }

    /// Suspend (spec) and pause (request) freeze the rollout; when it thaws, every timer is
    /// shifted by the frozen time so no deadline or pause expires while frozen.
    pub(super) fn frozen(&mut self) -> bool {
        let frozen = self.plan.suspend || self.next.paused;
        match (frozen, self.next.frozen_since) {
            (true, None) => {
                self.next.frozen_since = Some(self.now);
                if self.plan.suspend {
                    self.decide(
                        Reason::Suspended,
                        "spec.suspend is set: the rollout is frozen".into(),
                    );
                }
                true
            }
            (true, Some(_)) => {
                if self.reason == Reason::UpToDate {
                    let why = if self.plan.suspend {
                        Reason::Suspended
                    } else {
                        Reason::Paused
                    };
                    self.note(why, "the rollout is frozen");
                }
                true
            }
            (false, Some(since)) => {
                let shift = self.now - since;
                let next = &mut self.next;
                for timer in [
                    &mut next.step_started_at,
                    &mut next.last_analysis_time,
                    &mut next.waiting_since,
                    &mut next.no_data_since,
                    &mut next.last_transition_time,
                ] {
                    if let Some(t) = timer.as_mut() {
                        *t += shift;
                    }
                }
                next.frozen_since = None;
                false
            }
            (false, None) => false,
        }
    }
}
