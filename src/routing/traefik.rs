//! Traefik (a `TraefikService`, `traefik.io/v1alpha1`, or `traefik.containo.us/v1alpha1` for
//! Traefik before 2.10): one TraefikService named after the apex service (Flagger's name, so a
//! service Flagger left is taken over), which the user's IngressRoute names as its service
//! (`kind: TraefikService`). It balances `<svc>-primary` and `<svc>-canary` by weight; for
//! blue/green mirroring it becomes a mirroring service: the primary serves, the canary gets a
//! copy of a percent of the requests. Traefik's weighted services cannot match requests, so
//! A/B testing is not offered.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::api::provider::{TRAEFIK_GROUP, TRAEFIK_LEGACY_GROUP};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, resource, weights};

/// The router writing TraefikServices of one API group.
pub struct Traefik {
    group: &'static str,
}

impl Traefik {
    /// `traefik`, `traefik:traefik.io`: Traefik 2.10 and later.
    pub const CURRENT: Self = Self {
        group: TRAEFIK_GROUP,
    };
    /// `traefik:traefik.containo.us`: Traefik before 2.10.
    pub const LEGACY: Self = Self {
        group: TRAEFIK_LEGACY_GROUP,
    };

    pub fn traefik_service(&self) -> ApiResource {
        resource(self.group, "v1alpha1", "TraefikService", "traefikservices")
    }
}

impl Router for Traefik {
    fn resources(&self) -> Vec<ApiResource> {
        vec![self.traefik_service()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let (primary, canary) = weights(traffic);
        let name = inputs.route_name();
        let mut objects = Vec::new();
        let mut list = Vec::new();
        match traffic.mirror {
            // The mirror phase of blue/green: every request to the primary, a copy of some to
            // the canary, through a mirroring TraefikService of its own. The apex service stays
            // `weighted`: what it held before serin (written by another field manager) would
            // keep a `weighted` beside a `mirroring`, and Traefik reads `weighted` first.
            Some(percent) if canary == 0 => {
                let mut main = service(inputs, ServiceRole::Primary);
                let mut mirror = service(inputs, ServiceRole::Canary);
                mirror["percent"] = json!(percent.clamp(0, 100));
                main["mirrors"] = json!([mirror]);
                let mirroring = mirroring_name(&name);
                objects.push(inputs.object(
                    &self.traefik_service(),
                    mirroring.clone(),
                    json!({ "mirroring": main }),
                ));
                list.push(json!({"name": mirroring, "namespace": inputs.namespace,
                    "kind": "TraefikService", "weight": 100}));
            }
            _ => {
                // Traefik reads a missing weight as 1: a service without traffic is left out.
                let split = [
                    (ServiceRole::Primary, primary),
                    (ServiceRole::Canary, canary),
                ];
                for (role, weight) in split {
                    if weight > 0 {
                        let mut weighted = service(inputs, role);
                        weighted["weight"] = json!(weight);
                        list.push(weighted);
                    }
                }
            }
        }
        let spec = json!({"weighted": {"services": list}});
        objects.push(inputs.object(&self.traefik_service(), name, spec));
        Ok(objects)
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((self.traefik_service(), inputs.route_name()))
    }
}

/// The TraefikService mirroring requests to the canary during blue/green with mirroring.
pub fn mirroring_name(route: &str) -> String {
    format!("{route}-mirror")
}

/// A Kubernetes Service of the Canary's namespace, as a TraefikService names it.
fn service(inputs: &RouteInputs<'_>, role: ServiceRole) -> Value {
    json!({
        "name": inputs.service(role),
        "namespace": inputs.namespace,
        "port": inputs.spec.service.port,
    })
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn objects(router: &Traefik, traffic: Traffic) -> Vec<DynamicObject> {
        let canary = spec("{port: 9898}", "{stepWeight: 10}");
        router.objects(&inputs_for(&canary), traffic).unwrap()
    }

    fn traefik_service(router: &Traefik, traffic: Traffic) -> DynamicObject {
        let mut objects = objects(router, traffic);
        assert_eq!(objects.len(), 1);
        objects.remove(0)
    }

    /// (service, weight) of each weighted service.
    fn weighted(object: &DynamicObject) -> Vec<(String, i64)> {
        object.data["spec"]["weighted"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["namespace"], "test");
                assert_eq!(s["port"], 9898);
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["weight"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_service_balances_by_weight_at_rest_mid_step_and_promoted() {
        let at_rest = traefik_service(&Traefik::CURRENT, Traffic::PRIMARY);
        assert_eq!(at_rest.name_any(), "podinfo");
        let types = at_rest.types.as_ref().unwrap();
        assert_eq!(
            (types.api_version.as_str(), types.kind.as_str()),
            ("traefik.io/v1alpha1", "TraefikService")
        );
        assert_eq!(weighted(&at_rest), [("podinfo-primary".to_string(), 100)]);
        let mid = traefik_service(&Traefik::CURRENT, Traffic::weights(60, 40));
        assert_eq!(
            weighted(&mid),
            [
                ("podinfo-primary".to_string(), 60),
                ("podinfo-canary".to_string(), 40)
            ]
        );
        let promoting = traefik_service(&Traefik::CURRENT, Traffic::weights(0, 100));
        assert_eq!(weighted(&promoting), [("podinfo-canary".to_string(), 100)]);
        assert!(promoting.data["spec"].get("mirroring").is_none());
    }

    #[test]
    fn the_older_group_is_written_when_named() {
        let object = traefik_service(&Traefik::LEGACY, Traffic::PRIMARY);
        assert_eq!(
            object.types.as_ref().unwrap().api_version,
            "traefik.containo.us/v1alpha1"
        );
        let canary = spec("{port: 80}", "{stepWeight: 10}");
        let (resource, name) = Traefik::LEGACY.taken_over(&inputs_for(&canary)).unwrap();
        assert_eq!(
            (resource.group.as_str(), name.as_str()),
            ("traefik.containo.us", "podinfo")
        );
    }

    #[test]
    fn blue_green_mirroring_serves_from_the_primary_and_copies_to_the_canary() {
        let mirrored = Traffic {
            mirror: Some(25),
            ..Traffic::PRIMARY
        };
        let objects = objects(&Traefik::CURRENT, mirrored);
        let names: Vec<String> = objects.iter().map(|o| o.name_any()).collect();
        assert_eq!(
            names,
            ["podinfo-mirror", "podinfo"],
            "the mirror exists before it is named"
        );
        assert_eq!(
            objects[0].data["spec"],
            json!({"mirroring": {"name": "podinfo-primary", "namespace": "test", "port": 9898,
                "mirrors": [{"name": "podinfo-canary", "namespace": "test", "port": 9898, "percent": 25}]}})
        );
        assert_eq!(
            objects[1].data["spec"],
            json!({"weighted": {"services": [{"name": "podinfo-mirror", "namespace": "test",
                "kind": "TraefikService", "weight": 100}]}})
        );
    }
}
