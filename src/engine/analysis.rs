//! One analysis tick's verdict from the checks the shell ran: rollout hooks and metrics, with
//! each metric's no-data policy applied. A check that was due but has no result counts as an
//! error, never as a pass.

use chrono::{DateTime, Utc};

use crate::api::canary::{HookKind, OnNoData};
use crate::api::status::{CheckKind, CheckResult, CheckStatus};
use crate::judge::threshold;

use super::input::{CheckResults, Sample};
use super::plan::Plan;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// One line per failing check.
    Fail(Vec<String>),
    /// Metrics with no data whose policy is to wait.
    WaitForData(Vec<String>),
}

/// Judges the rollout hooks and metrics of one tick, returning the verdict and the per-check
/// results to show in the status.
pub fn evaluate(
    plan: &Plan,
    found: &CheckResults,
    now: DateTime<Utc>,
) -> (Verdict, Vec<CheckStatus>) {
    let mut failures = Vec::new();
    let mut waiting = Vec::new();
    let mut results = hook_results(plan, HookKind::Rollout, found, now);
    failures.extend(
        results
            .iter()
            .filter(|r| r.result != CheckResult::Pass)
            .map(|r| format!("webhook {}: {}", r.name, r.message)),
    );
    for metric in &plan.metrics {
        let sample = found.metrics.iter().find(|m| m.name == metric.name);
        let value = sample.map_or(Sample::Error("not evaluated".into()), |s| s.value.clone());
        let (result, message) = threshold::judge(&value, metric.range);
        match (result, metric.on_no_data) {
            (CheckResult::Pass, _) | (CheckResult::NoData, OnNoData::Skip) => {}
            (CheckResult::NoData, OnNoData::Wait) => {
                waiting.push(format!("{}: {message}", metric.name))
            }
            _ => failures.push(format!("{}: {message}", metric.name)),
        }
        results.push(CheckStatus {
            name: metric.name.clone(),
            kind: CheckKind::Metric,
            result,
            value: match value {
                Sample::Value(v) if v.is_finite() => Some(v),
                _ => None,
            },
            min: metric.range.min,
            max: metric.range.max,
            message,
            time: now,
        });
    }
    let verdict = if !failures.is_empty() {
        Verdict::Fail(failures)
    } else if !waiting.is_empty() {
        Verdict::WaitForData(waiting)
    } else {
        Verdict::Pass
    };
    (verdict, results)
}

/// The results of every hook of one kind; a hook with no outcome is an error.
pub fn hook_results(
    plan: &Plan,
    kind: HookKind,
    found: &CheckResults,
    now: DateTime<Utc>,
) -> Vec<CheckStatus> {
    plan.hooks_of(kind)
        .iter()
        .map(|name| {
            let outcome = found
                .hooks
                .iter()
                .find(|h| &h.name == name && h.kind == kind);
            let (result, message) = match outcome {
                Some(o) if o.passed => (CheckResult::Pass, o.message.clone()),
                Some(o) => (CheckResult::Fail, o.message.clone()),
                None => (CheckResult::Error, "not evaluated".to_string()),
            };
            CheckStatus {
                name: name.clone(),
                kind: CheckKind::Webhook,
                result,
                value: None,
                min: None,
                max: None,
                message,
                time: now,
            }
        })
        .collect()
}

/// Every hook of `kind` answered yes (true when there are none).
pub fn all_passed(plan: &Plan, kind: HookKind, found: &CheckResults) -> bool {
    hook_results(plan, kind, found, DateTime::<Utc>::MIN_UTC)
        .iter()
        .all(|r| r.result == CheckResult::Pass)
}

/// Some hook of `kind` answered yes (false when there are none).
pub fn any_passed(plan: &Plan, kind: HookKind, found: &CheckResults) -> bool {
    found
        .hooks
        .iter()
        .any(|h| h.kind == kind && h.passed && plan.hooks_of(kind).contains(&h.name))
}
