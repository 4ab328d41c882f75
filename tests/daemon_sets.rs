//! DaemonSet targets end to end on the real control plane: its DaemonSet controller puts a pod
//! on each of the pod simulator's two nodes. Between rollouts the user's DaemonSet (the canary)
//! is kept on no node by serin's idle node selector; a rollout puts it back on every node
//! beside the `-primary` DaemonSet, and promotion copies its template to the primary.

mod cluster;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use cluster::eventually;
use cluster::rollout::{Setup, WAIT, setup, steps};
use cluster::workloads::Readiness;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use serde_json::json;
use serin::api::Phase;
use serin::workload::daemonset::IDLE_LABEL;

/// Both simulated nodes.
const NODES: i32 = cluster::pods::NODES.len() as i32;

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
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
            );
        }
    });
    format!("http://{address}/")
}

/// Waits until the DaemonSet `name` runs no pod, and says it is serin's doing.
async fn wait_idle(s: &Setup, name: &str) {
    eventually(&format!("{name} on no node"), WAIT, || async {
        (s.daemon_set_pods(name).await == Some((0, 0))).then_some(())
    })
    .await;
    assert_eq!(
        s.node_selector(name)
            .await
            .get(IDLE_LABEL)
            .map(String::as_str),
        Some("true")
    );
}

async fn initialized(name: &str, analysis: serde_json::Value, extra: serde_json::Value) -> Setup {
    let s = setup(name, &[]).await;
    s.create_daemon_set(name, Readiness::Ready).await;
    s.create_canary_of("DaemonSet", name, analysis, extra).await;
    s.wait_phase(name, Phase::Initialized).await;
    s
}

#[tokio::test]
async fn a_daemon_set_is_promoted_and_its_canary_goes_back_to_no_node() {
    let s = initialized("agent", steps(), json!({})).await;
    // Initialization: the primary on every node, the user's DaemonSet on none, traffic on
    // the primary through the apex Service.
    assert_eq!(
        s.daemon_set_pods("agent-primary").await,
        Some((NODES, NODES))
    );
    wait_idle(&s, "agent").await;
    assert_eq!(
        s.primary_daemon_set_version("agent").await.as_deref(),
        Some("v1")
    );
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    let apex = services.get("agent").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "agent-primary");
    assert_eq!(s.weights("agent").await, Some((100, 0)));

    // A new template applied as Flux applies it: the whole manifest, without serin's key.
    s.gitops_apply_daemon_set("agent", "v2").await;
    let seen = std::sync::Mutex::new((std::collections::BTreeSet::new(), 0));
    eventually("promotion", Duration::from_secs(120), || async {
        if let Some(weights) = s.weights("agent").await {
            seen.lock().unwrap().0.insert(weights);
        }
        if let Some((_, ready)) = s.daemon_set_pods("agent").await {
            let mut seen = seen.lock().unwrap();
            seen.1 = seen.1.max(ready);
        }
        (s.phase("agent").await == Some(Phase::Succeeded)).then_some(())
    })
    .await;
    let (weights, canary_pods) = seen.into_inner().unwrap();
    assert!(
        weights.contains(&(75, 25)) && weights.contains(&(50, 50)),
        "the route stepped through 25% and 50%: saw {weights:?}"
    );
    assert_eq!(canary_pods, NODES, "the canary ran on every node");
    assert_eq!(
        s.primary_daemon_set_version("agent").await.as_deref(),
        Some("v2")
    );
    eventually("the primary rolled to v2 on every node", WAIT, || async {
        (s.daemon_set_pods("agent-primary").await == Some((NODES, NODES))).then_some(())
    })
    .await;
    wait_idle(&s, "agent").await;
    assert_eq!(s.weights("agent").await, Some((100, 0)));
    // The user's own template is untouched: the idle key is the only thing serin added.
    assert_eq!(s.node_selector("agent").await.len(), 1);
}

#[tokio::test]
async fn a_failing_daemon_set_canary_is_rolled_back_and_leaves_the_primary_alone() {
    let mut analysis = steps();
    analysis["webhooks"] = json!([{"name": "smoke", "type": "rollout", "url": hook_server(500)}]);
    let s = initialized("probe", analysis, json!({})).await;
    s.gitops_apply_daemon_set("probe", "v2").await;
    s.wait_phase("probe", Phase::Failed).await;
    assert_eq!(s.weights("probe").await, Some((100, 0)));
    assert_eq!(
        s.primary_daemon_set_version("probe").await.as_deref(),
        Some("v1")
    );
    wait_idle(&s, "probe").await;
    assert_eq!(
        s.daemon_set_pods("probe-primary").await,
        Some((NODES, NODES))
    );
    let status = s.canaries().get("probe").await.unwrap().status.unwrap();
    assert_eq!(status.failed_checks, 2);
}

/// Abort during the promotion gate, after the analysis passed: the rollback of a Canary whose
/// primary never changed. Then a promotion, and the primary's history (ControllerRevisions)
/// holds both templates, which is what a revert of a failed promotion reads.
#[tokio::test]
async fn an_aborted_daemon_set_rollout_keeps_the_primary_and_a_promotion_records_its_history() {
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]});
    let s = initialized("relay", analysis, json!({})).await;
    s.gitops_apply_daemon_set("relay", "v2").await;
    s.wait_phase("relay", Phase::WaitingPromotion).await;
    assert_eq!(s.weights("relay").await, Some((50, 50)));
    s.request("relay", "abort", "a-1").await;
    s.wait_phase("relay", Phase::Failed).await;
    assert_eq!(
        s.primary_daemon_set_version("relay").await.as_deref(),
        Some("v1")
    );
    wait_idle(&s, "relay").await;
    s.request("relay", "retry", "a-2").await;
    s.wait_phase("relay", Phase::WaitingPromotion).await;
    s.request("relay", "promote", "a-3").await;
    s.wait_phase("relay", Phase::Succeeded).await;
    assert_eq!(
        s.primary_daemon_set_version("relay").await.as_deref(),
        Some("v2")
    );
    let revisions: Api<ControllerRevision> = Api::namespaced(s.client.clone(), &s.ns);
    let history = revisions
        .list(&ListParams::default().labels("app=relay-primary"))
        .await
        .unwrap();
    let versions: std::collections::BTreeSet<String> = history
        .items
        .iter()
        .filter_map(|revision| {
            let template = &revision.data.as_ref()?.0["spec"]["template"];
            let env = template["spec"]["containers"][0]["env"].as_array()?;
            env.iter()
                .find(|e| e["name"] == "VERSION")
                .and_then(|e| e["value"].as_str().map(str::to_string))
        })
        .collect();
    assert_eq!(
        versions,
        ["v1".to_string(), "v2".to_string()].into(),
        "the primary's history holds both templates"
    );
}

#[tokio::test]
async fn deleting_the_canary_with_revert_on_deletion_gives_the_daemon_set_back_on_every_node() {
    let s = initialized("logs", steps(), json!({"revertOnDeletion": true})).await;
    wait_idle(&s, "logs").await;
    s.canaries()
        .delete("logs", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("logs")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(s.node_selector("logs").await.is_empty());
    // The finalizer is released once the target's pods are ready on every node.
    assert_eq!(s.daemon_set_pods("logs").await, Some((NODES, NODES)));
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    let apex = services.get("logs").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "logs");
}

#[tokio::test]
async fn an_autoscaler_on_a_daemon_set_is_stalled_with_the_field_named() {
    let s = setup("ds-hpa", &[]).await;
    s.create_daemon_set("nodes", Readiness::Ready).await;
    let autoscaler = json!({"autoscalerRef": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "nodes"}});
    s.create_canary_of("DaemonSet", "nodes", steps(), autoscaler)
        .await;
    let message = eventually("stalled", WAIT, || async {
        let status = s.canaries().get("nodes").await.ok()?.status?;
        let stalled = status
            .conditions
            .into_iter()
            .find(|c| c.kind == "Stalled")?;
        (stalled.reason == "InvalidSpec").then_some(stalled.message)
    })
    .await;
    assert!(
        message.contains("spec.autoscalerRef: a DaemonSet runs one pod per node"),
        "{message}"
    );
    assert!(
        s.node_selector("nodes").await.is_empty(),
        "the target is untouched"
    );
}

#[tokio::test]
async fn an_on_delete_daemon_set_is_stalled_with_the_field_named_and_left_alone() {
    let s = setup("ds-ondelete", &[]).await;
    s.create_daemon_set("manual", Readiness::Ready).await;
    s.daemon_sets()
        .patch(
            "manual",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(
                json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
            ),
        )
        .await
        .unwrap();
    s.create_canary_of("DaemonSet", "manual", steps(), json!({}))
        .await;
    let message = eventually("stalled", WAIT, || async {
        let status = s.canaries().get("manual").await.ok()?.status?;
        let stalled = status
            .conditions
            .into_iter()
            .find(|c| c.kind == "Stalled")?;
        (stalled.reason == "CannotBuildObject").then_some(stalled.message)
    })
    .await;
    assert!(
        message.contains("spec.updateStrategy.type OnDelete; serin needs RollingUpdate"),
        "{message}"
    );
    assert!(
        s.daemon_sets()
            .get_opt("manual-primary")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.node_selector("manual").await.is_empty(),
        "the target is untouched"
    );
}

/// A promotion whose primary does not become ready in time is undone: the primary gets its
/// last promoted template back from its ControllerRevisions. Pods are ready 6s after they
/// start and the progress deadline is 10s: the canary's pods all start at once (ready in
/// time), while the primary replaces its pods one node at a time (12s at least).
#[tokio::test]
async fn a_promotion_the_primary_cannot_finish_in_time_is_reverted_from_its_controller_revisions() {
    let s = setup("ds-revert", &[]).await;
    s.create_daemon_set("slowpoke", Readiness::After(6)).await;
    s.create_canary_of(
        "DaemonSet",
        "slowpoke",
        steps(),
        json!({"progressDeadlineSeconds": 10}),
    )
    .await;
    s.wait_phase("slowpoke", Phase::Initialized).await;
    s.gitops_apply_daemon_set_with("slowpoke", "v2", Readiness::After(6))
        .await;
    s.wait_phase("slowpoke", Phase::Promoting).await;
    s.wait_phase("slowpoke", Phase::Failed).await;
    let status = s.canaries().get("slowpoke").await.unwrap().status.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.kind == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("primary"),
        "the rollback names the primary: {}",
        ready.message
    );
    assert_eq!(
        s.primary_daemon_set_version("slowpoke").await.as_deref(),
        Some("v1"),
        "the primary's template is the promoted one again"
    );
    assert_eq!(s.weights("slowpoke").await, Some((100, 0)));
    eventually("the primary back on v1 on every node", WAIT, || async {
        (s.daemon_set_pods("slowpoke-primary").await == Some((NODES, NODES))).then_some(())
    })
    .await;
    wait_idle(&s, "slowpoke").await;
}

/// Each kind's cache is waited for only by the Canaries of that kind: a ClusterRole from before
/// DaemonSet targets (no daemonsets) still runs every Deployment's Canary.
#[tokio::test]
async fn without_permission_on_daemon_sets_deployment_canaries_still_run() {
    let client = cluster::client().await;
    cluster::controller::install_role_variant(&client, "serin-no-daemonsets", |rules| {
        rules.retain(|rule| {
            !rule
                .resources
                .as_ref()
                .is_some_and(|r| r.contains(&"daemonsets".to_string()))
        });
    })
    .await;
    let s = cluster::rollout::setup_as("no-ds", &[], "serin-no-daemonsets").await;
    s.create_deployment("web", Readiness::Ready).await;
    s.create_canary("web", steps(), json!({})).await;
    s.wait_phase("web", Phase::Initialized).await;
}

#[tokio::test]
async fn a_config_change_alone_rolls_out_a_daemon_set_and_reaches_the_primarys_copy() {
    let s = initialized("conf", steps(), json!({})).await;
    let configs: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(s.client.clone(), &s.ns);
    configs
        .patch(
            "conf-config",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"data": {"LEVEL": "debug"}})),
        )
        .await
        .unwrap();
    s.wait_phase("conf", Phase::Succeeded).await;
    let copy = configs.get("conf-config-primary").await.unwrap();
    assert_eq!(copy.data.unwrap()["LEVEL"], "debug");
    wait_idle(&s, "conf").await;
}
