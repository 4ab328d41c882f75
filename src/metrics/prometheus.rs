//! The Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`), which Thanos, Mimir and
//! VictoriaMetrics serve too. Parsing is separate from transport so every response shape and
//! fault is tested without a server.
//!
//! Amazon Managed Prometheus serves the same API under its workspace's URL
//! (`https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>`) and wants every query
//! signed with AWS Signature Version 4 for the service `aps`: a template selects it with
//! `provider.region` (a region means nothing else to a Prometheus server), and its queries are
//! then signed with the Secret's AWS keys or the pod's web identity (`super::aws_signing`).
//!
//! Google Managed Prometheus serves it too, under
//! `https://monitoring.googleapis.com/v1/projects/<project>/location/global/prometheus`, and
//! wants a Google OAuth access token: a template whose address is on
//! `monitoring.googleapis.com`, or whose Secret holds a `serviceAccountKey`, sends one from
//! `super::google_auth` (that key, else workload identity) instead of the Secret's `token`.
//!
//! Outcomes are explicit: a value, no data (an empty result, or NaN as Prometheus returns for
//! 0/0), or an error with the reason. A fault is never a value.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::outbound::redact;

use super::aws_signing::{self, AwsSigning, Outgoing};
pub use super::exchange::Auth;
use super::exchange::{self, Call, PREVIEW, Reach, Server};
use super::google_auth::{self, TokenSource};
pub use super::provider::{Answer, QueryError};
use super::provider::{Connection, Credentials, MetricsProvider};
use super::sigv4;
use super::web_identity::WebIdentity;

/// The largest answer read. A one-series range query at Prometheus' 11,000-point limit is
/// about 400 KB; more means a query returning many series, refused anyway.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// The query that [`MetricsProvider::probe`] sends.
pub const PROBE_QUERY: &str = "vector(1)";
/// Amazon Managed Prometheus' signing name.
pub const AMP_SERVICE: &str = "aps";

/// How to reach one Prometheus-compatible server: the Prometheus implementation of
/// [`MetricsProvider`].
#[derive(Clone)]
pub struct Endpoint {
    pub client: reqwest::Client,
    /// Base URL, e.g. `http://prometheus.monitoring:9090` (a path prefix is kept).
    pub address: String,
    pub auth: Auth,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Amazon Managed Prometheus: how queries are signed (then `auth` is not sent).
    pub aws: Option<AwsSigning>,
    /// Google Managed Prometheus: where access tokens come from, or why there are none (then
    /// `auth` is not sent).
    pub google: Option<Result<TokenSource, String>>,
}

/// Google Managed Prometheus' host.
pub const GOOGLE_HOST: &str = "monitoring.googleapis.com";

/// Whether a connection is to Google Managed Prometheus: its address is Google's, or its
/// Secret holds a Google service-account key.
pub fn is_google(connection: &Connection) -> bool {
    let host = reqwest::Url::parse(&connection.address)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    host.as_deref() == Some(GOOGLE_HOST)
        || connection
            .credentials
            .get(google_auth::SERVICE_ACCOUNT_KEY)
            .is_some()
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct InstantSeries {
    value: (f64, String),
}

#[derive(Deserialize)]
struct RangeSeries {
    values: Vec<(f64, String)>,
}

/// Prometheus writes sample values as strings, with `NaN`, `+Inf` and `-Inf` spelled out.
pub fn parse_value(text: &str) -> Result<f64, QueryError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| malformed(format!("sample value {text:?} is not a number"))),
    }
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "Prometheus API JSON",
        detail,
    }
}

fn data(body: &str) -> Result<Data, QueryError> {
    let envelope: Envelope = super::exchange::decode(body, "Prometheus API JSON")?;
    if envelope.status != "success" {
        return Err(QueryError::Refused {
            kind: envelope
                .error_type
                .unwrap_or_else(|| envelope.status.clone()),
            message: redact::excerpt(&envelope.error.unwrap_or_default(), 4 * PREVIEW),
        });
    }
    envelope
        .data
        .ok_or_else(|| malformed("status success without data".into()))
}

/// An instant query's answer: one value from a one-series vector or a scalar. NaN (0/0, e.g. a
/// success rate without requests) and an empty vector are no data.
pub fn parse_instant(body: &str) -> Result<Answer<f64>, QueryError> {
    let data = data(body)?;
    let value = match data.result_type.as_str() {
        "scalar" => {
            let (_, value): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| malformed(format!("scalar result: {e}")))?;
            parse_value(&value)?
        }
        "vector" => {
            let series: Vec<InstantSeries> = serde_json::from_value(data.result)
                .map_err(|e| malformed(format!("vector result: {e}")))?;
            match series.as_slice() {
                [] => return Ok(Answer::NoData),
                [one] => parse_value(&one.value.1)?,
                many => return Err(QueryError::ManySeries(many.len())),
            }
        }
        other => {
            return Err(QueryError::WrongType {
                expected: "a vector or a scalar from an instant query",
                got: other.to_string(),
            });
        }
    };
    Ok(if value.is_nan() {
        Answer::NoData
    } else {
        Answer::Value(value)
    })
}

/// A range query's answer: every value of the one series, NaN values left in (the judge counts
/// and drops them). An empty matrix is no data.
pub fn parse_range(body: &str) -> Result<Answer<Vec<f64>>, QueryError> {
    let data = data(body)?;
    if data.result_type != "matrix" {
        return Err(QueryError::WrongType {
            expected: "a matrix from a range query",
            got: data.result_type,
        });
    }
    let series: Vec<RangeSeries> = serde_json::from_value(data.result)
        .map_err(|e| malformed(format!("matrix result: {e}")))?;
    match series.as_slice() {
        [] => Ok(Answer::NoData),
        [one] => Ok(Answer::Value(
            one.values
                .iter()
                .map(|(_, v)| parse_value(v))
                .collect::<Result<_, _>>()?,
        )),
        many => Err(QueryError::ManySeries(many.len())),
    }
}

/// Seconds since the epoch with millisecond precision, as the API accepts them.
fn timestamp(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// `token` is a bearer token; `username` and `password` are basic auth.
pub fn auth(credentials: &Credentials) -> Auth {
    match credentials.get("token") {
        Some(token) => Auth::Bearer(token.to_string()),
        None => Auth::basic(credentials).unwrap_or_default(),
    }
}

impl MetricsProvider for Endpoint {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        Endpoint::instant(self, query).await
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        Endpoint::range(self, query, start, end, step).await
    }

    /// A trivial query rather than `/-/ready`: every Prometheus-compatible server answers
    /// `/api/v1/query` under the configured path prefix (Mimir serves no `/-/ready`, and
    /// VictoriaMetrics' health path differs), and it goes through the same credentials,
    /// tenant headers and TLS the real queries use, which a readiness path may not check.
    async fn probe(&self) -> Result<(), QueryError> {
        match Endpoint::instant(self, PROBE_QUERY).await? {
            Answer::Value(1.0) => Ok(()),
            other => Err(QueryError::Unhealthy(format!(
                "{PROBE_QUERY} answered {other:?}, not 1"
            ))),
        }
    }
}

impl Endpoint {
    /// The Prometheus client for a resolved connection.
    pub fn connect(connection: Connection) -> Self {
        let identity = aws_signing::pod_identity(&connection);
        Self::connect_with(connection, identity)
    }

    /// The client of Google Managed Prometheus at the connection's address (whatever its
    /// host), with tokens from the Secret's key or else the metadata server at
    /// `metadata_host` rather than the one `GCE_METADATA_HOST` names.
    pub fn connect_google(connection: Connection, metadata_host: String) -> Self {
        let google = TokenSource::of(&connection.credentials, metadata_host);
        Self {
            google: Some(google),
            ..Self::connect_with(connection, None)
        }
    }

    /// [`Endpoint::connect`] with the web identity given rather than read from the environment
    /// (it only matters with `provider.region`, for Amazon Managed Prometheus).
    pub fn connect_with(connection: Connection, identity: Option<WebIdentity>) -> Self {
        let aws = aws_signing::region(&connection).map(|_| {
            AwsSigning::of(
                &connection,
                identity,
                AMP_SERVICE,
                "Amazon Managed Prometheus",
            )
        });
        let google = is_google(&connection)
            .then(|| TokenSource::of(&connection.credentials, google_auth::metadata_host()));
        Self {
            aws,
            google,
            auth: auth(&connection.credentials),
            client: connection.client,
            address: connection.address,
            headers: connection.headers,
            timeout: connection.timeout,
        }
    }

    /// `GET /api/v1/query?query=...`.
    pub async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let body = self.get("api/v1/query", &[("query", query)]).await?;
        parse_instant(&body)
    }

    /// `GET /api/v1/query_range?query=...&start=...&end=...&step=...`.
    pub async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        let (start, end) = (timestamp(start), timestamp(end));
        let step = format!("{}", step.as_secs_f64());
        let params = [
            ("query", query),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
        ];
        let body = self.get("api/v1/query_range", &params).await?;
        parse_range(&body)
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        let (signed_path, signed_auth, google_auth);
        let (path, params, auth): (&str, &[(&str, &str)], &Auth) = match (&self.aws, &self.google) {
            (None, None) => (path, params, &self.auth),
            (None, Some(tokens)) => {
                google_auth = Auth::Bearer(self.google_token(tokens).await?);
                (path, params, &google_auth)
            }
            (Some(signing), _) => {
                // The query goes in the path, encoded as it is signed.
                signed_path = format!("{path}?{}", sigv4::query_string(params));
                signed_auth = Auth::Keys(self.sign(signing, &signed_path).await?);
                (&signed_path, &[], &signed_auth)
            }
        };
        let server = Server {
            client: &self.client,
            address: &self.address,
            auth,
            headers: &self.headers,
            timeout: self.timeout,
        };
        let call = Call {
            path,
            params,
            body: None,
            limit: MAX_ANSWER,
        };
        server.send(&call, refusal).await
    }

    /// An access token for Google Managed Prometheus.
    async fn google_token(
        &self,
        tokens: &Result<TokenSource, String>,
    ) -> Result<String, QueryError> {
        let tokens = tokens.as_ref().map_err(|message| QueryError::Refused {
            kind: "secretRef".into(),
            message: message.clone(),
        })?;
        let reach = Reach {
            client: self.client.clone(),
            address: self.address.clone(),
            headers: Vec::new(),
            timeout: self.timeout,
        };
        google_auth::access_token(tokens, &reach).await
    }

    /// The SigV4 headers of `GET <address>/<path>` (query included).
    async fn sign(
        &self,
        signing: &AwsSigning,
        path: &str,
    ) -> Result<Vec<(&'static str, String)>, QueryError> {
        let reach = Reach {
            client: self.client.clone(),
            address: self.address.clone(),
            headers: Vec::new(),
            timeout: self.timeout,
        };
        let outgoing = Outgoing {
            method: "GET",
            url: &exchange::url(&self.address, path),
            headers: &[],
            body: b"",
        };
        signing.headers(&outgoing, &reach).await
    }
}

/// Prometheus refuses a query with 400/422 (503 when overloaded) and a JSON error: its message.
/// Amazon Managed Prometheus refuses a signature or a permission with 403 and AWS's
/// `{"message": ...}`: that message, naming the keys (not their values).
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    match (status, data(body)) {
        (400 | 422 | 503, Err(refused @ QueryError::Refused { .. })) => Some(refused),
        (401 | 403, _) if google_auth::api_refusal(status, body).is_some() => {
            google_auth::api_refusal(status, body)
        }
        (401 | 403, _) => {
            let message = exchange::json_message(body, "message")
                .or_else(|| exchange::json_message(body, "Message"))?;
            Some(QueryError::Refused {
                kind: format!("AWS, HTTP {status}"),
                message: format!(
                    "{message} (AWS refused the Secret's {}, {} or {}, or the key lacks the \
                     aps:QueryMetrics permission)",
                    aws_signing::ACCESS_KEY_ID,
                    aws_signing::SECRET_ACCESS_KEY,
                    aws_signing::SESSION_TOKEN
                ),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(values: &[&str]) -> String {
        let series: Vec<String> = values
            .iter()
            .map(|v| format!(r#"{{"metric":{{}},"value":[1700000000.123,"{v}"]}}"#))
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        )
    }

    #[test]
    fn instant_values_scalars_and_special_values() {
        assert_eq!(parse_instant(&vector(&["99.5"])), Ok(Answer::Value(99.5)));
        assert_eq!(parse_instant(&vector(&[])), Ok(Answer::NoData));
        assert_eq!(parse_instant(&vector(&["NaN"])), Ok(Answer::NoData));
        assert_eq!(
            parse_instant(&vector(&["+Inf"])),
            Ok(Answer::Value(f64::INFINITY))
        );
        assert_eq!(
            parse_instant(&vector(&["-Inf"])),
            Ok(Answer::Value(f64::NEG_INFINITY))
        );
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"42"]}}"#;
        assert_eq!(parse_instant(scalar), Ok(Answer::Value(42.0)));
    }

    #[test]
    fn instant_faults_are_errors_never_values() {
        assert_eq!(
            parse_instant(&vector(&["1", "2"])),
            Err(QueryError::ManySeries(2))
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            parse_instant(matrix),
            Err(QueryError::WrongType { .. })
        ));
        assert!(matches!(
            parse_instant("<html>502</html>"),
            Err(QueryError::Malformed { .. })
        ));
        assert!(matches!(
            parse_instant(&vector(&["fast"])),
            Err(QueryError::Malformed { .. })
        ));
        let refused =
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_instant(refused).unwrap_err().to_string(),
            "query refused by the metrics server (bad_data): parse error at char 5"
        );
    }

    #[test]
    fn range_answers_keep_every_value() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"NaN"],[3,"2.5"]]}]}}"#;
        let Ok(Answer::Value(values)) = parse_range(body) else {
            panic!("expected values")
        };
        assert_eq!(values.len(), 3);
        assert!(values[1].is_nan());
        assert_eq!(values[2], 2.5);
        assert!(matches!(
            parse_range(&vector(&["1"])),
            Err(QueryError::WrongType { .. })
        ));
    }
}
