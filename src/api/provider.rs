//! The traffic provider of a Canary: `spec.provider` (or the controller's `--mesh-provider`)
//! parsed once into a [`TrafficProvider`], and the provider table saying what each provider
//! can express. The controller, `serin check`, `serin simulate` and `serin migrate` all ask
//! this table through [`admit`], so a Canary is refused by all of them or by none, with the
//! same words. A new provider is one [`ProviderKind`] variant, one row in [`TABLE`], and its
//! router (`routing::router_for`) and built-in queries (`metrics::builtin`), which the
//! compiler asks for by exhaustive matches.

use std::fmt;

use super::canary::{CanarySpec, HttpMatch, StringMatch};
use super::validation::FieldError;

/// The traffic providers serin routes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// Blue/green by Service selectors: no weights, the apex switches at promotion.
    Kubernetes,
    /// Gateway API HTTPRoutes.
    GatewayApi,
    /// Istio VirtualServices and DestinationRules.
    Istio,
    /// ingress-nginx: a `<ingress>-canary` Ingress cloned from `spec.ingressRef`.
    Nginx,
    /// Contour: an HTTPProxy with weighted services.
    Contour,
    /// Traefik: a weighted (or mirroring) TraefikService.
    Traefik,
    /// Linkerd's SMI TrafficSplit (v1alpha1, as Flagger writes it).
    Linkerd,
    /// An SMI TrafficSplit of the version named (`smi:v1alpha1|v1alpha2|v1alpha3`).
    Smi,
    /// Skipper: a `<ingress>-canary` Ingress cloned from `spec.ingressRef`, split by the
    /// `zalando.org/backend-weights` annotation.
    Skipper,
    /// Apache APISIX: a copy of the `spec.routeRef` ApisixRoute's rule with weighted backends.
    Apisix,
    /// Gloo Edge: a RouteTable splitting between an Upstream each for primary and canary.
    Gloo,
    /// Kuma: a TrafficRoute as Flagger writes it (`kuma`), or a MeshHTTPRoute
    /// (`kuma:meshhttproute`).
    Kuma,
    /// Knative: the target Knative Service's own `spec.traffic`, split between its promoted
    /// revision and its latest one.
    Knative,
    /// The objects of the Canary's `spec.service.routeTemplate`, rendered at every step.
    Template,
}

/// A provider as a Canary names it: the kind and the `:version` suffix Flagger allows
/// (`gatewayapi:v1beta1`, `smi:v1alpha3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficProvider {
    pub kind: ProviderKind,
    pub version: Option<&'static str>,
}

/// The controller's `--mesh-provider` default (also `serin check`'s and `serin simulate`'s),
/// for Canaries that name no provider.
pub const DEFAULT_NAME: &str = "kubernetes";
pub const DEFAULT: TrafficProvider = TrafficProvider::of(ProviderKind::Kubernetes);

/// What one provider can express. A feature a provider lacks is refused at validation, never
/// accepted and dropped (a dropped A/B match would send every user to the canary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Canary strategy: traffic split by weight.
    pub weights: bool,
    /// Request matches for A/B testing (and `service.match`).
    pub matches: MatchSupport,
    /// Blue/green mirroring (`analysis.mirror`).
    pub mirroring: bool,
    /// Cookie-based session affinity during a canary rollout.
    pub session_affinity: bool,
    /// Routing of `appProtocol: tcp` services.
    pub tcp: bool,
    /// `service` fields written to the route; the others are refused while they are set.
    pub route_fields: &'static [RouteField],
}

/// Which parts of an HTTP match a provider can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchSupport {
    pub headers: bool,
    pub uri: bool,
    /// Any method match (false: exact methods only, the Gateway API's).
    pub method_patterns: bool,
    pub method: bool,
    pub query_params: bool,
    pub source_labels: bool,
    /// Istio's own conditions: authority, gateways, ignoreUriCase, name, port, scheme,
    /// sourceNamespace, withoutHeaders.
    pub istio_conditions: bool,
    /// How the matches may combine.
    pub shape: MatchShape,
}

/// How a provider's matches combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchShape {
    /// Any number of matches, each an AND of its conditions, ORed together; `service.match`
    /// restricts the route.
    Any,
    /// ingress-nginx's canary annotations: one header (`canary-by-header`, exact value or
    /// regex) and one cookie (`canary-by-cookie`, a `cookie` header matched exactly by the
    /// cookie's name, Flagger's reading) for all matches together, each in a match of its own
    /// (nginx ORs them); no `service.match`: the Ingress of `spec.ingressRef` says which
    /// requests are served.
    CanaryAnnotations,
    /// Contour's HTTPProxy routes: like `Any`, but a route has one path condition, so a `uri`
    /// in `service.match` and one in `analysis.match` cannot both hold.
    OnePath,
}

impl MatchSupport {
    const NONE: Self = Self {
        headers: false,
        uri: false,
        method_patterns: false,
        method: false,
        query_params: false,
        source_labels: false,
        istio_conditions: false,
        shape: MatchShape::Any,
    };
}

/// A `service` field a router may write onto its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteField {
    Timeout,
    /// Gateway API's `timeouts.backendRequest`.
    BackendTimeout,
    Retries,
    Rewrite,
    Headers,
    CorsPolicy,
    /// Gateway API's RequestMirror filters to any backend.
    Mirror,
}

impl RouteField {
    const ALL: [Self; 7] = [
        Self::Timeout,
        Self::BackendTimeout,
        Self::Retries,
        Self::Rewrite,
        Self::Headers,
        Self::CorsPolicy,
        Self::Mirror,
    ];

    fn field(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::BackendTimeout => "backendTimeout",
            Self::Retries => "retries",
            Self::Rewrite => "rewrite",
            Self::Headers => "headers",
            Self::CorsPolicy => "corsPolicy",
            Self::Mirror => "mirror",
        }
    }

    fn is_set(self, spec: &CanarySpec) -> bool {
        let service = &spec.service;
        match self {
            Self::Timeout => service.timeout.is_some(),
            Self::BackendTimeout => service.backend_timeout.is_some(),
            Self::Retries => service.retries.is_some(),
            Self::Rewrite => service.rewrite.is_some(),
            Self::Headers => service.headers.is_some(),
            Self::CorsPolicy => service.cors_policy.is_some(),
            Self::Mirror => !service.mirror.is_empty(),
        }
    }
}

/// Whose metrics the built-in `request-success-rate` and `request-duration` read
/// (`metrics::builtin` holds the queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    /// Istio's sidecars (`istio_requests_total`, `istio_request_duration_milliseconds`).
    Istio,
    /// Linkerd's proxies (`response_total`, `response_latency_ms`).
    Linkerd,
    /// ingress-nginx (`nginx_ingress_controller_requests`, `..._request_duration_seconds`).
    Nginx,
    /// Contour's Envoy (`envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`).
    Contour,
    /// Traefik (`traefik_service_request_duration_seconds`).
    Traefik,
    /// Skipper (`skipper_response_duration_seconds`, `skipper_serve_route_duration_seconds`).
    Skipper,
    /// APISIX's Prometheus plugin (`apisix_http_status`, `apisix_http_latency`).
    Apisix,
    /// Gloo's Envoy (`envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`), by Upstream.
    Gloo,
    /// Kuma's Envoy (`envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`), by service tag.
    Kuma,
    /// Knative's gateway Envoy (`envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`), by
    /// revision.
    Knative,
    /// The application itself (`http_requests_total`, `http_request_duration_seconds`), for
    /// providers without a proxy of their own: kubernetes, gatewayapi.
    App,
}

/// A permission on one kind: its API group (`""` for the core group), plural resource and
/// verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

impl Access {
    pub const fn new(
        group: &'static str,
        resource: &'static str,
        verbs: &'static [&'static str],
    ) -> Self {
        Self {
            group,
            resource,
            verbs,
        }
    }
}

/// A route serin creates or takes over: applied (which may create), read and annotated when
/// taken over, and put back by update when the Canary is deleted.
const ROUTE_VERBS: &[&str] = &["get", "create", "patch", "update"];

/// One row of the provider table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: ProviderKind,
    /// The name in `spec.provider`.
    pub name: &'static str,
    /// Accepted `:version` suffixes (Flagger's spelling); empty: none.
    pub versions: &'static [&'static str],
    /// What it writes, for people.
    pub writes: &'static str,
    pub can: Capabilities,
    /// Whose metrics the built-in checks read.
    pub metrics: MetricSource,
    /// The kinds its router writes (config/rbac.yaml grants them; `tests/rbac.rs`).
    pub kinds: &'static [Access],
    /// Needs `service.gatewayRefs` (a route with no parent serves nobody).
    pub needs_gateway_refs: bool,
    /// Needs `spec.ingressRef`, the Ingress its router clones (other providers ignore it).
    pub needs_ingress_ref: bool,
}

/// The provider table: one row per provider serin routes with.
pub const TABLE: &[Row] = &[
    Row {
        kind: ProviderKind::Kubernetes,
        name: "kubernetes",
        versions: &[],
        writes: "the apex Service's selector (blue/green)",
        can: Capabilities {
            weights: false,
            matches: MatchSupport::NONE,
            mirroring: false,
            session_affinity: false,
            tcp: true,
            route_fields: &[],
        },
        metrics: MetricSource::App,
        // The apex Service, whose selector switches (also written for every provider).
        kinds: &[Access::new("", "services", &["create", "patch"])],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::GatewayApi,
        name: "gatewayapi",
        // The version of the HTTPRoutes written (`routing::router_for`); GRPCRoutes are v1
        // and TCPRoutes v1alpha2 with either.
        versions: &["v1", "v1beta1"],
        writes: "a Gateway API HTTPRoute (a GRPCRoute for appProtocol grpc, a TCPRoute for tcp)",
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                uri: true,
                method: true,
                method_patterns: false,
                query_params: true,
                source_labels: false,
                istio_conditions: false,
                shape: MatchShape::Any,
            },
            mirroring: true,
            session_affinity: true,
            // A TCPRoute (`api::gateway` refuses what it cannot say).
            tcp: true,
            route_fields: &[
                RouteField::Headers,
                RouteField::Timeout,
                RouteField::BackendTimeout,
                RouteField::Rewrite,
                RouteField::CorsPolicy,
                RouteField::Mirror,
            ],
        },
        metrics: MetricSource::App,
        // HTTPRoutes; GRPCRoutes for `appProtocol: grpc`, TCPRoutes for `tcp`.
        kinds: &[
            Access::new("gateway.networking.k8s.io", "httproutes", ROUTE_VERBS),
            Access::new("gateway.networking.k8s.io", "grpcroutes", ROUTE_VERBS),
            Access::new("gateway.networking.k8s.io", "tcproutes", ROUTE_VERBS),
        ],
        needs_gateway_refs: true,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Istio,
        name: "istio",
        versions: &[],
        writes: "an Istio VirtualService and DestinationRules",
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                uri: true,
                method: true,
                method_patterns: true,
                query_params: true,
                source_labels: true,
                istio_conditions: true,
                shape: MatchShape::Any,
            },
            mirroring: true,
            session_affinity: true,
            // TCP routes, weights only (`api::istio` refuses what they cannot say).
            tcp: true,
            route_fields: &[
                RouteField::Timeout,
                RouteField::Retries,
                RouteField::Rewrite,
                RouteField::Headers,
                RouteField::CorsPolicy,
            ],
        },
        metrics: MetricSource::Istio,
        kinds: &[
            Access::new("networking.istio.io", "virtualservices", ROUTE_VERBS),
            // Always applied whole, never taken over.
            Access::new(
                "networking.istio.io",
                "destinationrules",
                &["create", "patch"],
            ),
        ],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Nginx,
        name: "nginx",
        versions: &[],
        writes: "a `<ingress>-canary` Ingress for ingress-nginx, cloned from spec.ingressRef",
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                shape: MatchShape::CanaryAnnotations,
                ..MatchSupport::NONE
            },
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Nginx,
        // The canary Ingress is applied (or taken over and put back like a route); the
        // ingressRef Ingress is only read (get).
        kinds: &[Access::new("networking.k8s.io", "ingresses", ROUTE_VERBS)],
        needs_gateway_refs: false,
        needs_ingress_ref: true,
    },
    Row {
        kind: ProviderKind::Contour,
        name: "contour",
        versions: &[],
        writes: "a Contour HTTPProxy (projectcontour.io/v1)",
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                uri: true,
                query_params: true,
                shape: MatchShape::OnePath,
                ..MatchSupport::NONE
            },
            mirroring: true,
            session_affinity: false,
            tcp: false,
            route_fields: &[RouteField::Timeout, RouteField::Retries],
        },
        metrics: MetricSource::Contour,
        kinds: &[Access::new("projectcontour.io", "httpproxies", ROUTE_VERBS)],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Traefik,
        name: "traefik",
        // The API group of the TraefikService: traefik.io (Traefik 2.10 and later, and what
        // Flagger writes) by default; traefik.containo.us for Traefik before 2.10.
        versions: &[TRAEFIK_GROUP, TRAEFIK_LEGACY_GROUP],
        writes: "a Traefik TraefikService",
        can: Capabilities {
            weights: true,
            matches: MatchSupport::NONE,
            mirroring: true,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Traefik,
        kinds: &[
            Access::new(TRAEFIK_GROUP, "traefikservices", ROUTE_VERBS),
            Access::new(TRAEFIK_LEGACY_GROUP, "traefikservices", ROUTE_VERBS),
        ],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    // SMI TrafficSplits: weights only, no request matching, mirroring or route fields.
    Row {
        kind: ProviderKind::Linkerd,
        name: "linkerd",
        versions: &[],
        writes: "an SMI TrafficSplit (split.smi-spec.io/v1alpha1, served by the linkerd-smi extension)",
        can: SMI_CAN,
        metrics: MetricSource::Linkerd,
        kinds: SMI_KINDS,
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Smi,
        name: "smi",
        versions: &["v1alpha1", "v1alpha2", "v1alpha3"],
        writes: "an SMI TrafficSplit of the version named",
        can: SMI_CAN,
        // Flagger's `smi:*` providers read Istio's metrics (its default observer); a
        // migrated Canary keeps its data.
        metrics: MetricSource::Istio,
        kinds: SMI_KINDS,
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Skipper,
        name: "skipper",
        versions: &[],
        writes: "a `<ingress>-canary` Ingress for Skipper, cloned from spec.ingressRef, split by zalando.org/backend-weights",
        // Weights only: Flagger's skipper router has no A/B testing or mirroring.
        can: Capabilities {
            weights: true,
            matches: MatchSupport::NONE,
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Skipper,
        // As nginx: the canary Ingress is applied, taken over and put back; the ingressRef
        // Ingress is only read.
        kinds: &[Access::new("networking.k8s.io", "ingresses", ROUTE_VERBS)],
        needs_gateway_refs: false,
        needs_ingress_ref: true,
    },
    Row {
        kind: ProviderKind::Apisix,
        name: "apisix",
        versions: &[],
        writes: "an APISIX ApisixRoute (apisix.apache.org/v2) copying the spec.routeRef rule to the apex Service, with weighted backends",
        // Weights only, as Flagger's apisix router.
        can: Capabilities {
            weights: true,
            matches: MatchSupport::NONE,
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Apisix,
        // The copy is applied, taken over and put back; the routeRef route is only read.
        kinds: &[Access::new(
            "apisix.apache.org",
            "apisixroutes",
            ROUTE_VERBS,
        )],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Gloo,
        name: "gloo",
        versions: &[],
        writes: "a Gloo Edge RouteTable (gateway.solo.io/v1) and an Upstream (gloo.solo.io/v1) each for the primary and canary",
        // Weights, and A/B testing by headers and exact methods, as Flagger's gloo router.
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                method: true,
                ..MatchSupport::NONE
            },
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Gloo,
        kinds: &[
            Access::new("gateway.solo.io", "routetables", ROUTE_VERBS),
            // Applied whole, never taken over; `get` reads the upstreamRef Upstream.
            Access::new("gloo.solo.io", "upstreams", &["get", "create", "patch"]),
        ],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Kuma,
        name: "kuma",
        // The policy written: Flagger's TrafficRoute by default (a migrated Canary keeps what
        // Flagger wrote), current Kuma's MeshHTTPRoute when named.
        versions: &[KUMA_MESH_HTTP_ROUTE],
        writes: "a Kuma TrafficRoute (kuma.io/v1alpha1, cluster-scoped; kuma:meshhttproute: a MeshHTTPRoute)",
        // Weights only, as Flagger's kuma router.
        can: Capabilities {
            weights: true,
            matches: MatchSupport::NONE,
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Kuma,
        kinds: &[
            // Cluster-scoped: no owner reference, so serin deletes its own when a Canary
            // with revertOnDeletion goes.
            Access::new(
                "kuma.io",
                "trafficroutes",
                &["get", "create", "patch", "update", "delete"],
            ),
            Access::new("kuma.io", "meshhttproutes", ROUTE_VERBS),
        ],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    Row {
        kind: ProviderKind::Knative,
        name: "knative",
        versions: &[],
        writes: "the spec.traffic of the target Knative Service (serving.knative.dev/v1), split between its promoted and its latest revision",
        // Weights only, as Flagger's knative router.
        can: Capabilities {
            weights: true,
            matches: MatchSupport::NONE,
            mirroring: false,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::Knative,
        // The target itself: watched (get, list, watch), its spec.traffic applied (patch) and
        // its primary-revision annotation merge-patched (patch). Never created.
        kinds: &[Access::new(
            "serving.knative.dev",
            "services",
            &["get", "list", "watch", "patch"],
        )],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
    // Route templates: whatever the template says, so every capability the placeholders can
    // carry; `route_template::refused` refuses a template leaving out what the analysis uses.
    Row {
        kind: ProviderKind::Template,
        name: "template",
        versions: &[],
        writes: "the objects of spec.service.routeTemplate",
        can: Capabilities {
            weights: true,
            matches: MatchSupport {
                headers: true,
                uri: true,
                method: true,
                method_patterns: true,
                query_params: true,
                source_labels: false,
                istio_conditions: false,
                shape: MatchShape::Any,
            },
            mirroring: true,
            session_affinity: false,
            tcp: false,
            route_fields: &[],
        },
        metrics: MetricSource::App,
        // None by default: the kinds a template writes are granted by the operator (the
        // chart's rbac.routeTemplateRules), never every kind (docs/routing.md).
        kinds: &[],
        needs_gateway_refs: false,
        needs_ingress_ref: false,
    },
];

/// `kuma:meshhttproute`: the policy of current Kuma instead of Flagger's TrafficRoute.
pub const KUMA_MESH_HTTP_ROUTE: &str = "meshhttproute";

/// The TraefikService's API group by default (`traefik`, `traefik:traefik.io`).
pub const TRAEFIK_GROUP: &str = "traefik.io";
/// The group Traefik served before 2.10 (`traefik:traefik.containo.us`).
pub const TRAEFIK_LEGACY_GROUP: &str = "traefik.containo.us";
/// What an SMI TrafficSplit can say: a weighted split of one service's requests.
const SMI_CAN: Capabilities = Capabilities {
    weights: true,
    matches: MatchSupport::NONE,
    mirroring: false,
    session_affinity: false,
    tcp: false,
    route_fields: &[],
};

const SMI_KINDS: &[Access] = &[Access::new(
    "split.smi-spec.io",
    "trafficsplits",
    ROUTE_VERBS,
)];

/// Providers retired upstream, with what to use instead.
const RETIRED: &[(&str, &str)] = &[
    (
        "appmesh",
        "AWS ended App Mesh support on 2026-09-30; route with gatewayapi (e.g. the AWS Gateway API controller)",
    ),
    (
        "osm",
        "Open Service Mesh was archived in 2023; route with gatewayapi or istio",
    ),
];

/// Why a provider name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown traffic provider {0:?}; serin routes with {names}", names = names())]
    Unknown(String),
    #[error("{0:?} is retired: {1}")]
    Retired(String, &'static str),
    #[error("{name} has no version {version:?}; serin accepts {accepted}")]
    Version {
        name: &'static str,
        version: String,
        accepted: String,
    },
}

fn names() -> String {
    let names: Vec<&str> = TABLE.iter().map(|row| row.name).collect();
    names.join(", ")
}

impl ProviderKind {
    /// This provider's row of [`TABLE`].
    pub fn row(self) -> &'static Row {
        // Every variant has a row: `every_kind_has_one_row` checks it.
        TABLE
            .iter()
            .find(|row| row.kind == self)
            .unwrap_or(&TABLE[0])
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }
}

impl TrafficProvider {
    pub const fn of(kind: ProviderKind) -> Self {
        Self {
            kind,
            version: None,
        }
    }

    /// Reads a provider as Flagger spells it: `name` or `name:version`.
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let text = text.trim();
        let (base, version) = match text.split_once(':') {
            Some((base, version)) => (base.trim(), Some(version.trim())),
            None => (text, None),
        };
        let Some(row) = TABLE.iter().find(|row| row.name == base) else {
            if let Some((_, why)) = RETIRED.iter().find(|(name, _)| *name == base) {
                return Err(ProviderError::Retired(base.to_string(), why));
            }
            return Err(ProviderError::Unknown(text.to_string()));
        };
        let version =
            match version {
                None => None,
                Some(v) => Some(*row.versions.iter().find(|known| **known == v).ok_or_else(
                    || ProviderError::Version {
                        name: row.name,
                        version: v.to_string(),
                        accepted: if row.versions.is_empty() {
                            "no version suffix".to_string()
                        } else {
                            row.versions.join(", ")
                        },
                    },
                )?),
            };
        Ok(Self {
            kind: row.kind,
            version,
        })
    }

    pub fn row(self) -> &'static Row {
        self.kind.row()
    }
}

impl fmt::Display for TrafficProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(version) => write!(f, "{}:{version}", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}

/// The Canary's provider: `spec.provider`, or `default` (the controller's `--mesh-provider`)
/// when it names none. The error is a field error of `spec.provider`.
pub fn resolve(spec: &CanarySpec, default: TrafficProvider) -> Result<TrafficProvider, FieldError> {
    match &spec.provider {
        Some(name) => TrafficProvider::parse(name)
            .map_err(|error| FieldError::new("spec.provider", error.to_string())),
        None => Ok(default),
    }
}

/// Whether `provider` can carry out what `spec` asks for; every field it cannot express is
/// refused with the field's path and what to do instead.
pub fn admit(provider: TrafficProvider, spec: &CanarySpec) -> Vec<FieldError> {
    let row = provider.row();
    let can = row.can;
    let analysis = &spec.analysis;
    let mut refused = Vec::new();
    let mut refuse = |field: &str, what: &str, instead: &str| {
        refused.push(FieldError::new(
            field,
            format!(
                "the {provider} provider (spec.provider, or the controller's --mesh-provider) cannot {what}: it writes {}{instead}",
                row.writes
            ),
        ));
    };
    let uses_weights = analysis.iterations.is_none();
    if uses_weights && !can.weights {
        refuse(
            weights_field(spec),
            "split traffic by weight",
            "; use blue/green (analysis.iterations without match) or a provider that splits traffic",
        );
    }
    if analysis.mirror && !can.mirroring {
        refuse("spec.analysis.mirror", "mirror traffic", "");
    }
    if analysis.session_affinity.is_some() && !can.session_affinity {
        refuse("spec.analysis.sessionAffinity", "keep sessions sticky", "");
    }
    if spec.is_tcp() && !can.tcp {
        refuse("spec.service.appProtocol", "route TCP", "");
    }
    refused.extend(unsupported_matches(
        provider,
        "spec.analysis.match",
        &analysis.matches,
    ));
    match can.matches.shape {
        MatchShape::Any => refused.extend(unsupported_matches(
            provider,
            "spec.service.match",
            &spec.service.matches,
        )),
        MatchShape::OnePath => {
            refused.extend(unsupported_matches(
                provider,
                "spec.service.match",
                &spec.service.matches,
            ));
            refused.extend(second_paths(provider, spec));
        }
        MatchShape::CanaryAnnotations => {
            refused.extend(canary_annotation_matches(provider, &analysis.matches));
            if !spec.service.matches.is_empty() {
                refused.push(FieldError::new(
                    "spec.service.match",
                    format!("the {provider} provider serves the hosts and paths of the spec.ingressRef Ingress: set them there"),
                ));
            }
        }
    }
    for field in RouteField::ALL {
        if field.is_set(spec) && !can.route_fields.contains(&field) {
            refused.push(FieldError::new(
                format!("spec.service.{}", field.field()),
                format!(
                    "the {provider} provider does not write {} onto its route in serin; remove it or route with a provider that does",
                    field.field()
                ),
            ));
        }
    }
    if row.needs_ingress_ref {
        refused.extend(ingress_ref(provider, spec));
    }
    if row.needs_gateway_refs && spec.service.gateway_refs.is_empty() {
        refused.push(FieldError::new(
            "spec.service.gatewayRefs",
            format!("the {provider} provider needs at least one Gateway (or Service parent) to attach its route to"),
        ));
    }
    match row.kind {
        ProviderKind::GatewayApi => refused.extend(super::gateway::refused(spec)),
        ProviderKind::Istio => refused.extend(super::istio::refused(spec)),
        ProviderKind::Apisix if spec.route_ref.is_none() => refused.push(FieldError::new(
            "spec.routeRef",
            format!("the {provider} provider copies the ApisixRoute sending requests to {}: set routeRef {{apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: ...}}", spec.service_name()),
        )),
        ProviderKind::Template => refused.extend(super::route_template::refused(spec)),
        ProviderKind::Knative => refused.extend(knative_unused(spec)),
        _ => {}
    }
    refused.extend(target_provider(provider, spec));
    if row.kind != ProviderKind::Template && spec.service.route_template.is_some() {
        refused.push(FieldError::new(
            "spec.service.routeTemplate",
            format!("only the template provider writes a route template; the {provider} provider would ignore it"),
        ));
    }
    if row.kind == ProviderKind::Smi && provider.version.is_none() {
        refused.push(FieldError::new(
            "spec.provider",
            format!(
                "smi names the TrafficSplit version to write: {}",
                row.versions
                    .iter()
                    .map(|v| format!("smi:{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    refused
}

/// A target kind only one provider routes (a Knative Service: its own `spec.traffic`) with
/// any other provider, and that provider with another kind.
fn target_provider(provider: TrafficProvider, spec: &CanarySpec) -> Vec<FieldError> {
    let Ok(kind) = super::target::TargetKind::of(&spec.target_ref) else {
        // Refused by validation already, with the kinds serin rolls out.
        return Vec::new();
    };
    let needed = kind.row().provider;
    let name = provider.kind.name();
    match needed {
        Some(needed) if needed != name => vec![FieldError::new(
            "spec.provider",
            format!(
                "a {} target ({}) is routed by its own traffic split: set provider: {needed} (got {provider})",
                kind.row().name,
                kind.row().api_version
            ),
        )],
        None if super::target::TABLE
            .iter()
            .any(|row| row.provider == Some(name)) =>
        {
            vec![FieldError::new(
                "spec.targetRef",
                format!(
                    "the {provider} provider routes a Knative Service's revisions: set targetRef {{apiVersion: serving.knative.dev/v1, kind: Service, name: ...}} (got a {})",
                    kind.row().name
                ),
            )]
        }
        _ => Vec::new(),
    }
}

/// The `service` fields of a Knative Canary: serin makes no Services and no route for it
/// (Knative's own routes reach the Service), so any field but `port` (which Flagger's schema
/// asked for) would be accepted and then ignored; each is refused by name.
fn knative_unused(spec: &CanarySpec) -> Vec<FieldError> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&spec.service) else {
        return Vec::new();
    };
    // Route fields and matches are refused with the other providers' words already.
    let refused_elsewhere: Vec<&str> = RouteField::ALL.iter().map(|f| f.field()).collect();
    fields
        .keys()
        .filter(|key| *key != "port" && *key != "match" && !refused_elsewhere.contains(&key.as_str()))
        .map(|key| {
            FieldError::new(
                format!("spec.service.{key}"),
                "the knative provider makes no Services or routes of its own: Knative's routes reach the Knative Service, and it splits traffic in the Service's spec.traffic; remove it (spec.service is optional with knative)",
            )
        })
        .collect()
}

/// `spec.ingressRef` as a provider cloning it needs it: a networking.k8s.io/v1 Ingress of the
/// Canary's own namespace (an Ingress sends requests to Services of its own namespace only).
fn ingress_ref(provider: TrafficProvider, spec: &CanarySpec) -> Vec<FieldError> {
    let Some(reference) = &spec.ingress_ref else {
        return vec![FieldError::new(
            "spec.ingressRef",
            format!(
                "the {provider} provider needs the Ingress serving {} to clone into its canary Ingress: set ingressRef {{apiVersion: networking.k8s.io/v1, kind: Ingress, name: ...}}",
                spec.service_name()
            ),
        )];
    };
    let mut refused = Vec::new();
    if let Some(kind) = reference.kind.as_deref().filter(|k| *k != "Ingress") {
        refused.push(FieldError::new(
            "spec.ingressRef.kind",
            format!("the {provider} provider clones an Ingress, not a {kind}"),
        ));
    }
    if let Some(version) = reference
        .api_version
        .as_deref()
        .filter(|v| *v != "networking.k8s.io/v1")
    {
        refused.push(FieldError::new(
            "spec.ingressRef.apiVersion",
            format!(
                "expected networking.k8s.io/v1 (served since Kubernetes 1.19), got {version:?}"
            ),
        ));
    }
    if reference.namespace.is_some() {
        refused.push(FieldError::new(
            "spec.ingressRef.namespace",
            "the Ingress is always read from the Canary's own namespace: remove namespace",
        ));
    }
    refused
}

/// What ingress-nginx's canary annotations cannot say of `analysis.match`: more than one
/// header or cookie, a header and a cookie in one match (nginx ORs them), prefix or suffix
/// values, a cookie matched other than by name, or a match with neither.
fn canary_annotation_matches(provider: TrafficProvider, matches: &[HttpMatch]) -> Vec<FieldError> {
    let mut refused = Vec::new();
    let mut refuse = |field: String, what: String| {
        refused.push(FieldError::new(
            field,
            format!("the {provider} provider {what}"),
        ));
    };
    let (mut header, mut cookie): (Option<String>, Option<String>) = (None, None);
    for (i, m) in matches.iter().enumerate() {
        let path = format!("spec.analysis.match[{i}]");
        if m.headers.is_empty() {
            // Other parts are refused by `unsupported_matches`; a match of nothing would
            // leave the annotations without a condition and the canary without requests.
            if m == &HttpMatch::default() {
                refuse(
                    path.clone(),
                    "needs a header or a cookie in every match".into(),
                );
            }
            continue;
        }
        if m.headers.len() > 1 {
            refuse(
                format!("{path}.headers"),
                "matches one header or one cookie per match (nginx ORs canary-by-header and canary-by-cookie, it cannot AND them): put each in a match of its own".into(),
            );
            continue;
        }
        for (name, value) in &m.headers {
            let field = format!("{path}.headers.{name}");
            let is_cookie = name.eq_ignore_ascii_case("cookie");
            let seen = if is_cookie { &mut cookie } else { &mut header };
            if let Some(first) = seen.as_ref() {
                let what = if is_cookie { "cookie" } else { "header" };
                refuse(
                    field,
                    format!(
                        "routes by one {what} only (canary-by-{what}), and {first} already names one"
                    ),
                );
                continue;
            }
            *seen = Some(field.clone());
            if is_cookie && value.exact.is_none() {
                refuse(
                    field,
                    "matches a cookie by its name only: `cookie: {exact: NAME}` sends requests carrying NAME=always to the canary".into(),
                );
            } else if value.prefix.is_some() || value.suffix.is_some() {
                refuse(
                    field,
                    "matches a header by exact value or regex only: write the prefix or suffix as a regex".into(),
                );
            }
        }
    }
    refused
}

/// Each `analysis.match` uri that a `service.match` uri would meet in one route: a provider
/// whose route has one path condition (Contour) cannot AND two.
fn second_paths(provider: TrafficProvider, spec: &CanarySpec) -> Vec<FieldError> {
    if !spec.service.matches.iter().any(|m| m.uri.is_some()) {
        return Vec::new();
    }
    spec.analysis
        .matches
        .iter()
        .enumerate()
        .filter(|(_, m)| m.uri.is_some())
        .map(|(i, _)| {
            FieldError::new(
                format!("spec.analysis.match[{i}].uri"),
                format!("the {provider} provider matches one path per route and spec.service.match names one already: match the canary's requests by headers or queryParams"),
            )
        })
        .collect()
}

/// The field that asked for weights: the one the user wrote, or `iterations` missing.
fn weights_field(spec: &CanarySpec) -> &'static str {
    let analysis = &spec.analysis;
    if !analysis.steps.is_empty() {
        "spec.analysis.steps"
    } else if !analysis.step_weights.is_empty() {
        "spec.analysis.stepWeights"
    } else if analysis.step_weight.is_some() {
        "spec.analysis.stepWeight"
    } else {
        "spec.analysis.iterations"
    }
}

/// Each part of each match the provider cannot express.
fn unsupported_matches(
    provider: TrafficProvider,
    path: &str,
    matches: &[HttpMatch],
) -> Vec<FieldError> {
    let can = provider.row().can.matches;
    let mut refused = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let is_pattern = |s: &StringMatch| s.exact.is_none();
        let parts = [
            ("headers", !m.headers.is_empty(), can.headers),
            ("uri", m.uri.is_some(), can.uri),
            ("method", m.method.is_some(), can.method),
            // Only where methods match at all: otherwise the line above refuses it once.
            (
                "method",
                can.method && m.method.as_ref().is_some_and(is_pattern),
                can.method_patterns,
            ),
            ("queryParams", !m.query_params.is_empty(), can.query_params),
            (
                "sourceLabels",
                !m.source_labels.is_empty(),
                can.source_labels,
            ),
        ];
        for (part, used, supported) in parts {
            if used && !supported {
                let what = if part == "method" && can.method {
                    "match a method other than exactly".to_string()
                } else {
                    format!("match requests by {part}")
                };
                refused.push(FieldError::new(
                    format!("{path}[{i}].{part}"),
                    format!("the {provider} provider cannot {what}"),
                ));
            }
        }
        if !can.istio_conditions {
            for part in m.istio_conditions() {
                refused.push(FieldError::new(
                    format!("{path}[{i}].{part}"),
                    format!("the {provider} provider cannot match requests by {part} (an Istio condition), and dropping it would widen the match: route with istio or remove it"),
                ));
            }
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> CanarySpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn knative(service: &str) -> CanarySpec {
        spec(&format!(
            "targetRef: {{apiVersion: serving.knative.dev/v1, kind: Service, name: web}}\n{service}analysis: {{interval: 1m, stepWeight: 10}}\n"
        ))
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_knative_service_needs_no_service_block_and_refuses_what_it_cannot_honour() {
        let provider = TrafficProvider::parse("knative").unwrap();
        assert_eq!(admit(provider, &knative("")), vec![]);
        assert_eq!(admit(provider, &knative("service: {port: 80}\n")), vec![]);
        let refused = admit(
            provider,
            &knative(
                "service: {port: 80, portDiscovery: true, gatewayRefs: [{name: public}], headless: true}\n",
            ),
        );
        assert_eq!(
            fields(&refused),
            [
                "spec.service.gatewayRefs",
                "spec.service.headless",
                "spec.service.portDiscovery"
            ]
        );
        assert!(
            refused[0]
                .reason
                .contains("spec.service is optional with knative")
        );
    }

    #[test]
    fn knative_and_knative_services_go_together() {
        let istio = TrafficProvider::parse("istio").unwrap();
        let refused = admit(istio, &knative(""));
        assert_eq!(fields(&refused), ["spec.provider"]);
        assert!(
            refused[0].reason.contains("set provider: knative"),
            "{refused:?}"
        );
        let deployment = spec(
            "targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\nservice: {port: 80}\nanalysis: {interval: 1m, stepWeight: 10}\n",
        );
        let refused = admit(TrafficProvider::parse("knative").unwrap(), &deployment);
        assert_eq!(fields(&refused), ["spec.targetRef"]);
    }

    #[test]
    fn every_kind_has_one_row() {
        for kind in [
            ProviderKind::Kubernetes,
            ProviderKind::GatewayApi,
            ProviderKind::Istio,
            ProviderKind::Nginx,
            ProviderKind::Contour,
            ProviderKind::Traefik,
            ProviderKind::Linkerd,
            ProviderKind::Smi,
            ProviderKind::Skipper,
            ProviderKind::Apisix,
            ProviderKind::Gloo,
            ProviderKind::Kuma,
            ProviderKind::Knative,
            ProviderKind::Template,
        ] {
            assert_eq!(TABLE.iter().filter(|r| r.kind == kind).count(), 1);
            assert_eq!(kind.row().kind, kind);
        }
    }

    #[test]
    fn names_parse_as_flagger_spells_them_and_refusals_say_why() {
        let gateway = TrafficProvider::parse("gatewayapi:v1beta1").unwrap();
        assert_eq!(gateway.kind, ProviderKind::GatewayApi);
        assert_eq!(gateway.to_string(), "gatewayapi:v1beta1");
        assert_eq!(
            TrafficProvider::parse(" istio ").unwrap(),
            TrafficProvider::of(ProviderKind::Istio)
        );
        let error = |name| TrafficProvider::parse(name).unwrap_err().to_string();
        assert_eq!(
            error("gatewayapi:v2"),
            "gatewayapi has no version \"v2\"; serin accepts v1, v1beta1"
        );
        assert!(error("istio:v1").contains("accepts no version suffix"));
        assert_eq!(
            TrafficProvider::parse("knative").unwrap().kind,
            ProviderKind::Knative
        );
        assert!(error("kuma:v1").contains("accepts meshhttproute"));
        assert_eq!(
            TrafficProvider::parse("traefik:traefik.containo.us")
                .unwrap()
                .version,
            Some(TRAEFIK_LEGACY_GROUP)
        );
        assert!(error("traefik:v1alpha1").contains("accepts traefik.io, traefik.containo.us"));
        assert!(error("appmesh").contains("retired: AWS ended App Mesh support"));
        assert!(error("osm").contains("archived"));
        assert_eq!(
            error("traefk"),
            "unknown traffic provider \"traefk\"; serin routes with kubernetes, gatewayapi, istio, nginx, contour, traefik, linkerd, smi, skipper, apisix, gloo, kuma, knative, template"
        );
    }

    #[test]
    fn kubernetes_refuses_weights_mirroring_and_matches_naming_the_field() {
        let kubernetes = TrafficProvider::of(ProviderKind::Kubernetes);
        let refused = admit(
            kubernetes,
            &spec("{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10}}"),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].field, "spec.analysis.stepWeight");
        assert!(refused[0].reason.contains("cannot split traffic by weight"));
        let refused = admit(
            kubernetes,
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {iterations: 3, match: [{headers: {x: {exact: y}}}]}}",
            ),
        );
        assert_eq!(refused[0].field, "spec.analysis.match[0].headers");
        let refused = admit(
            kubernetes,
            &spec(
                "{targetRef: {name: a}, service: {port: 80}, analysis: {iterations: 3, match: [{method: {regex: P.*}}]}}",
            ),
        );
        assert_eq!(refused.len(), 1, "one refusal per field: {refused:?}");
        let blue_green = spec(
            "{targetRef: {name: a}, service: {port: 80, timeout: 5s}, analysis: {iterations: 3}}",
        );
        assert_eq!(
            admit(kubernetes, &blue_green)[0].field,
            "spec.service.timeout"
        );
    }

    #[test]
    fn gateway_api_needs_a_parent_and_refuses_what_it_would_drop() {
        let gateway = TrafficProvider::of(ProviderKind::GatewayApi);
        let refused = admit(
            gateway,
            &spec("{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10}}"),
        );
        assert_eq!(refused[0].field, "spec.service.gatewayRefs");
        let refused = admit(
            gateway,
            &spec(
                "{targetRef: {name: a}, service: {port: 80, gatewayRefs: [{name: g}], retries: {attempts: 3}}, analysis: {iterations: 2, match: [{sourceLabels: {app: x}}, {method: {prefix: P}}]}}",
            ),
        );
        let fields: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.analysis.match[0].sourceLabels",
                "spec.analysis.match[1].method",
                "spec.service.retries"
            ]
        );
        assert!(refused[1].reason.contains("other than exactly"));
    }

    #[test]
    fn istio_takes_every_strategy() {
        let istio = TrafficProvider::of(ProviderKind::Istio);
        let canary = spec(
            "{targetRef: {name: a}, service: {port: 80, timeout: 5s, retries: {attempts: 2}}, analysis: {stepWeight: 10, sessionAffinity: {cookieName: c}}}",
        );
        assert_eq!(admit(istio, &canary), []);
    }

    #[test]
    fn only_istio_writes_istios_own_match_conditions_the_others_name_themselves_refusing() {
        let ab = spec(
            "{targetRef: {name: a}, service: {port: 80, match: [{uri: {prefix: /api}, authority: {exact: shop.example.com}}]}, analysis: {iterations: 2, match: [{headers: {x: {exact: y}}, withoutHeaders: {z: {exact: '1'}}, ignoreUriCase: true}]}}",
        );
        assert_eq!(admit(TrafficProvider::of(ProviderKind::Istio), &ab), []);
        let refused = admit(TrafficProvider::parse("contour").unwrap(), &ab);
        let fields: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.analysis.match[0].ignoreUriCase",
                "spec.analysis.match[0].withoutHeaders",
                "spec.service.match[0].authority"
            ]
        );
        assert!(
            refused[2]
                .reason
                .starts_with("the contour provider cannot match requests by authority"),
            "{refused:?}"
        );
        assert!(refused[2].reason.contains("would widen the match"));
    }

    #[test]
    fn contour_matches_one_path_per_route_and_traefik_no_requests() {
        let contour = TrafficProvider::parse("contour").unwrap();
        let ab = "{iterations: 2, match: [{headers: {x: {prefix: y}}, queryParams: {q: {suffix: z}}}, {uri: {prefix: /v2}}]}";
        let refused = admit(
            contour,
            &spec(&format!(
                "{{targetRef: {{name: a}}, service: {{port: 80, timeout: 5s, retries: {{attempts: 2}}}}, analysis: {ab}}}"
            )),
        );
        assert_eq!(refused, []);
        let refused = admit(
            contour,
            &spec(&format!(
                "{{targetRef: {{name: a}}, service: {{port: 80, match: [{{uri: {{prefix: /api}}}}]}}, analysis: {ab}}}"
            )),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].field, "spec.analysis.match[1].uri");
        assert!(refused[0].reason.contains("one path per route"));

        let traefik = TrafficProvider::parse("traefik").unwrap();
        let refused = admit(
            traefik,
            &spec(
                "{targetRef: {name: a}, service: {port: 80, retries: {attempts: 2}}, analysis: {iterations: 2, mirror: true, match: [{headers: {x: {exact: y}}}]}}",
            ),
        );
        let fields: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.analysis.match[0].headers", "spec.service.retries"]
        );
    }

    #[test]
    fn nginx_needs_an_ingress_ref_of_its_own_namespace() {
        let nginx = TrafficProvider::parse("nginx").unwrap();
        let refused = admit(
            nginx,
            &spec("{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10}}"),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].field, "spec.ingressRef");
        assert!(refused[0].reason.contains("needs the Ingress serving a"));
        let refused = admit(
            nginx,
            &spec(
                "{targetRef: {name: a}, ingressRef: {apiVersion: extensions/v1beta1, kind: Service, name: a, namespace: b}, service: {port: 80}, analysis: {stepWeight: 10}}",
            ),
        );
        let fields: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.ingressRef.kind",
                "spec.ingressRef.apiVersion",
                "spec.ingressRef.namespace"
            ]
        );
        let accepted = spec(
            "{targetRef: {name: a}, ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: a}, service: {port: 80}, analysis: {stepWeight: 10}}",
        );
        assert_eq!(admit(nginx, &accepted), []);
    }

    #[test]
    fn nginx_matches_one_header_and_one_cookie_as_its_annotations_can() {
        let nginx = TrafficProvider::of(ProviderKind::Nginx);
        let refused = |matches: &str, service: &str| -> Vec<String> {
            let canary = spec(&format!(
                "{{targetRef: {{name: a}}, ingressRef: {{name: a}}, service: {{port: 80{service}}}, analysis: {{iterations: 2, match: {matches}}}}}"
            ));
            admit(nginx, &canary)
                .iter()
                .map(|e| e.field.clone())
                .collect()
        };
        // Flagger's nginx tutorial: a header and a cookie, each in a match of its own.
        assert_eq!(
            refused(
                "[{headers: {x-canary: {exact: insider}}}, {headers: {cookie: {exact: canary}}}]",
                ""
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            refused("[{headers: {x-canary: {regex: '^in.*'}}}]", ""),
            Vec::<String>::new()
        );
        assert_eq!(
            refused(
                "[{headers: {x-a: {exact: '1'}}}, {headers: {x-b: {exact: '2'}}}]",
                ""
            ),
            ["spec.analysis.match[1].headers.x-b"]
        );
        assert_eq!(
            refused("[{headers: {x-a: {exact: '1'}, cookie: {exact: c}}}]", ""),
            ["spec.analysis.match[0].headers"]
        );
        assert_eq!(
            refused("[{headers: {cookie: {regex: 'c=.*'}}}]", ""),
            ["spec.analysis.match[0].headers.cookie"]
        );
        assert_eq!(
            refused("[{headers: {x-a: {prefix: in}}}]", ""),
            ["spec.analysis.match[0].headers.x-a"]
        );
        assert_eq!(
            refused("[{uri: {prefix: /api}}, {}]", ""),
            ["spec.analysis.match[0].uri", "spec.analysis.match[1]"]
        );
        assert_eq!(
            refused(
                "[{headers: {x-a: {exact: '1'}}}]",
                ", match: [{uri: {prefix: /api}}]"
            ),
            ["spec.service.match"]
        );
    }

    #[test]
    fn smi_and_linkerd_split_by_weight_only_and_smi_names_its_version() {
        let weights =
            spec("{targetRef: {name: a}, service: {port: 80}, analysis: {stepWeight: 10}}");
        for name in ["linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3"] {
            let provider = TrafficProvider::parse(name).unwrap();
            assert_eq!(admit(provider, &weights), [], "{name}");
            let ab = spec(
                "{targetRef: {name: a}, service: {port: 80, timeout: 5s}, analysis: {iterations: 2, mirror: true, match: [{headers: {x: {exact: y}}}]}}",
            );
            let fields: Vec<String> = admit(provider, &ab).into_iter().map(|e| e.field).collect();
            assert_eq!(
                fields,
                [
                    "spec.analysis.mirror",
                    "spec.analysis.match[0].headers",
                    "spec.service.timeout"
                ],
                "{name}"
            );
        }
        let bare = admit(TrafficProvider::parse("smi").unwrap(), &weights);
        assert_eq!(bare.len(), 1);
        assert_eq!(bare[0].field, "spec.provider");
        assert!(
            bare[0]
                .reason
                .contains("smi:v1alpha1, smi:v1alpha2, smi:v1alpha3")
        );
        assert_eq!(ProviderKind::Linkerd.row().metrics, MetricSource::Linkerd);
        // Flagger's smi providers fall to its default observer, Istio's.
        assert_eq!(ProviderKind::Smi.row().metrics, MetricSource::Istio);
    }
}
