//! The route providers writing one object of their own kind (Contour's HTTPProxy, Traefik's
//! TraefikService in both API groups), end to end on the real control plane with `serin
//! controller` as its ServiceAccount and the minimal CRDs of tests/fixtures/crds: a table of
//! providers, one row each, run through the same rollout and the same takeover. A new provider
//! of this shape is a new row.

mod cluster;
mod mock;

use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
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
    weights: fn(&Value, &str) -> Option<(i64, i64)>,
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
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{}/{}", self.group, self.version), "kind": self.kind,
            "metadata": {"name": self.name}, "spec": (self.existing)(self.name),
        }))
        .unwrap();
        self.api(s)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }

    async fn mirrored(&self, s: &Setup) -> Option<Mirrored> {
        let route = self.api(s).get_opt(self.name).await.ok()??;
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
        let object = self.api(s).get_opt(name).await.ok()??;
        (self.weights)(&object.data["spec"], name)
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
        weights: traefik_weights,
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
            weights: contour_weights,
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
    ]
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
        s.create_deployment(row.name, Readiness::Ready).await;
        s.create_canary(row.name, analysis.clone(), extra(row, json!({})))
            .await;
    }
    for row in &rows {
        s.wait_phase(row.name, Phase::Initialized).await;
        let object = row.api(&s).get(row.name).await.unwrap();
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
                    .get_opt(row.name)
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
        s.create_deployment(row.name, Readiness::Ready).await;
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
        let taken = row.api(&s).get(row.name).await.unwrap();
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
        let restored = row.api(&s).get(row.name).await.unwrap();
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
    let rows = rows();
    // Iterations enough for the analysis to run until the test aborts it.
    let analysis = json!({"interval": "1s", "threshold": 2, "iterations": 1000, "mirror": true, "mirrorWeight": 40});
    for row in &rows {
        row.create_existing(&s).await;
        s.create_deployment(row.name, Readiness::Ready).await;
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
        let object = row.api(&s).get(row.name).await.unwrap();
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
    s.create_deployment(row.name, Readiness::Ready).await;
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
