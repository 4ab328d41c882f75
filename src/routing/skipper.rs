//! Skipper (`networking.k8s.io/v1` Ingress, read by Zalando's Skipper): the user's Ingress
//! (`spec.ingressRef`) is left as it is, sending its requests to the apex Service, and serin
//! keeps a clone of it, `<ingress>-canary` (Flagger's name, so a clone Flagger left is taken
//! over), in which every path to the apex Service goes to `<svc>-primary` and, as a second
//! path, to `<svc>-canary`. Skipper splits a route's requests between the backends of the
//! `zalando.org/backend-weights` annotation; the `Weight(100)` predicate in front of the
//! user's `zalando.org/skipper-predicate` makes the clone's routes win over the user's
//! Ingress while the canary has a share, and `False()` disables them while it has none, so
//! at rest the user's Ingress serves every request. Skipper's routes cannot tell requests
//! apart for the canary in Flagger, so A/B testing is not offered.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, ResourceExt};
use serde_json::{Value, json};

use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::nginx::{canary_clone, clone_source, clone_taken_over, gitops_tracking, ingress};
use super::{RouteError, RouteInputs, Router, SourceRef, weights};

/// The annotation holding the backends' weights.
pub const BACKEND_WEIGHTS: &str = "zalando.org/backend-weights";
/// The annotation holding the routes' predicates.
pub const PREDICATE: &str = "zalando.org/skipper-predicate";
/// Makes the clone's routes win over the user's Ingress for the same host and path.
const WEIGHT: &str = "Weight(100)";
/// Matches no request: the clone's routes are off while the canary has no share.
const DISABLED: &str = "False()";

/// The Canary field naming the Ingress to clone.
const FIELD: &str = "spec.ingressRef";

pub struct Skipper;

impl Router for Skipper {
    fn resources(&self) -> Vec<ApiResource> {
        vec![ingress()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let object = canary_clone(inputs, "skipper", split_spec, |source| {
            annotations(inputs, source, traffic)
        })?;
        Ok(vec![object])
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        clone_taken_over(inputs)
    }

    fn source(&self, inputs: &RouteInputs<'_>) -> Option<SourceRef> {
        clone_source(inputs)
    }
}

/// The source's spec with every path to the apex Service sent to the primary, and a copy of
/// it to the canary after the rule's paths; an Ingress with no such path has nothing to split.
fn split_spec(
    inputs: &RouteInputs<'_>,
    source_name: &str,
    source: &DynamicObject,
) -> Result<Value, RouteError> {
    let apex = inputs.service(ServiceRole::Apex);
    let primary = inputs.service(ServiceRole::Primary);
    let canary = inputs.service(ServiceRole::Canary);
    let mut spec = source.data.get("spec").cloned().unwrap_or(Value::Null);
    let mut split = 0;
    let rules = spec.get_mut("rules").and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let Some(paths) = rule
            .pointer_mut("/http/paths")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        let mut canaries = Vec::new();
        for path in paths.iter_mut() {
            if let Some(name) = path.pointer_mut("/backend/service/name")
                && name.as_str() == Some(apex.as_str())
            {
                *name = Value::String(primary.clone());
                let mut to_canary = path.clone();
                to_canary["backend"]["service"]["name"] = Value::String(canary.clone());
                canaries.push(to_canary);
                split += 1;
            }
        }
        paths.extend(canaries);
    }
    if split == 0 {
        return Err(RouteError::Source(format!(
            "the Ingress {}/{source_name} ({FIELD}) has no path whose backend is the Service {apex}: serin splits those paths between {primary} and {canary}; point the Ingress at {apex}",
            inputs.namespace
        )));
    }
    Ok(spec)
}

/// The source's annotations without GitOps tracking and serin's own, with the backend
/// weights of `traffic` and the predicate turning the clone's routes on or off.
fn annotations(
    inputs: &RouteInputs<'_>,
    source: &DynamicObject,
    traffic: Traffic,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = source
        .annotations()
        .iter()
        .filter(|(k, _)| !gitops_tracking(k) && !k.starts_with("serin.dev/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (primary, canary) = weights(traffic);
    let backends = json!({
        inputs.service(ServiceRole::Primary): primary,
        inputs.service(ServiceRole::Canary): canary,
    });
    out.insert(BACKEND_WEIGHTS.into(), backends.to_string());
    let first = if canary > 0 { WEIGHT } else { DISABLED };
    let user = out.get(PREDICATE).map(String::as_str).unwrap_or_default();
    out.insert(PREDICATE.into(), predicate(first, user));
    out
}

/// `first` in front of the user's predicates, without serin's own from an earlier write
/// (a taken-over clone keeps Flagger's or serin's earlier ones).
fn predicate(first: &str, user: &str) -> String {
    let kept = user
        .split("&&")
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != WEIGHT && *p != DISABLED);
    std::iter::once(first)
        .chain(kept)
        .collect::<Vec<_>>()
        .join(" && ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn user_ingress(predicate: Option<&str>) -> DynamicObject {
        let mut annotations = json!({
            "kubernetes.io/ingress.class": "skipper",
            "kustomize.toolkit.fluxcd.io/name": "apps",
        });
        if let Some(predicate) = predicate {
            annotations[PREDICATE] = json!(predicate);
        }
        serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "test", "labels": {"app": "podinfo"},
                "annotations": annotations},
            "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "podinfo", "port": {"number": 80}}}},
                {"path": "/docs", "pathType": "Prefix", "backend": {"service": {"name": "docs", "port": {"number": 80}}}},
            ]}}]},
        }))
        .unwrap()
    }

    fn clone(source: &DynamicObject, traffic: Traffic) -> DynamicObject {
        let mut canary = spec("{port: 80}", "{stepWeight: 10}");
        canary.ingress_ref = serde_yaml_ng::from_str("{name: web}").unwrap();
        let inputs = RouteInputs {
            source: Some(source),
            ..inputs_for(&canary)
        };
        let mut objects = Skipper.objects(&inputs, traffic).unwrap();
        assert_eq!(objects.len(), 1);
        objects.remove(0)
    }

    fn weights_of(object: &DynamicObject) -> Value {
        serde_json::from_str(&object.annotations()[BACKEND_WEIGHTS]).unwrap()
    }

    #[test]
    fn the_clone_splits_the_apex_paths_between_primary_and_canary() {
        let object = clone(&user_ingress(None), Traffic::weights(70, 30));
        assert_eq!(object.name_any(), "web-canary");
        let backends: Vec<&str> = object.data["spec"]["rules"][0]["http"]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["backend"]["service"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            backends,
            ["podinfo-primary", "docs", "podinfo-canary"],
            "other backends stay, the canary's path follows the rule's paths"
        );
        assert_eq!(
            weights_of(&object),
            json!({"podinfo-primary": 70, "podinfo-canary": 30})
        );
        assert_eq!(object.annotations()[PREDICATE], "Weight(100)");
        assert_eq!(
            object.annotations()["kubernetes.io/ingress.class"],
            "skipper"
        );
        assert!(
            !object
                .annotations()
                .contains_key("kustomize.toolkit.fluxcd.io/name")
        );
        let promoting = clone(&user_ingress(None), Traffic::weights(0, 100));
        assert_eq!(
            weights_of(&promoting),
            json!({"podinfo-primary": 0, "podinfo-canary": 100})
        );
    }

    #[test]
    fn at_rest_the_clone_is_off_and_the_users_predicates_stay_behind_serins() {
        let source = user_ingress(Some("Weight(100) && Header(\"X-Beta\", \"1\")"));
        let at_rest = clone(&source, Traffic::PRIMARY);
        assert_eq!(
            weights_of(&at_rest),
            json!({"podinfo-primary": 100, "podinfo-canary": 0})
        );
        assert_eq!(
            at_rest.annotations()[PREDICATE],
            "False() && Header(\"X-Beta\", \"1\")"
        );
        let mid = clone(&source, Traffic::weights(90, 10));
        assert_eq!(
            mid.annotations()[PREDICATE],
            "Weight(100) && Header(\"X-Beta\", \"1\")"
        );
    }

    #[test]
    fn an_ingress_without_a_path_to_the_apex_service_or_unread_is_refused() {
        let mut canary = spec("{port: 80, name: shop}", "{stepWeight: 10}");
        canary.ingress_ref = serde_yaml_ng::from_str("{name: web}").unwrap();
        let source = user_ingress(None);
        let inputs = RouteInputs {
            source: Some(&source),
            ..inputs_for(&canary)
        };
        let error = Skipper.objects(&inputs, Traffic::PRIMARY).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("has no path whose backend is the Service shop"),
            "{error}"
        );
        let error = Skipper
            .objects(&inputs_for(&canary), Traffic::PRIMARY)
            .unwrap_err();
        assert_eq!(
            error,
            RouteError::SourceNotRead("Ingress test/web (spec.ingressRef)".into())
        );
    }
}
