//! One table of Flagger-style Canaries (Flagger's field names and habits, serin's apiVersion)
//! where serin used to decide differently from Flagger: each row says what Flagger does with
//! it, which fields serin warns about, and what a rollout of it looks like. Shared by
//! tests/flagger_parity.rs (`serin check` and `serin simulate`) and the controller's side.
#![allow(dead_code)]

use serde_json::{Value, json};

pub struct Case {
    pub name: &'static str,
    /// Flagger's decision, in words (shown when the row fails).
    pub flagger: &'static str,
    /// `spec` without `targetRef` (the Deployment named after the case).
    pub spec: Value,
    /// The fields warned about: where the manifest is read as Flagger reads it.
    pub warned: &'static [&'static str],
    /// The scenario's scripted `metrics` and `webhooks`.
    pub metrics: Value,
    pub webhooks: Value,
    pub expect: Rollout,
}

/// What `serin simulate` shows of the rollout.
pub struct Rollout {
    /// The strategy's name in the report.
    pub strategy: &'static str,
    /// The highest canary weight of the analysis (before promotion).
    pub top_weight: i64,
    /// Passing A/B or blue/green iterations.
    pub iterations: usize,
    /// `Succeeded` or `Failed`.
    pub phase: &'static str,
}

const fn rollout(strategy: &'static str, top_weight: i64, iterations: usize) -> Rollout {
    Rollout {
        strategy,
        top_weight,
        iterations,
        phase: "Succeeded",
    }
}

const fn rolled_back(strategy: &'static str) -> Rollout {
    Rollout {
        strategy,
        top_weight: -1,
        iterations: 0,
        phase: "Failed",
    }
}

fn success_rate(value: f64) -> Value {
    json!({"request-success-rate": [{"value": value}]})
}

pub fn cases() -> Vec<Case> {
    let istio = |analysis: Value| json!({"provider": "istio", "service": {"port": 80}, "analysis": analysis});
    let metric = json!([{"name": "request-success-rate", "thresholdRange": {"min": 99}}]);
    let case = |name, flagger, spec, warned, metrics, expect| Case {
        name,
        flagger,
        spec,
        warned,
        metrics,
        webhooks: json!({}),
        expect,
    };
    vec![
        case(
            "threshold-min-passes",
            "the deprecated threshold of request-success-rate is its minimum",
            istio(json!({"interval": "10s", "threshold": 1, "stepWeight": 50,
                "metrics": [{"name": "request-success-rate", "threshold": 99}]})),
            &["spec.analysis.metrics[0].threshold"],
            success_rate(99.5),
            rollout("canary", 100, 0),
        ),
        case(
            "threshold-min-fails",
            "a success rate below the deprecated threshold halts and rolls back",
            istio(json!({"interval": "10s", "threshold": 1, "stepWeight": 50,
                "metrics": [{"name": "request-success-rate", "threshold": 99}]})),
            &["spec.analysis.metrics[0].threshold"],
            success_rate(98.0),
            rolled_back("canary"),
        ),
        case(
            "threshold-max-fails",
            "the deprecated threshold of any other metric is its maximum",
            istio(json!({"interval": "10s", "threshold": 1, "stepWeight": 50,
                "metrics": [{"name": "request-duration", "threshold": 500}]})),
            &["spec.analysis.metrics[0].threshold"],
            json!({"request-duration": [{"value": 600}]}),
            rolled_back("canary"),
        ),
        case(
            "no-threshold-is-zero",
            "a metric without threshold or thresholdRange is compared with 0",
            istio(json!({"interval": "10s", "threshold": 1, "stepWeight": 50,
                "metrics": [{"name": "errors", "query": "sum(errors_total)"}]})),
            &["spec.analysis.metrics[0].thresholdRange"],
            json!({"errors": [{"value": 0}]}),
            rollout("canary", 100, 0),
        ),
        case(
            "step-weights-above-max-weight",
            "maxWeight is not consulted with stepWeights",
            istio(json!({"interval": "10s", "threshold": 1, "maxWeight": 50,
                "stepWeights": [10, 60, 80], "metrics": metric})),
            &["spec.analysis.maxWeight"],
            success_rate(100.0),
            rollout("canary", 80, 0),
        ),
        case(
            "iterations-with-step-weight",
            "iterations make a blue/green rollout; stepWeight is ignored",
            istio(json!({"interval": "10s", "threshold": 1, "iterations": 3,
                "stepWeight": 20, "metrics": metric})),
            &["spec.analysis.stepWeight"],
            success_rate(100.0),
            rollout("blue/green", 0, 3),
        ),
        case(
            "iterations-match-step-weights",
            "iterations with match make an A/B rollout; stepWeights are ignored",
            istio(json!({"interval": "10s", "threshold": 1, "iterations": 2,
                "stepWeights": [10, 20], "metrics": metric,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}}]})),
            &["spec.analysis.stepWeights"],
            success_rate(100.0),
            rollout("A/B testing", 0, 2),
        ),
        case(
            "kubernetes-step-weight",
            "the kubernetes provider runs blue/green with 10 iterations",
            json!({"provider": "kubernetes", "service": {"port": 80},
                "analysis": {"interval": "10s", "threshold": 1, "stepWeight": 10,
                    "maxWeight": 50, "metrics": metric}}),
            &["spec.analysis.stepWeight"],
            success_rate(100.0),
            rollout("blue/green", 0, 10),
        ),
        case(
            "kubernetes-default-ab",
            "the kubernetes provider (the default) drops the match: blue/green",
            json!({"service": {"port": 80},
                "analysis": {"interval": "10s", "threshold": 1, "iterations": 4, "metrics": metric,
                    "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}}),
            &["spec.analysis.match"],
            success_rate(100.0),
            rollout("blue/green", 0, 4),
        ),
        case(
            "kubernetes-mirror-affinity",
            "the kubernetes provider neither mirrors nor keeps sessions sticky",
            json!({"provider": "kubernetes", "service": {"port": 80, "timeout": "5s"},
                "analysis": {"interval": "10s", "threshold": 1, "iterations": 2, "mirror": true,
                    "sessionAffinity": {"cookieName": "canary"}, "metrics": metric}}),
            &[
                "spec.analysis.mirror",
                "spec.analysis.sessionAffinity",
                "spec.service.timeout",
            ],
            success_rate(100.0),
            rollout("blue/green", 0, 2),
        ),
        case(
            "canary-mirror",
            "a canary rollout with mirror (Flagger mirrors one tick first): runs its steps, warned",
            istio(
                json!({"interval": "10s", "threshold": 1, "stepWeight": 50, "mirror": true,
                "metrics": metric}),
            ),
            &["spec.analysis.mirror"],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        case(
            "zero-is-unset",
            "0 iterations, maxWeight 0 and threshold 0 are unset: canary to 100%, threshold 1",
            istio(
                json!({"interval": "10s", "threshold": 0, "iterations": 0, "maxWeight": 0,
                "stepWeight": 50, "metrics": metric}),
            ),
            &[],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        case(
            "target-api-version",
            "a Deployment is read through apps/v1 whatever apiVersion the reference names",
            json!({"provider": "istio", "service": {"port": 80},
                "targetRef": {"apiVersion": "apps/v1beta2", "kind": "Deployment"},
                "analysis": {"interval": "10s", "threshold": 1, "stepWeight": 50, "metrics": metric}}),
            &["spec.targetRef.apiVersion"],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        case(
            "yaml-nulls",
            "fields left empty (null) are absent: the API server prunes them",
            json!({"provider": "istio", "service": {"port": 80, "match": null, "headers": null},
                "autoscalerRef": null,
                "analysis": {"interval": "10s", "threshold": 1, "stepWeight": 50, "metrics": metric,
                    "webhooks": null, "alerts": null, "match": null}}),
            &[],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        Case {
            webhooks: json!({"smoke": [{"pass": false}]}),
            ..case(
                "webhook-empty-type",
                "a webhook with type \"\" is a rollout hook: its failure rolls back",
                istio(
                    json!({"interval": "10s", "threshold": 1, "stepWeight": 50, "metrics": metric,
                    "webhooks": [{"name": "smoke", "type": "", "url": "http://loadtester.test/"}]}),
                ),
                &[],
                success_rate(100.0),
                rolled_back("canary"),
            )
        },
        case(
            "session-affinity-attributes",
            "Flagger's cookie attributes (domain, path, sameSite, secure, httpOnly, partitioned)",
            istio(
                json!({"interval": "10s", "threshold": 1, "stepWeight": 50, "metrics": metric,
                "sessionAffinity": {"cookieName": "flagger-cookie", "maxAge": 3600,
                    "domain": "shop.example", "path": "/", "sameSite": "Lax",
                    "secure": true, "httpOnly": true, "partitioned": true}}),
            ),
            &[],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        case(
            "alert-empty-severity",
            "an alert with severity \"\" is info",
            istio(
                json!({"interval": "10s", "threshold": 1, "stepWeight": 50, "metrics": metric,
                "alerts": [{"name": "team", "severity": "", "providerRef": {"name": "slack"}}]}),
            ),
            &[],
            success_rate(100.0),
            rollout("canary", 100, 0),
        ),
        case(
            "template-headers-list",
            "MetricTemplate provider.headers in Go's http.Header form (lists of values)",
            istio(json!({"interval": "10s", "threshold": 1, "stepWeight": 50,
                "metrics": [{"name": "tenant-errors", "templateRef": {"name": "tenant-errors"},
                    "thresholdRange": {"max": 1}}]})),
            &[],
            json!({"tenant-errors": [{"value": 0}]}),
            rollout("canary", 100, 0),
        ),
    ]
}

/// The Canary of a case, named after it, targeting the Deployment of the same name.
pub fn canary(case: &Case) -> Value {
    let mut spec = case.spec.clone();
    let target = spec
        .get("targetRef")
        .cloned()
        .unwrap_or_else(|| json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    spec["targetRef"] = target;
    spec["targetRef"]["name"] = json!(case.name);
    json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": case.name, "namespace": "test"}, "spec": spec,
    })
}

/// The objects the Canaries refer to, as Flagger users write them.
pub fn references() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": "slack", "namespace": "test"},
            "spec": {"type": "slack", "channel": "deploys", "address": "https://hooks.slack.test/x",
                "proxy": null, "secretRef": null},
        }),
        json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "tenant-errors", "namespace": "test"},
            "spec": {
                "provider": {"type": "prometheus", "address": "http://mimir.test/prometheus",
                    "secretRef": null,
                    "headers": {"X-Scope-OrgID": ["team-a"], "X-Trace": ["a", "b"]}},
                "query": "sum(rate(errors_total{namespace=\"{{ namespace }}\"}[{{ interval }}]))",
            },
        }),
    ]
}
