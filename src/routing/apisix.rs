//! Apache APISIX (`apisix.apache.org/v2` ApisixRoute): the user's ApisixRoute
//! (`spec.routeRef`) is left as it is, and serin keeps a copy of its HTTP rule sending
//! requests to the apex Service, `<route>-<svc>-canary` (Flagger's name, so a copy Flagger
//! left is taken over). The copy's rule has the highest priority, so APISIX serves the rule's
//! requests from it rather than from the user's route, and two weighted backends:
//! `<svc>-primary` (the user's backend, renamed) and `<svc>-canary` (the same port,
//! granularity and subset). Flagger's apisix router splits by weight only: no A/B testing or
//! mirroring.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, ResourceExt};
use serde_json::{Value, json};

use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::nginx::gitops_tracking;
use super::{RouteError, RouteInputs, Router, SourceRef, resource, weights};

/// The Canary field naming the ApisixRoute to copy.
const FIELD: &str = "spec.routeRef";

/// The copy's rule priority: above any the user gives (Flagger's value), so APISIX matches
/// the copy's rule first.
const PRIORITY: i64 = 10000;

/// The backend fields kept from the user's backend on the canary's.
const BACKEND_FIELDS: [&str; 3] = ["servicePort", "resolveGranularity", "subset"];

pub struct Apisix;

pub fn apisix_route() -> ApiResource {
    resource("apisix.apache.org", "v2", "ApisixRoute", "apisixroutes")
}

/// The name of the copy of the ApisixRoute `source` for the apex Service `apex`.
pub fn canary_route_name(source: &str, apex: &str) -> String {
    format!("{source}-{apex}-canary")
}

impl Router for Apisix {
    fn resources(&self) -> Vec<ApiResource> {
        vec![apisix_route()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let Some(reference) = &inputs.spec.route_ref else {
            return Err(RouteError::Source(format!(
                "{FIELD}: the apisix provider needs the ApisixRoute to copy"
            )));
        };
        let Some(source) = inputs.source else {
            return Err(RouteError::SourceNotRead(format!(
                "ApisixRoute {}/{} ({FIELD})",
                inputs.namespace, reference.name
            )));
        };
        let rule = split_rule(inputs, &reference.name, source, traffic)?;
        let mut spec = json!({ "http": [rule] });
        if let Some(class) = source.data.pointer("/spec/ingressClassName") {
            spec["ingressClassName"] = class.clone();
        }
        let name = canary_route_name(&reference.name, &inputs.service(ServiceRole::Apex));
        let mut object = inputs.object(&apisix_route(), name, spec);
        let kept = |map: &BTreeMap<String, String>| -> Option<BTreeMap<String, String>> {
            let kept: BTreeMap<String, String> = map
                .iter()
                .filter(|(k, _)| !gitops_tracking(k) && !k.starts_with("serin.dev/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!kept.is_empty()).then_some(kept)
        };
        object.metadata.labels = kept(source.labels());
        object.metadata.annotations = kept(source.annotations());
        Ok(vec![object])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        let reference = inputs.spec.route_ref.as_ref()?;
        let apex = inputs.service(ServiceRole::Apex);
        Some((apisix_route(), canary_route_name(&reference.name, &apex)))
    }

    fn source(&self, inputs: &RouteInputs<'_>) -> Option<SourceRef> {
        let reference = inputs.spec.route_ref.as_ref()?;
        Some(SourceRef {
            resource: apisix_route(),
            name: reference.name.clone(),
            namespace: None,
            field: FIELD,
        })
    }
}

/// The source's first HTTP rule whose backend is the apex Service, at the highest priority,
/// with the primary and canary as its weighted backends.
fn split_rule(
    inputs: &RouteInputs<'_>,
    source_name: &str,
    source: &DynamicObject,
    traffic: Traffic,
) -> Result<Value, RouteError> {
    let apex = inputs.service(ServiceRole::Apex);
    let what = format!(
        "the ApisixRoute {}/{source_name} ({FIELD})",
        inputs.namespace
    );
    let rules = source
        .data
        .pointer("/spec/http")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let serves_apex = |rule: &&Value| {
        rule["backends"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["serviceName"] == apex.as_str()))
    };
    let Some(rule) = rules.iter().find(serves_apex) else {
        return Err(RouteError::Source(format!(
            "{what} has no http rule whose backend is the Service {apex}: serin copies that rule to split it between {} and {}; point a rule at {apex}",
            inputs.service(ServiceRole::Primary),
            inputs.service(ServiceRole::Canary),
        )));
    };
    let backends = rule["backends"].as_array().map_or(0, Vec::len);
    if backends != 1 {
        return Err(RouteError::Source(format!(
            "{what}: the http rule {} has {backends} backends; serin splits a rule with the Service {apex} as its only backend",
            rule["name"]
        )));
    }
    let (primary_weight, canary_weight) = weights(traffic);
    let mut primary = rule["backends"][0].clone();
    primary["serviceName"] = json!(inputs.service(ServiceRole::Primary));
    primary["weight"] = json!(primary_weight);
    let mut canary = json!({
        "serviceName": inputs.service(ServiceRole::Canary),
        "weight": canary_weight,
    });
    for field in BACKEND_FIELDS {
        if let Some(value) = primary.get(field) {
            canary[field] = value.clone();
        }
    }
    let mut rule = rule.clone();
    rule["priority"] = json!(PRIORITY);
    rule["backends"] = json!([primary, canary]);
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn user_route(backends: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
            "metadata": {"name": "web", "namespace": "test", "labels": {"app": "podinfo"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"ingressClassName": "apisix", "http": [
                {"name": "docs", "match": {"paths": ["/docs/*"]},
                    "backends": [{"serviceName": "docs", "servicePort": 80}]},
                {"name": "method", "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                    "plugins": [{"name": "prometheus", "enable": true}],
                    "backends": backends},
            ]},
        }))
        .unwrap()
    }

    fn copy(source: &DynamicObject, traffic: Traffic) -> Result<DynamicObject, RouteError> {
        let mut canary = spec("{port: 9898}", "{stepWeight: 10}");
        canary.route_ref = serde_yaml_ng::from_str("{name: web}").unwrap();
        let inputs = RouteInputs {
            source: Some(source),
            ..inputs_for(&canary)
        };
        Ok(Apisix.objects(&inputs, traffic)?.remove(0))
    }

    fn backends(object: &DynamicObject) -> Vec<(String, i64)> {
        object.data["spec"]["http"][0]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["serviceName"].as_str().unwrap().to_string(),
                    b["weight"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    fn of(primary: i64, canary: i64) -> Vec<(String, i64)> {
        vec![
            ("podinfo-primary".to_string(), primary),
            ("podinfo-canary".to_string(), canary),
        ]
    }

    #[test]
    fn the_copy_splits_the_apex_rule_at_rest_mid_step_and_promoted() {
        let source = user_route(
            json!([{"serviceName": "podinfo", "servicePort": 80, "resolveGranularity": "service"}]),
        );
        let at_rest = copy(&source, Traffic::PRIMARY).unwrap();
        assert_eq!(at_rest.name_any(), "web-podinfo-canary");
        assert_eq!(
            at_rest.types.as_ref().unwrap().api_version,
            "apisix.apache.org/v2"
        );
        let spec = &at_rest.data["spec"];
        assert_eq!(spec["ingressClassName"], "apisix");
        let rules = spec["http"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "only the rule to the apex is copied");
        assert_eq!(rules[0]["name"], "method");
        assert_eq!(rules[0]["priority"], PRIORITY);
        assert_eq!(rules[0]["match"]["hosts"][0], "app.example.com");
        assert_eq!(rules[0]["plugins"][0]["name"], "prometheus");
        assert_eq!(backends(&at_rest), of(100, 0));
        assert_eq!(
            rules[0]["backends"][1],
            json!({"serviceName": "podinfo-canary", "servicePort": 80, "resolveGranularity": "service", "weight": 0})
        );
        assert_eq!(at_rest.labels()["app"], "podinfo");
        assert!(at_rest.annotations().is_empty());
        let mid = copy(&source, Traffic::weights(60, 40)).unwrap();
        assert_eq!(backends(&mid), of(60, 40));
        let promoting = copy(&source, Traffic::weights(0, 100)).unwrap();
        assert_eq!(backends(&promoting), of(0, 100));
    }

    #[test]
    fn a_route_without_one_backend_to_the_apex_is_refused_by_name() {
        let two = user_route(json!([{"serviceName": "podinfo", "servicePort": 80},
            {"serviceName": "other", "servicePort": 80}]));
        let error = copy(&two, Traffic::PRIMARY).unwrap_err().to_string();
        assert!(error.contains("\"method\" has 2 backends"), "{error}");
        let none = user_route(json!([{"serviceName": "other", "servicePort": 80}]));
        let error = copy(&none, Traffic::PRIMARY).unwrap_err().to_string();
        assert!(
            error.contains("has no http rule whose backend is the Service podinfo"),
            "{error}"
        );
        let mut canary = spec("{port: 80}", "{stepWeight: 10}");
        canary.route_ref = serde_yaml_ng::from_str("{name: web}").unwrap();
        assert_eq!(
            Apisix
                .objects(&inputs_for(&canary), Traffic::PRIMARY)
                .unwrap_err(),
            RouteError::SourceNotRead("ApisixRoute test/web (spec.routeRef)".into())
        );
        assert_eq!(
            Apisix.taken_over(&inputs_for(&canary)).map(|(_, n)| n),
            Some("web-podinfo-canary".into())
        );
    }
}
