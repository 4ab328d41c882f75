//! Metric providers: which query a Canary's metric stands for, and asking a metrics server
//! (Prometheus-compatible, Graphite, InfluxDB, Datadog, New Relic, CloudWatch, Dynatrace,
//! Splunk, Kubernetes external metrics, Google Cloud Monitoring, Keptn) for it. Kubernetes reads (MetricTemplates, Secrets)
//! stay in the controller; this module takes what they found and returns the engine's
//! [`Sample`].
//!
//! - [`template`]: Flagger-compatible query variables, rendered with minijinja;
//! - [`bounded`]: rendering any user template within fuel, size and time limits;
//! - [`builtin`]: `request-success-rate` and `request-duration` per traffic provider;
//! - [`provider`]: the [`provider::MetricsProvider`] trait every metrics server implements,
//!   and the one `match` that picks an implementation by `provider.type`;
//! - [`exchange`]: one HTTP exchange with a metrics server, the same for every provider
//!   (credentials, headers, timeout, bounded answers, rate limits, error messages);
//! - [`prometheus`]: the Prometheus HTTP API client and the parsing of its answers (Amazon
//!   Managed Prometheus' queries signed by [`aws_signing`]);
//! - [`graphite`]: Graphite's render API;
//! - [`influxdb`]: InfluxDB's Flux (v2) and InfluxQL (1.x) APIs;
//! - [`datadog`]: Datadog's metrics query API;
//! - [`newrelic`]: New Relic's Insights query API (NRQL);
//! - [`cloudwatch`]: Amazon CloudWatch's GetMetricData, signed by [`aws_signing`] ([`sigv4`])
//!   with the Secret's keys or the pod's [`web_identity`];
//! - [`dynatrace`]: Dynatrace's metrics query API v2;
//! - [`splunk`]: Splunk Observability's SignalFlow over HTTP, whose server-sent events
//!   [`event_stream`] splits;
//! - [`external`]: the Kubernetes external metrics API of a metrics adapter;
//! - [`stackdriver`]: Google Cloud Monitoring's MQL query API, with access tokens from
//!   [`google_auth`] (which Google Managed Prometheus' queries carry too);
//! - [`keptn`]: Keptn's KeptnMetric and Analysis resources, read from the cluster.

pub mod aws_signing;
pub mod bounded;
pub mod builtin;
pub mod cloudwatch;
pub mod datadog;
pub mod dynatrace;
pub mod event_stream;
pub mod exchange;
pub mod external;
pub mod go_template;
pub mod google_auth;
pub mod graphite;
pub mod influxdb;
pub mod keptn;
pub mod newrelic;
pub mod prometheus;
pub mod provider;
pub mod sigv4;
pub mod splunk;
pub mod stackdriver;
pub mod template;
pub mod web_identity;

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::canary::Metric;
use crate::api::{Canary, Duration as SpecDuration};
use crate::engine::input::Sample;
use crate::engine::judge_window;

use builtin::Source;
use provider::{Answer, MetricsProvider};
use template::{Vars, render};

/// Window of a metric without `interval` (Flagger's default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Judge range-query resolution without `judge.step`.
pub const DEFAULT_STEP: Duration = Duration::from_secs(15);
/// How far back the judge looks without `judge.lookback`.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(600);

/// The rendered queries of one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Queries {
    /// A value checked against bounds: one instant query for the canary.
    Instant(String),
    /// The judge: the same query for the canary's and the primary's workload, as range queries.
    Compared {
        canary: String,
        primary: String,
        step: Duration,
        lookback: Duration,
    },
}

impl Queries {
    /// The query shown in status and events (the canary's, for the judge).
    pub fn shown(&self) -> &str {
        match self {
            Self::Instant(query) | Self::Compared { canary: query, .. } => query,
        }
    }
}

/// Renders a metric's queries. `template_query` is the referenced MetricTemplate's query, when
/// the metric has a templateRef; `source` picks the built-in queries.
pub fn queries(
    canary: &Canary,
    metric: &Metric,
    template_query: Option<&str>,
    source: Source,
) -> Result<Queries, String> {
    let query = template_query
        .or(metric.query.as_deref())
        .or_else(|| builtin::query(&metric.name, source))
        .ok_or_else(|| {
            format!(
                "metric {} has no query: set templateRef (only request-success-rate and request-duration are built in)",
                metric.name
            )
        })?;
    let spec = &canary.spec;
    let target = spec.target_ref.name.as_str();
    let primary = format!("{target}-primary");
    let ingress = spec
        .ingress_ref
        .as_ref()
        .map_or(target, |r| r.name.as_str());
    let route = spec.route_ref.as_ref().map_or(target, |r| r.name.as_str());
    let namespace = canary.namespace().unwrap_or_default();
    let name = canary.name_any();
    // Which template and field an error is about.
    let origin = match (&metric.template_ref, template_query, &metric.query) {
        (Some(reference), Some(_), _) => format!("MetricTemplate {} spec.query", reference.name),
        (_, _, Some(_)) => "query".to_string(),
        _ => "built-in query".to_string(),
    };
    let vars = |workload: &str| -> Result<String, String> {
        let vars = Vars {
            name: &name,
            namespace: &namespace,
            target,
            service: spec.service_name(),
            interval: query_duration(
                metric
                    .interval
                    .map_or(DEFAULT_INTERVAL, SpecDuration::as_std),
            ),
            workload,
            ingress,
            route,
            variables: &metric.template_variables,
        };
        render(query, &vars).map_err(|e| format!("metric {} ({origin}): {e}", metric.name))
    };
    Ok(match &metric.judge {
        None => Queries::Instant(vars(target)?),
        Some(judge) => Queries::Compared {
            canary: vars(target)?,
            primary: vars(&primary)?,
            step: judge.step.map_or(DEFAULT_STEP, SpecDuration::as_std),
            lookback: judge
                .lookback
                .map_or(DEFAULT_LOOKBACK, SpecDuration::as_std),
        },
    })
}

/// Asks the server. `since` bounds the judge's window (see [`judge_window`]): it never reads
/// values older than the canary's current traffic.
pub async fn sample(
    endpoint: &impl MetricsProvider,
    queries: &Queries,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> Sample {
    match queries {
        Queries::Instant(query) => match endpoint.instant(query).await {
            Ok(Answer::Value(value)) => Sample::Value(value),
            Ok(Answer::NoData) => Sample::NoData,
            Err(error) => Sample::Error(error.to_string()),
        },
        Queries::Compared {
            canary,
            primary,
            step,
            lookback,
        } => {
            let start = judge_window::start(now, since, *step, *lookback);
            let (canary, primary) = futures::join!(
                endpoint.range(canary, start, now, *step),
                endpoint.range(primary, start, now, *step),
            );
            let values = |answer: Answer<Vec<f64>>| match answer {
                Answer::Value(values) => values,
                Answer::NoData => Vec::new(),
            };
            match (canary, primary) {
                (Ok(canary), Ok(primary)) => Sample::Compared {
                    canary: values(canary),
                    primary: values(primary),
                },
                (Err(error), _) => Sample::Error(format!("canary query: {error}")),
                (_, Err(error)) => Sample::Error(format!("primary query: {error}")),
            }
        }
    }
}

/// `{{ interval }}` as a query reads it: one unit where the duration is a whole number of it
/// (`90s`, `1m`, `2h`: what people write, and what Flagger passes on as written), Go's form
/// otherwise. One unit is valid in every query language serin speaks, where `1m30s` is not
/// (InfluxQL and Graphite take a single unit).
pub fn query_duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() != 0 || secs == 0 {
        return SpecDuration::from(duration).to_string();
    }
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::load::from_yaml;

    #[test]
    fn the_interval_of_a_query_is_written_in_one_unit_as_people_write_it() {
        let spelled = |s: u64| query_duration(std::time::Duration::from_secs(s));
        assert_eq!(spelled(90), "90s", "not 1m30s, which InfluxQL refuses");
        assert_eq!(spelled(60), "1m");
        assert_eq!(spelled(150), "150s");
        assert_eq!(spelled(7200), "2h");
        assert_eq!(spelled(5400), "90m");
        assert_eq!(
            query_duration(std::time::Duration::from_millis(500)),
            "500ms"
        );
    }

    fn with_metric(metric: &str) -> (Canary, Metric) {
        let yaml = format!(
            "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: prod}}\nspec:\n  targetRef: {{name: web-app}}\n  service: {{port: 80, name: web-svc}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
        );
        let canary: Canary = from_yaml(&yaml, "").unwrap();
        let metric = canary.spec.analysis.metrics[0].clone();
        (canary, metric)
    }

    #[test]
    fn a_builtin_checked_against_bounds_is_one_instant_query_for_the_canary() {
        let (canary, metric) = with_metric(
            "      - name: request-success-rate\n        interval: 2m\n        thresholdRange: {min: 99}\n",
        );
        let Queries::Instant(query) = queries(&canary, &metric, None, Source::App).unwrap() else {
            panic!("instant expected")
        };
        assert!(query.contains(r#"namespace="prod""#), "{query}");
        assert!(query.contains(r#"pod=~"web-app-[0-9a-zA-Z]+"#), "{query}");
        assert!(query.contains("[2m]"), "{query}");
    }

    #[test]
    fn a_judged_template_is_rendered_for_canary_and_primary() {
        let (canary, metric) = with_metric(
            "      - name: latency\n        templateRef: {name: latency}\n        templateVariables: {q: '0.9'}\n        judge: {step: 30s}\n",
        );
        let template = r#"q{{ variables.q }}{w="{{ workload }}",s="{{ service }}",t="{{ target }}",n="{{ name }}"}"#;
        let Queries::Compared {
            canary: c,
            primary: p,
            step,
            lookback,
        } = queries(&canary, &metric, Some(template), Source::Istio).unwrap()
        else {
            panic!("compared expected")
        };
        assert_eq!(c, r#"q0.9{w="web-app",s="web-svc",t="web-app",n="web"}"#);
        assert_eq!(
            p,
            r#"q0.9{w="web-app-primary",s="web-svc",t="web-app",n="web"}"#
        );
        assert_eq!(
            (step, lookback),
            (Duration::from_secs(30), DEFAULT_LOOKBACK)
        );
    }

    #[test]
    fn a_metric_without_a_query_or_with_a_bad_variable_is_an_error_naming_it() {
        let (canary, metric) =
            with_metric("      - name: saturation\n        thresholdRange: {max: 1}\n");
        let error = queries(&canary, &metric, None, Source::App).unwrap_err();
        assert!(error.contains("metric saturation has no query"), "{error}");
        let (canary, metric) = with_metric(
            "      - name: saturation\n        templateRef: {name: s}\n        thresholdRange: {max: 1}\n",
        );
        let error = queries(&canary, &metric, Some("x{{ nmspace }}"), Source::App).unwrap_err();
        assert!(error.contains(r#"unknown variable "nmspace""#), "{error}");
    }
}
