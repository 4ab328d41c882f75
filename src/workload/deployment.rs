//! Deployment targets: the first implementation of the workload seam. The primary is a
//! Deployment with the target's rollout settings; readiness comes from the Deployment status;
//! past pod templates live in its ReplicaSets (what `kubectl rollout undo` reads).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::engine::WorkloadState;

use super::primary::{PrimaryInputs, TargetError, primary_parts};
use super::target::{Workload, stamped_revision};

impl Workload for Deployment {
    type History = ReplicaSet;

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
        WorkloadState {
            replicas: self.replicas().unwrap_or(1),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current,
            revision: stamped_revision(self),
        }
    }

    fn primary(inputs: &PrimaryInputs<'_, Self>) -> Result<Self, TargetError> {
        let target = inputs.target;
        let name = target.metadata.name.clone().unwrap_or_default();
        let spec = target.spec.as_ref().ok_or(TargetError::NoSpec(name))?;
        let parts = primary_parts(inputs, &target.metadata, &spec.selector, &spec.template)?;
        Ok(Deployment {
            metadata: parts.metadata,
            spec: Some(DeploymentSpec {
                replicas: inputs.replicas,
                selector: parts.selector,
                template: parts.template,
                strategy: spec.strategy.clone(),
                min_ready_seconds: spec.min_ready_seconds,
                revision_history_limit: spec.revision_history_limit,
                progress_deadline_seconds: spec.progress_deadline_seconds,
                paused: None,
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
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        })
    }

    fn history_template(history: &ReplicaSet) -> Option<PodTemplateSpec> {
        let mut template = history.spec.as_ref()?.template.clone()?;
        if let Some(labels) = template.metadata.as_mut()?.labels.as_mut() {
            // Added by the Deployment controller to each ReplicaSet; not part of the template.
            labels.remove("pod-template-hash");
        }
        Some(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::primary::REVISION_ANNOTATION;
    use crate::workload::target::{observe, template_of_revision};
    use std::collections::BTreeMap;

    fn deployment(generation: i64, observed: i64, image: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "podinfo", "generation": generation, "annotations": {REVISION_ANNOTATION: "r1"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": [{"name": "app", "image": image}]}},
            },
            "status": {"observedGeneration": observed, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
        }))
        .unwrap()
    }

    #[test]
    fn reads_the_rollout_state_and_the_stamped_revision() {
        let state = deployment(2, 2, "podinfo:6.0.0").state();
        assert_eq!(
            (state.replicas, state.updated, state.ready, state.available),
            (3, 3, 2, 2)
        );
        assert_eq!(state.revision.as_deref(), Some("r1"));
        assert!(state.current);
        assert!(!state.is_ready(100));
        assert!(state.is_ready(60));
    }

    #[test]
    fn a_status_behind_the_spec_is_not_current() {
        assert!(!deployment(3, 2, "podinfo:6.0.0").state().current);
    }

    #[test]
    fn the_revision_follows_the_pod_template_and_the_configs() {
        let configs = BTreeMap::from([("configmap/podinfo".to_string(), "aa".to_string())]);
        let base = observe(&deployment(1, 1, "podinfo:6.0.0"), configs.clone())
            .unwrap()
            .revision;
        assert_eq!(
            base,
            observe(&deployment(7, 7, "podinfo:6.0.0"), configs.clone())
                .unwrap()
                .revision,
            "status and generation do not matter"
        );
        assert_ne!(
            base,
            observe(&deployment(1, 1, "podinfo:6.0.1"), configs)
                .unwrap()
                .revision
        );
        let changed = BTreeMap::from([("configmap/podinfo".to_string(), "bb".to_string())]);
        assert_ne!(
            base,
            observe(&deployment(1, 1, "podinfo:6.0.0"), changed)
                .unwrap()
                .revision
        );
    }

    #[test]
    fn the_revision_of_a_deployment_is_the_one_serin_has_always_computed() {
        // A different hash would restart every settled rollout after an upgrade of serin.
        let revision = observe(&deployment(1, 1, "podinfo:6.0.0"), BTreeMap::new())
            .unwrap()
            .revision;
        let template = deployment(1, 1, "podinfo:6.0.0").spec.map(|s| s.template);
        assert_eq!(
            revision,
            crate::workload::revision::of(&template.as_ref(), &BTreeMap::new())
        );
    }

    #[test]
    fn a_revert_finds_the_template_of_the_revision_in_the_replica_sets() {
        let replica_set = |revision: &str, image: &str| -> ReplicaSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("podinfo-primary-{revision}")},
                "spec": {
                    "selector": {"matchLabels": {"app": "podinfo-primary"}},
                    "template": {
                        "metadata": {
                            "labels": {"app": "podinfo-primary", "pod-template-hash": "5d8f"},
                            "annotations": {REVISION_ANNOTATION: revision},
                        },
                        "spec": {"containers": [{"name": "app", "image": image}]},
                    },
                },
            }))
            .unwrap()
        };
        let history = [
            replica_set("r1", "podinfo:6.0.0"),
            replica_set("r2", "podinfo:6.0.1"),
        ];
        let template = template_of_revision::<Deployment>(&history, "r1").unwrap();
        assert_eq!(
            template.spec.unwrap().containers[0].image.as_deref(),
            Some("podinfo:6.0.0")
        );
        let labels = template.metadata.unwrap().labels.unwrap();
        assert!(!labels.contains_key("pod-template-hash"));
        assert!(template_of_revision::<Deployment>(&history, "r3").is_none());
    }
}
