//! `revertOnDeletion`: what a deleted Canary does next before its finalizer is released. The
//! target gets its replicas back, then serin waits for its pods, up to the progress deadline
//! counted from the deletion, before the apex Service and the route are pointed back at it.

use chrono::{DateTime, Utc};

use crate::api::Duration;

use super::input::WorkloadState;

/// The target Deployment as the revert sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleting {
    /// The target's `spec.replicas` as written (serin scaled it to zero between rollouts).
    pub target_replicas: Option<i32>,
    /// The target's rollout state.
    pub target: WorkloadState,
    /// The primary's `spec.replicas`, the size the target goes back to.
    pub primary_replicas: Option<i32>,
    /// The Canary's `metadata.deletionTimestamp`.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevertStep {
    /// Give the target the primary's replicas (at least one), then look again.
    ScaleTarget { replicas: i32 },
    /// The target's pods are not all ready yet and the deadline has not passed: look again.
    WaitForTarget,
    /// Point the apex Service and the route back at the target and release the finalizer. Also
    /// taken at the deadline with the target still not ready: a deleted Canary must not hold its
    /// finalizer forever, and the primary goes with the Canary either way.
    Restore,
}

/// The next step of the revert at `now`. `progress_deadline` is the Canary's
/// `progressDeadlineSeconds`, counted in whole seconds since the deletion.
pub fn revert_step(
    deleting: &Deleting,
    progress_deadline: Duration,
    now: DateTime<Utc>,
) -> RevertStep {
    let replicas = deleting.target_replicas.unwrap_or(0);
    if replicas == 0 {
        let wanted = deleting.primary_replicas.unwrap_or(1).max(1);
        return RevertStep::ScaleTarget { replicas: wanted };
    }
    let deadline = progress_deadline.as_std().as_secs() as i64;
    let deleting_for = deleting
        .deleted_at
        .map_or(0, |t| now.timestamp() - t.timestamp());
    if !deleting.target.is_ready(100) && deleting_for < deadline {
        return RevertStep::WaitForTarget;
    }
    RevertStep::Restore
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_268_800 + seconds, 0).unwrap()
    }

    fn ten_minutes() -> Duration {
        Duration::from_secs(600)
    }

    fn target(replicas: i32, available: i32) -> WorkloadState {
        WorkloadState {
            replicas,
            updated: replicas,
            ready: available,
            available,
            current: true,
            revision: None,
        }
    }

    fn deleting(target_replicas: Option<i32>, available: i32) -> Deleting {
        Deleting {
            target_replicas,
            target: target(target_replicas.unwrap_or(1), available),
            primary_replicas: Some(3),
            deleted_at: Some(at(0)),
        }
    }

    #[test]
    fn a_target_at_zero_gets_the_primarys_replicas_back() {
        assert_eq!(
            revert_step(&deleting(Some(0), 0), ten_minutes(), at(1)),
            RevertStep::ScaleTarget { replicas: 3 }
        );
        let without_primary = Deleting {
            primary_replicas: None,
            ..deleting(None, 0)
        };
        assert_eq!(
            revert_step(&without_primary, ten_minutes(), at(1)),
            RevertStep::ScaleTarget { replicas: 1 },
            "an unset count is zero, and the target gets at least one replica"
        );
        let primary_at_zero = Deleting {
            primary_replicas: Some(0),
            ..deleting(Some(0), 0)
        };
        assert_eq!(
            revert_step(&primary_at_zero, ten_minutes(), at(1)),
            RevertStep::ScaleTarget { replicas: 1 }
        );
    }

    #[test]
    fn the_revert_waits_for_the_targets_pods_until_the_deadline() {
        let unready = deleting(Some(3), 2);
        assert_eq!(
            revert_step(&unready, ten_minutes(), at(599)),
            RevertStep::WaitForTarget
        );
        assert_eq!(
            revert_step(&unready, ten_minutes(), at(600)),
            RevertStep::Restore,
            "at the deadline the route goes back to the target, ready or not"
        );
    }

    #[test]
    fn a_ready_target_is_restored_at_once() {
        assert_eq!(
            revert_step(&deleting(Some(3), 3), ten_minutes(), at(1)),
            RevertStep::Restore
        );
    }

    #[test]
    fn without_a_deletion_time_the_deadline_never_passes() {
        let unready = Deleting {
            deleted_at: None,
            ..deleting(Some(3), 0)
        };
        assert_eq!(
            revert_step(&unready, ten_minutes(), at(100_000)),
            RevertStep::WaitForTarget
        );
    }
}
