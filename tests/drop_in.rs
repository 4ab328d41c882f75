//! Drop-in for Flagger on the real control plane: Flagger's CRDs (served by `serin crds --group
//! flagger.app`), a Canary and its primary as Flagger leaves them, then `serin controller
//! --flagger-api` in Flagger's place. Nothing restarts; the next release is rolled out with the
//! Canary's own `flagger.app` MetricTemplate, a bad one is rolled back, and Flagger's metrics
//! are served for its dashboards.

mod cluster;

use std::time::Duration;

use cluster::controller::{ControllerProcess, install, service_account_kubeconfig};
use cluster::prometheus::{Exporter, Prometheus, wait_for_value};
use cluster::rollout::{Setup, WAIT, steps, with_config};
use cluster::workloads::{Readiness, deployment};
use cluster::{client, eventually, namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use serin::api::group::FlaggerCanary;
use serin::api::{Canary, Phase};

/// `serin ARGS -n NAMESPACE` as the cluster's admin: (exit code, stdout, stderr).
async fn serin_cli(ns: &str, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["-n".to_string(), ns.to_string()]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(&all)
            .env("KUBECONFIG", &cluster::cluster().kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Flagger's hash of the template it last promoted (its own format, not serin's).
const FLAGGERS_HASH: &str = "5b8c9d7f4";

fn flagger(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flagger.app", "v1beta1", kind),
        plural,
    )
}

/// The Canary as Flagger reads it, through the `flagger.app` API.
async fn canary(s: &Setup) -> Canary {
    Api::<FlaggerCanary>::namespaced(s.client.clone(), &s.ns)
        .get("web")
        .await
        .unwrap()
        .into()
}

/// A namespace before serin starts in it.
struct Before<'a> {
    client: &'a kube::Client,
    ns: &'a str,
}

impl Before<'_> {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), self.ns)
    }
}

async fn create(s: &Before<'_>, resource: &ApiResource, object: Value) -> DynamicObject {
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    Api::<DynamicObject>::namespaced_with(s.client.clone(), s.ns, resource)
        .create(&PostParams::default(), &object)
        .await
        .unwrap()
}

/// What Flagger leaves behind after promoting v1: the target at zero, the `-primary` copy of
/// its template (selector value suffixed, config copied, a random `flagger-id`), owned by the
/// `flagger.app` Canary, and a Succeeded status naming Flagger's hash.
async fn left_by_flagger(s: &Before<'_>, prometheus: &Prometheus) {
    let configs: Api<ConfigMap> = Api::namespaced(s.client.clone(), s.ns);
    for name in ["web-config", "web-config-primary"] {
        let config =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": {"LEVEL": "info"}}));
        configs
            .create(&PostParams::default(), &config.unwrap())
            .await
            .unwrap();
    }
    let target = web("v1", 0);
    s.deployments()
        .create(&PostParams::default(), &target)
        .await
        .unwrap();
    create(s, &flagger("MetricTemplate", "metrictemplates"), json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency"},
        "spec": {"provider": {"type": "prometheus", "address": prometheus.url},
                 "query": "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{kubernetes_namespace=\"{{ namespace }}\", kubernetes_pod_name=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[{{ interval }}])) by (le)) * 1000"},
    })).await;
    let mut analysis = steps();
    analysis["metrics"] = json!([
        {"name": "request-success-rate", "interval": "5s", "thresholdRange": {"min": 99}},
        {"name": "latency", "templateRef": {"name": "latency"}, "interval": "5s", "thresholdRange": {"max": 500}},
    ]);
    let canaries = flagger("Canary", "canaries");
    let created = create(s, &canaries, json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web"},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "progressDeadlineSeconds": 60,
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "public", "namespace": "gateways"}]},
            "analysis": analysis,
        },
    })).await;
    let status = json!({"status": {
        "phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
        "lastAppliedSpec": FLAGGERS_HASH, "lastPromotedSpec": FLAGGERS_HASH,
        "lastTransitionTime": "2026-11-30T10:00:00Z",
        "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded",
            "message": "Canary analysis completed successfully, promotion finished.",
            "lastUpdateTime": "2026-11-30T10:00:00Z", "lastTransitionTime": "2026-11-30T10:00:00Z"}],
    }});
    Api::<DynamicObject>::namespaced_with(s.client.clone(), s.ns, &canaries)
        .patch_status("web", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let mut primary = serde_json::to_value(web("v1", 2)).unwrap();
    primary["metadata"] = json!({"name": "web-primary", "labels": {"app": "web-primary"}, "ownerReferences": [{
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "web",
        "uid": created.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]});
    primary["spec"]["selector"] = json!({"matchLabels": {"app": "web-primary"}});
    let template = &mut primary["spec"]["template"];
    // Flagger suffixes the one selector label it picks (`app`) and copies the others.
    template["metadata"]["labels"] = json!({"app": "web-primary", "release": "blue"});
    template["metadata"]["annotations"]["flagger-id"] =
        json!("0b5c6a1e-3f0e-4c1b-9a43-d1e5f2a8c3b7");
    template["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] =
        json!("web-config-primary");
    let primary: Deployment = serde_json::from_value(primary).unwrap();
    let services: Api<Service> = Api::namespaced(s.client.clone(), s.ns);
    for (name, selects) in [
        ("web", "web-primary"),
        ("web-primary", "web-primary"),
        ("web-canary", "web"),
    ] {
        let service = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"app": selects}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }));
        services
            .create(&PostParams::default(), &service.unwrap())
            .await
            .unwrap();
    }
    s.deployments()
        .create(&PostParams::default(), &primary)
        .await
        .unwrap();
    eventually("Flagger's primary ready", WAIT, || async {
        let status = s.deployments().get("web-primary").await.ok()?.status?;
        (status.ready_replicas == Some(2)).then_some(())
    })
    .await;
}

/// The target: a Helm chart's two-label selector (Flagger's primary selects on `app` only).
fn web(version: &str, replicas: i32) -> Deployment {
    let mut target = with_config(deployment("web", version, replicas, Readiness::Ready));
    let spec = target.spec.as_mut().unwrap();
    let selector = spec.selector.match_labels.as_mut().unwrap();
    selector.insert("release".into(), "blue".into());
    let meta = spec.template.metadata.as_mut().unwrap();
    meta.labels
        .as_mut()
        .unwrap()
        .insert("release".into(), "blue".into());
    target
}

/// What Flux does: server-side apply of the whole manifest, replicas left out of git.
async fn release(s: &Setup, version: &str) {
    let mut manifest = serde_json::to_value(web(version, 1)).unwrap();
    manifest["apiVersion"] = json!("apps/v1");
    manifest["kind"] = json!("Deployment");
    manifest["metadata"]["namespace"] = json!(s.ns);
    manifest["spec"].as_object_mut().unwrap().remove("replicas");
    let params = PatchParams::apply("flux").force();
    s.deployments()
        .patch("web", &params, &Patch::Apply(&manifest))
        .await
        .unwrap();
}

/// Waits for the status to satisfy `done`.
async fn wait_for(
    s: &Setup,
    what: &str,
    done: impl Fn(&serin::api::CanaryStatus) -> bool,
) -> serin::api::CanaryStatus {
    eventually(what, Duration::from_secs(150), || async {
        let status = canary(s).await.status?;
        done(&status).then_some(status)
    })
    .await
}

/// The canary pods' success rate over the analysis' 5s window, as Flagger's http observer reads it.
fn canary_success_rate(ns: &str) -> String {
    let pods = format!(
        r#"kubernetes_namespace="{ns}", kubernetes_pod_name=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#
    );
    format!(
        r#"sum(rate(http_request_duration_seconds_count{{{pods}, status!~"5.*"}}[5s])) / sum(rate(http_request_duration_seconds_count{{{pods}}}[5s])) * 100"#
    )
}

#[tokio::test]
async fn serin_takes_over_a_canary_left_by_flagger_without_a_restart_and_rolls_out_the_next_releases()
 {
    let client = client().await;
    install(&client).await;
    let ns = namespace(&client, "drop-in").await;
    // Series labelled as the Prometheus of Flagger's chart labels them: a working Flagger
    // setup keeps its data (the built-in success rate reads them too).
    let canary_pods = Exporter::start(&ns, "web-5d8f7c9b4-x2x7q", 0.0, 3).with_flagger_labels();
    let primary_pods =
        Exporter::start(&ns, "web-primary-6c4b9d7f8-k9m2p", 0.0, 5).with_flagger_labels();
    let prometheus = Prometheus::start(&[&canary_pods, &primary_pods]);
    let kubeconfig = service_account_kubeconfig(&client, &ns).await;
    let flaggers = Before {
        client: &client,
        ns: &ns,
    };
    left_by_flagger(&flaggers, &prometheus).await;
    let before = flaggers.deployments().get("web-primary").await.unwrap();

    // Flagger scaled to zero; serin in its place.
    let controller = ControllerProcess::start(
        &kubeconfig,
        &ns,
        &[
            "--flagger-api",
            "--flagger-metrics",
            "--metrics-server",
            &prometheus.url,
        ],
    );
    let s = Setup {
        client,
        ns: ns.clone(),
        controller,
    };
    let adopted = eventually("the Canary taken over", WAIT, || async {
        let canary = canary(&s).await;
        let status = canary.status.clone()?;
        (status.last_applied_spec.as_deref() != Some(FLAGGERS_HASH)).then_some(status)
    })
    .await;
    assert_eq!(adopted.phase, Some(Phase::Succeeded));
    assert_eq!(adopted.last_promoted_spec, adopted.last_applied_spec);
    let after = s.deployments().get("web-primary").await.unwrap();
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "the primary's pods were not restarted"
    );
    assert_eq!(
        after
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()["flagger-id"],
        "0b5c6a1e-3f0e-4c1b-9a43-d1e5f2a8c3b7"
    );
    assert_eq!(s.replicas("web").await, Some(0));
    let route = s.routes().get("web").await.unwrap();
    let owner = &route.owner_references()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str()),
        ("flagger.app/v1beta1", "Canary"),
        "what serin creates is owned by the flagger.app Canary"
    );
    assert_eq!(s.weights("web").await, Some((100, 0)));
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), &ns);
    let taken_over = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("TakenOver"))
        .expect("a TakenOver event");
    assert_eq!(
        taken_over.regarding.unwrap().api_version.as_deref(),
        Some("flagger.app/v1beta1")
    );

    // The next release, applied by GitOps, judged with the flagger.app MetricTemplate, once
    // Prometheus has a full window of the canary's requests.
    let success = canary_success_rate(&ns);
    wait_for_value(&prometheus, &success, |rate| rate > 99.9).await;
    release(&s, "v2").await;
    wait_for(&s, "v2 promoted", |status| {
        status.phase == Some(Phase::Succeeded)
            && status.last_promoted_spec != adopted.last_promoted_spec
    })
    .await;
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    let only_app = [("app".to_string(), "web-primary".to_string())].into();
    let primary = s
        .deployments()
        .get("web-primary")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        primary.selector.match_labels.unwrap(),
        only_app,
        "Flagger's primary selector is kept (a selector cannot change)"
    );
    let services: Api<Service> = Api::namespaced(s.client.clone(), &ns);
    let apex = services.get("web").await.unwrap().spec.unwrap();
    assert_eq!(
        apex.selector.unwrap(),
        only_app,
        "the apex selects the primary's pods"
    );
    assert_eq!(s.weights("web").await, Some((100, 0)));

    // A bad one: the canary's pods answer 5% of requests with a 5xx.
    canary_pods.set_error_ratio(0.05);
    wait_for_value(&prometheus, &success, |rate| rate < 96.0).await;
    release(&s, "v3").await;
    let failed = wait_for(&s, "v3 rolled back", |status| {
        status.phase == Some(Phase::Failed)
    })
    .await;
    let checks = failed.checks;
    let success = checks
        .iter()
        .find(|c| c.name == "request-success-rate")
        .unwrap();
    assert!(
        success.value.is_some_and(|v| v < 99.0),
        "the built-in success rate read Flagger's series: {success:?}"
    );
    let latency = checks.iter().find(|c| c.name == "latency").unwrap();
    assert_eq!(
        latency.value,
        Some(cluster::prometheus::P99_MS),
        "{latency:?}"
    );
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    assert_eq!(s.weights("web").await, Some((100, 0)));

    // The operator's commands find the flagger.app Canary where Flagger left it.
    let (code, out, err) = serin_cli(&ns, &["get"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web") && out.contains("Failed"), "{out}");
    let (code, out, err) = serin_cli(&ns, &["status", "web", "-o", "yaml"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("apiVersion: flagger.app/v1beta1"), "{out}");
    let (code, out, err) = serin_cli(&ns, &["retry", "web"]).await;
    assert_eq!(
        code, 0,
        "the controller acknowledges a request on a flagger.app Canary: {out}{err}"
    );

    // Flagger's dashboards read the same series.
    let url = format!("http://{}/metrics", s.controller.listen);
    let http = serin::hooks::client().unwrap();
    let text = eventually("Flagger's metrics", WAIT, || async {
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        // The totals are counted every 15 s, as Flagger does.
        (text.contains(&format!(
            "flagger_canary_status{{name=\"web\",namespace=\"{ns}\"}} 2"
        )) && text.contains(&format!("flagger_canary_total{{namespace=\"{ns}\"}} 1")))
        .then_some(text)
    })
    .await;
    assert!(
        text.contains(&format!(
            "flagger_canary_weight{{workload=\"web-primary\",namespace=\"{ns}\"}} 100"
        )),
        "{text}"
    );
}
