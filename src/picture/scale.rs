//! Axes: a linear map from data to pixels, and tick positions people read easily (round
//! numbers, whole minutes and hours of simulated time).

/// Maps `domain` onto `range` (pixels), clamping, so an outlier draws at the edge of its panel
/// rather than over the next one.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Linear {
    /// An empty or non-finite domain is widened to one around its value, so a constant series
    /// still draws (in the middle).
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        let (mut d0, mut d1) = domain;
        if !d0.is_finite() || !d1.is_finite() {
            (d0, d1) = (0.0, 1.0);
        }
        if d1 <= d0 {
            let pad = if d0 == 0.0 { 1.0 } else { d0.abs() * 0.1 };
            (d0, d1) = (d0 - pad, d0 + pad);
        }
        Self {
            d0,
            d1,
            r0: range.0,
            r1: range.1,
        }
    }

    pub fn at(&self, value: f64) -> f64 {
        let value = if value.is_nan() { self.d0 } else { value };
        let t = ((value - self.d0) / (self.d1 - self.d0)).clamp(0.0, 1.0);
        self.r0 + t * (self.r1 - self.r0)
    }

    pub fn domain(&self) -> (f64, f64) {
        (self.d0, self.d1)
    }
}

/// About `count` round values (1, 2 or 5 times a power of ten) covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 || count == 0 {
        return if lo.is_finite() { vec![lo] } else { vec![] };
    }
    let rough = span / count as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| span / s <= count as f64 + 1.0)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil();
    // Bounded: at most count + 1 steps fit in the span by construction.
    (0..=count + 1)
        .map(|i| (first + i as f64) * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .collect()
}

/// Tick positions in seconds of simulated time up to `end`: whole seconds, minutes or hours.
pub fn time_ticks(end: f64, count: usize) -> Vec<f64> {
    const STEPS: [f64; 16] = [
        1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0,
    ];
    let step = STEPS
        .into_iter()
        .find(|s| end / s <= count as f64)
        .unwrap_or(86400.0);
    (0..=count + 1)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= end)
        .collect()
}

/// Simulated time as `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A value label: integers without decimals, others with up to three significant decimals,
/// huge or tiny magnitudes in scientific notation.
pub fn label(value: f64) -> String {
    match value.abs() {
        a if a != 0.0 && !(1e-3..1e9).contains(&a) => format!("{value:.2e}"),
        _ => {
            let text = format!("{value:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_onto_pixels_and_outliers_stay_inside() {
        let s = Linear::new((0.0, 100.0), (200.0, 0.0));
        assert_eq!(s.at(0.0), 200.0);
        assert_eq!(s.at(50.0), 100.0);
        assert_eq!(s.at(1e300), 0.0);
        assert_eq!(s.at(f64::NEG_INFINITY), 200.0);
        let constant = Linear::new((5.0, 5.0), (0.0, 10.0));
        assert_eq!(constant.at(5.0), 5.0);
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(ticks(91.0, 99.9, 4), vec![92.0, 94.0, 96.0, 98.0]);
        assert!(ticks(0.0, f64::MAX, 5).len() <= 7);
        assert_eq!(ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn time_ticks_fall_on_whole_minutes() {
        assert_eq!(
            time_ticks(600.0, 10),
            (0..=10).map(|m| m as f64 * 60.0).collect::<Vec<_>>()
        );
        assert_eq!(time_ticks(86400.0, 8).len(), 9);
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.0), "1:05");
    }
}
