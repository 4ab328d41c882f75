//! Self-tests of the test control plane: the real API server, controller-manager and the pod
//! simulator behave as the end-to-end tests rely on.

mod cluster;

use std::time::Duration;

use cluster::workloads::{Readiness, deployment, set_version};
use cluster::{NOBODY_TOKEN, client, cluster, eventually, namespace};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn ready_replicas(api: &Api<Deployment>, name: &str) -> i32 {
    let d = api.get(name).await.unwrap();
    d.status.and_then(|s| s.available_replicas).unwrap_or(0)
}

#[tokio::test]
async fn a_deployment_reaches_its_ready_replicas_through_the_real_controller_manager() {
    let client = client().await;
    let ns = namespace(&client, "ready").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("web", "v1", 3, Readiness::Ready),
    )
    .await
    .unwrap();
    eventually("3 available replicas", WAIT, || async {
        (ready_replicas(&api, "web").await == 3).then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3);
    for pod in list {
        let node = pod.spec.unwrap().node_name.unwrap();
        assert!(
            cluster::pods::NODES.contains(&node.as_str()),
            "bound to a simulated node: {node}"
        );
    }
}

#[tokio::test]
async fn a_rolling_update_replaces_the_pods() {
    let client = client().await;
    let ns = namespace(&client, "rolling").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("web", "v1", 2, Readiness::Ready),
    )
    .await
    .unwrap();
    eventually("2 available", WAIT, || async {
        (ready_replicas(&api, "web").await == 2).then_some(())
    })
    .await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(set_version("v2")),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually("only new pods, all ready", WAIT, || async {
        let d = api.get("web").await.ok()?;
        let status = d.status?;
        let list = pods.list(&ListParams::default()).await.ok()?;
        // Old pods are gone (graceful deletion completed), new ones run v2.
        let versions: Vec<String> = list
            .items
            .iter()
            .filter_map(|p| {
                p.spec.as_ref()?.containers[0].env.as_ref()?[0]
                    .value
                    .clone()
            })
            .collect();
        (status.updated_replicas == Some(2)
            && status.available_replicas == Some(2)
            && versions.len() == 2
            && versions.iter().all(|v| v == "v2"))
        .then_some(())
    })
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(client, &ns);
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "old and new ReplicaSets"
    );
}

#[tokio::test]
async fn pods_that_never_become_ready_or_crash_loop_keep_a_deployment_unavailable() {
    let client = client().await;
    let ns = namespace(&client, "unready").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("never", "v1", 1, Readiness::Never),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &deployment("crash", "v1", 1, Readiness::CrashLoop),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &deployment("slow", "v1", 1, Readiness::After(3)),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let restarts = eventually("crash-looping pod restarts twice", WAIT, || async {
        let list = pods
            .list(&ListParams::default().labels("app=crash"))
            .await
            .ok()?;
        let count = list
            .items
            .first()?
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .first()?
            .restart_count;
        (count >= 2).then_some(count)
    })
    .await;
    assert!(restarts >= 2);
    eventually("the slow pod becomes ready", WAIT, || async {
        (ready_replicas(&api, "slow").await == 1).then_some(())
    })
    .await;
    let list = pods
        .list(&ListParams::default().labels("app=never"))
        .await
        .unwrap();
    assert_eq!(
        list.items[0].status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(ready_replicas(&api, "never").await, 0);
    assert_eq!(ready_replicas(&api, "crash").await, 0);
}

async fn apply_serin_crds(client: &Client) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/serin.yaml")).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in text.split("---\n").filter(|d| !d.trim().is_empty()) {
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(doc).unwrap();
        let params = PatchParams::apply("serin-test").force();
        crds.patch(&crd.name_any(), &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the API server refuses {}: {e}", crd.name_any()));
    }
    eventually("CRDs established", WAIT, || async {
        let crd = crds.get("canaries.serin.dev").await.ok()?;
        let established = crd
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        established.then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_api_server_rejects_an_object_that_violates_the_crd_schema() {
    let client = client().await;
    apply_serin_crds(&client).await;
    let ns = namespace(&client, "schema").await;
    let api: Api<serin::api::Canary> = Api::namespaced(client.clone(), &ns);
    let canary = |max_weight: i64| {
        json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "stepWeight": 10, "maxWeight": max_weight},
            },
        })
    };
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        &ns,
        &kube::api::ApiResource::erase::<serin::api::Canary>(&()),
    );
    let bad: kube::api::DynamicObject = serde_json::from_value(canary(150)).unwrap();
    let error = raw.create(&PostParams::default(), &bad).await.unwrap_err();
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status.message.contains("spec.analysis.maxWeight"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 422, got {other}"),
    }
    let good: serin::api::Canary = serde_json::from_value(canary(50)).unwrap();
    let created = api.create(&PostParams::default(), &good).await.unwrap();
    assert_eq!(created.spec.analysis.max_weight, Some(50));
}

#[tokio::test]
async fn a_token_without_rbac_permission_is_forbidden() {
    let plane = cluster();
    if plane.external {
        eprintln!(
            "not applicable against SERIN_E2E_KUBECONFIG: the forbidden user exists only in the local control plane"
        );
        return;
    }
    let admin = client().await;
    let ns = namespace(&admin, "rbac").await;
    let nobody = plane.client(Some(NOBODY_TOKEN)).await;
    let secrets: Api<Secret> = Api::namespaced(nobody, &ns);
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{}", status.message),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
    let allowed: Api<Secret> = Api::namespaced(admin, &ns);
    assert!(allowed.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn restarting_the_api_server_loses_no_objects() {
    let plane = cluster();
    if plane.external {
        eprintln!("not applicable against SERIN_E2E_KUBECONFIG: it restarts the local API server");
        return;
    }
    let client = client().await;
    let ns = namespace(&client, "restart").await;
    let maps: Api<ConfigMap> = Api::namespaced(client, &ns);
    for i in 0..5 {
        let map: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("c{i}")}, "data": {"i": i.to_string()}}),
        )
        .unwrap();
        maps.create(&PostParams::default(), &map).await.unwrap();
    }
    plane.restart_apiserver();
    // A new client: the old one's connections died with the API server.
    let fresh = cluster::client().await;
    let maps: Api<ConfigMap> = Api::namespaced(fresh, &ns);
    let names: Vec<String> = maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    for i in 0..5 {
        assert!(names.contains(&format!("c{i}")), "c{i} survived: {names:?}");
    }
}
