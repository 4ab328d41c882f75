//! The fields serin's API does not know, found by walking an object against its CRD's schema:
//! every unknown key of a document at once, even where decoding it stops at its first error
//! (`serin migrate` lists them with their lines). Free-form parts of the schema (metadata,
//! `x-kubernetes-preserve-unknown-fields`, maps) accept any key.

use std::sync::LazyLock;

use kube::CustomResourceExt;
use serde_json::Value;

use super::{AlertProvider, Canary, MetricTemplate};

/// The openAPIV3Schema of each kind's CRD, generated once from the Rust types.
static SCHEMAS: LazyLock<[(&str, Value); 3]> = LazyLock::new(|| {
    let schema = |crd| {
        serde_json::to_value(crd)
            .ok()
            .and_then(|v| {
                v.pointer("/spec/versions/0/schema/openAPIV3Schema")
                    .cloned()
            })
            .unwrap_or(Value::Null)
    };
    [
        ("Canary", schema(Canary::crd())),
        ("MetricTemplate", schema(MetricTemplate::crd())),
        ("AlertProvider", schema(AlertProvider::crd())),
    ]
});

const ENVELOPE: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The paths (`spec.service.primaryTimeout`) of the keys of `object` that a `kind` object
/// does not have, in the order of the object's keys. Nothing for a kind that is not serin's.
pub fn unknown_fields(kind: &str, object: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, schema)) = SCHEMAS.iter().find(|(k, _)| *k == kind) else {
        return found;
    };
    // Every object's envelope, which the CRD's schema leaves to Kubernetes.
    let Some(fields) = object.as_object() else {
        return found;
    };
    for (key, child) in fields {
        match schema.pointer(&format!("/properties/{key}")) {
            _ if ENVELOPE.contains(&key.as_str()) => {}
            Some(known) => walk(known, child, key, &mut found),
            None => found.push(key.clone()),
        }
    }
    found
}

fn walk(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let map = schema.get("additionalProperties").filter(|s| s.is_object());
            for (key, child) in fields {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (properties.and_then(|p| p.get(key)), map) {
                    (Some(known), _) | (None, Some(known)) => {
                        walk(known, child, &child_path, found)
                    }
                    // A schema without properties is free-form (metadata).
                    (None, None) if properties.is_some() => found.push(child_path),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    walk(item, child, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_is_found_beside_known_ones_and_free_form_maps() {
        let canary: Value = serde_yaml_ng::from_str(
            "apiVersion: serin.dev/v1beta1
kind: Canary
metadata: {name: web, annotations: {anything: goes}, whatever: 1}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: eighty, primaryTimeout: 5s, headers: {request: {set: {x: y}}}}
  analysis:
    match: [{header: {x: {exact: y}}}, {headers: {x: {exakt: y}}}]
    metrics: [{name: a, tresholdRange: {min: 1}}]
",
        )
        .unwrap();
        assert_eq!(
            unknown_fields("Canary", &canary),
            [
                "spec.analysis.match[0].header",
                "spec.analysis.match[1].headers.x.exakt",
                "spec.analysis.metrics[0].tresholdRange",
                "spec.service.primaryTimeout",
            ]
        );
        assert!(unknown_fields("Service", &canary).is_empty());
    }
}
