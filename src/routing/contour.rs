//! Contour (`projectcontour.io/v1` HTTPProxy): one HTTPProxy named after the apex service
//! (Flagger's name, so a proxy Flagger left is taken over), without a virtualhost: the user's
//! root HTTPProxy includes it. Its routes send requests to `<svc>-primary` and `<svc>-canary`
//! by weight; A/B testing puts one route per `analysis.match` in front, whose conditions send
//! matching requests to the canary; blue/green mirroring adds the canary as a mirror service.
//! `service.timeout` and `service.retries` become each route's timeout and retry policies.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::api::canary::{HttpMatch, StringMatch};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, regex_escape, resource, weights};

pub struct Contour;

pub fn http_proxy() -> ApiResource {
    resource("projectcontour.io", "v1", "HTTPProxy", "httpproxies")
}

impl Router for Contour {
    fn resources(&self) -> Vec<ApiResource> {
        vec![http_proxy()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let (primary, canary) = weights(traffic);
        // `service.match` restricts every route; none: everything under `/`.
        let base: Vec<Vec<Value>> = if inputs.spec.service.matches.is_empty() {
            vec![with_path(Vec::new())]
        } else {
            let served = inputs.spec.service.matches.iter();
            served.map(|m| with_path(conditions(m))).collect()
        };
        let mut routes = Vec::new();
        if traffic.matched_to_canary {
            // Contour ANDs the conditions of a route and tries routes in turn: one route per
            // (service match, analysis match) pair is Flagger's OR of ANDs.
            for served in &base {
                for m in &inputs.spec.analysis.matches {
                    let mut both = served.clone();
                    if m.uri.is_some() {
                        // Its path instead of `/` (the provider table refuses a uri in both).
                        both.retain(|c| !is_path(c));
                    }
                    both.extend(conditions(m));
                    routes.push(route(inputs, both, services(inputs, 0, 100, None)));
                }
            }
        }
        for served in base {
            let split = services(inputs, primary, canary, traffic.mirror);
            routes.push(route(inputs, served, split));
        }
        let mut spec = json!({"routes": routes});
        if let Some(class) = inputs.ingress_class {
            spec["ingressClassName"] = json!(class);
        }
        Ok(vec![inputs.object(
            &http_proxy(),
            inputs.route_name(),
            spec,
        )])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((http_proxy(), inputs.route_name()))
    }
}

/// A route with `conditions` to `services`, with the timeout and retry policies of `service`.
fn route(inputs: &RouteInputs<'_>, conditions: Vec<Value>, services: Vec<Value>) -> Value {
    let service = &inputs.spec.service;
    let mut route = json!({"conditions": conditions, "services": services});
    if let Some(timeout) = &service.timeout {
        route["timeoutPolicy"] = json!({"response": timeout.to_string()});
    }
    if let Some(retries) = &service.retries {
        let mut policy = json!({"count": retries.attempts.unwrap_or(1)});
        if let Some(per_try) = &retries.per_try_timeout {
            policy["perTryTimeout"] = json!(per_try.to_string());
        }
        if let Some(on) = &retries.retry_on {
            let on: Vec<&str> = on
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            policy["retryOn"] = json!(on);
        }
        route["retryPolicy"] = policy;
    }
    route
}

/// The primary and canary services with their weights, and the canary as a mirror receiving
/// `mirror` percent of the requests. A canary without weight is left out while it is mirrored:
/// it appears once, as the mirror.
fn services(
    inputs: &RouteInputs<'_>,
    primary: i64,
    canary: i64,
    mirror: Option<i32>,
) -> Vec<Value> {
    let port = inputs.spec.service.port;
    let service = |role: ServiceRole| {
        let name = inputs.service(role);
        // Flagger's header for Contour inside a Linkerd mesh: Linkerd then routes to the
        // service Contour chose, not to the apex.
        let dst = format!("{name}.{}.svc.cluster.local:{port}", inputs.namespace);
        json!({"name": name, "port": port,
            "requestHeadersPolicy": {"set": [{"name": "l5d-dst-override", "value": dst}]}})
    };
    let mut list = vec![service(ServiceRole::Primary)];
    list[0]["weight"] = json!(primary);
    if mirror.is_none() || canary > 0 {
        let mut weighted = service(ServiceRole::Canary);
        weighted["weight"] = json!(canary);
        list.push(weighted);
    }
    if let Some(percent) = mirror {
        let mut mirrored = service(ServiceRole::Canary);
        mirrored["mirror"] = json!(true);
        // Contour reads a mirror's weight as the percent mirrored; 0 or none mirror everything.
        mirrored["weight"] = json!(percent.clamp(1, 100));
        list.push(mirrored);
    }
    list
}

/// One Flagger match as Contour's conditions: its path, headers and query parameters.
fn conditions(m: &HttpMatch) -> Vec<Value> {
    let mut list = Vec::new();
    if let Some(uri) = &m.uri {
        list.push(path(uri));
    }
    for (name, value) in &m.headers {
        let mut header = header_value(value);
        header["name"] = json!(name);
        list.push(json!({ "header": header }));
    }
    for (name, value) in &m.query_params {
        let mut param = serde_json::to_value(value).unwrap_or_else(|_| json!({}));
        if param.as_object().is_none_or(|o| o.is_empty()) {
            param = json!({"present": true});
        }
        param["name"] = json!(name);
        list.push(json!({ "queryParameter": param }));
    }
    list
}

/// `conditions` with the path `/` in front when they name no path of their own.
fn with_path(mut conditions: Vec<Value>) -> Vec<Value> {
    if !conditions.iter().any(is_path) {
        conditions.insert(0, json!({"prefix": "/"}));
    }
    conditions
}

fn is_path(condition: &Value) -> bool {
    ["prefix", "exact", "regex"]
        .iter()
        .any(|k| condition.get(k).is_some())
}

/// A path condition: Contour matches paths by prefix, exactly or by a regex of the whole path.
fn path(uri: &StringMatch) -> Value {
    match uri {
        StringMatch {
            exact: Some(exact), ..
        } => json!({ "exact": exact }),
        StringMatch {
            prefix: Some(prefix),
            ..
        } => json!({ "prefix": prefix }),
        StringMatch {
            regex: Some(regex), ..
        } => json!({ "regex": regex }),
        StringMatch {
            suffix: Some(suffix),
            ..
        } => json!({"regex": format!(".*{}", regex_escape(suffix))}),
        _ => json!({"prefix": "/"}),
    }
}

/// A header value: Contour's header conditions have no prefix or suffix, which become regexes
/// (Envoy matches a header regex against the whole value).
fn header_value(value: &StringMatch) -> Value {
    match value {
        StringMatch {
            exact: Some(exact), ..
        } => json!({ "exact": exact }),
        StringMatch {
            regex: Some(regex), ..
        } => json!({ "regex": regex }),
        StringMatch {
            prefix: Some(prefix),
            ..
        } => json!({"regex": format!("{}.*", regex_escape(prefix))}),
        StringMatch {
            suffix: Some(suffix),
            ..
        } => json!({"regex": format!(".*{}", regex_escape(suffix))}),
        _ => json!({ "present": true }),
    }
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn proxy(inputs: &RouteInputs<'_>, traffic: Traffic) -> DynamicObject {
        let mut objects = Contour.objects(inputs, traffic).unwrap();
        assert_eq!(objects.len(), 1);
        objects.remove(0)
    }

    fn routes(object: &DynamicObject) -> Vec<Value> {
        object.data["spec"]["routes"].as_array().unwrap().clone()
    }

    /// (service, weight, mirror) of each service of a route.
    fn split(route: &Value) -> Vec<(String, i64, bool)> {
        route["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["weight"].as_i64().unwrap(),
                    s["mirror"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    fn of(list: &[(&str, i64, bool)]) -> Vec<(String, i64, bool)> {
        list.iter()
            .map(|(n, w, m)| (n.to_string(), *w, *m))
            .collect()
    }

    #[test]
    fn the_proxy_splits_by_weight_at_rest_mid_step_and_promoted() {
        let canary = spec(
            "{port: 9898, timeout: 15s, retries: {attempts: 3, perTryTimeout: 5s, retryOn: '5xx, gateway-error'}}",
            "{stepWeight: 10}",
        );
        let inputs = RouteInputs {
            ingress_class: Some("contour-external"),
            ..inputs_for(&canary)
        };
        let object = proxy(&inputs, Traffic::PRIMARY);
        assert_eq!(object.name_any(), "podinfo");
        let types = object.types.as_ref().unwrap();
        assert_eq!(
            (types.api_version.as_str(), types.kind.as_str()),
            ("projectcontour.io/v1", "HTTPProxy")
        );
        let proxy_spec = &object.data["spec"];
        assert_eq!(proxy_spec["ingressClassName"], "contour-external");
        assert!(
            proxy_spec.get("virtualhost").is_none(),
            "included by the user's root proxy"
        );
        let at_rest = routes(&object);
        assert_eq!(at_rest.len(), 1);
        let route = &at_rest[0];
        assert_eq!(route["conditions"], json!([{"prefix": "/"}]));
        assert_eq!(
            split(route),
            of(&[
                ("podinfo-primary", 100, false),
                ("podinfo-canary", 0, false)
            ])
        );
        assert_eq!(route["services"][0]["port"], 9898);
        assert_eq!(
            route["services"][1]["requestHeadersPolicy"]["set"][0],
            json!({"name": "l5d-dst-override", "value": "podinfo-canary.test.svc.cluster.local:9898"})
        );
        assert_eq!(route["timeoutPolicy"], json!({"response": "15s"}));
        assert_eq!(
            route["retryPolicy"],
            json!({"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx", "gateway-error"]})
        );

        let mid = proxy(&inputs, Traffic::weights(70, 30));
        assert_eq!(
            split(&routes(&mid)[0]),
            of(&[
                ("podinfo-primary", 70, false),
                ("podinfo-canary", 30, false)
            ])
        );
        let plain = spec("{port: 9898}", "{stepWeight: 10}");
        let promoting = proxy(&inputs_for(&plain), Traffic::weights(0, 100));
        let route = &routes(&promoting)[0];
        assert!(promoting.data["spec"].get("ingressClassName").is_none());
        assert!(route.get("timeoutPolicy").is_none() && route.get("retryPolicy").is_none());
        assert_eq!(
            split(route),
            of(&[
                ("podinfo-primary", 0, false),
                ("podinfo-canary", 100, false)
            ])
        );
    }

    #[test]
    fn ab_testing_puts_a_route_per_match_in_front_while_the_analysis_runs() {
        let canary = spec(
            "{port: 80, match: [{uri: {prefix: /api}}]}",
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}, user-agent: {prefix: 'Mozilla/5.0 ('}}}, {queryParams: {beta: {suffix: 'on'}}}]}",
        );
        let matched = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let all = routes(&proxy(&inputs_for(&canary), matched));
        assert_eq!(all.len(), 3, "{all:#?}");
        // Each analysis match ANDs its conditions with the served path, in a route of its own.
        assert_eq!(
            all[0]["conditions"],
            json!([
                {"prefix": "/api"},
                {"header": {"name": "user-agent", "regex": "Mozilla/5\\.0 \\(.*"}},
                {"header": {"name": "x-canary", "exact": "insider"}},
            ])
        );
        assert_eq!(
            all[1]["conditions"],
            json!([{"prefix": "/api"}, {"queryParameter": {"name": "beta", "suffix": "on"}}])
        );
        for ab in &all[..2] {
            assert_eq!(
                split(ab),
                of(&[
                    ("podinfo-primary", 0, false),
                    ("podinfo-canary", 100, false)
                ])
            );
        }
        assert_eq!(all[2]["conditions"], json!([{"prefix": "/api"}]));
        assert_eq!(
            split(&all[2]),
            of(&[
                ("podinfo-primary", 100, false),
                ("podinfo-canary", 0, false)
            ])
        );
        // The analysis over, matching requests go to the primary like any other.
        let after = routes(&proxy(&inputs_for(&canary), Traffic::PRIMARY));
        assert_eq!(after.len(), 1);
        assert_eq!(after[0]["conditions"], json!([{"prefix": "/api"}]));
    }

    #[test]
    fn an_analysis_path_replaces_the_root_path_of_its_route() {
        let canary = spec(
            "{port: 80}",
            "{iterations: 5, match: [{uri: {regex: '/v[0-9]+/.*'}, headers: {x-canary: {regex: '^in.*'}}}]}",
        );
        let matched = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let all = routes(&proxy(&inputs_for(&canary), matched));
        assert_eq!(
            all[0]["conditions"],
            json!([{"regex": "/v[0-9]+/.*"}, {"header": {"name": "x-canary", "regex": "^in.*"}}])
        );
        assert_eq!(all[1]["conditions"], json!([{"prefix": "/"}]));
    }

    #[test]
    fn blue_green_mirroring_copies_requests_to_the_canary_as_a_mirror() {
        let canary = spec(
            "{port: 80}",
            "{iterations: 5, mirror: true, mirrorWeight: 40}",
        );
        let mirrored = Traffic {
            mirror: Some(40),
            ..Traffic::PRIMARY
        };
        let route = &routes(&proxy(&inputs_for(&canary), mirrored))[0];
        assert_eq!(
            split(route),
            of(&[
                ("podinfo-primary", 100, false),
                ("podinfo-canary", 40, true)
            ]),
            "the canary appears once, as the mirror"
        );
        let everything = Traffic {
            mirror: Some(100),
            ..Traffic::PRIMARY
        };
        let route = &routes(&proxy(&inputs_for(&canary), everything))[0];
        assert_eq!(route["services"][1]["weight"], 100);
        assert_eq!(
            Contour
                .taken_over(&inputs_for(&canary))
                .map(|(r, name)| (r.kind, name)),
            Some(("HTTPProxy".to_string(), "podinfo".to_string()))
        );
    }
}
