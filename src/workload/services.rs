//! The three Services of a canary: the apex `<svc>` that clients call, `<svc>-primary` and
//! `<svc>-canary` that routes target. Pure: the controller applies what this returns.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::CanarySpec;
use crate::api::canary::ObjectMetadata;

use super::primary::{PRIMARY_SUFFIX, TargetError, primary_selector};

/// Which pods a service selects and what it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// `<svc>`: what clients call; selects the primary pods (the mesh splits traffic).
    Apex,
    Primary,
    Canary,
}

impl ServiceRole {
    pub const ALL: [Self; 3] = [Self::Apex, Self::Primary, Self::Canary];

    pub fn name(self, spec: &CanarySpec) -> String {
        let apex = spec.service_name();
        match self {
            Self::Apex => apex.to_string(),
            Self::Primary => format!("{apex}{PRIMARY_SUFFIX}"),
            Self::Canary => format!("{apex}-canary"),
        }
    }
}

/// The desired Service for `role`, given the target's selector labels.
pub fn desired_service(
    spec: &CanarySpec,
    role: ServiceRole,
    target_name: &str,
    target_selector: &LabelSelector,
    live_primary: Option<&LabelSelector>,
    namespace: &str,
    owner: Option<OwnerReference>,
) -> Result<Service, TargetError> {
    // The apex and primary Services select what the primary's pods carry: the live primary's
    // selector when there is one (Flagger's primaries select on one label only).
    let selector = match (role, live_primary) {
        (ServiceRole::Canary, _) => target_selector.clone(),
        (ServiceRole::Apex | ServiceRole::Primary, Some(live)) => live.clone(),
        (ServiceRole::Apex | ServiceRole::Primary, None) => {
            primary_selector(target_name, target_selector)?
        }
    };
    let metadata = match role {
        ServiceRole::Apex => spec.service.apex.as_ref(),
        ServiceRole::Primary => spec.service.primary.as_ref(),
        ServiceRole::Canary => spec.service.canary.as_ref(),
    };
    let ObjectMetadata {
        mut labels,
        mut annotations,
    } = metadata.cloned().unwrap_or_default();
    let service = &spec.service;
    // Keys another tool owns are never set (unset keys are never touched: server-side apply).
    if let Some(unmanaged) = &service.unmanaged_metadata {
        labels.retain(|key, _| !unmanaged.labels.contains(key));
        annotations.retain(|key, _| !unmanaged.annotations.contains(key));
    }
    let target_port = match &service.target_port {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(IntOrString::Int),
        Some(serde_json::Value::String(s)) => Some(IntOrString::String(s.clone())),
        _ => None,
    };
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(role.name(spec)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels).filter(|l: &BTreeMap<_, _>| !l.is_empty()),
            annotations: Some(annotations).filter(|a: &BTreeMap<_, _>| !a.is_empty()),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            // Set at creation only: the API server refuses a change of clusterIP.
            cluster_ip: service.headless.then(|| "None".to_string()),
            traffic_distribution: service.traffic_distribution.clone(),
            selector: selector.match_labels,
            ports: Some(vec![ServicePort {
                name: Some(service.port_name.clone().unwrap_or_else(|| "http".into())),
                port: service.port,
                target_port: Some(target_port.unwrap_or(IntOrString::Int(service.port))),
                app_protocol: service.app_protocol.clone(),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Canary;

    fn spec(service: &str) -> CanarySpec {
        let canary: Canary = serde_yaml_ng::from_str(&format!(
            "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: podinfo}}\nspec:\n  targetRef: {{name: podinfo}}\n  service: {service}\n  analysis: {{stepWeight: 10}}\n"
        ))
        .unwrap();
        canary.spec
    }

    fn selector() -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "podinfo".into())])),
            match_expressions: None,
        }
    }

    #[test]
    fn apex_and_primary_select_primary_pods_and_canary_the_target_pods() {
        let spec = spec("{port: 9898}");
        let pick = |role| {
            let svc =
                desired_service(&spec, role, "podinfo", &selector(), None, "test", None).unwrap();
            (
                svc.metadata.name.unwrap(),
                svc.spec.unwrap().selector.unwrap()["app"].clone(),
            )
        };
        assert_eq!(
            pick(ServiceRole::Apex),
            ("podinfo".into(), "podinfo-primary".into())
        );
        assert_eq!(
            pick(ServiceRole::Primary),
            ("podinfo-primary".into(), "podinfo-primary".into())
        );
        assert_eq!(
            pick(ServiceRole::Canary),
            ("podinfo-canary".into(), "podinfo".into())
        );
    }

    #[test]
    fn ports_follow_the_service_spec() {
        let spec = spec(
            "{name: frontend, port: 80, targetPort: http, portName: web, appProtocol: http, apex: {labels: {x: y}}}",
        );
        let svc = desired_service(
            &spec,
            ServiceRole::Apex,
            "podinfo",
            &selector(),
            None,
            "test",
            None,
        )
        .unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("frontend"));
        assert_eq!(svc.metadata.labels.unwrap()["x"], "y");
        let port = &svc.spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.name.as_deref(), Some("web"));
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert_eq!(port.app_protocol.as_deref(), Some("http"));
    }

    #[test]
    fn the_target_port_defaults_to_the_port() {
        let spec = spec("{port: 9898}");
        let svc = desired_service(
            &spec,
            ServiceRole::Canary,
            "podinfo",
            &selector(),
            None,
            "test",
            None,
        )
        .unwrap();
        assert_eq!(
            svc.spec.unwrap().ports.unwrap()[0].target_port,
            Some(IntOrString::Int(9898))
        );
    }

    #[test]
    fn flaggers_headless_traffic_distribution_and_unmanaged_keys_are_honoured() {
        let spec = spec(
            "{port: 9898, headless: true, trafficDistribution: PreferClose, apex: {labels: {team: a, owner: b}, annotations: {note: x}}, unmanagedMetadata: {labels: [owner], annotations: [note]}}",
        );
        for role in ServiceRole::ALL {
            let svc =
                desired_service(&spec, role, "podinfo", &selector(), None, "test", None).unwrap();
            let service = svc.spec.unwrap();
            assert_eq!(service.cluster_ip.as_deref(), Some("None"), "{role:?}");
            assert_eq!(service.traffic_distribution.as_deref(), Some("PreferClose"));
        }
        let apex = desired_service(
            &spec,
            ServiceRole::Apex,
            "podinfo",
            &selector(),
            None,
            "test",
            None,
        )
        .unwrap();
        let labels = apex.metadata.labels.unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert!(
            !labels.contains_key("owner"),
            "an unmanaged label is not set"
        );
        assert!(
            apex.metadata.annotations.is_none(),
            "nor an unmanaged annotation"
        );
        let plain = desired_service(
            &self::spec("{port: 9898}"),
            ServiceRole::Apex,
            "podinfo",
            &selector(),
            None,
            "test",
            None,
        )
        .unwrap();
        assert_eq!(plain.spec.unwrap().cluster_ip, None);
    }

    #[test]
    fn apex_and_primary_select_what_a_live_primary_selects() {
        let spec = spec("{port: 9898}");
        let flaggers = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "podinfo-primary".into())])),
            match_expressions: None,
        };
        let mut two = selector();
        two.match_labels
            .as_mut()
            .unwrap()
            .insert("release".into(), "blue".into());
        for role in [ServiceRole::Apex, ServiceRole::Primary] {
            let svc = desired_service(&spec, role, "podinfo", &two, Some(&flaggers), "test", None)
                .unwrap();
            assert_eq!(
                svc.spec.unwrap().selector,
                flaggers.match_labels,
                "{role:?}"
            );
        }
        let canary = desired_service(
            &spec,
            ServiceRole::Canary,
            "podinfo",
            &two,
            Some(&flaggers),
            "test",
            None,
        )
        .unwrap();
        assert_eq!(canary.spec.unwrap().selector, two.match_labels);
    }
}
