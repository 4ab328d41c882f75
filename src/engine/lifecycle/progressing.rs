//! The analysis steps: waiting for canary pods, judging each tick's checks, then moving one
//! step forward, counting a failure, pausing for a human or waiting for data.

use crate::api::canary::{HookKind, Severity};
use crate::api::status::CheckResult;
use crate::engine::action::Traffic;
use crate::engine::analysis::{self, Verdict};
use crate::engine::input::Target;
use crate::engine::plan::{Step, Strategy};
use crate::engine::reasons::Reason;

use super::Tick;

impl Tick<'_> {
    pub(super) fn progressing(&mut self, target: &Target) {
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

    /// First analysis tick at a ready canary: pre-rollout hooks, then the first traffic step.
    pub(super) fn first_tick(&mut self) {
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
    pub(super) fn judge_tick(&mut self) -> bool {
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

    pub(super) fn failed_check(&mut self, reason: Reason, failures: Vec<String>) {
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
    pub(super) fn advance(&mut self) {
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

    pub(super) fn advance_weight(&mut self, steps: &[Step]) {
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

    pub(super) fn hold_message(&mut self) {
        let message = match (&self.plan.strategy, self.next.current_step) {
            (_, None) => "waiting for the first analysis".to_string(),
            (Strategy::Canary { .. }, Some(_)) => {
                format!("analysing at canary weight {}%", self.next.canary_weight)
            }
            (_, Some(_)) => format!("analysing, {} iterations passed", self.next.iterations),
        };
        self.note(Reason::UpToDate, &message);
    }

    /// True when the canary's pods are ready; otherwise waits, rolling back at the deadline.
    pub(super) fn canary_ready(&mut self, target: &Target) -> bool {
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
}
