//! Checking one metric value against its `thresholdRange`.

use crate::api::canary::ThresholdRange;
use crate::api::status::CheckResult;

/// Judges one value. NaN counts as no data: Prometheus returns it for 0/0, e.g. a success
/// rate over a window without requests. Infinities are compared like any other value. (Empty
/// answers and query errors never reach here: the engine reports them before asking.)
pub fn judge(value: f64, range: ThresholdRange) -> (CheckResult, String) {
    if value.is_nan() {
        return (CheckResult::NoData, "no values found (NaN)".into());
    }
    match (range.min, range.max) {
        (Some(min), _) if value < min => (
            CheckResult::Fail,
            format!("{} < {} (min)", show(value), show(min)),
        ),
        (_, Some(max)) if value > max => (
            CheckResult::Fail,
            format!("{} > {} (max)", show(value), show(max)),
        ),
        _ => (
            CheckResult::Pass,
            format!("{} within {}", show(value), bounds(range)),
        ),
    }
}

/// "[99, ∞)" style bounds for messages.
pub fn bounds(range: ThresholdRange) -> String {
    let min = range.min.map_or("-∞".to_string(), show);
    let max = range.max.map_or("∞".to_string(), show);
    format!("[{min}, {max}]")
}

/// Numbers as people write them: no trailing zeros, at most 3 decimals.
pub fn show(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: Option<f64>, max: Option<f64>) -> ThresholdRange {
        ThresholdRange { min, max }
    }

    #[test]
    fn a_value_below_min_fails_and_says_by_how_much() {
        let (result, message) = judge(98.5, range(Some(99.0), None));
        assert_eq!(result, CheckResult::Fail);
        assert_eq!(message, "98.5 < 99 (min)");
    }

    #[test]
    fn a_value_above_max_fails() {
        let (result, _) = judge(612.0, range(None, Some(500.0)));
        assert_eq!(result, CheckResult::Fail);
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(
            judge(99.0, range(Some(99.0), Some(99.0))).0,
            CheckResult::Pass
        );
    }

    #[test]
    fn nan_is_no_data_and_infinity_is_compared() {
        assert_eq!(
            judge(f64::NAN, range(Some(1.0), None)).0,
            CheckResult::NoData
        );
        assert_eq!(
            judge(f64::INFINITY, range(None, Some(500.0))).0,
            CheckResult::Fail
        );
        assert_eq!(
            judge(f64::NEG_INFINITY, range(Some(0.0), None)).0,
            CheckResult::Fail
        );
    }
}
