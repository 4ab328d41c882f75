//! Write status: the Canary's status is written with server-side apply, only when it changed,
//! and the next reconcile decides from what serin wrote while its cache has not caught up
//! (a decision must never be made twice from an older status).

use std::time::Duration;

use chrono::Utc;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use crate::api::Canary;
use crate::api::status::CanaryStatus;
use crate::engine::action::Event;
use crate::engine::{self, Reason};

use crate::controller::act::publish;
use crate::controller::context::{Context, Error, MANAGER, Result, Step};
use crate::controller::served::{self, Part};

/// The Canary to decide from: the cached one, unless serin wrote a status the cache has not
/// shown yet (a decision must never be made twice from an older status). Then the object the
/// write was answered with is used when the cache is merely behind, and the Canary is read
/// afresh only when the cache shows a version serin cannot place (`super::super::pending`).
/// Reading afresh at every lag cost a GET per status write in bursts: 17 % of a rollout's
/// requests (docs/benchmarks.md).
pub async fn fresh(cached: &Canary, ctx: &Context) -> Result<Option<Canary>> {
    if let Some(canary) = ctx.written.decide_from(cached) {
        return Ok(Some(canary));
    }
    let group = ctx.group_of(cached);
    let namespace = cached.namespace().unwrap_or_default();
    let current = served::get(&ctx.client, group, &namespace, &cached.name_any())
        .await
        .map_err(Error::api(
            Step::Observe,
            format!("reading Canary {}", cached.name_any()),
        ))?;
    // Read after the cache showed its version, so that version is older than `current`.
    ctx.written.record(cached, current.as_ref());
    Ok(current)
}

/// Forgets what serin wrote to a Canary that is being deleted.
pub fn forget(ctx: &Context, canary: &Canary) {
    ctx.written.record(canary, None);
}

/// Stalls the Canary for `reason`: the conditions say why, one Warning event when it first
/// appears; the phase stays.
pub async fn stall(
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
pub async fn write_status(
    ctx: &Context,
    canary: &Canary,
    before: &CanaryStatus,
    after: &CanaryStatus,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let (name, namespace) = (canary.name_any(), canary.namespace().unwrap_or_default());
    let group = ctx.group_of(canary);
    let body = served::apply_body(group, &name, json!({ "status": after }));
    let _timer = ctx.metrics.api_timer("apply_status");
    let written = served::patch(
        &ctx.client,
        group,
        (&namespace, &name),
        Part::Status,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(Error::api(
        Step::Status,
        format!("writing the status of Canary {}", canary.name_any()),
    ))?;
    ctx.written.record(canary, Some(&written));
    Ok(())
}

/// The plan's warnings (`api::leniency`) as one Warning event, when a generation is first seen:
/// the status's observedGeneration catches up at the end of the reconcile, so a spec is
/// warned about once, not at every tick.
pub async fn warn_once_per_generation(
    ctx: &Context,
    canary: &Canary,
    status: &CanaryStatus,
    plan: &crate::engine::Plan,
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
