//! The provider table decides for every tool alike: for each provider and capability, the
//! engine's validation (what the controller runs), `serin check` and `serin simulate` refuse
//! the same Canaries with the same words, or all accept them, with the same warnings where a
//! provider runs a manifest as Flagger does rather than as written. The controller's side on the
//! control plane is `the_provider_table_decides_for_the_controller_as_for_check` in
//! tests/controller.rs, over the same cases.

#[path = "support/provider_cases.rs"]
mod provider_cases;
mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serin::api::Canary;
use serin::api::provider;
use serin::engine::Plan;

fn refusals(canary: &serde_json::Value) -> BTreeSet<String> {
    let canary: Canary = serde_json::from_value(canary.clone()).unwrap();
    match Plan::from_spec(&canary.spec, provider::DEFAULT) {
        Ok(_) => BTreeSet::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The engine's warnings about an accepted Canary, as `field: reason` lines.
fn warnings(canary: &serde_json::Value) -> BTreeSet<String> {
    let canary: Canary = serde_json::from_value(canary.clone()).unwrap();
    match Plan::from_spec(&canary.spec, provider::DEFAULT) {
        Ok(plan) => plan.warnings.iter().map(ToString::to_string).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The `field: reason` lines of `check -o json`'s `list` ("problems" or "warnings") about one
/// case's Canary.
fn reported(report: &serde_json::Value, list: &str, case: &str) -> BTreeSet<String> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["object"] == format!("Canary {case}"))
        .map(|p| {
            format!(
                "{}: {}",
                p["field"].as_str().unwrap(),
                p["reason"].as_str().unwrap()
            )
        })
        .collect()
}

/// A directory of this test's own (nextest runs the tests at once, in separate processes).
fn dir(test: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("provider-table")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_engine_refuses_exactly_what_each_provider_cannot_do() {
    for case in provider_cases::cases() {
        let refused = refusals(&provider_cases::canary(&case));
        let warned: BTreeSet<String> = warnings(&provider_cases::canary(&case))
            .iter()
            .map(|w| w.split(": ").next().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = case.warned.iter().map(|f| f.to_string()).collect();
        assert_eq!(warned, expected, "{}", case.name);
        match case.refused {
            None => assert!(refused.is_empty(), "{}: {refused:?}", case.name),
            Some(field) => assert!(
                refused.iter().any(|r| r.starts_with(&format!("{field}: "))),
                "{}: expected {field}, got {refused:?}",
                case.name
            ),
        }
    }
}

#[test]
fn check_refuses_and_warns_as_the_engine_does_with_the_same_words() {
    let dir = dir("check");
    let file = dir.join("canaries.yaml");
    let docs: Vec<String> = provider_cases::cases()
        .iter()
        .map(|case| serde_yaml_ng::to_string(&provider_cases::canary(case)).unwrap())
        .collect();
    std::fs::write(&file, docs.join("---\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["check", "-o", "json", file.to_str().unwrap()])
        .env_remove("SERIN_MESH_PROVIDER")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for case in provider_cases::cases() {
        let canary = provider_cases::canary(&case);
        let by_check = reported(&report, "problems", case.name);
        assert_eq!(by_check, refusals(&canary), "{}", case.name);
        let by_check = reported(&report, "warnings", case.name);
        assert_eq!(by_check, warnings(&canary), "{}", case.name);
    }
}

#[test]
fn simulate_refuses_and_warns_as_the_engine_does_with_the_same_words() {
    let dir = dir("simulate");
    for case in provider_cases::cases() {
        let scenario = serde_json::json!({
            "name": case.name,
            "canary": provider_cases::canary(&case),
            "deployment": {"revision": "app:1"},
            "events": [{"at": "1s", "release": "app:2"}],
        });
        let file = dir.join(format!("{}.yaml", case.name));
        std::fs::write(&file, serde_yaml_ng::to_string(&scenario).unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["simulate", file.to_str().unwrap()])
            .env_remove("SERIN_MESH_PROVIDER")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refused = refusals(&provider_cases::canary(&case));
        for warning in warnings(&provider_cases::canary(&case)) {
            assert!(
                stderr.contains(&format!("warning: canary.{warning}")),
                "{}: {warning:?} not in {stderr}",
                case.name
            );
        }
        if refused.is_empty() {
            assert_ne!(out.status.code(), Some(2), "{}: {stderr}", case.name);
        } else {
            assert_eq!(out.status.code(), Some(2), "{}: {stderr}", case.name);
            for reason in refused {
                assert!(
                    stderr.contains(&format!("canary.{reason}")),
                    "{}: {reason:?} not in {stderr}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn the_mesh_provider_flag_is_the_default_of_check() {
    let dir = dir("flag");
    let file = dir.join("weights.yaml");
    let case = provider_cases::cases()
        .into_iter()
        .find(|c| c.name == "k8s-default-weights")
        .unwrap();
    std::fs::write(
        &file,
        serde_yaml_ng::to_string(&provider_cases::canary(&case)).unwrap(),
    )
    .unwrap();
    let check = |flags: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .arg("check")
            .args(flags)
            .arg(&file)
            .env_remove("SERIN_MESH_PROVIDER")
            .output()
            .unwrap()
    };
    // kubernetes, the default: weights run as blue/green, with a warning (as Flagger does).
    let by_default = check(&[]);
    assert_eq!(by_default.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&by_default.stdout).contains("warning: ")
            && String::from_utf8_lossy(&by_default.stdout).contains("spec.analysis.stepWeight"),
        "{}",
        String::from_utf8_lossy(&by_default.stdout)
    );
    let istio = check(&["--mesh-provider", "istio"]);
    assert_eq!(istio.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&istio.stdout).contains("warning: "),
        "{}",
        String::from_utf8_lossy(&istio.stdout)
    );
    let out = check(&["--mesh-provider", "consul"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--mesh-provider: unknown traffic provider \"consul\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
