//! Reading serin objects from YAML (files, scenarios, `serin check`) with errors that name the
//! field path, e.g. `spec.analysis.interval: invalid duration "abc"`.

use serde::de::DeserializeOwned;

use super::validation::FieldError;
use super::yaml;

/// Deserializes `text` (YAML or JSON) into `T`, reporting the path of the first bad field.
/// `root` prefixes the path, e.g. `canary` for an object nested in a scenario.
///
/// Read as [`super::yaml`] reads manifests: a byte-order mark ignored, nesting bounded, merge
/// keys applied (those documents are decoded from the merged value, so their errors name the
/// field but not the line).
pub fn from_yaml<T: DeserializeOwned>(text: &str, root: &str) -> Result<T, FieldError> {
    let text = yaml::without_bom(text);
    let unreadable = |e: yaml::YamlError| FieldError::new(e.field.clone(), e.to_string());
    yaml::check_depth(text).map_err(unreadable)?;
    if text.contains("<<") {
        let value = yaml::parse(text).map_err(unreadable)?;
        return serde_path_to_error::deserialize(value).map_err(|error| located(error, root));
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| located(error, root))
}

/// Like [`from_yaml`], for an object already parsed (e.g. embedded in another document).
/// A field set to null (`webhooks:` left empty, as Helm charts render it) is read as absent,
/// as the API server prunes it before serin or Flagger sees the object.
pub fn from_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    root: &str,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(without_nulls(value)).map_err(|error| located(error, root))
}

/// `value` with every null-valued object field left out, at any depth (list items are kept:
/// a null item is an error the decoder names).
pub fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn located<E: std::fmt::Display>(error: serde_path_to_error::Error<E>, root: &str) -> FieldError {
    let path = error.path().to_string();
    let field = match (root.is_empty(), path.as_str()) {
        (true, ".") => "(document)".to_string(),
        (true, _) => path.clone(),
        (false, ".") => root.to_string(),
        (false, _) => format!("{root}.{path}"),
    };
    // serde_yaml repeats the path at the start of its message; say it once.
    let message = error.into_inner().to_string();
    let reason = message
        .strip_prefix(&format!("{path}: "))
        .unwrap_or(&message);
    FieldError::new(field, reason.trim())
}

/// Checks an object's `apiVersion` and `kind` before its fields, so a Flagger manifest or a
/// wrong kind is named as such instead of failing on some field further down.
pub fn expect_type(
    value: &serde_json::Value,
    api_version: &str,
    kind: &str,
) -> Result<(), FieldError> {
    let found_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let found_kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    if found_kind != kind {
        return Err(FieldError::new(
            "kind",
            format!("expected {kind}, found {found_kind:?}"),
        ));
    }
    // Both groups are served (flagger.app in drop-in mode) with the same schema.
    if found_version == super::group::ApiGroup::Flagger.api_version()
        && api_version == super::group::ApiGroup::Serin.api_version()
    {
        return Ok(());
    }
    if found_version.starts_with("flagger.app/v1alpha") {
        return Err(FieldError::new(
            "apiVersion",
            format!(
                "{found_version} is Flagger's pre-1.0 API, which Flagger itself no longer serves: write flagger.app/v1beta1 or {api_version}"
            ),
        ));
    }
    if found_version != api_version {
        return Err(FieldError::new(
            "apiVersion",
            format!("expected {api_version}, found {found_version:?}"),
        ));
    }
    Ok(())
}
