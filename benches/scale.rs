//! Scale benchmark on the local control plane (issue 19 item 5; not a timed test): one
//! `serin controller` holding N blue/green Canaries (provider `kubernetes`, one replica each).
//!
//! Measures: the time to initialize all N; the controller's RSS idle and peak (VmHWM); API
//! writes per idle Canary per minute, counted by the API server (an audit log of the
//! ServiceAccount's requests, `cluster::AUDIT_ENV`); reaction p50/p99 from a pod-template change
//! to `Progressing` at 10 changes a second; the time for a burst of simultaneous changes to all
//! reach `Progressing`, with the API server's own latency for serin's requests and the
//! controller's reconcile concurrency meanwhile; API requests per completed rollout; the
//! outcome of every rollout.
//!
//! Run: `SERIN_CLUSTER_AUDIT=1 SERIN_CLUSTER_CONTROLLER_MANAGER_QPS=500 cargo bench --bench scale`
//! (the control plane reads those two at start), with
//! - `SERIN_SCALE_CANARIES` (default 1000): N;
//! - `SERIN_SCALE_PER_NAMESPACE` (default 1000): Canaries per namespace; with more than one
//!   namespace the controller watches all (no `--namespace`). The controller-manager's
//!   deployment and replica-set controllers match every object of a namespace against each
//!   other, so one namespace of 10,000 Deployments bounds a run by them, not by serin;
//! - `SERIN_SCALE_REACTIONS` (default 100): changes made at 10 a second;
//! - `SERIN_SCALE_BURST` (default 1000, at most N): simultaneous changes;
//! - `SERIN_SCALE_IDLE_SECONDS` (default 60): the idle window writes are counted over;
//! - `SERIN_SCALE_INTERVAL` (default `30s`): the Canaries' analysis interval;
//! - `SERIN_SCALE_CONTROLLER_ARGS`: extra flags of `serin controller` (e.g. `--concurrency=64`);
//! - `SERIN_SCALE_SECOND_ARGS`: when set, the controller is then restarted with these flags
//!   instead and the burst repeated, to compare two settings on the same control plane.
//!
//! The controller-manager's client is raised to 500 requests a second (it creates a ReplicaSet
//! and a Pod per Deployment and would otherwise be the bottleneck); the audit log records the
//! ServiceAccount's requests only. Results go to docs/benchmarks.md by hand.

#[path = "../tests/cluster/mod.rs"]
mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cluster::controller::{ControllerProcess, install, service_account_kubeconfig};
use cluster::workloads::{Readiness, deployment, set_version};
use cluster::{client, cluster, namespace};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use serin::api::{Canary, Phase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Settings {
    canaries: usize,
    reactions: usize,
    /// Canaries per namespace (the last namespace may hold fewer).
    per_namespace: usize,
    burst: usize,
    idle: Duration,
    interval: String,
    controller_args: Vec<String>,
    /// Flags of a second controller the burst is repeated with (v2 -> v3), if any.
    second_args: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: usize| {
            std::env::var(name).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
            })
        };
        let canaries = number("SERIN_SCALE_CANARIES", 1000);
        Self {
            canaries,
            reactions: number("SERIN_SCALE_REACTIONS", 100).min(canaries),
            per_namespace: number("SERIN_SCALE_PER_NAMESPACE", 1000).max(1),
            burst: number("SERIN_SCALE_BURST", 1000).min(canaries),
            idle: Duration::from_secs(number("SERIN_SCALE_IDLE_SECONDS", 60) as u64),
            interval: std::env::var("SERIN_SCALE_INTERVAL").unwrap_or_else(|_| "30s".into()),
            controller_args: std::env::var("SERIN_SCALE_CONTROLLER_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect(),
            second_args: std::env::var("SERIN_SCALE_SECOND_ARGS")
                .ok()
                .map(|v| v.split_whitespace().map(String::from).collect()),
        }
    }
}

fn canary(name: &str, interval: &str) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "serin.dev/v1beta1", "kind": "Canary", "metadata": {"name": name},
        "spec": {"provider": "kubernetes",
                 "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "service": {"port": 80},
                 "analysis": {"interval": interval, "threshold": 2, "iterations": 1}},
    }))
    .unwrap()
}

fn name(i: usize) -> String {
    format!("c{i}")
}

/// Where the Canaries live: `per` to a namespace, Canary `c{i}` in namespace `i / per`.
struct Namespaces {
    client: Client,
    names: Vec<String>,
    per: usize,
}

impl Namespaces {
    async fn create(client: &Client, settings: &Settings) -> Self {
        let count = settings.canaries.div_ceil(settings.per_namespace).max(1);
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(namespace(client, "scale").await);
        }
        Self {
            client: client.clone(),
            names,
            per: settings.per_namespace,
        }
    }

    fn of(&self, name: &str) -> &str {
        let index: usize = name[1..].parse().expect("a bench Canary's name");
        &self.names[index / self.per]
    }

    fn deployments(&self, name: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), self.of(name))
    }

    /// The controller's flags: its namespace when there is one, else none (all namespaces).
    fn controller_args(&self, listen: &str) -> Vec<String> {
        let mut args = vec!["controller".to_string(), "--listen".into(), listen.into()];
        if let [only] = self.names.as_slice() {
            args.extend(["--namespace".to_string(), only.clone()]);
        }
        args
    }
}

fn start_controller(
    kubeconfig: &std::path::Path,
    spaces: &Namespaces,
    extra: &[String],
) -> ControllerProcess {
    let listen = format!("127.0.0.1:{}", cluster::free_port().unwrap());
    let mut args = spaces.controller_args(&listen);
    args.extend(extra.iter().cloned());
    ControllerProcess::start_with_args(kubeconfig, args, listen)
}

/// When each Canary last entered each phase, as seen through a watch of the bench's own.
#[derive(Default)]
struct Phases {
    current: HashMap<String, Phase>,
    entered: HashMap<(String, Phase), Instant>,
}

impl Phases {
    fn count(&self, phase: Phase) -> usize {
        self.current.values().filter(|p| **p == phase).count()
    }

    /// When `name` entered `phase` after `since`, if it did.
    fn entered_after(&self, name: &str, phase: Phase, since: Instant) -> Option<Instant> {
        self.entered
            .get(&(name.to_string(), phase))
            .copied()
            .filter(|at| *at >= since)
    }
}

fn watch_phases(canaries: Api<Canary>) -> Arc<Mutex<Phases>> {
    let phases = Arc::new(Mutex::new(Phases::default()));
    let seen = phases.clone();
    tokio::spawn(async move {
        let mut stream = watcher(canaries, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Ok(Some(canary)) = stream.try_next().await {
            let Some(phase) = canary.status.as_ref().and_then(|s| s.phase) else {
                continue;
            };
            let now = Instant::now();
            let mut phases = seen.lock().unwrap();
            let name = canary.name_any();
            if phases.current.insert(name.clone(), phase) != Some(phase) {
                phases.entered.insert((name, phase), now);
            }
        }
        eprintln!("the bench's Canary watch ended");
    });
    phases
}

/// Polls `done` every 500 ms, printing progress every 10 s, until it holds; panics after
/// `timeout`.
async fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> (bool, String)) {
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        let (finished, progress) = done();
        if finished {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}: {progress}"
        );
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!("  {what}: {progress} after {:.0?}", started.elapsed());
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) each process of the run has used so far: serin, the API
/// server, etcd, the controller-manager and this bench (which runs the pod simulator). Says
/// who was busy during a phase, by difference.
fn cpu_seconds(controller: u32) -> BTreeMap<&'static str, f64> {
    // Clock ticks, 100 a second on Linux.
    let of = |pid: &str| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the parenthesised command name: state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    };
    let mut used = BTreeMap::new();
    used.insert("serin", of(&controller.to_string()).unwrap_or(0.0));
    used.insert("bench", of("self").unwrap_or(0.0));
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let name = match comm.trim() {
            "kube-apiserver" => "kube-apiserver",
            "etcd" => "etcd",
            "kube-controller" => "kube-controller-manager",
            _ => continue,
        };
        *used.entry(name).or_default() += of(&pid).unwrap_or(0.0);
    }
    used
}

/// The CPU seconds used between two readings of [`cpu_seconds`].
fn cpu_between(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
) -> String {
    after
        .iter()
        .map(|(name, t)| {
            format!(
                "{name} {:.1} s",
                t - before.get(name).copied().unwrap_or(0.0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load {}", fields.join(" "))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// The controller's /metrics page.
async fn controller_metrics(listen: &str) -> String {
    let Ok(mut stream) = tokio::net::TcpStream::connect(listen).await else {
        return String::new();
    };
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {listen}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page).await;
    page
}

/// The sum of every sample of the metric whose line starts with `prefix`.
fn metric_sum(page: &str, prefix: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reconciles done and seconds spent reconciling, from the controller's own metrics.
async fn reconcile_totals(listen: &str) -> (f64, f64) {
    let page = controller_metrics(listen).await;
    (
        metric_sum(&page, "serin_reconcile_total{"),
        metric_sum(&page, "serin_canary_duration_seconds_sum{"),
    )
}

/// One request serin made, as the API server's audit log saw it.
struct Request {
    verb: String,
    resource: String,
    received: DateTime<Utc>,
    latency: Duration,
}

fn audit(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Request> {
    let text = std::fs::read_to_string(cluster().audit_log()).expect("reading the audit log");
    text.lines()
        .filter_map(|line| {
            let event: Value = serde_json::from_str(line).ok()?;
            let time = |field: &str| -> Option<DateTime<Utc>> {
                Some(
                    DateTime::parse_from_rfc3339(event[field].as_str()?)
                        .ok()?
                        .into(),
                )
            };
            let received = time("requestReceivedTimestamp")?;
            let object = &event["objectRef"];
            let mut resource = object["resource"].as_str().unwrap_or("-").to_string();
            if let Some(sub) = object["subresource"].as_str() {
                resource = format!("{resource}/{sub}");
            }
            Some(Request {
                verb: event["verb"].as_str()?.to_string(),
                resource,
                received,
                latency: (time("stageTimestamp")? - received)
                    .to_std()
                    .unwrap_or_default(),
            })
        })
        .filter(|r| r.received >= from && r.received < to)
        .collect()
}

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Requests by verb and resource, most frequent first.
fn breakdown(requests: &[Request], per: f64) -> String {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in requests {
        *counts
            .entry((r.verb.clone(), r.resource.clone()))
            .or_default() += 1;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    rows.iter()
        .map(|((verb, resource), n)| format!("{verb} {resource} {:.2}", *n as f64 / per))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The API server's latency for serin's requests (not watches), p50/p99.
fn server_latency(requests: &[Request]) -> String {
    let mut latencies: Vec<Duration> = requests
        .iter()
        .filter(|r| r.verb != "watch")
        .map(|r| r.latency)
        .collect();
    if latencies.is_empty() {
        return "no requests".into();
    }
    latencies.sort();
    format!(
        "{} requests, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    )
}

async fn create_all(spaces: &Namespaces, settings: &Settings) {
    futures::stream::iter(0..settings.canaries)
        .for_each_concurrent(32, |i| {
            let interval = settings.interval.clone();
            async move {
                let name = name(i);
                let ns = spaces.of(&name);
                let canaries: Api<Canary> = Api::namespaced(spaces.client.clone(), ns);
                spaces
                    .deployments(&name)
                    .create(
                        &PostParams::default(),
                        &deployment(&name, "v0", 1, Readiness::Ready),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("creating Deployment {name}: {e}"));
                canaries
                    .create(&PostParams::default(), &canary(&name, &interval))
                    .await
                    .unwrap_or_else(|e| panic!("creating Canary {name}: {e}"));
            }
        })
        .await;
}

async fn change(spaces: &Namespaces, name: &str, version: &str) {
    spaces
        .deployments(name)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(set_version(version)),
        )
        .await
        .unwrap_or_else(|e| panic!("changing Deployment {name}: {e}"));
}

/// Waits until every Canary of `names` entered Progressing and then a final phase after its
/// change; prints the outcomes. Returns when the last one finished.
async fn outcomes(phases: &Mutex<Phases>, names: &[String], since: Instant) -> DateTime<Utc> {
    let finished = |name: &str, p: &Phases| {
        p.entered_after(name, Phase::Progressing, since).is_some()
            && [Phase::Succeeded, Phase::Failed]
                .into_iter()
                .any(|f| p.entered_after(name, f, since).is_some())
    };
    until("rollouts finished", Duration::from_secs(3600), || {
        let p = phases.lock().unwrap();
        let done = names.iter().filter(|n| finished(n, &p)).count();
        (done == names.len(), format!("{done}/{}", names.len()))
    })
    .await;
    let p = phases.lock().unwrap();
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for name in names {
        *by_outcome
            .entry(format!("{:?}", p.current[name]))
            .or_default() += 1;
    }
    println!("  outcomes: {by_outcome:?}");
    Utc::now()
}

async fn reaction(
    spaces: &Arc<Namespaces>,
    phases: &Mutex<Phases>,
    settings: &Settings,
) -> Vec<String> {
    let names: Vec<String> = (0..settings.reactions).map(name).collect();
    let mut started = Vec::with_capacity(names.len());
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut patches = Vec::new();
    for name in &names {
        ticks.tick().await;
        started.push(Instant::now());
        let (spaces, name) = (spaces.clone(), name.clone());
        patches.push(tokio::spawn(
            async move { change(&spaces, &name, "v1").await },
        ));
    }
    for patch in patches {
        patch.await.unwrap();
    }
    until(
        "reaction changes Progressing",
        Duration::from_secs(600),
        || {
            let p = phases.lock().unwrap();
            let done = names
                .iter()
                .zip(&started)
                .filter(|(n, at)| p.entered_after(n, Phase::Progressing, **at).is_some())
                .count();
            (done == names.len(), format!("{done}/{}", names.len()))
        },
    )
    .await;
    let mut latencies: Vec<Duration> = {
        let p = phases.lock().unwrap();
        names
            .iter()
            .zip(&started)
            .map(|(n, at)| p.entered_after(n, Phase::Progressing, *at).unwrap() - *at)
            .collect()
    };
    latencies.sort();
    println!(
        "reaction at 10 changes/s, {} changes: p50 {:?}, p99 {:?}, max {:?} ({})",
        names.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        load()
    );
    names
}

async fn burst(
    spaces: &Arc<Namespaces>,
    phases: &Mutex<Phases>,
    settings: &Settings,
    (listen, version, controller): (&str, &str, u32),
) -> (Vec<String>, Instant, DateTime<Utc>) {
    let names: Vec<String> = (settings.canaries - settings.burst..settings.canaries)
        .map(name)
        .collect();
    let (reconciles_before, busy_before) = reconcile_totals(listen).await;
    let cpu_before = cpu_seconds(controller);
    let wall = Utc::now();
    let started = Instant::now();
    futures::stream::iter(&names)
        .for_each_concurrent(64, |name| change(spaces, name, version))
        .await;
    let sent = started.elapsed();
    until("burst Progressing", Duration::from_secs(1800), || {
        let p = phases.lock().unwrap();
        let done = names
            .iter()
            .filter(|n| p.entered_after(n, Phase::Progressing, started).is_some())
            .count();
        (done == names.len(), format!("{done}/{}", names.len()))
    })
    .await;
    let took = {
        let p = phases.lock().unwrap();
        names
            .iter()
            .filter_map(|n| p.entered_after(n, Phase::Progressing, started))
            .max()
            .unwrap()
            - started
    };
    let (reconciles_after, busy_after) = reconcile_totals(listen).await;
    let requests = audit(wall, Utc::now());
    println!(
        "burst of {} changes (patches sent in {sent:.1?}, 64 at a time): all Progressing after {took:.2?} ({:.0}/s; {})",
        names.len(),
        names.len() as f64 / took.as_secs_f64(),
        load()
    );
    println!(
        "  meanwhile: {:.0} reconciles, {:.1} reconciles busy on average (seconds reconciling / seconds), API server latency of serin's requests: {}",
        reconciles_after - reconciles_before,
        (busy_after - busy_before) / took.as_secs_f64(),
        server_latency(&requests)
    );
    println!(
        "  CPU used meanwhile: {}",
        cpu_between(&cpu_before, &cpu_seconds(controller))
    );
    (names, started, wall)
}

#[tokio::main]
async fn main() {
    let settings = Settings::from_env();
    require_cluster_env();
    let client = client().await;
    install(&client).await;
    let spaces = Arc::new(Namespaces::create(&client, &settings).await);
    let kubeconfig = service_account_kubeconfig(&client, &spaces.names[0]).await;
    let controller = start_controller(&kubeconfig, &spaces, &settings.controller_args);
    let pid = controller.pid();
    // Only the bench's Canaries exist on this control plane.
    let phases = watch_phases(Api::all(client.clone()));
    println!(
        "{} Canaries in {} namespaces (kubernetes blue/green, 1 replica, interval {}), controller args {:?}",
        settings.canaries,
        spaces.names.len(),
        settings.interval,
        settings.controller_args
    );

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    create_all(&spaces, &settings).await;
    let created = started.elapsed();
    until("initialized", Duration::from_secs(3600), || {
        let n = phases.lock().unwrap().count(Phase::Initialized);
        (n == settings.canaries, format!("{n}/{}", settings.canaries))
    })
    .await;
    println!(
        "initialize: all {} Initialized {:.1?} after the first create (creates took {created:.1?}; {}); RSS {} KiB, peak {} KiB",
        settings.canaries,
        started.elapsed(),
        load(),
        kib(pid, "VmRSS:"),
        kib(pid, "VmHWM:")
    );
    println!(
        "  CPU used meanwhile: {}",
        cpu_between(&cpu_before, &cpu_seconds(pid))
    );

    // Idle: every Canary Initialized, nothing changes.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let from = Utc::now();
    tokio::time::sleep(settings.idle).await;
    let idle = audit(from, Utc::now());
    let writes: Vec<&Request> = idle.iter().filter(|r| is_write(&r.verb)).collect();
    let minutes = settings.idle.as_secs_f64() / 60.0;
    println!(
        "idle {:?}: {} writes ({:.4} per Canary per minute), {} requests in all ({}); RSS {} KiB ({})",
        settings.idle,
        writes.len(),
        writes.len() as f64 / settings.canaries as f64 / minutes,
        idle.len(),
        breakdown(&idle, 1.0),
        kib(pid, "VmRSS:"),
        load()
    );

    let changed = reaction(&spaces, &phases, &settings).await;
    outcomes(&phases, &changed, started).await;

    let mut controller = controller;
    for (round, version) in ["v2", "v3"].into_iter().enumerate() {
        if round == 1 {
            let Some(args) = &settings.second_args else {
                break;
            };
            controller = restart(controller, (&kubeconfig, &spaces), args, settings.canaries).await;
        }
        let listen = controller.listen.clone();
        let (names, since, wall) = burst(
            &spaces,
            &phases,
            &settings,
            (&listen, version, controller.pid()),
        )
        .await;
        let end = outcomes(&phases, &names, since).await;
        requests_per_rollout(&audit(wall, end), names.len());
        let pid = controller.pid();
        println!(
            "RSS at the end {} KiB, peak {} KiB ({})",
            kib(pid, "VmRSS:"),
            kib(pid, "VmHWM:"),
            load()
        );
    }
}

fn requests_per_rollout(requests: &[Request], rollouts: usize) {
    let per = rollouts as f64;
    println!(
        "API requests per completed rollout (serin's requests from the burst to the last outcome / {rollouts}): {:.1} ({:.1} writes): {}",
        requests.len() as f64 / per,
        requests.iter().filter(|r| is_write(&r.verb)).count() as f64 / per,
        breakdown(requests, per)
    );
}

/// Replaces the controller by one started with `args`; returns once it has reconciled every
/// Canary once.
async fn restart(
    controller: ControllerProcess,
    (kubeconfig, spaces): (&std::path::Path, &Namespaces),
    args: &[String],
    canaries: usize,
) -> ControllerProcess {
    drop(controller);
    let started = Instant::now();
    let controller = start_controller(kubeconfig, spaces, args);
    let listen = controller.listen.clone();
    loop {
        let (reconciles, _) = reconcile_totals(&listen).await;
        if reconciles >= canaries as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "restarted controller: {reconciles} reconciles after 15 min"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "restarted with {args:?}: every Canary reconciled once after {:.1?} ({}); RSS {} KiB",
        started.elapsed(),
        load(),
        kib(controller.pid(), "VmRSS:")
    );
    controller
}

/// The harness reads these from the environment when the control plane starts (the command
/// sets them: changing the environment of a running process is unsafe).
fn require_cluster_env() {
    for (name, value) in [
        (cluster::AUDIT_ENV, "1"),
        (cluster::CONTROLLER_MANAGER_QPS_ENV, "500"),
    ] {
        if std::env::var_os(name).is_none() {
            panic!("run with {name}={value} (the control plane reads it at start)");
        }
    }
}
