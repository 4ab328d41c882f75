//! Metric checks against local stand-ins for hosted metrics services, each following the
//! service's documented request and response format, authentication included: the right keys
//! get series, a wrong or missing key gets the service's own refusal, and serin's error says so
//! without the key. A threshold check and the judge's comparison per service. CloudWatch's and
//! Amazon Managed Prometheus' stand-ins verify each request's SigV4 signature as AWS does,
//! recomputing it with the secret.

mod mock;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mock::{Reply, Request};
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::judge::compare::{Class, JudgeConfig, compare};
use serin::metrics::builtin::Source;
use serin::metrics::provider::{Answer, Connection, Credentials, MetricsProvider, sample};
use serin::metrics::queries;
use serin::metrics::sigv4;

const API_KEY: &str = "0123456789abcdef0123456789abcdef";
const APP_KEY: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// The query string of a request, decoded.
fn params(request: &Request) -> BTreeMap<String, String> {
    let target = request.line().split(' ').nth(1).unwrap_or("/");
    let url = reqwest::Url::parse(&format!("http://stand-in{target}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A request header's value (names are case-insensitive).
fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn forbidden() -> Reply {
    Reply::status(403, r#"{"errors":["Forbidden"]}"#).header("content-type", "application/json")
}

/// Datadog's API as documented: `/api/v1/validate` checks `DD-API-KEY`; `/api/v1/query` needs
/// both keys and `query`, `from`, `to` in epoch seconds, and answers a pointlist in milliseconds
/// at a 10-second rollup. `shop.errors{service:web}` is the canary (5, 5.5, 6, ...), the
/// primary 4 less; the newest bucket is still filling up (half its value); `{*} by {service}`
/// is two series, `{service:gone}` none.
fn datadog(request: &Request) -> Reply {
    let path = request.line().split(' ').nth(1).unwrap_or("/");
    let api_key_ok = header(request, "DD-API-KEY") == Some(API_KEY);
    if path.starts_with("/api/v1/validate") {
        return if api_key_ok {
            Reply::ok(r#"{"valid":true}"#)
        } else {
            forbidden()
        };
    }
    if !path.starts_with("/api/v1/query") {
        return Reply::status(404, r#"{"errors":["Not found"]}"#);
    }
    if !api_key_ok || header(request, "DD-APPLICATION-KEY") != Some(APP_KEY) {
        return forbidden();
    }
    let params = params(request);
    let (Some(query), Some(from), Some(to)) = (
        params.get("query"),
        params.get("from").and_then(|v| v.parse::<i64>().ok()),
        params.get("to").and_then(|v| v.parse::<i64>().ok()),
    ) else {
        return Reply::status(400, r#"{"errors":["Missing query, from or to"]}"#);
    };
    let Some((_, scope)) = query.split_once(':') else {
        let error = format!(
            r#"{{"errors":["Error parsing query: unable to parse {query}: Rule 'scope_expr' didn't match"]}}"#
        );
        return Reply::status(400, &error);
    };
    let series: Vec<String> = match scope {
        "shop.errors{service:web}" => vec![pointlist(from, to, 0.0)],
        "shop.errors{service:web-primary}" => vec![pointlist(from, to, -4.0)],
        "shop.errors{*} by {service}" => {
            vec![pointlist(from, to, 0.0), pointlist(from, to, -4.0)]
        }
        _ => Vec::new(),
    };
    Reply::ok(&format!(
        r#"{{"status":"ok","res_type":"time_series","query":{},"from_date":{},"to_date":{},"series":[{}],"message":""}}"#,
        serde_json::Value::from(query.as_str()),
        from * 1000,
        to * 1000,
        series.join(",")
    ))
}

/// A series from `from` to `to`, one point per 10 s: 5, 5.5, 6, ... plus `offset`, the newest
/// at half its value.
fn pointlist(from: i64, to: i64, offset: f64) -> String {
    let start = from - from % 10;
    let times: Vec<i64> = (start..=to).step_by(10).collect();
    let points: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let value = 5.0 + (i % 3) as f64 * 0.5 + offset;
            let value = if i + 1 == times.len() {
                value / 2.0
            } else {
                value
            };
            format!("[{}.0,{value}]", at * 1000)
        })
        .collect();
    format!(
        r#"{{"metric":"shop.errors","scope":"service:web","interval":10,"length":{},"pointlist":[{}]}}"#,
        points.len(),
        points.join(",")
    )
}

fn connection(address: &str, secret: &[(&str, &str)]) -> Connection {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secret: BTreeMap<String, String> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Connection {
        client: reqwest::Client::new(),
        address: address.to_string(),
        credentials: Credentials::of(MetricProviderKind::Datadog, &secret),
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(60),
        region: None,
    }
}

const KEYS: &[(&str, &str)] = &[
    ("datadog_api_key", API_KEY),
    ("datadog_application_key", APP_KEY),
];

const THRESHOLD: &str = "      - name: errors\n        templateRef: {name: errors}\n        interval: 1m\n        thresholdRange: {max: 5}\n";
const JUDGED: &str = "      - name: errors\n        templateRef: {name: errors}\n        judge: {step: 10s, lookback: 10m, minSamples: 20}\n";

/// The metric (YAML list lines) of the Canary `web` in `shop`, with `template` as its
/// MetricTemplate's query, sampled at `now` through `connection`.
async fn check(connection: Connection, metric: &str, template: &str, now: DateTime<Utc>) -> Sample {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    let queries = queries(&canary, &metric, Some(template), Source::App).unwrap();
    sample(MetricProviderKind::Datadog, connection, &queries, now, None).await
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn datadog_answers_threshold_checks_and_the_judge() {
    let server = mock::serve(datadog).await;
    // A time on the 10-second grid, so the oldest bucket is a whole one.
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let template = "sum:shop.errors{service:{{ target }}}";
    let value = check(connection(&server.url, KEYS), THRESHOLD, template, now).await;
    // The oldest point of the window (Flagger's choice), not the newest, half-filled bucket.
    assert_eq!(value, Sample::Value(5.0));
    let request = &server.received()[0];
    let sent = params(request);
    assert_eq!(sent["query"], "sum:shop.errors{service:web}");
    assert_eq!(sent["to"], "1700000000");
    assert_eq!(sent["from"], "1699999400", "ten intervals of 1m");

    let compared = check(
        connection(&server.url, KEYS),
        JUDGED,
        "sum:shop.errors{service:{{ workload }}}",
        now,
    )
    .await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!(canary.len(), 61, "ten minutes at 10 s, both ends");
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);

    let none = check(
        connection(&server.url, KEYS),
        THRESHOLD,
        "sum:shop.errors{service:gone}",
        now,
    )
    .await;
    assert_eq!(none, Sample::NoData);
    let both = error_of(
        check(
            connection(&server.url, KEYS),
            THRESHOLD,
            "sum:shop.errors{*} by {service}",
            now,
        )
        .await,
    );
    assert_eq!(
        both,
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    let unparsed = error_of(check(connection(&server.url, KEYS), THRESHOLD, "nosuch", now).await);
    assert_eq!(
        unparsed,
        "query refused by the metrics server (Datadog, HTTP 400): Error parsing query: unable to parse nosuch: Rule 'scope_expr' didn't match"
    );
    let probe = serin::metrics::datadog::Datadog::connect(connection(&server.url, KEYS), now);
    assert_eq!(probe.probe().await, Ok(()));
}

#[tokio::test]
async fn datadog_refuses_wrong_and_missing_keys_and_serin_says_so_without_them() {
    let server = mock::serve(datadog).await;
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let template = "sum:shop.errors{service:{{ target }}}";
    let wrong_app = [
        ("datadog_api_key", API_KEY),
        ("datadog_application_key", "guessed-application-key"),
    ];
    let wrong_api = [
        ("datadog_api_key", "guessed-api-key"),
        ("datadog_application_key", APP_KEY),
    ];
    for secret in [&wrong_app[..], &wrong_api[..]] {
        let refused =
            error_of(check(connection(&server.url, secret), THRESHOLD, template, now).await);
        assert!(
            refused.starts_with(
                "query refused by the metrics server (Datadog, HTTP 403): Forbidden (Datadog refused the datadog_api_key or datadog_application_key of the Secret"
            ),
            "{refused}"
        );
        for (_, key) in secret {
            assert!(!refused.contains(key), "{refused}");
        }
    }
    let probe = serin::metrics::datadog::Datadog::connect(connection(&server.url, &wrong_api), now);
    let unhealthy = probe.probe().await.unwrap_err().to_string();
    assert!(unhealthy.contains("HTTP 403): Forbidden"), "{unhealthy}");
    assert!(!unhealthy.contains("guessed-api-key"), "{unhealthy}");

    // A Secret without one of the keys: said before anything is sent.
    let asked = server.received().len();
    let missing = error_of(
        check(
            connection(&server.url, &[("datadog_api_key", API_KEY)]),
            THRESHOLD,
            template,
            now,
        )
        .await,
    );
    assert_eq!(
        missing,
        "query refused by the metrics server (secretRef): the Secret has no datadog_application_key, which Datadog's API needs"
    );
    assert_eq!(
        server.received().len(),
        asked,
        "nothing sent without the keys"
    );
}

const QUERY_KEY: &str = "NRIQ-0123456789abcdefghijklmnopqrstu";
const ACCOUNT: &str = "1234567";

/// New Relic's Insights query API as documented: `GET /v1/accounts/<id>/query?nrql=...` with
/// `X-Query-Key`; a wrong key or account is refused with `{"error": ...}`. The stand-in knows
/// two NRQL shapes: `SELECT average(errors) FROM Metric WHERE service = '<s>' SINCE <n> seconds
/// ago` (one result: the canary 5.5, the primary 1.5; `gone` has none, null), the same
/// `SINCE <ms> UNTIL <ms> TIMESERIES <n> seconds` (one bucket per step), and the probe's
/// `SELECT count(*) FROM Metric`. `FACET` is two facets.
fn newrelic(request: &Request) -> Reply {
    let path = request.line().split(' ').nth(1).unwrap_or("/");
    if header(request, "X-Query-Key") != Some(QUERY_KEY)
        || !path.starts_with(&format!("/v1/accounts/{ACCOUNT}/query?"))
    {
        return Reply::status(401, r#"{"error":"Invalid query key"}"#);
    }
    let nrql = params(request).remove("nrql").unwrap_or_default();
    if nrql.starts_with("SELECT count(*) FROM Metric SINCE") {
        return Reply::ok(r#"{"results":[{"count":1234}]}"#);
    }
    let Some(rest) = nrql.strip_prefix("SELECT average(errors) FROM Metric") else {
        let word = nrql.split_whitespace().nth(1).unwrap_or_default();
        return Reply::status(
            400,
            &format!(
                r#"{{"error":"NRQL Syntax Error: Error at line 1 position 8, unexpected '{word}'"}}"#
            ),
        );
    };
    if rest.contains("FACET") {
        return Reply::ok(
            r#"{"facets":[{"name":"web","results":[{"average":5.5}]},{"name":"web-primary","results":[{"average":1.5}]}]}"#,
        );
    }
    let mean = if rest.contains("service = 'web-primary'") {
        Some(1.5)
    } else if rest.contains("service = 'web'") {
        Some(5.5)
    } else {
        None
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let after = |word: &str| -> Option<i64> {
        let at = words.iter().position(|w| *w == word)?;
        words.get(at + 1)?.parse().ok()
    };
    let value = |v: Option<f64>| v.map_or("null".to_string(), |v| v.to_string());
    match (after("SINCE"), after("UNTIL"), after("TIMESERIES")) {
        (Some(_), None, None) => Reply::ok(&format!(
            r#"{{"results":[{{"average":{}}}],"metadata":{{"eventTypes":["Metric"]}}}}"#,
            value(mean)
        )),
        (Some(since), Some(until), Some(step)) => {
            let buckets: Vec<String> = (since / 1000..until / 1000)
                .step_by(step as usize)
                .enumerate()
                .map(|(i, begin)| {
                    let point = mean.map(|m| m - 0.5 + (i % 3) as f64 * 0.5);
                    format!(
                        r#"{{"results":[{{"average":{}}}],"beginTimeSeconds":{begin},"endTimeSeconds":{}}}"#,
                        value(point),
                        begin + step
                    )
                })
                .collect();
            Reply::ok(&format!(r#"{{"timeSeries":[{}]}}"#, buckets.join(",")))
        }
        _ => Reply::status(400, r#"{"error":"NRQL Syntax Error: bad time clause"}"#),
    }
}

fn nr_connection(address: &str, secret: &[(&str, &str)]) -> Connection {
    Connection {
        credentials: {
            let secret: BTreeMap<String, String> = secret
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Credentials::of(MetricProviderKind::NewRelic, &secret)
        },
        ..connection(address, &[])
    }
}

const NR_KEYS: &[(&str, &str)] = &[
    ("newrelic_query_key", QUERY_KEY),
    // As a Secret made with `echo` holds it (Flagger's issue 951).
    ("newrelic_account_id", "1234567\n"),
];

async fn nr_check(connection: Connection, metric: &str, template: &str) -> Sample {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    let queries = queries(&canary, &metric, Some(template), Source::App).unwrap();
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    sample(
        MetricProviderKind::NewRelic,
        connection,
        &queries,
        now,
        None,
    )
    .await
}

#[tokio::test]
async fn newrelic_answers_threshold_checks_and_the_judge() {
    let server = mock::serve(newrelic).await;
    let ok = || nr_connection(&server.url, NR_KEYS);
    let template = "SELECT average(errors) FROM Metric\n  WHERE service = '{{ target }}'";
    assert_eq!(
        nr_check(ok(), THRESHOLD, template).await,
        Sample::Value(5.5)
    );
    let sent = params(&server.received()[0]);
    assert_eq!(
        sent["nrql"],
        "SELECT average(errors) FROM Metric WHERE service = 'web' SINCE 60 seconds ago"
    );
    let judged = "SELECT average(errors) FROM Metric WHERE service = '{{ workload }}'";
    let compared = nr_check(ok(), JUDGED, judged).await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!(canary.len(), 60, "ten minutes in 10 s buckets");
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    let last = params(server.received().last().unwrap());
    assert!(
        last["nrql"].ends_with("SINCE 1699999400000 UNTIL 1700000000000 TIMESERIES 10 seconds"),
        "{}",
        last["nrql"]
    );

    let gone = "SELECT average(errors) FROM Metric WHERE service = 'gone'";
    assert_eq!(nr_check(ok(), THRESHOLD, gone).await, Sample::NoData);
    let faceted = "SELECT average(errors) FROM Metric FACET service";
    assert_eq!(
        error_of(nr_check(ok(), THRESHOLD, faceted).await),
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    assert_eq!(
        error_of(nr_check(ok(), THRESHOLD, "SELECT nosuch FROM Metric").await),
        "query refused by the metrics server (New Relic, HTTP 400): NRQL Syntax Error: Error at line 1 position 8, unexpected 'nosuch'"
    );
    let windowed = "SELECT average(errors) FROM Metric WHERE service = 'web' SINCE 5 minutes ago";
    assert!(
        error_of(nr_check(ok(), JUDGED, windowed).await)
            .contains("a judged NRQL query must have no SINCE or UNTIL"),
    );
    let probe = serin::metrics::newrelic::NewRelic::connect(ok());
    assert_eq!(probe.probe().await, Ok(()));
}

#[tokio::test]
async fn newrelic_refuses_a_wrong_key_and_serin_says_so_without_it() {
    let server = mock::serve(newrelic).await;
    let template = "SELECT average(errors) FROM Metric WHERE service = '{{ target }}'";
    let wrong_key = [
        ("newrelic_query_key", "NRIQ-guessed"),
        ("newrelic_account_id", ACCOUNT),
    ];
    let wrong_account = [
        ("newrelic_query_key", QUERY_KEY),
        ("newrelic_account_id", "7654321"),
    ];
    for secret in [&wrong_key[..], &wrong_account[..]] {
        let refused =
            error_of(nr_check(nr_connection(&server.url, secret), THRESHOLD, template).await);
        assert_eq!(
            refused,
            "query refused by the metrics server (New Relic, HTTP 401): Invalid query key (New Relic refused the Secret's newrelic_query_key for its newrelic_account_id)"
        );
    }
    let asked = server.received().len();
    for (secret, missing) in [
        (
            &[("newrelic_query_key", QUERY_KEY)][..],
            "the Secret has no newrelic_account_id",
        ),
        (
            &[("newrelic_account_id", ACCOUNT)][..],
            "the Secret has no newrelic_query_key",
        ),
        (
            &[
                ("newrelic_query_key", QUERY_KEY),
                ("newrelic_account_id", "../admin"),
            ][..],
            "the Secret's newrelic_account_id is not an account number",
        ),
    ] {
        let error =
            error_of(nr_check(nr_connection(&server.url, secret), THRESHOLD, template).await);
        assert!(error.contains(missing), "{error}");
    }
    assert_eq!(
        server.received().len(),
        asked,
        "nothing sent without the keys"
    );
}

const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// Temporary credentials: valid only with their session token.
const AWS_TEMP_KEY_ID: &str = "ASIAIOSFODNN7EXAMPLE";
const AWS_TEMP_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const AWS_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN";
const REGION: &str = "eu-west-1";
/// Points per answer page: CloudWatch pages an answer over `MaxDatapoints`; the stand-in pages
/// sooner, so that the judge's window spans several pages.
const PAGE: usize = 25;

fn aws_error(status: u16, kind: &str, message: &str) -> Reply {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    Reply::status(status, &body).header("content-type", CLOUDWATCH_CONTENT_TYPE)
}

const CLOUDWATCH_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Checks a request's SigV4 signature the way AWS does: the key id names a secret, the scope
/// names the region and service, and the signature recomputed from the request as received
/// (method, path, query, the signed headers' values, the body) with that secret must match.
fn verify_signature(request: &Request, service: &str) -> Result<(), Reply> {
    let invalid_token = || {
        aws_error(
            403,
            "com.amazon.coral.service#UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let mismatch = || {
        aws_error(
            403,
            "com.amazon.coral.service#InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        )
    };
    let authorization = header(request, "authorization").ok_or_else(|| {
        aws_error(
            400,
            "com.amazon.coral.service#MissingAuthenticationTokenException",
            "Request is missing Authentication Token",
        )
    })?;
    let fields: BTreeMap<&str, &str> = authorization
        .trim_start_matches("AWS4-HMAC-SHA256")
        .split(',')
        .filter_map(|field| field.trim().split_once('='))
        .collect();
    let (Some(credential), Some(names), Some(sent)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err(aws_error(
            400,
            "com.amazon.coral.service#IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders and Signature.",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let secret = match scope.first() {
        Some(&AWS_KEY_ID) => AWS_SECRET,
        Some(&AWS_TEMP_KEY_ID) if header(request, "x-amz-security-token") == Some(AWS_TOKEN) => {
            AWS_TEMP_SECRET
        }
        _ => return Err(invalid_token()),
    };
    let date = header(request, "x-amz-date").unwrap_or_default();
    let names: Vec<&str> = names.split(';').collect();
    if scope.get(2) != Some(&REGION)
        || scope.get(3) != Some(&service)
        || !names.contains(&"host")
        || !names.contains(&"x-amz-date")
        || scope.get(1).copied() != date.get(..8)
    {
        return Err(mismatch());
    }
    if header(request, "x-amz-security-token").is_some() && !names.contains(&"x-amz-security-token")
    {
        return Err(mismatch());
    }
    let signed: Vec<(&str, &str)> = names
        .iter()
        .map(|name| (*name, header(request, name).unwrap_or_default()))
        .collect();
    let target = request.line().split(' ').nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let canonical = sigv4::canonical_request(&sigv4::Request {
        method: request.line().split(' ').next().unwrap_or_default(),
        path,
        query,
        headers: &signed,
        body: &request.body,
    });
    let scope = sigv4::Scope {
        region: REGION,
        service,
    };
    if sigv4::signature(secret, scope, date, &canonical) != *sent {
        return Err(mismatch());
    }
    Ok(())
}

/// CloudWatch's GetMetricData over AWS JSON 1.0, as documented: `POST /` with `X-Amz-Target`,
/// a SigV4 signature checked as AWS checks it, `StartTime` inclusive and `EndTime` exclusive
/// in epoch seconds, `ScanBy` (newest first by default), `MaxDatapoints` and `NextToken`
/// pagination, and errors as `{"__type", "message"}`. The metric `shop/errors` with the
/// dimension `workload=web` is the canary (5, 5.5, 6, ... one point per `Period`), `web-primary`
/// 4 less, `gone` no points; the namespace `throttled` is refused as throttling.
fn cloudwatch(request: &Request) -> Reply {
    if header(request, "x-amz-target") != Some("GraniteServiceVersion20100801.GetMetricData") {
        return aws_error(400, "UnknownOperationException", "");
    }
    if let Err(refused) = verify_signature(request, "monitoring") {
        return refused;
    }
    let body = request.json();
    let Some(queries) = body["MetricDataQueries"]
        .as_array()
        .filter(|q| !q.is_empty())
    else {
        return aws_error(
            400,
            "com.amazonaws.cloudwatch#MissingRequiredParameterException",
            "The parameter MetricDataQueries must be specified.",
        );
    };
    let (Some(start), Some(end)) = (body["StartTime"].as_i64(), body["EndTime"].as_i64()) else {
        return aws_error(
            400,
            "InvalidParameterValue",
            "StartTime and EndTime must be timestamps.",
        );
    };
    let returned: Vec<&serde_json::Value> = queries
        .iter()
        .filter(|q| q["ReturnData"].as_bool() != Some(false))
        .collect();
    if returned
        .iter()
        .any(|q| q["MetricStat"]["Metric"]["Namespace"] == "throttled")
    {
        return aws_error(400, "Throttling", "Rate exceeded");
    }
    let ascending = body["ScanBy"] == "TimestampAscending";
    let limit = body["MaxDatapoints"]
        .as_u64()
        .map_or(PAGE, |m| (m as usize).min(PAGE));
    let offset: usize = body["NextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("after-")?.parse().ok())
        .unwrap_or(0);
    let mut more = false;
    let results: Vec<serde_json::Value> = returned
        .iter()
        .map(|query| {
            let stat = &query["MetricStat"];
            let period = stat["Period"].as_i64().unwrap_or(60).max(1);
            let workload = stat["Metric"]["Dimensions"][0]["Value"]
                .as_str()
                .unwrap_or_default();
            let offset_value = match workload {
                "web" => Some(0.0),
                "web-primary" => Some(-4.0),
                _ => None,
            };
            let first = start - start.rem_euclid(period);
            let mut points: Vec<(i64, f64)> = match offset_value {
                Some(delta) => (first..end)
                    .step_by(period as usize)
                    .map(|at| (at, 5.0 + ((at - first) / period % 3) as f64 * 0.5 + delta))
                    .collect(),
                None => Vec::new(),
            };
            if !ascending {
                points.reverse();
            }
            let page: Vec<(i64, f64)> = points.iter().skip(offset).take(limit).copied().collect();
            more |= points.len() > offset + page.len();
            serde_json::json!({
                "Id": query["Id"],
                "Label": stat["Metric"]["MetricName"],
                "Timestamps": page.iter().map(|(at, _)| at).collect::<Vec<_>>(),
                "Values": page.iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "StatusCode": if more { "PartialData" } else { "Complete" },
            })
        })
        .collect();
    let mut answer = serde_json::json!({"MetricDataResults": results, "Messages": []});
    if more {
        answer["NextToken"] = serde_json::json!(format!("after-{}", offset + limit));
    }
    Reply::ok(&answer.to_string()).header("content-type", CLOUDWATCH_CONTENT_TYPE)
}

fn cw_connection(address: &str, secret: &[(&str, &str)]) -> Connection {
    let secret: BTreeMap<String, String> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Connection {
        credentials: Credentials::of(MetricProviderKind::CloudWatch, &secret),
        region: Some(REGION.into()),
        ..connection(address, &[])
    }
}

const AWS_KEYS: &[(&str, &str)] = &[
    ("aws_access_key_id", AWS_KEY_ID),
    ("aws_secret_access_key", AWS_SECRET),
];

/// Flagger's documented query shape: MetricDataQuery objects, the workload as a dimension.
fn cw_template(workload: &str, period: u32) -> String {
    format!(
        r#"[
  {{"Id": "errors",
    "MetricStat": {{
      "Metric": {{"Namespace": "shop", "MetricName": "errors",
                  "Dimensions": [{{"Name": "workload", "Value": "{workload}"}}]}},
      "Period": {period}, "Stat": "Sum"}}}}
]"#
    )
}

async fn cw_check(connection: Connection, metric: &str, template: &str) -> Sample {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    let queries = queries(&canary, &metric, Some(template), Source::App).unwrap();
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    sample(
        MetricProviderKind::CloudWatch,
        connection,
        &queries,
        now,
        None,
    )
    .await
}

#[tokio::test]
async fn cloudwatch_answers_signed_threshold_checks_and_the_judge_across_pages() {
    let server = mock::serve(cloudwatch).await;
    let ok = || cw_connection(&server.url, AWS_KEYS);
    // Flagger's window: ten intervals of 1m back from now, at most 20 points, newest first;
    // the value is the newest point (minutes from 1699999380: the eleventh, 5.5).
    let template = cw_template("{{ target }}", 60);
    assert_eq!(
        cw_check(ok(), THRESHOLD, &template).await,
        Sample::Value(5.5)
    );
    let sent = server.received()[0].json();
    assert_eq!(sent["StartTime"], 1_699_999_400);
    assert_eq!(sent["EndTime"], 1_700_000_000);
    assert_eq!(sent["MaxDatapoints"], 20);
    assert_eq!(
        sent["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
        "web"
    );
    let head = &server.received()[0].head;
    assert!(head.starts_with("POST / HTTP/1.1"), "{head}");
    assert!(
        head.contains("content-type: application/x-amz-json-1.0"),
        "{head}"
    );

    // The judge: ten minutes at a 10 s period, 60 points, read over three pages each.
    let asked = server.received().len();
    let compared = cw_check(ok(), JUDGED, &cw_template("{{ workload }}", 10)).await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!((canary.len(), primary.len()), (60, 60));
    assert_eq!(
        canary[..4],
        [5.0, 5.5, 6.0, 5.0],
        "oldest first, across pages"
    );
    assert_eq!(server.received().len() - asked, 6, "three pages per series");
    let tokens: Vec<String> = server.received()[asked..]
        .iter()
        .filter_map(|r| r.json()["NextToken"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tokens.len(), 4, "{tokens:?}");
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);

    assert_eq!(
        cw_check(ok(), THRESHOLD, &cw_template("gone", 60)).await,
        Sample::NoData
    );
    let two = template.replace(
        "\n]",
        r#", {"Id": "total", "MetricStat": {"Metric": {"Namespace": "shop", "MetricName": "requests"}, "Period": 60, "Stat": "Sum"}}]"#,
    );
    assert_eq!(
        error_of(cw_check(ok(), THRESHOLD, &two).await),
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    let hidden = two.replace(
        r#""Stat": "Sum"}}]"#,
        r#""Stat": "Sum"}, "ReturnData": false}]"#,
    );
    assert_eq!(
        cw_check(ok(), THRESHOLD, &hidden).await,
        Sample::Value(5.5),
        "{hidden}"
    );
    // Throttling that lasts: one retry, then AWS's words.
    let asked = server.received().len();
    let throttled = error_of(
        cw_check(
            ok(),
            THRESHOLD,
            &template.replace("\"shop\"", "\"throttled\""),
        )
        .await,
    );
    assert!(
        throttled.starts_with("metrics server is throttling (CloudWatch Throttling, HTTP 400): Rate exceeded (CloudWatch throttles GetMetricData per account and region; serin retried once"),
        "{throttled}"
    );
    assert_eq!(server.received().len() - asked, 2, "one retry");
    // Temporary credentials carry their session token, under the signature.
    let temporary = [
        ("aws_access_key_id", AWS_TEMP_KEY_ID),
        ("aws_secret_access_key", AWS_TEMP_SECRET),
        ("aws_session_token", AWS_TOKEN),
    ];
    let with_token = cw_check(cw_connection(&server.url, &temporary), THRESHOLD, &template).await;
    assert_eq!(with_token, Sample::Value(5.5));
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let probe = serin::metrics::cloudwatch::CloudWatch::connect(ok(), now);
    assert_eq!(probe.probe().await, Ok(()));
}

#[tokio::test]
async fn cloudwatch_throttling_once_is_waited_out_within_the_timeout() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let server = mock::serve(move |request| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            aws_error(400, "Throttling", "Rate exceeded")
        } else {
            cloudwatch(request)
        }
    })
    .await;
    let template = cw_template("{{ target }}", 60);
    let value = cw_check(cw_connection(&server.url, AWS_KEYS), THRESHOLD, &template).await;
    assert_eq!(value, Sample::Value(5.5));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn cloudwatch_refuses_a_wrong_key_and_serin_says_so_without_it() {
    let server = mock::serve(cloudwatch).await;
    let template = cw_template("{{ target }}", 60);
    let wrong_secret = [
        ("aws_access_key_id", AWS_KEY_ID),
        ("aws_secret_access_key", "guessed/secret/access/keyEXAMPLE"),
    ];
    let refused = error_of(
        cw_check(
            cw_connection(&server.url, &wrong_secret),
            THRESHOLD,
            &template,
        )
        .await,
    );
    assert!(
        refused.starts_with("query refused by the metrics server (CloudWatch InvalidSignatureException, HTTP 403): The request signature we calculated does not match the signature you provided."),
        "{refused}"
    );
    assert!(refused.ends_with("(AWS refused the Secret's aws_access_key_id, aws_secret_access_key or aws_session_token)"), "{refused}");
    assert!(!refused.contains("guessed"), "{refused}");
    let unknown = [
        ("aws_access_key_id", "AKIAGUESSEDEXAMPLE00"),
        ("aws_secret_access_key", AWS_SECRET),
    ];
    let refused =
        error_of(cw_check(cw_connection(&server.url, &unknown), THRESHOLD, &template).await);
    assert!(
        // serin's redaction masks the word after "token", whatever the message.
        refused.starts_with("query refused by the metrics server (CloudWatch UnrecognizedClientException, HTTP 403): The security token *** in the request is invalid. (AWS refused the Secret's"),
        "{refused}"
    );
    assert!(!refused.contains(AWS_SECRET), "{refused}");
    // Temporary credentials without their token are refused as AWS refuses them.
    let no_token = [
        ("aws_access_key_id", AWS_TEMP_KEY_ID),
        ("aws_secret_access_key", AWS_TEMP_SECRET),
    ];
    let refused =
        error_of(cw_check(cw_connection(&server.url, &no_token), THRESHOLD, &template).await);
    assert!(refused.contains("UnrecognizedClientException"), "{refused}");
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let probe = serin::metrics::cloudwatch::CloudWatch::connect(
        cw_connection(&server.url, &wrong_secret),
        now,
    );
    assert!(
        probe
            .probe()
            .await
            .unwrap_err()
            .to_string()
            .contains("HTTP 403")
    );

    // Without keys or a region: said before anything is sent.
    let asked = server.received().len();
    let none = error_of(cw_check(cw_connection(&server.url, &[]), THRESHOLD, &template).await);
    assert_eq!(
        none,
        "query refused by the metrics server (secretRef): the Secret (secretRef) has no aws_access_key_id and aws_secret_access_key, which sign CloudWatch requests, and the pod has no web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
    );
    let half = error_of(
        cw_check(
            cw_connection(&server.url, &AWS_KEYS[..1]),
            THRESHOLD,
            &template,
        )
        .await,
    );
    assert!(
        half.ends_with("the Secret has no aws_secret_access_key"),
        "{half}"
    );
    let no_region = Connection {
        region: None,
        ..cw_connection(&server.url, AWS_KEYS)
    };
    let unsigned = error_of(cw_check(no_region, THRESHOLD, &template).await);
    assert!(
        unsigned.contains("provider.region is not set"),
        "{unsigned}"
    );
    assert_eq!(server.received().len(), asked, "nothing sent unsigned");
}

/// The Canary `web`'s metric (YAML list lines) through provider `kind`, with `template` as its
/// MetricTemplate's query, sampled at 1700000000 (a whole minute).
async fn check_with(
    kind: MetricProviderKind,
    connection: Connection,
    metric: &str,
    template: &str,
) -> Sample {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    let queries = queries(&canary, &metric, Some(template), Source::App).unwrap();
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    sample(kind, connection, &queries, now, None).await
}

/// A connection to `address` with `secret`'s keys as provider `kind` reads them.
fn connection_for(kind: MetricProviderKind, address: &str, secret: &[(&str, &str)]) -> Connection {
    let secret: BTreeMap<String, String> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Connection {
        credentials: Credentials::of(kind, &secret),
        ..connection(address, &[])
    }
}

/// A judged metric comparing a minute-resolution series over half an hour.
const JUDGED_MINUTES: &str = "      - name: errors\n        templateRef: {name: errors}\n        judge: {step: 1m, lookback: 30m, minSamples: 20}\n";

const DT_TOKEN: &str = "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.0123456789abcdef";

fn dt_error(status: u16, message: &str) -> Reply {
    Reply::status(
        status,
        &format!(r#"{{"error":{{"code":{status},"message":"{message}"}}}}"#),
    )
    .header("content-type", "application/json")
}

/// Dynatrace's metrics API v2 as documented: `Authorization: Api-Token <token>` (401 with
/// `{"error": {"code", "message"}}` without or with a wrong one); `/api/v2/metrics` lists
/// descriptors; `/api/v2/metrics/query` takes `metricSelector`, `resolution` (`Inf`, or `<n>m`)
/// and `from`/`to` in epoch milliseconds, and answers `result[].data[]` with `timestamps` and
/// `values` (null for an empty bucket). `shop.errors:filter(eq("workload","web"))` is the
/// canary (5, 5.5, 6 per minute, 5.5 aggregated), `web-primary` 4 less, `gone` no data,
/// `:splitBy("workload")` two series; another metric key violates a constraint.
fn dynatrace(request: &Request) -> Reply {
    let path = request.line().split(' ').nth(1).unwrap_or("/");
    match header(request, "Authorization") {
        None => return dt_error(401, "Missing authorization parameter."),
        Some(value) if value != format!("Api-Token {DT_TOKEN}") => {
            return dt_error(401, "Token Authentication failed");
        }
        Some(_) => {}
    }
    if path.starts_with("/api/v2/metrics?") {
        return Reply::ok(
            r#"{"totalCount":1200,"nextPageKey":"AQAAAA","metrics":[{"metricId":"builtin:host.cpu.usage"}]}"#,
        );
    }
    if !path.starts_with("/api/v2/metrics/query?") {
        return dt_error(404, "HTTP 404 Not Found");
    }
    let params = params(request);
    let (Some(selector), Some(resolution), Some(from), Some(to)) = (
        params.get("metricSelector"),
        params.get("resolution"),
        params.get("from").and_then(|v| v.parse::<i64>().ok()),
        params.get("to").and_then(|v| v.parse::<i64>().ok()),
    ) else {
        return dt_error(400, "Constraints violated.");
    };
    let Some(rest) = selector.strip_prefix("shop.errors:") else {
        return Reply::status(
            400,
            &format!(
                r#"{{"error":{{"code":400,"message":"Constraints violated.","constraintViolations":[{{"path":"metricSelector","message":"The metric key {} is unknown","parameterLocation":"QUERY","location":null}}]}}}}"#,
                selector.split(':').next().unwrap_or_default()
            ),
        );
    };
    let series = |offset: f64| -> String {
        let (times, values): (Vec<i64>, Vec<f64>) = if resolution == "Inf" {
            (vec![to], vec![5.5 + offset])
        } else {
            let minutes: i64 = resolution.trim_end_matches('m').parse().unwrap_or(1);
            (from / 60_000 + 1..=to / 60_000)
                .step_by(minutes as usize)
                .enumerate()
                .map(|(i, minute)| (minute * 60_000, 5.0 + (i % 3) as f64 * 0.5 + offset))
                .unzip()
        };
        format!(
            r#"{{"dimensions":[],"dimensionMap":{{}},"timestamps":{times:?},"values":{values:?}}}"#
        )
    };
    let data: Vec<String> = match rest {
        r#"filter(eq("workload","web"))"# => vec![series(0.0)],
        r#"filter(eq("workload","web-primary"))"# => vec![series(-4.0)],
        r#"splitBy("workload")"# => vec![series(0.0), series(-4.0)],
        _ => Vec::new(),
    };
    Reply::ok(&format!(
        r#"{{"totalCount":{},"nextPageKey":null,"resolution":"{resolution}","result":[{{"metricId":{},"dataPointCountRatio":0.0001,"dimensionCountRatio":0.01,"data":[{}]}}]}}"#,
        data.len(),
        serde_json::Value::from(selector.as_str()),
        data.join(",")
    ))
    .header("content-type", "application/json")
}

#[tokio::test]
async fn dynatrace_answers_threshold_checks_and_the_judge() {
    let server = mock::serve(dynatrace).await;
    let dt = |template: &str, metric: &'static str| {
        let connection = connection_for(
            MetricProviderKind::Dynatrace,
            &server.url,
            &[("dynatrace_token", DT_TOKEN)],
        );
        let template = template.to_string();
        async move { check_with(MetricProviderKind::Dynatrace, connection, metric, &template).await }
    };
    // A selector spread over lines is one selector.
    let template = "shop.errors:\n  filter(eq(\"workload\",\"{{ target }}\"))";
    assert_eq!(dt(template, THRESHOLD).await, Sample::Value(5.5));
    let sent = params(&server.received()[0]);
    assert_eq!(
        sent["metricSelector"],
        r#"shop.errors:filter(eq("workload","web"))"#
    );
    assert_eq!(sent["resolution"], "Inf");
    assert_eq!(sent["to"], "1700000000000");
    assert_eq!(sent["from"], "1699999400000", "ten intervals of 1m");

    let judged = r#"shop.errors:filter(eq("workload","{{ workload }}"))"#;
    let compared = dt(judged, JUDGED_MINUTES).await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!(canary.len(), 30, "half an hour at one minute");
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    let last = params(server.received().last().unwrap());
    assert_eq!(last["resolution"], "1m");

    let gone = r#"shop.errors:filter(eq("workload","gone"))"#;
    assert_eq!(dt(gone, THRESHOLD).await, Sample::NoData);
    assert_eq!(
        error_of(dt(r#"shop.errors:splitBy("workload")"#, THRESHOLD).await),
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    assert_eq!(
        error_of(dt("nosuch.metric", THRESHOLD).await),
        "query refused by the metrics server (Dynatrace, HTTP 400): Constraints violated. metricSelector: The metric key nosuch.metric is unknown"
    );
    let probe = serin::metrics::dynatrace::Dynatrace::connect(
        connection_for(
            MetricProviderKind::Dynatrace,
            &server.url,
            &[("dynatrace_token", DT_TOKEN)],
        ),
        Utc::now(),
    );
    assert_eq!(probe.probe().await, Ok(()));
}

#[tokio::test]
async fn dynatrace_refuses_a_wrong_token_and_serin_says_so_without_it() {
    let server = mock::serve(dynatrace).await;
    let template = r#"shop.errors:filter(eq("workload","{{ target }}"))"#;
    let wrong = connection_for(
        MetricProviderKind::Dynatrace,
        &server.url,
        &[("dynatrace_token", "dt0c01.GUESSED")],
    );
    let refused =
        error_of(check_with(MetricProviderKind::Dynatrace, wrong, THRESHOLD, template).await);
    assert_eq!(
        refused,
        "query refused by the metrics server (Dynatrace, HTTP 401): Token *** failed (Dynatrace refused the Secret's dynatrace_token, or it lacks the metrics.read scope)"
    );
    let probe = serin::metrics::dynatrace::Dynatrace::connect(
        connection_for(
            MetricProviderKind::Dynatrace,
            &server.url,
            &[("dynatrace_token", "dt0c01.GUESSED")],
        ),
        Utc::now(),
    );
    let unhealthy = probe.probe().await.unwrap_err().to_string();
    // "Token Authentication" looks like a credential to the redaction; better masked once too often.
    assert!(
        unhealthy.contains("HTTP 401): Token *** failed"),
        "{unhealthy}"
    );
    assert!(!unhealthy.contains("GUESSED"), "{unhealthy}");

    let asked = server.received().len();
    let missing = connection_for(MetricProviderKind::Dynatrace, &server.url, &[]);
    assert_eq!(
        error_of(check_with(MetricProviderKind::Dynatrace, missing, THRESHOLD, template).await),
        "query refused by the metrics server (secretRef): the Secret has no dynatrace_token, which Dynatrace's API needs"
    );
    assert_eq!(
        server.received().len(),
        asked,
        "nothing sent without the token"
    );
}

const SF_TOKEN: &str = "sfx-0123456789abcdefABCDEF";

/// One server-sent event as SignalFlow writes them.
fn sse(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Splunk Observability's SignalFlow over HTTP as documented: `POST /v2/signalflow/execute`
/// with `X-SF-Token` (401 without or with a wrong one), the program as the body, `start`,
/// `stop` and `resolution` in milliseconds (10 s when not asked), answered as server-sent
/// events: control messages around metadata and one data message per resolution interval;
/// `GET /v2/metric?limit=1` lists one metric. The program `data('shop.errors',
/// filter=filter('workload', 'web')).sum().publish()` is the canary (5, 5.5, 6, ...),
/// `web-primary` 4 less, `gone` no series, a program without `.sum()` two series (one per
/// workload), one that is not `data(...)` an error event naming the undefined function.
fn splunk(request: &Request) -> Reply {
    let path = request.line().split(' ').nth(1).unwrap_or("/");
    if header(request, "X-SF-Token") != Some(SF_TOKEN) {
        return Reply::status(401, r#"{"code":401,"message":"Unauthorized"}"#)
            .header("content-type", "application/json");
    }
    if path.starts_with("/v2/metric?") {
        return Reply::ok(r#"{"count":1,"results":[{"name":"shop.errors","type":"COUNTER"}]}"#);
    }
    if !request.line().starts_with("POST /v2/signalflow/execute?") {
        return Reply::status(404, r#"{"code":404,"message":"Not Found"}"#);
    }
    let params = params(request);
    let (Some(start), Some(stop)) = (
        params.get("start").and_then(|v| v.parse::<i64>().ok()),
        params.get("stop").and_then(|v| v.parse::<i64>().ok()),
    ) else {
        return Reply::status(
            400,
            r#"{"code":400,"message":"start and stop are required"}"#,
        );
    };
    let resolution: i64 = params
        .get("resolution")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let program = String::from_utf8_lossy(&request.body).into_owned();
    let mut stream = sse(
        "control-message",
        r#"{"event":"STREAM_START","timestampMs":1}"#,
    ) + &sse(
        "control-message",
        r#"{"event":"JOB_START","handle":"EXAMPLE"}"#,
    );
    let Some(rest) = program.strip_prefix("data('shop.errors', ") else {
        let word = program.split('(').next().unwrap_or_default();
        let error = format!(
            r#"{{"error":400,"errors":[{{"code":"ANALYTICS_PROGRAM_INVALID"}}],"message":"function '{word}' is not defined"}}"#
        );
        return Reply::ok(&(stream + &sse("error", &error)))
            .header("content-type", "text/event-stream");
    };
    let mut series: Vec<(&str, f64)> = Vec::new();
    if !rest.contains(".sum()") {
        series = vec![("AAAAAKc_web", 0.0), ("AAAAAKc_pri", -4.0)];
    } else if rest.contains("'web-primary'") {
        series.push(("AAAAAKc_pri", -4.0));
    } else if rest.contains("'web'") {
        series.push(("AAAAAKc_web", 0.0));
    }
    for (ts_id, _) in &series {
        stream += &sse(
            "metadata",
            &format!(r#"{{"tsId":"{ts_id}","properties":{{"sf_metric":"shop.errors"}}}}"#),
        );
    }
    let first = (start / resolution + 1) * resolution;
    for (i, at) in (first..=stop).step_by(resolution as usize).enumerate() {
        let points: Vec<String> = series
            .iter()
            .map(|(ts_id, offset)| {
                let value = 5.0 + (i % 3) as f64 * 0.5 + offset;
                format!(r#"{{"tsId":"{ts_id}","value":{value}}}"#)
            })
            .collect();
        stream += &sse(
            "data",
            &format!(
                r#"{{"data":[{}],"logicalTimestampMs":{at},"maxDelayMs":1000}}"#,
                points.join(",")
            ),
        );
    }
    stream += &sse(
        "control-message",
        r#"{"event":"END_OF_CHANNEL","timestampMs":2}"#,
    );
    Reply::ok(&stream).header("content-type", "text/event-stream")
}

fn sf_connection(address: &str, token: &str) -> Connection {
    connection_for(
        MetricProviderKind::Splunk,
        address,
        &[("sf_token_key", token)],
    )
}

#[tokio::test]
async fn splunk_answers_threshold_checks_and_the_judge_from_event_streams() {
    let server = mock::serve(splunk).await;
    let sf = |program: &str, metric: &'static str| {
        let connection = sf_connection(&server.url, SF_TOKEN);
        let program = program.to_string();
        async move { check_with(MetricProviderKind::Splunk, connection, metric, &program).await }
    };
    let template = "data('shop.errors', filter=filter('workload', '{{ target }}')).sum().publish()";
    // Sixty 10 s points over ten minutes: the newest is the 60th, 6.
    assert_eq!(sf(template, THRESHOLD).await, Sample::Value(6.0));
    let request = &server.received()[0];
    let sent = params(request);
    assert_eq!(sent["stop"], "1700000000000");
    assert_eq!(sent["start"], "1699999400000", "ten intervals of 1m");
    assert_eq!(sent["immediate"], "true");
    assert_eq!(
        String::from_utf8_lossy(&request.body),
        "data('shop.errors', filter=filter('workload', 'web')).sum().publish()"
    );
    assert!(
        request.head.contains("content-type: text/plain"),
        "{}",
        request.head
    );

    let judged = "data('shop.errors', filter=filter('workload', '{{ workload }}')).sum().publish()";
    let compared = sf(judged, JUDGED).await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!(canary.len(), 60, "ten minutes at 10 s");
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    assert_eq!(
        params(server.received().last().unwrap())["resolution"],
        "10000"
    );

    let gone = "data('shop.errors', filter=filter('workload', 'gone')).sum().publish()";
    assert_eq!(sf(gone, THRESHOLD).await, Sample::NoData);
    assert_eq!(
        error_of(sf("data('shop.errors', filter=None).publish()", THRESHOLD).await),
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    assert_eq!(
        error_of(sf("dta('shop.errors').publish()", THRESHOLD).await),
        "query refused by the metrics server (Splunk SignalFlow): function 'dta' is not defined"
    );
    let probe =
        serin::metrics::splunk::Splunk::connect(sf_connection(&server.url, SF_TOKEN), Utc::now());
    assert_eq!(probe.probe().await, Ok(()));
}

#[tokio::test]
async fn splunk_refuses_a_wrong_token_and_serin_says_so_without_it() {
    let server = mock::serve(splunk).await;
    let template = "data('shop.errors', filter=filter('workload', '{{ target }}')).sum().publish()";
    let wrong = sf_connection(&server.url, "sfx-guessed-token");
    let refused =
        error_of(check_with(MetricProviderKind::Splunk, wrong, THRESHOLD, template).await);
    assert_eq!(
        refused,
        "query refused by the metrics server (Splunk, HTTP 401): Unauthorized (Splunk refused the Secret's sf_token_key)"
    );
    let probe = serin::metrics::splunk::Splunk::connect(
        sf_connection(&server.url, "sfx-guessed-token"),
        Utc::now(),
    );
    let unhealthy = probe.probe().await.unwrap_err().to_string();
    assert!(
        unhealthy.contains("(Splunk, HTTP 401): Unauthorized"),
        "{unhealthy}"
    );
    assert!(!unhealthy.contains("guessed"), "{unhealthy}");

    let asked = server.received().len();
    let missing = connection_for(MetricProviderKind::Splunk, &server.url, &[]);
    assert_eq!(
        error_of(check_with(MetricProviderKind::Splunk, missing, THRESHOLD, template).await),
        "query refused by the metrics server (secretRef): the Secret has no sf_token_key, which Splunk Observability's API needs"
    );
    assert_eq!(
        server.received().len(),
        asked,
        "nothing sent without the token"
    );
}

const K8S_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.adapter-reader.c2lnbmF0dXJl";

fn k8s_status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::status(
        code,
        &format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{message}","reason":"{reason}","code":{code}}}"#
        ),
    )
    .header("content-type", "application/json")
}

/// A metrics adapter's external.metrics.k8s.io/v1beta1 API as the Kubernetes API documents it:
/// a bearer token (401 `Status` without or with a wrong one); `GET
/// /apis/external.metrics.k8s.io/v1beta1` lists its resources; `GET
/// .../namespaces/<ns>/<metric>?labelSelector=...` answers an `ExternalMetricValueList` whose
/// values are quantities. `shop/queue-depth` with `app=web` is 1500m; without a selector one
/// item per app (two); `app=gone` none; another metric is a 404 `Status`.
fn external_metrics(request: &Request) -> Reply {
    let path = request.line().split(' ').nth(1).unwrap_or("/");
    if header(request, "Authorization") != Some(&format!("Bearer {K8S_TOKEN}")) {
        return k8s_status(401, "Unauthorized", "Unauthorized");
    }
    let api = "/apis/external.metrics.k8s.io/v1beta1";
    if path == api {
        return Reply::ok(
            r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[{"name":"externalmetrics","singularName":"","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]}"#,
        );
    }
    let Some(rest) = path.strip_prefix(&format!("{api}/namespaces/shop/")) else {
        return k8s_status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let metric = rest.split('?').next().unwrap_or_default();
    if metric != "queue-depth" {
        return k8s_status(
            404,
            "NotFound",
            &format!("unable to fetch metrics from external metrics API: no metric {metric}"),
        );
    }
    let item = |app: &str, value: &str| {
        format!(
            r#"{{"metricName":"queue-depth","metricLabels":{{"app":"{app}"}},"timestamp":"2023-11-14T22:13:20Z","value":"{value}"}}"#
        )
    };
    let items = match params(request).get("labelSelector").map(String::as_str) {
        Some("app=web") => vec![item("web", "1500m")],
        Some("app=web-primary") => vec![item("web-primary", "2")],
        None => vec![item("web", "1500m"), item("web-primary", "2")],
        Some(_) => Vec::new(),
    };
    Reply::ok(&format!(
        r#"{{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    ))
    .header("content-type", "application/json")
}

#[tokio::test]
async fn external_metrics_answer_threshold_checks_from_an_adapter() {
    let server = mock::serve(external_metrics).await;
    let ext = |query: &str, token: &str| {
        let connection = connection_for(
            MetricProviderKind::ExternalMetrics,
            &server.url,
            &[("token", token)],
        );
        let query = query.to_string();
        async move {
            check_with(
                MetricProviderKind::ExternalMetrics,
                connection,
                THRESHOLD,
                &query,
            )
            .await
        }
    };
    let template = "shop/queue-depth?labelSelector=app%3D{{ target }}";
    assert_eq!(ext(template, K8S_TOKEN).await, Sample::Value(1.5));
    assert_eq!(
        server.received()[0].line(),
        "GET /apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue-depth?labelSelector=app%3Dweb HTTP/1.1"
    );
    assert_eq!(
        ext("shop/queue-depth?labelSelector=app%3Dgone", K8S_TOKEN).await,
        Sample::NoData
    );
    assert_eq!(
        error_of(ext("shop/queue-depth", K8S_TOKEN).await),
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    assert_eq!(
        error_of(ext("shop/nosuch", K8S_TOKEN).await),
        "query refused by the metrics server (NotFound, HTTP 404): unable to fetch metrics from external metrics API: no metric nosuch"
    );
    let refused = error_of(ext(template, "eyJ.guessed.token").await);
    assert_eq!(
        refused,
        "query refused by the metrics server (Unauthorized, HTTP 401): Unauthorized (the server refused the Secret's token)"
    );
    let asked = server.received().len();
    assert!(
        error_of(ext("shop/a/b", K8S_TOKEN).await).contains("too many slashes"),
        "a bad query is refused before anything is sent"
    );
    assert_eq!(server.received().len(), asked);
    let probe = serin::metrics::external::ExternalMetrics::connect(
        connection_for(
            MetricProviderKind::ExternalMetrics,
            &server.url,
            &[("token", K8S_TOKEN)],
        ),
        None,
    );
    assert_eq!(probe.probe().await, Ok(()));
}

const ROLE: &str = "arn:aws:iam::123456789012:role/serin-metrics";
const PROJECTED: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImV4YW1wbGUifQ.projected.c2ln";

/// STS's AssumeRoleWithWebIdentity over its query API, as documented: a form POST with
/// `Action`, `Version`, `RoleArn`, `RoleSessionName` and `WebIdentityToken`, unsigned; an XML
/// answer with temporary credentials valid for an hour, or an XML `ErrorResponse`.
fn sts(request: &Request) -> Reply {
    let form: BTreeMap<String, String> = reqwest::Url::parse(&format!(
        "http://form/?{}",
        String::from_utf8_lossy(&request.body)
    ))
    .unwrap()
    .query_pairs()
    .map(|(k, v)| (k.into_owned(), v.into_owned()))
    .collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("Action") != Some("AssumeRoleWithWebIdentity")
        || field("Version") != Some("2011-06-15")
    {
        return Reply::status(
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation</Message></Error></ErrorResponse>",
        );
    }
    if field("WebIdentityToken") != Some(PROJECTED) || field("RoleArn") != Some(ROLE) {
        return Reply::status(
            400,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>",
        );
    }
    let expiry = (Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Reply::ok(&format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:serin:serin</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>{ROLE}/{}</Arn><AssumedRoleId>AROACLKWSDQRAOEXAMPLE:serin</AssumedRoleId></AssumedRoleUser><Credentials><SessionToken>{AWS_TOKEN}</SessionToken><SecretAccessKey>{AWS_TEMP_SECRET}</SecretAccessKey><Expiration>{expiry}</Expiration><AccessKeyId>{AWS_TEMP_KEY_ID}</AccessKeyId></Credentials><Audience>sts.amazonaws.com</Audience></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
        field("RoleSessionName").unwrap_or_default()
    ))
    .header("content-type", "text/xml")
}

/// A CloudWatch threshold check of the canary signed with `identity`'s keys.
async fn cw_identity_check(
    address: &str,
    identity: Option<serin::metrics::web_identity::WebIdentity>,
) -> Sample {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{THRESHOLD}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    let template = cw_template("{{ target }}", 60);
    let queries = queries(&canary, &metric, Some(&template), Source::App).unwrap();
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let provider = serin::metrics::cloudwatch::CloudWatch::connect_with(
        cw_connection(address, &[]),
        now,
        identity,
    );
    serin::metrics::sample(&provider, &queries, now, None).await
}

#[tokio::test]
async fn cloudwatch_signs_with_the_pods_web_identity_exchanged_once_with_sts() {
    use serin::metrics::web_identity::WebIdentity;
    let cloudwatch = mock::serve(cloudwatch).await;
    let sts = mock::serve(sts).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-identity");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{PROJECTED}\n")).unwrap();
    let identity = WebIdentity {
        role_arn: ROLE.into(),
        token_file: token_file.to_str().unwrap().into(),
        session_name: "serin".into(),
        sts: sts.url.clone(),
    };
    // The stand-in accepts the temporary key only with its session token, signature checked.
    for _ in 0..2 {
        assert_eq!(
            cw_identity_check(&cloudwatch.url, Some(identity.clone())).await,
            Sample::Value(5.5)
        );
    }
    assert_eq!(
        sts.received().len(),
        1,
        "the keys are kept until they expire"
    );
    let signed = &cloudwatch.received()[1].head;
    assert!(
        signed.contains(&format!("Credential={AWS_TEMP_KEY_ID}/")),
        "{signed}"
    );
    assert!(
        signed.contains(&format!("x-amz-security-token: {AWS_TOKEN}")),
        "{signed}"
    );
    assert!(
        !sts.received()[0].head.contains("authorization"),
        "STS is asked unsigned"
    );

    // A token STS refuses: its code and message, never the token.
    let wrong_file = dir.join("wrong-token");
    std::fs::write(&wrong_file, "eyJ.someone-else.sig").unwrap();
    let wrong = WebIdentity {
        token_file: wrong_file.to_str().unwrap().into(),
        ..identity.clone()
    };
    let refused = error_of(cw_identity_check(&cloudwatch.url, Some(wrong)).await);
    assert_eq!(
        refused,
        "query refused by the metrics server (STS InvalidIdentityToken, HTTP 400): Couldn't retrieve verification key from your identity provider (assuming AWS_ROLE_ARN with the pod's AWS_WEB_IDENTITY_TOKEN_FILE)"
    );
    let missing = WebIdentity {
        token_file: dir.join("absent").to_str().unwrap().into(),
        ..identity
    };
    let unreadable = error_of(cw_identity_check(&cloudwatch.url, Some(missing)).await);
    assert!(
        unreadable.starts_with(
            "query refused by the metrics server (web identity): AWS_WEB_IDENTITY_TOKEN_FILE"
        ),
        "{unreadable}"
    );
    let neither = error_of(cw_identity_check(&cloudwatch.url, None).await);
    assert!(
        neither.contains(
            "and the pod has no web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
        ),
        "{neither}"
    );
}

/// The workspace path of the Amazon Managed Prometheus stand-in.
const AMP_WORKSPACE: &str = "/workspaces/ws-0123abcd-4567-89ef-0123-456789abcdef";

/// Amazon Managed Prometheus' query API, as documented: the Prometheus HTTP API under
/// `/workspaces/<id>/api/v1/`, every request SigV4-signed for the service `aps` (checked as
/// AWS checks it; refusals are AWS's JSON). `errors{workload="web"}` is the canary (5, 5.5, 6,
/// ... one value per step; 5.5 now), `web-primary` 4 less, `gone` nothing, `vector(1)` 1.
fn amp(request: &Request) -> Reply {
    if let Err(refused) = verify_signature(request, "aps") {
        return refused;
    }
    let target = request.line().split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or_default();
    let Some(api) = path.strip_prefix(AMP_WORKSPACE) else {
        return Reply::status(404, r#"{"message":"Workspace not found"}"#);
    };
    let params = params(request);
    let query = params.get("query").map(String::as_str).unwrap_or_default();
    let base = if query == "vector(1)" {
        Some(0.5)
    } else if query.contains(r#"workload="web""#) {
        Some(5.0)
    } else if query.contains(r#"workload="web-primary""#) {
        Some(1.0)
    } else {
        None
    };
    let number = |key: &str| params.get(key).and_then(|v| v.parse::<f64>().ok());
    let result = match (api, base) {
        ("/api/v1/query", Some(base)) => {
            format!(
                r#""resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{}"]}}]"#,
                base + 0.5
            )
        }
        ("/api/v1/query", None) => r#""resultType":"vector","result":[]"#.to_string(),
        ("/api/v1/query_range", base) => {
            let (Some(start), Some(end), Some(step)) =
                (number("start"), number("end"), number("step"))
            else {
                return Reply::status(
                    400,
                    r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\""}"#,
                );
            };
            let values: Vec<String> = (0..)
                .map(|i| (i, start + f64::from(i) * step))
                .take_while(|(_, at)| *at <= end)
                .map(|(i, at)| {
                    format!(
                        r#"[{at},"{}"]"#,
                        base.unwrap_or(0.0) + f64::from(i % 3) * 0.5
                    )
                })
                .collect();
            match base {
                Some(_) => format!(
                    r#""resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]"#,
                    values.join(",")
                ),
                None => r#""resultType":"matrix","result":[]"#.to_string(),
            }
        }
        _ => return Reply::status(404, r#"{"message":"Not Found"}"#),
    };
    Reply::ok(&format!(r#"{{"status":"success","data":{{{result}}}}}"#))
        .header("content-type", "application/json")
}

/// A Prometheus template's connection to the stand-in's workspace in [`REGION`].
fn amp_connection(address: &str, secret: &[(&str, &str)]) -> Connection {
    Connection {
        region: Some(REGION.into()),
        ..connection_for(
            MetricProviderKind::Prometheus,
            &format!("{address}{AMP_WORKSPACE}"),
            secret,
        )
    }
}

/// A query with a space and PromQL's punctuation, which the signature must cover as sent.
const AMP_QUERY: &str = r#"sum by (workload) (rate(errors{workload="{{ target }}"}[1m]))"#;

#[tokio::test]
async fn amazon_managed_prometheus_answers_signed_threshold_checks_and_the_judge() {
    let server = mock::serve(amp).await;
    let ok = || amp_connection(&server.url, AWS_KEYS);
    let prometheus = MetricProviderKind::Prometheus;
    assert_eq!(
        check_with(prometheus, ok(), THRESHOLD, AMP_QUERY).await,
        Sample::Value(5.5)
    );
    let head = &server.received()[0].head;
    assert!(
        head.starts_with(&format!(
            "GET {AMP_WORKSPACE}/api/v1/query?query=sum%20by%20%28workload%29"
        )),
        "the query encoded as signed: {head}"
    );
    assert!(
        head.contains(&format!("Credential={AWS_KEY_ID}/"))
            && head.contains("/eu-west-1/aps/aws4_request"),
        "{head}"
    );

    // The judge: ten minutes at 10 s, the canary's series against the primary's.
    let judged = AMP_QUERY.replace("{{ target }}", "{{ workload }}");
    let compared = check_with(prometheus, ok(), JUDGED, &judged).await;
    let Sample::Compared { canary, primary } = compared else {
        panic!("expected two series, got {compared:?}")
    };
    assert_eq!(canary.len(), primary.len());
    assert!(canary.len() >= 60, "{}", canary.len());
    assert_eq!(canary[..4], [5.0, 5.5, 6.0, 5.0]);
    assert_eq!(primary[..3], [1.0, 1.5, 2.0]);
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    let range = server.received().last().unwrap().head.clone();
    assert!(range.contains("/api/v1/query_range?"), "{range}");

    assert_eq!(
        check_with(
            prometheus,
            ok(),
            THRESHOLD,
            &AMP_QUERY.replace("{{ target }}", "gone")
        )
        .await,
        Sample::NoData
    );
    // Temporary credentials carry their session token, under the signature.
    let temporary = [
        ("aws_access_key_id", AWS_TEMP_KEY_ID),
        ("aws_secret_access_key", AWS_TEMP_SECRET),
        ("aws_session_token", AWS_TOKEN),
    ];
    let with_token = amp_connection(&server.url, &temporary);
    assert_eq!(
        check_with(prometheus, with_token, THRESHOLD, AMP_QUERY).await,
        Sample::Value(5.5)
    );
    let probe = serin::metrics::prometheus::Endpoint::connect(ok());
    assert_eq!(probe.probe().await, Ok(()));
    let probed = server.received().last().unwrap().head.clone();
    assert!(
        probed.contains("query=vector%281%29") && probed.contains("Signature="),
        "{probed}"
    );
}

#[tokio::test]
async fn amazon_managed_prometheus_refuses_a_wrong_key_and_serin_says_so_without_it() {
    let server = mock::serve(amp).await;
    let prometheus = MetricProviderKind::Prometheus;
    let wrong_secret = [
        ("aws_access_key_id", AWS_KEY_ID),
        ("aws_secret_access_key", "guessed/secret/access/keyEXAMPLE"),
    ];
    let refused = error_of(
        check_with(
            prometheus,
            amp_connection(&server.url, &wrong_secret),
            THRESHOLD,
            AMP_QUERY,
        )
        .await,
    );
    assert!(
        refused.starts_with("query refused by the metrics server (AWS, HTTP 403): The request signature we calculated does not match the signature you provided."),
        "{refused}"
    );
    assert!(
        refused.ends_with("(AWS refused the Secret's aws_access_key_id, aws_secret_access_key or aws_session_token, or the key lacks the aps:QueryMetrics permission)"),
        "{refused}"
    );
    assert!(!refused.contains("guessed"), "{refused}");
    // A bearer token is no AWS key: with a region, nothing is sent unsigned.
    let asked = server.received().len();
    let token_only = error_of(
        check_with(
            prometheus,
            amp_connection(&server.url, &[("token", "tok-1")]),
            THRESHOLD,
            AMP_QUERY,
        )
        .await,
    );
    assert_eq!(
        token_only,
        "query refused by the metrics server (secretRef): the Secret (secretRef) has no aws_access_key_id and aws_secret_access_key, which sign Amazon Managed Prometheus requests, and the pod has no web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
    );
    assert_eq!(server.received().len(), asked, "nothing sent unsigned");
    // Without a region the template is plain Prometheus: unsigned, and AMP refuses it.
    let plain = Connection {
        region: None,
        ..amp_connection(&server.url, AWS_KEYS)
    };
    let unsigned = error_of(check_with(prometheus, plain, THRESHOLD, AMP_QUERY).await);
    assert!(
        unsigned.contains("HTTP 400") && unsigned.contains("Missing"),
        "{unsigned}"
    );
}

#[tokio::test]
async fn amazon_managed_prometheus_signs_with_the_pods_web_identity() {
    use serin::metrics::web_identity::WebIdentity;
    let server = mock::serve(amp).await;
    let sts = mock::serve(sts).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("amp-web-identity");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, PROJECTED).unwrap();
    let identity = WebIdentity {
        role_arn: ROLE.into(),
        token_file: token_file.to_str().unwrap().into(),
        session_name: "serin".into(),
        sts: sts.url.clone(),
    };
    let endpoint = serin::metrics::prometheus::Endpoint::connect_with(
        amp_connection(&server.url, &[]),
        Some(identity),
    );
    assert_eq!(endpoint.instant("vector(1)").await, Ok(Answer::Value(1.0)));
    assert_eq!(sts.received().len(), 1);
    let signed = &server.received()[0].head;
    assert!(
        signed.contains(&format!("Credential={AWS_TEMP_KEY_ID}/"))
            && signed.contains(&format!("x-amz-security-token: {AWS_TOKEN}")),
        "{signed}"
    );
}
