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

    // Scripts read JSON.
    let (_, json_out, _) = serin(&s, &["get", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
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
    assert_eq!(serin(&s, &["promote", "web"]).await.0, 0);
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
    // Retry runs the same revision again, up to the gate; `status --watch` shows it move.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["status", "web", "--watch", "-n", &s.ns])
        .env("KUBECONFIG", &cluster().kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    // The reader reports the first frame before the retry is sent: the controller answers a
    // retry within milliseconds, so a retry sent earlier could beat the first frame and the
    // watch would never show Failed.
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
                if line.ends_with("WaitingPromotion") {
                    break;
                }
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
    assert_eq!(serin(&s, &["retry", "web"]).await.0, 0);
    s.wait_phase("web", Phase::WaitingPromotion).await;
    let joined = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::task::spawn_blocking(move || frames.join().unwrap()),
    )
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    let frames = joined
        .expect("serin status --watch never showed WaitingPromotion")
        .unwrap();
    let phases: Vec<&str> = frames
        .lines()
        .filter(|l| l.starts_with("Canary "))
        .map(|l| l.rsplit("   ").next().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"Failed"), "{frames}");
    assert_eq!(phases.last(), Some(&"WaitingPromotion"), "{frames}");
    assert!(
        frames.contains("---"),
        "frames are separated off a terminal: {frames}"
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
    let out = run(
        Path::new("kubectl"),
        &["serin", "get", "-n", &s.ns],
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
