//! One reconcile's view of a Canary and its workloads, read from the caches: what the engine
//! observes and what the writers need (names, selector, owner reference, provider).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::Canary;
use crate::api::provider::TrafficProvider;
use crate::engine::Observations;
use crate::routing::RouteInputs;
use crate::workload::configs::{ConfigRef, tracked_checksums};
use crate::workload::primary::PRIMARY_SUFFIX;
use crate::workload::target::{self, PrimaryPlace, Workload};
use crate::workload::{foreign, observe};

use super::configs;
use super::context::{Context, Error, Result, Step};
use super::targets::Watched;

/// What one reconcile of a Canary targeting a `W` sees.
pub struct Scene<W> {
    pub canary: Canary,
    pub namespace: String,
    pub owner: OwnerReference,
    pub provider: TrafficProvider,
    pub target: Option<W>,
    pub primary: Option<W>,
    /// Tracked configs of the target and their checksums.
    pub configs: BTreeMap<ConfigRef, String>,
}

impl<W: Watched> Scene<W> {
    pub async fn read(ctx: &Context, canary: Canary, provider: TrafficProvider) -> Result<Self> {
        let namespace = canary.namespace().unwrap_or_default();
        // Only None for an object without a uid, which no Canary read from the API lacks.
        let owner = ctx
            .group_of(&canary)
            .owner_reference(&canary)
            .ok_or_else(|| {
                Error::unbuildable(
                    Step::Observe,
                    format!("Canary {}", canary.name_any()),
                    "it has no uid",
                )
            })?;
        let target_name = &canary.spec.target_ref.name;
        let store = W::store(ctx);
        let find = |name: &str| -> Result<Option<W>> {
            let Some(packed) = store.get(&ObjectRef::new(name).within(&namespace)) else {
                return Ok(None);
            };
            // Only fails if the cache's own encoding did not decode: a bug, reported as one.
            packed.unpack().map(Some).map_err(|error| {
                Error::unbuildable(
                    Step::Observe,
                    format!("{} {name} in the cache", W::kind(&())),
                    format!("it does not decode: {error}"),
                )
            })
        };
        let target = find(target_name)?;
        let primary = match W::PRIMARY {
            PrimaryPlace::Copy => find(&format!("{target_name}{PRIMARY_SUFFIX}"))?,
            PrimaryPlace::Revision => holding_primary(target.as_ref()),
        };
        let pod = target
            .as_ref()
            .and_then(W::pod_template)
            .and_then(|t| t.spec.as_ref());
        let configs = match pod {
            Some(pod) => configs::checksums(ctx, &namespace, pod).await?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            canary,
            namespace,
            owner,
            provider,
            target,
            primary,
            configs,
        })
    }
}

impl<W: Watched> Scene<W> {
    /// The scene with its target and primary read from the API server instead of the watch
    /// cache, when either differs from the cached one (None when the cache was current).
    pub async fn reread(&self, ctx: &Context) -> Result<Option<Self>> {
        let name = &self.canary.spec.target_ref.name;
        let target: Option<W> = ctx.get_opt(&self.namespace, name).await?;
        let primary: Option<W> = match W::PRIMARY {
            PrimaryPlace::Copy => {
                ctx.get_opt(&self.namespace, &format!("{name}{PRIMARY_SUFFIX}"))
                    .await?
            }
            PrimaryPlace::Revision => holding_primary(target.as_ref()),
        };
        let version = |w: &Option<W>| w.as_ref().and_then(|w| w.meta().resource_version.clone());
        if version(&target) == version(&self.target) && version(&primary) == version(&self.primary)
        {
            return Ok(None);
        }
        Ok(Some(Self {
            canary: self.canary.clone(),
            namespace: self.namespace.clone(),
            owner: self.owner.clone(),
            provider: self.provider,
            target: target.map(stripped),
            primary: primary.map(stripped),
            configs: self.configs.clone(),
        }))
    }
}

/// The target as the holder of its primary, for a kind whose primary is a revision: once a
/// promoted revision is recorded on it (before, there is no primary yet).
fn holding_primary<W: Workload>(target: Option<&W>) -> Option<W> {
    target
        .filter(|t| t.primary_state().revision.is_some())
        .cloned()
}

/// A kind routed between its own revisions selects no pods (a Knative Service).
static NO_SELECTOR: LabelSelector = LabelSelector {
    match_labels: None,
    match_expressions: None,
};

/// An object as the watch cache keeps it (without managedFields).
fn stripped<W: Workload>(mut object: W) -> W {
    object.meta_mut().managed_fields = None;
    object
}

impl<W: Workload> Scene<W> {
    pub fn observations(&self) -> Observations {
        Observations {
            generation: self.canary.metadata.generation.unwrap_or(0),
            target: self
                .target
                .as_ref()
                .and_then(|t| target::observe(t, tracked_checksums(&self.configs))),
            primary: self.primary.as_ref().map(W::primary_state),
            // Another controller's primary is a copy; a revision is no one's copy.
            foreign_primary: self
                .primary
                .as_ref()
                .zip(self.target.as_ref())
                .filter(|_| W::PRIMARY == PrimaryPlace::Copy)
                .and_then(|(primary, target)| foreign::compare(primary, target)),
            request: self
                .canary
                .metadata
                .annotations
                .as_ref()
                .and_then(observe::request),
        }
    }

    pub fn tracked(&self) -> BTreeSet<ConfigRef> {
        self.configs.keys().cloned().collect()
    }

    pub fn target_selector(&self) -> Option<&LabelSelector> {
        let target = self.target.as_ref()?;
        match W::PRIMARY {
            PrimaryPlace::Copy => target.selector(),
            PrimaryPlace::Revision => Some(&NO_SELECTOR),
        }
    }

    pub fn route_inputs<'a>(&'a self, selector: &'a LabelSelector) -> RouteInputs<'a> {
        RouteInputs {
            spec: &self.canary.spec,
            namespace: &self.namespace,
            target_selector: selector,
            primary_selector: self.primary.as_ref().and_then(W::selector),
            owner: Some(self.owner.clone()),
            // Read and set where the routes are applied (`act::route`).
            source: None,
            annotations_prefix: crate::routing::nginx::DEFAULT_ANNOTATIONS_PREFIX,
            ingress_class: None,
            mesh: self.mesh(),
        }
    }

    /// The Kuma mesh: the Canary's `kuma.io/mesh` annotation (Flagger's), else the workload's
    /// pod template's (Kuma's own).
    fn mesh(&self) -> Option<&str> {
        use crate::routing::kuma::MESH_ANNOTATION;
        let canary = self.canary.metadata.annotations.as_ref();
        let template = self.target.as_ref().and_then(|t| t.pod_template());
        let workload = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref());
        canary
            .and_then(|a| a.get(MESH_ANNOTATION))
            .or_else(|| workload.and_then(|a| a.get(MESH_ANNOTATION)))
            .map(String::as_str)
    }

    /// The Canary that controls the primary, when it is another one than this.
    pub fn conflicting_owner(&self) -> Option<String> {
        let primary = self.primary.as_ref()?;
        let owner = primary
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))?;
        (owner.kind == "Canary" && owner.uid != self.owner.uid).then(|| owner.name.clone())
    }
}
