//! One table of Canaries per provider and capability, shared by the tests that prove
//! `serin check`, `serin simulate` and the controller decide alike (tests/provider_table.rs
//! offline, tests/controller.rs on the control plane).
#![allow(dead_code)]

use serde_json::{Value, json};

pub struct Case {
    pub name: &'static str,
    /// `spec.provider`; None: the default (`--mesh-provider`, kubernetes).
    pub provider: Option<&'static str>,
    pub service: Value,
    pub analysis: Value,
    /// The field refused, or None when every tool accepts it.
    pub refused: Option<&'static str>,
    /// The fields every tool warns about when it accepts the Canary: what the provider cannot
    /// do and runs as Flagger does instead (`api::leniency`).
    pub warned: &'static [&'static str],
    /// `spec.ingressRef.name` (nginx): an Ingress of this name sending `/` to the apex
    /// Service, which the control-plane test creates.
    pub ingress_ref: Option<&'static str>,
    /// `spec.targetRef.kind`: a workload of this kind and the case's name is the target.
    pub target: &'static str,
    /// `spec.autoscalerRef` without its name (the case's), or null; an accepted ScaledObject
    /// is created by the control-plane test, an HPA need not exist.
    pub autoscaler: Value,
}

fn gateways() -> Value {
    json!([{"name": "public", "namespace": "gateways"}])
}

/// A HorizontalPodAutoscaler reference.
pub fn hpa() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"})
}

/// A KEDA ScaledObject reference with `extra` fields.
pub fn keda(extra: Value) -> Value {
    let mut reference = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject"});
    if let (Some(reference), Some(extra)) = (reference.as_object_mut(), extra.as_object()) {
        reference.extend(extra.clone());
    }
    reference
}

pub fn cases() -> Vec<Case> {
    let port = || json!({"port": 80, "targetPort": 8080});
    let gateway = || json!({"port": 80, "targetPort": 8080, "gatewayRefs": gateways()});
    let weights = || json!({"interval": "1s", "stepWeight": 50, "maxWeight": 50});
    let blue_green = || json!({"interval": "1s", "iterations": 2});
    let ab = |m: Value| json!({"interval": "1s", "iterations": 2, "match": [m]});
    let case = |name, provider, service, analysis, refused| Case {
        name,
        provider,
        service,
        analysis,
        refused,
        warned: &[],
        ingress_ref: None,
        target: "Deployment",
        autoscaler: Value::Null,
    };
    // What Flagger runs as blue/green on a provider without traffic splitting: accepted, with
    // a warning on the field.
    let fallback = |name, provider, analysis, warned| Case {
        name,
        provider,
        service: port(),
        analysis,
        refused: None,
        warned,
        ingress_ref: None,
        target: "Deployment",
        autoscaler: Value::Null,
    };
    // nginx with an Ingress to clone, named after the case.
    let nginx = |name, analysis, refused| Case {
        name,
        provider: Some("nginx"),
        service: port(),
        analysis,
        refused,
        warned: &[],
        ingress_ref: Some(name),
        target: "Deployment",
        autoscaler: Value::Null,
    };
    // skipper with an Ingress to clone, named after the case.
    let skipper = |name, analysis, refused| Case {
        provider: Some("skipper"),
        ..nginx(name, analysis, refused)
    };
    // DaemonSets take every strategy, as in Flagger, as far as the router does; a DaemonSet
    // has no replica count, so an autoscaler on it is refused rather than ignored.
    let daemon_set = |name, provider, service, analysis, refused, autoscaler| Case {
        target: "DaemonSet",
        autoscaler,
        ..case(name, provider, service, analysis, refused)
    };
    vec![
        daemon_set(
            "ds-weights",
            Some("gatewayapi"),
            gateway(),
            weights(),
            None,
            Value::Null,
        ),
        daemon_set(
            "ds-ab",
            Some("gatewayapi"),
            gateway(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            None,
            Value::Null,
        ),
        daemon_set(
            "ds-blue-green",
            Some("kubernetes"),
            port(),
            blue_green(),
            None,
            Value::Null,
        ),
        daemon_set(
            "ds-autoscaler",
            Some("kubernetes"),
            port(),
            blue_green(),
            Some("spec.autoscalerRef"),
            hpa(),
        ),
        daemon_set(
            "ds-keda",
            Some("kubernetes"),
            port(),
            blue_green(),
            Some("spec.autoscalerRef"),
            keda(json!({})),
        ),
        // StatefulSets take every strategy a Deployment takes, and an autoscaler.
        Case {
            target: "StatefulSet",
            ..case(
                "sts-weights",
                Some("gatewayapi"),
                gateway(),
                weights(),
                None,
            )
        },
        Case {
            target: "StatefulSet",
            autoscaler: hpa(),
            ..case(
                "sts-blue-green",
                Some("kubernetes"),
                port(),
                blue_green(),
                None,
            )
        },
        // Autoscalers go with kinds that have a replica count; queries with KEDA only.
        Case {
            autoscaler: keda(
                json!({"primaryScalerReplicas": {"minReplicas": 0, "maxReplicas": 3},
                "primaryScalerQueries": {"requests": "sum(rate(http_requests_total{app=\"keda-blue-green-primary\"}[1m]))"}}),
            ),
            ..case(
                "keda-blue-green",
                Some("kubernetes"),
                port(),
                blue_green(),
                None,
            )
        },
        Case {
            autoscaler: keda(
                json!({"primaryScalerReplicas": {"minReplicas": 4, "maxReplicas": 3}}),
            ),
            ..case(
                "keda-bounds",
                Some("kubernetes"),
                port(),
                blue_green(),
                Some("spec.autoscalerRef.primaryScalerReplicas"),
            )
        },
        Case {
            autoscaler: json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "primaryScalerQueries": {"requests": "sum(up)"}}),
            ..case(
                "hpa-queries",
                Some("kubernetes"),
                port(),
                blue_green(),
                Some("spec.autoscalerRef.primaryScalerQueries"),
            )
        },
        Case {
            autoscaler: json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob"}),
            ..case(
                "keda-scaled-job",
                Some("kubernetes"),
                port(),
                blue_green(),
                Some("spec.autoscalerRef.kind"),
            )
        },
        fallback(
            "k8s-weights",
            Some("kubernetes"),
            weights(),
            &["spec.analysis.stepWeight"],
        ),
        fallback(
            "k8s-default-weights",
            None,
            weights(),
            &["spec.analysis.stepWeight"],
        ),
        case(
            "k8s-blue-green",
            Some("kubernetes"),
            port(),
            blue_green(),
            None,
        ),
        fallback(
            "k8s-mirror",
            Some("kubernetes"),
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            &["spec.analysis.mirror"],
        ),
        fallback(
            "k8s-ab",
            Some("kubernetes"),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            &["spec.analysis.match"],
        ),
        fallback(
            "k8s-affinity",
            Some("kubernetes"),
            json!({"interval": "1s", "iterations": 2, "sessionAffinity": {"cookieName": "c"}}),
            &["spec.analysis.sessionAffinity"],
        ),
        case(
            "gw-no-parent",
            Some("gatewayapi"),
            port(),
            weights(),
            Some("spec.service.gatewayRefs"),
        ),
        case(
            "gw-weights",
            Some("gatewayapi:v1beta1"),
            gateway(),
            weights(),
            None,
        ),
        case(
            "gw-ab-source",
            Some("gatewayapi"),
            gateway(),
            ab(json!({"sourceLabels": {"app": "x"}})),
            Some("spec.analysis.match[0].sourceLabels"),
        ),
        case(
            "gw-ab-method-regex",
            Some("gatewayapi"),
            gateway(),
            ab(json!({"method": {"regex": "P.*"}})),
            Some("spec.analysis.match[0].method"),
        ),
        case(
            "gw-ab-headers",
            Some("gatewayapi"),
            gateway(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}, "method": {"exact": "GET"}})),
            None,
        ),
        case(
            "gw-retries",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "gatewayRefs": gateways(), "retries": {"attempts": 2}}),
            weights(),
            Some("spec.service.retries"),
        ),
        case(
            "gw-mirror",
            Some("gatewayapi"),
            gateway(),
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            None,
        ),
        case(
            "istio-everything",
            Some("istio"),
            json!({"port": 80, "targetPort": 8080, "timeout": "5s", "retries": {"attempts": 2}}),
            ab(json!({"sourceLabels": {"app": "x"}, "method": {"regex": "P.*"}})),
            None,
        ),
        // Istio's TCP routes: weights, matched by port (Flagger's istio TCP).
        case(
            "istio-tcp",
            Some("istio"),
            json!({"port": 80, "appProtocol": "tcp", "match": [{"port": 80}]}),
            weights(),
            None,
        ),
        case(
            "istio-tcp-timeout",
            Some("istio"),
            json!({"port": 80, "appProtocol": "tcp", "timeout": "5s"}),
            weights(),
            Some("spec.service.timeout"),
        ),
        case(
            "istio-tcp-ab",
            Some("istio"),
            json!({"port": 80, "appProtocol": "tcp"}),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match"),
        ),
        // Istio's own match conditions, on the split and in the A/B route.
        case(
            "istio-conditions",
            Some("istio"),
            json!({"port": 80, "targetPort": 8080, "match": [{
                "uri": {"prefix": "/API"}, "ignoreUriCase": true,
                "authority": {"exact": "shop.example.com"}, "gateways": ["mesh"], "port": 80,
                "scheme": {"exact": "http"}, "sourceNamespace": "web", "name": "shop"}]}),
            ab(
                json!({"headers": {"x-canary": {"exact": "on"}}, "withoutHeaders": {"x-bot": {"exact": "1"}}}),
            ),
            None,
        ),
        case(
            "istio-conditions-clash",
            Some("istio"),
            json!({"port": 80, "match": [{"authority": {"exact": "shop.example.com"}}]}),
            ab(json!({"authority": {"exact": "beta.example.com"}})),
            Some("spec.analysis.match[0].authority"),
        ),
        case(
            "contour-istio-condition",
            Some("contour"),
            port(),
            ab(
                json!({"headers": {"x-canary": {"exact": "on"}}, "withoutHeaders": {"x-bot": {"exact": "1"}}}),
            ),
            Some("spec.analysis.match[0].withoutHeaders"),
        ),
        case(
            "gw-istio-condition",
            Some("gatewayapi"),
            json!({"port": 80, "gatewayRefs": gateways(), "match": [{"authority": {"exact": "a.example"}}]}),
            weights(),
            Some("spec.service.match[0].authority"),
        ),
        // A delegate VirtualService: no hosts or gateways of its own.
        case(
            "istio-delegate",
            Some("istio"),
            json!({"port": 80, "delegation": true, "match": [{"uri": {"prefix": "/shop"}}]}),
            weights(),
            None,
        ),
        case(
            "istio-delegate-hosts",
            Some("istio"),
            json!({"port": 80, "delegation": true, "hosts": ["shop.example.com"]}),
            weights(),
            Some("spec.service.hosts"),
        ),
        case(
            "nginx-no-ingress-ref",
            Some("nginx"),
            port(),
            weights(),
            Some("spec.ingressRef"),
        ),
        nginx("nginx-weights", weights(), None),
        nginx("nginx-blue-green", blue_green(), None),
        nginx(
            "nginx-ab",
            json!({"interval": "1s", "iterations": 2, "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"exact": "canary"}}}]}),
            None,
        ),
        nginx(
            "nginx-ab-two-headers",
            json!({"interval": "1s", "iterations": 2, "match": [
                {"headers": {"x-a": {"exact": "1"}}},
                {"headers": {"x-b": {"exact": "2"}}}]}),
            Some("spec.analysis.match[1].headers.x-b"),
        ),
        nginx(
            "nginx-ab-uri",
            ab(json!({"uri": {"prefix": "/api"}})),
            Some("spec.analysis.match[0].uri"),
        ),
        nginx(
            "nginx-mirror",
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            Some("spec.analysis.mirror"),
        ),
        nginx(
            "nginx-affinity",
            json!({"interval": "1s", "stepWeight": 50, "maxWeight": 50, "sessionAffinity": {"cookieName": "c"}}),
            Some("spec.analysis.sessionAffinity"),
        ),
        case("contour-weights", Some("contour"), port(), weights(), None),
        case(
            "contour-ab",
            Some("contour"),
            json!({"port": 80, "targetPort": 8080, "timeout": "5s", "retries": {"attempts": 2, "retryOn": "5xx"}}),
            ab(
                json!({"headers": {"x-canary": {"prefix": "in"}}, "queryParams": {"beta": {"exact": "1"}}}),
            ),
            None,
        ),
        case(
            "contour-ab-method",
            Some("contour"),
            port(),
            ab(json!({"method": {"exact": "GET"}})),
            Some("spec.analysis.match[0].method"),
        ),
        case(
            "contour-two-paths",
            Some("contour"),
            json!({"port": 80, "targetPort": 8080, "match": [{"uri": {"prefix": "/api"}}]}),
            ab(json!({"uri": {"prefix": "/api/v2"}})),
            Some("spec.analysis.match[0].uri"),
        ),
        case(
            "contour-mirror",
            Some("contour"),
            port(),
            json!({"interval": "1s", "iterations": 2, "mirror": true, "mirrorWeight": 50}),
            None,
        ),
        case(
            "contour-affinity",
            Some("contour"),
            port(),
            json!({"interval": "1s", "stepWeight": 50, "maxWeight": 50, "sessionAffinity": {"cookieName": "c"}}),
            Some("spec.analysis.sessionAffinity"),
        ),
        case(
            "contour-rewrite",
            Some("contour"),
            json!({"port": 80, "targetPort": 8080, "rewrite": {"uri": "/"}}),
            weights(),
            Some("spec.service.rewrite"),
        ),
        case("traefik-weights", Some("traefik"), port(), weights(), None),
        case(
            "traefik-legacy-group",
            Some("traefik:traefik.containo.us"),
            port(),
            weights(),
            None,
        ),
        case(
            "traefik-mirror",
            Some("traefik"),
            port(),
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            None,
        ),
        case(
            "traefik-ab",
            Some("traefik"),
            port(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match[0].headers"),
        ),
        case(
            "traefik-timeout",
            Some("traefik"),
            json!({"port": 80, "targetPort": 8080, "timeout": "5s"}),
            weights(),
            Some("spec.service.timeout"),
        ),
        case(
            "traefik-v2",
            Some("traefik:v2"),
            port(),
            weights(),
            Some("spec.provider"),
        ),
        // Gateway API complete: a Service parent (GAMMA), the route fields, and nonsense
        // refused by field.
        case(
            "gw-service-parent",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080,
                "gatewayRefs": [{"name": "gw-service-parent", "group": "core", "kind": "Service", "port": 80}]}),
            weights(),
            None,
        ),
        case(
            "gw-parent-kind",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "web", "kind": "Ingress"}]}),
            weights(),
            Some("spec.service.gatewayRefs[0].kind"),
        ),
        case(
            "gw-route-fields",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "gatewayRefs": gateways(),
                "timeout": "30s", "backendTimeout": "10s",
                "rewrite": {"uri": "/", "type": "ReplacePrefixMatch"},
                "corsPolicy": {"allowOrigins": [{"exact": "https://app.example"}], "maxAge": "1h"},
                "mirror": [{"backendRef": {"name": "shadow", "port": 80}, "percent": 10}]}),
            weights(),
            None,
        ),
        case(
            "gw-backend-timeout",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "gatewayRefs": gateways(), "timeout": "5s", "backendTimeout": "10s"}),
            weights(),
            Some("spec.service.backendTimeout"),
        ),
        case(
            "gw-cors-regex",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "gatewayRefs": gateways(),
                "corsPolicy": {"allowOrigins": [{"regex": "https://.*"}]}}),
            weights(),
            Some("spec.service.corsPolicy.allowOrigins[0]"),
        ),
        // GRPCRoute for appProtocol: grpc, TCPRoute for tcp.
        case(
            "gw-grpc",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "appProtocol": "grpc", "gatewayRefs": gateways()}),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            None,
        ),
        case(
            "gw-grpc-uri",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "appProtocol": "grpc", "gatewayRefs": gateways()}),
            ab(json!({"uri": {"prefix": "/pkg.Service/"}})),
            Some("spec.analysis.match[0].uri"),
        ),
        case(
            "gw-tcp",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "appProtocol": "tcp", "gatewayRefs": gateways()}),
            weights(),
            None,
        ),
        case(
            "gw-tcp-timeout",
            Some("gatewayapi"),
            json!({"port": 80, "targetPort": 8080, "appProtocol": "tcp", "gatewayRefs": gateways(), "timeout": "5s"}),
            weights(),
            Some("spec.service.timeout"),
        ),
        case(
            "istio-backend-timeout",
            Some("istio"),
            json!({"port": 80, "targetPort": 8080, "backendTimeout": "5s"}),
            weights(),
            Some("spec.service.backendTimeout"),
        ),
        // SMI TrafficSplits: weights (and blue/green), nothing else.
        case("linkerd-weights", Some("linkerd"), port(), weights(), None),
        case(
            "linkerd-ab",
            Some("linkerd"),
            port(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match[0].headers"),
        ),
        case(
            "smi-v1alpha1",
            Some("smi:v1alpha1"),
            port(),
            weights(),
            None,
        ),
        case(
            "smi-v1alpha2",
            Some("smi:v1alpha2"),
            port(),
            blue_green(),
            None,
        ),
        case(
            "smi-v1alpha3",
            Some("smi:v1alpha3"),
            port(),
            weights(),
            None,
        ),
        case(
            "smi-no-version",
            Some("smi"),
            port(),
            weights(),
            Some("spec.provider"),
        ),
        case(
            "smi-mirror",
            Some("smi:v1alpha3"),
            port(),
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            Some("spec.analysis.mirror"),
        ),
        // Skipper: weights (and blue/green) through the clone of spec.ingressRef, nothing else.
        skipper("skipper-weights", weights(), None),
        skipper("skipper-blue-green", blue_green(), None),
        case(
            "skipper-no-ingress-ref",
            Some("skipper"),
            port(),
            weights(),
            Some("spec.ingressRef"),
        ),
        skipper(
            "skipper-ab",
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match[0].headers"),
        ),
        skipper(
            "skipper-mirror",
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            Some("spec.analysis.mirror"),
        ),
        // APISIX: weights through the copy of spec.routeRef (accepted Canaries roll out in
        // tests/route_providers.rs, which creates the route).
        case(
            "apisix-no-route-ref",
            Some("apisix"),
            port(),
            weights(),
            Some("spec.routeRef"),
        ),
        case(
            "apisix-ab",
            Some("apisix"),
            port(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match[0].headers"),
        ),
        case(
            "apisix-timeout",
            Some("apisix"),
            json!({"port": 80, "targetPort": 8080, "timeout": "5s"}),
            weights(),
            Some("spec.service.timeout"),
        ),
        // Gloo: weights, and A/B testing by headers and exact methods.
        case("gloo-weights", Some("gloo"), port(), weights(), None),
        case(
            "gloo-ab",
            Some("gloo"),
            json!({"port": 80, "targetPort": 8080, "match": [{"headers": {"x-tenant": {"exact": "shop"}}}]}),
            ab(json!({"headers": {"x-canary": {"regex": "^in.*"}}, "method": {"exact": "GET"}})),
            None,
        ),
        case(
            "gloo-ab-uri",
            Some("gloo"),
            port(),
            ab(json!({"uri": {"prefix": "/api"}})),
            Some("spec.analysis.match[0].uri"),
        ),
        case(
            "gloo-ab-method-regex",
            Some("gloo"),
            port(),
            ab(json!({"method": {"regex": "P.*"}})),
            Some("spec.analysis.match[0].method"),
        ),
        case(
            "gloo-mirror",
            Some("gloo"),
            port(),
            json!({"interval": "1s", "iterations": 2, "mirror": true}),
            Some("spec.analysis.mirror"),
        ),
        // Kuma: weights only, through Flagger's TrafficRoute or a MeshHTTPRoute.
        case("kuma-weights", Some("kuma"), port(), weights(), None),
        case(
            "kuma-mesh-http-route",
            Some("kuma:meshhttproute"),
            port(),
            blue_green(),
            None,
        ),
        case(
            "kuma-ab",
            Some("kuma"),
            port(),
            ab(json!({"headers": {"x-canary": {"exact": "on"}}})),
            Some("spec.analysis.match[0].headers"),
        ),
        case(
            "kuma-v2",
            Some("kuma:v1alpha2"),
            port(),
            weights(),
            Some("spec.provider"),
        ),
        case(
            "appmesh",
            Some("appmesh"),
            port(),
            weights(),
            Some("spec.provider"),
        ),
        case(
            "gw-v2",
            Some("gatewayapi:v2"),
            gateway(),
            weights(),
            Some("spec.provider"),
        ),
    ]
}

/// The Canary of a case, named after it, targeting the workload of the same name.
pub fn canary(case: &Case) -> Value {
    let mut spec = json!({
        "targetRef": {"apiVersion": "apps/v1", "kind": case.target, "name": case.name},
        "service": case.service,
        "analysis": case.analysis,
    });
    if let Some(provider) = case.provider {
        spec["provider"] = json!(provider);
    }
    if !case.autoscaler.is_null() {
        spec["autoscalerRef"] = case.autoscaler.clone();
        spec["autoscalerRef"]["name"] = json!(case.name);
    }
    if let Some(ingress) = case.ingress_ref {
        spec["ingressRef"] =
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress});
    }
    json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": case.name}, "spec": spec,
    })
}
