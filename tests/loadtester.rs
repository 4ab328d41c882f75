//! `serin loadtester` as users run it: its own process, authenticated as a ServiceAccount with
//! exactly the Role of config/loadtester-rbac.yaml, called the way serin's hooks call it.
//! (The gate flows through the controller are in tests/controller.rs.)

mod cluster;
mod mock;

use std::time::{Duration, Instant};

use cluster::controller::{
    ControllerProcess, LOADTESTER_TOKEN, loadtester_kubeconfig, loadtester_token_file, work_dir,
};
use cluster::{client, eventually, namespace};
use serde_json::{Value, json};
use serin::loadtester::auth;

struct Tester {
    process: ControllerProcess,
    ns: String,
    http: reqwest::Client,
}

async fn start(name: &str) -> Tester {
    start_with(name, &[]).await
}

async fn start_with(name: &str, flags: &[&str]) -> Tester {
    let client = client().await;
    let ns = namespace(&client, name).await;
    let kubeconfig = loadtester_kubeconfig(&client, &ns).await;
    let tester = Tester {
        process: ControllerProcess::loadtester(&kubeconfig, &ns, flags),
        ns,
        http: serin::hooks::client().unwrap(),
    };
    tester.wait_up().await;
    tester
}

fn bearer() -> String {
    format!("Bearer {LOADTESTER_TOKEN}")
}

impl Tester {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.process.listen)
    }

    async fn wait_up(&self) {
        eventually("load tester up", Duration::from_secs(30), || async {
            let answer = self.http.get(self.url("/healthz")).send().await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
    }

    async fn get_json(&self, path: &str) -> Value {
        let answer = self
            .http
            .get(self.url(path))
            .header("authorization", bearer())
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    }

    /// GETs `path` with `authorization`; (status, body).
    async fn get_as(&self, authorization: &str, path: &str) -> (u16, String) {
        let answer = self
            .http
            .get(self.url(path))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// POSTs a hook payload for canary `name` with the token; (status, body).
    async fn post(&self, path: &str, name: &str, extra: Value) -> (u16, String) {
        self.post_as(Some(&bearer()), path, name, extra).await
    }

    /// POSTs a hook payload with `authorization` (none: no header); (status, body).
    async fn post_as(
        &self,
        authorization: Option<&str>,
        path: &str,
        name: &str,
        extra: Value,
    ) -> (u16, String) {
        let mut payload = json!({"name": name, "namespace": "apps", "phase": "Progressing",
            "checksum": "rev-1", "metadata": {}});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let mut request = self.http.post(self.url(path)).json(&payload);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }
}

/// Requests received in [from, to).
fn count(server: &mock::Server, from: Instant, to: Instant) -> usize {
    server
        .received()
        .iter()
        .filter(|r| r.at >= from && r.at < to)
        .count()
}

#[tokio::test]
async fn the_generator_holds_the_requested_rate_and_stops_when_told() {
    let t = start("load-rate").await;
    let target = mock::serve(|_| mock::Reply::ok("hello")).await;
    let metadata = json!({"url": format!("{}/", target.url), "rate": "50", "concurrency": "4",
        "headers": "X-Load: serin"});
    let (status, body) = t.post("/", "rate", json!({"metadata": metadata})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"load\":\"started\""), "{body}");
    // A second call (the next analysis tick) keeps the same load going, not a second one.
    let (status, body) = t.post("/", "rate", json!({"metadata": metadata})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"load\":\"running\""), "{body}");

    // The rate over a 4 s window, after a second of warm-up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let measured = count(&target, from, Instant::now()) as f64 / 4.0;
    assert!(
        (measured - 50.0).abs() <= 5.0,
        "requested 50/s, the target saw {measured}/s"
    );
    let first = target.received()[0].clone();
    assert!(first.head.contains("x-load: serin") || first.head.contains("X-Load: serin"));

    let stop = t
        .http
        .post(t.url("/stop"))
        .header("authorization", bearer())
        .json(&json!({"name": "rate", "namespace": "apps"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status().as_u16(), 200);
    let stopped: Value = stop.json().await.unwrap();
    assert_eq!(stopped["stopped"].as_array().unwrap().len(), 1, "{stopped}");
    // Requests in flight at the stop may still land; nothing after them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_stop = target.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target.received().len(),
        after_stop,
        "load went on after /stop"
    );

    // The summary at /loads counts what the target answered.
    let loads = t.get_json("/loads").await;
    let load = &loads.as_array().unwrap()[0];
    assert_eq!(load["running"], false, "{load}");
    let requests = load["summary"]["requests"].as_u64().unwrap() as usize;
    assert_eq!(requests, after_stop, "{load}");
    assert_eq!(
        load["summary"]["succeeded"].as_u64().unwrap() as usize,
        requests
    );
}

#[tokio::test]
async fn a_load_with_a_duration_ends_by_itself_and_waiting_hooks_get_the_verdict() {
    let t = start("load-wait").await;
    // One answer in four is an error.
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let target = mock::serve(move |_| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(4) {
            mock::Reply::status(500, "boom")
        } else {
            mock::Reply::ok("fine")
        }
    })
    .await;
    // Flagger's spelling: hey flags, -q per worker.
    let cmd = format!("hey -z 2s -q 10 -c 2 {}/", target.url);
    let (status, body) = t
        .post(
            "/",
            "wait",
            json!({"metadata": {"cmd": cmd, "wait": "true", "maxErrorRatio": "0.1"}}),
        )
        .await;
    let landed = target.received().len();
    assert_eq!(status, 422, "25% errors is over maxErrorRatio 0.1: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let summary = &answer["summary"];
    let requests = summary["requests"].as_u64().unwrap();
    assert!(
        (36..=44).contains(&requests),
        "2 s at 20/s should be 40 requests: {summary}"
    );
    assert_eq!(landed as u64, requests, "answered before the load was over");
    assert_eq!(
        summary["statuses"]["500"].as_u64().unwrap(),
        requests.div_ceil(4)
    );
    let ratio = summary["errorRatio"].as_f64().unwrap();
    assert!((ratio - 0.25).abs() < 0.03, "{summary}");
    // It stopped by itself.
    let total = target.received().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(target.received().len(), total);

    // Without maxErrorRatio the same load is a yes with its summary.
    let (status, _) = t
        .post(
            "/",
            "wait",
            json!({"metadata": {"cmd": format!("hey -z 1s -q 5 -c 1 {}/", target.url), "wait": "true"}}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_rollout_ending_stops_its_load_and_bad_metadata_is_refused_by_name() {
    let t = start("load-phase").await;
    let target = mock::serve(|_| mock::Reply::ok("ok")).await;
    let metadata = json!({"url": format!("{}/", target.url), "rate": "20"});
    assert_eq!(
        t.post("/", "ends", json!({"metadata": metadata})).await.0,
        200
    );
    eventually(
        "load reaches the target",
        Duration::from_secs(10),
        || async { (target.received().len() >= 10).then_some(()) },
    )
    .await;
    // A post-rollout hook pointed at the tester: the rollout is over, its load stops.
    let (status, body) = t
        .post(
            "/",
            "ends",
            json!({"phase": "Succeeded", "metadata": metadata}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"stopped\":[{"), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = target.received().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        target.received().len(),
        total,
        "load went on after the rollout ended"
    );

    // Bad metadata is a 4xx (a "no" serin does not retry) naming the key.
    let (status, body) = t
        .post(
            "/",
            "bad",
            json!({"metadata": {"url": "http://x/", "rate": "lots"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body.trim(), "metadata.rate: \"lots\" is not a number");
    let (status, body) = t
        .post(
            "/",
            "bad",
            json!({"metadata": {"cmd": "bash -c 'rm -rf /'"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("does not run commands"), "{body}");
}

#[tokio::test]
async fn gates_are_kept_in_a_configmap_and_survive_a_restart() {
    let mut t = start("gates").await;
    // Fixed answers.
    assert_eq!(t.post("/gate/approve", "web", json!({})).await.0, 200);
    assert_eq!(t.post("/gate/halt", "web", json!({})).await.0, 403);
    // Closed until opened.
    let (status, body) = t.post("/gate/check", "web", json!({})).await;
    assert_eq!(status, 403);
    assert!(body.contains("gate.apps.web is closed"), "{body}");
    assert_eq!(t.post("/gate/open", "web", json!({})).await.0, 200);
    assert_eq!(t.post("/rollback/open", "api", json!({})).await.0, 200);

    // A restart (SIGKILL) forgets nothing.
    t.process.restart();
    t.wait_up().await;
    assert_eq!(t.post("/gate/check", "web", json!({})).await.0, 200);
    assert_eq!(t.post("/rollback/check", "api", json!({})).await.0, 200);
    assert_eq!(t.post("/rollback/check", "web", json!({})).await.0, 403);

    // The approval belongs to the revision it approved: the next one is held again.
    let (status, _) = t
        .post("/gate/check", "web", json!({"checksum": "rev-2"}))
        .await;
    assert_eq!(status, 403, "an approval of rev-1 must not approve rev-2");
    assert_eq!(t.post("/gate/open", "web", json!({})).await.0, 200);
    let (status, _) = t
        .post("/gate/check", "web", json!({"checksum": "rev-2"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(t.post("/gate/close", "web", json!({})).await.0, 200);
    assert_eq!(
        t.post("/gate/check", "web", json!({"checksum": "rev-2"}))
            .await
            .0,
        403
    );

    // The state is plain data in the ConfigMap, readable with kubectl.
    let gates = t.get_json("/gates").await;
    assert_eq!(gates["gate.apps.web"], "closed", "{gates}");
    assert_eq!(gates["rollback.apps.api"], "open:rev-1", "{gates}");
    let configs: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client().await, &t.ns);
    let stored = configs.get("serin-loadtester-gates").await.unwrap();
    assert_eq!(stored.data.unwrap()["rollback.apps.api"], "open:rev-1");
}

#[tokio::test]
async fn loads_of_large_answers_keep_the_testers_memory_bounded() {
    let t = start("load-large").await;
    // Every answer is 200 MB; four loads read them at the same time.
    let target = mock::serve(|_| mock::Reply::ok("").filler(200 * 1024 * 1024)).await;
    let names = ["big-a", "big-b", "big-c", "big-d"];
    for name in names {
        let metadata = json!({"url": format!("{}/", target.url), "rate": "2",
            "concurrency": "1", "timeout": "2m"});
        let (status, body) = t.post("/", name, json!({"metadata": metadata})).await;
        assert_eq!(status, 200, "{body}");
    }
    // Until each load has read two whole answers.
    eventually("two answers per load", Duration::from_secs(180), || async {
        let loads = t.get_json("/loads").await;
        let done = loads
            .as_array()?
            .iter()
            .filter(|l| l["summary"]["succeeded"].as_u64().unwrap_or(0) >= 2)
            .count();
        (done == names.len()).then_some(())
    })
    .await;
    for name in names {
        let (status, body) = t.post("/stop", name, json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let peak = mock::peak_memory(&t.process.pid().to_string());
    assert!(
        peak < mock::MEMORY_BOUND,
        "the tester held answers: peak memory {} MiB",
        peak >> 20
    );
}

#[tokio::test]
async fn an_unauthenticated_call_is_refused_and_healthz_stays_open() {
    let t = start("load-auth").await;
    let target = mock::serve(|_| mock::Reply::ok("ok")).await;
    let load = json!({"metadata": {"url": format!("{}/", target.url), "rate": "5"}});
    let wrong = "Bearer serin-tests-loadtester-token-0123456780";
    for (path, extra) in [
        ("/gate/open", json!({})),
        ("/gate/check", json!({})),
        ("/rollback/open", json!({})),
        ("/", load.clone()),
        ("/stop", json!({})),
    ] {
        for authorization in [None, Some(wrong), Some(LOADTESTER_TOKEN)] {
            let (status, body) = t.post_as(authorization, path, "web", extra.clone()).await;
            assert_eq!(status, 401, "{path} with {authorization:?}: {body}");
            assert!(body.contains("Authorization: Bearer"), "{body}");
        }
    }
    let answer = t.http.get(t.url("/gates")).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    assert_eq!(
        answer.headers()["www-authenticate"],
        "Bearer realm=\"serin-loadtester\""
    );
    assert!(target.received().is_empty(), "a refused call sent load");
    // Nothing was opened by the refused calls; the right token is let in.
    let (status, body) = t.post("/gate/check", "web", json!({})).await;
    assert_eq!(status, 403, "{body}");
    let health = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "/healthz needs no token");
}

/// Tenants do not reach each other: a namespace's token drives that namespace's gates and
/// loads only (refused with 401 elsewhere, nothing changed); the key drives every namespace
/// and alone lists them.
#[tokio::test]
async fn a_namespace_token_reaches_only_its_namespace_and_the_key_lists_everything() {
    let t = start("load-tenants").await;
    let target = mock::serve(|_| mock::Reply::ok("ok")).await;
    let token_of = |ns: &str| format!("Bearer {}", auth::namespace_token(LOADTESTER_TOKEN, ns));
    let (team_a, team_b) = (token_of("team-a"), token_of("team-b"));
    let load = |ns: &str| json!({"namespace": ns, "metadata": {"url": format!("{}/", target.url), "rate": "5"}});
    let b = json!({"namespace": "team-b"});

    for (path, extra) in [
        ("/gate/open", b.clone()),
        ("/gate/close", b.clone()),
        ("/gate/check", b.clone()),
        ("/rollback/open", b.clone()),
        ("/gate/approve", b.clone()),
        ("/", load("team-b")),
        ("/stop", b.clone()),
    ] {
        let (status, body) = t.post_as(Some(&team_a), path, "web", extra).await;
        assert_eq!(status, 401, "{path} of team-b with team-a's token: {body}");
        assert!(
            body.contains("does not grant namespace \"team-b\""),
            "{body}"
        );
    }
    assert!(target.received().is_empty(), "a refused call sent load");
    // Nothing of team-b changed: its gate and rollback are still closed.
    for path in ["/gate/check", "/rollback/check"] {
        let (status, body) = t.post_as(Some(&team_b), path, "web", b.clone()).await;
        assert_eq!(status, 403, "{path}: {body}");
    }

    // In its own namespace the token works.
    let a = json!({"namespace": "team-a"});
    for path in [
        "/gate/open",
        "/rollback/open",
        "/gate/check",
        "/rollback/check",
    ] {
        let (status, body) = t.post_as(Some(&team_a), path, "web", a.clone()).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    // team-b's load cannot be stopped with team-a's token, only with its own (or the key).
    let (status, body) = t.post_as(Some(&team_b), "/", "web", load("team-b")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = t.post_as(Some(&team_a), "/stop", "web", b.clone()).await;
    assert_eq!(status, 401);
    let running = t.get_json("/loads").await;
    assert_eq!(running[0]["namespace"], "team-b", "{running}");
    assert_eq!(running[0]["running"], true, "{running}");
    let (status, body) = t.post_as(Some(&team_b), "/stop", "web", b.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"namespace\":\"team-b\""),
        "nothing stopped: {body}"
    );

    // The key drives any namespace.
    let (status, body) = t.post("/rollback/open", "web", b.clone()).await;
    assert_eq!(status, 200, "{body}");
    // The listings span every namespace: the key alone reads them.
    for path in ["/gates", "/loads"] {
        let (status, body) = t.get_as(&team_a, path).await;
        assert_eq!(status, 401, "{path} with a namespace's token: {body}");
        assert!(body.contains("only the load tester's key"), "{body}");
        assert_eq!(
            t.get_as(&bearer(), path).await.0,
            200,
            "{path} with the key"
        );
    }
    let gates = t.get_json("/gates").await;
    assert_eq!(gates["gate.team-a.web"], "open:rev-1", "{gates}");
    assert_eq!(gates["rollback.team-b.web"], "open", "{gates}");
}

/// Operators mint a namespace's token with the binary, from the key file the tester reads.
#[test]
fn serin_loadtester_token_prints_the_namespaces_token_and_refuses_a_bad_namespace() {
    let key = loadtester_token_file();
    let mint = |namespace: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_serin"))
            .args([
                "loadtester",
                "token",
                "--namespace",
                namespace,
                "--token-file",
            ])
            .arg(&key)
            .output()
            .unwrap()
    };
    let out = mint("team-b");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", auth::namespace_token(LOADTESTER_TOKEN, "team-b"))
    );
    let out = mint("Team_B");
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(
        error.contains("--namespace") && error.contains("not a Kubernetes namespace name"),
        "{error}"
    );
}

#[tokio::test]
async fn loads_and_gates_beyond_the_testers_limits_are_refused_by_name() {
    let t = start_with(
        "load-limits",
        &[
            "--max-rate",
            "50",
            "--max-concurrency",
            "5",
            "--max-duration",
            "2m",
            "--max-gates",
            "2",
            "--max-loads",
            "1",
        ],
    )
    .await;
    let target = mock::serve(|_| mock::Reply::ok("ok")).await;
    let url = format!("{}/", target.url);
    for (metadata, expected) in [
        (
            json!({"url": url, "rate": "51"}),
            "metadata.rate: 51 requests per second is above this tester's --max-rate 50",
        ),
        (
            json!({"url": url, "concurrency": "6"}),
            "metadata.concurrency: 6 requests in flight is above this tester's --max-concurrency 5",
        ),
        (
            json!({"url": url, "duration": "3m"}),
            "metadata.duration: 180s is above this tester's --max-duration of 120s",
        ),
        // hey's default -c is 50.
        (
            json!({"cmd": format!("hey -z 1m -q 1 {url}")}),
            "metadata.cmd: 50 requests in flight is above this tester's --max-concurrency 5",
        ),
    ] {
        let (status, body) = t.post("/", "big", json!({"metadata": metadata})).await;
        assert_eq!((status, body.trim()), (400, expected));
    }
    assert!(target.received().is_empty(), "a refused load ran");
    // One load at a time: it is renewed, a second is refused until the first is stopped.
    let one = json!({"metadata": {"url": url, "rate": "5"}});
    assert_eq!(t.post("/", "first", one.clone()).await.0, 200);
    let (status, body) = t.post("/", "first", one.clone()).await;
    assert_eq!(status, 200, "a renewal is no new load: {body}");
    let (status, body) = t.post("/", "second", one.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("1 loads are running already (--max-loads)"),
        "{body}"
    );
    assert_eq!(t.post("/stop", "first", json!({})).await.0, 200);
    assert_eq!(t.post("/", "second", one.clone()).await.0, 200);
    assert_eq!(t.post("/stop", "second", json!({})).await.0, 200);

    // Two gates fit; a third new one is refused, known ones still open and close.
    assert_eq!(t.post("/gate/open", "a", json!({})).await.0, 200);
    assert_eq!(t.post("/rollback/open", "b", json!({})).await.0, 200);
    let (status, body) = t.post("/gate/open", "c", json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("holds 2 gates already (--max-gates)"),
        "{body}"
    );
    assert_eq!(t.post("/gate/close", "a", json!({})).await.0, 200);
    assert_eq!(t.post("/gate/close", "c", json!({})).await.0, 200);
    let gates = t.get_json("/gates").await;
    assert_eq!(
        gates,
        json!({"gate.apps.a": "closed", "rollback.apps.b": "open"})
    );
    // A name that cannot be a ConfigMap key is refused, not stored.
    let (status, body) = t.post("/gate/open", "../etc", json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a Kubernetes object name"), "{body}");
}

#[tokio::test]
async fn without_kubernetes_access_the_tester_runs_load_and_gates_answer_503() {
    let missing = work_dir().join("no-such-kubeconfig");
    let process = ControllerProcess::loadtester(&missing, "apps", &[]);
    let t = Tester {
        process,
        ns: "apps".into(),
        http: serin::hooks::client().unwrap(),
    };
    t.wait_up().await;
    let target = mock::serve(|_| mock::Reply::ok("ok")).await;
    let metadata = json!({"url": format!("{}/", target.url), "rate": "20", "duration": "1s",
        "wait": "true"});
    let (status, body) = t.post("/", "offline", json!({"metadata": metadata})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!target.received().is_empty());
    let (status, body) = t.post("/gate/check", "offline", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("without Kubernetes access"), "{body}");
}
