//! `serin history NAME`: the Canary's last rollouts from `status.history` (and the one under
//! way), newest first: revision, outcome, when, how far each got and why it ended, with the
//! checks that were failing. Events expire after an hour; this explains last week's rollback.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Format, Style, age, print_structured, table};
use crate::api::history::{Outcome, RolloutRecord};
use crate::api::status::CanaryStatus;
use crate::engine::short;

/// What `-o json|yaml` prints.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_rollout: Option<RolloutRecord>,
    pub history: Vec<RolloutRecord>,
}

pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    format: Format,
) -> anyhow::Result<()> {
    let canary = super::canaries::get(&client, namespace, name).await?.canary;
    let status = canary.status.unwrap_or_default();
    match format {
        Format::Table => crate::out!(
            "{}",
            render(
                &format!("{namespace}/{name}"),
                &status,
                Utc::now(),
                Style::detect()
            )
        ),
        format => print_structured(
            &History {
                namespace: namespace.to_string(),
                name: name.to_string(),
                current_rollout: status.current_rollout,
                history: status.history,
            },
            format,
        )?,
    }
    Ok(())
}

/// The table of rollouts, then the failed checks of each that had some.
pub fn render(canary: &str, status: &CanaryStatus, now: DateTime<Utc>, style: Style) -> String {
    let records: Vec<&RolloutRecord> = status
        .current_rollout
        .iter()
        .chain(status.history.iter())
        .collect();
    if records.is_empty() {
        return format!(
            "Canary {canary}: no rollout recorded yet (rollouts are recorded from the first one serin runs)\n"
        );
    }
    let rows: Vec<Vec<String>> = records.iter().map(|r| row(r, now, style)).collect();
    let mut out = table(
        &[
            "REVISION", "OUTCOME", "STARTED", "DURATION", "REACHED", "FAILED", "REASON",
        ],
        &rows,
    );
    for record in records.iter().filter(|r| !r.failures.is_empty()) {
        let _ = writeln!(out, "\nFailing checks of {}:", short(&record.revision));
        let rows: Vec<Vec<String>> = record
            .failures
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.result.as_str().to_string(),
                    f.value.map_or("-".into(), |v| format!("{v}")),
                    bounds(f.min, f.max),
                    f.message.clone(),
                ]
            })
            .collect();
        for line in table(&["NAME", "RESULT", "VALUE", "BOUNDS", "MESSAGE"], &rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn row(record: &RolloutRecord, now: DateTime<Utc>, style: Style) -> Vec<String> {
    let outcome = match record.outcome {
        None => style.warn("InProgress"),
        Some(Outcome::Promoted) => style.good(Outcome::Promoted.as_str()),
        Some(Outcome::RolledBack) => style.bad(Outcome::RolledBack.as_str()),
        Some(other) => other.as_str().to_string(),
    };
    let duration = match (record.started_at, record.ended_at) {
        (Some(start), end) => age(Some(start), end.unwrap_or(now)),
        (None, _) => "-".into(),
    };
    let reached = if record.iterations > 0 {
        format!("{} iterations", record.iterations)
    } else {
        format!("{}%", record.max_weight)
    };
    let reason = match (record.reason.as_str(), record.message.as_str()) {
        ("", _) => "-".to_string(),
        (reason, "") => reason.to_string(),
        (reason, message) => format!("{reason}: {message}"),
    };
    vec![
        short(&record.revision).to_string(),
        outcome,
        age(record.started_at, now),
        duration,
        reached,
        record.failed_checks.to_string(),
        reason,
    ]
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("{min}..{max}"),
        (Some(min), None) => format!(">= {min}"),
        (None, Some(max)) => format!("<= {max}"),
        (None, None) => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::history::FailedCheck;
    use crate::api::status::{CheckKind, CheckResult};

    #[test]
    fn rollouts_are_listed_newest_first_with_their_failing_checks() {
        let now = Utc::now();
        let ago = |m: i64| Some(now - chrono::Duration::minutes(m));
        let status = CanaryStatus {
            current_rollout: Some(RolloutRecord {
                max_weight: 20,
                ..RolloutRecord::start("cccccccccccccccc", now - chrono::Duration::minutes(2))
            }),
            history: vec![
                RolloutRecord {
                    ended_at: ago(50),
                    outcome: Some(Outcome::RolledBack),
                    reason: "ThresholdReached".into(),
                    message: "rolling back: failed checks reached the threshold (2/2)".into(),
                    max_weight: 30,
                    failed_checks: 2,
                    failures: vec![FailedCheck {
                        name: "request-success-rate".into(),
                        kind: CheckKind::Metric,
                        result: CheckResult::Fail,
                        value: Some(91.5),
                        min: Some(99.0),
                        max: None,
                        message: String::new(),
                    }],
                    ..RolloutRecord::start("bbbbbbbbbbbbbbbb", ago(60).unwrap())
                },
                RolloutRecord {
                    ended_at: ago(6 * 60 - 15),
                    outcome: Some(Outcome::Promoted),
                    reason: "Succeeded".into(),
                    max_weight: 50,
                    ..RolloutRecord::start("aaaaaaaaaaaaaaaa", ago(6 * 60).unwrap())
                },
            ],
            ..CanaryStatus::default()
        };
        let text = render("test/web", &status, now, Style::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("REVISION"), "{text}");
        let words = |line: &str| {
            line.split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            words(lines[1]),
            "cccccccccc InProgress 2m 2m 20% 0",
            "{text}"
        );
        assert_eq!(
            words(lines[2]),
            "bbbbbbbbbb RolledBack 60m 10m 30% 2",
            "{text}"
        );
        assert!(
            lines[2].ends_with(
                "ThresholdReached: rolling back: failed checks reached the threshold (2/2)"
            ),
            "{text}"
        );
        assert_eq!(
            words(lines[3]),
            "aaaaaaaaaa Promoted 6h 15m 50% 0",
            "{text}"
        );
        assert!(text.contains("Failing checks of bbbbbbbbbb:"), "{text}");
        assert!(
            text.contains("request-success-rate   Fail     91.5    >= 99"),
            "{text}"
        );
    }

    #[test]
    fn a_canary_without_rollouts_says_so() {
        let text = render(
            "test/web",
            &CanaryStatus::default(),
            Utc::now(),
            Style::plain(),
        );
        assert!(text.contains("no rollout recorded yet"), "{text}");
    }
}
