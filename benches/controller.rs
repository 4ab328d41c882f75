//! Controller benchmark on the local control plane (not a timed test):
//! - reaction latency: a Deployment's pod template changes -> the Canary has adopted the new
//!   revision and is Progressing, p50/p99 over 50 changes;
//! - the controller's resident memory with 100 idle (initialized) canaries.
//!
//! Run: `cargo bench --bench controller` (results go to docs/benchmarks.md by hand).

#[path = "../tests/cluster/mod.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::controller::{ControllerProcess, install, service_account_kubeconfig};
use cluster::workloads::{Readiness, deployment, set_version};
use cluster::{client, eventually, namespace};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin::api::{Canary, Phase};

const CHANGES: usize = 50;
const IDLE_CANARIES: usize = 100;

fn canary(name: &str) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary", "metadata": {"name": name},
        "spec": {"provider": "gatewayapi", "targetRef": {"name": name},
                 "service": {"port": 80, "gatewayRefs": [{"name": "public"}]},
                 "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50}},
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let client = client().await;
    install(&client).await;
    let ns = namespace(&client, "bench").await;
    let kubeconfig = service_account_kubeconfig(&client, &ns).await;
    let controller = ControllerProcess::start(&kubeconfig, &ns, &[]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), &ns);

    // Reaction latency.
    deployments
        .create(
            &PostParams::default(),
            &deployment("react", "v0", 1, Readiness::Ready),
        )
        .await
        .unwrap();
    canaries
        .create(&PostParams::default(), &canary("react"))
        .await
        .unwrap();
    let wait = Duration::from_secs(120);
    eventually("initialized", wait, || async {
        (canaries.get("react").await.ok()?.status?.phase == Some(Phase::Initialized)).then_some(())
    })
    .await;
    let mut latencies = Vec::with_capacity(CHANGES);
    for change in 1..=CHANGES {
        let before = canaries
            .get("react")
            .await
            .unwrap()
            .status
            .unwrap()
            .last_applied_spec;
        let started = Instant::now();
        deployments
            .patch(
                "react",
                &PatchParams::default(),
                &Patch::Strategic(set_version(&format!("v{change}"))),
            )
            .await
            .unwrap();
        loop {
            let status = canaries
                .get("react")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if status.last_applied_spec != before && status.phase == Some(Phase::Progressing) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "reaction (Deployment update -> Canary Progressing), {CHANGES} changes: p50 {:?}, p99 {:?}, max {:?} (5 ms polling)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Memory with idle canaries.
    for i in 0..IDLE_CANARIES {
        let name = format!("idle-{i}");
        deployments
            .create(
                &PostParams::default(),
                &deployment(&name, "v1", 1, Readiness::Ready),
            )
            .await
            .unwrap();
        canaries
            .create(&PostParams::default(), &canary(&name))
            .await
            .unwrap();
    }
    eventually("all initialized", Duration::from_secs(600), || async {
        let list = canaries.list(&Default::default()).await.ok()?;
        let done = list
            .items
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase) == Some(Phase::Initialized))
            .count();
        (done >= IDLE_CANARIES).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "controller RSS with {} idle canaries: {} KiB",
        IDLE_CANARIES + 1,
        rss_kib(controller.pid())
    );
}
