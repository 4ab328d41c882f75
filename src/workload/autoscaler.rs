//! The primary's autoscaler: `<name>-primary`, a copy of the target's HorizontalPodAutoscaler
//! or KEDA ScaledObject scaling the primary instead, with the Canary's own replica bounds
//! (`primaryScalerReplicas`) and, for a ScaledObject, the primary's trigger queries
//! (`primaryScalerQueries`). Handled as JSON: the HPA version served differs across clusters
//! (`autoscaling/v2` since 1.23, `v2beta2` before, the spec the same shape), and serin reads no
//! more of a ScaledObject than it rewrites, so KEDA's new fields are carried over unread.
//!
//! Also what keeps KEDA off the idle target: a ScaledObject scales its workload up on its own
//! (from zero too), so while serin holds the target at zero its ScaledObject carries KEDA's
//! `paused-replicas: "0"` annotation, as Flagger does.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, TypeMeta};
use serde_json::{Value, json};

use crate::api::autoscaler::AutoscalerKind;
use crate::api::canary::AutoscalerRef;

use super::primary::PRIMARY_SUFFIX;

/// KEDA's annotation holding a ScaledObject's workload at a fixed count.
pub const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";

/// Annotations never copied to the primary's autoscaler: KEDA's pause belongs to the target
/// (the primary must keep scaling), kubectl's record to the object it was applied to.
const NOT_COPIED: &[&str] = &[
    PAUSED_REPLICAS,
    "autoscaling.keda.sh/paused",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// KEDA's ScaledObject, as serin reads and writes it.
pub fn scaled_object_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoscalerError {
    #[error(
        "spec.autoscalerRef.primaryScalerQueries names trigger {0:?}, which ScaledObject {1} does not have (its triggers: {2})"
    )]
    NoSuchTrigger(String, String, String),
}

/// What the primary's copy is built from.
pub struct PrimaryScaler<'a> {
    /// The target's autoscaler, as read.
    pub source: &'a DynamicObject,
    /// The API resource to write the copy as (the HPA version the cluster serves).
    pub resource: &'a ApiResource,
    pub reference: &'a AutoscalerRef,
    /// The Canary's `targetRef.name`.
    pub target: &'a str,
    pub owner: Option<OwnerReference>,
}

/// The `<autoscaler>-primary` copy scaling `<target>-primary`.
pub fn desired_primary_scaler(
    inputs: &PrimaryScaler<'_>,
) -> Result<DynamicObject, AutoscalerError> {
    let mut spec = inputs.source.data.get("spec").cloned().unwrap_or_default();
    let primary = format!("{}{PRIMARY_SUFFIX}", inputs.target);
    if let Some(target) = spec.get_mut("scaleTargetRef") {
        target["name"] = json!(primary);
    }
    let bounds = inputs.reference.primary_scaler_replicas.as_ref();
    let kind =
        AutoscalerKind::of(inputs.reference).unwrap_or(AutoscalerKind::HorizontalPodAutoscaler);
    let (min, max) = match kind {
        AutoscalerKind::HorizontalPodAutoscaler => ("minReplicas", "maxReplicas"),
        AutoscalerKind::ScaledObject => ("minReplicaCount", "maxReplicaCount"),
    };
    if let Some(value) = bounds.and_then(|b| b.min_replicas) {
        spec[min] = json!(value);
    }
    if let Some(value) = bounds.and_then(|b| b.max_replicas) {
        spec[max] = json!(value);
    }
    if kind == AutoscalerKind::ScaledObject {
        let name = inputs.source.metadata.name.clone().unwrap_or_default();
        primary_triggers(
            &mut spec,
            &inputs.reference.primary_scaler_queries,
            inputs.target,
            &name,
        )?;
        // KEDA names the HPA it creates after the ScaledObject unless told a name: a named
        // one would be shared by target and primary.
        if let Some(hpa) = spec.pointer_mut("/advanced/horizontalPodAutoscalerConfig/name")
            && let Some(name) = hpa.as_str().filter(|n| !n.is_empty())
        {
            *hpa = json!(format!("{name}{PRIMARY_SUFFIX}"));
        }
    }
    let metadata = &inputs.source.metadata;
    let annotations: BTreeMap<String, String> = metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(key, _)| !NOT_COPIED.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(DynamicObject {
        types: Some(TypeMeta {
            api_version: inputs.resource.api_version.clone(),
            kind: inputs.resource.kind.clone(),
        }),
        metadata: ObjectMeta {
            name: metadata
                .name
                .as_ref()
                .map(|n| format!("{n}{PRIMARY_SUFFIX}")),
            namespace: metadata.namespace.clone(),
            labels: metadata.labels.clone(),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: inputs.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: json!({ "spec": spec }),
    })
}

/// Whether a live primary autoscaler already is `desired` (spec, labels, annotations), so
/// nothing is written.
pub fn in_sync(live: &DynamicObject, desired: &DynamicObject) -> bool {
    let annotations = |o: &DynamicObject| -> BTreeMap<String, String> {
        o.metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(key, _)| !NOT_COPIED.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    live.data.get("spec") == desired.data.get("spec")
        && live.metadata.labels.clone().unwrap_or_default()
            == desired.metadata.labels.clone().unwrap_or_default()
        && annotations(live) == annotations(desired)
}

/// The primary's triggers. With `queries`, a trigger of a named entry gets that query and the
/// others keep theirs (Flagger's rule); a name no trigger has is an error rather than ignored.
/// Without, each query's mentions of the target (or its `-canary`) name the primary instead.
fn primary_triggers(
    spec: &mut Value,
    queries: &BTreeMap<String, String>,
    target: &str,
    scaled_object: &str,
) -> Result<(), AutoscalerError> {
    let triggers = spec
        .get_mut("triggers")
        .and_then(Value::as_array_mut)
        .map(Vec::as_mut_slice)
        .unwrap_or_default();
    let names: Vec<String> = triggers
        .iter()
        .filter_map(|t| t.get("name")?.as_str().map(str::to_string))
        .collect();
    if let Some(missing) = queries.keys().find(|name| !names.contains(name)) {
        return Err(AutoscalerError::NoSuchTrigger(
            missing.clone(),
            scaled_object.to_string(),
            if names.is_empty() {
                "none named".to_string()
            } else {
                names.join(", ")
            },
        ));
    }
    for trigger in triggers.iter_mut() {
        let name = trigger
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(query) = trigger.pointer_mut("/metadata/query") else {
            continue;
        };
        let replaced = match name.and_then(|n| queries.get(&n)) {
            Some(query) => query.clone(),
            None if queries.is_empty() => query
                .as_str()
                .map(|q| to_primary(q, target))
                .unwrap_or_default(),
            None => continue,
        };
        *query = json!(replaced);
    }
    Ok(())
}

/// `query` with every mention of `target` or `<target>-canary` naming `<target>-primary`;
/// mentions of `<target>-primary` stay as they are. A best effort, as Flagger's: a query whose
/// names this misreads is given explicitly in `primaryScalerQueries`.
pub fn to_primary(query: &str, target: &str) -> String {
    if target.is_empty() {
        return query.to_string();
    }
    let primary = format!("{target}{PRIMARY_SUFFIX}");
    let canary = format!("{target}-canary");
    let mut out = String::with_capacity(query.len() + 16);
    let mut rest = query;
    while let Some(at) = rest.find(target) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let taken = if tail.starts_with(&primary) {
            primary.len()
        } else if tail.starts_with(&canary) {
            canary.len()
        } else {
            target.len()
        };
        out.push_str(&primary);
        rest = &tail[taken..];
    }
    out.push_str(rest);
    out
}

/// The merge patch pausing (`pause`) or resuming the target's ScaledObject, or None when its
/// annotations already say so. A merge patch rather than an apply: a pause someone else wrote
/// must go too, or KEDA would leave the canary at zero during a rollout.
pub fn pause_patch(scaled_object: &DynamicObject, pause: bool) -> Option<Value> {
    let current = scaled_object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_REPLICAS));
    match (pause, current.map(String::as_str)) {
        (true, Some("0")) | (false, None) => None,
        (true, _) => Some(json!({"metadata": {"annotations": {PAUSED_REPLICAS: "0"}}})),
        (false, Some(_)) => Some(json!({"metadata": {"annotations": {PAUSED_REPLICAS: null}}})),
    }
}

/// The name of the workload (of any kind) an HPA scales.
pub fn scaled_workload(hpa: &DynamicObject) -> Option<&str> {
    hpa.data
        .get("spec")?
        .get("scaleTargetRef")?
        .get("name")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(extra: Value) -> AutoscalerRef {
        let mut value =
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn scaled_object() -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "podinfo", "namespace": "test", "labels": {"team": "shop"},
                         "annotations": {PAUSED_REPLICAS: "0", "note": "kept"}},
            "spec": {
                "scaleTargetRef": {"name": "podinfo"},
                "minReplicaCount": 1, "maxReplicaCount": 5,
                "triggers": [
                    {"type": "prometheus", "name": "requests", "metadata": {"serverAddress": "http://prom", "query": "sum(rate(http_requests_total{app=\"podinfo-canary\"}[1m]))"}},
                    {"type": "prometheus", "name": "latency", "metadata": {"query": "max(latency{deployment=\"podinfo\"})"}},
                    {"type": "cpu", "metadata": {"value": "80"}},
                ],
            },
        }))
        .unwrap()
    }

    fn primary(reference: &AutoscalerRef) -> Result<DynamicObject, AutoscalerError> {
        desired_primary_scaler(&PrimaryScaler {
            source: &scaled_object(),
            resource: &scaled_object_resource(),
            reference,
            target: "podinfo",
            owner: None,
        })
    }

    #[test]
    fn the_primary_hpa_scales_the_primary_with_the_same_policy_and_its_own_bounds() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "autoscaling",
            "v2beta2",
            "HorizontalPodAutoscaler",
        ));
        let target: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "test"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "minReplicas": 2, "maxReplicas": 4,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}}}],
            },
        }))
        .unwrap();
        assert_eq!(scaled_workload(&target), Some("podinfo"));
        let hpa: AutoscalerRef = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web",
            "primaryScalerReplicas": {"maxReplicas": 9},
        }))
        .unwrap();
        let primary = desired_primary_scaler(&PrimaryScaler {
            source: &target,
            resource: &resource,
            reference: &hpa,
            target: "podinfo",
            owner: None,
        })
        .unwrap();
        assert_eq!(primary.metadata.name.as_deref(), Some("web-primary"));
        assert_eq!(primary.types.unwrap().api_version, "autoscaling/v2beta2");
        let spec = &primary.data["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], "podinfo-primary");
        assert_eq!(
            (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()),
            (Some(2), Some(9))
        );
        assert_eq!(spec["metrics"], target.data["spec"]["metrics"]);
    }

    #[test]
    fn a_scaled_object_is_cloned_onto_the_primary_with_its_queries_renamed() {
        let primary = primary(&reference(json!({}))).unwrap();
        assert_eq!(primary.metadata.name.as_deref(), Some("podinfo-primary"));
        let spec = &primary.data["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], "podinfo-primary");
        assert_eq!(
            spec["triggers"][0]["metadata"]["query"],
            "sum(rate(http_requests_total{app=\"podinfo-primary\"}[1m]))"
        );
        assert_eq!(
            spec["triggers"][1]["metadata"]["query"],
            "max(latency{deployment=\"podinfo-primary\"})"
        );
        assert_eq!(
            spec["triggers"][0]["metadata"]["serverAddress"],
            "http://prom"
        );
        assert_eq!(
            spec["triggers"][2],
            scaled_object().data["spec"]["triggers"][2]
        );
        let annotations = primary.metadata.annotations.unwrap();
        assert!(
            !annotations.contains_key(PAUSED_REPLICAS),
            "the primary must keep scaling"
        );
        assert_eq!(annotations["note"], "kept");
    }

    #[test]
    fn primary_scaler_queries_replace_the_named_triggers_and_bounds_apply() {
        let reference = reference(json!({
            "primaryScalerQueries": {"latency": "max(latency{deployment=\"web-primary\"})"},
            "primaryScalerReplicas": {"minReplicas": 0, "maxReplicas": 3},
        }));
        let primary = primary(&reference).unwrap();
        let spec = &primary.data["spec"];
        assert_eq!(
            spec["triggers"][1]["metadata"]["query"],
            "max(latency{deployment=\"web-primary\"})"
        );
        // As Flagger: given queries, the unnamed triggers keep theirs.
        assert_eq!(
            spec["triggers"][0]["metadata"]["query"],
            scaled_object().data["spec"]["triggers"][0]["metadata"]["query"]
        );
        assert_eq!(
            (
                spec["minReplicaCount"].as_i64(),
                spec["maxReplicaCount"].as_i64()
            ),
            (Some(0), Some(3))
        );
    }

    #[test]
    fn a_query_for_a_trigger_the_scaled_object_lacks_is_an_error_not_ignored() {
        let error = primary(&reference(
            json!({"primaryScalerQueries": {"rps": "sum(x)"}}),
        ))
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"rps\""), "{message}");
        assert!(message.contains("requests, latency"), "{message}");
    }

    #[test]
    fn renaming_never_doubles_a_suffix() {
        assert_eq!(
            to_primary(
                "a{app=\"podinfo-primary\"} + b{app=\"podinfo\"} + c{app=\"podinfo-canary\"}",
                "podinfo"
            ),
            "a{app=\"podinfo-primary\"} + b{app=\"podinfo-primary\"} + c{app=\"podinfo-primary\"}"
        );
        assert_eq!(to_primary("sum(up)", "podinfo"), "sum(up)");
    }

    #[test]
    fn a_named_keda_hpa_gets_its_own_name_for_the_primary() {
        let mut source = scaled_object();
        source.data["spec"]["advanced"] =
            json!({"horizontalPodAutoscalerConfig": {"name": "web-hpa"}});
        let primary = desired_primary_scaler(&PrimaryScaler {
            source: &source,
            resource: &scaled_object_resource(),
            reference: &reference(json!({})),
            target: "podinfo",
            owner: None,
        })
        .unwrap();
        assert_eq!(
            primary.data["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"],
            "web-hpa-primary"
        );
    }

    #[test]
    fn the_target_scaled_object_is_paused_at_zero_and_resumed_once() {
        let mut target = scaled_object();
        assert_eq!(pause_patch(&target, true), None, "already paused");
        let resume = pause_patch(&target, false).unwrap();
        assert_eq!(
            resume["metadata"]["annotations"][PAUSED_REPLICAS],
            Value::Null
        );
        target.metadata.annotations = None;
        assert_eq!(pause_patch(&target, false), None, "nothing to resume");
        assert_eq!(
            pause_patch(&target, true).unwrap()["metadata"]["annotations"][PAUSED_REPLICAS],
            "0"
        );
    }
}
