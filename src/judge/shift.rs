//! The Hodges-Lehmann shift estimate (median of all canary − baseline differences) and its
//! distribution-free confidence interval (Moses: order statistics of the differences).
//!
//! The n×m differences are never materialised: the k-th smallest is found by bisection on its
//! value, counting the differences at or below a candidate with two pointers over the sorted
//! samples (O(n + m) per count), then snapped to the exact difference.

use statrs::distribution::{ContinuousCDF, Normal};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Median of canary − baseline over all pairs.
    pub estimate: f64,
    /// Confidence interval of the shift at the requested level.
    pub lower: f64,
    pub upper: f64,
}

/// Both samples must be sorted ascending, finite and non-empty; `confidence` in (0, 1).
///
/// Any finite values are judged: when a difference, or the span between two differences,
/// could overflow (values beyond ±f64::MAX/4), both samples are quartered first — exact for
/// such magnitudes — and the results multiplied back, so a shift wider than f64::MAX comes
/// out as ±infinity instead of NaN or a hang.
pub fn hodges_lehmann(canary: &[f64], baseline: &[f64], confidence: f64) -> Shift {
    let largest = [
        canary.first(),
        canary.last(),
        baseline.first(),
        baseline.last(),
    ]
    .into_iter()
    .flatten()
    .fold(0.0_f64, |m, v| m.max(v.abs()));
    if largest > f64::MAX / 4.0 {
        let quarter = |values: &[f64]| values.iter().map(|v| v / 4.0).collect::<Vec<f64>>();
        let shift = unscaled(&quarter(canary), &quarter(baseline), confidence);
        return Shift {
            estimate: shift.estimate * 4.0,
            lower: shift.lower * 4.0,
            upper: shift.upper * 4.0,
        };
    }
    unscaled(canary, baseline, confidence)
}

/// [`hodges_lehmann`] for samples whose every difference is finite.
fn unscaled(canary: &[f64], baseline: &[f64], confidence: f64) -> Shift {
    let pairs = canary.len() as u64 * baseline.len() as u64;
    let estimate = if pairs % 2 == 1 {
        kth(canary, baseline, pairs.div_ceil(2))
    } else {
        let low = kth(canary, baseline, pairs / 2);
        let high = if count_at_most(canary, baseline, low) > pairs / 2 {
            low // the middle two differences are equal
        } else {
            smallest_above(canary, baseline, low)
        };
        (low + high) / 2.0
    };
    let (n, m) = (canary.len() as f64, baseline.len() as f64);
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let half_width = z * (n * m * (n + m + 1.0) / 12.0).sqrt();
    // Moses' C: the interval runs from the C-th to the (N - C + 1)-th smallest difference.
    let c = ((pairs as f64 / 2.0 - half_width).floor().max(1.0) as u64).min(pairs);
    Shift {
        estimate,
        lower: kth(canary, baseline, c),
        upper: kth(canary, baseline, pairs + 1 - c),
    }
}

/// Passes of the bracket narrowing in [`kth`]. With finite ends, a bisection pass halves the
/// bracket's value range and at least every other pass bisects, so the ends meet within about
/// 2 × 2,100 passes (f64 has 2,046 exponents × 52 mantissa bits of room); the cap only makes
/// the bound explicit.
const MAX_PASSES: u32 = 8_192;

/// The k-th smallest (1-based) canary − baseline difference. Every difference must be finite
/// (see [`hodges_lehmann`]); with infinite ones the answer is the nearest bound, never a hang.
pub fn kth(canary: &[f64], baseline: &[f64], k: u64) -> f64 {
    let (Some(c_first), Some(c_last)) = (canary.first(), canary.last()) else {
        return f64::NAN;
    };
    let (Some(b_first), Some(b_last)) = (baseline.first(), baseline.last()) else {
        return f64::NAN;
    };
    // Invariant: `below` = differences <= lo < k <= differences <= hi.
    let (mut lo, mut hi) = (c_first - b_last, c_last - b_first);
    let mut below = count_at_most(canary, baseline, lo);
    if below >= k {
        return lo;
    }
    let mut at_hi = (canary.len() * baseline.len()) as u64;
    // Narrow the bracket until few differences are left in it, then pick among those.
    let few = 4 * (canary.len() + baseline.len()) as u64;
    let mut interpolate = true;
    let mut passes = 0;
    while at_hi - below > few {
        passes += 1;
        if passes > MAX_PASSES || !(lo.is_finite() && hi.is_finite()) {
            return largest_at_most(canary, baseline, hi);
        }
        // Interpolate where the k-th difference should lie from the counts at the bracket's
        // ends (few passes on smooth data); after a step that did not halve the bracket's
        // count, bisect, so it at least halves every two passes whatever the data.
        let fraction = (k - below) as f64 / (at_hi - below) as f64;
        let guess = lo + (hi - lo) * fraction;
        let mid = if interpolate && guess > lo && guess < hi {
            guess
        } else {
            lo + (hi - lo) / 2.0
        };
        let before = at_hi - below;
        if mid <= lo || mid >= hi {
            // Many equal differences: the bracket cannot split further, `hi` is the answer.
            return largest_at_most(canary, baseline, hi);
        }
        let count = count_at_most(canary, baseline, mid);
        if count >= k {
            (hi, at_hi) = (mid, count);
        } else {
            (lo, below) = (mid, count);
        }
        interpolate = !interpolate || at_hi - below <= before / 2;
    }
    let mut inside = differences_between(canary, baseline, lo, hi);
    let index = usize::try_from(k - below - 1).unwrap_or(usize::MAX);
    if index >= inside.len() {
        return largest_at_most(canary, baseline, hi);
    }
    *inside.select_nth_unstable_by(index, f64::total_cmp).1
}

/// Every difference in (lo, hi], for the final exact selection.
fn differences_between(canary: &[f64], baseline: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let mut found = Vec::new();
    for ((c, start), (_, end)) in
        split_points(canary, baseline, hi).zip(split_points(canary, baseline, lo))
    {
        found.extend(baseline[start..end].iter().map(|b| c - b));
    }
    found
}

/// For each canary value c (ascending), the index j of the first baseline value with
/// c − baseline[j] <= x: `baseline[j..]` give the differences at or below x, `baseline[..j]`
/// those above. As c grows, j only moves right: one pass over both samples.
fn split_points<'a>(
    canary: &'a [f64],
    baseline: &'a [f64],
    x: f64,
) -> impl Iterator<Item = (f64, usize)> + 'a {
    let mut j = 0;
    canary.iter().map(move |&c| {
        while j < baseline.len() && c - baseline[j] > x {
            j += 1;
        }
        (c, j)
    })
}

/// How many pairs have canary[i] − baseline[j] <= x.
fn count_at_most(canary: &[f64], baseline: &[f64], x: f64) -> u64 {
    split_points(canary, baseline, x)
        .map(|(_, j)| (baseline.len() - j) as u64)
        .sum()
}

/// The smallest difference that is > x: for each c, from the largest baseline value above c − x.
fn smallest_above(canary: &[f64], baseline: &[f64], x: f64) -> f64 {
    split_points(canary, baseline, x)
        .filter_map(|(c, j)| j.checked_sub(1).map(|i| c - baseline[i]))
        .fold(f64::INFINITY, f64::min)
}

/// The largest difference that is <= x (the snap from a bisection bound to a real difference).
fn largest_at_most(canary: &[f64], baseline: &[f64], x: f64) -> f64 {
    split_points(canary, baseline, x)
        .filter_map(|(c, j)| baseline.get(j).map(|b| c - b))
        .fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(canary: &[f64], baseline: &[f64]) -> Vec<f64> {
        let mut all: Vec<f64> = canary
            .iter()
            .flat_map(|c| baseline.iter().map(move |b| c - b))
            .collect();
        all.sort_by(f64::total_cmp);
        all
    }

    #[test]
    fn every_order_statistic_matches_the_materialised_differences() {
        let mut canary = vec![3.1, 0.2, 7.7, 7.7, 2.0, -1.5, 4.25];
        let mut baseline = vec![1.0, 1.0, 5.5, -2.0, 0.3];
        canary.sort_by(f64::total_cmp);
        baseline.sort_by(f64::total_cmp);
        let all = brute_force(&canary, &baseline);
        for (i, expected) in all.iter().enumerate() {
            assert_eq!(
                kth(&canary, &baseline, i as u64 + 1),
                *expected,
                "k = {}",
                i + 1
            );
        }
    }

    #[test]
    fn the_estimate_is_the_median_difference() {
        let canary = [10.0, 11.0, 12.0, 13.0];
        let baseline = [1.0, 2.0, 3.0];
        let all = brute_force(&canary, &baseline);
        let median = (all[5] + all[6]) / 2.0;
        assert_eq!(hodges_lehmann(&canary, &baseline, 0.95).estimate, median);
    }

    proptest::proptest! {
        /// Samples large enough (n·m > 4(n+m)) for the bisection to run before the final
        /// selection; small integer values make many ties.
        #[test]
        fn selection_agrees_with_sorting_all_differences(
            canary in proptest::collection::vec(-20i32..20, 30..70),
            baseline in proptest::collection::vec(-20i32..20, 30..70),
            scale in proptest::prop_oneof![proptest::strategy::Just(1.0), 0.001f64..1000.0],
            picks in proptest::collection::vec(0.0f64..1.0, 5),
        ) {
            let mut c: Vec<f64> = canary.iter().map(|v| f64::from(*v) * scale).collect();
            let mut b: Vec<f64> = baseline.iter().map(|v| f64::from(*v) * scale + 0.37).collect();
            c.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let all = brute_force(&c, &b);
            for pick in picks {
                let k = ((pick * all.len() as f64) as usize).min(all.len() - 1);
                proptest::prop_assert_eq!(kth(&c, &b, k as u64 + 1), all[k]);
            }
            proptest::prop_assert_eq!(kth(&c, &b, 1), all[0]);
            proptest::prop_assert_eq!(kth(&c, &b, all.len() as u64), all[all.len() - 1]);
        }
    }

    #[test]
    fn differences_that_overflow_are_judged_not_looped_on() {
        // c − b overflows to ±inf for these: the bisection used to spin on NaN midpoints.
        let canary = [-1.7e308, 1.0, 1.7e308];
        let baseline = [-1.7e308, 0.0, 1.7e308];
        let shift = hodges_lehmann(&canary, &baseline, 0.9);
        // Differences: -3.4e308 (beyond f64: -inf), -1.7e308 twice, 0 twice, 1, 1.7e308
        // twice, 3.4e308 (+inf).
        assert_eq!(shift.estimate, 0.0);
        assert_eq!(
            (shift.lower, shift.upper),
            (f64::NEG_INFINITY, f64::INFINITY)
        );
        let far = hodges_lehmann(&[1.7e308; 40], &[-1.7e308; 40], 0.98);
        assert_eq!(far.estimate, f64::INFINITY);
        let near = hodges_lehmann(&[1.7e308; 40], &[1.6e308; 40], 0.98);
        assert_eq!(near.estimate, 1.7e308 - 1.6e308);
    }

    #[test]
    fn the_bisection_span_does_not_overflow_either() {
        // Differences within f64, but the span between the smallest and the largest is not:
        // the bisection's first midpoint overflowed and it answered the largest difference.
        let canary: Vec<f64> = [-1.79e308, -1.0e308, 1.0e308, 1.79e308].repeat(10);
        let baseline: Vec<f64> = [-1.79e308, -5e307, 5e307, 1.79e308].repeat(10);
        let (mut c, mut b) = (canary, baseline);
        c.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let quarter = |v: &[f64]| v.iter().map(|x| x / 4.0).collect::<Vec<_>>();
        let all = brute_force(&quarter(&c), &quarter(&b));
        let median = (all[all.len() / 2 - 1] + all[all.len() / 2]) / 2.0 * 4.0;
        assert_eq!(hodges_lehmann(&c, &b, 0.98).estimate, median);
    }

    #[test]
    fn identical_constant_samples_have_no_shift() {
        let shift = hodges_lehmann(&[5.0; 30], &[5.0; 40], 0.98);
        assert_eq!((shift.estimate, shift.lower, shift.upper), (0.0, 0.0, 0.0));
    }
}
