//! Google Cloud Monitoring (Stackdriver): Monitoring Query Language run by the API's
//! `projects.timeSeries.query` (`POST /v3/projects/<project>/timeSeries:query`), as Flagger's
//! `stackdriver` provider runs it, so a Flagger template's MQL works unchanged. The project is
//! the Secret's `project` (Flagger's key), else the service-account key's `project_id`; the
//! access token comes from `super::google_auth` (the Secret's `serviceAccountKey`, else
//! workload identity).
//!
//! A threshold check takes the newest point of the one series the query returns (MQL answers
//! points newest first, and Flagger reads the first). The query's own `within`/`every` set its
//! window, so there is no range query for the judge: PromQL through Google Managed Prometheus
//! (`type: prometheus`) serves the judge.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::exchange::{Auth, Call, Reach};
use super::google_auth::{self, PROJECT, TokenSource};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// Cloud Monitoring's address, queried when a template has none.
pub const ADDRESS: &str = "https://monitoring.googleapis.com";
/// The largest answer read: one series' points are a few KB; more is many series.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
const SERVICE: &str = "Cloud Monitoring timeSeries.query JSON";

/// The Cloud Monitoring implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Stackdriver {
    reach: Reach,
    /// The project whose metrics are queried, or why there is none.
    project: Result<String, String>,
    tokens: Result<TokenSource, String>,
}

/// The answer (only what serin reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    time_series_data: Vec<TimeSeriesData>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeSeriesData {
    #[serde(default)]
    point_data: Vec<PointData>,
}

#[derive(Deserialize)]
struct PointData {
    #[serde(default)]
    values: Vec<TypedValue>,
}

/// Protobuf JSON: a double is a number or `"NaN"`, `"Infinity"`, `"-Infinity"`; an int64 is
/// a string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedValue {
    #[serde(default)]
    double_value: Option<Value>,
    #[serde(default)]
    int64_value: Option<Value>,
}

impl Stackdriver {
    /// The client for a resolved connection; without a key in the Secret, tokens come from
    /// the metadata server (`GCE_METADATA_HOST`, else GKE's).
    pub fn connect(connection: Connection) -> Self {
        Self::connect_with(connection, google_auth::metadata_host())
    }

    /// [`Stackdriver::connect`] with the metadata server's `host[:port]` given.
    pub fn connect_with(connection: Connection, metadata_host: String) -> Self {
        let tokens = TokenSource::of(&connection.credentials, metadata_host);
        let project = connection
            .credentials
            .get(PROJECT)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .or_else(|| {
                tokens
                    .as_ref()
                    .ok()
                    .and_then(|t| t.project().map(str::to_string))
            })
            .ok_or_else(|| {
                format!(
                    "the Secret (secretRef) has no {PROJECT}: the Google Cloud project whose \
                     metrics are queried"
                )
            })
            .and_then(|project| {
                if valid_project(&project) {
                    Ok(project)
                } else {
                    Err(format!(
                        "the Secret's {PROJECT} {project:?} is not a Google Cloud project id"
                    ))
                }
            });
        Self {
            reach: Reach::of(&connection),
            project,
            tokens,
        }
    }

    /// Runs `query` and returns the answer's text.
    async fn query(&self, query: &str) -> Result<String, QueryError> {
        let refused = |message: &String| QueryError::Refused {
            kind: "secretRef".into(),
            message: message.clone(),
        };
        let project = self.project.as_ref().map_err(refused)?;
        let tokens = self.tokens.as_ref().map_err(refused)?;
        let token = google_auth::access_token(tokens, &self.reach).await?;
        let auth = Auth::Bearer(token);
        let path = format!("v3/projects/{project}/timeSeries:query");
        let call = Call {
            path: &path,
            params: &[],
            body: Some(("application/json", json!({ "query": query }).to_string())),
            limit: MAX_ANSWER,
        };
        self.reach
            .server(&auth)
            .send(&call, google_auth::api_refusal)
            .await
    }
}

/// A project id as Google spells them (6 to 30 lowercase letters, digits and dashes; older
/// ones may hold a domain and a colon), so that it can go into the path.
fn valid_project(project: &str) -> bool {
    !project.is_empty()
        && project.len() <= 100
        && project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}

/// The newest value of the one series in a `timeSeries:query` answer.
pub fn parse(body: &str) -> Result<Answer<f64>, QueryError> {
    let response: Response = super::exchange::decode(body, SERVICE)?;
    let more = response
        .next_page_token
        .as_deref()
        .is_some_and(|t| !t.is_empty());
    let series = match (response.time_series_data.as_slice(), more) {
        ([], _) => return Ok(Answer::NoData),
        ([one], false) => one,
        (many, _) => return Err(QueryError::ManySeries(many.len() + usize::from(more))),
    };
    let Some(newest) = series.point_data.first() else {
        return Ok(Answer::NoData);
    };
    let Some(value) = newest.values.first() else {
        return Ok(Answer::NoData);
    };
    let value = number(value)?;
    Ok(if value.is_nan() {
        Answer::NoData
    } else {
        Answer::Value(value)
    })
}

fn number(value: &TypedValue) -> Result<f64, QueryError> {
    let malformed = |detail: String| QueryError::Malformed {
        service: SERVICE,
        detail,
    };
    match (&value.double_value, &value.int64_value) {
        (Some(Value::Number(n)), _) => n
            .as_f64()
            .ok_or_else(|| malformed(format!("doubleValue {n}"))),
        (Some(Value::String(s)), _) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(malformed(format!("doubleValue {other:?} is not a number"))),
        },
        (None, Some(Value::String(s))) => s
            .parse::<i64>()
            .map(|n| n as f64)
            .map_err(|_| malformed(format!("int64Value {s:?} is not an integer"))),
        (None, Some(Value::Number(n))) => n
            .as_f64()
            .ok_or_else(|| malformed(format!("int64Value {n}"))),
        _ => Err(QueryError::WrongType {
            expected: "a doubleValue or int64Value point",
            got: "boolean, string or distribution".into(),
        }),
    }
}

impl MetricsProvider for Stackdriver {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        parse(&self.query(query).await?)
    }

    async fn range(
        &self,
        _query: &str,
        _start: DateTime<Utc>,
        _end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        // The table says no range queries: validation refuses a judge before this.
        Err(QueryError::Refused {
            kind: "judge".into(),
            message: "an MQL query sets its own window; use Google Managed Prometheus \
                      (type: prometheus) to judge"
                .into(),
        })
    }

    /// An empty query, as Flagger's probe: Cloud Monitoring refuses it as INVALID_ARGUMENT
    /// once the token and the project are accepted, and with 401/403 otherwise.
    async fn probe(&self) -> Result<(), QueryError> {
        match self.query("").await {
            Ok(_) => Ok(()),
            Err(QueryError::Refused { kind, .. })
                if kind.starts_with("Google INVALID_ARGUMENT") =>
            {
                Ok(())
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &str) -> String {
        format!(
            r#"{{"timeSeriesDescriptor":{{"pointDescriptors":[{{"key":"value.latency","valueType":"DOUBLE"}}]}},"timeSeriesData":[{{"labelValues":[],"pointData":[{points}]}}]}}"#
        )
    }

    #[test]
    fn the_newest_point_of_the_one_series_is_the_value() {
        let body = series(
            r#"{"values":[{"doubleValue":99.5}],"timeInterval":{"endTime":"2026-12-02T01:01:00Z"}},{"values":[{"doubleValue":1}],"timeInterval":{"endTime":"2026-12-02T01:00:00Z"}}"#,
        );
        assert_eq!(parse(&body), Ok(Answer::Value(99.5)));
        assert_eq!(
            parse(&series(r#"{"values":[{"int64Value":"42"}]}"#)),
            Ok(Answer::Value(42.0))
        );
        assert_eq!(
            parse(&series(r#"{"values":[{"doubleValue":"NaN"}]}"#)),
            Ok(Answer::NoData)
        );
        assert_eq!(
            parse(&series(r#"{"values":[{"doubleValue":"Infinity"}]}"#)),
            Ok(Answer::Value(f64::INFINITY))
        );
        assert_eq!(parse(&series("")), Ok(Answer::NoData));
        assert_eq!(parse(r#"{"timeSeriesDescriptor":{}}"#), Ok(Answer::NoData));
    }

    #[test]
    fn several_series_or_another_page_are_an_error_asking_to_aggregate() {
        let two = r#"{"timeSeriesData":[{"pointData":[]},{"pointData":[]}]}"#;
        assert_eq!(parse(two), Err(QueryError::ManySeries(2)));
        let paged = r#"{"timeSeriesData":[{"pointData":[]}],"nextPageToken":"abc"}"#;
        assert_eq!(parse(paged), Err(QueryError::ManySeries(2)));
        let text = series(r#"{"values":[{"stringValue":"up"}]}"#);
        assert!(matches!(parse(&text), Err(QueryError::WrongType { .. })));
    }

    #[test]
    fn project_ids_go_into_the_path_only_when_they_are_ids() {
        assert!(valid_project("shop-prod-123"));
        assert!(valid_project("example.com:shop"));
        assert!(!valid_project("shop/../../x"));
        assert!(!valid_project("Shop"));
        assert!(!valid_project(""));
    }
}
