//! Taking a Canary over from Flagger, through the pure engine: its status names revisions by
//! Flagger's hash and its primary carries no serin revision (`Observations::foreign_primary`).

mod support;

use serin::api::Phase;
use serin::api::status::CanaryStatus;
use serin::engine::input::ForeignPrimary;
use serin::engine::{Action, Traffic};
use support::{CANARY, World, plan, ready};

/// A world as Flagger leaves it: the primary ready, the target at zero, a status in `phase`
/// with Flagger's own revision hashes.
fn left_by_flagger(phase: Phase, primary: ForeignPrimary) -> World {
    let mut world = World::new(plan(CANARY));
    world.status = CanaryStatus {
        phase: Some(phase),
        last_applied_spec: Some("5b8c9d7f4".into()),
        last_promoted_spec: Some("5b8c9d7f4".into()),
        canary_weight: if phase == Phase::Progressing { 30 } else { 0 },
        failed_checks: if phase == Phase::Progressing { 1 } else { 0 },
        ..CanaryStatus::default()
    };
    world.obs.primary = Some(ready(3, None));
    world.obs.foreign_primary = Some(primary);
    world.target().state = ready(0, None);
    world
}

#[test]
fn a_settled_canary_is_adopted_without_a_rollout() {
    for phase in [Phase::Succeeded, Phase::Initialized] {
        let mut world = left_by_flagger(phase, ForeignPrimary::RunsTarget);
        let decision = world.tick_passing().clone();
        assert_eq!(decision.reason.as_str(), "TakenOver", "{phase:?}");
        assert_eq!(decision.status.phase, Some(phase));
        assert_eq!(decision.status.last_applied_spec.as_deref(), Some("v1"));
        assert_eq!(decision.status.last_promoted_spec.as_deref(), Some("v1"));
        assert!(
            !decision
                .actions
                .iter()
                .any(|a| matches!(a, Action::EnsurePrimary | Action::ScaleCanary { .. })),
            "nothing restarts: {:?}",
            decision.actions
        );
        world.advance(60);
        assert_eq!(world.tick_passing().reason.as_str(), "UpToDate");
    }
}

#[test]
fn after_the_takeover_a_new_revision_is_rolled_out_and_promoted() {
    let mut world = left_by_flagger(Phase::Succeeded, ForeignPrimary::RunsTarget);
    world.tick_passing();
    world.release("v2");
    world.obs.foreign_primary = Some(ForeignPrimary::RunsOther);
    assert_eq!(world.tick_passing().reason.as_str(), "NewRevision");
    // serin's promotion stamps the primary: it is no longer foreign.
    world.obs.foreign_primary = None;
    world.run_until(Phase::Succeeded, 40);
    assert_eq!(world.status.last_promoted_spec.as_deref(), Some("v2"));
}

#[test]
fn a_failed_canary_stays_failed_until_a_new_revision() {
    let mut world = left_by_flagger(Phase::Failed, ForeignPrimary::RunsOther);
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "TakenOver");
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.status.last_applied_spec.as_deref(), Some("v1"));
    assert!(
        decision
            .actions
            .iter()
            .all(|a| matches!(a, Action::Event(_))),
        "only the event: {:?}",
        decision.actions
    );
    world.advance(60);
    assert_ne!(world.tick_passing().reason.as_str(), "NewRevision");
    assert_eq!(world.phase(), Some(Phase::Failed));
}

#[test]
fn a_canary_caught_mid_rollout_starts_its_analysis_over_from_no_traffic() {
    let mut world = left_by_flagger(Phase::Progressing, ForeignPrimary::RunsOther);
    world.traffic = Traffic::weights(70, 30);
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "RolloutRestarted");
    assert!(
        decision.message.starts_with("taken over mid-rollout"),
        "{}",
        decision.message
    );
    assert_eq!(decision.status.canary_weight, 0);
    assert_eq!(decision.status.failed_checks, 0);
    assert_eq!(decision.status.last_applied_spec.as_deref(), Some("v1"));
    assert_eq!(
        world.traffic.canary, 0,
        "the canary gets no traffic until it is ready again"
    );
}

#[test]
fn a_canary_caught_while_promoting_its_target_is_settled() {
    let mut world = left_by_flagger(Phase::Promoting, ForeignPrimary::RunsTarget);
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "TakenOver");
    assert_eq!(decision.status.phase, Some(Phase::Succeeded));
    assert_eq!(world.traffic, Traffic::PRIMARY);
}
