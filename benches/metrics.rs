//! A threshold check's round trip against a local Prometheus (the Debian package, as in the
//! tests): render the built-in success-rate query, ask `/api/v1/query`, parse the answer —
//! what the controller does for each metric at each analysis tick. Also one judge check: two
//! range queries of 600 points each and the comparison.
//!
//! Run: `cargo bench --bench metrics` (results go to docs/benchmarks.md by hand).

#[path = "../tests/cluster/mod.rs"]
mod cluster;

use std::time::{Duration, Instant};

use chrono::Utc;
use cluster::prometheus::{Exporter, Prometheus, canary, endpoint};
use serin::engine::input::Sample;
use serin::judge::compare::{JudgeConfig, compare};
use serin::metrics::builtin::Source;
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

#[tokio::main]
async fn main() {
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
}
