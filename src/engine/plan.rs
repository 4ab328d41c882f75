//! A `Plan` is a validated Canary spec with every default applied and the strategy made
//! explicit, so the lifecycle never re-derives "which strategy is this" or "what is the
//! default interval".

use std::collections::BTreeMap;

use crate::api::canary::{
    DEFAULT_INTERVAL, HookKind, MetricJudge, OnNoData, ScoreThresholds, Severity, ThresholdRange,
};
use crate::api::leniency;
use crate::api::provider::{self, TrafficProvider};
use crate::api::validation::{FieldError, ValidationErrors, validate};
use crate::api::{CanarySpec, Duration};
use crate::judge::compare::JudgeConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The traffic provider, from the table: it can carry out this plan.
    pub provider: TrafficProvider,
    pub strategy: Strategy,
    pub interval: Duration,
    pub threshold: i32,
    pub progress_deadline: Duration,
    pub primary_ready_threshold: i32,
    pub canary_ready_threshold: i32,
    /// Primary weight added per tick when traffic returns after promotion; None: all at once.
    pub step_weight_promotion: Option<i32>,
    pub promotion_timeout: Option<Duration>,
    pub skip_analysis: bool,
    pub suspend: bool,
    pub metrics: Vec<MetricPlan>,
    /// How judged metrics add up (pass and marginal percentages).
    pub score: ScoreThresholds,
    /// Webhook names by kind, in spec order.
    pub hooks: BTreeMap<HookKind, Vec<String>>,
    /// Hook names whose failures are not alerted.
    pub muted_hooks: Vec<String>,
    pub alert_severities: Vec<Severity>,
    /// The primary's autoscaler follows the target's at every reconcile
    /// (`autoscalerRef.primaryScalerSync: always`), not only at creation and promotion.
    pub autoscaler_always: bool,
    /// The kind of the target, for messages (validation refused any other).
    pub target_kind: crate::api::target::TargetKind,
    /// Where the spec was read as Flagger reads it rather than as written (`api::leniency`):
    /// shown by `serin check` and `serin simulate`, recorded as events by the controller.
    pub warnings: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Traffic shifted by weight, step by step.
    Canary {
        steps: Vec<Step>,
        session_affinity: bool,
    },
    /// Requests matching analysis.match go to the canary for `iterations` ticks.
    AbTesting { iterations: i32 },
    /// The canary is analysed without user traffic (or with mirrored traffic), then switched to.
    BlueGreen {
        iterations: i32,
        mirror: Option<i32>,
    },
}

impl Strategy {
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Canary { .. } => "canary",
            Self::AbTesting { .. } => "A/B testing",
            Self::BlueGreen {
                mirror: Some(_), ..
            } => "blue/green with mirroring",
            Self::BlueGreen { .. } => "blue/green",
        }
    }
}

/// One canary step: a weight held for at least `pause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub weight: i32,
    pub pause: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricPlan {
    pub name: String,
    /// Fixed bounds (empty when only the judge decides).
    pub range: ThresholdRange,
    pub on_no_data: OnNoData,
    /// Compare with the primary's values.
    pub judge: Option<JudgePlan>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgePlan {
    pub config: JudgeConfig,
    /// A regression rolls back at once.
    pub critical: bool,
    /// Share in the score across judged metrics.
    pub weight: f64,
}

impl Plan {
    /// Reads the spec as Flagger would (`api::leniency`, whose warnings the plan keeps),
    /// validates it, checks that its traffic provider (`spec.provider`, else
    /// `default_provider`) can carry it out, and applies defaults. The controller, `serin
    /// check` and `serin simulate` all come through here, so they refuse the same Canaries
    /// and warn about the same ones.
    pub fn from_spec(
        written: &CanarySpec,
        default_provider: TrafficProvider,
    ) -> Result<Self, ValidationErrors> {
        let provider = provider::resolve(written, default_provider);
        let reading = leniency::read(written, provider.as_ref().ok().copied());
        let spec = &reading.spec;
        let mut errors = validate(spec).err().map_or_else(Vec::new, |e| e.0);
        match &provider {
            Ok(provider) => errors.extend(provider::admit(*provider, spec)),
            Err(error) => errors.push(error.clone()),
        }
        let provider = match provider {
            Ok(provider) if errors.is_empty() => provider,
            _ => return Err(ValidationErrors(errors)),
        };
        let analysis = &spec.analysis;
        let interval = analysis.interval.unwrap_or(DEFAULT_INTERVAL);
        let mut hooks: BTreeMap<HookKind, Vec<String>> = BTreeMap::new();
        for hook in &analysis.webhooks {
            hooks.entry(hook.kind).or_default().push(hook.name.clone());
        }
        Ok(Self {
            provider,
            strategy: strategy(spec, interval),
            interval,
            threshold: analysis.threshold.unwrap_or(1),
            progress_deadline: spec.progress_deadline(),
            primary_ready_threshold: analysis.primary_ready_threshold.unwrap_or(100),
            canary_ready_threshold: analysis.canary_ready_threshold.unwrap_or(100),
            step_weight_promotion: analysis.step_weight_promotion,
            promotion_timeout: analysis.promotion_timeout,
            skip_analysis: spec.skip_analysis,
            suspend: spec.suspend,
            metrics: analysis
                .metrics
                .iter()
                .map(|m| MetricPlan {
                    name: m.name.clone(),
                    range: m.threshold_range.unwrap_or_default(),
                    on_no_data: m.on_no_data.unwrap_or_default(),
                    judge: m.judge.map(judge_plan),
                })
                .collect(),
            score: analysis.score_thresholds.unwrap_or_default(),
            hooks,
            muted_hooks: analysis
                .webhooks
                .iter()
                .filter(|w| w.mute_alert)
                .map(|w| w.name.clone())
                .collect(),
            alert_severities: analysis.alerts.iter().map(|a| a.severity).collect(),
            autoscaler_always: spec
                .autoscaler_ref
                .as_ref()
                .is_some_and(|a| a.primary_scaler_sync == crate::api::canary::ScalerSync::Always),
            target_kind: crate::api::target::TargetKind::of(&spec.target_ref)
                .unwrap_or(crate::api::target::TargetKind::Deployment),
            warnings: reading.warnings,
        })
    }

    pub fn hooks_of(&self, kind: HookKind) -> &[String] {
        self.hooks.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub fn has_hooks(&self, kind: HookKind) -> bool {
        !self.hooks_of(kind).is_empty()
    }

    /// The highest canary weight of the analysis (100 for A/B and blue/green, which switch).
    pub fn max_weight(&self) -> i32 {
        match &self.strategy {
            Strategy::Canary { steps, .. } => steps.last().map_or(0, |s| s.weight),
            _ => 100,
        }
    }
}

fn judge_plan(judge: MetricJudge) -> JudgePlan {
    let defaults = JudgeConfig::default();
    JudgePlan {
        config: JudgeConfig {
            direction: judge.direction.unwrap_or(defaults.direction),
            allowed_change: judge.allowed_change.unwrap_or(defaults.allowed_change),
            confidence: judge.confidence.unwrap_or(defaults.confidence),
            min_samples: judge
                .min_samples
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(defaults.min_samples),
        },
        critical: judge.critical,
        weight: judge.weight.unwrap_or(1.0),
    }
}

fn strategy(spec: &CanarySpec, interval: Duration) -> Strategy {
    let analysis = &spec.analysis;
    if let Some(iterations) = analysis.iterations {
        return if analysis.matches.is_empty() {
            Strategy::BlueGreen {
                iterations,
                mirror: analysis
                    .mirror
                    .then(|| analysis.mirror_weight.unwrap_or(100)),
            }
        } else {
            Strategy::AbTesting { iterations }
        };
    }
    let max = analysis.max_weight.unwrap_or(100);
    let held = |weight| Step {
        weight,
        pause: interval,
    };
    let steps = if !analysis.steps.is_empty() {
        analysis
            .steps
            .iter()
            .map(|s| Step {
                weight: s.weight,
                pause: s.pause.unwrap_or(interval),
            })
            .collect()
    } else if !analysis.step_weights.is_empty() {
        analysis.step_weights.iter().copied().map(held).collect()
    } else {
        let step = analysis.step_weight.unwrap_or(0).max(1);
        let mut weights: Vec<i32> = (1..).map(|i| i * step).take_while(|w| *w < max).collect();
        weights.push(max);
        weights.into_iter().map(held).collect()
    };
    Strategy::Canary {
        steps,
        session_affinity: analysis.session_affinity.is_some(),
    }
}
