//! Kuma (`kuma.io/v1alpha1`): the mesh's traffic to the apex service split by weight between
//! `<svc>-primary` and `<svc>-canary`, named as Kuma's `kuma.io/service` tags name them
//! (`<service>_<namespace>_svc_<port>`), in the mesh of the `kuma.io/mesh` annotation (the
//! Canary's, as Flagger reads it, else the workload's; `default` without one). Two policies:
//!
//! - `kuma` writes Flagger's TrafficRoute: cluster-scoped (Kuma's legacy policies live outside
//!   namespaces), named after the apex service, so a TrafficRoute Flagger left is taken over.
//!   A cluster-scoped object cannot be owned by a Canary, so serin marks its own with
//!   [`OWNER_ANNOTATION`] instead.
//! - `kuma:meshhttproute` writes a MeshHTTPRoute (current Kuma's policy) in the Canary's
//!   namespace, named after the apex service, its mesh in the `kuma.io/mesh` label.
//!
//! Flagger's kuma router splits by weight only: no A/B testing or mirroring.

use kube::api::{ApiResource, DynamicObject};
use serde_json::json;

use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, resource, weights};

/// The annotation naming a Canary's mesh (Flagger's), or a workload's (Kuma's own).
pub const MESH_ANNOTATION: &str = "kuma.io/mesh";
/// The mesh of a Canary and workload naming none.
pub const DEFAULT_MESH: &str = "default";
/// On a cluster-scoped object serin wrote: the uid of the Canary it belongs to (what an owner
/// reference says for namespaced ones).
pub const OWNER_ANNOTATION: &str = "serin.dev/owner-uid";

/// The router writing one of Kuma's two routing policies.
pub struct Kuma {
    policy: Policy,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    TrafficRoute,
    MeshHttpRoute,
}

impl Kuma {
    /// `kuma`: Flagger's TrafficRoute.
    pub const TRAFFIC_ROUTE: Self = Self {
        policy: Policy::TrafficRoute,
    };
    /// `kuma:meshhttproute`: current Kuma's MeshHTTPRoute.
    pub const MESH_HTTP_ROUTE: Self = Self {
        policy: Policy::MeshHttpRoute,
    };

    fn resource(&self) -> ApiResource {
        match self.policy {
            Policy::TrafficRoute => traffic_route(),
            Policy::MeshHttpRoute => mesh_http_route(),
        }
    }
}

pub fn traffic_route() -> ApiResource {
    resource("kuma.io", "v1alpha1", "TrafficRoute", "trafficroutes")
}

pub fn mesh_http_route() -> ApiResource {
    resource("kuma.io", "v1alpha1", "MeshHTTPRoute", "meshhttproutes")
}

/// Whether objects of `resource` live outside namespaces (of what serin writes, Kuma's
/// TrafficRoute only).
pub fn cluster_scoped(resource: &ApiResource) -> bool {
    resource.group == "kuma.io" && resource.kind == "TrafficRoute"
}

/// A service as Kuma's `kuma.io/service` tag names it.
fn kuma_service(inputs: &RouteInputs<'_>, role: ServiceRole) -> String {
    format!(
        "{}_{}_svc_{}",
        inputs.service(role),
        inputs.namespace,
        inputs.spec.service.port
    )
}

impl Router for Kuma {
    fn resources(&self) -> Vec<ApiResource> {
        vec![self.resource()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let (primary, canary) = weights(traffic);
        let mesh = inputs.mesh.unwrap_or(DEFAULT_MESH);
        let name = inputs.service(ServiceRole::Apex);
        let object = match self.policy {
            Policy::TrafficRoute => {
                let tag = |role| json!({"kuma.io/service": kuma_service(inputs, role)});
                let spec = json!({
                    "sources": [{"match": {"kuma.io/service": "*"}}],
                    "destinations": [{"match": tag(ServiceRole::Apex)}],
                    "conf": {"split": [
                        {"weight": primary, "destination": tag(ServiceRole::Primary)},
                        {"weight": canary, "destination": tag(ServiceRole::Canary)},
                    ]},
                });
                let mut object = inputs.object(&traffic_route(), name, spec);
                object.metadata.namespace = None;
                // An owner reference to a namespaced Canary is invalid on a cluster-scoped object.
                if let Some(owner) = object.metadata.owner_references.take() {
                    let uid = owner.first().map(|o| o.uid.clone()).unwrap_or_default();
                    object.metadata.annotations =
                        Some([(OWNER_ANNOTATION.to_string(), uid)].into());
                }
                object.data["mesh"] = json!(mesh);
                object
            }
            Policy::MeshHttpRoute => {
                let backend = |role, weight| json!({"kind": "MeshService", "name": kuma_service(inputs, role), "weight": weight});
                let spec = json!({
                    "targetRef": {"kind": "Mesh"},
                    "to": [{
                        "targetRef": {"kind": "MeshService", "name": kuma_service(inputs, ServiceRole::Apex)},
                        "rules": [{
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "default": {"backendRefs": [
                                backend(ServiceRole::Primary, primary),
                                backend(ServiceRole::Canary, canary),
                            ]},
                        }],
                    }],
                });
                let mut object = inputs.object(&mesh_http_route(), name, spec);
                object.metadata.labels =
                    Some([(MESH_ANNOTATION.to_string(), mesh.to_string())].into());
                object
            }
        };
        Ok(vec![object])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((self.resource(), inputs.service(ServiceRole::Apex)))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::ResourceExt;

    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "serin.dev/v1beta1".into(),
            kind: "Canary".into(),
            name: "podinfo".into(),
            uid: "uid-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_traffic_route_splits_the_apex_service_in_the_canarys_mesh() {
        let canary = spec("{port: 9898}", "{stepWeight: 10}");
        let inputs = RouteInputs {
            mesh: Some("payments"),
            owner: Some(owner()),
            ..inputs_for(&canary)
        };
        let route = Kuma::TRAFFIC_ROUTE
            .objects(&inputs, Traffic::weights(70, 30))
            .unwrap()
            .remove(0);
        assert_eq!(route.name_any(), "podinfo");
        assert_eq!(route.namespace(), None, "cluster-scoped");
        assert!(route.owner_references().is_empty());
        assert_eq!(route.annotations()[OWNER_ANNOTATION], "uid-1");
        assert_eq!(route.data["mesh"], "payments");
        assert_eq!(
            route.data["spec"],
            json!({
                "sources": [{"match": {"kuma.io/service": "*"}}],
                "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
                "conf": {"split": [
                    {"weight": 70, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
                    {"weight": 30, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
                ]},
            })
        );
        let at_rest = Kuma::TRAFFIC_ROUTE
            .objects(&inputs_for(&canary), Traffic::PRIMARY)
            .unwrap()
            .remove(0);
        assert_eq!(at_rest.data["mesh"], DEFAULT_MESH);
        assert_eq!(at_rest.data["spec"]["conf"]["split"][0]["weight"], 100);
        assert_eq!(at_rest.data["spec"]["conf"]["split"][1]["weight"], 0);
        assert!(cluster_scoped(&traffic_route()) && !cluster_scoped(&mesh_http_route()));
    }

    #[test]
    fn the_mesh_http_route_splits_by_weight_in_the_canarys_namespace() {
        let canary = spec("{port: 9898}", "{stepWeight: 10}");
        let inputs = RouteInputs {
            owner: Some(owner()),
            ..inputs_for(&canary)
        };
        let backends = |traffic| {
            let route = Kuma::MESH_HTTP_ROUTE
                .objects(&inputs, traffic)
                .unwrap()
                .remove(0);
            let rule = &route.data["spec"]["to"][0]["rules"][0];
            let weights: Vec<(String, i64)> = rule["default"]["backendRefs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b["name"].as_str().unwrap().to_string(),
                        b["weight"].as_i64().unwrap(),
                    )
                })
                .collect();
            (route, weights)
        };
        let (route, at_rest) = backends(Traffic::PRIMARY);
        assert_eq!(route.namespace().as_deref(), Some("test"));
        assert_eq!(route.owner_references()[0].uid, "uid-1");
        assert_eq!(route.labels()[MESH_ANNOTATION], DEFAULT_MESH);
        assert_eq!(
            route.data["spec"]["to"][0]["targetRef"],
            json!({"kind": "MeshService", "name": "podinfo_test_svc_9898"})
        );
        let of = |p, c| {
            vec![
                ("podinfo-primary_test_svc_9898".to_string(), p),
                ("podinfo-canary_test_svc_9898".to_string(), c),
            ]
        };
        assert_eq!(at_rest, of(100, 0));
        assert_eq!(backends(Traffic::weights(40, 60)).1, of(40, 60));
        assert_eq!(backends(Traffic::weights(0, 100)).1, of(0, 100));
    }
}
