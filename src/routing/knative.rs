//! Knative: the traffic split lives in the target Knative Service itself. Its `spec.traffic`
//! gets two entries, the promoted revision by name and the latest revision
//! (`latestRevision: true`), each with its percent, as Flagger's knative router writes them;
//! Knative's own routes do the rest. serin owns only `spec.traffic` (server-side apply), so the
//! user's template and everything else in the Service stay theirs. The promoted revision is
//! read from the live Service (`crate::workload::knative::PRIMARY_REVISION`), which serin
//! records there before the first split.

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, TypeMeta};
use serde_json::{Value, json};

use crate::engine::Traffic;
use crate::workload::knative::{API_VERSION, GROUP, VERSION, promoted_revision};

use super::{RouteError, RouteInputs, Router, SourceRef, resource, weights};

pub struct Knative;

fn service() -> ApiResource {
    resource(GROUP, VERSION, "Service", "services")
}

impl Router for Knative {
    fn resources(&self) -> Vec<ApiResource> {
        vec![service()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let name = &inputs.spec.target_ref.name;
        let source = inputs
            .source
            .ok_or_else(|| RouteError::SourceNotRead(format!("the Knative Service {name}")))?;
        let promoted = promoted_revision(source.annotations()).ok_or_else(|| {
            RouteError::Source(format!(
                "the Knative Service {name} has no promoted revision recorded yet"
            ))
        })?;
        Ok(vec![DynamicObject {
            types: Some(TypeMeta {
                api_version: API_VERSION.into(),
                kind: "Service".into(),
            }),
            // No owner reference: the Service is the user's, and must outlive the Canary.
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(inputs.namespace.to_string()),
                ..ObjectMeta::default()
            },
            data: json!({"spec": {"traffic": split(promoted, traffic)}}),
        }])
    }

    /// None: the route is the target itself, whose spec is the user's. Only `spec.traffic` is
    /// serin's, and a deleted Canary gives it back to the latest revision
    /// (`controller::finalize`), not the whole spec as it was.
    fn taken_over(&self, _inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        None
    }

    fn source(&self, inputs: &RouteInputs<'_>) -> Option<SourceRef> {
        Some(SourceRef {
            resource: service(),
            name: inputs.spec.target_ref.name.clone(),
            namespace: None,
            field: "spec.targetRef",
        })
    }
}

/// `spec.traffic` for a split: the latest revision first, then the promoted one by name.
pub fn split(promoted: &str, traffic: Traffic) -> Value {
    let (primary, canary) = weights(traffic);
    json!([
        {"latestRevision": true, "percent": canary},
        {"revisionName": promoted, "latestRevision": false, "percent": primary},
    ])
}

/// What Knative does without a `spec.traffic`: everything to the latest revision. A deleted
/// Canary leaves its Service so (`revertOnDeletion`).
pub fn all_to_latest() -> Value {
    json!([{"latestRevision": true, "percent": 100}])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};
    use crate::workload::knative::{FLAGGER_PRIMARY_REVISION, PRIMARY_REVISION};

    fn live(annotations: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION, "kind": "Service",
            "metadata": {"name": "podinfo", "annotations": annotations},
            "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.1"}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn the_split_names_the_promoted_revision_and_follows_the_latest() {
        let spec = spec("{port: 80}", "{interval: 1m}");
        let source = live(json!({PRIMARY_REVISION: "podinfo-00001"}));
        let inputs = RouteInputs {
            source: Some(&source),
            ..inputs_for(&spec)
        };
        let objects = Knative.objects(&inputs, Traffic::weights(70, 30)).unwrap();
        let [service] = objects.as_slice() else {
            panic!("{objects:?}")
        };
        assert_eq!(service.name_any(), "podinfo");
        assert!(service.metadata.owner_references.is_none());
        assert_eq!(
            service.data,
            json!({"spec": {"traffic": [
                {"latestRevision": true, "percent": 30},
                {"revisionName": "podinfo-00001", "latestRevision": false, "percent": 70},
            ]}}),
            "only spec.traffic: the template stays the user's"
        );
    }

    #[test]
    fn flaggers_record_of_the_primary_is_followed_and_none_is_an_error() {
        let spec = spec("{port: 80}", "{interval: 1m}");
        let flaggers = live(json!({FLAGGER_PRIMARY_REVISION: "podinfo-00004"}));
        let inputs = RouteInputs {
            source: Some(&flaggers),
            ..inputs_for(&spec)
        };
        let objects = Knative.objects(&inputs, Traffic::PRIMARY).unwrap();
        assert_eq!(
            objects[0].data["spec"]["traffic"][1]["revisionName"],
            "podinfo-00004"
        );
        let bare = live(json!({}));
        let inputs = RouteInputs {
            source: Some(&bare),
            ..inputs_for(&spec)
        };
        let error = Knative.objects(&inputs, Traffic::PRIMARY).unwrap_err();
        assert!(
            error.to_string().contains("no promoted revision"),
            "{error}"
        );
    }
}
