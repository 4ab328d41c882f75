//! Semantic validation of a Canary spec: what the CRD schema cannot express (strategy
//! combinations, increasing weights, unique names). Every problem is reported with its field
//! path, all at once, so a user fixes a manifest in one pass.

use std::collections::BTreeSet;
use std::fmt;

use crate::outbound::MAX_TIMEOUT;

use super::canary::{
    Analysis, CanarySpec, HttpMatch, MIN_INTERVAL, Metric, MetricJudge, ScoreThresholds,
    SessionAffinity, StringMatch, Webhook,
};
use super::metric_template::MetricTemplateSpec;

/// Longest value of one `templateVariables` entry: queries are rendered with a bounded budget
/// (`metrics::bounded`), and a long variable repeated in a query would spend it.
pub const MAX_TEMPLATE_VARIABLE: usize = 1024;

/// Metrics serin computes without a MetricTemplate.
pub const BUILTIN_METRICS: [&str; 2] = ["request-success-rate", "request-duration"];

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Every problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Collects problems under a path prefix.
struct Report {
    errors: Vec<FieldError>,
}

impl Report {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn check(&mut self, ok: bool, field: &str, reason: impl FnOnce() -> String) {
        if !ok {
            self.fail(field, reason());
        }
    }

    fn range(&mut self, value: Option<i32>, field: &str, min: i32, max: i32) {
        if let Some(v) = value {
            self.check((min..=max).contains(&v), field, || {
                format!("must be between {min} and {max}, got {v}")
            });
        }
    }
}

/// Validates a Canary spec; `Ok` means the engine can plan a rollout from it.
pub fn validate(spec: &CanarySpec) -> Result<(), ValidationErrors> {
    let mut report = Report { errors: Vec::new() };
    target(spec, &mut report);
    autoscaler(spec, &mut report);
    service(spec, &mut report);
    report.check(
        spec.progress_deadline_seconds.is_none_or(|s| s >= 1),
        "spec.progressDeadlineSeconds",
        || "must be at least 1".into(),
    );
    analysis(&spec.analysis, &mut report);
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(report.errors))
    }
}

fn target(spec: &CanarySpec, report: &mut Report) {
    let target = &spec.target_ref;
    report.check(!target.name.is_empty(), "spec.targetRef.name", || {
        "required: the name of the workload to roll out".into()
    });
    match super::target::TargetKind::of(target) {
        Ok(kind) => {
            let expected = kind.row().api_version;
            report.check(
                target.api_version == expected,
                "spec.targetRef.apiVersion",
                || format!("expected {expected}, got {:?}", target.api_version),
            );
        }
        Err(reason) => report.check(false, "spec.targetRef.kind", || reason),
    }
}

/// The autoscaler is one serin copies to the primary (`super::autoscaler::TABLE`) on a
/// target with a replica count, with replica bounds an autoscaler accepts and queries only
/// where its triggers have them: anything else would be accepted and then ignored, leaving the
/// primary scaled otherwise than its owner asked.
fn autoscaler(spec: &CanarySpec, report: &mut Report) {
    let Some(reference) = &spec.autoscaler_ref else {
        return;
    };
    if let Ok(kind) = super::target::TargetKind::of(&spec.target_ref)
        && !kind.row().scales
    {
        let why = match kind {
            super::target::TargetKind::KnativeService => {
                "Knative scales each revision of a Knative Service itself (its template's autoscaling.knative.dev annotations)".to_string()
            }
            _ => format!("a {kind} runs one pod per node and has no replica count to scale"),
        };
        return report.fail("spec.autoscalerRef", format!("{why}: remove autoscalerRef"));
    }
    let kind = match super::autoscaler::AutoscalerKind::of(reference) {
        Ok(kind) => kind,
        Err((field, reason)) => return report.fail(field, reason),
    };
    report.check(
        kind.row().queries || reference.primary_scaler_queries.is_empty(),
        "spec.autoscalerRef.primaryScalerQueries",
        || format!("a {kind} has no trigger queries to replace: remove primaryScalerQueries"),
    );
    for (name, query) in &reference.primary_scaler_queries {
        report.check(
            !name.is_empty() && !query.trim().is_empty(),
            "spec.autoscalerRef.primaryScalerQueries",
            || format!("trigger {name:?}: needs a trigger name and a non-empty query"),
        );
    }
    if let Some(bounds) = &reference.primary_scaler_replicas {
        scaler_replicas(kind, bounds, report);
    }
}

/// An HPA scales between 1 and its maximum; a ScaledObject may idle at zero.
fn scaler_replicas(
    kind: super::autoscaler::AutoscalerKind,
    bounds: &super::canary::ScalerReplicas,
    report: &mut Report,
) {
    let field = "spec.autoscalerRef.primaryScalerReplicas";
    let floor = match kind {
        super::autoscaler::AutoscalerKind::HorizontalPodAutoscaler => 1,
        super::autoscaler::AutoscalerKind::ScaledObject => 0,
    };
    report.range(
        bounds.min_replicas,
        &format!("{field}.minReplicas"),
        floor,
        i32::MAX,
    );
    report.range(
        bounds.max_replicas,
        &format!("{field}.maxReplicas"),
        1,
        i32::MAX,
    );
    if let (Some(min), Some(max)) = (bounds.min_replicas, bounds.max_replicas) {
        report.check(min <= max, field, || {
            format!("minReplicas ({min}) is above maxReplicas ({max})")
        });
    }
}

fn service(spec: &CanarySpec, report: &mut Report) {
    // A Knative Service is reached through Knative's own routes: serin makes no Services for
    // it, so its Canary needs no `service` block (as in Flagger).
    let knative = super::target::TargetKind::of(&spec.target_ref)
        == Ok(super::target::TargetKind::KnativeService);
    if spec.service.port == 0 && !knative {
        report.fail(
            "spec.service.port",
            "required: the port of the apex, primary and canary Services",
        );
    } else if spec.service.port != 0 {
        report.range(Some(spec.service.port), "spec.service.port", 1, 65535);
    }
    if let Some(timeout) = spec.service.timeout {
        // Zero means "no timeout" to Envoy and to Gateway API, the opposite of a timeout;
        // routes count in milliseconds; a day is longer than any request.
        report.check(
            timeout.as_std() >= std::time::Duration::from_millis(1)
                && timeout.as_std() <= std::time::Duration::from_secs(24 * 3600),
            "spec.service.timeout",
            || format!("must be between 1ms and 24h, got {timeout}"),
        );
    }
    // The route serin takes over is looked up in the Canary's own namespace.
    report.check(
        spec.route_ref
            .as_ref()
            .is_none_or(|r| r.namespace.is_none()),
        "spec.routeRef.namespace",
        || "the route is always taken from the Canary's own namespace: remove namespace".into(),
    );
}

fn analysis(analysis: &Analysis, report: &mut Report) {
    const A: &str = "spec.analysis";
    if let Some(interval) = analysis.interval {
        report.check(interval >= MIN_INTERVAL, &format!("{A}.interval"), || {
            format!("must be at least {MIN_INTERVAL}, got {interval}")
        });
    }
    report.check(
        analysis.threshold.is_none_or(|t| t >= 1),
        &format!("{A}.threshold"),
        || "must be at least 1".into(),
    );
    report.range(analysis.max_weight, &format!("{A}.maxWeight"), 1, 100);
    report.range(analysis.step_weight, &format!("{A}.stepWeight"), 0, 100);
    report.range(
        analysis.step_weight_promotion,
        &format!("{A}.stepWeightPromotion"),
        1,
        100,
    );
    report.range(analysis.mirror_weight, &format!("{A}.mirrorWeight"), 0, 100);
    report.range(
        analysis.primary_ready_threshold,
        &format!("{A}.primaryReadyThreshold"),
        0,
        100,
    );
    report.range(
        analysis.canary_ready_threshold,
        &format!("{A}.canaryReadyThreshold"),
        0,
        100,
    );
    report.check(
        analysis.iterations.is_none_or(|i| i >= 1),
        &format!("{A}.iterations"),
        || "must be at least 1".into(),
    );
    report.check(
        analysis.promotion_timeout.is_none_or(|t| !t.is_zero()),
        &format!("{A}.promotionTimeout"),
        || "must be greater than 0".into(),
    );
    strategy(analysis, report);
    increasing(
        analysis.step_weights.iter().copied(),
        &format!("{A}.stepWeights"),
        analysis.max_weight,
        report,
    );
    increasing(
        analysis.steps.iter().map(|s| s.weight),
        &format!("{A}.steps"),
        analysis.max_weight,
        report,
    );
    if let Some(affinity) = &analysis.session_affinity {
        cookie_attributes(affinity, report);
    }
    metrics(&analysis.metrics, report);
    if let Some(thresholds) = &analysis.score_thresholds {
        score_thresholds(thresholds, report);
    }
    webhooks(&analysis.webhooks, report);
    unique(
        analysis.alerts.iter().map(|a| a.name.as_str()),
        &format!("{A}.alerts"),
        report,
    );
}

/// Exactly one strategy: canary (stepWeight | stepWeights | steps), A/B (iterations + match),
/// blue/green (iterations, no match).
fn strategy(analysis: &Analysis, report: &mut Report) {
    const A: &str = "spec.analysis";
    let stepped: Vec<&str> = [
        ("stepWeight", analysis.step_weight.is_some_and(|w| w > 0)),
        ("stepWeights", !analysis.step_weights.is_empty()),
        ("steps", !analysis.steps.is_empty()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if stepped.len() > 1 {
        report.fail(
            format!("{A}.{}", stepped[1]),
            format!(
                "cannot be combined with {}: choose one way to list the steps",
                stepped[0]
            ),
        );
    }
    match (analysis.iterations.is_some(), stepped.first()) {
        (true, Some(first)) => report.fail(
            format!("{A}.iterations"),
            format!(
                "cannot be combined with {first}: the canary strategy counts weight steps, A/B and blue/green count iterations"
            ),
        ),
        (false, None) if analysis.step_weight == Some(0) => report.fail(
            format!("{A}.stepWeight"),
            "must be greater than 0 (or list stepWeights or steps) for a canary rollout",
        ),
        (false, None) => report.fail(
            A,
            "no strategy: set stepWeight, stepWeights or steps for a canary rollout, or iterations for A/B (with match) or blue/green (without)",
        ),
        (false, Some(_)) => {
            report.check(analysis.matches.is_empty(), &format!("{A}.match"), || {
                "A/B testing needs iterations instead of weight steps".into()
            });
            report.check(!analysis.mirror, &format!("{A}.mirror"), || {
                "mirroring is for blue/green rollouts (iterations without match)".into()
            });
        }
        (true, None) => {
            ab_matches(&analysis.matches, report);
            report.check(
                analysis.matches.is_empty() || !analysis.mirror,
                &format!("{A}.mirror"),
                || "mirroring cannot be combined with an A/B match".into(),
            );
            report.check(
                analysis.session_affinity.is_none(),
                &format!("{A}.sessionAffinity"),
                || "session affinity applies to the canary strategy (stepWeight)".into(),
            );
        }
    }
    report.check(
        analysis.mirror_weight.is_none() || analysis.mirror,
        &format!("{A}.mirrorWeight"),
        || "needs mirror: true".into(),
    );
}

/// Every A/B match must narrow: a match without conditions takes every request, so an A/B
/// rollout would send all users to the canary. Each string condition says how it matches.
fn ab_matches(matches: &[HttpMatch], report: &mut Report) {
    for (i, m) in matches.iter().enumerate() {
        let field = format!("spec.analysis.match[{i}]");
        let HttpMatch {
            headers,
            uri,
            method,
            query_params,
            source_labels,
            ..
        } = m;
        report.check(
            !(headers.is_empty()
                && uri.is_none()
                && method.is_none()
                && query_params.is_empty()
                && source_labels.is_empty()),
            &field,
            || {
                "has no condition and would send every request to the canary: set headers, uri, method, queryParams or sourceLabels".into()
            },
        );
        let strings = headers
            .iter()
            .map(|(k, v)| (format!("headers.{k}"), v))
            .chain(
                query_params
                    .iter()
                    .map(|(k, v)| (format!("queryParams.{k}"), v)),
            )
            .chain(uri.iter().map(|v| ("uri".to_string(), v)))
            .chain(method.iter().map(|v| ("method".to_string(), v)));
        for (name, condition) in strings {
            let StringMatch {
                exact,
                prefix,
                suffix,
                regex,
            } = condition;
            let set = [exact, prefix, suffix, regex]
                .iter()
                .filter(|v| v.is_some())
                .count();
            report.check(set == 1, &format!("{field}.{name}"), || {
                format!("set exactly one of exact, prefix, suffix or regex (found {set})")
            });
            report.check(
                !matches_everything(&name, condition),
                &format!("{field}.{name}"),
                || "matches every value, so every request would go to the canary: narrow it".into(),
            );
        }
    }
}

/// Conditions that every request meets: an empty prefix, suffix or regex, a catch-all
/// regex, a `/` path prefix (a missing templated value in GitOps renders exactly these).
fn matches_everything(name: &str, condition: &StringMatch) -> bool {
    let catch_all = |regex: &str| matches!(regex, "" | ".*" | "^.*" | ".*$" | "^.*$" | "(.*)");
    condition.prefix.as_deref() == Some("")
        || condition.suffix.as_deref() == Some("")
        || condition.regex.as_deref().is_some_and(catch_all)
        || (name == "uri" && condition.prefix.as_deref() == Some("/"))
}

/// Domain and path go into `Set-Cookie` headers as written: a `;`, a space or a control
/// character would end the attribute or the header and add ones the user never wrote.
fn cookie_attributes(affinity: &SessionAffinity, report: &mut Report) {
    const S: &str = "spec.analysis.sessionAffinity";
    for (name, value) in [("domain", &affinity.domain), ("path", &affinity.path)] {
        let Some(value) = value else { continue };
        report.check(
            !value.is_empty()
                && value.len() <= 1024
                && !value.chars().any(|c| c == ';' || c.is_whitespace() || c.is_control()),
            &format!("{S}.{name}"),
            || format!("{value:?} cannot be a cookie {name}: it must be non-empty, at most 1024 bytes, without ';', spaces or control characters"),
        );
    }
}

fn increasing(
    weights: impl Iterator<Item = i32>,
    field: &str,
    max: Option<i32>,
    report: &mut Report,
) {
    let mut previous = 0;
    for (i, weight) in weights.enumerate() {
        if !(1..=100).contains(&weight) {
            report.fail(
                format!("{field}[{i}]"),
                format!("must be between 1 and 100, got {weight}"),
            );
        } else if weight <= previous {
            report.fail(
                format!("{field}[{i}]"),
                format!("weights must increase: {weight} follows {previous}"),
            );
        } else if let Some(max) = max.filter(|max| weight > *max) {
            report.fail(
                format!("{field}[{i}]"),
                format!("{weight} is above maxWeight {max}"),
            );
        }
        previous = previous.max(weight);
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, field: &str, report: &mut Report) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if !seen.insert(name) {
            report.fail(
                format!("{field}[{i}].name"),
                format!("duplicate name {name:?}"),
            );
        }
    }
}

fn metrics(metrics: &[Metric], report: &mut Report) {
    const M: &str = "spec.analysis.metrics";
    unique(metrics.iter().map(|m| m.name.as_str()), M, report);
    for (i, metric) in metrics.iter().enumerate() {
        let builtin = BUILTIN_METRICS.contains(&metric.name.as_str());
        report.check(
            builtin || metric.template_ref.is_some() || metric.query.is_some(),
            &format!("{M}[{i}].templateRef"),
            || {
                format!(
                    "required for metric {:?}: only {} are built in",
                    metric.name,
                    BUILTIN_METRICS.join(" and ")
                )
            },
        );
        if let Some(judge) = &metric.judge {
            judge_settings(judge, &format!("{M}[{i}].judge"), report);
        }
        for (key, value) in &metric.template_variables {
            report.check(
                value.len() <= MAX_TEMPLATE_VARIABLE,
                &format!("{M}[{i}].templateVariables.{key}"),
                || {
                    format!(
                        "{} bytes, at most {MAX_TEMPLATE_VARIABLE}: a query variable is a label value or a window, not a document",
                        value.len()
                    )
                },
            );
        }
        match metric.threshold_range {
            None if metric.judge.is_some() => {}
            None => report.fail(
                format!("{M}[{i}].thresholdRange"),
                format!(
                    "required for metric {:?}: set min, max or both (or judge, to compare with the primary)",
                    metric.name
                ),
            ),
            Some(range) => {
                let finite = [range.min, range.max]
                    .iter()
                    .flatten()
                    .all(|v| v.is_finite());
                report.check(finite, &format!("{M}[{i}].thresholdRange"), || {
                    "bounds must be finite numbers".into()
                });
                report.check(
                    range.min.is_some() || range.max.is_some(),
                    &format!("{M}[{i}].thresholdRange"),
                    || "set min, max or both".into(),
                );
                if let (Some(min), Some(max)) = (range.min, range.max) {
                    report.check(min <= max, &format!("{M}[{i}].thresholdRange"), || {
                        format!("min {min} is above max {max}")
                    });
                }
            }
        }
        if let Some(interval) = metric.interval {
            report.check(!interval.is_zero(), &format!("{M}[{i}].interval"), || {
                "must be greater than 0".into()
            });
        }
    }
}

fn judge_settings(judge: &MetricJudge, field: &str, report: &mut Report) {
    if let Some(confidence) = judge.confidence {
        report.check(
            confidence > 0.0 && confidence < 1.0,
            &format!("{field}.confidence"),
            || format!("must be between 0 and 1 (exclusive), got {confidence}"),
        );
    }
    if let Some(change) = judge.allowed_change {
        report.check(
            change.is_finite() && change >= 0.0,
            &format!("{field}.allowedChange"),
            || format!("must be a number >= 0, got {change}"),
        );
    }
    report.check(
        judge.min_samples.is_none_or(|n| n >= 1),
        &format!("{field}.minSamples"),
        || "must be at least 1".into(),
    );
    if let Some(weight) = judge.weight {
        report.check(
            weight.is_finite() && weight > 0.0,
            &format!("{field}.weight"),
            || format!("must be a number > 0, got {weight}"),
        );
    }
    for (name, value) in [("step", judge.step), ("lookback", judge.lookback)] {
        if let Some(value) = value {
            report.check(!value.is_zero(), &format!("{field}.{name}"), || {
                "must be greater than 0".into()
            });
        }
    }
    if let (Some(step), Some(lookback)) = (judge.step, judge.lookback) {
        report.check(step <= lookback, &format!("{field}.step"), || {
            format!("{step} is longer than the lookback {lookback}: no range to sample")
        });
    }
}

fn score_thresholds(thresholds: &ScoreThresholds, report: &mut Report) {
    const S: &str = "spec.analysis.scoreThresholds";
    for (name, value) in [("pass", thresholds.pass), ("marginal", thresholds.marginal)] {
        report.check(
            (0.0..=100.0).contains(&value),
            &format!("{S}.{name}"),
            || format!("must be a percentage between 0 and 100, got {value}"),
        );
    }
    report.check(
        thresholds.marginal <= thresholds.pass,
        &format!("{S}.marginal"),
        || {
            format!(
                "{} is above pass {}: marginal must not exceed pass",
                thresholds.marginal, thresholds.pass
            )
        },
    );
}

fn webhooks(webhooks: &[Webhook], report: &mut Report) {
    const W: &str = "spec.analysis.webhooks";
    unique(webhooks.iter().map(|w| w.name.as_str()), W, report);
    for (i, hook) in webhooks.iter().enumerate() {
        report.check(
            hook.url.starts_with("http://") || hook.url.starts_with("https://"),
            &format!("{W}[{i}].url"),
            || format!("must be an http:// or https:// URL, got {:?}", hook.url),
        );
        call_timeout(hook.timeout, &format!("{W}[{i}].timeout"), report);
        report.check(
            hook.retries.is_none_or(|r| r >= 0),
            &format!("{W}[{i}].retries"),
            || "must not be negative".into(),
        );
    }
}

/// A timeout of one outgoing call: above zero and at most serin's maximum for any call.
fn call_timeout(timeout: Option<super::Duration>, field: &str, report: &mut Report) {
    let Some(timeout) = timeout else { return };
    report.check(!timeout.is_zero(), field, || {
        "must be greater than 0".into()
    });
    report.check(timeout.as_std() <= MAX_TIMEOUT, field, || {
        format!(
            "{timeout} is above the maximum of {} for one call (a tick waits for its checks)",
            super::Duration::from(MAX_TIMEOUT)
        )
    });
}

/// Validates a MetricTemplate spec (what its schema cannot express).
pub fn validate_template(spec: &MetricTemplateSpec) -> Result<(), ValidationErrors> {
    let mut report = Report { errors: Vec::new() };
    call_timeout(spec.provider.timeout, "spec.provider.timeout", &mut report);
    let row = spec.provider.kind.row();
    let has_address = spec
        .provider
        .address
        .as_deref()
        .is_some_and(|a| !a.trim().is_empty());
    if row.needs_region() {
        let region = spec.provider.region.as_deref().map(str::trim);
        report.check(
            region.is_some_and(crate::api::metric_provider::valid_region),
            "spec.provider.region",
            || match region {
                None | Some("") => format!(
                    "the {} metric provider needs the AWS region of the metrics (e.g. eu-west-1)",
                    row.name
                ),
                Some(other) => format!("{other:?} is not an AWS region name (e.g. eu-west-1)"),
            },
        );
    }
    if row.kind == crate::api::metric_provider::MetricProviderKind::Prometheus
        && let Some(region) = spec.provider.region.as_deref().map(str::trim)
    {
        // A region selects Amazon Managed Prometheus: signed queries, which must go to the
        // workspace, never to the Canary's or serin's default server.
        report.check(
            crate::api::metric_provider::valid_region(region),
            "spec.provider.region",
            || format!("{region:?} is not an AWS region name (e.g. eu-west-1)"),
        );
        report.check(has_address, "spec.provider.address", || {
            "a prometheus template with provider.region queries Amazon Managed Prometheus, \
             and needs the workspace's URL (https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>)"
                .into()
        });
    }
    report.check(
        row.default_server
            || row.default_address.is_some()
            || has_address
            || !row.cluster_reads.is_empty(),
        "spec.provider.address",
        || {
            format!(
                "the {} metric provider needs its server's address (the Canary's metricsServer and \
             --metrics-server are Prometheus-compatible servers)",
                row.name
            )
        },
    );
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(report.errors))
    }
}
