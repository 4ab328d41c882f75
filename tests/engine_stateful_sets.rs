//! The engine driving StatefulSet objects through the workload seam, with a stand-in for the
//! StatefulSet controller: what the controller observes of a StatefulSet and what it writes
//! (the `-primary` copy with its own claim templates and headless Service, the target's replica
//! count) as the engine's actions ask, without a cluster. Nothing in any phase may change the
//! claims a primary's pods are bound to.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serin::api::{CanaryStatus, Phase};
use serin::engine::input::Sample;
use serin::engine::{self, Action, CheckResults, Decision, Observations, Plan};
use serin::workload::primary::PrimaryInputs;
use serin::workload::target::{Workload, desired_primary, observe};

const REPLICAS: i32 = 3;

fn plan() -> Plan {
    let yaml =
        support::canary_yaml(support::CANARY, "").replace("kind: Deployment", "kind: StatefulSet");
    let canary: serin::api::Canary = serde_yaml_ng::from_str(&yaml).unwrap();
    Plan::from_spec(&canary.spec, support::ANY_PROVIDER).unwrap()
}

fn stateful_set(image: &str) -> StatefulSet {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "namespace": "test", "generation": 1},
        "spec": {
            "replicas": REPLICAS,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": image}]},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }))
    .unwrap()
}

/// What the StatefulSet controller reports once it has acted on the latest spec.
fn settle(set: &mut StatefulSet) {
    let wanted = set.replicas().unwrap_or(1);
    set.status = Some(StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: wanted,
        ready_replicas: Some(wanted),
        updated_replicas: Some(wanted),
        ..StatefulSetStatus::default()
    });
}

fn image(set: &StatefulSet) -> String {
    let pod = set.pod_template().unwrap().spec.as_ref().unwrap();
    pod.containers[0].image.clone().unwrap()
}

fn claims(set: &StatefulSet) -> Option<Vec<PersistentVolumeClaim>> {
    set.spec.as_ref()?.volume_claim_templates.clone()
}

struct World {
    plan: Plan,
    status: CanaryStatus,
    target: StatefulSet,
    primary: Option<StatefulSet>,
    now: DateTime<Utc>,
    decisions: Vec<Decision>,
}

impl World {
    fn new() -> Self {
        let mut target = stateful_set("db:1");
        settle(&mut target);
        Self {
            plan: plan(),
            status: CanaryStatus::default(),
            target,
            primary: None,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            decisions: Vec::new(),
        }
    }

    fn tick(&mut self, value: f64) {
        let obs = Observations {
            generation: 1,
            target: observe(&self.target, BTreeMap::new()),
            primary: self.primary.as_ref().map(Workload::state),
            request: None,
            foreign_primary: None,
        };
        let due = engine::due_checks(&self.plan, &self.status, &obs, self.now);
        let mut found = CheckResults::default();
        if due.metrics {
            for metric in &self.plan.metrics {
                found.metrics.push(engine::input::MetricSample {
                    name: metric.name.clone(),
                    value: Sample::Value(value),
                    query: None,
                });
            }
        }
        let decision = engine::step(&self.plan, &self.status, &obs, &found, self.now);
        let revision = decision
            .status
            .last_applied_spec
            .clone()
            .unwrap_or_default();
        for action in &decision.actions {
            self.apply(action, &revision);
        }
        self.status = decision.status.clone();
        self.now += chrono::Duration::from_std(decision.requeue_after.as_std()).unwrap();
        self.decisions.push(decision);
    }

    fn apply(&mut self, action: &Action, revision: &str) {
        match action {
            Action::EnsurePrimary if self.primary.is_none() => self.promote(revision),
            Action::PromoteTemplate => self.promote(revision),
            Action::ScaleCanary { replicas } => {
                let body = StatefulSet::scale_body("db", "test", *replicas);
                let spec = self.target.spec.as_mut().unwrap();
                spec.replicas = body["spec"]["replicas"].as_i64().map(|r| r as i32);
                let generation = self.target.metadata.generation.unwrap();
                self.target.metadata.generation = Some(generation + 1);
                settle(&mut self.target);
            }
            _ => {}
        }
    }

    fn promote(&mut self, revision: &str) {
        let live = self.primary.as_ref();
        let mut primary = desired_primary(&PrimaryInputs {
            target: &self.target,
            revision,
            tracked: &Default::default(),
            replicas: Some(live.and_then(Workload::replicas).unwrap_or(REPLICAS)),
            owner: None,
            live_selector: live.and_then(Workload::selector),
        })
        .unwrap();
        primary.metadata.generation = Some(live.map_or(1, |p| p.metadata.generation.unwrap() + 1));
        settle(&mut primary);
        self.primary = Some(primary);
    }

    fn release(&mut self, image: &str) {
        let pod = self
            .target
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap();
        pod.containers[0].image = Some(image.into());
        let generation = self.target.metadata.generation.unwrap();
        self.target.metadata.generation = Some(generation + 1);
        settle(&mut self.target);
    }

    fn run_until(&mut self, phase: Phase, value: f64) {
        for _ in 0..60 {
            if self.status.phase == Some(phase) {
                return;
            }
            self.tick(value);
        }
        panic!(
            "never {phase:?}: at {:?}, {}",
            self.status.phase,
            self.decisions.last().unwrap().message
        );
    }
}

#[test]
fn initialization_gives_the_primary_its_own_claims_and_scales_the_stateful_set_to_zero() {
    let mut world = World::new();
    world.run_until(Phase::Initialized, 99.9);
    assert_eq!(world.target.replicas(), Some(0));
    let primary = world.primary.as_ref().unwrap();
    assert_eq!(primary.metadata.name.as_deref(), Some("db-primary"));
    assert_eq!(primary.state().ready, REPLICAS);
    assert_eq!(claims(primary), claims(&world.target));
    let headless: Vec<_> = primary
        .companions()
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert_eq!(headless, ["db-primary"]);
}

#[test]
fn a_release_is_analysed_on_the_stateful_set_and_promoted_into_the_primary() {
    let mut world = World::new();
    world.run_until(Phase::Initialized, 99.9);
    let claims_before = claims(world.primary.as_ref().unwrap());
    world.release("db:2");
    world.run_until(Phase::Progressing, 99.9);
    assert_eq!(world.target.replicas(), Some(REPLICAS), "the canary runs");
    world.run_until(Phase::Succeeded, 99.9);
    let primary = world.primary.as_ref().unwrap();
    assert_eq!(image(primary), "db:2");
    assert_eq!(claims(primary), claims_before, "the same claims");
    assert_eq!(world.target.replicas(), Some(0));
}

#[test]
fn a_failing_release_is_rolled_back_and_the_primary_keeps_its_template_and_claims() {
    let mut world = World::new();
    world.run_until(Phase::Initialized, 99.9);
    let before = world.primary.clone();
    world.release("db:2");
    world.run_until(Phase::Failed, 10.0);
    assert_eq!(
        world.primary, before,
        "the primary is not touched by a rollback"
    );
    assert_eq!(world.target.replicas(), Some(0));
    assert!(
        world
            .decisions
            .iter()
            .flat_map(|d| &d.actions)
            .all(|a| !matches!(a, Action::PromoteTemplate | Action::RevertPrimary)),
        "nothing is written to the primary"
    );
}
