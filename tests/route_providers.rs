//! The route providers writing one object of their own kind (Contour's HTTPProxy, Traefik's
//! TraefikService in both API groups, Skipper's canary Ingress, APISIX's ApisixRoute copy,
//! Gloo's RouteTable, Kuma's MeshHTTPRoute), end to end on the real control plane with `serin
//! controller` as its ServiceAccount and the minimal CRDs of tests/fixtures/crds: a table of
//! providers, one row each, run through the same rollout and the same takeover. A new provider
//! of this shape is a new row. Knative, whose route is the target Knative Service itself, has a
//! test of its own at the end.

mod cluster;
mod mock;

use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use serin::api::Phase;

use cluster::eventually;
use cluster::rollout::{Setup, WAIT, setup};
use cluster::workloads::Readiness;

/// The ingress class the controller is started with (`--ingress-class`), which Contour's
/// HTTPProxies name.
const INGRESS_CLASS: &str = "contour-external";

/// One provider: its name in `spec.provider`, the kind it writes, how to read the (primary,
/// canary) weights of that object, and a spec a user (or Flagger) wrote before serin came.
struct Row {
    /// The Canary's and Deployment's name in this row.
    name: &'static str,
    provider: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    /// The (primary, canary) weights of the provider's object (spec or annotations).
    weights: fn(&DynamicObject, &str) -> Option<(i64, i64)>,
    /// The provider's object's name, from the row's name (the route, or a clone's name).
    object: fn(&str) -> String,
    /// The provider clones an Ingress of the row's name (`spec.ingressRef`) sending `/` to the
    /// apex Service, which the test creates first.
    ingress_ref: bool,
    /// The provider copies a route of its own kind named after the row (`spec.routeRef`):
    /// that route's spec, which the test creates first.
    route_ref: Option<fn(&str) -> Value>,
    /// Blue/green mirroring is run (the provider can mirror).
    mirroring: bool,
    existing: fn(&str) -> Value,
    /// What the provider's object says beyond weights (its class, its services' ports).
    check: fn(&Value),
    /// The object holding the mirroring, when not the route itself.
    mirror_object: Option<fn(&str) -> String>,
    /// While mirroring: the service serving every request, the one receiving copies and the
    /// percent copied, from the route's spec and the mirror object's.
    mirrored: fn(&Value, Option<&Value>) -> Option<Mirrored>,
}

/// (serving service, service receiving copies, percent copied).
type Mirrored = (String, String, i64);

impl Row {
    fn api(&self, s: &Setup) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        );
        Api::namespaced_with(s.client.clone(), &s.ns, &resource)
    }

    /// The object as a user (or Flagger, by update) wrote it before serin came.
    async fn create_existing(&self, s: &Setup) {
        self.create(s, &(self.object)(self.name), (self.existing)(self.name))
            .await;
    }

    async fn mirrored(&self, s: &Setup) -> Option<Mirrored> {
        let route = self
            .api(s)
            .get_opt(&(self.object)(self.name))
            .await
            .ok()??;
        let mirroring = match self.mirror_object {
            Some(name) => self.api(s).get_opt(&name(self.name)).await.ok()?,
            None => None,
        };
        (self.mirrored)(
            &route.data["spec"],
            mirroring.as_ref().map(|m| &m.data["spec"]),
        )
    }

    async fn weights(&self, s: &Setup, name: &str) -> Option<(i64, i64)> {
        let object = self.api(s).get_opt(&(self.object)(name)).await.ok()??;
        (self.weights)(&object, name)
    }

    /// The provider's object as it is now.
    async fn object(&self, s: &Setup) -> DynamicObject {
        self.api(s).get(&(self.object)(self.name)).await.unwrap()
    }

    /// What the row's Canary needs first: its Deployment, and the Ingress it clones.
    async fn prepare(&self, s: &Setup) {
        s.create_deployment(self.name, Readiness::Ready).await;
        if self.ingress_ref {
            s.create_ingress(self.name, self.name).await;
        }
        if let Some(spec) = self.route_ref {
            self.create(s, self.name, spec(self.name)).await;
        }
    }

    async fn create(&self, s: &Setup, name: &str, spec: Value) {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{}/{}", self.group, self.version), "kind": self.kind,
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        self.api(s)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
}

fn rows() -> Vec<Row> {
    let traefik = |name, group| Row {
        name,
        provider: if group == "traefik.io" {
            "traefik"
        } else {
            "traefik:traefik.containo.us"
        },
        group,
        version: "v1alpha1",
        kind: "TraefikService",
        plural: "traefikservices",
        weights: |o, name| traefik_weights(&o.data["spec"], name),
        object: str::to_string,
        ingress_ref: false,
        route_ref: None,
        mirroring: true,
        existing: |name| json!({"weighted": {"services": [{"name": name, "port": 80, "weight": 1}]}}),
        check: |spec| {
            assert_eq!(spec["weighted"]["services"][0]["port"], 80, "{spec}");
        },
        mirror_object: Some(|name| format!("{name}-mirror")),
        mirrored: |route, mirroring| {
            // The route sends everything to the mirroring TraefikService...
            let services = route["weighted"]["services"].as_array()?;
            let [through] = services.as_slice() else {
                return None;
            };
            let mirroring = &mirroring?["mirroring"];
            let name = mirroring["name"].as_str()?;
            if through["kind"] != "TraefikService" || through["weight"] != 100 {
                return None;
            }
            assert_eq!(
                through["name"],
                format!("{}-mirror", name.trim_end_matches("-primary"))
            );
            // ...which serves from one service and copies to another.
            let mirror = &mirroring["mirrors"][0];
            Some((
                name.to_string(),
                mirror["name"].as_str()?.to_string(),
                mirror["percent"].as_i64()?,
            ))
        },
    };
    vec![
        Row {
            name: "contour",
            provider: "contour",
            group: "projectcontour.io",
            version: "v1",
            kind: "HTTPProxy",
            plural: "httpproxies",
            weights: |o, name| contour_weights(&o.data["spec"], name),
            object: str::to_string,
            ingress_ref: false,
            route_ref: None,
            mirroring: true,
            existing: |name| {
                json!({"virtualhost": {"fqdn": "app.example.com"},
                    "routes": [{"conditions": [{"prefix": "/"}], "services": [{"name": name, "port": 80}]}]})
            },
            check: |spec| {
                assert_eq!(spec["ingressClassName"], INGRESS_CLASS, "{spec}");
                let route = &spec["routes"][0];
                assert_eq!(route["conditions"], json!([{"prefix": "/"}]), "{spec}");
                assert_eq!(route["timeoutPolicy"]["response"], "30s", "{spec}");
            },
            mirror_object: None,
            mirrored: |route, _| {
                let services = route["routes"].as_array()?.last()?["services"].as_array()?;
                let mirror = services.iter().find(|s| s["mirror"] == true)?;
                let serving = services
                    .iter()
                    .find(|s| s["weight"] == 100 && s.get("mirror").is_none())?;
                Some((
                    serving["name"].as_str()?.to_string(),
                    mirror["name"].as_str()?.to_string(),
                    mirror["weight"].as_i64()?,
                ))
            },
        },
        traefik("traefik", "traefik.io"),
        traefik("traefik-legacy", "traefik.containo.us"),
        skipper_row(),
        apisix_row(),
        gloo_row(),
        kuma_row(),
    ]
}

/// The weights of the last route's destinations, the Upstreams named as Flagger names them.
fn gloo_weights(object: &DynamicObject, name: &str) -> Option<(i64, i64)> {
    let ns = object.namespace()?;
    let routes = object.data["spec"]["routes"].as_array()?;
    let destinations = routes.last()?["routeAction"]["multi"]["destinations"].as_array()?;
    let weight = |role: &str| {
        let upstream = format!("{ns}-{name}-{role}upstream-80");
        destinations
            .iter()
            .find(|d| d["destination"]["upstream"]["name"] == upstream.as_str())
            .and_then(|d| d["weight"].as_i64())
    };
    Some((weight("primary")?, weight("canary")?))
}

/// The weights of the MeshHTTPRoute's backends, named by their `kuma.io/service` tags.
fn kuma_weights(object: &DynamicObject, name: &str) -> Option<(i64, i64)> {
    let ns = object.namespace()?;
    let backends = object.data["spec"]["to"][0]["rules"][0]["default"]["backendRefs"].as_array()?;
    let weight = |role: &str| {
        let service = format!("{name}-{role}_{ns}_svc_80");
        backends
            .iter()
            .find(|b| b["name"] == service.as_str())
            .and_then(|b| b["weight"].as_i64())
    };
    Some((weight("primary")?, weight("canary")?))
}

fn apisix_weights(spec: &Value, name: &str) -> Option<(i64, i64)> {
    let backends = spec["http"].as_array()?.first()?["backends"].as_array()?;
    let weight = |service: String| {
        backends
            .iter()
            .find(|b| b["serviceName"] == service.as_str())
            .and_then(|b| b["weight"].as_i64())
    };
    Some((
        weight(format!("{name}-primary"))?,
        weight(format!("{name}-canary"))?,
    ))
}

/// Skipper: the `<ingress>-canary` clone of the row's Ingress, weights in its annotations.
fn skipper_row() -> Row {
    Row {
        name: "skipper",
        provider: "skipper",
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        weights: skipper_weights,
        object: |name| format!("{name}-canary"),
        ingress_ref: true,
        route_ref: None,
        mirroring: false,
        // A clone Flagger left, with its own rule for the primary.
        existing: |name| {
            json!({"rules": [{"host": "app.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": format!("{name}-primary"), "port": {"number": 80}}}}]}}]})
        },
        check: |spec| {
            let paths = &spec["rules"][0]["http"]["paths"];
            assert_eq!(
                paths[0]["backend"]["service"]["name"], "skipper-primary",
                "{spec}"
            );
            assert_eq!(
                paths[1]["backend"]["service"]["name"], "skipper-canary",
                "{spec}"
            );
        },
        mirror_object: None,
        mirrored: |_, _| None,
    }
}

/// APISIX: the `<route>-<svc>-canary` copy of the row's ApisixRoute.
fn apisix_row() -> Row {
    Row {
        name: "apisix",
        provider: "apisix",
        group: "apisix.apache.org",
        version: "v2",
        kind: "ApisixRoute",
        plural: "apisixroutes",
        weights: |o, name| apisix_weights(&o.data["spec"], name),
        object: |name| format!("{name}-{name}-canary"),
        ingress_ref: false,
        route_ref: Some(|name| {
            json!({"http": [{"name": "main", "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                "backends": [{"serviceName": name, "servicePort": 80}]}]})
        }),
        mirroring: false,
        // A copy Flagger left, at its first weights.
        existing: |name| {
            json!({"http": [{"name": "main", "priority": 10000, "match": {"paths": ["/*"]}, "backends": [
                {"serviceName": format!("{name}-primary"), "servicePort": 80, "weight": 100},
                {"serviceName": format!("{name}-canary"), "servicePort": 80, "weight": 0}]}]})
        },
        check: |spec| {
            let rule = &spec["http"][0];
            assert_eq!(rule["priority"], 10000, "{spec}");
            assert_eq!(rule["match"]["hosts"][0], "app.example.com", "{spec}");
            assert_eq!(rule["backends"][1]["servicePort"], 80, "{spec}");
        },
        mirror_object: None,
        mirrored: |_, _| None,
    }
}

/// Gloo: the RouteTable to the primary and canary Upstreams.
fn gloo_row() -> Row {
    Row {
        name: "gloo",
        provider: "gloo",
        group: "gateway.solo.io",
        version: "v1",
        kind: "RouteTable",
        plural: "routetables",
        weights: gloo_weights,
        object: str::to_string,
        ingress_ref: false,
        route_ref: None,
        mirroring: false,
        // A RouteTable Flagger left, to its own Upstreams.
        existing: |name| json!({"routes": [{"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": {"name": name, "namespace": "gloo-system"}}}}]}),
        check: |spec| {
            let route = &spec["routes"][0];
            assert_eq!(route["inheritablePathMatchers"], true, "{spec}");
            assert_eq!(
                route["routeAction"]["multi"]["destinations"]
                    .as_array()
                    .map(Vec::len),
                Some(2),
                "{spec}"
            );
        },
        mirror_object: None,
        mirrored: |_, _| None,
    }
}

/// Kuma's MeshHTTPRoute (`kuma:meshhttproute`; the cluster-scoped TrafficRoute has a test
/// of its own below).
fn kuma_row() -> Row {
    Row {
        name: "kuma",
        provider: "kuma:meshhttproute",
        group: "kuma.io",
        version: "v1alpha1",
        kind: "MeshHTTPRoute",
        plural: "meshhttproutes",
        weights: kuma_weights,
        object: str::to_string,
        ingress_ref: false,
        route_ref: None,
        mirroring: false,
        // A route a user wrote to the apex service.
        existing: |name| {
            json!({"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": {"kind": "MeshService", "name": name},
                "rules": [{"default": {"backendRefs": [{"kind": "MeshService", "name": name, "weight": 100}]}}]}]})
        },
        check: |spec| {
            assert_eq!(spec["targetRef"]["kind"], "Mesh", "{spec}");
            let path = &spec["to"][0]["rules"][0]["matches"][0]["path"];
            assert_eq!(path["value"], "/", "{spec}");
        },
        mirror_object: None,
        mirrored: |_, _| None,
    }
}

/// Skipper's weights are the clone's `zalando.org/backend-weights`; while the canary has no
/// share, the clone's routes are off (`False()`), so the user's Ingress serves everything.
fn skipper_weights(object: &DynamicObject, name: &str) -> Option<(i64, i64)> {
    let annotations = object.annotations();
    let weights: Value =
        serde_json::from_str(annotations.get("zalando.org/backend-weights")?).ok()?;
    let (primary, canary) = (
        weights[format!("{name}-primary")].as_i64()?,
        weights[format!("{name}-canary")].as_i64()?,
    );
    let predicate = annotations.get("zalando.org/skipper-predicate")?;
    let first = if canary > 0 { "Weight(100)" } else { "False()" };
    predicate.starts_with(first).then_some((primary, canary))
}

/// The weights of the last route (the split; A/B routes go in front).
fn contour_weights(spec: &Value, name: &str) -> Option<(i64, i64)> {
    let services = spec["routes"].as_array()?.last()?["services"].as_array()?;
    let weight = |service: String| {
        services
            .iter()
            .find(|s| s["name"] == service.as_str() && s.get("mirror").is_none())
            .and_then(|s| s["weight"].as_i64())
    };
    Some((
        weight(format!("{name}-primary"))?,
        weight(format!("{name}-canary"))?,
    ))
}

/// A service without traffic is left out of a TraefikService (Traefik reads no weight as 1).
fn traefik_weights(spec: &Value, name: &str) -> Option<(i64, i64)> {
    let services = spec["weighted"]["services"].as_array()?;
    let weight = |service: String| {
        services
            .iter()
            .find(|s| s["name"] == service.as_str())
            .map_or(Some(0), |s| s["weight"].as_i64())
    };
    Some((
        weight(format!("{name}-primary"))?,
        weight(format!("{name}-canary"))?,
    ))
}

/// One controller for every row, holding each rollout at its last step with a
/// confirm-promotion gate that says no until the test promotes by hand.
async fn controller(test: &str) -> (Setup, mock::Server) {
    let s = setup(test, &["--ingress-class", INGRESS_CLASS]).await;
    let gate = mock::serve(|_| mock::Reply::status(403, "held")).await;
    (s, gate)
}

fn extra(row: &Row, more: Value) -> Value {
    let mut extra = json!({"provider": row.provider,
        "service": {"port": 80, "targetPort": 8080, "timeout": "30s"}});
    if row.provider != "contour" {
        // Traefik writes no timeout onto its route: the provider table refuses it.
        extra["service"] = json!({"port": 80, "targetPort": 8080});
    }
    if row.ingress_ref {
        extra["ingressRef"] =
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": row.name});
    }
    if row.route_ref.is_some() {
        extra["routeRef"] = json!({"apiVersion": format!("{}/{}", row.group, row.version),
            "kind": row.kind, "name": row.name});
    }
    if let (Some(extra), Some(more)) = (extra.as_object_mut(), more.as_object()) {
        extra.extend(more.clone());
    }
    extra
}

/// Initialization writes the object at 100% primary; a new revision steps the weights to
/// maxWeight; promotion ends at 100% primary on the new revision; an aborted revision rolls
/// back to 100% primary; deleting the Canary deletes the object it owns.
#[tokio::test]
async fn each_provider_rolls_out_promotes_and_rolls_back_through_its_object() {
    let (s, gate) = controller("route-providers").await;
    let rows = rows();
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": gate.url}]});
    for row in &rows {
        row.prepare(&s).await;
        s.create_canary(row.name, analysis.clone(), extra(row, json!({})))
            .await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Initialized).await;
        let object = row.object(&s).await;
        assert_eq!(object.owner_references()[0].kind, "Canary", "{}", row.name);
        (row.check)(&object.data["spec"]);
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((100, 0)),
            "{}",
            row.name
        );
        s.gitops_apply(row.name, "v2").await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::WaitingPromotion).await;
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((50, 50)),
            "{}",
            row.name
        );
        s.request(row.name, "promote", "1").await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Succeeded).await;
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((100, 0)),
            "{}",
            row.name
        );
        assert_eq!(s.primary_version(row.name).await.as_deref(), Some("v2"));
        s.gitops_apply(row.name, "v3").await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::WaitingPromotion).await;
        s.request(row.name, "abort", "2").await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Failed).await;
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((100, 0)),
            "{}",
            row.name
        );
        assert_eq!(s.primary_version(row.name).await.as_deref(), Some("v2"));
        s.canaries()
            .delete(row.name, &Default::default())
            .await
            .unwrap();
    }
    for row in &rows {
        eventually(
            &format!("{} deleted with its Canary", row.name),
            WAIT,
            || async {
                row.api(&s)
                    .get_opt(&(row.object)(row.name))
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    }
}

/// An object named as Flagger names it that existed before the Canary is taken over, not
/// owned: serin writes its weights (keeping the fields it does not write) and, with
/// revertOnDeletion, puts its spec back when the Canary is deleted.
#[tokio::test]
async fn each_provider_takes_over_an_existing_object_and_restores_it() {
    let (s, _gate) = controller("route-takeover").await;
    let rows = rows();
    for row in &rows {
        row.create_existing(&s).await;
        row.prepare(&s).await;
        let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50});
        s.create_canary(
            row.name,
            analysis,
            extra(row, json!({"revertOnDeletion": true})),
        )
        .await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Initialized).await;
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((100, 0)),
            "{}",
            row.name
        );
        let taken = row.object(&s).await;
        assert!(
            taken.owner_references().is_empty(),
            "{}: not serin's to delete",
            row.name
        );
        assert!(taken.annotations().contains_key("serin.dev/original-spec"));
        if row.provider == "contour" {
            assert_eq!(
                taken.data["spec"]["virtualhost"]["fqdn"], "app.example.com",
                "the fields serin does not write stay the user's"
            );
        }
        s.canaries()
            .delete(row.name, &Default::default())
            .await
            .unwrap();
    }
    for row in &rows {
        eventually(&format!("Canary {} gone", row.name), WAIT, || async {
            s.canaries()
                .get_opt(row.name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
        let restored = row.object(&s).await;
        assert_eq!(
            restored.data["spec"],
            (row.existing)(row.name),
            "{}",
            row.name
        );
        assert!(
            !restored
                .annotations()
                .contains_key("serin.dev/original-spec")
        );
    }
}

/// Blue/green with mirroring: while the canary is analysed the provider's object copies a
/// percent of the requests to it (the primary serving them all); once rolled back, the
/// object splits by weight again with nothing mirrored. The objects pre-exist, written by
/// another field manager: what serin stops writing must go even so.
#[tokio::test]
async fn each_provider_mirrors_during_blue_green_and_stops_after() {
    let (s, _gate) = controller("route-mirror").await;
    let rows: Vec<Row> = rows().into_iter().filter(|r| r.mirroring).collect();
    // Iterations enough for the analysis to run until the test aborts it.
    let analysis = json!({"interval": "1s", "threshold": 2, "iterations": 1000, "mirror": true, "mirrorWeight": 40});
    for row in &rows {
        row.create_existing(&s).await;
        row.prepare(&s).await;
        s.create_canary(row.name, analysis.clone(), extra(row, json!({})))
            .await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Initialized).await;
        s.gitops_apply(row.name, "v2").await;
    }
    for row in &rows {
        let mirrored = eventually(&format!("{} mirroring", row.name), WAIT, || async {
            row.mirrored(&s).await
        })
        .await;
        let expected = (
            format!("{}-primary", row.name),
            format!("{}-canary", row.name),
            40,
        );
        assert_eq!(mirrored, expected, "{}", row.name);
        s.request(row.name, "abort", "1").await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Failed).await;
        let object = row.object(&s).await;
        assert_eq!(row.mirrored(&s).await, None, "{}", row.name);
        assert_eq!(
            row.weights(&s, row.name).await,
            Some((100, 0)),
            "{}: {:?}",
            row.name,
            object.data
        );
    }
}

/// Contour A/B testing: while the analysis runs, a route per match in front sends matching
/// requests to the canary; once rolled back, only the split route is left, all to the primary.
#[tokio::test]
async fn contour_routes_matching_requests_to_the_canary_during_ab_testing() {
    let (s, _gate) = controller("contour-ab").await;
    let row = rows()
        .into_iter()
        .find(|r| r.provider == "contour")
        .unwrap();
    let analysis = json!({"interval": "1s", "threshold": 2, "iterations": 1000, "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"user-agent": {"regex": ".*Firefox.*"}}, "queryParams": {"beta": {"exact": "1"}}}]});
    row.prepare(&s).await;
    s.create_canary(row.name, analysis, extra(&row, json!({})))
        .await;
    s.wait_phase(row.name, Phase::Initialized).await;
    let routes = || async {
        let proxy = row.api(&s).get_opt(row.name).await.ok()??;
        proxy.data["spec"]["routes"].as_array().cloned()
    };
    assert_eq!(routes().await.map(|r| r.len()), Some(1));
    s.gitops_apply(row.name, "v2").await;
    let routes_during = eventually("the A/B routes", WAIT, || async {
        routes().await.filter(|r| r.len() == 3)
    })
    .await;
    let canary = json!([{"name": "contour-canary", "weight": 100}]);
    for (route, conditions) in routes_during.iter().zip([
        json!([{"prefix": "/"}, {"header": {"name": "x-canary", "exact": "insider"}}]),
        json!([{"prefix": "/"}, {"header": {"name": "user-agent", "regex": ".*Firefox.*"}},
            {"queryParameter": {"name": "beta", "exact": "1"}}]),
    ]) {
        assert_eq!(route["conditions"], conditions, "{route}");
        let to_canary: Vec<Value> = route["services"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["weight"] != 0)
            .map(|s| json!({"name": s["name"], "weight": s["weight"]}))
            .collect();
        assert_eq!(Value::from(to_canary), canary, "{route}");
    }
    assert_eq!(
        contour_weights(&json!({"routes": routes_during}), row.name),
        Some((100, 0)),
        "other requests stay on the primary"
    );
    s.request(row.name, "abort", "1").await;
    s.wait_phase(row.name, Phase::Failed).await;
    let after = routes().await.unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(row.weights(&s, row.name).await, Some((100, 0)));
}

/// Kuma's TrafficRoute (`kuma`, what Flagger writes) is cluster-scoped: serin writes it in the
/// mesh the Canary's `kuma.io/mesh` annotation names, marks it as its own by annotation (a
/// cluster-scoped object cannot be owned by a Canary), steps its weights and promotes through
/// it and, with revertOnDeletion, deletes it with the Canary; one Flagger left is taken over
/// and its spec put back.
#[tokio::test]
async fn kuma_steps_a_cluster_scoped_traffic_route_in_the_canarys_mesh() {
    let (s, gate) = controller("kuma-traffic-route").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kuma.io", "v1alpha1", "TrafficRoute"),
        "trafficroutes",
    );
    let routes: Api<DynamicObject> = Api::all_with(s.client.clone(), &resource);
    // Cluster-scoped: names of this namespace's own.
    let suffix = s.ns.rsplit('-').next().unwrap().to_string();
    let (own, flaggers) = (format!("own-{suffix}"), format!("flagger-{suffix}"));
    let existing = json!({"sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": format!("{flaggers}_{}_svc_80", s.ns)}}],
        "conf": {"split": [{"weight": 100, "destination": {"kuma.io/service": "elsewhere"}}]}});
    let left: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kuma.io/v1alpha1", "kind": "TrafficRoute", "mesh": "default",
        "metadata": {"name": flaggers}, "spec": existing,
    }))
    .unwrap();
    routes.create(&PostParams::default(), &left).await.unwrap();
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": gate.url}]});
    for name in [&own, &flaggers] {
        s.create_deployment(name, Readiness::Ready).await;
        let canary: serin::api::Canary = serde_json::from_value(json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": name, "annotations": {"kuma.io/mesh": "payments"}},
            // The own route goes with its Canary even without revertOnDeletion (serin's
            // finalizer), the taken-over one is put back with it.
            "spec": {"provider": "kuma", "revertOnDeletion": name == &flaggers,
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "service": {"port": 80, "targetPort": 8080}, "analysis": analysis},
        }))
        .unwrap();
        s.canaries()
            .create(&PostParams::default(), &canary)
            .await
            .unwrap();
    }
    let weights = |name: String| {
        let (routes, ns) = (routes.clone(), s.ns.clone());
        async move {
            let route = routes.get_opt(&name).await.ok()??;
            let split = route.data["spec"]["conf"]["split"].as_array()?.clone();
            let weight = |role: &str| {
                let service = format!("{name}-{role}_{ns}_svc_80");
                split
                    .iter()
                    .find(|s| s["destination"]["kuma.io/service"] == service.as_str())
                    .and_then(|s| s["weight"].as_i64())
            };
            Some((weight("primary")?, weight("canary")?))
        }
    };
    s.wait_phase(&own, Phase::Initialized).await;
    let route = routes.get(&own).await.unwrap();
    let canary_uid = s.canaries().get(&own).await.unwrap().uid().unwrap();
    assert_eq!(route.data["mesh"], "payments");
    assert!(route.owner_references().is_empty());
    assert_eq!(route.annotations()["serin.dev/owner-uid"], canary_uid);
    assert_eq!(weights(own.clone()).await, Some((100, 0)));
    s.gitops_apply(&own, "v2").await;
    s.wait_phase(&own, Phase::WaitingPromotion).await;
    assert_eq!(weights(own.clone()).await, Some((50, 50)));
    let route = routes.get(&own).await.unwrap();
    assert!(
        !route.annotations().contains_key("serin.dev/original-spec"),
        "serin's own route is not taken over"
    );
    s.request(&own, "promote", "1").await;
    s.wait_phase(&own, Phase::Succeeded).await;
    assert_eq!(weights(own.clone()).await, Some((100, 0)));
    // Nothing owns it: serin's finalizer deletes its own when the Canary goes.
    s.canaries()
        .delete(&own, &Default::default())
        .await
        .unwrap();
    eventually("the TrafficRoute deleted with its Canary", WAIT, || async {
        routes.get_opt(&own).await.ok()?.is_none().then_some(())
    })
    .await;

    s.wait_phase(&flaggers, Phase::Initialized).await;
    let taken = routes.get(&flaggers).await.unwrap();
    assert!(taken.annotations().contains_key("serin.dev/original-spec"));
    assert_eq!(weights(flaggers.clone()).await, Some((100, 0)));
    s.canaries()
        .delete(&flaggers, &Default::default())
        .await
        .unwrap();
    let restored = eventually("the TrafficRoute put back", WAIT, || async {
        let route = routes.get_opt(&flaggers).await.ok()??;
        (!route.annotations().contains_key("serin.dev/original-spec")).then_some(route)
    })
    .await;
    assert_eq!(restored.data["spec"], existing);
}

/// Gloo's `spec.upstreamRef`, as in Flagger: both Upstreams serin writes carry the connection
/// settings of the Upstream it names, read from that Upstream's own namespace, and still send
/// requests to the primary and canary Services.
#[tokio::test]
async fn gloo_upstreams_copy_the_settings_of_the_upstream_ref() {
    let (s, _gate) = controller("gloo-upstream-ref").await;
    let settings_ns = cluster::namespace(&s.client, "gloo-settings").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gloo.solo.io", "v1", "Upstream"),
        "upstreams",
    );
    let settings =
        json!({"loadBalancerConfig": {"leastRequest": {"choiceCount": 3}}, "useHttp2": true});
    let mut spec = settings.clone();
    spec["kube"] =
        json!({"serviceName": "elsewhere", "serviceNamespace": "gloo-system", "servicePort": 8080});
    let source: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
        "metadata": {"name": "settings"}, "spec": spec,
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(s.client.clone(), &settings_ns, &resource)
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    s.create_deployment("gloo-ref", Readiness::Ready).await;
    let extra = json!({"provider": "gloo", "service": {"port": 80, "targetPort": 8080},
        "upstreamRef": {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "settings", "namespace": settings_ns}});
    s.create_canary(
        "gloo-ref",
        json!({"interval": "1s", "stepWeight": 50}),
        extra,
    )
    .await;
    s.wait_phase("gloo-ref", Phase::Initialized).await;
    let upstreams: Api<DynamicObject> = Api::namespaced_with(s.client.clone(), &s.ns, &resource);
    for role in ["primary", "canary"] {
        let name = format!("{}-gloo-ref-{role}upstream-80", s.ns);
        let upstream = upstreams.get(&name).await.unwrap();
        let mut expected = settings.clone();
        expected["kube"] = json!({"serviceName": format!("gloo-ref-{role}"),
            "serviceNamespace": s.ns, "servicePort": 80});
        assert_eq!(upstream.data["spec"], expected, "{name}");
        assert_eq!(upstream.owner_references()[0].kind, "Canary");
    }
}

/// The Knative Service API (tests/fixtures/crds/knative.yaml), and its objects' status.
fn knative_services(s: &Setup) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"),
        "services",
    );
    Api::namespaced_with(s.client.clone(), &s.ns, &resource)
}

/// Stands in for Knative's controller, which cannot run here: publishes `created` as the
/// Service's latest revision (ready when `ready`) and the traffic its spec asks for, with the
/// latest revision resolved to its name, as Knative reports what it routes.
async fn knative_reconciles(services: &Api<DynamicObject>, name: &str, created: &str, ready: bool) {
    let service = services.get(name).await.unwrap();
    let latest_ready = if ready {
        created.to_string()
    } else {
        service.data["status"]["latestReadyRevisionName"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let traffic: Vec<Value> = match service.data["spec"]["traffic"].as_array() {
        Some(targets) => targets
            .iter()
            .map(|t| {
                let revision = match t["latestRevision"].as_bool() {
                    Some(true) => latest_ready.clone(),
                    _ => t["revisionName"].as_str().unwrap_or_default().to_string(),
                };
                json!({"revisionName": revision, "latestRevision": t["latestRevision"], "percent": t["percent"]})
            })
            .collect(),
        None => vec![json!({"revisionName": latest_ready, "latestRevision": true, "percent": 100})],
    };
    let status = json!({"status": {
        "observedGeneration": service.metadata.generation,
        "latestCreatedRevisionName": created,
        "latestReadyRevisionName": latest_ready,
        "traffic": traffic,
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" }}],
    }});
    services
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// (promoted revision's, latest revision's) percents in a Knative Service's spec.traffic, with
/// the promoted revision's name.
async fn knative_split(services: &Api<DynamicObject>, name: &str) -> Option<(String, i64, i64)> {
    let service = services.get_opt(name).await.ok()??;
    let traffic = service.data["spec"]["traffic"].as_array()?.clone();
    let latest = traffic.iter().find(|t| t["latestRevision"] == true)?;
    let named = traffic.iter().find(|t| t["revisionName"].is_string())?;
    Some((
        named["revisionName"].as_str()?.to_string(),
        named["percent"].as_i64()?,
        latest["percent"].as_i64()?,
    ))
}

/// A new image in a Knative Service's template, as a GitOps tool applies it.
async fn new_knative_template(services: &Api<DynamicObject>, name: &str, image: &str) {
    let template = json!({"spec": {"template": {"spec": {"containers": [{"image": image}]}}}});
    services
        .patch(name, &PatchParams::default(), &Patch::Merge(&template))
        .await
        .unwrap();
}

/// Knative: no `-primary` Deployment and no Services; the Knative Service's own spec.traffic
/// is split between the promoted revision (by name) and the latest one. Initialization pins
/// all traffic to the first revision, each step moves the latest revision's percent, promotion
/// records the latest revision as the primary at 100%, failing metrics send everything back to
/// the promoted revision, and deleting the Canary (revertOnDeletion) leaves all traffic to the
/// latest revision, as Knative routes a Service no one splits. The test publishes the
/// revisions in the Service status, standing in for Knative's controller.
#[tokio::test]
async fn knative_splits_a_services_traffic_between_its_promoted_and_latest_revisions() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (s, promotion) = controller("knative").await;
    let services = knative_services(&s);
    let healthy = Arc::new(AtomicBool::new(true));
    let metrics = {
        let healthy = healthy.clone();
        mock::serve(move |_| {
            let value = if healthy.load(Ordering::SeqCst) { "100" } else { "42" };
            mock::Reply::ok(&format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
            ))
        })
        .await
    };
    let increase_open = Arc::new(AtomicBool::new(false));
    let increase = {
        let open = increase_open.clone();
        mock::serve(move |_| match open.load(Ordering::SeqCst) {
            true => mock::Reply::ok("open"),
            false => mock::Reply::status(403, "held"),
        })
        .await
    };
    let service: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.0"}]}}},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    knative_reconciles(&services, "web", "web-00001", true).await;
    // Flagger's knative Canary: no service block.
    let canary: serin::api::Canary = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "web"},
        "spec": {"provider": "knative", "revertOnDeletion": true, "metricsServer": metrics.url,
            "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "web"},
            "analysis": {"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
                "metrics": [{"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}],
                "webhooks": [
                    {"name": "more", "type": "confirm-traffic-increase", "url": increase.url},
                    {"name": "promote", "type": "confirm-promotion", "url": promotion.url}]}},
    }))
    .unwrap();
    s.canaries()
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    s.wait_phase("web", Phase::Initialized).await;
    let split = || knative_split(&services, "web");
    assert_eq!(split().await, Some(("web-00001".into(), 100, 0)));
    let live = services.get("web").await.unwrap();
    assert_eq!(
        live.annotations()["serin.dev/primary-revision"],
        "web-00001"
    );
    assert!(
        live.owner_references().is_empty(),
        "the Service stays the user's"
    );
    assert_eq!(
        live.data["spec"]["template"]["spec"]["containers"][0]["image"], "podinfo:6.0.0",
        "the template stays the user's"
    );
    assert!(
        s.deployments()
            .get_opt("web-primary")
            .await
            .unwrap()
            .is_none(),
        "no -primary copy"
    );

    // A new revision: the first step, held by the closed confirm-traffic-increase gate...
    new_knative_template(&services, "web", "podinfo:6.0.1").await;
    knative_reconciles(&services, "web", "web-00002", true).await;
    eventually("the first step", WAIT, || async {
        (split().await == Some(("web-00001".into(), 75, 25))).then_some(())
    })
    .await;
    assert_eq!(s.phase("web").await, Some(Phase::Progressing));
    // ...then the last, held by the closed confirm-promotion gate.
    increase_open.store(true, Ordering::SeqCst);
    s.wait_phase("web", Phase::WaitingPromotion).await;
    assert_eq!(split().await, Some(("web-00001".into(), 50, 50)));
    s.request("web", "promote", "1").await;
    s.wait_phase("web", Phase::Succeeded).await;
    assert_eq!(split().await, Some(("web-00002".into(), 100, 0)));
    let live = services.get("web").await.unwrap();
    assert_eq!(
        live.annotations()["serin.dev/primary-revision"],
        "web-00002"
    );

    // A revision whose metrics fail: everything back to the promoted revision.
    healthy.store(false, Ordering::SeqCst);
    new_knative_template(&services, "web", "podinfo:6.0.2").await;
    knative_reconciles(&services, "web", "web-00003", true).await;
    s.wait_phase("web", Phase::Failed).await;
    assert_eq!(split().await, Some(("web-00002".into(), 100, 0)));
    let status = s.canaries().get("web").await.unwrap().status.unwrap();
    assert_eq!(status.last_promoted_spec.as_deref(), Some("web-00002"));
    let live = services.get("web").await.unwrap();
    assert_eq!(
        live.annotations()["serin.dev/primary-revision"],
        "web-00002"
    );

    // revertOnDeletion: all traffic to the latest revision, serin's records gone.
    s.canaries()
        .delete("web", &Default::default())
        .await
        .unwrap();
    let released = eventually("the Service released", WAIT, || async {
        let service = services.get_opt("web").await.ok()??;
        let traffic = &service.data["spec"]["traffic"];
        (traffic == &json!([{"latestRevision": true, "percent": 100}])).then_some(service)
    })
    .await;
    // Released after serin's records were taken off.
    for annotation in ["serin.dev/primary-revision", "serin.dev/idle-revision"] {
        assert!(
            !released.annotations().contains_key(annotation),
            "{:?}",
            released.annotations()
        );
    }
    eventually("Canary web gone", WAIT, || async {
        s.canaries()
            .get_opt("web")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}
