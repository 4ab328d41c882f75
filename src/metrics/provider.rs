//! What every metric provider answers: an instant query (a value checked against bounds), a
//! range query (the judge's series) and a health probe, from a [`Connection`] the controller
//! resolved (address, credentials, headers, TLS client, timeout). Prometheus
//! (`super::prometheus`), Graphite (`super::graphite`), InfluxDB (`super::influxdb`), Datadog
//! (`super::datadog`), New Relic (`super::newrelic`), CloudWatch (`super::cloudwatch`),
//! Dynatrace (`super::dynatrace`), Splunk (`super::splunk`), the Kubernetes external metrics
//! API (`super::external`), Google Cloud Monitoring (`super::stackdriver`) and Keptn
//! (`super::keptn`, which reads the cluster) implement it; [`sample`] holds the one `match` that picks an
//! implementation by the template's `provider.type`.
//!
//! The trait is static (generic functions, no `dyn`): each provider is one concrete type, and
//! the `match` awaits it in place, so adding one is its module, its [`MetricProviderKind`]
//! variant and its table row, and the compiler points at this `match`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::metric_provider::MetricProviderKind;
use crate::engine::input::Sample;
use crate::outbound::body::Size;

use super::Queries;

/// What a query answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    Value(T),
    NoData,
}

impl Answer<f64> {
    /// The last value of a series that is not a null (NaN); a series of nulls, or none, is
    /// no data.
    pub fn last_present(values: impl DoubleEndedIterator<Item = f64>) -> Self {
        values
            .rev()
            .find(|value| !value.is_nan())
            .map_or(Self::NoData, Self::Value)
    }
}

impl Answer<Vec<f64>> {
    /// A series for the judge; an empty one is no data.
    pub fn series(values: Vec<f64>) -> Self {
        if values.is_empty() {
            Self::NoData
        } else {
            Self::Value(values)
        }
    }
}

/// Why a query has no answer. A fault is never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("metrics server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("metrics server unreachable: {0}")]
    Transport(String),
    #[error("metrics server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("query refused by the metrics server ({kind}): {message}")]
    Refused { kind: String, message: String },
    #[error("response is not {service}: {detail}")]
    Malformed {
        /// What the answer should have been, e.g. `Prometheus API JSON`.
        service: &'static str,
        detail: String,
    },
    #[error("expected {expected}, got a {got} result")]
    WrongType { expected: &'static str, got: String },
    #[error("the query returned {0} series; it must return one (aggregate it, e.g. with sum(...))")]
    ManySeries(usize),
    #[error("bad header {0:?}: {1}")]
    Header(String, String),
    #[error("the metrics server's answer is larger than {}; aggregate the query (e.g. with sum(...))", Size(*.0))]
    TooLarge(usize),
    #[error("metrics server is not healthy: {0}")]
    Unhealthy(String),
    #[error("metrics server is rate limiting (HTTP 429){}", retry_hint(*.0))]
    RateLimited(Option<Duration>),
    /// A service saying in its own error that it throttles (AWS's `400 Throttling`), without
    /// a Retry-After: the exchange waits [`super::exchange::THROTTLE_WAIT`] once.
    #[error("metrics server is throttling ({kind}): {message}")]
    Throttled { kind: String, message: String },
}

/// What a 429's Retry-After asked for.
fn retry_hint(after: Option<Duration>) -> String {
    match after {
        Some(after) => {
            format!(
                "; it asked to retry after {after:?}, and serin waits at most once, within the query's timeout"
            )
        }
        None => " without a Retry-After in seconds".to_string(),
    }
}

/// The `secretRef` keys a provider reads as credentials ([`Row::credential_keys`]), found in
/// the Secret. Never logged: Debug prints the key names only.
///
/// [`Row::credential_keys`]: crate::api::metric_provider::Row::credential_keys
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, String>);

impl Credentials {
    /// The keys of `secret` that `kind` reads as credentials; the others are left out.
    pub fn of(kind: MetricProviderKind, secret: &BTreeMap<String, String>) -> Self {
        let keys = kind.row().credential_keys;
        Self(
            secret
                .iter()
                .filter(|(key, _)| keys.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// How to reach one metrics server, resolved by the controller: the address (the template's
/// own, else the Canary's `spec.metricsServer`, else `--metrics-server`), the client carrying
/// the TLS setting and egress policy, and a timeout already clamped to the maximum.
#[derive(Clone, Debug)]
pub struct Connection {
    pub client: reqwest::Client,
    pub address: String,
    pub credentials: Credentials,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// The metric's `interval`: the window of an instant query for a service whose query
    /// language carries none (Datadog's asks for `from`/`to`).
    pub interval: Duration,
    /// The template's `provider.region`: the AWS region CloudWatch requests are signed for.
    pub region: Option<String>,
}

/// A metrics server serin can ask. Implementations read answers through
/// `outbound::body` (bounded) and cap every call at the connection's timeout.
pub trait MetricsProvider {
    /// One value now: a one-series vector or a scalar. NaN and an empty result are no data.
    fn instant(&self, query: &str) -> impl Future<Output = Result<Answer<f64>, QueryError>> + Send;

    /// Every value of one series from `start` to `end`, `step` apart (NaN values kept: the
    /// judge counts them). Only providers whose row says `range_queries`.
    fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> impl Future<Output = Result<Answer<Vec<f64>>, QueryError>> + Send;

    /// Whether the server answers queries at all, with these credentials and headers.
    fn probe(&self) -> impl Future<Output = Result<(), QueryError>> + Send;
}

/// Asks the provider `kind` for a metric's `queries` without a cluster client (`serin
/// check`, benchmarks, tests): see [`sample_in`].
pub async fn sample(
    kind: MetricProviderKind,
    connection: Connection,
    queries: &Queries,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> Sample {
    sample_in(kind, connection, None, queries, now, since).await
}

/// Asks the provider `kind` for a metric's `queries` (see [`super::sample`]): the one place
/// that picks an implementation. `cluster` is the controller's client, which a provider that
/// reads the cluster (keptn, its row's `cluster_reads`) is built with.
pub async fn sample_in(
    kind: MetricProviderKind,
    connection: Connection,
    cluster: Option<kube::Client>,
    queries: &Queries,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> Sample {
    match kind {
        MetricProviderKind::Prometheus => {
            let server = super::prometheus::Endpoint::connect(connection);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Graphite => {
            let server = super::graphite::Graphite::connect(connection);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::InfluxDb => {
            let server = super::influxdb::InfluxDb::connect(connection);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Datadog => {
            let server = super::datadog::Datadog::connect(connection, now);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::NewRelic => {
            let server = super::newrelic::NewRelic::connect(connection);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::CloudWatch => {
            let server = super::cloudwatch::CloudWatch::connect(connection, now);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Dynatrace => {
            let server = super::dynatrace::Dynatrace::connect(connection, now);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Splunk => {
            let server = super::splunk::Splunk::connect(connection, now);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::ExternalMetrics => {
            let server = super::external::ExternalMetrics::connect(connection, cluster);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Stackdriver => {
            let server = super::stackdriver::Stackdriver::connect(connection);
            super::sample(&server, queries, now, since).await
        }
        MetricProviderKind::Keptn => {
            let cluster = super::keptn::Keptn::connect(&connection, cluster);
            super::sample(&cluster, queries, now, since).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_keep_only_the_providers_keys_and_never_print_values() {
        let secret: BTreeMap<String, String> = [
            ("token", "hunter2"),
            ("ca.crt", "-----BEGIN CERTIFICATE-----"),
            ("unrelated", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let credentials = Credentials::of(MetricProviderKind::Prometheus, &secret);
        assert_eq!(credentials.get("token"), Some("hunter2"));
        assert_eq!(credentials.get("ca.crt"), None, "a CA is no credential");
        assert_eq!(credentials.get("unrelated"), None);
        assert_eq!(format!("{credentials:?}"), r#"{"token"}"#);
        let only_a_ca = BTreeMap::from([("ca.crt".to_string(), "pem".to_string())]);
        assert!(Credentials::of(MetricProviderKind::Prometheus, &only_a_ca).is_empty());
    }
}
