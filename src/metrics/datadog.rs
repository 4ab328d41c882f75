//! Datadog's metrics query API (`GET /api/v1/query?query=...&from=...&to=...`), authenticated
//! with the `DD-API-KEY` and `DD-APPLICATION-KEY` headers from the Secret's `datadog_api_key`
//! and `datadog_application_key`, as Flagger's datadog provider sends them.
//!
//! The query is a Datadog metrics query (`sum:trace.http.request.errors{service:web}.as_count()`);
//! its language carries no window, so serin asks for the one Flagger asks for: from ten metric
//! intervals ago to now. A threshold check's value is the oldest non-null point of the one
//! series (Flagger's choice: the newest bucket is usually still filling up); the judge reads
//! every point of the series over its window, a null point counting as NaN.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::outbound::redact;

use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: a series of a day at Datadog's finest rollup is well under 1 MB.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// How many metric intervals back a threshold check looks (Flagger's window).
pub const WINDOW_INTERVALS: u32 = 10;
/// The Secret keys, as Flagger names them, and the headers Datadog reads them from.
pub const API_KEY: (&str, &str) = ("datadog_api_key", "DD-API-KEY");
pub const APPLICATION_KEY: (&str, &str) = ("datadog_application_key", "DD-APPLICATION-KEY");

/// The Datadog implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Datadog {
    /// `https://api.datadoghq.com` or a site's (`https://api.datadoghq.eu`).
    reach: Reach,
    /// Both keys as headers, or the Secret key that is missing.
    auth: Result<Auth, &'static str>,
    /// A threshold check's window: `[now - window, now]`.
    window: Duration,
    now: DateTime<Utc>,
}

/// The query API's answer (only what serin reads).
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    /// `[timestamp in ms, value or null]` pairs.
    pointlist: Vec<(f64, Option<f64>)>,
}

impl Datadog {
    /// The Datadog client for a resolved connection, asking about windows that end at `now`.
    pub fn connect(connection: Connection, now: DateTime<Utc>) -> Self {
        let key = |(secret_key, header): (&'static str, &'static str)| {
            connection
                .credentials
                .get(secret_key)
                .map(|value| (header, value.trim().to_string()))
                .ok_or(secret_key)
        };
        let auth = key(API_KEY).and_then(|api| Ok(Auth::Keys(vec![api, key(APPLICATION_KEY)?])));
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

    /// Sends a GET under the address with both keys, and returns the answer's text.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        let auth = self.auth.as_ref().map_err(|missing| QueryError::Refused {
            kind: "secretRef".into(),
            message: format!("the Secret has no {missing}, which Datadog's API needs"),
        })?;
        let server = self.reach.server(auth);
        let call = Call {
            path,
            params,
            body: None,
            limit: MAX_ANSWER,
        };
        server.send(&call, refusal).await
    }

    async fn query(
        &self,
        query: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Series>, QueryError> {
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let (from, to) = (from.timestamp().to_string(), to.timestamp().to_string());
        let params = [("query", query.as_str()), ("from", &from), ("to", &to)];
        parse(&self.get("api/v1/query", &params).await?)
    }
}

impl MetricsProvider for Datadog {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let from = self.now.checked_sub_signed(window).unwrap_or(self.now);
        first_value(&self.query(query, from, self.now).await?)
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        // Datadog picks the rollup for the window; a step of the judge's is the query's own
        // `.rollup(avg, 15)`, which stays the user's choice.
        every_value(&self.query(query, start, end).await?)
    }

    /// Datadog's key validation endpoint, with the same keys and headers as the queries.
    async fn probe(&self) -> Result<(), QueryError> {
        let body = self.get("api/v1/validate", &[]).await?;
        let valid = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|answer| answer.get("valid")?.as_bool());
        match valid {
            Some(true) => Ok(()),
            _ => Err(QueryError::Unhealthy(format!(
                "Datadog's /api/v1/validate answered {:?}, not {{\"valid\":true}}",
                redact::excerpt(&body, PREVIEW)
            ))),
        }
    }
}

/// Datadog's own message in an error answer: `{"errors": ["..."]}`, or the query API's
/// `{"status": "error", "error": "..."}`. A 403 is a key Datadog refused: said so, without it.
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = match value.get("errors").and_then(|e| e.as_array()) {
        Some(errors) => errors
            .iter()
            .filter_map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        None => value.get("error")?.as_str()?.to_string(),
    };
    let mut message = redact::excerpt(&message, 4 * PREVIEW);
    if status == 403 {
        message.push_str(
            " (Datadog refused the datadog_api_key or datadog_application_key of the Secret, \
             or the application key lacks the timeseries_query permission)",
        );
    }
    Some(QueryError::Refused {
        kind: format!("Datadog, HTTP {status}"),
        message,
    })
}

/// The series of an answer; `"status": "error"` in a 200 answer is a refusal.
fn parse(body: &str) -> Result<Vec<Series>, QueryError> {
    let response: Response = super::exchange::decode(body, "Datadog query API JSON")?;
    if response.status.as_deref() == Some("error") {
        return Err(QueryError::Refused {
            kind: "Datadog".into(),
            message: redact::excerpt(
                response
                    .error
                    .as_deref()
                    .unwrap_or("status error without a message"),
                4 * PREVIEW,
            ),
        });
    }
    Ok(response.series)
}

fn one(series: &[Series]) -> Result<Option<&Series>, QueryError> {
    match series {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(QueryError::ManySeries(many.len())),
    }
}

/// The oldest non-null point of the one series; no series or only nulls is no data.
fn first_value(series: &[Series]) -> Result<Answer<f64>, QueryError> {
    let value = one(series)?.and_then(|series| series.pointlist.iter().find_map(|(_, v)| *v));
    Ok(value.map_or(Answer::NoData, Answer::Value))
}

/// Every point of the one series, nulls as NaN; no series is no data.
fn every_value(series: &[Series]) -> Result<Answer<Vec<f64>>, QueryError> {
    let Some(series) = one(series)? else {
        return Ok(Answer::NoData);
    };
    Ok(Answer::Value(
        series
            .pointlist
            .iter()
            .map(|(_, value)| value.unwrap_or(f64::NAN))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &str) -> String {
        format!(
            r#"{{"status":"ok","res_type":"time_series","series":[{{"metric":"errors","expression":"sum:errors{{*}}","pointlist":{points}}}]}}"#
        )
    }

    #[test]
    fn the_value_is_the_oldest_non_null_point_of_one_series() {
        let first = |body: &str| first_value(&parse(body)?);
        let body = series("[[1000.0,null],[2000.0,1.5],[3000.0,9.0]]");
        assert_eq!(first(&body), Ok(Answer::Value(1.5)));
        assert_eq!(first(&series("[]")), Ok(Answer::NoData));
        assert_eq!(first(&series("[[1000.0,null]]")), Ok(Answer::NoData));
        assert_eq!(first(r#"{"status":"ok","series":[]}"#), Ok(Answer::NoData));
        let two = r#"{"series":[{"pointlist":[[1,1]]},{"pointlist":[[1,2]]}]}"#;
        assert_eq!(first(two), Err(QueryError::ManySeries(2)));
        let Ok(Answer::Value(all)) = every_value(&parse(&body).unwrap()) else {
            panic!("a series expected")
        };
        assert!(all[0].is_nan());
        assert_eq!(all[1..], [1.5, 9.0]);
    }

    #[test]
    fn datadogs_error_answers_say_what_datadog_said_without_keys() {
        let forbidden = refusal(403, r#"{"errors":["Forbidden"]}"#)
            .unwrap()
            .to_string();
        assert!(
            forbidden.starts_with(
                "query refused by the metrics server (Datadog, HTTP 403): Forbidden (Datadog refused the datadog_api_key"
            ),
            "{forbidden}"
        );
        let in_body = parse(r#"{"status":"error","error":"Rule 'scope_expr' didn't match"}"#)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            in_body,
            "query refused by the metrics server (Datadog): Rule 'scope_expr' didn't match"
        );
        assert_eq!(refusal(502, "<html>"), None);
        let malformed = parse(r#"{"series":[{"pointlist":[[1,"x"]]}]}"#)
            .err()
            .unwrap();
        assert!(
            malformed
                .to_string()
                .starts_with("response is not Datadog query API JSON"),
            "{malformed}"
        );
    }
}
