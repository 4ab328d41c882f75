//! One analysis tick's verdict from the checks the shell ran: rollout hooks and metrics, with
//! each metric's no-data policy applied. A check that was due but has no result counts as an
//! error, never as a pass.

use chrono::{DateTime, Utc};

use crate::api::canary::{HookKind, OnNoData};
use crate::api::status::{CheckKind, CheckResult, CheckStatus, Judgement};
use crate::judge::compare::{
    Class, Comparison, Score, Scored, Verdict as ScoreVerdict, compare, score,
};
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
    /// The judged metrics' score is between the marginal and pass thresholds.
    Marginal(String),
    /// Metrics with no data whose policy is to wait.
    WaitForData(Vec<String>),
}

/// Judges the rollout hooks and metrics of one tick, returning the verdict and the per-check
/// results to show in the status.
///
/// Metrics with bounds count one by one. Metrics compared with the primary add up to one
/// weighted score (Kayenta's rule): below the marginal threshold it is one failed check, between
/// marginal and pass it holds the rollout for a human, and a critical metric's regression fails
/// the run by itself.
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
    let mut compared = Vec::new();
    for metric in &plan.metrics {
        let sample = found.metrics.iter().find(|m| m.name == metric.name);
        let value = sample.map_or(Sample::Error("not evaluated".into()), |s| s.value.clone());
        let judged = judge_metric(metric, &value, now);
        let query = sample.and_then(|s| s.query.clone());
        // The rendered query goes last: events are cut at 1,000 characters.
        let line = match &query {
            Some(query) => format!(
                "{}: {} [query: {query}]",
                metric.name, judged.status.message
            ),
            None => format!("{}: {}", metric.name, judged.status.message),
        };
        match (judged.status.result, metric.on_no_data) {
            (CheckResult::Pass, _) | (CheckResult::NoData, OnNoData::Skip) => {}
            (CheckResult::NoData, OnNoData::Wait) => waiting.push(line),
            // A regression against the primary counts through the score below.
            (CheckResult::Fail, _) if judged.comparison.as_ref().is_some_and(|c| c.failed) => {}
            _ => failures.push(line),
        }
        if let (Some(comparison), Some(judge)) = (judged.comparison, metric.judge) {
            compared.push((metric.name.as_str(), comparison, judge));
        }
        results.push(CheckStatus {
            query,
            ..judged.status
        });
    }
    let mut critical = false;
    let mut marginal = None;
    if !compared.is_empty() {
        let scored: Vec<Scored<'_>> = compared
            .iter()
            .map(|(name, comparison, judge)| Scored {
                name,
                comparison,
                weight: judge.weight,
                critical: judge.critical,
            })
            .collect();
        let score = score(&scored, plan.score.pass, plan.score.marginal);
        let summary = score_summary(&scored, &score, plan);
        match score.verdict {
            ScoreVerdict::Fail => {
                critical = !score.failed_critical.is_empty();
                failures.push(summary);
            }
            ScoreVerdict::Marginal => marginal = Some(summary),
            ScoreVerdict::Pass | ScoreVerdict::NoData => {}
        }
    }
    let verdict = if !failures.is_empty() {
        Verdict::Fail { failures, critical }
    } else if let Some(summary) = marginal {
        Verdict::Marginal(summary)
    } else if !waiting.is_empty() {
        Verdict::WaitForData(waiting)
    } else {
        Verdict::Pass
    };
    (verdict, results)
}

/// "judge score 50 (pass 95, marginal 75): latency High, errors Pass".
fn score_summary(scored: &[Scored<'_>], score: &Score, plan: &Plan) -> String {
    let classes: Vec<String> = scored
        .iter()
        .map(|m| match m.comparison.failed {
            true => format!(
                "{} {:?} against the primary ({}; {})",
                m.name,
                m.comparison.class,
                m.comparison.reason,
                m.comparison.statistics()
            ),
            false => format!("{} {:?}", m.name, m.comparison.class),
        })
        .collect();
    let value = score.value.map_or("n/a".to_string(), |v| format!("{v:.0}"));
    let critical = if score.failed_critical.is_empty() {
        String::new()
    } else {
        format!(
            "; critical metric regressed: {}",
            score.failed_critical.join(", ")
        )
    };
    format!(
        "judge score {value} (pass {}, marginal {}): {}{critical}",
        plan.score.pass,
        plan.score.marginal,
        classes.join(", ")
    )
}

struct Judged {
    status: CheckStatus,
    /// The comparison with the primary, when the metric has a judge and enough data; a
    /// `failed` one is a regression, counted through the score rather than one by one.
    comparison: Option<Comparison>,
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
        query: None,
        judgement: None,
        time: now,
    };
    let mut scored = None;
    let (result, message) = match (metric.judge, value) {
        (Some(judge), Sample::Compared { canary, primary }) => {
            let comparison = compare(canary, primary, &judge.config);
            status.value = comparison.canary_mean;
            status.judgement = Some(judgement(&comparison));
            let has_bounds = metric.range.min.is_some() || metric.range.max.is_some();
            let outcome = match (comparison.class, comparison.failed, comparison.canary_mean) {
                (Class::NoData, _, _) => (CheckResult::NoData, comparison.reason.clone()),
                (class, true, _) => (
                    CheckResult::Fail,
                    format!(
                        "{class:?} against the primary: {} ({})",
                        comparison.reason,
                        comparison.statistics()
                    ),
                ),
                (_, false, Some(mean)) if has_bounds => {
                    let (result, bounds) = threshold::judge(mean, metric.range);
                    (
                        result,
                        format!("{}; canary mean {bounds}", comparison.reason),
                    )
                }
                _ => (CheckResult::Pass, comparison.reason.clone()),
            };
            if comparison.class != Class::NoData {
                scored = Some(comparison);
            }
            outcome
        }
        (Some(_), Sample::Value(_)) => (
            CheckResult::Error,
            "the judge needs the canary's and the primary's values, got a single value".to_string(),
        ),
        (None, Sample::Compared { .. }) => (
            CheckResult::Error,
            "got canary and primary samples for a metric checked against bounds only".to_string(),
        ),
        (_, Sample::Value(v)) => {
            status.value = v.is_finite().then_some(*v);
            threshold::judge(*v, metric.range)
        }
        (_, Sample::NoData) => (CheckResult::NoData, "no values found".into()),
        (_, Sample::Error(error)) => (CheckResult::Error, error.clone()),
    };
    status.result = result;
    status.message = message;
    Judged {
        status,
        comparison: scored,
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
                query: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::canary::ThresholdRange;

    fn bounded(min: Option<f64>, max: Option<f64>) -> MetricPlan {
        MetricPlan {
            name: "request-success-rate".into(),
            range: ThresholdRange { min, max },
            on_no_data: OnNoData::Fail,
            judge: None,
        }
    }

    fn result_of(metric: &MetricPlan, sample: Sample) -> (CheckResult, String) {
        let judged = judge_metric(metric, &sample, DateTime::<Utc>::UNIX_EPOCH);
        (judged.status.result, judged.status.message)
    }

    #[test]
    fn errors_and_empty_results_never_pass() {
        let unbounded = bounded(None, None);
        assert_eq!(
            result_of(&unbounded, Sample::NoData),
            (CheckResult::NoData, "no values found".to_string())
        );
        assert_eq!(
            result_of(&unbounded, Sample::Error("timeout".into())),
            (CheckResult::Error, "timeout".to_string())
        );
    }

    #[test]
    fn a_value_is_checked_against_the_bounds_and_shown() {
        let metric = bounded(Some(99.0), None);
        let judged = judge_metric(&metric, &Sample::Value(98.5), DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(judged.status.result, CheckResult::Fail);
        assert_eq!(judged.status.message, "98.5 < 99 (min)");
        assert_eq!(judged.status.value, Some(98.5));
    }

    #[test]
    fn two_samples_for_a_metric_with_bounds_only_are_an_error() {
        let (result, message) = result_of(
            &bounded(Some(99.0), None),
            Sample::Compared {
                canary: vec![1.0],
                primary: vec![1.0],
            },
        );
        assert_eq!(result, CheckResult::Error);
        assert!(message.contains("bounds only"), "{message}");
    }
}
