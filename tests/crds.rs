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
    for field in ["targetRef", "analysis"] {
        assert!(required.contains(&field), "{field} required");
    }
    // A Knative Service's Canary has none (validation asks every other target for its port).
    assert!(!required.contains(&"service"), "service optional");
    let analysis = &spec["properties"]["analysis"]["properties"];
    assert_eq!(analysis["maxWeight"]["maximum"], 100.0);
    // 0 is Flagger's "unset" (the default applies), so the schema lets it through.
    assert_eq!(analysis["threshold"]["minimum"], 0.0);
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

/// Kubernetes refuses `null` among enum values and (1.20) empty-string defaults; both come
/// easily out of derived schemas for `Option<Enum>` and `#[serde(default)] String`.
#[test]
fn schemas_hold_nothing_the_api_server_refuses() {
    fn walk(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(values) = map.get("enum").and_then(|e| e.as_array())
                    && values.iter().any(serde_json::Value::is_null)
                {
                    found.push(format!("{path}: null in enum"));
                }
                if map.get("default") == Some(&serde_json::Value::String(String::new())) {
                    found.push(format!("{path}: empty-string default"));
                }
                for (key, child) in map {
                    walk(child, &format!("{path}.{key}"), found);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, path, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for doc in generated().split("---\n").filter(|d| !d.trim().is_empty()) {
        let crd: serde_json::Value = serde_yaml_ng::from_str(doc).unwrap();
        walk(&crd, crd["metadata"]["name"].as_str().unwrap(), &mut found);
    }
    assert!(found.is_empty(), "{found:#?}");
}
