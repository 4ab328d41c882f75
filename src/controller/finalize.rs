//! The finalizer, for two reasons. With `--kubeconfig-service-mesh` it deletes the routes serin
//! created in the mesh's cluster, which owner references cannot reach. With
//! `revertOnDeletion` it keeps a deleted Canary until the target has its replicas
//! back and is ready, the apex Service selects the target's pods again (and no longer belongs
//! to the Canary), and a taken-over route has its original spec back. Objects serin created
//! for itself (primary, copies, canary services, generated routes) go with the Canary through
//! their owner references, but for a cluster-scoped route (Kuma's TrafficRoute), which is
//! deleted here.

use chrono::{DateTime, Utc};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::Canary;
use crate::engine::Reason;
use crate::engine::action::Event;
use crate::engine::deletion::{Deleting, RevertStep, revert_step};
use crate::routing::kuma::OWNER_ANNOTATION;
use crate::routing::{ORIGINAL_ANNOTATION, ORIGINAL_ANNOTATIONS};
use crate::workload::services::{ServiceRole, desired_service};
use crate::workload::target::{PrimaryPlace, Workload};

use super::act::{self, publish};
use super::context::{Context, Error, Result, Step};
use super::scene::Scene;
use super::served::{self, Part};

pub const FINALIZER: &str = "serin.dev/finalizer";
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a deleted Canary needs serin before it goes: to revert its target and route
/// (`revertOnDeletion`), or to delete the routes it has in the service mesh's cluster, which
/// owner references cannot reach.
fn needed(ctx: &Context, canary: &Canary) -> bool {
    canary.spec.revert_on_deletion || ctx.mesh.is_some() || writes_unowned_route(ctx, canary)
}

/// Whether the Canary's provider writes a route no owner reference can tie to it (Kuma's
/// cluster-scoped TrafficRoute): without the finalizer it would outlive the Canary and keep
/// sending the apex's traffic to a primary that is gone.
fn writes_unowned_route(ctx: &Context, canary: &Canary) -> bool {
    crate::api::provider::resolve(&canary.spec, ctx.default_provider).is_ok_and(|provider| {
        provider.kind == crate::api::provider::ProviderKind::Kuma && provider.version.is_none()
    })
}

/// Adds the finalizer when it is [`needed`], removes it when it is not.
pub async fn ensure(ctx: &Context, canary: &Canary) -> Result<()> {
    let has = canary.finalizers().iter().any(|f| f == FINALIZER);
    let needed = needed(ctx, canary);
    if has == needed {
        return Ok(());
    }
    let mut finalizers: Vec<String> = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if needed {
        finalizers.push(FINALIZER.into());
    }
    set_finalizers(ctx, canary, finalizers).await
}

async fn set_finalizers(ctx: &Context, canary: &Canary, finalizers: Vec<String>) -> Result<()> {
    // The resourceVersion makes this a compare-and-swap: finalizers written by others meanwhile
    // are never overwritten.
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": canary.resource_version()}});
    let namespace = canary.namespace().unwrap_or_default();
    served::patch(
        &ctx.client,
        ctx.group_of(canary),
        (&namespace, &canary.name_any()),
        Part::Object,
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(Error::api(
        Step::Status,
        format!("updating the finalizers of {}", canary.name_any()),
    ))?;
    Ok(())
}

/// One step of the revert of a deleted Canary; requeues until the target is ready.
pub async fn revert<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<Action> {
    let canary = &scene.canary;
    if !canary.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if canary.spec.revert_on_deletion
        && let Some(action) = revert_workloads(ctx, scene).await?
    {
        return Ok(action);
    }
    if !canary.spec.revert_on_deletion {
        // With revertOnDeletion, `restore_route` has deleted it already.
        delete_own_unowned_route(ctx, scene).await?;
    }
    delete_mesh_routes(ctx, scene).await?;
    let rest = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(ctx, canary, rest).await?;
    Ok(Action::await_change())
}

/// `revertOnDeletion`: the target's replicas, the apex Service and a taken-over route given
/// back; Some(requeue) while the target is not ready yet.
async fn revert_workloads<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<Option<Action>> {
    let canary = &scene.canary;
    if W::PRIMARY == PrimaryPlace::Revision {
        return revert_revisions(ctx, scene).await.map(|()| None);
    }
    if let Some(target) = &scene.target {
        let deleting = Deleting {
            target_replicas: target.replicas(),
            target: target.state(),
            primary_replicas: scene.primary.as_ref().and_then(W::replicas),
            deleted_at: canary
                .meta()
                .deletion_timestamp
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0)),
        };
        match revert_step(&deleting, canary.spec.progress_deadline(), Utc::now()) {
            RevertStep::ScaleTarget { replicas } => {
                act::scale(ctx, &scene.namespace, target, replicas).await?;
                let reference = canary.spec.autoscaler_ref.as_ref();
                super::autoscalers::pause_target(ctx, &scene.namespace, reference, false).await?;
                return Ok(Some(Action::requeue(POLL)));
            }
            RevertStep::WaitForTarget => return Ok(Some(Action::requeue(POLL))),
            RevertStep::Restore => {}
        }
        let selector = target.selector().cloned().unwrap_or_default();
        let mut apex = desired_service(
            &canary.spec,
            ServiceRole::Apex,
            &canary.spec.target_ref.name,
            &selector,
            None,
            &scene.namespace,
            None,
        )
        .map_err(|e| Error::unbuildable(Step::Finalize, "building the apex Service", e))?;
        if let Some(spec) = apex.spec.as_mut() {
            spec.selector = selector.match_labels.clone();
        }
        ctx.apply(&apex).await?;
    }
    restore_route(ctx, scene).await?;
    publish(
        ctx,
        canary,
        &Event {
            warning: false,
            reason: Reason::Reverting,
            message: "restored the target's replicas, the apex service and the original route"
                .into(),
        },
    )
    .await;
    Ok(None)
}

/// `revertOnDeletion` for a target whose primary is a revision (a Knative Service): all
/// traffic back to the latest revision, as Knative routes a Service no one splits, and serin's
/// records taken off it. Knative's own controller keeps the revisions ready; there is no
/// replica count to wait for.
async fn revert_revisions<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<()> {
    let name = &scene.canary.spec.target_ref.name;
    if scene.target.is_none() {
        return Ok(());
    }
    // The records first: a Service whose traffic is released carries no stale primary.
    let api: kube::Api<W> = kube::Api::namespaced(ctx.client.clone(), &scene.namespace);
    let params = PatchParams {
        field_manager: Some(super::context::MANAGER.into()),
        ..PatchParams::default()
    };
    if let Some(patch) = W::release_patch() {
        api.patch(name, &params, &Patch::Merge(patch))
            .await
            .map_err(Error::api(
                Step::Finalize,
                format!("releasing {} {}/{name}", W::kind(&()), scene.namespace),
            ))?;
    }
    let resource = ApiResource::erase::<W>(&());
    let mut traffic = DynamicObject::new(name, &resource).within(&scene.namespace);
    traffic.data = json!({"spec": {"traffic": crate::routing::knative::all_to_latest()}});
    ctx.apply_route(&resource, &traffic).await?;
    publish(
        ctx,
        &scene.canary,
        &Event {
            warning: false,
            reason: Reason::Reverting,
            message: format!("all traffic of {name} back to its latest revision"),
        },
    )
    .await;
    Ok(())
}

/// Deletes the routes serin created for this Canary in the service mesh's cluster (found by
/// their label: owner references cannot cross clusters). A taken-over route carries no label
/// and stays.
async fn delete_mesh_routes<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<()> {
    let selector = format!("{}={}", act::MESH_OWNER_LABEL, scene.owner.uid);
    for resource in crate::routing::router_for(scene.provider).resources() {
        if !ctx.in_mesh_cluster(&resource) {
            continue;
        }
        let api = crate::routing::api(ctx.route_client(&resource), &resource, &scene.namespace);
        let what = || {
            format!(
                "deleting the {} of {}",
                resource.plural,
                scene.canary.name_any()
            )
        };
        let owned = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::api(Step::Finalize, what()))?;
        for route in owned.items {
            match api
                .delete(&route.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::api(Step::Finalize, what())(e)),
            }
        }
    }
    Ok(())
}

/// Deletes serin's own route that carries the Canary's uid in an annotation instead of an
/// owner reference (Kuma's cluster-scoped TrafficRoute); a taken-over one stays.
async fn delete_own_unowned_route<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<()> {
    let Some(selector) = scene.target_selector() else {
        return Ok(());
    };
    let inputs = scene.route_inputs(selector);
    let Some((resource, name)) = crate::routing::router_for(scene.provider).taken_over(&inputs)
    else {
        return Ok(());
    };
    let api = crate::routing::api(ctx.route_client(&resource), &resource, &scene.namespace);
    let live = api.get_opt(&name).await.map_err(Error::api(
        Step::Finalize,
        format!("reading {} {name}", resource.kind),
    ))?;
    if live.is_some_and(|l| l.annotations().get(OWNER_ANNOTATION) == Some(&scene.owner.uid)) {
        api.delete(&name, &Default::default())
            .await
            .map_err(Error::api(
                Step::Finalize,
                format!("deleting {} {name}", resource.kind),
            ))?;
    }
    Ok(())
}

/// Puts a taken-over route's original spec back.
async fn restore_route<W: Workload>(ctx: &Context, scene: &Scene<W>) -> Result<()> {
    let Some(selector) = scene.target_selector() else {
        return Ok(());
    };
    let inputs = scene.route_inputs(selector);
    let Some((resource, name)) = crate::routing::router_for(scene.provider).taken_over(&inputs)
    else {
        return Ok(());
    };
    let api = crate::routing::api(ctx.route_client(&resource), &resource, &scene.namespace);
    let Some(mut live) = api.get_opt(&name).await.map_err(Error::api(
        Step::Finalize,
        format!("reading {} {name}", resource.kind),
    ))?
    else {
        return Ok(());
    };
    let Some(original) = live.annotations_mut().remove(ORIGINAL_ANNOTATION) else {
        // serin's own cluster-scoped route (Kuma's TrafficRoute) has no owner reference to go
        // with the Canary: left behind, it would keep sending the apex's traffic to the
        // primary, which does go.
        if live.annotations().get(OWNER_ANNOTATION) == Some(&scene.owner.uid) {
            api.delete(&name, &Default::default())
                .await
                .map_err(Error::api(
                    Step::Finalize,
                    format!("deleting {} {name}", resource.kind),
                ))?;
        }
        return Ok(());
    };
    let spec: serde_json::Value = serde_json::from_str(&original).unwrap_or_default();
    live.data["spec"] = spec;
    if let Some(annotations) = live.annotations_mut().remove(ORIGINAL_ANNOTATIONS) {
        // What the route's annotations were before serin, serin's own (an AWS Load Balancer
        // Controller's weighted action) dropped with them.
        let original: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&annotations).unwrap_or_default();
        *live.annotations_mut() = original;
    }
    live.metadata.managed_fields = None;
    api.replace(&name, &PostParams::default(), &live)
        .await
        .map_err(Error::api(
            Step::Finalize,
            format!("restoring {} {name}", resource.kind),
        ))?;
    Ok(())
}
