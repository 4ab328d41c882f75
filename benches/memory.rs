//! What one Canary costs the controller in memory, object by object (issue 19 item 6): the
//! bytes the heap holds for each cached object and for each Canary's metrics, counted by a
//! global allocator that tallies every allocation (no sampling, no cluster, deterministic for a
//! given build). The scale benchmark measures the whole process's RSS; this one says where it
//! goes.
//!
//! Run: `cargo bench --bench memory` (results go to docs/benchmarks.md by hand).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use chrono::{Duration, TimeZone, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use serin::api::Canary;
use serin::api::history::{Outcome, RolloutRecord};
use serin::api::provider::TrafficProvider;
use serin::controller::packed::Packed;
use serin::controller::telemetry::Metrics;
use serin::sim::Scenario;

/// Every live heap byte, as the program asked for them (the allocator's own overhead, a few
/// bytes per block, comes on top: RSS per object is somewhat higher).
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        unsafe { System.dealloc(block, layout) };
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            HELD.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const COUNT: usize = 1000;

/// Bytes held per item after `fill` put `COUNT` items where they stay (a store, a registry).
fn per_item(fill: impl FnOnce()) -> f64 {
    let before = HELD.load(Ordering::Relaxed);
    fill();
    (HELD.load(Ordering::Relaxed) - before) as f64 / COUNT as f64
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// The Canary of `examples/podinfo-promote.yaml` as the cache holds it after `rollouts` ended:
/// a status with conditions, its last checks and the bounded history.
fn settled_canary(rollouts: usize) -> Canary {
    let text = std::fs::read_to_string("examples/podinfo-promote.yaml").expect("the example");
    let scenario = Scenario::from_yaml(
        &text,
        TrafficProvider::parse("kubernetes").expect("a provider"),
    )
    .expect("the example loads");
    let report = serin::sim::run(&scenario);
    let checks = report
        .timeline
        .iter()
        .rev()
        .find(|entry| !entry.checks.is_empty())
        .map(|entry| entry.checks.clone())
        .unwrap_or_default();
    let template = report
        .history
        .first()
        .cloned()
        .unwrap_or_else(|| RolloutRecord::start("5f7d9c8b6", Utc.timestamp_opt(0, 0).unwrap()));
    let mut canary = scenario.canary.clone();
    let now = Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap();
    let mut status: Value = json!({
        "phase": "Succeeded", "observedGeneration": 7, "canaryWeight": 0, "failedChecks": 0,
        "iterations": 0, "lastAppliedSpec": "6d8f9b7c5f", "lastPromotedSpec": "6d8f9b7c5f",
        "lastTransitionTime": now,
        "conditions": [
            {"type": "Promoted", "status": "True", "reason": "Succeeded",
             "message": "Canary analysis completed successfully, promotion finished.", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "reason": "Succeeded",
             "message": "the primary serves all traffic with revision 6d8f9b7c5f", "lastTransitionTime": now},
            {"type": "Stalled", "status": "False", "reason": "Succeeded", "message": "", "lastTransitionTime": now},
            {"type": "Reconciling", "status": "False", "reason": "Succeeded", "message": "", "lastTransitionTime": now},
        ],
    });
    status["checks"] = serde_json::to_value(&checks).unwrap();
    let history: Vec<RolloutRecord> = (0..rollouts)
        .map(|i| {
            let mut record = template.clone();
            record.revision = format!("{:010x}", 0x005f_7d9c_8b60_u64 + i as u64);
            record.started_at = Some(now - Duration::hours(24 * i as i64 + 1));
            record.ended_at = Some(now - Duration::hours(24 * i as i64));
            record.outcome = Some(if i % 3 == 2 {
                Outcome::RolledBack
            } else {
                Outcome::Promoted
            });
            record
        })
        .collect();
    status["history"] = serde_json::to_value(&history).unwrap();
    canary.status = Some(serde_json::from_value(status).expect("a valid status"));
    canary.metadata.namespace = Some("team".into());
    canary.metadata.resource_version = Some("123456".into());
    canary.metadata.uid = Some("0b8e3c52-3f0c-4a3e-9d3b-6f1f6a3b2c11".into());
    canary.metadata.generation = Some(7);
    canary
}

/// A Deployment as a team writes one (two containers with env, probes, resources and mounts),
/// named `name`, as the API server returns it (status included).
fn production_deployment(name: &str, last_applied: bool) -> Deployment {
    let container = |image: &str, port: i32| {
        json!({
            "name": image.split(':').next().unwrap().rsplit('/').next().unwrap(),
            "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": (0..10).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
                .collect::<Vec<_>>(),
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": port}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        })
    };
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team", "labels": {"app": name, "team": "payments"},
                     "uid": "5a0d1c8e-1e4b-4c8f-8a57-0a6f3d1f2b44", "resourceVersion": "123457", "generation": 12},
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name, "team": "payments"},
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9797"}},
                "spec": {
                    "containers": [container("ghcr.io/stefanprodan/podinfo:6.7.1", 9898),
                                   container("ghcr.io/example/sidecar:1.4.2", 8080)],
                    "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler", "securityContext": {},
                },
            },
        },
        "status": {"observedGeneration": 12, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3,
                   "conditions": [
                       {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability."},
                       {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                        "message": format!("ReplicaSet \"{name}-6d8f9b7c5f\" has successfully progressed.")}]},
    });
    if last_applied {
        let copy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": deployment["metadata"].clone(), "spec": deployment["spec"].clone()});
        deployment["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration": copy.to_string(),
        });
    }
    serde_json::from_value(deployment).expect("a valid Deployment")
}

/// The scale benchmark's Deployment: one container, one replica.
fn small_deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "scale", "labels": {"app": name},
                     "uid": "5a0d1c8e-1e4b-4c8f-8a57-0a6f3d1f2b44", "resourceVersion": "123457"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1},
    }))
    .expect("a valid Deployment")
}

fn fill<K>(writer: &mut Writer<K>, objects: impl Iterator<Item = K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
}

fn main() {
    println!("bytes held per object, {COUNT} of each (heap, as asked of the allocator)\n");

    for rollouts in [0, serin::api::history::MAX_ROLLOUTS] {
        let canary = settled_canary(rollouts);
        let json = serde_json::to_string(&canary).unwrap().len();
        let (_store, mut writer) = reflector::store::<Canary>();
        let bytes = per_item(|| {
            fill(
                &mut writer,
                (0..COUNT).map(|i| {
                    let mut canary = canary.clone();
                    canary.metadata.name = Some(format!("podinfo-{i}"));
                    canary
                }),
            )
        });
        println!(
            "Canary in the cache, {rollouts:>2} rollouts in its history: {} ({} as JSON)",
            kib(bytes),
            kib(json as f64)
        );
    }

    for (label, make) in [
        (
            "Deployment of the scale benchmark",
            &(|name: &str| small_deployment(name)) as &dyn Fn(&str) -> Deployment,
        ),
        ("Deployment as a team writes one", &|name: &str| {
            production_deployment(name, false)
        }),
        (
            "the same, applied with kubectl (last-applied copy kept)",
            &|name: &str| production_deployment(name, true),
        ),
        ("its -primary (stamped with its revision)", &|name: &str| {
            let mut primary = production_deployment(&format!("{name}-primary"), false);
            primary.metadata.annotations = Some(
                [(
                    serin::workload::primary::REVISION_ANNOTATION.to_string(),
                    "6d8f9b7c5f".to_string(),
                )]
                .into(),
            );
            primary
        }),
    ] {
        let sample = make("podinfo");
        let json = serde_json::to_string(&sample).unwrap().len();
        let (_store, mut writer) = reflector::store::<Deployment>();
        let typed = per_item(|| {
            fill(
                &mut writer,
                (0..COUNT).map(|i| make(&format!("podinfo-{i}"))),
            )
        });
        // As the controller caches it (controller::packed): stripped, packed as JSON.
        let (_store, mut writer) = reflector::store::<Packed<Deployment>>();
        let packed = per_item(|| {
            fill(
                &mut writer,
                (0..COUNT).map(|i| Packed::pack(make(&format!("podinfo-{i}")))),
            )
        });
        println!(
            "{label}: {} as a struct, {} as cached ({} as JSON)",
            kib(typed),
            kib(packed),
            kib(json as f64)
        );
    }

    let metrics = Metrics::new(None);
    let canary = settled_canary(0);
    let status = canary.status.clone().unwrap_or_default();
    let bytes = per_item(|| {
        for i in 0..COUNT {
            let name = format!("podinfo-{i}");
            metrics.observe_canary(&name, "team", &status);
            metrics.reconciled((&name, "team", &name), std::time::Instant::now(), None);
        }
    });
    println!("metrics of one Canary (serin_canary_*): {}", kib(bytes));
    let flagger = Metrics::new(Some("istio"));
    let bytes = per_item(|| {
        for i in 0..COUNT {
            let name = format!("podinfo-{i}");
            flagger.observe_canary(&name, "team", &status);
            flagger.reconciled((&name, "team", &name), std::time::Instant::now(), None);
        }
    });
    println!("the same with --flagger-metrics: {}", kib(bytes));
}
