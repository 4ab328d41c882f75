//! The `<hpa>-primary` HorizontalPodAutoscaler: a copy of the target's HPA scaling the primary
//! Deployment. HPAs are handled as JSON because the served version differs across clusters
//! (`autoscaling/v2` since 1.23, `autoscaling/v2beta2` before); the spec is the same shape.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, TypeMeta};

use super::primary::PRIMARY_SUFFIX;

/// The primary's HPA for `target_hpa`, scaling `primary_deployment`.
pub fn desired_primary_hpa(
    target_hpa: &DynamicObject,
    resource: &ApiResource,
    primary_deployment: &str,
    owner: Option<OwnerReference>,
) -> DynamicObject {
    let mut spec = target_hpa.data.get("spec").cloned().unwrap_or_default();
    if let Some(target) = spec.get_mut("scaleTargetRef") {
        target["name"] = serde_json::json!(primary_deployment);
    }
    DynamicObject {
        types: Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        }),
        metadata: ObjectMeta {
            name: target_hpa
                .metadata
                .name
                .as_ref()
                .map(|n| format!("{n}{PRIMARY_SUFFIX}")),
            namespace: target_hpa.metadata.namespace.clone(),
            labels: target_hpa.metadata.labels.clone(),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: serde_json::json!({ "spec": spec }),
    }
}

/// The Deployment an HPA scales, when it scales one.
pub fn scaled_deployment(hpa: &DynamicObject) -> Option<&str> {
    let target = hpa.data.get("spec")?.get("scaleTargetRef")?;
    (target.get("kind")?.as_str()? == "Deployment").then_some(())?;
    target.get("name")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;

    #[test]
    fn the_primary_hpa_scales_the_primary_with_the_same_policy() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
        ));
        let target: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "minReplicas": 2, "maxReplicas": 4,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}}}],
            },
        }))
        .unwrap();
        assert_eq!(scaled_deployment(&target), Some("podinfo"));
        let primary = desired_primary_hpa(&target, &resource, "podinfo-primary", None);
        assert_eq!(primary.metadata.name.as_deref(), Some("podinfo-primary"));
        assert_eq!(
            primary.data["spec"]["scaleTargetRef"]["name"],
            "podinfo-primary"
        );
        assert_eq!(primary.data["spec"]["maxReplicas"], 4);
        assert_eq!(
            primary.data["spec"]["metrics"],
            target.data["spec"]["metrics"]
        );
    }
}
