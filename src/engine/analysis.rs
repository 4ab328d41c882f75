//! One analysis tick's verdict from the checks the shell ran: rollout hooks and metrics, with
//! each metric's no-data policy applied. A check that was due but has no result counts as an
//! error, never as a pass.

use chrono::{DateTime, Utc};

use crate::api::canary::{HookKind, OnNoData};
use crate::api::status::{CheckKind, CheckResult, CheckStatus, Judgement};
use crate::judge::compare::{Class, Comparison, compare};
use crate::judge::threshold;

use super::input::{CheckResults, Sample};
use super::plan::{MetricPlan, Plan};

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// One line per failing check; `critical` when a critical judged metric regressed.
    Fail {
        failures: Vec<String>,
        critical: bool,
    },
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
    let mut critical = false;
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
        let judged = judge_metric(metric, &value, now);
        match (judged.status.result, metric.on_no_data) {
            (CheckResult::Pass, _) | (CheckResult::NoData, OnNoData::Skip) => {}
            (CheckResult::NoData, OnNoData::Wait) => {
                waiting.push(format!("{}: {}", metric.name, judged.status.message))
            }
            _ => failures.push(format!("{}: {}", metric.name, judged.status.message)),
        }
        critical |= judged.critical_regression;
        results.push(judged.status);
    }
    let verdict = if !failures.is_empty() {
        Verdict::Fail { failures, critical }
    } else if !waiting.is_empty() {
        Verdict::WaitForData(waiting)
    } else {
        Verdict::Pass
    };
    (verdict, results)
}

struct Judged {
    status: CheckStatus,
    critical_regression: bool,
}

/// One metric's result: bounds on a value, or the judge on canary and primary samples (plus
/// the bounds on the canary's mean, when both are set).
fn judge_metric(metric: &MetricPlan, value: &Sample, now: DateTime<Utc>) -> Judged {
    let mut status = CheckStatus {
        name: metric.name.clone(),
        kind: CheckKind::Metric,
        result: CheckResult::Error,
        value: None,
        min: metric.range.min,
        max: metric.range.max,
        message: String::new(),
        judgement: None,
        time: now,
    };
    let mut critical_regression = false;
    let (result, message) = match (metric.judge, value) {
        (Some(judge), Sample::Compared { canary, primary }) => {
            let comparison = compare(canary, primary, &judge.config);
            status.value = comparison.canary_mean;
            status.judgement = Some(judgement(&comparison));
            critical_regression = judge.critical && comparison.failed;
            let has_bounds = metric.range.min.is_some() || metric.range.max.is_some();
            match (comparison.class, comparison.failed, comparison.canary_mean) {
                (Class::NoData, _, _) => (CheckResult::NoData, comparison.reason),
                (class, true, _) => (
                    CheckResult::Fail,
                    format!("{class:?} against the primary: {}", comparison.reason),
                ),
                (_, false, Some(mean)) if has_bounds => {
                    let (result, bounds) = threshold::judge(&Sample::Value(mean), metric.range);
                    (
                        result,
                        format!("{}; canary mean {bounds}", comparison.reason),
                    )
                }
                _ => (CheckResult::Pass, comparison.reason),
            }
        }
        (Some(_), Sample::Value(_)) => (
            CheckResult::Error,
            "the judge needs the canary's and the primary's values, got a single value".to_string(),
        ),
        (None, Sample::Compared { .. }) => (
            CheckResult::Error,
            "got canary and primary samples for a metric checked against bounds only".to_string(),
        ),
        (_, sample) => {
            if let Sample::Value(v) = sample {
                status.value = v.is_finite().then_some(*v);
            }
            threshold::judge(sample, metric.range)
        }
    };
    status.result = result;
    status.message = message;
    Judged {
        status,
        critical_regression,
    }
}

fn judgement(c: &Comparison) -> Judgement {
    Judgement {
        class: format!("{:?}", c.class),
        canary_count: c.canary_count as i64,
        primary_count: c.baseline_count as i64,
        canary_mean: c.canary_mean,
        primary_mean: c.baseline_mean,
        change: c.change.filter(|v| v.is_finite()),
        effect: c.effect.filter(|v| v.is_finite()),
        u: c.u,
        p_value: c.p_value,
        shift: c.shift,
        shift_lower: c.shift_lower,
        shift_upper: c.shift_upper,
    }
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
                judgement: None,
                time: now,
            }
        })
        .collect()
}

/// Some hook of `kind` answered yes (false when there are none).
pub fn any_passed(plan: &Plan, kind: HookKind, found: &CheckResults) -> bool {
    found
        .hooks
        .iter()
        .any(|h| h.kind == kind && h.passed && plan.hooks_of(kind).contains(&h.name))
}
