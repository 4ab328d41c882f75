//! The rollout history the engine keeps in `status.history`: one record per rollout that ended
//! (promoted, rolled back, superseded), newest first, bounded in number and size.

mod support;

use serin::api::Phase;
use serin::api::history::{MAX_FAILURES, MAX_MESSAGE, MAX_ROLLOUTS, Outcome};
use serin::api::status::CheckResult;
use serin::engine::input::Sample;
use support::{CANARY, World, plan};

/// Ticks at each requeue with the metric at `value` until `phase`.
fn run_with(world: &mut World, value: f64, phase: Phase) {
    for _ in 0..50 {
        if world.phase() == Some(phase) {
            return;
        }
        let wait = world.last().requeue_after.as_std().as_secs() as i64;
        world.advance(wait);
        world.tick_with(Sample::Value(value), true);
    }
    panic!("did not reach {phase:?}: {}", world.last().message);
}

#[test]
fn a_promoted_rollout_is_recorded_with_its_span_and_the_weight_it_reached() {
    let mut world = World::initialized(plan(CANARY));
    assert!(
        world.status.history.is_empty(),
        "initialization is no rollout"
    );
    let released_at = world.now;
    world.release("v2");
    world.tick_passing();
    let open = world
        .status
        .current_rollout
        .clone()
        .expect("the rollout is under way");
    assert_eq!(open.revision, "v2");
    assert_eq!(open.started_at, Some(released_at));
    assert_eq!(open.outcome, None);
    world.run_until(Phase::Succeeded, 30);

    assert_eq!(world.status.current_rollout, None);
    let [record] = world.status.history.as_slice() else {
        panic!("one rollout: {:?}", world.status.history);
    };
    assert_eq!(record.revision, "v2");
    assert_eq!(record.outcome, Some(Outcome::Promoted));
    assert_eq!(record.reason, "Succeeded");
    assert_eq!(record.started_at, Some(released_at));
    assert_eq!(record.ended_at, Some(world.now));
    assert!(world.now > released_at);
    assert_eq!(record.max_weight, 50, "the last step of 10% steps to 50%");
    assert!(record.failures.is_empty());
}

#[test]
fn a_rollback_keeps_the_failing_checks_with_their_values() {
    let mut world = World::started(plan(CANARY));
    world.tick_passing();
    world.next_passing();
    let reached = world.status.canary_weight;
    assert!(reached >= 20, "{reached}");
    run_with(&mut world, 91.5, Phase::Failed);

    let record = &world.status.history[0];
    assert_eq!(record.outcome, Some(Outcome::RolledBack));
    assert_eq!(record.reason, "ThresholdReached");
    assert!(
        record
            .message
            .starts_with("rolling back: failed checks reached the threshold (2/2)"),
        "{}",
        record.message
    );
    assert_eq!(
        record.max_weight, reached,
        "the weight reached, not the 0% after"
    );
    assert_eq!(record.failed_checks, 2);
    let [check] = record.failures.as_slice() else {
        panic!("{:?}", record.failures);
    };
    assert_eq!(check.name, "request-success-rate");
    assert_eq!(check.result, CheckResult::Fail);
    assert_eq!(check.value, Some(91.5));
    assert_eq!(check.min, Some(99.0));
    assert_eq!(world.status.current_rollout, None);

    // The retry is a rollout of its own, recorded in front of the failed one.
    world.request("retry", "r1");
    world.tick_passing();
    world.run_until(Phase::Succeeded, 30);
    let outcomes: Vec<_> = world.status.history.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Some(Outcome::Promoted), Some(Outcome::RolledBack)]
    );
}

#[test]
fn an_abort_is_a_rollback_with_its_reason() {
    let mut world = World::started(plan(CANARY));
    world.request("abort", "a1");
    world.tick_passing();
    let record = &world.status.history[0];
    assert_eq!(record.outcome, Some(Outcome::RolledBack));
    assert_eq!(record.reason, "AbortedByRequest");
    assert_eq!(record.max_weight, 10);
}

#[test]
fn a_newer_revision_supersedes_the_rollout_under_way_and_a_revert_cancels_it() {
    let mut world = World::started(plan(CANARY));
    world.release("v3");
    world.tick_passing();
    let superseded = &world.status.history[0];
    assert_eq!(superseded.revision, "v2");
    assert_eq!(superseded.outcome, Some(Outcome::Superseded));
    assert_eq!(superseded.reason, "NewRevision");
    assert_eq!(superseded.message, "superseded by revision v3");
    assert_eq!(superseded.max_weight, 10);
    assert_eq!(
        world
            .status
            .current_rollout
            .as_ref()
            .map(|r| r.revision.as_str()),
        Some("v3")
    );

    // Back to what the primary runs: the rollout of v3 is cancelled.
    world.release("v1");
    world.tick_passing();
    assert_eq!(world.phase(), Some(Phase::Succeeded));
    let cancelled = &world.status.history[0];
    assert_eq!(cancelled.revision, "v3");
    assert_eq!(cancelled.outcome, Some(Outcome::Superseded));
    assert_eq!(cancelled.reason, "RevertedToPromoted");
    assert_eq!(world.status.history.len(), 2);
    assert_eq!(world.status.current_rollout, None);
}

#[test]
fn the_history_keeps_the_last_rollouts_newest_first() {
    let mut world = World::initialized(plan(CANARY));
    for n in 2..(4 + MAX_ROLLOUTS) {
        world.release(&format!("v{n}"));
        world.tick_passing();
        world.run_until(Phase::Succeeded, 30);
    }
    let revisions: Vec<&str> = world
        .status
        .history
        .iter()
        .map(|r| r.revision.as_str())
        .collect();
    assert_eq!(revisions.len(), MAX_ROLLOUTS);
    let newest = 3 + MAX_ROLLOUTS;
    let expected: Vec<String> = (0..MAX_ROLLOUTS)
        .map(|i| format!("v{}", newest - i))
        .collect();
    assert_eq!(revisions, expected);
}

#[test]
fn a_record_is_bounded_whatever_the_checks_say() {
    let metrics: String = (0..MAX_FAILURES + 7)
        .map(|i| format!(
                "      - name: metric-{i}\n        templateRef: {{name: t}}\n        thresholdRange: {{min: 99}}\n"
            ))
        .collect();
    let analysis = format!(
        "    interval: 1m\n    threshold: 1\n    maxWeight: 50\n    stepWeight: 10\n    metrics:\n{metrics}"
    );
    let mut world = World::started(plan(&analysis));
    run_with(&mut world, 1.0, Phase::Failed);
    let record = &world.status.history[0];
    assert_eq!(record.failures.len(), MAX_FAILURES);
    assert!(
        record.message.chars().count() <= MAX_MESSAGE,
        "{} characters",
        record.message.chars().count()
    );
    assert!(record.message.ends_with('…'), "{}", record.message);
    // Ten such records stay far below the API server's object size limit.
    let size = serde_json::to_vec(record).unwrap().len();
    assert!(size * MAX_ROLLOUTS < 64 * 1024, "{size} bytes per record");
}
