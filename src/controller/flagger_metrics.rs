//! Flagger's own metric names, labels and encodings (`--flagger-metrics`), so dashboards and
//! alert rules written for Flagger read serin unchanged: `flagger_info`,
//! `flagger_canary_status` (0 progressing, 1 anything else, 2 failed), `flagger_canary_weight`
//! for `<target>-primary` and `<target>` under the label `workload`,
//! `flagger_canary_total`, `flagger_canary_duration_seconds` (Prometheus' default buckets),
//! `flagger_canary_metric_analysis`, and `flagger_canary_successes_total` /
//! `flagger_canary_failures_total` by deployment strategy and analysis status. Like Flagger,
//! the `name` label is the target's name, not the Canary's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::Phase;
use crate::api::status::CanaryStatus;
use crate::engine::Strategy;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    version: String,
    mesh_provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    workload: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnalysisLabels {
    name: String,
    namespace: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    name: String,
    namespace: String,
    deployment_strategy: String,
    analysis_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

type Histograms = Family<TargetLabels, Histogram, fn() -> Histogram>;

/// Prometheus' (and so Flagger's) default histogram buckets.
fn default_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// One rollout's view for Flagger's metrics, from one reconcile.
pub struct Observed<'a> {
    pub target: &'a str,
    pub namespace: &'a str,
    pub strategy: &'a Strategy,
    pub skip_analysis: bool,
    /// The phase before this reconcile's decision; a rollout ending is counted once.
    pub before: Option<Phase>,
    pub after: &'a CanaryStatus,
}

pub struct FlaggerMetrics {
    info: Family<InfoLabels, Gauge>,
    status: Family<TargetLabels, Gauge>,
    weight: Family<WorkloadLabels, Gauge>,
    duration: Histograms,
    total: Family<NamespaceLabels, Gauge>,
    analysis: Family<AnalysisLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    successes: Family<OutcomeLabels, Counter>,
    failures: Family<OutcomeLabels, Counter>,
}

impl FlaggerMetrics {
    /// Registers Flagger's metrics in `registry` (which must carry no prefix).
    pub fn register(registry: &mut Registry, mesh_provider: &str) -> Self {
        let metrics = Self {
            info: Family::default(),
            status: Family::default(),
            weight: Family::default(),
            duration: Family::new_with_constructor(default_buckets),
            total: Family::default(),
            analysis: Family::default(),
            successes: Family::default(),
            failures: Family::default(),
        };
        registry.register(
            "flagger_info",
            "Flagger version and mesh provider information",
            metrics.info.clone(),
        );
        registry.register(
            "flagger_canary_status",
            "Last canary analysis result",
            metrics.status.clone(),
        );
        registry.register(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            metrics.weight.clone(),
        );
        registry.register(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            metrics.duration.clone(),
        );
        registry.register(
            "flagger_canary_total",
            "Total number of canary object",
            metrics.total.clone(),
        );
        registry.register(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            metrics.analysis.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "flagger_canary_successes",
            "Total number of canary successes",
            metrics.successes.clone(),
        );
        registry.register(
            "flagger_canary_failures",
            "Total number of canary failures",
            metrics.failures.clone(),
        );
        metrics
            .info
            .get_or_create(&InfoLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                mesh_provider: mesh_provider.into(),
            })
            .set(1);
        metrics
    }

    pub fn observe(&self, seen: &Observed<'_>) {
        let target = TargetLabels {
            name: seen.target.into(),
            namespace: seen.namespace.into(),
        };
        let code = match seen.after.phase {
            Some(Phase::Progressing) => 0,
            Some(Phase::Failed) => 2,
            _ => 1,
        };
        self.status.get_or_create(&target).set(code);
        let canary = i64::from(seen.after.canary_weight);
        for (workload, weight) in [
            (format!("{}-primary", seen.target), 100 - canary),
            (seen.target.to_string(), canary),
        ] {
            self.weight
                .get_or_create(&WorkloadLabels {
                    workload,
                    namespace: seen.namespace.into(),
                })
                .set(weight);
        }
        for check in &seen.after.checks {
            if let Some(value) = check.value {
                self.analysis
                    .get_or_create(&AnalysisLabels {
                        name: seen.target.into(),
                        namespace: seen.namespace.into(),
                        metric: check.name.clone(),
                    })
                    .set(value);
            }
        }
        self.count_outcome(seen);
    }

    /// A rollout that ended in this reconcile, counted as Flagger counts it.
    fn count_outcome(&self, seen: &Observed<'_>) {
        if seen.before == seen.after.phase {
            return;
        }
        let counter = match seen.after.phase {
            Some(Phase::Succeeded) => &self.successes,
            Some(Phase::Failed) => &self.failures,
            _ => return,
        };
        let strategy = match seen.strategy {
            Strategy::Canary { .. } => "canary",
            Strategy::AbTesting { .. } => "ab-testing",
            Strategy::BlueGreen { .. } => "blue-green",
        };
        counter
            .get_or_create(&OutcomeLabels {
                name: seen.target.into(),
                namespace: seen.namespace.into(),
                deployment_strategy: strategy.into(),
                analysis_status: if seen.skip_analysis {
                    "skipped"
                } else {
                    "completed"
                }
                .into(),
            })
            .inc();
    }

    pub fn reconciled(&self, target: &str, namespace: &str, seconds: f64) {
        self.duration
            .get_or_create(&TargetLabels {
                name: target.into(),
                namespace: namespace.into(),
            })
            .observe(seconds);
    }

    pub fn set_total(&self, namespace: &str, count: i64) {
        self.total
            .get_or_create(&NamespaceLabels {
                namespace: namespace.into(),
            })
            .set(count);
    }

    pub fn clear_totals(&self) {
        self.total.clear();
    }

    pub fn forget(&self, target: &str, namespace: &str) {
        let labels = TargetLabels {
            name: target.into(),
            namespace: namespace.into(),
        };
        self.status.remove(&labels);
        self.duration.remove(&labels);
        for workload in [format!("{target}-primary"), target.to_string()] {
            self.weight.remove(&WorkloadLabels {
                workload,
                namespace: namespace.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::telemetry::Metrics;

    fn status(phase: Phase, weight: i32) -> CanaryStatus {
        CanaryStatus {
            phase: Some(phase),
            canary_weight: weight,
            ..CanaryStatus::default()
        }
    }

    fn seen<'a>(
        before: Option<Phase>,
        after: &'a CanaryStatus,
        strategy: &'a Strategy,
    ) -> Observed<'a> {
        Observed {
            target: "podinfo",
            namespace: "test",
            strategy,
            skip_analysis: false,
            before,
            after,
        }
    }

    #[test]
    fn flaggers_names_labels_and_encodings_are_exported() {
        let metrics = Metrics::new(Some("istio"));
        let canary = Strategy::Canary {
            steps: Vec::new(),
            session_affinity: false,
        };
        let progressing = status(Phase::Progressing, 30);
        metrics.observe_for_flagger(&seen(Some(Phase::Initialized), &progressing, &canary));
        metrics.observe_canary("web", "test", &progressing);
        let text = metrics.encode();
        for line in [
            "flagger_info{version=\"",
            "flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 0",
            "flagger_canary_weight{workload=\"podinfo-primary\",namespace=\"test\"} 70",
            "flagger_canary_weight{workload=\"podinfo\",namespace=\"test\"} 30",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(text.contains(",mesh_provider=\"istio\"} 1"), "{text}");
        // serin's own names are unchanged beside them.
        assert!(
            text.contains("serin_canary_status{name=\"web\",namespace=\"test\"} 0"),
            "{text}"
        );

        let succeeded = status(Phase::Succeeded, 0);
        metrics.observe_for_flagger(&seen(Some(Phase::Finalising), &succeeded, &canary));
        // A settled canary reconciled again is not another success.
        metrics.observe_for_flagger(&seen(Some(Phase::Succeeded), &succeeded, &canary));
        let text = metrics.encode();
        assert!(
            text.contains("flagger_canary_successes_total{name=\"podinfo\",namespace=\"test\",deployment_strategy=\"canary\",analysis_status=\"completed\"} 1"),
            "{text}"
        );
        assert!(text.contains("flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 1"));

        let blue_green = Strategy::BlueGreen {
            iterations: 10,
            mirror: None,
        };
        let failed = status(Phase::Failed, 0);
        metrics.observe_for_flagger(&seen(Some(Phase::Progressing), &failed, &blue_green));
        let text = metrics.encode();
        assert!(
            text.contains("flagger_canary_failures_total{name=\"podinfo\",namespace=\"test\",deployment_strategy=\"blue-green\",analysis_status=\"completed\"} 1"),
            "{text}"
        );
        assert!(text.contains("flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 2"));
    }

    #[test]
    fn without_the_flag_no_flagger_metric_is_exported() {
        let metrics = Metrics::new(None);
        let after = status(Phase::Progressing, 10);
        let strategy = Strategy::AbTesting { iterations: 5 };
        metrics.observe_for_flagger(&seen(None, &after, &strategy));
        assert!(!metrics.encode().contains("flagger_"));
    }
}
