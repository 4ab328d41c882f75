//! The Kubernetes external metrics API (`external.metrics.k8s.io/v1beta1`), served by a metrics
//! adapter (KEDA, the Datadog cluster agent, prometheus-adapter...):
//! `GET <address>/apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=...`,
//! with the Secret's `token` as a bearer token when there is one, as Flagger's externalmetrics
//! provider sends it. A template without `provider.address` asks the controller's own API
//! server, which serves the API through its aggregation layer (Flagger's default), as serin's
//! ServiceAccount.
//!
//! The query is Flagger's: `<namespace>/<metric>?labelSelector=<URL-encoded selector>`, only the
//! metric required (the namespace defaults to `default`). The API answers current values only
//! (no window, no history), so the provider has no range queries and `judge` is refused on it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::outbound::redact;

use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: one value per matching label set; thousands are a few hundred KB.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// The API's path under the address.
pub const API: &str = "apis/external.metrics.k8s.io/v1beta1";
const SERVICE: &str = "an ExternalMetricValueList";

/// The external metrics implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct ExternalMetrics {
    route: Route,
}

/// Where the API is asked.
#[derive(Clone)]
enum Route {
    /// The adapter (or an API server) at the template's `provider.address`.
    Address { reach: Reach, auth: Auth },
    /// The controller's API server, through its client; None outside the controller.
    Cluster {
        client: Option<kube::Client>,
        timeout: Duration,
    },
}

/// A parsed query: where the metric is and which of its label sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub namespace: String,
    pub metric: String,
    pub label_selector: Option<String>,
}

#[derive(Deserialize)]
struct ValueList {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    /// A Kubernetes quantity (`1500m`, `2k`, `1Gi`, `1e3`).
    value: String,
}

impl ExternalMetrics {
    /// The API at the connection's address, else through `cluster` (the controller's client).
    pub fn connect(connection: Connection, cluster: Option<kube::Client>) -> Self {
        if connection.address.trim().is_empty() {
            return Self {
                route: Route::Cluster {
                    client: cluster,
                    timeout: connection.timeout,
                },
            };
        }
        let auth = match connection.credentials.get("token").map(str::trim) {
            Some(token) if !token.is_empty() => Auth::Bearer(token.to_string()),
            _ => Auth::None,
        };
        Self {
            route: Route::Address {
                reach: Reach::of(&connection),
                auth,
            },
        }
    }

    /// The answer to `GET /<path>` with `params`, from wherever the route leads.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        match &self.route {
            Route::Address { reach, auth } => {
                let call = Call {
                    path,
                    params,
                    body: None,
                    limit: MAX_ANSWER,
                };
                reach.server(auth).send(&call, refusal).await
            }
            Route::Cluster { client, timeout } => {
                let client = client.as_ref().ok_or_else(|| QueryError::Refused {
                    kind: "externalmetrics".into(),
                    message: "a template without provider.address reads the external metrics \
                              API of the controller's cluster, which only `serin controller` \
                              queries"
                        .into(),
                })?;
                let selector = params
                    .iter()
                    .find(|(key, _)| *key == "labelSelector")
                    .map(|(_, value)| *value);
                let mut list = kube::api::ListParams::default();
                if let Some(selector) = selector {
                    list = list.labels(selector);
                }
                let request = kube::core::Request::new(format!("/{path}"))
                    .list(&list)
                    .map_err(|e| QueryError::Transport(format!("building the request: {e}")))?;
                let answer = tokio::time::timeout(*timeout, client.request_text(request))
                    .await
                    .map_err(|_| QueryError::Timeout(*timeout))?;
                let body = answer.map_err(cluster_error)?;
                if body.len() > MAX_ANSWER {
                    return Err(QueryError::TooLarge(MAX_ANSWER));
                }
                Ok(body)
            }
        }
    }
}

/// The API server's refusal, with what usually causes it.
fn cluster_error(error: kube::Error) -> QueryError {
    match error {
        kube::Error::Api(status) => {
            let hint = match status.code {
                404 => {
                    " (does the cluster serve external.metrics.k8s.io/v1beta1, through a metrics \
                     adapter's APIService, and does the adapter know this metric?)"
                }
                403 => {
                    " (serin's ClusterRole grants get on external.metrics.k8s.io resources; a \
                     narrower role must too)"
                }
                _ => "",
            };
            // A group the API server does not serve is a bare "404 page not found", not a
            // Status: kube then says it failed to parse one; the HTTP reason says it better.
            let reason = if status.reason.starts_with("Failed to parse") {
                reqwest::StatusCode::from_u16(status.code)
                    .ok()
                    .and_then(|code| code.canonical_reason())
                    .unwrap_or("error")
                    .to_string()
            } else {
                status.reason.clone()
            };
            QueryError::Refused {
                kind: format!("Kubernetes {reason}, HTTP {}", status.code),
                message: format!("{}{hint}", redact::excerpt(&status.message, 4 * PREVIEW)),
            }
        }
        other => QueryError::Transport(format!("the API server: {other}")),
    }
}

/// Reads `<namespace>/<metric>?labelSelector=<URL-encoded>` (Flagger's form).
pub fn parse_query(query: &str) -> Result<Query, QueryError> {
    let bad = |why: &str| QueryError::Refused {
        kind: "query".into(),
        message: format!(
            "{why}; an externalmetrics query is <namespace>/<metric>?labelSelector=<URL-encoded \
             selector>, got {:?}",
            redact::excerpt(query, PREVIEW)
        ),
    };
    let query = query.trim();
    let (path, search) = query.split_once('?').unwrap_or((query, ""));
    let (namespace, metric) = match path.trim_start_matches('/').split('/').collect::<Vec<_>>()[..]
    {
        [metric] => ("default", metric),
        ["", metric] => ("default", metric),
        [namespace, metric] => (namespace, metric),
        _ => return Err(bad("too many slashes")),
    };
    if metric.is_empty() {
        return Err(bad("the metric name is empty"));
    }
    let segment = |text: &str| {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:@|".contains(&b))
    };
    let dots = |text: &str| matches!(text, "." | "..");
    if !segment(namespace) || !segment(metric) || dots(namespace) || dots(metric) {
        return Err(bad(
            "the namespace or metric name has characters a URL path cannot carry",
        ));
    }
    let search = reqwest::Url::parse(&format!("http://query/?{search}"))
        .map_err(|e| bad(&format!("the query string does not parse: {e}")))?;
    let label_selector = search
        .query_pairs()
        .find(|(key, _)| key == "labelSelector")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty());
    Ok(Query {
        namespace: namespace.to_string(),
        metric: metric.to_string(),
        label_selector,
    })
}

impl MetricsProvider for ExternalMetrics {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let query = parse_query(query)?;
        let path = format!("{API}/namespaces/{}/{}", query.namespace, query.metric);
        let params: Vec<(&str, &str)> = query
            .label_selector
            .as_deref()
            .map(|selector| ("labelSelector", selector))
            .into_iter()
            .collect();
        let body = self.get(&path, &params).await?;
        let list: ValueList = super::exchange::decode(&body, SERVICE)?;
        match &list.items[..] {
            [] => Ok(Answer::NoData),
            [one] => {
                let value = quantity(&one.value).ok_or_else(|| QueryError::Malformed {
                    service: SERVICE,
                    detail: format!(
                        "value {:?} is not a Kubernetes quantity",
                        redact::excerpt(&one.value, 80)
                    ),
                })?;
                Ok(Answer::last_present(std::iter::once(value)))
            }
            many => Err(QueryError::ManySeries(many.len())),
        }
    }

    /// Never asked: the row says no range queries, so `check` and the controller refuse a
    /// judge on this provider first.
    async fn range(
        &self,
        _query: &str,
        _start: DateTime<Utc>,
        _end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        Err(QueryError::Refused {
            kind: "externalmetrics".into(),
            message: "the external metrics API answers current values only, no series".into(),
        })
    }

    /// The API's resource list, which every adapter serves, with the same token and headers.
    async fn probe(&self) -> Result<(), QueryError> {
        self.get(API, &[]).await.map(drop)
    }
}

/// The Kubernetes API's own message in an error answer (a `Status`: `{"kind": "Status",
/// "message", "reason", "code"}`); a 401 or 403 says whose credentials were refused.
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?.as_str()?;
    let reason = value
        .get("reason")
        .and_then(|r| r.as_str())
        .unwrap_or("Failure");
    let mut message = redact::excerpt(message, 4 * PREVIEW);
    match status {
        401 => message.push_str(" (the server refused the Secret's token)"),
        403 => message.push_str(
            " (the token's identity may not get external.metrics.k8s.io resources: grant it \
             get on them)",
        ),
        _ => {}
    }
    Some(QueryError::Refused {
        kind: format!("{reason}, HTTP {status}"),
        message,
    })
}

/// A Kubernetes quantity as a number: a decimal with a binary (`Ki`..`Ei`) or decimal (`n`..`E`)
/// suffix, or a decimal exponent (`1e3`).
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024_f64,
        "Mi" => 1024_f64.powi(2),
        "Gi" => 1024_f64.powi(3),
        "Ti" => 1024_f64.powi(4),
        "Pi" => 1024_f64.powi(5),
        "Ei" => 1024_f64.powi(6),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            10_f64.powi(digits.parse::<i32>().ok()?)
        }
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_as_flagger_reads_them() {
        assert_eq!(
            parse_query("shop/job-success-rate?labelSelector=env%3Dproduction%2Capp%3Dweb"),
            Ok(Query {
                namespace: "shop".into(),
                metric: "job-success-rate".into(),
                label_selector: Some("env=production,app=web".into()),
            })
        );
        assert_eq!(
            parse_query("datadogmetric@shop:errors").unwrap().namespace,
            "default"
        );
        assert_eq!(parse_query("/errors").unwrap().metric, "errors");
        for (bad, why) in [
            ("a/b/c", "too many slashes"),
            ("shop/", "the metric name is empty"),
            ("shop/er rors", "characters a URL path cannot carry"),
            ("../x", "characters a URL path cannot carry"),
        ] {
            let error = parse_query(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn quantities_are_numbers() {
        for (text, value) in [
            ("2", 2.0),
            ("1500m", 1.5),
            ("-250m", -0.25),
            ("2k", 2000.0),
            ("1Ki", 1024.0),
            ("1.5Mi", 1.5 * 1048576.0),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("5n", 5e-9),
        ] {
            assert_eq!(quantity(text), Some(value), "{text}");
        }
        assert_eq!(quantity("2KB"), None);
        assert_eq!(quantity(""), None);
    }
}
