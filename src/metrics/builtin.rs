//! The built-in metrics, `request-success-rate` (percent of requests without a 5xx, checked with
//! `min`) and `request-duration` (99th percentile in milliseconds, the mean for nginx as in
//! Flagger, checked with `max`), written
//! for the metrics each traffic provider exposes. Same semantics as Flagger's, so a migrated
//! Canary checks the same thing; the label selecting the workload is `{{ workload }}` so the
//! judge can ask for the primary's values with the same query.

/// Whose metrics describe a workload's requests; each provider's row of the provider table
/// names its source.
pub use crate::api::provider::MetricSource as Source;

pub const SUCCESS_RATE: &str = "request-success-rate";
pub const DURATION: &str = "request-duration";

/// The query template of a built-in metric, None for any other name.
pub fn query(name: &str, source: Source) -> Option<&'static str> {
    let query = match (name, source) {
        (SUCCESS_RATE, Source::Istio) => concat!(
            r#"sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ workload }}", response_code!~"5.."}[{{ interval }}]))"#,
            r#" / sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ workload }}"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Istio) => {
            r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ workload }}"}[{{ interval }}])) by (le))"#
        }
        (SUCCESS_RATE, Source::Linkerd) => concat!(
            r#"sum(rate(response_total{namespace="{{ namespace }}", deployment="{{ workload }}", direction="inbound", classification!="failure"}[{{ interval }}]))"#,
            r#" / sum(rate(response_total{namespace="{{ namespace }}", deployment="{{ workload }}", direction="inbound"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Linkerd) => {
            r#"histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}", deployment="{{ workload }}", direction="inbound"}[{{ interval }}])) by (le))"#
        }
        // ingress-nginx labels canary traffic with the canary ingress (`canary` non-empty);
        // the primary's requests are the rest.
        (SUCCESS_RATE, Source::Nginx) => concat!(
            r#"sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}", ingress="{{ ingress }}", canary{% if workload == target %}!{% endif %}="", status!~"5.."}[{{ interval }}]))"#,
            r#" / sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}", ingress="{{ ingress }}", canary{% if workload == target %}!{% endif %}=""}[{{ interval }}])) * 100"#
        ),
        // Flagger's nginx observer reads the mean upstream response time (not a percentile):
        // a migrated threshold keeps its meaning.
        (DURATION, Source::Nginx) => concat!(
            r#"sum(rate(nginx_ingress_controller_response_duration_seconds_sum{namespace="{{ namespace }}", ingress="{{ ingress }}", canary{% if workload == target %}!{% endif %}=""}[{{ interval }}]))"#,
            r#" / sum(rate(nginx_ingress_controller_response_duration_seconds_count{namespace="{{ namespace }}", ingress="{{ ingress }}", canary{% if workload == target %}!{% endif %}=""}[{{ interval }}])) * 1000"#
        ),
        // Envoy names a Contour upstream cluster `<namespace>_<service>_<port>`: the canary's
        // requests are those to `<svc>-canary`, the primary's those to `<svc>-primary`.
        (SUCCESS_RATE, Source::Contour) => concat!(
            r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_[0-9a-zA-Z-]+", envoy_response_code!~"5.."}[{{ interval }}]))"#,
            r#" / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Contour) => {
            r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}_{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#
        }
        // Traefik names a Kubernetes Service behind a TraefikService
        // `<namespace>-<service>-<port>@kubernetescrd`; its request counts are the `+Inf`
        // bucket of the duration histogram.
        (SUCCESS_RATE, Source::Traefik) => concat!(
            r#"sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf"}[{{ interval }}]))"#,
            r#" / sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Traefik) => {
            r#"histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}-[0-9a-zA-Z-]+@kubernetescrd"}[{{ interval }}])) by (le)) * 1000"#
        }
        // Skipper names a route of an Ingress `kube_<namespace>__<ingress>__<host>__<path>__<backend>`
        // (`kubeew_` for east-west), every character but letters and digits as `_` (so are the
        // names here; Flagger's observer splices them in as they are); the
        // routes of the `<ingress>-canary` clone carry both backends while the canary has a
        // share. Flagger's observer reads the request counts of the `+Inf` bucket and the
        // mean route duration (not a percentile): a migrated threshold keeps its meaning.
        (SUCCESS_RATE, Source::Skipper) => concat!(
            r#"sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_{{ namespace | replace("-", "_") }}__{{ ingress | replace("-", "_") | replace(".", "_") }}_canary__.*__{{ service | replace("-", "_") }}_{% if workload == target %}canary{% else %}primary{% endif %}(_[0-9]+)?", code!~"5..", le="+Inf"}[{{ interval }}]))"#,
            r#" / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_{{ namespace | replace("-", "_") }}__{{ ingress | replace("-", "_") | replace(".", "_") }}_canary__.*__{{ service | replace("-", "_") }}_{% if workload == target %}canary{% else %}primary{% endif %}(_[0-9]+)?", le="+Inf"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Skipper) => concat!(
            r#"sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_{{ namespace | replace("-", "_") }}__{{ ingress | replace("-", "_") | replace(".", "_") }}_canary__.*__{{ service | replace("-", "_") }}_{% if workload == target %}canary{% else %}primary{% endif %}(_[0-9]+)?"}[{{ interval }}]))"#,
            r#" / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_{{ namespace | replace("-", "_") }}__{{ ingress | replace("-", "_") | replace(".", "_") }}_canary__.*__{{ service | replace("-", "_") }}_{% if workload == target %}canary{% else %}primary{% endif %}(_[0-9]+)?"}[{{ interval }}])) * 1000"#
        ),
        // APISIX's ingress controller names a rule of an ApisixRoute `<namespace>_<route>_<rule>`:
        // serin's copy is `<routeRef>-<svc>-canary`, whose rule carries the requests of both
        // backends (APISIX labels no backend), so the canary and the primary read the same
        // requests, as Flagger's observer does.
        (SUCCESS_RATE, Source::Apisix) => concat!(
            r#"sum(rate(apisix_http_status{route=~"{{ namespace }}_.+-{{ service }}-canary_.+", code!~"5.."}[{{ interval }}]))"#,
            r#" / sum(rate(apisix_http_status{route=~"{{ namespace }}_.+-{{ service }}-canary_.+"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Apisix) => {
            r#"histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type="request", route=~"{{ namespace }}_.+-{{ service }}-canary_.+"}[{{ interval }}])) by (le))"#
        }
        // Gloo's Envoy names an Upstream's cluster `<upstream>_<namespace>`; serin's Upstreams
        // are `<namespace>-<svc>-canaryupstream-<port>` and `...-primaryupstream-<port>`.
        (SUCCESS_RATE, Source::Gloo) => concat!(
            r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}upstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*"}[{{ interval }}]))"#,
            r#" / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}upstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Gloo) => {
            r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}-{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}upstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#
        }
        // Kuma's Envoy labels a cluster's series with its `kuma.io/service` tag,
        // `<service>_<namespace>_svc_<port>`.
        (SUCCESS_RATE, Source::Kuma) => concat!(
            r#"sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_{{ namespace }}_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*"}[{{ interval }}]))"#,
            r#" / sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Kuma) => {
            r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{service=~"{{ service }}-{% if workload == target %}canary{% else %}primary{% endif %}_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#
        }
        // Knative's gateway (Kourier's Envoy) names a revision's cluster
        // `<namespace>/<revision>`, a revision `<service>-<generation>`: the requests of every
        // revision of the Service, so the canary and the primary read the same requests while
        // they share them, as Flagger's knative observer does.
        (SUCCESS_RATE, Source::Knative) => concat!(
            r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ target }}-[0-9]+", envoy_response_code!~"5.*"}[{{ interval }}]))"#,
            r#" / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ target }}-[0-9]+"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::Knative) => {
            r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}/{{ target }}-[0-9]+"}[{{ interval }}])) by (le))"#
        }
        // Flagger's http observer: the application's own histogram, its `_count` split by
        // `status`, on pods `<name>-<replicaset hash>-<suffix>` (the pattern matches the canary's
        // pods and not `<name>-primary-...`). A Flagger installation's Prometheus labels pods
        // `kubernetes_namespace`/`kubernetes_pod_name`; the Prometheus Operator's and most
        // relabelling configs say `namespace`/`pod`: both are read, and a series carrying both
        // label sets is counted once (`or` keeps one of two series with the same labels).
        (SUCCESS_RATE, Source::App) => concat!(
            r#"sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*"}[{{ interval }}])"#,
            r#" or rate(http_request_duration_seconds_count{namespace="{{ namespace }}", pod=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*"}[{{ interval }}]))"#,
            r#" / sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])"#,
            r#" or rate(http_request_duration_seconds_count{namespace="{{ namespace }}", pod=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100"#
        ),
        (DURATION, Source::App) => concat!(
            r#"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])"#,
            r#" or rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}", pod=~"{{ workload }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le)) * 1000"#
        ),
        _ => return None,
    };
    Some(query)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metrics::template::{Vars, render};

    fn vars<'a>(workload: &'a str, none: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars {
            name: "web",
            namespace: "prod",
            target: "web",
            service: "web",
            interval: "1m".into(),
            workload,
            ingress: "web",
            route: "web",
            variables: none,
        }
    }

    #[test]
    fn every_builtin_renders_for_every_source() {
        let none = BTreeMap::new();
        for source in [
            Source::Istio,
            Source::Linkerd,
            Source::Nginx,
            Source::Contour,
            Source::Traefik,
            Source::Skipper,
            Source::Apisix,
            Source::Gloo,
            Source::Kuma,
            Source::Knative,
            Source::App,
        ] {
            for name in [SUCCESS_RATE, DURATION] {
                let query = query(name, source).unwrap();
                let rendered = render(query, &vars("web", &none)).unwrap();
                assert!(
                    rendered.contains("[1m]") && rendered.contains("prod"),
                    "{rendered}"
                );
                assert!(!rendered.contains("{{"), "{rendered}");
            }
        }
        assert_eq!(query("latency", Source::App), None);
    }

    #[test]
    fn nginx_tells_canary_from_primary_by_the_canary_label() {
        let none = BTreeMap::new();
        let q = query(DURATION, Source::Nginx).unwrap();
        assert!(
            render(q, &vars("web", &none))
                .unwrap()
                .contains(r#"canary!="""#)
        );
        assert!(
            render(q, &vars("web-primary", &none))
                .unwrap()
                .contains(r#"canary="""#)
        );
    }

    #[test]
    fn contour_and_traefik_read_the_upstream_of_the_workloads_service() {
        let none = BTreeMap::new();
        let render_for = |name, source, workload| {
            render(query(name, source).unwrap(), &vars(workload, &none)).unwrap()
        };
        let canary = render_for(SUCCESS_RATE, Source::Contour, "web");
        assert!(
            canary.contains(r#"envoy_cluster_name=~"prod_web-canary_[0-9a-zA-Z-]+""#)
                && canary.contains(r#"envoy_response_code!~"5..""#),
            "{canary}"
        );
        let primary = render_for(DURATION, Source::Contour, "web-primary");
        assert!(
            primary.contains(r#"envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"prod_web-primary_[0-9a-zA-Z-]+"}[1m]"#),
            "{primary}"
        );
        let canary = render_for(SUCCESS_RATE, Source::Traefik, "web");
        assert!(
            canary.contains(
                r#"service=~"prod-web-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf""#
            ),
            "{canary}"
        );
        let primary = render_for(DURATION, Source::Traefik, "web-primary");
        assert!(
            primary.contains(r#"service=~"prod-web-primary-[0-9a-zA-Z-]+@kubernetescrd""#)
                && primary.ends_with("* 1000"),
            "{primary}"
        );
    }

    #[test]
    fn providers_read_the_metrics_of_their_proxies() {
        use crate::api::provider::{ProviderKind, TrafficProvider};
        let source = |name| TrafficProvider::parse(name).unwrap().row().metrics;
        assert_eq!(source("istio"), Source::Istio);
        assert_eq!(source("gatewayapi:v1"), Source::App);
        assert_eq!(source("kubernetes"), Source::App);
        assert_eq!(ProviderKind::Istio.row().metrics, Source::Istio);
        assert_eq!(source("nginx"), Source::Nginx);
        assert_eq!(source("contour"), Source::Contour);
        assert_eq!(source("traefik:traefik.containo.us"), Source::Traefik);
        assert_eq!(source("skipper"), Source::Skipper);
        assert_eq!(source("apisix"), Source::Apisix);
        assert_eq!(source("gloo"), Source::Gloo);
        assert_eq!(source("kuma:meshhttproute"), Source::Kuma);
        let kuma = render(
            query(DURATION, Source::Kuma).unwrap(),
            &vars("web-primary", &BTreeMap::new()),
        )
        .unwrap();
        assert!(
            kuma.contains(r#"service=~"web-primary_prod_svc_[0-9a-zA-Z-]+""#),
            "{kuma}"
        );
        let gloo = |workload| {
            render(
                query(SUCCESS_RATE, Source::Gloo).unwrap(),
                &vars(workload, &BTreeMap::new()),
            )
            .unwrap()
        };
        assert!(gloo("web").contains(
            r#"envoy_cluster_name=~"prod-web-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+""#
        ));
        assert!(gloo("web-primary").contains(r#"envoy_cluster_name=~"prod-web-primaryupstream-"#));
        let apisix = render(
            query(DURATION, Source::Apisix).unwrap(),
            &vars("web-primary", &BTreeMap::new()),
        )
        .unwrap();
        assert!(
            apisix.contains(
                r#"apisix_http_latency_bucket{type="request", route=~"prod_.+-web-canary_.+"}[1m]"#
            ),
            "{apisix}"
        );
    }

    #[test]
    fn skipper_reads_the_routes_of_the_canary_ingress_by_backend() {
        let none = BTreeMap::new();
        let render_for = |name, workload| {
            render(
                query(name, Source::Skipper).unwrap(),
                &vars(workload, &none),
            )
            .unwrap()
        };
        let canary = render_for(SUCCESS_RATE, "web");
        assert!(
            canary.contains(r#"route=~"kube(ew)?_prod__web_canary__.*__web_canary(_[0-9]+)?", code!~"5..", le="+Inf""#),
            "{canary}"
        );
        let none = BTreeMap::new();
        let dashed = Vars {
            namespace: "shop-prod",
            service: "web-api",
            target: "web-api",
            ingress: "web.api",
            ..vars("web-api", &none)
        };
        let canary = render(query(SUCCESS_RATE, Source::Skipper).unwrap(), &dashed).unwrap();
        assert!(
            canary.contains(
                r#"route=~"kube(ew)?_shop_prod__web_api_canary__.*__web_api_canary(_[0-9]+)?""#
            ),
            "Skipper's spelling of the names: {canary}"
        );
        let primary = render_for(DURATION, "web-primary");
        assert!(
            primary.contains(r#"skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_prod__web_canary__.*__web_primary(_[0-9]+)?"}[1m]"#)
                && primary.ends_with("* 1000"),
            "{primary}"
        );
    }
}
