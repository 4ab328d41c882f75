//! One reconcile of one Canary, as named steps: validate the spec into a plan, observe the
//! cluster (`super::scene`), decide with the engine, apply the decision (`super::act`), write
//! the status when it changed; then requeue at the engine's next tick. A failure a person must
//! act on is shown on the Canary (`super::error`); a transient one is retried.

mod decide;
mod status;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::api::Canary;
use crate::api::group::Served;
use crate::api::provider;
use crate::engine::Reason;

use super::act;
use super::context::{Context, Error, Result};
use super::error::Failure;
use super::finalize;
use super::flagger_metrics::Observed;
use super::scene::Scene;
use super::targets::{self, Watched, with_target_kind};

pub async fn reconcile<K: Served>(cached: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let cached = cached.canary();
    let started = Instant::now();
    let result = run(cached, &ctx).await;
    if let Err(error) = &result
        && let Some(failure) = error.failure()
    {
        show_failure(&ctx, cached, &failure).await;
    }
    if result.is_ok() {
        ctx.retries.succeeded(cached);
    }
    ctx.metrics.reconciled(
        (
            &cached.name_any(),
            &cached.namespace().unwrap_or_default(),
            &cached.spec.target_ref.name,
        ),
        started,
        result.as_ref().err().map(Error::label),
    );
    result
}

/// A transient error is retried soon; a failure waits for a person (a granted permission or
/// an installed CRD raises no event serin watches, so it is retried on a slower timer that
/// slows down while the failure lasts: `super::retry`).
pub fn error_policy<K: Served>(canary: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let canary = canary.canary();
    tracing::warn!(canary = %canary.name_any(), namespace = %canary.namespace().unwrap_or_default(), step = error.step.as_str(), reason = error.label(), %error, "reconcile failed; retrying");
    match error.failure() {
        Some(_) => Action::requeue(ctx.retries.failed(canary)),
        None => Action::requeue(Duration::from_secs(5)),
    }
}

async fn run(cached: &Canary, ctx: &Context) -> Result<Action> {
    let Some(canary) = status::fresh(cached, ctx).await? else {
        return Ok(Action::await_change());
    };
    with_target_kind!(targets::kind_of(&canary), run_for(ctx, canary))
}

/// The steps, for a Canary whose target is a `W`.
async fn run_for<W: Watched>(ctx: &Context, canary: Canary) -> Result<Action> {
    // Not `store.wait_until_ready()` here: kube-runtime's readiness future keeps the waker of
    // one waiter only, so with several Canaries reconciling at start-up all but one never woke
    // up. One task per store waits and broadcasts (see `controller::run`).
    let _ = W::store_ready(ctx).clone().wait_for(|ready| *ready).await;
    if canary.meta().deletion_timestamp.is_some() {
        return deleted::<W>(ctx, canary).await;
    }
    finalize::ensure(ctx, &canary).await?;
    let before = canary.status.clone().unwrap_or_default();
    let plan = match validate::plan(ctx, &canary) {
        Ok(plan) => plan,
        Err(message) => {
            return status::stall(ctx, &canary, &before, Reason::InvalidSpec, &message).await;
        }
    };
    if let Some(message) = W::not_served(ctx) {
        return status::stall(ctx, &canary, &before, Reason::KindNotServed, &message).await;
    }
    status::warn_once_per_generation(ctx, &canary, &before, &plan).await;
    let mut scene = Scene::<W>::read(ctx, canary, plan.provider).await?;
    if let Some((reason, message)) = validate::blocked(&scene, &plan) {
        return status::stall(ctx, &scene.canary, &before, reason, &message).await;
    }
    let decided = decide::decide(ctx, &mut scene, &plan, &before).await?;
    act::apply(ctx, &scene, &decided.decision.actions, &decided.revisions()).await?;
    let after = &decided.decision.status;
    status::write_status(ctx, &scene.canary, &before, after).await?;
    ctx.metrics
        .observe_canary(&scene.canary.name_any(), &scene.namespace, after);
    ctx.metrics.observe_for_flagger(&Observed {
        target: &scene.canary.spec.target_ref.name,
        namespace: &scene.namespace,
        strategy: &plan.strategy,
        skip_analysis: scene.canary.spec.skip_analysis,
        before: before.phase,
        after,
    });
    Ok(Action::requeue(decided.decision.requeue_after.as_std()))
}

/// A deleted Canary: its original objects are restored (`revertOnDeletion`). Whatever the
/// spec says now, the objects to restore are those of a provider serin could parse (an
/// unparsable one never had objects written).
async fn deleted<W: Watched>(ctx: &Context, canary: Canary) -> Result<Action> {
    status::forget(ctx, &canary);
    ctx.metrics.forget_canary(
        &canary.name_any(),
        &canary.namespace().unwrap_or_default(),
        &canary.spec.target_ref.name,
    );
    let provider =
        provider::resolve(&canary.spec, ctx.default_provider).unwrap_or(ctx.default_provider);
    let scene = Scene::<W>::read(ctx, canary, provider).await?;
    finalize::revert(ctx, &scene).await
}

/// Puts a failure a person must act on where they look: the Stalled condition (which
/// `serin status`, `kubectl get` and GitOps health checks read) and one Warning event when
/// it first appears. The phase stays: nothing was decided.
async fn show_failure(ctx: &Context, cached: &Canary, failure: &Failure) {
    let canary = match status::fresh(cached, ctx).await {
        Ok(Some(canary)) => canary,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(canary = %cached.name_any(), %error, "reading the Canary to report a failure");
            return;
        }
    };
    let before = canary.status.clone().unwrap_or_default();
    if let Err(error) = status::stall(ctx, &canary, &before, failure.reason, &failure.message).await
    {
        tracing::warn!(canary = %canary.name_any(), %error, "reporting a failure on the Canary");
    }
}
