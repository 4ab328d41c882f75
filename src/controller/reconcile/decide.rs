//! Decide: the checks the engine asks for are run (webhooks, metrics), then the engine makes
//! its one decision from the plan, the status and the observations.

use chrono::Utc;

use crate::api::status::CanaryStatus;
use crate::engine::{self, Decision, Plan};
use kube::ResourceExt;

use crate::controller::act::Revisions;
use crate::controller::checks;
use crate::controller::context::{Context, Result};
use crate::controller::scene::Scene;
use crate::controller::targets::Watched;

/// The engine's decision, with the revision it was made for.
pub struct Decided {
    pub decision: Decision,
    /// The target's revision (empty without a target).
    pub revision: String,
    /// The last promoted revision, to revert to.
    pub promoted: Option<String>,
}

impl Decided {
    pub fn revisions(&self) -> Revisions<'_> {
        Revisions {
            target: &self.revision,
            promoted: self.promoted.as_deref(),
            phase: self.decision.status.phase.map_or("", |p| p.as_str()),
        }
    }
}

/// Runs the due checks and asks the engine. A decision the engine marks as needing a fresh
/// view (a rollback because pods were not ready in time) is confirmed from the API server:
/// when the watch cache was behind (after an API server restart, say), the engine decides
/// again from what the API server says, and `scene` becomes that fresher view.
pub async fn decide<W: Watched>(
    ctx: &Context,
    scene: &mut Scene<W>,
    plan: &Plan,
    status: &CanaryStatus,
) -> Result<Decided> {
    let now = Utc::now();
    let obs = scene.observations();
    let revision = revision_of(&obs);
    let due = engine::due_checks(plan, status, &obs, now);
    let found = checks::run(ctx, scene, &due, &revision).await;
    let mut decision = engine::step(plan, status, &obs, &found, now);
    if decision.reason.needs_fresh_view()
        && let Some(fresh) = scene.reread(ctx).await?
    {
        let obs = fresh.observations();
        let confirmed = engine::step(plan, status, &obs, &found, now);
        if confirmed.reason != decision.reason {
            tracing::info!(canary = %fresh.canary.name_any(), namespace = %fresh.namespace, cached = %decision.reason, fresh = %confirmed.reason, "the watch cache was behind the API server; decided from a fresh read");
        }
        *scene = fresh;
        decision = confirmed;
    }
    Ok(Decided {
        decision,
        revision: revision_of(&scene.observations()),
        promoted: status.last_promoted_spec.clone(),
    })
}

fn revision_of(obs: &engine::Observations) -> String {
    obs.target
        .as_ref()
        .map(|t| t.revision.clone())
        .unwrap_or_default()
}
