//! `serin controller` end to end on the real control plane: a separate process, authenticated
//! as a ServiceAccount with exactly config/rbac.yaml, rolling out Deployments changed the way
//! a GitOps tool changes them.

mod cluster;
#[path = "support/flagger_cases.rs"]
mod flagger_cases;
mod mock;
#[path = "support/provider_cases.rs"]
mod provider_cases;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use cluster::controller::{ControllerProcess, LOADTESTER_TOKEN, loadtester_kubeconfig};
use cluster::eventually;
use cluster::prometheus::{Exporter, Prometheus, wait_for_value};
use cluster::workloads::{Readiness, set_version};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use serin::api::{Canary, Phase};

use cluster::rollout::{Setup, WAIT, setup, steps};

#[tokio::test]
async fn a_new_pod_template_is_rolled_out_step_by_step_and_promoted() {
    let s = setup("promote", &[]).await;
    s.create_deployment("web", Readiness::Ready).await;
    s.create_canary("web", steps(), json!({})).await;
    s.wait_phase("web", Phase::Initialized).await;
    // Initialization: primary, copied config, three services, the route at 100/0, target at 0.
    assert_eq!(
        s.replicas("web").await,
        Some(0),
        "the target is scaled to zero"
    );
    assert_eq!(s.replicas("web-primary").await, Some(2));
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    for name in ["web", "web-primary", "web-canary"] {
        assert!(services.get(name).await.is_ok(), "service {name} exists");
    }
    let apex = services.get("web").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "web-primary");
    let configs: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.ns);
    assert_eq!(
        configs
            .get("web-config-primary")
            .await
            .unwrap()
            .data
            .unwrap()["LEVEL"],
        "info"
    );
    let primary = s.deployments().get("web-primary").await.unwrap();
    let env_from = primary.spec.unwrap().template.spec.unwrap().containers[0]
        .env_from
        .clone()
        .unwrap();
    assert_eq!(
        env_from[0].config_map_ref.as_ref().unwrap().name,
        "web-config-primary"
    );
    assert_eq!(s.weights("web").await, Some((100, 0)));
    let route = s.routes().get("web").await.unwrap();
    assert_eq!(route.data["spec"]["parentRefs"][0]["name"], "public");

    // A new template, applied as Flux would.
    s.gitops_apply("web", "v2").await;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("promotion", Duration::from_secs(120), || async {
        if let Some(weights) = s.weights("web").await {
            seen.lock().unwrap().insert(weights);
        }
        (s.phase("web").await == Some(Phase::Succeeded)).then_some(())
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.contains(&(75, 25)) && seen.contains(&(50, 50)),
        "the route stepped through 25% and 50%: saw {seen:?}"
    );
    // Each step is its own event: `kubectl describe` shows every weight, not the first one
    // counted again (the events of one reason, different notes, are not one series).
    let notes = event_notes(&s, "WeightAdvanced").await;
    for weight in ["canary weight 25%", "canary weight 50%"] {
        assert!(
            notes.iter().any(|n| n.contains(weight)),
            "an event says {weight}: {notes:#?}"
        );
    }
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    assert_eq!(s.weights("web").await, Some((100, 0)));
    assert_eq!(
        s.replicas("web").await,
        Some(0),
        "the canary is scaled down"
    );
    let canary = s.canaries().get("web").await.unwrap();
    let status = canary.status.unwrap();
    assert_eq!(status.observed_generation, canary.metadata.generation);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.kind == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
}

/// The notes of the events recorded in the test's namespace with `reason`.
async fn event_notes(s: &Setup, reason: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), &s.ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// A webhook server answering every request with `status`.
fn hook_server(status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0_u8; 8192];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buffer);
            let body = if status < 300 {
                "ok"
            } else {
                "canary broken: error rate 42%"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}/")
}

/// The JSON bodies a mock receiver got.
fn bodies(server: &mock::Server) -> Vec<Value> {
    server.received().iter().map(mock::Request::json).collect()
}

#[tokio::test]
async fn alerts_reach_slack_once_per_revision_and_events_reach_the_event_hook() {
    let mut s = setup("alerts", &[]).await;
    // Receivers answering 200 "ok", as Slack does.
    let slack = mock::serve(|_| mock::Reply::ok("ok")).await;
    let events = mock::serve(|_| mock::Reply::ok("ok")).await;
    let (slack_url, events_url) = (slack.url.clone(), events.url.clone());
    s.controller.kill();
    s.controller = ControllerProcess::start(
        &cluster::controller::kubeconfig_path(&s.ns),
        &s.ns,
        &["--cluster-name", "eu-1"],
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "slack"},
        "stringData": {"address": format!("{slack_url}/services/T0/SECRET-PATH")},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let providers: Api<serin::api::AlertProvider> = Api::namespaced(s.client.clone(), &s.ns);
    let provider = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "team"},
        "spec": {"type": "slack", "channel": "#deploys", "secretRef": {"name": "slack"}},
    }))
    .unwrap();
    providers
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();
    s.create_deployment("pay", Readiness::Ready).await;
    let mut analysis = steps();
    let hook_secret = serde_json::from_value(json!({
        "metadata": {"name": "hook-auth"},
        "stringData": {"X-Api-Key": "HOOK-SECRET-VALUE"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &hook_secret)
        .await
        .unwrap();
    analysis["webhooks"] = json!([
        {"name": "smoke", "type": "rollout", "url": hook_server(500), "secretRef": {"name": "hook-auth"}},
        {"name": "audit", "type": "event", "url": events_url},
    ]);
    analysis["alerts"] =
        json!([{"name": "team", "severity": "info", "providerRef": {"name": "team"}}]);
    s.create_canary("pay", analysis, json!({})).await;
    s.wait_phase("pay", Phase::Initialized).await;
    s.gitops_apply("pay", "v2").await;
    s.wait_phase("pay", Phase::Failed).await;
    let reasons = |bodies: &[Value]| -> Vec<String> {
        bodies
            .iter()
            .map(|b| {
                b["attachments"][0]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["title"] == "Reason")
                    .map(|f| f["value"].as_str().unwrap().to_string())
                    .unwrap()
            })
            .collect()
    };
    let sent = eventually("three alerts", WAIT, || async {
        let bodies = bodies(&slack);
        (bodies.len() >= 3).then_some(bodies)
    })
    .await;
    assert_eq!(
        reasons(&sent),
        ["Initialized", "NewRevision", "ThresholdReached"]
    );
    let rollback = &sent[2];
    assert_eq!(rollback["channel"], "#deploys");
    assert_eq!(rollback["attachments"][0]["color"], "danger");
    assert_eq!(
        rollback["attachments"][0]["title"],
        format!("pay.{} (eu-1)", s.ns)
    );
    assert!(
        rollback["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("webhook smoke: smoke answered 500"),
        "{rollback}"
    );
    // Flapping: the same revision retried and failing again alerts nobody a second time.
    s.request("pay", "retry", "again").await;
    eventually("failed again", WAIT, || async {
        let status = s.canaries().get("pay").await.ok()?.status?;
        (status.phase == Some(Phase::Failed)
            && status.last_handled_request.as_deref() == Some("again"))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bodies(&slack).len(), 3, "{:?}", reasons(&bodies(&slack)));
    // Every event also went to the event webhook, with the event in the metadata.
    let posted = bodies(&events);
    assert!(
        posted
            .iter()
            .any(|p| p["metadata"]["reason"] == "ThresholdReached"
                && p["metadata"]["eventType"] == "Warning"
                && p["name"] == "pay"),
        "{posted:#?}"
    );
    // Secrets — the alert webhook URL, a hook's secret headers — never reach the controller's
    // log, the status or the events.
    let logs = s.controller.logs();
    assert!(!logs.contains("SECRET-PATH") && !logs.contains("HOOK-SECRET-VALUE"));
    let status = serde_json::to_string(&s.canaries().get("pay").await.unwrap().status).unwrap();
    assert!(!status.contains("HOOK-SECRET-VALUE") && !status.contains("SECRET-PATH"));
    let kube_events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(s.client.clone(), &s.ns);
    let notes =
        serde_json::to_string(&kube_events.list(&Default::default()).await.unwrap().items).unwrap();
    assert!(!notes.contains("HOOK-SECRET-VALUE") && !notes.contains("SECRET-PATH"));
    assert!(s.controller.logs().contains("alert sent"));
}

#[tokio::test]
async fn failing_checks_roll_back_to_the_primary() {
    let s = setup("rollback", &[]).await;
    s.create_deployment("api", Readiness::Ready).await;
    let mut analysis = steps();
    analysis["webhooks"] = json!([{"name": "smoke", "type": "rollout", "url": hook_server(500)}]);
    s.create_canary("api", analysis, json!({})).await;
    s.wait_phase("api", Phase::Initialized).await;
    s.gitops_apply("api", "v2").await;
    s.wait_phase("api", Phase::Failed).await;
    assert_eq!(s.weights("api").await, Some((100, 0)));
    assert_eq!(s.replicas("api").await, Some(0));
    assert_eq!(s.primary_version("api").await.as_deref(), Some("v1"));
    let status = s.canaries().get("api").await.unwrap().status.unwrap();
    assert_eq!(status.failed_checks, 2);
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.kind == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
}

/// The success rate of the canary pods of `shop` over the analysis' 5s window.
fn success_rate_of_canary_pods(ns: &str) -> String {
    let pods = format!(r#"namespace="{ns}", pod=~"shop-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#);
    format!(
        r#"sum(rate(http_request_duration_seconds_count{{{pods}, status!~"5.*"}}[5s])) / sum(rate(http_request_duration_seconds_count{{{pods}}}[5s])) * 100"#
    )
}

#[tokio::test]
async fn metrics_from_prometheus_roll_back_a_failing_canary_and_pass_a_fixed_one() {
    let mut s = setup("prom", &[]).await;
    // The canary's pods answer 5% of requests with a 5xx; the primary's are healthy.
    let canary_pods = Exporter::start(&s.ns, "shop-5d8f7c9b4-x2x7q", 0.05, 3);
    let primary_pods = Exporter::start(&s.ns, "shop-primary-6c4b9d7f8-k9m2p", 0.0, 5);
    let prometheus = Prometheus::start(&[&canary_pods, &primary_pods]);
    s.controller.kill();
    s.controller = ControllerProcess::start(
        &cluster::controller::kubeconfig_path(&s.ns),
        &s.ns,
        &["--metrics-server", &prometheus.url],
    );
    // A MetricTemplate with its own address, read through the API with the controller's RBAC.
    let templates: Api<serin::api::MetricTemplate> = Api::namespaced(s.client.clone(), &s.ns);
    let template = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency"},
        "spec": {"provider": {"type": "prometheus", "address": prometheus.url},
                 "query": "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace=\"{{ namespace }}\", pod=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[{{ interval }}])) by (le)) * 1000"},
    }))
    .unwrap();
    templates
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    s.create_deployment("shop", Readiness::Ready).await;
    let mut analysis = steps();
    analysis["metrics"] = json!([
        {"name": "request-success-rate", "interval": "5s", "thresholdRange": {"min": 99}},
        {"name": "latency", "templateRef": {"name": "latency"}, "interval": "5s", "thresholdRange": {"max": 500}},
    ]);
    s.create_canary("shop", analysis, json!({})).await;
    s.wait_phase("shop", Phase::Initialized).await;
    // Let Prometheus fill the 5s windows before the rollout starts.
    let success = success_rate_of_canary_pods(&s.ns);
    wait_for_value(&prometheus, &success, |rate| rate < 96.0).await;
    s.gitops_apply("shop", "v2").await;
    s.wait_phase("shop", Phase::Failed).await;
    let status = s.canaries().get("shop").await.unwrap().status.unwrap();
    let check = |name: &str| {
        status
            .checks
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap()
    };
    let rate = check("request-success-rate");
    let value = rate
        .value
        .expect("the measured success rate is in the status");
    assert!((93.0..97.0).contains(&value), "{rate:?}");
    assert!(rate.message.ends_with("< 99 (min)"), "{rate:?}");
    assert!(
        rate.query
            .as_deref()
            .unwrap()
            .contains(&format!("namespace=\"{}\"", s.ns)),
        "{rate:?}"
    );
    let latency = check("latency");
    assert_eq!(
        latency.value,
        Some(cluster::prometheus::P99_MS),
        "{latency:?}"
    );
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v1"));
    // The event of the failed check says which metric, its value, the bound and the query.
    let notes = event_notes(&s, "CheckFailed").await;
    assert!(
        notes.iter().any(|n| n.contains("request-success-rate: 9")
            && n.contains("< 99 (min) [query: sum(rate(http_request_duration_seconds_count{")),
        "{notes:#?}"
    );
    // The fix: the canary's pods stop failing; a retry of the same revision is promoted.
    canary_pods.set_error_ratio(0.0);
    wait_for_value(&prometheus, &success, |rate| rate > 99.9).await;
    s.request("shop", "retry", "fixed").await;
    s.wait_phase("shop", Phase::Succeeded).await;
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v2"));
}

/// Seconds of history fed to Graphite and InfluxDB: `value` every second up to now.
fn graphite_points(path: &str, value: f64) -> Vec<(&str, f64, i64)> {
    let now = chrono::Utc::now().timestamp();
    (0..60).map(|i| (path, value, now - 59 + i)).collect()
}

fn influx_lines(workload: &str, value: f64) -> String {
    let now = chrono::Utc::now().timestamp();
    (0..60)
        .map(|i| {
            format!(
                "errors,workload={workload} value={value} {}\n",
                now - 59 + i
            )
        })
        .collect()
}

#[tokio::test]
async fn metrics_from_graphite_and_influxdb_roll_back_a_failing_canary() {
    use cluster::metric_servers::{Graphite, InfluxDb};
    let s = setup("graphite", &[]).await;
    let graphite = Graphite::start(None);
    let influx = InfluxDb::start("serin", "s3cret", "apps");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "influx"},
        "stringData": {"username": "serin", "password": "s3cret", "database": "apps"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let templates: Api<serin::api::MetricTemplate> = Api::namespaced(s.client.clone(), &s.ns);
    for template in [
        json!({"metadata": {"name": "graphite-errors"},
               "spec": {"provider": {"type": "graphite", "address": graphite.url},
                        "query": "target=sumSeries(apps.{{ target }}.errors)&from=-{{ interval }}"}}),
        json!({"metadata": {"name": "influx-errors"},
               "spec": {"provider": {"type": "influxdb", "address": influx.url, "secretRef": {"name": "influx"}},
                        "query": "SELECT last(\"value\") FROM \"errors\" WHERE \"workload\" = '{{ target }}' AND time > now() - {{ interval }}"}}),
    ] {
        let mut template = template;
        template["apiVersion"] = json!("serin.dev/v1beta1");
        template["kind"] = json!("MetricTemplate");
        let template = serde_json::from_value(template).unwrap();
        templates
            .create(&PostParams::default(), &template)
            .await
            .unwrap();
    }
    s.create_deployment("store", Readiness::Ready).await;
    let mut analysis = steps();
    analysis["metrics"] = json!([
        {"name": "graphite-errors", "templateRef": {"name": "graphite-errors"}, "interval": "1m", "thresholdRange": {"max": 1}},
        {"name": "influx-errors", "templateRef": {"name": "influx-errors"}, "interval": "1m", "thresholdRange": {"max": 1}},
    ]);
    s.create_canary("store", analysis, json!({})).await;
    s.wait_phase("store", Phase::Initialized).await;
    // Graphite says the new revision fails 7 requests a second; InfluxDB says none.
    graphite.feed(&graphite_points("apps.store.errors", 7.0));
    influx.write("apps", &influx_lines("store", 0.0));
    s.gitops_apply("store", "v2").await;
    s.wait_phase("store", Phase::Failed).await;
    let status = s.canaries().get("store").await.unwrap().status.unwrap();
    let check = |name: &str| {
        status
            .checks
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap()
    };
    let bad = check("graphite-errors");
    assert_eq!(bad.value, Some(7.0), "{bad:?}");
    assert!(bad.message.ends_with("> 1 (max)"), "{bad:?}");
    assert_eq!(
        bad.query.as_deref(),
        Some("target=sumSeries(apps.store.errors)&from=-1m")
    );
    let good = check("influx-errors");
    assert_eq!(good.value, Some(0.0), "{good:?}");
    assert_eq!(s.primary_version("store").await.as_deref(), Some("v1"));
    assert_eq!(s.weights("store").await, Some((100, 0)));

    // Retried with the roles swapped: Graphite now sees no errors, InfluxDB sees 9 a second.
    graphite.feed(&graphite_points("apps.store.errors", 0.0));
    influx.write("apps", &influx_lines("store", 9.0));
    s.request("store", "retry", "influx-turn").await;
    let failed = eventually("the InfluxDB check fails the retry", WAIT, || async {
        let status = s.canaries().get("store").await.ok()?.status?;
        let influx = status.checks.iter().find(|c| c.name == "influx-errors")?;
        (status.phase == Some(Phase::Failed) && influx.value == Some(9.0)).then(|| status.clone())
    })
    .await;
    let check = |name: &str| {
        failed
            .checks
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap()
    };
    let bad = check("influx-errors");
    assert!(bad.message.ends_with("> 1 (max)"), "{bad:?}");
    assert_eq!(check("graphite-errors").value, Some(0.0));
    assert_eq!(s.primary_version("store").await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_canary_that_never_becomes_ready_rolls_back_at_the_deadline() {
    let s = setup("deadline", &[]).await;
    s.create_deployment("slow", Readiness::Ready).await;
    s.create_canary("slow", steps(), json!({"progressDeadlineSeconds": 5}))
        .await;
    s.wait_phase("slow", Phase::Initialized).await;
    // A template whose pods never pass readiness.
    s.deployments()
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"metadata": {"annotations": {cluster::pods::READINESS: "never"}}}}})),
        )
        .await
        .unwrap();
    s.wait_phase("slow", Phase::Failed).await;
    assert_eq!(s.weights("slow").await, Some((100, 0)));
    assert_eq!(s.replicas("slow").await, Some(0));
}

#[tokio::test]
async fn a_controller_killed_mid_rollout_finishes_it_after_restart() {
    let mut s = setup("restart", &[]).await;
    s.create_deployment("svc", Readiness::Ready).await;
    let analysis = json!({"interval": "2s", "threshold": 2, "stepWeight": 10, "maxWeight": 50});
    s.create_canary("svc", analysis, json!({})).await;
    s.wait_phase("svc", Phase::Initialized).await;
    s.deployments()
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Strategic(set_version("v2")),
        )
        .await
        .unwrap();
    // Kill at several points: while progressing, and at a later weight.
    for weight in [10, 30] {
        eventually(&format!("weight {weight}"), WAIT, || async {
            s.weights("svc")
                .await
                .filter(|(_, c)| *c >= weight)
                .map(|_| ())
        })
        .await;
        s.controller.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.controller.restart();
    }
    s.wait_phase("svc", Phase::Succeeded).await;
    assert_eq!(s.primary_version("svc").await.as_deref(), Some("v2"));
    assert_eq!(s.replicas("svc").await, Some(0));
    assert_eq!(s.weights("svc").await, Some((100, 0)));
}

#[tokio::test]
async fn a_config_change_alone_starts_a_rollout_and_reapplying_the_same_manifest_does_not() {
    let s = setup("config", &[]).await;
    s.create_deployment("cfg", Readiness::Ready).await;
    let analysis = json!({"interval": "2s", "threshold": 2, "stepWeight": 20, "maxWeight": 60});
    s.create_canary("cfg", analysis, json!({})).await;
    s.wait_phase("cfg", Phase::Initialized).await;
    // Flux re-applying the unchanged manifest is not a release.
    s.gitops_apply("cfg", "v1").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(s.phase("cfg").await, Some(Phase::Initialized));
    let configs: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.ns);
    configs
        .patch(
            "cfg-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"LEVEL": "debug"}})),
        )
        .await
        .unwrap();
    s.wait_phase("cfg", Phase::Progressing).await;
    // Mid-analysis, Flux re-applies the same manifest: the rollout carries on.
    let before = s.canaries().get("cfg").await.unwrap().status.unwrap();
    s.gitops_apply("cfg", "v1").await;
    s.wait_phase("cfg", Phase::Succeeded).await;
    let after = s.canaries().get("cfg").await.unwrap().status.unwrap();
    assert_eq!(
        after.last_applied_spec, before.last_applied_spec,
        "not restarted"
    );
    assert_eq!(
        configs
            .get("cfg-config-primary")
            .await
            .unwrap()
            .data
            .unwrap()["LEVEL"],
        "debug",
        "the primary's copy carries the promoted config"
    );
}

/// `--secrets-access by-name` under the chart's by-name RBAC (no list or watch on Secrets):
/// a tracked Secret is read by name, its change is noticed at the next tick and rolled out,
/// and the primary gets the new copy.
#[tokio::test]
async fn with_secrets_read_by_name_a_secret_change_is_rolled_out_without_list_or_watch() {
    let client = cluster::client().await;
    cluster::controller::install_role_variant(&client, "serin-secrets-by-name", |rules| {
        for rule in rules.iter_mut() {
            if rule
                .resources
                .as_ref()
                .is_some_and(|r| r.contains(&"secrets".to_string()))
            {
                rule.verbs.retain(|v| v != "list" && v != "watch");
            }
        }
    })
    .await;
    let s = cluster::rollout::setup_as(
        "secrets-by-name",
        &["--secrets-access", "by-name"],
        "serin-secrets-by-name",
    )
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let secret = serde_json::from_value(json!({"metadata": {"name": "vault-creds"},
        "stringData": {"PASSWORD": "one"}}))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut target = cluster::workloads::deployment("vault", "v1", 2, Readiness::Ready);
    let pod = target
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    pod.containers[0].env_from = Some(vec![
        serde_json::from_value(json!({"secretRef": {"name": "vault-creds"}})).unwrap(),
    ]);
    s.deployments()
        .create(&PostParams::default(), &target)
        .await
        .unwrap();
    s.create_canary("vault", steps(), json!({})).await;
    s.wait_phase("vault", Phase::Initialized).await;
    let copy = |data: &str| {
        let secrets = secrets.clone();
        let data = data.to_string();
        async move {
            let copy = secrets.get("vault-creds-primary").await.ok()?;
            (copy.data?.get("PASSWORD")?.0 == data.as_bytes()).then_some(())
        }
    };
    eventually("the primary's copy", WAIT, || copy("one")).await;
    secrets
        .patch(
            "vault-creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"PASSWORD": "two"}})),
        )
        .await
        .unwrap();
    s.wait_phase("vault", Phase::Succeeded).await;
    eventually("the promoted copy", WAIT, || copy("two")).await;
    assert!(
        !s.controller.logs().contains("secrets is forbidden"),
        "the controller tried to list or watch Secrets"
    );
}

#[tokio::test]
async fn manual_requests_pause_resume_and_promote() {
    let s = setup("requests", &[]).await;
    s.create_deployment("man", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 10, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    s.create_canary("man", analysis, json!({})).await;
    s.wait_phase("man", Phase::Initialized).await;
    s.gitops_apply("man", "v2").await;
    s.wait_phase("man", Phase::WaitingPromotion).await;
    s.request("man", "pause", "1").await;
    eventually("paused", WAIT, || async {
        s.canaries()
            .get("man")
            .await
            .ok()?
            .status?
            .paused
            .then_some(())
    })
    .await;
    s.request("man", "resume", "2").await;
    eventually("resumed", WAIT, || async {
        (!s.canaries().get("man").await.ok()?.status?.paused).then_some(())
    })
    .await;
    s.request("man", "promote", "3").await;
    s.wait_phase("man", Phase::Succeeded).await;
    assert_eq!(s.primary_version("man").await.as_deref(), Some("v2"));
}

#[tokio::test]
async fn abort_rolls_back_and_retry_runs_the_same_revision_again() {
    let s = setup("abort", &[]).await;
    s.create_deployment("ab", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    s.create_canary("ab", analysis, json!({})).await;
    s.wait_phase("ab", Phase::Initialized).await;
    s.gitops_apply("ab", "v2").await;
    s.wait_phase("ab", Phase::WaitingPromotion).await;
    assert_eq!(s.weights("ab").await, Some((50, 50)));
    s.request("ab", "abort", "a-1").await;
    s.wait_phase("ab", Phase::Failed).await;
    // Rolled back: all traffic on the primary, still v1, the canary scaled to zero.
    assert_eq!(s.weights("ab").await, Some((100, 0)));
    assert_eq!(s.primary_version("ab").await.as_deref(), Some("v1"));
    eventually("canary scaled down", WAIT, || async {
        (s.replicas("ab").await == Some(0)).then_some(())
    })
    .await;
    // The same request id again is not a new request: nothing happens.
    s.request("ab", "retry", "a-1").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.phase("ab").await, Some(Phase::Failed));
    // Retry with a new id runs the same revision again, up to the gate; promote finishes it.
    s.request("ab", "retry", "a-2").await;
    s.wait_phase("ab", Phase::WaitingPromotion).await;
    assert_eq!(s.weights("ab").await, Some((50, 50)));
    s.request("ab", "promote", "a-3").await;
    s.wait_phase("ab", Phase::Succeeded).await;
    assert_eq!(s.primary_version("ab").await.as_deref(), Some("v2"));
}

/// `serin loadtester` beside the controller, as the docs set it up: its load keeps the
/// canary busy while the rollout runs and stops with it; its gate holds the promotion until a
/// human opens it (through a restart of the tester); its rollback gate aborts a rollout. The
/// controller authenticates with the namespace's token from the hooks' Secret; a call without
/// it, or with another namespace's token, is refused.
#[tokio::test]
async fn loadtester_gates_hold_promotion_and_roll_back_and_its_load_follows_the_rollout() {
    let s = setup("loadtester", &[]).await;
    let kubeconfig = loadtester_kubeconfig(&s.client, &s.ns).await;
    let mut tester = ControllerProcess::loadtester(&kubeconfig, &s.ns, &[]);
    let base = format!("http://{}", tester.listen);
    let http = serin::hooks::client().unwrap();
    let up = || async {
        let answer = http.get(format!("{base}/healthz")).send().await.ok()?;
        answer.status().is_success().then_some(())
    };
    eventually("load tester up", WAIT, up).await;
    // The hooks' Secret: its key becomes the Authorization header of every call. It holds
    // the namespace's token, minted from the tester's key as `serin loadtester token` does.
    let token = serin::loadtester::auth::namespace_token(LOADTESTER_TOKEN, &s.ns);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "loadtester-token"},
        "stringData": {"Authorization": format!("Bearer {token}")},
    }))
    .unwrap();
    Api::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let gate_as = |path: &str, name: &str, token: Option<&str>| {
        let mut request = http
            .post(format!("{base}{path}"))
            .json(&json!({"name": name, "namespace": s.ns}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let gate = |path: &str, name: &str| gate_as(path, name, Some(&token));
    let target = mock::serve(|_| mock::Reply::ok("podinfo")).await;
    let load = json!({"url": format!("{}/", target.url), "rate": "20"});

    s.create_deployment("gated", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
    "webhooks": [
        {"name": "load", "type": "rollout", "url": format!("{base}/"), "metadata": load,
         "secretRef": {"name": "loadtester-token"}},
        {"name": "go-live", "type": "confirm-promotion", "url": format!("{base}/gate/check"),
         "secretRef": {"name": "loadtester-token"}},
        {"name": "load-stop", "type": "post-rollout", "url": format!("{base}/"), "metadata": load,
         "secretRef": {"name": "loadtester-token"}},
    ]});
    s.create_canary("gated", analysis, json!({})).await;
    s.wait_phase("gated", Phase::Initialized).await;
    assert!(target.received().is_empty(), "no load before a rollout");
    s.gitops_apply("gated", "v2").await;
    s.wait_phase("gated", Phase::WaitingPromotion).await;

    // Held at the gate: the analysis (and its load) goes on, no check fails.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let canary = s.canaries().get("gated").await.unwrap();
    let status = canary.status.unwrap();
    assert_eq!(status.phase, Some(Phase::WaitingPromotion));
    assert_eq!(
        status.failed_checks, 0,
        "a closed gate is not a failed check"
    );
    assert_eq!(s.weights("gated").await, Some((50, 50)));
    assert!(
        target.received().len() >= 40,
        "the load tester drove the canary: {} requests",
        target.received().len()
    );

    // Only a caller with the token opens the gate.
    assert_eq!(gate_as("/gate/open", "gated", None).await, 401);
    assert_eq!(
        gate_as("/gate/open", "gated", Some("guessed-token-0123456789")).await,
        401
    );
    // Another namespace's token does not open this namespace's gate.
    let elsewhere = serin::loadtester::auth::namespace_token(LOADTESTER_TOKEN, "elsewhere");
    assert_eq!(gate_as("/gate/open", "gated", Some(&elsewhere)).await, 401);
    // A human opens the gate; the tester is killed at once and comes back: the state is in
    // the ConfigMap, so the restarted tester lets the rollout through.
    assert_eq!(gate("/gate/open", "gated").await, 200);
    tester.restart();
    eventually("load tester back", WAIT, up).await;
    s.wait_phase("gated", Phase::Succeeded).await;
    assert_eq!(s.primary_version("gated").await.as_deref(), Some("v2"));
    // The post-rollout hook told the tester the rollout is over: the load stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total = target.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target.received().len(),
        total,
        "load went on after promotion"
    );

    // The rollback gate: a rollout held at the promotion gate is aborted by opening it.
    s.create_deployment("doomed", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
    "webhooks": [
        {"name": "go-live", "type": "confirm-promotion", "url": format!("{base}/gate/check"),
         "secretRef": {"name": "loadtester-token"}},
        {"name": "kill-switch", "type": "rollback", "url": format!("{base}/rollback/check"),
         "secretRef": {"name": "loadtester-token"}},
    ]});
    s.create_canary("doomed", analysis, json!({})).await;
    s.wait_phase("doomed", Phase::Initialized).await;
    s.gitops_apply("doomed", "v2").await;
    s.wait_phase("doomed", Phase::WaitingPromotion).await;
    assert_eq!(gate("/rollback/open", "doomed").await, 200);
    s.wait_phase("doomed", Phase::Failed).await;
    assert_eq!(s.weights("doomed").await, Some((100, 0)));
    assert_eq!(s.primary_version("doomed").await.as_deref(), Some("v1"));
}

/// At start-up every existing Canary is reconciled at once, before the Deployment cache is
/// filled. kube-runtime's store readiness woke only one of those waiters, so all other
/// Canaries hung until the controller restarted again; each must be initialized.
#[tokio::test]
async fn every_canary_existing_at_start_up_is_reconciled() {
    let mut s = setup("startup", &[]).await;
    s.controller.kill();
    let names = ["a", "b", "c", "d", "e", "f"];
    for name in names {
        s.create_deployment(name, Readiness::Ready).await;
        s.create_canary(name, steps(), json!({})).await;
    }
    s.controller.restart();
    for name in names {
        s.wait_phase(name, Phase::Initialized).await;
    }
}

/// Session affinity through the API server: while the canary has traffic the HTTPRoute
/// pins cookie holders to it and the split hands out the cookie; after promotion cookie
/// holders go to the primary and the cookie is expired.
#[tokio::test]
async fn session_affinity_pins_users_during_the_analysis_and_releases_them_after() {
    let s = setup("affinity", &[]).await;
    s.create_deployment("sticky", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "sessionAffinity": {"cookieName": "canary", "maxAge": 3600},
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    s.create_canary("sticky", analysis, json!({})).await;
    s.wait_phase("sticky", Phase::Initialized).await;
    s.gitops_apply("sticky", "v2").await;
    s.wait_phase("sticky", Phase::WaitingPromotion).await;
    let rules = |route: kube::api::DynamicObject| route.data["spec"]["rules"].clone();
    let during = rules(s.routes().get("sticky").await.unwrap());
    assert_eq!(during.as_array().unwrap().len(), 2, "{during:#}");
    assert_eq!(during[0]["matches"][0]["headers"][0]["name"], "Cookie");
    assert_eq!(during[0]["backendRefs"][1]["weight"], 100);
    assert_eq!(during[1]["backendRefs"][1]["weight"], 50);
    assert_eq!(
        during[1]["backendRefs"][1]["filters"][0]["responseHeaderModifier"]["add"][0]["value"],
        "canary=1; Max-Age=3600; Path=/"
    );
    s.request("sticky", "promote", "1").await;
    s.wait_phase("sticky", Phase::Succeeded).await;
    let after = rules(s.routes().get("sticky").await.unwrap());
    assert_eq!(after[0]["backendRefs"][0]["weight"], 100, "{after:#}");
    assert_eq!(
        after[0]["filters"][0]["responseHeaderModifier"]["add"][0]["value"],
        "canary=; Max-Age=0; Path=/"
    );
}

#[tokio::test]
async fn deleting_a_canary_with_revert_on_deletion_gives_the_target_back() {
    let s = setup("revert", &[]).await;
    s.create_deployment("rev", Readiness::Ready).await;
    // A route the user made before serin: taken over, then restored.
    let original = json!({"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [{"name": "rev", "port": 80}]}]});
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "rev"}, "spec": original,
    }))
    .unwrap();
    s.routes()
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
    s.create_canary("rev", steps(), json!({"revertOnDeletion": true}))
        .await;
    s.wait_phase("rev", Phase::Initialized).await;
    assert_eq!(s.weights("rev").await, Some((100, 0)), "taken over");
    s.canaries()
        .delete("rev", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("rev")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        s.replicas("rev").await,
        Some(2),
        "the target has its replicas back"
    );
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    let apex = services.get("rev").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "rev");
    assert!(
        apex.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    let restored = s.routes().get("rev").await.unwrap();
    assert_eq!(restored.data["spec"], original);
    assert!(
        !restored
            .annotations()
            .contains_key("serin.dev/original-spec")
    );
}

#[tokio::test]
async fn a_second_canary_for_the_same_deployment_is_stalled_and_left_alone() {
    let s = setup("conflict", &[]).await;
    s.create_deployment("one", Readiness::Ready).await;
    s.create_canary("one", steps(), json!({})).await;
    s.wait_phase("one", Phase::Initialized).await;
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "two"},
        "spec": {"provider": "gatewayapi", "targetRef": {"name": "one"},
                 "service": {"port": 80, "name": "two", "gatewayRefs": [{"name": "public"}]},
                 "analysis": steps()},
    }))
    .unwrap();
    s.canaries()
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    let message = eventually("stalled", WAIT, || async {
        let status = s.canaries().get("two").await.ok()?.status?;
        let stalled = status
            .conditions
            .into_iter()
            .find(|c| c.kind == "Stalled")?;
        (stalled.status == "True" && stalled.reason == "TargetConflict").then_some(stalled.message)
    })
    .await;
    assert!(
        message.contains("already managed by Canary one"),
        "{message}"
    );
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    assert!(
        services.get_opt("two").await.unwrap().is_none(),
        "nothing was created for it"
    );
}

#[tokio::test]
async fn an_invalid_canary_is_stalled_with_the_field_named() {
    let s = setup("invalid", &[]).await;
    s.create_deployment("bad", Readiness::Ready).await;
    // A provider retired upstream. (Weights on the kubernetes provider are no longer
    // refused: they run blue/green as in Flagger, with a warning.)
    s.create_canary("bad", steps(), json!({"provider": "osm"}))
        .await;
    let message = eventually("stalled", WAIT, || async {
        let status = s.canaries().get("bad").await.ok()?.status?;
        let stalled = status
            .conditions
            .into_iter()
            .find(|c| c.kind == "Stalled")?;
        (stalled.reason == "InvalidSpec").then_some(stalled.message)
    })
    .await;
    assert!(message.contains("spec.provider"), "{message}");
    assert_eq!(s.replicas("bad").await, Some(2), "the target is untouched");
}

/// A StatefulSet whose pods keep no claim (tests/stateful_sets.rs covers claims).
async fn create_stateful_set_without_claims(s: &Setup, name: &str) {
    let mut set = cluster::workloads::stateful_set(name, "v1", 2, "none");
    if let Some(spec) = set.spec.as_mut() {
        spec.volume_claim_templates = None;
        if let Some(pod) = spec.template.spec.as_mut() {
            pod.containers[0].volume_mounts = None;
        }
    }
    let api: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(s.client.clone(), &s.ns);
    api.create(&PostParams::default(), &set).await.unwrap();
}

/// The controller refuses exactly what `serin check` and `serin simulate` refuse, with the
/// same message (tests/provider_table.rs holds their side), and accepts the rest.
#[tokio::test]
async fn the_provider_table_decides_for_the_controller_as_for_check() {
    let s = setup("providers", &[]).await;
    let cases = provider_cases::cases();
    for case in &cases {
        match case.target {
            "DaemonSet" => s.create_daemon_set(case.name, Readiness::Ready).await,
            "StatefulSet" => create_stateful_set_without_claims(&s, case.name).await,
            _ => s.create_deployment(case.name, Readiness::Ready).await,
        }
        if let Some(ingress) = case.ingress_ref {
            s.create_ingress(ingress, case.name).await;
        }
        if case.autoscaler["kind"] == "ScaledObject" {
            let objects: Api<DynamicObject> =
                Api::namespaced_with(s.client.clone(), &s.ns, &scaled_object_resource());
            objects
                .create(&PostParams::default(), &scaled_object(case.name))
                .await
                .unwrap();
        }
        let canary: Canary = serde_json::from_value(provider_cases::canary(case)).unwrap();
        s.canaries()
            .create(&PostParams::default(), &canary)
            .await
            .unwrap();
    }
    for case in &cases {
        let canary: Canary = serde_json::from_value(provider_cases::canary(case)).unwrap();
        match serin::engine::Plan::from_spec(&canary.spec, serin::api::provider::DEFAULT) {
            Ok(_) => s.wait_phase(case.name, Phase::Initialized).await,
            Err(errors) => {
                let message = eventually(case.name, WAIT, || async {
                    let status = s.canaries().get(case.name).await.ok()?.status?;
                    let stalled = status
                        .conditions
                        .into_iter()
                        .find(|c| c.kind == "Stalled")?;
                    (stalled.reason == "InvalidSpec").then_some(stalled.message)
                })
                .await;
                assert_eq!(message, errors.to_string(), "{}", case.name);
            }
        }
    }
}

/// A tenant cannot borrow another namespace's MetricTemplate (and the credentials in its
/// Secret) when the controller runs with --no-cross-namespace-refs, as the chart installs it.
#[tokio::test]
async fn a_template_in_another_namespace_is_refused_when_cross_namespace_refs_are_off() {
    let s = setup("tenants", &["--no-cross-namespace-refs"]).await;
    s.create_deployment("borrower", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "metrics": [{"name": "errors", "thresholdRange": {"max": 1},
            "templateRef": {"name": "errors", "namespace": "billing"}}]});
    s.create_canary("borrower", analysis, json!({})).await;
    let message = eventually("stalled", WAIT, || async {
        let status = s.canaries().get("borrower").await.ok()?.status?;
        let stalled = status
            .conditions
            .into_iter()
            .find(|c| c.kind == "Stalled")?;
        (stalled.status == "True" && stalled.reason == "InvalidSpec").then_some(stalled.message)
    })
    .await;
    assert!(
        message.contains("spec.analysis.metrics[0].templateRef.namespace")
            && message.contains("cross-namespace references are disabled"),
        "{message}"
    );
    // The owner of the Canary also sees it as a Warning event naming the field.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), &s.ns);
    let warning = eventually("the Warning event", WAIT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("InvalidSpec")
        })
    })
    .await;
    assert!(
        warning
            .note
            .unwrap_or_default()
            .contains("templateRef.namespace"),
        "the event names the field"
    );
    assert_eq!(
        s.replicas("borrower").await,
        Some(2),
        "the target is untouched"
    );
}

#[tokio::test]
async fn istio_routes_weights_through_a_virtual_service() {
    let s = setup("istio", &["--mesh-provider", "istio"]).await;
    s.create_deployment("mesh", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 50, "maxWeight": 50});
    // No provider in the spec: the controller's --mesh-provider applies.
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary", "metadata": {"name": "mesh"},
        "spec": {"targetRef": {"name": "mesh"}, "service": {"port": 80, "timeout": "3s"}, "analysis": analysis},
    }))
    .unwrap();
    s.canaries()
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    s.wait_phase("mesh", Phase::Initialized).await;
    let resource = |kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.istio.io", "v1beta1", kind),
            plural,
        )
    };
    let services: Api<DynamicObject> = Api::namespaced_with(
        s.client.clone(),
        &s.ns,
        &resource("VirtualService", "virtualservices"),
    );
    let rules: Api<DynamicObject> = Api::namespaced_with(
        s.client.clone(),
        &s.ns,
        &resource("DestinationRule", "destinationrules"),
    );
    let weights = || async {
        let vs = services.get("mesh").await.ok()?;
        let route = vs.data["spec"]["http"][0]["route"].as_array()?.clone();
        Some((route[0]["weight"].as_i64()?, route[1]["weight"].as_i64()?))
    };
    assert_eq!(weights().await, Some((100, 0)));
    let vs = services.get("mesh").await.unwrap();
    assert_eq!(vs.data["spec"]["http"][0]["timeout"], "3s");
    for host in ["mesh-primary", "mesh-canary"] {
        assert_eq!(rules.get(host).await.unwrap().data["spec"]["host"], host);
    }
    s.gitops_apply("mesh", "v2").await;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("promotion", WAIT, || async {
        if let Some(w) = weights().await {
            seen.lock().unwrap().insert(w);
        }
        (s.phase("mesh").await == Some(Phase::Succeeded)).then_some(())
    })
    .await;
    assert!(seen.into_inner().unwrap().contains(&(50, 50)));
    assert_eq!(weights().await, Some((100, 0)));
    assert_eq!(s.primary_version("mesh").await.as_deref(), Some("v2"));
}

/// Istio multi-cluster with a shared control plane (`--kubeconfig-service-mesh`): the
/// VirtualService and DestinationRules live in the mesh's cluster, labelled with the Canary
/// instead of owned (an owner reference cannot cross clusters), are stepped there, and go
/// with the Canary through its finalizer; nothing of the mesh is written beside the workloads.
#[tokio::test]
async fn istio_routes_live_in_the_cluster_of_the_service_mesh() {
    let mesh = cluster::ControlPlane::start_second();
    let mesh_client = mesh.client(None).await;
    cluster::controller::install(&mesh_client).await;
    let kubeconfig = mesh.kubeconfig.display().to_string();
    let s = setup(
        "istio-mesh",
        &[
            "--mesh-provider",
            "istio",
            "--kubeconfig-service-mesh",
            &kubeconfig,
        ],
    )
    .await;
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": s.ns}})).unwrap();
    Api::all(mesh_client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    s.create_deployment("mesh", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 50, "maxWeight": 50});
    s.create_canary("mesh", analysis, json!({"provider": "istio"}))
        .await;
    s.wait_phase("mesh", Phase::Initialized).await;
    let istio = |client: &kube::Client, kind: &str, plural: &str| -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.istio.io", "v1beta1", kind),
            plural,
        );
        Api::namespaced_with(client.clone(), &s.ns, &resource)
    };
    let services = istio(&mesh_client, "VirtualService", "virtualservices");
    let rules = istio(&mesh_client, "DestinationRule", "destinationrules");
    let uid = s.canaries().get("mesh").await.unwrap().uid().unwrap();
    let vs = services.get("mesh").await.unwrap();
    assert!(vs.owner_references().is_empty(), "{:?}", vs.metadata);
    assert_eq!(vs.labels()["serin.dev/canary-uid"], uid);
    for host in ["mesh-primary", "mesh-canary"] {
        assert_eq!(
            rules.get(host).await.unwrap().labels()["serin.dev/canary-uid"],
            uid
        );
    }
    let local = istio(&s.client, "VirtualService", "virtualservices");
    assert!(local.get_opt("mesh").await.unwrap().is_none());

    let weights = || async {
        let vs = services.get("mesh").await.ok()?;
        let route = vs.data["spec"]["http"][0]["route"].as_array()?.clone();
        Some((route[0]["weight"].as_i64()?, route[1]["weight"].as_i64()?))
    };
    s.gitops_apply("mesh", "v2").await;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("promotion", WAIT, || async {
        if let Some(w) = weights().await {
            seen.lock().unwrap().insert(w);
        }
        (s.phase("mesh").await == Some(Phase::Succeeded)).then_some(())
    })
    .await;
    assert!(seen.into_inner().unwrap().contains(&(50, 50)));
    assert_eq!(weights().await, Some((100, 0)));

    s.canaries()
        .delete("mesh", &Default::default())
        .await
        .unwrap();
    eventually(
        "the mesh's routes deleted with the Canary",
        WAIT,
        || async {
            let left = services.list(&Default::default()).await.ok()?.items.len()
                + rules.list(&Default::default()).await.ok()?.items.len();
            let gone = s.canaries().get_opt("mesh").await.ok()?.is_none();
            (left == 0 && gone).then_some(())
        },
    )
    .await;
}

/// Istio's own match conditions and delegation through the API server (the structural
/// VirtualService CRD of tests/fixtures/crds/istio.yaml, Istio 1.24's shape): the delegate
/// VirtualService has no hosts or gateways, its split serves `service.match` as written, and
/// during the A/B analysis the canary's route takes the A/B match ANDed with it.
#[tokio::test]
async fn istio_writes_its_match_conditions_into_a_delegate_virtual_service() {
    let s = setup("istio-delegate", &[]).await;
    s.create_deployment("shop", Readiness::Ready).await;
    let served = json!({"uri": {"prefix": "/SHOP"}, "ignoreUriCase": true,
        "authority": {"exact": "shop.example.com"}, "sourceNamespace": "web",
        "withoutHeaders": {"x-debug": {"exact": "1"}}});
    let analysis = json!({"interval": "1s", "threshold": 2, "iterations": 2,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}, "scheme": {"exact": "https"}}],
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    let extra = json!({"provider": "istio",
        "service": {"port": 80, "targetPort": 8080, "delegation": true, "match": [served]}});
    s.create_canary("shop", analysis, extra).await;
    s.wait_phase("shop", Phase::Initialized).await;
    let services: Api<DynamicObject> = Api::namespaced_with(
        s.client.clone(),
        &s.ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.istio.io", "v1beta1", "VirtualService"),
            "virtualservices",
        ),
    );
    let spec = || async { services.get("shop").await.unwrap().data["spec"].clone() };
    let before = spec().await;
    assert!(before.get("hosts").is_none(), "{before:#}");
    assert!(before.get("gateways").is_none(), "{before:#}");
    assert_eq!(before["http"].as_array().unwrap().len(), 1, "{before:#}");
    assert_eq!(before["http"][0]["match"], json!([served]));

    s.gitops_apply("shop", "v2").await;
    s.wait_phase("shop", Phase::WaitingPromotion).await;
    let during = spec().await;
    let mut ab = served.clone();
    ab["headers"] = json!({"x-canary": {"exact": "insider"}});
    ab["scheme"] = json!({"exact": "https"});
    assert_eq!(during["http"][0]["match"], json!([ab]), "{during:#}");
    assert_eq!(during["http"][0]["route"][1]["weight"], 100);
    assert_eq!(during["http"][1]["match"], json!([served]));
    assert_eq!(during["http"][1]["route"][0]["weight"], 100);
    s.request("shop", "promote", "1").await;
    s.wait_phase("shop", Phase::Succeeded).await;
    let after = spec().await;
    assert_eq!(after["http"].as_array().unwrap().len(), 1, "{after:#}");
    assert_eq!(after["http"][0]["route"][0]["weight"], 100);
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v2"));
}

/// nginx: the user's Ingress is cloned into `<ingress>-canary`, whose weight annotation steps
/// through the analysis and is back at 0 after promotion and after rollback; the user's
/// Ingress is never written, and deleting the Canary deletes the clone only.
#[tokio::test]
async fn nginx_steps_the_canary_ingress_and_leaves_the_users_ingress_alone() {
    const PREFIX: &str = "custom.ingress.kubernetes.io";
    let s = setup("nginx", &["--ingress-annotations-prefix", PREFIX]).await;
    s.create_deployment("shop", Readiness::Ready).await;
    s.create_ingress("shop", "shop").await;
    let users = s.ingresses().get("shop").await.unwrap();
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    let extra = json!({"provider": "nginx", "service": {"port": 80, "targetPort": 8080},
        "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "shop"}});
    s.create_canary("shop", analysis, extra).await;
    s.wait_phase("shop", Phase::Initialized).await;
    let ingresses = s.ingresses();
    let annotation = |key: &'static str| {
        let ingresses = ingresses.clone();
        async move {
            let clone = ingresses.get_opt("shop-canary").await.ok()??;
            clone.annotations().get(&format!("{PREFIX}/{key}")).cloned()
        }
    };
    assert_eq!(annotation("canary-weight").await.as_deref(), Some("0"));
    assert_eq!(annotation("canary").await.as_deref(), Some("true"));
    let clone = s.ingresses().get("shop-canary").await.unwrap();
    let spec = clone.spec.clone().unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rules = spec.rules.unwrap();
    let backend = &rules[0].http.as_ref().unwrap().paths[0].backend;
    assert_eq!(backend.service.as_ref().unwrap().name, "shop-canary");
    assert_eq!(clone.owner_references()[0].kind, "Canary");

    // A new revision steps the weight up to maxWeight, then waits for the gate.
    s.gitops_apply("shop", "v2").await;
    s.wait_phase("shop", Phase::WaitingPromotion).await;
    assert_eq!(annotation("canary-weight").await.as_deref(), Some("50"));
    s.request("shop", "promote", "1").await;
    s.wait_phase("shop", Phase::Succeeded).await;
    assert_eq!(annotation("canary-weight").await.as_deref(), Some("0"));
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v2"));

    // The next one is aborted: rolled back to the primary, the weight at 0 again.
    s.gitops_apply("shop", "v3").await;
    s.wait_phase("shop", Phase::WaitingPromotion).await;
    s.request("shop", "abort", "2").await;
    s.wait_phase("shop", Phase::Failed).await;
    assert_eq!(annotation("canary-weight").await.as_deref(), Some("0"));
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v2"));

    s.canaries()
        .delete("shop", &Default::default())
        .await
        .unwrap();
    eventually(
        "the canary Ingress deleted with its Canary",
        WAIT,
        || async {
            s.ingresses()
                .get_opt("shop-canary")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let after = s.ingresses().get("shop").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, users.metadata.resource_version,
        "the user's Ingress was never written"
    );
}

/// A `<ingress>-canary` Ingress that existed before the Canary (one a Flagger install left)
/// is taken over, not owned: deleting the Canary with revertOnDeletion keeps it and puts its
/// spec back.
#[tokio::test]
async fn nginx_takes_over_an_existing_canary_ingress_and_restores_it() {
    let s = setup("nginx-takeover", &[]).await;
    s.create_deployment("cart", Readiness::Ready).await;
    s.create_ingress("cart", "cart").await;
    s.create_ingress("cart-canary", "somewhere-else").await;
    let original = s.ingresses().get("cart-canary").await.unwrap().spec;
    let extra = json!({"provider": "nginx", "revertOnDeletion": true,
        "service": {"port": 80, "targetPort": 8080}, "ingressRef": {"name": "cart"}});
    s.create_canary("cart", steps(), extra).await;
    s.wait_phase("cart", Phase::Initialized).await;
    let taken = s.ingresses().get("cart-canary").await.unwrap();
    assert_eq!(
        taken.annotations()["nginx.ingress.kubernetes.io/canary-weight"],
        "0"
    );
    assert!(taken.owner_references().is_empty(), "not serin's to delete");
    let rules = taken.spec.clone().unwrap().rules.unwrap();
    let backend = &rules[0].http.as_ref().unwrap().paths[0].backend;
    assert_eq!(backend.service.as_ref().unwrap().name, "cart-canary");
    s.canaries()
        .delete("cart", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("cart")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let restored = s.ingresses().get("cart-canary").await.unwrap();
    assert_eq!(restored.spec, original);
}

/// smi:v1alpha2: a TrafficSplit that existed before the Canary is taken over (kept, not
/// owned), its weights step through the analysis, are back at 100/0 after promotion and after
/// rollback, and its spec is put back when the Canary is deleted with revertOnDeletion.
#[tokio::test]
async fn smi_steps_a_traffic_split_and_restores_the_one_it_took_over() {
    let s = setup("smi", &[]).await;
    s.create_deployment("split", Readiness::Ready).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("split.smi-spec.io", "v1alpha2", "TrafficSplit"),
        "trafficsplits",
    );
    let splits: Api<DynamicObject> = Api::namespaced_with(s.client.clone(), &s.ns, &resource);
    let original =
        json!({"service": "split", "backends": [{"service": "split-v1", "weight": 100}]});
    let existing: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
        "metadata": {"name": "split"}, "spec": original,
    }))
    .unwrap();
    splits
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    let extra = json!({"provider": "smi:v1alpha2", "revertOnDeletion": true,
        "service": {"port": 80, "targetPort": 8080}});
    s.create_canary("split", analysis, extra).await;
    s.wait_phase("split", Phase::Initialized).await;
    // (primary, canary) by backend service name.
    let weights = || async {
        let split = splits.get("split").await.ok()?;
        let backends = split.data["spec"]["backends"].as_array()?.clone();
        let weight = |name: &str| {
            backends
                .iter()
                .find(|b| b["service"] == name)
                .and_then(|b| b["weight"].as_i64())
        };
        Some((weight("split-primary")?, weight("split-canary")?))
    };
    assert_eq!(weights().await, Some((100, 0)));
    let taken = splits.get("split").await.unwrap();
    assert_eq!(taken.data["spec"]["service"], "split");
    assert!(taken.owner_references().is_empty(), "not serin's to delete");

    s.gitops_apply("split", "v2").await;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("waiting for promotion", WAIT, || async {
        if let Some(w) = weights().await {
            seen.lock().unwrap().insert(w);
        }
        (s.phase("split").await == Some(Phase::WaitingPromotion)).then_some(())
    })
    .await;
    assert!(
        seen.into_inner().unwrap().contains(&(75, 25)),
        "stepped through 25%"
    );
    assert_eq!(weights().await, Some((50, 50)));
    s.request("split", "promote", "1").await;
    s.wait_phase("split", Phase::Succeeded).await;
    assert_eq!(weights().await, Some((100, 0)));
    assert_eq!(s.primary_version("split").await.as_deref(), Some("v2"));

    s.gitops_apply("split", "v3").await;
    s.wait_phase("split", Phase::WaitingPromotion).await;
    s.request("split", "abort", "2").await;
    s.wait_phase("split", Phase::Failed).await;
    assert_eq!(weights().await, Some((100, 0)));
    assert_eq!(s.primary_version("split").await.as_deref(), Some("v2"));

    s.canaries()
        .delete("split", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("split")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let restored = splits.get("split").await.unwrap();
    assert_eq!(restored.data["spec"], original);
}

/// Gateway API mesh routing (GAMMA, Linkerd 2.12+): the HTTPRoute's parent is the apex
/// Service, written in the core group's spelling; the weights step, promote and roll back as
/// with a Gateway.
#[tokio::test]
async fn gatewayapi_with_a_service_parent_routes_the_mesh() {
    let s = setup("gamma", &[]).await;
    s.create_deployment("mesh", Readiness::Ready).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    let extra = json!({"provider": "gatewayapi", "service": {"port": 80, "targetPort": 8080,
        "gatewayRefs": [{"name": "mesh", "group": "core", "kind": "Service", "port": 80}]}});
    s.create_canary("mesh", analysis, extra).await;
    s.wait_phase("mesh", Phase::Initialized).await;
    let route = s.routes().get("mesh").await.unwrap();
    assert_eq!(
        route.data["spec"]["parentRefs"],
        json!([{"group": "", "kind": "Service", "name": "mesh", "port": 80}])
    );
    assert_eq!(s.weights("mesh").await, Some((100, 0)));

    s.gitops_apply("mesh", "v2").await;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("waiting for promotion", WAIT, || async {
        if let Some(w) = s.weights("mesh").await {
            seen.lock().unwrap().insert(w);
        }
        (s.phase("mesh").await == Some(Phase::WaitingPromotion)).then_some(())
    })
    .await;
    assert!(seen.into_inner().unwrap().contains(&(75, 25)));
    assert_eq!(s.weights("mesh").await, Some((50, 50)));
    s.request("mesh", "promote", "1").await;
    s.wait_phase("mesh", Phase::Succeeded).await;
    assert_eq!(s.weights("mesh").await, Some((100, 0)));

    s.gitops_apply("mesh", "v3").await;
    s.wait_phase("mesh", Phase::WaitingPromotion).await;
    s.request("mesh", "abort", "2").await;
    s.wait_phase("mesh", Phase::Failed).await;
    assert_eq!(s.weights("mesh").await, Some((100, 0)));
    assert_eq!(s.primary_version("mesh").await.as_deref(), Some("v2"));
}

/// gatewayapi for `appProtocol: grpc` and `tcp`: a GRPCRoute and a TCPRoute, not an
/// HTTPRoute, whose weights step and come back to the primary at promotion.
#[tokio::test]
async fn gatewayapi_routes_grpc_and_tcp_services_with_their_own_route_kinds() {
    let s = setup("grpc-tcp", &[]).await;
    let routes = |kind: &str, plural: &str, version: &str| -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", version, kind),
            plural,
        );
        Api::namespaced_with(s.client.clone(), &s.ns, &resource)
    };
    let kinds = [
        ("grpc", routes("GRPCRoute", "grpcroutes", "v1")),
        ("tcp", routes("TCPRoute", "tcproutes", "v1alpha2")),
    ];
    for (protocol, _) in &kinds {
        s.create_deployment(protocol, Readiness::Ready).await;
        let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
            "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
        let extra = json!({"service": {"port": 80, "targetPort": 8080, "appProtocol": protocol,
            "gatewayRefs": [{"name": "public", "namespace": "gateways"}]}});
        s.create_canary(protocol, analysis, extra).await;
    }
    for (protocol, api) in &kinds {
        s.wait_phase(protocol, Phase::Initialized).await;
        let weights = || async {
            let route = api.get(protocol).await.ok()?;
            let backends = route.data["spec"]["rules"].as_array()?.last()?["backendRefs"]
                .as_array()?
                .clone();
            Some((
                backends[0]["weight"].as_i64()?,
                backends[1]["weight"].as_i64()?,
            ))
        };
        assert_eq!(weights().await, Some((100, 0)), "{protocol}");
        assert!(
            s.routes().get_opt(protocol).await.unwrap().is_none(),
            "no HTTPRoute for {protocol}"
        );
        s.gitops_apply(protocol, "v2").await;
        s.wait_phase(protocol, Phase::WaitingPromotion).await;
        assert_eq!(weights().await, Some((50, 50)), "{protocol}");
        s.request(protocol, "promote", "1").await;
        s.wait_phase(protocol, Phase::Succeeded).await;
        assert_eq!(weights().await, Some((100, 0)), "{protocol}");
    }
}

/// The HPA version the cluster serves (the harness's 1.20 serves v2beta2 only; 1.26 and later
/// v2 only), as the controller picks it.
async fn hpa_resource(client: &kube::Client) -> ApiResource {
    let discovery = kube::discovery::Discovery::new(client.clone())
        .filter(&["autoscaling"])
        .run()
        .await
        .unwrap();
    let group = discovery.get("autoscaling").unwrap();
    ["v2", "v2beta2"]
        .iter()
        .find_map(|version| {
            group
                .versioned_resources(version)
                .into_iter()
                .find(|(r, _)| r.kind == "HorizontalPodAutoscaler")
                .map(|(r, _)| r)
        })
        .expect("autoscaling/v2 or v2beta2 served")
}

fn gated_steps() -> Value {
    json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]})
}

#[tokio::test]
async fn an_hpa_edit_reaches_the_primary_at_promotion_not_before() {
    let s = setup("hpa", &[]).await;
    s.create_deployment("auto", Readiness::Ready).await;
    let resource = hpa_resource(&s.client).await;
    let hpas: Api<DynamicObject> = Api::namespaced_with(s.client.clone(), &s.ns, &resource);
    let hpa: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "auto"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "auto"},
                 "minReplicas": 2, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
    }))
    .unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();
    let reference = json!({"autoscalerRef": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "name": "auto", "primaryScalerReplicas": {"maxReplicas": 6}}});
    s.create_canary("auto", gated_steps(), reference).await;
    s.wait_phase("auto", Phase::Initialized).await;
    let bounds = || async {
        let primary = hpas.get("auto-primary").await.unwrap();
        let spec = &primary.data["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], "auto-primary");
        (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64())
    };
    assert_eq!(bounds().await, (Some(2), Some(6)), "the Canary's maximum");
    // Edited between releases: the primary keeps its autoscaling through the analysis...
    hpas.patch(
        "auto",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minReplicas": 3, "maxReplicas": 7}})),
    )
    .await
    .unwrap();
    s.gitops_apply("auto", "v2").await;
    s.wait_phase("auto", Phase::WaitingPromotion).await;
    assert_eq!(bounds().await, (Some(2), Some(6)), "not before promotion");
    // ...and takes the edit with the release.
    s.request("auto", "promote", "1").await;
    s.wait_phase("auto", Phase::Succeeded).await;
    assert_eq!(bounds().await, (Some(3), Some(6)), "at promotion, bounded");
}

fn scaled_object_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

fn scaled_object(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "labels": {"team": "shop"}},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 1, "maxReplicaCount": 8,
            "triggers": [
                {"type": "prometheus", "name": "requests", "metadata": {"serverAddress": "http://prometheus:9090",
                    "query": format!("sum(rate(http_requests_total{{app=\"{name}\"}}[1m]))"), "threshold": "100"}},
                {"type": "prometheus", "name": "latency", "metadata": {"serverAddress": "http://prometheus:9090",
                    "query": format!("max(latency{{deployment=\"{name}-canary\"}})"), "threshold": "5"}},
            ],
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn a_keda_scaled_object_is_cloned_to_the_primary_with_its_queries_and_bounds() {
    let s = setup("keda", &[]).await;
    s.create_deployment("queue", Readiness::Ready).await;
    let objects: Api<DynamicObject> =
        Api::namespaced_with(s.client.clone(), &s.ns, &scaled_object_resource());
    objects
        .create(&PostParams::default(), &scaled_object("queue"))
        .await
        .unwrap();
    let reference = json!({"autoscalerRef": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "queue",
        "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5},
        "primaryScalerQueries": {"latency": "max(latency{deployment=\"queue-primary\"})"}}});
    s.create_canary("queue", gated_steps(), reference).await;
    s.wait_phase("queue", Phase::Initialized).await;
    let primary = objects.get("queue-primary").await.unwrap();
    let spec = &primary.data["spec"];
    assert_eq!(spec["scaleTargetRef"]["name"], "queue-primary");
    assert_eq!(
        (
            spec["minReplicaCount"].as_i64(),
            spec["maxReplicaCount"].as_i64()
        ),
        (Some(2), Some(5))
    );
    let queries: Vec<&str> = spec["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["metadata"]["query"].as_str().unwrap())
        .collect();
    assert_eq!(
        queries,
        [
            // Given for "latency"; "requests" kept as written, as Flagger does.
            "sum(rate(http_requests_total{app=\"queue\"}[1m]))",
            "max(latency{deployment=\"queue-primary\"})",
        ]
    );
    assert_eq!(
        primary.labels().get("team").map(String::as_str),
        Some("shop")
    );
    let paused = || async {
        let target = objects.get("queue").await.unwrap();
        target
            .annotations()
            .get("autoscaling.keda.sh/paused-replicas")
            .cloned()
    };
    // KEDA must not scale the idle target back up: paused at zero between rollouts...
    assert_eq!(paused().await.as_deref(), Some("0"));
    assert!(
        !primary
            .annotations()
            .contains_key("autoscaling.keda.sh/paused-replicas"),
        "the primary keeps scaling"
    );
    // ...resumed while the canary runs, paused again after the promotion.
    s.gitops_apply("queue", "v2").await;
    s.wait_phase("queue", Phase::WaitingPromotion).await;
    assert_eq!(paused().await, None);
    s.request("queue", "promote", "1").await;
    s.wait_phase("queue", Phase::Succeeded).await;
    assert_eq!(paused().await.as_deref(), Some("0"));
}

#[tokio::test]
async fn deleting_the_canary_with_revert_on_deletion_resumes_the_targets_scaled_object() {
    let s = setup("keda-revert", &[]).await;
    s.create_deployment("jobs", Readiness::Ready).await;
    let objects: Api<DynamicObject> =
        Api::namespaced_with(s.client.clone(), &s.ns, &scaled_object_resource());
    objects
        .create(&PostParams::default(), &scaled_object("jobs"))
        .await
        .unwrap();
    let extra = json!({"revertOnDeletion": true,
        "autoscalerRef": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "jobs"}});
    s.create_canary("jobs", steps(), extra).await;
    s.wait_phase("jobs", Phase::Initialized).await;
    let paused = || async {
        objects
            .get("jobs")
            .await
            .unwrap()
            .annotations()
            .get("autoscaling.keda.sh/paused-replicas")
            .cloned()
    };
    assert_eq!(paused().await.as_deref(), Some("0"));
    // Without its own queries the primary's name the primary.
    let primary = objects.get("jobs-primary").await.unwrap();
    assert_eq!(
        primary.data["spec"]["triggers"][1]["metadata"]["query"],
        "max(latency{deployment=\"jobs-primary\"})"
    );
    s.canaries()
        .delete("jobs", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("jobs")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        paused().await,
        None,
        "KEDA scales the user's Deployment again"
    );
    assert_eq!(s.replicas("jobs").await, Some(2));
}

#[tokio::test]
async fn with_leader_election_only_the_leader_writes_and_a_standby_takes_over() {
    let mut s = setup("leader", &["--leader-election", "--identity", "first"]).await;
    let ns = s.ns.clone();
    let lease_args = [
        "--leader-election",
        "--leader-election-namespace",
        ns.as_str(),
    ];
    // Restart the first with the Lease in the test namespace, then a second replica.
    s.controller.kill();
    let kubeconfig = service_account_kubeconfig_path(&s);
    s.controller = ControllerProcess::start(
        &kubeconfig,
        &ns,
        &[&lease_args[..], &["--identity", "first"]].concat(),
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(s.client.clone(), &ns);
    let holder = || async { leases.get("serin-leader").await.ok()?.spec?.holder_identity };
    eventually("first holds the Lease", WAIT, || async {
        (holder().await.as_deref() == Some("first")).then_some(())
    })
    .await;
    let mut second = ControllerProcess::start(
        &kubeconfig,
        &ns,
        &[&lease_args[..], &["--identity", "second"]].concat(),
    );
    s.create_deployment("ha", Readiness::Ready).await;
    s.create_canary("ha", steps(), json!({})).await;
    s.wait_phase("ha", Phase::Initialized).await;
    assert!(
        !second.logs().contains("controller started"),
        "the standby never reconciles while the leader lives:\n{}",
        second.logs()
    );
    assert!(second.is_running());
    // The leader dies; the standby takes the Lease and carries the next rollout.
    s.controller.kill();
    s.gitops_apply("ha", "v2").await;
    eventually("second holds the Lease", WAIT, || async {
        (holder().await.as_deref() == Some("second")).then_some(())
    })
    .await;
    s.wait_phase("ha", Phase::Succeeded).await;
    assert_eq!(s.primary_version("ha").await.as_deref(), Some("v2"));
    assert!(second.logs().contains("became the leader"));
    second.kill();
}

fn service_account_kubeconfig_path(s: &Setup) -> std::path::PathBuf {
    cluster::controller::kubeconfig_path(&s.ns)
}

/// The controller takes every Flagger-style Canary of tests/flagger_parity.rs (where `serin
/// check` and `serin simulate` accept it): each initializes, and each warned field is named in
/// one Warning event with reason ReadAsFlagger.
#[tokio::test]
async fn the_controller_runs_flagger_manifests_and_warns_as_check_does() {
    let s = setup("flagger-parity", &[]).await;
    for reference in flagger_cases::references() {
        let mut reference = reference.clone();
        reference["metadata"]["namespace"] = json!(s.ns);
        let kind = reference["kind"].as_str().unwrap().to_string();
        let params = PostParams::default();
        if kind == "MetricTemplate" {
            let template: serin::api::MetricTemplate =
                serin::api::load::from_value(&reference, "").unwrap();
            Api::namespaced(s.client.clone(), &s.ns)
                .create(&params, &template)
                .await
                .unwrap();
        } else {
            let provider: serin::api::AlertProvider =
                serin::api::load::from_value(&reference, "").unwrap();
            Api::namespaced(s.client.clone(), &s.ns)
                .create(&params, &provider)
                .await
                .unwrap();
        }
    }
    let cases = flagger_cases::cases();
    for case in &cases {
        s.create_deployment(case.name, Readiness::Ready).await;
        let mut manifest = flagger_cases::canary(case);
        manifest["metadata"]["namespace"] = json!(s.ns);
        // As the API server stores it: nulls pruned.
        let canary: Canary = serin::api::load::from_value(&manifest, "").unwrap();
        s.canaries()
            .create(&PostParams::default(), &canary)
            .await
            .unwrap();
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), &s.ns);
    for case in &cases {
        s.wait_phase(case.name, Phase::Initialized).await;
        if case.warned.is_empty() {
            continue;
        }
        let note = eventually(case.name, WAIT, || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items.into_iter().find_map(|e| {
                (e.reason.as_deref() == Some("ReadAsFlagger")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref()?.name.as_deref() == Some(case.name))
                .then(|| e.note.unwrap_or_default())
            })
        })
        .await;
        for field in case.warned {
            assert!(
                note.contains(&format!("{field}: ")),
                "{}: {note}",
                case.name
            );
        }
    }
}

/// With `--flagger-metrics`, a dashboard or alert rule written for Flagger reads serin's
/// /metrics unchanged: Flagger's names, its `name` label (the target's), `workload` weights for
/// the primary and the canary, and one success per promoted rollout.
#[tokio::test]
async fn flaggers_metrics_are_served_for_its_dashboards() {
    let s = setup("flagger-metrics", &["--flagger-metrics"]).await;
    s.create_deployment("shop", Readiness::Ready).await;
    s.create_canary("shop", steps(), json!({})).await;
    s.wait_phase("shop", Phase::Initialized).await;
    s.gitops_apply("shop", "v2").await;
    s.wait_phase("shop", Phase::Succeeded).await;
    let url = format!("http://{}/metrics", s.controller.listen);
    let http = serin::hooks::client().unwrap();
    let ns = &s.ns;
    // Totals are counted every 15 s.
    let total = format!("flagger_canary_total{{namespace=\"{ns}\"}} 1");
    let text = eventually("Flagger's success counter and total", WAIT, || async {
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        (text.contains("flagger_canary_successes_total{name=\"shop\"") && text.contains(&total))
            .then_some(text)
    })
    .await;
    for line in [
        format!("flagger_canary_status{{name=\"shop\",namespace=\"{ns}\"}} 1"),
        format!("flagger_canary_weight{{workload=\"shop-primary\",namespace=\"{ns}\"}} 100"),
        format!("flagger_canary_weight{{workload=\"shop\",namespace=\"{ns}\"}} 0"),
        format!(
            "flagger_canary_successes_total{{name=\"shop\",namespace=\"{ns}\",deployment_strategy=\"canary\",analysis_status=\"completed\"}} 1"
        ),
        "flagger_info{version=\"".to_string(),
        "flagger_canary_duration_seconds_bucket{".to_string(),
    ] {
        assert!(text.contains(&line), "{line} in:\n{text}");
    }
}

/// A watch the controller cannot keep (its role lost list and watch on Secrets while it still
/// watches them) makes the replica unready after 30 s, /readyz naming the watch and the
/// refusal, and /metrics marking it stale while the others stay fresh; once the role is
/// fixed the watch recovers on its own and the replica is ready again.
#[tokio::test]
async fn a_watch_that_keeps_failing_makes_the_controller_unready_until_it_recovers() {
    const ROLE: &str = "serin-stale-secrets";
    let client = cluster::client().await;
    let without_secret_watch = |rules: &mut Vec<k8s_openapi::api::rbac::v1::PolicyRule>| {
        for rule in rules.iter_mut() {
            if rule
                .resources
                .as_ref()
                .is_some_and(|r| r.contains(&"secrets".to_string()))
            {
                rule.verbs.retain(|v| v != "list" && v != "watch");
            }
        }
    };
    cluster::controller::install_role_variant(&client, ROLE, without_secret_watch).await;
    let s = cluster::rollout::setup_as("stale-watch", &[], ROLE).await;
    let http = serin::hooks::client().unwrap();
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", s.controller.listen);
        let http = http.clone();
        async move {
            let response = http.get(&url).send().await.ok()?;
            Some((response.status().as_u16(), response.text().await.ok()?))
        }
    };
    let body = eventually("/readyz naming the stale watch", WAIT, || async {
        let (status, body) = get("/readyz").await?;
        (status == 503 && body.contains("failing for")).then_some(body)
    })
    .await;
    assert!(body.contains("secrets: failing for"), "{body}");
    assert!(body.contains("forbidden"), "the refusal is named: {body}");
    assert!(
        !body.contains("deployments"),
        "only the failing watch: {body}"
    );
    let (_, metrics) = get("/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("serin_watch_stale{watch=\"secrets\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("serin_watch_stale{watch=\"deployments\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("serin_watch_stale{watch=\"canaries\"} 0"),
        "{metrics}"
    );

    cluster::controller::install_role_variant(&client, ROLE, |_| {}).await;
    eventually(
        "ready again once the role allows the watch",
        WAIT,
        || async {
            let (status, _) = get("/readyz").await?;
            (status == 200).then_some(())
        },
    )
    .await;
    let (_, metrics) = get("/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("serin_watch_stale{watch=\"secrets\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("serin_watch_errors_total{watch=\"secrets\"}"),
        "{metrics}"
    );
}
