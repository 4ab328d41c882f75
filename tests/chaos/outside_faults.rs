//! Faults of what the analysis asks: a metrics server unreachable, too slow or answering
//! garbage for a whole rollout, a webhook that never answers. None may end in a promotion;
//! each is a failed check (docs/metrics.md, docs/webhooks.md), so the release is rolled back
//! at the threshold.

use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use serin::api::MetricTemplate;

use super::scenario::{NAME, Release, analysis};
use crate::mock;

/// Seconds a metrics query or a hook may take here.
const TIMEOUT: &str = "1s";
/// Longer than any test: an answer that never comes.
const NEVER: Duration = Duration::from_secs(3600);

/// A release analysed by one metric read from `address` for the whole rollout: rolled back
/// after two failed checks whose message contains `because`.
async fn metrics_fault(test: &str, address: String, because: &str) {
    let release = Release::start(test).await;
    let template: MetricTemplate = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors"},
        "spec": {"provider": {"type": "prometheus", "address": address, "timeout": TIMEOUT},
                 "query": "sum(rate(http_requests_total{status=~\"5..\"}[1m]))"},
    }))
    .unwrap();
    Api::<MetricTemplate>::namespaced(release.s.client.clone(), &release.s.ns)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let metrics = json!([{"name": "errors", "templateRef": {"name": "errors"},
                          "interval": "1m", "thresholdRange": {"max": 1}}]);
    release.create_canary(analysis(json!([]), metrics)).await;
    release
        .s
        .wait_phase(NAME, serin::api::Phase::Initialized)
        .await;
    release.release("v2").await;
    release.assert_rolled_back("v1").await;
    assert_failed_check(&release, "errors", because).await;
}

/// The status names the check, counts two failures and says why.
async fn assert_failed_check(release: &Release, check: &str, because: &str) {
    let status = release.status().await.expect("a status");
    assert_eq!(status.failed_checks, 2, "{status:?}");
    let result = status
        .checks
        .iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("no check {check} in {:?}", status.checks));
    assert!(
        result.message.contains(because),
        "the check's message should say {because:?}: {result:?}"
    );
}

#[tokio::test]
async fn an_unreachable_metrics_server_never_lets_a_release_through() {
    metrics_fault(
        "metrics-unreachable",
        mock::closed_url(),
        "metrics server unreachable",
    )
    .await;
}

#[tokio::test]
async fn a_metrics_server_slower_than_the_timeout_never_lets_a_release_through() {
    let slow = mock::serve(|_| {
        let mut reply =
            mock::Reply::ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
        reply.delay = NEVER;
        reply
    })
    .await;
    metrics_fault(
        "metrics-slow",
        slow.url.clone(),
        "metrics server did not answer within 1s",
    )
    .await;
    assert!(
        slow.received().len() >= 2,
        "every tick asked again: each call ended at its timeout"
    );
}

#[tokio::test]
async fn a_metrics_server_answering_garbage_never_lets_a_release_through() {
    let garbage =
        mock::serve(|_| mock::Reply::ok("<html><body>502 Bad Gateway</body></html>")).await;
    metrics_fault("metrics-garbage", garbage.url.clone(), "response is not").await;
}

/// A release whose hook of `kind` never answers: each call ends at the hook's timeout and
/// counts as a failed check, so the release is rolled back at the threshold.
async fn hanging_hook(test: &str, kind: &str) {
    let hanging = mock::serve(|_| {
        let mut reply = mock::Reply::ok("too late");
        reply.delay = NEVER;
        reply
    })
    .await;
    let release = Release::start(test).await;
    let hooks: Value = json!([{"name": "smoke", "type": kind, "url": hanging.url,
                               "timeout": TIMEOUT, "retries": 0}]);
    release.create_canary(analysis(hooks, json!([]))).await;
    release
        .s
        .wait_phase(NAME, serin::api::Phase::Initialized)
        .await;
    release.release("v2").await;
    release.assert_rolled_back("v1").await;
    assert_failed_check(&release, "smoke", "smoke timed out after 1s").await;
    assert!(
        hanging.received().len() >= 2,
        "the hook was called at each tick: each call ended at its timeout"
    );
}

#[tokio::test]
async fn a_hanging_pre_rollout_hook_is_a_failed_check_bounded_by_its_timeout() {
    hanging_hook("hook-pre-rollout", "pre-rollout").await;
}

#[tokio::test]
async fn a_hanging_rollout_hook_is_a_failed_check_bounded_by_its_timeout() {
    hanging_hook("hook-rollout", "rollout").await;
}
