//! The `Canary` resource: what to roll out (targetRef), how traffic reaches it (service,
//! provider), how it is judged (analysis) and where the rollout stands (status).
//!
//! Field names and defaults follow Flagger's `flagger.app/v1beta1`, so migrating a manifest is a
//! change of apiVersion. serin's additions are marked "serin:" in their docs.

// kube's `printcolumn(name = .., type_ = ..)` repeats keys once per column by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::schema::{int_or_string, preserve_unknown};
use super::status::CanaryStatus;

/// Default analysis interval (Flagger's).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default progress deadline in seconds (Flagger's).
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// The shortest analysis interval accepted. Metric queries want longer windows (the default
/// is 1m); short intervals serve webhook-only gates and tests.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "serin.dev",
    version = "v1beta1",
    kind = "Canary",
    namespaced,
    status = "CanaryStatus",
    shortname = "cn",
    category = "serin",
    derive = "PartialEq",
    doc = "A Canary turns every change of its target's pod template into a gradual, analysed rollout.",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".status.canaryWeight"),
    printcolumn(
        name = "FailedChecks",
        type_ = "integer",
        json_path = ".status.failedChecks",
        priority = "1"
    ),
    printcolumn(
        name = "LastTransitionTime",
        type_ = "string",
        json_path = ".status.lastTransitionTime"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Traffic provider: kubernetes, gatewayapi, istio, linkerd, nginx... Defaults to the
    /// controller's `--mesh-provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Address of the metrics server used by the built-in metrics. Defaults to the controller's
    /// `--metrics-server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,
    /// The workload rolled out, in the Canary's namespace: a Deployment, DaemonSet,
    /// StatefulSet, or a Knative Service (`serving.knative.dev/v1`, with the knative provider).
    pub target_ref: TargetRef,
    /// The target's autoscaler (a HorizontalPodAutoscaler or a KEDA ScaledObject); serin gives
    /// the primary a `-primary` copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<AutoscalerRef>,
    /// The Ingress the nginx and skipper providers clone (other providers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<ObjectRef>,
    /// An existing route (HTTPRoute, VirtualService...) to take over instead of generating one;
    /// for the apisix provider, the ApisixRoute whose rule to the apex service it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ref: Option<ObjectRef>,
    /// A Gloo Upstream whose connection settings the gloo provider's Upstreams copy, as in
    /// Flagger; ignored with a warning with other providers, as Flagger ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ref: Option<ObjectRef>,
    /// How the workload is exposed: the apex, primary and canary services and the route.
    /// Required but for a Knative Service target, which Knative's own routes expose.
    // Absent, it is written as absent: an empty one would carry port 0, which the port's
    // schema refuses (and so it gets no schema default either).
    #[serde(default, skip_serializing_if = "CanaryService::is_absent")]
    #[schemars(transform = crate::api::schema::no_default)]
    pub service: CanaryService,
    /// How the rollout is analysed and advanced.
    pub analysis: Analysis,
    /// Seconds a rollout may wait for pods to become ready, in any phase, before it is rolled
    /// back. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,
    /// Promote a new revision at once, without analysis.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_analysis: bool,
    /// Freeze the rollout where it stands: no step, no promotion, no rollback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// When the Canary is deleted, give the target back its replicas and restore the original
    /// services and route.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revert_on_deletion: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    #[serde(default = "apps_v1")]
    pub api_version: String,
    #[serde(default = "deployment_kind")]
    pub kind: String,
    #[schemars(length(min = 1))]
    pub name: String,
}

fn apps_v1() -> String {
    "apps/v1".into()
}

fn deployment_kind() -> String {
    "Deployment".into()
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerRef {
    #[serde(default = "autoscaling_v2")]
    pub api_version: String,
    #[serde(default = "hpa_kind")]
    pub kind: String,
    #[schemars(length(min = 1))]
    pub name: String,
    /// The primary's own replica bounds, over the target autoscaler's: `minReplicas` and
    /// `maxReplicas` of its HorizontalPodAutoscaler, `minReplicaCount` and `maxReplicaCount`
    /// of its ScaledObject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_replicas: Option<ScalerReplicas>,
    /// KEDA ScaledObjects only: the primary's trigger queries by trigger name, replacing
    /// `metadata.query` of the target's trigger of that name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub primary_scaler_queries: BTreeMap<String, String>,
    /// serin: when the primary's autoscaler takes the target's spec. `release` (default, as
    /// Flagger): when the primary is created and at each promotion, so an autoscaler change
    /// rolls out with the next release; `always`: at every reconcile.
    #[serde(default, skip_serializing_if = "is_default")]
    pub primary_scaler_sync: ScalerSync,
}

/// When the primary's autoscaler follows the target's.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScalerSync {
    /// When the primary is created and at each promotion.
    #[default]
    Release,
    /// At every reconcile, between rollouts too.
    Always,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn autoscaling_v2() -> String {
    "autoscaling/v2".into()
}

fn hpa_kind() -> String {
    "HorizontalPodAutoscaler".into()
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerReplicas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

/// A reference to another object, optionally in another namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryService {
    /// Name of the apex service; defaults to the target's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port of the services.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Container port the services target (number or name); defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub target_port: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Also expose every other container port of the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub port_discovery: bool,
    /// Request timeout on the route, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Timeout of one request from the gateway to a backend (Gateway API's
    /// `timeouts.backendRequest`); at most `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_timeout: Option<Duration>,
    /// Istio gateways the VirtualService is bound to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Gateway API parent gateways of the HTTPRoute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_refs: Vec<GatewayRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Request matches every route serves (not the A/B matches, which live in analysis.match).
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderOperations>,
    /// Backends every request is copied to, their answers dropped (Gateway API
    /// RequestMirror filters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirror: Vec<RequestMirror>,
    /// Passed through to the mesh as written (Istio CorsPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub cors_policy: Option<serde_json::Value>,
    /// Passed through to the mesh as written (Istio TrafficPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub traffic_policy: Option<serde_json::Value>,
    /// Labels and annotations of the generated apex service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apex: Option<ObjectMetadata>,
    /// Labels and annotations of the generated primary service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<ObjectMetadata>,
    /// Labels and annotations of the generated canary service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<ObjectMetadata>,
    /// Label and annotation keys of the generated services serin never sets (another tool
    /// owns them). serin writes by server-side apply, so keys it does not set are never
    /// touched anyway; the ones listed here are also left out of what it sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_metadata: Option<UnmanagedMetadata>,
    /// Generated services are headless (`clusterIP: None`), as Flagger makes them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headless: bool,
    /// `spec.trafficDistribution` of the generated services (e.g. `PreferClose`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
    /// Istio: write the VirtualService as a delegate (no hosts or gateways), for a root
    /// VirtualService owned by someone else to delegate to. Other providers ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delegation: bool,
    /// Flagger's App Mesh mesh. Only the appmesh provider read it (retired upstream, refused
    /// by serin); ignored with a warning, as Flagger ignores it elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_name: Option<String>,
    /// Flagger's App Mesh virtual node backends; ignored with a warning, like `meshName`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<String>,
    /// The objects the `template` provider writes, with `${...}` placeholders for the
    /// weights, services, A/B match and mirror (docs/routing.md, Route templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_template: Option<super::route_template::RouteTemplate>,
}

/// Metadata keys of the generated objects serin leaves to others.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct UnmanagedMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// The parent's API group: `gateway.networking.k8s.io` (default) for a Gateway, `core`
    /// or `""` for a Service (GAMMA mesh routing, as Linkerd 2.12+ and Istio do it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Gateway` (default) or `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct ObjectMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An HTTP request match in Istio's shape (Flagger uses the same).
// Unknown keys are refused: a misspelt condition (`header:` for `headers:`) dropped silently
// would leave a match that takes every request.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::api::schema::open_object)]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    // Istio's other match conditions, which Flagger passes through: written by the istio
    // router, refused by the other providers (`provider::admit`), never dropped (a dropped
    // condition widens the match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_uri_case: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_headers: BTreeMap<String, StringMatch>,
}

impl HttpMatch {
    /// The Istio-only conditions that are set, by their manifest names.
    pub fn istio_conditions(&self) -> Vec<&'static str> {
        [
            ("authority", self.authority.is_some()),
            ("gateways", !self.gateways.is_empty()),
            ("ignoreUriCase", self.ignore_uri_case),
            ("name", self.name.is_some()),
            ("port", self.port.is_some()),
            ("scheme", self.scheme.is_some()),
            ("sourceNamespace", self.source_namespace.is_some()),
            ("withoutHeaders", !self.without_headers.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Exactly one of exact, prefix, suffix or regex.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::api::schema::open_object)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Gateway API: how `uri` rewrites the path, `ReplaceFullPath` (default) or
    /// `ReplacePrefixMatch`. Istio rewrites the matched prefix always and ignores it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A Gateway API RequestMirror filter: requests copied to `backendRef`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestMirror {
    pub backend_ref: MirrorBackend,
    /// Percent of requests copied (Gateway API 1.2+); default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub percent: Option<i32>,
}

/// The backend a mirror copies requests to: a Service (default) or any backend kind the
/// gateway implements.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MirrorBackend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct HeaderOperations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperation>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct HeaderOperation {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Time between two analysis ticks. Default 60s, at least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Failed checks tolerated before rollback. Default 1 (also when 0, as Flagger reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub threshold: Option<i32>,
    /// Highest canary weight before promotion. Default 100 (also when 0, as Flagger reads
    /// it). Not consulted with stepWeights, whose last step is the highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_weight: Option<i32>,
    /// Canary weight added at each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub step_weight: Option<i32>,
    /// Explicit increasing canary weights, instead of stepWeight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 1, max = 100)))]
    pub step_weights: Vec<i32>,
    /// serin: explicit steps with a pause each, instead of stepWeight/stepWeights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<WeightStep>,
    /// Primary weight added at each step of the traffic shift back after promotion. Default:
    /// all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub step_weight_promotion: Option<i32>,
    /// Number of passing analysis ticks before promotion (A/B and blue/green). Set, it
    /// chooses the strategy: the weight fields beside it are ignored (Flagger's order); 0 is
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub iterations: Option<i32>,
    /// Mirror traffic to the canary (blue/green).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
    /// Percentage of traffic mirrored (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub mirror_weight: Option<i32>,
    /// Requests that go to the canary during an A/B rollout.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinity>,
    /// Percent of primary pods that must be ready. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub primary_ready_threshold: Option<i32>,
    /// Percent of canary pods that must be ready. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub canary_ready_threshold: Option<i32>,
    /// serin: how long a rollout may wait in WaitingPromotion before it is rolled back.
    /// Default: no limit (Flagger's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// serin: how judged metrics add up to a verdict. Default pass 95, marginal 75.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_thresholds: Option<ScoreThresholds>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
}

/// serin: one step of a canary rollout: a weight held for at least `pause`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightStep {
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
    /// Minimum time at this weight (analysis keeps running); default: one interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Duration>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinity {
    #[schemars(length(min = 1))]
    pub cookie_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_cookie_name: Option<String>,
    /// Cookie lifetime in seconds. Default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
    /// The cookies' `Domain` attribute. Default: none (the host that answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The cookies' `Path` attribute. Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The cookies' `SameSite` attribute: Strict, Lax or None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::same_site")]
    pub same_site: Option<SameSite>,
    /// Send the cookies over https only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secure: bool,
    /// Keep the cookies from scripts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http_only: bool,
    /// Store the cookies partitioned by top-level site (CHIPS).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partitioned: bool,
}

/// A cookie's `SameSite` attribute, spelt as in `Set-Cookie` (and Flagger's schema).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// `request-success-rate`, `request-duration`, or any name with a templateRef.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Query window. Default 1m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Deprecated (Flagger's): without thresholdRange, a minimum for `request-success-rate`
    /// and a maximum for every other metric. Read with a warning; `serin migrate` converts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub template_variables: BTreeMap<String, String>,
    /// Inline query (deprecated in Flagger, kept for migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// serin: what an empty query result means. Default fail (Flagger's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_no_data: Option<OnNoData>,
    /// serin: compare the canary's values with the primary's instead of (or besides) fixed
    /// bounds. See docs/metrics.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<MetricJudge>,
}

/// serin: how the statistical judge compares a metric of the canary with the primary's.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricJudge {
    /// Which change is a regression: increase (default), decrease or either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Relative change of the mean tolerated even when significant. Default 0.1 (10%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_change: Option<f64>,
    /// Confidence level of the test, in (0, 1). Default 0.98.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Fewer values on either side is no data. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_samples: Option<i32>,
    /// A regression of this metric rolls back at once, whatever the threshold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Share of this metric in the score across judged metrics. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Resolution of the range queries: one value per step. Default 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Duration>,
    /// How far back the range queries look, never before the rollout started. Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<Duration>,
}

/// Which change of the metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is worse (latency, errors).
    #[default]
    Increase,
    /// Lower is worse (throughput, success rate).
    Decrease,
    /// Any change is suspect.
    Either,
}

/// serin: how the judged metrics add up (Kayenta's score thresholds): the weighted percentage
/// of judged metrics without a regression. At or above `pass` the tick passes; from
/// `marginal` up to `pass` the rollout pauses for a human; below `marginal` it is a failed
/// check.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreThresholds {
    /// Default 95.
    #[serde(default = "ScoreThresholds::default_pass")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub pass: f64,
    /// Default 75.
    #[serde(default = "ScoreThresholds::default_marginal")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub marginal: f64,
}

impl ScoreThresholds {
    fn default_pass() -> f64 {
        95.0
    }
    fn default_marginal() -> f64 {
        75.0
    }
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        Self {
            pass: Self::default_pass(),
            marginal: Self::default_marginal(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Default, JsonSchema)]
pub struct ThresholdRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// What an empty metric result does to the analysis.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnNoData {
    /// Count a failed check (Flagger's "no values found").
    #[default]
    Fail,
    /// Treat the check as passed.
    Skip,
    /// Hold the current step without counting a failure, up to the progress deadline.
    Wait,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[schemars(length(min = 1))]
    pub name: String,
    /// When the hook runs. Default rollout (also when empty, as Flagger reads it).
    #[serde(default, rename = "type")]
    #[schemars(schema_with = "crate::api::schema::hook_kind")]
    pub kind: HookKind,
    #[schemars(length(min = 1))]
    pub url: String,
    /// Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub retries: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// serin: a Secret whose keys become request headers (e.g. Authorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mute_alert: bool,
    /// Do not verify the TLS certificate of an https:// URL (Flagger's `disableTLS`). Opt-in
    /// and logged as a warning at each call.
    #[serde(
        default,
        rename = "disableTLS",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_tls: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    #[schemars(length(min = 1))]
    pub name: String,
}

/// When a webhook runs, and what its answer means.
#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// Gate before the canary is scaled up: holds the rollout in Waiting.
    ConfirmRollout,
    /// Runs once before traffic is shifted; a failure counts as a failed check.
    PreRollout,
    /// Runs at every analysis tick; a failure counts as a failed check. Flagger's default, so
    /// an empty type is this one.
    #[default]
    #[serde(alias = "")]
    Rollout,
    /// Gate before each weight increase.
    ConfirmTrafficIncrease,
    /// Gate before promotion: holds the rollout in WaitingPromotion.
    ConfirmPromotion,
    /// Runs after promotion or rollback; its result is reported, never decides.
    PostRollout,
    /// Polled during analysis: a success rolls the canary back.
    Rollback,
    /// Receives every event serin records about the canary.
    Event,
}

impl HookKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmRollout => "confirm-rollout",
            Self::PreRollout => "pre-rollout",
            Self::Rollout => "rollout",
            Self::ConfirmTrafficIncrease => "confirm-traffic-increase",
            Self::ConfirmPromotion => "confirm-promotion",
            Self::PostRollout => "post-rollout",
            Self::Rollback => "rollback",
            Self::Event => "event",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[schemars(length(min = 1))]
    pub name: String,
    /// Default info (also when empty, as Flagger reads it).
    #[serde(default)]
    #[schemars(schema_with = "crate::api::schema::severity")]
    pub severity: Severity,
    pub provider_ref: ObjectRef,
}

#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    #[serde(alias = "")]
    Info,
    Warn,
    Error,
}

impl CanarySpec {
    /// The apex service name: `service.name`, or the target's name.
    pub fn service_name(&self) -> &str {
        self.service
            .name
            .as_deref()
            .unwrap_or(&self.target_ref.name)
    }

    /// `service.appProtocol: tcp` (any case, as Flagger reads it): routed as TCP connections.
    pub fn is_tcp(&self) -> bool {
        self.service
            .app_protocol
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("tcp"))
    }

    pub fn progress_deadline(&self) -> Duration {
        let secs = self
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }
}

impl CanaryService {
    /// No `service` block at all (a Knative Service target's Canary).
    pub fn is_absent(&self) -> bool {
        *self == Self::default()
    }
}
