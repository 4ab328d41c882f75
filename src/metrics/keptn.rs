//! Keptn's metrics resources, read from the cluster as Flagger's `keptn` provider reads them
//! (`metrics.keptn.sh/v1beta1`, the version Flagger asks for). The query names a resource:
//!
//! - `keptnmetric/<namespace>/<name>`: the KeptnMetric's `status.value` (a number in a
//!   string, which Keptn's metrics operator refreshes from its provider);
//! - `analysis/<namespace>/<analysisDefinition>/<timeframe>/<key=value;...>`: an Analysis of
//!   that AnalysisDefinition over the recent `timeframe` (default `1m`) with those `args`,
//!   created, waited for until Keptn marks it `Completed` (within the template's timeout), read
//!   as 1 when it passed and 0 when not, then deleted.
//!
//! This is the one provider that talks to the API server rather than to a metrics server, so
//! it is built with the controller's client (`super::provider::sample_in`); `serin check`
//! and `simulate` have none, and say so.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// Keptn's metrics API group and the version Flagger reads.
pub const GROUP: &str = "metrics.keptn.sh";
pub const VERSION: &str = "v1beta1";
/// How often a created Analysis is read until Keptn completes it (Flagger's pace).
const POLL: Duration = Duration::from_secs(1);
/// The timeframe of an Analysis whose query names none (Flagger's default).
pub const DEFAULT_TIMEFRAME: &str = "1m";

/// What a query names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Metric {
        namespace: String,
        name: String,
    },
    Analysis {
        namespace: String,
        definition: String,
        timeframe: String,
        args: BTreeMap<String, String>,
    },
}

const FORMAT: &str = "a keptn query is keptnmetric/<namespace>/<name> or \
     analysis/<namespace>/<analysisDefinition>[/<timeframe>[/<key=value;...>]]";

fn refused(message: String) -> QueryError {
    QueryError::Refused {
        kind: "query".into(),
        message,
    }
}

impl Target {
    /// Reads a query (the kind in either case and singular or plural, as Flagger does).
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let parts: Vec<&str> = query.trim().split('/').map(str::trim).collect();
        if parts.len() < 3 || parts[1].is_empty() || parts[2].is_empty() {
            return Err(refused(format!("{query:?}: {FORMAT}")));
        }
        let (namespace, name) = (parts[1].to_string(), parts[2].to_string());
        match parts[0].to_ascii_lowercase().as_str() {
            "keptnmetric" | "keptnmetrics" if parts.len() == 3 => {
                Ok(Self::Metric { namespace, name })
            }
            "analysis" | "analyses" if parts.len() <= 5 => Ok(Self::Analysis {
                namespace,
                definition: name,
                timeframe: parts
                    .get(3)
                    .filter(|t| !t.is_empty())
                    .map_or(DEFAULT_TIMEFRAME, |t| t)
                    .to_string(),
                args: parts.get(4).map(|a| arguments(a)).unwrap_or_default(),
            }),
            _ => Err(refused(format!("{query:?}: {FORMAT}"))),
        }
    }
}

/// `key=value;key=value` (pairs without exactly one `=` are left out, as Flagger does).
fn arguments(text: &str) -> BTreeMap<String, String> {
    text.split(';')
        .filter_map(|pair| {
            let mut split = pair.split('=');
            match (split.next(), split.next(), split.next()) {
                (Some(key), Some(value), None) if !key.trim().is_empty() => {
                    Some((key.trim().to_string(), value.trim().to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// The resource of `kind` (`KeptnMetric`, `Analysis`) in Keptn's group.
pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The Keptn implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Keptn {
    cluster: Option<kube::Client>,
    timeout: Duration,
}

impl Keptn {
    /// Reads through `cluster` (the controller's client), each query within the connection's
    /// timeout.
    pub fn connect(connection: &Connection, cluster: Option<kube::Client>) -> Self {
        Self {
            cluster,
            timeout: connection.timeout,
        }
    }

    fn cluster(&self) -> Result<&kube::Client, QueryError> {
        self.cluster.as_ref().ok_or_else(|| {
            refused(
                "the keptn provider reads Keptn's resources from the cluster, and only \
                 `serin controller` queries the cluster"
                    .into(),
            )
        })
    }

    async fn metric(&self, namespace: &str, name: &str) -> Result<Answer<f64>, QueryError> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.cluster()?.clone(),
            namespace,
            &resource("KeptnMetric", "keptnmetrics"),
        );
        let what = format!("KeptnMetric {namespace}/{name}");
        let object = api.get(name).await.map_err(|e| api_error(&what, e))?;
        let value = object.data.pointer("/status/value");
        match value {
            None | Some(Value::Null) => Ok(Answer::NoData),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(Answer::NoData),
            Some(Value::String(text)) => match text.trim().parse::<f64>() {
                Ok(value) if value.is_nan() => Ok(Answer::NoData),
                Ok(value) => Ok(Answer::Value(value)),
                Err(_) => Err(QueryError::Malformed {
                    service: "a KeptnMetric",
                    detail: format!(
                        "{what} status.value {:?} is not a number",
                        crate::outbound::redact::excerpt(text, 80)
                    ),
                }),
            },
            Some(other) => Err(QueryError::Malformed {
                service: "a KeptnMetric",
                detail: format!("{what} status.value is {other}, not a string"),
            }),
        }
    }

    /// Creates the Analysis, waits for Keptn's verdict, and deletes it whatever happened.
    async fn analysis(&self, target: &Target) -> Result<Answer<f64>, QueryError> {
        let Target::Analysis {
            namespace,
            definition,
            timeframe,
            args,
        } = target
        else {
            return Err(refused("not an analysis".into()));
        };
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.cluster()?.clone(),
            namespace,
            &resource("Analysis", "analyses"),
        );
        let what = format!("Analysis of AnalysisDefinition {namespace}/{definition}");
        let mut analysis = DynamicObject::new("", &resource("Analysis", "analyses"));
        analysis.metadata.generate_name = Some(format!("{}-", short(definition)));
        analysis.data = json!({"spec": {
            "analysisDefinition": {"name": definition},
            "timeframe": {"recent": timeframe},
            "args": args,
        }});
        let created = api
            .create(&PostParams::default(), &analysis)
            .await
            .map_err(|e| api_error(&what, e))?;
        let name = created.metadata.name.clone().unwrap_or_default();
        let verdict = tokio::time::timeout(self.timeout, verdict(&api, &name, &what)).await;
        // A leftover Analysis would only be clutter; its deletion failing fails no check.
        if let Err(error) = api.delete(&name, &DeleteParams::default()).await {
            tracing::warn!(%error, namespace, analysis = %name, "could not delete a Keptn Analysis serin created");
        }
        verdict.map_err(|_| QueryError::Refused {
            kind: "Keptn".into(),
            message: format!(
                "{what} was not Completed within {:?} (is Keptn's metrics operator running?)",
                self.timeout
            ),
        })?
    }
}

/// Reads the Analysis until Keptn has completed it: 1 passed, 0 failed.
async fn verdict(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
) -> Result<Answer<f64>, QueryError> {
    loop {
        let object = api.get(name).await.map_err(|e| api_error(what, e))?;
        let status = object.data.get("status");
        let state = status.and_then(|s| s.get("state")).and_then(Value::as_str);
        if state == Some("Completed")
            && let Some(pass) = status.and_then(|s| s.get("pass")).and_then(Value::as_bool)
        {
            return Ok(Answer::Value(if pass { 1.0 } else { 0.0 }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A name prefix that leaves room for the API server's random suffix.
fn short(name: &str) -> &str {
    let end = name
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| *end <= 57)
        .last()
        .unwrap_or(0);
    &name[..end]
}

/// The API server's refusal, with its reason and message (never a token).
fn api_error(what: &str, error: kube::Error) -> QueryError {
    match error {
        kube::Error::Api(status) => {
            let hint = match status.code {
                404 => " (is Keptn installed, and does the resource exist?)",
                403 => {
                    " (serin's ClusterRole grants get on keptnmetrics and create, get, delete on analyses in metrics.keptn.sh)"
                }
                _ => "",
            };
            QueryError::Refused {
                kind: format!("Kubernetes {}, HTTP {}", status.reason, status.code),
                message: format!("{what}: {}{hint}", status.message),
            }
        }
        other => QueryError::Transport(format!("{what}: {other}")),
    }
}

impl MetricsProvider for Keptn {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let target = Target::parse(query)?;
        match &target {
            Target::Metric { namespace, name } => {
                tokio::time::timeout(self.timeout, self.metric(namespace, name))
                    .await
                    .map_err(|_| QueryError::Timeout(self.timeout))?
            }
            Target::Analysis { .. } => self.analysis(&target).await,
        }
    }

    async fn range(
        &self,
        _query: &str,
        _start: DateTime<Utc>,
        _end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        // The table says no range queries: validation refuses a judge before this.
        Err(refused(
            "Keptn's resources hold a current value only, no series".into(),
        ))
    }

    async fn probe(&self) -> Result<(), QueryError> {
        self.cluster().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_keptn_metric_or_an_analysis_as_flagger_reads_them() {
        assert_eq!(
            Target::parse(" KeptnMetric/shop/error-rate\n"),
            Ok(Target::Metric {
                namespace: "shop".into(),
                name: "error-rate".into()
            })
        );
        assert_eq!(
            Target::parse("analysis/shop/slo/5m/workload=web;bad;x=1=2"),
            Ok(Target::Analysis {
                namespace: "shop".into(),
                definition: "slo".into(),
                timeframe: "5m".into(),
                args: BTreeMap::from([("workload".into(), "web".into())]),
            })
        );
        let Ok(Target::Analysis {
            timeframe, args, ..
        }) = Target::parse("analyses/shop/slo")
        else {
            panic!("an analysis")
        };
        assert_eq!((timeframe.as_str(), args.len()), ("1m", 0));
        for bad in [
            "keptnmetric/shop",
            "metric/shop/x",
            "keptnmetric//x",
            "keptnmetric/a/b/c",
        ] {
            let error = Target::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("a keptn query is keptnmetric/<namespace>/<name>"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_analysis_name_leaves_room_for_the_suffix() {
        assert_eq!(short("slo"), "slo");
        assert_eq!(short(&"a".repeat(70)).len(), 57);
    }
}
