//! The statistical judge on two samples of 10,000 points: rank-sum test, Hodges-Lehmann shift
//! and its interval, classification. statrs' own `mannwhitneyu` is measured beside it for
//! the record (it checks comparability pairwise, O(n²)).
//!
//! Run: `cargo bench --bench judge`. Results are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serin::judge::compare::{JudgeConfig, compare};
use serin::judge::rank_sum::mann_whitney;
use serin::judge::shift::hodges_lehmann;
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

/// Deterministic latency-like values (a cheap LCG; no need for statistical quality here).
fn sample(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            scale * (1.0 + (state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let canary = sample(10_000, 120.0, 1);
    let primary = sample(10_000, 100.0, 2);
    let config = JudgeConfig::default();
    c.bench_function(
        "judge: compare 10k vs 10k (test, shift, interval, class)",
        |b| b.iter(|| compare(black_box(&canary), black_box(&primary), &config)),
    );
    c.bench_function("judge: rank-sum test alone, 10k vs 10k", |b| {
        b.iter(|| mann_whitney(black_box(&canary), black_box(&primary)))
    });
    let (mut sorted_canary, mut sorted_primary) = (canary.clone(), primary.clone());
    sorted_canary.sort_by(f64::total_cmp);
    sorted_primary.sort_by(f64::total_cmp);
    c.bench_function(
        "judge: Hodges-Lehmann shift and 98% interval alone, sorted 10k vs 10k",
        |b| b.iter(|| hodges_lehmann(black_box(&sorted_canary), black_box(&sorted_primary), 0.98)),
    );
    let mut group = c.benchmark_group("statrs");
    group.sample_size(10);
    group.bench_function("statrs mannwhitneyu asymptotic, 10k vs 10k", |b| {
        b.iter(|| {
            mannwhitneyu(
                black_box(&canary),
                black_box(&primary),
                MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
                Alternative::TwoSided,
            )
        })
    });
    group.finish();
}

criterion_group!(judge, benches);
criterion_main!(judge);
