//! Splunk Observability (SignalFx): a SignalFlow program run over HTTP
//! (`POST /v2/signalflow/execute?start=...&stop=...&immediate=true`, the program as the text
//! body), authenticated with the `X-SF-Token` header, the token from the Secret's
//! `sf_token_key`, as Flagger's splunk provider reads it. Flagger runs the same computation over
//! SignalFlow's WebSocket; the HTTP form answers the same messages as a server-sent event
//! stream (`super::event_stream`), read within [`MAX_ANSWER`] like every provider's answer.
//!
//! The program carries no window: a threshold check runs it over Flagger's, from ten metric
//! intervals ago to now, and takes the newest value of the one time series; the judge runs it
//! over its window at `resolution=<step>` and reads one value per data message.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::outbound::redact;

use super::event_stream::{self, Event};
use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: a computation of one series over a day at 10 s is a few MB of
/// events; more is a program that should aggregate.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// How many metric intervals back a threshold check looks (Flagger's window).
pub const WINDOW_INTERVALS: u32 = 10;
/// The Secret key, as Flagger names it.
pub const TOKEN: &str = "sf_token_key";
const SERVICE: &str = "a Splunk SignalFlow event stream";

/// The Splunk Observability implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Splunk {
    /// The realm's stream host (`https://stream.<realm>.signalfx.com`), where computations run.
    stream: Reach,
    /// The realm's API host (`https://api.<realm>.signalfx.com`), which the probe asks.
    api: Reach,
    /// The token as `X-SF-Token`, or why there is none.
    auth: Result<Auth, String>,
    /// A threshold check's window: `[now - window, now]`.
    window: Duration,
    now: DateTime<Utc>,
}

/// A data message: each time series' value at one logical time.
#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    data: Vec<Point>,
}

#[derive(Deserialize)]
struct Point {
    #[serde(rename = "tsId")]
    ts_id: String,
    value: Option<f64>,
}

impl Splunk {
    /// The Splunk client for a resolved connection, asking about windows that end at `now`.
    /// `provider.address` may name the realm's API or stream host, as Flagger takes either.
    pub fn connect(connection: Connection, now: DateTime<Utc>) -> Self {
        let auth = match connection.credentials.get(TOKEN).map(str::trim) {
            None | Some("") => Err(format!(
                "the Secret has no {TOKEN}, which Splunk Observability's API needs"
            )),
            Some(token) => Ok(Auth::Keys(vec![("X-SF-Token", token.to_string())])),
        };
        let reach = Reach::of(&connection);
        Self {
            stream: Reach {
                address: host(&reach.address, "api.", "stream."),
                ..reach.clone()
            },
            api: Reach {
                address: host(&reach.address, "stream.", "api."),
                ..reach
            },
            auth,
            window: connection
                .interval
                .checked_mul(WINDOW_INTERVALS)
                .unwrap_or(Duration::MAX),
            now,
        }
    }

    fn auth(&self) -> Result<&Auth, QueryError> {
        self.auth.as_ref().map_err(|message| QueryError::Refused {
            kind: "secretRef".into(),
            message: message.clone(),
        })
    }

    /// Runs `program` over `[start, stop]` (at `resolution`, else SignalFlow's choice) and
    /// returns the values of its one time series, oldest first; `None` when it has none.
    async fn execute(
        &self,
        program: &str,
        start: DateTime<Utc>,
        stop: DateTime<Utc>,
        resolution: Option<Duration>,
    ) -> Result<Option<Vec<f64>>, QueryError> {
        let auth = self.auth()?;
        let (start, stop) = (
            start.timestamp_millis().to_string(),
            stop.timestamp_millis().to_string(),
        );
        let resolution = resolution.map(|step| step.as_millis().max(1000).to_string());
        let mut params = vec![
            ("start", start.as_str()),
            ("stop", stop.as_str()),
            // Computed from stored data at once, rather than waiting for `stop` in real time.
            ("immediate", "true"),
        ];
        if let Some(resolution) = &resolution {
            params.push(("resolution", resolution));
        }
        let call = Call {
            path: "v2/signalflow/execute",
            params: &params,
            body: Some(("text/plain", program.trim().to_string())),
            limit: MAX_ANSWER,
        };
        let body = self.stream.server(auth).send(&call, refusal).await?;
        one_series(&event_stream::events(&body))
    }
}

/// `address` with its host's leading `from` replaced by `to` (a realm's `api.` and `stream.`
/// hosts), and a WebSocket scheme as its HTTP one; any other address as it is.
fn host(address: &str, from: &str, to: &str) -> String {
    let address = match address.split_once("://") {
        Some(("wss", rest)) => format!("https://{rest}"),
        Some(("ws", rest)) => format!("http://{rest}"),
        _ => address.to_string(),
    };
    match address.split_once("://") {
        Some((scheme, rest)) if rest.starts_with(from) => {
            format!("{scheme}://{to}{}", &rest[from.len()..])
        }
        _ => address,
    }
}

impl MetricsProvider for Splunk {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let start = self.now.checked_sub_signed(window).unwrap_or(self.now);
        let values = self.execute(query, start, self.now, None).await?;
        Ok(Answer::last_present(values.unwrap_or_default().into_iter()))
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        let values = self.execute(query, start, end, Some(step)).await?;
        Ok(values.map_or(Answer::NoData, Answer::series))
    }

    /// One metric of the organization (Flagger's check), on the API host, with the same token
    /// and headers as the computations.
    async fn probe(&self) -> Result<(), QueryError> {
        let call = Call {
            path: "v2/metric",
            params: &[("limit", "1")],
            body: None,
            limit: MAX_ANSWER,
        };
        let auth = self.auth()?;
        self.api.server(auth).send(&call, refusal).await.map(drop)
    }
}

/// Splunk's own message in an error answer (`{"code": 400, "message": "..."}`); a 401 is the
/// token Splunk refused, said so without it, whatever the body.
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let message = super::exchange::json_message(body, "message");
    if status == 401 {
        let said = message.unwrap_or_else(|| "unauthorized".into());
        return Some(QueryError::Refused {
            kind: "Splunk, HTTP 401".into(),
            message: format!("{said} (Splunk refused the Secret's {TOKEN})"),
        });
    }
    Some(QueryError::Refused {
        kind: format!("Splunk, HTTP {status}"),
        message: message?,
    })
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: SERVICE,
        detail,
    }
}

/// The values of a computation's one time series, one per data message (NaN where the message
/// has none for it), up to its `END_OF_CHANNEL`. An `error` event or an aborted channel is the
/// computation's failure; several series an error asking to aggregate.
fn one_series(events: &[Event<'_>]) -> Result<Option<Vec<f64>>, QueryError> {
    let mut messages: Vec<Vec<Point>> = Vec::new();
    for event in events {
        match event.name {
            "data" => {
                let message: Data = super::exchange::decode(&event.data, SERVICE)?;
                messages.push(message.data);
            }
            "error" => return Err(computation_error(&event.data)),
            "control-message" => {
                let control: Value = super::exchange::decode(&event.data, SERVICE)?;
                match control.get("event").and_then(Value::as_str) {
                    Some("END_OF_CHANNEL") => return values(messages),
                    Some("CHANNEL_ABORT") => return Err(aborted(&control)),
                    _ => {}
                }
            }
            // Metadata, information messages and detector events say nothing about values.
            _ => {}
        }
    }
    Err(malformed(format!(
        "the stream ended without END_OF_CHANNEL after {} events (cut off?)",
        events.len()
    )))
}

fn values(messages: Vec<Vec<Point>>) -> Result<Option<Vec<f64>>, QueryError> {
    let series: BTreeSet<&str> = messages
        .iter()
        .flatten()
        .map(|point| point.ts_id.as_str())
        .collect();
    if series.len() > 1 {
        return Err(QueryError::ManySeries(series.len()));
    }
    if series.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        messages
            .iter()
            .map(|points| {
                points
                    .first()
                    .and_then(|point| point.value)
                    .unwrap_or(f64::NAN)
            })
            .collect(),
    ))
}

/// An `error` event: `{"error": <status>, "message": ...}` or its `errors` list.
fn computation_error(data: &str) -> QueryError {
    let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let listed = value.get("errors").and_then(Value::as_array).map(|errors| {
        errors
            .iter()
            .filter_map(|e| e.get("message").or_else(|| e.get("code"))?.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    });
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(listed)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| data.to_string());
    QueryError::Refused {
        kind: "Splunk SignalFlow".into(),
        message: redact::excerpt(&message, 4 * PREVIEW),
    }
}

fn aborted(control: &Value) -> QueryError {
    let reason = control
        .pointer("/abortInfo/sf_job_abortReason")
        .and_then(Value::as_str)
        .unwrap_or("no reason given");
    QueryError::Refused {
        kind: "Splunk SignalFlow".into(),
        message: format!(
            "the computation was aborted: {}",
            redact::excerpt(reason, PREVIEW)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(text: &str) -> Result<Option<Vec<f64>>, QueryError> {
        one_series(&event_stream::events(text))
    }

    const START: &str = "event: control-message\ndata: {\"event\":\"STREAM_START\"}\n\n";
    const END: &str = "event: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n";

    fn data(points: &str) -> String {
        format!(
            "event: data\ndata: {{\"data\":[{points}],\"logicalTimestampMs\":1700000000000}}\n\n"
        )
    }

    #[test]
    fn the_values_are_one_per_data_message_of_the_one_series() {
        let one = format!(
            "{START}{}{}{}{END}",
            data(r#"{"tsId":"AAAA","value":1.5}"#),
            data(""),
            data(r#"{"tsId":"AAAA","value":3}"#)
        );
        let values = series(&one).unwrap().unwrap();
        assert_eq!(values[0], 1.5);
        assert!(values[1].is_nan());
        assert_eq!(values[2], 3.0);
        assert_eq!(series(&format!("{START}{END}")), Ok(None));
        let two = format!(
            "{START}{}{END}",
            data(r#"{"tsId":"AAAA","value":1},{"tsId":"BBBB","value":2}"#)
        );
        assert_eq!(series(&two), Err(QueryError::ManySeries(2)));
        let cut = format!("{START}{}", data(r#"{"tsId":"AAAA","value":1}"#));
        assert!(
            series(&cut)
                .unwrap_err()
                .to_string()
                .contains("the stream ended without END_OF_CHANNEL after 2 events"),
        );
    }

    #[test]
    fn a_failed_computation_says_why() {
        let error = format!(
            "{START}event: error\ndata: {{\"error\":400,\"errors\":[{{\"code\":\"ANALYTICS_PROGRAM_INVALID\"}}],\"message\":\"function 'dta' is not defined\"}}\n\n"
        );
        assert_eq!(
            series(&error).unwrap_err().to_string(),
            "query refused by the metrics server (Splunk SignalFlow): function 'dta' is not defined"
        );
        let abort = format!(
            "{START}event: control-message\ndata: {{\"event\":\"CHANNEL_ABORT\",\"abortInfo\":{{\"sf_job_abortReason\":\"too many time series\"}}}}\n\n"
        );
        assert_eq!(
            series(&abort).unwrap_err().to_string(),
            "query refused by the metrics server (Splunk SignalFlow): the computation was aborted: too many time series"
        );
        let refused = refusal(401, "Unauthorized").unwrap().to_string();
        assert_eq!(
            refused,
            "query refused by the metrics server (Splunk, HTTP 401): unauthorized (Splunk refused the Secret's sf_token_key)"
        );
        assert_eq!(refusal(502, "<html>"), None);
    }

    #[test]
    fn a_realms_api_address_runs_computations_on_its_stream_host() {
        assert_eq!(
            host("https://api.us1.signalfx.com", "api.", "stream."),
            "https://stream.us1.signalfx.com"
        );
        assert_eq!(
            host("wss://stream.eu0.signalfx.com", "stream.", "api."),
            "https://api.eu0.signalfx.com"
        );
        assert_eq!(
            host("wss://stream.eu0.signalfx.com", "api.", "stream."),
            "https://stream.eu0.signalfx.com"
        );
        assert_eq!(
            host("http://127.0.0.1:8080", "api.", "stream."),
            "http://127.0.0.1:8080"
        );
    }
}
