//! Dynatrace's metrics query API v2 (`GET /api/v2/metrics/query?metricSelector=...`),
//! authenticated with `Authorization: Api-Token <token>`, the token from the Secret's
//! `dynatrace_token`, as Flagger's dynatrace provider reads it.
//!
//! The query is a metric selector (`builtin:service.errors.total.rate:filter(...)`); it carries
//! no window, so a threshold check asks for Flagger's: from ten metric intervals ago to now, at
//! `resolution=Inf` (one aggregated point). The judge asks for its window at a resolution of
//! whole minutes (Dynatrace's finest unit), one point per bucket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::outbound::redact;

use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: one series of 10,080 points (Dynatrace's most) is a few hundred KB.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// How many metric intervals back a threshold check looks (Flagger's window).
pub const WINDOW_INTERVALS: u32 = 10;
/// The Secret key, as Flagger names it.
pub const TOKEN: &str = "dynatrace_token";

/// The Dynatrace implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Dynatrace {
    /// The environment's address: `https://<env>.live.dynatrace.com`, or an ActiveGate's
    /// `https://<host>:9999/e/<env>`.
    reach: Reach,
    /// The token as its `Authorization` header, or why there is none.
    auth: Result<Auth, String>,
    /// A threshold check's window: `[now - window, now]`.
    window: Duration,
    now: DateTime<Utc>,
}

/// The query API's answer (only what serin reads).
#[derive(Deserialize)]
struct Response {
    #[serde(default, rename = "totalCount")]
    total_count: Option<usize>,
    #[serde(default, rename = "nextPageKey")]
    next_page_key: Option<String>,
    #[serde(default)]
    result: Vec<Metric>,
}

/// One metric of the selector; each of its `data` is one series (a dimension tuple).
#[derive(Deserialize)]
struct Metric {
    #[serde(default)]
    data: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    /// Oldest first; null where the bucket has no value.
    #[serde(default)]
    values: Vec<Option<f64>>,
}

impl Dynatrace {
    /// The Dynatrace client for a resolved connection, asking about windows that end at `now`.
    pub fn connect(connection: Connection, now: DateTime<Utc>) -> Self {
        let auth = match connection.credentials.get(TOKEN).map(str::trim) {
            None | Some("") => Err(format!(
                "the Secret has no {TOKEN}, which Dynatrace's API needs"
            )),
            Some(token) => Ok(Auth::Keys(vec![(
                "Authorization",
                format!("Api-Token {token}"),
            )])),
        };
        Self {
            reach: Reach::of(&connection),
            auth,
            window: connection
                .interval
                .checked_mul(WINDOW_INTERVALS)
                .unwrap_or(Duration::MAX),
            now,
        }
    }

    /// Sends a GET under the address with the token, and returns the answer's text.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        let auth = self.auth.as_ref().map_err(|message| QueryError::Refused {
            kind: "secretRef".into(),
            message: message.clone(),
        })?;
        let call = Call {
            path,
            params,
            body: None,
            limit: MAX_ANSWER,
        };
        self.reach.server(auth).send(&call, refusal).await
    }

    /// The one series the selector answers over `[from, to]` at `resolution`, if any.
    async fn series(
        &self,
        selector: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        resolution: &str,
    ) -> Result<Option<Vec<Option<f64>>>, QueryError> {
        // A selector spread over lines in YAML is one line; spaces inside a line (a quoted
        // dimension value) stay.
        let selector = selector.lines().map(str::trim).collect::<String>();
        let (from, to) = (
            from.timestamp_millis().to_string(),
            to.timestamp_millis().to_string(),
        );
        let params = [
            ("metricSelector", selector.as_str()),
            ("resolution", resolution),
            ("from", &from),
            ("to", &to),
        ];
        one_series(parse(&self.get("api/v2/metrics/query", &params).await?)?)
    }
}

impl MetricsProvider for Dynatrace {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let from = self.now.checked_sub_signed(window).unwrap_or(self.now);
        let values = self.series(query, from, self.now, "Inf").await?;
        Ok(Answer::last_present(
            values
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.unwrap_or(f64::NAN)),
        ))
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        let values = self.series(query, start, end, &resolution(step)).await?;
        Ok(match values {
            None => Answer::NoData,
            Some(values) => {
                Answer::series(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
            }
        })
    }

    /// One metric descriptor (Flagger's check), with the same token and headers as the queries.
    async fn probe(&self) -> Result<(), QueryError> {
        self.get("api/v2/metrics", &[("pageSize", "1")])
            .await
            .map(drop)
    }
}

/// The judge's step as a Dynatrace resolution: whole minutes, at least one (Dynatrace has no
/// finer unit).
fn resolution(step: Duration) -> String {
    format!("{}m", step.as_secs().div_ceil(60).max(1))
}

/// Dynatrace's own message in an error answer, `{"error": {"code", "message",
/// "constraintViolations": [{"path", "message"}]}}`; a 401 or 403 is the token Dynatrace
/// refused, said so without it.
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    let mut message = error.get("message")?.as_str()?.to_string();
    let violations = error
        .get("constraintViolations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for violation in violations {
        let path = violation.get("path").and_then(Value::as_str).unwrap_or("");
        if let Some(text) = violation.get("message").and_then(Value::as_str) {
            message.push_str(&format!(" {path}: {text}"));
        }
    }
    let mut message = redact::excerpt(&message, 4 * PREVIEW);
    if matches!(status, 401 | 403) {
        message.push_str(&format!(
            " (Dynatrace refused the Secret's {TOKEN}, or it lacks the metrics.read scope)"
        ));
    }
    Some(QueryError::Refused {
        kind: format!("Dynatrace, HTTP {status}"),
        message,
    })
}

fn parse(body: &str) -> Result<Response, QueryError> {
    super::exchange::decode(body, "Dynatrace metrics API JSON")
}

/// The values of the one series of an answer: none is `None`; several (a selector splitting by
/// a dimension, or several metrics, or more on a next page) an error asking to aggregate.
fn one_series(answer: Response) -> Result<Option<Vec<Option<f64>>>, QueryError> {
    let count: usize = answer.result.iter().map(|m| m.data.len()).sum();
    let more = answer.next_page_key.is_some() && count > 0;
    let count = answer
        .total_count
        .filter(|total| *total > count)
        .unwrap_or(count);
    if count > 1 || more {
        return Err(QueryError::ManySeries(count.max(2)));
    }
    Ok(answer
        .result
        .into_iter()
        .flat_map(|metric| metric.data)
        .next()
        .map(|series| series.values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(body: &str) -> Result<Option<Vec<Option<f64>>>, QueryError> {
        one_series(parse(body)?)
    }

    #[test]
    fn the_answer_is_the_one_series_of_the_one_metric() {
        let one = r#"{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"m","data":[{"dimensions":[],"dimensionMap":{},"timestamps":[1],"values":[1.5]}]}]}"#;
        assert_eq!(values(one), Ok(Some(vec![Some(1.5)])));
        let none = r#"{"totalCount":0,"nextPageKey":null,"result":[{"metricId":"m","data":[]}]}"#;
        assert_eq!(values(none), Ok(None));
        let two = r#"{"totalCount":2,"result":[{"data":[{"values":[1]},{"values":[2]}]}]}"#;
        assert_eq!(values(two), Err(QueryError::ManySeries(2)));
        let paged = r#"{"totalCount":300,"nextPageKey":"k","result":[{"data":[{"values":[1]}]}]}"#;
        assert_eq!(values(paged), Err(QueryError::ManySeries(300)));
        assert_eq!(resolution(Duration::from_secs(15)), "1m");
        assert_eq!(resolution(Duration::from_secs(150)), "3m");
    }

    #[test]
    fn dynatraces_error_answers_say_what_it_said_without_the_token() {
        let refused = refusal(
            401,
            r#"{"error":{"code":401,"message":"Token Authentication failed"}}"#,
        )
        .unwrap()
        .to_string();
        assert_eq!(
            refused,
            "query refused by the metrics server (Dynatrace, HTTP 401): Token *** failed (Dynatrace refused the Secret's dynatrace_token, or it lacks the metrics.read scope)"
        );
        let violated = refusal(
            400,
            r#"{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[{"path":"metricSelector","message":"Metric 'nosuch' not found","parameterLocation":"QUERY"}]}}"#,
        )
        .unwrap()
        .to_string();
        assert_eq!(
            violated,
            "query refused by the metrics server (Dynatrace, HTTP 400): Constraints violated. metricSelector: Metric 'nosuch' not found"
        );
        assert_eq!(refusal(502, "<html>"), None);
    }
}
