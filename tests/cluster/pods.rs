//! The pod simulator: what kubelets and the scheduler do for a pod, without containers (the
//! idea of KWOK). It registers simulated Nodes, binds pending Pods to them (a DaemonSet's pod to
//! the node it names), marks them Running and Ready, and completes graceful deletions. A pod
//! template asks for other behaviour with the annotation `test.serin.dev/readiness`:
//!
//! - `ready` (default): Ready at once;
//! - `never`: Running, never Ready (a failing readiness probe);
//! - `after=10s`: Ready after that long;
//! - `crashloop`: never Ready, restart count rising every 2 seconds (CrashLoopBackOff).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

pub const READINESS: &str = "test.serin.dev/readiness";
pub const NODES: [&str; 2] = ["sim-node-0", "sim-node-1"];

/// Pods handled at once. One at a time, the simulator fell behind the controller-manager in
/// the 10,000-Canary benchmark (thousands of pods to bind, start or delete, each a request to
/// a busy API server); its watch then outlived the API server's history and expired.
const CONCURRENCY: usize = 32;

/// The pods the simulator started: their status is set once, not again at every event.
type Started = Arc<Mutex<HashSet<String>>>;

/// Runs the simulator on a thread of its own for the rest of the process.
pub fn start_simulator(kubeconfig: PathBuf) {
    std::thread::Builder::new()
        .name("pod-simulator".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("pod simulator runtime");
            runtime.block_on(async move {
                // Kept across restarts: a restarted watch lists every pod again, and setting
                // the status of thousands of running pods once more, one after another, held
                // up new pods for minutes in the 10,000-Canary benchmark.
                let started = Started::default();
                loop {
                    if let Err(error) = simulate(&kubeconfig, &started).await {
                        eprintln!("pod simulator: {error}; restarting");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        })
        .expect("starting the pod simulator thread");
}

async fn simulate(kubeconfig: &PathBuf, started: &Started) -> Result<(), String> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?,
        &Default::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    register_nodes(&client).await?;
    // The list a (re)started watch begins with comes from the API server's cache, in one
    // response: paging through tens of thousands of pods from etcd on a busy API server took
    // longer than the continue token lived.
    let config = watcher::Config::default().any_semantic();
    watcher(Api::<Pod>::all(client.clone()), config)
        .default_backoff()
        .applied_objects()
        .map_err(|e| e.to_string())
        .try_for_each_concurrent(CONCURRENCY, |pod| {
            let client = client.clone();
            async move {
                if let Err(error) = handle(&client, &pod, started).await {
                    eprintln!(
                        "pod simulator: {}/{}: {error}",
                        pod.namespace().unwrap_or_default(),
                        pod.name_any()
                    );
                }
                Ok(())
            }
        })
        .await
}

async fn register_nodes(client: &Client) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    for name in NODES {
        let status = json!({
            "capacity": {"cpu": "32", "memory": "64Gi", "pods": "250"},
            "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "250"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated"}],
            "addresses": [{"type": "InternalIP", "address": "10.244.0.1"}],
        });
        let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "status": status}))
            .map_err(|e| e.to_string())?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(format!("registering node {name}: {e}")),
        }
        nodes
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .map_err(|e| format!("node {name} status: {e}"))?;
        // The API server gives a new Node the `node.kubernetes.io/not-ready` taint, and the
        // node lifecycle controller (disabled here) takes it off once the node is Ready. The
        // simulator's bindings ignore it, but the DaemonSet controller would put no pod on a
        // node still carrying it.
        nodes
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"taints": null}})),
            )
            .await
            .map_err(|e| format!("node {name} taints: {e}"))?;
    }
    Ok(())
}

async fn handle(client: &Client, pod: &Pod, started: &Started) -> Result<(), String> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let spec = pod.spec.as_ref().ok_or("pod without spec")?;
    if pod.metadata.deletion_timestamp.is_some() {
        // A kubelet confirms a graceful deletion by deleting with grace period 0.
        if spec.node_name.is_some() {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            return match api.delete(&name, &params).await {
                Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
        }
        return Ok(());
    }
    let Some(uid) = pod.uid() else { return Ok(()) };
    if spec.node_name.is_none() {
        let node = pinned_node(spec)
            .unwrap_or_else(|| NODES[usize::from(uid.as_bytes()[0]) % NODES.len()].to_string());
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        return api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &name,
                &PostParams::default(),
                &binding,
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("binding: {e}"));
    }
    if !started.lock().unwrap().insert(uid) {
        return Ok(());
    }
    let mode = pod
        .annotations()
        .get(READINESS)
        .cloned()
        .unwrap_or_else(|| "ready".into());
    let containers: Vec<(String, String)> = spec
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect();
    match mode.as_str() {
        "ready" => set_status(&api, &name, &containers, State::Ready).await,
        "never" => set_status(&api, &name, &containers, State::NotReady).await,
        "crashloop" => {
            tokio::spawn(crash_loop(api, name, containers));
            Ok(())
        }
        other => {
            let delay = other
                .strip_prefix("after=")
                .and_then(|d| d.strip_suffix('s'))
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "{READINESS}: unknown value {other:?} (ready, never, after=10s, crashloop)"
                    )
                })?;
            set_status(&api, &name, &containers, State::NotReady).await?;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                let _ = set_status(&api, &name, &containers, State::Ready).await;
            });
            Ok(())
        }
    }
}

/// The node a pod must run on, as the DaemonSet controller asks for it: a required node
/// affinity on the field `metadata.name` (a DaemonSet's pod bound elsewhere would be deleted
/// and created again, forever).
fn pinned_node(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<String> {
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|term| term.match_fields.iter().flatten())
        .find(|field| field.key == "metadata.name" && field.operator == "In")
        .and_then(|field| field.values.as_ref()?.first().cloned())
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Ready,
    NotReady,
    Crashing { restarts: i32 },
}

async fn crash_loop(api: Api<Pod>, name: String, containers: Vec<(String, String)>) {
    for restarts in 1.. {
        if set_status(&api, &name, &containers, State::Crashing { restarts })
            .await
            .is_err()
        {
            return; // the pod is gone
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn set_status(
    api: &Api<Pod>,
    name: &str,
    containers: &[(String, String)],
    state: State,
) -> Result<(), String> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ready = if state == State::Ready {
        "True"
    } else {
        "False"
    };
    let restarts = match state {
        State::Crashing { restarts } => restarts,
        _ => 0,
    };
    let container_state = match state {
        State::Crashing { .. } => {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (simulated)"}})
        }
        _ => json!({"running": {"startedAt": now}}),
    };
    let statuses: Vec<serde_json::Value> = containers
        .iter()
        .map(|(container, image)| {
            json!({
                "name": container, "image": image, "imageID": format!("sim://{image}"),
                "containerID": format!("sim://{name}/{container}"),
                "ready": state == State::Ready, "started": !matches!(state, State::Crashing { .. }),
                "restartCount": restarts, "state": container_state,
            })
        })
        .collect();
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "10.244.0.1",
        "podIP": format!("10.244.{}.{}", name.len() % 250, (name.bytes().map(u32::from).sum::<u32>() % 250) + 2),
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
            {"type": "Ready", "status": ready, "lastTransitionTime": now},
        ],
        "containerStatuses": statuses,
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
