//! The rollout lifecycle: one reconcile's decision from (plan, status, observations, check
//! results, now). Each phase has one method; shared moves (start, promote, roll back, succeed)
//! are methods too, so every path through a phase sets the same fields.

use chrono::{DateTime, Utc};

use crate::api::Duration;
use crate::api::canary::{HookKind, Severity};
use crate::api::status::{CanaryStatus, CheckResult, CheckStatus, Phase};

use super::Decision;
use super::action::{Action, Alert, Event, Traffic};
use super::analysis::{self, Verdict};
use super::conditions;
use super::input::{CheckResults, Observations, RequestAction, Target};
use super::plan::{Plan, Strategy};
use super::reasons::Reason;

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
            return self.note(
                Reason::TargetNotFound,
                "the target Deployment does not exist",
            );
        };
        if self.handle_request(target) || self.frozen() {
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
        let requeue_after = self.requeue_after();
        Decision {
            status: self.next,
            actions: self.actions,
            reason: self.reason,
            message: self.message,
            requeue_after,
        }
    }

    // ----- phases -----

    fn initialize(&mut self, target: &Target) {
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

    fn initializing(&mut self, target: &Target) {
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

    fn settled(&mut self, target: &Target) {
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

    fn waiting(&mut self, target: &Target) {
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

    fn progressing(&mut self, target: &Target) {
        if self.superseded(target)
            || self.rollback_requested_by_hook()
            || !self.canary_ready(target)
        {
            return;
        }
        if !self.tick_due() {
            return self.hold_message();
        }
        self.next.last_analysis_time = Some(self.now);
        if self.next.current_step.is_none() {
            return self.first_tick();
        }
        if self.judge_tick() {
            self.advance();
        }
    }

    fn waiting_promotion(&mut self, target: &Target) {
        if self.superseded(target) || self.rollback_requested_by_hook() {
            return;
        }
        if let Some(timeout) = self.plan.promotion_timeout {
            if self.elapsed_since(self.next.last_transition_time) >= timeout.as_chrono() {
                return self.rollback(
                    Reason::PromotionTimedOut,
                    format!("promotion not confirmed within analysis.promotionTimeout ({timeout})"),
                );
            }
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

    fn promoting(&mut self) {
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

    fn finalising(&mut self) {
        if self.primary_promoted_or_wait() {
            self.scale_canary(0);
            self.succeed();
        }
    }

    // ----- shared moves -----

    /// Records the target's revision as the one under analysis.
    fn adopt(&mut self, target: &Target) {
        self.next.last_applied_spec = Some(target.revision.clone());
        self.next.tracked_configs = target.configs.clone();
    }

    fn start_rollout(&mut self, target: &Target, reason: Reason) {
        let restart = matches!(
            self.next.phase,
            Some(Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion)
        );
        if restart {
            // The analysis starts over from no traffic, whatever the old one had reached.
            self.route(Traffic::PRIMARY);
        }
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

    fn reset_analysis(&mut self) {
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

    fn scale_up(&mut self) {
        let replicas = self.start_canary();
        self.decide(
            Reason::CanaryScaledUp,
            format!("scaling the canary up to {replicas} replicas"),
        );
    }

    /// Scales the canary to the primary's size and starts waiting for its pods.
    fn start_canary(&mut self) -> i32 {
        let replicas = self.obs.primary.as_ref().map_or(1, |p| p.replicas.max(1));
        self.actions.push(Action::ScaleCanary { replicas });
        self.next.waiting_since = Some(self.now);
        self.set_phase(Phase::Progressing);
        replicas
    }

    /// First analysis tick at a ready canary: pre-rollout hooks, then the first traffic step.
    fn first_tick(&mut self) {
        let results = analysis::hook_results(self.plan, HookKind::PreRollout, self.found, self.now);
        let failures: Vec<String> = results
            .iter()
            .filter(|r| r.result != CheckResult::Pass)
            .map(|r| format!("pre-rollout webhook {}: {}", r.name, r.message))
            .collect();
        self.record(results);
        if !failures.is_empty() {
            if !self.hooks_muted(HookKind::PreRollout) {
                self.alert(
                    Severity::Error,
                    Reason::PreRolloutFailed,
                    &failures.join("; "),
                );
            }
            return self.failed_check(Reason::PreRolloutFailed, failures);
        }
        self.next.current_step = Some(0);
        self.next.step_started_at = Some(self.now);
        match &self.plan.strategy {
            Strategy::Canary { steps, .. } => {
                // A plan always has a step; without one, the whole weight goes at once.
                let weight = steps.first().map_or(100, |s| s.weight);
                self.route(Traffic::weights(100 - weight, weight));
                self.decide(
                    Reason::WeightAdvanced,
                    format!("canary weight {weight}% (step 1 of {})", steps.len()),
                );
            }
            Strategy::AbTesting { .. } => {
                self.route(Traffic {
                    matched_to_canary: true,
                    ..Traffic::PRIMARY
                });
                self.decide(
                    Reason::WeightAdvanced,
                    "requests matching analysis.match go to the canary".into(),
                );
            }
            Strategy::BlueGreen { mirror, .. } => {
                let mirror = *mirror;
                self.route(Traffic {
                    mirror,
                    ..Traffic::PRIMARY
                });
                let message = match mirror {
                    Some(percent) => format!("mirroring {percent}% of traffic to the canary"),
                    None => "analysing the canary before switching traffic".into(),
                };
                self.decide(Reason::WeightAdvanced, message);
            }
        }
    }

    /// Judges this tick's checks. True when they passed and the rollout may move on.
    fn judge_tick(&mut self) -> bool {
        let (verdict, results) = analysis::evaluate(self.plan, self.found, self.now);
        self.record(results);
        match verdict {
            Verdict::Pass => {
                self.next.no_data_since = None;
                true
            }
            Verdict::Fail {
                failures,
                critical: true,
            } => {
                self.rollback(
                    Reason::CriticalMetricFailed,
                    format!("a critical metric regressed: {}", failures.join("; ")),
                );
                false
            }
            Verdict::Fail {
                failures,
                critical: false,
            } => {
                self.failed_check(Reason::CheckFailed, failures);
                false
            }
            Verdict::Marginal(summary) => {
                // Neither good enough to go on nor bad enough to roll back: a human decides
                // (promote, abort, or resume to analyse again).
                self.next.paused = true;
                let message = format!("{summary}: paused for a human (promote, abort or resume)");
                self.alert(Severity::Warn, Reason::JudgeMarginal, &message);
                self.warn(Reason::JudgeMarginal, message);
                false
            }
            Verdict::WaitForData(lines) => {
                let since = *self.next.no_data_since.get_or_insert(self.now);
                if self.deadline_passed(Some(since)) {
                    self.rollback(
                        Reason::ProgressDeadlineExceeded,
                        format!(
                            "no metric data within the progress deadline ({}): {}",
                            self.plan.progress_deadline,
                            lines.join("; ")
                        ),
                    );
                } else {
                    self.note(
                        Reason::WaitingForData,
                        &format!("waiting for data: {}", lines.join("; ")),
                    );
                }
                false
            }
        }
    }

    fn failed_check(&mut self, reason: Reason, failures: Vec<String>) {
        self.next.failed_checks += 1;
        let (failed, threshold) = (self.next.failed_checks, self.plan.threshold);
        let detail = failures.join("; ");
        if failed >= threshold {
            return self.rollback(
                Reason::ThresholdReached,
                format!("failed checks reached the threshold ({failed}/{threshold}): {detail}"),
            );
        }
        self.warn(
            reason,
            format!("halting advancement ({failed}/{threshold} failed checks): {detail}"),
        );
    }

    /// Moves one step forward after a passing tick.
    fn advance(&mut self) {
        let iterations = match &self.plan.strategy {
            Strategy::Canary { steps, .. } => return self.advance_weight(steps),
            Strategy::AbTesting { iterations } | Strategy::BlueGreen { iterations, .. } => {
                *iterations
            }
        };
        self.next.iterations += 1;
        if self.next.iterations >= iterations {
            return self.promotion_gate();
        }
        self.decide(
            Reason::IterationPassed,
            format!("iteration {} of {iterations} passed", self.next.iterations),
        );
    }

    fn advance_weight(&mut self, steps: &[super::plan::Step]) {
        let index = usize::try_from(self.next.current_step.unwrap_or(0)).unwrap_or(0);
        let Some(step) = steps.get(index).or(steps.last()).copied() else {
            return self.promotion_gate();
        };
        let index = index.min(steps.len() - 1);
        if self.elapsed_since(self.next.step_started_at) < step.pause.as_chrono() {
            return self.note(
                Reason::StepHeld,
                &format!("holding {}% for its pause of {}", step.weight, step.pause),
            );
        }
        let Some(upcoming) = steps.get(index + 1) else {
            return self.promotion_gate();
        };
        if !self.gate(HookKind::ConfirmTrafficIncrease) {
            return self.note(Reason::StepHeld, "confirm-traffic-increase gate is closed");
        }
        self.next.current_step = Some(index as i32 + 1);
        self.next.step_started_at = Some(self.now);
        self.route(Traffic::weights(100 - upcoming.weight, upcoming.weight));
        self.decide(
            Reason::WeightAdvanced,
            format!(
                "canary weight {}% (step {} of {})",
                upcoming.weight,
                index + 2,
                steps.len()
            ),
        );
    }

    fn promotion_gate(&mut self) {
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

    fn promote(&mut self) {
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

    fn succeed(&mut self) {
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
        self.decide(Reason::Succeeded, message);
    }

    fn rollback(&mut self, reason: Reason, message: String) {
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
        self.warn(reason, message);
    }

    fn reverted(&mut self, target: &Target) {
        self.adopt(target);
        self.set_phase(Phase::Succeeded);
        self.decide(
            Reason::RevertedToPromoted,
            format!(
                "the target is back at the promoted revision {}: nothing to roll out",
                short(&target.revision)
            ),
        );
    }

    /// A revision change during a rollout: a new revision restarts the analysis, a return to
    /// the promoted revision cancels it. True when it took over this tick.
    fn superseded(&mut self, target: &Target) -> bool {
        if self.is_new_revision(target) {
            self.start_rollout(target, Reason::NewRevision);
            return true;
        }
        if self.is_revert(target) {
            self.route(Traffic::PRIMARY);
            if self.primary_ready() {
                self.scale_canary(0);
            }
            self.reset_analysis();
            self.reverted(target);
            return true;
        }
        false
    }

    fn rollback_requested_by_hook(&mut self) -> bool {
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

    fn post_rollout_hooks(&mut self) {
        if self.plan.has_hooks(HookKind::PostRollout) {
            self.actions.push(Action::RunHooks(HookKind::PostRollout));
        }
    }

    // ----- manual requests and freezing -----

    /// Acts on a new manual request. True when it decided this tick.
    fn handle_request(&mut self, target: &Target) -> bool {
        let Some(request) = &self.obs.request else {
            return false;
        };
        if self.next.last_handled_request.as_deref() == Some(request.id.as_str()) {
            return false;
        }
        self.next.last_handled_request = Some(request.id.clone());
        let phase = self.next.phase;
        let in_analysis = matches!(
            phase,
            Some(Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion)
        );
        let action = match &request.action {
            Ok(action) => *action,
            Err(unknown) => {
                self.warn(
                    Reason::RequestIgnored,
                    format!("unknown request {unknown:?}: expected promote, abort, retry, pause or resume"),
                );
                return false;
            }
        };
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
            RequestAction::Promote if in_analysis => {
                self.unfreeze_for_request();
                self.decide(
                    Reason::PromotedByRequest,
                    "promotion requested: skipping the rest of the analysis".into(),
                );
                self.promote();
                true
            }
            RequestAction::Abort
                if in_analysis || matches!(phase, Some(Phase::Promoting | Phase::Finalising)) =>
            {
                self.unfreeze_for_request();
                self.rollback(Reason::AbortedByRequest, "aborted by request".into());
                true
            }
            RequestAction::Retry
                if phase == Some(Phase::Failed) && !self.is_revert_target(target) =>
            {
                self.unfreeze_for_request();
                self.start_rollout(target, Reason::Retried);
                true
            }
            other => {
                let phase = phase.map_or("(new)", Phase::as_str);
                self.warn(
                    Reason::RequestIgnored,
                    format!(
                        "{} request ignored: it does not apply in phase {phase}",
                        other.as_str()
                    ),
                );
                false
            }
        }
    }

    fn unfreeze_for_request(&mut self) {
        self.next.paused = false;
        self.next.frozen_since = None;
    }

    /// Suspend (spec) and pause (request) freeze the rollout; when it thaws, every timer is
    /// shifted by the frozen time so no deadline or pause expires while frozen.
    fn frozen(&mut self) -> bool {
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

    // ----- observations -----

    fn is_new_revision(&self, target: &Target) -> bool {
        let revision = Some(target.revision.as_str());
        revision != self.next.last_applied_spec.as_deref()
            && revision != self.next.last_promoted_spec.as_deref()
    }

    /// The target went back to what the primary runs while something else was applied.
    fn is_revert(&self, target: &Target) -> bool {
        self.is_revert_target(target)
            && self.next.last_applied_spec.as_deref() != Some(target.revision.as_str())
    }

    fn is_revert_target(&self, target: &Target) -> bool {
        self.next.last_promoted_spec.as_deref() == Some(target.revision.as_str())
    }

    /// True when the canary's pods are ready; otherwise waits, rolling back at the deadline.
    fn canary_ready(&mut self, target: &Target) -> bool {
        if target.state.is_ready(self.plan.canary_ready_threshold) {
            self.next.waiting_since = None;
            return true;
        }
        let since = *self.next.waiting_since.get_or_insert(self.now);
        if self.deadline_passed(Some(since)) {
            self.rollback(
                Reason::ProgressDeadlineExceeded,
                format!(
                    "canary pods not ready within the progress deadline ({}): {}",
                    self.plan.progress_deadline,
                    target.state.progress()
                ),
            );
        } else {
            self.note(
                Reason::WaitingForPods,
                &format!("waiting for canary pods: {}", target.state.progress()),
            );
        }
        false
    }

    /// True when the primary runs the promoted revision and is ready; otherwise waits, rolling
    /// back (and restoring the primary) at the deadline.
    fn primary_promoted_or_wait(&mut self) -> bool {
        let revision = self.next.last_applied_spec.clone().unwrap_or_default();
        if self.primary_ready_with(&revision) {
            self.next.waiting_since = None;
            return true;
        }
        let since = *self.next.waiting_since.get_or_insert(self.now);
        let progress = self.primary_progress();
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

    fn primary_ready(&self) -> bool {
        self.obs
            .primary
            .as_ref()
            .is_some_and(|p| p.is_ready(self.plan.primary_ready_threshold))
    }

    fn primary_ready_with(&self, revision: &str) -> bool {
        self.primary_ready()
            && self
                .obs
                .primary
                .as_ref()
                .and_then(|p| p.revision.as_deref())
                == Some(revision)
    }

    fn primary_progress(&self) -> String {
        self.obs
            .primary
            .as_ref()
            .map_or("not created yet".into(), |p| p.progress())
    }

    /// Every hook of the gate's kind said yes; records their answers either way.
    fn gate(&mut self, kind: HookKind) -> bool {
        let results = analysis::hook_results(self.plan, kind, self.found, self.now);
        let open = results.iter().all(|r| r.result == CheckResult::Pass);
        self.record(results);
        open
    }

    fn hooks_muted(&self, kind: HookKind) -> bool {
        self.plan
            .hooks_of(kind)
            .iter()
            .all(|h| self.plan.muted_hooks.contains(h))
    }

    // ----- time -----

    fn tick_due(&self) -> bool {
        super::analysis_due(self.plan, self.next.last_analysis_time, self.now)
    }

    /// Time since `since`; unbounded when it never happened.
    fn elapsed_since(&self, since: Option<DateTime<Utc>>) -> chrono::Duration {
        since.map_or(chrono::Duration::MAX, |t| self.now - t)
    }

    fn deadline_passed(&self, since: Option<DateTime<Utc>>) -> bool {
        since.is_some_and(|t| self.now - t >= self.plan.progress_deadline.as_chrono())
    }

    /// When to look again: the next analysis tick, pause end, deadline or timeout, whichever
    /// comes first; watch events bring anything sooner.
    fn requeue_after(&self) -> Duration {
        let next = &self.next;
        let interval = self.plan.interval.as_chrono();
        let deadline = self.plan.progress_deadline.as_chrono();
        let mut at = vec![self.now + interval];
        if !next.phase.is_some_and(Phase::is_settled) && next.frozen_since.is_none() {
            at.extend(next.last_analysis_time.map(|t| t + interval));
            at.extend(next.waiting_since.map(|t| t + deadline));
            at.extend(next.no_data_since.map(|t| t + deadline));
            if next.phase == Some(Phase::WaitingPromotion) {
                if let (Some(t), Some(timeout)) =
                    (next.last_transition_time, self.plan.promotion_timeout)
                {
                    at.push(t + timeout.as_chrono());
                }
            }
        }
        let soonest = at.into_iter().min().unwrap_or(self.now + interval);
        let wait = (soonest - self.now).to_std().unwrap_or_default();
        Duration::from(wait.max(std::time::Duration::from_secs(1)))
    }

    // ----- recording -----

    fn set_phase(&mut self, phase: Phase) {
        if self.next.phase != Some(phase) {
            self.next.phase = Some(phase);
            self.next.last_transition_time = Some(self.now);
        }
    }

    fn route(&mut self, traffic: Traffic) {
        if self.next.canary_weight != traffic.canary {
            self.next.last_transition_time = Some(self.now);
        }
        self.next.canary_weight = traffic.canary;
        self.actions.push(Action::SetTraffic(traffic));
    }

    fn scale_canary(&mut self, replicas: i32) {
        self.actions.push(Action::ScaleCanary { replicas });
    }

    fn record(&mut self, results: Vec<CheckStatus>) {
        for result in results {
            let slot = self
                .next
                .checks
                .iter_mut()
                .find(|c| c.name == result.name && c.kind == result.kind);
            match slot {
                Some(existing) => *existing = result,
                None => self.next.checks.push(result),
            }
        }
    }

    fn hold_message(&mut self) {
        let message = match (&self.plan.strategy, self.next.current_step) {
            (_, None) => "waiting for the first analysis".to_string(),
            (Strategy::Canary { .. }, Some(_)) => {
                format!("analysing at canary weight {}%", self.next.canary_weight)
            }
            (_, Some(_)) => format!("analysing, {} iterations passed", self.next.iterations),
        };
        self.note(Reason::UpToDate, &message);
    }

    /// A decision worth an event.
    fn decide(&mut self, reason: Reason, message: String) {
        self.actions.push(Action::Event(Event {
            warning: false,
            reason,
            message: message.clone(),
        }));
        self.reason = reason;
        self.message = message;
    }

    fn warn(&mut self, reason: Reason, message: String) {
        self.actions.push(Action::Event(Event {
            warning: true,
            reason,
            message: message.clone(),
        }));
        self.reason = reason;
        self.message = message;
    }

    /// A holding pattern: reported in the decision, not as an event (it repeats every tick).
    fn note(&mut self, reason: Reason, message: &str) {
        self.reason = reason;
        self.message = message.to_string();
    }

    fn alert(&mut self, severity: Severity, reason: Reason, message: &str) {
        self.actions.push(Action::Alert(Alert {
            severity,
            reason,
            message: message.to_string(),
        }));
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
