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
    /// graphite, influxdb, datadog, newrelic, cloudwatch, dynatrace, splunk or externalmetrics.
    #[serde(rename = "type")]
    pub kind: MetricProviderKind,
    /// Base URL; for prometheus it defaults to the Canary's `spec.metricsServer`, then the
    /// controller's `--metrics-server`; graphite, influxdb, dynatrace, splunk and externalmetrics need it; datadog and newrelic
    /// default to the service's API (`https://api.datadoghq.com`,
    /// `https://insights-api.newrelic.com`); cloudwatch to its region's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A Secret (in the template's namespace) with `username` and `password` for basic auth or
    /// `token` for a bearer token (prometheus, influxdb, externalmetrics; influxdb: also `org`
    /// and `database`; datadog: `datadog_api_key` and `datadog_application_key`; newrelic:
    /// `newrelic_query_key` and `newrelic_account_id`; cloudwatch: `aws_access_key_id`, `aws_secret_access_key` and
    /// optionally `aws_session_token`; dynatrace: `dynatrace_token`; splunk: `sf_token_key`), and
    /// optionally `ca.crt`: a PEM CA bundle to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Skip TLS verification. Opt-in and logged as a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// The AWS region of the metrics, for cloudwatch: its endpoint
    /// (`https://monitoring.<region>.amazonaws.com`) and the region requests are signed for.
    /// On a prometheus template it selects Amazon Managed Prometheus: queries to
    /// `provider.address` (the workspace's URL) are signed for this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Extra request headers (for example a tenant header such as `X-Scope-OrgID` for Mimir).
    /// A value is a string, or a list of strings as Flagger writes them (sent joined by
    /// `, `, as HTTP reads repeated headers).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "header_values"
    )]
    #[schemars(schema_with = "header_values_schema")]
    pub headers: BTreeMap<String, String>,
    /// How long one query may take. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Reads `headers` in serin's form (`name: value`) or Flagger's (`name: [value, ...]`, Go's
/// `http.Header`).
fn header_values<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw: BTreeMap<String, serde_json::Value> = BTreeMap::deserialize(deserializer)?;
    let mut headers = BTreeMap::new();
    for (name, value) in raw {
        let joined = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Array(items) => {
                let texts: Option<Vec<&str>> = items.iter().map(|v| v.as_str()).collect();
                let texts = texts.ok_or_else(|| {
                    D::Error::custom(format!("header {name:?}: list items must be strings"))
                })?;
                if texts.is_empty() {
                    continue;
                }
                texts.join(", ")
            }
            _ => {
                return Err(D::Error::custom(format!(
                    "header {name:?}: expected a string or a list of strings"
                )));
            }
        };
        headers.insert(name, joined);
    }
    Ok(headers)
}

fn header_values_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Extra request headers: a string, or a list of strings as Flagger writes them.",
        "type": "object",
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(headers: &str) -> Result<MetricProvider, String> {
        serde_yaml_ng::from_str(&format!("{{type: prometheus, headers: {headers}}}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn headers_read_in_serin_form_and_in_flaggers_list_form() {
        let serin = provider("{X-Scope-OrgID: team-a}").unwrap();
        let flagger = provider("{X-Scope-OrgID: [team-a], Accept: [a, b], Empty: []}").unwrap();
        assert_eq!(serin.headers["X-Scope-OrgID"], "team-a");
        assert_eq!(flagger.headers["X-Scope-OrgID"], "team-a");
        assert_eq!(flagger.headers["Accept"], "a, b");
        assert!(!flagger.headers.contains_key("Empty"));
        let error = provider("{X-Scope-OrgID: 7}").unwrap_err();
        assert!(
            error.contains("header \"X-Scope-OrgID\": expected a string or a list of strings"),
            "{error}"
        );
    }
}
