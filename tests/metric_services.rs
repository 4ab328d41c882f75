//! Metric checks against local stand-ins for hosted metrics services, each following the
//! service's documented request and response format, authentication included: the right keys
//! get series, a wrong or missing key gets the service's own refusal, and serin's error says so
//! without the key. A threshold check and the judge's comparison per service.

mod mock;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mock::{Reply, Request};
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::judge::compare::{Class, JudgeConfig, compare};
use serin::metrics::builtin::Source;
use serin::metrics::provider::{Connection, Credentials, MetricsProvider, sample};
use serin::metrics::queries;

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
