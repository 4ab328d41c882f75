//! Istio (`networking.istio.io/v1beta1`, served by every Istio since 1.5): a VirtualService
//! named after the apex service with weighted routes to the primary and canary hosts (plus a
//! matching route in front for A/B testing, and mirror/mirrorPercentage for blue/green
//! mirroring), and one DestinationRule per host carrying `service.trafficPolicy`. With
//! `service.delegation` the VirtualService is a delegate (no hosts or gateways); with
//! `appProtocol: tcp` it holds one weighted TCP route instead of HTTP routes.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::api::canary::{HttpMatch, StringMatch};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, affinity, regex_escape, resource, weights};

pub struct Istio;

pub fn virtual_service() -> ApiResource {
    resource(
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
        "virtualservices",
    )
}

pub fn destination_rule() -> ApiResource {
    resource(
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
        "destinationrules",
    )
}

impl Router for Istio {
    fn resources(&self) -> Vec<ApiResource> {
        vec![virtual_service(), destination_rule()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let service = &inputs.spec.service;
        let mut spec = if inputs.spec.is_tcp() {
            json!({"tcp": tcp_routes(inputs, traffic)})
        } else {
            json!({"http": http_routes(inputs, traffic)})
        };
        // A delegate is reached through a root VirtualService, which names the hosts and
        // gateways (`api::istio` refuses them here).
        if !service.delegation {
            let mut hosts = vec![inputs.service(ServiceRole::Apex)];
            hosts.extend(service.hosts.iter().cloned());
            spec["hosts"] = json!(hosts);
            if !service.gateways.is_empty() {
                spec["gateways"] = json!(service.gateways);
            }
        }
        let mut objects = vec![inputs.object(&virtual_service(), inputs.route_name(), spec)];
        for role in [ServiceRole::Primary, ServiceRole::Canary] {
            let host = inputs.service(role);
            let mut rule = json!({"host": host});
            if let Some(policy) = &service.traffic_policy {
                rule["trafficPolicy"] = policy.clone();
            }
            objects.push(inputs.object(&destination_rule(), host, rule));
        }
        Ok(objects)
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        Some((virtual_service(), inputs.route_name()))
    }
}

/// A weighted destination: the host at the service's port.
fn destination(inputs: &RouteInputs<'_>, role: ServiceRole, weight: i64) -> Value {
    json!({
        "destination": {"host": inputs.service(role), "port": {"number": inputs.spec.service.port}},
        "weight": weight,
    })
}

/// The primary's and the canary's weighted destinations.
fn split(inputs: &RouteInputs<'_>, primary: i64, canary: i64) -> Value {
    json!([
        destination(inputs, ServiceRole::Primary, primary),
        destination(inputs, ServiceRole::Canary, canary)
    ])
}

/// One TCP route splitting connections by weight, matched by the L4 conditions of
/// `service.match` (port, sourceLabels, sourceNamespace, gateways; `api::istio` refuses the
/// HTTP ones).
fn tcp_routes(inputs: &RouteInputs<'_>, traffic: Traffic) -> Value {
    let (primary, canary) = weights(traffic);
    let mut route = json!({"route": split(inputs, primary, canary)});
    let l4: Vec<Value> = inputs
        .spec
        .service
        .matches
        .iter()
        .map(|m| {
            let mut l4 = json!({});
            if let Some(port) = m.port {
                l4["port"] = json!(port);
            }
            if !m.source_labels.is_empty() {
                l4["sourceLabels"] = json!(m.source_labels);
            }
            if let Some(namespace) = &m.source_namespace {
                l4["sourceNamespace"] = json!(namespace);
            }
            if !m.gateways.is_empty() {
                l4["gateways"] = json!(m.gateways);
            }
            l4
        })
        .collect();
    if !l4.is_empty() {
        route["match"] = json!(l4);
    }
    json!([route])
}

/// The HTTP routes, first match wins: sticky-session routes, then the A/B route, then the
/// weighted split (with the mirror) serving `service.match`.
fn http_routes(inputs: &RouteInputs<'_>, traffic: Traffic) -> Vec<Value> {
    let service = &inputs.spec.service;
    let (primary, canary) = weights(traffic);
    let mut main = route_settings(inputs);
    if !service.matches.is_empty() {
        main["match"] = matches(&service.matches);
    }
    main["route"] = split(inputs, primary, canary);
    if let Some(percent) = traffic.mirror {
        let canary_host = inputs.service(ServiceRole::Canary);
        main["mirror"] = json!({"host": canary_host, "port": {"number": service.port}});
        main["mirrorPercentage"] = json!({"value": f64::from(percent.clamp(0, 100))});
    }
    let mut http = sticky_routes(inputs, traffic, &mut main);
    if traffic.matched_to_canary {
        let mut ab = route_settings(inputs);
        ab["match"] = matches(&and_each(&inputs.spec.analysis.matches, &service.matches));
        ab["route"] = split(inputs, 0, 100);
        http.push(ab);
    }
    http.push(main);
    http
}

/// Session affinity: routes for the cookie holders (put before the split, as Istio takes the
/// first route that matches), and the Set-Cookie the split's destinations hand out.
fn sticky_routes(inputs: &RouteInputs<'_>, traffic: Traffic, main: &mut Value) -> Vec<Value> {
    let Some(cookies) = affinity::cookies(inputs.spec) else {
        return Vec::new();
    };
    let service = &inputs.spec.service;
    let sticky = |name: &str, primary: i64, canary: i64| {
        let mut route = route_settings(inputs);
        route["match"] = with_cookie(&service.matches, name);
        route["route"] = split(inputs, primary, canary);
        route
    };
    let mut http = Vec::new();
    if weights(traffic).1 > 0 {
        http.push(sticky(cookies.canary, 0, 100));
        set_cookie(&mut main["route"][1], &cookies.set(cookies.canary));
        if let Some(name) = cookies.primary {
            http.push(sticky(name, 100, 0));
            set_cookie(&mut main["route"][0], &cookies.set(name));
        }
    } else {
        for name in std::iter::once(cookies.canary).chain(cookies.primary) {
            let mut route = sticky(name, 100, 0);
            set_cookie(&mut route, &cookies.expire(name));
            http.push(route);
        }
    }
    http
}

/// Each A/B match ANDed with each `service.match` (the requests every route serves), so the
/// A/B route never takes a request the service does not serve: maps joined, single values
/// from whichever side sets them (`api::istio` refuses both setting one).
fn and_each(analysis: &[HttpMatch], service: &[HttpMatch]) -> Vec<HttpMatch> {
    if service.is_empty() {
        return analysis.to_vec();
    }
    let mut merged = Vec::with_capacity(analysis.len() * service.len());
    for a in analysis {
        for s in service {
            merged.push(and(a, s));
        }
    }
    merged
}

/// The match of the requests both `a` and `s` take.
fn and(a: &HttpMatch, s: &HttpMatch) -> HttpMatch {
    // Destructured without `..`: a new condition cannot be silently dropped here.
    let HttpMatch {
        headers,
        uri,
        method,
        query_params,
        source_labels,
        authority,
        gateways,
        ignore_uri_case,
        name,
        port,
        scheme,
        source_namespace,
        without_headers,
    } = a.clone();
    HttpMatch {
        headers: join(s.headers.clone(), headers),
        // ignoreUriCase belongs to the uri it qualifies.
        ignore_uri_case: if uri.is_some() {
            ignore_uri_case
        } else {
            s.ignore_uri_case
        },
        uri: uri.or_else(|| s.uri.clone()),
        method: method.or_else(|| s.method.clone()),
        query_params: join(s.query_params.clone(), query_params),
        source_labels: join(s.source_labels.clone(), source_labels),
        authority: authority.or_else(|| s.authority.clone()),
        gateways: if gateways.is_empty() {
            s.gateways.clone()
        } else {
            gateways
        },
        // The A/B route's own name when it has one (Istio prefixes the route's name).
        name: name.or_else(|| s.name.clone()),
        port: port.or(s.port),
        scheme: scheme.or_else(|| s.scheme.clone()),
        source_namespace: source_namespace.or_else(|| s.source_namespace.clone()),
        without_headers: join(s.without_headers.clone(), without_headers),
    }
}

/// `base` with the entries of `extra` (`api::istio` refuses a key both set differently).
fn join<V>(mut base: BTreeMap<String, V>, extra: BTreeMap<String, V>) -> BTreeMap<String, V> {
    base.extend(extra);
    base
}

/// Timeout, retries, rewrite, headers and CORS from `service`, common to every HTTP route.
fn route_settings(inputs: &RouteInputs<'_>) -> Value {
    let service = &inputs.spec.service;
    let mut route = json!({});
    if let Some(timeout) = &service.timeout {
        route["timeout"] = json!(timeout.to_string());
    }
    if let Some(retries) = &service.retries {
        route["retries"] = serde_json::to_value(retries).unwrap_or(Value::Null);
    }
    if let Some(rewrite) = &service.rewrite {
        // Istio's HTTPRewrite has no `type` (Gateway API's): uri and authority only.
        let mut istio = json!({});
        if let Some(uri) = &rewrite.uri {
            istio["uri"] = json!(uri);
        }
        if let Some(authority) = &rewrite.authority {
            istio["authority"] = json!(authority);
        }
        route["rewrite"] = istio;
    }
    if let Some(headers) = &service.headers {
        route["headers"] = serde_json::to_value(headers).unwrap_or(Value::Null);
    }
    if let Some(cors) = &service.cors_policy {
        route["corsPolicy"] = cors.clone();
    }
    route
}

/// The matches of `base` (or one empty match), each also requiring the cookie `name`.
fn with_cookie(base: &[HttpMatch], name: &str) -> Value {
    let cookie = json!({"regex": affinity::carries(name)});
    let mut list: Vec<Value> = match matches(base) {
        Value::Array(list) if !list.is_empty() => list,
        _ => vec![json!({})],
    };
    for m in &mut list {
        m["headers"]["cookie"] = cookie.clone();
    }
    Value::Array(list)
}

/// Adds `Set-Cookie` to the response headers of a route or destination (keeping headers set
/// from `service.headers`).
fn set_cookie(target: &mut Value, cookie: &str) {
    target["headers"]["response"]["add"]["Set-Cookie"] = json!(cookie);
}

/// Flagger's match is Istio's HTTPMatchRequest, but for what Istio's StringMatch cannot say
/// (`in_istio_terms`).
fn matches(list: &[HttpMatch]) -> Value {
    let list: Vec<HttpMatch> = list.iter().map(in_istio_terms).collect();
    serde_json::to_value(list).unwrap_or(Value::Null)
}

/// Istio's StringMatch has exact, prefix and regex, and its query parameters take no prefix
/// either: those are written as the RE2 patterns (matched whole) saying the same. Left as
/// written, the API server would prune the unknown key and leave an empty match, which takes
/// every request carrying the header.
fn in_istio_terms(m: &HttpMatch) -> HttpMatch {
    let as_regex = |s: &StringMatch, prefix_too: bool| {
        let pattern = match (&s.prefix, &s.suffix) {
            (Some(prefix), _) if prefix_too => format!("{}.*", regex_escape(prefix)),
            (_, Some(suffix)) => format!(".*{}", regex_escape(suffix)),
            _ => return s.clone(),
        };
        StringMatch {
            regex: Some(pattern),
            ..StringMatch::default()
        }
    };
    let each = |map: &BTreeMap<String, StringMatch>, prefix_too: bool| {
        map.iter()
            .map(|(key, value)| (key.clone(), as_regex(value, prefix_too)))
            .collect()
    };
    HttpMatch {
        headers: each(&m.headers, false),
        uri: m.uri.as_ref().map(|s| as_regex(s, false)),
        method: m.method.as_ref().map(|s| as_regex(s, false)),
        query_params: each(&m.query_params, true),
        authority: m.authority.as_ref().map(|s| as_regex(s, false)),
        scheme: m.scheme.as_ref().map(|s| as_regex(s, false)),
        without_headers: each(&m.without_headers, false),
        ..m.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    #[test]
    fn weights_destinations_and_destination_rules() {
        let spec = spec(
            "{port: 9898, gateways: [public-gateway], hosts: [app.example.com], timeout: 5s, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}",
            "{stepWeight: 10}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(90, 10))
            .unwrap();
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| {
                (
                    o.types.as_ref().unwrap().kind.as_str(),
                    o.metadata.name.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("VirtualService", "podinfo".to_string()),
                ("DestinationRule", "podinfo-primary".to_string()),
                ("DestinationRule", "podinfo-canary".to_string())
            ]
        );
        let vs = &objects[0].data["spec"];
        assert_eq!(vs["hosts"], json!(["podinfo", "app.example.com"]));
        assert_eq!(vs["gateways"], json!(["public-gateway"]));
        let route = &vs["http"][0];
        assert_eq!(route["timeout"], "5s");
        assert_eq!(route["route"][0]["destination"]["host"], "podinfo-primary");
        assert_eq!(route["route"][0]["weight"], 90);
        assert_eq!(route["route"][1]["weight"], 10);
        assert_eq!(
            objects[1].data["spec"]["trafficPolicy"]["tls"]["mode"],
            "ISTIO_MUTUAL"
        );
    }

    #[test]
    fn ab_matches_and_mirroring() {
        let spec = spec(
            "{port: 80}",
            "{iterations: 3, match: [{headers: {x-canary: {exact: insider}}}]}",
        );
        let mut traffic = Traffic::PRIMARY;
        traffic.matched_to_canary = true;
        let objects = Istio.objects(&inputs_for(&spec), traffic).unwrap();
        let http = &objects[0].data["spec"]["http"];
        assert_eq!(
            http[0]["match"][0]["headers"]["x-canary"]["exact"],
            "insider"
        );
        assert_eq!(http[0]["route"][1]["weight"], 100);
        assert_eq!(http[1]["route"][0]["weight"], 100);

        let mut mirrored = Traffic::PRIMARY;
        mirrored.mirror = Some(25);
        let objects = Istio.objects(&inputs_for(&spec), mirrored).unwrap();
        let route = &objects[0].data["spec"]["http"][0];
        assert_eq!(route["mirror"]["host"], "podinfo-canary");
        assert_eq!(route["mirrorPercentage"]["value"], 25.0);
    }

    #[test]
    fn session_affinity_pins_users_while_the_canary_has_traffic_and_expires_after() {
        let spec = spec(
            "{port: 80, headers: {response: {set: {x-app: podinfo}}}}",
            "{stepWeight: 10, sessionAffinity: {cookieName: canary, primaryCookieName: primary, maxAge: 600}}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(90, 10))
            .unwrap();
        let http = objects[0].data["spec"]["http"].as_array().unwrap().clone();
        assert_eq!(http.len(), 3, "{http:#?}");
        // Cookie holders first: the canary's to the canary, the primary's to the primary.
        assert_eq!(
            http[0]["match"][0]["headers"]["cookie"]["regex"],
            "^(.*;\\s*)?canary=.*$"
        );
        assert_eq!(http[0]["route"][1]["weight"], 100);
        assert_eq!(
            http[1]["match"][0]["headers"]["cookie"]["regex"],
            "^(.*;\\s*)?primary=.*$"
        );
        assert_eq!(http[1]["route"][0]["weight"], 100);
        // The split hands out the cookies, keeping the user's own response headers.
        let split = &http[2];
        assert!(split.get("match").is_none());
        assert_eq!(
            split["route"][1]["headers"]["response"]["add"]["Set-Cookie"],
            "canary=1; Max-Age=600; Path=/"
        );
        assert_eq!(
            split["route"][0]["headers"]["response"]["add"]["Set-Cookie"],
            "primary=1; Max-Age=600; Path=/"
        );
        assert_eq!(split["headers"]["response"]["set"]["x-app"], "podinfo");

        // No traffic on the canary: cookie holders go to the primary and lose the cookie.
        let objects = Istio.objects(&inputs_for(&spec), Traffic::PRIMARY).unwrap();
        let http = objects[0].data["spec"]["http"].as_array().unwrap().clone();
        assert_eq!(http.len(), 3);
        assert_eq!(http[0]["route"][0]["weight"], 100);
        assert_eq!(
            http[0]["headers"]["response"]["add"]["Set-Cookie"],
            "canary=; Max-Age=0; Path=/"
        );
        assert_eq!(http[0]["headers"]["response"]["set"]["x-app"], "podinfo");
    }

    #[test]
    fn istio_conditions_reach_the_split_and_the_ab_route_ands_them_with_the_service_match() {
        let spec = spec(
            "{port: 80, match: [{uri: {prefix: /API}, ignoreUriCase: true, authority: {exact: shop.example.com}, gateways: [public], port: 8080, scheme: {exact: https}, sourceNamespace: web, name: shop, withoutHeaders: {x-debug: {exact: '1'}}, headers: {x-team: {exact: a}}}]}",
            "{iterations: 3, match: [{headers: {x-canary: {exact: insider}}, withoutHeaders: {x-bot: {prefix: y}}}]}",
        );
        let mut traffic = Traffic::PRIMARY;
        traffic.matched_to_canary = true;
        let objects = Istio.objects(&inputs_for(&spec), traffic).unwrap();
        let http = &objects[0].data["spec"]["http"];
        let served = json!({
            "uri": {"prefix": "/API"},
            "ignoreUriCase": true,
            "authority": {"exact": "shop.example.com"},
            "gateways": ["public"],
            "port": 8080,
            "scheme": {"exact": "https"},
            "sourceNamespace": "web",
            "name": "shop",
            "withoutHeaders": {"x-debug": {"exact": "1"}},
            "headers": {"x-team": {"exact": "a"}},
        });
        assert_eq!(http[1]["match"], json!([served]));
        // The A/B route takes only requests the service serves and the A/B match names.
        let mut ab = served.clone();
        ab["headers"]["x-canary"] = json!({"exact": "insider"});
        ab["withoutHeaders"]["x-bot"] = json!({"prefix": "y"});
        assert_eq!(http[0]["match"], json!([ab]));
        assert_eq!(http[0]["route"][1]["weight"], 100);
    }

    #[test]
    fn ab_matches_are_ored_across_each_service_match() {
        let spec = spec(
            "{port: 80, match: [{uri: {prefix: /a}}, {uri: {prefix: /b}}]}",
            "{iterations: 3, match: [{headers: {x: {exact: '1'}}}, {queryParams: {q: {exact: '2'}}}]}",
        );
        let mut traffic = Traffic::PRIMARY;
        traffic.matched_to_canary = true;
        let objects = Istio.objects(&inputs_for(&spec), traffic).unwrap();
        let ab = objects[0].data["spec"]["http"][0]["match"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(ab.len(), 4, "{ab:#?}");
        assert_eq!(ab[1]["uri"]["prefix"], "/b");
        assert_eq!(ab[1]["headers"]["x"]["exact"], "1");
        assert_eq!(ab[2]["uri"]["prefix"], "/a");
        assert_eq!(ab[2]["queryParams"]["q"]["exact"], "2");
    }

    #[test]
    fn a_delegate_virtual_service_has_no_hosts_or_gateways() {
        let spec = spec(
            "{port: 80, delegation: true, match: [{uri: {prefix: /shop}}]}",
            "{stepWeight: 10}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(70, 30))
            .unwrap();
        let vs = &objects[0].data["spec"];
        assert!(vs.get("hosts").is_none(), "{vs:#?}");
        assert!(vs.get("gateways").is_none(), "{vs:#?}");
        assert_eq!(vs["http"][0]["match"][0]["uri"]["prefix"], "/shop");
        assert_eq!(vs["http"][0]["route"][1]["weight"], 30);
    }

    #[test]
    fn a_tcp_service_gets_a_weighted_tcp_route_matched_by_port() {
        let spec = spec(
            "{port: 6379, appProtocol: TCP, gateways: [mesh], match: [{port: 6379, sourceLabels: {app: client}}]}",
            "{stepWeight: 10}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(80, 20))
            .unwrap();
        let vs = &objects[0].data["spec"];
        assert!(vs.get("http").is_none(), "{vs:#?}");
        assert_eq!(vs["hosts"], json!(["podinfo"]));
        assert_eq!(
            vs["tcp"],
            json!([{
                "match": [{"port": 6379, "sourceLabels": {"app": "client"}}],
                "route": [
                    {"destination": {"host": "podinfo-primary", "port": {"number": 6379}}, "weight": 80},
                    {"destination": {"host": "podinfo-canary", "port": {"number": 6379}}, "weight": 20}
                ]
            }])
        );
    }

    #[test]
    fn the_set_cookie_carries_every_cookie_attribute_asked_for() {
        let spec = spec(
            "{port: 80}",
            "{stepWeight: 10, sessionAffinity: {cookieName: canary, maxAge: 60, domain: shop.example, path: /app, sameSite: Lax, secure: true, httpOnly: true, partitioned: true}}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(90, 10))
            .unwrap();
        let split = &objects[0].data["spec"]["http"][1];
        assert_eq!(
            split["route"][1]["headers"]["response"]["add"]["Set-Cookie"],
            "canary=1; Max-Age=60; Domain=shop.example; HttpOnly; Partitioned; Path=/app; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn what_istios_string_match_cannot_say_is_written_as_a_regex() {
        let spec = spec(
            "{port: 80, match: [{uri: {suffix: .json}, headers: {x-a: {prefix: in}}, queryParams: {q: {prefix: 'a.b'}, r: {exact: c}}, withoutHeaders: {x-b: {suffix: bot}}}]}",
            "{stepWeight: 10}",
        );
        let objects = Istio
            .objects(&inputs_for(&spec), Traffic::weights(90, 10))
            .unwrap();
        assert_eq!(
            objects[0].data["spec"]["http"][0]["match"],
            json!([{
                "uri": {"regex": ".*\\.json"},
                "headers": {"x-a": {"prefix": "in"}},
                "queryParams": {"q": {"regex": "a\\.b.*"}, "r": {"exact": "c"}},
                "withoutHeaders": {"x-b": {"regex": ".*bot"}},
            }])
        );
    }
}
