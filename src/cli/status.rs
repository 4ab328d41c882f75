//! `serin status NAME [--watch]`: one rollout in detail — where it stands in its steps, the
//! last result of every check, the gates, the conditions and the recent events. `--watch` ends
//! when the rollout ends, with `wait`'s exit codes.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::canaries::{self, Found};
use super::wait::{self, Ended, Outcome};
use super::{Format, Style, age, print_structured, short, table};
use crate::api::canary::Webhook;
use crate::api::provider::{ProviderKind, TrafficProvider};
use crate::api::status::{CanaryStatus, CheckKind, CheckResult, CheckStatus};
use crate::api::{Canary, HookKind};
use crate::engine::Plan;
use crate::engine::plan::Strategy;

/// Events shown at most.
const EVENTS: usize = 10;

/// Shows the rollout; with `watch`, every change until the rollout of the target's current
/// revision ends, which it returns (judged as `wait --for promoted` judges it).
pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    watch: bool,
    format: Format,
) -> anyhow::Result<Option<Ended>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let show = |found: &Found, events: Vec<Event>| -> anyhow::Result<()> {
        let canary = &found.canary;
        if format == Format::Table {
            if watch {
                // Clear the screen between frames, as `watch` does, only on a terminal.
                if Style::detect().colour {
                    crate::out!("\x1b[2J\x1b[H");
                } else {
                    crate::outln!("---");
                }
            }
            crate::out!("{}", render(canary, &events, Utc::now(), Style::detect()));
            Ok(())
        } else {
            print_structured(&found.object, format)
        }
    };
    let ended = async |canary: &Canary| -> anyhow::Result<Option<Ended>> {
        let revision = wait::target_revision(&deployments, canary).await?;
        let status = canary.status.clone().unwrap_or_default();
        Ok(wait::verdict(
            &status,
            revision.as_deref(),
            Outcome::Promoted,
        ))
    };
    let found = canaries::get(&client, namespace, name).await?;
    show(&found, recent_events(&events, name).await)?;
    if !watch {
        return Ok(None);
    }
    if let Some(end) = ended(&found.canary).await? {
        return Ok(Some(end));
    }
    let mut stream = canaries::watch(&client, namespace, &found).boxed();
    while let Some(found) = stream.next().await {
        match found {
            Ok(found) => {
                show(&found, recent_events(&events, name).await)?;
                if let Some(end) = ended(&found.canary).await? {
                    return Ok(Some(end));
                }
            }
            Err(error) => eprintln!("{error}"),
        }
    }
    Ok(None)
}

/// The newest events about the Canary, newest last.
async fn recent_events(api: &Api<Event>, name: &str) -> Vec<Event> {
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=Canary,involvedObject.name={name}"
    ));
    let mut events = api.list(&params).await.map(|l| l.items).unwrap_or_default();
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(EVENTS);
    events.split_off(skip)
}

fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    event
        .last_timestamp
        .as_ref()
        .and_then(super::time)
        .or_else(|| {
            let t = &event.event_time.as_ref()?.0;
            DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
        })
        .or_else(|| {
            event
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(super::time)
        })
}

/// The whole view.
pub fn render(canary: &Canary, events: &[Event], now: DateTime<Utc>, style: Style) -> String {
    let mut out = String::new();
    let status = canary.status.clone().unwrap_or_default();
    summary(&mut out, canary, &status, style);
    let (gates, checks): (Vec<&CheckStatus>, Vec<&CheckStatus>) = status
        .checks
        .iter()
        .partition(|c| c.kind == CheckKind::Webhook && is_gate(canary, &c.name));
    section(
        &mut out,
        style,
        "Gates",
        &["NAME", "TYPE", "STATE", "CHECKED", "MESSAGE"],
        &gate_rows(canary, &gates, now, style),
    );
    section(
        &mut out,
        style,
        "Checks",
        &["NAME", "RESULT", "VALUE", "BOUNDS", "CHECKED", "DETAIL"],
        &check_rows(&checks, now, style),
    );
    section(
        &mut out,
        style,
        "Events",
        &["AGE", "TYPE", "REASON", "MESSAGE"],
        &event_rows(events, now, style),
    );
    out
}

/// The head: name and phase, target and revisions, strategy and progress, conditions.
fn summary(out: &mut String, canary: &Canary, status: &CanaryStatus, style: Style) {
    let name = canary.metadata.name.as_deref().unwrap_or_default();
    let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {namespace}/{name}   {}",
        style.bold("Canary"),
        super::get::phase(status.phase, status.paused, style)
    );
    let target = &canary.spec.target_ref;
    let _ = writeln!(
        out,
        "Target       {}/{}   revision {} (primary runs {})",
        target.kind,
        target.name,
        short(status.last_applied_spec.as_deref()),
        short(status.last_promoted_spec.as_deref())
    );
    // The controller's --mesh-provider is not known here, so a Canary naming no provider is
    // shown with one that can carry out every strategy: whether the controller's default can
    // is its to say, in the Stalled condition printed below, not a guess of ours.
    let any = TrafficProvider::of(ProviderKind::Istio);
    match &Plan::from_spec(&canary.spec, any) {
        Ok(plan) => {
            let _ = writeln!(out, "Strategy     {}", strategy(plan));
            let _ = writeln!(out, "Progress     {}", progress(plan, status));
            let _ = writeln!(
                out,
                "Failed       {} of {} allowed",
                status.failed_checks, plan.threshold
            );
        }
        Err(errors) => {
            let _ = writeln!(out, "{}", style.bad("Invalid spec:"));
            for error in &errors.0 {
                let _ = writeln!(out, "  {error}");
            }
        }
    }
    for condition in &status.conditions {
        let message = if condition.message.is_empty() {
            String::new()
        } else {
            format!("— {}", condition.message)
        };
        let _ = writeln!(
            out,
            "{:<12} {} {} {message}",
            condition.kind, condition.status, condition.reason,
        );
    }
}

fn gate_rows(
    canary: &Canary,
    gates: &[&CheckStatus],
    now: DateTime<Utc>,
    style: Style,
) -> Vec<Vec<String>> {
    gates
        .iter()
        .map(|g| {
            let state = if g.result == CheckResult::Pass {
                style.good("open")
            } else {
                style.warn("closed")
            };
            let kind = webhook(canary, &g.name).map_or("", |w| w.kind.as_str());
            vec![
                g.name.clone(),
                kind.to_string(),
                state,
                age(Some(g.time), now),
                g.message.clone(),
            ]
        })
        .collect()
}

fn check_rows(checks: &[&CheckStatus], now: DateTime<Utc>, style: Style) -> Vec<Vec<String>> {
    checks
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                result(c.result, style),
                c.value.map_or("-".into(), number),
                bounds(c),
                age(Some(c.time), now),
                detail(c),
            ]
        })
        .collect()
}

fn event_rows(events: &[Event], now: DateTime<Utc>, style: Style) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| {
            let kind = e.type_.clone().unwrap_or_default();
            vec![
                age(event_time(e), now),
                if kind == "Warning" {
                    style.warn(&kind)
                } else {
                    kind
                },
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// A titled, indented table; nothing when there are no rows.
fn section(out: &mut String, style: Style, title: &str, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", style.bold(title));
    for line in table(header, rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn webhook<'a>(canary: &'a Canary, name: &str) -> Option<&'a Webhook> {
    canary
        .spec
        .analysis
        .webhooks
        .iter()
        .find(|w| w.name == name)
}

/// Confirm and rollback hooks: gates a human opens and closes, shown apart from checks.
fn is_gate(canary: &Canary, name: &str) -> bool {
    webhook(canary, name).is_some_and(|w| {
        matches!(
            w.kind,
            HookKind::ConfirmRollout
                | HookKind::ConfirmTrafficIncrease
                | HookKind::ConfirmPromotion
                | HookKind::Rollback
        )
    })
}

fn strategy(plan: &Plan) -> String {
    let every = plan.interval;
    match &plan.strategy {
        Strategy::Canary { steps, .. } => {
            let weights: Vec<String> = steps.iter().map(|s| format!("{}%", s.weight)).collect();
            format!("canary, weights {} (every {every})", weights.join(" → "))
        }
        Strategy::AbTesting { iterations } => {
            format!("A/B testing, {iterations} iterations (every {every})")
        }
        Strategy::BlueGreen { iterations, .. } => {
            format!(
                "{}, {iterations} iterations (every {every})",
                plan.strategy.name()
            )
        }
    }
}

/// A bar of the steps done: `[###-------] step 3 of 10, canary weight 30%`.
fn progress(plan: &Plan, status: &crate::api::CanaryStatus) -> String {
    let (done, total) = match &plan.strategy {
        Strategy::Canary { steps, .. } => (
            status.current_step.map_or(0, |s| s + 1).max(0) as usize,
            steps.len(),
        ),
        Strategy::AbTesting { iterations } | Strategy::BlueGreen { iterations, .. } => {
            (status.iterations.max(0) as usize, *iterations as usize)
        }
    };
    let total = total.max(1);
    let done = done.min(total);
    let width = 20;
    let filled = done * width / total;
    let unit = match plan.strategy {
        Strategy::Canary { .. } => "step",
        _ => "iteration",
    };
    format!(
        "[{}{}] {unit} {done} of {total}, canary weight {}%",
        "#".repeat(filled),
        "-".repeat(width - filled),
        status.canary_weight
    )
}

fn result(result: CheckResult, style: Style) -> String {
    match result {
        CheckResult::Pass => style.good("Pass"),
        CheckResult::Fail => style.bad("Fail"),
        other => style.warn(other.as_str()),
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e12 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn bounds(check: &CheckStatus) -> String {
    match (check.min, check.max) {
        (Some(min), Some(max)) => format!("{} – {}", number(min), number(max)),
        (Some(min), None) => format!(">= {}", number(min)),
        (None, Some(max)) => format!("<= {}", number(max)),
        (None, None) => "-".into(),
    }
}

/// The judge's statistics, or the check's message.
fn detail(check: &CheckStatus) -> String {
    if let Some(j) = &check.judgement {
        let opt = |v: Option<f64>| v.map_or("-".into(), number);
        let change = j
            .change
            .map_or("-".into(), |c| format!("{:+.1}%", c * 100.0));
        return format!(
            "judge {}: n {}/{}, change {change}, p {}, shift {} [{}, {}]",
            j.class,
            j.canary_count,
            j.primary_count,
            j.p_value.map_or("-".into(), |p| format!("{p:.3}")),
            opt(j.shift),
            opt(j.shift_lower),
            opt(j.shift_upper)
        );
    }
    check.message.clone()
}
