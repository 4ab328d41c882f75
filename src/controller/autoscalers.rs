//! The primary's autoscaler on the cluster: reads the target's HPA (from the watch's cache) or
//! KEDA ScaledObject (read by name: it is needed at creation and promotion only), applies the
//! `-primary` copy `workload::autoscaler` builds when it differs, and pauses the target's
//! ScaledObject while serin holds the target at zero.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

use crate::api::autoscaler::AutoscalerKind;
use crate::api::canary::AutoscalerRef;
use crate::workload::autoscaler::{
    PrimaryScaler, desired_primary_scaler, in_sync, pause_patch, scaled_object_resource,
};
use crate::workload::primary::PRIMARY_SUFFIX;

use super::context::{Context, Error, MANAGER, Result, Step};
use super::scene::Scene;

/// Brings `<autoscaler>-primary` in line with the target's autoscaler, writing only when they
/// differ.
pub async fn sync<W>(ctx: &Context, scene: &Scene<W>) -> Result<()> {
    let Some(reference) = &scene.canary.spec.autoscaler_ref else {
        return Ok(());
    };
    let kind = AutoscalerKind::of(reference).map_err(|(field, reason)| {
        Error::unbuildable(
            Step::Apply,
            "the primary's autoscaler",
            format!("{field}: {reason}"),
        )
    })?;
    let (resource, source, live) = match kind {
        AutoscalerKind::HorizontalPodAutoscaler => {
            let Some((resource, store)) = &ctx.autoscalers else {
                return Ok(());
            };
            let key = |name: &str| {
                kube::runtime::reflector::ObjectRef::new_with(name, resource.clone())
                    .within(&scene.namespace)
            };
            let Some(source) = store.get(&key(&reference.name)) else {
                return Ok(());
            };
            let live = store.get(&key(&format!("{}{PRIMARY_SUFFIX}", reference.name)));
            (
                resource.clone(),
                (*source).clone(),
                live.map(|l| (*l).clone()),
            )
        }
        AutoscalerKind::ScaledObject => {
            let resource = scaled_object_resource();
            let (source, live) = read_scaled_objects(ctx, &scene.namespace, reference).await?;
            (resource, source, live)
        }
    };
    let desired = desired_primary_scaler(&PrimaryScaler {
        source: &source,
        resource: &resource,
        reference,
        target: &scene.canary.spec.target_ref.name,
        owner: Some(scene.owner.clone()),
    })
    .map_err(|e| Error::unbuildable(Step::Apply, format!("building the primary's {kind}"), e))?;
    if live.is_some_and(|l| in_sync(&l, &desired)) {
        return Ok(());
    }
    ctx.apply_dynamic(&resource, &desired).await?;
    Ok(())
}

/// The target's ScaledObject and the primary's, when it exists.
async fn read_scaled_objects(
    ctx: &Context,
    namespace: &str,
    reference: &AutoscalerRef,
) -> Result<(DynamicObject, Option<DynamicObject>)> {
    let api = scaled_objects(ctx, namespace);
    let what = format!("ScaledObject {namespace}/{}", reference.name);
    let source = api
        .get_opt(&reference.name)
        .await
        .map_err(Error::api(Step::Observe, format!("reading {what}")))?
        .ok_or_else(|| {
            Error::missing(
                Step::Apply,
                format!("{what} (spec.autoscalerRef; is KEDA installed?)"),
            )
        })?;
    let primary = format!("{}{PRIMARY_SUFFIX}", reference.name);
    let live = api.get_opt(&primary).await.map_err(Error::api(
        Step::Observe,
        format!("reading ScaledObject {namespace}/{primary}"),
    ))?;
    Ok((source, live))
}

fn scaled_objects(ctx: &Context, namespace: &str) -> Api<DynamicObject> {
    let resource: ApiResource = scaled_object_resource();
    Api::namespaced_with(ctx.client.clone(), namespace, &resource)
}

/// Pauses the target's ScaledObject at zero (`idle`) and resumes it otherwise, so KEDA neither
/// scales the idle target up nor holds the canary at zero during a rollout. HPAs need nothing:
/// the HPA controller leaves a workload at zero replicas alone.
pub async fn pause_target(
    ctx: &Context,
    namespace: &str,
    reference: Option<&AutoscalerRef>,
    idle: bool,
) -> Result<()> {
    let Some(reference) = reference else {
        return Ok(());
    };
    if AutoscalerKind::of(reference) != Ok(AutoscalerKind::ScaledObject) {
        return Ok(());
    }
    let api = scaled_objects(ctx, namespace);
    let what = format!("ScaledObject {namespace}/{}", reference.name);
    let Some(live) = api
        .get_opt(&reference.name)
        .await
        .map_err(Error::api(Step::Observe, format!("reading {what}")))?
    else {
        return Ok(());
    };
    let Some(patch) = pause_patch(&live, idle) else {
        return Ok(());
    };
    let params = PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(&reference.name, &params, &Patch::Merge(&patch))
        .await
        .map_err(Error::api(
            Step::Apply,
            format!("{} {what}", if idle { "pausing" } else { "resuming" }),
        ))?;
    Ok(())
}
