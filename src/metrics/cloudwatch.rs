//! Amazon CloudWatch's GetMetricData, signed with AWS Signature Version 4 (`super::sigv4`).
//!
//! The query is what Flagger's cloudwatch provider takes: the JSON array of
//! `MetricDataQuery` objects given to GetMetricData (metrics, metric math, a Metrics Insights
//! query), the series to judge being the one result with `ReturnData` left true. A threshold
//! check asks, as Flagger does, for the window of ten metric intervals back from now, at most
//! 20 points, newest first, and takes the newest non-NaN value; the judge asks for its window
//! oldest first and follows `NextToken` through every page.
//!
//! The protocol is AWS JSON 1.0 (`POST /` with `X-Amz-Target:
//! GraniteServiceVersion20100801.GetMetricData`): CloudWatch serves it beside its older query
//! protocol, today's AWS SDKs and CLI send it, Flagger's query is its JSON as it stands, and
//! the answer and its errors (`__type`, `message`) are JSON, where the query protocol would
//! need the queries flattened into `MetricDataQueries.member.N.*` parameters and an XML reader.
//!
//! Credentials: `aws_access_key_id`, `aws_secret_access_key` and optionally
//! `aws_session_token` from the template's Secret; without them, the pod's web identity
//! (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, as EKS sets them) exchanged with STS for
//! temporary keys (`super::web_identity`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::outbound::redact;

use super::aws_signing::{self, AwsSigning, Outgoing};
use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};
use super::web_identity::WebIdentity;

/// The largest answer (one page) read: a page of 100,800 points, GetMetricData's most, is
/// about 4 MB of JSON.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// How many metric intervals back a threshold check looks (Flagger's window).
pub const WINDOW_INTERVALS: u32 = 10;
/// The points a threshold check asks for (Flagger's `MaxDatapoints`).
pub const INSTANT_POINTS: u32 = 20;
/// The pages the judge follows at most: a judge window is at most a few thousand points.
pub const MAX_PAGES: usize = 20;
/// The Secret keys (the names of AWS's credentials file).
pub use super::aws_signing::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
/// CloudWatch's signing name, JSON target and content type.
pub const SERVICE: &str = "monitoring";
pub const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The CloudWatch implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct CloudWatch {
    /// `https://monitoring.<region>.amazonaws.com`, or a VPC endpoint's address.
    reach: Reach,
    /// The key and the region to sign for, or why there are none.
    signing: AwsSigning,
    /// A threshold check's window: `[now - window, now]`.
    window: Duration,
    now: DateTime<Utc>,
}

/// GetMetricData's answer (only what serin reads).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    #[serde(default)]
    metric_data_results: Vec<MetricDataResult>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataResult {
    id: String,
    /// Epoch seconds, one per value.
    #[serde(default)]
    timestamps: Vec<f64>,
    /// Numbers, or `"NaN"`, `"Infinity"`, `"-Infinity"` as AWS's JSON writes those.
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// One series' points: `(epoch seconds, value)`.
type Points = Vec<(f64, f64)>;

impl CloudWatch {
    /// The CloudWatch client for a resolved connection, asking about windows that end at `now`;
    /// without keys in the Secret, it signs with the pod's web identity, if it has one.
    pub fn connect(connection: Connection, now: DateTime<Utc>) -> Self {
        let identity = aws_signing::pod_identity(&connection);
        Self::connect_with(connection, now, identity)
    }

    /// [`CloudWatch::connect`] with the web identity given rather than read from the
    /// environment.
    pub fn connect_with(
        connection: Connection,
        now: DateTime<Utc>,
        identity: Option<WebIdentity>,
    ) -> Self {
        Self {
            signing: AwsSigning::of(&connection, identity, SERVICE, "CloudWatch"),
            reach: Reach::of(&connection),
            window: connection
                .interval
                .checked_mul(WINDOW_INTERVALS)
                .unwrap_or(Duration::MAX),
            now,
        }
    }

    /// Sends one GetMetricData request, signed, and returns the parsed answer.
    async fn get_metric_data(&self, request: &Value) -> Result<Response, QueryError> {
        let body = request.to_string();
        let signed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let outgoing = Outgoing {
            method: "POST",
            url: &aws_signing::url(&self.reach, "", ""),
            headers: &signed,
            body: body.as_bytes(),
        };
        let mut auth = vec![("X-Amz-Target", TARGET.to_string())];
        auth.extend(self.signing.headers(&outgoing, &self.reach).await?);
        let auth = Auth::Keys(auth);
        let server = self.reach.server(&auth);
        let call = Call {
            path: "",
            params: &[],
            body: Some((CONTENT_TYPE, body)),
            limit: MAX_ANSWER,
        };
        parse(&server.send(&call, refusal).await?)
    }
}

/// The query: a JSON array of MetricDataQuery objects.
fn metric_data_queries(query: &str) -> Result<Vec<Value>, QueryError> {
    let queries: Vec<Value> = serde_json::from_str(query).map_err(|e| QueryError::Refused {
        kind: "query".into(),
        message: format!("not a JSON array of GetMetricData MetricDataQuery objects: {e}"),
    })?;
    if queries.is_empty() || !queries.iter().all(Value::is_object) {
        return Err(QueryError::Refused {
            kind: "query".into(),
            message: "the query must be a non-empty JSON array of MetricDataQuery objects \
                      ({\"Id\": ..., \"MetricStat\" or \"Expression\": ...})"
                .into(),
        });
    }
    Ok(queries)
}

impl MetricsProvider for CloudWatch {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let start = self.now.checked_sub_signed(window).unwrap_or(self.now);
        let request = json!({
            "MetricDataQueries": metric_data_queries(query)?,
            "StartTime": start.timestamp(),
            "EndTime": self.now.timestamp(),
            "MaxDatapoints": INSTANT_POINTS,
            "ScanBy": "TimestampDescending",
        });
        // The newest points come first: one page holds the value.
        let answer = self.get_metric_data(&request).await?;
        let mut series = BTreeMap::new();
        collect(&answer, &mut series)?;
        let Some(points) = one(series)? else {
            return Ok(Answer::NoData);
        };
        let newest = points
            .iter()
            .filter(|(_, value)| !value.is_nan())
            .max_by(|a, b| a.0.total_cmp(&b.0));
        Ok(newest.map_or(Answer::NoData, |(_, value)| Answer::Value(*value)))
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        // The points' spacing is each MetricStat's `Period`, which stays the user's choice.
        let queries = metric_data_queries(query)?;
        let mut series = BTreeMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = json!({
                "MetricDataQueries": queries,
                "StartTime": start.timestamp(),
                "EndTime": end.timestamp(),
                "ScanBy": "TimestampAscending",
            });
            if let Some(token) = &token {
                request["NextToken"] = json!(token);
            }
            let answer = self.get_metric_data(&request).await?;
            collect(&answer, &mut series)?;
            token = answer.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                let Some(mut points) = one(series)? else {
                    return Ok(Answer::NoData);
                };
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let values = points.into_iter().map(|(_, value)| value).collect();
                return Ok(Answer::series(values));
            }
        }
        Err(QueryError::TooLarge(MAX_ANSWER * MAX_PAGES))
    }

    /// Flagger's check: GetMetricData without queries, which CloudWatch refuses as invalid
    /// (HTTP 400) once the signature and the permission are good, and as unauthorized before.
    async fn probe(&self) -> Result<(), QueryError> {
        let request = json!({"MetricDataQueries": [], "StartTime": 0, "EndTime": 0});
        match self.get_metric_data(&request).await {
            Ok(_) => Ok(()),
            Err(QueryError::Refused { kind, .. }) if kind.ends_with("HTTP 400") => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// AWS's own error in an error answer: `{"__type": "...#Code", "message": "..."}`. Refused
/// credentials and throttling say so (without the key).
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: Value = serde_json::from_str(body).ok()?;
    let kind = value.get("__type")?.as_str()?;
    let code = kind.rsplit('#').next().unwrap_or(kind);
    let code = code.split(':').next().unwrap_or(code).trim();
    let text = ["message", "Message"]
        .iter()
        .find_map(|key| value.get(*key)?.as_str())
        .unwrap_or_default();
    let mut message = redact::excerpt(text, 4 * PREVIEW);
    let hint = match code {
        "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException" => Some(format!(
            " (AWS refused the Secret's {ACCESS_KEY_ID}, {SECRET_ACCESS_KEY} or {SESSION_TOKEN})"
        )),
        "AccessDenied" | "AccessDeniedException" => {
            Some(" (the key lacks the cloudwatch:GetMetricData permission)".to_string())
        }
        "Throttling" | "ThrottlingException" => {
            return Some(QueryError::Throttled {
                kind: format!("CloudWatch {code}, HTTP {status}"),
                message: format!(
                    "{message} (CloudWatch throttles GetMetricData per account and region; \
                     serin retried once; the check is asked again at the next interval)"
                ),
            });
        }
        _ => None,
    };
    message.push_str(hint.as_deref().unwrap_or_default());
    Some(QueryError::Refused {
        kind: format!("CloudWatch {code}, HTTP {status}"),
        message,
    })
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "CloudWatch GetMetricData JSON",
        detail,
    }
}

fn parse(body: &str) -> Result<Response, QueryError> {
    super::exchange::decode(body, "CloudWatch GetMetricData JSON")
}

/// Adds a page's points to each result's series; a result CloudWatch could not compute
/// (`InternalError`, `Forbidden`) is an error with its messages.
fn collect(answer: &Response, series: &mut BTreeMap<String, Points>) -> Result<(), QueryError> {
    for result in &answer.metric_data_results {
        if let Some(status @ ("InternalError" | "Forbidden")) = result.status_code.as_deref() {
            let messages = result.messages.iter().chain(&answer.messages);
            return Err(QueryError::Refused {
                kind: format!("CloudWatch, result {} {status}", result.id),
                message: redact::excerpt(&joined(messages), 4 * PREVIEW),
            });
        }
        if result.timestamps.len() != result.values.len() {
            return Err(malformed(format!(
                "result {}: {} timestamps for {} values",
                result.id,
                result.timestamps.len(),
                result.values.len()
            )));
        }
        let points = series.entry(result.id.clone()).or_default();
        for (at, value) in result.timestamps.iter().zip(&result.values) {
            points.push((*at, number(value)?));
        }
    }
    Ok(())
}

fn joined<'a>(messages: impl Iterator<Item = &'a Message>) -> String {
    let texts: Vec<String> = messages
        .map(|m| {
            format!(
                "{}: {}",
                m.code.as_deref().unwrap_or("message"),
                m.value.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if texts.is_empty() {
        "no message".into()
    } else {
        texts.join("; ")
    }
}

/// A value: a JSON number, or the strings AWS's JSON uses for what JSON numbers cannot say.
fn number(value: &Value) -> Result<f64, QueryError> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| {
        malformed(format!(
            "value {} is not a number",
            redact::excerpt(&value.to_string(), 80)
        ))
    })
}

/// The one series of the answer (the results with `ReturnData` true); several are an error.
fn one(series: BTreeMap<String, Points>) -> Result<Option<Points>, QueryError> {
    match series.len() {
        0 => Ok(None),
        1 => Ok(series.into_values().next()),
        many => Err(QueryError::ManySeries(many)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::aws_signing::Signer;
    use super::*;

    fn series_of(body: &str) -> Result<BTreeMap<String, Points>, QueryError> {
        let mut series = BTreeMap::new();
        collect(&parse(body)?, &mut series)?;
        Ok(series)
    }

    #[test]
    fn values_are_numbers_or_awss_spelled_out_specials() {
        let series = series_of(
            r#"{"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","Timestamps":[1.7E9,1699999940],"Values":["NaN",2.5],"StatusCode":"Complete"}],"Messages":[]}"#,
        )
        .unwrap();
        let points = &series["e1"];
        assert!(points[0].1.is_nan());
        assert_eq!(points[1], (1_699_999_940.0, 2.5));
        let bad =
            series_of(r#"{"MetricDataResults":[{"Id":"e1","Timestamps":[1],"Values":["x"]}]}"#)
                .unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("response is not CloudWatch GetMetricData JSON")
        );
        let uneven =
            series_of(r#"{"MetricDataResults":[{"Id":"e1","Timestamps":[1,2],"Values":[1]}]}"#)
                .unwrap_err();
        assert!(
            uneven.to_string().contains("2 timestamps for 1 values"),
            "{uneven}"
        );
    }

    #[test]
    fn a_result_cloudwatch_could_not_compute_is_an_error_with_its_messages() {
        let error = series_of(
            r#"{"MetricDataResults":[{"Id":"e1","Timestamps":[],"Values":[],"StatusCode":"InternalError","Messages":[{"Code":"ArithmeticError","Value":"One or more data-points have been dropped due to non-numeric values (NaN, -Infinite, +Infinite)"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "query refused by the metrics server (CloudWatch, result e1 InternalError): ArithmeticError: One or more data-points have been dropped due to non-numeric values (NaN, -Infinite, +Infinite)"
        );
    }

    #[test]
    fn awss_error_answers_say_what_aws_said_and_name_the_keys_not_their_values() {
        let signature = refusal(
            403,
            r#"{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided."}"#,
        )
        .unwrap()
        .to_string();
        assert_eq!(
            signature,
            "query refused by the metrics server (CloudWatch InvalidSignatureException, HTTP 403): The request signature we calculated does not match the signature you provided. (AWS refused the Secret's aws_access_key_id, aws_secret_access_key or aws_session_token)"
        );
        let throttled = refusal(400, r#"{"__type":"Throttling","message":"Rate exceeded"}"#)
            .unwrap()
            .to_string();
        assert!(
            throttled.starts_with("metrics server is throttling (CloudWatch Throttling, HTTP 400): Rate exceeded (CloudWatch throttles"),
            "{throttled}"
        );
        assert_eq!(refusal(502, "<html>"), None);
    }

    #[test]
    fn keys_and_the_region_are_read_trimmed_as_a_secret_made_with_echo_holds_them() {
        let secret = BTreeMap::from([
            (ACCESS_KEY_ID.to_string(), " AKIDEXAMPLE\n".to_string()),
            (SECRET_ACCESS_KEY.to_string(), "s3cret\n".to_string()),
            (SESSION_TOKEN.to_string(), "\n".to_string()),
        ]);
        let connection = Connection {
            client: crate::outbound::client_builder().build().unwrap(),
            address: "http://127.0.0.1:1".into(),
            credentials: super::super::provider::Credentials::of(
                crate::api::metric_provider::MetricProviderKind::CloudWatch,
                &secret,
            ),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(60),
            region: Some(" eu-west-1 ".into()),
        };
        let (Signer::Secret(key), region) = CloudWatch::connect(connection, Utc::now())
            .signing
            .signer
            .unwrap()
        else {
            panic!("the Secret's keys expected")
        };
        assert_eq!(
            (key.access_key_id.as_str(), key.secret_access_key.as_str()),
            ("AKIDEXAMPLE", "s3cret")
        );
        assert_eq!(key.session_token, None, "an empty token is none");
        assert_eq!(region, "eu-west-1");
    }

    #[test]
    fn the_query_must_be_an_array_of_objects() {
        for query in ["{}", "[]", "[1]", "[{\"Id\": \"m1\"}"] {
            let error = metric_data_queries(query).unwrap_err().to_string();
            assert!(
                error.starts_with("query refused by the metrics server (query)"),
                "{error}"
            );
        }
        assert_eq!(metric_data_queries(r#"[{"Id":"m1"}]"#).unwrap().len(), 1);
    }
}
