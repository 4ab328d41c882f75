//! Every status a Canary showed during a test, recorded from a watch, and the rule that it
//! never went backwards: within one rollout the phase only moves forward and the canary's
//! weight only rises while it is analysed and only falls while traffic returns to the primary;
//! a rollback (Failed) may come from anywhere, and a newer revision starts a new rollout.
//!
//! The watch re-lists after an API server or etcd restart (kube-runtime's default backoff),
//! so a restart loses no more than the statuses that came and went while it was down.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serin::api::Phase;
use serin::api::{Canary, CanaryStatus};

/// The part of a status whose order matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub phase: Option<Phase>,
    pub canary_weight: i32,
    pub failed_checks: i32,
    pub iterations: i32,
    /// The revision under analysis: when it changes, a new rollout starts from zero.
    pub revision: Option<String>,
}

impl Seen {
    fn of(status: &CanaryStatus) -> Self {
        Self {
            phase: status.phase,
            canary_weight: status.canary_weight,
            failed_checks: status.failed_checks,
            iterations: status.iterations,
            revision: status.last_applied_spec.clone(),
        }
    }
}

/// Records the statuses of one Canary until dropped.
pub struct History {
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl History {
    /// Starts watching the Canary `name` in `namespace` (it need not exist yet).
    pub fn record(client: &Client, namespace: &str, name: &str) -> Self {
        let canaries: Api<Canary> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher::watcher(canaries, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let (Ok(Event::Apply(canary)) | Ok(Event::InitApply(canary))) = event else {
                    continue;
                };
                let Some(status) = canary.status.as_ref() else {
                    continue;
                };
                let next = Seen::of(status);
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                if log.last() != Some(&next) {
                    log.push(next);
                }
            }
        });
        Self { seen, task }
    }

    /// Everything seen so far, in order, without repeats.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn phases(&self) -> Vec<Option<Phase>> {
        self.seen().iter().map(|s| s.phase).collect()
    }

    /// Panics naming the first step backwards, with the whole history.
    pub fn assert_never_backwards(&self) {
        let seen = self.seen();
        if let Err(why) = never_backwards(&seen) {
            panic!("the Canary's status went backwards: {why}\nhistory: {seen:#?}");
        }
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a phase stands within one rollout; None for phases that end one (or precede it).
fn rank(phase: Phase) -> Option<u8> {
    Some(match phase {
        Phase::Waiting => 1,
        Phase::Progressing => 2,
        Phase::WaitingPromotion => 3,
        Phase::Promoting => 4,
        Phase::Finalising => 5,
        _ => return None,
    })
}

/// Whether `to` may follow `from`.
fn step_allowed(from: &Seen, to: &Seen) -> Result<(), String> {
    let (Some(before), Some(after)) = (from.phase, to.phase) else {
        return Ok(());
    };
    if from.revision != to.revision && before != Phase::Initializing {
        // A newer revision restarts the analysis from zero (docs/lifecycle.md).
        return Ok(());
    }
    if matches!(
        after,
        Phase::Failed | Phase::Terminating | Phase::Terminated
    ) {
        // A rollback, or a deletion, may come from any phase.
        return Ok(());
    }
    match (rank(before), rank(after)) {
        (Some(from_rank), Some(to_rank)) if to_rank < from_rank => {
            Err(format!("{before:?} went back to {after:?}"))
        }
        (Some(_), Some(_)) => counters_forward(from, to, after),
        // Promotion completes: Succeeded only after Promoting (or Finalising).
        (Some(r), None) if after == Phase::Succeeded && r >= 4 => Ok(()),
        (Some(_), None) => Err(format!("{before:?} went to {after:?}")),
        (None, Some(_)) if before == Phase::Initializing => {
            Err(format!("{after:?} before the primary was initialized"))
        }
        // A rollout starts from a settled phase.
        (None, Some(_)) => Ok(()),
        (None, None) if before == Phase::Initializing => match after {
            Phase::Initializing | Phase::Initialized => Ok(()),
            _ => Err(format!("{after:?} before the primary was initialized")),
        },
        (None, None) if after == Phase::Initializing && before != Phase::Initializing => {
            Err(format!("{before:?} went back to Initializing"))
        }
        (None, None) => Ok(()),
    }
}

/// Within one phase of a rollout: failed checks never fall; the weight only rises during the
/// analysis and only falls while traffic returns to the primary.
fn counters_forward(from: &Seen, to: &Seen, phase: Phase) -> Result<(), String> {
    if to.failed_checks < from.failed_checks {
        return Err(format!(
            "failed checks fell from {} to {} within a rollout",
            from.failed_checks, to.failed_checks
        ));
    }
    let weights = (from.canary_weight, to.canary_weight);
    let handing_back = matches!(phase, Phase::Promoting | Phase::Finalising);
    let before_handing_back = !matches!(from.phase, Some(Phase::Promoting | Phase::Finalising));
    if !handing_back && to.canary_weight < from.canary_weight {
        return Err(format!(
            "canary weight fell {weights:?} during the analysis"
        ));
    }
    if handing_back && !before_handing_back && to.canary_weight > from.canary_weight {
        return Err(format!("canary weight rose {weights:?} while promoting"));
    }
    Ok(())
}

/// Checks every consecutive pair of `seen`.
pub fn never_backwards(seen: &[Seen]) -> Result<(), String> {
    seen.windows(2)
        .try_for_each(|pair| step_allowed(&pair[0], &pair[1]))
}
