//! `serin wait NAME --for=promoted|failed|settled --timeout 15m`: blocks a pipeline until the
//! rollout of the target's *current* revision ends. The revision is computed from the target's
//! pod template the way the controller computes it, so a `serin wait` run right after
//! `kubectl apply` does not return the previous release's result.
//!
//! While it waits, a line on stderr for every change of phase or canary weight, so a
//! pipeline's log shows where a slow rollout stands.
//!
//! Exit codes: 0 the awaited outcome happened, 1 the rollout ended the other way, 2 timeout or
//! error (see docs/cli.md).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use crate::api::{Canary, CanaryStatus, Phase};
use crate::workload::revision;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The current revision was promoted (phase Succeeded).
    Promoted,
    /// The current revision was rolled back (phase Failed).
    Failed,
    /// No rollout under way: promoted, rolled back or nothing to roll out.
    Settled,
}

/// What the wait ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The awaited outcome; the message says which phase.
    Met(String),
    /// The rollout ended the other way.
    Other(String),
}

/// Where the rollout of `revision` stands: None while it is under way or not yet seen.
pub fn verdict(status: &CanaryStatus, revision: Option<&str>, want: Outcome) -> Option<Ended> {
    let phase = status.phase?;
    // The controller has not seen the current revision yet: the status is about an older one.
    if let Some(revision) = revision {
        let about = match phase {
            Phase::Initialized | Phase::Succeeded => status.last_promoted_spec.as_deref(),
            _ => status.last_applied_spec.as_deref(),
        };
        if about != Some(revision) {
            return None;
        }
    }
    let text = |what: &str| format!("{what} (phase {phase})");
    match (phase, want) {
        (Phase::Succeeded, Outcome::Promoted | Outcome::Settled) => {
            Some(Ended::Met(text("promoted")))
        }
        (Phase::Initialized, Outcome::Settled) => Some(Ended::Met(text("nothing to roll out"))),
        (Phase::Failed, Outcome::Failed) => Some(Ended::Met(text("rolled back"))),
        (Phase::Succeeded, Outcome::Failed) => Some(Ended::Other(text("promoted"))),
        (Phase::Failed, Outcome::Promoted | Outcome::Settled) => {
            Some(Ended::Other(text("rolled back")))
        }
        // Initialized with the current revision promoted: the revision is the primary's.
        (Phase::Initialized, Outcome::Promoted) => Some(Ended::Met(text("already the primary"))),
        (Phase::Initialized, Outcome::Failed) => Some(Ended::Other(text("already the primary"))),
        _ => None,
    }
}

/// Where the rollout stands, as one line of progress: the phase and the canary's weight.
pub fn progress(status: &CanaryStatus) -> String {
    let phase = status.phase.map_or("(new)", Phase::as_str);
    let paused = if status.paused { " (paused)" } else { "" };
    format!(
        "phase {phase}{paused}, canary weight {}%",
        status.canary_weight
    )
}

/// The revision of the target's pod template as the controller computes it; None when the
/// target does not exist.
pub async fn target_revision(
    deployments: &Api<Deployment>,
    canary: &Canary,
) -> anyhow::Result<Option<String>> {
    let status = canary.status.clone().unwrap_or_default();
    let target = deployments.get_opt(&canary.spec.target_ref.name).await?;
    Ok(target.map(|d| {
        let template = d.spec.as_ref().map(|s| &s.template);
        revision::of(&template, &status.tracked_configs)
    }))
}

/// Waits; Ok(Some(ended)) or Ok(None) on timeout.
pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    want: Outcome,
    timeout: Duration,
) -> anyhow::Result<Option<Ended>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    // Checked once up front: the watch would wait silently for a Canary that never comes.
    let found = super::canaries::get(&client, namespace, name).await?;
    let wait = async {
        let mut stream = super::canaries::watch(&client, namespace, &found).boxed();
        let mut shown = String::new();
        while let Some(event) = stream.next().await {
            let canary = match event {
                Ok(found) => found.canary,
                Err(error) => {
                    eprintln!("{error}");
                    continue;
                }
            };
            let status = canary.status.clone().unwrap_or_default();
            let now = progress(&status);
            if now != shown {
                eprintln!("canary {namespace}/{name}: {now}");
                shown = now;
            }
            let revision = target_revision(&deployments, &canary).await?;
            if let Some(ended) = verdict(&status, revision.as_deref(), want) {
                return Ok::<_, anyhow::Error>(Some(ended));
            }
        }
        // The watch stream does not end; only the timeout stops an unfinished wait.
        Ok(None)
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: Phase, applied: &str, promoted: &str) -> CanaryStatus {
        CanaryStatus {
            phase: Some(phase),
            last_applied_spec: Some(applied.into()),
            last_promoted_spec: Some(promoted.into()),
            ..CanaryStatus::default()
        }
    }

    #[test]
    fn an_old_release_result_is_not_the_answer() {
        // Just applied r2; the status still says r1 was promoted.
        let s = status(Phase::Succeeded, "r1", "r1");
        assert_eq!(verdict(&s, Some("r2"), Outcome::Promoted), None);
        let s = status(Phase::Progressing, "r2", "r1");
        assert_eq!(verdict(&s, Some("r2"), Outcome::Promoted), None);
        let s = status(Phase::Succeeded, "r2", "r2");
        assert!(matches!(
            verdict(&s, Some("r2"), Outcome::Promoted),
            Some(Ended::Met(_))
        ));
    }

    #[test]
    fn progress_names_the_phase_the_weight_and_a_pause() {
        let mut s = status(Phase::Progressing, "r2", "r1");
        s.canary_weight = 25;
        assert_eq!(progress(&s), "phase Progressing, canary weight 25%");
        s.paused = true;
        assert_eq!(
            progress(&s),
            "phase Progressing (paused), canary weight 25%"
        );
        assert_eq!(
            progress(&CanaryStatus::default()),
            "phase (new), canary weight 0%"
        );
    }

    #[test]
    fn the_other_outcome_ends_the_wait() {
        let s = status(Phase::Failed, "r2", "r1");
        assert!(matches!(
            verdict(&s, Some("r2"), Outcome::Promoted),
            Some(Ended::Other(_))
        ));
        assert!(matches!(
            verdict(&s, Some("r2"), Outcome::Failed),
            Some(Ended::Met(_))
        ));
        assert!(matches!(
            verdict(&s, Some("r2"), Outcome::Settled),
            Some(Ended::Other(_))
        ));
        let s = status(Phase::Succeeded, "r2", "r2");
        assert!(matches!(
            verdict(&s, Some("r2"), Outcome::Failed),
            Some(Ended::Other(_))
        ));
    }
}
