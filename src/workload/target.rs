//! The workload seam: what serin needs of a target kind, so the controller's shell is typed to
//! no kind. A kind reads its revision (pod template plus tracked configs) and readiness, builds
//! its `-primary` copy (on initialization, and again with the new template on promotion),
//! scales, and names the objects that keep its past pod templates (what a revert gives back).
//! Pure: the controller fetches and writes, these translate. Deployment
//! (`super::deployment`) is the first implementation, DaemonSet (`super::daemonset`) the
//! second, StatefulSet (`super::statefulset`) the third; a new kind is one module implementing
//! [`Workload`], one row in `crate::api::target::TABLE`, and its arm in the controller's
//! dispatch (`controller::targets`).
//!
//! Where the primary lives is the kind's to say ([`PrimaryPlace`]): beside the target as a
//! `-primary` copy (Deployment, DaemonSet, StatefulSet), or inside the target as one of its own
//! revisions (a Knative Service, `super::knative`, whose promoted revision is the primary and
//! whose latest revision is the canary). The engine sees the same observations either way.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{Target, WorkloadState};

use super::primary::{PrimaryInputs, REVISION_ANNOTATION, TargetError};
use super::revision;

/// Where a kind keeps its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryPlace {
    /// A `<target>-primary` object serin creates from the target and updates on promotion.
    Copy,
    /// One of the target's own revisions, which the target's controller (Knative) keeps:
    /// serin records which one is promoted on the target and splits traffic between it and
    /// the latest revision; there is nothing to copy, scale or revert.
    Revision,
}

/// A Kubernetes object kind serin can roll out.
pub trait Workload:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The objects in which the kind keeps its past pod templates (ReplicaSets for a
    /// Deployment, ControllerRevisions for DaemonSets and StatefulSets).
    type History: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static;

    /// Where its primary lives.
    const PRIMARY: PrimaryPlace = PrimaryPlace::Copy;

    fn pod_template(&self) -> Option<&PodTemplateSpec>;

    /// Its revision: the digest of its release template and tracked configs, unless the kind
    /// names its revisions itself (a Knative Service's latest created revision). None while
    /// the kind has not named one yet.
    fn revision(&self, configs: &BTreeMap<String, String>) -> Option<String> {
        Some(revision::of(&self.release_template(), configs))
    }

    /// The state of the primary this object is (a `-primary` copy), or holds (a
    /// [`PrimaryPlace::Revision`] kind's promoted revision).
    fn primary_state(&self) -> WorkloadState {
        self.state()
    }

    /// For a [`PrimaryPlace::Revision`] kind: the merge patch recording `revision` as the
    /// promoted one (on initialization, promotion and revert). None for kinds with a copy.
    fn promote_patch(_revision: &str) -> Option<serde_json::Value> {
        None
    }

    /// For a [`PrimaryPlace::Revision`] kind: the merge patch taking serin's records off the
    /// target when its Canary goes (`revertOnDeletion`).
    fn release_patch() -> Option<serde_json::Value> {
        None
    }

    /// A merge patch setting its replica count instead of the server-side apply of
    /// [`Workload::scale_body`], for kinds whose count serin records beside another
    /// controller's fields (a Knative Service's idle revision); None: apply `scale_body`.
    fn scale_patch(&self, _replicas: i32) -> Option<serde_json::Value> {
        None
    }

    /// The pod template as a release: what the revision is computed from and what a primary
    /// runs. The pod template itself unless serin writes to it between rollouts (a DaemonSet's
    /// idle node selector), which is then taken out: idling the canary is no release.
    fn release_template(&self) -> Option<Cow<'_, PodTemplateSpec>> {
        self.pod_template().map(Cow::Borrowed)
    }

    fn selector(&self) -> Option<&LabelSelector>;

    /// A merge patch taking away what another controller wrote to keep the workload idle
    /// (Flagger's DaemonSet node selector), which serin's server-side apply does not own and
    /// so cannot remove; None when there is nothing to take away.
    fn unpark_patch(&self) -> Option<serde_json::Value> {
        None
    }

    /// The replica count its spec asks for; None when the kind has no count, or it is unset.
    /// A DaemonSet has no count: zero while serin keeps it on no node, else the number of
    /// nodes it runs on (at least one), so "scaled to zero" reads the same for every kind.
    fn replicas(&self) -> Option<i32>;

    /// Its rollout state as its status reports it. A status older than the spec
    /// (observedGeneration behind) is not current: the engine never trusts it for readiness.
    fn state(&self) -> WorkloadState;

    /// The `-primary` copy of `inputs.target`, running `inputs.revision`.
    fn primary(inputs: &PrimaryInputs<'_, Self>) -> Result<Self, TargetError>;

    /// Gives a desired object another pod template (a revert to an older revision).
    fn set_template(&mut self, template: PodTemplateSpec);

    /// The server-side apply body setting its replica count, the only field of the target
    /// serin owns (for a DaemonSet: its idle node selector, present at zero, else absent).
    fn scale_body(name: &str, namespace: &str, replicas: i32) -> serde_json::Value;

    /// Objects the `-primary` copy needs beside itself, built from that copy: a StatefulSet's
    /// governing headless Service. Applied with the primary.
    fn companions(&self) -> Vec<Service> {
        Vec::new()
    }

    /// The pod template one history object keeps, with the labels its controller adds (e.g.
    /// `pod-template-hash`) taken out so the template can be applied again.
    fn history_template(history: &Self::History) -> Option<PodTemplateSpec>;
}

/// The target as the engine sees it. `config_checksums` holds the checksum of every tracked
/// config (`configmap/NAME` keys); they are part of the revision, so a config change alone is a
/// new release.
/// None while the kind has named no revision yet (a Knative Service its controller has not
/// reconciled).
pub fn observe<W: Workload>(
    target: &W,
    config_checksums: BTreeMap<String, String>,
) -> Option<Target> {
    Some(Target {
        revision: target.revision(&config_checksums)?,
        configs: config_checksums,
        state: target.state(),
    })
}

/// The desired `-primary` copy of a target.
pub fn desired_primary<W: Workload>(inputs: &PrimaryInputs<'_, W>) -> Result<W, TargetError> {
    W::primary(inputs)
}

/// The pod template of `revision` among a primary's history objects.
pub fn template_of_revision<W: Workload>(
    history: &[W::History],
    revision: &str,
) -> Option<PodTemplateSpec> {
    history.iter().find_map(|object| {
        let template = W::history_template(object)?;
        let stamped = template
            .metadata
            .as_ref()?
            .annotations
            .as_ref()?
            .get(REVISION_ANNOTATION)?;
        (stamped == revision).then_some(template)
    })
}

/// The revision a workload's metadata says it runs (stamped by serin on primaries).
pub fn stamped_revision<W: Workload>(workload: &W) -> Option<String> {
    workload
        .meta()
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)
        .cloned()
}
