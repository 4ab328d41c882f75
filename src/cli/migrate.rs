//! `serin migrate FILE...`: Flagger manifests (`flagger.app/v1beta1` Canary, MetricTemplate,
//! AlertProvider) to serin's API. serin keeps Flagger's field names, so most of a conversion is
//! the apiVersion; what serin cannot do the same way is listed for a human to decide: traffic
//! providers and metric providers serin lacks, Flagger's load tester commands, and any field
//! serin does not know (found by decoding into serin's types and comparing what survives).
//! Other documents pass through unchanged.

use serde_json::Value;

use super::check::{API_VERSION, Document};
use crate::api::leniency;
use crate::api::load::from_value;
use crate::api::provider::TrafficProvider;
use crate::api::{AlertProvider, Canary, MetricTemplate};

/// One thing a human has to decide.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub object: String,
    pub field: String,
    pub note: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} {}: {}: {}",
            self.file, self.line, self.object, self.field, self.note
        )
    }
}

/// The converted documents and the notes.
#[derive(Debug, Default)]
pub struct Migration {
    pub documents: Vec<Value>,
    pub notes: Vec<Note>,
    pub converted: usize,
}

const FLAGGER: &str = "flagger.app/v1beta1";

/// Metadata a cluster adds, meaningless in git.
const SERVER_FIELDS: [&str; 6] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

pub fn migrate(documents: &[Document]) -> Migration {
    let mut out = Migration::default();
    for doc in documents {
        if doc.text("/apiVersion") != FLAGGER || !doc.is_serin_kind() {
            out.documents.push(doc.value.clone());
            continue;
        }
        out.converted += 1;
        let (kind, name) = (doc.text("/kind"), doc.text("/metadata/name"));
        let mut notes = Vec::new();
        let mut value = doc.value.clone();
        value["apiVersion"] = Value::String(API_VERSION.into());
        if let Some(object) = value.as_object_mut() {
            object.remove("status");
        }
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_FIELDS {
                meta.remove(field);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
        let decoded = match kind {
            "Canary" => {
                canary_notes(&value, &mut notes);
                thresholds_to_ranges(&mut value);
                from_value::<Canary>(&value, "").and_then(|c| to_value(&c))
            }
            "MetricTemplate" => {
                // Decoding parses provider.type (`api::metric_provider`): a type serin
                // lacks becomes a note on spec.provider.type saying so.
                from_value::<MetricTemplate>(&value, "").and_then(|t| to_value(&t))
            }
            _ => from_value::<AlertProvider>(&value, "").and_then(|p| to_value(&p)),
        };
        match decoded {
            Ok(decoded) => {
                for path in dropped(&value, &decoded, "") {
                    notes.push((
                        path.clone(),
                        "serin has no such field; it was left out of the conversion".into(),
                    ));
                }
                out.documents.push(decoded);
            }
            Err(error) => {
                // Kept as converted so far; `serin check` will name the same problem.
                notes.push((error.field, error.reason));
                out.documents.push(value);
            }
        }
        for (field, note) in notes {
            out.notes.push(Note {
                file: doc.file.display().to_string(),
                line: doc.line,
                object: format!("{kind} {name}"),
                field,
                note,
            });
        }
    }
    out
}

fn to_value<T: serde::Serialize>(object: &T) -> Result<Value, crate::api::validation::FieldError> {
    serde_json::to_value(object)
        .map_err(|e| crate::api::validation::FieldError::new("(document)", e.to_string()))
}

fn canary_notes(value: &Value, notes: &mut Vec<(String, String)>) {
    if let Some(provider) = value.pointer("/spec/provider").and_then(Value::as_str)
        && let Err(error) = TrafficProvider::parse(provider)
    {
        notes.push((
            "spec.provider".into(),
            format!("{error} (Gateway API covers most ingress controllers and meshes)"),
        ));
    }
    let hooks = value
        .pointer("/spec/analysis/webhooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, hook) in hooks.iter().enumerate() {
        let field = |key: &str| format!("spec.analysis.webhooks[{i}].{key}");
        let url = hook.get("url").and_then(Value::as_str).unwrap_or("");
        if url.contains("flagger-loadtester") {
            notes.push((
                field("url"),
                "points at Flagger's load tester: `serin loadtester` serves the same paths (/, /gate/*, /rollback/*) and hey commands; point it at your serin-loadtester Service".into(),
            ));
        }
        let kind = hook.pointer("/metadata/type").and_then(Value::as_str);
        let cmd = hook.pointer("/metadata/cmd").and_then(Value::as_str);
        match (kind, cmd) {
            (Some("bash" | "helm" | "helmv3" | "concord"), _) => notes.push((
                field("metadata.type"),
                "serin loadtester runs HTTP load only, no shell, helm or concord commands: run this test from your own webhook".into(),
            )),
            (_, Some(cmd)) if !cmd.trim_start().starts_with("hey ") => notes.push((
                field("metadata.cmd"),
                format!(
                    "serin loadtester generates load itself and runs no commands ({:?}); use hey flags or url/rate/duration metadata (docs/webhooks.md)",
                    cmd.split_whitespace().next().unwrap_or("")
                ),
            )),
            _ => {}
        }
    }
}

/// The deprecated `metrics[].threshold` as the `thresholdRange` bound Flagger checks it as
/// (`api::leniency`); beside a thresholdRange, Flagger ignores it, and so it goes.
fn thresholds_to_ranges(canary: &mut Value) {
    let Some(metrics) = canary
        .pointer_mut("/spec/analysis/metrics")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for metric in metrics.iter_mut().filter_map(Value::as_object_mut) {
        let Some(threshold) = metric.get("threshold").and_then(Value::as_f64) else {
            continue;
        };
        metric.remove("threshold");
        if metric.get("thresholdRange").is_some_and(|r| !r.is_null()) {
            continue;
        }
        let name = metric.get("name").and_then(Value::as_str).unwrap_or("");
        let range = leniency::threshold_as_range(name, threshold);
        if let Ok(range) = serde_json::to_value(range) {
            metric.insert("thresholdRange".into(), range);
        }
    }
}

/// Paths present in `input` but gone from `output` (fields serin does not know), leaving out
/// values that are empty or false, which serin omits because they are its defaults.
fn dropped(input: &Value, output: &Value, path: &str) -> Vec<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .flat_map(|(key, value)| match b.get(key) {
                Some(kept) => dropped(value, kept, &join(key)),
                None if is_empty(value) => Vec::new(),
                None => vec![join(key)],
            })
            .collect(),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .flat_map(|(i, (x, y))| dropped(x, y, &format!("{path}[{i}]")))
            .collect(),
        _ => Vec::new(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}
