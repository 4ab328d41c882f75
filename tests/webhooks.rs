//! Webhook calls against a scriptable server: the payload, secret headers, and every fault —
//! a timeout, a refused connection, a 500 with a body, a body that trickles in, a redirect, an
//! invalid TLS certificate — each a failed hook with its reason, none a pass, none a panic.

mod mock;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mock::Reply;
use serin::api::canary::{HookKind, Webhook};
use serin::hooks::{Payload, call, client, refused};
use serin::outbound::egress::{Mode, Policy};

fn hook(url: &str, retries: i32, timeout: &str) -> Webhook {
    serde_json::from_value(serde_json::json!({
        "name": "smoke", "type": "pre-rollout", "url": url, "retries": retries, "timeout": timeout,
        "metadata": {"cmd": "curl -s http://podinfo-canary/healthz"},
    }))
    .unwrap()
}

async fn fire(
    hook: &Webhook,
    headers: &BTreeMap<String, String>,
) -> serin::engine::input::HookOutcome {
    let metadata = hook.metadata.clone();
    let payload = Payload {
        name: "podinfo",
        namespace: "shop",
        phase: "Progressing",
        checksum: "8058bf26df",
        metadata: &metadata,
    };
    call(&client().unwrap(), hook, &payload, headers).await
}

#[tokio::test]
async fn a_2xx_passes_and_the_payload_and_secret_headers_arrive() {
    let server = mock::serve(|_| Reply::status(202, "")).await;
    let headers = BTreeMap::from([("X-Api-Key".to_string(), "k-123".to_string())]);
    let outcome = fire(&hook(&server.url, 0, "2s"), &headers).await;
    assert!(outcome.passed, "{}", outcome.message);
    assert_eq!(outcome.kind, HookKind::PreRollout);
    let request = &server.received()[0];
    assert!(request.line().starts_with("POST / "));
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("x-api-key: k-123")
    );
    assert_eq!(
        request.json(),
        serde_json::json!({"name": "podinfo", "namespace": "shop", "phase": "Progressing",
            "checksum": "8058bf26df", "metadata": {"cmd": "curl -s http://podinfo-canary/healthz"}})
    );
}

#[tokio::test]
async fn a_500_with_a_body_fails_with_its_status_and_the_start_of_the_body_after_retries() {
    let long = format!("canary broken: {}", "x".repeat(500));
    let server = mock::serve(move |_| Reply::status(500, &long)).await;
    let outcome = fire(&hook(&server.url, 2, "2s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .message
            .starts_with("smoke answered 500: canary broken: xxx")
    );
    assert!(
        outcome.message.len() < 260,
        "only the first 200 characters of the body"
    );
    assert_eq!(server.received().len(), 3, "one call and two retries");
}

#[tokio::test]
async fn a_4xx_is_an_answer_not_a_fault_and_is_not_retried() {
    let server = mock::serve(|_| Reply::status(403, "not approved yet")).await;
    let outcome = fire(&hook(&server.url, 3, "2s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert_eq!(outcome.message, "smoke answered 403: not approved yet");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_fails_with_the_timeout() {
    let server = mock::serve(|_| Reply {
        delay: Duration::from_secs(5),
        ..Reply::ok("late")
    })
    .await;
    let started = Instant::now();
    let outcome = fire(&hook(&server.url, 0, "1s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome.message.starts_with("smoke timed out after 1s"),
        "{}",
        outcome.message
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_body_that_trickles_in_past_the_timeout_fails() {
    let server = mock::serve(|_| Reply {
        trickle: Some(Duration::from_millis(400)),
        ..Reply::status(500, "slow slow slow")
    })
    .await;
    let outcome = fire(&hook(&server.url, 0, "1s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome.message.starts_with("smoke answered 500"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_refused_connection_fails_and_is_retried() {
    let started = Instant::now();
    let outcome = fire(&hook(&mock::closed_url(), 1, "1s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome.message.starts_with("smoke could not connect"),
        "{}",
        outcome.message
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "retried after a pause"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let target = mock::serve(|_| Reply::ok("should not be reached")).await;
    let location = format!("{}/elsewhere", target.url);
    let server = mock::serve(move |_| Reply::status(307, "").header("location", &location)).await;
    let headers = BTreeMap::from([("X-Api-Key".to_string(), "k-123".to_string())]);
    let outcome = fire(&hook(&server.url, 0, "2s"), &headers).await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .message
            .starts_with("smoke answered 307 (a redirect to ")
            && outcome.message.contains("/elsewhere"),
        "{}",
        outcome.message
    );
    assert!(
        target.received().is_empty(),
        "the secret header never left for the other host"
    );
}

#[tokio::test]
async fn an_invalid_certificate_fails_with_the_tls_reason() {
    let (_, certificate, key) = mock::certificate();
    let server = mock::serve_tls(|_| Reply::ok("ok"), certificate, key).await;
    let outcome = fire(&hook(&server.url, 0, "2s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome.message.to_lowercase().contains("certificate"),
        "{}",
        outcome.message
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_huge_failing_answer_is_read_only_as_far_as_its_preview() {
    // 200 MB without content-length: only reading it would tell its size.
    let server = mock::serve(|_| {
        Reply::status(500, "broken: ")
            .filler(200 * 1024 * 1024)
            .unannounced()
    })
    .await;
    let outcome = fire(&hook(&server.url, 0, "30s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .message
            .starts_with("smoke answered 500: broken: xxx"),
        "{}",
        outcome.message
    );
    assert!(outcome.message.chars().count() < 260, "{}", outcome.message);
    let peak = mock::peak_memory("self");
    assert!(
        peak < mock::MEMORY_BOUND,
        "the answer was buffered: peak memory {} MiB",
        peak >> 20
    );
}

#[tokio::test]
async fn credentials_echoed_in_an_answer_do_not_reach_the_message() {
    let server = mock::serve(|_| {
        Reply::status(
            401,
            "denied; you sent Authorization: Bearer abc123secretvalue and ?token=t0p-s3cret",
        )
    })
    .await;
    let outcome = fire(&hook(&server.url, 0, "2s"), &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        !outcome.message.contains("abc123secretvalue"),
        "{}",
        outcome.message
    );
    assert!(
        !outcome.message.contains("t0p-s3cret"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.starts_with("smoke answered 401: denied;"),
        "{}",
        outcome.message
    );
}

fn deny_internal(allow: &[&str]) -> Policy {
    Policy {
        mode: Mode::DenyInternal,
        allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
        api_server: Vec::new(),
    }
}

#[tokio::test]
async fn the_egress_policy_refuses_cloud_metadata_and_loopback_when_enabled() {
    let policy = deny_internal(&[]);
    let metadata = hook("http://169.254.169.254/latest/meta-data/iam/", 3, "2s");
    let outcome = refused(&metadata, &policy).expect("a link-local address is refused");
    assert!(!outcome.passed);
    assert_eq!(
        outcome.message,
        "smoke not called: egress policy refuses 169.254.169.254 (link-local)"
    );
    assert!(
        refused(&metadata, &Policy::default()).is_none(),
        "allow-all, the default"
    );

    // A name resolving to loopback is refused by the client's resolver, before connecting.
    let server = mock::serve(|_| Reply::ok("internal")).await;
    let by_name = server.url.replace("127.0.0.1", "localhost");
    let local = hook(&by_name, 2, "2s");
    assert!(
        refused(&local, &policy).is_none(),
        "names are checked when resolved"
    );
    let http = policy.client_builder().build().unwrap();
    let payload_metadata = BTreeMap::new();
    let payload = Payload {
        name: "podinfo",
        namespace: "shop",
        phase: "Progressing",
        checksum: "c",
        metadata: &payload_metadata,
    };
    let outcome = call(&http, &local, &payload, &BTreeMap::new()).await;
    assert!(!outcome.passed);
    assert!(
        outcome.message.contains("egress policy refuses") && outcome.message.contains("(loopback)"),
        "{}",
        outcome.message
    );
    assert!(server.received().is_empty(), "nothing reached the server");

    // An allowed range is reached.
    let allowed = deny_internal(&["127.0.0.0/8", "::1/128"]);
    let http = allowed.client_builder().build().unwrap();
    let outcome = call(&http, &local, &payload, &BTreeMap::new()).await;
    assert!(outcome.passed, "{}", outcome.message);
}

/// Flagger's `disableTLS`: a hook on a self-signed https:// endpoint is refused on its
/// certificate, unless the hook opts out of verification.
#[tokio::test]
async fn disable_tls_calls_a_hook_whose_certificate_is_not_trusted() {
    let (_, certificate, key) = mock::certificate();
    let server = mock::serve_tls(|_| Reply::status(200, ""), certificate, key).await;
    assert!(server.url.starts_with("https://"));
    let clients = serin::controller::clients::Clients::default();
    let base = client().unwrap();
    let mut hook = hook(&server.url, 0, "2s");
    let metadata = hook.metadata.clone();
    let payload = Payload {
        name: "podinfo",
        namespace: "shop",
        phase: "Progressing",
        checksum: "8058bf26df",
        metadata: &metadata,
    };
    let verified = clients.for_hook(&base, &hook).unwrap();
    let outcome = call(&verified, &hook, &payload, &BTreeMap::new()).await;
    assert!(!outcome.passed, "{}", outcome.message);
    assert!(
        outcome.message.to_lowercase().contains("certificate"),
        "{}",
        outcome.message
    );
    hook.disable_tls = true;
    let unverified = clients.for_hook(&base, &hook).unwrap();
    let outcome = call(&unverified, &hook, &payload, &BTreeMap::new()).await;
    assert!(outcome.passed, "{}", outcome.message);
}

#[test]
fn a_flagger_webhook_with_an_empty_type_and_disable_tls_reads_as_a_rollout_hook() {
    let hook: Webhook = serde_json::from_value(serde_json::json!({
        "name": "load", "type": "", "url": "https://loadtester/", "disableTLS": true,
    }))
    .unwrap();
    assert_eq!(hook.kind, HookKind::Rollout);
    assert!(hook.disable_tls);
}
