//! What a load did: counts by outcome and a latency histogram small enough to keep for hours
//! of load (log-spaced buckets 2% wide: a quantile is exact to 2%, memory is fixed).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

const GROWTH: f64 = 1.02;
const SMALLEST_MICROS: f64 = 10.0;
const BUCKETS: usize = 800; // 10 µs · 1.02^800 ≈ 13 minutes

/// Shared by the workers of one load.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    by_status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    buckets: Vec<u64>,
    max: Duration,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            by_status: BTreeMap::new(),
            errors: BTreeMap::new(),
            buckets: vec![0; BUCKETS],
            max: Duration::ZERO,
        }
    }
}

/// The report a load gives: in the hook's answer, at `/loads` and in the log.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub requests: u64,
    /// Answers with a 2xx status.
    pub succeeded: u64,
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    pub error_ratio: f64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors by kind (timeout, connect, ...).
    pub errors: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Requests completed per second over `seconds`.
    pub rate: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn bucket(latency: Duration) -> usize {
    let micros = latency.as_secs_f64() * 1e6;
    if micros <= SMALLEST_MICROS {
        return 0;
    }
    ((micros / SMALLEST_MICROS).ln() / GROWTH.ln())
        .ceil()
        .min((BUCKETS - 1) as f64) as usize
}

fn bucket_upper_ms(index: usize) -> f64 {
    SMALLEST_MICROS * GROWTH.powi(index as i32) / 1000.0
}

impl Stats {
    pub fn answered(&self, status: u16, latency: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.by_status.entry(status).or_default() += 1;
        inner.record(latency);
    }

    pub fn failed(&self, kind: &str, latency: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.errors.entry(kind.to_string()).or_default() += 1;
        inner.record(latency);
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let answered: u64 = inner.by_status.values().sum();
        let errors: u64 = inner.errors.values().sum();
        let succeeded: u64 = inner
            .by_status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let requests = answered + errors;
        let failed = requests - succeeded;
        let seconds = elapsed.as_secs_f64();
        Summary {
            requests,
            succeeded,
            failed,
            error_ratio: if requests == 0 {
                0.0
            } else {
                failed as f64 / requests as f64
            },
            statuses: inner.by_status.clone(),
            errors: inner.errors.clone(),
            seconds,
            rate: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency_ms: inner.latency(requests),
        }
    }
}

impl Inner {
    fn record(&mut self, latency: Duration) {
        self.buckets[bucket(latency)] += 1;
        self.max = self.max.max(latency);
    }

    fn latency(&self, count: u64) -> Latency {
        if count == 0 {
            return Latency::default();
        }
        let max = self.max.as_secs_f64() * 1000.0;
        let quantile = |q: f64| {
            let rank = (q * count as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, n) in self.buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return bucket_upper_ms(index).min(max);
                }
            }
            max
        };
        Latency {
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let stats = Stats::default();
        for ms in 1..=1000 {
            stats.answered(200, Duration::from_millis(ms));
        }
        stats.answered(503, Duration::from_millis(1));
        stats.failed("timeout", Duration::from_secs(10));
        let s = stats.summary(Duration::from_secs(2));
        assert_eq!(s.requests, 1002);
        assert_eq!(s.succeeded, 1000);
        assert_eq!(s.failed, 2);
        assert_eq!(s.statuses[&503], 1);
        assert_eq!(s.errors["timeout"], 1);
        assert!((s.latency_ms.p50 - 500.0).abs() / 500.0 <= 0.02, "{s:?}");
        assert!((s.latency_ms.p99 - 990.0).abs() / 990.0 <= 0.02, "{s:?}");
        assert_eq!(s.latency_ms.max, 10_000.0);
        assert_eq!(s.rate, 501.0);
    }

    #[test]
    fn an_empty_load_reports_zeros() {
        let s = Stats::default().summary(Duration::ZERO);
        assert_eq!((s.requests, s.error_ratio, s.rate), (0, 0.0, 0.0));
    }
}
