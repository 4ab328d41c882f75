//! The statistical judge against an independent implementation and on seeded synthetic data.

use serin::judge::compare::{Class, Direction, JudgeConfig, Scored, Verdict, compare, score};
use serin::judge::rank_sum::mann_whitney;
use serin::judge::shift::hodges_lehmann;

/// Reference values computed with SciPy 1.17.1 and NumPy (Python 3.11):
///
/// ```python
/// r = scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
/// d = np.sort(np.subtract.outer(np.array(x, float), np.array(y, float)).ravel())
/// N, n, m = len(d), len(x), len(y)
/// z = scipy.stats.norm.ppf(1 - (1 - 0.98) / 2)
/// C = int(max(1, np.floor(N / 2 - z * np.sqrt(n * m * (n + m + 1) / 12))))
/// print(r.statistic, r.pvalue, np.median(d), d[C - 1], d[N - C])
/// ```
/// (U, p, Hodges-Lehmann shift, 98% interval lower, upper)
struct Reference {
    canary: Vec<f64>,
    baseline: Vec<f64>,
    u: f64,
    p: f64,
    shift: f64,
    lower: f64,
    upper: f64,
}

fn references() -> Vec<(&'static str, Reference)> {
    let ints = |v: &[i32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
    vec![
        (
            "ties",
            Reference {
                canary: ints(&[1, 2, 2, 3, 4, 5, 5, 5, 9]),
                baseline: ints(&[2, 3, 3, 6, 7, 8, 8, 10]),
                u: 22.0,
                p: 0.19036126654458874,
                shift: -2.0,
                lower: -6.0,
                upper: 2.0,
            },
        ),
        (
            "scipy documentation example",
            Reference {
                canary: ints(&[19, 22, 16, 29, 24]),
                baseline: ints(&[20, 11, 17, 12]),
                u: 17.0,
                p: 0.11134688653314041,
                shift: 7.0,
                lower: -4.0,
                upper: 18.0,
            },
        ),
        (
            "shifted",
            Reference {
                canary: (0..60)
                    .map(|i| f64::from((i * 37) % 101) / 10.0 + 1.5)
                    .collect(),
                baseline: (0..45).map(|j| f64::from((j * 53) % 97) / 10.0).collect(),
                u: 1825.0,
                p: 0.002121372606009747,
                shift: 1.9000000000000004,
                lower: 0.5,
                upper: 3.4000000000000004,
            },
        ),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn rank_sum_statistics_match_scipy() {
    for (name, r) in references() {
        let result = mann_whitney(&r.canary, &r.baseline).unwrap();
        assert!(close(result.u, r.u), "{name}: U {} vs {}", result.u, r.u);
        assert!(
            close(result.p_value, r.p),
            "{name}: p {} vs {}",
            result.p_value,
            r.p
        );
    }
}

#[test]
fn shift_and_interval_match_numpy_order_statistics() {
    for (name, r) in references() {
        let (mut c, mut b) = (r.canary.clone(), r.baseline.clone());
        c.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let shift = hodges_lehmann(&c, &b, 0.98);
        assert!(
            close(shift.estimate, r.shift),
            "{name}: shift {} vs {}",
            shift.estimate,
            r.shift
        );
        assert!(
            close(shift.lower, r.lower),
            "{name}: lower {} vs {}",
            shift.lower,
            r.lower
        );
        assert!(
            close(shift.upper, r.upper),
            "{name}: upper {} vs {}",
            shift.upper,
            r.upper
        );
    }
}

/// Latencies in ms: log-normal around `median` with a spread typical of per-scrape quantiles
/// (σ = 0.15 in log space), from the simulator's seeded generator.
fn latencies(seed: u64, median: f64, n: usize) -> Vec<f64> {
    serin::sim::samples::lognormal(seed, median, 0.15, n)
}

#[test]
fn comparing_a_service_with_itself_raises_at_most_the_configured_false_alarm_rate() {
    // allowedChange 0: only the test decides, so alarms measure its calibration.
    let config = JudgeConfig {
        direction: Direction::Either,
        allowed_change: 0.0,
        confidence: 0.98,
        min_samples: 20,
    };
    let mut alarms = 0;
    for seed in 0..1000 {
        let (canary, primary) = (
            latencies(2 * seed, 100.0, 50),
            latencies(2 * seed + 1, 100.0, 50),
        );
        if compare(&canary, &primary, &config).failed {
            alarms += 1;
        }
    }
    eprintln!("A/A: {alarms} false alarms in 1000 comparisons");
    // 2% expected; 1,000 trials give a binomial σ of 0.44%, so 3σ of room above 2%.
    assert!(
        alarms <= 33,
        "{alarms} false alarms in 1000 A/A comparisons"
    );
}

#[test]
fn a_twenty_percent_latency_increase_is_detected_at_least_95_percent_of_the_time() {
    let config = JudgeConfig::default();
    let mut detected = 0;
    for seed in 0..1000 {
        let (canary, primary) = (
            latencies(2 * seed + 10_000, 120.0, 50),
            latencies(2 * seed + 10_001, 100.0, 50),
        );
        let result = compare(&canary, &primary, &config);
        if result.failed && result.class == Class::High {
            detected += 1;
        }
    }
    eprintln!("+20% latency: detected {detected} of 1000");
    assert!(detected >= 950, "detected {detected} of 1000");
}

#[test]
fn an_improvement_is_not_a_regression_when_only_increases_matter() {
    let (canary, primary) = (latencies(7, 70.0, 60), latencies(8, 100.0, 60));
    let result = compare(&canary, &primary, &JudgeConfig::default());
    assert_eq!(result.class, Class::Low);
    assert!(!result.failed);
    let either = JudgeConfig {
        direction: Direction::Either,
        ..JudgeConfig::default()
    };
    assert!(compare(&canary, &primary, &either).failed);
}

#[test]
fn a_significant_change_within_the_allowed_change_passes() {
    let canary: Vec<f64> = (0..200)
        .map(|i| 100.0 + f64::from(i % 10) * 0.1 + 3.0)
        .collect();
    let primary: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 10) * 0.1).collect();
    let result = compare(&canary, &primary, &JudgeConfig::default());
    assert!(result.p_value.unwrap() < 0.001);
    assert_eq!(
        result.class,
        Class::Pass,
        "+3% is inside the allowed 10%: {}",
        result.reason
    );
}

#[test]
fn constant_samples_are_judged_deterministically() {
    let config = JudgeConfig::default();
    let same = compare(&[5.0; 30], &[5.0; 30], &config);
    assert_eq!(same.class, Class::Pass);
    assert_eq!(same.p_value, Some(1.0));
    let worse = compare(&[9.0; 30], &[5.0; 30], &config);
    assert_eq!(worse.class, Class::High);
    assert_eq!(worse.shift, Some(4.0));
    assert_eq!(
        compare(&[9.0; 30], &[5.0; 30], &config),
        worse,
        "no randomness"
    );
}

#[test]
fn too_few_samples_or_only_non_finite_values_are_no_data() {
    let config = JudgeConfig::default();
    let few = compare(&[1.0; 5], &[1.0; 50], &config);
    assert_eq!(few.class, Class::NoData);
    assert!(few.reason.contains("canary 5"), "{}", few.reason);
    let nan = compare(&[f64::NAN; 40], &[1.0; 40], &config);
    assert_eq!((nan.class, nan.dropped), (Class::NoData, 40));
}

#[test]
fn a_zero_baseline_does_not_divide_by_zero() {
    let result = compare(&[1.0; 30], &[0.0; 30], &JudgeConfig::default());
    assert_eq!(result.class, Class::High);
    assert_eq!(result.effect, None);
    assert_eq!(result.change, Some(f64::INFINITY));
}

#[test]
fn scores_weigh_metrics_and_a_failed_critical_metric_fails_the_run() {
    let config = JudgeConfig::default();
    let pass = compare(&[1.0; 30], &[1.0; 30], &config);
    let fail = compare(&[9.0; 30], &[1.0; 30], &config);
    let none = compare(&[1.0; 3], &[1.0; 30], &config);
    let scored = |name, comparison, weight, critical| Scored {
        name,
        comparison,
        weight,
        critical,
    };
    let s = score(
        &[
            scored("a", &pass, 3.0, false),
            scored("b", &fail, 1.0, false),
            scored("c", &none, 5.0, false),
        ],
        95.0,
        70.0,
    );
    assert_eq!(s.value, Some(75.0), "no-data metrics are left out");
    assert_eq!(s.verdict, Verdict::Marginal);
    let critical = score(
        &[
            scored("a", &pass, 9.0, false),
            scored("b", &fail, 1.0, true),
        ],
        80.0,
        50.0,
    );
    assert_eq!(critical.verdict, Verdict::Fail);
    assert_eq!(critical.failed_critical, vec!["b".to_string()]);
    assert_eq!(
        score(&[scored("c", &none, 1.0, false)], 95.0, 75.0).verdict,
        Verdict::NoData
    );
}
