//! The `serin` commands for people and pipelines: `get`, `status`, the manual requests, `wait`
//! (cluster, kubeconfig and contexts like kubectl) and `check`, `migrate` (offline). Rendering
//! is pure (a Canary and its events in, text out) so it is tested without a cluster.

pub mod canaries;
pub mod check;
pub mod get;
pub mod migrate;
pub mod request;
pub mod restart;
pub mod status;
pub mod stdout;
pub mod version;
pub mod wait;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How to reach the cluster, as kubectl does. The flags are global: they go anywhere on the
/// line (`serin -n team get` and `serin get -n team`), as kubectl's do. `serin controller` and
/// `serin loadtester` keep their own `--namespace` (clap leaves a global out of a subcommand
/// that has an argument of the same id).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Connection {
    /// Path of the kubeconfig (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Give up on a request to the API server after this long (Go duration, e.g. 30s; 0 no
    /// limit; default: kube's).
    #[arg(long, global = true)]
    pub request_timeout: Option<crate::api::Duration>,
}

impl Connection {
    /// A client and the namespace to work in.
    pub async fn connect(&self) -> anyhow::Result<(kube::Client, String)> {
        let config = self.kube_config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).context("connecting to Kubernetes")?;
        Ok((client, namespace))
    }

    /// The client configuration these flags name.
    pub async fn kube_config(&self) -> anyhow::Result<kube::Config> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = self.config().await.context("reading the kubeconfig")?;
        if let Some(timeout) = self.request_timeout {
            // As kubectl's: 0 means no limit.
            let timeout = Some(timeout.as_std()).filter(|t| !t.is_zero());
            config.connect_timeout = timeout;
            config.read_timeout = timeout;
            config.write_timeout = timeout;
        }
        Ok(config)
    }

    /// The kubeconfig named by `--kubeconfig` (else kube's search: $KUBECONFIG, ~/.kube/config,
    /// in-cluster) with the context of `--context` (else its current one).
    async fn config(&self) -> anyhow::Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        Ok(match &self.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &options).await?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .with_context(|| {
                    format!(
                        "--context {}",
                        options.context.as_deref().unwrap_or_default()
                    )
                })?,
            None => kube::Config::infer().await?,
        })
    }
}

/// Output format of the reading commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Prints objects as JSON or YAML (the table is each command's own).
pub fn print_structured<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => crate::out!("{}", serde_yaml_ng::to_string(value)?),
        Format::Table => {}
    }
    Ok(())
}

/// Objects as a Kubernetes List, the shape `kubectl get -o json|yaml` prints for several
/// objects, so tools that read kubectl's output read serin's.
pub fn list_of<T: serde::Serialize>(items: &[T]) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": serde_json::to_value(items)?,
    }))
}

/// Colours, only for a terminal and without NO_COLOR (https://no-color.org).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn detect() -> Self {
        Self {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub const fn plain() -> Self {
        Self { colour: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// A duration the way kubectl prints ages: 45s, 12m, 3h, 5d.
pub fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let seconds = (now - since).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Left-aligned columns separated by three spaces, as kubectl prints them. Colour codes in
/// cells do not count toward the width.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let visible = |s: &str| strip_colour(s).chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible(cell));
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - visible(cell) + 3));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn strip_colour(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A Kubernetes timestamp as chrono's.
pub fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    timestamp(&t.0)
}

/// The instant inside Kubernetes' Time and MicroTime, as chrono's.
pub fn timestamp(t: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}

/// The first characters of a revision, enough to tell them apart.
pub fn short(revision: Option<&str>) -> String {
    revision.map_or("-".into(), |r| r.chars().take(8).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now = Utc::now();
        let ago = |s: i64| age(Some(now - chrono::Duration::seconds(s)), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(3 * 86400), "3d");
        assert_eq!(age(None, now), "-");
    }

    #[test]
    fn several_objects_are_a_kubernetes_list() {
        let list = list_of(&[serde_json::json!({"kind": "Canary"})]).unwrap();
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0]["kind"], "Canary");
        assert_eq!(list_of::<u8>(&[]).unwrap()["items"], serde_json::json!([]));
    }

    #[test]
    fn columns_ignore_colour_codes() {
        let style = Style { colour: true };
        let text = table(
            &["NAME", "PHASE"],
            &[
                vec!["a".into(), style.good("Succeeded")],
                vec!["long-name".into(), "x".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME        PHASE");
        assert_eq!(strip_colour(lines[1]), "a           Succeeded");
    }
}
