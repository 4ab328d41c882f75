//! `MetricTemplate`: a query, with its provider, that a Canary's metric refers to by name.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Duration;
use super::canary::SecretRef;
pub use super::metric_provider::MetricProviderKind;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "serin.dev",
    version = "v1beta1",
    kind = "MetricTemplate",
    namespaced,
    category = "serin",
    derive = "PartialEq",
    doc = "A metric query and its provider, referenced by Canary metrics through templateRef.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider.type")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateSpec {
    pub provider: MetricProvider,
    /// The query, with variables such as `{{ namespace }}`, `{{ target }}`, `{{ interval }}`
    /// and `{{ variables.KEY }}`.
    #[schemars(length(min = 1))]
    pub query: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// prometheus (and Prometheus-compatible servers: Thanos, Mimir, VictoriaMetrics),
    /// graphite or influxdb.
    #[serde(rename = "type")]
    pub kind: MetricProviderKind,
    /// Base URL; for prometheus it defaults to the Canary's `spec.metricsServer`, then the
    /// controller's `--metrics-server`; graphite and influxdb need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A Secret (in the template's namespace) with `username` and `password` for basic auth or
    /// `token` for a bearer token (influxdb: also `org` and `database`), and optionally
    /// `ca.crt`: a PEM CA bundle to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Skip TLS verification. Opt-in and logged as a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Extra request headers (for example a tenant header such as `X-Scope-OrgID` for Mimir).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// How long one query may take. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}
