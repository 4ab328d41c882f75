//! StatefulSet targets (design in docs/targets.md): the primary is a `-primary` StatefulSet
//! with the target's pod template and volume claim templates, so each of its pods gets a claim
//! of its own (`<claim>-<name>-primary-<ordinal>`) that it keeps across promotions; the user's
//! StatefulSet is the canary, scaled to zero between rollouts (its claims stay bound). serin
//! never deletes a claim: the primary's retention policy is `Retain` whatever the target's,
//! and a target whose claims go when it is scaled down is refused. The primary's governing
//! headless Service is `<serviceName>-primary`, built here as the primary's companion.
//! Readiness comes from the StatefulSet status; past pod templates live in ControllerRevisions.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::engine::WorkloadState;

use super::daemonset::template_in_revision;
use super::primary::{PRIMARY_SUFFIX, PrimaryInputs, TargetError, primary_parts};
use super::target::{Workload, stamped_revision};

const RETAIN: &str = "Retain";

/// The primary never deletes a claim, whatever the target's policy says. Set only where the
/// target has a policy: an API server without the field (before 1.23) refuses an apply
/// naming it, and one with it defaults to `Retain` for both.
fn retain() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some(RETAIN.into()),
        when_scaled: Some(RETAIN.into()),
    }
}

impl Workload for StatefulSet {
    type History = ControllerRevision;

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref()?.replicas
    }

    fn state(&self) -> WorkloadState {
        let status = self.status.clone().unwrap_or_default();
        let current = match (self.metadata.generation, status.observed_generation) {
            (Some(generation), Some(observed)) => observed >= generation,
            (None, _) => true,
            (Some(_), None) => false,
        };
        let ready = status.ready_replicas.unwrap_or(0);
        WorkloadState {
            replicas: self.replicas().unwrap_or(1),
            updated: status.updated_replicas.unwrap_or(0),
            ready,
            // availableReplicas is reported from Kubernetes 1.22; before, ready is available.
            available: status.available_replicas.unwrap_or(ready),
            current,
            revision: stamped_revision(self),
        }
    }

    fn primary(inputs: &PrimaryInputs<'_, Self>) -> Result<Self, TargetError> {
        let target = inputs.target;
        let name = target.metadata.name.clone().unwrap_or_default();
        let spec = target
            .spec
            .as_ref()
            .ok_or(TargetError::NoSpec(name.clone()))?;
        let strategy = spec.update_strategy.as_ref().and_then(|s| s.type_.clone());
        if let Some(strategy) = strategy.filter(|s| s != "RollingUpdate") {
            return Err(TargetError::UpdateStrategy(name, strategy));
        }
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        if policy.and_then(|p| p.when_scaled.as_deref()) == Some("Delete") {
            return Err(TargetError::ClaimsDeletedWhenScaled(name));
        }
        let parts = primary_parts(inputs, &target.metadata, &spec.selector, &spec.template)?;
        Ok(StatefulSet {
            metadata: parts.metadata,
            spec: Some(StatefulSetSpec {
                replicas: inputs.replicas,
                selector: parts.selector,
                template: parts.template,
                service_name: spec
                    .service_name
                    .as_ref()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("{s}{PRIMARY_SUFFIX}")),
                volume_claim_templates: spec.volume_claim_templates.clone(),
                persistent_volume_claim_retention_policy: policy.map(|_| retain()),
                pod_management_policy: spec.pod_management_policy.clone(),
                update_strategy: spec.update_strategy.clone(),
                min_ready_seconds: spec.min_ready_seconds,
                revision_history_limit: spec.revision_history_limit,
                ordinals: spec.ordinals.clone(),
            }),
            status: None,
        })
    }

    fn set_template(&mut self, template: PodTemplateSpec) {
        if let Some(spec) = self.spec.as_mut() {
            spec.template = template;
        }
    }

    fn scale_body(name: &str, namespace: &str, replicas: i32) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        })
    }

    fn history_template(history: &ControllerRevision) -> Option<PodTemplateSpec> {
        template_in_revision(history)
    }

    /// The headless Service governing the primary's pods (their DNS names), selecting them
    /// only, owned as the primary is.
    fn companions(&self) -> Vec<Service> {
        let Some(spec) = self.spec.as_ref() else {
            return Vec::new();
        };
        let Some(name) = spec.service_name.clone() else {
            return Vec::new();
        };
        let selector: BTreeMap<String, String> =
            spec.selector.match_labels.clone().unwrap_or_default();
        vec![Service {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: self.metadata.namespace.clone(),
                labels: self.metadata.labels.clone(),
                owner_references: self.metadata.owner_references.clone(),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                selector: Some(selector),
                // Peers find each other before they are ready, as a StatefulSet's usually do.
                publish_not_ready_addresses: Some(true),
                ..ServiceSpec::default()
            }),
            status: None,
        }]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::workload::primary::REVISION_ANNOTATION;
    use crate::workload::target::{desired_primary, template_of_revision};

    fn stateful_set(extra: serde_json::Value) -> StatefulSet {
        let mut value = serde_json::json!({
            "metadata": {"name": "db", "namespace": "test", "generation": 2, "labels": {"app": "db"}},
            "spec": {
                "replicas": 3,
                "serviceName": "db-headless",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "db:1"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            },
            "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2},
        });
        if let Some(spec) = extra.as_object() {
            value["spec"].as_object_mut().unwrap().extend(spec.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    fn primary_of(target: &StatefulSet) -> Result<StatefulSet, TargetError> {
        desired_primary(&PrimaryInputs {
            target,
            revision: "r1",
            tracked: &BTreeSet::new(),
            replicas: Some(3),
            owner: None,
            live_selector: None,
        })
    }

    #[test]
    fn readiness_falls_back_to_ready_pods_where_availability_is_not_reported() {
        let state = stateful_set(serde_json::json!({})).state();
        assert_eq!(
            (state.replicas, state.updated, state.available),
            (3, 2, 3),
            "Kubernetes before 1.22 reports no availableReplicas"
        );
        assert!(!state.is_ready(100), "one pod is not updated yet");
    }

    #[test]
    fn the_primary_has_its_own_claims_its_own_headless_service_and_never_deletes_claims() {
        let target = stateful_set(serde_json::json!({}));
        let primary = primary_of(&target).unwrap();
        assert_eq!(primary.metadata.name.as_deref(), Some("db-primary"));
        let spec = primary.spec.as_ref().unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("db-headless-primary"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(
            spec.volume_claim_templates,
            target.spec.as_ref().unwrap().volume_claim_templates,
            "the claims are named per StatefulSet: data-db-primary-N"
        );
        assert_eq!(
            spec.persistent_volume_claim_retention_policy, None,
            "the API server's default, Retain, and no field an older server refuses"
        );
        let deleting = stateful_set(serde_json::json!({
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain", "whenDeleted": "Delete"},
        }));
        let policy = primary_of(&deleting)
            .unwrap()
            .spec
            .unwrap()
            .persistent_volume_claim_retention_policy
            .unwrap();
        assert_eq!(
            (
                policy.when_deleted.as_deref(),
                policy.when_scaled.as_deref()
            ),
            (Some("Retain"), Some("Retain")),
            "deleting the Canary (and so the primary) never deletes the primary's claims"
        );
        let services = primary.companions();
        assert_eq!(services.len(), 1);
        let service = services[0].spec.clone().unwrap();
        assert_eq!(service.cluster_ip.as_deref(), Some("None"));
        assert_eq!(
            service.selector.unwrap().get("app").map(String::as_str),
            Some("db-primary")
        );
    }

    #[test]
    fn a_target_whose_claims_go_when_scaled_down_or_that_updates_on_delete_is_refused() {
        let deleting = stateful_set(serde_json::json!({
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
        }));
        assert_eq!(
            primary_of(&deleting).unwrap_err(),
            TargetError::ClaimsDeletedWhenScaled("db".into())
        );
        let on_delete = stateful_set(serde_json::json!({"updateStrategy": {"type": "OnDelete"}}));
        assert!(matches!(
            primary_of(&on_delete).unwrap_err(),
            TargetError::UpdateStrategy(_, _)
        ));
    }

    #[test]
    fn a_revert_finds_the_template_in_the_controller_revisions() {
        let revision: ControllerRevision = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db-primary-5d8f"},
            "revision": 1,
            "data": {"spec": {"template": {
                "$patch": "replace",
                "metadata": {"labels": {"app": "db-primary"}, "annotations": {REVISION_ANNOTATION: "r1"}},
                "spec": {"containers": [{"name": "db", "image": "db:1"}]},
            }}},
        }))
        .unwrap();
        let template = template_of_revision::<StatefulSet>(&[revision], "r1").unwrap();
        assert_eq!(
            template.spec.unwrap().containers[0].image.as_deref(),
            Some("db:1")
        );
    }
}
