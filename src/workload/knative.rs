//! Knative Service targets (`serving.knative.dev/v1`): the workload seam's kind whose primary is
//! a revision ([`PrimaryPlace::Revision`]). Knative turns every change of the Service's
//! template into a new Revision and names the newest in `status.latestCreatedRevisionName`:
//! that revision is the canary, and its name is the revision the engine rolls out. The primary
//! is the revision serin promoted, recorded on the Service in the `serin.dev/primary-revision`
//! annotation (Flagger's `flagger.app/primary-revision` is read when serin's is absent, so a
//! Service Flagger managed keeps its primary). There is no `-primary` copy, nothing to scale
//! (Knative scales each revision by the traffic it gets) and no template to revert: the router
//! (`crate::routing::knative`) splits `spec.traffic` between the two revisions.
//!
//! Structure followed: Knative Serving's v1 Service API (knative.dev/serving v1.17), the fields
//! serin reads only.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::WorkloadState;

use super::primary::{PrimaryInputs, TargetError};
use super::target::{PrimaryPlace, Workload};

pub const GROUP: &str = "serving.knative.dev";
pub const VERSION: &str = "v1";
pub const API_VERSION: &str = "serving.knative.dev/v1";
/// The revision serin promoted: the primary.
pub const PRIMARY_REVISION: &str = "serin.dev/primary-revision";
/// Flagger's record of the same, read when serin has written none yet.
pub const FLAGGER_PRIMARY_REVISION: &str = "flagger.app/primary-revision";
/// The latest revision serin idled (rolled back or done with): Knative scales a revision
/// without traffic to zero, so this is what "the canary is scaled to zero" means here.
pub const IDLE_REVISION: &str = "serin.dev/idle-revision";

/// A Knative Service, with the parts serin reads; the rest of its spec is kept as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KnativeService {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KnativeStatus>,
}

/// What Knative's controller reports of the Service.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KnativeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    /// The traffic Knative routes now, revision by revision (only revisions that can serve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<StatusTraffic>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusTraffic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
}

impl Resource for KnativeService {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Service".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "services".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl KnativeService {
    fn status(&self) -> KnativeStatus {
        self.status.clone().unwrap_or_default()
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// The promoted revision: serin's record, else Flagger's.
    pub fn promoted_revision(&self) -> Option<&str> {
        promoted_revision(self.metadata.annotations.as_ref()?)
    }

    pub fn latest_revision(&self) -> Option<String> {
        self.status().latest_created_revision_name
    }
}

/// The promoted revision in a Service's annotations: serin's record, else Flagger's.
pub fn promoted_revision(annotations: &BTreeMap<String, String>) -> Option<&str> {
    annotations
        .get(PRIMARY_REVISION)
        .or_else(|| annotations.get(FLAGGER_PRIMARY_REVISION))
        .map(String::as_str)
        .filter(|name| !name.is_empty())
}

/// One revision as a workload of one pod's worth: Knative scales it, serin only needs to know
/// whether it can serve.
fn revision_state(replicas: i32, ready: bool, revision: Option<String>) -> WorkloadState {
    let ready = if ready { replicas } else { 0 };
    WorkloadState {
        replicas,
        updated: replicas,
        ready,
        available: ready,
        // The state names its revision, so it describes what it names even when Knative has
        // not caught up with the spec yet.
        current: true,
        revision,
    }
}

impl Workload for KnativeService {
    /// No history is read: a Knative Service keeps its revisions itself.
    type History = KnativeService;

    const PRIMARY: PrimaryPlace = PrimaryPlace::Revision;

    /// None: a Knative revision's template is Knative's, and its ConfigMaps and Secrets are
    /// read when a revision starts, so a config change alone makes no new revision to route
    /// to (as in Flagger, which tracks no configs for Knative).
    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        None
    }

    fn revision(&self, _configs: &BTreeMap<String, String>) -> Option<String> {
        self.latest_revision()
    }

    fn selector(&self) -> Option<&LabelSelector> {
        None
    }

    /// 1 while the latest revision is a canary (neither promoted nor idled by serin), else 0.
    fn replicas(&self) -> Option<i32> {
        let latest = self.latest_revision();
        let latest = latest.as_deref();
        let settled = latest.is_none()
            || latest == self.promoted_revision()
            || latest == self.annotation(IDLE_REVISION);
        Some(if settled { 0 } else { 1 })
    }

    /// The latest revision, the canary: ready once Knative reports it as the latest ready one.
    fn state(&self) -> WorkloadState {
        let status = self.status();
        let ready = status.latest_created_revision_name.is_some()
            && status.latest_created_revision_name == status.latest_ready_revision_name;
        revision_state(self.replicas().unwrap_or(0), ready, None)
    }

    /// The promoted revision: ready when it is the latest ready one or Knative routes to it
    /// (Knative lists in `status.traffic` only revisions that can serve).
    fn primary_state(&self) -> WorkloadState {
        let status = self.status();
        let promoted = self.promoted_revision().map(str::to_string);
        let ready = promoted.as_ref().is_some_and(|name| {
            status.latest_ready_revision_name.as_ref() == Some(name)
                || status
                    .traffic
                    .iter()
                    .any(|t| t.revision_name.as_ref() == Some(name))
        });
        revision_state(1, ready, promoted)
    }

    fn primary(inputs: &PrimaryInputs<'_, Self>) -> Result<Self, TargetError> {
        let name = inputs.target.metadata.name.clone().unwrap_or_default();
        Err(TargetError::NoCopy(name))
    }

    fn set_template(&mut self, _template: PodTemplateSpec) {}

    /// Unused: [`Workload::scale_patch`] always answers for a Knative Service.
    fn scale_body(name: &str, namespace: &str, _replicas: i32) -> serde_json::Value {
        json!({"apiVersion": API_VERSION, "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}})
    }

    fn promote_patch(revision: &str) -> Option<serde_json::Value> {
        Some(
            json!({"metadata": {"annotations": {PRIMARY_REVISION: revision, IDLE_REVISION: null}}}),
        )
    }

    fn scale_patch(&self, replicas: i32) -> Option<serde_json::Value> {
        let idle = match (replicas, self.latest_revision()) {
            (0, Some(latest)) => json!(latest),
            _ => serde_json::Value::Null,
        };
        Some(json!({"metadata": {"annotations": {IDLE_REVISION: idle}}}))
    }

    fn release_patch() -> Option<serde_json::Value> {
        Some(json!({"metadata": {"annotations": {PRIMARY_REVISION: null, IDLE_REVISION: null}}}))
    }

    fn history_template(_history: &KnativeService) -> Option<PodTemplateSpec> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::target::observe;

    fn service(annotations: serde_json::Value, status: serde_json::Value) -> KnativeService {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION, "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": "test", "annotations": annotations},
            "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.0"}]}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_latest_created_revision_is_the_revision_rolled_out() {
        let svc = service(
            json!({}),
            json!({"latestCreatedRevisionName": "podinfo-00002", "latestReadyRevisionName": "podinfo-00001"}),
        );
        let target = observe(&svc, BTreeMap::new()).unwrap();
        assert_eq!(target.revision, "podinfo-00002");
        assert!(!target.state.is_ready(100), "00002 is not ready yet");
        let unreconciled = service(json!({}), json!({}));
        assert!(observe(&unreconciled, BTreeMap::new()).is_none());
    }

    #[test]
    fn the_canary_runs_while_the_latest_revision_is_neither_promoted_nor_idled() {
        let status = json!({"latestCreatedRevisionName": "podinfo-00002",
            "latestReadyRevisionName": "podinfo-00002"});
        let canary = service(json!({PRIMARY_REVISION: "podinfo-00001"}), status.clone());
        assert_eq!(canary.replicas(), Some(1));
        assert!(canary.state().is_ready(100));
        let idled = service(
            json!({PRIMARY_REVISION: "podinfo-00001", IDLE_REVISION: "podinfo-00002"}),
            status.clone(),
        );
        assert_eq!(idled.replicas(), Some(0));
        let promoted = service(json!({PRIMARY_REVISION: "podinfo-00002"}), status);
        assert_eq!(promoted.replicas(), Some(0));
    }

    #[test]
    fn the_primary_is_the_promoted_revision_serins_record_before_flaggers() {
        let status = json!({"latestCreatedRevisionName": "podinfo-00003",
            "latestReadyRevisionName": "podinfo-00003",
            "traffic": [{"revisionName": "podinfo-00001", "percent": 100}]});
        let flaggers = service(
            json!({FLAGGER_PRIMARY_REVISION: "podinfo-00001"}),
            status.clone(),
        );
        let state = flaggers.primary_state();
        assert_eq!(state.revision.as_deref(), Some("podinfo-00001"));
        assert!(state.is_ready(100), "Knative routes to it");
        let both = service(
            json!({FLAGGER_PRIMARY_REVISION: "podinfo-00001", PRIMARY_REVISION: "podinfo-00002"}),
            status,
        );
        let state = both.primary_state();
        assert_eq!(state.revision.as_deref(), Some("podinfo-00002"));
        assert!(
            !state.is_ready(100),
            "00002 is neither the latest ready revision nor routed to"
        );
    }

    #[test]
    fn promoting_records_the_revision_and_scaling_to_zero_idles_the_latest() {
        let svc = service(
            json!({PRIMARY_REVISION: "podinfo-00001"}),
            json!({"latestCreatedRevisionName": "podinfo-00002"}),
        );
        assert_eq!(
            KnativeService::promote_patch("podinfo-00002").unwrap(),
            json!({"metadata": {"annotations": {PRIMARY_REVISION: "podinfo-00002", IDLE_REVISION: null}}})
        );
        assert_eq!(
            svc.scale_patch(0).unwrap(),
            json!({"metadata": {"annotations": {IDLE_REVISION: "podinfo-00002"}}})
        );
        assert_eq!(
            svc.scale_patch(1).unwrap(),
            json!({"metadata": {"annotations": {IDLE_REVISION: null}}})
        );
        assert_eq!(
            KnativeService::release_patch().unwrap(),
            json!({"metadata": {"annotations": {PRIMARY_REVISION: null, IDLE_REVISION: null}}}),
            "a deleted Canary's records go; Flagger's annotation is Flagger's"
        );
    }
}
