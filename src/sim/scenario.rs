//! The scenario file: a Canary, and a script of what happens around it (releases, config
//! changes, manual requests), how its pods behave, what its metrics and webhooks answer.
//! The format is documented in docs/simulate.md.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::api::load::{expect_type, from_value, from_yaml};
use crate::api::provider::TrafficProvider;
use crate::api::validation::FieldError;
use crate::api::yaml;
use crate::api::{Canary, Duration, Phase};
use crate::engine::Plan;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A Canary manifest (apiVersion serin.dev/v1beta1). Kept as YAML until checked: NaN or
    /// infinities in it would silently become `null` (unset) as JSON.
    pub canary: serde_yaml_ng::Value,
    #[serde(default)]
    pub deployment: DeploymentScript,
    #[serde(default)]
    pub events: Vec<ScriptEvent>,
    /// Pod behaviour per revision (image tag); revisions not listed are ready after 5s.
    #[serde(default)]
    pub pods: BTreeMap<String, PodBehaviour>,
    /// Rules per metric name; the first matching rule gives the value.
    #[serde(default)]
    pub metrics: BTreeMap<String, Vec<Rule>>,
    /// Rules per webhook name; hooks without rules answer yes.
    #[serde(default)]
    pub webhooks: BTreeMap<String, Vec<Rule>>,
    #[serde(default)]
    pub expect: Option<Expectation>,
    /// Virtual time after which the simulation stops. Default 24h.
    #[serde(default)]
    pub until: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentScript {
    #[serde(default = "two")]
    pub replicas: i32,
    /// The target's initial revision, e.g. an image tag.
    #[serde(default = "v1")]
    pub revision: String,
}

impl Default for DeploymentScript {
    fn default() -> Self {
        Self {
            replicas: two(),
            revision: v1(),
        }
    }
}

fn two() -> i32 {
    2
}

fn v1() -> String {
    "v1".into()
}

/// Something that happens at a virtual time. Exactly one of the fields after `at` is set.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptEvent {
    pub at: Duration,
    /// The target's pod template changes to this revision (as Flux would apply it).
    #[serde(default)]
    pub release: Option<String>,
    /// A ConfigMap or Secret the target references changes.
    #[serde(default)]
    pub config_change: Option<String>,
    /// A manual request: promote, step, abort, retry, pause, resume.
    #[serde(default)]
    pub request: Option<String>,
    /// spec.suspend is set (true) or cleared (false).
    #[serde(default)]
    pub suspend: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodBehaviour {
    /// Time from (re)start until the pods are ready. Default 5s.
    #[serde(default)]
    pub ready_after: Option<Duration>,
    /// false: the pods never become ready (a crash loop, a failing probe).
    #[serde(default = "yes")]
    pub ready: bool,
}

fn yes() -> bool {
    true
}

/// One scripted answer and when it applies. Conditions left out always match.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Applies from this virtual time on.
    #[serde(default)]
    pub after: Option<Duration>,
    /// Applies before this virtual time.
    #[serde(default)]
    pub before: Option<Duration>,
    /// Applies while the canary weight is at least this.
    #[serde(default)]
    pub min_weight: Option<i32>,
    /// Applies while the canary runs this revision.
    #[serde(default)]
    pub revision: Option<String>,
    /// Metrics: the value returned.
    #[serde(default)]
    pub value: Option<f64>,
    /// Metrics: the query returns an empty result.
    #[serde(default)]
    pub no_data: bool,
    /// Metrics: the query fails with this error.
    #[serde(default)]
    pub error: Option<String>,
    /// Judged metrics: the canary's values (with `primary`).
    #[serde(default)]
    pub canary: Option<SampleScript>,
    /// Judged metrics: the primary's values (with `canary`).
    #[serde(default)]
    pub primary: Option<SampleScript>,
    /// Webhooks: the answer (default true).
    #[serde(default)]
    pub pass: Option<bool>,
}

/// Most values a sample script may ask for per tick: the judge compares 10,000 in
/// milliseconds, and a count in the billions would only allocate gigabytes.
pub const MAX_SAMPLE_COUNT: usize = 100_000;

/// Synthetic values for the judge: log-normal around `median`, regenerated at each tick.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleScript {
    pub median: f64,
    /// Spread in log space (σ). Default 0.1.
    #[serde(default)]
    pub spread: Option<f64>,
    /// Values per tick. Default 30.
    #[serde(default)]
    pub count: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    pub phase: Phase,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A loaded, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: ScenarioFile,
    pub canary: Canary,
    pub plan: Plan,
}

/// Reasons a scenario cannot run: each names the field.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ScenarioError(pub Vec<FieldError>);

impl From<FieldError> for ScenarioError {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl Scenario {
    /// Reads a scenario; a Canary without `spec.provider` routes with `default_provider`, as
    /// the controller's `--mesh-provider` would make it.
    pub fn from_yaml(text: &str, default_provider: TrafficProvider) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = from_yaml(text, "")?;
        let manifest = yaml::to_json(&file.canary, "canary")
            .map_err(|e| FieldError::new(e.field, e.reason))?;
        expect_type(&manifest, "serin.dev/v1beta1", "Canary")
            .map_err(|e| FieldError::new(format!("canary.{}", e.field), e.reason))?;
        let canary: Canary = from_value(&manifest, "canary")?;
        let plan = Plan::from_spec(&canary.spec, default_provider).map_err(|errors| {
            ScenarioError(
                errors
                    .0
                    .into_iter()
                    .map(|e| FieldError::new(format!("canary.{}", e.field), e.reason))
                    .collect(),
            )
        })?;
        check_script(&file, &plan)?;
        Ok(Self { file, canary, plan })
    }
}

/// The script must speak about the canary's own metrics and hooks, and each event must say
/// one thing.
fn check_script(file: &ScenarioFile, plan: &Plan) -> Result<(), ScenarioError> {
    let mut errors = Vec::new();
    let metric_names: Vec<&str> = plan.metrics.iter().map(|m| m.name.as_str()).collect();
    for name in file.metrics.keys() {
        if !metric_names.contains(&name.as_str()) {
            errors.push(FieldError::new(
                format!("metrics.{name}"),
                format!(
                    "not a metric of the canary (its metrics: {})",
                    list(&metric_names)
                ),
            ));
        }
    }
    for name in &metric_names {
        if !file.metrics.contains_key(*name) {
            errors.push(FieldError::new(
                "metrics",
                format!("the canary's metric {name:?} has no scripted values"),
            ));
        }
    }
    let hook_names: Vec<&str> = plan.hooks.values().flatten().map(String::as_str).collect();
    for name in file.webhooks.keys() {
        if !hook_names.contains(&name.as_str()) {
            errors.push(FieldError::new(
                format!("webhooks.{name}"),
                format!(
                    "not a webhook of the canary (its webhooks: {})",
                    list(&hook_names)
                ),
            ));
        }
    }
    for (name, rules) in &file.metrics {
        let judged = plan
            .metrics
            .iter()
            .any(|m| &m.name == name && m.judge.is_some());
        for (i, rule) in rules.iter().enumerate() {
            if let Some(reason) = rule_problem(rule, judged) {
                errors.push(FieldError::new(format!("metrics.{name}[{i}]"), reason));
            }
        }
    }
    for (i, event) in file.events.iter().enumerate() {
        let said = usize::from(event.release.is_some())
            + usize::from(event.config_change.is_some())
            + usize::from(event.request.is_some())
            + usize::from(event.suspend.is_some());
        if said != 1 {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                "set exactly one of release, configChange, request or suspend",
            ));
        }
    }
    if file.deployment.replicas < 1 {
        errors.push(FieldError::new("deployment.replicas", "must be at least 1"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ScenarioError(errors))
    }
}

/// A rule answers in exactly one way, and the way fits the metric: a value for bounds, canary
/// and primary samples for the judge.
fn rule_problem(rule: &Rule, judged: bool) -> Option<&'static str> {
    let samples = rule.canary.is_some() || rule.primary.is_some();
    let answers = usize::from(rule.value.is_some())
        + usize::from(rule.no_data)
        + usize::from(rule.error.is_some())
        + usize::from(samples);
    if answers != 1 {
        return Some("set exactly one of value, noData, error, or canary and primary");
    }
    if samples && (rule.canary.is_none() || rule.primary.is_none()) {
        return Some("set both canary and primary samples");
    }
    let usable = |s: &SampleScript| {
        s.median.is_finite()
            && s.spread.unwrap_or(0.1) >= 0.0
            && (1..=MAX_SAMPLE_COUNT).contains(&s.count.unwrap_or(30))
    };
    if [rule.canary, rule.primary]
        .iter()
        .flatten()
        .any(|s| !usable(s))
    {
        return Some(
            "samples need a finite median, a spread >= 0 and a count from 1 to 100000 (values generated per tick)",
        );
    }
    match (judged, rule.value.is_some(), samples) {
        (true, true, _) => Some(
            "this metric is judged against the primary: give canary and primary samples, not a value",
        ),
        (false, _, true) => {
            Some("this metric is checked against bounds: give a value, not samples")
        }
        _ => None,
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
