//! config/rbac.yaml is derived from the code's own list of what it calls: the controller's
//! permissions (`serin::api::access::CONTROLLER`) and each traffic provider's kinds from the
//! provider table. A provider writing a kind the file does not grant fails here, and so does
//! a granted verb nothing uses. (tests/helm.rs checks the chart's copy and docs/operations.md.)

use std::collections::BTreeSet;

use serin::api::access;
use serin::api::provider::{TABLE, TrafficProvider};
use serin::routing::router_for;

type Grants = BTreeSet<(String, String, String)>;

fn granted(path: &str) -> Grants {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let role: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

#[test]
fn the_cluster_role_grants_exactly_what_the_controller_and_its_providers_call() {
    let granted = granted("config/rbac.yaml");
    let required = access::required();
    let missing: Vec<_> = required.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&required).collect();
    assert!(missing.is_empty(), "needed but not granted: {missing:?}");
    assert!(unused.is_empty(), "granted but used by nothing: {unused:?}");
}

#[test]
fn each_router_writes_only_the_kinds_its_row_declares() {
    for row in TABLE {
        let versions = row.versions.iter().map(|v| Some(*v));
        let mut written: BTreeSet<(String, String)> = BTreeSet::new();
        for version in versions.chain([None]) {
            let provider = TrafficProvider {
                kind: row.kind,
                version,
            };
            written.extend(
                router_for(provider)
                    .resources()
                    .into_iter()
                    .map(|r| (r.group, r.plural)),
            );
        }
        let declared: BTreeSet<(String, String)> = row
            .kinds
            .iter()
            .map(|a| (a.group.to_string(), a.resource.to_string()))
            .collect();
        assert_eq!(written, declared, "{}", row.name);
    }
}
