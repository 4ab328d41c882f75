//! Gloo Edge (`gateway.solo.io/v1` RouteTable, `gloo.solo.io/v1` Upstreams): two Upstreams,
//! `<namespace>-<svc>-primaryupstream-<port>` and `<namespace>-<svc>-canaryupstream-<port>`,
//! for the primary and canary Services, and a RouteTable named after the apex service, which
//! the user's VirtualService delegates to; all three named as Flagger names them, so a
//! RouteTable Flagger left is taken over. The RouteTable's last route splits requests between
//! the Upstreams by weight, inheriting the delegating path; A/B testing puts one route per
//! `analysis.match` in front, sending matching requests (headers, exact methods) to the canary.
//! With `spec.upstreamRef`, both Upstreams carry that Upstream's connection settings (TLS,
//! circuit breakers, load balancing, HTTP/2), as in Flagger.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Map, Value, json};

use crate::api::canary::{HttpMatch, StringMatch};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, SourceRef, regex_escape, resource, weights};

/// The Canary field naming the Upstream whose settings the Upstreams copy.
const FIELD: &str = "spec.upstreamRef";

/// The settings of the `upstreamRef` Upstream carried over (Flagger's list): how Gloo
/// connects, never what it connects to.
const SETTINGS: [&str; 8] = [
    "sslConfig",
    "circuitBreakers",
    "connectionConfig",
    "loadBalancerConfig",
    "useHttp2",
    "initialStreamWindowSize",
    "initialConnectionWindowSize",
    "httpProxyHostName",
];

pub struct Gloo;

pub fn route_table() -> ApiResource {
    resource("gateway.solo.io", "v1", "RouteTable", "routetables")
}

pub fn upstream() -> ApiResource {
    resource("gloo.solo.io", "v1", "Upstream", "upstreams")
}

/// The Upstream of `role` (primary or canary), as Flagger names it.
pub fn upstream_name(inputs: &RouteInputs<'_>, role: ServiceRole) -> String {
    let which = match role {
        ServiceRole::Canary => "canary",
        _ => "primary",
    };
    format!(
        "{}-{}-{which}upstream-{}",
        inputs.namespace,
        inputs.service(ServiceRole::Apex),
        inputs.spec.service.port
    )
}

impl Router for Gloo {
    fn resources(&self) -> Vec<ApiResource> {
        vec![upstream(), route_table()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let settings = match (&inputs.spec.upstream_ref, inputs.source) {
            (None, _) => Map::new(),
            (Some(reference), None) => {
                return Err(RouteError::SourceNotRead(format!(
                    "Upstream {}/{} ({FIELD})",
                    reference.namespace.as_deref().unwrap_or(inputs.namespace),
                    reference.name
                )));
            }
            (Some(_), Some(source)) => settings(source),
        };
        // The Upstreams first: the RouteTable names them.
        let mut objects: Vec<DynamicObject> = [ServiceRole::Primary, ServiceRole::Canary]
            .into_iter()
            .map(|role| {
                let mut spec = Value::Object(settings.clone());
                spec["kube"] = json!({
                    "serviceName": inputs.service(role),
                    "serviceNamespace": inputs.namespace,
                    "servicePort": inputs.spec.service.port,
                });
                inputs.object(&upstream(), upstream_name(inputs, role), spec)
            })
            .collect();
        objects.push(inputs.object(
            &route_table(),
            inputs.service(ServiceRole::Apex),
            json!({ "routes": routes(inputs, traffic) }),
        ));
        Ok(objects)
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((route_table(), inputs.service(ServiceRole::Apex)))
    }

    fn source(&self, inputs: &RouteInputs<'_>) -> Option<SourceRef> {
        let reference = inputs.spec.upstream_ref.as_ref()?;
        Some(SourceRef {
            resource: upstream(),
            name: reference.name.clone(),
            namespace: reference.namespace.clone(),
            field: FIELD,
        })
    }
}

/// The connection settings of the `upstreamRef` Upstream.
fn settings(source: &DynamicObject) -> Map<String, Value> {
    let spec = source.data.get("spec").and_then(Value::as_object);
    SETTINGS
        .iter()
        .filter_map(|key| Some((key.to_string(), spec?.get(*key)?.clone())))
        .collect()
}

/// The A/B routes (while matched requests go to the canary), then the weighted split, each
/// restricted by `service.match`.
fn routes(inputs: &RouteInputs<'_>, traffic: Traffic) -> Vec<Value> {
    let (primary, canary) = weights(traffic);
    let served = &inputs.spec.service.matches;
    let mut routes = Vec::new();
    if traffic.matched_to_canary {
        for m in &inputs.spec.analysis.matches {
            // Gloo ORs a route's matchers: one per service match, each ANDed with this one.
            let matchers: Vec<Value> = if served.is_empty() {
                vec![matcher(&[m])]
            } else {
                served.iter().map(|s| matcher(&[s, m])).collect()
            };
            routes.push(route(inputs, matchers, 0, 100));
        }
    }
    let matchers = served.iter().map(|s| matcher(&[s])).collect();
    routes.push(route(inputs, matchers, primary, canary));
    routes
}

/// A route to the primary and canary Upstreams with their weights. It inherits the path of the
/// VirtualService route delegating to the table; a weight of 0 sends nothing.
fn route(inputs: &RouteInputs<'_>, matchers: Vec<Value>, primary: i64, canary: i64) -> Value {
    let destination = |role, weight| {
        json!({"destination": {"upstream": {"name": upstream_name(inputs, role), "namespace": inputs.namespace}},
            "weight": weight})
    };
    let mut route = json!({
        "inheritablePathMatchers": true,
        "routeAction": {"multi": {"destinations": [
            destination(ServiceRole::Primary, primary),
            destination(ServiceRole::Canary, canary),
        ]}},
    });
    if !matchers.is_empty() {
        route["matchers"] = Value::Array(matchers);
    }
    route
}

/// One Gloo matcher ANDing the headers and methods of `matches` (the provider table admits
/// only those, methods exactly).
fn matcher(matches: &[&HttpMatch]) -> Value {
    let mut headers = Vec::new();
    let mut methods = Vec::new();
    for m in matches {
        for (name, value) in &m.headers {
            let mut header = header_value(value);
            header["name"] = json!(name);
            headers.push(header);
        }
        if let Some(exact) = m.method.as_ref().and_then(|m| m.exact.as_ref()) {
            methods.push(json!(exact));
        }
    }
    let mut matcher = json!({});
    if !headers.is_empty() {
        matcher["headers"] = Value::Array(headers);
    }
    if !methods.is_empty() {
        matcher["methods"] = Value::Array(methods);
    }
    matcher
}

/// A header's value: exactly, or as a regex of the whole value (prefix and suffix too).
fn header_value(value: &StringMatch) -> Value {
    match value {
        StringMatch {
            exact: Some(exact), ..
        } => json!({ "value": exact }),
        StringMatch {
            regex: Some(regex), ..
        } => json!({"value": regex, "regex": true}),
        StringMatch {
            prefix: Some(prefix),
            ..
        } => json!({"value": format!("{}.*", regex_escape(prefix)), "regex": true}),
        StringMatch {
            suffix: Some(suffix),
            ..
        } => json!({"value": format!(".*{}", regex_escape(suffix)), "regex": true}),
        // Present with any value.
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn objects(inputs: &RouteInputs<'_>, traffic: Traffic) -> Vec<DynamicObject> {
        Gloo.objects(inputs, traffic).unwrap()
    }

    /// (upstream, weight) of a route's destinations.
    fn split(route: &Value) -> Vec<(String, i64)> {
        route["routeAction"]["multi"]["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["destination"]["upstream"]["namespace"], "test");
                (
                    d["destination"]["upstream"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    d["weight"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    fn of(primary: i64, canary: i64) -> Vec<(String, i64)> {
        vec![
            ("test-podinfo-primaryupstream-9898".to_string(), primary),
            ("test-podinfo-canaryupstream-9898".to_string(), canary),
        ]
    }

    #[test]
    fn two_upstreams_and_a_route_table_split_by_weight() {
        let canary = spec("{port: 9898}", "{stepWeight: 10}");
        let inputs = inputs_for(&canary);
        let all = objects(&inputs, Traffic::PRIMARY);
        let names: Vec<String> = all.iter().map(|o| o.name_any()).collect();
        assert_eq!(
            names,
            [
                "test-podinfo-primaryupstream-9898",
                "test-podinfo-canaryupstream-9898",
                "podinfo"
            ]
        );
        assert_eq!(
            all[1].data["spec"],
            json!({"kube": {"serviceName": "podinfo-canary", "serviceNamespace": "test", "servicePort": 9898}})
        );
        assert_eq!(
            all[2].types.as_ref().unwrap().api_version,
            "gateway.solo.io/v1"
        );
        let routes = all[2].data["spec"]["routes"].as_array().unwrap().clone();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0]["inheritablePathMatchers"], true);
        assert!(routes[0].get("matchers").is_none());
        assert_eq!(split(&routes[0]), of(100, 0));
        let mid = objects(&inputs, Traffic::weights(60, 40));
        assert_eq!(split(&mid[2].data["spec"]["routes"][0]), of(60, 40));
        let promoting = objects(&inputs, Traffic::weights(0, 100));
        assert_eq!(split(&promoting[2].data["spec"]["routes"][0]), of(0, 100));
    }

    #[test]
    fn ab_testing_puts_a_route_per_match_in_front_restricted_by_the_service_match() {
        let canary = spec(
            "{port: 9898, match: [{headers: {x-tenant: {exact: shop}}}]}",
            "{iterations: 5, match: [{headers: {x-canary: {prefix: 'in.'}}}, {method: {exact: POST}, headers: {user-agent: {regex: '.*Firefox.*'}}}]}",
        );
        let matched = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let table = objects(&inputs_for(&canary), matched).remove(2);
        let routes = table.data["spec"]["routes"].as_array().unwrap().clone();
        assert_eq!(routes.len(), 3, "{routes:#?}");
        assert_eq!(
            routes[0]["matchers"],
            json!([{"headers": [{"name": "x-tenant", "value": "shop"},
                {"name": "x-canary", "value": "in\\..*", "regex": true}]}])
        );
        assert_eq!(
            routes[1]["matchers"],
            json!([{"headers": [{"name": "x-tenant", "value": "shop"},
                {"name": "user-agent", "value": ".*Firefox.*", "regex": true}], "methods": ["POST"]}])
        );
        assert_eq!(split(&routes[0]), of(0, 100));
        assert_eq!(
            routes[2]["matchers"],
            json!([{"headers": [{"name": "x-tenant", "value": "shop"}]}])
        );
        assert_eq!(split(&routes[2]), of(100, 0));
        let after = objects(&inputs_for(&canary), Traffic::PRIMARY).remove(2);
        assert_eq!(after.data["spec"]["routes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_upstream_ref_lends_its_connection_settings_and_must_be_read() {
        let mut canary = spec("{port: 9898}", "{stepWeight: 10}");
        canary.upstream_ref =
            serde_yaml_ng::from_str("{name: config, namespace: gloo-system}").unwrap();
        let error = Gloo
            .objects(&inputs_for(&canary), Traffic::PRIMARY)
            .unwrap_err();
        assert_eq!(
            error,
            RouteError::SourceNotRead("Upstream gloo-system/config (spec.upstreamRef)".into())
        );
        let source: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
            "metadata": {"name": "config", "namespace": "gloo-system"},
            "spec": {"kube": {"serviceName": "elsewhere", "servicePort": 80},
                "loadBalancerConfig": {"roundRobin": {}}, "useHttp2": true,
                "discoveryMetadata": {"labels": {"a": "b"}}},
        }))
        .unwrap();
        let inputs = RouteInputs {
            source: Some(&source),
            ..inputs_for(&canary)
        };
        let source_ref = Gloo.source(&inputs).unwrap();
        assert_eq!(source_ref.namespace.as_deref(), Some("gloo-system"));
        let primary = objects(&inputs, Traffic::PRIMARY).remove(0);
        assert_eq!(
            primary.data["spec"],
            json!({"loadBalancerConfig": {"roundRobin": {}}, "useHttp2": true,
                "kube": {"serviceName": "podinfo-primary", "serviceNamespace": "test", "servicePort": 9898}})
        );
    }
}
