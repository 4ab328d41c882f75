//! `serin simulate` as a user runs it: every example ends as it promises, bad input gets exit
//! code 2 and one message naming the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn serin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .output()
        .expect("serin runs")
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn expected_phase(path: &Path) -> String {
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["expect"]["phase"]
        .as_str()
        .expect("every example promises an outcome")
        .to_string()
}

#[test]
fn every_example_ends_as_it_promises() {
    let files = examples();
    assert!(
        files.len() >= 5,
        "examples/ holds the five documented scenarios"
    );
    for path in files {
        let out = serin(&["simulate", path.to_str().unwrap(), "--output", "json"]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["outcome"]["phase"],
            expected_phase(&path),
            "{}",
            path.display()
        );
        assert_eq!(report["outcome"]["expected"], true, "{}", path.display());
    }
}

#[test]
fn the_rollback_example_rolls_back_at_30_percent_with_the_failing_value_shown() {
    let out = serin(&["simulate", "examples/podinfo-rollback.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("✗ request-success-rate 91.4 < 99 (min)"),
        "{text}"
    );
    let weights: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("traffic: primary"))
        .collect();
    assert!(weights.iter().any(|l| l.contains("canary 30%")));
    assert!(
        !weights.iter().any(|l| l.contains("canary 40%")),
        "never past 30%"
    );
    assert!(text.contains("outcome: Failed"));
}

#[test]
fn the_text_timeline_shows_time_phase_weight_and_reason() {
    let out = serin(&["simulate", "examples/podinfo-promote.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            " 0:02:20  Progressing         10%  WeightAdvanced: canary weight 10% (step 1 of 5)"
        ),
        "{text}"
    );
    assert!(
        text.contains("✓ request-duration 180 within [-∞, 500]"),
        "{text}"
    );
}

#[test]
fn a_daemon_set_canary_is_simulated_like_a_deployments_and_an_autoscaler_on_it_refused() {
    let out = serin(&["simulate", "examples/node-agent-daemonset.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("scaling the canary up to 3 replicas"),
        "{text}"
    );
    assert!(text.contains("canary 40%"), "{text}");
    assert!(text.contains("outcome: Succeeded"), "{text}");
    let example = std::fs::read_to_string("examples/node-agent-daemonset.yaml").unwrap();
    let scaled = example.replace(
        "    provider: gatewayapi\n",
        "    provider: gatewayapi\n    autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: node-agent}\n",
    );
    assert_bad_input(
        "daemon-set-autoscaler",
        scaled,
        "canary.spec.autoscalerRef: a DaemonSet runs one pod per node and has no replica count to scale",
    );
}

#[test]
fn a_stateful_set_canary_is_simulated_like_a_deployments_and_a_failing_one_rolled_back() {
    let out = serin(&["simulate", "examples/stateful-set.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("scaling the canary up to 3 replicas"),
        "{text}"
    );
    assert!(text.contains("canary 50%"), "{text}");
    assert!(text.contains("outcome: Succeeded"), "{text}");
    let example = std::fs::read_to_string("examples/stateful-set.yaml").unwrap();
    let failing = example
        .replace("    - value: 99.9\n", "    - value: 80\n")
        .replace("  phase: Succeeded", "  phase: Failed");
    let path = write_scenario("stateful-set-failing.yaml", &failing);
    let out = serin(&["simulate", path.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("outcome: Failed"), "{text}");
}

fn write_scenario(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serin-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The promote example with one substitution applied.
fn broken(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string("examples/podinfo-promote.yaml").unwrap();
    assert!(text.contains(from), "example contains {from:?}");
    text.replacen(from, to, 1)
}

fn assert_bad_input(name: &str, scenario: String, message: &str) {
    let path = write_scenario(name, &scenario);
    let out = serin(&["simulate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(
        stderr.contains(message),
        "{name}: expected {message:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_scenarios_exit_2_naming_the_field() {
    assert_bad_input(
        "no-target.yaml",
        broken(
            "    targetRef:\n      apiVersion: apps/v1\n      kind: Deployment\n      name: podinfo\n",
            "",
        ),
        "canary.spec: missing field `targetRef`",
    );
    assert_bad_input(
        "step-zero.yaml",
        broken("stepWeight: 10", "stepWeight: 0"),
        "canary.spec.analysis.stepWeight: must be greater than 0",
    );
    assert_bad_input(
        "weight.yaml",
        broken("maxWeight: 50", "maxWeight: 101"),
        "canary.spec.analysis.maxWeight: must be between 1 and 100",
    );
    assert_bad_input(
        "interval.yaml",
        broken(
            "interval: 1m\n      threshold",
            "interval: abc\n      threshold",
        ),
        "canary.spec.analysis.interval: invalid duration \"abc\"",
    );
    assert_bad_input(
        "metric.yaml",
        broken(
            "  request-duration:\n    - value: 180",
            "  request-latency:\n    - value: 180",
        ),
        "metrics.request-latency: not a metric of the canary",
    );
    assert_bad_input(
        "flagger.yaml",
        broken("serin.dev/v1beta1", "flagger.app/v1alpha3"),
        "canary.apiVersion: flagger.app/v1alpha3 is Flagger's pre-1.0 API",
    );
    assert_bad_input(
        "event.yaml",
        broken("release: podinfo:6.0.1", "relaese: podinfo:6.0.1"),
        "unknown field `relaese`",
    );
}

#[test]
fn a_judged_metric_scripted_with_a_single_value_is_refused() {
    let text = std::fs::read_to_string("examples/podinfo-judge.yaml").unwrap();
    let broken = text.replacen(
        "      canary: {median: 135, spread: 0.12}\n      primary: {median: 100, spread: 0.12}",
        "      value: 135",
        1,
    );
    assert_ne!(text, broken);
    assert_bad_input(
        "judged.yaml",
        broken,
        "metrics.latency-p99[0]: this metric is judged against the primary",
    );
}

#[test]
fn the_same_canary_under_flaggers_group_gives_the_same_timeline() {
    for example in examples() {
        let native = serin(&["simulate", example.to_str().unwrap()]);
        let text = std::fs::read_to_string(&example).unwrap();
        assert!(text.contains("serin.dev/v1beta1"), "{example:?}");
        let name = format!("flagger-{}", example.file_name().unwrap().to_str().unwrap());
        let path = write_scenario(
            &name,
            &text.replace("serin.dev/v1beta1", "flagger.app/v1beta1"),
        );
        let flagger = serin(&["simulate", path.to_str().unwrap()]);
        assert_eq!(flagger.status.code(), native.status.code(), "{example:?}");
        assert_eq!(
            String::from_utf8_lossy(&flagger.stdout),
            String::from_utf8_lossy(&native.stdout),
            "{example:?}"
        );
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let out = serin(&["simulate", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/scenario.yaml"));
}

#[test]
fn an_unmet_expectation_exits_1() {
    let path = write_scenario("unmet.yaml", &broken("phase: Succeeded", "phase: Failed"));
    let out = serin(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT as expected"));
}

#[test]
fn a_marginal_judge_score_pauses_until_a_human_promotes() {
    let out = serin(&[
        "simulate",
        "examples/podinfo-judge-marginal.yaml",
        "--output",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let timeline = report["timeline"].as_array().unwrap();
    let marginal = timeline
        .iter()
        .position(|d| d["reason"] == "JudgeMarginal")
        .expect("a JudgeMarginal decision");
    assert!(
        timeline[marginal]["message"]
            .as_str()
            .unwrap()
            .starts_with("judge score 75 (pass 95, marginal 75)")
    );
    let promoted = timeline
        .iter()
        .position(|d| d["phase"] == "Promoting")
        .unwrap();
    assert!(
        timeline[marginal..promoted]
            .iter()
            .all(|d| d["weight"] == 10 && d["failedChecks"] == 0),
        "held at 10% without failed checks until the promote request"
    );
    assert_eq!(timeline[promoted]["at"], "15m");
}

#[test]
fn an_autoscaler_does_not_keep_a_settled_simulation_running() {
    let report = |path: &Path| -> serde_json::Value {
        let out = serin(&["simulate", path.to_str().unwrap(), "--output", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let plain = report(Path::new("examples/podinfo-promote.yaml"));
    let scaled = write_scenario(
        "autoscaled.yaml",
        &broken(
            "    service:\n",
            "    autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}\n    service:\n",
        ),
    );
    let scaled = report(&scaled);
    assert_eq!(scaled["outcome"]["phase"], "Succeeded");
    assert_eq!(
        scaled["reconciles"], plain["reconciles"],
        "the simulation ends when the rollout settles, autoscaler or not"
    );
}
