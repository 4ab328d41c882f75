//! The simulator's in-memory cluster: the target and primary Deployments with pods that become
//! ready on the scenario's schedule, the traffic split, and the configs. It executes the
//! engine's actions the way the controller would against Kubernetes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::engine::{Action, Observations, Target, Traffic, WorkloadState};

use super::scenario::PodBehaviour;

/// Pods that are not scripted become ready this long after they start.
pub const DEFAULT_READY_AFTER: crate::api::Duration = crate::api::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Deployment {
    pub replicas: i32,
    /// The template the pods run (the scenario's revision name).
    pub template: String,
    /// When pods of the current template started.
    pub started: DateTime<Utc>,
    /// The template before the last update; its pods keep serving during a rolling update.
    pub previous: Option<String>,
    /// The revision serin stamped (primary only).
    pub revision: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub target: Deployment,
    pub primary: Option<Deployment>,
    pub traffic: Traffic,
    /// Config name -> version, bumped by `configChange` events.
    pub configs: BTreeMap<String, u32>,
    pods: BTreeMap<String, PodBehaviour>,
    /// The primary's template and revision before the last promotion, for RevertPrimary.
    promoted_before: Option<(String, Option<String>)>,
}

impl Cluster {
    pub fn new(
        replicas: i32,
        template: &str,
        pods: BTreeMap<String, PodBehaviour>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            target: Deployment {
                replicas,
                template: template.into(),
                started: now,
                previous: None,
                revision: None,
            },
            primary: None,
            traffic: Traffic::PRIMARY,
            configs: BTreeMap::new(),
            pods,
            promoted_before: None,
        }
    }

    /// The engine's revision of the target: its template, plus config versions when any
    /// changed, written readably (`v2`, `v2+podinfo-config@2`).
    pub fn target_revision(&self) -> String {
        revision_name(&self.target.template, &self.configs)
    }

    pub fn observe(&self, generation: i64, now: DateTime<Utc>) -> Observations {
        Observations {
            foreign_primary: None,
            generation,
            target: Some(Target {
                revision: self.target_revision(),
                configs: self
                    .configs
                    .iter()
                    .map(|(k, v)| (format!("configmap/{k}"), v.to_string()))
                    .collect(),
                state: self.state(&self.target, now),
            }),
            primary: self.primary.as_ref().map(|p| self.state(p, now)),
            request: None,
        }
    }

    /// Kubernetes' rolling update: updated pods count once ready; old pods keep the
    /// Deployment available meanwhile.
    fn state(&self, deployment: &Deployment, now: DateTime<Utc>) -> WorkloadState {
        let new_ready = self.ready(&deployment.template, deployment.started, now);
        let old_ready = deployment
            .previous
            .as_ref()
            .is_some_and(|t| self.pods_can_be_ready(t));
        let replicas = deployment.replicas;
        WorkloadState {
            replicas,
            updated: if new_ready { replicas } else { 0 },
            ready: if new_ready || old_ready { replicas } else { 0 },
            available: if new_ready || old_ready { replicas } else { 0 },
            current: true,
            revision: deployment.revision.clone(),
        }
    }

    fn behaviour(&self, template: &str) -> PodBehaviour {
        self.pods.get(template).copied().unwrap_or(PodBehaviour {
            ready_after: None,
            ready: true,
        })
    }

    fn pods_can_be_ready(&self, template: &str) -> bool {
        self.behaviour(template).ready
    }

    fn ready(&self, template: &str, started: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let behaviour = self.behaviour(template);
        behaviour.ready
            && now
                >= started
                    + behaviour
                        .ready_after
                        .unwrap_or(DEFAULT_READY_AFTER)
                        .as_chrono()
    }

    /// When a Deployment's pods will next change readiness, so the clock can jump there.
    pub fn next_readiness_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        [Some(&self.target), self.primary.as_ref()]
            .into_iter()
            .flatten()
            .filter(|d| d.replicas > 0 && self.pods_can_be_ready(&d.template))
            .map(|d| {
                d.started
                    + self
                        .behaviour(&d.template)
                        .ready_after
                        .unwrap_or(DEFAULT_READY_AFTER)
                        .as_chrono()
            })
            .filter(|at| *at > now)
            .min()
    }

    pub fn release(&mut self, template: &str, now: DateTime<Utc>) {
        restart(&mut self.target, template, now);
    }

    pub fn change_config(&mut self, name: &str, now: DateTime<Utc>) {
        *self.configs.entry(name.to_string()).or_insert(1) += 1;
        // Pods restart on a config change (checksum annotations, the usual practice).
        let template = self.target.template.clone();
        restart(&mut self.target, &template, now);
    }

    /// Executes one engine action; returns what a person would see happen, if anything.
    pub fn apply(&mut self, action: &Action, now: DateTime<Utc>) -> Option<String> {
        match action {
            Action::EnsurePrimary if self.primary.is_none() => {
                let mut primary = self.target.clone();
                primary.previous = None;
                primary.started = now;
                primary.revision = Some(self.target_revision());
                self.primary = Some(primary);
                Some(format!(
                    "created primary ({} replicas)",
                    self.target.replicas
                ))
            }
            Action::EnsurePrimary => None,
            Action::ScaleCanary { replicas } => {
                let was = self.target.replicas;
                if was == 0 && *replicas > 0 {
                    self.target.started = now;
                    self.target.previous = None;
                }
                self.target.replicas = *replicas;
                (was != *replicas).then(|| format!("canary scaled to {replicas}"))
            }
            Action::SetTraffic(traffic) => {
                let changed = self.traffic != *traffic;
                self.traffic = *traffic;
                changed.then(|| format!("traffic: {traffic}"))
            }
            Action::PromoteTemplate => {
                let template = self.target.template.clone();
                let revision = self.target_revision();
                let primary = self.primary.as_mut()?;
                self.promoted_before = Some((primary.template.clone(), primary.revision.clone()));
                restart(primary, &template, now);
                primary.revision = Some(revision);
                Some(format!("primary updated to {template}"))
            }
            Action::RevertPrimary => {
                let (before, revision) = self.promoted_before.take()?;
                let primary = self.primary.as_mut()?;
                restart(primary, &before, now);
                primary.revision = revision;
                Some(format!("primary reverted to {before}"))
            }
            Action::RunHooks(kind) => Some(format!("{kind} webhooks called")),
            Action::Alert(alert) => {
                Some(format!("alert ({:?}): {}", alert.severity, alert.message))
            }
            // The simulated cluster has no autoscalers.
            Action::Event(_) | Action::SyncAutoscaler => None,
        }
    }
}

fn restart(deployment: &mut Deployment, template: &str, now: DateTime<Utc>) {
    if deployment.template != template || deployment.replicas > 0 {
        deployment.previous = Some(deployment.template.clone());
    }
    deployment.template = template.to_string();
    deployment.started = now;
}

fn revision_name(template: &str, configs: &BTreeMap<String, u32>) -> String {
    let mut name = template.to_string();
    for (config, version) in configs {
        name.push_str(&format!("+{config}@{version}"));
    }
    name
}
