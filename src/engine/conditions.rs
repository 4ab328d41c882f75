//! Status conditions derived from the phase: Flagger's `Promoted` and the kstatus trio
//! (`Ready`, `Reconciling`, `Stalled`) that Flux and Argo CD health checks understand.

use chrono::{DateTime, Utc};

use crate::api::Phase;
use crate::api::status::{CanaryStatus, Condition};

use super::reasons::Reason;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const PROMOTED: &str = "Promoted";

/// Sets one condition, keeping its transition time when its status did not change.
pub fn set(
    status: &mut CanaryStatus,
    kind: &str,
    value: bool,
    reason: Reason,
    message: &str,
    now: DateTime<Utc>,
) {
    set_raw(
        status,
        kind,
        if value { "True" } else { "False" },
        reason,
        message,
        now,
    );
}

fn set_raw(
    status: &mut CanaryStatus,
    kind: &str,
    value: &str,
    reason: Reason,
    message: &str,
    now: DateTime<Utc>,
) {
    let fresh = Condition {
        kind: kind.to_string(),
        status: value.to_string(),
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        last_transition_time: Some(now),
    };
    match status.conditions.iter_mut().find(|c| c.kind == kind) {
        Some(existing) => {
            let keep = (existing.status == fresh.status).then_some(existing.last_transition_time);
            *existing = Condition {
                last_transition_time: keep.flatten().or(Some(now)),
                ..fresh
            };
        }
        None => status.conditions.push(fresh),
    }
}

/// Derives all four conditions from the phase. `stalled` overrides: the rollout cannot
/// progress without outside help (target missing, invalid spec, deadline during init).
pub fn derive(
    status: &mut CanaryStatus,
    reason: Reason,
    message: &str,
    stalled: bool,
    now: DateTime<Utc>,
) {
    let phase = status.phase;
    let settled_ok = matches!(phase, Some(Phase::Initialized | Phase::Succeeded));
    let failed = phase == Some(Phase::Failed);
    let in_progress = !stalled && !settled_ok && !failed;
    set(status, READY, settled_ok && !stalled, reason, message, now);
    set(status, RECONCILING, in_progress, reason, message, now);
    set(status, STALLED, stalled || failed, reason, message, now);
    match phase {
        Some(Phase::Initialized | Phase::Succeeded) => {
            set(status, PROMOTED, true, reason, message, now)
        }
        Some(Phase::Failed) => set(status, PROMOTED, false, reason, message, now),
        _ => set_raw(status, PROMOTED, "Unknown", reason, message, now),
    }
}

/// Looks up a condition's status ("True", "False", "Unknown").
pub fn status_of<'a>(status: &'a CanaryStatus, kind: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| c.status.as_str())
}

/// Whether a condition still shows a reconcile failure (`Reason::RECONCILE_FAILURES`), which
/// the next successful reconcile must clear even when it decides nothing.
pub fn carries_failure(status: &CanaryStatus) -> bool {
    status.conditions.iter().any(|c| {
        Reason::RECONCILE_FAILURES
            .iter()
            .any(|r| r.as_str() == c.reason)
    })
}
