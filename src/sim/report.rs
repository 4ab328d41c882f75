//! The timeline as people read it: one line per moment, the checks and cluster changes under
//! it, and the outcome at the end.

use std::fmt::Write;

use crate::api::Duration;
use crate::api::status::CheckKind;

use super::run::{Report, mark};

/// `1:02:03` style virtual time.
fn clock(at: Duration) -> String {
    let secs = at.as_std().as_secs();
    format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
}

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})\n", report.name, report.strategy);
    let _ = writeln!(
        out,
        "{:>8}  {:<16} {:>6}  decision",
        "time", "phase", "weight"
    );
    for entry in &report.timeline {
        let phase = entry.phase.map_or("-", |p| p.as_str());
        let _ = writeln!(
            out,
            "{:>8}  {:<16} {:>5}%  {}: {}",
            clock(entry.at),
            phase,
            entry.weight,
            entry.reason,
            entry.message
        );
        let indent = " ".repeat(35);
        for happened in &entry.happened {
            let _ = writeln!(out, "{indent}· {happened}");
        }
        for check in &entry.checks {
            let detail = match check.kind {
                CheckKind::Metric => check.message.clone(),
                CheckKind::Webhook => format!("webhook: {}", check.message),
            };
            let _ = writeln!(
                out,
                "{indent}{} {} {detail}",
                mark(check.result),
                check.name
            );
        }
    }
    let outcome = &report.outcome;
    let phase = outcome.phase.map_or("-", |p| p.as_str());
    let verdict = match outcome.expected {
        Some(true) => " — as expected",
        Some(false) => " — NOT as expected",
        None => "",
    };
    let _ = writeln!(
        out,
        "\noutcome: {phase} at {} ({}: {}){verdict}",
        clock(outcome.at),
        outcome.reason,
        outcome.message
    );
    history(&mut out, report);
    out
}

/// The rollouts recorded in the status, oldest first as the timeline reads.
fn history(out: &mut String, report: &Report) {
    if report.history.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nhistory (status.history):");
    let start = super::run::epoch();
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("-".to_string(), |t| {
            clock(Duration::from((t - start).to_std().unwrap_or_default()))
        })
    };
    for record in report.history.iter().rev() {
        let outcome = record.outcome.map_or("InProgress", |o| o.as_str());
        let reached = if record.iterations > 0 {
            format!("{} iterations", record.iterations)
        } else {
            format!("{}%", record.max_weight)
        };
        let _ = writeln!(
            out,
            "  {} {outcome} {}..{} reached {reached}, {} failed checks ({})",
            crate::engine::short(&record.revision),
            at(record.started_at),
            at(record.ended_at),
            record.failed_checks,
            record.reason
        );
    }
}
