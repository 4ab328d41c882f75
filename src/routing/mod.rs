//! Traffic routing: one module per provider behind the [`Router`] trait. A router is pure: it
//! turns a traffic split into the objects that express it (an HTTPRoute, a VirtualService and
//! its DestinationRules, or the apex Service's selector); the controller applies them with
//! server-side apply under the field manager `serin`, so only the fields written here are
//! serin's and a GitOps tool re-applying the user's own fields does not fight it.

pub mod affinity;
pub mod apisix;
pub mod contour;
pub mod gatewayapi;
pub mod gloo;
pub mod grpcroute;
pub mod istio;
pub mod knative;
pub mod kubernetes;
pub mod kuma;
pub mod nginx;
pub mod placeholders;
pub mod skipper;
pub mod smi;
pub mod tcproute;
pub mod template;
pub mod traefik;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::api::CanarySpec;
use crate::api::provider::{
    KUMA_MESH_HTTP_ROUTE, ProviderKind, TRAEFIK_LEGACY_GROUP, TrafficProvider,
};
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

/// Annotation on a taken-over route holding its spec from before serin, to restore on deletion.
pub const ORIGINAL_ANNOTATION: &str = "serin.dev/original-spec";
/// Annotation on a taken-over route template object holding its annotations from before serin.
pub const ORIGINAL_ANNOTATIONS: &str = "serin.dev/original-annotations";

/// Escapes regular-expression metacharacters (RE2, as Envoy and Istio use), so a literal
/// (a path prefix, a cookie name) can sit inside a pattern.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The router of a provider of the table (`api::provider::TABLE`), for the version the
/// Canary names (`gatewayapi:v1beta1`'s routes, smi's TrafficSplit version, traefik's API
/// group).
pub fn router_for(provider: TrafficProvider) -> &'static dyn Router {
    match provider.kind {
        ProviderKind::Kubernetes => &kubernetes::Kubernetes,
        ProviderKind::GatewayApi if provider.version == Some("v1beta1") => {
            &gatewayapi::GatewayApi::V1BETA1
        }
        ProviderKind::GatewayApi => &gatewayapi::GatewayApi::V1,
        ProviderKind::Istio => &istio::Istio,
        ProviderKind::Nginx => &nginx::Nginx,
        ProviderKind::Contour => &contour::Contour,
        ProviderKind::Skipper => &skipper::Skipper,
        ProviderKind::Apisix => &apisix::Apisix,
        ProviderKind::Gloo => &gloo::Gloo,
        ProviderKind::Kuma if provider.version == Some(KUMA_MESH_HTTP_ROUTE) => {
            &kuma::Kuma::MESH_HTTP_ROUTE
        }
        ProviderKind::Kuma => &kuma::Kuma::TRAFFIC_ROUTE,
        ProviderKind::Traefik if provider.version == Some(TRAEFIK_LEGACY_GROUP) => {
            &traefik::Traefik::LEGACY
        }
        ProviderKind::Traefik => &traefik::Traefik::CURRENT,
        // Flagger's linkerd provider writes v1alpha1 splits; `smi` without a version is
        // refused by the provider table.
        ProviderKind::Linkerd => &smi::Smi::V1ALPHA1,
        ProviderKind::Smi => match provider.version {
            Some("v1alpha2") => &smi::Smi::V1ALPHA2,
            Some("v1alpha3") => &smi::Smi::V1ALPHA3,
            _ => &smi::Smi::V1ALPHA1,
        },
        ProviderKind::Knative => &knative::Knative,
        ProviderKind::Template => &template::Template,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "spec.provider: the kubernetes provider cannot split traffic by weight or by request; use blue/green (analysis.iterations without matches) or a mesh/gateway provider"
    )]
    CannotSplit,
    #[error("spec.service.gatewayRefs: the gatewayapi provider needs at least one Gateway")]
    NoGateway,
    #[error("the target Deployment has no usable selector: {0}")]
    Selector(String),
    /// The live object the router copies (`Router::source`) was not given to it.
    #[error("{0} was not read before building the route")]
    SourceNotRead(String),
    /// The live object the router copies cannot be used (nginx: no path to the apex Service).
    #[error("{0}")]
    Source(String),
    /// A field of the spec the route cannot express (refused by validation before).
    #[error("{0}")]
    Spec(String),
}

/// What a router needs to know besides the traffic split.
#[derive(Debug, Clone)]
pub struct RouteInputs<'a> {
    pub spec: &'a CanarySpec,
    pub namespace: &'a str,
    pub target_selector: &'a LabelSelector,
    /// The live primary's selector (immutable once created, and what the primary's pods
    /// carry: Flagger's primaries select on one label); None before there is a primary.
    pub primary_selector: Option<&'a LabelSelector>,
    /// Set on objects serin creates; None for objects it took over.
    pub owner: Option<OwnerReference>,
    /// The live object of [`Router::source`], read by the controller (nginx: the
    /// `spec.ingressRef` Ingress it clones); None for routers that build from the spec alone.
    pub source: Option<&'a DynamicObject>,
    /// The annotation prefix of ingress-nginx (`--ingress-annotations-prefix`).
    pub annotations_prefix: &'a str,
    /// The ingress class a Contour HTTPProxy names (`--ingress-class`); None: Contour's default.
    pub ingress_class: Option<&'a str>,
    /// The Kuma mesh (`kuma.io/mesh` on the Canary, else on the workload); None: `default`.
    pub mesh: Option<&'a str>,
}

impl RouteInputs<'_> {
    pub fn service(&self, role: ServiceRole) -> String {
        role.name(self.spec)
    }

    /// The route's name: the taken-over `routeRef`, or the apex service's name.
    pub fn route_name(&self) -> String {
        self.spec
            .route_ref
            .as_ref()
            .map_or_else(|| self.spec.service_name().to_string(), |r| r.name.clone())
    }

    fn metadata(&self, name: String) -> kube::api::ObjectMeta {
        kube::api::ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_string()),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..Default::default()
        }
    }

    /// A dynamic object of `kind` named `name` with `spec`.
    fn object(
        &self,
        resource: &ApiResource,
        name: String,
        spec: serde_json::Value,
    ) -> DynamicObject {
        DynamicObject {
            types: Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            }),
            metadata: self.metadata(name),
            data: serde_json::json!({ "spec": spec }),
        }
    }
}

/// A traffic provider. `objects` must be total and deterministic: the same inputs give the
/// same objects, so re-applying them is a no-op for the API server.
pub trait Router: Send + Sync {
    /// The kinds this provider writes, for discovery and RBAC.
    fn resources(&self) -> Vec<ApiResource>;

    /// The kinds written for this Canary: [`Router::resources`], or what a route template
    /// declares.
    fn resources_for(&self, _inputs: &RouteInputs<'_>) -> Vec<ApiResource> {
        self.resources()
    }

    /// The objects expressing `traffic`.
    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError>;

    /// The object whose pre-existing spec is kept when serin takes it over (the route).
    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)>;

    /// The live object `objects` copies, which the controller reads and passes as
    /// `RouteInputs::source` (nginx: the Ingress of `spec.ingressRef`).
    fn source(&self, _inputs: &RouteInputs<'_>) -> Option<SourceRef> {
        None
    }

    /// Whether a taken-over route's annotations are kept and put back with its spec (a route
    /// template's object may hold its weights in annotations, as an AWS Load Balancer
    /// Controller Ingress does).
    fn keeps_original_annotations(&self) -> bool {
        false
    }
}

/// A live object a router copies: its kind, name and the Canary field naming it.
#[derive(Debug, Clone)]
pub struct SourceRef {
    pub resource: ApiResource,
    pub name: String,
    /// Its namespace when not the Canary's (gloo's `upstreamRef` may name one).
    pub namespace: Option<String>,
    /// The field of the Canary naming it, for errors (`spec.ingressRef`).
    pub field: &'static str,
}

/// The API of `resource`'s objects in `namespace`, or cluster-wide for a cluster-scoped kind
/// (Kuma's TrafficRoute).
pub fn api(
    client: kube::Client,
    resource: &ApiResource,
    namespace: &str,
) -> kube::Api<DynamicObject> {
    if kuma::cluster_scoped(resource) {
        kube::Api::all_with(client, resource)
    } else {
        kube::Api::namespaced_with(client, namespace, resource)
    }
}

pub(crate) fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// (primary, canary) weights, clamped to what every provider accepts.
fn weights(traffic: Traffic) -> (i64, i64) {
    (
        i64::from(traffic.primary.clamp(0, 100)),
        i64::from(traffic.canary.clamp(0, 100)),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::LazyLock;

    use super::*;
    use crate::api::Canary;

    static SELECTOR: LazyLock<LabelSelector> = LazyLock::new(|| LabelSelector {
        match_labels: Some([("app".to_string(), "podinfo".to_string())].into()),
        match_expressions: None,
    });

    pub fn spec(service: &str, analysis: &str) -> CanarySpec {
        let canary: Canary = serde_yaml_ng::from_str(&format!(
            "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: podinfo}}\nspec:\n  targetRef: {{name: podinfo}}\n  service: {service}\n  analysis: {analysis}\n"
        ))
        .unwrap();
        canary.spec
    }

    pub fn inputs_for(spec: &CanarySpec) -> RouteInputs<'_> {
        RouteInputs {
            spec,
            namespace: "test",
            target_selector: &SELECTOR,
            primary_selector: None,
            owner: None,
            source: None,
            annotations_prefix: nginx::DEFAULT_ANNOTATIONS_PREFIX,
            ingress_class: None,
            mesh: None,
        }
    }
}
