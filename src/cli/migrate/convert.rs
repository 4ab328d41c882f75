//! What converting one Flagger document means, as a list of edits (`super::edit`): the
//! apiVersion's group, the deprecated `metrics[].threshold` as the `thresholdRange` Flagger
//! checks it as, a Deployment's `targetRef.apiVersion` as the apps/v1 it is read through, and
//! what a cluster adds (status, server metadata, kubectl's last-applied configuration) left out.
//! Beside the edits, what a human has to decide: traffic and metric providers serin lacks,
//! Flagger's load tester commands, every field serin does not know (all of them, from the CRD
//! schema, even when decoding stops at another error) and the error decoding stops at.

use serde_json::Value;

use super::edit::{self, Edit, Step};
use crate::api::known_fields::unknown_fields;
use crate::api::leniency;
use crate::api::load::from_value;
use crate::api::provider::TrafficProvider;
use crate::api::validation::FieldError;
use crate::api::{AlertProvider, Canary, MetricTemplate};
use crate::cli::check::Document;

const FLAGGER_GROUP: &str = "flagger.app/";
const SERIN_GROUP: &str = "serin.dev/";

/// Metadata a cluster adds, meaningless in git.
const SERVER_FIELDS: [&str; 6] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What becomes of one document.
#[derive(Debug)]
pub enum Conversion {
    /// Not a Flagger Canary, MetricTemplate or AlertProvider: left as written.
    Untouched,
    /// A Flagger object serin does not convert (Flagger's pre-1.0 API), left as written.
    Refused(FieldError),
    Converted {
        edits: Vec<Edit>,
        /// The converted object (the edits made to the document's value).
        object: Value,
        /// What a human has to decide, by field.
        notes: Vec<FieldError>,
    },
}

/// How `doc` converts.
pub fn convert(doc: &Document) -> Conversion {
    let version = doc.text("/apiVersion");
    if !version.starts_with(FLAGGER_GROUP) || !doc.is_serin_kind() {
        return Conversion::Untouched;
    }
    if version != "flagger.app/v1beta1" {
        return Conversion::Refused(FieldError::new(
            "apiVersion",
            format!(
                "{version} is not converted: it is Flagger's pre-1.0 API; upgrade it as Flagger's upgrade guide says (apiVersion flagger.app/v1beta1, spec.canaryAnalysis renamed spec.analysis), then migrate it"
            ),
        ));
    }
    let kind = doc.text("/kind");
    let mut edits = vec![Edit::Substitute {
        path: key(&["apiVersion"]),
        from: FLAGGER_GROUP.into(),
        to: SERIN_GROUP.into(),
    }];
    edits.extend(cluster_fields(&doc.value));
    let mut notes = Vec::new();
    if kind == "Canary" {
        edits.extend(thresholds_to_ranges(&doc.value));
        edits.extend(target_api_version(&doc.value));
        notes.extend(canary_notes(&doc.value));
    }
    let edits = edit::tidy(edits, &doc.value);
    let object = edit::apply_to_value(&doc.value, &edits);
    notes.extend(unknown_and_undecodable(kind, &object));
    Conversion::Converted {
        edits,
        object,
        notes,
    }
}

fn key(keys: &[&str]) -> Vec<Step> {
    keys.iter().map(|k| Step::Key(k.to_string())).collect()
}

/// `status` and the metadata a cluster writes, where the document has them.
fn cluster_fields(document: &Value) -> Vec<Edit> {
    let mut paths = vec![key(&["status"])];
    paths.extend(SERVER_FIELDS.iter().map(|f| key(&["metadata", f])));
    paths.push(key(&["metadata", "annotations", LAST_APPLIED]));
    paths
        .into_iter()
        .filter(|path| {
            let pointer: String = path
                .iter()
                .map(|s| match s {
                    Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                    Step::Item(i) => format!("/{i}"),
                })
                .collect();
            document.pointer(&pointer).is_some()
        })
        .map(|path| Edit::Remove { path })
        .collect()
}

/// The deprecated `metrics[].threshold` as the `thresholdRange` bound Flagger checks it as
/// (`api::leniency`); beside a thresholdRange, Flagger ignores it, and so it goes.
fn thresholds_to_ranges(canary: &Value) -> Vec<Edit> {
    let metrics = canary
        .pointer("/spec/analysis/metrics")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut edits = Vec::new();
    for (i, metric) in metrics.iter().enumerate() {
        let Some(Value::Number(threshold)) = metric.get("threshold") else {
            continue;
        };
        let path = |field: &str| {
            let mut path = key(&["spec", "analysis", "metrics"]);
            path.extend([Step::Item(i), Step::Key(field.into())]);
            path
        };
        match metric.get("thresholdRange") {
            Some(range) if !range.is_null() => {
                edits.push(Edit::Remove {
                    path: path("threshold"),
                });
                continue;
            }
            Some(_) => edits.push(Edit::Remove {
                path: path("thresholdRange"),
            }),
            None => {}
        }
        let name = metric.get("name").and_then(Value::as_str).unwrap_or("");
        let bound = match leniency::threshold_as_range(name, 0.0).min {
            Some(_) => "min",
            None => "max",
        };
        edits.push(Edit::Replace {
            path: path("threshold"),
            key: "thresholdRange".into(),
            yaml: format!("{{{bound}: {threshold}}}"),
            value: Value::Object(
                [(bound.to_string(), Value::Number(threshold.clone()))]
                    .into_iter()
                    .collect(),
            ),
        });
    }
    edits
}

/// A Deployment is read through apps/v1 whatever version its reference names (as Flagger
/// reads it): the reference says so once converted.
fn target_api_version(canary: &Value) -> Option<Edit> {
    let target = canary.pointer("/spec/targetRef")?;
    let version = target.get("apiVersion")?.as_str()?;
    let deployment = target.get("kind").and_then(Value::as_str) == Some("Deployment");
    (deployment && !version.is_empty() && version != "apps/v1").then(|| Edit::Replace {
        path: key(&["spec", "targetRef", "apiVersion"]),
        key: "apiVersion".into(),
        yaml: "apps/v1".into(),
        value: Value::String("apps/v1".into()),
    })
}

/// Every field serin does not know, then the error decoding the converted object stops at
/// (unless it is about one of those fields).
fn unknown_and_undecodable(kind: &str, object: &Value) -> Vec<FieldError> {
    let mut notes: Vec<FieldError> = unknown_fields(kind, object)
        .into_iter()
        .map(|field| {
            FieldError::new(
                field,
                "serin has no such field: kept as written, but it has no effect (the API server drops it); remove it or correct its name",
            )
        })
        .collect();
    // Decoding parses provider types (`api::metric_provider`, `api::provider`): a type serin
    // lacks becomes a note on its field saying so.
    let decoded = match kind {
        "Canary" => from_value::<Canary>(object, "").map(drop),
        "MetricTemplate" => from_value::<MetricTemplate>(object, "").map(drop),
        _ => from_value::<AlertProvider>(object, "").map(drop),
    };
    if let Err(error) = decoded
        && !notes.iter().any(|n| error.field.starts_with(&n.field))
    {
        notes.push(error);
    }
    notes
}

fn canary_notes(value: &Value) -> Vec<FieldError> {
    let mut notes = Vec::new();
    if let Some(provider) = value.pointer("/spec/provider").and_then(Value::as_str)
        && let Err(error) = TrafficProvider::parse(provider)
    {
        notes.push(FieldError::new(
            "spec.provider",
            format!("{error} (Gateway API covers most ingress controllers and meshes)"),
        ));
    }
    let hooks = value
        .pointer("/spec/analysis/webhooks")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, hook) in hooks.iter().enumerate() {
        notes.extend(hook_notes(hook, |field| {
            format!("spec.analysis.webhooks[{i}].{field}")
        }));
    }
    notes
}

fn hook_notes(hook: &Value, field: impl Fn(&str) -> String) -> Vec<FieldError> {
    let mut notes = Vec::new();
    let url = hook.get("url").and_then(Value::as_str).unwrap_or("");
    if url.contains("flagger-loadtester") {
        notes.push(FieldError::new(
            field("url"),
            "points at Flagger's load tester: `serin loadtester` serves the same paths (/, /gate/*, /rollback/*) and hey commands; point it at your serin-loadtester Service",
        ));
    }
    let kind = hook.pointer("/metadata/type").and_then(Value::as_str);
    let cmd = hook.pointer("/metadata/cmd").and_then(Value::as_str);
    match (kind, cmd) {
        (Some("bash" | "helm" | "helmv3" | "concord"), _) => notes.push(FieldError::new(
            field("metadata.type"),
            "serin loadtester runs HTTP load only, no shell, helm or concord commands: run this test from your own webhook",
        )),
        (_, Some(cmd)) if !cmd.trim_start().starts_with("hey ") => notes.push(FieldError::new(
            field("metadata.cmd"),
            format!(
                "serin loadtester generates load itself and runs no commands ({:?}); use hey flags or url/rate/duration metadata (docs/webhooks.md)",
                cmd.split_whitespace().next().unwrap_or("")
            ),
        )),
        _ => {}
    }
    notes
}
