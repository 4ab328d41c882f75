//! `serin loadtester`: a webhook receiver that exercises a canary so it never fails for want of
//! traffic, and holds the gates people open and close.
//!
//! - `POST /` (a `rollout` or `pre-rollout` hook): runs the HTTP load its metadata describes
//!   ([`spec`]) with serin's own generator ([`generator`]). One load per canary and target:
//!   the next hook call keeps it running, so the load follows the rollout and stops when the
//!   calls stop (after `duration`, or `--idle-timeout` without one), when a call reports the
//!   rollout over (phase Succeeded or Failed, e.g. a post-rollout hook), or on `POST /stop`.
//! - `/gate/*` and `/rollback/*`: gates ([`gates`]) kept in a ConfigMap.
//! - `GET /loads`, `GET /gates`: what runs and what is open; `GET /healthz`.
//!
//! Everything but `/healthz` needs a bearer token ([`auth`]): the token of the namespace the
//! payload names, or the key of `--token-file`, which alone lists everything. Every
//! load stays within `--max-rate`, `--max-concurrency` and `--max-duration`, and their number
//! within `--max-loads`.

pub mod auth;
pub mod gates;
pub mod generator;
pub mod spec;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use generator::Load;
use spec::LoadSpec;
use stats::Summary;

/// `serin loadtester` flags.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Options {
    /// Without a subcommand the tester serves.
    #[command(subcommand)]
    pub tool: Option<Tool>,
    /// Address serving the hooks, gates and /healthz.
    #[arg(long, env = "SERIN_LOADTESTER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Namespace of the ConfigMap holding the gates (default: the pod's namespace from
    /// POD_NAMESPACE, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Name of the ConfigMap holding the gates.
    #[arg(long, default_value = "serin-loadtester-gates")]
    pub gates_configmap: String,
    /// A load without `duration` stops when no hook call has renewed it for this long (the
    /// canary was deleted, or the controller stopped calling).
    #[arg(long, default_value = "10m")]
    pub idle_timeout: crate::api::duration::Duration,
    /// File holding the key (mount it from a Secret): the admin token, and what each
    /// namespace's token is derived from (`serin loadtester token`). Read again at each
    /// request, so a rotation needs no restart.
    #[arg(long, env = "SERIN_LOADTESTER_TOKEN_FILE", required = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// Most requests per second one load may ask for.
    #[arg(long, default_value_t = 1000.0)]
    pub max_rate: f64,
    /// Most requests in flight one load may ask for (hey's default `-c` is 50).
    #[arg(long, default_value_t = 100)]
    pub max_concurrency: usize,
    /// Longest `duration` one load may ask for.
    #[arg(long, default_value = "1h")]
    pub max_duration: crate::api::duration::Duration,
    /// Most loads running at once (each canary, method and URL is one load): the rate limit
    /// bounds one load, this bounds their sum.
    #[arg(long, default_value_t = 20)]
    pub max_loads: usize,
    /// Most gates kept; a ConfigMap holds at most 1 MiB, so at most 2000.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub max_gates: u16,
    /// Log lines as text or JSON.
    #[arg(long, env = "SERIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::controller::LogFormat,
}

/// What `serin loadtester` does besides serving.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Tool {
    /// Print the bearer token of one namespace, derived from the key in --token-file; store it
    /// in a Secret of that namespace for its Canaries' hooks (docs/webhooks.md).
    Token {
        /// The namespace the token grants.
        #[arg(long)]
        namespace: String,
        /// File holding the load tester's key (the content of its --token-file).
        #[arg(long, env = "SERIN_LOADTESTER_TOKEN_FILE")]
        token_file: std::path::PathBuf,
    },
}

impl Tool {
    /// Runs the tool; what it prints goes to stdout.
    pub fn run(&self) -> anyhow::Result<()> {
        match self {
            Tool::Token {
                namespace,
                token_file,
            } => {
                gates::checked_namespace(namespace)
                    .map_err(|reason| anyhow::anyhow!("--namespace: {reason}"))?;
                let key = auth::TokenFile {
                    path: token_file.clone(),
                }
                .read()?;
                println!("{}", auth::namespace_token(&key, namespace));
                Ok(())
            }
        }
    }
}

/// The webhook payload (serin's and Flagger's); gate requests need only name and namespace.
#[derive(Debug, Deserialize)]
struct Payload {
    name: String,
    namespace: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    checksum: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// One load per canary, method and URL.
type Key = (String, String, String, String);

struct Tester {
    http: reqwest::Client,
    loads: Mutex<HashMap<Key, Arc<Load>>>,
    /// The last finished loads, newest last, for `/loads`.
    finished: Mutex<Vec<Report>>,
    /// None when started without Kubernetes access: load works, gates answer 503.
    gates: Option<gates::Store>,
    limits: spec::Limits,
    max_loads: usize,
    idle: Duration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    namespace: String,
    name: String,
    method: String,
    url: String,
    target_rate: f64,
    concurrency: usize,
    running: bool,
    summary: Summary,
}

const KEEP_FINISHED: usize = 50;

/// Runs the load tester until SIGTERM/SIGINT.
/// `kube`: the cluster of the command line's `--kubeconfig`/`--context` (Err: none usable).
pub async fn run(options: Options, kube: anyhow::Result<kube::Config>) -> anyhow::Result<()> {
    let Some(path) = options.token_file.clone() else {
        anyhow::bail!("--token-file (or SERIN_LOADTESTER_TOKEN_FILE) is required");
    };
    let token = auth::TokenFile { path };
    // Refuse to start on a bad token file rather than refuse every request later.
    token.read()?;
    if !(options.max_rate > 0.0 && options.max_rate.is_finite()) {
        anyhow::bail!("--max-rate {}: must be above 0", options.max_rate);
    }
    if options.max_concurrency == 0 || options.max_loads == 0 {
        anyhow::bail!("--max-concurrency and --max-loads must be at least 1");
    }
    let tester = Arc::new(Tester {
        http: crate::hooks::client_builder()
            .build()
            .context("building the HTTP client")?,
        loads: Mutex::new(HashMap::new()),
        finished: Mutex::new(Vec::new()),
        gates: gate_store(&options, kube),
        limits: spec::Limits {
            max_rate: options.max_rate,
            max_concurrency: options.max_concurrency,
            max_duration: options.max_duration.as_std(),
        },
        max_loads: options.max_loads,
        idle: options.idle_timeout.as_std(),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("--listen {}", options.listen))?;
    tracing::info!(address = %options.listen, "load tester serving hooks and gates");
    axum::serve(listener, router(tester, token))
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving")?;
    Ok(())
}

/// The gates' ConfigMap, when Kubernetes can be reached; without it the tester still runs
/// load (e.g. outside a cluster), and says so at start.
fn gate_store(options: &Options, kube: anyhow::Result<kube::Config>) -> Option<gates::Store> {
    match kube.and_then(|config| Ok(kube::Client::try_from(config)?)) {
        Ok(client) => {
            let namespace = options
                .namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string());
            tracing::info!(%namespace, configmap = %options.gates_configmap, "gates kept in a ConfigMap");
            Some(gates::Store::new(
                client,
                &namespace,
                &options.gates_configmap,
                usize::from(options.max_gates),
            ))
        }
        Err(error) => {
            tracing::warn!(%error, "no Kubernetes access: serving load only; gates answer 503");
            None
        }
    }
}

async fn shutdown() {
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

fn router(tester: Arc<Tester>, token: auth::TokenFile) -> axum::Router {
    let open = axum::Router::new().route("/healthz", get(|| async { "ok\n" }));
    axum::Router::new()
        .route("/", post(load))
        .route("/stop", post(stop))
        .route("/loads", get(loads))
        .route("/gates", get(all_gates))
        .route(
            "/gate/approve",
            post(|| async { (StatusCode::OK, "approved\n") }),
        )
        .route(
            "/gate/halt",
            post(|| async { (StatusCode::FORBIDDEN, "halted: this gate never opens\n") }),
        )
        .route("/gate/check", post(|s, p| check(s, p, gates::Kind::Gate)))
        .route(
            "/gate/open",
            post(|s, p| set(s, p, gates::Kind::Gate, true)),
        )
        .route(
            "/gate/close",
            post(|s, p| set(s, p, gates::Kind::Gate, false)),
        )
        .route(
            "/rollback/check",
            post(|s, p| check(s, p, gates::Kind::Rollback)),
        )
        .route(
            "/rollback/open",
            post(|s, p| set(s, p, gates::Kind::Rollback, true)),
        )
        .route(
            "/rollback/close",
            post(|s, p| set(s, p, gates::Kind::Rollback, false)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ))
        .with_state(tester)
        .merge(open)
}

/// A 4xx answer is a "no" that serin does not retry; the text ends up in the event.
fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// The rollout is over for these phases: its loads stop.
fn is_over(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Terminating" | "Terminated")
}

async fn load(State(tester): State<Arc<Tester>>, payload: Json<Payload>) -> Response {
    let Json(payload) = payload;
    if is_over(&payload.phase) {
        let stopped = tester.stop(&payload.namespace, &payload.name);
        return Json(json!({"stopped": stopped})).into_response();
    }
    let from_cmd = payload.metadata.contains_key("cmd");
    let spec = match LoadSpec::from_metadata(&payload.metadata)
        .and_then(|spec| spec.within(&tester.limits, from_cmd).map(|()| spec))
    {
        Ok(spec) => spec,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, error),
    };
    let Some((load, started)) = tester.start_or_renew(&payload, spec) else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} loads are running already (--max-loads): stop one (POST /stop) or wait for one to end",
                tester.max_loads
            ),
        );
    };
    if load.spec.wait {
        let summary = load.finished().await;
        tester.retire();
        let too_many = load
            .spec
            .max_error_ratio
            .is_some_and(|max| summary.error_ratio > max);
        let status = if too_many {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        return (
            status,
            Json(json!({"load": "finished", "summary": summary})),
        )
            .into_response();
    }
    let remaining = load.deadline().saturating_duration_since(Instant::now());
    Json(json!({
        "load": if started { "started" } else { "running" },
        "url": load.spec.url,
        "rate": load.spec.rate,
        "secondsLeft": remaining.as_secs(),
        "summary": load.summary(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Canary {
    name: String,
    namespace: String,
}

async fn stop(State(tester): State<Arc<Tester>>, canary: Json<Canary>) -> Response {
    let stopped = tester.stop(&canary.namespace, &canary.name);
    Json(json!({"stopped": stopped})).into_response()
}

async fn loads(State(tester): State<Arc<Tester>>) -> Response {
    tester.retire();
    let mut reports: Vec<Report> = tester
        .finished
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let running = tester.loads.lock().unwrap_or_else(|p| p.into_inner());
    reports.extend(running.iter().map(|(key, load)| report(key, load)));
    Json(reports).into_response()
}

/// Why gates cannot be served without a ConfigMap.
const NO_GATES: &str = "gates are unavailable: the load tester started without Kubernetes access (they are kept in a ConfigMap)";

fn no_gates() -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, NO_GATES)
}

/// The gate's store and key, or the answer refusing the request.
fn gate<'a>(
    tester: &'a Tester,
    kind: gates::Kind,
    namespace: &str,
    name: &str,
) -> Result<(&'a gates::Store, String), (StatusCode, String)> {
    let key = gates::checked_key(kind, namespace, name)
        .map_err(|reason| (StatusCode::BAD_REQUEST, reason))?;
    let store = tester
        .gates
        .as_ref()
        .ok_or_else(|| (StatusCode::SERVICE_UNAVAILABLE, NO_GATES.to_string()))?;
    Ok((store, key))
}

async fn all_gates(State(tester): State<Arc<Tester>>) -> Response {
    let Some(store) = &tester.gates else {
        return no_gates();
    };
    match store.all().await {
        Ok(all) => Json(all).into_response(),
        Err(error) => refuse(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

async fn check(
    State(tester): State<Arc<Tester>>,
    payload: Json<Payload>,
    kind: gates::Kind,
) -> Response {
    let (store, key) = match gate(&tester, kind, &payload.namespace, &payload.name) {
        Ok(found) => found,
        Err((status, message)) => return refuse(status, message),
    };
    if payload.checksum.len() > gates::MAX_CHECKSUM_LEN {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "checksum: longer than {} characters",
                gates::MAX_CHECKSUM_LEN
            ),
        );
    }
    match store.check(&key, &payload.checksum).await {
        Ok(true) => (StatusCode::OK, format!("{key} is open\n")).into_response(),
        Ok(false) => refuse(
            StatusCode::FORBIDDEN,
            format!(
                "{key} is closed (open it with POST /{}/open)",
                key.split('.').next().unwrap_or("gate")
            ),
        ),
        // serin retries a 5xx, then treats the gate as closed: an unknown state never opens.
        Err(error) => refuse(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

async fn set(
    State(tester): State<Arc<Tester>>,
    canary: Json<Canary>,
    kind: gates::Kind,
    open: bool,
) -> Response {
    let (store, key) = match gate(&tester, kind, &canary.namespace, &canary.name) {
        Ok(found) => found,
        Err((status, message)) => return refuse(status, message),
    };
    let state = if open {
        gates::State::Open { revision: None }
    } else {
        gates::State::Closed
    };
    match store.set(&key, state).await {
        Ok(()) => {
            let word = if open { "opened" } else { "closed" };
            tracing::info!(gate = %key, "{word}");
            (StatusCode::OK, format!("{key} {word}\n")).into_response()
        }
        Err(error @ gates::StoreError::Full { .. }) => refuse(StatusCode::CONFLICT, error),
        Err(error) => refuse(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

fn report(key: &Key, load: &Load) -> Report {
    Report {
        namespace: key.0.clone(),
        name: key.1.clone(),
        method: key.2.clone(),
        url: key.3.clone(),
        target_rate: load.spec.rate,
        concurrency: load.spec.concurrency,
        running: !load.is_finished(),
        summary: load.summary(),
    }
}

impl Tester {
    /// Starts the load, or keeps the running one going; true when started. None when a new
    /// load would exceed `max_loads`.
    fn start_or_renew(&self, payload: &Payload, spec: LoadSpec) -> Option<(Arc<Load>, bool)> {
        self.retire();
        let key: Key = (
            payload.namespace.clone(),
            payload.name.clone(),
            spec.method.to_string(),
            spec.url.clone(),
        );
        let until = Instant::now() + spec.duration.unwrap_or(self.idle);
        let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(load) = loads
            .get(&key)
            .filter(|l| !l.is_finished() && l.spec == spec)
        {
            load.extend(until);
            return Some((load.clone(), false));
        }
        if let Some(old) = loads.remove(&key) {
            // The hook's metadata changed (another rate, say): the new load replaces the old.
            old.stop();
        }
        // A stopped load may still be winding down; its deadline has passed, so it no
        // longer counts.
        let now = Instant::now();
        let running = loads
            .values()
            .filter(|l| !l.is_finished() && l.deadline() > now)
            .count();
        if running >= self.max_loads {
            return None;
        }
        let label = format!("{}/{}", key.0, key.1);
        let load = Load::start(self.http.clone(), spec, until, label);
        loads.insert(key, load.clone());
        Some((load, true))
    }

    /// Stops every load of a canary; their summaries.
    fn stop(&self, namespace: &str, name: &str) -> Vec<Report> {
        let loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        let stopped: Vec<Report> = loads
            .iter()
            .filter(|(k, l)| k.0 == namespace && k.1 == name && !l.is_finished())
            .map(|(key, load)| {
                load.stop();
                report(key, load)
            })
            .collect();
        drop(loads);
        stopped
    }

    /// Moves finished loads to the `finished` list.
    fn retire(&self) {
        let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        let done: Vec<Key> = loads
            .iter()
            .filter(|(_, l)| l.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        for key in done {
            if let Some(load) = loads.remove(&key) {
                finished.push(report(&key, &load));
            }
        }
        let excess = finished.len().saturating_sub(KEEP_FINISHED);
        finished.drain(..excess);
    }
}
