//! The rollout lifecycle, phase by phase, through the pure engine.

mod support;

use serin::api::Phase;
use serin::api::canary::HookKind;
use serin::engine::conditions::{self, PROMOTED, READY, RECONCILING, STALLED};
use serin::engine::input::Sample;
use serin::engine::{Action, CheckResults, Traffic};
use support::{CANARY, World, not_ready, plan, plan_with, ready};

fn traffic_changes(world: &World) -> Vec<i32> {
    world
        .all_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::SetTraffic(t) => Some(t.canary),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_canary_creates_the_primary_and_routes_all_traffic_to_it() {
    let mut world = World::new(plan(CANARY));
    world.primary_pods_ready = false;
    let decision = world.tick(CheckResults::default()).clone();
    assert_eq!(decision.status.phase, Some(Phase::Initializing));
    assert!(decision.actions.contains(&Action::EnsurePrimary));
    assert!(
        decision
            .actions
            .contains(&Action::SetTraffic(Traffic::PRIMARY))
    );
    assert!(
        !decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::ScaleCanary { .. })),
        "the target keeps its pods until the primary is ready"
    );
}

#[test]
fn initialization_scales_the_target_to_zero_once_the_primary_is_ready() {
    let mut world = World::new(plan(CANARY));
    world.primary_pods_ready = false;
    world.tick(CheckResults::default());
    world.advance(10);
    world.tick(CheckResults::default());
    assert_eq!(world.phase(), Some(Phase::Initializing));
    world.obs.primary = Some(ready(3, Some("v1")));
    let decision = world.tick(CheckResults::default());
    assert_eq!(decision.status.phase, Some(Phase::Initialized));
    assert!(
        decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
    assert_eq!(conditions::status_of(&decision.status, READY), Some("True"));
}

#[test]
fn a_primary_that_never_becomes_ready_during_initialization_is_reported_stalled() {
    let mut world = World::new(plan(CANARY));
    world.primary_pods_ready = false;
    world.tick(CheckResults::default());
    world.advance(601);
    let decision = world.tick(CheckResults::default());
    assert_eq!(decision.status.phase, Some(Phase::Initializing));
    assert_eq!(
        conditions::status_of(&decision.status, STALLED),
        Some("True")
    );
    assert_eq!(decision.reason.as_str(), "ProgressDeadlineExceeded");
}

#[test]
fn a_pod_template_change_steps_the_weights_and_promotes() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Progressing));
    assert!(
        decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 3 }),
        "canary scaled to the primary's replicas"
    );
    assert_eq!(decision.status.last_applied_spec.as_deref(), Some("v2"));
    world.run_until(Phase::Succeeded, 20);
    assert_eq!(traffic_changes(&world), vec![0, 10, 20, 30, 40, 50, 0]);
    let status = &world.status;
    assert_eq!(status.last_promoted_spec.as_deref(), Some("v2"));
    assert_eq!(status.canary_weight, 0);
    assert_eq!(
        world.obs.primary.as_ref().unwrap().revision.as_deref(),
        Some("v2")
    );
    assert_eq!(
        world.obs.target.as_ref().unwrap().state.replicas,
        0,
        "canary scaled to zero"
    );
    assert_eq!(conditions::status_of(status, PROMOTED), Some("True"));
    assert_eq!(conditions::status_of(status, READY), Some("True"));
}

#[test]
fn each_weight_step_waits_one_interval_of_passing_analysis() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    world.tick_passing();
    world.tick_passing(); // first tick: 10%
    assert_eq!(world.status.canary_weight, 10);
    world.advance(30);
    world.tick_passing();
    assert_eq!(
        world.status.canary_weight, 10,
        "half an interval later nothing moves"
    );
    world.advance(30);
    world.tick_passing();
    assert_eq!(world.status.canary_weight, 20);
}

#[test]
fn a_failed_check_below_the_threshold_halts_without_advancing() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    let decision = world.tick_with(Sample::Value(90.0), true).clone();
    assert_eq!(decision.status.canary_weight, 10);
    assert_eq!(decision.status.failed_checks, 1);
    assert_eq!(decision.status.phase, Some(Phase::Progressing));
    assert!(decision.message.contains("90 < 99"), "{}", decision.message);
}

#[test]
fn failed_checks_reaching_the_threshold_roll_back_to_the_primary() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    world.tick_passing();
    for _ in 0..2 {
        world.advance(60);
        world.tick_with(Sample::Value(90.0), true);
    }
    let decision = world.last().clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "ThresholdReached");
    assert_eq!(world.traffic, Traffic::PRIMARY);
    assert!(
        decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
    assert_eq!(decision.status.canary_weight, 0);
    assert_eq!(decision.status.last_promoted_spec.as_deref(), Some("v1"));
    assert_eq!(
        conditions::status_of(&decision.status, STALLED),
        Some("True")
    );
    assert_eq!(
        conditions::status_of(&decision.status, PROMOTED),
        Some("False")
    );
    assert!(
        decision.actions.iter().any(
            |a| matches!(a, Action::Alert(alert) if alert.reason.as_str() == "ThresholdReached")
        )
    );
}

#[test]
fn failed_checks_are_never_reset_within_one_run() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    world.tick_with(Sample::Value(90.0), true);
    world.advance(60);
    world.tick_passing();
    world.advance(60);
    world.tick_passing();
    assert_eq!(world.status.failed_checks, 1);
    world.advance(60);
    world.tick_with(Sample::Value(90.0), true);
    assert_eq!(world.phase(), Some(Phase::Failed));
}

#[test]
fn a_canary_whose_pods_never_become_ready_rolls_back_at_the_progress_deadline() {
    let mut world = World::initialized(plan(CANARY));
    world.canary_pods_ready = false;
    world.release("v2");
    world.tick_passing();
    world.advance(599);
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Progressing));
    world.advance(1);
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "ProgressDeadlineExceeded");
    assert!(
        decision.message.contains("0/3 ready"),
        "{}",
        decision.message
    );
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn the_canary_is_not_scaled_down_while_the_primary_is_not_ready() {
    let mut world = World::started(plan(CANARY));
    world.obs.primary = Some(not_ready(3, Some("v1")));
    world.advance(60);
    world.tick_with(Sample::Value(1.0), true);
    world.advance(60);
    let decision = world.tick_with(Sample::Value(1.0), true).clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert!(
        !decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
    world.advance(5);
    world.tick_passing();
    assert!(
        !world
            .last()
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 }),
        "still waiting for the primary"
    );
    world.obs.primary = Some(ready(3, Some("v1")));
    world.advance(5);
    assert!(
        world
            .tick_passing()
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
}

#[test]
fn a_primary_that_fails_to_roll_out_during_promotion_is_reverted_at_the_deadline() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    world.run_until(Phase::Promoting, 20);
    // The primary was just updated; pretend its new pods crash.
    world.obs.primary = Some(not_ready(3, Some("v2")));
    world.advance(300);
    world.tick_passing();
    assert_eq!(
        world.phase(),
        Some(Phase::Promoting),
        "traffic stays on the canary while the primary rolls"
    );
    assert_eq!(world.status.canary_weight, 50);
    world.advance(301);
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert!(decision.actions.contains(&Action::RevertPrimary));
    assert!(
        !decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
    assert_eq!(decision.status.last_promoted_spec.as_deref(), Some("v1"));
}

#[test]
fn the_progress_deadline_applies_while_finalising() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    world.run_until(Phase::Promoting, 20);
    world.obs.primary = Some(not_ready(3, Some("v2")));
    world.status.phase = Some(Phase::Finalising);
    world.advance(601);
    assert_eq!(world.tick_passing().status.phase, Some(Phase::Failed));
}

#[test]
fn reverting_the_target_to_the_promoted_revision_is_no_release() {
    let mut world = World::started(plan(CANARY));
    world.release("v1");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "RevertedToPromoted");
    assert_eq!(decision.status.phase, Some(Phase::Succeeded));
    assert_eq!(world.traffic, Traffic::PRIMARY);
    assert!(
        decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 0 })
    );
    world.advance(60);
    assert!(
        world.tick_passing().actions.is_empty(),
        "nothing to roll out"
    );
}

#[test]
fn a_failed_release_reverted_in_git_settles_as_succeeded_and_can_be_released_again() {
    let mut world = World::initialized(plan(CANARY));
    world.canary_pods_ready = false;
    world.release("v2");
    world.tick_passing();
    world.advance(600);
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Failed));
    world.release("v1");
    world.advance(5);
    assert_eq!(world.tick_passing().reason.as_str(), "RevertedToPromoted");
    assert_eq!(world.phase(), Some(Phase::Succeeded));
    world.canary_pods_ready = true;
    world.release("v2");
    world.advance(5);
    assert_eq!(
        world.tick_passing().status.phase,
        Some(Phase::Progressing),
        "v2 again is a new release"
    );
}

#[test]
fn a_new_revision_mid_analysis_restarts_it_from_zero() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    world.tick_with(Sample::Value(90.0), true);
    world.advance(60);
    world.tick_passing();
    assert_eq!(world.status.canary_weight, 20);
    world.release("v3");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "RolloutRestarted");
    assert_eq!(decision.status.canary_weight, 0);
    assert_eq!(decision.status.failed_checks, 0);
    assert_eq!(decision.status.last_applied_spec.as_deref(), Some("v3"));
    assert_eq!(world.traffic, Traffic::PRIMARY);
    world.run_until(Phase::Succeeded, 20);
    assert_eq!(world.status.last_promoted_spec.as_deref(), Some("v3"));
}

#[test]
fn a_config_change_alone_starts_a_rollout() {
    let mut world = World::initialized(plan(CANARY));
    let template = serde_json::json!({"image": "podinfo:6.0.0"});
    let mut configs =
        std::collections::BTreeMap::from([("configmap/podinfo".to_string(), "1".to_string())]);
    let before = serin::workload::revision::of(&template, &configs);
    configs.insert("configmap/podinfo".into(), "2".into());
    let after = serin::workload::revision::of(&template, &configs);
    world.target().revision = before.clone();
    world.status.last_applied_spec = Some(before.clone());
    world.status.last_promoted_spec = Some(before);
    world.target().revision = after;
    world.target().configs = configs.clone();
    let decision = world.tick_passing().clone();
    assert_eq!(decision.reason.as_str(), "NewRevision");
    assert_eq!(decision.status.tracked_configs, configs);
}

#[test]
fn the_status_reads_as_reconciling_while_the_rollout_runs() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    let status = world.tick_passing().status.clone();
    assert_eq!(conditions::status_of(&status, RECONCILING), Some("True"));
    assert_eq!(conditions::status_of(&status, READY), Some("False"));
    assert_eq!(conditions::status_of(&status, STALLED), Some("False"));
    assert_eq!(conditions::status_of(&status, PROMOTED), Some("Unknown"));
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn an_idle_canary_changes_nothing_tick_after_tick() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    world.advance(60);
    world.tick_passing();
    let settled = world.status.clone();
    for _ in 0..5 {
        world.advance(60);
        let decision = world.tick_passing();
        assert!(decision.actions.is_empty());
        assert_eq!(
            decision.status, settled,
            "no status write for an idle canary"
        );
    }
}

#[test]
fn a_missing_target_is_reported_as_stalled_without_touching_anything() {
    let mut world = World::initialized(plan(CANARY));
    world.obs.target = None;
    let decision = world.tick_passing();
    assert!(decision.actions.is_empty());
    assert_eq!(decision.reason.as_str(), "TargetNotFound");
    assert_eq!(
        conditions::status_of(&decision.status, STALLED),
        Some("True")
    );
}

#[test]
fn a_deleted_primary_is_recreated() {
    let mut world = World::initialized(plan(CANARY));
    world.obs.primary = None;
    let decision = world.tick_passing();
    assert!(decision.actions.contains(&Action::EnsurePrimary));
    assert_eq!(decision.status.phase, Some(Phase::Initializing));
}

#[test]
fn post_rollout_hooks_run_after_promotion() {
    let analysis = format!(
        "{CANARY}    webhooks:
      - name: notify
        type: post-rollout
        url: http://hooks.test/done
"
    );
    let mut world = World::initialized(plan(&analysis));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    assert!(
        world
            .last()
            .actions
            .contains(&Action::RunHooks(HookKind::PostRollout))
    );
}

#[test]
fn a_reconcile_failure_shown_on_a_settled_canary_clears_once_a_reconcile_succeeds() {
    let mut world = World::initialized(plan(CANARY));
    assert_eq!(world.phase(), Some(Phase::Initialized));
    // What the controller writes when RBAC forbids a write: the phase stays, Stalled says why.
    world.status = serin::engine::stalled(
        &world.status,
        world.obs.generation,
        serin::engine::Reason::Forbidden,
        "applying Service team/podinfo-canary: forbidden",
        world.now,
    );
    assert_eq!(conditions::status_of(&world.status, STALLED), Some("True"));
    world.advance(30);
    let decision = world.tick(CheckResults::default()).clone();
    assert_eq!(decision.status.phase, Some(Phase::Initialized));
    assert_eq!(
        conditions::status_of(&decision.status, STALLED),
        Some("False")
    );
    assert_eq!(conditions::status_of(&decision.status, READY), Some("True"));
    // And then it is idle again: the next tick writes nothing.
    world.advance(30);
    let before = world.status.clone();
    assert_eq!(world.tick(CheckResults::default()).status, before);
}

const WITH_AUTOSCALER: &str =
    "  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}";

const FOLLOWING_ALWAYS: &str = "  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo, primaryScalerSync: always}";

/// The actions of idle ticks after a release was promoted.
fn idle_actions(extra: &str) -> Vec<Vec<Action>> {
    let mut world = World::initialized(plan_with(CANARY, extra));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    world.advance(60);
    world.tick_passing();
    let settled = world.status.clone();
    (0..3)
        .map(|_| {
            world.advance(60);
            let decision = world.tick_passing();
            assert_eq!(decision.status, settled, "idle: no status write");
            decision.actions.clone()
        })
        .collect()
}

#[test]
fn by_default_the_primarys_autoscaler_follows_at_creation_and_promotion_only() {
    // EnsurePrimary and PromoteTemplate carry the autoscaler; between rollouts nothing syncs
    // it, so an HPA edit waits for the next release, as with Flagger.
    assert_eq!(idle_actions(WITH_AUTOSCALER), vec![Vec::<Action>::new(); 3]);
    let mut world = World::initialized(plan_with(CANARY, WITH_AUTOSCALER));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    let actions: Vec<Action> = world
        .decisions
        .iter()
        .flat_map(|d| d.actions.clone())
        .collect();
    assert!(actions.contains(&Action::PromoteTemplate), "{actions:?}");
    assert!(!actions.contains(&Action::SyncAutoscaler), "{actions:?}");
}

#[test]
fn asked_to_follow_always_an_idle_canary_keeps_the_primarys_autoscaler_in_line() {
    assert_eq!(
        idle_actions(FOLLOWING_ALWAYS),
        vec![vec![Action::SyncAutoscaler]; 3]
    );
}

#[test]
fn a_tick_that_acts_leaves_the_autoscaler_to_its_actions() {
    let mut world = World::initialized(plan_with(CANARY, FOLLOWING_ALWAYS));
    world.release("v2");
    let started = world.tick_passing().clone();
    assert!(
        started
            .actions
            .iter()
            .any(|a| matches!(a, Action::ScaleCanary { .. })),
        "a new revision scales the canary up: {:?}",
        started.actions
    );
    assert!(
        !started.actions.contains(&Action::SyncAutoscaler),
        "{:?}",
        started.actions
    );
}

#[test]
fn without_an_autoscaler_an_idle_canary_has_nothing_to_sync() {
    let mut world = World::initialized(plan(CANARY));
    world.advance(60);
    assert!(world.tick_passing().actions.is_empty());
}

#[test]
fn a_readiness_message_names_what_is_missing_not_only_the_ready_count() {
    // All pods available, but the status describes an older spec: "2/2 ready" alone would
    // explain nothing.
    let behind = serin::engine::WorkloadState {
        current: false,
        ..ready(2, Some("v1"))
    };
    let message = behind.progress();
    assert!(message.starts_with("2/2 ready; "), "{message}");
    assert!(message.contains("observedGeneration behind"), "{message}");
    let rolling = serin::engine::WorkloadState {
        updated: 1,
        ..ready(2, Some("v1"))
    };
    assert!(
        rolling
            .progress()
            .contains("1/2 updated to the latest template"),
        "{}",
        rolling.progress()
    );
    assert_eq!(ready(2, None).progress(), "2/2 ready");
}

#[test]
fn a_primary_still_on_the_old_revision_at_the_deadline_says_so() {
    let mut world = World::initialized(plan(CANARY));
    world.release("v2");
    world.primary_pods_ready = false;
    world.run_until(Phase::Promoting, 20);
    // The primary's pods are all there, but still run the old revision.
    world.obs.primary = Some(ready(3, Some("v1-revision")));
    world.advance(601);
    let decision = world.tick(CheckResults::default()).clone();
    assert_eq!(decision.reason.as_str(), "ProgressDeadlineExceeded");
    assert!(
        decision
            .message
            .contains("3/3 ready; it still runs revision"),
        "{}",
        decision.message
    );
}
