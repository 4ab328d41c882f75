//! Istio (`networking.istio.io/v1beta1`, served by every Istio since 1.5): a VirtualService
//! named after the apex service with weighted routes to the primary and canary hosts (plus a
//! matching route in front for A/B testing, and mirror/mirrorPercentage for blue/green
//! mirroring), and one DestinationRule per host carrying `service.trafficPolicy`.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::api::canary::HttpMatch;
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, affinity, resource, weights};

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
        let apex = inputs.service(ServiceRole::Apex);
        let primary_host = inputs.service(ServiceRole::Primary);
        let canary_host = inputs.service(ServiceRole::Canary);
        let destination = |host: &str, weight: i64| json!({"destination": {"host": host, "port": {"number": service.port}}, "weight": weight});
        let (primary, canary) = weights(traffic);
        let mut main = route_settings(inputs);
        if !service.matches.is_empty() {
            main["match"] = matches(&service.matches);
        }
        main["route"] = json!([
            destination(&primary_host, primary),
            destination(&canary_host, canary)
        ]);
        if let Some(percent) = traffic.mirror {
            main["mirror"] = json!({"host": canary_host, "port": {"number": service.port}});
            main["mirrorPercentage"] = json!({"value": f64::from(percent.clamp(0, 100))});
        }
        let mut http = Vec::new();
        if let Some(cookies) = affinity::cookies(inputs.spec) {
            // Istio takes the first route that matches: sticky routes go before the split.
            let sticky = |name: &str, primary_weight: i64, canary_weight: i64| {
                let mut route = route_settings(inputs);
                route["match"] = with_cookie(&service.matches, name);
                route["route"] = json!([
                    destination(&primary_host, primary_weight),
                    destination(&canary_host, canary_weight)
                ]);
                route
            };
            if canary > 0 {
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
        }
        if traffic.matched_to_canary {
            let mut ab = route_settings(inputs);
            ab["match"] = matches(&inputs.spec.analysis.matches);
            ab["route"] = json!([
                destination(&primary_host, 0),
                destination(&canary_host, 100)
            ]);
            http.push(ab);
        }
        http.push(main);
        let mut hosts = vec![apex.clone()];
        hosts.extend(service.hosts.iter().cloned());
        let mut spec = json!({"hosts": hosts, "http": http});
        if !service.gateways.is_empty() {
            spec["gateways"] = json!(service.gateways);
        }
        let mut objects = vec![inputs.object(&virtual_service(), inputs.route_name(), spec)];
        for host in [primary_host, canary_host] {
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

/// Flagger's match is Istio's HTTPMatchRequest already.
fn matches(list: &[HttpMatch]) -> Value {
    serde_json::to_value(list).unwrap_or(Value::Null)
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
}
