//! Manifests Flagger runs where serin's own rules are stricter. Such a Canary is read the way
//! Flagger reads it, and every place where that differs from what the manifest says (or from
//! what serin would have asked for) becomes a warning naming the field: `serin check` prints
//! it, `serin simulate` prints it, the controller records it as a Warning event. Nothing here
//! refuses: refusals stay in `validation` and `provider::admit`, which judge the spec as read
//! here.
//!
//! The facts followed are Flagger's (v1beta1): zero means unset for its integer fields; its
//! strategy is A/B with iterations and match, blue/green with iterations, else canary, and the
//! weight fields beside iterations are ignored; `maxWeight` is ignored when `stepWeights` are
//! listed; the `kubernetes` provider drops A/B matches and runs blue/green, with 10
//! iterations when none are set; the deprecated `metrics[].threshold` is a minimum for
//! `request-success-rate` and a maximum for every other metric, and a metric with neither it
//! nor `thresholdRange` is compared with 0; a Deployment is read through apps/v1 whatever
//! `targetRef.apiVersion` says.

use super::canary::{CanarySpec, Metric, ThresholdRange};
use super::provider::{ProviderKind, TrafficProvider};
use super::validation::FieldError;

/// Iterations Flagger gives a Canary whose provider cannot split traffic and that sets none.
pub const FALLBACK_ITERATIONS: i32 = 10;

/// The metric the deprecated `threshold` is a minimum of (a maximum for every other one).
const SUCCESS_RATE: &str = "request-success-rate";

/// The spec as serin will run it, and what differs from the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub spec: CanarySpec,
    pub warnings: Vec<FieldError>,
}

/// Reads `spec` as Flagger would with `provider` (None: the provider could not be parsed,
/// which `provider::resolve` reports).
pub fn read(spec: &CanarySpec, provider: Option<TrafficProvider>) -> Reading {
    let mut reading = Reading {
        spec: spec.clone(),
        warnings: Vec::new(),
    };
    reading.zero_means_unset();
    reading.target_api_version();
    if let Some(provider) = provider.filter(|p| !p.row().can.weights) {
        reading.without_traffic_split(provider);
    }
    reading.iterations_choose_the_strategy();
    reading.step_weights_above_max_weight();
    reading.mirror_before_weights();
    reading.metric_thresholds();
    reading.other_providers_fields(provider);
    reading
}

impl Reading {
    /// Fields only another provider reads (Gloo's upstreamRef, App Mesh's meshName and
    /// backends, Istio's delegation): Flagger ignores them elsewhere, and so does serin,
    /// saying so.
    fn other_providers_fields(&mut self, provider: Option<TrafficProvider>) {
        let is = |kind| provider.is_some_and(|p| p.kind == kind);
        let istio = is(ProviderKind::Istio);
        let gloo = is(ProviderKind::Gloo);
        let service = &self.spec.service;
        let fields = [
            (
                "spec.upstreamRef",
                "gloo",
                self.spec.upstream_ref.is_some() && !gloo,
            ),
            (
                "spec.service.meshName",
                "appmesh",
                service.mesh_name.is_some(),
            ),
            (
                "spec.service.backends",
                "appmesh",
                !service.backends.is_empty(),
            ),
            (
                "spec.service.delegation",
                "istio",
                service.delegation && !istio,
            ),
        ];
        for (field, reader, set) in fields {
            if set {
                let provider = provider.map_or("this".to_string(), |p| p.to_string());
                self.warn(
                    field,
                    format!("only the {reader} provider reads it; ignored with the {provider} provider, as Flagger does"),
                );
            }
        }
    }

    fn warn(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.warnings.push(FieldError::new(field, reason));
    }

    /// Flagger's integer fields are plain ints: 0 is the same as absent.
    fn zero_means_unset(&mut self) {
        let analysis = &mut self.spec.analysis;
        for field in [
            &mut analysis.iterations,
            &mut analysis.max_weight,
            &mut analysis.threshold,
        ] {
            if *field == Some(0) {
                *field = None;
            }
        }
    }

    fn target_api_version(&mut self) {
        let target = &mut self.spec.target_ref;
        if target.kind != "Deployment" || target.api_version == "apps/v1" {
            return;
        }
        let named = std::mem::replace(&mut target.api_version, "apps/v1".into());
        if !named.is_empty() {
            self.warn(
                "spec.targetRef.apiVersion",
                format!("{named:?} is read as apps/v1: Deployments are read through apps/v1 whatever version the reference names (as Flagger does)"),
            );
        }
    }

    /// Flagger's fallback for a provider that cannot route by weight or by request (the
    /// `kubernetes` provider): blue/green, and every routing-only field ignored.
    fn without_traffic_split(&mut self, provider: TrafficProvider) {
        let runs = "runs blue/green instead, as Flagger does";
        let analysis = &self.spec.analysis;
        let weights = [
            ("stepWeight", analysis.step_weight.is_some()),
            ("stepWeights", !analysis.step_weights.is_empty()),
            ("steps", !analysis.steps.is_empty()),
            ("maxWeight", analysis.max_weight.is_some()),
        ];
        let named: Vec<&str> = weights
            .iter()
            .filter_map(|(name, set)| set.then_some(*name))
            .collect();
        if !analysis.matches.is_empty() {
            self.warn(
                "spec.analysis.match",
                format!("the {provider} provider cannot route requests by match: A/B testing {runs}; the match is ignored"),
            );
            self.spec.analysis.matches.clear();
        }
        if self.spec.analysis.iterations.is_none() {
            let field = named.first().copied().unwrap_or("iterations");
            self.warn(
                format!("spec.analysis.{field}"),
                format!("the {provider} provider cannot split traffic by weight: the rollout {runs}, with analysis.iterations: {FALLBACK_ITERATIONS} (set iterations to choose)"),
            );
            let analysis = &mut self.spec.analysis;
            analysis.iterations = Some(FALLBACK_ITERATIONS);
            analysis.step_weight = None;
            analysis.step_weights.clear();
            analysis.steps.clear();
            analysis.max_weight = None;
        }
        self.ignore_routing_fields(provider);
    }

    /// Fields only a traffic-splitting provider acts on, dropped with a warning each.
    fn ignore_routing_fields(&mut self, provider: TrafficProvider) {
        let cannot =
            |what: &str| format!("the {provider} provider cannot {what}; ignored, as Flagger does");
        let analysis = &mut self.spec.analysis;
        let mut dropped = Vec::new();
        if analysis.mirror || analysis.mirror_weight.is_some() {
            analysis.mirror = false;
            analysis.mirror_weight = None;
            dropped.push(("spec.analysis.mirror", cannot("mirror traffic")));
        }
        if analysis.session_affinity.take().is_some() {
            dropped.push((
                "spec.analysis.sessionAffinity",
                cannot("keep sessions sticky"),
            ));
        }
        if analysis.step_weight_promotion.take().is_some() {
            dropped.push((
                "spec.analysis.stepWeightPromotion",
                cannot(
                    "shift traffic back by steps: the promoted primary takes all traffic at once",
                ),
            ));
        }
        let service = &mut self.spec.service;
        if !service.matches.is_empty() {
            service.matches.clear();
            dropped.push(("spec.service.match", cannot("route requests by match")));
        }
        let route_fields = [
            ("spec.service.timeout", service.timeout.take().is_some()),
            (
                "spec.service.backendTimeout",
                service.backend_timeout.take().is_some(),
            ),
            ("spec.service.retries", service.retries.take().is_some()),
            ("spec.service.rewrite", service.rewrite.take().is_some()),
            ("spec.service.headers", service.headers.take().is_some()),
            (
                "spec.service.corsPolicy",
                service.cors_policy.take().is_some(),
            ),
            (
                "spec.service.mirror",
                !std::mem::take(&mut service.mirror).is_empty(),
            ),
        ];
        for (field, set) in route_fields {
            if set {
                dropped.push((field, cannot("write this onto a route (it has none)")));
            }
        }
        for (field, reason) in dropped {
            self.warn(field, reason);
        }
    }

    /// iterations decide the strategy (A/B with match, blue/green without); the weight fields
    /// beside them are ignored. serin's own `steps` stay refused beside iterations.
    fn iterations_choose_the_strategy(&mut self) {
        let analysis = &mut self.spec.analysis;
        if analysis.iterations.is_none() {
            return;
        }
        let strategy = if analysis.matches.is_empty() {
            "blue/green"
        } else {
            "A/B testing"
        };
        let mut ignored = Vec::new();
        if analysis.step_weight.take().is_some() {
            ignored.push("stepWeight");
        }
        if !analysis.step_weights.is_empty() {
            analysis.step_weights.clear();
            ignored.push("stepWeights");
        }
        if analysis.max_weight.take().is_some() {
            ignored.push("maxWeight");
        }
        for field in ignored {
            self.warn(
                format!("spec.analysis.{field}"),
                format!("ignored: iterations make this a {strategy} rollout, as Flagger decides"),
            );
        }
    }

    /// With stepWeights, the last step is the highest weight: maxWeight is not consulted.
    fn step_weights_above_max_weight(&mut self) {
        let analysis = &mut self.spec.analysis;
        let Some(max) = analysis.max_weight else {
            return;
        };
        if analysis.step_weights.is_empty() {
            return;
        }
        analysis.max_weight = None;
        if let Some(above) = analysis.step_weights.iter().copied().find(|w| *w > max) {
            self.warn(
                "spec.analysis.maxWeight",
                format!("ignored: stepWeights list the steps ({above} is above maxWeight {max}) and the last one is the highest weight, as in Flagger"),
            );
        }
    }

    /// Flagger mirrors one tick before the first weight of a canary rollout; serin mirrors in
    /// blue/green only, so the canary rollout runs without that tick.
    fn mirror_before_weights(&mut self) {
        let analysis = &mut self.spec.analysis;
        let weighted =
            analysis.step_weight.is_some_and(|w| w > 0) || !analysis.step_weights.is_empty();
        if analysis.iterations.is_some() || !analysis.mirror || !weighted {
            return;
        }
        analysis.mirror = false;
        analysis.mirror_weight = None;
        self.warn(
            "spec.analysis.mirror",
            "ignored: serin mirrors in blue/green rollouts only, so this canary rollout shifts weights without Flagger's mirrored tick before the first step",
        );
    }

    fn metric_thresholds(&mut self) {
        let mut warnings = Vec::new();
        for (i, metric) in self.spec.analysis.metrics.iter_mut().enumerate() {
            if let Some(warning) = metric_threshold(metric) {
                warnings.push(FieldError::new(
                    format!("spec.analysis.metrics[{i}].{}", warning.field),
                    warning.reason,
                ));
            }
        }
        self.warnings.extend(warnings);
    }
}

/// The bound Flagger derives from the deprecated `threshold` (0 when absent).
pub fn threshold_as_range(metric_name: &str, threshold: f64) -> ThresholdRange {
    if metric_name == SUCCESS_RATE {
        ThresholdRange {
            min: Some(threshold),
            max: None,
        }
    } else {
        ThresholdRange {
            min: None,
            max: Some(threshold),
        }
    }
}

/// Which end of the range `threshold_as_range` sets, for messages.
fn bound_name(metric_name: &str) -> &'static str {
    if metric_name == SUCCESS_RATE {
        "min"
    } else {
        "max"
    }
}

/// Turns the deprecated `threshold` into the range Flagger checks; the warning names the
/// field relative to the metric.
fn metric_threshold(metric: &mut Metric) -> Option<FieldError> {
    let bound = bound_name(&metric.name);
    match (metric.threshold.take(), metric.threshold_range) {
        (Some(_), Some(_)) => Some(FieldError::new(
            "threshold",
            "ignored beside thresholdRange, as Flagger does: remove it",
        )),
        (Some(threshold), None) => {
            metric.threshold_range = Some(threshold_as_range(&metric.name, threshold));
            Some(FieldError::new(
                "threshold",
                format!(
                    "deprecated: read as thresholdRange.{bound}: {threshold}, as Flagger does (`serin migrate` converts it)"
                ),
            ))
        }
        (None, None) if metric.judge.is_none() => {
            metric.threshold_range = Some(threshold_as_range(&metric.name, 0.0));
            Some(FieldError::new(
                "thresholdRange",
                format!(
                    "missing: the metric is checked against thresholdRange.{bound}: 0, as Flagger does; set thresholdRange to say what passes"
                ),
            ))
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::provider::ProviderKind;

    fn spec(yaml: &str) -> CanarySpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn fields(reading: &Reading) -> Vec<&str> {
        reading.warnings.iter().map(|w| w.field.as_str()).collect()
    }

    const ISTIO: Option<TrafficProvider> = Some(TrafficProvider::of(ProviderKind::Istio));
    const KUBERNETES: Option<TrafficProvider> = Some(TrafficProvider::of(ProviderKind::Kubernetes));

    #[test]
    fn the_upstream_ref_is_read_by_gloo_and_warned_as_ignored_elsewhere() {
        let written = spec(
            "{targetRef: {name: a}, upstreamRef: {name: config, namespace: gloo-system}, service: {port: 80}, analysis: {stepWeight: 10}}",
        );
        let gloo = Some(TrafficProvider::of(ProviderKind::Gloo));
        assert_eq!(read(&written, gloo).warnings, []);
        let reading = read(&written, ISTIO);
        assert_eq!(fields(&reading), ["spec.upstreamRef"]);
        assert!(
            reading.warnings[0]
                .reason
                .contains("only the gloo provider reads it")
        );
    }

    #[test]
    fn a_serin_manifest_is_read_as_written_without_warnings() {
        let written = spec(
            "{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10, maxWeight: 50, metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]}}",
        );
        let reading = read(&written, ISTIO);
        assert_eq!(reading.spec, written);
        assert_eq!(reading.warnings, []);
    }

    #[test]
    fn the_deprecated_threshold_is_a_minimum_for_the_success_rate_and_a_maximum_otherwise() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10, metrics: [{name: request-success-rate, threshold: 99}, {name: request-duration, threshold: 500}, {name: errors, threshold: 1, thresholdRange: {max: 5}}, {name: latency, query: q}]}}",
            ),
            ISTIO,
        );
        let ranges: Vec<_> = reading
            .spec
            .analysis
            .metrics
            .iter()
            .map(|m| (m.threshold_range.unwrap(), m.threshold))
            .collect();
        let range = |min, max| ThresholdRange { min, max };
        assert_eq!(
            ranges,
            [
                (range(Some(99.0), None), None),
                (range(None, Some(500.0)), None),
                (range(None, Some(5.0)), None),
                (range(None, Some(0.0)), None),
            ]
        );
        assert_eq!(
            fields(&reading),
            [
                "spec.analysis.metrics[0].threshold",
                "spec.analysis.metrics[1].threshold",
                "spec.analysis.metrics[2].threshold",
                "spec.analysis.metrics[3].thresholdRange",
            ]
        );
    }

    #[test]
    fn the_kubernetes_provider_runs_blue_green_with_ten_iterations() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80, timeout: 5s}, analysis: {stepWeight: 10, maxWeight: 50, stepWeightPromotion: 20, mirror: true, match: [{headers: {x: {exact: y}}}]}}",
            ),
            KUBERNETES,
        );
        let analysis = &reading.spec.analysis;
        assert_eq!(analysis.iterations, Some(FALLBACK_ITERATIONS));
        assert_eq!(
            (analysis.step_weight, analysis.max_weight, analysis.mirror),
            (None, None, false)
        );
        assert!(analysis.matches.is_empty());
        assert_eq!(reading.spec.service.timeout, None);
        assert_eq!(
            fields(&reading),
            [
                "spec.analysis.match",
                "spec.analysis.stepWeight",
                "spec.analysis.mirror",
                "spec.analysis.stepWeightPromotion",
                "spec.service.timeout",
            ]
        );
        assert!(reading.warnings[1].reason.contains("iterations: 10"));
    }

    #[test]
    fn the_kubernetes_provider_drops_gateway_api_route_fields_with_a_warning() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80, backendTimeout: 5s, mirror: [{backendRef: {name: s, port: 80}}]}, analysis: {iterations: 2}}",
            ),
            KUBERNETES,
        );
        assert_eq!(reading.spec.service.backend_timeout, None);
        assert!(reading.spec.service.mirror.is_empty());
        assert_eq!(
            fields(&reading),
            ["spec.service.backendTimeout", "spec.service.mirror"]
        );
    }

    #[test]
    fn iterations_keep_their_count_and_win_over_weights() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {iterations: 3, stepWeights: [10, 20]}}",
            ),
            ISTIO,
        );
        assert_eq!(reading.spec.analysis.iterations, Some(3));
        assert!(reading.spec.analysis.step_weights.is_empty());
        assert!(reading.warnings[0].reason.contains("blue/green"));
    }

    #[test]
    fn zero_is_unset_and_max_weight_gives_way_to_step_weights() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {iterations: 0, threshold: 0, maxWeight: 30, stepWeights: [10, 50]}}",
            ),
            ISTIO,
        );
        let analysis = &reading.spec.analysis;
        assert_eq!(
            (analysis.iterations, analysis.threshold, analysis.max_weight),
            (None, None, None)
        );
        assert_eq!(fields(&reading), ["spec.analysis.maxWeight"]);
    }

    #[test]
    fn a_canary_rollout_with_mirror_runs_without_the_mirrored_tick() {
        let reading = read(
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 20, mirror: true, mirrorWeight: 50}}",
            ),
            ISTIO,
        );
        assert!(!reading.spec.analysis.mirror);
        assert_eq!(reading.spec.analysis.mirror_weight, None);
        assert_eq!(fields(&reading), ["spec.analysis.mirror"]);
    }

    #[test]
    fn any_api_version_of_a_deployment_is_read_as_apps_v1() {
        let reading = read(
            &spec(
                "{targetRef: {apiVersion: apps/v1beta1, kind: Deployment, name: a}, service: {port: 80}, analysis: {stepWeight: 10}}",
            ),
            ISTIO,
        );
        assert_eq!(reading.spec.target_ref.api_version, "apps/v1");
        assert_eq!(fields(&reading), ["spec.targetRef.apiVersion"]);
    }
}
