//! DaemonSet targets: one pod per eligible node, so a DaemonSet has no replica count to set to
//! zero. Between rollouts serin keeps the user's DaemonSet (the canary) on no node with a node
//! selector no node carries, [`IDLE_LABEL`]`: "true"` (Flagger does the same with its own
//! label); starting a rollout takes the selector out again, and the DaemonSet controller puts a
//! canary pod on every node beside the primary's. Server-side apply makes this one owned map
//! key: the user's own node selector, and GitOps tools re-applying the DaemonSet, never touch
//! it, and releasing it (an apply without it) removes it. The key is not part of a release:
//! it is taken out of the template the revision is computed from and the primary copies.
//!
//! Why a node selector rather than, say, a node affinity or a taint: it is one map key in the
//! pod template that merges with whatever the user set, it needs no permission on Nodes, and
//! the DaemonSet controller evaluates it itself (no scheduler involved), so the canary's pods
//! go as soon as it is set. A node labelled `serin.dev/idle-canary=true` by hand would get the
//! canary's pods between rollouts; nothing else does.
//!
//! The primary is a `-primary` DaemonSet with the target's update strategy; readiness comes
//! from the DaemonSet status (desired, updated and available pod counts, observedGeneration);
//! its past pod templates live in ControllerRevisions (what `kubectl rollout undo` reads).

use std::borrow::Cow;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::engine::WorkloadState;

use super::primary::{PrimaryInputs, TargetError, primary_parts};
use super::target::{Workload, stamped_revision};

/// The node selector key that keeps an idle canary DaemonSet on no node.
pub const IDLE_LABEL: &str = "serin.dev/idle-canary";
/// Flagger's key for the same (`flagger.app/scale-to-zero`): a DaemonSet taken over from
/// Flagger is idle under it, and starting a rollout removes it (`unpark_patch`).
pub const FLAGGER_IDLE_LABEL: &str = "flagger.app/scale-to-zero";

impl Workload for DaemonSet {
    type History = ControllerRevision;

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn release_template(&self) -> Option<Cow<'_, PodTemplateSpec>> {
        let template = self.pod_template()?;
        if !is_idle(self) {
            return Some(Cow::Borrowed(template));
        }
        Some(Cow::Owned(without_idle_selector(template.clone())))
    }

    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }

    fn replicas(&self) -> Option<i32> {
        if is_idle(self) {
            return Some(0);
        }
        let desired = self
            .status
            .as_ref()
            .map_or(0, |s| s.desired_number_scheduled);
        Some(desired.max(1))
    }

    fn state(&self) -> WorkloadState {
        let status = self.status.clone().unwrap_or_default();
        let current = match (self.metadata.generation, status.observed_generation) {
            (Some(generation), Some(observed)) => observed >= generation,
            (None, _) => true,
            (Some(_), None) => false,
        };
        WorkloadState {
            // Idle means no pod is wanted, whatever a status not yet caught up still counts.
            replicas: if is_idle(self) {
                0
            } else {
                status.desired_number_scheduled
            },
            updated: status.updated_number_scheduled.unwrap_or(0),
            ready: status.number_ready,
            available: status.number_available.unwrap_or(0),
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
        let template = target.release_template().ok_or(TargetError::NoSpec(name))?;
        let parts = primary_parts(inputs, &target.metadata, &spec.selector, &template)?;
        Ok(DaemonSet {
            metadata: parts.metadata,
            spec: Some(DaemonSetSpec {
                selector: parts.selector,
                template: parts.template,
                update_strategy: spec.update_strategy.clone(),
                min_ready_seconds: spec.min_ready_seconds,
                revision_history_limit: spec.revision_history_limit,
            }),
            status: None,
        })
    }

    fn set_template(&mut self, template: PodTemplateSpec) {
        if let Some(spec) = self.spec.as_mut() {
            spec.template = template;
        }
    }

    /// At zero the idle node selector, owned by serin; above zero an apply owning nothing,
    /// which removes the key serin owned and leaves every other node selector key alone.
    fn scale_body(name: &str, namespace: &str, replicas: i32) -> serde_json::Value {
        let mut body = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": namespace},
        });
        if replicas == 0 {
            body["spec"] =
                serde_json::json!({"template": {"spec": {"nodeSelector": {IDLE_LABEL: "true"}}}});
        }
        body
    }

    /// Flagger's idle key belongs to Flagger's field manager, which serin's apply cannot take
    /// away: a merge patch removes it.
    fn unpark_patch(&self) -> Option<serde_json::Value> {
        let parked = self
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|pod| pod.node_selector.as_ref())
            .is_some_and(|selector| selector.contains_key(FLAGGER_IDLE_LABEL));
        parked.then(|| {
            serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {FLAGGER_IDLE_LABEL: null}}}}})
        })
    }

    fn history_template(history: &ControllerRevision) -> Option<PodTemplateSpec> {
        template_in_revision(history)
    }
}

/// The pod template a DaemonSet's or StatefulSet's ControllerRevision keeps, as a patch:
/// `{"spec": {"template": {..., "$patch": "replace"}}}`.
pub(super) fn template_in_revision(history: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = history
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// Whether serin keeps the DaemonSet on no node.
pub fn is_idle(daemon_set: &DaemonSet) -> bool {
    daemon_set
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|pod| pod.node_selector.as_ref())
        .is_some_and(|selector| {
            selector.contains_key(IDLE_LABEL) || selector.contains_key(FLAGGER_IDLE_LABEL)
        })
}

/// The template without the idle key; a node selector left empty is dropped, as the API server
/// drops an empty one, so an idle and a schedulable DaemonSet have the same revision.
fn without_idle_selector(mut template: PodTemplateSpec) -> PodTemplateSpec {
    if let Some(pod) = template.spec.as_mut()
        && let Some(selector) = pod.node_selector.as_mut()
    {
        selector.remove(IDLE_LABEL);
        selector.remove(FLAGGER_IDLE_LABEL);
        if selector.is_empty() {
            pod.node_selector = None;
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::workload::primary::REVISION_ANNOTATION;
    use crate::workload::target::{desired_primary, observe, template_of_revision};

    fn daemon_set(node_selector: serde_json::Value, status: serde_json::Value) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "agent", "namespace": "test", "generation": 4, "labels": {"app": "agent"}},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "minReadySeconds": 3,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "agent:1.0"}], "nodeSelector": node_selector},
                },
            },
            "status": status,
        }))
        .unwrap()
    }

    fn status(observed: i64, desired: i32, updated: i32, ready: i32) -> serde_json::Value {
        serde_json::json!({
            "observedGeneration": observed, "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired, "numberMisscheduled": 0,
            "updatedNumberScheduled": updated, "numberReady": ready, "numberAvailable": ready,
        })
    }

    fn idle(user: serde_json::Value) -> serde_json::Value {
        let mut selector = user;
        selector[IDLE_LABEL] = serde_json::json!("true");
        selector
    }

    #[test]
    fn readiness_counts_the_pods_on_every_eligible_node() {
        let ready = daemon_set(serde_json::Value::Null, status(4, 3, 3, 3)).state();
        assert_eq!((ready.replicas, ready.updated, ready.available), (3, 3, 3));
        assert!(ready.is_ready(100));
        let rolling = daemon_set(serde_json::Value::Null, status(4, 3, 1, 3)).state();
        assert!(!rolling.is_ready(100));
        assert!(
            rolling
                .progress()
                .contains("1/3 updated to the latest template"),
            "{}",
            rolling.progress()
        );
        let behind = daemon_set(serde_json::Value::Null, status(3, 3, 3, 3)).state();
        assert!(!behind.is_ready(100));
        assert!(behind.progress().contains("observedGeneration behind"));
        let unavailable = daemon_set(serde_json::Value::Null, status(4, 3, 3, 1)).state();
        assert!(!unavailable.is_ready(100));
        assert!(unavailable.progress().starts_with("1/3 ready"));
    }

    #[test]
    fn a_daemon_set_that_no_node_may_run_is_not_ready_and_says_so() {
        let nowhere = daemon_set(serde_json::Value::Null, status(4, 0, 0, 0)).state();
        assert!(!nowhere.is_ready(0));
        assert!(
            nowhere.progress().contains("no pod is wanted"),
            "{}",
            nowhere.progress()
        );
    }

    #[test]
    fn idle_means_zero_replicas_and_is_not_a_new_release() {
        let user = serde_json::json!({"disk": "ssd"});
        let running = daemon_set(user.clone(), status(4, 3, 3, 3));
        let parked = daemon_set(idle(user.clone()), status(4, 3, 3, 3));
        assert_eq!(running.replicas(), Some(3));
        assert_eq!(parked.replicas(), Some(0));
        assert_eq!(parked.state().replicas, 0);
        assert_eq!(
            observe(&running, BTreeMap::new()).unwrap().revision,
            observe(&parked, BTreeMap::new()).unwrap().revision
        );
        // Without a node selector of the user's own, idling adds and removes the whole map.
        let bare = daemon_set(serde_json::Value::Null, status(4, 3, 3, 3));
        let bare_parked = daemon_set(idle(serde_json::json!({})), status(4, 3, 3, 3));
        assert_eq!(
            observe(&bare, BTreeMap::new()).unwrap().revision,
            observe(&bare_parked, BTreeMap::new()).unwrap().revision
        );
        assert_ne!(
            observe(&bare, BTreeMap::new()).unwrap().revision,
            observe(&running, BTreeMap::new()).unwrap().revision,
            "the user's own node selector is part of the release"
        );
    }

    #[test]
    fn a_daemon_set_flagger_parked_is_idle_no_release_and_unparked_by_a_merge_patch() {
        let user = serde_json::json!({"disk": "ssd"});
        let running = daemon_set(user.clone(), status(4, 3, 3, 3));
        let mut flaggers = user.clone();
        flaggers[FLAGGER_IDLE_LABEL] = serde_json::json!("true");
        let parked = daemon_set(flaggers, status(4, 3, 3, 3));
        assert_eq!(parked.replicas(), Some(0));
        assert_eq!(
            observe(&running, BTreeMap::new()).unwrap().revision,
            observe(&parked, BTreeMap::new()).unwrap().revision
        );
        assert_eq!(running.unpark_patch(), None);
        assert_eq!(
            parked.unpark_patch(),
            Some(
                serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {FLAGGER_IDLE_LABEL: null}}}}})
            )
        );
        // Flagger's primary runs the parked target's release: taken over as settled.
        let mut primary = desired_primary(&PrimaryInputs {
            target: &running,
            revision: "r1",
            tracked: &BTreeSet::new(),
            replicas: None,
            owner: None,
            live_selector: None,
        })
        .unwrap();
        primary.metadata.annotations = None;
        let meta = primary
            .spec
            .as_mut()
            .unwrap()
            .template
            .metadata
            .as_mut()
            .unwrap();
        meta.annotations
            .as_mut()
            .unwrap()
            .remove(REVISION_ANNOTATION);
        assert_eq!(
            crate::workload::foreign::compare(&primary, &parked),
            Some(crate::engine::ForeignPrimary::RunsTarget)
        );
    }

    #[test]
    fn a_new_daemon_set_without_status_counts_as_one_node() {
        let fresh = daemon_set(serde_json::Value::Null, serde_json::Value::Null);
        assert_eq!(fresh.replicas(), Some(1));
        assert!(!fresh.state().current);
    }

    #[test]
    fn scaling_to_zero_owns_only_the_idle_key_and_scaling_up_releases_it() {
        let down = DaemonSet::scale_body("agent", "test", 0);
        assert_eq!(
            down["spec"]["template"]["spec"]["nodeSelector"],
            serde_json::json!({IDLE_LABEL: "true"})
        );
        assert_eq!(down["kind"], "DaemonSet");
        let up = DaemonSet::scale_body("agent", "test", 3);
        assert!(up.get("spec").is_none(), "{up}");
        assert_eq!(up["metadata"]["name"], "agent");
    }

    fn primary_of(target: &DaemonSet) -> Result<DaemonSet, TargetError> {
        desired_primary(&PrimaryInputs {
            target,
            revision: "r1",
            tracked: &BTreeSet::new(),
            replicas: Some(0),
            owner: None,
            live_selector: None,
        })
    }

    #[test]
    fn the_primary_runs_on_every_node_with_the_targets_rollout_settings() {
        let target = daemon_set(idle(serde_json::json!({"disk": "ssd"})), status(4, 0, 0, 0));
        let primary = primary_of(&target).unwrap();
        assert_eq!(primary.metadata.name.as_deref(), Some("agent-primary"));
        let spec = primary.spec.unwrap();
        assert_eq!(spec.selector.match_labels.unwrap()["app"], "agent-primary");
        let pod = spec.template.spec.unwrap();
        assert_eq!(
            pod.node_selector,
            Some(BTreeMap::from([("disk".to_string(), "ssd".to_string())])),
            "the user's node selector stays, the idle key does not"
        );
        assert_eq!(spec.min_ready_seconds, Some(3));
        assert_eq!(
            spec.update_strategy.unwrap().type_.as_deref(),
            Some("RollingUpdate")
        );
        let annotations = spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[REVISION_ANNOTATION], "r1");
    }

    #[test]
    fn an_on_delete_target_is_refused_naming_the_field() {
        let mut target = daemon_set(serde_json::Value::Null, status(4, 3, 3, 3));
        target.spec.as_mut().unwrap().update_strategy =
            serde_json::from_value(serde_json::json!({"type": "OnDelete"})).unwrap();
        let error = primary_of(&target).unwrap_err().to_string();
        assert!(
            error.contains("spec.updateStrategy.type OnDelete"),
            "{error}"
        );
    }

    #[test]
    fn a_revert_finds_the_template_of_the_revision_in_the_controller_revisions() {
        let revision = |stamp: &str, image: &str, number: i64| -> ControllerRevision {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("agent-primary-{number}"), "labels": {"app": "agent-primary"}},
                "revision": number,
                "data": {"spec": {"template": {
                    "$patch": "replace",
                    "metadata": {"labels": {"app": "agent-primary"}, "annotations": {REVISION_ANNOTATION: stamp}},
                    "spec": {"containers": [{"name": "agent", "image": image}]},
                }}},
            }))
            .unwrap()
        };
        let history = [
            revision("r1", "agent:1.0", 1),
            revision("r2", "agent:2.0", 2),
        ];
        let template = template_of_revision::<DaemonSet>(&history, "r1").unwrap();
        assert_eq!(
            template.spec.unwrap().containers[0].image.as_deref(),
            Some("agent:1.0")
        );
        assert!(template_of_revision::<DaemonSet>(&history, "r3").is_none());
    }
}
