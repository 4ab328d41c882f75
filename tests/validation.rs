//! Bad Canary specs: every problem is named by its field path, nothing panics.

mod support;

use serin::api::Canary;
use serin::api::load::from_yaml;
use serin::engine::Plan;
use support::canary_yaml;

/// The messages for a Canary with this analysis block (and extra spec lines).
fn problems(analysis: &str, extra_spec: &str) -> Vec<String> {
    let yaml = canary_yaml(analysis, extra_spec);
    match from_yaml::<Canary>(&yaml, "") {
        Err(error) => vec![error.to_string()],
        Ok(canary) => match Plan::from_spec(&canary.spec, support::ANY_PROVIDER) {
            Ok(_) => vec![],
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        },
    }
}

/// The plan of a Canary with this analysis block, which must be accepted.
fn plan_of(analysis: &str) -> Plan {
    let canary: Canary = from_yaml(&canary_yaml(analysis, ""), "").unwrap();
    Plan::from_spec(&canary.spec, support::ANY_PROVIDER).unwrap()
}

fn assert_problem(analysis: &str, extra: &str, field: &str, words: &str) {
    let found = problems(analysis, extra);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{field}: ")) && p.contains(words)),
        "expected {field}: ...{words}... in {found:#?}"
    );
}

#[test]
fn a_valid_canary_has_no_problems() {
    assert_eq!(problems("    stepWeight: 10\n", ""), Vec::<String>::new());
}

#[test]
fn a_canary_without_any_strategy_is_refused() {
    assert_problem("    interval: 1m\n", "", "spec.analysis", "no strategy");
}

#[test]
fn step_weight_zero_without_step_weights_is_refused() {
    assert_problem(
        "    stepWeight: 0\n",
        "",
        "spec.analysis.stepWeight",
        "greater than 0",
    );
}

#[test]
fn weights_above_100_are_refused() {
    assert_problem(
        "    stepWeight: 10\n    maxWeight: 150\n",
        "",
        "spec.analysis.maxWeight",
        "between 1 and 100",
    );
    assert_problem(
        "    stepWeights: [10, 120]\n",
        "",
        "spec.analysis.stepWeights[1]",
        "between 1 and 100",
    );
}

#[test]
fn step_weights_must_increase() {
    assert_problem(
        "    stepWeights: [10, 30, 20]\n",
        "",
        "spec.analysis.stepWeights[2]",
        "must increase",
    );
}

#[test]
fn step_weights_above_max_weight_run_as_listed_with_a_warning_on_max_weight() {
    // Flagger does not consult maxWeight when stepWeights are listed.
    let plan = plan_of("    stepWeights: [10, 60]\n    maxWeight: 50\n");
    assert_eq!(plan.max_weight(), 60);
    assert_eq!(plan.warnings[0].field, "spec.analysis.maxWeight");
}

#[test]
fn ab_testing_without_iterations_is_refused() {
    assert_problem(
        "    stepWeight: 10\n    match:\n      - headers:\n          x-canary: {exact: a}\n",
        "",
        "spec.analysis.match",
        "needs iterations",
    );
}

#[test]
fn iterations_with_step_weight_run_blue_green_with_a_warning_on_step_weight() {
    // Flagger's strategy order: iterations (with match: A/B) before any weight.
    let plan = plan_of("    stepWeight: 10\n    iterations: 5\n");
    assert_eq!(
        plan.strategy,
        serin::engine::Strategy::BlueGreen {
            iterations: 5,
            mirror: None
        }
    );
    assert_eq!(plan.warnings[0].field, "spec.analysis.stepWeight");
}

#[test]
fn iterations_with_serins_own_steps_stay_refused() {
    assert_problem(
        "    steps: [{weight: 10}]\n    iterations: 5\n",
        "",
        "spec.analysis.iterations",
        "cannot be combined with steps",
    );
}

#[test]
fn an_interval_below_one_second_is_refused() {
    assert_problem(
        "    stepWeight: 10\n    interval: 500ms\n",
        "",
        "spec.analysis.interval",
        "at least 1s",
    );
}

#[test]
fn a_malformed_interval_names_the_field() {
    assert_problem(
        "    stepWeight: 10\n    interval: abc\n",
        "",
        "spec.analysis.interval",
        "invalid duration \"abc\"",
    );
}

#[test]
fn duplicate_metric_names_are_refused() {
    let analysis = "    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
      - name: request-success-rate
        thresholdRange: {min: 98}
";
    assert_problem(
        analysis,
        "",
        "spec.analysis.metrics[1].name",
        "duplicate name",
    );
}

#[test]
fn an_unknown_webhook_type_names_the_field_and_the_known_types() {
    let analysis = "    stepWeight: 10
    webhooks:
      - name: load
        type: pre-flight
        url: http://x/
";
    assert_problem(
        analysis,
        "",
        "spec.analysis.webhooks[0].type",
        "unknown variant `pre-flight`",
    );
}

#[test]
fn a_custom_metric_needs_a_template() {
    let analysis = "    stepWeight: 10
    metrics:
      - name: error-budget
";
    assert_problem(
        analysis,
        "",
        "spec.analysis.metrics[0].templateRef",
        "only request-success-rate and request-duration are built in",
    );
}

/// Flagger compares a metric without threshold or thresholdRange with 0: serin does the same
/// and says so, rather than refusing a manifest Flagger runs.
#[test]
fn a_metric_without_a_range_is_checked_against_zero_with_a_warning() {
    let yaml = canary_yaml(
        "    stepWeight: 10
    metrics:
      - name: request-duration
",
        "",
    );
    let canary: Canary = from_yaml(&yaml, "").unwrap();
    let plan = Plan::from_spec(&canary.spec, support::ANY_PROVIDER).unwrap();
    assert_eq!(plan.metrics[0].range.max, Some(0.0));
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(
        plan.warnings[0].field,
        "spec.analysis.metrics[0].thresholdRange"
    );
    assert!(plan.warnings[0].reason.contains("thresholdRange.max: 0"));
}

#[test]
fn a_missing_target_ref_is_named() {
    let yaml = "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec:\n  service: {port: 80}\n  analysis: {stepWeight: 10}\n";
    let error = from_yaml::<Canary>(yaml, "").unwrap_err().to_string();
    assert!(
        error.starts_with("spec: missing field `targetRef`"),
        "{error}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        "    stepWeights: [50, 20]\n    threshold: -1\n    interval: 500ms\n",
        "  progressDeadlineSeconds: 0",
    );
    assert!(found.len() >= 4, "{found:#?}");
}

#[test]
fn mirroring_belongs_to_blue_green() {
    // Flagger mirrors one tick before a canary rollout's first step; serin skips that tick
    // and says so rather than refusing the manifest.
    let plan = plan_of("    stepWeight: 10\n    mirror: true\n");
    assert_eq!(plan.warnings[0].field, "spec.analysis.mirror");
    assert_problem(
        "    iterations: 3\n    mirrorWeight: 20\n",
        "",
        "spec.analysis.mirrorWeight",
        "needs mirror: true",
    );
}

#[test]
fn webhook_urls_must_be_http() {
    let analysis = "    stepWeight: 10\n    webhooks:\n      - name: a\n        url: ftp://x/\n";
    assert_problem(analysis, "", "spec.analysis.webhooks[0].url", "http://");
}

#[test]
fn only_workloads_and_knative_services_can_be_targets() {
    let yaml = canary_yaml("    stepWeight: 10\n", "").replace("kind: Deployment", "kind: Rollout");
    let canary: Canary = from_yaml(&yaml, "").unwrap();
    let errors = Plan::from_spec(&canary.spec, support::ANY_PROVIDER)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("spec.targetRef.kind: only Deployment, DaemonSet, StatefulSet and Service (serving.knative.dev/v1) are supported, got \"Rollout\": an unknown kind"),
        "{errors}"
    );
}

#[test]
fn a_knative_service_target_needs_its_api_version_and_the_knative_provider() {
    let yaml = canary_yaml("    stepWeight: 10\n", "").replace("kind: Deployment", "kind: Service");
    let canary: Canary = from_yaml(&yaml, "").unwrap();
    let errors = Plan::from_spec(&canary.spec, support::ANY_PROVIDER)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(
            "spec.targetRef.apiVersion: expected serving.knative.dev/v1, got \"apps/v1\""
        ),
        "{errors}"
    );
    assert!(
        errors.contains("spec.provider: a Service target (serving.knative.dev/v1) is routed by its own traffic split: set provider: knative"),
        "{errors}"
    );
}

#[test]
fn a_judged_metric_needs_no_threshold_range_but_sane_settings() {
    let judged = "    stepWeight: 10
    metrics:
      - name: latency
        templateRef: {name: latency}
        judge: {direction: increase}
";
    assert_eq!(problems(judged, ""), Vec::<String>::new());
    let bad = "    stepWeight: 10
    metrics:
      - name: latency
        templateRef: {name: latency}
        judge: {confidence: 1.2, allowedChange: -0.1, minSamples: 0}
";
    assert_problem(
        bad,
        "",
        "spec.analysis.metrics[0].judge.confidence",
        "between 0 and 1",
    );
    assert_problem(
        bad,
        "",
        "spec.analysis.metrics[0].judge.allowedChange",
        ">= 0",
    );
    assert_problem(
        bad,
        "",
        "spec.analysis.metrics[0].judge.minSamples",
        "at least 1",
    );
    let direction = judged.replace("direction: increase", "direction: up");
    assert_problem(
        &direction,
        "",
        "spec.analysis.metrics[0].judge.direction",
        "unknown variant `up`",
    );
}

#[test]
fn judge_weights_steps_and_score_thresholds_are_checked() {
    let analysis = "    stepWeight: 10\n    scoreThresholds: {pass: 70, marginal: 90}\n    metrics:\n      - name: latency\n        templateRef: {name: latency}\n        judge: {weight: 0, step: 2m, lookback: 1m}\n";
    let m = "spec.analysis.metrics[0].judge";
    assert_problem(
        analysis,
        "",
        &format!("{m}.weight"),
        "must be a number > 0, got 0",
    );
    assert_problem(
        analysis,
        "",
        &format!("{m}.step"),
        "2m is longer than the lookback 1m",
    );
    assert_problem(
        analysis,
        "",
        "spec.analysis.scoreThresholds.marginal",
        "90 is above pass 70",
    );
    let percent = "    stepWeight: 10\n    scoreThresholds: {pass: 120}\n";
    assert_problem(
        percent,
        "",
        "spec.analysis.scoreThresholds.pass",
        "between 0 and 100, got 120",
    );
}

#[test]
fn a_call_timeout_above_five_minutes_is_refused_for_hooks_and_templates() {
    let analysis = "    stepWeight: 10\n    webhooks:\n      - name: smoke\n        url: http://tester/\n        timeout: 10m\n";
    assert_problem(
        analysis,
        "",
        "spec.analysis.webhooks[0].timeout",
        "10m is above the maximum of 5m for one call",
    );
    let five = "    stepWeight: 10\n    webhooks:\n      - name: smoke\n        url: http://tester/\n        timeout: 5m\n";
    assert_eq!(problems(five, ""), Vec::<String>::new());

    let template: serin::api::MetricTemplate = from_yaml(
        "apiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: t, namespace: n}\nspec:\n  provider: {type: prometheus, timeout: 1h}\n  query: up\n",
        "",
    )
    .unwrap();
    let errors = serin::api::validation::validate_template(&template.spec).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.provider.timeout: 1h is above the maximum of 5m for one call (a tick waits for its checks)"
    );
}

#[test]
fn a_template_variable_longer_than_a_kibibyte_is_refused_naming_it() {
    let long = "x".repeat(2000);
    let errors = problems(
        &format!(
            "    stepWeight: 10\n    metrics:\n      - name: errors\n        query: \"{{{{ variables.selector }}}}\"\n        thresholdRange: {{max: 1}}\n        templateVariables:\n          selector: {long}\n"
        ),
        "",
    );
    assert!(
        errors.iter().any(|e| e.starts_with(
            "spec.analysis.metrics[0].templateVariables.selector: 2000 bytes, at most 1024"
        )),
        "{errors:?}"
    );
}

#[test]
fn a_route_timeout_must_be_a_real_timeout_and_a_taken_over_route_local() {
    for timeout in ["0s", "500us", "25h"] {
        let errors = problems("    stepWeight: 10\n", &format!("    timeout: {timeout}\n"));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.service.timeout: must be between 1ms and 24h")),
            "{timeout}: {errors:?}"
        );
    }
    assert_eq!(
        problems("    stepWeight: 10\n", "    timeout: 30s\n"),
        Vec::<String>::new()
    );
    let errors = problems(
        "    stepWeight: 10\n",
        "  routeRef: {name: shared, namespace: other}\n",
    );
    assert!(
        errors.iter().any(|e| e.starts_with(
            "spec.routeRef.namespace: the route is always taken from the Canary's own namespace"
        )),
        "{errors:?}"
    );
}

#[test]
fn a_cookie_domain_or_path_that_would_break_the_set_cookie_header_is_refused() {
    assert_problem(
        "    stepWeight: 10\n    sessionAffinity: {cookieName: c, domain: \"a.example; Secure\"}\n",
        "",
        "spec.analysis.sessionAffinity.domain",
        "without ';'",
    );
    assert_eq!(
        problems(
            "    stepWeight: 10\n    sessionAffinity: {cookieName: c, domain: a.example, path: /app, sameSite: Lax, secure: true, httpOnly: true, partitioned: true}\n",
            "",
        ),
        Vec::<String>::new()
    );
}

fn autoscaler_problems(reference: &str) -> Vec<String> {
    let yaml = canary_yaml("    stepWeight: 10\n", "")
        .replace("spec:\n", &format!("spec:\n  autoscalerRef: {reference}\n"));
    let canary: Canary = from_yaml(&yaml, "").unwrap();
    match Plan::from_spec(&canary.spec, support::ANY_PROVIDER) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn keda_scaled_objects_and_primary_scaler_replicas_are_accepted() {
    for reference in [
        "{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web, primaryScalerReplicas: {minReplicas: 0, maxReplicas: 4}, primaryScalerQueries: {rps: 'sum(rate(x[1m]))'}}",
        "{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: web, primaryScalerReplicas: {minReplicas: 2, maxReplicas: 4}}",
        "{apiVersion: autoscaling/v2beta2, kind: HorizontalPodAutoscaler, name: web, primaryScalerSync: always}",
    ] {
        assert_eq!(
            autoscaler_problems(reference),
            Vec::<String>::new(),
            "{reference}"
        );
    }
}

#[test]
fn an_autoscaler_serin_would_ignore_is_refused_by_name() {
    let cases = [
        (
            "{apiVersion: keda.sh/v1alpha1, kind: ScaledJob, name: web}",
            "spec.autoscalerRef.kind: only HorizontalPodAutoscaler and ScaledObject are supported, got \"ScaledJob\"",
        ),
        (
            "{apiVersion: autoscaling/v1, kind: HorizontalPodAutoscaler, name: web}",
            "spec.autoscalerRef.apiVersion: a HorizontalPodAutoscaler is read as autoscaling/v2 or autoscaling/v2beta2",
        ),
        (
            "{name: web, primaryScalerQueries: {prom: 'sum(up)'}}",
            "spec.autoscalerRef.primaryScalerQueries: a HorizontalPodAutoscaler has no trigger queries",
        ),
        (
            "{name: web, primaryScalerReplicas: {minReplicas: 0}}",
            "spec.autoscalerRef.primaryScalerReplicas.minReplicas: must be between 1 and",
        ),
        (
            "{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web, primaryScalerReplicas: {minReplicas: 5, maxReplicas: 4}}",
            "spec.autoscalerRef.primaryScalerReplicas: minReplicas (5) is above maxReplicas (4)",
        ),
        (
            "{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web, primaryScalerQueries: {rps: ' '}}",
            "spec.autoscalerRef.primaryScalerQueries: trigger \"rps\": needs a trigger name and a non-empty query",
        ),
    ];
    for (reference, expected) in cases {
        let problems = autoscaler_problems(reference);
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{reference}: {problems:?}"
        );
    }
}

#[test]
fn flaggers_fields_serin_cannot_apply_are_refused_by_name() {
    // Istio's own match conditions: written by the istio provider, refused by the others
    // (dropping one would widen the match).
    assert_problem(
        "    stepWeight: 10\n",
        "    match:\n      - uri: {prefix: /api}\n        authority: {exact: shop.example.com}\n  provider: contour\n",
        "spec.service.match[0].authority",
        "would widen the match",
    );
    assert_problem(
        "    iterations: 5\n    match:\n      - headers: {x-canary: {exact: insider}}\n        withoutHeaders: {x-beta: {exact: \"off\"}}\n",
        "  provider: contour\n",
        "spec.analysis.match[0].withoutHeaders",
        "the contour provider cannot match requests by withoutHeaders",
    );
    assert_eq!(
        problems(
            "    iterations: 5\n    match:\n      - headers: {x-canary: {exact: insider}}\n        withoutHeaders: {x-beta: {exact: \"off\"}}\n",
            "    delegation: true\n    match:\n      - authority: {exact: shop.example.com}\n  provider: istio\n",
        ),
        Vec::<String>::new(),
        "istio writes them, and delegates"
    );
    assert_problem(
        "    stepWeight: 10\n",
        "  autoscalerRef: {name: web, primaryScalerQueries: {prom: 'sum(up)'}}\n",
        "spec.autoscalerRef.primaryScalerQueries",
        "no trigger queries to replace",
    );
}

#[test]
fn flaggers_service_fields_serin_applies_are_accepted() {
    assert_eq!(
        problems(
            "    stepWeight: 10\n",
            "    headless: true\n    trafficDistribution: PreferClose\n    unmanagedMetadata: {labels: [owner]}\n"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_cloudwatch_template_needs_a_region_name() {
    let check = |provider: &str| {
        let template: serin::api::MetricTemplate = from_yaml(
            &format!(
                "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {{name: t, namespace: n}}\nspec:\n  provider: {provider}\n  query: '[]'\n"
            ),
            "",
        )
        .unwrap();
        serin::api::validation::validate_template(&template.spec).map_err(|e| e.to_string())
    };
    assert_eq!(
        check("{type: cloudwatch}"),
        Err("spec.provider.region: the cloudwatch metric provider needs the AWS region of the metrics (e.g. eu-west-1)".into())
    );
    assert_eq!(
        check("{type: cloudwatch, region: 'eu-west-1.evil.example/'}"),
        Err("spec.provider.region: \"eu-west-1.evil.example/\" is not an AWS region name (e.g. eu-west-1)".into())
    );
    assert_eq!(check("{type: cloudwatch, region: ap-northeast-1}"), Ok(()));
}

#[test]
fn a_keptn_template_reads_the_cluster_and_stackdriver_defaults_to_googles_api_neither_judges() {
    use serin::api::metric_provider::{MetricProviderKind, judge_refusal};
    let check = |provider: &str| {
        let template: serin::api::MetricTemplate = from_yaml(
            &format!(
                "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {{name: t, namespace: n}}\nspec:\n  provider: {provider}\n  query: keptnmetric/shop/errors\n"
            ),
            "",
        )
        .unwrap();
        serin::api::validation::validate_template(&template.spec).map_err(|e| e.to_string())
    };
    assert_eq!(
        check("{type: keptn}"),
        Ok(()),
        "no address: it reads the cluster"
    );
    assert_eq!(
        check("{type: stackdriver, secretRef: {name: gcloud-sa}}"),
        Ok(())
    );
    assert!(
        check("{type: graphite}").is_err(),
        "a metrics server still needs one"
    );
    for kind in [MetricProviderKind::Keptn, MetricProviderKind::Stackdriver] {
        let reason = judge_refusal(kind.row()).unwrap();
        assert!(
            reason.starts_with(&format!(
                "the {kind} metric provider cannot answer range queries"
            )),
            "{reason}"
        );
    }
    assert_eq!(
        MetricProviderKind::Stackdriver
            .row()
            .service_address(None)
            .as_deref(),
        Some("https://monitoring.googleapis.com")
    );
}

#[test]
fn a_prometheus_template_with_a_region_is_amazon_managed_prometheus_and_needs_its_workspace() {
    let check = |provider: &str| {
        let template: serin::api::MetricTemplate = from_yaml(
            &format!(
                "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {{name: t, namespace: n}}\nspec:\n  provider: {provider}\n  query: up\n"
            ),
            "",
        )
        .unwrap();
        serin::api::validation::validate_template(&template.spec).map_err(|e| e.to_string())
    };
    // Signed queries never go to the Canary's or serin's default server.
    assert_eq!(
        check("{type: prometheus, region: eu-west-1}"),
        Err("spec.provider.address: a prometheus template with provider.region queries Amazon Managed Prometheus, and needs the workspace's URL (https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>)".into())
    );
    let workspace = "address: 'https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1'";
    assert_eq!(
        check(&format!(
            "{{type: prometheus, region: 'eu west', {workspace}}}"
        )),
        Err("spec.provider.region: \"eu west\" is not an AWS region name (e.g. eu-west-1)".into())
    );
    assert_eq!(
        check(&format!(
            "{{type: prometheus, region: eu-west-1, {workspace}}}"
        )),
        Ok(())
    );
    assert_eq!(check("{type: prometheus}"), Ok(()), "plain Prometheus");
}
