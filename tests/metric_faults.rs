//! Every fault of a metrics server, the same for every provider: one row per provider (its
//! query language and answer format), one check per fault, against the scriptable server of
//! tests/mock. A fault is an error with its reason or no data — never a value, never a panic.

mod mock;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use mock::Reply;
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::metrics::Queries;
use serin::metrics::provider::{Connection, Credentials, sample};

/// One provider as the fault table sees it.
struct Provider {
    name: &'static str,
    kind: MetricProviderKind,
    query: &'static str,
    secret: &'static [(&'static str, &'static str)],
    /// An answer with one series of one point, its value spelled so.
    one: fn(&str) -> String,
    /// How the format spells NaN and +Inf, when it can at all.
    specials: Option<(&'static str, &'static str)>,
    /// An answer without series.
    empty: &'static str,
    /// An answer with two series.
    two: &'static str,
    /// The service refusing a query: status, its body, and the error serin reports.
    refusal: (u16, &'static str, &'static str),
}

fn prometheus(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1.0,"{value}"]}}]}}}}"#
    )
}

fn graphite(value: &str) -> String {
    format!(r#"[{{"target":"errors","tags":{{}},"datapoints":[[{value},20]]}}]"#)
}

fn influxql(value: &str) -> String {
    format!(
        r#"{{"results":[{{"statement_id":0,"series":[{{"name":"errors","columns":["time","last"],"values":[[2000,{value}]]}}]}}]}}"#
    )
}

const FLUX_HEAD: &str = "#datatype,string,long,dateTime:RFC3339,double\r\n#group,false,false,false,false\r\n#default,_result,,,\r\n,result,table,_time,_value\r\n";

fn flux(value: &str) -> String {
    format!("{FLUX_HEAD},,0,2026-01-01T00:00:10Z,{value}\r\n\r\n")
}

fn datadog(value: &str) -> String {
    format!(
        r#"{{"status":"ok","res_type":"time_series","series":[{{"metric":"errors","expression":"sum:errors{{*}}","pointlist":[[1700000000000.0,{value}]]}}]}}"#
    )
}

fn newrelic(value: &str) -> String {
    format!(r#"{{"results":[{{"result":{value}}}],"metadata":{{"eventTypes":["Transaction"]}}}}"#)
}

fn cloudwatch(value: &str) -> String {
    format!(
        r#"{{"MetricDataResults":[{{"Id":"errors","Label":"errors","Timestamps":[1700000000],"Values":[{value}],"StatusCode":"Complete"}}],"Messages":[]}}"#
    )
}

fn dynatrace(value: &str) -> String {
    format!(
        r#"{{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[{{"metricId":"builtin:service.errors.total.rate","data":[{{"dimensions":[],"dimensionMap":{{}},"timestamps":[1700000000000],"values":[{value}]}}]}}]}}"#
    )
}

const SF_START: &str = "event: control-message\ndata: {\"event\":\"STREAM_START\",\"timestampMs\":1}\n\nevent: metadata\ndata: {\"tsId\":\"AAAA\",\"properties\":{}}\n\n";
const SF_END: &str =
    "event: control-message\ndata: {\"event\":\"END_OF_CHANNEL\",\"timestampMs\":2}\n\n";

fn splunk(value: &str) -> String {
    format!(
        "{SF_START}event: data\ndata: {{\"data\":[{{\"tsId\":\"AAAA\",\"value\":{value}}}],\"logicalTimestampMs\":1700000000000}}\n\n{SF_END}"
    )
}

fn external_metrics(value: &str) -> String {
    format!(
        r#"{{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{{}},"items":[{{"metricName":"errors","metricLabels":{{}},"timestamp":"2023-11-14T22:13:20Z","value":"{value}"}}]}}"#
    )
}

fn stackdriver(value: &str) -> String {
    format!(
        r#"{{"timeSeriesDescriptor":{{"pointDescriptors":[{{"key":"value.errors","valueType":"DOUBLE"}}]}},"timeSeriesData":[{{"labelValues":[],"pointData":[{{"values":[{{"doubleValue":{value}}}],"timeInterval":{{"endTime":"2026-12-02T01:00:00Z"}}}}]}}]}}"#
    )
}

fn providers() -> Vec<Provider> {
    vec![
        Provider {
            name: "prometheus",
            kind: MetricProviderKind::Prometheus,
            query: "sum(rate(errors[1m]))",
            secret: &[("token", "tok-1")],
            one: prometheus,
            specials: Some(("NaN", "+Inf")),
            empty: r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            two: r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#,
            refusal: (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}"#,
                "query refused by the metrics server (bad_data): 1:5: parse error: unexpected \"}\"",
            ),
        },
        Provider {
            name: "graphite",
            kind: MetricProviderKind::Graphite,
            query: "target=sumSeries(app.web.errors)&from=-1min",
            secret: &[("username", "serin"), ("password", "s3cret")],
            one: graphite,
            // graphite-web writes +Inf as 1e9999; other Graphite servers write NaN bare.
            specials: Some(("NaN", "1e9999")),
            empty: "[]",
            two: r#"[{"target":"a","datapoints":[[1,10]]},{"target":"b","datapoints":[[2,10]]}]"#,
            refusal: (
                400,
                "Invalid parameters (Received request for unknown function: nosuchfn); targets: \"nosuchfn(x)\"",
                "metrics server answered HTTP 400: Invalid parameters (Received request for unknown function: nosuchfn); targets: \"nosuchfn(x)\"",
            ),
        },
        Provider {
            name: "influxdb (InfluxQL)",
            kind: MetricProviderKind::InfluxDb,
            query: "SELECT last(\"value\") FROM \"errors\" WHERE time > now() - 1m",
            secret: &[
                ("username", "serin"),
                ("password", "s3cret"),
                ("database", "shop"),
            ],
            one: influxql,
            // InfluxDB 1.x stores no NaN or infinity, and its JSON has no spelling for them.
            specials: None,
            empty: r#"{"results":[{"statement_id":0}]}"#,
            two: r#"{"results":[{"statement_id":0,"series":[{"columns":["time","v"],"values":[[1,1]]},{"columns":["time","v"],"values":[[1,2]]}]}]}"#,
            refusal: (
                401,
                r#"{"error":"authorization failed"}"#,
                "query refused by the metrics server (influxql): authorization failed",
            ),
        },
        Provider {
            name: "influxdb (Flux)",
            kind: MetricProviderKind::InfluxDb,
            query: "from(bucket: \"shop\") |> range(start: -1m) |> mean()",
            secret: &[("token", "tok-2"), ("org", "acme")],
            one: flux,
            specials: Some(("NaN", "+Inf")),
            empty: "\r\n",
            two: "#datatype,string,long,double\r\n#group,false,false,false\r\n#default,_result,,\r\n,result,table,_value\r\n,,0,1\r\n,,1,2\r\n\r\n",
            refusal: (
                400,
                r#"{"code":"invalid","message":"compilation failed: error at @1:1-1:4: undefined identifier frm"}"#,
                "query refused by the metrics server (invalid): compilation failed: error at @1:1-1:4: undefined identifier frm",
            ),
        },
        Provider {
            name: "datadog",
            kind: MetricProviderKind::Datadog,
            query: "sum:trace.http.request.errors{service:web}.as_count()",
            secret: &[
                ("datadog_api_key", "dd-api-1"),
                ("datadog_application_key", "dd-app-1"),
            ],
            one: datadog,
            // Datadog's JSON has no NaN or infinity: a missing point is null.
            specials: None,
            empty: r#"{"status":"ok","res_type":"time_series","series":[]}"#,
            two: r#"{"status":"ok","series":[{"pointlist":[[1000.0,1]]},{"pointlist":[[1000.0,2]]}]}"#,
            refusal: (
                400,
                r#"{"errors":["Error parsing query: unable to parse sum:: Rule 'scope_expr' didn't match"]}"#,
                "query refused by the metrics server (Datadog, HTTP 400): Error parsing query: unable to parse sum:: Rule 'scope_expr' didn't match",
            ),
        },
        Provider {
            name: "newrelic",
            kind: MetricProviderKind::NewRelic,
            query: "SELECT percentage(count(*), WHERE error IS true) FROM Transaction",
            secret: &[
                ("newrelic_query_key", "nr-key-1"),
                ("newrelic_account_id", "1234567"),
            ],
            one: newrelic,
            // New Relic's JSON has no NaN or infinity: no value is null.
            specials: None,
            empty: r#"{"results":[{"average":null}]}"#,
            two: r#"{"results":[{"count":1},{"average":2}]}"#,
            refusal: (
                400,
                r#"{"error":"NRQL Syntax Error: Error at line 1 position 8, unexpected 'FRM'"}"#,
                "query refused by the metrics server (New Relic, HTTP 400): NRQL Syntax Error: Error at line 1 position 8, unexpected 'FRM'",
            ),
        },
        Provider {
            name: "cloudwatch",
            kind: MetricProviderKind::CloudWatch,
            query: r#"[{"Id":"errors","MetricStat":{"Metric":{"Namespace":"shop","MetricName":"errors"},"Period":60,"Stat":"Sum"}}]"#,
            secret: &[
                ("aws_access_key_id", "AKIDEXAMPLE"),
                ("aws_secret_access_key", "aws-secret-1"),
            ],
            one: cloudwatch,
            // AWS's JSON spells what JSON numbers cannot as strings.
            specials: Some(("\"NaN\"", "\"Infinity\"")),
            empty: r#"{"MetricDataResults":[{"Id":"errors","Label":"errors","Timestamps":[],"Values":[],"StatusCode":"Complete"}],"Messages":[]}"#,
            two: r#"{"MetricDataResults":[{"Id":"a","Timestamps":[1],"Values":[1]},{"Id":"b","Timestamps":[1],"Values":[2]}]}"#,
            refusal: (
                400,
                r#"{"__type":"InvalidParameterValue","message":"The value m1 / m3 for parameter MetricDataQueries.member.1.Expression is invalid."}"#,
                "query refused by the metrics server (CloudWatch InvalidParameterValue, HTTP 400): The value m1 / m3 for parameter MetricDataQueries.member.1.Expression is invalid.",
            ),
        },
        Provider {
            name: "dynatrace",
            kind: MetricProviderKind::Dynatrace,
            query: "builtin:service.errors.total.rate:avg",
            secret: &[("dynatrace_token", "dt-1")],
            one: dynatrace,
            // Dynatrace's JSON has no NaN or infinity: an empty bucket is null.
            specials: None,
            empty: r#"{"totalCount":0,"nextPageKey":null,"result":[{"metricId":"m","data":[]}]}"#,
            two: r#"{"totalCount":2,"result":[{"data":[{"values":[1]},{"values":[2]}]}]}"#,
            refusal: (
                400,
                r#"{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[{"path":"metricSelector","message":"Unknown transformation 'avgg'","parameterLocation":"QUERY","location":null}]}}"#,
                "query refused by the metrics server (Dynatrace, HTTP 400): Constraints violated. metricSelector: Unknown transformation 'avgg'",
            ),
        },
        Provider {
            name: "splunk",
            kind: MetricProviderKind::Splunk,
            query: "data('errors').sum().publish()",
            secret: &[("sf_token_key", "sf-1")],
            one: splunk,
            // SignalFlow's JSON has no NaN or infinity.
            specials: None,
            empty: "event: control-message\ndata: {\"event\":\"STREAM_START\"}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n",
            two: "event: data\ndata: {\"data\":[{\"tsId\":\"A\",\"value\":1},{\"tsId\":\"B\",\"value\":2}]}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n",
            refusal: (
                400,
                r#"{"code":400,"message":"stop must be after start"}"#,
                "query refused by the metrics server (Splunk, HTTP 400): stop must be after start",
            ),
        },
        Provider {
            name: "externalmetrics",
            kind: MetricProviderKind::ExternalMetrics,
            query: "shop/errors?labelSelector=app%3Dweb",
            secret: &[("token", "k8s-1")],
            one: external_metrics,
            // A quantity has no spelling for NaN or infinity.
            specials: None,
            empty: r#"{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[]}"#,
            two: r#"{"items":[{"metricName":"errors","value":"1"},{"metricName":"errors","value":"2"}]}"#,
            refusal: (
                403,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"externalmetrics.external.metrics.k8s.io \"errors\" is forbidden: User \"system:serviceaccount:serin:serin\" cannot list resource \"errors\" in API group \"external.metrics.k8s.io\" in the namespace \"shop\"","reason":"Forbidden","code":403}"#,
                "query refused by the metrics server (Forbidden, HTTP 403): externalmetrics.external.metrics.k8s.io \"errors\" is forbidden: User \"system:serviceaccount:serin:serin\" cannot list resource \"errors\" in API group \"external.metrics.k8s.io\" in the namespace \"shop\" (the token's identity may not get external.metrics.k8s.io resources: grant it get on them)",
            ),
        },
        Provider {
            name: "stackdriver",
            kind: MetricProviderKind::Stackdriver,
            query: "fetch k8s_container | metric 'shop/errors' | every 1m | group_by [], sum(val())",
            // The serviceAccountKey is added by `connection`: its token_uri is a stand-in's.
            secret: &[("project", "shop-prod")],
            one: stackdriver,
            // Protobuf's JSON spells what JSON numbers cannot as strings.
            specials: Some(("\"NaN\"", "\"Infinity\"")),
            empty: r#"{"timeSeriesDescriptor":{"pointDescriptors":[]}}"#,
            two: r#"{"timeSeriesData":[{"pointData":[{"values":[{"doubleValue":1}]}]},{"pointData":[{"values":[{"doubleValue":2}]}]}]}"#,
            refusal: (
                400,
                r#"{"error":{"code":400,"message":"Line 1, column 40: Unknown table operation 'evry'.","status":"INVALID_ARGUMENT"}}"#,
                "query refused by the metrics server (Google INVALID_ARGUMENT, HTTP 400): Line 1, column 40: Unknown table operation 'evry'.",
            ),
        },
    ]
}

/// Google's token endpoint, for the stackdriver row: a token for any grant (the grant itself
/// is checked in tests/metric_google.rs).
async fn google_tokens() -> mock::Server {
    mock::serve(|_| {
        Reply::ok(r#"{"access_token":"ya29.faults","expires_in":3599,"token_type":"Bearer"}"#)
    })
    .await
}

/// A service-account key file whose token endpoint is `tokens` (the throwaway test key).
fn google_key(tokens: &str) -> String {
    let pem = std::fs::read_to_string(format!(
        "{}/tests/fixtures/google/key.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::json!({
        "type": "service_account",
        "client_email": "faults@shop-prod.iam.gserviceaccount.com",
        "private_key": pem,
        "token_uri": format!("{tokens}/token"),
    })
    .to_string()
}

fn connection(
    provider: &Provider,
    address: &str,
    timeout: Duration,
    tokens: Option<&str>,
) -> Connection {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut secret: BTreeMap<String, String> = provider
        .secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(tokens) = tokens {
        secret.insert("serviceAccountKey".into(), google_key(tokens));
    }
    Connection {
        client: reqwest::Client::new(),
        address: address.to_string(),
        credentials: Credentials::of(provider.kind, &secret),
        headers: vec![("X-Scope-OrgID".into(), "team-a".into())],
        timeout,
        interval: Duration::from_secs(60),
        // A region on a prometheus template would select Amazon Managed Prometheus.
        region: (provider.kind == MetricProviderKind::CloudWatch).then(|| "eu-west-1".into()),
    }
}

/// The provider's check, with a 2-second timeout, against a server answering `reply`.
async fn check(
    provider: &Provider,
    reply: impl Fn(&mock::Request) -> Reply + Send + Sync + 'static,
) -> (Sample, mock::Server) {
    check_within(provider, Duration::from_secs(2), reply).await
}

async fn check_within(
    provider: &Provider,
    timeout: Duration,
    reply: impl Fn(&mock::Request) -> Reply + Send + Sync + 'static,
) -> (Sample, mock::Server) {
    let server = mock::serve(reply).await;
    let tokens = match provider.kind {
        MetricProviderKind::Stackdriver => Some(google_tokens().await),
        _ => None,
    };
    let queries = Queries::Instant(provider.query.to_string());
    let found = sample(
        provider.kind,
        connection(
            provider,
            &server.url,
            timeout,
            tokens.as_ref().map(|t| t.url.as_str()),
        ),
        &queries,
        Utc::now(),
        None,
    )
    .await;
    (found, server)
}

async fn answer(provider: &Provider, body: String) -> Sample {
    check(provider, move |_| Reply::ok(&body)).await.0
}

fn error_of(provider: &Provider, sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("{}: expected an error, got {other:?}", provider.name),
    }
}

#[tokio::test]
async fn values_no_data_and_several_series_in_every_format() {
    for p in &providers() {
        assert_eq!(
            answer(p, (p.one)("2.5")).await,
            Sample::Value(2.5),
            "{}",
            p.name
        );
        assert_eq!(
            answer(p, p.empty.to_string()).await,
            Sample::NoData,
            "{}",
            p.name
        );
        let two = error_of(p, answer(p, p.two.to_string()).await);
        assert_eq!(
            two,
            "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))",
            "{}",
            p.name
        );
        if let Some((nan, infinity)) = p.specials {
            assert_eq!(
                answer(p, (p.one)(nan)).await,
                Sample::NoData,
                "{}: NaN",
                p.name
            );
            assert_eq!(
                answer(p, (p.one)(infinity)).await,
                Sample::Value(f64::INFINITY),
                "{}",
                p.name
            );
        }
    }
}

#[tokio::test]
async fn malformed_and_truncated_answers_are_errors_naming_the_format() {
    for p in &providers() {
        let whole = (p.one)("2.5");
        let truncated = whole[..whole.len() - 8].to_string();
        for body in [truncated, "<html>Bad Gateway</html>".to_string()] {
            let message = error_of(p, answer(p, body.clone()).await);
            assert!(
                message.starts_with("response is not "),
                "{}: {body}: {message}",
                p.name
            );
        }
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    for p in &providers() {
        let body = (p.one)("1");
        let slow = move |_: &mock::Request| Reply {
            delay: Duration::from_secs(5),
            ..Reply::ok(&body)
        };
        let (found, _server) = check(p, slow).await;
        assert_eq!(
            error_of(p, found),
            "metrics server did not answer within 2s",
            "{}",
            p.name
        );
    }
}

#[tokio::test]
async fn a_refusal_reports_the_services_own_message() {
    for p in &providers() {
        let (status, body, expected) = p.refusal;
        let (found, _server) = check(p, move |_| Reply::status(status, body)).await;
        assert_eq!(error_of(p, found), expected, "{}", p.name);
        // A proxy's page in front of the service: its status and the start of the page.
        let (found, _server) =
            check(p, |_| Reply::status(502, "<html>upstream reset</html>")).await;
        assert_eq!(
            error_of(p, found),
            "metrics server answered HTTP 502: <html>upstream reset</html>",
            "{}",
            p.name
        );
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_once_within_the_timeout_and_reported_beyond_it() {
    for p in &providers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (seen, body) = (calls.clone(), (p.one)("3"));
        let limited_once = move |_: &mock::Request| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(429, "slow down").header("Retry-After", "1")
            } else {
                Reply::ok(&body)
            }
        };
        // A Retry-After of 1s fits in a 10s timeout, however slow the machine.
        let (found, server) = check_within(p, Duration::from_secs(10), limited_once).await;
        assert_eq!(found, Sample::Value(3.0), "{}", p.name);
        assert_eq!(server.received().len(), 2, "{}: one retry", p.name);

        let (found, server) = check(p, |_| {
            Reply::status(429, "slow down").header("Retry-After", "3600")
        })
        .await;
        assert_eq!(
            error_of(p, found),
            "metrics server is rate limiting (HTTP 429); it asked to retry after 3600s, and serin waits at most once, within the query's timeout",
            "{}",
            p.name
        );
        assert_eq!(
            server.received().len(),
            1,
            "{}: no wait past the timeout",
            p.name
        );
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_without_being_read_whole() {
    for p in &providers() {
        for unannounced in [false, true] {
            let big = move |_: &mock::Request| {
                let reply = Reply::ok("").filler(200 * 1024 * 1024);
                if unannounced {
                    reply.unannounced()
                } else {
                    reply
                }
            };
            let (found, _server) = check(p, big).await;
            assert_eq!(
                error_of(p, found),
                "the metrics server's answer is larger than 8 MiB; aggregate the query (e.g. with sum(...))",
                "{}",
                p.name
            );
        }
    }
    let peak = mock::peak_memory("self");
    assert!(
        peak < mock::MEMORY_BOUND,
        "an answer was buffered: peak memory {} MiB",
        peak >> 20
    );
}

#[tokio::test]
async fn credentials_and_headers_reach_each_service_as_it_documents_them() {
    let expected = [
        ("GET /api/v1/query?query=", "authorization: Bearer tok-1"),
        (
            "GET /render?target=sumSeries",
            "authorization: Basic c2VyaW46czNjcmV0",
        ),
        (
            "GET /query?q=SELECT",
            "authorization: Basic c2VyaW46czNjcmV0",
        ),
        ("POST /api/v2/query?org=acme", "authorization: Token tok-2"),
        ("GET /api/v1/query?query=sum", "dd-api-key: dd-api-1"),
        (
            "GET /v1/accounts/1234567/query?nrql=SELECT",
            "x-query-key: nr-key-1",
        ),
        (
            "POST / HTTP/1.1",
            "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/",
        ),
        (
            "GET /api/v2/metrics/query?metricSelector=builtin",
            "authorization: Api-Token dt-1",
        ),
        ("POST /v2/signalflow/execute?start=", "x-sf-token: sf-1"),
        (
            "GET /apis/external.metrics.k8s.io/v1beta1/namespaces/shop/errors?labelSelector=app%3Dweb",
            "authorization: Bearer k8s-1",
        ),
        (
            "POST /v3/projects/shop-prod/timeSeries:query",
            "authorization: Bearer ya29.faults",
        ),
    ];
    assert_eq!(providers().len(), expected.len(), "a row per provider");
    for (p, (line, authorization)) in providers().iter().zip(expected) {
        let body = (p.one)("1");
        let (found, server) = check(p, move |_| Reply::ok(&body)).await;
        assert_eq!(found, Sample::Value(1.0), "{}", p.name);
        let request = &server.received()[0];
        assert!(
            request.head.starts_with(line),
            "{}: {}",
            p.name,
            request.head
        );
        assert!(
            request.head.contains(authorization),
            "{}: {}",
            p.name,
            request.head
        );
        assert!(request.head.contains("x-scope-orgid: team-a"), "{}", p.name);
    }
    // Datadog takes both keys in headers, and the window as epoch seconds: ten intervals.
    let dd = &providers()[4];
    let (_, server) = check(dd, |_| Reply::ok(&datadog("1"))).await;
    let request = &server.received()[0];
    assert!(request.head.contains("dd-application-key: dd-app-1"));
    let url = reqwest::Url::parse(&format!(
        "http://x{}",
        request.line().split(' ').nth(1).unwrap()
    ))
    .unwrap();
    let param = |name: &str| -> i64 {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.parse().unwrap())
            .unwrap()
    };
    assert_eq!(param("to") - param("from"), 600, "{}", request.line());
    // New Relic gets Flagger's window appended to the NRQL: one interval.
    let nr = &providers()[5];
    let (_, server) = check(nr, |_| Reply::ok(&newrelic("1"))).await;
    let request = &server.received()[0];
    let url = reqwest::Url::parse(&format!(
        "http://x{}",
        request.line().split(' ').nth(1).unwrap()
    ))
    .unwrap();
    let nrql = url.query_pairs().find(|(k, _)| k == "nrql").unwrap().1;
    assert_eq!(nrql, format!("{} SINCE 60 seconds ago", nr.query));
    // Flux goes as the v2 API's JSON request, asking for annotated CSV.
    let flux = &providers()[3];
    let (_, server) = check(flux, |_| Reply::ok(&flux_answer())).await;
    let request = &server.received()[0];
    assert!(
        request.head.contains("content-type: application/json"),
        "{}",
        request.head
    );
    let json = request.json();
    assert_eq!(json["query"], flux.query);
    assert_eq!(json["type"], "flux");
    assert_eq!(
        json["dialect"]["annotations"],
        serde_json::json!(["datatype", "group", "default"])
    );
    // InfluxQL asks for epoch milliseconds from the Secret's database.
    let influxql = &providers()[2];
    let (_, server) = check(influxql, |_| {
        Reply::ok(r#"{"results":[{"statement_id":0}]}"#)
    })
    .await;
    let line = server.received()[0].line().to_string();
    assert!(
        line.contains("epoch=ms") && line.contains("db=shop"),
        "{line}"
    );
}

fn flux_answer() -> String {
    flux("1")
}
