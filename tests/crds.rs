//! The committed CRDs in crds/ are what the Rust types generate, and carry the schema bounds.

use std::process::Command;

fn generated() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn committed_crds_are_current() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/serin.yaml"))
            .unwrap_or_default();
    assert!(
        committed == generated(),
        "crds/serin.yaml is out of date: run `cargo run -- crds > crds/serin.yaml`"
    );
}

#[test]
fn the_canary_schema_carries_bounds_and_required_fields() {
    let docs: Vec<serde_json::Value> = generated()
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    let canary = docs
        .iter()
        .find(|d| d["spec"]["names"]["kind"] == "Canary")
        .unwrap();
    assert_eq!(canary["spec"]["group"], "serin.dev");
    let version = &canary["spec"]["versions"][0];
    assert_eq!(version["name"], "v1beta1");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["targetRef", "service", "analysis"] {
        assert!(required.contains(&field), "{field} required");
    }
    let analysis = &spec["properties"]["analysis"]["properties"];
    assert_eq!(analysis["maxWeight"]["maximum"], 100.0);
    assert_eq!(analysis["threshold"]["minimum"], 1.0);
    assert!(
        analysis["interval"]["pattern"]
            .as_str()
            .unwrap()
            .contains("ms|s|m|h")
    );
    assert_eq!(analysis["stepWeights"]["items"]["maximum"], 100.0);
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Status", "Weight", "FailedChecks", "LastTransitionTime"]
    );
    for kind in ["MetricTemplate", "AlertProvider"] {
        assert!(
            docs.iter().any(|d| d["spec"]["names"]["kind"] == kind),
            "{kind} CRD"
        );
    }
}
