//! Controller failures a person must act on, seen where people look: the Canary's Stalled
//! condition (what `serin status`, `kubectl get` and GitOps health checks read), a Warning
//! event, and the `reason` label of `serin_reconcile_total`; and gone again once fixed.
//! On the real control plane, with `serin controller` as its ServiceAccount.

mod cluster;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use serin::api::{Canary, Phase};

use cluster::eventually;
use cluster::rollout::{Setup, WAIT, steps};
use cluster::workloads::Readiness;

/// The Stalled condition's (status, reason, message) of Canary `name`.
async fn stalled(s: &Setup, name: &str) -> Option<(String, String, String)> {
    let canary: Canary = s.canaries().get(name).await.ok()?;
    let condition = canary
        .status?
        .conditions
        .into_iter()
        .find(|c| c.kind == "Stalled")?;
    Some((condition.status, condition.reason, condition.message))
}

/// The notes of the Warning events with `reason` in the test's namespace.
async fn warnings(s: &Setup, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns);
    events
        .list(&Default::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// A failure shows on the Canary, with its reason and a message containing `words`.
async fn wait_for_failure(s: &Setup, name: &str, reason: &str, words: &[&str]) -> String {
    eventually(&format!("Stalled {reason} on {name}"), WAIT, || async {
        let (status, found, message) = stalled(s, name).await?;
        (status == "True" && found == reason && words.iter().all(|w| message.contains(w)))
            .then_some(message)
    })
    .await
}

#[tokio::test]
async fn a_write_rbac_forbids_is_shown_on_the_canary_and_clears_once_granted() {
    let client = cluster::client().await;
    // config/rbac.yaml without `patch` on Services: serin cannot write the canary Service.
    let without_patch = |rules: &mut Vec<k8s_openapi::api::rbac::v1::PolicyRule>| {
        for rule in rules.iter_mut() {
            if rule
                .resources
                .as_ref()
                .is_some_and(|r| r.contains(&"services".to_string()))
            {
                rule.verbs.retain(|v| v != "patch");
            }
        }
    };
    cluster::controller::install_role_variant(&client, "serin-no-service-patch", without_patch)
        .await;
    let s = cluster::rollout::setup_as("forbidden", &[], "serin-no-service-patch").await;
    s.create_deployment("shop", Readiness::Ready).await;
    s.create_canary("shop", steps(), serde_json::json!({}))
        .await;

    let message = wait_for_failure(
        &s,
        "shop",
        "Forbidden",
        &[
            "cannot patch resource \"services\"",
            "grant serin's ServiceAccount",
        ],
    )
    .await;
    assert!(message.contains(&s.ns), "{message}");
    let notes = eventually("a Forbidden Warning event", WAIT, || async {
        let notes = warnings(&s, "Forbidden").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        notes[0].contains("cannot patch resource \"services\""),
        "{notes:?}"
    );
    let shown = serin_status(&s, "shop").await;
    assert!(
        shown.contains("Stalled") && shown.contains("Forbidden") && shown.contains("grant serin"),
        "{shown}"
    );
    let metrics = scrape(&s).await;
    assert!(
        metrics.contains("serin_reconcile_total{result=\"error\",reason=\"Forbidden\"}"),
        "{metrics}"
    );

    // The fix a person makes: grant the permission. No Canary event follows, so serin's
    // slower retry finds it.
    cluster::controller::install_role_variant(&client, "serin-no-service-patch", |_| {}).await;
    s.wait_phase("shop", Phase::Initialized).await;
    let (status, reason, _) = stalled(&s, "shop").await.expect("a Stalled condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Initialized"));
}

#[tokio::test]
async fn a_route_kind_the_api_server_does_not_serve_is_named_on_the_canary() {
    let client = cluster::client().await;
    let s = cluster::rollout::setup("no-route-crd", &[]).await;
    assert!(
        !cluster::cluster().external,
        "this test removes a CRD: it needs the harness' own control plane"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = "httproutes.gateway.networking.k8s.io";
    let crd = crds.get(name).await.expect("the HTTPRoute CRD installed");
    crds.delete(name, &DeleteParams::default()).await.unwrap();
    eventually("the HTTPRoute CRD gone", WAIT, || async {
        crds.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;

    s.create_deployment("shop", Readiness::Ready).await;
    s.create_canary("shop", steps(), serde_json::json!({}))
        .await;
    let message = wait_for_failure(
        &s,
        "shop",
        "KindNotServed",
        &["HTTPRoute", "install the CustomResourceDefinition"],
    )
    .await;
    assert!(message.contains(&format!("{}/shop", s.ns)), "{message}");
    // Nothing was decided: the Canary has not started initializing.
    assert_eq!(s.phase("shop").await, None);

    // Installing the CRD is the fix: the Canary initializes without being touched.
    let mut fresh = crd.clone();
    fresh.metadata = kube::api::ObjectMeta {
        name: Some(name.into()),
        // Gateway API's group is protected: its CRDs carry the approval annotation.
        annotations: crd.metadata.annotations.clone(),
        ..Default::default()
    };
    fresh.status = None;
    crds.create(&PostParams::default(), &fresh).await.unwrap();
    s.wait_phase("shop", Phase::Initialized).await;
    assert!(s.routes().get_opt("shop").await.unwrap().is_some());
}

/// The controller's /metrics.
async fn scrape(s: &Setup) -> String {
    let url = format!("http://{}/metrics", s.controller.listen);
    serin::hooks::client()
        .expect("an HTTP client")
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("the controller serves /metrics")
        .text()
        .await
        .expect("a metrics body")
}

/// What `serin status NAME` prints for the test's namespace.
async fn serin_status(s: &Setup, name: &str) -> String {
    let args = ["status", name, "-n", &s.ns].map(String::from);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(&args)
            .env("KUBECONFIG", &cluster::cluster().kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .expect("running serin status")
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_failing_event_hook_and_an_alert_that_cannot_be_sent_are_warnings_on_the_canary() {
    let s = cluster::rollout::setup("background-failures", &[]).await;
    s.create_deployment("shop", Readiness::Ready).await;
    // Port 9 (discard) of a host nothing listens on: the hook cannot be reached.
    let mut analysis = steps();
    analysis["webhooks"] = serde_json::json!([
        {"name": "audit", "type": "event", "url": "http://127.0.0.1:9/events"}
    ]);
    analysis["alerts"] = serde_json::json!([
        {"name": "on-call", "severity": "info", "providerRef": {"name": "no-such-provider"}}
    ]);
    s.create_canary("shop", analysis, serde_json::json!({}))
        .await;
    s.wait_phase("shop", Phase::Initialized).await;
    let hooks = eventually("a HookFailed Warning event", WAIT, || async {
        let notes = warnings(&s, "HookFailed").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(hooks[0].starts_with("event hook audit:"), "{hooks:?}");
    assert!(
        !hooks[0].contains("127.0.0.1:9/events"),
        "no URL in events: {hooks:?}"
    );

    // A release sends alerts; the provider does not exist.
    s.gitops_apply("shop", "v2").await;
    let alerts = eventually("an AlertNotSent Warning event", WAIT, || async {
        let notes = warnings(&s, "AlertNotSent").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        alerts[0].contains("on-call") && alerts[0].contains("no-such-provider"),
        "{alerts:?}"
    );
}
