//! The simulation loop: a virtual clock that jumps from one interesting instant to the next
//! (a scripted event, pods becoming ready, the engine's requeue), and at each one does what the
//! controller does: observe, run the due checks, decide, act.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::api::history::RolloutRecord;
use crate::api::status::{CheckResult, CheckStatus};
use crate::api::{Duration, Phase};
use crate::engine::input::{HookOutcome, MetricSample, Sample};
use crate::engine::{self, CheckResults, DueChecks, ManualRequest, Reason};

use super::cluster::Cluster;
use super::samples;
use super::scenario::{Rule, SampleScript, Scenario, ScriptEvent};

/// Virtual time starts here, so every run of a scenario prints the same timeline.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// A guard against an engine that never settles: far beyond any real scenario.
const MAX_RECONCILES: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub name: String,
    pub strategy: String,
    pub timeline: Vec<Entry>,
    pub outcome: Outcome,
    /// The rollouts the engine recorded in `status.history`, newest first (as the
    /// controller records them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RolloutRecord>,
    /// Reconciles the engine ran, including quiet ones not in the timeline.
    pub reconciles: usize,
}

/// One moment of the timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Virtual time since the start.
    pub at: Duration,
    pub phase: Option<Phase>,
    pub weight: i32,
    pub failed_checks: i32,
    pub reason: String,
    pub message: String,
    /// Checks judged at this moment.
    pub checks: Vec<CheckStatus>,
    /// What changed in the cluster or script.
    pub happened: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub phase: Option<Phase>,
    /// The last decisive reason (holding patterns are skipped).
    pub reason: String,
    pub message: String,
    pub at: Duration,
    /// Whether the scenario's `expect` was met; absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<bool>,
}

pub fn run(scenario: &Scenario) -> Report {
    let start = epoch();
    let file = &scenario.file;
    let until = start + file.until.unwrap_or(DEFAULT_HORIZON).as_chrono();
    let mut cluster = Cluster::new(
        file.deployment.replicas,
        &file.deployment.revision,
        file.pods.clone(),
        start,
    );
    let mut plan = scenario.plan.clone();
    let mut status = scenario.canary.status.clone().unwrap_or_default();
    let mut events: Vec<(usize, &ScriptEvent)> = file.events.iter().enumerate().collect();
    events.sort_by_key(|(i, e)| (e.at, *i));
    let mut pending = events.into_iter().peekable();
    let (mut request, mut generation) = (None, 1_i64);
    let mut timeline: Vec<Entry> = Vec::new();
    let mut now = start;
    let mut reconciles = 0;
    let mut last_decisive = (Reason::UpToDate, String::new(), start);
    while reconciles < MAX_RECONCILES {
        reconciles += 1;
        let mut happened = Vec::new();
        while let Some((index, event)) = pending.next_if(|(_, e)| start + e.at.as_chrono() <= now) {
            happened.push(apply_event(
                event,
                index,
                &mut cluster,
                &mut plan,
                &mut request,
                &mut generation,
                now,
            ));
        }
        let mut obs = cluster.observe(generation, now);
        obs.request.clone_from(&request);
        let due = engine::due_checks(&plan, &status, &obs, now);
        let found = answer(scenario, &due, &cluster, now - start);
        let decision = engine::step(&plan, &status, &obs, &found, now);
        happened.extend(
            decision
                .actions
                .iter()
                .filter_map(|a| cluster.apply(a, now)),
        );
        if !matches!(decision.reason, Reason::UpToDate | Reason::WaitingForPods) {
            last_decisive = (decision.reason, decision.message.clone(), now);
        }
        let entry = entry(&decision, happened, now - start, now);
        if is_news(&entry, timeline.last()) {
            timeline.push(entry);
        }
        // Keeping the autoscaler in line is upkeep, not a step of the rollout.
        let quiet = decision
            .actions
            .iter()
            .all(|a| matches!(a, engine::Action::SyncAutoscaler));
        status = decision.status;
        let settled = status.phase.is_some_and(Phase::is_settled);
        let readiness = cluster.next_readiness_change(now);
        if settled && quiet && pending.peek().is_none() && readiness.is_none() {
            break;
        }
        let next_event = pending.peek().map(|(_, e)| start + e.at.as_chrono());
        let next = [
            Some(now + decision.requeue_after.as_chrono()),
            next_event,
            readiness,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(until);
        if next > until {
            break;
        }
        now = next;
    }
    let (reason, message, at) = last_decisive;
    let outcome = Outcome {
        phase: status.phase,
        reason: reason.as_str().to_string(),
        message,
        at: Duration::from((at - start).to_std().unwrap_or_default()),
        expected: None,
    };
    let mut report = report(scenario, timeline, outcome, reconciles);
    report.history = status.history;
    report
}

/// The timeline entry of one reconcile at `elapsed` into the run.
fn entry(
    decision: &engine::Decision,
    happened: Vec<String>,
    elapsed: chrono::Duration,
    now: DateTime<Utc>,
) -> Entry {
    Entry {
        at: Duration::from(elapsed.to_std().unwrap_or_default()),
        phase: decision.status.phase,
        weight: decision.status.canary_weight,
        failed_checks: decision.status.failed_checks,
        reason: decision.reason.as_str().to_string(),
        message: decision.message.clone(),
        checks: decision
            .status
            .checks
            .iter()
            .filter(|c| c.time == now)
            .cloned()
            .collect(),
        happened,
    }
}

/// The report, with the outcome held against what the scenario expects.
fn report(
    scenario: &Scenario,
    timeline: Vec<Entry>,
    mut outcome: Outcome,
    reconciles: usize,
) -> Report {
    let file = &scenario.file;
    outcome.expected = file.expect.as_ref().map(|e| {
        Some(e.phase) == outcome.phase && e.reason.as_deref().is_none_or(|r| r == outcome.reason)
    });
    Report {
        name: file
            .name
            .clone()
            .unwrap_or_else(|| scenario.canary.metadata.name.clone().unwrap_or_default()),
        strategy: scenario.plan.strategy.name().to_string(),
        timeline,
        outcome,
        history: Vec::new(),
        reconciles,
    }
}

/// An entry is worth printing when something happened or the rollout's position moved.
fn is_news(entry: &Entry, last: Option<&Entry>) -> bool {
    let Some(last) = last else { return true };
    if !entry.happened.is_empty() || !entry.checks.is_empty() {
        return true;
    }
    let idle = entry.reason == Reason::UpToDate.as_str();
    !idle
        && (entry.phase != last.phase || entry.weight != last.weight || entry.reason != last.reason)
}

fn apply_event(
    event: &ScriptEvent,
    index: usize,
    cluster: &mut Cluster,
    plan: &mut engine::Plan,
    request: &mut Option<ManualRequest>,
    generation: &mut i64,
    now: DateTime<Utc>,
) -> String {
    if let Some(template) = &event.release {
        cluster.release(template, now);
        return format!("release {template}");
    }
    if let Some(config) = &event.config_change {
        cluster.change_config(config, now);
        return format!("config {config} changed");
    }
    if let Some(action) = &event.request {
        *request = Some(ManualRequest::parse(
            action,
            Some(&format!("scenario-{index}")),
        ));
        return format!("request {action}");
    }
    if let Some(suspend) = event.suspend {
        plan.suspend = suspend;
        *generation += 1;
        return format!("spec.suspend set to {suspend}");
    }
    String::new()
}

/// The script's answers to the checks the engine asked for.
fn answer(
    scenario: &Scenario,
    due: &DueChecks,
    cluster: &Cluster,
    elapsed: chrono::Duration,
) -> CheckResults {
    let context = RuleContext {
        elapsed,
        weight: cluster.traffic.canary,
        revision: &cluster.target.template,
    };
    let mut found = CheckResults::default();
    for kind in &due.hooks {
        for name in scenario.plan.hooks_of(*kind) {
            let rule = scenario
                .file
                .webhooks
                .get(name)
                .and_then(|rules| context.first(rules));
            let passed = rule.map_or(Some(true), |r| r.pass).unwrap_or(true);
            found.hooks.push(HookOutcome {
                name: name.clone(),
                kind: *kind,
                passed,
                message: if passed {
                    "200 OK".into()
                } else {
                    "403 Forbidden".into()
                },
            });
        }
    }
    if due.metrics {
        for metric in &scenario.plan.metrics {
            let rule = scenario
                .file
                .metrics
                .get(&metric.name)
                .and_then(|rules| context.first(rules));
            let value = match rule {
                Some(Rule { value: Some(v), .. }) => Sample::Value(*v),
                Some(Rule {
                    canary: Some(canary),
                    primary: Some(primary),
                    ..
                }) => {
                    let tick = elapsed.num_seconds().unsigned_abs();
                    let draw = |script: &SampleScript, side: u64| {
                        let seed =
                            samples::seed(&metric.name, tick.wrapping_mul(2).wrapping_add(side));
                        samples::lognormal(
                            seed,
                            script.median,
                            script.spread.unwrap_or(0.1),
                            script.count.unwrap_or(30),
                        )
                    };
                    Sample::Compared {
                        canary: draw(canary, 0),
                        primary: draw(primary, 1),
                    }
                }
                Some(Rule { error: Some(e), .. }) => Sample::Error(e.clone()),
                Some(_) => Sample::NoData,
                None => Sample::Error("the scenario scripts no value for this moment".into()),
            };
            found.metrics.push(MetricSample {
                name: metric.name.clone(),
                value,
                query: None,
            });
        }
    }
    found
}

struct RuleContext<'a> {
    elapsed: chrono::Duration,
    weight: i32,
    revision: &'a str,
}

impl RuleContext<'_> {
    fn first<'r>(&self, rules: &'r [Rule]) -> Option<&'r Rule> {
        rules.iter().find(|rule| {
            rule.after.is_none_or(|t| self.elapsed >= t.as_chrono())
                && rule.before.is_none_or(|t| self.elapsed < t.as_chrono())
                && rule.min_weight.is_none_or(|w| self.weight >= w)
                && rule.revision.as_deref().is_none_or(|r| r == self.revision)
        })
    }
}

/// Symbols for check results in the text timeline.
pub fn mark(result: CheckResult) -> &'static str {
    match result {
        CheckResult::Pass => "✓",
        CheckResult::Fail => "✗",
        CheckResult::NoData => "∅",
        CheckResult::Error => "!",
    }
}
