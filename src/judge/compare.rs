//! Comparing a canary's metric with the primary's: a rank-sum test for "is there a
//! difference", the Hodges-Lehmann shift for "how large", the change of means for "does it
//! matter", classified Pass / High / Low / NoData as Kayenta does — but deterministic (no noise
//! added to constant samples) and with every statistic returned.

use serde::{Deserialize, Serialize};

// The API owns the direction (it is a field of `analysis.metrics[].judge`); the judge reads it.
pub use crate::api::canary::Direction;

use super::rank_sum::{RankSum, mann_whitney_sorted};
use super::shift::{Shift, hodges_lehmann};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgeConfig {
    pub direction: Direction,
    /// Relative change of the mean tolerated even when significant (0.1 = 10%).
    pub allowed_change: f64,
    /// Confidence level of the test and the interval (Kayenta's default 0.98).
    pub confidence: f64,
    /// Fewer values on either side is NoData.
    pub min_samples: usize,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Increase,
            allowed_change: 0.1,
            confidence: 0.98,
            min_samples: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Class {
    /// No significant difference, or one within the allowed change.
    Pass,
    /// Significantly higher than the primary, beyond the allowed change.
    High,
    /// Significantly lower than the primary, beyond the allowed change.
    Low,
    /// Too few samples to judge.
    NoData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub class: Class,
    /// The class is a regression in the configured direction.
    pub failed: bool,
    pub canary_count: usize,
    pub baseline_count: usize,
    /// Non-finite values (NaN, ±Inf) left out.
    pub dropped: usize,
    pub canary_mean: Option<f64>,
    pub baseline_mean: Option<f64>,
    /// Relative change of the mean: (canary − baseline) / |baseline|.
    pub change: Option<f64>,
    /// Mean ratio canary / baseline (Kayenta's effect size).
    pub effect: Option<f64>,
    pub u: Option<f64>,
    pub z: Option<f64>,
    pub p_value: Option<f64>,
    /// Hodges-Lehmann shift of canary against baseline, with its interval.
    pub shift: Option<f64>,
    pub shift_lower: Option<f64>,
    pub shift_upper: Option<f64>,
    pub confidence: f64,
    /// One sentence for people.
    pub reason: String,
}

impl Comparison {
    /// Every statistic on one line, for events and logs:
    /// `n 50/50, U 2179, p 1.5e-10, shift 20.4 [14.3, 27.1] (98%), effect 1.215`.
    pub fn statistics(&self) -> String {
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), super::threshold::show);
        format!(
            "n {}/{}, U {}, p {}, shift {} [{}, {}] ({}%), effect {}",
            self.canary_count,
            self.baseline_count,
            show(self.u),
            self.p_value
                .map_or("n/a".to_string(), |p| format!("{p:.2e}")),
            show(self.shift),
            show(self.shift_lower),
            show(self.shift_upper),
            self.confidence * 100.0,
            show(self.effect),
        )
    }
}

/// Judges one metric of the canary against the primary.
pub fn compare(canary: &[f64], baseline: &[f64], config: &JudgeConfig) -> Comparison {
    let (mut c, mut b) = (finite(canary), finite(baseline));
    let dropped = canary.len() + baseline.len() - c.len() - b.len();
    let mut result = Comparison {
        class: Class::NoData,
        failed: false,
        canary_count: c.len(),
        baseline_count: b.len(),
        dropped,
        canary_mean: mean(&c),
        baseline_mean: mean(&b),
        change: None,
        effect: None,
        u: None,
        z: None,
        p_value: None,
        shift: None,
        shift_lower: None,
        shift_upper: None,
        confidence: config.confidence,
        reason: String::new(),
    };
    let minimum = config.min_samples.max(1);
    if c.len() < minimum || b.len() < minimum {
        result.reason = format!(
            "too few samples: canary {}, primary {} (minSamples {minimum})",
            c.len(),
            b.len()
        );
        return result;
    }
    c.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let Some(RankSum { u, z, p_value }) = mann_whitney_sorted(&c, &b) else {
        result.reason = "empty sample".into();
        return result;
    };
    let Shift {
        estimate,
        lower,
        upper,
    } = hodges_lehmann(&c, &b, config.confidence);
    let (mc, mb) = (
        result.canary_mean.unwrap_or(0.0),
        result.baseline_mean.unwrap_or(0.0),
    );
    let change = relative_change(mc, mb);
    let significant = p_value < 1.0 - config.confidence;
    let class = match () {
        _ if !significant => Class::Pass,
        _ if estimate > 0.0 && change > config.allowed_change => Class::High,
        _ if estimate < 0.0 && change < -config.allowed_change => Class::Low,
        _ => Class::Pass,
    };
    let failed = matches!(
        (class, config.direction),
        (Class::High, Direction::Increase | Direction::Either)
            | (Class::Low, Direction::Decrease | Direction::Either)
    );
    result.reason = describe(class, significant, change, p_value, config);
    Comparison {
        class,
        failed,
        change: Some(change),
        effect: (mb != 0.0).then(|| mc / mb),
        u: Some(u),
        z: Some(z),
        p_value: Some(p_value),
        shift: Some(estimate),
        shift_lower: Some(lower),
        shift_upper: Some(upper),
        ..result
    }
}

fn describe(class: Class, significant: bool, change: f64, p: f64, config: &JudgeConfig) -> String {
    let percent = format!("{:+.1}%", change * 100.0);
    let p = if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    };
    let allowed = format!("{:.0}%", config.allowed_change * 100.0);
    match class {
        Class::Pass if !significant => {
            format!("no significant difference (p = {p}, mean {percent})")
        }
        Class::Pass => format!(
            "significant but within the allowed change of {allowed} (mean {percent}, p = {p})"
        ),
        Class::High | Class::Low => format!("mean {percent} beyond the allowed {allowed}, p = {p}"),
        Class::NoData => "too few samples".into(),
    }
}

/// (canary − baseline) / |baseline|; a change from zero is infinite unless both are zero.
fn relative_change(canary: f64, baseline: f64) -> f64 {
    if baseline == 0.0 {
        return if canary == 0.0 {
            0.0
        } else {
            canary.signum() * f64::INFINITY
        };
    }
    let change = (canary - baseline) / baseline.abs();
    if change.is_finite() {
        return change;
    }
    // The difference overflowed (means near ±f64::MAX): the same ratio without forming it.
    canary / baseline.abs() - baseline.signum()
}

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// The mean of finite values, finite whatever their magnitude: when the plain sum overflows,
/// the values are halved and divided before adding (kept within the sample's range).
fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let sum = values.iter().sum::<f64>();
    if sum.is_finite() {
        return Some(sum / n);
    }
    let (low, high) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let half_mean = values.iter().map(|v| v / 2.0 / n).sum::<f64>();
    Some((half_mean * 2.0).clamp(low, high))
}

/// How several judged metrics add up, Kayenta style: the weighted percentage of passing
/// metrics (NoData left out), a failed critical metric failing the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// 0–100; None when no metric had data.
    pub value: Option<f64>,
    pub verdict: Verdict,
    pub failed_critical: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Pass,
    /// Between the marginal and pass thresholds: hold for a human instead of deciding.
    Marginal,
    Fail,
    NoData,
}

/// One judged metric in a score.
pub struct Scored<'a> {
    pub name: &'a str,
    pub comparison: &'a Comparison,
    pub weight: f64,
    pub critical: bool,
}

pub fn score(metrics: &[Scored<'_>], pass_threshold: f64, marginal_threshold: f64) -> Score {
    let failed_critical: Vec<String> = metrics
        .iter()
        .filter(|m| m.critical && m.comparison.failed)
        .map(|m| m.name.to_string())
        .collect();
    let judged: Vec<&Scored<'_>> = metrics
        .iter()
        .filter(|m| m.comparison.class != Class::NoData)
        .collect();
    let total: f64 = judged.iter().map(|m| m.weight).sum();
    let value = (total > 0.0).then(|| {
        100.0
            * judged
                .iter()
                .filter(|m| !m.comparison.failed)
                // fold from +0.0: an empty f64 sum is -0.0, shown as "-0".
                .fold(0.0, |sum, m| sum + m.weight)
            / total
    });
    let verdict = match value {
        _ if !failed_critical.is_empty() => Verdict::Fail,
        None => Verdict::NoData,
        Some(v) if v >= pass_threshold => Verdict::Pass,
        Some(v) if v >= marginal_threshold => Verdict::Marginal,
        Some(_) => Verdict::Fail,
    };
    Score {
        value,
        verdict,
        failed_critical,
    }
}
