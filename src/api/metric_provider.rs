//! The metric provider of a MetricTemplate: `spec.provider.type` parsed once, when the template
//! is decoded, into a [`MetricProviderKind`], and the table saying what each provider can
//! answer and which Secret keys it reads. The controller, `serin check` and `serin migrate`
//! decode templates the same way, so a type is refused by all of them with the same words.
//!
//! A new provider is one [`MetricProviderKind`] variant, its row in [`TABLE`], and its module
//! in `crate::metrics` implementing `MetricsProvider`; the compiler asks for the one `match`
//! that picks it (`metrics::provider::sample`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::provider::Access;

// The metrics servers serin queries, serialized as `spec.provider.type`. (Plain comments, not
// doc comments: schemars would put them into the CRD schema.)
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricProviderKind {
    // The Prometheus HTTP API, and the servers that serve it.
    Prometheus,
    // Graphite's render API.
    Graphite,
    // InfluxDB: Flux on the v2 API, InfluxQL on the 1.x API.
    #[serde(rename = "influxdb")]
    InfluxDb,
    // Datadog's metrics query API (`/api/v1/query`).
    Datadog,
    // New Relic's Insights query API (NRQL).
    #[serde(rename = "newrelic")]
    NewRelic,
    // Amazon CloudWatch's GetMetricData, signed with AWS Signature Version 4.
    #[serde(rename = "cloudwatch")]
    CloudWatch,
    // Dynatrace's metrics query API v2 (`/api/v2/metrics/query`).
    Dynatrace,
    // Splunk Observability (SignalFx): SignalFlow programs run over HTTP.
    Splunk,
    // The Kubernetes external metrics API (`external.metrics.k8s.io/v1beta1`) of an adapter.
    #[serde(rename = "externalmetrics")]
    ExternalMetrics,
    // Google Cloud Monitoring: MQL through `projects.timeSeries.query`.
    Stackdriver,
    // Keptn's KeptnMetric and Analysis resources, read from the cluster.
    Keptn,
}

/// The Secret key every provider may read: a PEM CA bundle to trust. It is no credential: a
/// CA certificate may go wherever the template's queries go.
pub const CA_KEY: &str = "ca.crt";

/// One row of the metric provider table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: MetricProviderKind,
    /// The name in `spec.provider.type`.
    pub name: &'static str,
    /// What it talks to, for people.
    pub serves: &'static str,
    /// Whether it answers range queries, which a metric's `judge` needs (it compares the
    /// canary's and the primary's series over a window).
    pub range_queries: bool,
    /// The `secretRef` keys read as credentials, besides [`CA_KEY`]. Credentials are sent only
    /// to the template's own `provider.address`.
    pub credential_keys: &'static [&'static str],
    /// Whether a template without `provider.address` may query the Canary's
    /// `spec.metricsServer` or `--metrics-server`, which are Prometheus-compatible servers.
    pub default_server: bool,
    /// The service's own address, queried when a template has no `provider.address` (a SaaS
    /// API, as Flagger defaults it); credentials may go there, it is the service's. A
    /// `{region}` in it is the template's `provider.region`, which the provider then needs.
    pub default_address: Option<&'static str>,
    /// What it reads from the cluster, for a provider that asks the API server rather than a
    /// metrics server (it then needs no address); part of serin's ClusterRole.
    pub cluster_reads: &'static [Access],
}

/// The metric provider table: one row per provider serin queries.
pub const TABLE: &[Row] = &[
    Row {
        kind: MetricProviderKind::Prometheus,
        name: "prometheus",
        serves: "the Prometheus HTTP API (Prometheus, Thanos, Mimir, Cortex, VictoriaMetrics, \
                 Amazon Managed Prometheus)",
        range_queries: true,
        // The AWS keys sign Amazon Managed Prometheus' queries (a template with a region).
        credential_keys: &[
            "token",
            "username",
            "password",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            // A Google service-account key selects Google Managed Prometheus.
            "serviceAccountKey",
        ],
        default_server: true,
        default_address: None,
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::Graphite,
        name: "graphite",
        serves: "Graphite's render API (graphite-web, carbonapi)",
        range_queries: true,
        credential_keys: &["username", "password"],
        default_server: false,
        default_address: None,
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::InfluxDb,
        name: "influxdb",
        serves: "InfluxDB: Flux (v2 API) and InfluxQL (1.x API)",
        range_queries: true,
        // `org` and `database` are no secrets, but Flagger reads `org` from the Secret.
        credential_keys: &["token", "username", "password", "org", "database"],
        default_server: false,
        default_address: None,
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::Datadog,
        name: "datadog",
        serves: "Datadog's metrics query API (/api/v1/query)",
        // The query API answers a series (a pointlist) over any window.
        range_queries: true,
        credential_keys: &["datadog_api_key", "datadog_application_key"],
        default_server: false,
        default_address: Some("https://api.datadoghq.com"),
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::NewRelic,
        name: "newrelic",
        serves: "New Relic's Insights query API (NRQL)",
        // NRQL's TIMESERIES answers one value per bucket.
        range_queries: true,
        // The account id is no secret, but Flagger reads it from the Secret.
        credential_keys: &["newrelic_query_key", "newrelic_account_id"],
        default_server: false,
        default_address: Some("https://insights-api.newrelic.com"),
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::CloudWatch,
        name: "cloudwatch",
        serves: "Amazon CloudWatch's GetMetricData (AWS Signature Version 4)",
        // GetMetricData answers every point of a series over a window.
        range_queries: true,
        credential_keys: &[
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
        ],
        default_server: false,
        default_address: Some("https://monitoring.{region}.amazonaws.com"),
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::Dynatrace,
        name: "dynatrace",
        serves: "Dynatrace's metrics query API v2 (/api/v2/metrics/query)",
        // The query API answers a series at a resolution of whole minutes.
        range_queries: true,
        credential_keys: &["dynatrace_token"],
        // Every environment has its own address (Flagger requires it too).
        default_server: false,
        default_address: None,
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::Splunk,
        name: "splunk",
        serves: "Splunk Observability (SignalFx): SignalFlow over HTTP (/v2/signalflow/execute)",
        // A computation over a window answers one value per resolution interval.
        range_queries: true,
        credential_keys: &["sf_token_key"],
        // Every organization has its realm's address (Flagger requires it too).
        default_server: false,
        default_address: None,
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::ExternalMetrics,
        name: "externalmetrics",
        serves: "the Kubernetes external metrics API (external.metrics.k8s.io/v1beta1)",
        // The API answers each metric's current value only.
        range_queries: false,
        credential_keys: &["token"],
        default_server: false,
        default_address: None,
        // Without provider.address: the controller's API server, which serves the API
        // through its aggregation layer (Flagger's default). With one: that adapter.
        cluster_reads: &[Access::new(
            "external.metrics.k8s.io",
            "*",
            // A metric is read as a collection of its label sets: `list`.
            &["get", "list"],
        )],
    },
    Row {
        kind: MetricProviderKind::Stackdriver,
        name: "stackdriver",
        serves: "Google Cloud Monitoring: MQL through projects.timeSeries.query",
        // An MQL query sets its own window (`within`); Google Managed Prometheus, through
        // the prometheus provider, answers the judge's range queries.
        range_queries: false,
        // The project id is no secret, but Flagger reads it from the Secret.
        credential_keys: &["project", "serviceAccountKey"],
        default_server: false,
        default_address: Some("https://monitoring.googleapis.com"),
        cluster_reads: &[],
    },
    Row {
        kind: MetricProviderKind::Keptn,
        name: "keptn",
        serves: "Keptn's KeptnMetric and Analysis resources (metrics.keptn.sh/v1beta1), read \
                 from the cluster",
        // A KeptnMetric holds its current value, an Analysis a verdict.
        range_queries: false,
        credential_keys: &[],
        default_server: false,
        default_address: None,
        cluster_reads: &[
            Access::new("metrics.keptn.sh", "keptnmetrics", &["get"]),
            // An Analysis is created, read until Keptn completes it, and deleted.
            Access::new("metrics.keptn.sh", "analyses", &["create", "get", "delete"]),
        ],
    },
];

/// Why a `provider.type` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricProviderError {
    #[error("unknown metric provider {0:?}; serin queries {names}", names = names())]
    Unknown(String),
}

fn names() -> String {
    let names: Vec<&str> = TABLE.iter().map(|row| row.name).collect();
    names.join(", ")
}

impl MetricProviderKind {
    /// Reads `spec.provider.type` (exact, lowercase, as Flagger spells it).
    pub fn parse(text: &str) -> Result<Self, MetricProviderError> {
        let text = text.trim();
        if let Some(row) = TABLE.iter().find(|row| row.name == text) {
            return Ok(row.kind);
        }
        Err(MetricProviderError::Unknown(text.to_string()))
    }

    /// This provider's row of [`TABLE`].
    pub fn row(self) -> &'static Row {
        // Every variant has a row: `every_kind_has_one_row` checks it.
        TABLE
            .iter()
            .find(|row| row.kind == self)
            .unwrap_or(&TABLE[0])
    }
}

impl fmt::Display for MetricProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().name)
    }
}

/// Decoding is parsing: a template with a type serin lacks never becomes a value, and the
/// error (with its field path, from `api::load`) says why.
impl<'de> Deserialize<'de> for MetricProviderKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Row {
    /// Whether the provider needs `provider.region` (its address or its signatures name one).
    pub fn needs_region(&self) -> bool {
        self.default_address.is_some_and(|a| a.contains("{region}"))
    }

    /// The service's own address for a template in `region` (see [`Row::default_address`]);
    /// AWS's China regions are under `amazonaws.com.cn`.
    pub fn service_address(&self, region: Option<&str>) -> Option<String> {
        let address = self.default_address?;
        if !self.needs_region() {
            return Some(address.to_string());
        }
        let region = region.map(str::trim).filter(|r| valid_region(r))?;
        let address = address.replace("{region}", region);
        Some(if region.starts_with("cn-") {
            format!("{address}.cn")
        } else {
            address
        })
    }
}

/// An AWS region name as AWS spells them (`eu-west-1`, `us-gov-east-1`): lowercase letters,
/// digits and dashes, so that it can go into a host name.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// Why `row`'s provider cannot serve a metric with a `judge` block, or `None` when it can.
pub fn judge_refusal(row: &Row) -> Option<String> {
    (!row.range_queries).then(|| {
        format!(
            "the {} metric provider cannot answer range queries, which judge needs to compare \
             the canary with the primary over a window; use thresholdRange instead",
            row.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row() {
        for row in TABLE {
            assert_eq!(TABLE.iter().filter(|r| r.kind == row.kind).count(), 1);
            assert_eq!(row.kind.row(), row);
            assert_eq!(MetricProviderKind::parse(row.name), Ok(row.kind));
        }
        assert_eq!(MetricProviderKind::Prometheus.row().name, "prometheus");
        assert_eq!(MetricProviderKind::InfluxDb.row().name, "influxdb");
        assert_eq!(MetricProviderKind::Datadog.row().name, "datadog");
        let kind: MetricProviderKind = serde_json::from_str(r#""newrelic""#).unwrap();
        assert_eq!(kind, MetricProviderKind::NewRelic);
        let kind: MetricProviderKind = serde_json::from_str(r#""influxdb""#).unwrap();
        assert_eq!(serde_json::to_string(&kind).unwrap(), r#""influxdb""#);
    }

    #[test]
    fn types_parse_once_and_refusals_say_why() {
        assert_eq!(
            MetricProviderKind::parse(" prometheus "),
            Ok(MetricProviderKind::Prometheus)
        );
        let error = |name| MetricProviderKind::parse(name).unwrap_err().to_string();
        // Every Flagger metric provider is one of serin's.
        for flagger in ["stackdriver", "keptn", "cloudwatch", "externalmetrics"] {
            assert!(MetricProviderKind::parse(flagger).is_ok(), "{flagger}");
        }
        assert_eq!(
            error("promethues"),
            "unknown metric provider \"promethues\"; serin queries prometheus, graphite, influxdb, datadog, newrelic, cloudwatch, dynatrace, splunk, externalmetrics, stackdriver, keptn"
        );
        assert!(error("Prometheus").starts_with("unknown metric provider"));
    }

    #[test]
    fn decoding_a_type_is_parsing_it() {
        let kind: MetricProviderKind = serde_json::from_str(r#""prometheus""#).unwrap();
        assert_eq!(kind, MetricProviderKind::Prometheus);
        assert_eq!(serde_json::to_string(&kind).unwrap(), r#""prometheus""#);
        let error = serde_json::from_str::<MetricProviderKind>(r#""stackdrivr""#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown metric provider \"stackdrivr\""),
            "{error}"
        );
    }

    #[test]
    fn cloudwatch_is_addressed_by_its_region_which_must_be_a_region_name() {
        let row = MetricProviderKind::CloudWatch.row();
        assert!(row.needs_region());
        assert!(!MetricProviderKind::Datadog.row().needs_region());
        assert_eq!(
            row.service_address(Some("eu-west-1")).as_deref(),
            Some("https://monitoring.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            row.service_address(Some("cn-north-1")).as_deref(),
            Some("https://monitoring.cn-north-1.amazonaws.com.cn")
        );
        for bad in [None, Some(""), Some("evil.example/x"), Some("EU-WEST-1")] {
            assert_eq!(row.service_address(bad), None, "{bad:?}");
        }
        assert_eq!(
            MetricProviderKind::Datadog
                .row()
                .service_address(None)
                .as_deref(),
            Some("https://api.datadoghq.com")
        );
    }

    #[test]
    fn a_judge_needs_range_queries() {
        assert_eq!(judge_refusal(MetricProviderKind::Prometheus.row()), None);
        let instant_only = Row {
            name: "instant-only",
            range_queries: false,
            ..*MetricProviderKind::Prometheus.row()
        };
        let reason = judge_refusal(MetricProviderKind::ExternalMetrics.row()).unwrap();
        assert!(
            reason.starts_with(
                "the externalmetrics metric provider cannot answer range queries, which judge needs"
            ),
            "{reason}"
        );
        let reason = judge_refusal(&instant_only).unwrap();
        assert!(
            reason.starts_with("the instant-only metric provider cannot answer range queries"),
            "{reason}"
        );
    }
}
