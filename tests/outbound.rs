//! serin's outgoing calls as a tenant sees them on the real control plane: the controller's
//! egress policy refuses the cloud's metadata address, and a shared MetricTemplate's
//! credentials never follow a Canary's `spec.metricsServer` to a server the Canary chose.

mod cluster;
mod mock;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
use serin::api::status::CheckStatus;
use serin::api::{MetricTemplate, Phase};

use std::time::Duration;

use cluster::eventually;
use cluster::rollout::{Setup, setup, steps};

/// The check `name` of the Canary's status once it failed.
async fn failed_check(s: &Setup, canary: &str, name: &str) -> CheckStatus {
    s.wait_phase(canary, Phase::Failed).await;
    let status = s.canaries().get(canary).await.unwrap().status.unwrap();
    status
        .checks
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// The notes of the namespace's events, as one text.
async fn event_notes(s: &Setup) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(s.client.clone(), &s.ns);
    let items = events.list(&Default::default()).await.unwrap().items;
    items
        .into_iter()
        .filter_map(|e| e.note)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn with_deny_internal_a_webhook_to_cloud_metadata_is_refused_and_rolls_back() {
    let s = setup("egress", &["--egress-policy", "deny-internal"]).await;
    s.create_deployment("web", cluster::workloads::Readiness::Ready)
        .await;
    let mut analysis = steps();
    analysis["webhooks"] = json!([
        {"name": "metadata", "type": "rollout", "url": "http://169.254.169.254/latest/meta-data/iam/"},
    ]);
    s.create_canary("web", analysis, json!({})).await;
    s.wait_phase("web", Phase::Initialized).await;
    s.gitops_apply("web", "v2").await;
    let check = failed_check(&s, "web", "metadata").await;
    assert_eq!(
        check.message,
        "metadata not called: egress policy refuses 169.254.169.254 (link-local)"
    );
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v1"));
    // The event may be recorded after the status write that made the Canary Failed.
    eventually(
        "the refusal in an event",
        Duration::from_secs(30),
        || async {
            event_notes(&s)
                .await
                .contains("egress policy refuses 169.254.169.254 (link-local)")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_templates_credentials_never_reach_a_canary_chosen_metrics_server() {
    let s = setup("borrowed-token", &[]).await;
    // The tenant's own server, named in the Canary's spec.metricsServer.
    let theirs = mock::serve(|_| mock::Reply::ok("{}")).await;
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "prom-reader"},
        "stringData": {"token": "TEMPLATE-TOKEN-VALUE"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // A shared template with credentials but no address of its own.
    let templates: Api<MetricTemplate> = Api::namespaced(s.client.clone(), &s.ns);
    let template = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "shared"},
        "spec": {"provider": {"type": "prometheus", "secretRef": {"name": "prom-reader"}},
                 "query": "vector(1)"},
    }))
    .unwrap();
    templates
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    s.create_deployment("shop", cluster::workloads::Readiness::Ready)
        .await;
    let mut analysis = steps();
    analysis["metrics"] = json!([
        {"name": "errors", "templateRef": {"name": "shared"}, "thresholdRange": {"max": 5}},
    ]);
    s.create_canary("shop", analysis, json!({"metricsServer": theirs.url}))
        .await;
    s.wait_phase("shop", Phase::Initialized).await;
    s.gitops_apply("shop", "v2").await;
    let check = failed_check(&s, "shop", "errors").await;
    assert!(
        check.message.contains(&format!(
            "MetricTemplate {}/shared has credentials (secretRef) but no provider.address",
            s.ns
        )),
        "{}",
        check.message
    );
    assert!(
        theirs.received().is_empty(),
        "the Canary's server was called: {:?}",
        theirs.received()
    );
    let status = serde_json::to_string(&s.canaries().get("shop").await.unwrap().status).unwrap();
    assert!(!status.contains("TEMPLATE-TOKEN-VALUE"));
    assert!(!event_notes(&s).await.contains("TEMPLATE-TOKEN-VALUE"));
}
