//! Where a rollout stands. Everything the engine needs to continue a rollout after a restart is
//! here, never only in memory.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::api::history::{FailedCheck, Outcome, RolloutRecord};

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "phase_schema")]
    pub phase: Option<Phase>,
    /// The Canary generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Percent of traffic on the canary.
    #[serde(default)]
    pub canary_weight: i32,
    /// Failed checks in the current analysis (never reset within one run).
    #[serde(default)]
    pub failed_checks: i32,
    /// Passed analysis ticks (A/B and blue/green).
    #[serde(default)]
    pub iterations: i32,
    /// Revision (pod template and tracked configs) of the target under analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    /// Revision the primary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    /// Checksums of the ConfigMaps and Secrets the target references (`configmap/NAME` keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tracked_configs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Flagger's session-affinity cookies (`name=value`), kept as Flagger wrote them so a
    /// status taken over from Flagger is not lost; serin's cookies are named by the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_session_affinity_cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_session_affinity_cookie: Option<String>,
    /// serin: index of the current traffic step (0-based); absent before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<i32>,
    /// serin: when the current step began (for step pauses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// serin: when the last analysis tick ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_analysis_time: Option<DateTime<Utc>>,
    /// serin: since when the rollout waits for pods to become ready or for metric data; the
    /// progress deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// serin: since when metrics with `onNoData: wait` returned nothing; the progress deadline
    /// counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data_since: Option<DateTime<Utc>>,
    /// serin: since when the rollout is frozen (suspend or a pause request); timers resume
    /// shifted by the frozen time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_since: Option<DateTime<Utc>>,
    /// serin: paused by a `pause` request until a `resume` request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// serin: id of the last manual request acted on, so each is acted on once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_request: Option<String>,
    /// serin: the latest result of every check, so a user sees why the rollout moved or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckStatus>,
    /// serin: the rollout under way (revision, start, steps reached so far); it moves to
    /// `history` when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rollout: Option<RolloutRecord>,
    /// serin: the last rollouts that ended, newest first (at most
    /// [`crate::api::history::MAX_ROLLOUTS`], each bounded in size), so a rollback is
    /// explained after its events expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RolloutRecord>,
}

/// The phase's schema: a string enum. Derived for `Option<Phase>`, it would list `null` among
/// the values, which the API server refuses (and kubectl's validation reports).
fn phase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
    Terminating,
    Terminated,
}

impl Phase {
    pub const ALL: [Self; 11] = [
        Self::Initializing,
        Self::Initialized,
        Self::Waiting,
        Self::Progressing,
        Self::WaitingPromotion,
        Self::Promoting,
        Self::Finalising,
        Self::Succeeded,
        Self::Failed,
        Self::Terminating,
        Self::Terminated,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "Initializing",
            Self::Initialized => "Initialized",
            Self::Waiting => "Waiting",
            Self::Progressing => "Progressing",
            Self::WaitingPromotion => "WaitingPromotion",
            Self::Promoting => "Promoting",
            Self::Finalising => "Finalising",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Terminating => "Terminating",
            Self::Terminated => "Terminated",
        }
    }

    /// A phase in which no rollout is under way: the primary serves all traffic.
    pub const fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Initialized | Self::Succeeded | Self::Failed | Self::Terminated
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status condition in the Kubernetes convention. serin keeps Flagger's `Promoted` and the
/// kstatus trio `Ready` / `Reconciling` / `Stalled` that Flux and Argo CD health checks read.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// True, False or Unknown.
    pub status: String,
    pub reason: String,
    // Read leniently, but no schema default: Kubernetes 1.20 receives an empty-string default
    // as null and refuses the CRD.
    #[serde(default)]
    #[schemars(transform = crate::api::schema::no_default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// The latest result of one check (a metric or a webhook).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    pub name: String,
    pub kind: CheckKind,
    pub result: CheckResult,
    /// The measured value (metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The rendered query (metrics), as sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// serin: the judge's statistics, for metrics compared with the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<Judgement>,
    pub time: DateTime<Utc>,
}

/// Every statistic of one comparison of canary and primary (see docs/metrics.md).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// Pass, High, Low or NoData.
    pub class: String,
    pub canary_count: i64,
    pub primary_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_mean: Option<f64>,
    /// Relative change of the mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// Mean ratio canary / primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Hodges-Lehmann shift and its confidence interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_lower: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_upper: Option<f64>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CheckKind {
    Metric,
    Webhook,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CheckResult {
    /// Within bounds / the hook said yes.
    Pass,
    /// Out of bounds / the hook said no or failed.
    Fail,
    /// The query returned nothing.
    NoData,
    /// The check could not be run (query error, unreachable hook).
    Error,
}

impl CheckResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Fail => "Fail",
            Self::NoData => "NoData",
            Self::Error => "Error",
        }
    }
}
