//! SMI TrafficSplit (`split.smi-spec.io`): one TrafficSplit named after the apex service,
//! splitting the requests addressed to it (the root service) between the canary and primary
//! services by weight. Three API versions: `v1alpha1` weighs backends with quantities
//! (`"100"`), `v1alpha2` and `v1alpha3` with integers; every version names a backend by
//! `service`. The `linkerd` provider writes v1alpha1 splits, as Flagger's does, which the
//! linkerd-smi extension serves; `smi:vX` writes the version it names.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, resource, weights};

pub const GROUP: &str = "split.smi-spec.io";

/// The SMI router writing TrafficSplits of one API version.
pub struct Smi {
    version: &'static str,
}

impl Smi {
    pub const V1ALPHA1: Self = Self {
        version: "v1alpha1",
    };
    pub const V1ALPHA2: Self = Self {
        version: "v1alpha2",
    };
    pub const V1ALPHA3: Self = Self {
        version: "v1alpha3",
    };

    pub fn traffic_split(&self) -> ApiResource {
        resource(GROUP, self.version, "TrafficSplit", "trafficsplits")
    }

    /// A backend's weight as this version spells it: a Kubernetes quantity in v1alpha1, an
    /// integer since v1alpha2.
    fn weight(&self, weight: i64) -> Value {
        if self.version == "v1alpha1" {
            json!(weight.to_string())
        } else {
            json!(weight)
        }
    }
}

impl Router for Smi {
    fn resources(&self) -> Vec<ApiResource> {
        vec![self.traffic_split()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        // The provider table refuses A/B matches and mirroring: a TrafficSplit weighs only.
        let (primary, canary) = weights(traffic);
        let spec = inputs.spec;
        // The root service clients address: the first host if any (Flagger's reading), else
        // the apex service.
        let root = spec
            .service
            .hosts
            .first()
            .map_or_else(|| spec.service_name().to_string(), Clone::clone);
        let backend = |role: ServiceRole, weight: i64| json!({"service": inputs.service(role), "weight": self.weight(weight)});
        let split = json!({
            "service": root,
            "backends": [
                backend(ServiceRole::Canary, canary),
                backend(ServiceRole::Primary, primary),
            ],
        });
        Ok(vec![inputs.object(
            &self.traffic_split(),
            inputs.route_name(),
            split,
        )])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((self.traffic_split(), inputs.route_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn split(router: &Smi, service: &str, traffic: Traffic) -> DynamicObject {
        let spec = spec(service, "{stepWeight: 10}");
        let mut objects = router.objects(&inputs_for(&spec), traffic).unwrap();
        assert_eq!(objects.len(), 1);
        objects.remove(0)
    }

    #[test]
    fn each_version_writes_its_own_split_with_its_weight_type() {
        let v1 = split(&Smi::V1ALPHA1, "{port: 80}", Traffic::weights(70, 30));
        assert_eq!(
            v1.types.as_ref().unwrap().api_version,
            "split.smi-spec.io/v1alpha1"
        );
        assert_eq!(v1.metadata.name.as_deref(), Some("podinfo"));
        assert_eq!(
            v1.data["spec"],
            json!({"service": "podinfo", "backends": [
                {"service": "podinfo-canary", "weight": "30"},
                {"service": "podinfo-primary", "weight": "70"}]})
        );
        for (router, version) in [(Smi::V1ALPHA2, "v1alpha2"), (Smi::V1ALPHA3, "v1alpha3")] {
            let object = split(&router, "{port: 80}", Traffic::weights(70, 30));
            assert_eq!(
                object.types.as_ref().unwrap().api_version,
                format!("split.smi-spec.io/{version}")
            );
            assert_eq!(object.data["spec"]["backends"][0]["weight"], 30);
            assert_eq!(object.data["spec"]["backends"][1]["weight"], 70);
        }
    }

    #[test]
    fn the_root_service_is_the_first_host_or_the_apex() {
        let object = split(
            &Smi::V1ALPHA2,
            "{port: 80, name: web, hosts: [web.shop.svc.cluster.local]}",
            Traffic::PRIMARY,
        );
        assert_eq!(object.data["spec"]["service"], "web.shop.svc.cluster.local");
        assert_eq!(object.metadata.name.as_deref(), Some("web"));
        assert_eq!(object.data["spec"]["backends"][1]["service"], "web-primary");
        assert_eq!(object.data["spec"]["backends"][1]["weight"], 100);
        let spec = spec("{port: 80}", "{stepWeight: 10}");
        let (resource, name) = Smi::V1ALPHA3.taken_over(&inputs_for(&spec)).unwrap();
        assert_eq!(
            (resource.version.as_str(), name.as_str()),
            ("v1alpha3", "podinfo")
        );
    }
}
