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

/// A webhook's `type`: serin's hook kinds, and the empty string Flagger's schema allows (and
/// reads as `rollout`).
pub fn hook_kind(_: &mut SchemaGenerator) -> Schema {
    use crate::api::canary::HookKind;
    let kinds = [
        HookKind::ConfirmRollout,
        HookKind::PreRollout,
        HookKind::Rollout,
        HookKind::ConfirmTrafficIncrease,
        HookKind::ConfirmPromotion,
        HookKind::PostRollout,
        HookKind::Rollback,
        HookKind::Event,
    ];
    let mut names = vec![""];
    names.extend(kinds.iter().map(|k| k.as_str()));
    json_schema!({
        "description": "When the hook runs. Default rollout (also when empty, as Flagger reads it).",
        "type": "string",
        "enum": names,
    })
}

/// An alert's `severity`: info, warn, error, or empty (info, as Flagger reads it).
pub fn severity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Default info (also when empty, as Flagger reads it).",
        "type": "string",
        "enum": ["", "info", "warn", "error"],
    })
}

/// A cookie's `SameSite`: an optional enum without the `null` Kubernetes refuses among values.
pub fn same_site(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The cookies' SameSite attribute: Strict, Lax or None.",
        "type": "string",
        "enum": ["Strict", "Lax", "None"],
    })
}
