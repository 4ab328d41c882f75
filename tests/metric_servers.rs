//! Metric checks against real metrics servers from Debian packages (tests/cluster/metric_servers.rs
//! starts them): Graphite (carbon-cache + graphite-web), InfluxDB 1.x and VictoriaMetrics, each
//! fed a minute of known series — the canary's errors about five times the primary's — and
//! queried by serin through the provider the MetricTemplate names: a threshold check, the
//! judge's comparison, credentials right and wrong, and the faults a real server produces.

mod cluster;
mod mock;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use cluster::metric_servers::{Graphite, InfluxDb, VictoriaMetrics, basic, http};
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::judge::compare::{Class, JudgeConfig, compare};
use serin::metrics::builtin::Source;
use serin::metrics::provider::{Connection, Credentials, MetricsProvider, sample};
use serin::metrics::queries;

/// Seconds of fed history, one point a second.
const HISTORY: i64 = 60;

/// The canary's value at second `i`: 5, 5.5, 6, 5, ... (the primary's is 4 less). The last
/// fed point (i = 59) is 6.
fn canary_value(i: i64) -> f64 {
    5.0 + (i % 3) as f64 * 0.5
}

fn connection(kind: MetricProviderKind, address: &str, secret: &[(&str, &str)]) -> Connection {
    let secret: BTreeMap<String, String> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Connection {
        client: serin::hooks::client().unwrap(),
        address: address.to_string(),
        credentials: Credentials::of(kind, &secret),
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(60),
        region: None,
    }
}

/// A metric of the Canary `web` in `shop` (YAML list lines) with `template` as its
/// MetricTemplate's query, sampled now through `connection`.
async fn check(
    kind: MetricProviderKind,
    connection: Connection,
    metric: &str,
    template: &str,
) -> Sample {
    let canary = cluster::prometheus::canary(metric);
    let metric = canary.spec.analysis.metrics[0].clone();
    let queries = queries(&canary, &metric, Some(template), Source::App).unwrap();
    sample(kind, connection, &queries, Utc::now(), None).await
}

const THRESHOLD: &str = "      - name: errors\n        templateRef: {name: errors}\n        interval: 1m\n        thresholdRange: {max: 5}\n";
const JUDGED: &str = "      - name: errors\n        templateRef: {name: errors}\n        judge: {step: 1s, lookback: 2m, minSamples: 20}\n";

/// The judge's verdict on a compared sample: the canary is worse.
fn judged_worse(sample: Sample) {
    let Sample::Compared { canary, primary } = sample else {
        panic!("expected two series, got {sample:?}")
    };
    let comparison = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    let (canary_mean, primary_mean) = (
        comparison.canary_mean.unwrap(),
        comparison.baseline_mean.unwrap(),
    );
    assert!(
        (canary_mean - 5.5).abs() < 0.05 && (primary_mean - 1.5).abs() < 0.05,
        "means {canary_mean} vs {primary_mean}"
    );
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graphite_answers_threshold_checks_and_the_judge_from_carbon_and_graphite_web() {
    let graphite = Graphite::start(Some(("serin", "s3cret")));
    let now = Utc::now().timestamp();
    let mut points = Vec::new();
    for i in 0..HISTORY {
        let at = now - HISTORY + i;
        points.push(("shop.web.errors", canary_value(i), at));
        points.push(("shop.web-primary.errors", canary_value(i) - 4.0, at));
    }
    graphite.feed(&points);
    let graphite_kind = MetricProviderKind::Graphite;
    let secret = [("username", "serin"), ("password", "s3cret")];
    let ok = || connection(graphite_kind, &graphite.url, &secret);

    // Flagger's form: the render query string over lines, the interval in `from` (serin's
    // `1m` is spelled `1min` for Graphite). The value is the last datapoint.
    let template = "target=sumSeries(\n  shop.{{ target }}.errors\n)\n&from=-{{ interval }}";
    let value = check(graphite_kind, ok(), THRESHOLD, template).await;
    assert_eq!(value, Sample::Value(6.0));

    let compared = check(
        graphite_kind,
        ok(),
        JUDGED,
        "target=shop.{{ workload }}.errors",
    )
    .await;
    judged_worse(compared);

    let none = check(
        graphite_kind,
        ok(),
        THRESHOLD,
        "target=shop.nothing.errors&from=-1min",
    )
    .await;
    assert_eq!(none, Sample::NoData);
    let both = error_of(
        check(
            graphite_kind,
            ok(),
            THRESHOLD,
            "target=shop.*.errors&from=-1min",
        )
        .await,
    );
    assert_eq!(
        both,
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum(...))"
    );
    let unknown = error_of(
        check(
            graphite_kind,
            ok(),
            THRESHOLD,
            "target=nosuchfn(shop.web.errors)",
        )
        .await,
    );
    assert!(
        unknown.starts_with("metrics server answered HTTP 400: Invalid parameters (Received request for unknown function: nosuchfn)"),
        "{unknown}"
    );
    let wrong = connection(
        graphite_kind,
        &graphite.url,
        &[("username", "serin"), ("password", "guess")],
    );
    let refused = error_of(check(graphite_kind, wrong, THRESHOLD, template).await);
    assert_eq!(
        refused,
        "metrics server answered HTTP 401: 401 Unauthorized: bad or missing credentials"
    );
    assert!(!refused.contains("guess"));
    let server = serin::metrics::graphite::Graphite::connect(ok());
    assert_eq!(server.probe().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn influxdb_answers_influxql_threshold_checks_and_the_judge() {
    let influx = InfluxDb::start("serin", "s3cret", "shop");
    let now = Utc::now().timestamp();
    let lines: String = (0..HISTORY)
        .flat_map(|i| {
            let at = now - HISTORY + i;
            [
                format!("errors,workload=web value={} {at}\n", canary_value(i)),
                format!(
                    "errors,workload=web-primary value={} {at}\n",
                    canary_value(i) - 4.0
                ),
            ]
        })
        .collect();
    influx.write("shop", &lines);
    let kind = MetricProviderKind::InfluxDb;
    let secret = [
        ("username", "serin"),
        ("password", "s3cret"),
        ("database", "shop"),
    ];
    let ok = || connection(kind, &influx.url, &secret);

    let template = "SELECT last(\"value\") FROM \"errors\"\n  WHERE \"workload\" = '{{ target }}' AND time > now() - {{ interval }}";
    assert_eq!(
        check(kind, ok(), THRESHOLD, template).await,
        Sample::Value(6.0)
    );

    let series = "SELECT \"value\" FROM \"errors\" WHERE \"workload\" = '{{ workload }}' AND time > now() - 5m";
    judged_worse(check(kind, ok(), JUDGED, series).await);

    let nothing = "SELECT last(\"value\") FROM \"errors\" WHERE \"workload\" = 'nothing'";
    assert_eq!(check(kind, ok(), THRESHOLD, nothing).await, Sample::NoData);
    let grouped = "SELECT last(\"value\") FROM \"errors\" GROUP BY \"workload\"";
    let both = error_of(check(kind, ok(), THRESHOLD, grouped).await);
    assert!(both.starts_with("the query returned 2 series"), "{both}");
    let wrong = connection(
        kind,
        &influx.url,
        &[
            ("username", "serin"),
            ("password", "guess"),
            ("database", "shop"),
        ],
    );
    assert_eq!(
        error_of(check(kind, wrong, THRESHOLD, template).await),
        "query refused by the metrics server (influxql): authorization failed"
    );
    let elsewhere = connection(
        kind,
        &influx.url,
        &[
            ("username", "serin"),
            ("password", "s3cret"),
            ("database", "nope"),
        ],
    );
    assert_eq!(
        error_of(check(kind, elsewhere, THRESHOLD, template).await),
        "query refused by the metrics server (influxql): database not found: nope"
    );
    let typo = error_of(check(kind, ok(), THRESHOLD, "SELECT last(value FROM errors").await);
    assert!(
        typo.starts_with("query refused by the metrics server (influxql): error parsing query"),
        "{typo}"
    );
    let server = serin::metrics::influxdb::InfluxDb::connect(ok());
    assert_eq!(server.probe().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn victoria_metrics_serves_the_prometheus_provider_with_tenant_headers_passed_through() {
    let victoria = VictoriaMetrics::start("serin", "s3cret");
    let now = Utc::now().timestamp();
    let lines: String = (0..HISTORY)
        .flat_map(|i| {
            let at = (now - HISTORY + i) * 1000;
            [
                format!(
                    "errors{{namespace=\"shop\",workload=\"web\"}} {} {at}\n",
                    canary_value(i)
                ),
                format!(
                    "errors{{namespace=\"shop\",workload=\"web-primary\"}} {} {at}\n",
                    canary_value(i) - 4.0
                ),
            ]
        })
        .collect();
    victoria.import(&lines);
    let kind = MetricProviderKind::Prometheus;
    let secret = [("username", "serin"), ("password", "s3cret")];

    // A tenant-routing proxy's view (vmauth, Mimir's gateway): the request as it arrives,
    // forwarded to VictoriaMetrics.
    let upstream = victoria.url.trim_start_matches("http://").to_string();
    let proxy = mock::serve(move |request| {
        let head: String = request
            .head
            .lines()
            .filter(|line| !line.to_lowercase().starts_with("connection"))
            .map(|line| format!("{line}\r\n"))
            .collect();
        let head = head.replacen("HTTP/1.1", "HTTP/1.0", 1);
        let (status, body) =
            http(&upstream, &format!("{head}\r\n")).expect("victoria-metrics answers");
        mock::Reply::status(status, &body)
    })
    .await;
    let tenant = || Connection {
        headers: vec![("X-Scope-OrgID".into(), "team-a".into())],
        ..connection(kind, &proxy.url, &secret)
    };

    let template = "sum(errors{namespace=\"{{ namespace }}\", workload=\"{{ target }}\"})";
    assert_eq!(
        check(kind, tenant(), THRESHOLD, template).await,
        Sample::Value(6.0)
    );
    let series = "errors{namespace=\"{{ namespace }}\", workload=\"{{ workload }}\"}";
    judged_worse(check(kind, tenant(), JUDGED, series).await);
    let heads: Vec<String> = proxy.received().into_iter().map(|r| r.head).collect();
    assert_eq!(heads.len(), 3, "{heads:?}");
    for head in &heads {
        assert!(head.contains("x-scope-orgid: team-a"), "{head}");
        assert!(
            head.contains(&format!("authorization: {}", basic("serin", "s3cret"))),
            "{head}"
        );
    }

    let wrong = connection(
        kind,
        &victoria.url,
        &[("username", "serin"), ("password", "guess")],
    );
    let refused = error_of(check(kind, wrong, THRESHOLD, template).await);
    assert!(
        refused.starts_with("metrics server answered HTTP 401"),
        "{refused}"
    );
    let both = error_of(
        check(
            kind,
            connection(kind, &victoria.url, &secret),
            THRESHOLD,
            "errors",
        )
        .await,
    );
    assert!(both.starts_with("the query returned 2 series"), "{both}");
}
