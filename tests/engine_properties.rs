//! Properties of the engine over random strategies, check outcomes, readiness and timing.

mod support;

use proptest::prelude::*;
use serin::api::Phase;
use serin::engine::input::Sample;
use serin::engine::{self, Action, Traffic};
use support::{World, plan};

/// A random analysis block: a canary, A/B or blue/green strategy with random knobs.
fn analysis() -> impl Strategy<Value = String> {
    let canary = (1..=50i32, 1..=100i32, 1..=4i32).prop_map(|(step, max, threshold)| {
        let max = max.max(step);
        format!("    stepWeight: {step}\n    maxWeight: {max}\n    threshold: {threshold}\n")
    });
    let weights = (proptest::collection::btree_set(1..=100i32, 1..6), 1..=3i32).prop_map(
        |(set, threshold)| {
            let list: Vec<String> = set.iter().map(ToString::to_string).collect();
            format!(
                "    stepWeights: [{}]\n    threshold: {threshold}\n",
                list.join(", ")
            )
        },
    );
    let iterations = (1..=6i32, any::<bool>(), any::<bool>()).prop_map(|(n, ab, mirror)| {
        let extra = if ab {
            "    match:\n      - headers:\n          x-canary: {exact: yes}\n".to_string()
        } else if mirror {
            "    mirror: true\n".to_string()
        } else {
            String::new()
        };
        format!("    iterations: {n}\n{extra}")
    });
    prop_oneof![canary, weights, iterations].prop_map(|strategy| {
        format!(
            "    interval: 1m\n{strategy}    stepWeightPromotion: 30\n    metrics:\n      - name: request-success-rate\n        thresholdRange: {{min: 99}}\n        onNoData: wait\n"
        )
    })
}

/// What the world does at each tick: the metric's answer, and whether pods are ready.
#[derive(Debug, Clone)]
struct Tick {
    sample: u8,
    canary_ready: bool,
    primary_ready: bool,
}

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    proptest::collection::vec(
        (
            0..10u8,
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.95),
        )
            .prop_map(|(sample, canary_ready, primary_ready)| Tick {
                sample,
                canary_ready,
                primary_ready,
            }),
        1..120,
    )
}

fn sample(code: u8) -> Sample {
    match code {
        0 => Sample::Value(50.0),
        1 => Sample::NoData,
        2 => Sample::Error("timeout".into()),
        _ => Sample::Value(99.9),
    }
}

/// Drives one release through the ticks, then keeps passing until settled; returns the world.
fn drive(analysis: &str, script: &[Tick]) -> World {
    let mut world = World::initialized(plan(analysis));
    world.release("v2");
    for tick in script {
        world.canary_pods_ready = tick.canary_ready;
        world.primary_pods_ready = tick.primary_ready;
        if !tick.canary_ready
            && let Some(target) = world.obs.target.as_mut()
        {
            target.state.available = 0;
        }
        let found = world.answers(sample(tick.sample), tick.sample != 1);
        world.tick(found);
        let wait = world.last().requeue_after.as_std().as_secs() as i64;
        world.advance(wait);
        if world.phase().is_some_and(Phase::is_settled) {
            break;
        }
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn canary_weights_stay_within_zero_and_max_weight(analysis in analysis(), script in ticks()) {
        let world = drive(&analysis, &script);
        let max = world.plan.max_weight();
        for action in world.all_actions() {
            if let Action::SetTraffic(traffic) = action {
                prop_assert!((0..=max).contains(&traffic.canary), "canary {} above max {max}", traffic.canary);
                prop_assert_eq!(traffic.primary + traffic.canary, 100);
            }
        }
        for decision in &world.decisions {
            prop_assert!((0..=max).contains(&decision.status.canary_weight));
        }
    }

    #[test]
    fn every_rollback_leaves_all_traffic_on_the_primary(analysis in analysis(), script in ticks()) {
        let world = drive(&analysis, &script);
        for decision in &world.decisions {
            if decision.status.phase == Some(Phase::Failed) {
                prop_assert_eq!(decision.status.canary_weight, 0);
            }
            let routed_to_failed = decision.actions.iter().rev().find_map(|a| match a {
                Action::SetTraffic(t) => Some(*t),
                _ => None,
            });
            if decision.status.phase == Some(Phase::Failed) && routed_to_failed.is_some() {
                prop_assert_eq!(routed_to_failed, Some(Traffic::PRIMARY));
            }
        }
        if world.phase() == Some(Phase::Failed) {
            prop_assert_eq!(world.traffic, Traffic::PRIMARY);
        }
    }

    #[test]
    fn the_same_input_gives_the_same_decision(analysis in analysis(), script in ticks()) {
        let world = drive(&analysis, &script);
        // Replay every recorded input: the engine holds no hidden state.
        let mut replay = World::initialized(plan(&analysis));
        replay.release("v2");
        let first = engine::step(&world.plan, &replay.status, &replay.obs, &Default::default(), replay.now);
        let second = engine::step(&world.plan, &replay.status, &replay.obs, &Default::default(), replay.now);
        prop_assert_eq!(first, second);
        for decision in &world.decisions {
            let again = engine::step(&world.plan, &decision.status, &world.obs, &Default::default(), world.now);
            let twice = engine::step(&world.plan, &decision.status, &world.obs, &Default::default(), world.now);
            prop_assert_eq!(again, twice);
        }
    }

    #[test]
    fn any_sequence_of_ticks_ends_in_succeeded_or_failed(analysis in analysis(), script in ticks()) {
        let mut world = drive(&analysis, &script);
        // Then the world behaves: pods become ready and checks answer; the rollout must settle
        // within a bounded number of ticks (steps + threshold + deadline ticks).
        world.canary_pods_ready = true;
        world.primary_pods_ready = true;
        if let Some(target) = world.obs.target.as_mut() {
            let replicas = target.state.replicas;
            target.state = support::ready(replicas, None);
        }
        if let Some(primary) = world.obs.primary.as_mut() {
            let revision = primary.revision.clone();
            *primary = support::ready(primary.replicas, revision.as_deref());
        }
        for _ in 0..200 {
            if world.phase().is_some_and(Phase::is_settled) {
                break;
            }
            world.tick_passing();
            let wait = world.last().requeue_after.as_std().as_secs() as i64;
            world.advance(wait);
        }
        prop_assert!(
            matches!(world.phase(), Some(Phase::Succeeded | Phase::Failed)),
            "ended in {:?}: {}", world.phase(), world.last().message
        );
    }
}
