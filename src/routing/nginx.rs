//! ingress-nginx (`networking.k8s.io/v1` Ingress): the user's Ingress (`spec.ingressRef`) is
//! left as it is, sending its requests to the apex Service (which selects the primary), and
//! serin keeps a clone of it, `<ingress>-canary`, whose backends are `<svc>-canary` and whose
//! annotations make ingress-nginx split traffic: `canary: "true"`, `canary-weight` (the
//! canary's percent, "0" at rest) and, for A/B testing, `canary-by-header`,
//! `canary-by-header-value` / `canary-by-header-pattern` and `canary-by-cookie`, under the
//! controller's `--ingress-annotations-prefix`. The clone keeps the user's ingress class:
//! ingress-nginx pairs a canary Ingress only with a main Ingress it serves itself.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, ResourceExt};
use serde_json::Value;

use crate::api::canary::HttpMatch;
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::{RouteError, RouteInputs, Router, SourceRef, resource, weights};

/// ingress-nginx's own annotation prefix (its `--annotations-prefix` default).
pub const DEFAULT_ANNOTATIONS_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// The Canary field naming the Ingress to clone.
const FIELD: &str = "spec.ingressRef";

pub struct Nginx;

pub fn ingress() -> ApiResource {
    resource("networking.k8s.io", "v1", "Ingress", "ingresses")
}

/// The name of the canary Ingress cloned from the Ingress `source`.
pub fn canary_ingress_name(source: &str) -> String {
    format!("{source}-canary")
}

impl Router for Nginx {
    fn resources(&self) -> Vec<ApiResource> {
        vec![ingress()]
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let object = canary_clone(inputs, "nginx", canary_spec, |source| {
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

/// The `<ingress>-canary` clone of the `spec.ingressRef` Ingress that the nginx and skipper
/// providers write: `spec` from the source's spec, the source's labels but GitOps tracking,
/// and the provider's `annotations`.
pub(crate) fn canary_clone(
    inputs: &RouteInputs<'_>,
    provider: &str,
    spec: impl FnOnce(&RouteInputs<'_>, &str, &DynamicObject) -> Result<Value, RouteError>,
    annotations: impl FnOnce(&DynamicObject) -> BTreeMap<String, String>,
) -> Result<DynamicObject, RouteError> {
    let Some(reference) = &inputs.spec.ingress_ref else {
        return Err(RouteError::Source(format!(
            "{FIELD}: the {provider} provider needs the Ingress to clone"
        )));
    };
    let Some(source) = inputs.source else {
        return Err(RouteError::SourceNotRead(format!(
            "Ingress {}/{} ({FIELD})",
            inputs.namespace, reference.name
        )));
    };
    let spec = spec(inputs, &reference.name, source)?;
    let mut object = inputs.object(&ingress(), canary_ingress_name(&reference.name), spec);
    let labels: BTreeMap<String, String> = source
        .labels()
        .iter()
        .filter(|(key, _)| !gitops_tracking(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    object.metadata.labels = (!labels.is_empty()).then_some(labels);
    object.metadata.annotations = Some(annotations(source));
    Ok(object)
}

/// The canary Ingress, taken over when it exists before serin (Flagger's name).
pub(crate) fn clone_taken_over(inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
    let reference = inputs.spec.ingress_ref.as_ref()?;
    Some((ingress(), canary_ingress_name(&reference.name)))
}

/// The `spec.ingressRef` Ingress the clone copies, read at every write.
pub(crate) fn clone_source(inputs: &RouteInputs<'_>) -> Option<SourceRef> {
    let reference = inputs.spec.ingress_ref.as_ref()?;
    Some(SourceRef {
        resource: ingress(),
        name: reference.name.clone(),
        namespace: None,
        field: FIELD,
    })
}

/// The source's spec with every path to the apex Service sent to the canary Service instead;
/// an Ingress with no such path has nothing to split.
fn canary_spec(
    inputs: &RouteInputs<'_>,
    source_name: &str,
    source: &DynamicObject,
) -> Result<Value, RouteError> {
    let apex = inputs.service(ServiceRole::Apex);
    let canary = inputs.service(ServiceRole::Canary);
    let mut spec = source.data.get("spec").cloned().unwrap_or(Value::Null);
    let mut redirected = 0;
    let rules = spec.get_mut("rules").and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let paths = rule
            .pointer_mut("/http/paths")
            .and_then(Value::as_array_mut);
        for path in paths.into_iter().flatten() {
            if let Some(name) = path.pointer_mut("/backend/service/name")
                && name.as_str() == Some(apex.as_str())
            {
                *name = Value::String(canary.clone());
                redirected += 1;
            }
        }
    }
    if redirected == 0 {
        return Err(RouteError::Source(format!(
            "the Ingress {}/{source_name} ({FIELD}) has no path whose backend is the Service {apex}: serin sends the canary's share of those paths to {canary}; point the Ingress at {apex}",
            inputs.namespace
        )));
    }
    Ok(spec)
}

/// The source's annotations without its canary ones and GitOps tracking, plus the canary
/// annotations expressing `traffic`.
fn annotations(
    inputs: &RouteInputs<'_>,
    source: &DynamicObject,
    traffic: Traffic,
) -> BTreeMap<String, String> {
    let key = |suffix: &str| format!("{}/{suffix}", inputs.annotations_prefix);
    // `canary`, `canary-weight`, `canary-by-*`: ours to write, never the user's to keep.
    let canary_prefix = key("canary");
    let mut out: BTreeMap<String, String> = source
        .annotations()
        .iter()
        .filter(|(k, _)| !k.starts_with(&canary_prefix) && !gitops_tracking(k))
        // serin's own (a takeover's `original-spec`) describe the user's object, not the clone.
        .filter(|(k, _)| !k.starts_with("serin.dev/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(key("canary"), "true".into());
    let (_, canary) = weights(traffic);
    out.insert(key("canary-weight"), canary.to_string());
    if traffic.matched_to_canary {
        for (suffix, value) in canary_by(&inputs.spec.analysis.matches) {
            out.insert(key(suffix), value);
        }
    }
    out
}

/// `analysis.match` as ingress-nginx's `canary-by-*` annotations (the provider table admits
/// one header, exact or regex, and one cookie matched by name): a `cookie` header names the
/// cookie whose value `always` sends a request to the canary, as Flagger reads it.
fn canary_by(matches: &[HttpMatch]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, value) in matches.iter().flat_map(|m| &m.headers) {
        if name.eq_ignore_ascii_case("cookie") {
            if let Some(cookie) = &value.exact {
                out.push(("canary-by-cookie", cookie.clone()));
            }
            continue;
        }
        out.push(("canary-by-header", name.clone()));
        if let Some(exact) = &value.exact {
            out.push(("canary-by-header-value", exact.clone()));
        }
        if let Some(regex) = &value.regex {
            out.push(("canary-by-header-pattern", regex.clone()));
        }
    }
    out
}

/// Metadata by which a GitOps tool recognises the objects it manages. The clone is serin's,
/// not in git: carried over, it would have Flux or Argo CD prune or "fix" it.
pub(crate) fn gitops_tracking(key: &str) -> bool {
    key.contains("toolkit.fluxcd.io")
        || key == "kubectl.kubernetes.io/last-applied-configuration"
        || key == "argocd.argoproj.io/tracking-id"
        // Argo CD's default tracking label before 3.0.
        || key == "app.kubernetes.io/instance"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::routing::tests::{inputs_for, spec};

    fn user_ingress() -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "name": "podinfo", "namespace": "test",
                "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps", "app.kubernetes.io/instance": "apps"},
                "annotations": {
                    "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                    "nginx.ingress.kubernetes.io/canary-by-header": "stale",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "kubernetes.io/ingress.class": "nginx",
                },
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["app.example.com"], "secretName": "app-tls"}],
                "rules": [{"host": "app.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "podinfo", "port": {"number": 80}}}},
                    {"path": "/docs", "pathType": "Prefix", "backend": {"service": {"name": "docs", "port": {"number": 80}}}},
                ]}}],
            },
            "status": {"loadBalancer": {}},
        }))
        .unwrap()
    }

    fn with_ref(analysis: &str) -> crate::api::CanarySpec {
        let mut spec = spec("{port: 80}", analysis);
        spec.ingress_ref = serde_yaml_ng::from_str("{kind: Ingress, name: podinfo}").unwrap();
        spec
    }

    fn canary_ingress(
        spec: &crate::api::CanarySpec,
        prefix: &str,
        traffic: Traffic,
    ) -> DynamicObject {
        let source = user_ingress();
        let inputs = RouteInputs {
            source: Some(&source),
            annotations_prefix: prefix,
            ..inputs_for(spec)
        };
        let mut objects = Nginx.objects(&inputs, traffic).unwrap();
        assert_eq!(objects.len(), 1);
        objects.remove(0)
    }

    #[test]
    fn the_clone_sends_the_apex_paths_to_the_canary_service_and_keeps_the_class() {
        let spec = with_ref("{stepWeight: 10}");
        let object = canary_ingress(&spec, DEFAULT_ANNOTATIONS_PREFIX, Traffic::weights(70, 30));
        assert_eq!(object.name_any(), "podinfo-canary");
        assert_eq!(object.types.as_ref().unwrap().kind, "Ingress");
        let paths = &object.data["spec"]["rules"][0]["http"]["paths"];
        assert_eq!(paths[0]["backend"]["service"]["name"], "podinfo-canary");
        assert_eq!(
            paths[1]["backend"]["service"]["name"], "docs",
            "other backends stay"
        );
        assert_eq!(object.data["spec"]["ingressClassName"], "nginx");
        assert_eq!(object.data["spec"]["tls"][0]["secretName"], "app-tls");
        assert!(object.data.get("status").is_none());
        let annotations = object.annotations();
        assert_eq!(annotations["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/canary-weight"],
            "30"
        );
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
            "8m"
        );
        assert_eq!(annotations["kubernetes.io/ingress.class"], "nginx");
        assert!(!annotations.contains_key("nginx.ingress.kubernetes.io/canary-by-header"));
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        let labels = object.labels();
        assert_eq!(
            labels.len(),
            1,
            "GitOps tracking labels are not copied: {labels:?}"
        );
        assert_eq!(labels["app"], "podinfo");
    }

    #[test]
    fn at_rest_the_canary_weight_is_zero_under_the_configured_prefix() {
        let spec = with_ref("{stepWeight: 10}");
        let object = canary_ingress(&spec, "custom.ingress.kubernetes.io", Traffic::PRIMARY);
        let annotations = object.annotations();
        assert_eq!(annotations["custom.ingress.kubernetes.io/canary"], "true");
        assert_eq!(
            annotations["custom.ingress.kubernetes.io/canary-weight"],
            "0"
        );
        // The user's own annotations under the default prefix are not serin's.
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/canary-by-header"],
            "stale"
        );
    }

    #[test]
    fn ab_testing_routes_by_one_header_and_one_cookie_while_matched() {
        let spec = with_ref(
            "{iterations: 5, match: [{headers: {x-canary: {regex: '^insider$'}}}, {headers: {cookie: {exact: canary}}}]}",
        );
        let matched = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let object = canary_ingress(&spec, DEFAULT_ANNOTATIONS_PREFIX, matched);
        let annotations = object.annotations();
        let get = |k: &str| {
            annotations
                .get(&format!("nginx.ingress.kubernetes.io/{k}"))
                .cloned()
        };
        assert_eq!(get("canary-by-header").as_deref(), Some("x-canary"));
        assert_eq!(
            get("canary-by-header-pattern").as_deref(),
            Some("^insider$")
        );
        assert_eq!(get("canary-by-header-value"), None);
        assert_eq!(get("canary-by-cookie").as_deref(), Some("canary"));
        assert_eq!(get("canary-weight").as_deref(), Some("0"));

        let spec = with_ref("{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}");
        let object = canary_ingress(&spec, DEFAULT_ANNOTATIONS_PREFIX, matched);
        assert_eq!(
            object.annotations()["nginx.ingress.kubernetes.io/canary-by-header-value"],
            "insider"
        );
        // Once the analysis ends, the matches go: no request reaches the canary.
        let object = canary_ingress(&spec, DEFAULT_ANNOTATIONS_PREFIX, Traffic::PRIMARY);
        assert!(
            object
                .annotations()
                .keys()
                .all(|k| !k.starts_with("nginx.ingress.kubernetes.io/canary-by")),
            "{:?}",
            object.annotations()
        );
    }

    #[test]
    fn an_ingress_without_a_path_to_the_apex_service_or_unread_is_refused() {
        let mut spec = with_ref("{stepWeight: 10}");
        spec.service.name = Some("web".into());
        let source = user_ingress();
        let inputs = RouteInputs {
            source: Some(&source),
            ..inputs_for(&spec)
        };
        let error = Nginx.objects(&inputs, Traffic::PRIMARY).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("has no path whose backend is the Service web"),
            "{error}"
        );
        let error = Nginx
            .objects(&inputs_for(&spec), Traffic::PRIMARY)
            .unwrap_err();
        assert_eq!(
            error,
            RouteError::SourceNotRead("Ingress test/podinfo (spec.ingressRef)".into())
        );
        assert_eq!(
            Nginx.taken_over(&inputs_for(&spec)).map(|(_, name)| name),
            Some("podinfo-canary".to_string())
        );
    }
}
