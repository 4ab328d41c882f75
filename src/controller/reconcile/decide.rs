//! Decide: the checks the engine asks for are run (webhooks, metrics), then the engine makes
//! its one decision from the plan, the status and the observations.

use chrono::Utc;

use crate::api::status::CanaryStatus;
use crate::engine::{self, Decision, Plan};
use crate::workload::target::Workload;

use crate::controller::act::Revisions;
use crate::controller::checks;
use crate::controller::context::Context;
use crate::controller::scene::Scene;

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

pub async fn decide<W: Workload>(
    ctx: &Context,
    scene: &Scene<W>,
    plan: &Plan,
    status: &CanaryStatus,
) -> Decided {
    let now = Utc::now();
    let obs = scene.observations();
    let revision = obs
        .target
        .as_ref()
        .map(|t| t.revision.clone())
        .unwrap_or_default();
    let due = engine::due_checks(plan, status, &obs, now);
    let found = checks::run(ctx, scene, &due, &revision).await;
    Decided {
        decision: engine::step(plan, status, &obs, &found, now),
        revision,
        promoted: status.last_promoted_spec.clone(),
    }
}
