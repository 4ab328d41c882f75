//! New Relic's Insights query API (`GET /v1/accounts/<id>/query?nrql=...`), authenticated with
//! the `X-Query-Key` header, the key and the account id from the Secret's `newrelic_query_key`
//! and `newrelic_account_id`, as Flagger's newrelic provider reads them.
//!
//! The query is NRQL without its time clause: a threshold check appends Flagger's
//! `SINCE <interval> seconds ago` (a query with its own `SINCE` is sent as it is), the judge `SINCE <start> UNTIL <end> TIMESERIES <step>`. The
//! value is the one number of the one result (`{"result": 1.5}`, `{"average": 1.5}`, a
//! percentile's one number); the judge reads one value per TIMESERIES bucket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::outbound::redact;

use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: 366 TIMESERIES buckets (NRQL's most) are a few tens of KB.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// The Secret keys, as Flagger names them.
pub const QUERY_KEY: &str = "newrelic_query_key";
pub const ACCOUNT_ID: &str = "newrelic_account_id";
/// The query [`MetricsProvider::probe`] runs (Flagger's, with a window).
pub const PROBE_QUERY: &str = "SELECT count(*) FROM Metric";

/// The New Relic implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct NewRelic {
    /// `https://insights-api.newrelic.com` or the EU's.
    reach: Reach,
    /// The query key as `X-Query-Key` and the account's query path, or why there are none.
    account: Result<(Auth, String), String>,
    /// A threshold check's window: `SINCE <interval> seconds ago`.
    interval: Duration,
}

/// The query API's answer (only what serin reads).
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(default)]
    facets: Vec<Value>,
    #[serde(rename = "timeSeries", default)]
    time_series: Vec<Bucket>,
}

#[derive(Deserialize)]
struct Bucket {
    results: Vec<Value>,
}

impl NewRelic {
    /// The New Relic client for a resolved connection.
    pub fn connect(connection: Connection) -> Self {
        let credentials = &connection.credentials;
        let missing = |key| format!("the Secret has no {key}, which New Relic's API needs");
        let account = match (credentials.get(QUERY_KEY), credentials.get(ACCOUNT_ID)) {
            (None, _) => Err(missing(QUERY_KEY)),
            (_, None) => Err(missing(ACCOUNT_ID)),
            (Some(key), Some(id)) => {
                let id = id.trim();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    Err(format!(
                        "the Secret's {ACCOUNT_ID} is not an account number"
                    ))
                } else {
                    let auth = Auth::Keys(vec![("X-Query-Key", key.trim().to_string())]);
                    Ok((auth, format!("v1/accounts/{id}/query")))
                }
            }
        };
        Self {
            reach: Reach::of(&connection),
            account,
            interval: connection.interval,
        }
    }

    /// Runs `nrql` and returns the parsed answer.
    async fn query(&self, nrql: &str) -> Result<Response, QueryError> {
        let (auth, path) = self
            .account
            .as_ref()
            .map_err(|message| QueryError::Refused {
                kind: "secretRef".into(),
                message: message.clone(),
            })?;
        let server = self.reach.server(auth);
        let params = [("nrql", nrql)];
        let call = Call {
            path,
            params: &params,
            body: None,
            limit: MAX_ANSWER,
        };
        parse(&server.send(&call, refusal).await?)
    }
}

/// `query` on one line, so the appended time clause stays NRQL.
fn one_line(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the query sets its own window (`SINCE`, `UNTIL`), which serin then leaves alone for
/// a threshold check and refuses for the judge (whose window it must set).
fn has_time_clause(query: &str) -> bool {
    query
        .split_whitespace()
        .any(|word| word.eq_ignore_ascii_case("since") || word.eq_ignore_ascii_case("until"))
}

impl MetricsProvider for NewRelic {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let nrql = if has_time_clause(query) {
            one_line(query)
        } else {
            let since = self.interval.as_secs().max(1);
            format!("{} SINCE {since} seconds ago", one_line(query))
        };
        one_value(&self.query(&nrql).await?)
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        if has_time_clause(query) {
            return Err(QueryError::Refused {
                kind: "query".into(),
                message: "a judged NRQL query must have no SINCE or UNTIL: serin sets the \
                          judge's window (SINCE ... UNTIL ... TIMESERIES ...)"
                    .into(),
            });
        }
        let nrql = format!(
            "{} SINCE {} UNTIL {} TIMESERIES {} seconds",
            one_line(query),
            start.timestamp_millis(),
            end.timestamp_millis(),
            step.as_secs().max(1)
        );
        let answer = self.query(&nrql).await?;
        if answer.time_series.is_empty() {
            return Ok(Answer::NoData);
        }
        let values = answer
            .time_series
            .iter()
            .map(|bucket| match one_result(&bucket.results)? {
                Some(value) => number(value).map(|v| v.unwrap_or(f64::NAN)),
                None => Ok(f64::NAN),
            })
            .collect::<Result<_, _>>()?;
        Ok(Answer::Value(values))
    }

    /// A count over the last minute, with the same key, account and headers as the queries.
    async fn probe(&self) -> Result<(), QueryError> {
        self.query(&format!("{PROBE_QUERY} SINCE 60 seconds ago"))
            .await
            .map(drop)
    }
}

/// New Relic's own message in an error answer, `{"error": "..."}`; a 401 or 403 is the query
/// key or account New Relic refused, said so without the key.
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: Value = serde_json::from_str(body).ok()?;
    let message = match value.get("error")? {
        Value::String(text) => text.clone(),
        Value::Object(error) => error.get("title")?.as_str()?.to_string(),
        _ => return None,
    };
    let mut message = redact::excerpt(&message, 4 * PREVIEW);
    if matches!(status, 401 | 403) {
        message.push_str(&format!(
            " (New Relic refused the Secret's {QUERY_KEY} for its {ACCOUNT_ID})"
        ));
    }
    Some(QueryError::Refused {
        kind: format!("New Relic, HTTP {status}"),
        message,
    })
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "New Relic query API JSON",
        detail,
    }
}

fn parse(body: &str) -> Result<Response, QueryError> {
    super::exchange::decode(body, "New Relic query API JSON")
}

/// The one result of a result list; none is `None`, several (two functions selected) an error.
fn one_result(results: &[Value]) -> Result<Option<&Value>, QueryError> {
    match results {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(QueryError::ManySeries(many.len())),
    }
}

fn one_value(answer: &Response) -> Result<Answer<f64>, QueryError> {
    if answer.facets.len() > 1 {
        return Err(QueryError::ManySeries(answer.facets.len()));
    }
    let results = match answer.facets.first() {
        Some(facet) => facet
            .get("results")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        None => &answer.results,
    };
    let Some(result) = one_result(results)? else {
        return Ok(Answer::NoData);
    };
    Ok(number(result)?.map_or(Answer::NoData, Answer::Value))
}

/// The one number of a result object (`{"result": 1.5}`, `{"percentile": {"95": 1.5}}`); null
/// is no value.
fn number(result: &Value) -> Result<Option<f64>, QueryError> {
    let bad = || {
        malformed(format!(
            "result {} is not one number",
            redact::excerpt(&result.to_string(), 80)
        ))
    };
    let mut value = result;
    while let Value::Object(fields) = value {
        let mut fields = fields.values();
        match (fields.next(), fields.next()) {
            (Some(only), None) => value = only,
            _ => return Err(bad()),
        }
    }
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => number.as_f64().map(Some).ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(body: &str) -> Result<Answer<f64>, QueryError> {
        one_value(&parse(body)?)
    }

    #[test]
    fn the_value_is_the_one_number_of_the_one_result() {
        assert_eq!(
            value(r#"{"results":[{"result":1.5}],"metadata":{}}"#),
            Ok(Answer::Value(1.5))
        );
        assert_eq!(
            value(r#"{"results":[{"percentile":{"95":0.25}}]}"#),
            Ok(Answer::Value(0.25))
        );
        assert_eq!(
            value(r#"{"results":[{"average":null}]}"#),
            Ok(Answer::NoData)
        );
        assert_eq!(value(r#"{"results":[]}"#), Ok(Answer::NoData));
        assert_eq!(
            value(r#"{"results":[{"a":1},{"b":2}]}"#),
            Err(QueryError::ManySeries(2))
        );
        assert_eq!(
            value(
                r#"{"facets":[{"name":"a","results":[{"count":1}]},{"name":"b","results":[{"count":2}]}]}"#
            ),
            Err(QueryError::ManySeries(2))
        );
        let two_fields = value(r#"{"results":[{"a":1,"b":2}]}"#).unwrap_err();
        assert!(
            two_fields
                .to_string()
                .starts_with("response is not New Relic query API JSON: result"),
            "{two_fields}"
        );
    }

    #[test]
    fn new_relics_error_answers_say_what_it_said_without_keys() {
        let refused = refusal(401, r#"{"error":"Invalid query key"}"#)
            .unwrap()
            .to_string();
        assert_eq!(
            refused,
            "query refused by the metrics server (New Relic, HTTP 401): Invalid query key (New Relic refused the Secret's newrelic_query_key for its newrelic_account_id)"
        );
        assert_eq!(refusal(502, "<html>"), None);
    }
}
