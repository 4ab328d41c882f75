//! Strategies (canary steps, pauses, A/B, blue/green, mirroring), gates and no-data policies.

mod support;

use serin::api::Phase;
use serin::api::canary::HookKind;
use serin::engine::input::Sample;
use serin::engine::{Action, Traffic};
use support::{CANARY, World, plan, plan_with};

fn weights_seen(world: &World) -> Vec<Traffic> {
    world
        .all_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::SetTraffic(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn with_hook(kind: &str) -> String {
    format!(
        "{CANARY}    webhooks:\n      - name: gate\n        type: {kind}\n        url: http://gate.test/\n"
    )
}

#[test]
fn step_weights_are_followed_in_order() {
    let mut world = World::initialized(plan(
        "    stepWeights: [1, 5, 25, 75]\n    metrics:\n      - name: request-duration\n        thresholdRange: {max: 500}\n",
    ));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    let canary: Vec<i32> = weights_seen(&world).iter().map(|t| t.canary).collect();
    assert_eq!(canary, vec![0, 1, 5, 25, 75, 0]);
}

#[test]
fn step_weight_stops_at_max_weight_even_off_the_grid() {
    let mut world = World::initialized(plan("    stepWeight: 20\n    maxWeight: 50\n"));
    world.release("v2");
    world.run_until(Phase::Succeeded, 20);
    let canary: Vec<i32> = weights_seen(&world).iter().map(|t| t.canary).collect();
    assert_eq!(canary, vec![0, 20, 40, 50, 0]);
}

#[test]
fn steps_with_pauses_hold_each_weight_for_its_pause() {
    let mut world = World::started(plan(
        "    interval: 1m\n    steps:\n      - weight: 10\n        pause: 5m\n      - weight: 50\n",
    ));
    assert_eq!(world.status.canary_weight, 10);
    for minute in 1..5 {
        world.advance(60);
        world.tick_passing();
        assert_eq!(
            world.status.canary_weight, 10,
            "still paused after {minute}m"
        );
        assert_eq!(world.last().reason.as_str(), "StepHeld");
    }
    world.advance(60);
    world.tick_passing();
    assert_eq!(world.status.canary_weight, 50);
}

#[test]
fn confirm_rollout_holds_the_release_in_waiting_until_the_gate_opens() {
    let mut world = World::initialized(plan(&with_hook("confirm-rollout")));
    world.release("v2");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Waiting));
    assert!(
        !decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::ScaleCanary { .. }))
    );
    for _ in 0..3 {
        world.advance(60);
        world.tick_with(Sample::Value(99.9), false);
        assert_eq!(world.phase(), Some(Phase::Waiting));
        assert_eq!(
            world.status.failed_checks, 0,
            "a closed gate is not a failure"
        );
    }
    world.advance(60);
    let decision = world.tick_passing();
    assert_eq!(decision.status.phase, Some(Phase::Progressing));
    assert!(
        decision
            .actions
            .contains(&Action::ScaleCanary { replicas: 3 })
    );
}

#[test]
fn confirm_traffic_increase_holds_the_weight_without_counting_a_failure() {
    let mut world = World::started(plan(&with_hook("confirm-traffic-increase")));
    for _ in 0..3 {
        world.advance(60);
        world.tick_with(Sample::Value(99.9), false);
    }
    assert_eq!(world.status.canary_weight, 10);
    assert_eq!(world.status.failed_checks, 0);
    world.advance(60);
    world.tick_passing();
    assert_eq!(world.status.canary_weight, 20);
}

#[test]
fn confirm_promotion_waits_with_analysis_running_and_then_promotes() {
    let mut world = World::initialized(plan(&with_hook("confirm-promotion")));
    world.release("v2");
    world.tick_passing();
    for _ in 0..5 {
        world.next_passing();
    }
    world.advance(60);
    world.tick_with(Sample::Value(99.9), false);
    assert_eq!(world.phase(), Some(Phase::WaitingPromotion));
    assert_eq!(world.status.canary_weight, 50);
    world.advance(60);
    world.tick_with(Sample::Value(42.0), false);
    assert_eq!(
        world.status.failed_checks, 1,
        "metrics are still checked while waiting"
    );
    world.advance(60);
    let decision = world.tick_passing();
    assert_eq!(decision.status.phase, Some(Phase::Promoting));
    assert!(decision.actions.contains(&Action::PromoteTemplate));
}

#[test]
fn an_unconfirmed_promotion_rolls_back_after_the_promotion_timeout() {
    let analysis = with_hook("confirm-promotion").replace(
        "    threshold: 2\n",
        "    threshold: 2\n    promotionTimeout: 10m\n",
    );
    let mut world = World::initialized(plan(&analysis));
    world.release("v2");
    world.tick_passing();
    for _ in 0..5 {
        world.next_passing();
    }
    world.advance(60);
    world.tick_with(Sample::Value(99.9), false);
    assert_eq!(world.phase(), Some(Phase::WaitingPromotion));
    for _ in 0..9 {
        world.advance(60);
        world.tick_with(Sample::Value(99.9), false);
    }
    assert_eq!(world.phase(), Some(Phase::WaitingPromotion));
    world.advance(60);
    let decision = world.tick_with(Sample::Value(99.9), false).clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "PromotionTimedOut");
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn a_failing_pre_rollout_hook_counts_as_a_failed_check_and_sends_no_traffic() {
    let mut world = World::initialized(plan(&with_hook("pre-rollout")));
    world.release("v2");
    world.tick_passing();
    world.tick_with(Sample::Value(99.9), false);
    assert_eq!(world.status.failed_checks, 1);
    assert_eq!(world.status.canary_weight, 0);
    assert!(
        world.last().actions.iter().any(
            |a| matches!(a, Action::Alert(alert) if alert.reason.as_str() == "PreRolloutFailed")
        )
    );
    world.advance(60);
    world.tick_with(Sample::Value(99.9), false);
    assert_eq!(world.phase(), Some(Phase::Failed));
}

#[test]
fn a_rollback_hook_that_says_yes_rolls_back() {
    let mut world = World::started(plan(&with_hook("rollback")));
    world.advance(60);
    let found = world.answers_by(|_| Sample::Value(99.9), |kind| kind == HookKind::Rollback);
    let decision = world.tick(found).clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "RollbackRequested");
}

#[test]
fn a_rollback_hook_that_says_no_lets_the_rollout_continue() {
    let mut world = World::started(plan(&with_hook("rollback")));
    world.advance(60);
    let found = world.answers_by(|_| Sample::Value(99.9), |kind| kind != HookKind::Rollback);
    assert_eq!(world.tick(found).status.canary_weight, 20);
}

#[test]
fn ab_testing_routes_matching_requests_and_promotes_after_its_iterations() {
    let mut world = World::started(plan(
        "    iterations: 3\n    match:\n      - headers:\n          x-canary: {exact: insider}\n",
    ));
    assert!(world.traffic.matched_to_canary);
    assert_eq!(world.traffic.canary, 0);
    world.next_passing();
    world.next_passing();
    assert_eq!(world.status.iterations, 2);
    world.next_passing();
    assert_eq!(world.phase(), Some(Phase::Promoting));
    assert_eq!(
        world.traffic,
        Traffic::weights(0, 100),
        "all traffic to the analysed canary while the primary updates"
    );
    world.run_until(Phase::Succeeded, 5);
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn blue_green_analyses_without_user_traffic_then_switches() {
    let mut world = World::started(plan("    iterations: 2\n"));
    assert_eq!(world.traffic, Traffic::PRIMARY);
    world.run_until(Phase::Promoting, 5);
    assert_eq!(world.traffic, Traffic::weights(0, 100));
    world.run_until(Phase::Succeeded, 5);
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn blue_green_with_mirroring_mirrors_traffic_to_the_canary() {
    let world = World::started(plan(
        "    iterations: 2\n    mirror: true\n    mirrorWeight: 50\n",
    ));
    assert_eq!(world.traffic.mirror, Some(50));
    assert_eq!(world.traffic.canary, 0);
}

#[test]
fn step_weight_promotion_returns_traffic_to_the_primary_step_by_step() {
    let mut world = World::initialized(plan(&format!("{CANARY}    stepWeightPromotion: 20\n")));
    world.release("v2");
    world.run_until(Phase::Promoting, 20);
    world.run_until(Phase::Succeeded, 20);
    let canary: Vec<i32> = weights_seen(&world).iter().map(|t| t.canary).collect();
    assert_eq!(&canary[canary.len() - 3..], &[30, 10, 0]);
}

#[test]
fn skip_analysis_promotes_at_once_without_scaling_the_canary() {
    let mut world = World::initialized(plan_with(CANARY, "  skipAnalysis: true"));
    world.release("v2");
    let decision = world.tick_passing().clone();
    assert_eq!(decision.status.phase, Some(Phase::Promoting));
    assert!(decision.actions.contains(&Action::PromoteTemplate));
    world.run_until(Phase::Succeeded, 3);
    assert!(
        !world
            .all_actions()
            .contains(&Action::ScaleCanary { replicas: 3 })
    );
}

fn no_data_world(policy: &str) -> World {
    let analysis = format!(
        "    interval: 1m\n    stepWeight: 50\n    metrics:\n      - name: request-success-rate\n        thresholdRange: {{min: 99}}\n        onNoData: {policy}\n"
    );
    let mut world = World::started(plan(&analysis));
    world.advance(60);
    world
}

#[test]
fn no_data_fails_the_check_by_default_like_flagger() {
    let mut world = no_data_world("fail");
    world.tick_with(Sample::NoData, true);
    assert_eq!(world.phase(), Some(Phase::Failed), "threshold 1");
    assert!(
        world.last().message.contains("no values found"),
        "{}",
        world.last().message
    );
}

#[test]
fn no_data_with_skip_passes_the_check() {
    let mut world = no_data_world("skip");
    world.tick_with(Sample::NoData, true);
    assert_eq!(world.status.canary_weight, 100);
}

#[test]
fn no_data_with_wait_holds_the_step_until_data_comes_or_the_deadline_passes() {
    let mut world = no_data_world("wait");
    world.tick_with(Sample::NoData, true);
    assert_eq!(world.last().reason.as_str(), "WaitingForData");
    assert_eq!(world.status.failed_checks, 0);
    assert_eq!(world.status.canary_weight, 50);
    for _ in 0..9 {
        world.advance(60);
        world.tick_with(Sample::NoData, true);
    }
    assert_eq!(
        world.phase(),
        Some(Phase::Progressing),
        "540s of the 600s deadline"
    );
    world.advance(60);
    world.tick_with(Sample::NoData, true);
    assert_eq!(world.phase(), Some(Phase::Failed));
    assert_eq!(world.last().reason.as_str(), "ProgressDeadlineExceeded");
}

#[test]
fn nan_is_no_data_and_an_error_is_a_failure() {
    let mut world = no_data_world("wait");
    world.tick_with(Sample::Value(f64::NAN), true);
    assert_eq!(world.last().reason.as_str(), "WaitingForData");
    world.advance(60);
    world.tick_with(Sample::Error("connection refused".into()), true);
    assert_eq!(world.phase(), Some(Phase::Failed));
    assert!(world.last().message.contains("connection refused"));
}

#[test]
fn a_due_metric_without_a_result_never_passes() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    world.tick(Default::default());
    assert_eq!(world.status.failed_checks, 1);
    assert!(world.last().message.contains("not evaluated"));
}

#[test]
fn check_results_are_kept_in_the_status_with_value_and_bounds() {
    let mut world = World::started(plan(CANARY));
    world.advance(60);
    world.tick_with(Sample::Value(97.5), true);
    let check = world
        .status
        .checks
        .iter()
        .find(|c| c.name == "request-success-rate")
        .unwrap();
    assert_eq!(check.value, Some(97.5));
    assert_eq!(check.min, Some(99.0));
    assert_eq!(check.message, "97.5 < 99 (min)");
}

#[test]
fn due_checks_ask_for_metrics_only_when_an_analysis_tick_is_due() {
    let mut world = World::initialized(plan(&with_hook("rollout")));
    world.release("v2");
    world.tick_passing();
    let due = serin::engine::due_checks(&world.plan, &world.status, &world.obs, world.now);
    assert_eq!(
        due.hooks,
        vec![],
        "the first tick runs only pre-rollout hooks, and there are none"
    );
    world.tick_passing();
    world.advance(30);
    assert!(
        serin::engine::due_checks(&world.plan, &world.status, &world.obs, world.now).is_empty()
    );
    world.advance(30);
    let due = serin::engine::due_checks(&world.plan, &world.status, &world.obs, world.now);
    assert!(due.metrics);
    assert_eq!(due.hooks, vec![HookKind::Rollout]);
}

fn judged(critical: bool) -> World {
    let analysis = format!(
        "    interval: 1m\n    threshold: 2\n    stepWeight: 25\n    metrics:\n      - name: latency\n        templateRef: {{name: latency}}\n        judge: {{critical: {critical}, minSamples: 20}}\n"
    );
    World::started(plan(&analysis))
}

fn samples(canary_median: f64) -> Sample {
    use serin::sim::samples::lognormal;
    Sample::Compared {
        canary: lognormal(1, canary_median, 0.1, 40),
        primary: lognormal(2, 100.0, 0.1, 40),
    }
}

#[test]
fn a_judged_metric_passes_when_the_canary_matches_the_primary() {
    let mut world = judged(false);
    world.advance(60);
    world.tick_with(samples(100.0), true);
    assert_eq!(world.status.canary_weight, 50);
    let check = &world.status.checks[0];
    let judgement = check.judgement.as_ref().expect("statistics in the status");
    assert_eq!(judgement.class, "Pass");
    assert!(
        judgement.p_value.is_some()
            && judgement.shift_lower.is_some()
            && judgement.effect.is_some()
    );
}

#[test]
fn a_regression_against_the_primary_counts_as_a_failed_check() {
    let mut world = judged(false);
    world.advance(60);
    world.tick_with(samples(140.0), true);
    assert_eq!(world.status.failed_checks, 1);
    assert_eq!(world.phase(), Some(Phase::Progressing));
    assert!(
        world.last().message.contains("High against the primary"),
        "{}",
        world.last().message
    );
}

#[test]
fn a_critical_metric_regression_rolls_back_at_once() {
    let mut world = judged(true);
    world.advance(60);
    let decision = world.tick_with(samples(140.0), true).clone();
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(decision.reason.as_str(), "CriticalMetricFailed");
    assert_eq!(world.traffic, Traffic::PRIMARY);
}

#[test]
fn a_judged_metric_with_too_few_samples_follows_its_no_data_policy() {
    let mut world = judged(false);
    world.advance(60);
    let few = Sample::Compared {
        canary: vec![1.0; 5],
        primary: vec![1.0; 40],
    };
    world.tick_with(few, true);
    assert_eq!(world.status.failed_checks, 1, "onNoData defaults to fail");
    assert!(world.last().message.contains("too few samples"));
}

#[test]
fn a_judged_metric_given_a_single_value_is_an_error_not_a_pass() {
    let mut world = judged(false);
    world.advance(60);
    world.tick_with(Sample::Value(100.0), true);
    assert_eq!(world.status.failed_checks, 1);
    assert!(
        world
            .last()
            .message
            .contains("needs the canary's and the primary's values")
    );
}

/// Three judged metrics, weights 1, 1 and 2: one regression of a weight-1 metric scores 75.
fn weighted(thresholds: &str) -> World {
    let metric = |name: &str, weight: u32| {
        format!(
            "      - name: {name}\n        templateRef: {{name: {name}}}\n        judge: {{weight: {weight}}}\n"
        )
    };
    let analysis = format!(
        "    interval: 1m\n    threshold: 2\n    stepWeight: 25\n{thresholds}    metrics:\n{}{}{}",
        metric("latency", 1),
        metric("errors", 1),
        metric("saturation", 2),
    );
    World::started(plan(&analysis))
}

fn latency_regressed(name: &str) -> Sample {
    samples(if name == "latency" { 140.0 } else { 100.0 })
}

#[test]
fn a_marginal_score_pauses_the_rollout_for_a_human() {
    let mut world = weighted("");
    world.advance(60);
    let found = world.answers_by(latency_regressed, |_| true);
    world.tick(found);
    assert!(
        world.status.paused,
        "75 is marginal with the defaults 95/75"
    );
    assert_eq!(
        world.status.failed_checks, 0,
        "marginal is not a failed check"
    );
    assert_eq!(world.last().reason.as_str(), "JudgeMarginal");
    assert!(
        world.last().message.contains("judge score 75")
            && world.last().message.contains("latency High"),
        "{}",
        world.last().message
    );
    let latency = world.status.checks.iter().find(|c| c.name == "latency");
    assert_eq!(latency.unwrap().judgement.as_ref().unwrap().class, "High");
}

#[test]
fn a_score_below_marginal_is_a_failed_check_and_weights_count() {
    let mut world = weighted("    scoreThresholds: {pass: 95, marginal: 80}\n");
    world.advance(60);
    let found = world.answers_by(latency_regressed, |_| true);
    world.tick(found);
    assert!(!world.status.paused);
    assert_eq!(world.status.failed_checks, 1, "75 < 80: one failed check");
    // The heavier metric regressing scores 50, the lighter one alone 75: weights matter.
    let mut world = weighted("    scoreThresholds: {pass: 70, marginal: 60}\n");
    world.advance(60);
    let found = world.answers_by(latency_regressed, |_| true);
    world.tick(found);
    assert_eq!(world.status.failed_checks, 0, "75 passes at 70");
    assert_eq!(world.status.canary_weight, 50);
    world.advance(60);
    let found = world.answers_by(
        |name| samples(if name == "saturation" { 140.0 } else { 100.0 }),
        |_| true,
    );
    world.tick(found);
    assert_eq!(world.status.failed_checks, 1, "50 < 60");
}
