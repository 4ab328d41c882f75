//! Plain Kubernetes: no proxy to split traffic, so the apex Service's selector is the route.
//! It selects the primary pods, and the canary pods only while all traffic goes to the canary
//! (the switch A/B and blue/green make while the primary is being promoted).

use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject};

use crate::engine::Traffic;
use crate::workload::primary::primary_selector;
use crate::workload::services::{ServiceRole, desired_service};

use super::{RouteError, RouteInputs, Router};

pub struct Kubernetes;

impl Router for Kubernetes {
    fn resources(&self) -> Vec<ApiResource> {
        vec![ApiResource::erase::<Service>(&())]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        if traffic.matched_to_canary || !(traffic.canary == 0 || traffic.canary == 100) {
            return Err(RouteError::CannotSplit);
        }
        let selector = if traffic.canary == 100 {
            inputs.target_selector.clone()
        } else if let Some(live) = inputs.primary_selector {
            live.clone()
        } else {
            let target = &inputs.spec.target_ref.name;
            primary_selector(target, inputs.target_selector)
                .map_err(|e| RouteError::Selector(e.to_string()))?
        };
        // The whole apex Service, as initialization writes it, with the selector switched:
        // one field manager applying a partial Service would drop the fields it left out.
        let mut service = desired_service(
            inputs.spec,
            ServiceRole::Apex,
            &inputs.spec.target_ref.name,
            inputs.target_selector,
            inputs.primary_selector,
            inputs.namespace,
            inputs.owner.clone(),
        )
        .map_err(|e| RouteError::Selector(e.to_string()))?;
        if let Some(spec) = service.spec.as_mut() {
            spec.selector = selector.match_labels;
        }
        let value = serde_json::to_value(&service).unwrap_or_default();
        let object: DynamicObject =
            serde_json::from_value(value).map_err(|e| RouteError::Selector(e.to_string()))?;
        Ok(vec![object])
    }

    fn taken_over(&self, _inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    #[test]
    fn the_apex_selects_the_primary_and_switches_whole() {
        let spec = spec("{port: 80}", "{iterations: 3}");
        let inputs = inputs_for(&spec);
        let primary = Kubernetes.objects(&inputs, Traffic::PRIMARY).unwrap();
        assert_eq!(
            primary[0].data["spec"]["selector"]["app"],
            "podinfo-primary"
        );
        let canary = Kubernetes
            .objects(&inputs, Traffic::weights(0, 100))
            .unwrap();
        assert_eq!(canary[0].data["spec"]["selector"]["app"], "podinfo");
        assert_eq!(
            Kubernetes.objects(&inputs, Traffic::weights(50, 50)),
            Err(RouteError::CannotSplit)
        );
    }
}
