//! The Kubernetes side of metric checks: reading a metric's MetricTemplate and the provider's
//! Secret, choosing the server address, and keeping one HTTP client per TLS setting. The
//! queries themselves and the parsing of answers are `crate::metrics`.
//!
//! A template's credentials go only to the template's own `provider.address`: whoever writes
//! a Canary chooses its `spec.metricsServer`, and a shared template's token must not follow
//! that choice to a server of theirs.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;

use crate::api::canary::Metric;
use crate::api::metric_provider::{CA_KEY, MetricProviderKind, judge_refusal};
use crate::api::provider::TrafficProvider;
use crate::api::{Canary, MetricTemplate};
use crate::engine::input::{MetricSample, Sample};
use crate::engine::judge_window;
use crate::metrics::builtin::Source;
use crate::metrics::provider::{Connection, Credentials};
use crate::metrics::{self, Queries};
use crate::outbound;

use super::clients::Setting;
use super::context::{Context, get_required_in, read_secret};

/// A query without `provider.timeout` may take this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every metric of the Canary, queried in parallel.
pub async fn sample_all(
    ctx: &Context,
    canary: &Canary,
    provider: TrafficProvider,
) -> Vec<MetricSample> {
    let source = provider.row().metrics;
    let since = canary.status.as_ref().and_then(judge_window::since);
    let now = chrono::Utc::now();
    let checks = canary.spec.analysis.metrics.iter().map(|metric| async move {
        let (value, query) = match prepare(ctx, canary, metric, source).await {
            Ok((kind, connection, queries)) => (
                metrics::provider::sample_in(
                    kind,
                    connection,
                    Some(ctx.client.clone()),
                    &queries,
                    now,
                    since,
                )
                .await,
                Some(queries.shown().to_string()),
            ),
            Err(error) => (Sample::Error(error), None),
        };
        if let Sample::Error(error) = &value {
            tracing::debug!(canary = %canary.name_any(), metric = %metric.name, %error, "metric check failed");
        }
        MetricSample {
            name: metric.name.clone(),
            value,
            query,
        }
    });
    futures::future::join_all(checks).await
}

/// The provider, the server and the rendered queries of one metric (a metric without a
/// template is a Prometheus query).
async fn prepare(
    ctx: &Context,
    canary: &Canary,
    metric: &Metric,
    source: Source,
) -> Result<(MetricProviderKind, Connection, Queries), String> {
    let namespace = canary.namespace().unwrap_or_default();
    let default_address = canary
        .spec
        .metrics_server
        .clone()
        .unwrap_or_else(|| ctx.options.metrics_server.clone());
    let Some(reference) = &metric.template_ref else {
        let queries = metrics::queries(canary, metric, None, source)?;
        refuse_literal(ctx, &default_address)?;
        let connection = Connection {
            client: ctx.http.clone(),
            address: default_address,
            credentials: Credentials::default(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            interval: interval(metric),
            region: None,
        };
        return Ok((MetricProviderKind::Prometheus, connection, queries));
    };
    let template_namespace = reference.namespace.clone().unwrap_or(namespace);
    let group = ctx.group_of(canary);
    let template: MetricTemplate =
        get_required_in(&ctx.client, group, &template_namespace, &reference.name)
            .await
            .map_err(|e| format!("metric {}: {e}", metric.name))?;
    crate::api::validation::validate_template(&template.spec).map_err(|e| {
        format!(
            "MetricTemplate {template_namespace}/{}: {e}",
            reference.name
        )
    })?;
    let provider = &template.spec.provider;
    let template_name = format!("{template_namespace}/{}", reference.name);
    if metric.judge.is_some()
        && let Some(reason) = judge_refusal(provider.kind.row())
    {
        return Err(format!(
            "metric {} (MetricTemplate {template_name}): {reason}",
            metric.name
        ));
    }
    let queries = metrics::queries(canary, metric, Some(&template.spec.query), source)?;
    let secret = match &provider.secret_ref {
        Some(secret) => read_secret(&ctx.client, &template_namespace, &secret.name)
            .await
            .map_err(|e| e.to_string())?,
        None => BTreeMap::new(),
    };
    if provider.insecure_skip_verify {
        tracing::warn!(template = %reference.name, namespace = %template_namespace,
            "insecureSkipVerify: the metrics server's TLS certificate is not verified");
    }
    let setting = Setting {
        ca: secret.get(CA_KEY).cloned(),
        insecure: provider.insecure_skip_verify,
        proxy: None,
    };
    let client = ctx.clients.get(&ctx.http, &setting)?;
    let credentials = Credentials::of(provider.kind, &secret);
    // A provider reading the cluster (keptn) has no server to reach.
    let reads_cluster = !provider.kind.row().cluster_reads.is_empty();
    let address = if reads_cluster {
        String::new()
    } else {
        address(
            own_address(
                provider.kind,
                provider.address.as_deref(),
                provider.region.as_deref(),
            )
            .as_deref(),
            Carried::of(&credentials, &provider.headers),
            &default_address,
            &template_name,
        )?
    };
    if !reads_cluster {
        refuse_literal(ctx, &address)?;
    }
    let connection = Connection {
        client,
        address,
        credentials,
        headers: provider
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout: outbound::timeout(provider.timeout.map(|t| t.as_std()), DEFAULT_TIMEOUT),
        interval: interval(metric),
        region: provider.region.clone(),
    };
    Ok((provider.kind, connection, queries))
}

/// The metric's `interval`: the window of a query whose language has none (Datadog's).
fn interval(metric: &Metric) -> Duration {
    metric
        .interval
        .map_or(metrics::DEFAULT_INTERVAL, |interval| interval.as_std())
}

/// The template's own address: its `provider.address`, else the service's when the provider
/// is a hosted API with one (Datadog's, New Relic's, as Flagger defaults them; CloudWatch's in
/// the template's `provider.region`).
fn own_address(
    kind: MetricProviderKind,
    address: Option<&str>,
    region: Option<&str>,
) -> Option<String> {
    address
        .filter(|a| !a.trim().is_empty())
        .map(str::to_string)
        .or_else(|| kind.row().service_address(region))
}

/// What a template would send along with its queries that belongs to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carried {
    Nothing,
    /// Credentials from its Secret.
    Credentials,
    /// `provider.headers`: an API key, a tenant id (`X-Scope-OrgID`), an Authorization header.
    Headers,
}

impl Carried {
    fn of(credentials: &Credentials, headers: &BTreeMap<String, String>) -> Self {
        if !credentials.is_empty() {
            Self::Credentials
        } else if !headers.is_empty() {
            Self::Headers
        } else {
            Self::Nothing
        }
    }
}

/// Where a template's queries go: its own address, else the Canary's `spec.metricsServer` or
/// `--metrics-server` (`fallback`) — but only when it carries nothing of its owner's. A
/// template with credentials or headers and no address of its own is refused rather than
/// sending them where a Canary points.
fn address(
    own: Option<&str>,
    carried: Carried,
    fallback: &str,
    template: &str,
) -> Result<String, String> {
    let what = match carried {
        Carried::Nothing => "",
        Carried::Credentials => "credentials (secretRef)",
        Carried::Headers => "headers (provider.headers)",
    };
    match own.filter(|a| !a.is_empty()) {
        Some(own) => Ok(own.to_string()),
        None if carried == Carried::Nothing => Ok(fallback.to_string()),
        None => Err(format!(
            "MetricTemplate {template} has {what} but no provider.address: \
             they are sent only to its own address, never to the Canary's \
             spec.metricsServer or --metrics-server; set provider.address"
        )),
    }
}

/// The egress policy on an address that is an IP (names are checked when resolved).
fn refuse_literal(ctx: &Context, address: &str) -> Result<(), String> {
    ctx.clients
        .egress()
        .check_url(address)
        .map_err(|refusal| format!("metrics server not queried: {refusal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosted_service_is_its_own_default_address_and_keys_go_only_there() {
        let datadog = MetricProviderKind::Datadog;
        assert_eq!(
            own_address(datadog, None, None).as_deref(),
            Some("https://api.datadoghq.com")
        );
        assert_eq!(
            own_address(datadog, Some(" "), None).as_deref(),
            Some("https://api.datadoghq.com")
        );
        assert_eq!(
            own_address(datadog, Some("https://api.datadoghq.eu"), None).as_deref(),
            Some("https://api.datadoghq.eu")
        );
        assert_eq!(
            own_address(MetricProviderKind::NewRelic, None, None).as_deref(),
            Some("https://insights-api.newrelic.com")
        );
        assert_eq!(own_address(MetricProviderKind::Graphite, None, None), None);
        let cloudwatch = MetricProviderKind::CloudWatch;
        assert_eq!(
            own_address(cloudwatch, None, Some("eu-west-1")).as_deref(),
            Some("https://monitoring.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            own_address(
                cloudwatch,
                Some("https://vpce-1.monitoring.eu-west-1.vpce.amazonaws.com"),
                Some("eu-west-1")
            )
            .as_deref(),
            Some("https://vpce-1.monitoring.eu-west-1.vpce.amazonaws.com")
        );
        let secret = BTreeMap::from([("datadog_api_key".to_string(), "k".to_string())]);
        let keys = Carried::of(&Credentials::of(datadog, &secret), &BTreeMap::new());
        let chosen = address(
            own_address(datadog, None, None).as_deref(),
            keys,
            "http://canary-chosen:9090",
            "monitoring/dd",
        );
        assert_eq!(chosen.as_deref(), Ok("https://api.datadoghq.com"));
    }

    #[test]
    fn credentials_never_follow_a_canary_chosen_metrics_server() {
        let secret = BTreeMap::from([("token".to_string(), "t0ken".to_string())]);
        let token = Carried::of(
            &Credentials::of(MetricProviderKind::Prometheus, &secret),
            &BTreeMap::new(),
        );
        let canary_choice = "http://attacker.example:9090";
        let error = address(None, token, canary_choice, "monitoring/shared").unwrap_err();
        assert!(
            error.starts_with("MetricTemplate monitoring/shared has credentials (secretRef) but no provider.address"),
            "{error}"
        );
        assert_eq!(
            address(Some("https://mimir.monitoring"), token, canary_choice, "t").unwrap(),
            "https://mimir.monitoring",
            "the template's own address wins"
        );
        assert_eq!(
            address(None, Carried::Nothing, canary_choice, "t").unwrap(),
            canary_choice,
            "a template without credentials may follow the Canary"
        );
        assert!(
            address(Some(""), token, canary_choice, "t").is_err(),
            "an empty address is none"
        );
        // A tenant header or API key header is the template owner's too.
        let headers = BTreeMap::from([("X-Scope-OrgID".to_string(), "payments".to_string())]);
        let error = address(
            None,
            Carried::of(&Credentials::default(), &headers),
            canary_choice,
            "monitoring/mimir",
        )
        .unwrap_err();
        assert!(
            error.starts_with("MetricTemplate monitoring/mimir has headers (provider.headers) but no provider.address"),
            "{error}"
        );
    }
}
