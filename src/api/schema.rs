//! Schema fragments for fields whose Rust type does not say what Kubernetes needs to know.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form object passed through to another system as written (an Istio CorsPolicy, say).
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A port given by number or by name, like Kubernetes' own targetPort.
pub fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
    })
}

/// Drops the `default` schemars derives from `#[serde(default)]`.
pub fn no_default(schema: &mut Schema) {
    schema.remove("default");
}

/// Drops the `additionalProperties: false` that `#[serde(deny_unknown_fields)]` derives:
/// Kubernetes refuses it beside `properties` in a CRD, and prunes unknown fields anyway. The
/// refusal still holds where serin reads YAML itself (`serin check`, `serin simulate`).
pub fn open_object(schema: &mut Schema) {
    schema.remove("additionalProperties");
}
