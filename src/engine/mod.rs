//! The pure rollout engine: a deterministic function of (plan, status, observations, check
//! results, now) to (next status, actions, reason). No client, no clock, no I/O, no
//! randomness: the controller and the simulator drive the same code.

pub mod action;
pub mod analysis;
pub mod conditions;
pub mod deletion;
pub mod input;
pub mod judge_window;
mod lifecycle;
pub mod plan;
pub mod reasons;

use chrono::{DateTime, Utc};

use crate::api::Duration;
use crate::api::canary::HookKind;
use crate::api::status::{CanaryStatus, Phase};

pub use action::{Action, Traffic, sample_traffic};
pub use input::{CheckResults, ForeignPrimary, ManualRequest, Observations, Target, WorkloadState};
pub use lifecycle::short;
pub use plan::{Plan, Strategy};
pub use reasons::Reason;

/// The outcome of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: CanaryStatus,
    /// To execute in order, before the status is written.
    pub actions: Vec<Action>,
    pub reason: Reason,
    /// What happened, for people.
    pub message: String,
    /// When to reconcile again if no watch event comes first.
    pub requeue_after: Duration,
}

/// Decides one reconcile.
pub fn step(
    plan: &Plan,
    status: &CanaryStatus,
    obs: &Observations,
    found: &CheckResults,
    now: DateTime<Utc>,
) -> Decision {
    let mut tick = lifecycle::Tick::new(plan, status, obs, found, now);
    tick.run();
    tick.finish()
}

/// The status of a Canary that cannot progress without outside help (invalid spec, a target
/// owned by another Canary): phase untouched, Stalled with the reason, generation observed.
pub fn stalled(
    status: &CanaryStatus,
    generation: i64,
    reason: Reason,
    message: &str,
    now: DateTime<Utc>,
) -> CanaryStatus {
    let mut next = status.clone();
    next.observed_generation = Some(generation);
    conditions::derive(&mut next, reason, message, true, now);
    next
}

/// The checks the shell must run before calling [`step`] at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DueChecks {
    /// Webhook kinds to call (every hook of each kind).
    pub hooks: Vec<HookKind>,
    /// Whether to query the analysis metrics.
    pub metrics: bool,
}

impl DueChecks {
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty() && !self.metrics
    }
}

/// Which checks [`step`] will read at `now`. Conservative: a check asked for but not used costs
/// a query; a check used but not asked for would count as an error, so the two agree.
pub fn due_checks(
    plan: &Plan,
    status: &CanaryStatus,
    obs: &Observations,
    now: DateTime<Utc>,
) -> DueChecks {
    let Some(target) = &obs.target else {
        return DueChecks::default();
    };
    let frozen = plan.suspend || status.paused;
    let revision_changed = status.last_applied_spec.as_deref() != Some(target.revision.as_str());
    if frozen || revision_changed || !analysis_due(plan, status.last_analysis_time, now) {
        return DueChecks::default();
    }
    let canary_ready = target.state.is_ready(plan.canary_ready_threshold);
    let mut hooks = Vec::new();
    let mut metrics = false;
    match status.phase {
        Some(Phase::Waiting) => hooks.push(HookKind::ConfirmRollout),
        Some(Phase::Progressing) if canary_ready && status.current_step.is_none() => {
            hooks.push(HookKind::PreRollout);
        }
        Some(Phase::Progressing) if canary_ready => {
            metrics = true;
            hooks.extend([HookKind::Rollout, HookKind::Rollback]);
            let (more_steps, last) = remaining(plan, status);
            if more_steps {
                hooks.push(HookKind::ConfirmTrafficIncrease);
            }
            if last {
                hooks.push(HookKind::ConfirmPromotion);
            }
        }
        Some(Phase::WaitingPromotion) if canary_ready => {
            metrics = true;
            hooks.extend([
                HookKind::Rollout,
                HookKind::Rollback,
                HookKind::ConfirmPromotion,
            ]);
        }
        _ => {}
    }
    hooks.retain(|kind| plan.has_hooks(*kind));
    DueChecks {
        hooks,
        metrics: metrics && !plan.metrics.is_empty(),
    }
}

/// The one rule for when the next analysis tick (or gate poll) is due: an interval after the
/// last one, or at once when there was none. `step` and `due_checks` must agree on it.
fn analysis_due(plan: &Plan, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| now - t >= plan.interval.as_chrono())
}

/// (a weight step follows the current one, a passing tick now could lead to promotion)
fn remaining(plan: &Plan, status: &CanaryStatus) -> (bool, bool) {
    match &plan.strategy {
        Strategy::Canary { steps, .. } => {
            let index = status.current_step.unwrap_or(0) as usize;
            let more = index + 1 < steps.len();
            (more, !more)
        }
        Strategy::AbTesting { iterations } | Strategy::BlueGreen { iterations, .. } => {
            (false, status.iterations + 1 >= *iterations)
        }
    }
}
