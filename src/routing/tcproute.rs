//! Gateway API TCPRoute (`gateway.networking.k8s.io/v1alpha2`, the experimental channel) for
//! services with `appProtocol: tcp`: connections through the parents' listeners split by
//! weight between the primary and canary services. A TCPRoute has no matches, filters or
//! hostnames: the provider table refuses them for TCP (`api::gateway`).

use kube::api::ApiResource;
use serde_json::{Value, json};

use crate::api::gateway::GROUP;
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::gatewayapi::{backend, parent_refs};
use super::{RouteInputs, resource, weights};

pub fn tcp_route() -> ApiResource {
    resource(GROUP, "v1alpha2", "TCPRoute", "tcproutes")
}

/// The TCPRoute's spec for `traffic`.
pub fn spec(inputs: &RouteInputs<'_>, traffic: Traffic) -> Value {
    let (primary, canary) = weights(traffic);
    json!({
        "parentRefs": parent_refs(inputs),
        "rules": [{"backendRefs": [
            backend(inputs, ServiceRole::Primary, primary),
            backend(inputs, ServiceRole::Canary, canary),
        ]}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec as canary_spec};

    #[test]
    fn connections_are_split_by_weight() {
        let canary = canary_spec(
            "{port: 5432, appProtocol: tcp, gatewayRefs: [{name: db, sectionName: postgres}]}",
            "{stepWeight: 10}",
        );
        let route = spec(&inputs_for(&canary), Traffic::weights(60, 40));
        assert_eq!(route["parentRefs"][0]["sectionName"], "postgres");
        assert_eq!(
            route["rules"],
            json!([{"backendRefs": [
                {"group": "", "kind": "Service", "name": "podinfo-primary", "port": 5432, "weight": 60},
                {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 5432, "weight": 40}]}])
        );
    }
}
