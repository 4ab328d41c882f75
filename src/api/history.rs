//! Rollout history kept in the Canary's status: what each of the last rollouts reached and why
//! it ended. Events expire after an hour; this explains last week's rollback. Every record is
//! bounded (reasons truncated, failed checks capped) and so is their number, so the status
//! stays far below the API server's object size limit whatever the checks say.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::status::{CheckKind, CheckResult, CheckStatus};

/// Rollouts kept in `status.history`.
pub const MAX_ROLLOUTS: usize = 10;
/// Failed checks listed per rollout (the count covers them all).
pub const MAX_FAILURES: usize = 5;
/// Characters kept of a rollout's message.
pub const MAX_MESSAGE: usize = 300;
/// Characters kept of a failed check's message and name.
pub const MAX_CHECK_TEXT: usize = 160;

/// One rollout: the revision, when it ran, how far it got and how it ended.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// The revision rolled out (pod template and tracked configs).
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Absent while the rollout is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Absent while the rollout is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The reason of the decision that ended it (as in events: ThresholdReached, Succeeded...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Highest canary weight reached (canary strategy).
    #[serde(default)]
    pub max_weight: i32,
    /// Passed iterations (A/B testing and blue/green).
    #[serde(default)]
    pub iterations: i32,
    /// Failed analysis ticks counted against the threshold.
    #[serde(default)]
    pub failed_checks: i32,
    /// The checks failing when it ended, with their values (at most [`MAX_FAILURES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedCheck>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Outcome {
    /// The primary runs the revision.
    Promoted,
    /// Rolled back to the primary (a failed analysis, an abort, a deadline).
    RolledBack,
    /// Ended by a newer revision, or by the target going back to the primary's.
    Superseded,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Promoted => "Promoted",
            Self::RolledBack => "RolledBack",
            Self::Superseded => "Superseded",
        }
    }
}

/// A check that was not passing when the rollout ended.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedCheck {
    pub name: String,
    pub kind: CheckKind,
    pub result: CheckResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl RolloutRecord {
    /// A rollout of `revision` starting at `now`.
    pub fn start(revision: &str, now: DateTime<Utc>) -> Self {
        Self {
            revision: revision.to_string(),
            started_at: Some(now),
            ended_at: None,
            outcome: None,
            reason: String::new(),
            message: String::new(),
            max_weight: 0,
            iterations: 0,
            failed_checks: 0,
            failures: Vec::new(),
        }
    }

    /// The record of its end: outcome, reason and the checks not passing, all bounded.
    pub fn end(mut self, end: Ending<'_>) -> Self {
        self.ended_at = Some(end.at);
        self.outcome = Some(end.outcome);
        self.reason = end.reason.to_string();
        self.message = truncate(end.message, MAX_MESSAGE);
        self.iterations = self.iterations.max(end.iterations);
        self.failed_checks = end.failed_checks;
        self.failures = end
            .checks
            .iter()
            .filter(|c| c.result != CheckResult::Pass)
            .take(MAX_FAILURES)
            .map(FailedCheck::of)
            .collect();
        self
    }
}

/// How a rollout ended, as [`RolloutRecord::end`] records it.
pub struct Ending<'a> {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub reason: &'a str,
    pub message: &'a str,
    pub iterations: i32,
    pub failed_checks: i32,
    pub checks: &'a [CheckStatus],
}

impl FailedCheck {
    fn of(check: &CheckStatus) -> Self {
        Self {
            name: truncate(&check.name, MAX_CHECK_TEXT),
            kind: check.kind,
            result: check.result,
            value: check.value,
            min: check.min,
            max: check.max,
            message: truncate(&check.message, MAX_CHECK_TEXT),
        }
    }
}

/// Puts an ended rollout first, dropping the oldest beyond [`MAX_ROLLOUTS`].
pub fn push(history: &mut Vec<RolloutRecord>, record: RolloutRecord) {
    history.insert(0, record);
    history.truncate(MAX_ROLLOUTS);
}

/// At most `max` characters, an ellipsis marking a cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(50), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }
}
