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

/// serin's event recorder against the real API server: a repeat of the same note is one
/// Event counted twice (events.k8s.io's series, as `kubectl describe` shows "x2"), another
/// note is another Event, and an Event deleted meanwhile is created afresh.
#[tokio::test]
async fn a_repeated_event_is_counted_and_another_note_is_its_own_event() {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::events::v1::Event;
    use serin::controller::events::{Note, Recorder};

    let client = client().await;
    let ns = namespace(&client, "events").await;
    let recorder = Recorder::new(client.clone(), "serin", Some("serin-0".into()));
    let web = ObjectReference {
        api_version: Some("serin.dev/v1beta1".into()),
        kind: Some("Canary".into()),
        namespace: Some(ns.clone()),
        name: Some("web".into()),
        uid: Some("2c8e1f52-0000-4000-8000-000000000001".into()),
        ..ObjectReference::default()
    };
    let note = |text| Note {
        warning: false,
        reason: "WeightAdvanced",
        action: "Reconcile",
        note: text,
    };
    for text in [
        "canary weight 10%",
        "canary weight 10%",
        "canary weight 20%",
    ] {
        recorder.publish(&note(text), &web).await.unwrap();
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let seen = |list: Vec<Event>| -> Vec<(String, i32)> {
        let mut seen: Vec<_> = list
            .into_iter()
            .map(|e| {
                let count = e.series.map_or(1, |s| s.count);
                (e.note.unwrap_or_default(), count)
            })
            .collect();
        seen.sort();
        seen
    };
    let list = events.list(&Default::default()).await.unwrap().items;
    assert!(list.iter().all(|e| {
        e.reporting_controller.as_deref() == Some("serin")
            && e.reporting_instance.as_deref() == Some("serin-0")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
    }));
    assert_eq!(
        seen(list.clone()),
        [
            ("canary weight 10%".to_string(), 2),
            ("canary weight 20%".to_string(), 1)
        ]
    );
    // A repeat of an Event that is gone (expired, deleted) is recorded again, not lost.
    for event in &list {
        events
            .delete(&event.name_any(), &Default::default())
            .await
            .unwrap();
    }
    recorder
        .publish(&note("canary weight 20%"), &web)
        .await
        .unwrap();
    let list = events.list(&Default::default()).await.unwrap().items;
    assert_eq!(seen(list), [("canary weight 20%".to_string(), 1)]);
}
