//! `serin check` and `serin migrate` as a CI job runs them: the binary on files, exit codes and
//! output read by a person. (The cluster commands are tested in tests/cli.rs.)

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn serin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn check_names_every_problem_of_a_broken_manifest_set() {
    let out = serin(&["check", "tests/fixtures/cli/broken"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let expected = [
        "tests/fixtures/cli/broken/canary.yaml:27:5 Canary podinfo: spec.analysis.maxWeight: must be between 1 and 100, got 150",
        "tests/fixtures/cli/broken/canary.yaml:42:13 Canary api: spec.service.port: invalid type: string \"eighty\", expected i32",
        "tests/fixtures/cli/broken/canary.yaml:52:14 Canary worker: spec.analysis.interval: invalid duration \"1 minute\"",
        "tests/fixtures/cli/broken/templates.yaml:7:3 MetricTemplate latency: spec.query: unknown variable \"targt\" in the query",
        "tests/fixtures/cli/broken/canary.yaml:33:9 Canary podinfo: spec.analysis.metrics[1].templateRef: MetricTemplate \"error-rate\" is not among the files checked",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line:?} in\n{stdout}"
        );
    }
    assert_eq!(stdout.lines().count(), expected.len(), "{stdout}");
    assert!(
        text(&out.stderr)
            .contains("checked 4 serin objects (1 other documents skipped): 5 problems"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_json_for_scripts_and_passes_a_valid_set() {
    let out = serin(&[
        "check",
        "-o",
        "json",
        "tests/fixtures/cli/broken/templates.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"][0]["field"], "spec.query");
    // The line and column of the field, not of the document.
    assert_eq!(report["problems"][0]["line"], 7);
    assert_eq!(report["problems"][0]["column"], 3);

    let dir = tempdir("valid");
    std::fs::write(
        dir.join("canary.yaml"),
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  provider: gatewayapi\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service: {port: 80, gatewayRefs: [{name: public}]}\n  analysis: {interval: 30s, threshold: 3, stepWeights: [5, 25, 50]}\n",
    )
    .unwrap();
    let out = serin(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr)
            .contains("checked 1 serin objects (0 other documents skipped): no problems")
    );
}

/// Flagger's Knative tutorial Canary (flagger.app, no service block) is accepted as it is, the
/// Knative Service beside it skipped; a `service` field knative cannot honour, or a Deployment
/// target, is refused with the field named.
#[test]
fn check_accepts_flaggers_knative_canary_and_names_what_knative_cannot_honour() {
    let canary = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo, namespace: test}\nspec:\n  provider: knative\n  targetRef: {apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}\n  progressDeadlineSeconds: 60\n  analysis:\n    interval: 15s\n    threshold: 15\n    maxWeight: 50\n    stepWeight: 10\n    metrics:\n      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n      - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}\n";
    let service = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: podinfo, namespace: test}\nspec:\n  template:\n    spec:\n      containers: [{image: ghcr.io/stefanprodan/podinfo:6.0.0}]\n";
    let dir = tempdir("knative");
    std::fs::write(dir.join("podinfo.yaml"), format!("{service}---\n{canary}")).unwrap();
    let out = serin(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr)
            .contains("checked 1 serin objects (1 other documents skipped): no problems"),
        "{}",
        text(&out.stderr)
    );

    let with_service = canary.replace(
        "  progressDeadlineSeconds: 60\n",
        "  service: {port: 80, gatewayRefs: [{name: public}], timeout: 5s}\n",
    );
    std::fs::write(dir.join("podinfo.yaml"), &with_service).unwrap();
    let out = serin(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let problems = text(&out.stdout);
    assert!(
        problems.contains(
            "spec.service.gatewayRefs: the knative provider makes no Services or routes of its own"
        ),
        "{problems}"
    );
    assert!(
        problems.contains("spec.service.timeout: the knative provider does not write timeout"),
        "{problems}"
    );
    assert!(!problems.contains("spec.service.port"), "{problems}");
}

#[test]
fn check_says_when_a_file_cannot_be_read_or_is_not_yaml() {
    let out = serin(&["check", "tests/fixtures/cli/missing.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tests/fixtures/cli/missing.yaml"));
    let dir = tempdir("not-yaml");
    std::fs::write(dir.join("bad.yaml"), "kind: Canary\nspec: [unclosed\n").unwrap();
    let out = serin(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("bad.yaml:"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("(yaml)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn flaggers_own_manifests_are_checked_as_they_are() {
    // flagger.app/v1beta1 is served in drop-in mode (`--flagger-api`): nothing to convert.
    let out = serin(&["check", "tests/fixtures/cli/flagger/podinfo.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("checked 3 serin objects"),
        "{}",
        text(&out.stderr)
    );
    let dir = tempdir("v1alpha3");
    let file = dir.join("old.yaml");
    let old = std::fs::read_to_string("tests/fixtures/cli/flagger/podinfo.yaml")
        .unwrap()
        .replace("flagger.app/v1beta1", "flagger.app/v1alpha3");
    std::fs::write(&file, old).unwrap();
    let out = serin(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("apiVersion: flagger.app/v1alpha3 is Flagger's pre-1.0 API"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn migrate_converts_flagger_examples_into_manifests_check_accepts() {
    let out = serin(&["migrate", "tests/fixtures/cli/flagger/podinfo.yaml"]);
    assert_eq!(out.status.code(), Some(1), "decisions are listed");
    let converted = text(&out.stdout);
    assert!(!converted.contains("flagger.app"), "{converted}");
    assert_eq!(
        converted.matches("apiVersion: serin.dev/v1beta1").count(),
        3
    );
    // Flagger's fields survive as written: service mesh settings, retries, hooks, alerts.
    for kept in [
        "retryOn: \"gateway-error,connect-failure,refused-stream\"",
        "mode: DISABLE",
        "hey -z 1m -q 10 -c 2",
        "severity: error",
    ] {
        assert!(converted.contains(kept), "{kept} lost:\n{converted}");
    }
    let notes = text(&out.stderr);
    assert!(
        notes.contains(
            "spec.analysis.webhooks[0].metadata.type: serin loadtester runs HTTP load only"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("spec.analysis.webhooks[1].url: points at Flagger's load tester"),
        "{notes}"
    );
    assert!(notes.contains("converted 3 Flagger objects"), "{notes}");

    let dir = tempdir("migrated");
    let file = dir.join("podinfo.yaml");
    std::fs::write(&file, &converted).unwrap();
    let out = serin(&["check", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn migrate_carries_a_keda_autoscaler_over_and_check_accepts_it() {
    // Flagger's KEDA example: a ScaledObject with the primary's own query and bounds.
    let dir = tempdir("keda");
    let file = dir.join("keda.yaml");
    std::fs::write(
        &file,
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo, namespace: test}\nspec:\n  provider: gatewayapi\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  autoscalerRef:\n    apiVersion: keda.sh/v1alpha1\n    kind: ScaledObject\n    name: podinfo-so\n    primaryScalerQueries:\n      prom-trigger: sum(rate(http_requests_total{app=\"podinfo-primary\"}[1m]))\n    primaryScalerReplicas: {minReplicas: 2, maxReplicas: 5}\n  service: {port: 80, gatewayRefs: [{name: public, namespace: gateways}]}\n  analysis: {interval: 1m, stepWeight: 10, maxWeight: 50}\n",
    )
    .unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    let notes = text(&out.stderr);
    assert!(!notes.contains("autoscalerRef"), "{notes}");
    let converted = text(&out.stdout);
    assert!(converted.contains("prom-trigger"), "{converted}");
    assert!(converted.contains("maxReplicas: 5"), "{converted}");
    let migrated = dir.join("migrated.yaml");
    std::fs::write(&migrated, &converted).unwrap();
    let out = serin(&["check", migrated.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn migrate_lists_what_serin_cannot_do_the_same_way() {
    let out = serin(&["migrate", "tests/fixtures/cli/flagger/blue-green.yaml"]);
    let notes = text(&out.stderr);
    // Flagger's nginx Canary (with its ingressRef) is one serin routes with.
    assert!(!notes.contains("Canary frontend: spec.provider"), "{notes}");
    let dir = tempdir("retired");
    let file = dir.join("c.yaml");
    std::fs::write(
        &file,
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  provider: osm\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service: {port: 80}\n  analysis: {interval: 1m, stepWeight: 10}\n",
    )
    .unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let notes = text(&out.stderr);
    assert!(notes.contains("c.yaml:5:3 Canary web: spec.provider: \"osm\" is retired: Open Service Mesh was archived in 2023"), "{notes}");

    let dir = tempdir("unknown-field");
    let file = dir.join("c.yaml");
    std::fs::write(
        &file,
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web, resourceVersion: \"42\"}\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service: {port: 80, primaryTimeout: 5s}\n  analysis: {interval: 1m, stepWeight: 10, canaryReadyThreshold: 50}\nstatus: {phase: Succeeded}\n",
    )
    .unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    let notes = text(&out.stderr);
    assert!(
        notes.contains("spec.service.primaryTimeout: serin has no such field"),
        "{notes}"
    );
    let converted = text(&out.stdout);
    assert!(
        !converted.contains("resourceVersion") && !converted.contains("status"),
        "{converted}"
    );
    assert!(
        converted.contains("canaryReadyThreshold: 50"),
        "{converted}"
    );
    // A migrate with nothing to decide exits 0 and passes other documents through.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata: {name: team}\nspec: {type: msteams, secretRef: {name: teams-url}}\n",
    )
    .unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kind: Service"));
}

/// A MetricTemplate is decoded the same way by `check`, `migrate` and the controller: a type
/// serin lacks is refused on `spec.provider.type`; every Flagger type is one of serin's.
#[test]
fn metric_provider_types_serin_lacks_are_refused_by_check_and_migrate() {
    let dir = tempdir("metric-providers");
    let template = |api: &str, name: &str, kind: &str| {
        format!(
            "apiVersion: {api}\nkind: MetricTemplate\nmetadata: {{name: {name}, namespace: prod}}\nspec:\n  provider: {{type: {kind}, address: 'https://api.datadoghq.com'}}\n  query: avg:latency{{*}}\n"
        )
    };
    let checked = dir.join("templates.yaml");
    std::fs::write(
        &checked,
        [
            template("serin.dev/v1beta1", "sd", "stackdriver"),
            template("serin.dev/v1beta1", "typo", "promethus"),
            template("serin.dev/v1beta1", "ok", "prometheus"),
            template("serin.dev/v1beta1", "graphite", "graphite"),
            template("serin.dev/v1beta1", "influx", "influxdb"),
            // Graphite and InfluxDB are no Prometheus-compatible server: a template of theirs
            // names its own.
            "apiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: nowhere, namespace: prod}\nspec:\n  provider: {type: graphite}\n  query: target=a.b\n".to_string(),
            // Datadog's API has one address, Flagger's default: a template may leave it out.
            "apiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: dd, namespace: prod}\nspec:\n  provider: {type: datadog, secretRef: {name: dd}}\n  query: avg:latency{*}\n".to_string(),
        ]
        .join("---\n"),
    )
    .unwrap();
    let out = serin(&["check", checked.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("MetricTemplate sd"), "{stdout}");
    assert!(
        stdout.contains("MetricTemplate typo: spec.provider.type: unknown metric provider \"promethus\"; serin queries prometheus, graphite, influxdb, datadog, newrelic"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "spec.provider.address: the graphite metric provider needs its server's address"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    let flagger = dir.join("flagger.yaml");
    std::fs::write(&flagger, template("flagger.app/v1beta1", "kt", "keptn")).unwrap();
    let out = serin(&["migrate", flagger.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let migrated = text(&out.stdout);
    assert!(
        migrated.contains("apiVersion: serin.dev/v1beta1") && migrated.contains("type: keptn"),
        "{migrated}"
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serin crds | head -1`, `serin simulate ... | head`: the reader goes away before serin has
/// written. The pipe here is closed before serin starts, so every write meets a closed pipe.
#[test]
fn every_command_exits_quietly_when_its_reader_goes_away() {
    for args in [
        &["crds"][..],
        &["simulate", "examples/podinfo-promote.yaml"],
        &["simulate", "examples/podinfo-promote.yaml", "-o", "json"],
        &["check", "tests/fixtures/cli/broken"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(args)
            .current_dir(ROOT)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "serin {args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "serin {args:?}: {stderr}");
        // 141 as for a filter killed by SIGPIPE: pipefail still sees the output was not read.
        assert_eq!(out.status.code(), Some(141), "serin {args:?}: {stderr}");
    }
}

/// A pipeline linting for a cluster whose controller refuses cross-namespace references (the
/// chart's default) sees the same refusal, naming the field.
#[test]
fn check_refuses_cross_namespace_references_when_the_controller_would() {
    let dir = tempdir("cross-namespace");
    let file = dir.join("canary.yaml");
    std::fs::write(
        &file,
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: web, namespace: shop}\nspec:\n  provider: istio\n  targetRef: {name: web}\n  service: {port: 80}\n  analysis:\n    stepWeight: 10\n    metrics:\n      - {name: errors, templateRef: {name: errors, namespace: billing}, thresholdRange: {max: 1}}\n      - {name: latency, templateRef: {name: latency, namespace: shop}, thresholdRange: {max: 1}}\n---\napiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: errors, namespace: billing}\nspec: {provider: {type: prometheus, address: \"http://p:9090\"}, query: \"1\"}\n---\napiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: latency, namespace: shop}\nspec: {provider: {type: prometheus, address: \"http://p:9090\"}, query: \"1\"}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let allowed = serin(&["check", path]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stdout));
    let refused = serin(&["check", "--no-cross-namespace-refs", path]);
    assert_eq!(refused.status.code(), Some(1));
    let stdout = text(&refused.stdout);
    assert!(
        stdout.contains("Canary web: spec.analysis.metrics[0].templateRef.namespace: \"billing\" is another namespace than the Canary's (\"shop\"): cross-namespace references are disabled"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

/// Graphite and InfluxDB answer series, so `serin check` accepts a judged metric on their
/// templates as on Prometheus'.
#[test]
fn check_accepts_judged_metrics_on_graphite_and_influxdb_templates() {
    let dir = tempdir("judged-providers");
    let file = dir.join("canary.yaml");
    std::fs::write(
        &file,
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: web, namespace: shop}\nspec:\n  provider: istio\n  targetRef: {name: web}\n  service: {port: 80}\n  analysis:\n    stepWeight: 10\n    metrics:\n      - {name: errors, templateRef: {name: errors}, judge: {step: 10s}}\n      - {name: latency, templateRef: {name: latency}, judge: {step: 10s}}\n---\napiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: errors, namespace: shop}\nspec: {provider: {type: graphite, address: \"http://graphite\"}, query: \"target=apps.{{ workload }}.errors\"}\n---\napiVersion: serin.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: latency, namespace: shop}\nspec: {provider: {type: influxdb, address: \"http://influxdb:8086\"}, query: \"SELECT mean(v) FROM latency WHERE w = '{{ workload }}' AND time > now() - 10m GROUP BY time(10s)\"}\n",
    )
    .unwrap();
    let out = serin(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// A Flagger Deployment's `args:` start `serin controller`: flags with an equivalent are read
/// as serin's (here up to the provider check, which refuses a provider before any connection);
/// one serin cannot honour stops it with the flag's name and why.
#[test]
fn the_controller_reads_flaggers_flags_and_refuses_those_it_cannot_honour() {
    let controller = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .arg("controller")
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .env_remove("SLACK_TOKEN")
            .output()
            .unwrap()
    };
    let out = controller(&[
        "-log-level=warning",
        "-threadiness=4",
        "-port=8081",
        "-slack-user=flagger",
        "-enable-leader-election",
        "-enable-config-tracking=true",
        "-mesh-provider",
        "consul",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--mesh-provider: unknown traffic provider \"consul\""),
        "{}",
        text(&out.stderr)
    );
    let out = controller(&["-mesh-provider=istio", "-kubeconfig-burst=250"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: -kubeconfig-burst: "),
        "{}",
        text(&out.stderr)
    );
}

/// kubectl's flags go before or after the command, and every cluster command reads the
/// kubeconfig and context they name (the file here does not exist or has no such context, so
/// the error shows which was read, without a cluster).
#[test]
fn cluster_flags_are_read_anywhere_on_the_line_by_every_cluster_command() {
    let dir = tempdir("flags");
    let missing = dir.join("missing.kubeconfig");
    let missing = missing.to_str().unwrap();
    let flagger_flag = format!("-kubeconfig={missing}");
    for args in [
        &["-n", "team", "--kubeconfig", missing, "get"][..],
        &["get", "-A", "--kubeconfig", missing, "-n", "team"],
        &["--kubeconfig", missing, "status", "web", "--watch"],
        &["promote", "web", "--kubeconfig", missing],
        &["--kubeconfig", missing, "wait", "web"],
        &["version", "--kubeconfig", missing],
        &["--kubeconfig", missing, "controller"],
        // Flagger's flag, read by the controller as its own.
        &["controller", &flagger_flag],
    ] {
        let out = serin(args);
        assert_eq!(out.status.code(), Some(2), "serin {args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("--kubeconfig {missing}")),
            "serin {args:?}: {stderr}"
        );
    }
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: a\n  context: {cluster: c, user: u, namespace: alpha}\ncurrent-context: a\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    let out = serin(&[
        "--context",
        "nope",
        "get",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    let out = serin(&["get", "--request-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid duration \"soon\""),
        "{}",
        text(&out.stderr)
    );
    // The client's version needs no cluster; it comes before the cluster's answer.
    let out = serin(&["version", "--kubeconfig", missing]);
    assert_eq!(
        text(&out.stdout),
        format!("Client     serin {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, opening) in [
        ("bash", "_serin()"),
        ("zsh", "#compdef serin"),
        ("fish", "complete -c serin"),
    ] {
        let out = serin(&["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(opening), "{shell}: {script}");
        for word in [
            "promote",
            "status",
            "namespace",
            "selector",
            "request-timeout",
        ] {
            assert!(script.contains(word), "{shell} completes no {word}");
        }
    }
    let out = serin(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'tcsh'"));
}

/// Installed as `kubectl-serin`, it is the same program and names itself `kubectl serin`.
#[test]
fn as_a_kubectl_plugin_it_names_itself_kubectl_serin() {
    let dir = tempdir("plugin");
    let plugin = dir.join("kubectl-serin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_serin"), &plugin).unwrap();
    let out = Command::new(&plugin)
        .args(["get", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("Usage: kubectl serin get [OPTIONS]"),
        "{}",
        text(&out.stdout)
    );
}

/// An A/B match written `header:` instead of `headers:` would match every request (sending
/// every user to the canary): `check` refuses it and points at the line and column of the
/// misspelt key, also when the manifest comes from a pipe (`helm template ... | serin check -`).
#[test]
fn check_points_at_a_misspelt_field_and_reads_standard_input() {
    let manifest = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: podinfo\nspec:\n  provider: istio\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  service: {port: 9898}\n  analysis:\n    interval: 1m\n    iterations: 10\n    match:\n      - header:\n          x-canary: {exact: insider}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "-:13:9 Canary podinfo: spec.analysis.match[0].header: unknown field `header`, expected one of `headers`"
        ),
        "{stdout}"
    );
}

/// A GitOps repository holds charts and other YAML beside manifests: in a directory, Helm
/// templates and YAML that is not a manifest are left out with a note, not failed on; the
/// manifests beside them are still checked. Named on the command line, a file is always read.
#[test]
fn check_skips_helm_templates_and_other_yaml_of_a_directory_with_a_note() {
    let dir = tempdir("repo");
    std::fs::create_dir_all(dir.join("chart/templates")).unwrap();
    std::fs::write(
        dir.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("chart/templates/canary.yaml"),
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: {{ .Release.Name }}\n{{- with .Values.analysis }}\nspec: {{ toYaml . | nindent 2 }}\n{{- end }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("settings.yaml"), "retries: [1, 2\n").unwrap();
    std::fs::write(
        dir.join("canary.yaml"),
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  provider: gatewayapi\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service: {port: 80, gatewayRefs: [{name: public}]}\n  analysis: {interval: 30s, threshold: 3, stepWeights: [5, 25, 50]}\n",
    )
    .unwrap();
    let out = serin(&["check", dir.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{stderr}", text(&out.stdout));
    assert!(
        stderr.contains("chart/templates/canary.yaml: skipped, a Helm template")
            && stderr.contains(
                "settings.yaml: skipped, not YAML serin can read and not a Kubernetes manifest"
            )
            && stderr.contains("checked 1 serin objects"),
        "{stderr}"
    );
    let out = serin(&["check", dir.join("settings.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// The worked route templates pass `serin check`; a template with a YAML syntax error, an
/// unknown placeholder or another kind than declared is refused with the template's line.
#[test]
fn check_passes_the_worked_route_templates_and_names_the_line_of_a_broken_one() {
    let out = serin(&["check", "examples/route-templates"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr)
            .contains("checked 3 serin objects (0 other documents skipped): no problems"),
        "{}",
        text(&out.stderr)
    );
    let example =
        std::fs::read_to_string(format!("{ROOT}/examples/route-templates/consul.yaml")).unwrap();
    let dir = tempdir("route-templates");
    let broken = [
        (
            "syntax",
            example.replace("- weight: ${canary.weight}", "- weight: [${canary.weight}"),
            "line 10: not YAML",
        ),
        (
            "placeholder",
            example.replace("${canary.weight}", "${canary.weigth}"),
            "line 9: unknown placeholder ${canary.weigth}",
        ),
        (
            "kind",
            example.replace(
                "            kind: ServiceSplitter",
                "            kind: ServiceRouter",
            ),
            "line 2: renders kind \"ServiceRouter\", but the object declares \"ServiceSplitter\"",
        ),
        (
            "name",
            example.replace(
                "              name: ${service.name}",
                "              name: splitter",
            ),
            "line 4: renders metadata.name \"splitter\", but the object declares \"podinfo\"",
        ),
    ];
    for (name, manifest, problem) in broken {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, manifest).unwrap();
        let out = serin(&["check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let said = text(&out.stdout);
        assert!(
            said.contains(&format!(
                "Canary podinfo: spec.service.routeTemplate.objects[0].template: {problem}"
            )),
            "{name}: {said}"
        );
    }
}

/// Every field serin does not know is an error of its own, with its line, also where decoding
/// stops at another error (the API server would drop a misspelt field without a word).
#[test]
fn check_lists_every_unknown_field_beside_a_decoding_error() {
    let dir = tempdir("unknown-fields");
    let file = dir.join("canary.yaml");
    std::fs::write(
        &file,
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  skipAnalysys: true\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service:\n    port: eighty\n  analysis:\n    stepWeight: 10\n    metrics:\n      - {name: request-success-rate, tresholdRange: {min: 99}}\n",
    )
    .unwrap();
    let out = serin(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let path = file.display();
    for expected in [
        format!("{path}:8:5 Canary web: spec.service.port: invalid type: string \"eighty\""),
        format!("{path}:5:3 Canary web: spec.skipAnalysys: unknown field"),
        format!("{path}:12:38 Canary web: spec.analysis.metrics[0].tresholdRange: unknown field"),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}
