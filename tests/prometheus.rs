//! Metric checks against a real Prometheus scraping test exporters (tests/cluster/prometheus.rs):
//! the built-in queries, a template with variables, rate() windows, and the judge telling a
//! canary with three times the primary's error rate from its primary.

mod cluster;

use std::time::Duration;

use chrono::Utc;
use cluster::prometheus::{Exporter, P99_MS, Prometheus, RATE, endpoint};
use serin::api::Canary;
use serin::api::canary::Metric;
use serin::engine::input::Sample;
use serin::judge::compare::{Class, JudgeConfig, compare};
use serin::metrics::builtin::Source;
use serin::metrics::prometheus::Endpoint;
use serin::metrics::{Queries, queries, sample};

/// The Canary of `cluster::prometheus::canary` and its one metric.
fn canary(metric: &str) -> (Canary, Metric) {
    let canary = cluster::prometheus::canary(metric);
    let metric = canary.spec.analysis.metrics[0].clone();
    (canary, metric)
}

/// The metric's value once Prometheus has enough scrapes for it.
async fn value(endpoint: &Endpoint, metric: &str, template: Option<&str>) -> (f64, String) {
    let (canary, metric) = canary(metric);
    let queries = queries(&canary, &metric, template, Source::App).unwrap();
    for _ in 0..60 {
        if let Sample::Value(v) = sample(endpoint, &queries, Utc::now(), None).await {
            return (v, queries.shown().to_string());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no value for {}", queries.shown())
}

fn near(value: f64, expected: f64, tolerance: f64) -> bool {
    (value - expected).abs() <= tolerance
}

#[tokio::test]
async fn builtins_templates_and_the_judge_against_a_real_prometheus() {
    // The canary's pods fail 3% of requests, the primary's 1%; the pod names follow the
    // Deployment pattern `<name>-<hash>-<suffix>` the built-in queries select on.
    let canary_pods = Exporter::start("shop", "web-5d8f7c9b4-x2x7q", 0.03, 7);
    let primary_pods = Exporter::start("shop", "web-primary-6c4b9d7f8-k9m2p", 0.01, 11);
    let prometheus = Prometheus::start(&[&canary_pods, &primary_pods]);
    let started = std::time::Instant::now();
    let endpoint = endpoint(&prometheus);

    // Built-in success rate over a 10s rate() window: about 97% (200 req/s, 3% failing).
    let (rate, query) = value(
        &endpoint,
        "      - name: request-success-rate\n        interval: 10s\n        thresholdRange: {min: 99}\n",
        None,
    )
    .await;
    assert!(near(rate, 97.0, 1.0), "{rate} from {query}");
    assert!(query.contains(r#"pod=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#));

    // Built-in p99 latency in milliseconds, read from the histogram.
    let (p99, query) = value(
        &endpoint,
        "      - name: request-duration\n        interval: 10s\n        thresholdRange: {max: 500}\n",
        None,
    )
    .await;
    assert!(near(p99, P99_MS, 0.01), "{p99} from {query}");

    // A MetricTemplate-style query with Flagger's variables and templateVariables: the rate of
    // the primary's failed requests, about 1% of 200 req/s. rate() under-reads a window that is
    // not yet filled with scrapes, so wait until 8s of them are there.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    let template = r#"sum(rate(http_requests_total{namespace="{{ namespace }}", pod=~"{{ target }}-primary-.*", status=~"{{ variables.codes }}"}[{{ interval }}]))"#;
    let (errors, query) = value(
        &endpoint,
        "      - name: primary-errors\n        templateRef: {name: errors}\n        templateVariables: {codes: '5..'}\n        interval: 8s\n        thresholdRange: {max: 10}\n",
        Some(template),
    )
    .await;
    assert!(
        near(errors, f64::from(RATE) * 0.01, 1.5),
        "{errors} from {query}"
    );
    assert!(query.contains(r#"status=~"5..""#) && query.contains("[8s]"));

    // The judge: the error ratio over 5s windows, sampled every second for both workloads.
    let ratio = r#"sum(rate(http_requests_total{namespace="{{ namespace }}", pod=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status="500"}[5s])) / sum(rate(http_requests_total{namespace="{{ namespace }}", pod=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[5s]))"#;
    let (web, metric) = canary(
        "      - name: error-ratio\n        templateRef: {name: error-ratio}\n        judge: {step: 1s, lookback: 40s, minSamples: 20}\n",
    );
    let compared = queries(&web, &metric, Some(ratio), Source::App).unwrap();
    let config = JudgeConfig {
        min_samples: 20,
        ..JudgeConfig::default()
    };
    let mut last = None;
    for _ in 0..60 {
        if let Sample::Compared { canary, primary } =
            sample(&endpoint, &compared, Utc::now(), None).await
        {
            let comparison = compare(&canary, &primary, &config);
            if comparison.class != Class::NoData {
                last = Some(comparison);
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let comparison = last.expect("20 points per side within a minute");
    assert_eq!(comparison.class, Class::High, "{}", comparison.reason);
    assert!(comparison.failed);
    let (canary_mean, primary_mean) = (
        comparison.canary_mean.unwrap(),
        comparison.baseline_mean.unwrap(),
    );
    assert!(
        near(canary_mean, 0.03, 0.01) && near(primary_mean, 0.01, 0.006),
        "means {canary_mean} vs {primary_mean}"
    );

    // The canary is fixed: once the 5s windows hold only new traffic, the same judge over the
    // last 10 seconds sees no regression.
    canary_pods.set_error_ratio(0.01);
    tokio::time::sleep(Duration::from_secs(16)).await;
    let Queries::Compared {
        canary, primary, ..
    } = compared
    else {
        unreachable!("a judged metric renders two queries")
    };
    let fixed = Queries::Compared {
        canary,
        primary,
        step: Duration::from_secs(1),
        lookback: Duration::from_secs(10),
    };
    let Sample::Compared { canary, primary } = sample(&endpoint, &fixed, Utc::now(), None).await
    else {
        panic!("range queries failed")
    };
    let config = JudgeConfig {
        min_samples: 10,
        ..JudgeConfig::default()
    };
    let comparison = compare(&canary, &primary, &config);
    assert_ne!(comparison.class, Class::NoData, "{}", comparison.reason);
    assert!(!comparison.failed, "{}", comparison.reason);
}

#[tokio::test]
async fn builtins_read_the_series_a_flagger_installation_already_scrapes() {
    // The Prometheus of Flagger's chart labels pods `kubernetes_namespace` and
    // `kubernetes_pod_name`: a Canary moved from Flagger keeps its data.
    let canary_pods = Exporter::start("shop", "web-5d8f7c9b4-x2x7q", 0.03, 7).with_flagger_labels();
    let primary_pods =
        Exporter::start("shop", "web-primary-6c4b9d7f8-k9m2p", 0.0, 11).with_flagger_labels();
    let prometheus = Prometheus::start(&[&canary_pods, &primary_pods]);
    let endpoint = endpoint(&prometheus);
    let (rate, query) = value(
        &endpoint,
        "      - name: request-success-rate\n        interval: 10s\n        thresholdRange: {min: 99}\n",
        None,
    )
    .await;
    assert!(near(rate, 97.0, 1.0), "{rate} from {query}");
    assert!(query.contains(r#"kubernetes_pod_name=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#));
    let (p99, query) = value(
        &endpoint,
        "      - name: request-duration\n        interval: 10s\n        thresholdRange: {max: 500}\n",
        None,
    )
    .await;
    assert!(near(p99, P99_MS, 0.01), "{p99} from {query}");
}
