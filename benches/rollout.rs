//! A 10-step canary rollout (stepWeight 10 to 100), from a new revision to Succeeded:
//! - `engine`: the pure engine alone, fed ready workloads and passing checks;
//! - `simulate`: the whole `serin simulate` path (scenario parsed once; in-memory cluster,
//!   scripted metrics, virtual clock, timeline).
//!
//! Run: `cargo bench --bench rollout`. Results are recorded in docs/benchmarks.md.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use serin::api::{CanaryStatus, Phase};
use serin::engine::input::{MetricSample, Sample};
use serin::engine::{self, CheckResults, Observations, Plan, Target, WorkloadState};
use serin::sim::{self, Scenario};

const SCENARIO: &str = r#"
name: ten steps
canary:
  apiVersion: serin.dev/v1beta1
  kind: Canary
  metadata: {name: podinfo, namespace: bench}
  spec:
    targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
    service: {port: 9898}
    analysis:
      interval: 1m
      stepWeight: 10
      metrics:
        - name: request-success-rate
          thresholdRange: {min: 99}
        - name: request-duration
          thresholdRange: {max: 500}
deployment: {replicas: 3, revision: v1}
events:
  - at: 1m
    release: v2
metrics:
  request-success-rate: [{value: 99.9}]
  request-duration: [{value: 120}]
expect: {phase: Succeeded}
"#;

fn ready(replicas: i32, revision: Option<&str>) -> WorkloadState {
    WorkloadState {
        replicas,
        updated: replicas,
        ready: replicas,
        available: replicas,
        current: true,
        revision: revision.map(str::to_string),
    }
}

/// Drives the engine from Initialized at v1 through a release of v2 to Succeeded; returns the
/// number of decisions.
fn engine_rollout(plan: &Plan, initialized: &CanaryStatus) -> usize {
    let mut status = initialized.clone();
    let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut obs = Observations {
        generation: 1,
        target: Some(Target {
            revision: "v2".into(),
            configs: Default::default(),
            state: ready(3, None),
        }),
        primary: Some(ready(3, Some("v1"))),
        request: None,
        foreign_primary: None,
    };
    let passing = CheckResults {
        hooks: vec![],
        metrics: plan
            .metrics
            .iter()
            .map(|m| MetricSample {
                name: m.name.clone(),
                value: Sample::Value(99.9_f64.min(m.range.max.unwrap_or(f64::MAX))),
                query: None,
            })
            .collect(),
    };
    let mut decisions = 0;
    while status.phase != Some(Phase::Succeeded) {
        let decision = engine::step(plan, &status, &obs, &passing, now);
        if decision.actions.contains(&engine::Action::PromoteTemplate) {
            obs.primary = Some(ready(3, Some("v2")));
        }
        now += decision.requeue_after.as_chrono();
        status = decision.status;
        decisions += 1;
    }
    decisions
}

fn benches(c: &mut Criterion) {
    let scenario = Scenario::from_yaml(SCENARIO, serin::api::provider::DEFAULT)
        .expect("bench scenario is valid");
    let plan = scenario.plan.clone();
    let initialized = CanaryStatus {
        phase: Some(Phase::Initialized),
        last_applied_spec: Some("v1".into()),
        last_promoted_spec: Some("v1".into()),
        ..CanaryStatus::default()
    };
    assert!(
        engine_rollout(&plan, &initialized) >= 11,
        "ten weight steps and a promotion"
    );
    assert_eq!(sim::run(&scenario).outcome.phase, Some(Phase::Succeeded));
    c.bench_function("engine: 10-step rollout", |b| {
        b.iter(|| engine_rollout(black_box(&plan), black_box(&initialized)))
    });
    c.bench_function("simulate: 10-step rollout", |b| {
        b.iter(|| sim::run(black_box(&scenario)))
    });
}

criterion_group!(rollout, benches);
criterion_main!(rollout);
