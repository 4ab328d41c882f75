//! One reconcile of one Canary: observe -> engine -> act -> write the status when it changed
//! -> requeue at the engine's next tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::Canary;
use crate::api::provider;
use crate::api::status::CanaryStatus;
use crate::engine::action::Event;
use crate::engine::{self, Plan, Reason, Traffic};
use crate::routing::RouteError;

use super::act::{self, Revisions, publish};
use super::checks;
use super::context::{Context, Error, MANAGER, Result};
use super::finalize;
use super::scene::Scene;

pub async fn reconcile(cached: Arc<Canary>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = run(&cached, &ctx).await;
    ctx.metrics.reconciled(
        &cached.name_any(),
        &cached.namespace().unwrap_or_default(),
        started,
        result.is_ok(),
    );
    result
}

pub fn error_policy(canary: Arc<Canary>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(canary = %canary.name_any(), namespace = %canary.namespace().unwrap_or_default(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn run(cached: &Canary, ctx: &Context) -> Result<Action> {
    // Not `ctx.deployments.wait_until_ready()` here: kube-runtime's readiness future keeps the
    // waker of one waiter only, so with several Canaries reconciling at start-up all but one
    // never woke up. One task waits on the store and broadcasts (see `run`).
    let _ = ctx.deployments_ready.clone().wait_for(|ready| *ready).await;
    let Some(canary) = fresh(cached, ctx).await? else {
        return Ok(Action::await_change());
    };
    if canary.meta().deletion_timestamp.is_some() {
        ctx.metrics
            .forget_canary(&canary.name_any(), &canary.namespace().unwrap_or_default());
        // Whatever the spec says now, the objects to restore are those of a provider serin
        // could parse (an unparsable one never had objects written).
        let provider =
            provider::resolve(&canary.spec, ctx.default_provider).unwrap_or(ctx.default_provider);
        let scene = Scene::read(ctx, canary, provider).await?;
        return finalize::revert(ctx, &scene).await;
    }
    finalize::ensure(ctx, &canary).await?;
    let status = canary.status.clone().unwrap_or_default();
    let plan = match Plan::from_spec(&canary.spec, ctx.default_provider) {
        Ok(plan) => plan,
        Err(errors) => {
            return stall(
                ctx,
                &canary,
                &status,
                Reason::InvalidSpec,
                &errors.to_string(),
            )
            .await;
        }
    };
    warn_once_per_generation(ctx, &canary, &status, &plan).await;
    if let Some(message) = refused_references(ctx, &canary) {
        return stall(ctx, &canary, &status, Reason::InvalidSpec, &message).await;
    }
    let scene = Scene::read(ctx, canary, plan.provider).await?;
    if let Some(owner) = scene.conflicting_owner() {
        let message = format!(
            "the Deployment {} is already managed by Canary {owner}; this Canary is left alone",
            scene.canary.spec.target_ref.name
        );
        return stall(
            ctx,
            &scene.canary,
            &status,
            Reason::TargetConflict,
            &message,
        )
        .await;
    }
    if let Err(error) = routable(&scene, &plan) {
        return stall(
            ctx,
            &scene.canary,
            &status,
            Reason::InvalidSpec,
            &error.to_string(),
        )
        .await;
    }
    let now = Utc::now();
    let obs = scene.observations();
    let revision = obs
        .target
        .as_ref()
        .map(|t| t.revision.clone())
        .unwrap_or_default();
    let due = engine::due_checks(&plan, &status, &obs, now);
    let found = checks::run(ctx, &scene, &due, &revision).await;
    let decision = engine::step(&plan, &status, &obs, &found, now);
    let revisions = Revisions {
        target: &revision,
        promoted: status.last_promoted_spec.as_deref(),
        phase: decision.status.phase.map_or("", |p| p.as_str()),
    };
    act::apply(ctx, &scene, &decision.actions, &revisions).await?;
    if decision.actions.is_empty() {
        // HPAs are kept in sync at all times, not only when the engine acts.
        act::sync_autoscaler(ctx, &scene).await?;
    }
    write_status(ctx, &scene.canary, &status, &decision.status).await?;
    ctx.metrics
        .observe_canary(&scene.canary.name_any(), &scene.namespace, &decision.status);
    Ok(Action::requeue(decision.requeue_after.as_std()))
}

/// The Canary to decide from: the cached one, unless serin wrote a status the cache has not
/// caught up with (a decision must never be made twice from an older status).
async fn fresh(cached: &Canary, ctx: &Context) -> Result<Option<Canary>> {
    let key = ObjectRef::from_obj(cached);
    let written = {
        let map = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key).cloned()
    };
    match written {
        Some(version) if cached.resource_version().as_deref() != Some(version.as_str()) => {
            let api: Api<Canary> =
                Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
            let current = api
                .get_opt(&cached.name_any())
                .await
                .map_err(Error::api(format!("reading Canary {}", cached.name_any())))?;
            if let Some(current) = &current {
                remember(ctx, current);
            }
            Ok(current)
        }
        _ => Ok(Some(cached.clone())),
    }
}

fn remember(ctx: &Context, canary: &Canary) {
    if let Some(version) = canary.resource_version() {
        let mut map = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(ObjectRef::from_obj(canary), version);
    }
}

/// The plan's warnings (`api::leniency`) as one Warning event, when a generation is first seen:
/// the status's observedGeneration catches up at the end of the reconcile, so a spec is
/// warned about once, not at every tick.
async fn warn_once_per_generation(
    ctx: &Context,
    canary: &Canary,
    status: &CanaryStatus,
    plan: &Plan,
) {
    if plan.warnings.is_empty() || status.observed_generation == canary.metadata.generation {
        return;
    }
    let message = crate::api::validation::ValidationErrors(plan.warnings.clone()).to_string();
    let event = Event {
        warning: true,
        reason: Reason::ReadAsFlagger,
        message,
    };
    publish(ctx, canary, &event).await;
}

/// With `--no-cross-namespace-refs`, the references to other namespaces' templates and
/// providers, one line each naming the field; checked before any of them is read.
fn refused_references(ctx: &Context, canary: &Canary) -> Option<String> {
    if !ctx.options.no_cross_namespace_refs {
        return None;
    }
    let namespace = canary.namespace().unwrap_or_default();
    let errors = crate::api::references::cross_namespace(&canary.spec, &namespace);
    (!errors.is_empty()).then(|| crate::api::validation::ValidationErrors(errors).to_string())
}

/// A provider that cannot express the strategy is a spec error, found before anything is
/// written (e.g. weights with the kubernetes provider, Gateway API without a gateway).
fn routable(scene: &Scene, plan: &Plan) -> Result<(), RouteError> {
    let Some(selector) = scene.target_selector() else {
        return Ok(());
    };
    let inputs = scene.route_inputs(selector);
    let mut sample = match &plan.strategy {
        engine::Strategy::Canary { .. } => Traffic::weights(50, 50),
        _ => Traffic::PRIMARY,
    };
    sample.matched_to_canary = matches!(plan.strategy, engine::Strategy::AbTesting { .. });
    crate::routing::router_for(scene.provider.kind)
        .objects(&inputs, sample)
        .map(|_| ())
}

async fn stall(
    ctx: &Context,
    canary: &Canary,
    status: &CanaryStatus,
    reason: Reason,
    message: &str,
) -> Result<Action> {
    let generation = canary.metadata.generation.unwrap_or(0);
    let next = engine::stalled(status, generation, reason, message, Utc::now());
    if &next != status {
        publish(
            ctx,
            canary,
            &Event {
                warning: true,
                reason,
                message: message.to_string(),
            },
        )
        .await;
    }
    write_status(ctx, canary, status, &next).await?;
    // A spec change or a change of the other Canary triggers the next reconcile; the slow
    // requeue only covers what no watch sees.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Server-side apply of the status subresource, only when it changed: an unchanged status is
/// never written (a write would wake this Canary's watch for nothing).
async fn write_status(
    ctx: &Context,
    canary: &Canary,
    before: &CanaryStatus,
    after: &CanaryStatus,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let api: Api<Canary> =
        Api::namespaced(ctx.client.clone(), &canary.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "serin.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": canary.name_any()},
        "status": after,
    });
    let _timer = ctx.metrics.api_timer("apply_status");
    let written = api
        .patch_status(
            &canary.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::api(format!(
            "writing the status of Canary {}",
            canary.name_any()
        )))?;
    remember(ctx, &written);
    Ok(())
}
