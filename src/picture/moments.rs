//! What a rollout picture shows, read from a simulation report and the plan it ran: the canary
//! weight over time, each metric's values against its bounds, the holds (pauses and closed
//! gates), webhook answers, scripted events and the decisions (promote, rollback). Pure data:
//! the SVG, HTML and Mermaid renderings all draw from it, so they cannot disagree.

use std::collections::BTreeMap;

use crate::api::Phase;
use crate::api::canary::Direction;
use crate::api::status::{CheckKind, CheckResult, CheckStatus};
use crate::engine::Plan;
use crate::engine::plan::MetricPlan;
use crate::sim::run::{Entry, Report};

/// Decision reasons that hold the rollout where it is until time, a gate or a person moves it.
const HOLDING: [&str; 6] = [
    "StepHeld",
    "WaitingForConfirmation",
    "WaitingForPromotion",
    "Paused",
    "JudgeMarginal",
    "Suspended",
];

/// The start of the script's own events in the timeline's `happened` lines (the rest are the
/// engine's actions, drawn as the weight line and the decisions).
const SCRIPTED: [&str; 4] = ["release ", "config ", "request ", "spec.suspend "];

#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub name: String,
    pub strategy: String,
    /// Seconds of simulated time the picture spans.
    pub end: f64,
    /// (time, weight in effect from then on), one vertex per change, starting at 0.
    pub weights: Vec<(f64, i32)>,
    pub holds: Vec<Hold>,
    pub panels: Vec<Panel>,
    pub hooks: Vec<HookMark>,
    pub events: Vec<(f64, String)>,
    pub decisions: Vec<Decision>,
    pub phases: Vec<PhaseRun>,
    pub outcome: Verdict,
}

/// A stretch of time the rollout held: a pause, a closed gate, a marginal score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub start: f64,
    pub end: f64,
    pub reason: String,
    pub message: String,
}

/// One metric of the canary: its values over time against its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub name: String,
    /// The fixed thresholdRange.
    pub bounds: Bounds,
    /// Compared with the primary by the judge.
    pub judged: bool,
    pub points: Vec<CheckPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckPoint {
    pub at: f64,
    /// The measured value (a judged metric: the canary's mean).
    pub value: Option<f64>,
    pub result: CheckResult,
    pub message: String,
    /// A judged metric: the primary's mean and the band the judge allows around it.
    pub primary: Option<f64>,
    pub allowed: Bounds,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HookMark {
    pub at: f64,
    pub name: String,
    /// The webhook's type (`confirm-promotion`...): gates are the `confirm-*` ones.
    pub kind: String,
    pub result: CheckResult,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Promote,
    Rollback,
    Succeeded,
}

impl DecisionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::Succeeded => "succeeded",
        }
    }
}

/// A point of no return: the engine promoted, rolled back or finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub at: f64,
    pub kind: DecisionKind,
    pub reason: String,
    pub message: String,
    /// The canary weight when the decision was taken (before traffic moved back).
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRun {
    pub phase: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub phase: String,
    pub at: f64,
    pub reason: String,
    pub message: String,
    pub expected: Option<bool>,
}

impl Moments {
    pub fn of(report: &Report, plan: &Plan) -> Self {
        let timeline = &report.timeline;
        let last = timeline.last().map_or(0.0, secs);
        let end = last.max(report.outcome.at.as_std().as_secs_f64()).max(1.0);
        Self {
            name: report.name.clone(),
            strategy: report.strategy.clone(),
            end,
            weights: weights(timeline),
            holds: holds(timeline, end),
            panels: plan
                .metrics
                .iter()
                .map(|metric| panel(metric, timeline))
                .collect(),
            hooks: hooks(timeline, plan),
            events: events(timeline),
            decisions: decisions(timeline),
            phases: phases(timeline, end),
            outcome: Verdict {
                phase: report.outcome.phase.map_or("-", Phase::as_str).to_string(),
                at: report.outcome.at.as_std().as_secs_f64(),
                reason: report.outcome.reason.clone(),
                message: report.outcome.message.clone(),
                expected: report.outcome.expected,
            },
        }
    }
}

/// A row of the moments table: a decision, a hold, or a run of one check's failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Notable {
    pub at: f64,
    /// The end of a hold or of a run of failures.
    pub until: Option<f64>,
    pub what: String,
    pub detail: String,
}

impl Moments {
    /// What decided the rollout, in time order. A check failing the same way tick after tick
    /// is one row with its count, so a day of failures reads as one line, not 8,000.
    pub fn notable(&self) -> Vec<Notable> {
        let mut rows: Vec<Notable> = Vec::new();
        for d in &self.decisions {
            rows.push(Notable {
                at: d.at,
                until: None,
                what: format!("{} at {}%", d.kind.as_str(), d.weight),
                detail: format!("{}: {}", d.reason, d.message),
            });
        }
        for h in &self.holds {
            rows.push(Notable {
                at: h.start,
                until: Some(h.end),
                what: "hold".into(),
                detail: format!("{}: {}", h.reason, h.message),
            });
        }
        for panel in &self.panels {
            rows.extend(failure_runs(panel));
        }
        rows.sort_by(|a, b| a.at.total_cmp(&b.at));
        rows
    }
}

/// Consecutive points of one panel that did not pass, with the same result and message.
fn failure_runs(panel: &Panel) -> Vec<Notable> {
    let mut rows = Vec::new();
    let mut run: Option<(&CheckPoint, &CheckPoint, usize)> = None;
    for point in &panel.points {
        let same =
            |first: &CheckPoint| first.result == point.result && first.message == point.message;
        run = match run {
            Some((first, _, count)) if point.result != CheckResult::Pass && same(first) => {
                Some((first, point, count + 1))
            }
            other => {
                rows.extend(other.map(|r| failure_row(&panel.name, r)));
                (point.result != CheckResult::Pass).then_some((point, point, 1))
            }
        };
    }
    rows.extend(run.map(|r| failure_row(&panel.name, r)));
    rows
}

fn failure_row(name: &str, (first, last, count): (&CheckPoint, &CheckPoint, usize)) -> Notable {
    let times = if count > 1 {
        format!(" ({count} checks in a row)")
    } else {
        String::new()
    };
    Notable {
        at: first.at,
        until: (count > 1).then_some(last.at),
        what: format!("check {name}"),
        detail: format!("{}{times}", first.message),
    }
}

fn secs(entry: &Entry) -> f64 {
    entry.at.as_std().as_secs_f64()
}

fn weights(timeline: &[Entry]) -> Vec<(f64, i32)> {
    let mut out = vec![(0.0, 0)];
    for entry in timeline {
        let current = out.last().map_or(0, |(_, w)| *w);
        if entry.weight != current {
            out.push((secs(entry), entry.weight));
        }
    }
    out
}

/// Runs of holding entries; a quiet entry (nothing decided) keeps the hold going.
fn holds(timeline: &[Entry], end: f64) -> Vec<Hold> {
    let mut out: Vec<Hold> = Vec::new();
    let mut open: Option<Hold> = None;
    for entry in timeline {
        let at = secs(entry);
        if entry.reason == "UpToDate" {
            continue;
        }
        let holding = HOLDING.contains(&entry.reason.as_str());
        if let Some(mut hold) = open.take() {
            if holding && hold.reason == entry.reason {
                open = Some(hold);
                continue;
            }
            hold.end = at;
            out.push(hold);
        }
        if holding {
            open = Some(Hold {
                start: at,
                end,
                reason: entry.reason.clone(),
                message: entry.message.clone(),
            });
        }
    }
    out.extend(open);
    out
}

fn panel(metric: &MetricPlan, timeline: &[Entry]) -> Panel {
    let allowed = |check: &CheckStatus| {
        let (Some(judge), Some(primary)) = (
            metric.judge,
            check.judgement.as_ref().and_then(|j| j.primary_mean),
        ) else {
            return Bounds::default();
        };
        let slack = judge.config.allowed_change * primary.abs();
        let (low, high) = (Some(primary - slack), Some(primary + slack));
        match judge.config.direction {
            Direction::Increase => Bounds {
                min: None,
                max: high,
            },
            Direction::Decrease => Bounds {
                min: low,
                max: None,
            },
            Direction::Either => Bounds {
                min: low,
                max: high,
            },
        }
    };
    let points = timeline
        .iter()
        .flat_map(|entry| entry.checks.iter().map(move |c| (secs(entry), c)))
        .filter(|(_, c)| c.kind == CheckKind::Metric && c.name == metric.name)
        .map(|(at, check)| CheckPoint {
            at,
            value: check.value,
            result: check.result,
            message: check.message.clone(),
            primary: check.judgement.as_ref().and_then(|j| j.primary_mean),
            allowed: allowed(check),
        })
        .collect();
    Panel {
        name: metric.name.clone(),
        bounds: Bounds {
            min: metric.range.min,
            max: metric.range.max,
        },
        judged: metric.judge.is_some(),
        points,
    }
}

fn hooks(timeline: &[Entry], plan: &Plan) -> Vec<HookMark> {
    let kinds: BTreeMap<&str, &str> = plan
        .hooks
        .iter()
        .flat_map(|(kind, names)| names.iter().map(move |n| (n.as_str(), kind.as_str())))
        .collect();
    timeline
        .iter()
        .flat_map(|entry| entry.checks.iter().map(move |c| (secs(entry), c)))
        .filter(|(_, c)| c.kind == CheckKind::Webhook)
        .map(|(at, check)| HookMark {
            at,
            name: check.name.clone(),
            kind: kinds
                .get(check.name.as_str())
                .unwrap_or(&"webhook")
                .to_string(),
            result: check.result,
            message: check.message.clone(),
        })
        .collect()
}

fn events(timeline: &[Entry]) -> Vec<(f64, String)> {
    timeline
        .iter()
        .flat_map(|entry| entry.happened.iter().map(move |h| (secs(entry), h)))
        .filter(|(_, h)| SCRIPTED.iter().any(|p| h.starts_with(p)))
        .map(|(at, h)| (at, h.clone()))
        .collect()
}

/// Entering Promoting, Failed or Succeeded is a decision; the weight is the one it was taken
/// at, before traffic went back to the primary.
fn decisions(timeline: &[Entry]) -> Vec<Decision> {
    let mut out = Vec::new();
    let (mut phase, mut weight) = (None, 0);
    for entry in timeline {
        let kind = match entry.phase {
            _ if entry.phase == phase => None,
            Some(Phase::Promoting) => Some(DecisionKind::Promote),
            Some(Phase::Failed) => Some(DecisionKind::Rollback),
            Some(Phase::Succeeded) => Some(DecisionKind::Succeeded),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(Decision {
                at: secs(entry),
                kind,
                reason: entry.reason.clone(),
                message: entry.message.clone(),
                weight,
            });
        }
        phase = entry.phase;
        weight = entry.weight;
    }
    out
}

fn phases(timeline: &[Entry], end: f64) -> Vec<PhaseRun> {
    let mut out: Vec<PhaseRun> = Vec::new();
    for entry in timeline {
        let name = entry.phase.map_or("-", Phase::as_str);
        if out.last().is_some_and(|run| run.phase == name) {
            continue;
        }
        if let Some(run) = out.last_mut() {
            run.end = secs(entry);
        }
        out.push(PhaseRun {
            phase: name.to_string(),
            start: secs(entry),
            end,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::provider::{DEFAULT_NAME, TrafficProvider};
    use crate::sim::{self, Scenario};

    fn moments(yaml: &str) -> Moments {
        let provider = TrafficProvider::parse(DEFAULT_NAME).unwrap();
        let scenario = Scenario::from_yaml(yaml, provider).unwrap();
        Moments::of(&sim::run(&scenario), &scenario.plan)
    }

    #[test]
    fn the_rollback_example_steps_to_30_and_rolls_back_there() {
        let m = moments(include_str!("../../examples/podinfo-rollback.yaml"));
        assert_eq!(
            m.weights,
            vec![(0.0, 0), (65.0, 10), (125.0, 20), (185.0, 30), (305.0, 0)]
        );
        assert_eq!(m.decisions.len(), 1);
        let rollback = &m.decisions[0];
        assert_eq!(rollback.kind, DecisionKind::Rollback);
        assert_eq!((rollback.at, rollback.weight), (305.0, 30));
        assert_eq!(rollback.reason, "ThresholdReached");
        let names: Vec<&str> = m.panels.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["request-success-rate", "request-duration"]);
        let failed: Vec<f64> = m.panels[0]
            .points
            .iter()
            .filter(|p| p.result == CheckResult::Fail)
            .map(|p| p.at)
            .collect();
        assert_eq!(failed, [245.0, 305.0]);
        assert_eq!(m.panels[0].bounds.min, Some(99.0));
        assert_eq!(m.events, vec![(60.0, "release podinfo:6.0.1".to_string())]);
        let rows: Vec<(f64, Option<f64>, &str)> = m
            .notable()
            .iter()
            .map(|r| (r.at, r.until, r.what.as_str()))
            .map(|(a, u, w)| {
                (
                    a,
                    u,
                    if w.starts_with("check") {
                        "check"
                    } else {
                        "rollback"
                    },
                )
            })
            .collect();
        assert_eq!(
            rows,
            [(245.0, Some(305.0), "check"), (305.0, None, "rollback")]
        );
    }

    #[test]
    fn a_closed_promotion_gate_is_a_hold_and_its_webhook_a_gate() {
        let m = moments(include_str!("../../examples/podinfo-blue-green.yaml"));
        let gate = m
            .holds
            .iter()
            .find(|h| h.reason == "WaitingForPromotion")
            .expect("the gate holds the rollout");
        assert_eq!(gate.start, 155.0);
        assert!(
            gate.end >= 600.0,
            "held until the gate opened at 10m: {gate:?}"
        );
        assert!(m.hooks.iter().all(|h| h.kind == "confirm-promotion"));
        assert!(m.hooks.iter().any(|h| h.result == CheckResult::Fail));
        let kinds: Vec<DecisionKind> = m.decisions.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DecisionKind::Promote, DecisionKind::Succeeded]);
    }

    #[test]
    fn a_judged_metric_carries_the_band_the_judge_allows() {
        let m = moments(include_str!("../../examples/podinfo-judge.yaml"));
        let judged = m.panels.iter().find(|p| p.judged).expect("a judged metric");
        let point = judged.points.last().unwrap();
        let primary = point.primary.expect("the primary's mean");
        // Increase is the regression: the band is open below, 10% above the primary's mean.
        assert_eq!(point.allowed.min, None);
        let max = point.allowed.max.unwrap();
        assert!(
            (max - primary * 1.1).abs() < 1e-9 * primary.abs().max(1.0),
            "{max} vs {primary}"
        );
        assert_eq!(point.result, CheckResult::Fail);
    }
}
