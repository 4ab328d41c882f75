//! The engine driving DaemonSet objects through the workload seam, with a stand-in for the
//! DaemonSet controller on three nodes: what the controller observes of a DaemonSet (revision,
//! readiness) and what it writes (the primary, the idle node selector) as the engine's actions
//! ask, without a cluster. Idling the canary must never read as a release.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use serin::api::{CanaryStatus, Phase};
use serin::engine::input::Sample;
use serin::engine::{self, Action, CheckResults, Decision, Observations, Plan};
use serin::workload::daemonset::{IDLE_LABEL, is_idle};
use serin::workload::primary::PrimaryInputs;
use serin::workload::target::{Workload, desired_primary, observe};

const NODES: i32 = 3;

/// The standard canary analysis, for a DaemonSet target.
fn plan() -> Plan {
    let yaml =
        support::canary_yaml(support::CANARY, "").replace("kind: Deployment", "kind: DaemonSet");
    let canary: serin::api::Canary = serde_yaml_ng::from_str(&yaml).unwrap();
    Plan::from_spec(&canary.spec, support::ANY_PROVIDER).unwrap()
}

fn daemon_set(image: &str) -> DaemonSet {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "agent", "namespace": "test", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": image}], "nodeSelector": {"pool": "edge"}},
            },
        },
    }))
    .unwrap()
}

/// What the DaemonSet controller reports once it has acted on the latest spec: a pod of the
/// latest template, ready, on every node the node selector allows.
fn settle(daemon_set: &mut DaemonSet) {
    let wanted = if is_idle(daemon_set) { 0 } else { NODES };
    daemon_set.status = Some(DaemonSetStatus {
        observed_generation: daemon_set.metadata.generation,
        desired_number_scheduled: wanted,
        current_number_scheduled: wanted,
        updated_number_scheduled: Some(wanted),
        number_ready: wanted,
        number_available: Some(wanted),
        ..DaemonSetStatus::default()
    });
}

fn image(daemon_set: &DaemonSet) -> String {
    let pod = daemon_set.pod_template().unwrap().spec.as_ref().unwrap();
    pod.containers[0].image.clone().unwrap()
}

struct World {
    plan: Plan,
    status: CanaryStatus,
    target: DaemonSet,
    primary: Option<DaemonSet>,
    now: DateTime<Utc>,
    decisions: Vec<Decision>,
}

impl World {
    fn new() -> Self {
        let mut target = daemon_set("agent:1");
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

    fn revision(&self) -> String {
        observe(&self.target, BTreeMap::new()).unwrap().revision
    }

    fn tick(&mut self, value: f64) {
        let obs = Observations {
            generation: 1,
            target: observe(&self.target, BTreeMap::new()),
            primary: self.primary.as_ref().map(Workload::state),
            request: None,
            // As the controller's shell computes it: serin's primaries are never foreign.
            foreign_primary: self
                .primary
                .as_ref()
                .and_then(|p| serin::workload::foreign::compare(p, &self.target)),
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
                // Server-side apply of the scale body: at zero serin owns the idle key, above
                // zero it owns nothing and the key goes.
                let body = DaemonSet::scale_body("agent", "test", *replicas);
                let owned = body.pointer("/spec/template/spec/nodeSelector").is_some();
                let pod = self
                    .target
                    .spec
                    .as_mut()
                    .unwrap()
                    .template
                    .spec
                    .as_mut()
                    .unwrap();
                let selector = pod.node_selector.get_or_insert_with(BTreeMap::new);
                if owned {
                    selector.insert(IDLE_LABEL.into(), "true".into());
                } else {
                    selector.remove(IDLE_LABEL);
                }
                self.changed_target();
            }
            _ => {}
        }
    }

    fn promote(&mut self, revision: &str) {
        let mut primary = desired_primary(&PrimaryInputs {
            target: &self.target,
            revision,
            tracked: &Default::default(),
            replicas: None,
            owner: None,
            live_selector: self.primary.as_ref().and_then(Workload::selector),
        })
        .unwrap();
        primary.metadata.generation = Some(
            self.primary
                .as_ref()
                .map_or(1, |p| p.metadata.generation.unwrap() + 1),
        );
        settle(&mut primary);
        self.primary = Some(primary);
    }

    fn changed_target(&mut self) {
        let generation = self.target.metadata.generation.unwrap();
        self.target.metadata.generation = Some(generation + 1);
        settle(&mut self.target);
    }

    /// The user's GitOps tool applies a new image; serin's idle key stays (its field).
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
        self.changed_target();
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
fn initialization_parks_the_daemon_set_on_no_node_without_starting_a_rollout() {
    let mut world = World::new();
    let revision = world.revision();
    world.run_until(Phase::Initialized, 99.9);
    assert!(is_idle(&world.target), "the canary runs on no node");
    assert_eq!(world.target.state().replicas, 0);
    assert_eq!(world.revision(), revision, "idling is not a release");
    let primary = world.primary.as_ref().unwrap();
    assert_eq!(primary.state().ready, NODES);
    let node_selector = primary
        .pod_template()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .node_selector
        .clone();
    assert_eq!(
        node_selector,
        Some(BTreeMap::from([("pool".to_string(), "edge".to_string())])),
        "the primary keeps the user's node selector, not the idle key"
    );
    for _ in 0..5 {
        world.tick(99.9);
    }
    assert_eq!(world.status.phase, Some(Phase::Initialized));
}

#[test]
fn a_release_runs_on_every_node_during_the_analysis_and_is_promoted() {
    let mut world = World::new();
    world.run_until(Phase::Initialized, 99.9);
    world.release("agent:2");
    world.run_until(Phase::Progressing, 99.9);
    assert!(!is_idle(&world.target), "the canary runs on every node");
    assert_eq!(world.target.state().ready, NODES);
    world.run_until(Phase::Succeeded, 99.9);
    let primary = world.primary.as_ref().unwrap();
    assert_eq!(image(primary), "agent:2");
    assert!(!is_idle(primary));
    assert!(is_idle(&world.target), "the canary is back on no node");
    let weights: Vec<i32> = world
        .decisions
        .iter()
        .map(|d| d.status.canary_weight)
        .collect();
    assert!(
        weights.contains(&50),
        "the analysis reached maxWeight: {weights:?}"
    );
    for _ in 0..5 {
        world.tick(99.9);
    }
    assert_eq!(
        world.status.phase,
        Some(Phase::Succeeded),
        "no second rollout"
    );
}

#[test]
fn a_failing_release_is_rolled_back_and_the_daemon_set_parked_again() {
    let mut world = World::new();
    world.run_until(Phase::Initialized, 99.9);
    world.release("agent:2");
    world.run_until(Phase::Failed, 42.0);
    assert_eq!(image(world.primary.as_ref().unwrap()), "agent:1");
    assert!(is_idle(&world.target));
    assert_eq!(
        image(&world.target),
        "agent:2",
        "the user's template is theirs"
    );
}

#[test]
fn a_missing_daemon_set_is_named_as_one() {
    let obs = Observations {
        generation: 1,
        target: None,
        primary: None,
        request: None,
        foreign_primary: None,
    };
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let decision = engine::step(
        &plan(),
        &CanaryStatus::default(),
        &obs,
        &CheckResults::default(),
        now,
    );
    assert_eq!(decision.message, "the target DaemonSet does not exist");
}
