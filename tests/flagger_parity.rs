//! Manifests Flagger runs get Flagger's decisions: for each row of the table
//! (tests/support/flagger_cases.rs), `serin check` accepts the Canary and warns exactly where
//! serin reads it as Flagger does rather than as written, and `serin simulate` prints the same
//! warnings and rolls it out the way Flagger would (strategy, weights, iterations, outcome).

#[path = "support/flagger_cases.rs"]
mod flagger_cases;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

/// A directory of this test's own (nextest runs the tests at once, in separate processes).
fn dir(test: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("flagger-parity")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .env_remove("SERIN_MESH_PROVIDER")
        .output()
        .unwrap()
}

fn yaml_documents(values: &[Value]) -> String {
    let docs: Vec<String> = values
        .iter()
        .map(|v| serde_yaml_ng::to_string(v).unwrap())
        .collect();
    docs.join("---\n")
}

fn expected_warnings(case: &flagger_cases::Case) -> BTreeSet<String> {
    case.warned.iter().map(|f| f.to_string()).collect()
}

#[test]
fn check_accepts_each_flagger_manifest_and_warns_where_serin_reads_it_as_flagger_does() {
    let dir = dir("check");
    let file = dir.join("canaries.yaml");
    let mut docs = flagger_cases::references();
    docs.extend(flagger_cases::cases().iter().map(flagger_cases::canary));
    std::fs::write(&file, yaml_documents(&docs)).unwrap();
    let out = serin(&["check", "-o", "json", file.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{report:#}");
    assert_eq!(out.status.code(), Some(0));
    for case in flagger_cases::cases() {
        let warned: BTreeSet<String> = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["object"] == format!("Canary {}", case.name))
            .map(|w| w["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            warned,
            expected_warnings(&case),
            "{} ({})",
            case.name,
            case.flagger
        );
    }
}

#[test]
fn check_prints_warnings_without_failing() {
    let dir = dir("text");
    let file = dir.join("canary.yaml");
    let case = flagger_cases::cases()
        .into_iter()
        .find(|c| c.name == "kubernetes-step-weight")
        .unwrap();
    std::fs::write(&file, yaml_documents(&[flagger_cases::canary(&case)])).unwrap();
    let out = serin(&["check", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: ")
            && stdout.contains("Canary kubernetes-step-weight: spec.analysis.stepWeight: the kubernetes provider cannot split traffic by weight"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no problems, 1 warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the simulated rollout shows: strategy, highest analysis weight, iterations run and
/// final phase.
fn rollout_of(report: &Value) -> (String, i64, usize, String) {
    let timeline = report["timeline"].as_array().unwrap();
    let analysing = |e: &&Value| e["phase"] == "Progressing";
    let top = timeline
        .iter()
        .filter(analysing)
        .map(|e| e["weight"].as_i64().unwrap())
        .max()
        .unwrap_or(-1);
    // "iteration 1 of 3 passed": the count the rollout runs (the last one promotes).
    let iterations = timeline
        .iter()
        .filter(|e| e["reason"] == "IterationPassed")
        .filter_map(|e| e["message"].as_str()?.split(" of ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0);
    (
        report["strategy"].as_str().unwrap().to_string(),
        top,
        iterations,
        report["outcome"]["phase"].as_str().unwrap().to_string(),
    )
}

#[test]
fn simulate_warns_alike_and_rolls_each_flagger_manifest_out_as_flagger_would() {
    let dir = dir("simulate");
    for case in flagger_cases::cases() {
        let scenario = json!({
            "name": case.name,
            "canary": flagger_cases::canary(&case),
            "deployment": {"revision": "app:1"},
            "events": [{"at": "1m", "release": "app:2"}],
            "metrics": case.metrics,
            "webhooks": case.webhooks,
        });
        let file = dir.join(format!("{}.yaml", case.name));
        std::fs::write(&file, serde_yaml_ng::to_string(&scenario).unwrap()).unwrap();
        let out = serin(&["simulate", "-o", "json", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", case.name);
        let warned: BTreeSet<String> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("warning: canary."))
            .map(|l| l.split(": ").next().unwrap().to_string())
            .collect();
        assert_eq!(warned, expected_warnings(&case), "{}: {stderr}", case.name);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (strategy, top, iterations, phase) = rollout_of(&report);
        let expect = &case.expect;
        assert_eq!(phase, expect.phase, "{} ({})", case.name, case.flagger);
        assert_eq!(
            strategy, expect.strategy,
            "{} ({})",
            case.name, case.flagger
        );
        if phase == "Succeeded" {
            assert_eq!(
                (top, iterations),
                (expect.top_weight, expect.iterations),
                "{} ({}): highest weight, iterations",
                case.name,
                case.flagger
            );
        }
    }
}

#[test]
fn migrate_turns_the_deprecated_threshold_into_the_range_flagger_checks() {
    let dir = dir("migrate");
    let file = dir.join("flagger.yaml");
    std::fs::write(
        &file,
        "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    stepWeight: 10
    webhooks:
    metrics:
      - name: request-success-rate
        threshold: 99
        interval: 1m
      - name: request-duration
        threshold: 500
        interval: 30s
      - name: errors
        threshold: 3
        thresholdRange: {max: 1}
        query: sum(errors_total)
",
    )
    .unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let migrated: Value = serde_yaml_ng::from_str(
        String::from_utf8_lossy(&out.stdout)
            .trim_start_matches("---\n")
            .trim(),
    )
    .unwrap();
    let metrics = &migrated["spec"]["analysis"]["metrics"];
    assert_eq!(metrics[0]["thresholdRange"], json!({"min": 99}));
    assert_eq!(metrics[1]["thresholdRange"], json!({"max": 500}));
    assert_eq!(metrics[2]["thresholdRange"], json!({"max": 1}));
    for i in 0..3 {
        assert!(metrics[i].get("threshold").is_none(), "{metrics:#}");
    }
    // The converted file passes check without a warning.
    let converted = dir.join("serin.yaml");
    std::fs::write(&converted, &out.stdout).unwrap();
    let check = serin(&["check", converted.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("warning"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
