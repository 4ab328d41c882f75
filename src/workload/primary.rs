//! The `<target>-primary` copy of a target, for every kind: its name, metadata, selector and
//! pod template. Selector and pod labels carry a `-primary` suffix (so primary and canary pods
//! never match each other's selectors) and config references point at the `-primary` copies.
//! Each kind (`super::deployment`, ...) wraps these parts in its own spec. Pure: the
//! controller applies what this returns with server-side apply.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::configs::{ConfigRef, rewrite_to_primary};
pub use super::target::desired_primary;

/// Annotation carrying the revision a primary runs.
pub const REVISION_ANNOTATION: &str = "serin.dev/revision";
pub const PRIMARY_SUFFIX: &str = "-primary";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the target {0} has no spec")]
    NoSpec(String),
    #[error("the target {0} has a selector with matchExpressions; serin needs matchLabels only")]
    SelectorExpressions(String),
    #[error("the target {0} has an empty selector")]
    EmptySelector(String),
    #[error(
        "the target {0} has spec.updateStrategy.type {1}; serin needs RollingUpdate: with {1} a promoted template never reaches the primary's running pods"
    )]
    UpdateStrategy(String, String),
    #[error(
        "the target {0} has spec.persistentVolumeClaimRetentionPolicy.whenScaled Delete; serin scales it to zero between rollouts, which would delete its PersistentVolumeClaims: set Retain"
    )]
    ClaimsDeletedWhenScaled(String),
    #[error(
        "the target {0} keeps its primary as one of its own revisions; serin makes no -primary copy of it"
    )]
    NoCopy(String),
}

/// What the primary copies from the target, beyond the pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryInputs<'a, W> {
    pub target: &'a W,
    /// The revision being promoted (written to the primary and its pods).
    pub revision: &'a str,
    /// Configs copied to `-primary`; references to them are rewritten.
    pub tracked: &'a BTreeSet<ConfigRef>,
    /// Replicas to set; None when an autoscaler owns the count.
    pub replicas: Option<i32>,
    pub owner: Option<OwnerReference>,
    /// The live primary's selector, kept: a selector cannot change once created, and a
    /// primary another controller made (Flagger's select on one label) keeps its own.
    pub live_selector: Option<&'a LabelSelector>,
}

/// The parts of a primary every kind shares.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryParts {
    pub metadata: ObjectMeta,
    pub selector: LabelSelector,
    pub template: PodTemplateSpec,
}

/// The shared parts of the primary of a target with `metadata`, `selector` and `template`.
pub fn primary_parts<W>(
    inputs: &PrimaryInputs<'_, W>,
    metadata: &ObjectMeta,
    selector: &LabelSelector,
    template: &PodTemplateSpec,
) -> Result<PrimaryParts, TargetError> {
    let name = metadata.name.clone().unwrap_or_default();
    let primary_selector = match inputs.live_selector {
        Some(live) => live.clone(),
        None => primary_selector(&name, selector)?,
    };
    let mut template = template.clone();
    let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    template_meta.labels = Some(primary_labels(
        template_meta.labels.take().unwrap_or_default(),
        selector,
    ));
    template_meta
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_ANNOTATION.into(), inputs.revision.into());
    if let Some(pod) = template.spec.as_mut() {
        rewrite_to_primary(pod, inputs.tracked);
    }
    Ok(PrimaryParts {
        metadata: ObjectMeta {
            name: Some(format!("{name}{PRIMARY_SUFFIX}")),
            namespace: metadata.namespace.clone(),
            labels: Some(primary_labels(
                metadata.labels.clone().unwrap_or_default(),
                selector,
            )),
            annotations: Some(BTreeMap::from([(
                REVISION_ANNOTATION.to_string(),
                inputs.revision.to_string(),
            )])),
            owner_references: inputs.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        selector: primary_selector,
        template,
    })
}

/// Replicas the primary gets: the target's own count when it has one (initialization, or a
/// count changed in git), else what the primary has. With an autoscaler the primary's live
/// count is kept, so re-applying the primary never fights the HPA.
pub fn primary_replicas(target: Option<i32>, live: Option<i32>, autoscaled: bool) -> i32 {
    let target = target.unwrap_or(1);
    match (autoscaled, live) {
        (true, Some(live)) => live,
        _ if target > 0 => target,
        (_, Some(live)) => live,
        _ => 1,
    }
}

/// The target's selector with every value suffixed: `app: podinfo` -> `app: podinfo-primary`.
pub fn primary_selector(
    name: &str,
    selector: &LabelSelector,
) -> Result<LabelSelector, TargetError> {
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(TargetError::SelectorExpressions(name.into()));
    }
    let labels = selector.match_labels.clone().unwrap_or_default();
    if labels.is_empty() {
        return Err(TargetError::EmptySelector(name.into()));
    }
    Ok(LabelSelector {
        match_labels: Some(labels.into_iter().map(|(k, v)| (k, suffixed(&v))).collect()),
        match_expressions: None,
    })
}

/// `labels` with the selector's keys suffixed, other labels kept.
fn primary_labels(
    mut labels: BTreeMap<String, String>,
    selector: &LabelSelector,
) -> BTreeMap<String, String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        labels.insert(key.clone(), suffixed(value));
    }
    labels
}

fn suffixed(value: &str) -> String {
    format!("{value}{PRIMARY_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::configs::{ConfigKind, referenced};
    use k8s_openapi::api::apps::v1::Deployment;

    fn target() -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo", "team": "a"}},
            "spec": {
                "replicas": 3,
                "minReadySeconds": 5,
                "revisionHistoryLimit": 4,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%"}},
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {
                    "metadata": {"labels": {"app": "podinfo", "version": "6"}},
                    "spec": {
                        "containers": [{"name": "app", "image": "podinfo:6.0.0",
                            "envFrom": [{"configMapRef": {"name": "podinfo-config"}}]}],
                        "volumes": [{"name": "s", "secret": {"secretName": "podinfo-secret"}}],
                    },
                },
            },
        }))
        .unwrap()
    }

    fn primary(replicas: Option<i32>) -> Deployment {
        let target = target();
        let tracked = BTreeSet::from([ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "podinfo-config".into(),
        }]);
        desired_primary(&PrimaryInputs {
            target: &target,
            revision: "abc123",
            tracked: &tracked,
            replicas,
            owner: None,
            live_selector: None,
        })
        .unwrap()
    }

    #[test]
    fn a_live_primarys_selector_is_kept_and_its_pods_still_match_it() {
        // Flagger's primary of a two-label selector selects on `app` only; a selector cannot
        // change, so the promoted primary keeps it, and its pods carry every label of it.
        let mut target = target();
        let spec = target.spec.as_mut().unwrap();
        spec.selector
            .match_labels
            .as_mut()
            .unwrap()
            .insert("release".into(), "blue".into());
        let labels = spec
            .template
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap();
        labels.insert("release".into(), "blue".into());
        let flaggers: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "podinfo-primary"}
        }))
        .unwrap();
        let tracked = BTreeSet::new();
        let primary = desired_primary(&PrimaryInputs {
            target: &target,
            revision: "r",
            tracked: &tracked,
            replicas: Some(2),
            owner: None,
            live_selector: Some(&flaggers),
        })
        .unwrap();
        let spec = primary.spec.unwrap();
        assert_eq!(spec.selector, flaggers);
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        for (key, value) in flaggers.match_labels.unwrap() {
            assert_eq!(labels[&key], value);
        }
    }

    #[test]
    fn the_primary_selects_only_primary_pods() {
        let primary = primary(Some(3));
        assert_eq!(primary.metadata.name.as_deref(), Some("podinfo-primary"));
        let spec = primary.spec.unwrap();
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector["app"], "podinfo-primary");
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["app"], "podinfo-primary");
        assert_eq!(labels["version"], "6", "other pod labels are kept");
        assert_eq!(primary.metadata.labels.unwrap()["team"], "a");
    }

    #[test]
    fn the_primary_copies_the_rollout_settings_and_carries_the_revision() {
        let primary = primary(Some(3));
        assert_eq!(
            primary.metadata.annotations.unwrap()[REVISION_ANNOTATION],
            "abc123"
        );
        let spec = primary.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.min_ready_seconds, Some(5));
        assert_eq!(spec.revision_history_limit, Some(4));
        assert!(spec.strategy.unwrap().rolling_update.is_some());
        let pod_annotations = spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(pod_annotations[REVISION_ANNOTATION], "abc123");
    }

    #[test]
    fn tracked_configs_are_referenced_through_their_primary_copies() {
        let primary = primary(Some(3));
        let refs: Vec<String> = referenced(primary.spec.unwrap().template.spec.as_ref().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            refs,
            ["configmap/podinfo-config-primary", "secret/podinfo-secret"]
        );
    }

    #[test]
    fn the_primary_takes_the_targets_count_unless_an_autoscaler_owns_it() {
        assert_eq!(primary_replicas(Some(3), None, false), 3, "initialization");
        assert_eq!(
            primary_replicas(Some(0), Some(4), false),
            4,
            "target at zero"
        );
        assert_eq!(
            primary_replicas(Some(5), Some(4), false),
            5,
            "count changed in git"
        );
        assert_eq!(
            primary_replicas(Some(5), Some(4), true),
            4,
            "the HPA's count"
        );
        assert_eq!(primary_replicas(Some(0), None, false), 1);
    }

    #[test]
    fn with_an_autoscaler_the_primary_leaves_replicas_alone() {
        assert_eq!(primary(None).spec.unwrap().replicas, None);
    }

    #[test]
    fn a_selector_with_expressions_is_refused_with_the_reason() {
        let mut target = target();
        let spec = target.spec.as_mut().unwrap();
        spec.selector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "app", "operator": "In", "values": ["podinfo"]}]
        }))
        .unwrap();
        let tracked = BTreeSet::new();
        let error = desired_primary(&PrimaryInputs {
            target: &target,
            revision: "r",
            tracked: &tracked,
            replicas: None,
            owner: None,
            live_selector: None,
        })
        .unwrap_err();
        assert!(error.to_string().contains("matchExpressions"));
    }
}
