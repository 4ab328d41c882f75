//! A threshold check's round trip against a local Prometheus (the Debian package, as in the
//! tests): render the built-in success-rate query, ask `/api/v1/query`, parse the answer —
//! what the controller does for each metric at each analysis tick. Also one judge check: two
//! range queries of 600 points each and the comparison.
//!
//! Then the same threshold check through each other provider against its local server:
//! Graphite (carbon-cache + graphite-web), InfluxDB 1.x (InfluxQL), VictoriaMetrics (the
//! Prometheus provider), and Flux, Datadog and New Relic answers from the scriptable server
//! of tests/mock (`-- datadog` runs the Datadog, New Relic, CloudWatch, Dynatrace,
//! Splunk, external metrics and Cloud Monitoring ones alone).
//!
//! Run: `cargo bench --bench metrics` (results go to docs/benchmarks.md by hand).

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/mock/mod.rs"]
mod mock;

use std::time::{Duration, Instant};

use chrono::Utc;
use cluster::prometheus::{Exporter, Prometheus, canary, endpoint};
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::judge::compare::{JudgeConfig, compare};
use serin::metrics::builtin::Source;
use serin::metrics::provider::{Connection, Credentials};
use serin::metrics::{queries, sample};

const ROUNDS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn timed<F, Fut>(rounds: usize, mut run: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        run().await;
        times.push(start.elapsed());
    }
    times.sort();
    times
}

/// A template metric of the Canary `web`, checked `ROUNDS` times through `kind` at `address`:
/// render, request, parse. Prints p50 and p99.
async fn provider_round_trips(
    what: &str,
    kind: MetricProviderKind,
    address: &str,
    secret: &[(&str, &str)],
    template: &str,
) {
    let web = canary(
        "      - name: errors\n        templateRef: {name: errors}\n        interval: 1m\n        thresholdRange: {max: 5}\n",
    );
    let metric = &web.spec.analysis.metrics[0];
    let secret = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let connection = Connection {
        client: serin::hooks::client().unwrap(),
        address: address.to_string(),
        credentials: Credentials::of(kind, &secret),
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(60),
        // Read by cloudwatch only (the region it signs for).
        region: Some("eu-west-1".into()),
    };
    let times = timed(ROUNDS, || async {
        let rendered = queries(&web, metric, Some(template), Source::App).unwrap();
        let value =
            serin::metrics::provider::sample(kind, connection.clone(), &rendered, Utc::now(), None)
                .await;
        assert!(matches!(value, Sample::Value(_)), "{what}: {value:?}");
    })
    .await;
    println!(
        "{what}, {ROUNDS} rounds: p50 {:?}, p99 {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

async fn other_providers() {
    use cluster::metric_servers::{Graphite, InfluxDb, VictoriaMetrics};
    let now = Utc::now().timestamp();
    let graphite = Graphite::start(None);
    let points: Vec<_> = (0..60)
        .map(|i| ("apps.web.errors", 1.0, now - 59 + i))
        .collect();
    graphite.feed(&points);
    provider_round_trips(
        "graphite: render, GET /render (graphite-web under wsgiref), parse",
        MetricProviderKind::Graphite,
        &graphite.url,
        &[],
        "target=sumSeries(apps.{{ target }}.errors)&from=-{{ interval }}",
    )
    .await;
    let influx = InfluxDb::start("serin", "s3cret", "apps");
    let lines: String = (0..60)
        .map(|i| format!("errors,workload=web value=1 {}\n", now - 59 + i))
        .collect();
    influx.write("apps", &lines);
    provider_round_trips(
        "influxdb InfluxQL: render, GET /query (influxd 1.6), parse",
        MetricProviderKind::InfluxDb,
        &influx.url,
        &[("username", "serin"), ("password", "s3cret"), ("database", "apps")],
        "SELECT last(\"value\") FROM \"errors\" WHERE \"workload\" = '{{ target }}' AND time > now() - {{ interval }}",
    )
    .await;
    let victoria = VictoriaMetrics::start("serin", "s3cret");
    let lines: String = (0..60)
        .map(|i| format!("errors{{workload=\"web\"}} 1 {}\n", (now - 59 + i) * 1000))
        .collect();
    victoria.import(&lines);
    provider_round_trips(
        "prometheus on VictoriaMetrics: render, GET /api/v1/query, parse",
        MetricProviderKind::Prometheus,
        &victoria.url,
        &[("username", "serin"), ("password", "s3cret")],
        "sum(errors{workload=\"{{ target }}\"})",
    )
    .await;
    let answer = "#datatype,string,long,dateTime:RFC3339,double\r\n#group,false,false,false,false\r\n#default,_result,,,\r\n,result,table,_time,_value\r\n,,0,2026-01-01T00:00:00Z,1\r\n\r\n";
    let flux = mock::serve(move |_| mock::Reply::ok(answer)).await;
    provider_round_trips(
        "influxdb Flux: render, POST /api/v2/query (scriptable server), parse CSV",
        MetricProviderKind::InfluxDb,
        &flux.url,
        &[("token", "t"), ("org", "acme")],
        "from(bucket: \"apps\") |> range(start: -{{ interval }}) |> filter(fn: (r) => r.workload == \"{{ target }}\") |> sum()",
    )
    .await;
    datadog().await;
}

/// Datadog's query API answered by the scriptable server: one series of 61 points, as
/// Datadog answers a 10-minute window at its 10-second rollup; then New Relic's, one result;
/// then CloudWatch's GetMetricData (SigV4 signing included), one result of 10 points.
async fn datadog() {
    let points: Vec<String> = (0..61_i64)
        .map(|i| format!("[{}.0,1.0]", (1_700_000_000 + i * 10) * 1000))
        .collect();
    let answer = format!(
        r#"{{"status":"ok","res_type":"time_series","series":[{{"metric":"errors","pointlist":[{}]}}]}}"#,
        points.join(",")
    );
    let server = mock::serve(move |_| mock::Reply::ok(&answer)).await;
    provider_round_trips(
        "datadog: render, GET /api/v1/query (scriptable server), parse",
        MetricProviderKind::Datadog,
        &server.url,
        &[("datadog_api_key", "a"), ("datadog_application_key", "b")],
        "sum:trace.http.request.errors{service:{{ target }}}.as_count()",
    )
    .await;
    let server = mock::serve(|_| mock::Reply::ok(r#"{"results":[{"result":1.0}]}"#)).await;
    provider_round_trips(
        "newrelic: render, GET /v1/accounts/<id>/query (scriptable server), parse",
        MetricProviderKind::NewRelic,
        &server.url,
        &[("newrelic_query_key", "k"), ("newrelic_account_id", "1")],
        "SELECT average(errors) FROM Metric WHERE service = '{{ target }}'",
    )
    .await;
    let answer = r#"{"MetricDataResults":[{"Id":"e1","Label":"errors","Timestamps":[1700000540,1700000480,1700000420,1700000360,1700000300,1700000240,1700000180,1700000120,1700000060,1700000000],"Values":[1,1,1,1,1,1,1,1,1,1],"StatusCode":"Complete"}],"Messages":[]}"#;
    let server = mock::serve(move |_| mock::Reply::ok(answer)).await;
    provider_round_trips(
        "cloudwatch: render, sign (SigV4), POST / GetMetricData (scriptable server), parse",
        MetricProviderKind::CloudWatch,
        &server.url,
        &[("aws_access_key_id", "AKIDEXAMPLE"), ("aws_secret_access_key", "s")],
        r#"[{"Id": "e1", "MetricStat": {"Metric": {"Namespace": "shop", "MetricName": "errors", "Dimensions": [{"Name": "workload", "Value": "{{ target }}"}]}, "Period": 60, "Stat": "Sum"}}]"#,
    )
    .await;
    let answer = r#"{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"shop.errors","data":[{"dimensions":[],"dimensionMap":{},"timestamps":[1700000000000],"values":[1.0]}]}]}"#;
    let server = mock::serve(move |_| mock::Reply::ok(answer)).await;
    provider_round_trips(
        "dynatrace: render, GET /api/v2/metrics/query (scriptable server), parse",
        MetricProviderKind::Dynatrace,
        &server.url,
        &[("dynatrace_token", "t")],
        r#"shop.errors:filter(eq("workload","{{ target }}"))"#,
    )
    .await;
    let events = "event: control-message\ndata: {\"event\":\"STREAM_START\"}\n\nevent: data\ndata: {\"data\":[{\"tsId\":\"AAAA\",\"value\":1.0}],\"logicalTimestampMs\":1700000000000}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n";
    let server = mock::serve(move |_| mock::Reply::ok(events)).await;
    provider_round_trips(
        "splunk: render, POST /v2/signalflow/execute (scriptable server), split events, parse",
        MetricProviderKind::Splunk,
        &server.url,
        &[("sf_token_key", "t")],
        "data('shop.errors', filter=filter('workload', '{{ target }}')).sum().publish()",
    )
    .await;
    let answer = r#"{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[{"metricName":"errors","metricLabels":{"app":"web"},"timestamp":"2023-11-14T22:13:20Z","value":"1500m"}]}"#;
    let server = mock::serve(move |_| mock::Reply::ok(answer)).await;
    provider_round_trips(
        "externalmetrics: render, GET /apis/external.metrics.k8s.io/v1beta1/... (scriptable server), parse",
        MetricProviderKind::ExternalMetrics,
        &server.url,
        &[("token", "t")],
        "shop/errors?labelSelector=app%3D{{ target }}",
    )
    .await;
    stackdriver().await;
}

/// Cloud Monitoring's `timeSeries:query` answered by the scriptable server, with a bearer token
/// from a stand-in of Google's token endpoint: asked (a JWT signed RS256) in the first round,
/// then kept, as in the controller between ticks.
async fn stackdriver() {
    let tokens = mock::serve(|_| {
        mock::Reply::ok(r#"{"access_token":"ya29.bench","expires_in":3599,"token_type":"Bearer"}"#)
    })
    .await;
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/google/key.pem"
    ))
    .unwrap();
    let key = serde_json::json!({
        "type": "service_account", "client_email": "bench@shop.iam.gserviceaccount.com",
        "private_key": pem, "token_uri": format!("{}/token", tokens.url),
    })
    .to_string();
    let answer = r#"{"timeSeriesDescriptor":{"pointDescriptors":[{"key":"value.errors","valueType":"DOUBLE"}]},"timeSeriesData":[{"labelValues":[],"pointData":[{"values":[{"doubleValue":1.0}],"timeInterval":{"endTime":"2026-12-02T01:00:00Z"}}]}]}"#;
    let server = mock::serve(move |_| mock::Reply::ok(answer)).await;
    provider_round_trips(
        "stackdriver: render, POST /v3/projects/<p>/timeSeries:query with a Google token (scriptable server), parse",
        MetricProviderKind::Stackdriver,
        &server.url,
        &[("project", "shop"), ("serviceAccountKey", &key)],
        "fetch k8s_container | metric 'shop/errors' | filter resource.container_name == '{{ target }}' | every 1m",
    )
    .await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "datadog") {
        return datadog().await;
    }
    if std::env::args().any(|a| a == "providers") {
        return other_providers().await;
    }
    let canary_pods = Exporter::start("shop", "web-5d8f7c9b4-x2x7q", 0.01, 1);
    let primary_pods = Exporter::start("shop", "web-primary-6c4b9d7f8-k9m2p", 0.01, 2);
    let prometheus = Prometheus::start(&[&canary_pods, &primary_pods]);
    let endpoint = endpoint(&prometheus);
    // 12 s of scrapes, so the 10s windows are full.
    tokio::time::sleep(Duration::from_secs(12)).await;

    let web = canary(
        "      - name: request-success-rate\n        interval: 10s\n        thresholdRange: {min: 99}\n",
    );
    let metric = &web.spec.analysis.metrics[0];
    let times = timed(ROUNDS, || async {
        let rendered = queries(&web, metric, None, Source::App).unwrap();
        let value = sample(&endpoint, &rendered, Utc::now(), None).await;
        assert!(matches!(value, Sample::Value(_)), "{value:?}");
    })
    .await;
    println!(
        "threshold check (render + /api/v1/query + parse), {ROUNDS} rounds: p50 {:?}, p99 {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );

    let judged = canary(
        "      - name: request-duration\n        interval: 5s\n        judge: {step: 10ms, lookback: 6s}\n",
    );
    let metric = &judged.spec.analysis.metrics[0];
    let times = timed(ROUNDS / 4, || async {
        let rendered = queries(&judged, metric, None, Source::App).unwrap();
        let Sample::Compared { canary, primary } =
            sample(&endpoint, &rendered, Utc::now(), None).await
        else {
            panic!("range queries failed")
        };
        assert!(
            canary.len() >= 500 && primary.len() >= 500,
            "{}",
            canary.len()
        );
        compare(&canary, &primary, &JudgeConfig::default());
    })
    .await;
    println!(
        "judge check (render + 2 x /api/v1/query_range of 600 points + judge), {} rounds: p50 {:?}, p99 {:?}",
        ROUNDS / 4,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    other_providers().await;
}
