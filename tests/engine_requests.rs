//! Manual requests (promote, step, abort, retry, pause, resume) and suspend.

mod support;

use serin::api::Phase;
use serin::engine::input::Sample;
use serin::engine::{Action, Traffic};
use support::{CANARY, World, plan, plan_with};

fn progressing() -> World {
    World::started(plan(CANARY))
}

#[test]
fn promote_skips_the_rest_of_the_analysis() {
    let mut world = progressing();
    world.request("promote", "r1");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Promoting));
    assert!(decision.actions.contains(&Action::PromoteTemplate));
    assert_eq!(decision.status.last_handled_request.as_deref(), Some("r1"));
    world.run_until(Phase::Succeeded, 5);
}

#[test]
fn step_moves_one_weight_at_once_and_promotes_from_the_last() {
    let mut world = progressing();
    assert_eq!(world.status.canary_weight, 10);
    // No time passes: the step neither waits for the next analysis nor its checks.
    for (id, weight) in [("s1", 20), ("s2", 30), ("s3", 40), ("s4", 50)] {
        world.request("step", id);
        let decision = world.tick_passing().clone();
        assert_eq!(decision.reason.as_str(), "SteppedByRequest", "{id}");
        assert_eq!(decision.status.phase, Some(Phase::Progressing));
        assert_eq!(decision.status.canary_weight, weight, "{id}");
        assert_eq!(world.traffic, Traffic::weights(100 - weight, weight));
    }
    // The same request again is not a second step.
    world.tick_passing();
    assert_eq!(world.status.canary_weight, 50);
    world.request("step", "s5");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Promoting));
    assert!(decision.actions.contains(&Action::PromoteTemplate));
    world.run_until(Phase::Succeeded, 5);
}

#[test]
fn step_counts_an_iteration_of_a_blue_green_rollout() {
    let mut world = World::started(plan(
        "    interval: 1m
    threshold: 2
    iterations: 2
",
    ));
    world.request("step", "s1");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "SteppedByRequest");
    assert_eq!(decision.status.iterations, 1);
    world.request("step", "s2");
    assert_eq!(world.tick_passing().status.phase, Some(Phase::Promoting));
}

#[test]
fn abort_rolls_back_to_the_primary() {
    let mut world = progressing();
    world.request("abort", "r1");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "AbortedByRequest");
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn abort_during_promotion_reverts_the_primary() {
    let mut world = progressing();
    world.obs.primary.as_mut().unwrap().ready = 3;
    world.primary_pods_ready = false;
    world.request("promote", "r1");
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Promoting));
    world.request("abort", "r2");
    let decision = world.tick_passing();
    assert!(decision.actions.contains(&Action::RevertPrimary));
    assert_eq!(decision.status.phase, Some(Phase::Failed));
}

#[test]
fn retry_restarts_a_failed_release_without_a_template_change() {
    let mut world = progressing();
    world.advance(60);
    world.tick_with(Sample::Value(1.0), true);
    world.advance(60);
    world.tick_with(Sample::Value(1.0), true);
    assert_eq!(world.phase(), Some(Phase::Failed));
    world.advance(60);
    assert!(
        world.tick_passing().actions.is_empty(),
        "a failed revision is not retried by itself"
    );
    world.request("retry", "r1");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "Retried");
    assert_eq!(decision.status.phase, Some(Phase::Progressing));
    assert_eq!(decision.status.failed_checks, 0);
    world.run_until(Phase::Succeeded, 20);
    assert_eq!(world.status.last_promoted_spec.as_deref(), Some("v2"));
}

#[test]
fn a_request_is_acted_on_once() {
    let mut world = progressing();
    world.request("abort", "r1");
    world.tick_passing();
    world.request("retry", "r2");
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Progressing));
    world.advance(60);
    world.tick_passing();
    assert_eq!(
        world.phase(),
        Some(Phase::Progressing),
        "the old abort annotation is not acted on again"
    );
}

#[test]
fn pause_freezes_the_rollout_and_resume_continues_it() {
    let mut world = progressing();
    world.request("pause", "r1");
    world.tick_passing();
    assert!(world.status.paused);
    for _ in 0..20 {
        world.advance(60);
        world.tick_passing();
    }
    assert_eq!(world.status.canary_weight, 10, "no step while paused");
    assert_eq!(
        world.phase(),
        Some(Phase::Progressing),
        "no deadline expires while paused"
    );
    world.request("resume", "r2");
    world.advance(60);
    world.tick_passing();
    assert!(!world.status.paused);
    world.run_until(Phase::Succeeded, 20);
}

#[test]
fn a_paused_canary_does_not_lose_its_progress_deadline_budget() {
    let mut world = World::initialized(plan(CANARY));
    world.canary_pods_ready = false;
    world.release("v2");
    world.tick_passing();
    world.advance(300);
    world.request("pause", "p");
    world.tick_passing();
    world.advance(3600);
    world.tick_passing();
    world.request("resume", "r");
    world.tick_passing();
    world.advance(299);
    world.tick_passing();
    assert_eq!(
        world.phase(),
        Some(Phase::Progressing),
        "only 599s of deadline used"
    );
    world.advance(1);
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Failed));
}

#[test]
fn suspend_freezes_even_a_new_release() {
    let mut world = World::initialized(plan(CANARY));
    world.plan = plan_with(CANARY, "  suspend: true");
    world.release("v2");
    let decision = world.tick_passing();
    assert!(
        !decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::ScaleCanary { .. }))
    );
    assert_eq!(decision.reason.as_str(), "Suspended");
    world.plan.suspend = false;
    world.advance(60);
    assert_eq!(world.tick_passing().status.phase, Some(Phase::Progressing));
}

#[test]
fn an_unknown_request_is_reported_and_ignored() {
    let mut world = progressing();
    world.request("rollback-now", "r1");
    let decision = world.tick_passing();
    assert!(decision.actions.iter().any(|a| matches!(a, Action::Event(e) if e.warning && e.message.contains("unknown request \"rollback-now\""))));
    assert_eq!(decision.status.phase, Some(Phase::Progressing));
}

#[test]
fn a_request_that_does_not_apply_is_reported() {
    let mut world = World::initialized(plan(CANARY));
    world.request("promote", "r1");
    let decision = world.tick_passing();
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::Event(e) if e.reason.as_str() == "RequestIgnored"))
    );
    assert_eq!(decision.status.phase, Some(Phase::Initialized));
}

/// The warning event a decision carries, if any.
fn ignored(decision: &serin::engine::Decision) -> Option<String> {
    decision.actions.iter().find_map(|a| match a {
        Action::Event(e) if e.warning && e.reason.as_str() == "RequestIgnored" => {
            Some(e.message.clone())
        }
        _ => None,
    })
}

#[test]
fn a_resume_of_a_running_rollout_and_a_second_pause_are_dropped_with_the_reason() {
    let mut world = progressing();
    world.request("resume", "r1");
    let decision = world.tick_passing().clone();
    assert_eq!(
        ignored(&decision).as_deref(),
        Some("request ignored: resume does not apply: the rollout is not paused")
    );
    assert_eq!(decision.status.last_handled_request.as_deref(), Some("r1"));

    world.request("pause", "p1");
    assert_eq!(ignored(&world.tick_passing().clone()), None);
    assert!(world.status.paused);
    let frozen_since = world.status.frozen_since;
    world.advance(60);
    world.request("pause", "p2");
    let decision = world.tick_passing().clone();
    assert_eq!(
        ignored(&decision).as_deref(),
        Some("request ignored: pause does not apply: the rollout is paused already")
    );
    assert!(decision.status.paused);
    assert_eq!(
        decision.status.frozen_since, frozen_since,
        "the freeze goes on"
    );
}

#[test]
fn a_step_before_the_first_step_is_dropped_with_the_reason() {
    let mut world = World::initialized(plan(CANARY));
    world.canary_pods_ready = false;
    world.release("v2");
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Progressing));
    assert_eq!(world.status.current_step, None);
    world.request("step", "s1");
    let decision = world.tick_passing().clone();
    assert!(
        ignored(&decision).is_some_and(
            |m| m.contains("step does not apply: the first analysis has not moved traffic yet")
        ),
        "{:?}",
        decision.actions
    );
}
