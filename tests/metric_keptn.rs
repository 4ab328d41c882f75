//! The keptn metric provider on the real control plane: Keptn's KeptnMetric and Analysis
//! CRDs (tests/fixtures/crds/keptn.yaml, metrics.keptn.sh/v1beta1) installed, serin reading
//! them as the ServiceAccount bound to config/rbac.yaml's ClusterRole (so a missing permission
//! fails here), and the test writing the status Keptn's metrics operator would.

mod cluster;

use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::metrics::Queries;
use serin::metrics::keptn::resource;
use serin::metrics::provider::{Connection, Credentials, sample, sample_in};

/// serin's client: the ServiceAccount with the controller's ClusterRole, in a fresh namespace.
async fn setup(name: &str) -> (kube::Client, kube::Client, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = cluster::client().await;
    cluster::controller::install(&admin).await;
    let namespace = cluster::namespace(&admin, name).await;
    let path = cluster::controller::service_account_kubeconfig(&admin, &namespace).await;
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    (admin, kube::Client::try_from(config).unwrap(), namespace)
}

fn connection(timeout: Duration) -> Connection {
    Connection {
        client: reqwest::Client::new(),
        address: String::new(),
        credentials: Credentials::default(),
        headers: Vec::new(),
        timeout,
        interval: Duration::from_secs(60),
        region: None,
    }
}

async fn check(serin: &kube::Client, query: &str, timeout: Duration) -> Sample {
    sample_in(
        MetricProviderKind::Keptn,
        connection(timeout),
        Some(serin.clone()),
        &Queries::Instant(query.to_string()),
        chrono::Utc::now(),
        None,
    )
    .await
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A KeptnMetric as Keptn's docs show one, with `value` in its status when given.
async fn keptn_metric(admin: &kube::Client, namespace: &str, name: &str, value: Option<&str>) {
    let api: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        namespace,
        &resource("KeptnMetric", "keptnmetrics"),
    );
    let metric: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric",
        "metadata": {"name": name},
        "spec": {"provider": {"name": "prometheus"}, "query": "sum(rate(errors[1m]))", "fetchIntervalSeconds": 10},
    }))
    .unwrap();
    api.create(&PostParams::default(), &metric).await.unwrap();
    if let Some(value) = value {
        let status = json!({"status": {"value": value, "lastUpdated": "2026-12-02T01:00:00Z"}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_keptn_metrics_value_is_read_from_the_cluster_with_serins_cluster_role() {
    let (admin, serin, ns) = setup("keptn-metric").await;
    keptn_metric(&admin, &ns, "error-rate", Some("12.5")).await;
    keptn_metric(&admin, &ns, "not-fetched-yet", None).await;
    keptn_metric(&admin, &ns, "garbled", Some("twelve")).await;
    let timeout = Duration::from_secs(10);
    assert_eq!(
        check(&serin, &format!("keptnmetric/{ns}/error-rate"), timeout).await,
        Sample::Value(12.5)
    );
    assert_eq!(
        check(
            &serin,
            &format!("KeptnMetrics/{ns}/not-fetched-yet\n"),
            timeout
        )
        .await,
        Sample::NoData,
        "a metric Keptn has not fetched yet is no data (onNoData decides)"
    );
    let garbled = error_of(check(&serin, &format!("keptnmetric/{ns}/garbled"), timeout).await);
    assert_eq!(
        garbled,
        format!(
            "response is not a KeptnMetric: KeptnMetric {ns}/garbled status.value \"twelve\" is not a number"
        )
    );
    let missing = error_of(check(&serin, &format!("keptnmetric/{ns}/gone"), timeout).await);
    assert!(
        missing.starts_with(&format!(
            "query refused by the metrics server (Kubernetes NotFound, HTTP 404): KeptnMetric {ns}/gone: "
        )) && missing.ends_with("(is Keptn installed, and does the resource exist?)"),
        "{missing}"
    );
    let malformed = error_of(check(&serin, "keptnmetric/only-a-namespace", timeout).await);
    assert!(
        malformed.contains("a keptn query is keptnmetric/<namespace>/<name> or analysis/"),
        "{malformed}"
    );
    // `serin check` and the benchmarks have no cluster client: said, not guessed.
    let offline = sample(
        MetricProviderKind::Keptn,
        connection(timeout),
        &Queries::Instant(format!("keptnmetric/{ns}/error-rate")),
        chrono::Utc::now(),
        None,
    )
    .await;
    assert!(
        error_of(offline).contains("only `serin controller` queries the cluster"),
        "no value without a cluster"
    );
}

/// Plays Keptn's metrics operator: completes every Analysis in `namespace` that has no state
/// yet with `pass`, and records what each asked for.
async fn complete_analyses(
    admin: kube::Client,
    namespace: String,
    pass: bool,
) -> Vec<serde_json::Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(admin, &namespace, &resource("Analysis", "analyses"));
    let mut seen = Vec::new();
    loop {
        for analysis in api.list(&ListParams::default()).await.unwrap() {
            if analysis.data.pointer("/status/state").is_some() {
                continue;
            }
            let name = analysis.metadata.name.clone().unwrap();
            seen.push(analysis.data["spec"].clone());
            let status = json!({"status": {"state": "Completed", "pass": pass, "raw": "{}"}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_analysis_is_created_waited_for_read_as_its_verdict_and_deleted() {
    let (admin, serin, ns) = setup("keptn-analysis").await;
    let analyses: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &resource("Analysis", "analyses"));
    let timeout = Duration::from_secs(30);
    for (pass, verdict) in [(true, 1.0), (false, 0.0)] {
        let keptn = tokio::spawn(complete_analyses(admin.clone(), ns.clone(), pass));
        let found = check(
            &serin,
            &format!("analysis/{ns}/slo-web/5m/workload=web;release=canary"),
            timeout,
        )
        .await;
        assert_eq!(found, Sample::Value(verdict), "pass: {pass}");
        let asked = keptn.await.unwrap();
        assert_eq!(
            asked[0],
            json!({"analysisDefinition": {"name": "slo-web"}, "timeframe": {"recent": "5m"},
                   "args": {"workload": "web", "release": "canary"}})
        );
        assert!(
            analyses
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty(),
            "the Analysis is deleted once read"
        );
    }
    // Nobody completes it (no Keptn operator): a failed check naming the Analysis, never a
    // value, and nothing left behind.
    let error = error_of(
        check(
            &serin,
            &format!("analysis/{ns}/slo-web"),
            Duration::from_secs(2),
        )
        .await,
    );
    assert_eq!(
        error,
        format!(
            "query refused by the metrics server (Keptn): Analysis of AnalysisDefinition {ns}/slo-web was not Completed within 2s (is Keptn's metrics operator running?)"
        )
    );
    assert!(
        analyses
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn the_controller_rolls_a_canary_back_on_a_keptn_metric() {
    use cluster::rollout::{setup, steps};
    use cluster::workloads::Readiness;
    use serin::api::Phase;
    let s = setup("keptn-rollout", &[]).await;
    // What Keptn's metrics operator fetched for the new revision: 7 errors a second.
    keptn_metric(&s.client, &s.ns, "store-errors", Some("7")).await;
    let templates: Api<serin::api::MetricTemplate> = Api::namespaced(s.client.clone(), &s.ns);
    let template = serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "keptn-errors"},
        "spec": {"provider": {"type": "keptn"},
                 "query": "keptnmetric/{{ namespace }}/{{ target }}-errors"},
    }))
    .unwrap();
    templates
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    s.create_deployment("store", Readiness::Ready).await;
    let mut analysis = steps();
    analysis["metrics"] = json!([
        {"name": "keptn-errors", "templateRef": {"name": "keptn-errors"}, "thresholdRange": {"max": 1}},
    ]);
    s.create_canary("store", analysis, json!({})).await;
    s.wait_phase("store", Phase::Initialized).await;
    s.gitops_apply("store", "v2").await;
    s.wait_phase("store", Phase::Failed).await;
    let status = s.canaries().get("store").await.unwrap().status.unwrap();
    let check = status
        .checks
        .iter()
        .find(|c| c.name == "keptn-errors")
        .cloned()
        .unwrap();
    assert_eq!(check.value, Some(7.0), "{check:?}");
    assert!(check.message.ends_with("> 1 (max)"), "{check:?}");
    assert_eq!(
        check.query.as_deref(),
        Some(format!("keptnmetric/{}/store-errors", s.ns).as_str())
    );
    assert_eq!(s.primary_version("store").await.as_deref(), Some("v1"));
}

/// An externalmetrics template without `provider.address` asks the controller's own API
/// server, as serin's ServiceAccount: authorised by config/rbac.yaml (a missing rule would be
/// a 403 here), and answered 404 while no metrics adapter serves the API, with the reason.
/// Outside the controller (no cluster client) it says where it would have asked.
#[tokio::test]
async fn externalmetrics_without_an_address_asks_the_clusters_api_server_as_serin() {
    let (_admin, serin, ns) = setup("external-in-cluster").await;
    let query = format!("{ns}/http_errors?labelSelector=app%3Dshop");
    let asked = sample_in(
        MetricProviderKind::ExternalMetrics,
        connection(Duration::from_secs(10)),
        Some(serin.clone()),
        &Queries::Instant(query.clone()),
        chrono::Utc::now(),
        None,
    )
    .await;
    let error = error_of(asked);
    assert!(
        error.starts_with("query refused by the metrics server (Kubernetes Not Found, HTTP 404): 404 page not found"),
        "{error}"
    );
    assert!(error.contains("metrics adapter"), "{error}");
    let offline = sample(
        MetricProviderKind::ExternalMetrics,
        connection(Duration::from_secs(10)),
        &Queries::Instant(query),
        chrono::Utc::now(),
        None,
    )
    .await;
    assert!(
        error_of(offline).contains("only `serin controller` queries"),
        "outside the controller there is no cluster to ask"
    );
}
