//! Hostile input: every parser and renderer a user's text reaches refuses it with a reason, in
//! bounded time and memory — never a panic, a hang or a gigabyte.
//!
//! Two halves. The regression corpus (`tests/fixtures/hostile/`) holds the concrete inputs
//! that once hung, panicked, allocated gigabytes or were silently misread; each is run through
//! its parser with the error it must give. The property tests throw generated input at the same
//! parsers (cargo-fuzz needs a nightly toolchain; proptest runs on stable, in CI). Cases per
//! property: 64 by default, `PROPTEST_CASES=100000` for a longer run (docs/testing.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use serin::api::Duration;
use serin::cli::check::{self, Problem};
use serin::judge::compare::{Class, JudgeConfig, compare};
use serin::judge::samples;
use serin::metrics::bounded::{self, BoundError, Limits};
use serin::metrics::prometheus::{parse_instant, parse_range};
use serin::metrics::template::{self, TemplateError, Vars};
use serin::sim::Scenario;

fn hostile(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(hostile(path)).unwrap()
}

/// `serin check` on one corpus file.
fn problems(file: &str) -> (check::Report, Vec<Problem>) {
    let report = check::run(
        &[hostile(&format!("manifests/{file}"))],
        check::Controller::default(),
    )
    .unwrap();
    let problems = report.problems.clone();
    (report, problems)
}

/// The one problem `serin check` finds in `file`, as `line field: reason` (the line of the
/// field, not of the document).
fn only_problem(file: &str) -> String {
    let (_, problems) = problems(file);
    assert_eq!(problems.len(), 1, "{file}: {problems:#?}");
    let p = &problems[0];
    format!("{} {}: {}", p.line, p.field, p.reason)
}

#[test]
fn an_overflowing_duration_is_refused_naming_the_field() {
    let problem = only_problem("duration-overflow.yaml");
    assert!(
        problem.starts_with("16 spec.analysis.interval: invalid duration \"999999999999999999999999999999h1h\": too large"),
        "{problem}"
    );
}

#[test]
fn hostile_durations_are_refused_without_panicking() {
    for line in read("durations.txt").lines() {
        let error = Duration::parse(line).expect_err(line).to_string();
        assert!(error.starts_with("invalid duration"), "{line}: {error}");
    }
    // The largest that fits still parses.
    assert!(Duration::parse("5124095h").is_ok());
}

#[test]
fn nan_and_infinite_numbers_are_refused_not_read_as_unset() {
    assert_eq!(
        only_problem("nan-threshold.yaml"),
        "23 spec.analysis.metrics[0].thresholdRange.min: .nan is not a number JSON or Kubernetes can hold (write a finite number, or quote it for text)"
    );
    let problem = only_problem("inf-threshold.yaml");
    assert!(
        problem.starts_with("23 spec.analysis.metrics[0].thresholdRange.max: .inf is not"),
        "{problem}"
    );
    // The same in a scenario's Canary.
    let error = Scenario::from_yaml(
        &read("scenarios/nan-in-canary.yaml"),
        serin::api::provider::DEFAULT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("canary.spec.analysis.metrics[0].thresholdRange.min: .nan"),
        "{error}"
    );
}

#[test]
fn merge_keys_are_applied_as_kubectl_applies_them() {
    let (report, problems) = problems("merge-keys.yaml");
    assert_eq!(problems, vec![]);
    assert_eq!(report.checked, 1);
}

#[test]
fn merge_keys_work_in_scenarios_too() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/podinfo-judge.yaml"),
    )
    .unwrap();
    let merged = example.replace(
        "    service:\n      port: 9898",
        "    service:\n      <<: {port: 9898}",
    );
    assert_ne!(merged, example);
    let scenario =
        Scenario::from_yaml(&format!("\u{feff}{merged}"), serin::api::provider::DEFAULT).unwrap();
    assert_eq!(scenario.canary.spec.service.port, 9898);
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let (report, problems) = problems("bom.yaml");
    assert_eq!(problems, vec![]);
    assert_eq!(report.checked, 1);
}

#[test]
fn content_on_a_separator_line_is_a_document() {
    let (report, problems) = problems("content-on-separator.yaml");
    assert_eq!(report.checked, 2, "{problems:#?}");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].line, 24);
    assert_eq!(problems[0].field, "spec.query");
    assert!(problems[0].reason.contains("\"nope\""), "{problems:#?}");
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    assert_eq!(
        only_problem("deep-nesting.yaml"),
        "2 (yaml): nested more than 64 levels deep"
    );
    assert_eq!(
        only_problem("deep-block-nesting.yaml"),
        "66 (yaml): nested more than 64 levels deep"
    );
}

#[test]
fn brackets_in_a_quoted_scalar_over_lines_do_not_hide_nesting() {
    for file in ["quoted-brackets-double.yaml", "quoted-brackets-single.yaml"] {
        let expected = if file.contains("double") { 4 } else { 3 };
        assert_eq!(
            only_problem(file),
            format!("{expected} (yaml): nested more than 64 levels deep")
        );
    }
}

#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    assert_eq!(
        only_problem("alias-bomb.yaml"),
        "1 (yaml): repetition limit exceeded"
    );
}

#[test]
fn an_ab_match_never_widens_to_all_traffic() {
    let typo = only_problem("ab-header-typo.yaml");
    assert!(
        typo.starts_with(
            "20 spec.analysis.match[0].header: unknown field `header`, expected one of"
        ),
        "{typo}"
    );
    assert_eq!(
        only_problem("ab-empty-match.yaml"),
        "20 spec.analysis.match[0]: has no condition and would send every request to the canary: set headers, uri, method, queryParams or sourceLabels"
    );
    assert_eq!(
        only_problem("ab-empty-condition.yaml"),
        "21 spec.analysis.match[0].headers.x-canary: set exactly one of exact, prefix, suffix or regex (found 0)"
    );
    assert_eq!(
        only_problem("ab-catch-all-condition.yaml"),
        "20 spec.analysis.match[0].uri: matches every value, so every request would go to the canary: narrow it"
    );
}

#[test]
fn templates_that_expand_or_loop_are_refused_naming_template_and_field() {
    assert_eq!(
        only_problem("template-blowup.yaml"),
        "11 spec.query: query template: rendering produced more than 65536 bytes"
    );
    let looped = only_problem("template-loop.yaml");
    assert!(
        looped.starts_with("11 spec.query: query template: line 1: `{% for %}` is not allowed"),
        "{looped}"
    );
    let doubled = only_problem("template-doubling.yaml");
    assert!(
        doubled.starts_with("11 spec.query: query template: line 1: `{% set %}` is not allowed"),
        "{doubled}"
    );
    assert_eq!(
        only_problem("inline-query-blowup.yaml"),
        "22 spec.analysis.metrics[0].query: query template: rendering produced more than 65536 bytes"
    );
    assert_eq!(
        only_problem("alert-template-blowup.yaml"),
        "10 spec.template: alert template: rendering produced more than 16384 bytes"
    );
}

#[test]
fn fuel_and_the_deadline_stop_a_rendering() {
    let tight = Limits {
        fuel: 50,
        ..Limits::QUERY
    };
    let long = "{{ a }}".repeat(100);
    let context = BTreeMap::from([("a", "b")]);
    assert_eq!(
        bounded::render(&long, &context, &tight),
        Err(BoundError::OutOfFuel(50))
    );
    let past = Limits {
        deadline: std::time::Duration::ZERO,
        ..Limits::QUERY
    };
    assert_eq!(
        bounded::render("{{ a }}", &context, &past),
        Err(BoundError::Deadline(std::time::Duration::ZERO))
    );
    assert_eq!(
        bounded::render("up{a=\"{{ a|upper }}\"}", &context, &Limits::QUERY).unwrap(),
        "up{a=\"B\"}"
    );
}

#[test]
fn samples_near_the_largest_double_are_judged() {
    let canary = samples::parse(&read("judge/extreme-canary.txt")).unwrap();
    let baseline = samples::parse(&read("judge/extreme-baseline.txt")).unwrap();
    let result = compare(&canary, &baseline, &JudgeConfig::default());
    assert_eq!(result.dropped, 0);
    let shift = result.shift.unwrap();
    // The median of the 900 differences (0 and 9e306), as brute force gives it.
    assert!((shift - 4.5e306).abs() < 1e295, "{result:?}");
    assert!(result.canary_mean.unwrap().is_finite(), "{result:?}");
    assert!(!result.change.unwrap().is_nan(), "{result:?}");
    // Far apart: the canary at the top, the primary at the bottom of the range.
    let high = vec![1.7e308; 30];
    let low = vec![-1.7e308; 30];
    let result = compare(&high, &low, &JudgeConfig::default());
    assert_eq!(result.class, Class::High, "{result:?}");
    assert_eq!(result.shift, Some(f64::INFINITY));
    let error = samples::parse(&read("judge/out-of-range.txt")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 3: \"1e999\" is beyond the range of a 64-bit float (±1.8e308); write +Inf or -Inf for an infinite value"
    );
}

#[test]
fn a_scenario_with_extreme_samples_finishes() {
    let scenario = Scenario::from_yaml(
        &read("scenarios/extreme-samples.yaml"),
        serin::api::provider::DEFAULT,
    )
    .unwrap();
    let report = serin::sim::run(&scenario);
    assert_eq!(report.outcome.reason, "CriticalMetricFailed", "{report:?}");
}

#[test]
fn a_scenario_sample_count_is_bounded() {
    let error = Scenario::from_yaml(
        &read("scenarios/huge-count.yaml"),
        serin::api::provider::DEFAULT,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "metrics.latency-p99[0]: samples need a finite median, a spread >= 0 and a count from 1 to 100000 (values generated per tick)"
    );
}

#[test]
fn hostile_prometheus_answers_are_errors() {
    let deep = read("prometheus/deep.json");
    assert!(parse_instant(&deep).is_err());
    assert!(parse_range(&deep).is_err());
    let huge = parse_instant(&read("prometheus/huge-value.json")).unwrap_err();
    assert!(
        huge.to_string().contains("\"1e999\" is not a number"),
        "{huge}"
    );
    let extreme = parse_range(&read("prometheus/extreme-matrix.json")).unwrap();
    assert!(matches!(extreme, serin::metrics::prometheus::Answer::Value(v) if v.len() == 3));
}

// ---- generated input ----

/// A directory of its own under Cargo's scratch space for tests, removed when dropped (also
/// when an assertion fails), so runs leave nothing behind.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("serin-hostile-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Finite values of every magnitude, the extremes overrepresented.
fn magnitude() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(0.0),
        (-1.0f64..1.0).prop_map(|f| f * f64::MAX),
        -1e6f64..1e6,
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
    ]
}

fn vars(variables: &BTreeMap<String, String>) -> Vars<'_> {
    Vars {
        name: "podinfo",
        namespace: "test",
        target: "podinfo",
        service: "podinfo",
        interval: "1m".into(),
        workload: "podinfo",
        ingress: "podinfo",
        route: "podinfo",
        variables,
    }
}

/// Text made of template syntax, filters and growth-prone pieces, glued at random.
fn template_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("{{ ".to_string()),
        Just(" }}".to_string()),
        Just("{% ".to_string()),
        Just(" %}".to_string()),
        Just("namespace".to_string()),
        Just("variables.k".to_string()),
        Just("\"xxxxxxxxxx\"".to_string()),
        Just("|replace(\"x\", \"xxxxxxxxxx\")".to_string()),
        Just("|join(\"xxxxxxxxxx\")".to_string()),
        Just("|string".to_string()),
        Just("|split".to_string()),
        Just(" ~ ".to_string()),
        Just(" * ".to_string()),
        Just("if ".to_string()),
        Just("for x in ".to_string()),
        Just("endif".to_string()),
        Just("[a, b]".to_string()),
        // Go's syntax, as Flagger's queries use it.
        Just("{{- ".to_string()),
        Just(" -}}".to_string()),
        Just("printf \"%s%q\" ".to_string()),
        Just("index variables \"k\" ".to_string()),
        Just(" | printf \"%s-%s\" interval".to_string()),
        Just("{{ with variables }}{{ .k }}{{ else }}".to_string()),
        Just("{{ end }}".to_string()),
        Just("{{/* c */}}".to_string()),
        "[a-z(){}\\[\\]|~\"' ]{0,6}",
    ];
    proptest::collection::vec(pieces, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config())]

    /// The judge ends and answers on any finite samples, whatever their magnitude.
    #[test]
    fn the_judge_answers_on_any_finite_samples(
        canary in proptest::collection::vec(magnitude(), 1..60),
        baseline in proptest::collection::vec(magnitude(), 1..60),
    ) {
        let config = JudgeConfig { min_samples: 1, ..JudgeConfig::default() };
        let result = compare(&canary, &baseline, &config);
        prop_assert_eq!(result.dropped, 0);
        for value in [result.shift, result.shift_lower, result.shift_upper, result.canary_mean, result.baseline_mean, result.change] {
            prop_assert!(!value.unwrap().is_nan(), "{:?}", result);
        }
        prop_assert!(result.shift_lower.unwrap() <= result.shift_upper.unwrap(), "{:?}", result);
        prop_assert!(result.canary_mean.unwrap().is_finite());
        // The shift is the median of all differences, computed here on quartered values so
        // that none overflows (as the judge does for extreme samples).
        let mut all: Vec<f64> = canary
            .iter()
            .flat_map(|c| baseline.iter().map(move |b| c / 4.0 - b / 4.0))
            .collect();
        all.sort_by(f64::total_cmp);
        let half = all.len() / 2;
        let median = if all.len() % 2 == 1 { all[half] } else { (all[half - 1] + all[half]) / 2.0 } * 4.0;
        let shift = result.shift.unwrap();
        let close = shift == median
            || (shift - median).abs() <= 1e-9 * median.abs().max(shift.abs())
            || (shift - median).abs() < 1e-300;
        prop_assert!(close, "shift {} but the median difference is {}", shift, median);
    }

    /// Any text is a duration or a reason, never a panic.
    #[test]
    fn durations_parse_or_refuse(text in "[0-9.]{0,40}(ns|us|µs|ms|s|m|h|y|){0,3}[0-9.hms]{0,10}") {
        let _ = Duration::parse(&text);
    }

    /// Whatever a durations says, within range it is read exactly.
    #[test]
    fn durations_within_range_are_exact(hours in 0u64..5_000_000, seconds in 0u64..3600) {
        let parsed = Duration::parse(&format!("{hours}h{seconds}s")).unwrap();
        prop_assert_eq!(parsed.as_std().as_secs(), hours * 3600 + seconds);
    }

    /// Any manifest text is read or refused with a line; `check` never panics.
    #[test]
    fn manifests_are_read_or_refused(
        text in "(apiVersion: serin.dev/v1beta1\nkind: Canary\n)?([a-zA-Z<>&*!:{}\\[\\], .#|-]{0,12}\n?){0,20}",
    ) {
        let dir = Scratch::new();
        let file = dir.0.join("m.yaml");
        std::fs::write(&file, &text).unwrap();
        let report = check::run(std::slice::from_ref(&file), check::Controller::default()).unwrap();
        for problem in &report.problems {
            prop_assert!(problem.line >= 1 && problem.line <= text.lines().count().max(1) + 1, "{:?}", problem);
        }
    }

    /// Templates render within the limits or are refused; none panics or grows past them.
    #[test]
    fn query_templates_stay_within_their_limits(query in template_text()) {
        let variables = BTreeMap::from([("k".to_string(), "v".to_string())]);
        match template::render(&query, &vars(&variables)) {
            Ok(text) => prop_assert!(text.len() <= Limits::QUERY.output),
            Err(TemplateError::Bounded(BoundError::Render(_)))
            | Err(TemplateError::Bounded(_))
            | Err(TemplateError::Syntax(_))
            | Err(TemplateError::Unknown(_))
            | Err(TemplateError::Unsupported(_))
            | Err(TemplateError::Render(_))
            | Err(TemplateError::UnknownTemplateVariable(..)) => {}
        }
    }

    /// Any Prometheus answer is a value, no data or an error.
    #[test]
    fn prometheus_answers_parse_or_refuse(
        result_type in prop_oneof![Just("vector"), Just("matrix"), Just("scalar"), Just("string")],
        body in "[\\[\\]{}\",:0-9a-zNI.+-]{0,80}",
    ) {
        let text = format!("{{\"status\":\"success\",\"data\":{{\"resultType\":\"{result_type}\",\"result\":{body}}}}}");
        let _ = parse_instant(&text);
        let _ = parse_range(&text);
        let _ = parse_instant(&body);
    }

    /// Judge sample files: numbers or a line-numbered reason.
    #[test]
    fn sample_files_parse_or_refuse(text in "([0-9eE.+-]{0,8}|NaN|Inf|1e999|[a-z,]{0,4})(\n[0-9eE.+-]{0,8}){0,20}") {
        if let Ok(values) = samples::parse(&text) {
            prop_assert!(values.iter().all(|v| v.is_finite() || v.is_nan() || text.to_lowercase().contains("inf")));
        }
    }

    /// Scenario files: loaded or refused naming a field.
    #[test]
    fn scenarios_load_or_refuse(
        count in prop_oneof![Just(0usize), Just(1), Just(100_000), Just(100_001), Just(usize::MAX)],
        median in magnitude(),
        extra in "[a-z: {}\\[\\]0-9.-]{0,20}",
    ) {
        let text = read("scenarios/huge-count.yaml")
            .replace("count: 1000000000", &format!("count: {count}"))
            .replace("median: 135", &format!("median: {median:e}"))
            + &extra;
        if let Ok(scenario) = Scenario::from_yaml(&text, serin::api::provider::DEFAULT) {
            prop_assert!((1..=100_000).contains(&scenario.file.metrics["latency-p99"][0].canary.unwrap().count.unwrap()));
        }
    }
}
