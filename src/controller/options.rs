//! `serin controller` flags. Every flag also reads an environment variable, so a Helm chart
//! can set either.

use std::net::SocketAddr;

fn parse_severity(text: &str) -> Result<crate::api::canary::Severity, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?} is not a severity: expected info, warn or error"))
}

/// An annotation key prefix as the API server accepts it (a DNS subdomain), so the canary
/// Ingress is not rejected at the first step of every rollout.
fn parse_annotations_prefix(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not an annotation prefix: expected a DNS subdomain such as nginx.ingress.kubernetes.io (no trailing /)"
        ))
    }
}

/// Log level when RUST_LOG is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How serin reads Secrets (docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretsAccess {
    /// Watch Secrets' metadata (list/watch in scope): a change of a tracked Secret starts a
    /// rollout at once, and an unchanged one is never read again.
    Watch,
    /// No list/watch on Secrets: each Secret a Canary uses is read by name when it is
    /// reconciled, so a change is noticed at the next analysis tick.
    ByName,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Only handle Canaries in this namespace (default: all namespaces).
    #[arg(long, env = "SERIN_NAMESPACE")]
    pub namespace: Option<String>,
    /// Kubeconfig of the cluster that holds the service mesh's configuration (Istio
    /// multi-cluster with a shared control plane): the mesh's routes (VirtualServices,
    /// DestinationRules, TrafficSplits, HTTPProxies, ...) are written there, while workloads,
    /// Services and Ingresses stay in the cluster serin runs in. Flagger's
    /// `-kubeconfig-service-mesh`.
    #[arg(long, env = "SERIN_KUBECONFIG_SERVICE_MESH", value_name = "PATH")]
    pub kubeconfig_service_mesh: Option<std::path::PathBuf>,
    /// Only handle Canaries whose labels match this selector (e.g. `shard=a`), so several
    /// controllers can share a cluster.
    #[arg(long, env = "SERIN_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Traffic provider for Canaries that do not set spec.provider: kubernetes, gatewayapi, istio,
    /// nginx, contour, traefik.
    #[arg(long, env = "SERIN_MESH_PROVIDER", default_value = crate::api::provider::DEFAULT_NAME)]
    pub mesh_provider: String,
    /// Annotation prefix of the nginx provider's canary Ingress annotations (ingress-nginx's
    /// own `--annotations-prefix`; Flagger's -ingress-annotations-prefix).
    #[arg(
        long,
        env = "SERIN_INGRESS_ANNOTATIONS_PREFIX",
        default_value = crate::routing::nginx::DEFAULT_ANNOTATIONS_PREFIX,
        value_parser = parse_annotations_prefix
    )]
    pub ingress_annotations_prefix: String,
    /// The `ingressClassName` of the contour provider's HTTPProxies (Flagger's -ingress-class,
    /// which only its Contour router reads too); the nginx provider's canary Ingress always
    /// keeps the class of spec.ingressRef, the only one ingress-nginx pairs it with.
    #[arg(long, env = "SERIN_INGRESS_CLASS")]
    pub ingress_class: Option<String>,
    /// Prometheus-compatible server for the built-in metrics and templates without an address.
    #[arg(
        long,
        env = "SERIN_METRICS_SERVER",
        default_value = "http://prometheus:9090"
    )]
    pub metrics_server: String,
    /// Cluster name included in alerts.
    #[arg(long, env = "SERIN_CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// Default alert destination for Canaries without analysis.alerts: a webhook URL. Pass it
    /// through the environment from a Secret: a flag is visible in the process list.
    #[arg(long, env = "SERIN_ALERT_URL", hide_env_values = true)]
    pub alert_url: Option<String>,
    /// Type of the default alert destination.
    #[arg(long, env = "SERIN_ALERT_TYPE", value_enum, default_value = "slack")]
    pub alert_type: crate::api::alert_provider::AlertProviderKind,
    /// Channel of the default alert destination (Slack).
    #[arg(long, env = "SERIN_ALERT_CHANNEL")]
    pub alert_channel: Option<String>,
    /// Sender name of the default alert destination (Slack, Discord).
    #[arg(long, env = "SERIN_ALERT_USERNAME", default_value = "serin")]
    pub alert_username: String,
    /// Lowest severity sent to the default alert destination: info, warn, error.
    #[arg(long, env = "SERIN_ALERT_SEVERITY", default_value = "info", value_parser = parse_severity)]
    pub alert_severity: crate::api::canary::Severity,
    /// The same alert (destination, canary, reason, revision, severity) is sent once per window.
    #[arg(long, env = "SERIN_ALERT_REPEAT_WINDOW", default_value = "15m")]
    pub alert_repeat_window: crate::api::Duration,
    /// Every event serin records is also POSTed here (besides per-Canary `event` webhooks).
    #[arg(long, env = "SERIN_EVENT_WEBHOOK", hide_env_values = true)]
    pub event_webhook: Option<String>,
    /// Which addresses webhooks, AlertProviders and metrics servers may reach: allow-all,
    /// deny-internal (link-local such as cloud metadata, loopback, the API server) or
    /// deny-private (also private ranges). See docs/operations.md.
    #[arg(
        long,
        env = "SERIN_EGRESS_POLICY",
        value_enum,
        default_value = "allow-all"
    )]
    pub egress_policy: crate::outbound::egress::Mode,
    /// Ranges (CIDR, comma-separated or repeated) reached whatever --egress-policy refuses,
    /// e.g. an in-cluster Prometheus under deny-private.
    #[arg(long, env = "SERIN_EGRESS_ALLOW", value_delimiter = ',')]
    pub egress_allow: Vec<ipnet::IpNet>,
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "SERIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Elect a leader through a Lease; only the leader reconciles and writes.
    #[arg(long, env = "SERIN_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the leader Lease (default: the namespace the pod runs in, else `default`).
    #[arg(long, env = "SERIN_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader Lease; controllers sharding a cluster need one name per shard.
    #[arg(long, env = "SERIN_LEASE_NAME", default_value = "serin-leader")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the pod or host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Canaries reconciled at the same time.
    #[arg(long, env = "SERIN_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Refuse Canaries whose metrics' templateRef or alerts' providerRef name another
    /// namespace (Flagger's flag): a tenant cannot borrow another namespace's templates and
    /// the credentials in their Secrets. Off by default for compatibility; the chart sets it.
    #[arg(long, env = "SERIN_NO_CROSS_NAMESPACE_REFS")]
    pub no_cross_namespace_refs: bool,
    /// Also export Flagger's metrics (`flagger_canary_status`, `flagger_canary_weight`, ...,
    /// with Flagger's names, labels and encodings), so dashboards and alert rules written for
    /// Flagger read serin unchanged. See docs/migrating.md.
    #[arg(long, env = "SERIN_FLAGGER_METRICS")]
    pub flagger_metrics: bool,
    /// Drop-in mode: also reconcile Flagger's `flagger.app/v1beta1` Canaries, MetricTemplates
    /// and AlertProviders, exactly as their `serin.dev` twins (install the `flagger.app` CRDs
    /// with `serin crds --group flagger.app`). See docs/migrating.md.
    #[arg(long, env = "SERIN_FLAGGER_API")]
    pub flagger_api: bool,
    /// watch: list/watch Secrets' metadata; by-name: read the Secrets Canaries use by name
    /// only (RBAC without list/watch on secrets), noticing changes at the next tick.
    #[arg(
        long,
        env = "SERIN_SECRETS_ACCESS",
        value_enum,
        default_value = "watch"
    )]
    pub secrets_access: SecretsAccess,
    /// Log format; the level comes from RUST_LOG, else --log-level (default `info`).
    #[arg(long, env = "SERIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log level when RUST_LOG is not set: debug, info, warn, error (Flagger's -log-level).
    #[arg(long, env = "SERIN_LOG_LEVEL", value_enum)]
    pub log_level: Option<LogLevel>,
}

#[cfg(test)]
mod tests {
    use super::parse_annotations_prefix;

    #[test]
    fn an_annotation_prefix_must_be_one_the_api_server_accepts() {
        assert!(parse_annotations_prefix("custom.ingress.kubernetes.io").is_ok());
        for bad in [
            "",
            "nginx.ingress.kubernetes.io/",
            "Nginx.io",
            "a..b",
            "-a.io",
        ] {
            let error = parse_annotations_prefix(bad).unwrap_err();
            assert!(error.contains("not an annotation prefix"), "{bad}: {error}");
        }
    }
}
