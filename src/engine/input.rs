//! What the engine is told: the observed state of the workloads, manual requests, and the
//! results of the checks the shell ran. Plain data, filled by the controller from the cluster
//! or by the simulator from its script.

use std::collections::BTreeMap;

use crate::api::canary::HookKind;
use crate::api::status::{CanaryStatus, Phase};

/// The world as observed at the start of one reconcile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observations {
    /// `metadata.generation` of the Canary.
    pub generation: i64,
    /// The user's Deployment; None when it does not exist.
    pub target: Option<Target>,
    /// The `-primary` Deployment; None before initialization.
    pub primary: Option<WorkloadState>,
    /// A manual request found on the Canary's annotations.
    pub request: Option<ManualRequest>,
    /// What a primary serin did not make runs (Flagger's, before the switch): None when the
    /// primary carries serin's revision, or there is none.
    pub foreign_primary: Option<ForeignPrimary>,
}

/// A primary made by another controller (Flagger), compared with the target: another
/// controller's status names revisions by its own hash, which serin cannot compare with its
/// own, so the pod templates are compared instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignPrimary {
    /// It runs the target's pod template: nothing to roll out.
    RunsTarget,
    /// It runs another one.
    RunsOther,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Target {
    /// Identity of what the target would run: its pod template and tracked configs.
    pub revision: String,
    /// Checksums of the ConfigMaps/Secrets its pods reference.
    pub configs: BTreeMap<String, String>,
    /// The target Deployment's own pods: the canary.
    pub state: WorkloadState,
}

/// A Deployment's rollout state, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadState {
    /// `spec.replicas`.
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// `status.observedGeneration == metadata.generation`: the status describes the spec.
    pub current: bool,
    /// The revision serin last wrote to it (primary only).
    pub revision: Option<String>,
}

impl WorkloadState {
    /// All replicas run the latest template and at least `threshold` percent are available.
    pub fn is_ready(&self, threshold: i32) -> bool {
        self.current
            && self.replicas > 0
            && self.updated >= self.replicas
            && i64::from(self.available) * 100 >= i64::from(self.replicas) * i64::from(threshold)
    }

    /// "2/3 ready", and what else keeps it from being ready, for messages: pods not yet
    /// updated to the latest template, or a status not yet observed for the latest spec
    /// ("2/2 ready" alone must never explain "not ready").
    pub fn progress(&self) -> String {
        let ready = format!(
            "{}/{} ready",
            self.available.min(self.replicas),
            self.replicas
        );
        let mut missing = Vec::new();
        if self.current && self.replicas <= 0 {
            missing.push(
                "no pod is wanted: scaled to zero, or (a DaemonSet) no node its node selector and tolerations allow"
                    .to_string(),
            );
        }
        if !self.current {
            missing.push(
                "its status does not describe the latest spec yet (observedGeneration behind)"
                    .to_string(),
            );
        }
        if self.updated < self.replicas {
            missing.push(format!(
                "{}/{} updated to the latest template",
                self.updated.max(0),
                self.replicas
            ));
        }
        if missing.is_empty() {
            ready
        } else {
            format!("{ready}; {}", missing.join("; "))
        }
    }
}

/// A request made through the Canary's annotations (`serin.dev/request`, `serin.dev/request-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRequest {
    /// Acted on once per id; without `request-id` the action name is the id.
    pub id: String,
    pub action: Result<RequestAction, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    /// Skip the rest of the analysis and promote (`serin promote --full`).
    Promote,
    /// Move one step forward now (`serin promote`, Argo Rollouts' meaning): the next traffic
    /// weight or iteration, or the promotion from the last one.
    Step,
    Abort,
    Retry,
    Pause,
    Resume,
}

impl RequestAction {
    pub const ALL: [Self; 6] = [
        Self::Promote,
        Self::Step,
        Self::Abort,
        Self::Retry,
        Self::Pause,
        Self::Resume,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Step => "step",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }

    /// The phases this request acts in: the one rule the engine follows and `serin promote`
    /// (and the other request commands) check before asking, so they cannot disagree. Err
    /// says why a request would be ignored. (A retry of a revision the target was reverted
    /// to is also ignored; that depends on the target, which the engine alone sees.)
    pub fn acts_in(self, phase: Option<Phase>) -> Result<(), String> {
        const ANALYSIS: &str = "Waiting, Progressing or WaitingPromotion";
        let (acts, when) = match self {
            Self::Pause | Self::Resume => (true, "any phase"),
            Self::Promote => (
                matches!(
                    phase,
                    Some(Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion)
                ),
                ANALYSIS,
            ),
            // Before the analysis starts there is no step to move from.
            Self::Step => (
                matches!(phase, Some(Phase::Progressing | Phase::WaitingPromotion)),
                "Progressing or WaitingPromotion",
            ),
            Self::Abort => (
                matches!(
                    phase,
                    Some(
                        Phase::Waiting
                            | Phase::Progressing
                            | Phase::WaitingPromotion
                            | Phase::Promoting
                            | Phase::Finalising
                    )
                ),
                "a rollout under way (Waiting, Progressing, WaitingPromotion, Promoting or Finalising)",
            ),
            Self::Retry => (phase == Some(Phase::Failed), "Failed"),
        };
        if acts {
            return Ok(());
        }
        Err(format!(
            "{} does not apply in phase {}: it acts in {when}",
            self.as_str(),
            phase.map_or("(new)", Phase::as_str)
        ))
    }
}

impl RequestAction {
    /// Whether the request would do anything to a Canary in this status: its phase
    /// ([`Self::acts_in`]), and what else the engine needs to act on it (a pause of a paused
    /// rollout, a resume of a running one, a step before the first step are no-ops). The
    /// engine drops a request this refuses with a `RequestIgnored` event, and the CLI does not
    /// send it, so the two agree.
    pub fn applies_to(self, status: &CanaryStatus) -> Result<(), String> {
        self.acts_in(status.phase)?;
        let nothing_to_do = match self {
            Self::Pause if status.paused => "the rollout is paused already",
            Self::Resume if !status.paused => "the rollout is not paused",
            Self::Step
                if status.phase == Some(Phase::Progressing) && status.current_step.is_none() =>
            {
                "the first analysis has not moved traffic yet: there is no step to leave"
            }
            _ => return Ok(()),
        };
        Err(format!("{} does not apply: {nothing_to_do}", self.as_str()))
    }
}

impl ManualRequest {
    /// Reads the annotations' values; an unknown action is kept as an error to report.
    pub fn parse(action: &str, id: Option<&str>) -> Self {
        let action = action.trim();
        let parsed = RequestAction::ALL
            .into_iter()
            .find(|a| a.as_str() == action)
            .ok_or_else(|| action.to_string());
        Self {
            id: id.unwrap_or(action).to_string(),
            action: parsed,
        }
    }
}

/// Results of the checks the shell ran for this reconcile (see `engine::due_checks`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckResults {
    pub hooks: Vec<HookOutcome>,
    pub metrics: Vec<MetricSample>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub name: String,
    pub kind: HookKind,
    /// The hook answered with success (2xx).
    pub passed: bool,
    /// Status code and the start of the body, or the transport error.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub name: String,
    pub value: Sample,
    /// The rendered query, shown to users.
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Value(f64),
    /// The canary's and the primary's values over the analysis window, for the judge.
    Compared {
        canary: Vec<f64>,
        primary: Vec<f64>,
    },
    NoData,
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_acts_in_its_phases_and_says_why_not() {
        let acting = |action: RequestAction| -> Vec<Phase> {
            Phase::ALL
                .into_iter()
                .filter(|p| action.acts_in(Some(*p)).is_ok())
                .collect()
        };
        use Phase::*;
        assert_eq!(
            acting(RequestAction::Promote),
            [Waiting, Progressing, WaitingPromotion]
        );
        assert_eq!(acting(RequestAction::Step), [Progressing, WaitingPromotion]);
        assert_eq!(
            acting(RequestAction::Abort),
            [
                Waiting,
                Progressing,
                WaitingPromotion,
                Promoting,
                Finalising
            ]
        );
        assert_eq!(acting(RequestAction::Retry), [Failed]);
        assert_eq!(acting(RequestAction::Pause), Phase::ALL);
        let paused = CanaryStatus {
            phase: Some(Progressing),
            paused: true,
            current_step: Some(0),
            ..CanaryStatus::default()
        };
        assert_eq!(RequestAction::Resume.applies_to(&paused), Ok(()));
        assert!(RequestAction::Pause.applies_to(&paused).is_err());
        assert_eq!(RequestAction::Step.applies_to(&paused), Ok(()));
        let running = CanaryStatus {
            paused: false,
            current_step: None,
            ..paused
        };
        assert_eq!(
            RequestAction::Resume.applies_to(&running),
            Err("resume does not apply: the rollout is not paused".into())
        );
        assert!(RequestAction::Step.applies_to(&running).is_err());
        assert_eq!(
            RequestAction::Promote.acts_in(None),
            Err("promote does not apply in phase (new): it acts in Waiting, Progressing or WaitingPromotion".into())
        );
    }
}
