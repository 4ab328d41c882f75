//! Gateway API (`gateway.networking.k8s.io/v1`, or `v1beta1` for `gatewayapi:v1beta1`): one
//! HTTPRoute named after the apex service, attached to `service.gatewayRefs` (Gateways, or a
//! Service for GAMMA mesh routing), with weighted backendRefs to the primary and canary
//! services; A/B testing puts a rule matching `analysis.match` (ANDed with each
//! `service.match`) in front that sends matching requests to the canary; blue/green mirroring
//! adds a RequestMirror filter. `service` headers, rewrite, CORS policy, mirrors and timeouts
//! go onto every rule, which all serve the same requests.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::api::canary::{HttpMatch, StringMatch};
use crate::api::gateway::{self, FULL_PATH, Parent, Protocol};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::grpcroute::{self, grpc_route};
use super::tcproute::{self, tcp_route};
use super::{RouteError, RouteInputs, Router, affinity, regex_escape, resource, weights};

/// The Gateway API router writing routes of one API version.
pub struct GatewayApi {
    version: &'static str,
}

impl GatewayApi {
    /// `gatewayapi` and `gatewayapi:v1`.
    pub const V1: Self = Self { version: "v1" };
    /// `gatewayapi:v1beta1`, for clusters (or implementations) serving v1beta1 routes only.
    pub const V1BETA1: Self = Self { version: "v1beta1" };

    pub fn http_route(&self) -> ApiResource {
        resource(gateway::GROUP, self.version, "HTTPRoute", "httproutes")
    }
}

impl Router for GatewayApi {
    fn resources(&self) -> Vec<ApiResource> {
        vec![self.http_route(), grpc_route(), tcp_route()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        if inputs.spec.service.gateway_refs.is_empty() {
            return Err(RouteError::NoGateway);
        }
        let spec = match gateway::protocol(inputs.spec) {
            Protocol::Http => http_route_spec(inputs, traffic)?,
            Protocol::Grpc => grpcroute::spec(inputs, traffic),
            Protocol::Tcp => tcproute::spec(inputs, traffic),
        };
        let (resource, name) = self.route(inputs);
        Ok(vec![inputs.object(&resource, name, spec)])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some(self.route(inputs))
    }
}

impl GatewayApi {
    /// The kind and name of the route serving the service's protocol.
    fn route(&self, inputs: &RouteInputs<'_>) -> (ApiResource, String) {
        let resource = match gateway::protocol(inputs.spec) {
            Protocol::Http => self.http_route(),
            Protocol::Grpc => grpc_route(),
            Protocol::Tcp => tcp_route(),
        };
        (resource, inputs.route_name())
    }
}

/// The HTTPRoute's spec for `traffic`.
fn http_route_spec(inputs: &RouteInputs<'_>, traffic: Traffic) -> Result<Value, RouteError> {
    let service = &inputs.spec.service;
    let (primary, canary) = weights(traffic);
    let mut filters = route_filters(inputs)?;
    if let Some(percent) = traffic.mirror {
        filters.push(mirror_filter(inputs, percent));
    }
    let base_matches = if service.matches.is_empty() {
        vec![json!({"path": {"type": "PathPrefix", "value": "/"}})]
    } else {
        service.matches.iter().map(http_match).collect()
    };
    let mut rules = Vec::new();
    if traffic.matched_to_canary {
        // Each Flagger match is an AND of its conditions; Gateway API ORs the matches of a
        // rule and ANDs inside one, so the shapes map one to one, each also carrying the
        // conditions of every `service.match` (the requests the route serves at all).
        let matches = inputs
            .spec
            .analysis
            .matches
            .iter()
            .flat_map(|m| and_each(&http_match(m), &service.matches))
            .collect();
        rules.push(rule(
            matches,
            route_filters(inputs)?,
            all_to(inputs, ServiceRole::Canary),
        ));
    }
    let mut weighted = vec![
        backend(inputs, ServiceRole::Primary, primary),
        backend(inputs, ServiceRole::Canary, canary),
    ];
    if let Some(cookies) = affinity::cookies(inputs.spec) {
        rules.extend(sticky_rules(
            inputs,
            &cookies,
            &base_matches,
            canary,
            &mut weighted,
        )?);
    }
    rules.push(rule(base_matches, filters, weighted));
    let mut timeouts = json!({});
    if let Some(timeout) = service.timeout {
        timeouts["request"] = json!(gateway_duration(timeout));
    }
    if let Some(timeout) = service.backend_timeout {
        timeouts["backendRequest"] = json!(gateway_duration(timeout));
    }
    if timeouts != json!({}) {
        // Every rule serves the same requests, so each carries the timeouts.
        for rule in &mut rules {
            rule["timeouts"] = timeouts.clone();
        }
    }
    let mut spec = json!({"parentRefs": parent_refs(inputs), "rules": rules});
    if !service.hosts.is_empty() {
        spec["hostnames"] = json!(service.hosts);
    }
    Ok(spec)
}

/// The route's parents: the Gateways or Services of `service.gatewayRefs`. A Service parent
/// is written in the core group's own spelling, `""` (Flagger's tutorials write `core`).
pub(super) fn parent_refs(inputs: &RouteInputs<'_>) -> Vec<Value> {
    inputs
        .spec
        .service
        .gateway_refs
        .iter()
        .map(|g| {
            // Refused by `admit` otherwise; a Gateway is the default as in Flagger.
            let (group, kind) = match gateway::parent(g) {
                Ok(Parent::Service) => ("", "Service"),
                _ => (gateway::GROUP, "Gateway"),
            };
            let mut parent = json!({"group": group, "kind": kind, "name": g.name});
            if let Some(ns) = &g.namespace {
                parent["namespace"] = json!(ns);
            }
            if let Some(section) = &g.section_name {
                parent["sectionName"] = json!(section);
            }
            if let Some(port) = g.port {
                parent["port"] = json!(port);
            }
            parent
        })
        .collect()
}

/// A backendRef to the service of `role` with `weight`.
pub(super) fn backend(inputs: &RouteInputs<'_>, role: ServiceRole, weight: i64) -> Value {
    json!({"group": "", "kind": "Service", "name": inputs.service(role), "port": inputs.spec.service.port, "weight": weight})
}

/// Both backends, with every request going to `role`.
pub(super) fn all_to(inputs: &RouteInputs<'_>, role: ServiceRole) -> Vec<Value> {
    let share = |r: ServiceRole| if r == role { 100 } else { 0 };
    vec![
        backend(inputs, ServiceRole::Primary, share(ServiceRole::Primary)),
        backend(inputs, ServiceRole::Canary, share(ServiceRole::Canary)),
    ]
}

/// Blue/green mirroring: `percent` of requests copied to the canary.
pub(super) fn mirror_filter(inputs: &RouteInputs<'_>, percent: i32) -> Value {
    json!({
        "type": "RequestMirror",
        "requestMirror": {
            "backendRef": {"group": "", "kind": "Service", "name": inputs.service(ServiceRole::Canary), "port": inputs.spec.service.port},
            "percent": percent.clamp(0, 100),
        },
    })
}

/// Session affinity: rules matching the cookies in front of the weighted one. While the canary
/// has traffic, its cookie pins users to it (set by the canary's backendRef in `weighted`) and
/// the primary's, if named, to the primary; afterwards the cookies are expired.
fn sticky_rules(
    inputs: &RouteInputs<'_>,
    cookies: &affinity::Cookies<'_>,
    base_matches: &[Value],
    canary: i64,
    weighted: &mut [Value],
) -> Result<Vec<Value>, RouteError> {
    // Sticky rules carry one header match more than the weighted rule, which gives them
    // precedence in Gateway API's matching order.
    let with_cookie = |name: &str| -> Vec<Value> {
        base_matches
            .iter()
            .map(|m| {
                let mut m = m.clone();
                let cookie = json!({"type": "RegularExpression", "name": "Cookie", "value": affinity::carries(name)});
                match m["headers"].as_array_mut() {
                    Some(headers) => headers.push(cookie),
                    None => m["headers"] = json!([cookie]),
                }
                m
            })
            .collect()
    };
    let mut rules = Vec::new();
    if canary == 0 {
        for name in std::iter::once(cookies.canary).chain(cookies.primary) {
            let mut expiring = route_filters(inputs)?;
            add_response_header(&mut expiring, "Set-Cookie", &cookies.expire(name));
            rules.push(rule(
                with_cookie(name),
                expiring,
                all_to(inputs, ServiceRole::Primary),
            ));
        }
        return Ok(rules);
    }
    rules.push(rule(
        with_cookie(cookies.canary),
        route_filters(inputs)?,
        all_to(inputs, ServiceRole::Canary),
    ));
    set_cookie_on(&mut weighted[1], &cookies.set(cookies.canary));
    if let Some(name) = cookies.primary {
        rules.push(rule(
            with_cookie(name),
            route_filters(inputs)?,
            all_to(inputs, ServiceRole::Primary),
        ));
        set_cookie_on(&mut weighted[0], &cookies.set(name));
    }
    Ok(rules)
}

/// A duration as Gateway API writes it (GEP-2257: `1h`, `1m30s`, `1s500ms`; no fractions),
/// rounded down to the millisecond, its smallest unit.
fn gateway_duration(duration: crate::api::Duration) -> String {
    let total = duration.as_std().as_millis();
    if total == 0 {
        return "0s".to_string();
    }
    let parts = [
        (total / 3_600_000, "h"),
        (total / 60_000 % 60, "m"),
        (total / 1_000 % 60, "s"),
        (total % 1_000, "ms"),
    ];
    parts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, unit)| format!("{count}{unit}"))
        .collect()
}

fn rule(matches: Vec<Value>, filters: Vec<Value>, backends: Vec<Value>) -> Value {
    let mut rule = json!({"matches": matches, "backendRefs": backends});
    if !filters.is_empty() {
        rule["filters"] = json!(filters);
    }
    rule
}

/// Adds a response header to a backendRef (a backend-level filter: only answers from that
/// backend carry it).
fn set_cookie_on(backend: &mut Value, cookie: &str) {
    backend["filters"] = json!([{"type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": cookie}]}}]);
}

/// Adds a header to the rule's response modifier; Gateway API allows one filter of each type
/// per rule, so an existing one (from `service.headers`) is extended.
fn add_response_header(filters: &mut Vec<Value>, name: &str, value: &str) {
    let header = json!({"name": name, "value": value});
    if let Some(existing) = filters
        .iter_mut()
        .find(|f| f["type"] == "ResponseHeaderModifier")
    {
        let modifier = &mut existing["responseHeaderModifier"];
        match modifier["add"].as_array_mut() {
            Some(add) => add.push(header),
            None => modifier["add"] = json!([header]),
        }
        return;
    }
    filters.push(
        json!({"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [header]}}),
    );
}

/// The filters of every rule: `service.headers`, `rewrite`, `mirror` and `corsPolicy`.
fn route_filters(inputs: &RouteInputs<'_>) -> Result<Vec<Value>, RouteError> {
    let service = &inputs.spec.service;
    let mut filters = header_filters(inputs);
    if let Some(rewrite) = &service.rewrite {
        let mut url_rewrite = json!({});
        if let Some(host) = &rewrite.authority {
            url_rewrite["hostname"] = json!(host);
        }
        if let Some(uri) = &rewrite.uri {
            url_rewrite["path"] = match rewrite.kind.as_deref().unwrap_or(FULL_PATH) {
                FULL_PATH => json!({"type": FULL_PATH, "replaceFullPath": uri}),
                other => json!({"type": other, "replacePrefixMatch": uri}),
            };
        }
        filters.push(json!({"type": "URLRewrite", "urlRewrite": url_rewrite}));
    }
    filters.extend(service_mirrors(inputs));
    if let Some(cors) = &service.cors_policy {
        // `admit` refused what does not convert; a route is never built without it.
        let cors = gateway::cors_filter(cors).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            RouteError::Spec(lines.join("; "))
        })?;
        filters.push(json!({"type": "CORS", "cors": cors}));
    }
    Ok(filters)
}

/// `service.mirror`: one RequestMirror filter per entry.
pub(super) fn service_mirrors(inputs: &RouteInputs<'_>) -> Vec<Value> {
    let mut filters = Vec::new();
    for mirror in &inputs.spec.service.mirror {
        let b = &mirror.backend_ref;
        let mut backend = json!({
            "group": b.group.as_deref().filter(|g| *g != "core").unwrap_or(""),
            "kind": b.kind.as_deref().unwrap_or("Service"),
            "name": b.name,
        });
        if let Some(namespace) = &b.namespace {
            backend["namespace"] = json!(namespace);
        }
        if let Some(port) = b.port {
            backend["port"] = json!(port);
        }
        let mut filter = json!({"backendRef": backend});
        if let Some(percent) = mirror.percent {
            filter["percent"] = json!(percent.clamp(0, 100));
        }
        filters.push(json!({"type": "RequestMirror", "requestMirror": filter}));
    }
    filters
}

/// `condition` ANDed with each of `service` (the requests every rule serves): one
/// HTTPRouteMatch per service match, its path and method from either side (`admit` refuses
/// both setting one), its headers and query parameters from both.
fn and_each(condition: &Value, service: &[HttpMatch]) -> Vec<Value> {
    if service.is_empty() {
        return vec![condition.clone()];
    }
    service
        .iter()
        .map(|s| {
            let mut merged = http_match(s);
            for key in ["path", "method"] {
                if let Some(value) = condition.get(key) {
                    merged[key] = value.clone();
                }
            }
            for key in ["headers", "queryParams"] {
                let Some(extra) = condition.get(key).and_then(Value::as_array) else {
                    continue;
                };
                match merged[key].as_array_mut() {
                    Some(list) => list.extend(extra.iter().cloned()),
                    None => merged[key] = json!(extra),
                }
            }
            merged
        })
        .collect()
}

/// `service.headers.request/response` as header modifier filters.
pub(super) fn header_filters(inputs: &RouteInputs<'_>) -> Vec<Value> {
    let Some(headers) = &inputs.spec.service.headers else {
        return Vec::new();
    };
    let mut filters = Vec::new();
    for (kind, key, operation) in [
        (
            "RequestHeaderModifier",
            "requestHeaderModifier",
            &headers.request,
        ),
        (
            "ResponseHeaderModifier",
            "responseHeaderModifier",
            &headers.response,
        ),
    ] {
        let Some(op) = operation else { continue };
        let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<Value> {
            m.iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect()
        };
        let mut modifier = json!({});
        if !op.set.is_empty() {
            modifier["set"] = json!(pairs(&op.set));
        }
        if !op.add.is_empty() {
            modifier["add"] = json!(pairs(&op.add));
        }
        if !op.remove.is_empty() {
            modifier["remove"] = json!(op.remove);
        }
        filters.push(json!({"type": kind, key: modifier}));
    }
    filters
}

/// A Flagger/Istio-shaped match as an HTTPRouteMatch. Gateway API matches strings exactly or
/// by regular expression; prefix and suffix become anchored expressions.
pub(super) fn http_match(m: &HttpMatch) -> Value {
    let mut out = json!({});
    if let Some(uri) = &m.uri {
        out["path"] = match (&uri.exact, &uri.prefix) {
            (Some(exact), _) => json!({"type": "Exact", "value": exact}),
            (None, Some(prefix)) => json!({"type": "PathPrefix", "value": prefix}),
            _ => string_match(uri),
        };
    }
    if !m.headers.is_empty() {
        out["headers"] = m
            .headers
            .iter()
            .map(|(name, value)| {
                let mut h = string_match(value);
                h["name"] = json!(name);
                h
            })
            .collect();
    }
    if !m.query_params.is_empty() {
        out["queryParams"] = m
            .query_params
            .iter()
            .map(|(name, value)| {
                let mut q = string_match(value);
                q["name"] = json!(name);
                q
            })
            .collect();
    }
    if let Some(method) = m.method.as_ref().and_then(|m| m.exact.clone()) {
        out["method"] = json!(method);
    }
    out
}

fn string_match(m: &StringMatch) -> Value {
    if let Some(exact) = &m.exact {
        return json!({"type": "Exact", "value": exact});
    }
    let regex = if let Some(prefix) = &m.prefix {
        format!("^{}.*", regex_escape(prefix))
    } else if let Some(suffix) = &m.suffix {
        format!(".*{}$", regex_escape(suffix))
    } else {
        m.regex.clone().unwrap_or_default()
    };
    json!({"type": "RegularExpression", "value": regex})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn route(yaml_service: &str, analysis: &str, traffic: Traffic) -> Value {
        let spec = spec(yaml_service, analysis);
        let objects = GatewayApi::V1.objects(&inputs_for(&spec), traffic).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].types.as_ref().unwrap().kind, "HTTPRoute");
        objects[0].data["spec"].clone()
    }

    const SERVICE: &str =
        "{port: 9898, gatewayRefs: [{name: public, namespace: gw}], hosts: [app.example.com]}";

    #[test]
    fn the_service_timeout_is_every_rules_request_timeout() {
        let spec = route(
            "{port: 9898, gatewayRefs: [{name: public}], timeout: 90.5s}",
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}",
            Traffic {
                matched_to_canary: true,
                ..Traffic::PRIMARY
            },
        );
        let rules = spec["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        for rule in rules {
            assert_eq!(rule["timeouts"]["request"], "1m30s500ms");
        }
        let spec = route(SERVICE, "{stepWeight: 10}", Traffic::weights(90, 10));
        assert!(spec["rules"][0].get("timeouts").is_none());
    }

    #[test]
    fn weights_go_to_the_primary_and_canary_backends() {
        let spec = route(SERVICE, "{stepWeight: 10}", Traffic::weights(70, 30));
        assert_eq!(spec["parentRefs"][0]["name"], "public");
        assert_eq!(spec["parentRefs"][0]["namespace"], "gw");
        assert_eq!(spec["hostnames"][0], "app.example.com");
        let backends = &spec["rules"][0]["backendRefs"];
        assert_eq!(backends[0]["name"], "podinfo-primary");
        assert_eq!(backends[0]["weight"], 70);
        assert_eq!(backends[1]["name"], "podinfo-canary");
        assert_eq!(backends[1]["weight"], 30);
        assert_eq!(backends[1]["port"], 9898);
    }

    #[test]
    fn ab_testing_sends_matching_requests_to_the_canary() {
        let mut traffic = Traffic::PRIMARY;
        traffic.matched_to_canary = true;
        let spec = route(
            SERVICE,
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}, {headers: {cookie: {regex: '^(.*?;)?(canary=always)(;.*)?$'}}}]}",
            traffic,
        );
        let first = &spec["rules"][0];
        assert_eq!(first["matches"][0]["headers"][0]["name"], "x-canary");
        assert_eq!(first["matches"][0]["headers"][0]["type"], "Exact");
        assert_eq!(
            first["matches"][1]["headers"][0]["type"],
            "RegularExpression"
        );
        assert_eq!(first["backendRefs"][1]["weight"], 100);
        assert_eq!(spec["rules"][1]["backendRefs"][0]["weight"], 100);
    }

    #[test]
    fn mirroring_adds_a_request_mirror_filter() {
        let mut traffic = Traffic::PRIMARY;
        traffic.mirror = Some(50);
        let spec = route(
            SERVICE,
            "{iterations: 5, mirror: true, mirrorWeight: 50}",
            traffic,
        );
        let filter = &spec["rules"][0]["filters"][0];
        assert_eq!(filter["type"], "RequestMirror");
        assert_eq!(
            filter["requestMirror"]["backendRef"]["name"],
            "podinfo-canary"
        );
        assert_eq!(filter["requestMirror"]["percent"], 50);
    }

    #[test]
    fn without_a_gateway_the_route_is_refused() {
        let spec = spec("{port: 9898}", "{stepWeight: 10}");
        assert_eq!(
            GatewayApi::V1.objects(&inputs_for(&spec), Traffic::PRIMARY),
            Err(RouteError::NoGateway)
        );
    }

    #[test]
    fn prefixes_become_anchored_escaped_expressions() {
        let m = StringMatch {
            prefix: Some("v1.2".into()),
            ..StringMatch::default()
        };
        assert_eq!(string_match(&m)["value"], "^v1\\.2.*");
    }

    #[test]
    fn session_affinity_pins_users_while_the_canary_has_traffic_and_expires_after() {
        let spec = spec(
            "{port: 80, gatewayRefs: [{name: public}], match: [{uri: {prefix: /api}}], headers: {response: {set: {x-app: podinfo}}}}",
            "{stepWeight: 10, sessionAffinity: {cookieName: canary}}",
        );
        let objects = GatewayApi::V1
            .objects(&inputs_for(&spec), Traffic::weights(90, 10))
            .unwrap();
        let rules = objects[0].data["spec"]["rules"].as_array().unwrap().clone();
        assert_eq!(rules.len(), 2, "{rules:#?}");
        let sticky = &rules[0];
        assert_eq!(sticky["matches"][0]["path"]["value"], "/api");
        assert_eq!(sticky["matches"][0]["headers"][0]["name"], "Cookie");
        assert_eq!(
            sticky["matches"][0]["headers"][0]["type"],
            "RegularExpression"
        );
        assert_eq!(sticky["backendRefs"][1]["weight"], 100);
        let split = &rules[1];
        assert_eq!(split["backendRefs"][1]["weight"], 10);
        assert_eq!(
            split["backendRefs"][1]["filters"][0]["responseHeaderModifier"]["add"][0]["value"],
            "canary=1; Max-Age=86400; Path=/"
        );
        assert!(split["backendRefs"][0].get("filters").is_none());

        let objects = GatewayApi::V1
            .objects(&inputs_for(&spec), Traffic::PRIMARY)
            .unwrap();
        let rules = objects[0].data["spec"]["rules"].as_array().unwrap().clone();
        let expiring = &rules[0];
        assert_eq!(expiring["backendRefs"][0]["weight"], 100);
        // One ResponseHeaderModifier per rule: the user's headers and the expiry together.
        let filters = expiring["filters"].as_array().unwrap();
        let modifiers: Vec<&Value> = filters
            .iter()
            .filter(|f| f["type"] == "ResponseHeaderModifier")
            .collect();
        assert_eq!(modifiers.len(), 1, "{filters:#?}");
        assert_eq!(
            modifiers[0]["responseHeaderModifier"]["set"][0]["name"],
            "x-app"
        );
        assert_eq!(
            modifiers[0]["responseHeaderModifier"]["add"][0]["value"],
            "canary=; Max-Age=0; Path=/"
        );
    }

    #[test]
    fn a_service_parent_attaches_the_route_to_the_mesh() {
        let spec = route(
            "{port: 9898, gatewayRefs: [{name: podinfo, namespace: test, group: core, kind: Service, port: 9898}]}",
            "{stepWeight: 10}",
            Traffic::weights(90, 10),
        );
        assert_eq!(
            spec["parentRefs"],
            json!([{"group": "", "kind": "Service", "name": "podinfo", "namespace": "test", "port": 9898}])
        );
        let spec = route(SERVICE, "{stepWeight: 10}", Traffic::weights(90, 10));
        assert_eq!(spec["parentRefs"][0]["kind"], "Gateway");
        assert_eq!(spec["parentRefs"][0]["group"], "gateway.networking.k8s.io");
    }

    #[test]
    fn rewrite_cors_mirrors_and_both_timeouts_go_onto_every_rule() {
        let spec = route(
            "{port: 80, gatewayRefs: [{name: public}], timeout: 30s, backendTimeout: 10s, rewrite: {uri: /v2, authority: api.internal, type: ReplacePrefixMatch}, corsPolicy: {allowOrigin: ['https://app.example'], maxAge: 1h}, mirror: [{backendRef: {name: shadow, namespace: qa, port: 8080}, percent: 20}]}",
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}",
            Traffic {
                matched_to_canary: true,
                ..Traffic::PRIMARY
            },
        );
        let rules = spec["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        for rule in rules {
            assert_eq!(
                rule["timeouts"],
                json!({"request": "30s", "backendRequest": "10s"})
            );
            let filters = rule["filters"].as_array().unwrap();
            let of = |kind: &str| filters.iter().find(|f| f["type"] == kind).cloned();
            assert_eq!(
                of("URLRewrite").unwrap()["urlRewrite"],
                json!({"hostname": "api.internal", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}})
            );
            assert_eq!(
                of("CORS").unwrap()["cors"],
                json!({"allowOrigins": ["https://app.example"], "maxAge": 3600})
            );
            assert_eq!(
                of("RequestMirror").unwrap()["requestMirror"],
                json!({"backendRef": {"group": "", "kind": "Service", "name": "shadow", "namespace": "qa", "port": 8080}, "percent": 20})
            );
        }
        let spec = route(
            "{port: 80, gatewayRefs: [{name: public}], rewrite: {uri: /}}",
            "{stepWeight: 10}",
            Traffic::weights(90, 10),
        );
        assert_eq!(
            spec["rules"][0]["filters"][0]["urlRewrite"]["path"],
            json!({"type": "ReplaceFullPath", "replaceFullPath": "/"})
        );
        assert!(spec["rules"][0].get("timeouts").is_none());
    }

    #[test]
    fn ab_matches_are_anded_with_each_service_match() {
        let spec = route(
            "{port: 80, gatewayRefs: [{name: public}], match: [{uri: {prefix: /api}}, {uri: {prefix: /web}, headers: {x-team: {exact: a}}}]}",
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}, {queryParams: {beta: {exact: '1'}}}]}",
            Traffic {
                matched_to_canary: true,
                ..Traffic::PRIMARY
            },
        );
        let ab = spec["rules"][0]["matches"].as_array().unwrap();
        assert_eq!(ab.len(), 4, "{ab:#?}");
        assert_eq!(ab[0]["path"]["value"], "/api");
        assert_eq!(ab[0]["headers"][0]["name"], "x-canary");
        assert_eq!(ab[1]["path"]["value"], "/web");
        let names: Vec<&Value> = ab[1]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| &h["name"])
            .collect();
        assert_eq!(names, [&json!("x-team"), &json!("x-canary")]);
        assert_eq!(ab[2]["queryParams"][0]["name"], "beta");
        assert_eq!(ab[3]["path"]["value"], "/web");
        // The rule after it serves the service matches alone.
        assert_eq!(spec["rules"][1]["matches"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn v1beta1_writes_v1beta1_routes() {
        let spec = spec(SERVICE, "{stepWeight: 10}");
        let objects = GatewayApi::V1BETA1
            .objects(&inputs_for(&spec), Traffic::PRIMARY)
            .unwrap();
        assert_eq!(
            objects[0].types.as_ref().unwrap().api_version,
            "gateway.networking.k8s.io/v1beta1"
        );
        let (taken, _) = GatewayApi::V1BETA1.taken_over(&inputs_for(&spec)).unwrap();
        assert_eq!(taken.version, "v1beta1");
        assert_eq!(GatewayApi::V1.http_route().version, "v1");
    }
}
