//! StatefulSet targets end to end on the real control plane (design in docs/targets.md): the
//! controller-manager's StatefulSet controller creates the pods and their claims, its volume
//! binder binds each claim to a volume the test creates for it (hostPath volumes pre-bound by
//! `claimRef`: there is no provisioner), and the pod simulator marks the pods ready. What a user
//! of stateful workloads must be able to rely on: every claim, the primary's and the canary's,
//! is still bound to the same volume after promotions, rollbacks and the Canary's deletion.

mod cluster;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use cluster::eventually;
use cluster::rollout::{Setup, WAIT, setup};
use cluster::workloads::stateful_set;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin::api::Phase;

const REPLICAS: i32 = 2;
const STORAGE_CLASS: &str = "serin-static";

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

/// Rollouts wait at the promotion gate until the test promotes or aborts them.
fn gated() -> serde_json::Value {
    json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": hook_server(403)}]})
}

fn stateful_sets(s: &Setup) -> Api<StatefulSet> {
    Api::namespaced(s.client.clone(), &s.ns)
}

/// The claims the StatefulSets `name` and `name-primary` will ask for, each pre-bound to a
/// volume of its own.
async fn create_volumes(s: &Setup, name: &str) {
    let volumes: Api<PersistentVolume> = Api::all(s.client.clone());
    for set in [name.to_string(), format!("{name}-primary")] {
        for ordinal in 0..REPLICAS {
            let claim = format!("data-{set}-{ordinal}");
            let volume: PersistentVolume = serde_json::from_value(json!({
                "metadata": {"name": format!("{}-{claim}", s.ns)},
                "spec": {
                    "capacity": {"storage": "1Mi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": format!("/tmp/serin-volumes/{}/{claim}", s.ns)},
                    "claimRef": {"namespace": s.ns, "name": claim},
                },
            }))
            .unwrap();
            volumes
                .create(&PostParams::default(), &volume)
                .await
                .unwrap();
        }
    }
}

/// Every claim of the namespace and the volume it is bound to, once all `2 * REPLICAS` are
/// bound.
async fn bound_claims(s: &Setup) -> BTreeMap<String, String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), &s.ns);
    eventually("every claim bound", WAIT, || async {
        let list = claims.list(&Default::default()).await.ok()?;
        let bound: BTreeMap<String, String> = list
            .items
            .into_iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .filter_map(|c| Some((c.metadata.name?, c.spec?.volume_name?)))
            .collect();
        (bound.len() == 2 * REPLICAS as usize).then_some(bound)
    })
    .await
}

async fn version(s: &Setup, name: &str) -> Option<String> {
    let set = stateful_sets(s).get(name).await.ok()?;
    let env = set.spec?.template.spec?.containers[0].env.clone()?;
    env.iter()
        .find(|e| e.name == "VERSION")
        .and_then(|e| e.value.clone())
}

async fn replicas(s: &Setup, name: &str) -> Option<i32> {
    stateful_sets(s).get(name).await.ok()?.spec?.replicas
}

/// Flux's server-side apply of the StatefulSet manifest at `version` (without `replicas`,
/// which serin owns, as the docs ask of a GitOps repository).
async fn gitops_apply(s: &Setup, name: &str, version: &str) {
    let mut manifest =
        serde_json::to_value(stateful_set(name, version, REPLICAS, STORAGE_CLASS)).unwrap();
    manifest["metadata"]["namespace"] = json!(s.ns);
    manifest["spec"].as_object_mut().unwrap().remove("replicas");
    stateful_sets(s)
        .patch(
            name,
            &PatchParams::apply("flux").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap();
}

async fn initialized(name: &str, extra: serde_json::Value) -> Setup {
    let s = setup(name, &[]).await;
    create_volumes(&s, name).await;
    stateful_sets(&s)
        .create(
            &PostParams::default(),
            &stateful_set(name, "v1", REPLICAS, STORAGE_CLASS),
        )
        .await
        .unwrap();
    s.create_canary_of("StatefulSet", name, gated(), extra)
        .await;
    s.wait_phase(name, Phase::Initialized).await;
    s
}

#[tokio::test]
async fn a_stateful_set_is_promoted_and_rolled_back_with_every_claim_on_its_volume() {
    let s = initialized("db", json!({})).await;
    // The primary serves from claims of its own; the target idles at zero, its claims kept.
    let claims = bound_claims(&s).await;
    assert!(claims.contains_key("data-db-primary-0") && claims.contains_key("data-db-0"));
    assert_eq!(replicas(&s, "db").await, Some(0));
    assert_eq!(replicas(&s, "db-primary").await, Some(REPLICAS));
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    let headless = services
        .get("db-headless-primary")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    assert_eq!(headless.selector.unwrap()["app"], "db-primary");
    let apex = services.get("db").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "db-primary");

    // A release promoted: the primary's pods are recreated at v2 on their own claims.
    gitops_apply(&s, "db", "v2").await;
    s.wait_phase("db", Phase::WaitingPromotion).await;
    assert_eq!(replicas(&s, "db").await, Some(REPLICAS), "the canary runs");
    s.request("db", "promote", "1").await;
    s.wait_phase("db", Phase::Succeeded).await;
    assert_eq!(version(&s, "db-primary").await.as_deref(), Some("v2"));
    eventually("the canary back at zero", WAIT, || async {
        (replicas(&s, "db").await == Some(0)).then_some(())
    })
    .await;
    assert_eq!(bound_claims(&s).await, claims, "after the promotion");

    // A release rolled back: the primary stays at v2, the canary goes back to zero.
    gitops_apply(&s, "db", "v3").await;
    s.wait_phase("db", Phase::WaitingPromotion).await;
    s.request("db", "abort", "2").await;
    s.wait_phase("db", Phase::Failed).await;
    assert_eq!(version(&s, "db-primary").await.as_deref(), Some("v2"));
    assert_eq!(s.weights("db").await, Some((100, 0)));
    eventually("the canary back at zero", WAIT, || async {
        (replicas(&s, "db").await == Some(0)).then_some(())
    })
    .await;
    assert_eq!(bound_claims(&s).await, claims, "after the rollback");
}

#[tokio::test]
async fn deleting_the_canary_with_revert_on_deletion_gives_the_stateful_set_back_and_keeps_every_claim()
 {
    let s = initialized("store", json!({"revertOnDeletion": true})).await;
    let claims = bound_claims(&s).await;
    s.canaries()
        .delete("store", &Default::default())
        .await
        .unwrap();
    eventually("canary gone", WAIT, || async {
        s.canaries()
            .get_opt("store")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // The finalizer is released once the target's pods are ready again.
    let target = stateful_sets(&s).get("store").await.unwrap();
    assert_eq!(target.spec.unwrap().replicas, Some(REPLICAS));
    assert_eq!(target.status.unwrap().ready_replicas, Some(REPLICAS));
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.ns);
    let apex = services.get("store").await.unwrap();
    assert_eq!(apex.spec.unwrap().selector.unwrap()["app"], "store");
    // The primary goes with the Canary (garbage collection); its claims stay.
    eventually("the primary deleted", WAIT, || async {
        stateful_sets(&s)
            .get_opt("store-primary")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(bound_claims(&s).await, claims);
}
