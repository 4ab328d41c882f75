//! The Prometheus client against a scriptable server speaking the Prometheus HTTP API: every
//! fault the metric-analysis issue lists (timeout, 5xx, malformed JSON, wrong result type, TLS)
//! is an error with its reason — never a value, never a panic — and credentials, headers and
//! TLS settings reach the server as configured.

mod mock;

use std::time::Duration;

use chrono::Utc;
use mock::Reply;
use serin::controller::clients::{Clients, Setting};
use serin::engine::input::Sample;
use serin::metrics::prometheus::{Answer, Auth, Endpoint, QueryError};
use serin::metrics::{Queries, sample};

/// A mock metrics server answering `reply(request line)`; `tls` serves HTTPS with the given
/// certificate and key (DER).
async fn mock(
    reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
    tls: Option<(Vec<u8>, Vec<u8>)>,
) -> (String, mock::Server) {
    let answer = move |request: &mock::Request| reply(request.line());
    let server = match tls {
        Some((certificate, key)) => mock::serve_tls(answer, certificate, key).await,
        None => mock::serve(answer).await,
    };
    (server.url.clone(), server)
}

/// The request heads a server received.
fn heads(server: &mock::Server) -> Vec<String> {
    server.received().into_iter().map(|r| r.head).collect()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn endpoint(address: &str) -> Endpoint {
    Endpoint {
        client: http(),
        address: address.to_string(),
        auth: Auth::None,
        headers: Vec::new(),
        timeout: Duration::from_secs(2),
        aws: None,
        google: None,
    }
}

fn vector(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1.0,"{value}"]}}]}}}}"#
    )
}

async fn instant(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Sample {
    let (address, _) = mock(reply, None).await;
    sample(
        &endpoint(&address),
        &Queries::Instant("up".into()),
        Utc::now(),
        None,
    )
    .await
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn values_nan_infinities_and_empty_results() {
    assert_eq!(
        instant(|_| Reply::ok(&vector("99.25"))).await,
        Sample::Value(99.25)
    );
    assert_eq!(
        instant(|_| Reply::ok(&vector("NaN"))).await,
        Sample::NoData,
        "NaN (0/0) is no data"
    );
    assert_eq!(
        instant(|_| Reply::ok(&vector("+Inf"))).await,
        Sample::Value(f64::INFINITY)
    );
    assert_eq!(
        instant(|_| Reply::ok(&vector("-Inf"))).await,
        Sample::Value(f64::NEG_INFINITY)
    );
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert_eq!(instant(|_| Reply::ok(empty)).await, Sample::NoData);
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let slow = |_: &str| Reply {
        delay: Duration::from_secs(5),
        ..Reply::ok(&vector("1"))
    };
    let message = error_of(instant(slow).await);
    assert_eq!(message, "metrics server did not answer within 2s");
}

#[tokio::test]
async fn a_5xx_is_an_error_with_the_start_of_its_body() {
    let broken = |_: &str| Reply {
        status: 502,
        ..Reply::ok("<html>Bad Gateway: upstream prometheus-0 reset</html>")
    };
    let message = error_of(instant(broken).await);
    assert_eq!(
        message,
        "metrics server answered HTTP 502: <html>Bad Gateway: upstream prometheus-0 reset</html>"
    );
}

#[tokio::test]
async fn a_refused_query_reports_prometheus_own_message() {
    let refused = |_: &str| Reply {
        status: 400,
        ..Reply::ok(
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}"#,
        )
    };
    let message = error_of(instant(refused).await);
    assert!(
        message.starts_with("query refused by the metrics server (bad_data): 1:5: parse error"),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_result_types_are_errors() {
    let message = error_of(instant(|_| Reply::ok(r#"{"status":"success","data":"#)).await);
    assert!(
        message.starts_with("response is not Prometheus API JSON"),
        "{message}"
    );
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
    let message = error_of(instant(move |_| Reply::ok(matrix)).await);
    assert_eq!(
        message,
        "expected a vector or a scalar from an instant query, got a matrix result"
    );
    let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}"#;
    let message = error_of(instant(move |_| Reply::ok(two)).await);
    assert!(message.contains("returned 2 series"), "{message}");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let result = sample(
        &endpoint(&mock::closed_url()),
        &Queries::Instant("up".into()),
        Utc::now(),
        None,
    )
    .await;
    let message = error_of(result);
    assert!(
        message.starts_with("metrics server unreachable"),
        "{message}"
    );
}

#[tokio::test]
async fn credentials_and_headers_reach_the_server_but_not_the_error() {
    let (address, seen) = mock(
        |_| Reply {
            status: 500,
            ..Reply::ok("boom")
        },
        None,
    )
    .await;
    let mut basic = endpoint(&address);
    basic.auth = Auth::Basic {
        username: "serin".into(),
        password: "s3cret-pass".into(),
    };
    basic.headers = vec![("X-Scope-OrgID".into(), "team-a".into())];
    let message = match basic.instant("up").await {
        Err(error) => error.to_string(),
        Ok(answer) => panic!("expected an error, got {answer:?}"),
    };
    assert!(!message.contains("s3cret"), "{message}");
    let mut bearer = endpoint(&address);
    bearer.auth = Auth::Bearer("tok-123".into());
    let _ = bearer.instant("up").await;
    let seen = heads(&seen);
    // "serin:s3cret-pass" in base64.
    assert!(
        seen[0].contains("authorization: Basic c2VyaW46czNjcmV0LXBhc3M="),
        "{seen:?}"
    );
    assert!(seen[0].contains("x-scope-orgid: team-a"), "{seen:?}");
    assert!(
        seen[1].contains("authorization: Bearer tok-123"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn range_queries_send_the_window_and_step_and_feed_the_judge() {
    let matrix = |values: &[f64]| {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(r#"[{i},"{v}"]"#))
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
            points.join(",")
        )
    };
    let (canary, primary) = (matrix(&[3.0, 3.5, 2.5]), matrix(&[1.0, 1.5]));
    let (address, seen) = mock(
        move |line| {
            Reply::ok(if line.contains("primary") {
                &primary
            } else {
                &canary
            })
        },
        None,
    )
    .await;
    let queries = Queries::Compared {
        canary: "errors{w=\"web\"}".into(),
        primary: "errors{w=\"web-primary\"}".into(),
        step: Duration::from_secs(15),
        lookback: Duration::from_secs(600),
    };
    let now = Utc::now();
    let result = sample(&endpoint(&address), &queries, now, None).await;
    assert_eq!(
        result,
        Sample::Compared {
            canary: vec![3.0, 3.5, 2.5],
            primary: vec![1.0, 1.5]
        }
    );
    let seen = heads(&seen);
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /api/v1/query_range?")
                && r.contains("step=15")
                && r.contains(&format!("end={}", now.timestamp()))),
        "{seen:?}"
    );
    // A fault on either side is an error naming the side.
    let (address, _) = mock(
        |line| {
            if line.contains("primary") {
                Reply {
                    status: 503,
                    ..Reply::ok("overloaded")
                }
            } else {
                Reply::ok(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            }
        },
        None,
    )
    .await;
    let message = error_of(sample(&endpoint(&address), &queries, now, None).await);
    assert_eq!(
        message,
        "primary query: metrics server answered HTTP 503: overloaded"
    );
}

#[tokio::test]
async fn tls_is_verified_unless_told_otherwise_and_a_custom_ca_is_trusted() {
    let (pem, certificate, key) = mock::certificate();
    let tls = (certificate, key);
    let (address, _) = mock(|_| Reply::ok(&vector("7")), Some(tls)).await;
    let base = http();
    let clients = Clients::default();
    let with = |client: reqwest::Client| Endpoint {
        client,
        ..endpoint(&address)
    };
    // Unknown issuer: a TLS error, not a value.
    let message = match with(base.clone()).instant("up").await {
        Err(QueryError::Transport(message)) => message,
        other => panic!("expected a TLS error, got {other:?}"),
    };
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    let setting = |ca: Option<&str>, insecure: bool| Setting {
        ca: ca.map(str::to_string),
        insecure,
        proxy: None,
    };
    let trusted = clients.get(&base, &setting(Some(&pem), false)).unwrap();
    assert_eq!(with(trusted).instant("up").await, Ok(Answer::Value(7.0)));
    let insecure = clients.get(&base, &setting(None, true)).unwrap();
    assert_eq!(with(insecure).instant("up").await, Ok(Answer::Value(7.0)));
    let bad = clients.get(&base, &setting(Some("not a certificate"), false));
    assert!(bad.is_err());
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_without_being_read_whole() {
    // Announced: refused on its content-length. Unannounced: refused at the limit while reading.
    for unannounced in [false, true] {
        let message = error_of(
            instant(move |_| {
                let reply = Reply::ok("").filler(200 * 1024 * 1024);
                if unannounced {
                    reply.unannounced()
                } else {
                    reply
                }
            })
            .await,
        );
        assert_eq!(
            message,
            "the metrics server's answer is larger than 8 MiB; aggregate the query (e.g. with sum(...))"
        );
    }
    let peak = mock::peak_memory("self");
    assert!(
        peak < mock::MEMORY_BOUND,
        "the answer was buffered: peak memory {} MiB",
        peak >> 20
    );
    assert_eq!(serin::metrics::prometheus::MAX_ANSWER, 8 * 1024 * 1024);
}

#[tokio::test]
async fn an_answer_that_trickles_in_ends_at_the_timeout() {
    let trickling = |_: &str| Reply {
        trickle: Some(Duration::from_millis(300)),
        ..Reply::ok(&vector("1"))
    };
    let message = error_of(instant(trickling).await);
    assert_eq!(message, "metrics server did not answer within 2s");
}

#[tokio::test]
async fn credentials_echoed_by_a_proxy_do_not_reach_the_error() {
    let echo = |_: &str| {
        Reply::status(
            401,
            "<html>401: request had authorization: Bearer sk-live-0123456789 and password=hunter2</html>",
        )
    };
    let message = error_of(instant(echo).await);
    assert!(
        message.starts_with("metrics server answered HTTP 401: <html>401"),
        "{message}"
    );
    assert!(!message.contains("sk-live-0123456789"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn the_egress_policy_refuses_a_loopback_metrics_server_when_enabled() {
    let (address, server) = mock(|_| Reply::ok(&vector("1")), None).await;
    let policy = serin::outbound::egress::Policy {
        mode: serin::outbound::egress::Mode::DenyInternal,
        ..Default::default()
    };
    let endpoint = Endpoint {
        client: policy.client_builder().build().unwrap(),
        ..endpoint(&address.replace("127.0.0.1", "localhost"))
    };
    let sample = sample(&endpoint, &Queries::Instant("up".into()), Utc::now(), None).await;
    let message = error_of(sample);
    assert!(
        message.contains("egress policy refuses") && message.contains("(loopback)"),
        "{message}"
    );
    assert!(server.received().is_empty());
}

/// The `MetricsProvider` trait as the controller uses it: a `Connection` resolved from a
/// template (credentials from the Secret's keys, headers, timeout) becomes the Prometheus
/// implementation, which serves instant and range queries and a health probe.
#[tokio::test]
async fn the_prometheus_provider_serves_instant_range_and_probe_through_the_trait() {
    use serin::api::metric_provider::MetricProviderKind;
    use serin::metrics::provider::{Connection, Credentials, MetricsProvider};

    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"0.5"],[2,"NaN"]]}]}}"#;
    let (address, seen) = mock(
        move |line| {
            if line.contains("/api/v1/query_range?") {
                Reply::ok(matrix)
            } else if line.contains("query=vector%281%29") {
                Reply::ok(&vector("1"))
            } else {
                Reply::ok(&vector("42"))
            }
        },
        None,
    )
    .await;
    let secret = [("token", "tok-9"), ("ca.crt", "pem"), ("other", "x")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let connection = |address: &str| Connection {
        client: http(),
        address: address.to_string(),
        credentials: Credentials::of(MetricProviderKind::Prometheus, &secret),
        headers: vec![("X-Scope-OrgID".into(), "team-b".into())],
        timeout: Duration::from_secs(2),
        interval: Duration::from_secs(60),
        region: None,
    };
    let server = Endpoint::connect(connection(&address));
    assert_eq!(
        MetricsProvider::instant(&server, "up").await,
        Ok(Answer::Value(42.0))
    );
    let end = Utc::now();
    let Ok(Answer::Value(values)) = MetricsProvider::range(
        &server,
        "up",
        end - chrono::Duration::minutes(1),
        end,
        Duration::from_secs(30),
    )
    .await
    else {
        panic!("expected a series")
    };
    assert_eq!(values[0], 0.5);
    assert!(values[1].is_nan(), "NaN kept for the judge");
    assert_eq!(server.probe().await, Ok(()));
    let seen = heads(&seen);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[1].contains("GET /api/v1/query_range?query=up&start="),
        "{seen:?}"
    );
    assert!(
        seen[2].contains("GET /api/v1/query?query=vector%281%29"),
        "{seen:?}"
    );
    for head in &seen {
        assert!(head.contains("authorization: Bearer tok-9"), "{head}");
        assert!(head.contains("x-scope-orgid: team-b"), "{head}");
    }

    // A probe fails with the reason: a server refusing the credentials, one answering
    // something other than 1, one that is gone.
    let (denied, _denied) = mock(|_| Reply::status(401, "unauthorized"), None).await;
    assert_eq!(
        Endpoint::connect(connection(&denied))
            .probe()
            .await
            .unwrap_err()
            .to_string(),
        "metrics server answered HTTP 401: unauthorized"
    );
    let (empty, _empty) = mock(
        |_| Reply::ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
        None,
    )
    .await;
    assert_eq!(
        Endpoint::connect(connection(&empty))
            .probe()
            .await
            .unwrap_err()
            .to_string(),
        "metrics server is not healthy: vector(1) answered NoData, not 1"
    );
    let gone = Endpoint::connect(connection(&mock::closed_url()))
        .probe()
        .await;
    assert!(matches!(gone, Err(QueryError::Transport(_))), "{gone:?}");
}
