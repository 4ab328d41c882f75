//! The `serin` commands for people and pipelines against the real control plane, run as a user
//! runs them: the binary with a kubeconfig, its output and exit codes. The rollouts are driven
//! by `serin controller` in its own process.

mod cluster;
mod mock;

use std::path::Path;
use std::process::{Command, Output};

use cluster::cluster;
use cluster::rollout::{Setup, setup};
use cluster::workloads::Readiness;
use serde_json::{Value, json};
use serin::api::Phase;

fn run(program: &Path, args: &[&str], path: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("KUBECONFIG", &cluster().kubeconfig)
        .env("NO_COLOR", "1");
    if let Some(dir) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{old}", dir.display()));
    }
    command.output().unwrap()
}

/// `serin ARGS -n <test namespace>`; (exit code, stdout, stderr). Run off the test's runtime,
/// which must keep serving the mock webhooks meanwhile.
async fn serin(s: &Setup, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["-n".to_string(), s.ns.clone()]);
    let out = tokio::task::spawn_blocking(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run(Path::new(env!("CARGO_BIN_EXE_serin")), &all, None)
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The line of `name` in `serin get`'s table, as words.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split("   ")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Steps of 25% up to 50%, with a gate of type `gate` at `url`.
fn gated(gate: &str, url: &str) -> Value {
    json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "go-live", "type": gate, "url": url}]})
}

#[tokio::test]
async fn get_status_requests_and_wait_follow_a_rollout_through_every_phase() {
    let s = setup("cli", &[]).await;
    let closed = mock::serve(|_| mock::Reply::status(403, "closed by the release manager")).await;
    s.create_deployment("web", Readiness::Ready).await;
    s.create_canary("web", gated("confirm-promotion", &closed.url), json!({}))
        .await;
    s.create_deployment("held", Readiness::Ready).await;
    s.create_canary(
        "held",
        gated("confirm-traffic-increase", &closed.url),
        json!({}),
    )
    .await;
    s.wait_phase("web", Phase::Initialized).await;
    s.wait_phase("held", Phase::Initialized).await;

    // A request the controller would ignore is refused with the reason, and not sent.
    let (code, out, err) = serin(&s, &["promote", "web"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "promote refused: canary {}/web: step does not apply in phase Initialized",
            s.ns
        )),
        "{err}"
    );
    assert!(!out.contains("acknowledged"), "{out}");
    let annotations = s.canaries().get("web").await.unwrap().metadata.annotations;
    assert!(
        annotations.is_none_or(|a| !a.contains_key("serin.dev/request")),
        "a refused request was sent"
    );

    // Initialized.
    let (code, table, _) = serin(&s, &["get"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "PHASE", "WEIGHT", "FAILED", "REVISION", "AGE"]
    );
    assert_eq!(row(&table, "web")[1..4], ["Initialized", "0%", "0/2"]);
    // Nothing to roll out: waiting for "settled" ends at once.
    let (code, out, _) = serin(&s, &["wait", "web", "--for", "settled", "--timeout", "30s"]).await;
    assert_eq!(code, 0, "{out}");

    // Progressing, held before its next step; WaitingPromotion, held at the gate.
    s.gitops_apply("held", "v2").await;
    s.gitops_apply("web", "v2").await;
    s.wait_phase("held", Phase::Progressing).await;
    s.wait_phase("web", Phase::WaitingPromotion).await;
    let (_, table, _) = serin(&s, &["get"]).await;
    assert_eq!(row(&table, "held")[1..3], ["Progressing", "25%"]);
    assert_eq!(row(&table, "web")[1..3], ["WaitingPromotion", "50%"]);
    let (code, status, _) = serin(&s, &["status", "web"]).await;
    assert_eq!(code, 0);
    let ns = &s.ns;
    for expected in [
        format!("Canary {ns}/web   WaitingPromotion"),
        "Target       Deployment/web".to_string(),
        "Strategy     canary, weights 25% → 50% (every 1s)".to_string(),
        "Progress     [####################] step 2 of 2, canary weight 50%".to_string(),
        "Failed       0 of 2 allowed".to_string(),
    ] {
        assert!(status.contains(&expected), "{expected:?} not in\n{status}");
    }
    let gate_line = status
        .lines()
        .find(|l| l.trim_start().starts_with("go-live"))
        .unwrap_or_else(|| panic!("no gate in\n{status}"));
    assert!(
        gate_line.contains("confirm-promotion") && gate_line.contains("closed"),
        "{gate_line}"
    );
    assert!(
        gate_line.contains("closed by the release manager"),
        "{gate_line}"
    );
    assert!(status.contains("Events"), "{status}");
    let (_, held, _) = serin(&s, &["status", "held"]).await;
    assert!(held.contains("step 1 of 2, canary weight 25%"), "{held}");

    // Scripts read a Kubernetes List, as kubectl prints one.
    let (_, json_out, _) = serin(&s, &["get", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&json!("v1"), &json!("List"))
    );
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "Canary");
    assert_eq!(items[1]["metadata"]["name"], "web");
    let (_, yaml_out, _) = serin(&s, &["get", "-o", "yaml"]).await;
    let list: Value = serde_yaml_ng::from_str(&yaml_out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["apiVersion"], "serin.dev/v1beta1");
    let (_, yaml_out, _) = serin(&s, &["status", "web", "-o", "yaml"]).await;
    assert!(yaml_out.contains("phase: WaitingPromotion"), "{yaml_out}");

    // A pipeline waiting on a held rollout times out with exit 2.
    let (code, _, err) = serin(&s, &["wait", "web", "--timeout", "2s"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not settled within 2s"), "{err}");

    // Manual requests, acknowledged by the controller.
    let (code, out, _) = serin(&s, &["pause", "web"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pause requested") && out.contains("acknowledged"),
        "{out}"
    );
    let (_, table, _) = serin(&s, &["get"]).await;
    assert_eq!(row(&table, "web")[1], "WaitingPromotion (paused)");
    assert_eq!(serin(&s, &["resume", "web"]).await.0, 0);
    assert_eq!(serin(&s, &["promote", "web", "--full"]).await.0, 0);
    let (code, out, _) = serin(
        &s,
        &["wait", "web", "--for", "promoted", "--timeout", "90s"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("promoted (phase Succeeded)"), "{out}");
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    let (_, table, _) = serin(&s, &["get"]).await;
    assert_eq!(row(&table, "web")[1..3], ["Succeeded", "0%"]);

    // Right after an apply the previous release's "Succeeded" is not the answer.
    s.gitops_apply("web", "v3").await;
    let (code, _, err) = serin(&s, &["wait", "web", "--for", "settled", "--timeout", "3s"]).await;
    assert_eq!(code, 2, "answered with the old revision's result: {err}");
    s.wait_phase("web", Phase::WaitingPromotion).await;
    assert_eq!(serin(&s, &["abort", "web"]).await.0, 0);
    let (code, out, _) = serin(
        &s,
        &["wait", "web", "--for", "promoted", "--timeout", "90s"],
    )
    .await;
    assert_eq!(code, 1, "rolled back: {out}");
    assert!(out.contains("rolled back (phase Failed)"), "{out}");
    let (code, _, _) = serin(&s, &["wait", "web", "--for", "failed", "--timeout", "10s"]).await;
    assert_eq!(code, 0);
    let (_, table, _) = serin(&s, &["get"]).await;
    assert_eq!(row(&table, "web")[1], "Failed");
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    // On an ended rollout `status --watch` shows it once and ends, with `wait`'s exit code.
    let (code, out, err) = serin(&s, &["status", "web", "--watch"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Failed"), "{out}");
    assert!(err.contains("rolled back (phase Failed)"), "{err}");
    // Retry runs the same revision again, up to the gate; `status --watch` follows it to the
    // end of the rollout once it is promoted.
    assert_eq!(serin(&s, &["retry", "web"]).await.0, 0);
    s.wait_phase("web", Phase::WaitingPromotion).await;
    let mut watch = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["status", "web", "--watch", "-n", &s.ns])
        .env("KUBECONFIG", &cluster().kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    // The reader reports the first frame before the promotion is sent, so the watch sees the
    // rollout held at the gate first.
    let (first_frame, first_frame_seen) = std::sync::mpsc::channel();
    let frames = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("Canary ") {
                let _ = first_frame.send(());
            }
        }
        seen
    });
    tokio::task::spawn_blocking(move || {
        first_frame_seen
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("serin status --watch printed no frame")
    })
    .await
    .unwrap();
    assert_eq!(serin(&s, &["promote", "web"]).await.0, 0);
    s.wait_phase("web", Phase::Succeeded).await;
    // The watch ends by itself: stdout closes when the process exits.
    let joined = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || frames.join().unwrap()),
    )
    .await;
    let frames = match joined {
        Ok(frames) => frames.unwrap(),
        Err(_) => {
            let _ = watch.kill();
            panic!("serin status --watch did not end when the rollout ended");
        }
    };
    let exit = watch.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{frames}");
    let phases: Vec<&str> = frames
        .lines()
        .filter(|l| l.starts_with("Canary "))
        .map(|l| l.rsplit("   ").next().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"WaitingPromotion"), "{frames}");
    assert_eq!(phases.last(), Some(&"Succeeded"), "{frames}");
    assert!(
        frames.contains("---"),
        "frames are separated off a terminal: {frames}"
    );
    // Nothing failed: a retry is refused.
    let (code, _, err) = serin(&s, &["retry", "web"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("retry does not apply in phase Succeeded: it acts in Failed"),
        "{err}"
    );

    // Errors: exit 2 with the name.
    let (code, _, err) = serin(&s, &["status", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("canary {ns}/nope not found")),
        "{err}"
    );
    let (code, _, err) = serin(&s, &["promote", "nope"]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn all_namespaces_and_the_kubectl_plugin() {
    let s = setup("cli-plugin", &[]).await;
    s.create_deployment("api", Readiness::Ready).await;
    s.create_canary("api", cluster::rollout::steps(), json!({}))
        .await;
    s.wait_phase("api", Phase::Initialized).await;
    let out = run(Path::new(env!("CARGO_BIN_EXE_serin")), &["get", "-A"], None);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAMESPACE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&s.ns) && l.contains("api") && l.contains("Initialized")),
        "{table}"
    );

    // Installed as kubectl-serin on the PATH, kubectl finds it as a plugin.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_serin"), dir.join("kubectl-serin")).unwrap();
    // Global flags before the command, as with kubectl's own.
    let out = run(
        Path::new("kubectl"),
        &["serin", "-n", &s.ns, "get"],
        Some(&dir),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(row(&table, "api")[1], "Initialized", "{table}");
}

#[tokio::test]
async fn global_flags_go_anywhere_and_contexts_and_selectors_choose_what_is_listed() {
    let s = setup("cli-flags", &[]).await;
    s.create_deployment("api", Readiness::Ready).await;
    s.create_canary("api", cluster::rollout::steps(), json!({}))
        .await;
    let labels = json!({"metadata": {"labels": {"team": "payments"}}});
    s.canaries()
        .patch(
            "api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&labels),
        )
        .await
        .unwrap();
    s.wait_phase("api", Phase::Initialized).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_serin"));
    let ns = s.ns.as_str();
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).to_string();

    // -n before the command, as kubectl takes it; -l filters by label.
    let out = run(bin, &["-n", ns, "get", "-l", "team=payments"], None);
    assert_eq!(row(&text(&out), "api")[1], "Initialized");
    let out = run(bin, &["get", "-l", "team=other", "-n", ns], None);
    assert_eq!(text(&out), "");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "No canaries in namespace {ns} matching team=other"
        )),
        "{out:?}"
    );

    // --context picks a context of --kubeconfig, and with it its namespace.
    let mut kubeconfig = kube::config::Kubeconfig::read_from(&cluster().kubeconfig).unwrap();
    let mut team = kubeconfig.contexts[0].clone();
    team.name = "team".into();
    team.context.as_mut().unwrap().namespace = Some(s.ns.clone());
    kubeconfig.contexts.push(team);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}.kubeconfig"));
    std::fs::write(&file, serde_yaml_ng::to_string(&kubeconfig).unwrap()).unwrap();
    let path = file.to_str().unwrap();
    let out = run(
        bin,
        &["--context", "team", "get", "--kubeconfig", path],
        None,
    );
    assert_eq!(row(&text(&out), "api")[1], "Initialized", "{out:?}");
    let out = run(
        bin,
        &["get", "--kubeconfig", path, "--context", "nope"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{out:?}"
    );

    // The controller's version, from its Deployment's image, the chart's labels on it.
    let controller: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "serin", "labels": {
            "app.kubernetes.io/name": "serin", "app.kubernetes.io/component": "controller",
            "app.kubernetes.io/version": "0.9.0"}},
        "spec": {
            "selector": {"matchLabels": {"app": "serin-controller"}},
            "template": {
                "metadata": {"labels": {"app": "serin-controller"}},
                "spec": {"containers": [
                    {"name": "controller", "image": "registry.example:5000/serin-dev/serin:0.9.1"}
                ]}}}
    }))
    .unwrap();
    s.deployments()
        .create(&kube::api::PostParams::default(), &controller)
        .await
        .unwrap();
    let out = run(bin, &["version", "-n", ns, "-o", "json"], None);
    assert!(out.status.success(), "{out:?}");
    let versions: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(versions["client"], env!("CARGO_PKG_VERSION"));
    assert_eq!(versions["controllers"][0]["version"], "0.9.1");
    assert_eq!(versions["controllers"][0]["namespace"], ns);
    let out = run(bin, &["-n", ns, "version"], None);
    let table = text(&out);
    assert!(
        table.starts_with(&format!("Client     serin {}\n", env!("CARGO_PKG_VERSION"))),
        "{table}"
    );
    assert!(
        table.contains(&format!("Controller 0.9.1 ({ns}/serin, ")),
        "{table}"
    );
}

/// Reads a spawned `serin`'s stderr lines on a thread; the receiver hears each line as it comes.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The next stderr line, or a failure after 60s.
async fn next_line(
    lines: std::sync::mpsc::Receiver<String>,
) -> (String, std::sync::mpsc::Receiver<String>) {
    tokio::task::spawn_blocking(move || {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("no progress line from serin wait");
        (line, lines)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn promote_moves_one_step_and_full_skips_the_rest_while_wait_shows_progress() {
    let s = setup("cli-step", &[]).await;
    let closed = mock::serve(|_| mock::Reply::status(403, "closed by the release manager")).await;
    s.create_deployment("held", Readiness::Ready).await;
    // Steps 25%, 50%, 75%, each held by a closed confirm-traffic-increase gate, and the
    // promotion by a closed confirm-promotion gate: without it the last step would promote on
    // its own an interval later, racing the assertions below.
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 75,
        "webhooks": [{"name": "go-live", "type": "confirm-traffic-increase", "url": closed.url},
                     {"name": "release", "type": "confirm-promotion", "url": closed.url}]});
    s.create_canary("held", analysis, json!({})).await;
    s.wait_phase("held", Phase::Initialized).await;
    s.gitops_apply("held", "v2").await;
    s.wait_phase("held", Phase::Progressing).await;
    let weight = async || {
        let canary = s.canaries().get("held").await.unwrap();
        canary.status.unwrap().canary_weight
    };
    for _ in 0..120 {
        if weight().await == 25 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(weight().await, 25);

    // `wait` prints where the rollout stands, then a line per change.
    let mut wait = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["wait", "held", "--timeout", "120s", "-n", &s.ns])
        .env("KUBECONFIG", &cluster().kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut wait);
    let (first, lines) = next_line(lines).await;
    let ns = &s.ns;
    assert_eq!(
        first,
        format!("canary {ns}/held: phase Progressing, canary weight 25%")
    );

    // One step at a time, past the closed gate: a person's request is the confirmation.
    let (code, out, _) = serin(&s, &["promote", "held"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("promote requested") && out.contains("acknowledged"),
        "{out}"
    );
    assert_eq!(weight().await, 50);
    let (line, lines) = next_line(lines).await;
    assert_eq!(
        line,
        format!("canary {ns}/held: phase Progressing, canary weight 50%")
    );
    assert_eq!(serin(&s, &["promote", "held"]).await.0, 0);
    assert_eq!(weight().await, 75);
    let (line, _lines) = next_line(lines).await;
    assert_eq!(
        line,
        format!("canary {ns}/held: phase Progressing, canary weight 75%")
    );
    assert_eq!(s.primary_version("held").await.as_deref(), Some("v1"));

    // --full skips the rest; the wait ends with the promotion.
    let (code, out, _) = serin(&s, &["promote", "held", "--full"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("promote --full requested"), "{out}");
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::task::spawn_blocking(move || wait.wait_with_output().unwrap()),
    )
    .await
    .expect("serin wait did not end when the rollout ended")
    .unwrap();
    assert_eq!(waited.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("promoted (phase Succeeded)"),
        "{waited:?}"
    );
    assert_eq!(s.primary_version("held").await.as_deref(), Some("v2"));

    // Settled: neither kind of promote applies, and each says so.
    let (code, _, err) = serin(&s, &["promote", "held"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("promote refused") && err.contains("step does not apply in phase Succeeded"),
        "{err}"
    );
    let (code, _, err) = serin(&s, &["promote", "held", "--full"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("promote --full refused")
            && err.contains("promote does not apply in phase Succeeded"),
        "{err}"
    );
}

#[tokio::test]
async fn restart_rolls_the_primary_pods_and_is_not_a_release() {
    let s = setup("cli-restart", &[]).await;
    s.create_deployment("web", Readiness::Ready).await;
    s.create_canary(
        "web",
        json!({"interval": "1s", "threshold": 2, "stepWeight": 50, "maxWeight": 50}),
        json!({}),
    )
    .await;
    s.wait_phase("web", Phase::Initialized).await;
    let before = s.canaries().get("web").await.unwrap().status.unwrap();
    let restarted_at = async || {
        let primary = s.deployments().get("web-primary").await.unwrap();
        primary
            .spec
            .unwrap()
            .template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned())
    };
    assert_eq!(restarted_at().await, None);

    let (code, out, err) = serin(&s, &["restart", "web"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "restart requested: canary {}/web, Deployment web-primary restarted at",
            s.ns
        )),
        "{out}"
    );
    let stamp = restarted_at()
        .await
        .expect("the primary's pod template is stamped");

    // Two requests later the controller has reconciled since the restart: the stamp is still
    // there and no rollout started.
    assert_eq!(serin(&s, &["pause", "web"]).await.0, 0);
    assert_eq!(serin(&s, &["resume", "web"]).await.0, 0);
    assert_eq!(restarted_at().await.as_deref(), Some(stamp.as_str()));
    let after = s.canaries().get("web").await.unwrap().status.unwrap();
    assert_eq!(after.phase, Some(Phase::Initialized));
    assert_eq!(after.last_applied_spec, before.last_applied_spec);
    assert_eq!(after.last_promoted_spec, before.last_promoted_spec);

    // A release copies the new template to the primary and keeps the stamp.
    s.gitops_apply("web", "v2").await;
    s.wait_phase("web", Phase::Succeeded).await;
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v2"));
    assert_eq!(restarted_at().await.as_deref(), Some(stamp.as_str()));

    let (code, _, err) = serin(&s, &["restart", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("canary {}/nope not found", s.ns)),
        "{err}"
    );
}

/// The key and value of the Canary's gate in the load tester's ConfigMap.
async fn gate_state(s: &Setup, name: &str) -> Option<String> {
    let configmaps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(s.client.clone(), &s.ns);
    let config = configmaps
        .get_opt("serin-loadtester-gates")
        .await
        .unwrap()?;
    config.data?.get(&format!("gate.{}.{name}", s.ns)).cloned()
}

/// The VERSION and the envFrom ConfigMap of a Deployment's pod template.
async fn template_of(s: &Setup, name: &str) -> (String, String) {
    let deployment = s.deployments().get(name).await.unwrap();
    let container = deployment.spec.unwrap().template.spec.unwrap().containers[0].clone();
    let version = container.env.unwrap_or_default()[0]
        .value
        .clone()
        .unwrap_or_default();
    let config = container.env_from.unwrap_or_default()[0]
        .config_map_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    (version, config)
}

#[tokio::test]
async fn undo_gate_refused_requests_and_history() {
    let s = setup("cli-undo", &[]).await;
    let ns = s.ns.clone();
    // The load tester is never reached: the gate stays closed for the controller, and the
    // test reads what the CLI wrote in the gate ConfigMap the URL points at.
    let gate_url = format!("http://serin-loadtester.{ns}/gate/check");
    s.create_deployment("web", Readiness::Ready).await;
    s.create_canary("web", gated("confirm-promotion", &gate_url), json!({}))
        .await;
    s.wait_phase("web", Phase::Initialized).await;

    // Nothing to undo, no rollout yet, no rollout to approve, no rollback gate.
    let (code, _, err) = serin(&s, &["undo", "web"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("undo refused: canary {ns}/web: nothing to undo: the target Deployment web already runs the primary's pod template")),
        "{err}"
    );
    let (code, out, _) = serin(&s, &["history", "web"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("no rollout recorded yet"), "{out}");
    let (code, _, err) = serin(&s, &["gate", "approve", "web"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("approve applies to a rollout under way"),
        "{err}"
    );
    let (code, _, err) = serin(&s, &["gate", "open", "web", "--rollback"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("/rollback/check"), "{err}");
    assert_eq!(
        gate_state(&s, "web").await,
        None,
        "a refused gate was written"
    );

    s.gitops_apply("web", "v2").await;
    s.wait_phase("web", Phase::WaitingPromotion).await;
    let applied = s.canaries().get("web").await.unwrap().status.unwrap();
    let revision = applied.last_applied_spec.clone().unwrap();
    assert_eq!(
        applied
            .current_rollout
            .as_ref()
            .map(|r| (r.revision.as_str(), r.max_weight)),
        Some((revision.as_str(), 50))
    );

    // Gates: approve binds the gate to the revision under analysis; halt closes it.
    let (code, out, err) = serin(&s, &["gate", "approve", "web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("gate gate.{ns}.web opened for revision")),
        "{out}"
    );
    assert_eq!(
        gate_state(&s, "web").await,
        Some(format!("open:{revision}"))
    );
    let (code, out, _) = serin(&s, &["gate", "halt", "web"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("closed"), "{out}");
    assert_eq!(gate_state(&s, "web").await.as_deref(), Some("closed"));

    // A request the controller would drop is refused with the reason, and not sent.
    let (code, out, err) = serin(&s, &["resume", "web"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "resume refused: canary {ns}/web: resume does not apply: the rollout is not paused"
        )),
        "{err}"
    );

    // undo --dry-run shows the diff and writes nothing.
    let (code, diff, err) = serin(&s, &["undo", "web", "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        diff.contains("--- Deployment/web spec.template (now)"),
        "{diff}"
    );
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && l.contains("value: v2")),
        "{diff}"
    );
    assert!(
        diff.lines()
            .any(|l| l.starts_with('+') && l.contains("value: v1")),
        "{diff}"
    );
    assert_eq!(template_of(&s, "web").await.0, "v2");

    // undo writes the promoted template back, warns about GitOps, and the rollout stops.
    let (code, out, err) = serin(&s, &["undo", "web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("A GitOps tool (Flux, Argo CD) applies git's version again")
            && err.contains("revert the change in git"),
        "{err}"
    );
    assert!(
        out.contains("has the primary's pod template again"),
        "{out}"
    );
    assert_eq!(
        template_of(&s, "web").await,
        ("v1".to_string(), "web-config".to_string()),
        "the -primary config reference is pointed back at the original"
    );
    s.wait_phase("web", Phase::Succeeded).await;
    let status = s.canaries().get("web").await.unwrap().status.unwrap();
    assert_eq!(
        status.last_applied_spec, applied.last_promoted_spec,
        "no new rollout"
    );
    assert_eq!(s.primary_version("web").await.as_deref(), Some("v1"));

    // The next release is aborted: the history explains both, newest first.
    s.gitops_apply("web", "v3").await;
    s.wait_phase("web", Phase::WaitingPromotion).await;
    assert_eq!(serin(&s, &["abort", "web"]).await.0, 0);
    s.wait_phase("web", Phase::Failed).await;
    let (code, table, _) = serin(&s, &["history", "web"]).await;
    assert_eq!(code, 0);
    let outcomes: Vec<&str> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["RolledBack", "Superseded"], "{table}");
    assert!(table.contains("AbortedByRequest"), "{table}");
    assert!(table.contains("RevertedToPromoted"), "{table}");
    let (_, json_out, _) = serin(&s, &["history", "web", "-o", "json"]).await;
    let history: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(history["history"][1]["revision"], json!(revision));
    assert_eq!(history["history"][1]["maxWeight"], 50);
    assert_eq!(history["history"][0]["outcome"], "RolledBack");

    // --to-revision takes a revision from the primary's own history (its ReplicaSets), by a
    // prefix; one it never ran is refused, naming those it holds.
    let promoted = applied.last_promoted_spec.clone().unwrap();
    let (code, _, err) = serin(&s, &["undo", "web", "--to-revision", "zzz"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--to-revision zzz: the primary's history holds no such revision (it holds ")
            && err.contains(&promoted[..8]),
        "{err}"
    );
    assert_eq!(
        template_of(&s, "web").await.0,
        "v3",
        "a refused undo wrote nothing"
    );
    let (code, _, err) = serin(&s, &["undo", "web", "--to-revision", &promoted[..8]]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(template_of(&s, "web").await.0, "v1");
    s.wait_phase("web", Phase::Succeeded).await;
    assert_eq!(
        s.canaries()
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .last_applied_spec,
        Some(promoted),
        "back at the promoted revision: nothing to roll out"
    );

    let (code, _, err) = serin(&s, &["undo", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("canary {ns}/nope not found")),
        "{err}"
    );
}
