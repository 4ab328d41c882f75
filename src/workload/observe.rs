//! Reading the engine's observations off Kubernetes objects: a Deployment's rollout state, the
//! target's revision (pod template plus tracked config checksums), and a manual request from the
//! Canary's annotations. Pure: the controller fetches, these functions translate.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;

use crate::engine::{ManualRequest, Target, WorkloadState};

use super::primary::REVISION_ANNOTATION;
use super::revision;

/// Annotation carrying a manual request: promote, abort, retry, pause, resume.
pub const REQUEST_ANNOTATION: &str = "serin.dev/request";
/// Annotation making a request unique, so each is acted on once.
pub const REQUEST_ID_ANNOTATION: &str = "serin.dev/request-id";

/// A Deployment's rollout state as its status reports it. A status older than the spec
/// (observedGeneration behind) is not current: the engine never trusts it for readiness.
pub fn workload_state(deployment: &Deployment) -> WorkloadState {
    let spec_replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let current = match (deployment.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (None, _) => true,
        (Some(_), None) => false,
    };
    WorkloadState {
        replicas: spec_replicas,
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        current,
        revision: deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION).cloned()),
    }
}

/// The target as the engine sees it. `config_checksums` holds the checksum of every tracked
/// config (`configmap/NAME` keys); they are part of the revision, so a config change alone is a
/// new release.
pub fn target(deployment: &Deployment, config_checksums: BTreeMap<String, String>) -> Target {
    let template = deployment.spec.as_ref().map(|s| &s.template);
    Target {
        revision: revision::of(&template, &config_checksums),
        configs: config_checksums,
        state: workload_state(deployment),
    }
}

/// The manual request on a Canary, if its annotations carry one.
pub fn request(annotations: &BTreeMap<String, String>) -> Option<ManualRequest> {
    let action = annotations.get(REQUEST_ANNOTATION)?;
    Some(ManualRequest::parse(
        action,
        annotations.get(REQUEST_ID_ANNOTATION).map(String::as_str),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::input::RequestAction;

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
        let state = workload_state(&deployment(2, 2, "podinfo:6.0.0"));
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
        assert!(!workload_state(&deployment(3, 2, "podinfo:6.0.0")).current);
    }

    #[test]
    fn the_revision_follows_the_pod_template_and_the_configs() {
        let configs = BTreeMap::from([("configmap/podinfo".to_string(), "aa".to_string())]);
        let base = target(&deployment(1, 1, "podinfo:6.0.0"), configs.clone()).revision;
        assert_eq!(
            base,
            target(&deployment(7, 7, "podinfo:6.0.0"), configs.clone()).revision,
            "status and generation do not matter"
        );
        assert_ne!(
            base,
            target(&deployment(1, 1, "podinfo:6.0.1"), configs).revision
        );
        let changed = BTreeMap::from([("configmap/podinfo".to_string(), "bb".to_string())]);
        assert_ne!(
            base,
            target(&deployment(1, 1, "podinfo:6.0.0"), changed).revision
        );
    }

    #[test]
    fn reads_manual_requests_with_and_without_an_id() {
        let with_id = BTreeMap::from([
            (REQUEST_ANNOTATION.to_string(), "promote".to_string()),
            (REQUEST_ID_ANNOTATION.to_string(), "1700000000".to_string()),
        ]);
        let request = request(&with_id).unwrap();
        assert_eq!(request.action, Ok(RequestAction::Promote));
        assert_eq!(request.id, "1700000000");
        let bare = BTreeMap::from([(REQUEST_ANNOTATION.to_string(), "pause".to_string())]);
        assert_eq!(super::request(&bare).unwrap().id, "pause");
        assert!(super::request(&BTreeMap::new()).is_none());
    }
}
