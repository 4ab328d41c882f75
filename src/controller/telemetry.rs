//! serin's own metrics (prometheus-client) and the HTTP endpoints /metrics, /healthz and
//! /readyz (axum). Metric names follow Flagger's with a `serin_` prefix, so existing
//! dashboards port by renaming.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::flagger_metrics::{FlaggerMetrics, Observed};
use super::freshness::Freshness;
use crate::api::Phase;
use crate::api::status::CanaryStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CanaryLabels {
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    pub name: String,
    pub namespace: String,
    pub metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
    /// Why a reconcile failed (a `Reason` name, or `Transient`); empty for a success.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// `serin_canary_phase`'s value for each phase. Fixed numbers, never renumbered: dashboards
/// map them back to names and alerts compare them (docs/operations.md lists them).
pub const fn phase_code(phase: Phase) -> i64 {
    match phase {
        Phase::Initializing => 0,
        Phase::Initialized => 1,
        Phase::Waiting => 2,
        Phase::Progressing => 3,
        Phase::WaitingPromotion => 4,
        Phase::Promoting => 5,
        Phase::Finalising => 6,
        Phase::Succeeded => 7,
        Phase::Failed => 8,
        Phase::Terminating => 9,
        Phase::Terminated => 10,
    }
}

const PHASE_HELP: &str = "Canary phase: 0 Initializing, 1 Initialized, 2 Waiting, 3 Progressing, \
    4 WaitingPromotion, 5 Promoting, 6 Finalising, 7 Succeeded, 8 Failed, 9 Terminating, 10 Terminated";

pub struct Metrics {
    registry: Registry,
    /// Flagger's metrics, with `--flagger-metrics`.
    flagger: Option<FlaggerMetrics>,
    /// Flagger's encoding: 0 in progress, 1 succeeded (or initialized), 2 failed.
    status: Family<CanaryLabels, Gauge>,
    /// The phase as a number (`phase_code`): one series a dashboard draws as a state timeline
    /// and an alert compares, where a label per phase would need one series per phase.
    phase: Family<CanaryLabels, Gauge>,
    weight: Family<CanaryLabels, Gauge>,
    duration: Histograms<CanaryLabels>,
    total: Family<NamespaceLabels, Gauge>,
    analysis: Family<MetricLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reconciles: Family<ResultLabels, Counter>,
    api_latency: Histograms<VerbLabels>,
    /// How fresh each watch's view is (also the replica's readiness).
    pub freshness: Freshness,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

impl Metrics {
    /// serin's metrics, and Flagger's too when `flagger` names the default mesh provider
    /// (`--flagger-metrics`).
    pub fn new(flagger: Option<&str>) -> Self {
        // No registry prefix: serin's names carry `serin_` themselves, Flagger's `flagger_`.
        let mut registry = Registry::default();
        let status = Family::default();
        let phase = Family::default();
        let weight = Family::default();
        let duration: Histograms<CanaryLabels> = Family::new_with_constructor(latency_histogram);
        let total = Family::default();
        let analysis = Family::default();
        let reconciles = Family::default();
        let api_latency: Histograms<VerbLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "serin_canary_status",
            "Canary state: 0 in progress, 1 succeeded or initialized, 2 failed",
            status.clone(),
        );
        registry.register("serin_canary_phase", PHASE_HELP, phase.clone());
        registry.register(
            "serin_canary_weight",
            "Percent of traffic on the canary",
            weight.clone(),
        );
        registry.register(
            "serin_canary_duration_seconds",
            "Time spent in one reconcile of a canary, checks included",
            duration.clone(),
        );
        registry.register(
            "serin_canary_total",
            "Canaries per namespace",
            total.clone(),
        );
        registry.register(
            "serin_canary_metric_analysis",
            "Last value of each analysis metric",
            analysis.clone(),
        );
        registry.register(
            "serin_reconcile",
            "Reconciles by result",
            reconciles.clone(),
        );
        registry.register(
            "serin_api_request_duration_seconds",
            "Latency of Kubernetes API requests by verb",
            api_latency.clone(),
        );
        let flagger = flagger.map(|mesh| FlaggerMetrics::register(&mut registry, mesh));
        let freshness = Freshness::register(&mut registry);
        Self {
            registry,
            flagger,
            status,
            phase,
            weight,
            duration,
            total,
            analysis,
            reconciles,
            api_latency,
            freshness,
        }
    }

    pub fn observe_canary(&self, name: &str, namespace: &str, status: &CanaryStatus) {
        let labels = CanaryLabels {
            name: name.into(),
            namespace: namespace.into(),
        };
        let code = match status.phase {
            Some(Phase::Succeeded | Phase::Initialized) => 1,
            Some(Phase::Failed) => 2,
            _ => 0,
        };
        self.status.get_or_create(&labels).set(code);
        if let Some(phase) = status.phase {
            self.phase.get_or_create(&labels).set(phase_code(phase));
        }
        self.weight
            .get_or_create(&labels)
            .set(i64::from(status.canary_weight));
        for check in &status.checks {
            if let Some(value) = check.value {
                self.analysis
                    .get_or_create(&MetricLabels {
                        name: name.into(),
                        namespace: namespace.into(),
                        metric: check.name.clone(),
                    })
                    .set(value);
            }
        }
    }

    /// Flagger's view of the same reconcile, with `--flagger-metrics`.
    pub fn observe_for_flagger(&self, seen: &Observed<'_>) {
        if let Some(flagger) = &self.flagger {
            flagger.observe(seen);
        }
    }

    pub fn forget_canary(&self, name: &str, namespace: &str, target: &str) {
        if let Some(flagger) = &self.flagger {
            flagger.forget(target, namespace);
        }
        let labels = CanaryLabels {
            name: name.into(),
            namespace: namespace.into(),
        };
        self.status.remove(&labels);
        self.phase.remove(&labels);
        self.weight.remove(&labels);
        self.duration.remove(&labels);
    }

    /// One reconcile's duration, and its outcome: `failed` is the error's label (its failure
    /// reason, or `Transient`), None for a success.
    pub fn reconciled(
        &self,
        (name, namespace, target): (&str, &str, &str),
        started: Instant,
        failed: Option<&str>,
    ) {
        if let Some(flagger) = &self.flagger {
            flagger.reconciled(target, namespace, started.elapsed().as_secs_f64());
        }
        self.duration
            .get_or_create(&CanaryLabels {
                name: name.into(),
                namespace: namespace.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.reconciles
            .get_or_create(&ResultLabels {
                result: if failed.is_none() { "success" } else { "error" }.into(),
                reason: failed.unwrap_or_default().into(),
            })
            .inc();
    }

    pub fn set_totals(&self, per_namespace: impl IntoIterator<Item = (String, i64)>) {
        self.total.clear();
        if let Some(flagger) = &self.flagger {
            flagger.clear_totals();
        }
        for (namespace, count) in per_namespace {
            if let Some(flagger) = &self.flagger {
                flagger.set_total(&namespace, count);
            }
            self.total
                .get_or_create(&NamespaceLabels { namespace })
                .set(count);
        }
    }

    /// Times one API request; the latency is recorded when the guard drops.
    pub fn api_timer(&self, verb: &'static str) -> ApiTimer<'_> {
        ApiTimer {
            metrics: self,
            verb,
            started: Instant::now(),
        }
    }

    pub fn encode(&self) -> String {
        self.freshness.export();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

pub struct ApiTimer<'a> {
    metrics: &'a Metrics,
    verb: &'static str,
    started: Instant,
}

impl Drop for ApiTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .api_latency
            .get_or_create(&VerbLabels {
                verb: self.verb.into(),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// What the HTTP endpoints report.
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Caches synced (or standing by for the Lease): the replica can serve.
    pub ready: AtomicBool,
    /// The reconcile loop is alive.
    pub live: AtomicBool,
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(health): State<Arc<Health>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.encode(),
    )
}

async fn healthz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    probe(health.live.load(Ordering::Relaxed))
}

/// Ready once the caches are synced (or standing by for the Lease), and while no watch is
/// stale: the body names the stale watches and why.
async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    if !health.ready.load(Ordering::Relaxed) {
        return probe(false).into_response();
    }
    match health.metrics.freshness.stale() {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stale view of the cluster: {why}"),
        )
            .into_response(),
        None => probe(true).into_response(),
    }
}

fn probe(ok: bool) -> (StatusCode, &'static str) {
    if ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_is_exported_as_its_fixed_code_and_forgotten_with_the_canary() {
        let metrics = Metrics::default();
        let mut status = CanaryStatus {
            phase: Some(Phase::Progressing),
            canary_weight: 20,
            ..CanaryStatus::default()
        };
        metrics.observe_canary("web", "shop", &status);
        let text = metrics.encode();
        assert!(
            text.contains("serin_canary_phase{name=\"web\",namespace=\"shop\"} 3"),
            "{text}"
        );
        status.phase = Some(Phase::Failed);
        metrics.observe_canary("web", "shop", &status);
        assert!(
            metrics
                .encode()
                .contains("serin_canary_phase{name=\"web\",namespace=\"shop\"} 8")
        );
        metrics.forget_canary("web", "shop", "web");
        assert!(!metrics.encode().contains("serin_canary_phase{"));
    }

    #[test]
    fn every_phase_has_its_own_code_named_in_the_help_text() {
        let mut codes = std::collections::BTreeSet::new();
        for phase in Phase::ALL {
            let code = phase_code(phase);
            assert!(codes.insert(code), "{phase:?} shares code {code}");
            assert!(
                PHASE_HELP.contains(&format!("{code} {}", phase.as_str())),
                "{phase:?}"
            );
        }
    }
}
