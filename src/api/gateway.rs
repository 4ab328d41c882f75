//! What the Gateway API can say of a Canary's `service` block beyond the provider table's
//! capabilities: which parents a route attaches to (a Gateway, or a Service for GAMMA mesh
//! routing), Istio-shaped `corsPolicy` read as Gateway API's CORS filter, the two timeouts,
//! the rewrite type and the mirrors, and which route kind serves the service's protocol
//! (HTTPRoute, GRPCRoute for `appProtocol: grpc`, TCPRoute for `tcp`). `admit` refuses what the
//! router could not write, and the router converts with the same functions, so the two never
//! disagree.

use serde_json::{Map, Value, json};

use super::canary::{CanarySpec, GatewayRef, HttpMatch};
use super::duration::Duration;
use super::validation::FieldError;

/// The API group of Gateway API's kinds, and of a parent Gateway.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// What a route attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// A Gateway: north-south traffic entering through it.
    Gateway,
    /// A Service (GAMMA): mesh traffic addressed to it, routed by the mesh's proxies.
    Service,
}

/// The route kind serving the apex service's `appProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTPRoute: any other (or no) appProtocol.
    Http,
    /// GRPCRoute (`gateway.networking.k8s.io/v1`, Gateway API 1.1+).
    Grpc,
    /// TCPRoute (`gateway.networking.k8s.io/v1alpha2`, the experimental channel).
    Tcp,
}

pub fn protocol(spec: &CanarySpec) -> Protocol {
    match spec.service.app_protocol.as_deref() {
        Some(p) if p.eq_ignore_ascii_case("grpc") => Protocol::Grpc,
        Some(p) if p.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
        _ => Protocol::Http,
    }
}

/// The parent a `gatewayRefs` entry names, or why it names none serin can attach to.
pub fn parent(reference: &GatewayRef) -> Result<Parent, String> {
    let group = reference.group.as_deref();
    match reference.kind.as_deref().unwrap_or("Gateway") {
        "Gateway" if group.is_none_or(|g| g == GROUP) => Ok(Parent::Gateway),
        "Gateway" => Err(format!("a Gateway is of group {GROUP}, not {group:?}")),
        // Gateway API spells the core group "", Flagger's and Linkerd's tutorials `core`.
        "Service" if matches!(group, Some("" | "core")) => Ok(Parent::Service),
        "Service" => Err(
            "a Service parent (GAMMA mesh routing) needs group: core (or \"\"), the core API group"
                .to_string(),
        ),
        other => Err(format!(
            "serin attaches routes to a Gateway or, for mesh routing (GAMMA), a Service, not a {other:?}"
        )),
    }
}

/// Every problem of the `service` block for the gatewayapi provider, by field.
pub fn refused(spec: &CanarySpec) -> Vec<FieldError> {
    let service = &spec.service;
    let mut refused = Vec::new();
    for (i, reference) in service.gateway_refs.iter().enumerate() {
        refused.extend(parent_problems(i, reference));
    }
    if let (Some(backend), Some(request)) = (service.backend_timeout, service.timeout)
        && backend > request
    {
        refused.push(FieldError::new(
            "spec.service.backendTimeout",
            format!(
                "a backend request cannot outlast the whole request: {backend} is longer than timeout {request}"
            ),
        ));
    }
    if let Some(rewrite) = &service.rewrite {
        refused.extend(rewrite_problems(rewrite, &service.matches));
    }
    if let Some(cors) = &service.cors_policy
        && let Err(errors) = cors_filter(cors)
    {
        refused.extend(errors);
    }
    for (i, mirror) in service.mirror.iter().enumerate() {
        let backend = &mirror.backend_ref;
        let is_service = backend.kind.as_deref().is_none_or(|k| k == "Service")
            && backend
                .group
                .as_deref()
                .is_none_or(|g| g.is_empty() || g == "core");
        if is_service && backend.port.is_none() {
            refused.push(FieldError::new(
                format!("spec.service.mirror[{i}].backendRef.port"),
                "a Service backend needs its port",
            ));
        }
    }
    refused.extend(merged_match_problems(
        &service.matches,
        &spec.analysis.matches,
    ));
    refused.extend(protocol_problems(spec));
    refused
}

/// What a GRPCRoute or a TCPRoute cannot say of what an HTTPRoute can.
fn protocol_problems(spec: &CanarySpec) -> Vec<FieldError> {
    let service = &spec.service;
    let analysis = &spec.analysis;
    let (route, http_only): (&str, &[(&str, bool)]) = match protocol(spec) {
        Protocol::Http => return Vec::new(),
        Protocol::Grpc => (
            "a GRPCRoute (appProtocol: grpc)",
            &[
                ("spec.service.timeout", service.timeout.is_some()),
                (
                    "spec.service.backendTimeout",
                    service.backend_timeout.is_some(),
                ),
                ("spec.service.rewrite", service.rewrite.is_some()),
                ("spec.service.corsPolicy", service.cors_policy.is_some()),
                (
                    "spec.analysis.sessionAffinity",
                    analysis.session_affinity.is_some(),
                ),
            ],
        ),
        Protocol::Tcp => (
            "a TCPRoute (appProtocol: tcp)",
            &[
                ("spec.service.timeout", service.timeout.is_some()),
                (
                    "spec.service.backendTimeout",
                    service.backend_timeout.is_some(),
                ),
                ("spec.service.rewrite", service.rewrite.is_some()),
                ("spec.service.corsPolicy", service.cors_policy.is_some()),
                ("spec.service.headers", service.headers.is_some()),
                ("spec.service.mirror", !service.mirror.is_empty()),
                ("spec.service.hosts", !service.hosts.is_empty()),
                ("spec.service.match", !service.matches.is_empty()),
                ("spec.analysis.match", !analysis.matches.is_empty()),
                ("spec.analysis.mirror", analysis.mirror),
                (
                    "spec.analysis.sessionAffinity",
                    analysis.session_affinity.is_some(),
                ),
            ],
        ),
    };
    let mut refused: Vec<FieldError> = http_only
        .iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| {
            FieldError::new(
                *field,
                format!("{route} cannot say this; it is HTTPRoute's"),
            )
        })
        .collect();
    if protocol(spec) == Protocol::Grpc {
        // gRPC requests are matched by header (and method, which Flagger's matches cannot
        // name); a path, HTTP method or query parameter means nothing to a GRPCRoute.
        for (path, matches) in [
            ("spec.service.match", &service.matches),
            ("spec.analysis.match", &analysis.matches),
        ] {
            for (i, m) in matches.iter().enumerate() {
                for (part, set) in [
                    ("uri", m.uri.is_some()),
                    ("method", m.method.is_some()),
                    ("queryParams", !m.query_params.is_empty()),
                ] {
                    if set {
                        refused.push(FieldError::new(
                            format!("{path}[{i}].{part}"),
                            format!("{route} matches gRPC requests by headers only"),
                        ));
                    }
                }
            }
        }
    }
    refused
}

fn parent_problems(i: usize, reference: &GatewayRef) -> Vec<FieldError> {
    let path = format!("spec.service.gatewayRefs[{i}]");
    let mut refused = Vec::new();
    if let Err(reason) = parent(reference) {
        let known_kind = reference
            .kind
            .as_deref()
            .is_none_or(|k| k == "Gateway" || k == "Service");
        let field = if known_kind { "group" } else { "kind" };
        refused.push(FieldError::new(format!("{path}.{field}"), reason));
    }
    if let Some(port) = reference.port
        && !(1..=65535).contains(&port)
    {
        refused.push(FieldError::new(
            format!("{path}.port"),
            format!("must be between 1 and 65535, got {port}"),
        ));
    }
    if let Some(section) = &reference.section_name
        && !is_section_name(section)
    {
        refused.push(FieldError::new(
            format!("{path}.sectionName"),
            format!(
                "{section:?} is not a listener or port name (lower-case letters, digits, '-' and '.', at most 253)"
            ),
        ));
    }
    refused
}

/// Gateway API's SectionName: a DNS-1123 subdomain.
fn is_section_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 253
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// The two path modifiers of Gateway API's URLRewrite filter.
pub const FULL_PATH: &str = "ReplaceFullPath";
pub const PREFIX_MATCH: &str = "ReplacePrefixMatch";

fn rewrite_problems(
    rewrite: &super::canary::HttpRewrite,
    matches: &[HttpMatch],
) -> Vec<FieldError> {
    let mut refused = Vec::new();
    match rewrite.kind.as_deref() {
        None | Some(FULL_PATH) => {}
        Some(PREFIX_MATCH) => {
            // Gateway API replaces the prefix a PathPrefix match matched: a rule matching its
            // path otherwise has no prefix to replace, and gateways reject the route.
            if let Some(i) = matches
                .iter()
                .position(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_none()))
            {
                refused.push(FieldError::new(
                    "spec.service.rewrite.type",
                    format!(
                        "ReplacePrefixMatch replaces a matched path prefix, and spec.service.match[{i}].uri matches the path otherwise"
                    ),
                ));
            }
        }
        Some(other) => refused.push(FieldError::new(
            "spec.service.rewrite.type",
            format!("expected {FULL_PATH} or {PREFIX_MATCH}, got {other:?}"),
        )),
    }
    if rewrite.kind.is_some() && rewrite.uri.is_none() {
        refused.push(FieldError::new(
            "spec.service.rewrite.type",
            "says how uri rewrites the path, and uri is not set",
        ));
    }
    refused
}

/// An A/B match is ANDed with each `service.match`; one HTTPRouteMatch holds one path and
/// one method, so both may not set them.
fn merged_match_problems(service: &[HttpMatch], analysis: &[HttpMatch]) -> Vec<FieldError> {
    let mut refused = Vec::new();
    let service_uri = service.iter().position(|m| m.uri.is_some());
    let service_method = service.iter().position(|m| m.method.is_some());
    for (i, m) in analysis.iter().enumerate() {
        for (part, set, by) in [
            ("uri", m.uri.is_some(), service_uri),
            ("method", m.method.is_some(), service_method),
        ] {
            if let (true, Some(j)) = (set, by) {
                refused.push(FieldError::new(
                    format!("spec.analysis.match[{i}].{part}"),
                    format!(
                        "a Gateway API match holds one {part}, and spec.service.match[{j}].{part} already sets the one every rule serves: match on headers or queryParams here"
                    ),
                ));
            }
        }
    }
    refused
}

/// Istio's `corsPolicy` (as Flagger's Canary carries it) as Gateway API's CORS filter
/// (`HTTPCORSFilter`, Gateway API 1.2+): `allowOrigin` and exact `allowOrigins` become
/// `allowOrigins`, `maxAge` a number of seconds; what the filter cannot say is refused.
pub fn cors_filter(cors: &Value) -> Result<Value, Vec<FieldError>> {
    const PATH: &str = "spec.service.corsPolicy";
    let Some(policy) = cors.as_object() else {
        return Err(vec![FieldError::new(PATH, "expected an object")]);
    };
    let mut out = Map::new();
    let mut refused = Vec::new();
    let mut origins = Vec::new();
    for (key, value) in policy {
        let field = format!("{PATH}.{key}");
        match key.as_str() {
            "allowOrigin" => match strings(value) {
                Some(list) => origins.extend(list),
                None => refused.push(FieldError::new(field, "expected a list of origins")),
            },
            "allowOrigins" => match exact_origins(value, &field) {
                Ok(list) => origins.extend(list),
                Err(error) => refused.push(error),
            },
            "allowMethods" | "allowHeaders" | "exposeHeaders" => match strings(value) {
                Some(list) => {
                    out.insert(key.clone(), json!(list));
                }
                None => refused.push(FieldError::new(field, "expected a list of strings")),
            },
            "allowCredentials" => match value.as_bool() {
                Some(allow) => {
                    out.insert(key.clone(), json!(allow));
                }
                None => refused.push(FieldError::new(field, "expected true or false")),
            },
            "maxAge" => match value.as_str().map(Duration::parse) {
                Some(Ok(age)) => {
                    out.insert(key.clone(), json!(age.as_std().as_secs()));
                }
                _ => refused.push(FieldError::new(
                    field,
                    format!("expected a duration such as 24h, got {value}"),
                )),
            },
            _ => refused.push(FieldError::new(
                field,
                "Gateway API's CORS filter has no such setting (it takes allowOrigin(s), allowMethods, allowHeaders, exposeHeaders, allowCredentials, maxAge)",
            )),
        }
    }
    if !origins.is_empty() {
        out.insert("allowOrigins".into(), json!(origins));
    }
    if refused.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(refused)
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Istio's `allowOrigins` string matches: Gateway API takes origins (with `*` wildcards), so
/// an exact match is one, and a prefix or regex is refused.
fn exact_origins(value: &Value, field: &str) -> Result<Vec<String>, FieldError> {
    let Some(list) = value.as_array() else {
        return Err(FieldError::new(field, "expected a list of matches"));
    };
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            m.get("exact")
                .and_then(Value::as_str)
                .filter(|_| m.as_object().is_some_and(|o| o.len() == 1))
                .map(str::to_string)
                .ok_or_else(|| {
                    FieldError::new(
                        format!("{field}[{i}]"),
                        "Gateway API's CORS filter matches origins exactly (with * wildcards): write {exact: ORIGIN}",
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(service: &str, analysis: &str) -> CanarySpec {
        serde_yaml_ng::from_str(&format!(
            "{{targetRef: {{name: a}}, service: {service}, analysis: {analysis}}}"
        ))
        .unwrap()
    }

    fn fields(service: &str, analysis: &str) -> Vec<String> {
        refused(&spec(service, analysis))
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_service_parent_is_mesh_routing_and_nonsense_parents_are_named() {
        let refs = |r: &str| spec(&format!("{{port: 80, gatewayRefs: [{r}]}}"), "{}");
        let first = |r: &str| parent(&refs(r).service.gateway_refs[0]);
        assert_eq!(first("{name: gw}"), Ok(Parent::Gateway));
        assert_eq!(
            first("{name: podinfo, group: core, kind: Service, port: 9898}"),
            Ok(Parent::Service)
        );
        assert_eq!(
            first("{name: podinfo, group: '', kind: Service}"),
            Ok(Parent::Service)
        );
        assert_eq!(
            fields(
                "{port: 80, gatewayRefs: [{name: a, kind: Service}, {name: b, kind: Ingress}, {name: c, group: core}, {name: d, port: 0, sectionName: Http_1}]}",
                "{}"
            ),
            [
                "spec.service.gatewayRefs[0].group",
                "spec.service.gatewayRefs[1].kind",
                "spec.service.gatewayRefs[2].group",
                "spec.service.gatewayRefs[3].port",
                "spec.service.gatewayRefs[3].sectionName",
            ]
        );
    }

    #[test]
    fn cors_policy_becomes_the_cors_filter_and_what_it_cannot_say_is_refused() {
        let cors = json!({"allowOrigins": [{"exact": "https://a.example"}], "allowOrigin": ["https://*.b.example"],
            "allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"], "exposeHeaders": ["x-b"],
            "allowCredentials": true, "maxAge": "24h"});
        assert_eq!(
            cors_filter(&cors).unwrap(),
            json!({"allowOrigins": ["https://*.b.example", "https://a.example"],
                "allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"], "exposeHeaders": ["x-b"],
                "allowCredentials": true, "maxAge": 86400})
        );
        let errors = cors_filter(&json!({"allowOrigins": [{"regex": ".*"}], "maxAge": "soon", "unmatchedPreflights": "FORWARD"})).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.service.corsPolicy.allowOrigins[0]",
                "spec.service.corsPolicy.maxAge",
                "spec.service.corsPolicy.unmatchedPreflights",
            ]
        );
    }

    #[test]
    fn timeouts_rewrites_mirrors_and_merged_matches_are_checked_by_field() {
        assert_eq!(
            fields("{port: 80, timeout: 5s, backendTimeout: 10s}", "{}"),
            ["spec.service.backendTimeout"]
        );
        assert!(fields("{port: 80, timeout: 10s, backendTimeout: 5s}", "{}").is_empty());
        assert_eq!(
            fields(
                "{port: 80, match: [{uri: {exact: /a}}], rewrite: {uri: /b, type: ReplacePrefixMatch}}",
                "{}"
            ),
            ["spec.service.rewrite.type"]
        );
        assert_eq!(
            fields("{port: 80, rewrite: {uri: /b, type: Full}}", "{}"),
            ["spec.service.rewrite.type"]
        );
        assert_eq!(
            fields("{port: 80, mirror: [{backendRef: {name: shadow}}]}", "{}"),
            ["spec.service.mirror[0].backendRef.port"]
        );
        assert!(
            fields(
                "{port: 80, mirror: [{backendRef: {name: bucket, group: example.io, kind: Sink}}]}",
                "{}"
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                "{port: 80, match: [{uri: {prefix: /api}}]}",
                "{iterations: 2, match: [{uri: {prefix: /v2}}, {headers: {x: {exact: y}}}]}"
            ),
            ["spec.analysis.match[0].uri"]
        );
    }

    #[test]
    fn grpc_and_tcp_refuse_what_their_routes_cannot_say() {
        assert_eq!(
            fields(
                "{port: 80, appProtocol: grpc, timeout: 5s, headers: {request: {set: {x: y}}}}",
                "{iterations: 2, match: [{headers: {x: {exact: y}}, uri: {prefix: /a}}]}"
            ),
            ["spec.service.timeout", "spec.analysis.match[0].uri"]
        );
        assert!(
            fields(
                "{port: 80, appProtocol: GRPC, mirror: [{backendRef: {name: s, port: 80}}]}",
                "{iterations: 2, mirror: true, match: [{headers: {x: {regex: 'y.*'}}}]}"
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                "{port: 80, appProtocol: tcp, hosts: [a.example]}",
                "{iterations: 2, match: [{headers: {x: {exact: y}}}]}"
            ),
            ["spec.service.hosts", "spec.analysis.match"]
        );
        assert!(fields("{port: 80, appProtocol: tcp}", "{stepWeight: 10}").is_empty());
    }
}
