//! What an Istio VirtualService cannot say of a Canary, refused by `provider::admit` for the
//! istio provider: an A/B match whose single-valued condition `service.match` sets already
//! (the two are ANDed into one HTTPMatchRequest, which holds one), hosts or gateways on a
//! delegate, and HTTP-only fields on a TCP service.

use super::canary::{CanarySpec, HttpMatch};
use super::validation::FieldError;

pub fn refused(spec: &CanarySpec) -> Vec<FieldError> {
    let mut refused = merged_match_problems(&spec.service.matches, &spec.analysis.matches);
    refused.extend(delegation_problems(spec));
    if spec.is_tcp() {
        refused.extend(tcp_problems(spec));
    }
    refused
}

/// The single-valued conditions of a match, and the map keys of its map conditions, as
/// `(condition, set)`: two matches ANDed into one cannot both set a single-valued condition,
/// nor the same key of a map differently.
fn single_values(m: &HttpMatch) -> [(&'static str, bool); 7] {
    [
        ("uri", m.uri.is_some()),
        ("method", m.method.is_some()),
        ("authority", m.authority.is_some()),
        ("scheme", m.scheme.is_some()),
        ("port", m.port.is_some()),
        ("sourceNamespace", m.source_namespace.is_some()),
        ("gateways", !m.gateways.is_empty()),
    ]
}

fn merged_match_problems(service: &[HttpMatch], analysis: &[HttpMatch]) -> Vec<FieldError> {
    let mut refused = Vec::new();
    for (i, a) in analysis.iter().enumerate() {
        for (j, s) in service.iter().enumerate() {
            for ((part, set), (_, by_service)) in single_values(a).into_iter().zip(single_values(s))
            {
                if set && by_service {
                    refused.push(FieldError::new(
                        format!("spec.analysis.match[{i}].{part}"),
                        format!("an Istio match holds one {part}, and spec.service.match[{j}].{part} already sets the one every route serves: match the canary's requests on headers, queryParams or sourceLabels"),
                    ));
                }
            }
            let maps = [
                ("headers", keys_differing(&a.headers, &s.headers)),
                (
                    "queryParams",
                    keys_differing(&a.query_params, &s.query_params),
                ),
                (
                    "sourceLabels",
                    keys_differing(&a.source_labels, &s.source_labels),
                ),
                (
                    "withoutHeaders",
                    keys_differing(&a.without_headers, &s.without_headers),
                ),
            ];
            for (part, keys) in maps {
                for key in keys {
                    refused.push(FieldError::new(
                        format!("spec.analysis.match[{i}].{part}.{key}"),
                        format!("spec.service.match[{j}].{part}.{key} matches it otherwise, and an Istio match holds one condition per key"),
                    ));
                }
            }
        }
    }
    refused
}

/// The keys both maps hold with different values.
fn keys_differing<'a, V: PartialEq>(
    a: &'a std::collections::BTreeMap<String, V>,
    b: &std::collections::BTreeMap<String, V>,
) -> Vec<&'a str> {
    a.iter()
        .filter(|(key, value)| b.get(*key).is_some_and(|other| other != *value))
        .map(|(key, _)| key.as_str())
        .collect()
}

/// A delegate VirtualService is reached through a root one (which names the hosts and
/// gateways); Istio ignores a delegate's own hosts and gateways, so asking for them is a
/// mistake to name rather than drop (Flagger refuses them too).
fn delegation_problems(spec: &CanarySpec) -> Vec<FieldError> {
    let service = &spec.service;
    if !service.delegation {
        return Vec::new();
    }
    [
        ("spec.service.hosts", !service.hosts.is_empty()),
        ("spec.service.gateways", !service.gateways.is_empty()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(field, _)| {
        FieldError::new(
            field,
            "a delegate VirtualService (service.delegation) has no hosts or gateways: set them on the root VirtualService that delegates to it",
        )
    })
    .collect()
}

/// An Istio TCP route splits connections by weight, matched by port, source labels, source
/// namespace and gateways only: what only an HTTP route can do is refused.
fn tcp_problems(spec: &CanarySpec) -> Vec<FieldError> {
    let service = &spec.service;
    let analysis = &spec.analysis;
    let mut refused: Vec<FieldError> = [
        ("spec.service.timeout", service.timeout.is_some()),
        ("spec.service.retries", service.retries.is_some()),
        ("spec.service.rewrite", service.rewrite.is_some()),
        ("spec.service.headers", service.headers.is_some()),
        ("spec.service.corsPolicy", service.cors_policy.is_some()),
        ("spec.analysis.match", !analysis.matches.is_empty()),
        ("spec.analysis.mirror", analysis.mirror),
        (
            "spec.analysis.sessionAffinity",
            analysis.session_affinity.is_some(),
        ),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(field, _)| {
        FieldError::new(
            field,
            "an Istio TCP route (appProtocol: tcp) splits connections by weight only: this is an HTTP route's",
        )
    })
    .collect();
    for (i, m) in service.matches.iter().enumerate() {
        let HttpMatch {
            headers,
            uri,
            method,
            query_params,
            source_labels: _,
            authority,
            gateways: _,
            ignore_uri_case,
            name,
            port: _,
            scheme,
            source_namespace: _,
            without_headers,
        } = m;
        let http_only = [
            ("headers", !headers.is_empty()),
            ("uri", uri.is_some()),
            ("method", method.is_some()),
            ("queryParams", !query_params.is_empty()),
            ("authority", authority.is_some()),
            ("ignoreUriCase", *ignore_uri_case),
            ("name", name.is_some()),
            ("scheme", scheme.is_some()),
            ("withoutHeaders", !without_headers.is_empty()),
        ];
        for (part, _) in http_only.into_iter().filter(|(_, set)| *set) {
            refused.push(FieldError::new(
                format!("spec.service.match[{i}].{part}"),
                "an Istio TCP route (appProtocol: tcp) matches connections by port, sourceLabels, sourceNamespace and gateways only",
            ));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::provider::{ProviderKind, TrafficProvider, admit};

    fn refused_fields(service: &str, analysis: &str) -> Vec<String> {
        let spec: CanarySpec = serde_yaml_ng::from_str(&format!(
            "{{targetRef: {{name: a}}, service: {service}, analysis: {analysis}}}"
        ))
        .unwrap();
        admit(TrafficProvider::of(ProviderKind::Istio), &spec)
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn an_ab_match_cannot_set_again_what_the_service_match_holds_once() {
        assert_eq!(
            refused_fields(
                "{port: 80, match: [{uri: {prefix: /a}, authority: {exact: a}, headers: {x: {exact: '1'}}}]}",
                "{iterations: 2, match: [{uri: {prefix: /b}, authority: {exact: b}, headers: {x: {exact: '2'}, y: {exact: '3'}}}]}",
            ),
            [
                "spec.analysis.match[0].uri",
                "spec.analysis.match[0].authority",
                "spec.analysis.match[0].headers.x"
            ]
        );
        // The same header value on both sides, or conditions on one side only, AND fine.
        assert_eq!(
            refused_fields(
                "{port: 80, match: [{uri: {prefix: /a}, headers: {x: {exact: '1'}}}]}",
                "{iterations: 2, match: [{scheme: {exact: https}, headers: {x: {exact: '1'}}, withoutHeaders: {z: {exact: '1'}}}]}",
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_delegate_names_no_hosts_or_gateways() {
        assert_eq!(
            refused_fields(
                "{port: 80, delegation: true, hosts: [a.example], gateways: [public]}",
                "{stepWeight: 10}",
            ),
            ["spec.service.hosts", "spec.service.gateways"]
        );
        assert_eq!(
            refused_fields("{port: 80, delegation: true}", "{stepWeight: 10}"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_tcp_route_splits_by_weight_and_matches_layer_four_only() {
        assert_eq!(
            refused_fields(
                "{port: 6379, appProtocol: tcp, timeout: 5s, match: [{port: 6379, sourceLabels: {a: b}, uri: {prefix: /}}]}",
                "{iterations: 2, mirror: true}",
            ),
            [
                "spec.service.timeout",
                "spec.analysis.mirror",
                "spec.service.match[0].uri"
            ]
        );
        assert_eq!(
            refused_fields(
                "{port: 6379, appProtocol: tcp, match: [{port: 6379, sourceNamespace: web}]}",
                "{stepWeight: 10}",
            ),
            Vec::<String>::new()
        );
    }
}
