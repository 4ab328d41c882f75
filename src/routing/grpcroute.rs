//! Gateway API GRPCRoute (`gateway.networking.k8s.io/v1`, Gateway API 1.1+) for services with
//! `appProtocol: grpc`: the gatewayapi provider's route for gRPC, with the same parents,
//! weighted backends, A/B rule (header matches) and mirrors as its HTTPRoute. A GRPCRoute has
//! no timeouts, rewrite or CORS filter: the provider table refuses them for gRPC
//! (`api::gateway`).

use kube::api::ApiResource;
use serde_json::{Value, json};

use crate::api::gateway::GROUP;
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::gatewayapi::{
    all_to, backend, header_filters, http_match, mirror_filter, parent_refs, service_mirrors,
};
use super::{RouteInputs, resource, weights};

pub fn grpc_route() -> ApiResource {
    resource(GROUP, "v1", "GRPCRoute", "grpcroutes")
}

/// The GRPCRoute's spec for `traffic`.
pub fn spec(inputs: &RouteInputs<'_>, traffic: Traffic) -> Value {
    let (primary, canary) = weights(traffic);
    let filters = || {
        let mut filters = header_filters(inputs);
        filters.extend(service_mirrors(inputs));
        filters
    };
    let rule = |matches: Option<Vec<Value>>, filters: Vec<Value>, backends: Vec<Value>| {
        let mut rule = json!({"backendRefs": backends});
        // No matches: every gRPC request of the parents (and hostnames).
        if let Some(matches) = matches {
            rule["matches"] = json!(matches);
        }
        if !filters.is_empty() {
            rule["filters"] = json!(filters);
        }
        rule
    };
    let service = &inputs.spec.service;
    // `admit` leaves header conditions only, which GRPCRoute matches as HTTPRoute does.
    let served = (!service.matches.is_empty())
        .then(|| service.matches.iter().map(http_match).collect::<Vec<_>>());
    let mut rules = Vec::new();
    if traffic.matched_to_canary {
        let matches = inputs
            .spec
            .analysis
            .matches
            .iter()
            .flat_map(|m| {
                let condition = http_match(m);
                match &served {
                    None => vec![condition],
                    Some(served) => served.iter().map(|s| and_headers(s, &condition)).collect(),
                }
            })
            .collect();
        rules.push(rule(
            Some(matches),
            filters(),
            all_to(inputs, ServiceRole::Canary),
        ));
    }
    let mut weighted_filters = filters();
    if let Some(percent) = traffic.mirror {
        weighted_filters.push(mirror_filter(inputs, percent));
    }
    rules.push(rule(
        served,
        weighted_filters,
        vec![
            backend(inputs, ServiceRole::Primary, primary),
            backend(inputs, ServiceRole::Canary, canary),
        ],
    ));
    let mut spec = json!({"parentRefs": parent_refs(inputs), "rules": rules});
    if !service.hosts.is_empty() {
        spec["hostnames"] = json!(service.hosts);
    }
    spec
}

/// The header conditions of `a` and `b` together (a gRPC match of headers only).
fn and_headers(a: &Value, b: &Value) -> Value {
    let headers: Vec<Value> = [a, b]
        .iter()
        .filter_map(|m| m.get("headers").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    json!({"headers": headers})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec as canary_spec};

    #[test]
    fn weights_headers_and_mirrors_as_a_grpc_route() {
        let canary = canary_spec(
            "{port: 9000, appProtocol: grpc, gatewayRefs: [{name: public}], hosts: [grpc.example.com], headers: {request: {set: {x-via: serin}}}}",
            "{stepWeight: 10}",
        );
        let route = spec(&inputs_for(&canary), Traffic::weights(80, 20));
        let rules = route["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].get("matches").is_none(), "every gRPC request");
        assert_eq!(rules[0]["backendRefs"][0]["weight"], 80);
        assert_eq!(rules[0]["backendRefs"][1]["name"], "podinfo-canary");
        assert_eq!(rules[0]["backendRefs"][1]["port"], 9000);
        assert_eq!(rules[0]["filters"][0]["type"], "RequestHeaderModifier");
        assert_eq!(route["hostnames"][0], "grpc.example.com");
        assert_eq!(route["parentRefs"][0]["name"], "public");
    }

    #[test]
    fn ab_testing_puts_a_header_rule_in_front_anded_with_the_served_headers() {
        let canary = canary_spec(
            "{port: 9000, appProtocol: grpc, gatewayRefs: [{name: public}], match: [{headers: {x-tenant: {exact: a}}}]}",
            "{iterations: 3, match: [{headers: {x-canary: {exact: insider}}}]}",
        );
        let traffic = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let route = spec(&inputs_for(&canary), traffic);
        let rules = route["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        let headers = &rules[0]["matches"][0]["headers"];
        assert_eq!(headers[0]["name"], "x-tenant");
        assert_eq!(headers[1]["name"], "x-canary");
        assert_eq!(rules[0]["backendRefs"][1]["weight"], 100);
        assert_eq!(rules[1]["matches"][0]["headers"][0]["name"], "x-tenant");
        assert_eq!(rules[1]["backendRefs"][0]["weight"], 100);
    }
}
