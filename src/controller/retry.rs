//! When a Canary whose reconcile failed for a reason a person must fix (a 403, a missing CRD,
//! an admission webhook's refusal) is tried again. Such a failure raises no event serin
//! watches, so it is retried on a timer: every 30 s for its first minute, so a permission
//! granted right away is picked up within half a minute; then at half the time it has lasted,
//! up to every 5 minutes, so thousands of Canaries missing one permission do not keep the API
//! server busy (10,000 of them every 30 s would be over 300 failing requests a second). By
//! time, not by count: other events (the target's) may fail the reconcile many times a
//! minute, and must not push the retry away. A reconcile that succeeds starts over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::Canary;

const BASE: Duration = Duration::from_secs(30);
const LONGEST: Duration = Duration::from_secs(300);

/// Since when each Canary has been failing for a lasting reason.
#[derive(Debug, Default)]
pub struct Retries(Mutex<HashMap<ObjectRef<Canary>, Instant>>);

impl Retries {
    /// One more lasting failure of `canary`: when to try again.
    pub fn failed(&self, canary: &Canary) -> Duration {
        self.failed_at(canary, Instant::now())
    }

    fn failed_at(&self, canary: &Canary, now: Instant) -> Duration {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let since = *map.entry(ObjectRef::from_obj(canary)).or_insert(now);
        delay(now.saturating_duration_since(since))
    }

    /// `canary` reconciled: its next failure starts again at the base interval.
    pub fn succeeded(&self, canary: &Canary) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !map.is_empty() {
            map.remove(&ObjectRef::from_obj(canary));
        }
    }
}

/// The wait after a failure that has lasted `failing`.
fn delay(failing: Duration) -> Duration {
    (failing / 2).clamp(BASE, LONGEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_retried_every_30_s_at_first_then_less_often_up_to_5_minutes() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let waits: Vec<u64> = [0, 1, 2, 4, 8, 10, 60]
            .into_iter()
            .map(|m| delay(minutes(m)).as_secs())
            .collect();
        assert_eq!(waits, [30, 30, 60, 120, 240, 300, 300]);
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let canary: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "analysis": {"interval": "1m"}},
        }))
        .unwrap();
        let retries = Retries::default();
        let start = Instant::now();
        assert_eq!(retries.failed_at(&canary, start), BASE);
        let later = start + Duration::from_secs(600);
        assert_eq!(retries.failed_at(&canary, later), LONGEST);
        retries.succeeded(&canary);
        assert_eq!(retries.failed_at(&canary, later), BASE);
    }
}
