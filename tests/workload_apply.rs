//! The workload builders against the real API server: the primary Deployment, its config
//! copies' references and the three Services apply with server-side apply, and the primary's
//! pods become ready behind the apex service's selector.

mod cluster;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster::workloads::{Readiness, deployment};
use cluster::{client, eventually, namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serin::api::Canary;
use serin::workload::configs::referenced;
use serin::workload::primary::{PrimaryInputs, REVISION_ANNOTATION, desired_primary};
use serin::workload::services::{ServiceRole, desired_service};

const WAIT: Duration = Duration::from_secs(60);

fn canary_spec() -> serin::api::CanarySpec {
    let canary: Canary = serde_yaml_ng::from_str(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  targetRef: {name: web}\n  service: {port: 80, targetPort: 8080}\n  analysis: {stepWeight: 10}\n",
    )
    .unwrap();
    canary.spec
}

async fn apply<K>(client: &Client, ns: &str, object: &K)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply("serin").force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
        .unwrap_or_else(|e| panic!("server-side apply of {}: {e}", object.name_any()));
}

#[tokio::test]
async fn the_primary_and_services_apply_and_serve_the_primary_pods() {
    let client = client().await;
    let ns = namespace(&client, "workload").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let target = deployments
        .create(
            &PostParams::default(),
            &deployment("web", "v1", 2, Readiness::Ready),
        )
        .await
        .unwrap();
    let pod_spec = target
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let tracked: BTreeSet<_> = referenced(pod_spec);
    let primary = desired_primary(&PrimaryInputs {
        target: &target,
        revision: "rev-1",
        tracked: &tracked,
        replicas: Some(2),
        owner: None,
        live_selector: None,
    })
    .unwrap();
    apply(&client, &ns, &primary).await;
    let selector = &target.spec.as_ref().unwrap().selector;
    let spec = canary_spec();
    for role in ServiceRole::ALL {
        let service = desired_service(&spec, role, "web", selector, None, &ns, None).unwrap();
        apply(&client, &ns, &service).await;
    }
    eventually("primary ready", WAIT, || async {
        let d = deployments.get("web-primary").await.ok()?;
        (d.status?.available_replicas == Some(2)).then_some(())
    })
    .await;
    let live = deployments.get("web-primary").await.unwrap();
    assert_eq!(live.annotations()[REVISION_ANNOTATION], "rev-1");
    // The apex service reaches the primary's two pods, and not the target's.
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let addresses = eventually("apex endpoints", WAIT, || async {
        let e = endpoints.get("web").await.ok()?;
        let count: usize = e
            .subsets?
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        (count == 2).then_some(count)
    })
    .await;
    assert_eq!(addresses, 2);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let canary = services.get("web-canary").await.unwrap();
    assert_eq!(canary.spec.unwrap().selector.unwrap()["app"], "web");
    // Applying the same objects again is a no-op for the API server: no new generation.
    let generation = live.metadata.generation;
    apply(&client, &ns, &primary).await;
    assert_eq!(
        deployments
            .get("web-primary")
            .await
            .unwrap()
            .metadata
            .generation,
        generation
    );
}
