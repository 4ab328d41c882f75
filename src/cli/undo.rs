//! `serin undo NAME [--dry-run]`: rolls the target back to the last promoted revision by
//! writing the primary's pod template, minus what serin adds to it (the `-primary` selector
//! labels, its annotations, the `-primary` config references), back into the target. The
//! controller then sees the target back at the promoted revision: a rollout under way is
//! cancelled (`RevertedToPromoted`) and nothing new rolls out.
//!
//! `--to-revision REV` goes back further: to an earlier revision the primary ran, from the
//! primary's own history objects (each stamped with its revision).
//!
//! The target is usually applied from git: a GitOps tool re-applies git's version at its next
//! sync, which starts that rollout again. The command says so on stderr every time; the lasting
//! undo is a revert in git.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, PostParams};

use crate::api::status::CanaryStatus;
use crate::engine::short;
use crate::workload::configs::{ConfigKind, ConfigRef, visit_references};
use crate::workload::daemonset::IDLE_LABEL;
use crate::workload::primary::{PRIMARY_SUFFIX, REVISION_ANNOTATION};
use crate::workload::target::Workload;

use super::restart::RESTARTED_AT;

/// The field manager of the write, so `kubectl get -o yaml --show-managed-fields` tells who.
const MANAGER: &str = "serin-undo";

/// How `serin undo` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Undone,
    /// `--dry-run`: the diff was printed, nothing written.
    Shown,
    /// Nothing written, for this reason.
    Refused(String),
}

/// Restores the target of Canary `name` (or shows the diff with `dry_run`).
pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    options: Options,
) -> anyhow::Result<Answer> {
    let canary = super::canaries::get(&client, namespace, name).await?.canary;
    let target = Scope {
        client,
        namespace,
        canary: name,
        target: &canary.spec.target_ref.name,
        status: canary.status.clone().unwrap_or_default(),
        options,
    };
    let answer = match canary.spec.target_ref.kind.as_str() {
        "Deployment" => target.undo::<Deployment>("Deployment").await?,
        "DaemonSet" => target.undo::<DaemonSet>("DaemonSet").await?,
        "StatefulSet" => target.undo::<StatefulSet>("StatefulSet").await?,
        kind => Answer::Refused(format!(
            "spec.targetRef.kind {kind:?} has no pod template to restore (Deployment, DaemonSet or StatefulSet)"
        )),
    };
    if let Answer::Refused(why) = &answer {
        eprintln!("undo refused: canary {namespace}/{name}: {why}");
    }
    Ok(answer)
}

/// One undo: the Canary, its target and what the status says was promoted.
struct Scope<'a> {
    client: kube::Client,
    namespace: &'a str,
    canary: &'a str,
    target: &'a str,
    status: CanaryStatus,
    options: Options,
}

/// `serin undo`'s flags.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the diff instead of writing.
    pub dry_run: bool,
    /// A revision the primary ran before (its first characters, as `serin history` shows
    /// them), instead of the one it runs.
    pub to_revision: Option<String>,
}

impl Scope<'_> {
    async fn undo<W: Workload>(&self, kind: &str) -> anyhow::Result<Answer> {
        let (namespace, name) = (self.namespace, self.target);
        let Some(promoted) = self.status.last_promoted_spec.clone() else {
            return Ok(Answer::Refused(
                "the Canary was never promoted: there is no revision to go back to".into(),
            ));
        };
        let api: Api<W> = Api::namespaced(self.client.clone(), namespace);
        let primary_name = format!("{name}{PRIMARY_SUFFIX}");
        let Some(primary) = api.get_opt(&primary_name).await? else {
            return Ok(Answer::Refused(format!(
                "its primary {kind} {primary_name} does not exist: there is no promoted template to go back to"
            )));
        };
        let Some(mut target) = api.get_opt(name).await? else {
            anyhow::bail!(
                "canary {namespace}/{}: target {kind} {name} not found",
                self.canary
            );
        };
        let (template, revision) = match &self.options.to_revision {
            None => (primary.pod_template().cloned(), promoted),
            Some(wanted) => match self.earlier(&primary, wanted).await? {
                Ok(found) => (Some(found.0), found.1),
                Err(why) => return Ok(Answer::Refused(why)),
            },
        };
        let (Some(template), Some(current)) = (template, target.release_template()) else {
            anyhow::bail!("{kind} {namespace}/{name} or its primary has no pod template");
        };
        let tracked = tracked(&self.status);
        let restored = restore(&template, target.selector(), &tracked);
        let revision = short(&revision);
        if same(&current, &restored)? {
            return Ok(Answer::Refused(format!(
                "nothing to undo: the target {kind} {name} already runs the primary's pod template (revision {revision})"
            )));
        }
        if self.options.dry_run {
            crate::out!("{}", diff(&format!("{kind}/{name}"), &current, &restored)?);
            return Ok(Answer::Shown);
        }
        eprintln!(
            "warning: undo writes {kind} {namespace}/{name} directly. A GitOps tool (Flux, Argo CD) applies git's version again at its next sync, and that starts the same rollout again: to undo for good, revert the change in git."
        );
        let idle = target
            .pod_template()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.node_selector.as_ref())
            .and_then(|s| s.get(IDLE_LABEL).cloned());
        target.set_template(with_idle_selector(restored, idle));
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        api.replace(name, &params, &target)
            .await
            .map_err(|e| anyhow::anyhow!("writing {kind} {namespace}/{name}: {e}"))?;
        crate::outln!(
            "undo: canary {namespace}/{}: {kind} {name} has the primary's pod template again (revision {revision}); the rollout of its other revision stops",
            self.canary
        );
        Ok(Answer::Undone)
    }

    /// The pod template of an earlier revision from the primary's own history (its
    /// ReplicaSets or ControllerRevisions, each stamped with the revision it ran); Err says
    /// why there is none.
    async fn earlier<W: Workload>(
        &self,
        primary: &W,
        wanted: &str,
    ) -> anyhow::Result<Result<(PodTemplateSpec, String), String>> {
        let labels = primary
            .selector()
            .and_then(|s| s.match_labels.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let api: Api<W::History> = Api::namespaced(self.client.clone(), self.namespace);
        let history = api
            .list(&ListParams::default().labels(&labels))
            .await
            .map_err(|e| anyhow::anyhow!("listing the primary's history: {e}"))?;
        let mut found: BTreeMap<String, PodTemplateSpec> = BTreeMap::new();
        for object in &history.items {
            let Some(template) = W::history_template(object) else {
                continue;
            };
            let stamped = template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(REVISION_ANNOTATION))
                .cloned();
            if let Some(revision) = stamped {
                found.insert(revision, template);
            }
        }
        let matching: Vec<&String> = found.keys().filter(|r| r.starts_with(wanted)).collect();
        Ok(match matching.as_slice() {
            [one] => Ok((found[*one].clone(), (*one).clone())),
            [] => Err(format!(
                "--to-revision {wanted}: the primary's history holds no such revision (it holds {})",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found
                        .keys()
                        .map(|r| short(r))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
            _ => Err(format!(
                "--to-revision {wanted}: more than one revision starts so; give more characters"
            )),
        })
    }
}

/// The configs serin tracks for the Canary (`configmap/NAME` keys of the status): the
/// references the primary has to their `-primary` copies.
fn tracked(status: &CanaryStatus) -> BTreeSet<ConfigRef> {
    status
        .tracked_configs
        .keys()
        .filter_map(|key| {
            let (kind, name) = key.split_once('/')?;
            let kind = match kind {
                "configmap" => ConfigKind::ConfigMap,
                "secret" => ConfigKind::Secret,
                _ => return None,
            };
            Some(ConfigRef {
                kind,
                name: name.to_string(),
            })
        })
        .collect()
}

/// The primary's pod template as the target had it: selector labels without the `-primary`
/// suffix, serin's annotations (and `serin restart`'s stamp) taken out, config references to
/// the `-primary` copies pointed back at the originals.
pub fn restore(
    primary: &PodTemplateSpec,
    selector: Option<&LabelSelector>,
    tracked: &BTreeSet<ConfigRef>,
) -> PodTemplateSpec {
    let mut template = primary.clone();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            for (key, value) in selector
                .and_then(|s| s.match_labels.as_ref())
                .iter()
                .copied()
                .flatten()
            {
                if labels.contains_key(key) {
                    labels.insert(key.clone(), value.clone());
                }
            }
            labels.retain(|key, _| !key.starts_with("serin.dev/"));
        }
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.retain(|key, _| {
                key != REVISION_ANNOTATION && key != RESTARTED_AT && !key.starts_with("serin.dev/")
            });
        }
        // The API server stores an empty map as none: compare and write it so.
        meta.labels = meta.labels.take().filter(|m| !m.is_empty());
        meta.annotations = meta.annotations.take().filter(|m| !m.is_empty());
    }
    if let Some(pod) = template.spec.as_mut() {
        visit_references(pod, |kind, name| {
            let original = name.strip_suffix(PRIMARY_SUFFIX).map(str::to_string);
            if let Some(original) = original
                && tracked.contains(&ConfigRef {
                    kind,
                    name: original.clone(),
                })
            {
                *name = original;
            }
        });
    }
    template
}

/// A DaemonSet kept idle keeps its idle node selector (serin's, left out of the revision).
fn with_idle_selector(mut template: PodTemplateSpec, idle: Option<String>) -> PodTemplateSpec {
    if let (Some(value), Some(pod)) = (idle, template.spec.as_mut()) {
        pod.node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(IDLE_LABEL.to_string(), value);
    }
    template
}

fn same(a: &PodTemplateSpec, b: &PodTemplateSpec) -> anyhow::Result<bool> {
    Ok(serde_json::to_value(a)? == serde_json::to_value(b)?)
}

/// A unified diff of the target's pod template now and after the undo, as YAML.
pub fn diff(
    what: &str,
    before: &PodTemplateSpec,
    after: &PodTemplateSpec,
) -> anyhow::Result<String> {
    let (before, after) = (
        serde_yaml_ng::to_string(before)?,
        serde_yaml_ng::to_string(after)?,
    );
    Ok(similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{what} spec.template (now)"),
            &format!("{what} spec.template (after undo)"),
        )
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(value: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_primary_template_is_given_back_as_the_target_had_it() {
        let primary = template(serde_json::json!({
            "metadata": {
                "labels": {"app": "web-primary", "team": "a"},
                "annotations": {REVISION_ANNOTATION: "abc", RESTARTED_AT: "2026-01-01T00:00:00Z"},
            },
            "spec": {
                "containers": [{"name": "web", "image": "web:v1",
                    "envFrom": [{"configMapRef": {"name": "web-config-primary"}},
                                {"configMapRef": {"name": "other-primary"}}]}],
            },
        }));
        let selector: LabelSelector =
            serde_json::from_value(serde_json::json!({"matchLabels": {"app": "web"}})).unwrap();
        let status = CanaryStatus {
            tracked_configs: BTreeMap::from([("configmap/web-config".into(), "1".into())]),
            ..CanaryStatus::default()
        };
        let restored = restore(&primary, Some(&selector), &tracked(&status));
        let value = serde_json::to_value(&restored).unwrap();
        assert_eq!(
            value["metadata"],
            serde_json::json!({"labels": {"app": "web", "team": "a"}})
        );
        let refs = &value["spec"]["containers"][0]["envFrom"];
        assert_eq!(refs[0]["configMapRef"]["name"], "web-config");
        // Not tracked: a config whose own name ends in -primary stays.
        assert_eq!(refs[1]["configMapRef"]["name"], "other-primary");
    }

    #[test]
    fn the_diff_shows_the_lines_that_change() {
        let before = template(
            serde_json::json!({"spec": {"containers": [{"name": "web", "image": "web:v2"}]}}),
        );
        let after = template(
            serde_json::json!({"spec": {"containers": [{"name": "web", "image": "web:v1"}]}}),
        );
        let text = diff("Deployment/web", &before, &after).unwrap();
        assert!(
            text.contains("--- Deployment/web spec.template (now)"),
            "{text}"
        );
        assert!(text.contains("\n-  - image: web:v2\n"), "{text}");
        assert!(text.contains("\n+  - image: web:v1\n"), "{text}");
    }

    #[test]
    fn an_idle_daemon_set_stays_idle() {
        let restored = with_idle_selector(
            template(serde_json::json!({"spec": {"containers": []}})),
            Some("true".into()),
        );
        let selector = restored.spec.unwrap().node_selector.unwrap();
        assert_eq!(selector.get(IDLE_LABEL).map(String::as_str), Some("true"));
    }
}
