//! A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager
//! on free loopback ports, plus a pod simulator standing in for kubelets and the scheduler
//! (see `pods.rs`). One control plane per test process, a fresh namespace per test.
//!
//! - Binaries come from `KUBEBUILDER_ASSETS` or the cache `tests/cluster/setup.sh` fills.
//! - `SERIN_E2E_KUBECONFIG=path` runs the same tests against an existing cluster instead.
//! - Components run under `setpriv --pdeathsig KILL`, spawned from a thread that never exits,
//!   so they die with the test process however it ends (panic, SIGKILL). Temporary
//!   directories of dead test processes are swept at the next start.
//! - A panic in a test prints the last log lines of any component that died.
#![allow(dead_code)]

pub mod controller;
pub mod history;
pub mod metric_servers;
pub mod pods;
pub mod prometheus;
pub mod rollout;
pub mod workloads;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub const ADMIN_TOKEN: &str = "serin-admin-token";
/// A user with no RBAC permission at all.
pub const NOBODY_TOKEN: &str = "serin-nobody-token";
const VERSION_DIR: &str = "kube-1.20.2";
/// Set (to anything) before the control plane starts: the API server writes an audit log of
/// every request made by a ServiceAccount (serin's, not the admin's, the controller-manager's
/// or the pod simulator's) to [`ControlPlane::audit_log`]. For benchmarks counting serin's
/// requests from the server's side.
pub const AUDIT_ENV: &str = "SERIN_CLUSTER_AUDIT";
/// Requests a second (and burst) of the controller-manager's client, when set before the
/// control plane starts (default 20, burst 30).
pub const CONTROLLER_MANAGER_QPS_ENV: &str = "SERIN_CLUSTER_CONTROLLER_MANAGER_QPS";
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  userGroups: [\"system:serviceaccounts\"]
- level: None
";

pub struct ControlPlane {
    pub kubeconfig: PathBuf,
    /// Empty when running against an external cluster.
    dir: PathBuf,
    assets: PathBuf,
    ports: Ports,
    components: Mutex<BTreeMap<&'static str, Component>>,
    pub external: bool,
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
}

struct Component {
    child: Child,
    log: PathBuf,
}

static PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane of this test process, started on first use.
pub fn cluster() -> &'static ControlPlane {
    PLANE.get_or_init(|| match ControlPlane::start() {
        Ok(plane) => plane,
        Err(error) => panic!("test control plane: {error}"),
    })
}

/// An admin client of the control plane.
pub async fn client() -> Client {
    cluster().client(None).await
}

impl ControlPlane {
    fn start() -> Result<Self, String> {
        if let Ok(path) = std::env::var("SERIN_E2E_KUBECONFIG") {
            return Ok(Self {
                kubeconfig: PathBuf::from(path),
                dir: PathBuf::new(),
                assets: PathBuf::new(),
                ports: Ports {
                    etcd_client: 0,
                    etcd_peer: 0,
                    apiserver: 0,
                },
                components: Mutex::new(BTreeMap::new()),
                external: true,
            });
        }
        let assets = assets()?;
        for tool in ["setpriv", "openssl"] {
            if which(tool).is_none() {
                return Err(format!(
                    "`{tool}` is missing: run `apt-get install -y {}`",
                    if tool == "setpriv" {
                        "util-linux"
                    } else {
                        tool
                    }
                ));
            }
        }
        sweep_stale_dirs();
        let mut last_error = String::new();
        // A port taken between choosing and binding it is retried on fresh ports.
        for _attempt in 0..3 {
            let plane = Self::prepare(&assets)?;
            match plane.boot() {
                Ok(()) => {
                    install_panic_report();
                    pods::start_simulator(plane.kubeconfig.clone());
                    return Ok(plane);
                }
                Err(error) if error.contains("address already in use") => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// A second control plane of etcd and kube-apiserver only (no controller-manager, no pod
    /// simulator): another cluster, e.g. the one holding a service mesh's configuration.
    /// Its components die with the test process.
    pub fn start_second() -> Self {
        let assets = assets().unwrap_or_else(|e| panic!("second control plane: {e}"));
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let plane =
                Self::prepare(&assets).unwrap_or_else(|e| panic!("second control plane: {e}"));
            let booted = plane
                .spawn_etcd()
                .and_then(|()| plane.spawn_apiserver())
                .and_then(|()| plane.wait_ready());
            match booted {
                Ok(()) => return plane,
                Err(error) if error.contains("address already in use") => last_error = error,
                Err(error) => panic!("second control plane: {error}"),
            }
        }
        panic!("second control plane: {last_error}")
    }

    fn prepare(assets: &Path) -> Result<Self, String> {
        let dir =
            std::env::temp_dir().join(format!("serin-e2e-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(dir.join("certs"))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let ports = Ports {
            etcd_client: free_port()?,
            etcd_peer: free_port()?,
            apiserver: free_port()?,
        };
        let plane = Self {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            assets: assets.to_path_buf(),
            ports,
            components: Mutex::new(BTreeMap::new()),
            external: false,
        };
        plane.write_credentials()?;
        start_janitor(&plane.dir)?;
        Ok(plane)
    }

    fn write_credentials(&self) -> Result<(), String> {
        let key = self.dir.join("sa.key");
        run(Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"))?;
        run(Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(self.dir.join("sa.pub")))?;
        let tokens = format!(
            "{ADMIN_TOKEN},admin,admin-uid,system:masters\n{NOBODY_TOKEN},nobody,nobody-uid\n"
        );
        write(&self.dir.join("tokens.csv"), &tokens)?;
        write(
            &self.kubeconfig,
            &kubeconfig(self.ports.apiserver, ADMIN_TOKEN),
        )
    }

    fn boot(&self) -> Result<(), String> {
        self.spawn_etcd()?;
        self.spawn_apiserver()?;
        self.wait_ready()?;
        self.spawn_controller_manager()
    }

    fn spawn_etcd(&self) -> Result<(), String> {
        let Ports {
            etcd_client,
            etcd_peer,
            ..
        } = self.ports;
        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let mut command = Command::new(self.assets.join("etcd"));
        command
            .arg("--data-dir")
            .arg(self.dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg(format!("--initial-cluster=default={peer_url}"))
            // Test data is thrown away: skip fsync, the slowest part of etcd on a busy disk.
            .arg("--unsafe-no-fsync");
        self.spawn("etcd", command)
    }

    fn spawn_apiserver(&self) -> Result<(), String> {
        let dir = &self.dir;
        let mut command = Command::new(self.assets.join("kube-apiserver"));
        command
            .arg(format!(
                "--etcd-servers=http://127.0.0.1:{}",
                self.ports.etcd_client
            ))
            .arg(format!("--secure-port={}", self.ports.apiserver))
            .args([
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--insecure-port=0",
            ])
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg(format!(
                "--token-auth-file={}",
                dir.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-key-file={}",
                dir.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                dir.join("sa.key").display()
            ))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .args([
                "--service-cluster-ip-range=10.0.0.0/16",
                "--allow-privileged=true",
            ]);
        if std::env::var_os(AUDIT_ENV).is_some() {
            let policy = dir.join("audit-policy.yaml");
            write(&policy, AUDIT_POLICY)?;
            command
                .arg(format!("--audit-policy-file={}", policy.display()))
                .arg(format!("--audit-log-path={}", self.audit_log().display()));
        }
        self.spawn("kube-apiserver", command)
    }

    fn spawn_controller_manager(&self) -> Result<(), String> {
        let mut command = Command::new(self.assets.join("kube-controller-manager"));
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            // No cloud, no kubelets: node IPAM and lifecycle would fight the pod simulator.
            .arg("--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle")
            .args([
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--port=0",
                "--secure-port=0",
            ])
            .arg(format!(
                "--service-account-private-key-file={}",
                self.dir.join("sa.key").display()
            ));
        // Its client defaults to 20 requests a second (burst 30): enough for tests, the
        // bottleneck of a benchmark creating thousands of ReplicaSets and Pods.
        if let Some(qps) = std::env::var_os(CONTROLLER_MANAGER_QPS_ENV) {
            let qps = qps.to_string_lossy();
            command
                .arg(format!("--kube-api-qps={qps}"))
                .arg(format!("--kube-api-burst={qps}"));
        }
        self.spawn("kube-controller-manager", command)
    }

    /// Starts a component under `setpriv --pdeathsig KILL` from the spawner thread, logging to
    /// a file beside the others.
    fn spawn(&self, name: &'static str, command: Command) -> Result<(), String> {
        let log = self.dir.join(format!("{name}.log"));
        let child = spawn_bound_to_process(command, &log)?;
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        components.insert(name, Component { child, log });
        Ok(())
    }

    /// Polls `/readyz` until the API server answers "ok".
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let kubeconfig = self.kubeconfig.clone();
        let ready = move || -> bool {
            on_fresh_runtime(async move {
                let Ok(config) = Kubeconfig::read_from(&kubeconfig) else {
                    return false;
                };
                let Ok(config) =
                    Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await
                else {
                    return false;
                };
                let Ok(client) = Client::try_from(config) else {
                    return false;
                };
                let request = http::Request::get("/readyz").body(Vec::new());
                match request {
                    Ok(request) => client
                        .request_text(request)
                        .await
                        .is_ok_and(|body| body == "ok"),
                    Err(_) => false,
                }
            })
        };
        while Instant::now() < deadline {
            if let Some(report) = self.dead_components() {
                return Err(format!("a component exited while starting:\n{report}"));
            }
            if ready.clone()() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "kube-apiserver not ready within 90s\n{}",
            self.log_tails()
        ))
    }

    /// The audit log the API server writes when [`AUDIT_ENV`] is set: one JSON object a line.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// A client authenticated with `token` (admin when None).
    pub async fn client(&self, token: Option<&str>) -> Client {
        let mut config = self.config().await;
        if let Some(token) = token {
            config.auth_info.token = Some(token.to_string().into());
        }
        Client::try_from(config).unwrap_or_else(|e| panic!("building a client: {e}"))
    }

    pub async fn config(&self) -> Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig.display()));
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", self.kubeconfig.display()))
    }

    /// Kills kube-apiserver (SIGKILL) and starts it again on the same port and etcd; returns
    /// when it is ready. Only for the local control plane.
    pub fn restart_apiserver(&self) {
        self.restart("kube-apiserver", Self::spawn_apiserver);
    }

    /// Kills etcd (SIGKILL) and starts it again on the same ports and data; returns when the
    /// API server is ready again (its readiness includes its etcd connection). Only for the
    /// local control plane.
    pub fn restart_etcd(&self) {
        self.restart("etcd", Self::spawn_etcd);
    }

    /// Kills the component `name`, keeps its log beside the new one (`<name>.log.1`, ...),
    /// starts it with `spawn` and waits for the API server to be ready.
    fn restart(&self, name: &'static str, spawn: fn(&Self) -> Result<(), String>) {
        assert!(
            !self.external,
            "restarting {name} needs the local control plane"
        );
        {
            let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut component) = components.remove(name) {
                let _ = component.child.kill();
                let _ = component.child.wait();
                let kept = (1..)
                    .map(|n| component.log.with_extension(format!("log.{n}")))
                    .find(|path| !path.exists())
                    .unwrap_or_else(|| component.log.with_extension("log.old"));
                let _ = std::fs::rename(&component.log, kept);
            }
        }
        spawn(self)
            .and_then(|()| self.wait_ready())
            .and_then(|()| self.wait_authorizing())
            .unwrap_or_else(|e| panic!("restarting {name}: {e}"));
    }

    /// Polls until the API server's RBAC authorizer allows what bootstrap bindings grant,
    /// through a ClusterRoleBinding and a namespaced RoleBinding. Kubernetes 1.20's `/readyz`
    /// says ok before the authorizer has read them, so a restarted API server refuses every
    /// ServiceAccount for a while (403); from 1.21 on `/readyz` waits for this itself
    /// (`informer-sync`), which this stands in for.
    fn wait_authorizing(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let kubeconfig = self.kubeconfig.clone();
        while Instant::now() < deadline {
            let kubeconfig = kubeconfig.clone();
            if on_fresh_runtime(async move { rbac_allows_bootstrap_grants(&kubeconfig).await }) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err("the API server's RBAC authorizer allowed no bootstrap grant within 90s".into())
    }

    /// The last log lines of every component that exited, if any did.
    fn dead_components(&self) -> Option<String> {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let dead: Vec<String> = components
            .iter_mut()
            .filter_map(|(name, c)| {
                let status = c.child.try_wait().ok().flatten()?;
                Some(format!(
                    "--- {name} exited ({status}); last lines of {}:\n{}",
                    c.log.display(),
                    tail(&c.log, 25)
                ))
            })
            .collect();
        (!dead.is_empty()).then(|| dead.join("\n"))
    }

    fn log_tails(&self) -> String {
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        components
            .iter()
            .map(|(name, c)| {
                format!(
                    "--- {name}, last lines of {}:\n{}",
                    c.log.display(),
                    tail(&c.log, 15)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether RBAC allows what two bootstrap bindings grant: `get /api` to every authenticated
/// user (ClusterRoleBinding `system:discovery`) and reading Secrets in kube-system to the
/// bootstrap signer (RoleBinding `system:controller:bootstrap-signer`).
async fn rbac_allows_bootstrap_grants(kubeconfig: &Path) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    use kube::api::{Api, PostParams};
    let Ok(config) = Kubeconfig::read_from(kubeconfig) else {
        return false;
    };
    let Ok(config) = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await
    else {
        return false;
    };
    let Ok(client) = Client::try_from(config) else {
        return false;
    };
    let reviews: Api<SubjectAccessReview> = Api::all(client);
    let grants = [
        serde_json::json!({"user": "someone", "groups": ["system:authenticated"],
            "nonResourceAttributes": {"path": "/api", "verb": "get"}}),
        serde_json::json!({"user": "system:serviceaccount:kube-system:bootstrap-signer",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {"namespace": "kube-system", "verb": "list", "resource": "secrets"}}),
    ];
    for spec in grants {
        let Ok(review) = serde_json::from_value::<SubjectAccessReview>(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec,
        })) else {
            return false;
        };
        match reviews.create(&PostParams::default(), &review).await {
            Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
            _ => return false,
        }
    }
    true
}

/// Runs a future to completion on a new thread with its own runtime: callers may already be
/// inside a test's runtime, where blocking on another one is not allowed.
pub fn on_fresh_runtime<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime")
            .block_on(future)
    })
    .join()
    .expect("runtime thread panicked")
}

fn assets() -> Result<PathBuf, String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default()
        .join("serin")
        .join(VERSION_DIR);
    let dir = std::env::var_os("KUBEBUILDER_ASSETS").map_or(cache, PathBuf::from);
    let missing: Vec<&str> = ["etcd", "kube-apiserver", "kube-controller-manager"]
        .into_iter()
        .filter(|bin| !dir.join(bin).exists())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!(
            "{} missing in {}: run `bash tests/cluster/setup.sh` (builds and caches them), or set KUBEBUILDER_ASSETS to a directory holding them, or SERIN_E2E_KUBECONFIG to test against an existing cluster",
            missing.join(", "),
            dir.display()
        ))
    }
}

/// Spawns a prepared command from one long-lived thread: `PR_SET_PDEATHSIG` fires when the
/// *thread* that spawned a child exits, so children of short-lived test threads would die with
/// their test.
fn spawn_from_keeper(command: Command) -> Result<Child, String> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("component-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // Keep this thread (the children's parent) alive as long as the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the component-spawner thread");
        Mutex::new(tx)
    });
    let program = command.get_program().to_string_lossy().into_owned();
    let (reply, answer) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|e| e.to_string())?;
    answer
        .recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("starting {program}: {e}"))
}

/// Starts a component, killed when this process ends, logging to `log`.
fn spawn_bound_to_process(command: Command, log: &Path) -> Result<Child, String> {
    let file =
        std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut bound = bound_to_process(&command, "KILL");
    bound.stdin(Stdio::null()).stdout(file).stderr(err);
    spawn_from_keeper(bound)
}

/// `command` under `setpriv --pdeathsig SIGNAL`: it gets SIGNAL when this process ends.
fn bound_to_process(command: &Command, signal: &str) -> Command {
    let mut bound = Command::new("setpriv");
    bound
        .args(["--pdeathsig", signal, "--"])
        .arg(command.get_program())
        .args(command.get_args());
    bound
}

/// A shell that waits for this process to end (SIGTERM), then removes `dir` (after the
/// components, killed at the same moment, have let go of it).
fn start_janitor(dir: &Path) -> Result<(), String> {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(r#"trap 'kill $! 2>/dev/null; sleep 1; rm -rf "$0"; exit 0' TERM; while :; do sleep 3600 & wait $!; done"#).arg(dir);
    let mut janitor = bound_to_process(&shell, "TERM");
    janitor
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_from_keeper(janitor).map(drop)
}

/// Removes temporary directories left by test processes that no longer run.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("serin-e2e-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Adds the dead components' logs to any panic message, so a failing test says why.
fn install_panic_report() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if let Some(report) = PLANE.get().and_then(ControlPlane::dead_components) {
            eprintln!("\ncontrol plane component(s) died:\n{report}");
        }
    }));
}

pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return "(no log)".into();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A kubeconfig for the local API server. Its serving certificate is self-signed on loopback,
/// so verification is skipped (nothing leaves 127.0.0.1).
fn kubeconfig(port: u16, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: serin-test
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: {token}
contexts:
- name: serin-test
  context:
    cluster: serin-test
    user: admin
current-context: serin-test
"
    )
}

/// A namespace of its own for one test: `t-<name>-<suffix>`.
pub async fn namespace(client: &Client, name: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let full = format!("t-{name}-{:x}{n}", (nanos ^ std::process::id()) & 0xffffff);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": full}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {full}: {e}"));
    full
}

/// Polls `check` every 200 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
