//! A tiny world around the pure engine for behaviour tests: it applies the engine's actions to
//! plain observations the way a cluster would, with readiness under the test's control, and a
//! clock the test moves.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};

use serin::api::canary::HookKind;
use serin::api::provider::{ProviderKind, TrafficProvider};
use serin::api::{Canary, CanaryStatus, Phase};
use serin::engine::input::{HookOutcome, MetricSample, Sample};
use serin::engine::{
    self, Action, CheckResults, Decision, ManualRequest, Observations, Plan, Target, Traffic,
    WorkloadState,
};

/// A Canary manifest with the given `analysis` block (YAML, indented by 4 spaces) and extra
/// spec lines.
pub fn canary_yaml(analysis: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: serin.dev/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
{extra_spec}
  analysis:
{analysis}"
    )
}

pub fn plan(analysis: &str) -> Plan {
    plan_with(analysis, "")
}

pub fn plan_with(analysis: &str, extra_spec: &str) -> Plan {
    let canary: Canary =
        serde_yaml_ng::from_str(&canary_yaml(analysis, extra_spec)).expect("test manifest parses");
    Plan::from_spec(&canary.spec, ANY_PROVIDER).expect("test manifest is valid")
}

/// The standard canary: 10% steps to 50%, threshold 2, one metric.
/// The engine tests speak of strategies, not providers: Istio can carry every strategy out.
pub const ANY_PROVIDER: TrafficProvider = TrafficProvider::of(ProviderKind::Istio);

pub const CANARY: &str = "    interval: 1m
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
";

pub fn ready(replicas: i32, revision: Option<&str>) -> WorkloadState {
    WorkloadState {
        replicas,
        updated: replicas,
        ready: replicas,
        available: replicas,
        current: true,
        revision: revision.map(str::to_string),
    }
}

pub fn not_ready(replicas: i32, revision: Option<&str>) -> WorkloadState {
    WorkloadState {
        updated: 0,
        ready: 0,
        available: 0,
        ..ready(replicas, revision)
    }
}

pub struct World {
    pub plan: Plan,
    pub status: CanaryStatus,
    pub obs: Observations,
    pub now: DateTime<Utc>,
    /// Whether pods become ready when (re)started; tests flip these.
    pub canary_pods_ready: bool,
    pub primary_pods_ready: bool,
    pub traffic: Traffic,
    pub decisions: Vec<Decision>,
    promoted_before: Option<String>,
}

impl World {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            status: CanaryStatus::default(),
            obs: Observations {
                generation: 1,
                target: Some(Target {
                    revision: "v1".into(),
                    configs: Default::default(),
                    state: ready(3, None),
                }),
                primary: None,
                request: None,
                foreign_primary: None,
            },
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            canary_pods_ready: true,
            primary_pods_ready: true,
            traffic: Traffic::PRIMARY,
            decisions: Vec::new(),
            promoted_before: None,
        }
    }

    /// A world whose canary finished initialization at revision v1 (primary ready, 3 replicas).
    pub fn initialized(plan: Plan) -> Self {
        let mut world = Self::new(plan);
        world.tick(CheckResults::default());
        world.tick(CheckResults::default());
        assert_eq!(world.phase(), Some(Phase::Initialized));
        world
    }

    /// An initialized world where revision v2 was released and the first analysis tick routed
    /// the first step (canary ready, checks passing).
    pub fn started(plan: Plan) -> Self {
        let mut world = Self::initialized(plan);
        world.release("v2");
        world.tick_passing();
        world.tick_passing();
        world
    }

    pub fn phase(&self) -> Option<Phase> {
        self.status.phase
    }

    pub fn target(&mut self) -> &mut Target {
        self.obs.target.as_mut().expect("target exists")
    }

    /// The user applies a new pod template.
    pub fn release(&mut self, revision: &str) {
        let ready = self.canary_pods_ready;
        let target = self.target();
        target.revision = revision.into();
        let replicas = target.state.replicas;
        target.state = if ready {
            self::ready(replicas, None)
        } else {
            not_ready(replicas, None)
        };
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now += chrono::Duration::seconds(seconds);
    }

    pub fn request(&mut self, action: &str, id: &str) {
        self.obs.request = Some(ManualRequest::parse(action, Some(id)));
    }

    /// One reconcile with the given check results; actions are applied to the world.
    pub fn tick(&mut self, found: CheckResults) -> &Decision {
        let decision = engine::step(&self.plan, &self.status, &self.obs, &found, self.now);
        for action in &decision.actions {
            self.apply(action);
        }
        self.status = decision.status.clone();
        self.decisions.push(decision);
        self.decisions.last().unwrap()
    }

    /// One reconcile answering every due check: metrics with `value`, hooks with `hooks_pass`.
    pub fn tick_with(&mut self, value: Sample, hooks_pass: bool) -> &Decision {
        let found = self.answers(value, hooks_pass);
        self.tick(found)
    }

    /// A reconcile where every due check passes.
    pub fn tick_passing(&mut self) -> &Decision {
        self.tick_with(Sample::Value(99.9), true)
    }

    pub fn answers(&self, value: Sample, hooks_pass: bool) -> CheckResults {
        self.answers_by(|_| value.clone(), |_| hooks_pass)
    }

    pub fn answers_by(
        &self,
        value: impl Fn(&str) -> Sample,
        hook: impl Fn(HookKind) -> bool,
    ) -> CheckResults {
        let due = engine::due_checks(&self.plan, &self.status, &self.obs, self.now);
        let mut found = CheckResults::default();
        for kind in &due.hooks {
            for name in self.plan.hooks_of(*kind) {
                found.hooks.push(HookOutcome {
                    name: name.clone(),
                    kind: *kind,
                    passed: hook(*kind),
                    message: "answer".into(),
                });
            }
        }
        if due.metrics {
            for metric in &self.plan.metrics {
                found.metrics.push(MetricSample {
                    name: metric.name.clone(),
                    value: value(&metric.name),
                    query: None,
                });
            }
        }
        found
    }

    /// Ticks at each requeue with passing checks until `phase` (or panics after `limit` ticks).
    pub fn run_until(&mut self, phase: Phase, limit: usize) {
        for _ in 0..limit {
            if self.phase() == Some(phase) {
                return;
            }
            let wait = self
                .decisions
                .last()
                .map_or(0, |d| d.requeue_after.as_std().as_secs() as i64);
            self.advance(wait);
            self.tick_passing();
        }
        panic!(
            "did not reach {phase:?} in {limit} ticks; at {:?}: {}",
            self.phase(),
            self.last().message
        );
    }

    /// Advances to the next requeue and ticks with passing checks.
    pub fn next_passing(&mut self) -> &Decision {
        let wait = self
            .decisions
            .last()
            .map_or(0, |d| d.requeue_after.as_std().as_secs() as i64);
        self.advance(wait);
        self.tick_passing()
    }

    pub fn last(&self) -> &Decision {
        self.decisions.last().expect("a decision was made")
    }

    /// Every action of every decision so far.
    pub fn all_actions(&self) -> Vec<Action> {
        self.decisions
            .iter()
            .flat_map(|d| d.actions.clone())
            .collect()
    }

    pub fn reasons(&self) -> Vec<&'static str> {
        self.decisions.iter().map(|d| d.reason.as_str()).collect()
    }

    fn apply(&mut self, action: &Action) {
        let canary_ready = self.canary_pods_ready;
        let primary_ready = self.primary_pods_ready;
        let revision = self.obs.target.as_ref().unwrap().revision.clone();
        match action {
            Action::EnsurePrimary => {
                if self.obs.primary.is_none() {
                    let replicas = self.obs.target.as_ref().unwrap().state.replicas;
                    self.obs.primary = Some(if primary_ready {
                        ready(replicas, Some(&revision))
                    } else {
                        not_ready(replicas, Some(&revision))
                    });
                }
            }
            Action::ScaleCanary { replicas } => {
                let target = self.target();
                target.state = if canary_ready {
                    ready(*replicas, None)
                } else {
                    not_ready(*replicas, None)
                };
                if *replicas == 0 {
                    target.state = WorkloadState {
                        current: true,
                        ..Default::default()
                    };
                }
            }
            Action::SetTraffic(traffic) => self.traffic = *traffic,
            Action::PromoteTemplate => {
                let primary = self.obs.primary.as_mut().expect("primary exists");
                self.promoted_before = primary.revision.clone();
                let replicas = primary.replicas;
                *primary = if primary_ready {
                    ready(replicas, Some(&revision))
                } else {
                    not_ready(replicas, Some(&revision))
                };
            }
            Action::RevertPrimary => {
                let before = self.promoted_before.clone();
                let primary = self.obs.primary.as_mut().expect("primary exists");
                // The old template's pods are known to work.
                *primary = ready(primary.replicas, before.as_deref());
            }
            Action::RunHooks(_) | Action::Alert(_) | Action::Event(_) | Action::SyncAutoscaler => {}
        }
    }
}
