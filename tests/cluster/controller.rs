//! `serin controller` as users run it: its own process, authenticated as a ServiceAccount bound
//! to exactly the ClusterRole in config/rbac.yaml (so a missing permission fails a test), with
//! serin's CRDs and minimal Gateway API / Istio / Contour / Traefik CRDs installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::{cluster, eventually, free_port, spawn_bound_to_process};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn documents<T: serde::de::DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}"))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let value = serde_yaml_ng::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("parsing {path}: {e}"));
            serde_yaml_ng::from_value(value).unwrap_or_else(|e| panic!("decoding {path}: {e}"))
        })
        .collect()
}

use serde::Deserialize;

/// serin's CRDs, the foreign route CRDs and the controller's ClusterRole, applied once per
/// process; returns when the CRDs are served.
pub async fn install(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("serin-tests").force();
    let mut names = Vec::new();
    for path in [
        "crds/serin.yaml",
        "crds/flagger.yaml",
        "tests/fixtures/crds/gateway-api.yaml",
        "tests/fixtures/crds/istio.yaml",
        "tests/fixtures/crds/contour.yaml",
        "tests/fixtures/crds/traefik.yaml",
        "tests/fixtures/crds/smi.yaml",
        "tests/fixtures/crds/apisix.yaml",
        "tests/fixtures/crds/gloo.yaml",
        "tests/fixtures/crds/kuma.yaml",
        "tests/fixtures/crds/consul.yaml",
        "tests/fixtures/crds/emissary.yaml",
        "tests/fixtures/crds/keda.yaml",
        "tests/fixtures/crds/keptn.yaml",
        "tests/fixtures/crds/knative.yaml",
    ] {
        for crd in documents::<CustomResourceDefinition>(path) {
            names.push(crd.name_any());
            crds.patch(&crd.name_any(), &params, &Patch::Apply(&crd))
                .await
                .unwrap_or_else(|e| panic!("applying CRD {}: {e}", crd.name_any()));
        }
    }
    for name in names {
        eventually(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await;
    }
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for role in documents::<ClusterRole>("config/rbac.yaml") {
        roles
            .patch(&role.name_any(), &params, &Patch::Apply(&role))
            .await
            .unwrap_or_else(|e| panic!("applying ClusterRole: {e}"));
    }
}

/// A kubeconfig authenticating as the ServiceAccount `serin` of `namespace`, bound to the
/// `serin` ClusterRole, and to the leader-election Role in `namespace` (Leases nowhere else).
pub async fn service_account_kubeconfig(client: &Client, namespace: &str) -> PathBuf {
    service_account_kubeconfig_as(client, namespace, "serin").await
}

/// The same, bound to the ClusterRole `cluster_role` (applied beforehand) instead.
pub async fn service_account_kubeconfig_as(
    client: &Client,
    namespace: &str,
    cluster_role: &str,
) -> PathBuf {
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("serin-{namespace}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": "serin", "namespace": namespace}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    bind_role(
        client,
        namespace,
        "config/rbac-leader-election.yaml",
        "serin",
    )
    .await;
    account_kubeconfig(client, namespace, "serin", kubeconfig_path(namespace)).await
}

/// Applies the Role in `path` in `namespace` and binds it to the ServiceAccount `account`.
async fn bind_role(client: &Client, namespace: &str, path: &str, account: &str) {
    let params = PatchParams::apply("serin-tests").force();
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    for role in documents::<Role>(path) {
        let name = role.name_any();
        roles
            .patch(&name, &params, &Patch::Apply(&role))
            .await
            .unwrap_or_else(|e| panic!("applying the Role of {path}: {e}"));
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), namespace)
            .patch(&name, &params, &Patch::Apply(&binding))
            .await
            .unwrap_or_else(|e| panic!("binding the Role of {path}: {e}"));
    }
}

/// config/rbac.yaml's ClusterRole under another name, with `change` made to its rules (e.g.
/// the chart's secretsAccess: by-name variant); applied once per name.
pub async fn install_role_variant(
    client: &Client,
    name: &str,
    change: impl Fn(&mut Vec<k8s_openapi::api::rbac::v1::PolicyRule>),
) {
    let params = PatchParams::apply("serin-tests").force();
    for mut role in documents::<ClusterRole>("config/rbac.yaml") {
        role.metadata.name = Some(name.to_string());
        change(role.rules.get_or_insert_with(Vec::new));
        Api::<ClusterRole>::all(client.clone())
            .patch(name, &params, &Patch::Apply(&role))
            .await
            .unwrap_or_else(|e| panic!("applying ClusterRole {name}: {e}"));
    }
}

/// A kubeconfig for `serin loadtester` as the ServiceAccount `serin-loadtester`, bound to
/// the Role in config/loadtester-rbac.yaml (applied in `namespace`).
pub async fn loadtester_kubeconfig(client: &Client, namespace: &str) -> PathBuf {
    bind_role(
        client,
        namespace,
        "config/loadtester-rbac.yaml",
        "serin-loadtester",
    )
    .await;
    let path = work_dir().join(format!("kubeconfig-{namespace}-loadtester"));
    account_kubeconfig(client, namespace, "serin-loadtester", path).await
}

/// The bearer token the tests' load testers accept.
pub const LOADTESTER_TOKEN: &str = "serin-tests-loadtester-token-0123456789";

/// A file holding [`LOADTESTER_TOKEN`], as a Secret mounted in the tester's pod would.
pub fn loadtester_token_file() -> PathBuf {
    // One file per call: tests run in parallel processes, and a file rewritten while a
    // tester reads it would be empty for a moment.
    static WRITTEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = work_dir().join(format!("loadtester-token-{}-{n}", std::process::id()));
    std::fs::write(&path, format!("{LOADTESTER_TOKEN}\n")).expect("writing the token file");
    path
}

/// Creates the ServiceAccount `account` (unless it exists, e.g. made by the Helm chart) and
/// writes a kubeconfig using its token to `path`.
pub async fn account_kubeconfig(
    client: &Client,
    namespace: &str,
    account: &str,
    path: PathBuf,
) -> PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let object: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": account}})).unwrap();
    match accounts.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating ServiceAccount {account}: {e}"),
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = format!("{account}-token");
    let token_secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": secret_name, "annotations": {"kubernetes.io/service-account.name": account}},
        "type": "kubernetes.io/service-account-token",
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &token_secret)
        .await
        .unwrap();
    let token = eventually("service account token", Duration::from_secs(30), || {
        let secrets = secrets.clone();
        let secret_name = secret_name.clone();
        async move {
            let secret = secrets.get(&secret_name).await.ok()?;
            let token = secret.data?.get("token")?.0.clone();
            String::from_utf8(token).ok()
        }
    })
    .await;
    let admin = std::fs::read_to_string(&cluster().kubeconfig).unwrap();
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&admin).unwrap();
    let users = config["users"].as_sequence_mut().expect("kubeconfig users");
    for user in users {
        user["user"] = serde_yaml_ng::from_str(&format!("{{token: {token}}}")).unwrap();
    }
    std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    path
}

/// Where `service_account_kubeconfig` wrote the kubeconfig of `namespace`.
pub fn kubeconfig_path(namespace: &str) -> PathBuf {
    work_dir().join(format!("kubeconfig-{namespace}"))
}

pub fn work_dir() -> PathBuf {
    let dir = &cluster().dir;
    if dir.as_os_str().is_empty() {
        std::env::temp_dir()
    } else {
        dir.clone()
    }
}

/// A running `serin controller` (or `serin loadtester`); killed (SIGKILL) when dropped.
pub struct ControllerProcess {
    child: Child,
    pub log: PathBuf,
    pub listen: String,
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl ControllerProcess {
    /// Starts the controller for `namespace` with extra flags.
    pub fn start(kubeconfig: &Path, namespace: &str, extra: &[&str]) -> Self {
        Self::start_command(kubeconfig, "controller", namespace, extra)
    }

    /// Starts `serin loadtester` keeping its gates in `namespace`, accepting
    /// [`LOADTESTER_TOKEN`], with extra flags.
    pub fn loadtester(kubeconfig: &Path, namespace: &str, extra: &[&str]) -> Self {
        let token = loadtester_token_file();
        let mut args = vec!["--token-file", token.to_str().expect("UTF-8 path")];
        args.extend_from_slice(extra);
        Self::start_command(kubeconfig, "loadtester", namespace, &args)
    }

    /// Starts `serin` with exactly `args` (e.g. a Deployment's container args), listening on
    /// `listen`.
    pub fn start_with_args(kubeconfig: &Path, args: Vec<String>, listen: String) -> Self {
        let log = log_path(&args[0], "custom");
        Self {
            child: spawn(kubeconfig, &args, &log),
            log,
            listen,
            kubeconfig: kubeconfig.to_path_buf(),
            args,
        }
    }

    fn start_command(kubeconfig: &Path, command: &str, namespace: &str, extra: &[&str]) -> Self {
        let port = free_port().unwrap();
        let mut args: Vec<String> = vec![
            command.into(),
            "--namespace".into(),
            namespace.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = log_path(command, namespace);
        Self {
            child: spawn(kubeconfig, &args, &log),
            log,
            listen: format!("127.0.0.1:{port}"),
            kubeconfig: kubeconfig.to_path_buf(),
            args,
        }
    }

    /// SIGKILL, as a node failure or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same controller again (after `kill`), logging to a new file.
    pub fn restart(&mut self) {
        self.kill();
        self.log = log_path(&self.args[0], &self.args[2]);
        self.child = spawn(&self.kubeconfig, &self.args, &self.log);
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The controller's process id (setpriv and env exec into it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill();
    }
}

/// A log file of its own for every process started, so two replicas in one
/// namespace (leader election) or a restart never write into the same file.
fn log_path(command: &str, namespace: &str) -> PathBuf {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    work_dir().join(format!("serin-{command}-{namespace}-{n}.log"))
}

fn spawn(kubeconfig: &Path, args: &[String], log: &Path) -> Child {
    // `env` carries the variables: the spawner keeps only program and arguments.
    let mut command = Command::new("env");
    command
        .arg(format!("KUBECONFIG={}", kubeconfig.display()))
        .arg("RUST_LOG=info,serin=debug")
        .arg(env!("CARGO_BIN_EXE_serin"))
        .args(args);
    spawn_bound_to_process(command, log).unwrap_or_else(|e| panic!("starting serin: {e}"))
}
