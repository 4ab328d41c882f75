//! The Helm chart (charts/serin) through Helm's real engine: Helm 4's Go SDK, bundled by the
//! PyPI package helm-python-sdk in a virtualenv (`tests/helm/helm.py`). Rendered and linted for
//! the defaults and each notable combination, bad values refused by values.schema.json, and
//! the rendered manifests applied to the real control plane, where `serin controller` runs as
//! the chart's ServiceAccount, with the chart's arguments, through a full rollout.

mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cluster::controller::{ControllerProcess, account_kubeconfig, install, work_dir};
use cluster::rollout::Setup;
use cluster::workloads::Readiness;
use cluster::{client, free_port, namespace};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use serin::api::Phase;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SDK: &str = "helm-python-sdk==0.2.2";

/// The virtualenv's python with helm-python-sdk: `SERIN_HELM_PYTHON` (tests/run.sh makes it),
/// else one made here once in ~/.cache/serin (built aside and renamed into place, so test
/// processes racing to make it never see half a virtualenv).
fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("SERIN_HELM_PYTHON") {
                return PathBuf::from(path);
            }
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            let dir = Path::new(&home).join(".cache/serin/helm-python-sdk-0.2.2");
            let python = dir.join("bin/python");
            if python.exists() {
                return python;
            }
            let staging = dir.with_extension(format!("staging-{}", std::process::id()));
            let ok = |status: std::io::Result<std::process::ExitStatus>, what: &str| {
                assert!(
                    status.is_ok_and(|s| s.success()),
                    "{what} failed: the chart tests need python3 with venv (Debian: python3-venv) and PyPI"
                );
            };
            ok(
                Command::new("python3").args(["-m", "venv"]).arg(&staging).status(),
                "python3 -m venv",
            );
            ok(
                Command::new(staging.join("bin/pip"))
                    .args(["install", "--quiet", SDK])
                    .status(),
                "pip install helm-python-sdk",
            );
            if std::fs::rename(&staging, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
            python
        })
        .clone()
}

/// Runs `tests/helm/helm.py`; Ok(output) or Err(Helm's error message).
fn helm(command: &str, values: &Value, namespace: &str, release: &str) -> Result<Value, String> {
    let out = Command::new(python())
        .arg(format!("{ROOT}/tests/helm/helm.py"))
        .args([
            command,
            &format!("{ROOT}/charts/serin"),
            &values.to_string(),
            namespace,
            release,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "helm.py printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match parsed.get("error") {
        Some(error) => Err(error.as_str().unwrap_or_default().to_string()),
        None => Ok(parsed),
    }
}

/// Every rendered object, from every template.
fn render(values: Value) -> Vec<Value> {
    render_in(values, "serin-system", "serin")
}

fn render_in(values: Value, namespace: &str, release: &str) -> Vec<Value> {
    let out = helm("render", &values, namespace, release)
        .unwrap_or_else(|e| panic!("rendering with {values}: {e}"));
    let mut objects = Vec::new();
    for (template, text) in out["manifests"].as_object().unwrap() {
        if template.ends_with("NOTES.txt") {
            continue;
        }
        for doc in serde_yaml_ng::Deserializer::from_str(text.as_str().unwrap()) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{template} is not YAML: {e}"));
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    objects
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The controller's own ClusterRole (beside the aggregated view and edit roles).
fn controller_role(objects: &[Value]) -> &Value {
    find(objects, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "serin")
        .expect("the controller's ClusterRole")
}

fn container(objects: &[Value]) -> &Value {
    &find(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

#[test]
fn the_chart_carries_the_repositorys_crds_and_rbac_files() {
    for (copy, original) in [
        ("charts/serin/files/crds.yaml", "crds/serin.yaml"),
        ("charts/serin/files/flagger-crds.yaml", "crds/flagger.yaml"),
        ("charts/serin/files/rbac.yaml", "config/rbac.yaml"),
        (
            "charts/serin/files/rbac-leader-election.yaml",
            "config/rbac-leader-election.yaml",
        ),
        (
            "charts/serin/files/loadtester-rbac.yaml",
            "config/loadtester-rbac.yaml",
        ),
    ] {
        let read = |p: &str| std::fs::read_to_string(format!("{ROOT}/{p}")).unwrap();
        assert!(
            read(copy) == read(original),
            "{copy} differs from {original}: copy it again (cp {original} {copy})"
        );
    }
}

/// (resource, verb) pairs a rules list grants.
fn grants(rules: &Value) -> std::collections::BTreeSet<(String, String)> {
    let mut pairs = std::collections::BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        for resource in rule["resources"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                let (r, v) = (resource.as_str().unwrap(), verb.as_str().unwrap());
                pairs.insert((r.to_string(), v.to_string()));
            }
        }
    }
    pairs
}

/// Least privilege, kept honest: the permissions table of docs/operations.md (which says why
/// each verb is needed) and the RBAC files grant exactly the same verbs, so a permission
/// cannot be added without a reason, nor a documented one go missing.
#[test]
fn every_granted_permission_is_documented_with_its_reason_and_no_more() {
    let docs = std::fs::read_to_string(format!("{ROOT}/docs/operations.md")).unwrap();
    let section = docs
        .split("## Permissions")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("docs/operations.md has a Permissions section");
    let mut documented = std::collections::BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let resources = cells[1].split('`').skip(1).step_by(2);
        let verbs: Vec<&str> = cells[2].split(',').map(str::trim).collect();
        for resource in resources.filter(|r| !r.contains('.')) {
            for verb in &verbs {
                documented.insert((resource.to_string(), verb.to_string()));
            }
        }
    }
    let mut granted = grants(&yaml_file("config/rbac.yaml")["rules"]);
    granted.extend(grants(
        &yaml_file("config/rbac-leader-election.yaml")["rules"],
    ));
    assert_eq!(granted, documented);
}

#[test]
fn lint_is_clean_for_the_defaults_and_each_notable_combination() {
    let combinations = [
        json!({}),
        json!({"replicas": 2, "leaderElection": {"enabled": true}}),
        json!({"scope": {"namespace": "apps", "labelSelector": "shard=a"}, "leaderElection": {"enabled": true}}),
        json!({"alerts": {"secretName": "slack", "channel": "releases", "severity": "warn"}, "clusterName": "prod-eu"}),
        json!({"serviceMonitor": {"enabled": true}, "dashboard": {"enabled": true}}),
        json!({"podMonitor": {"enabled": true, "labels": {"release": "prom"}}}),
        json!({"loadtester": {"enabled": true, "tokenSecret": {"name": "loadtester-token"}},
               "meshProvider": "gatewayapi"}),
        json!({"secretsAccess": "by-name", "noCrossNamespaceRefs": false}),
        json!({"flaggerApi": {"enabled": true, "installCRDs": true}, "flaggerMetrics": true}),
        json!({"prometheusRule": {"enabled": true, "labels": {"release": "prom"}}, "podMonitor": {"enabled": true},
               "dashboard": {"enabled": true, "annotations": {"grafana_folder": "serin"}}}),
        json!({"fullnameOverride": "delivery", "crds": {"install": false}, "rbac": {"aggregateClusterRoles": false},
               "podSecurityContext": {"runAsNonRoot": true, "runAsUser": 1001}, "securityContext": {"readOnlyRootFilesystem": true},
               "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle"}}],
               "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/extra", "readOnly": true}]}),
        json!({"replicas": 3, "leaderElection": {"enabled": true}, "priorityClassName": "system-cluster-critical",
               "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
        json!({"extraArgs": ["--concurrency=4"], "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
               "tolerations": [{"key": "infra", "operator": "Exists"}], "nodeSelector": {"pool": "system"},
               "affinity": {"podAntiAffinity": {}}, "image": {"tag": "0.1.1"}}),
    ];
    for values in combinations {
        let report = helm("lint", &values, "serin-system", "serin").unwrap();
        let problems: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(0) >= 2)
            .collect();
        assert!(problems.is_empty(), "{values}: {problems:?}");
        assert_eq!(report["errors"], json!([]), "{values}");
        render(values);
    }
}

#[test]
fn the_default_install_is_hardened_and_runs_the_controller_with_the_rbac_file() {
    let objects = render(json!({}));
    let deployment = find(&objects, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(&objects);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["image"], "ghcr.io/serin-dev/serin:0.1.0");
    assert_eq!(args(&objects)[0], "controller");
    // The ClusterRole is config/rbac.yaml's, rule for rule.
    let role = controller_role(&objects);
    assert_eq!(role["rules"], yaml_file("config/rbac.yaml")["rules"]);
    let leases = |rules: &Value| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"].to_string().contains("leases"))
    };
    assert!(!leases(&role["rules"]), "Leases only through the Role");
    assert!(
        find(&objects, "Role").is_empty(),
        "no leader election, no Role"
    );
    // Tenants cannot borrow each other's templates; Secrets are watched.
    let a = args(&objects);
    assert!(
        a.contains(&"--no-cross-namespace-refs".to_string()),
        "{a:?}"
    );
    assert!(a.contains(&"--secrets-access=watch".to_string()), "{a:?}");
    // Cloud metadata, loopback and the API server are out of tenants' reach.
    assert!(
        a.contains(&"--egress-policy=deny-internal".to_string()),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|arg| arg.starts_with("--egress-allow")),
        "{a:?}"
    );
    let binding = find(&objects, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["name"], "serin");
    assert_eq!(binding["subjects"][0]["namespace"], "serin-system");
    assert!(
        find(&objects, "PodDisruptionBudget").is_empty(),
        "one replica, no PDB"
    );
    assert_eq!(find(&objects, "Service").len(), 1);
}

#[test]
fn drop_in_mode_serves_flaggers_group_and_installs_its_crds_only_when_asked() {
    let defaults = render(json!({}));
    assert!(!args(&defaults).contains(&"--flagger-api".to_string()));
    let flagger_crds = |objects: &[Value]| -> Vec<String> {
        find(objects, "CustomResourceDefinition")
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
            .filter(|name| name.ends_with(".flagger.app"))
            .collect()
    };
    assert!(flagger_crds(&defaults).is_empty());
    // Flagger's chart installed the CRDs: serin only reconciles them.
    let kept = render(json!({"flaggerApi": {"enabled": true}}));
    assert!(args(&kept).contains(&"--flagger-api".to_string()));
    assert!(flagger_crds(&kept).is_empty());
    let installed = render(json!({"flaggerApi": {"enabled": true, "installCRDs": true}}));
    let crds: Vec<&Value> = find(&installed, "CustomResourceDefinition")
        .into_iter()
        .filter(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with(".flagger.app")
        })
        .collect();
    let names: Vec<&str> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "canaries.flagger.app",
            "metrictemplates.flagger.app",
            "alertproviders.flagger.app"
        ]
    );
    for crd in crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "uninstalling the chart must not delete every Canary"
        );
    }
}

#[test]
fn notable_combinations_render_what_they_promise() {
    // HA: two replicas, a Lease, a PodDisruptionBudget.
    let objects = render(json!({"replicas": 2, "leaderElection": {"enabled": true}}));
    assert_eq!(find(&objects, "Deployment")[0]["spec"]["replicas"], 2);
    let a = args(&objects);
    assert!(a.contains(&"--leader-election".to_string()), "{a:?}");
    assert!(a.contains(&"--leader-election-namespace=serin-system".to_string()));
    assert_eq!(
        find(&objects, "PodDisruptionBudget")[0]["spec"]["minAvailable"],
        1
    );
    // The Lease's Role, in the release's namespace only, with config/rbac-leader-election.yaml.
    let roles = find(&objects, "Role");
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["metadata"]["namespace"], "serin-system");
    assert_eq!(
        roles[0]["rules"],
        yaml_file("config/rbac-leader-election.yaml")["rules"]
    );
    assert_eq!(
        find(&objects, "RoleBinding")[0]["roleRef"]["name"],
        "serin-leader-election"
    );

    // Secrets read by name: the same rules without list and watch on Secrets.
    let objects = render(
        json!({"secretsAccess": "by-name", "noCrossNamespaceRefs": false,
        "egress": {"policy": "deny-private", "allow": ["10.96.0.0/12", "fd00::/8"]}}),
    );
    let a = args(&objects);
    assert!(
        a.contains(&"--egress-policy=deny-private".to_string()),
        "{a:?}"
    );
    assert!(
        a.contains(&"--egress-allow=10.96.0.0/12,fd00::/8".to_string()),
        "{a:?}"
    );
    assert!(a.contains(&"--secrets-access=by-name".to_string()), "{a:?}");
    assert!(
        !a.contains(&"--no-cross-namespace-refs".to_string()),
        "{a:?}"
    );
    let rules = controller_role(&objects)["rules"].clone();
    let secrets = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"] == json!(["secrets"]))
        .unwrap();
    assert_eq!(secrets["verbs"], json!(["get", "create", "patch"]));
    let mut expected = yaml_file("config/rbac.yaml")["rules"].clone();
    for rule in expected.as_array_mut().unwrap() {
        if rule["resources"] == json!(["secrets"]) {
            rule["verbs"] = json!(["get", "create", "patch"]);
        }
    }
    assert_eq!(rules, expected, "only the Secrets rule differs");

    // Namespaced: a Role and RoleBinding in the watched namespace, nothing cluster-wide; the
    // Lease's Role in the release's namespace.
    let objects = render(
        json!({"scope": {"namespace": "apps", "labelSelector": "shard=a"},
        "leaderElection": {"enabled": true}}),
    );
    assert!(find(&objects, "ClusterRole").is_empty());
    assert!(find(&objects, "ClusterRoleBinding").is_empty());
    let roles = find(&objects, "Role");
    assert_eq!(roles[0]["metadata"]["namespace"], "apps");
    assert_eq!(roles[0]["rules"], yaml_file("config/rbac.yaml")["rules"]);
    assert_eq!(roles[1]["metadata"]["namespace"], "serin-system");
    assert_eq!(
        roles[1]["rules"],
        yaml_file("config/rbac-leader-election.yaml")["rules"]
    );
    let a = args(&objects);
    assert!(
        a.contains(&"--namespace=apps".to_string())
            && a.contains(&"--label-selector=shard=a".to_string()),
        "{a:?}"
    );

    // The default alert provider: the URL comes from the Secret through the environment.
    let objects = render(
        json!({"alerts": {"secretName": "slack-url", "channel": "releases", "severity": "warn"},
        "clusterName": "prod-eu", "meshProvider": "traefik:traefik.containo.us", "metricsServer": "http://thanos:9090",
        "ingressClass": "contour-external",
        "log": {"level": "debug", "format": "text"}}),
    );
    let a = args(&objects);
    for expected in [
        "--alert-channel=releases",
        "--alert-severity=warn",
        "--cluster-name=prod-eu",
        "--mesh-provider=traefik:traefik.containo.us",
        "--ingress-class=contour-external",
        "--metrics-server=http://thanos:9090",
        "--log-format=text",
    ] {
        assert!(a.contains(&expected.to_string()), "{expected} not in {a:?}");
    }
    let env = container(&objects)["env"].as_array().unwrap().clone();
    let url = env.iter().find(|e| e["name"] == "SERIN_ALERT_URL").unwrap();
    assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "slack-url");
    assert_eq!(url["valueFrom"]["secretKeyRef"]["key"], "address");
    assert!(
        env.iter()
            .any(|e| e["name"] == "RUST_LOG" && e["value"] == "debug")
    );

    // Istio multi-cluster: the mesh's kubeconfig mounted from its Secret, read-only.
    let objects = render(json!({"meshKubeconfig": {"secretName": "istio-kubeconfig"}}));
    assert!(
        args(&objects)
            .contains(&"--kubeconfig-service-mesh=/etc/serin/mesh/kubeconfig".to_string())
    );
    let deployment = find(&objects, "Deployment")[0];
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["secret"]["secretName"], "istio-kubeconfig");
    let mount = &container(&objects)["volumeMounts"][0];
    assert_eq!(
        (&mount["name"], &mount["mountPath"], &mount["readOnly"]),
        (&volume["name"], &json!("/etc/serin/mesh"), &json!(true))
    );

    // Monitoring and the dashboard.
    let objects =
        render(json!({"serviceMonitor": {"enabled": true}, "dashboard": {"enabled": true}}));
    let monitor = find(&objects, "ServiceMonitor")[0];
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
    let dashboards = find(&objects, "ConfigMap");
    let mut shipped = Vec::new();
    for dashboard in dashboards {
        assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
        let (file, text) = dashboard["data"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        let json: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
        let original: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{ROOT}/charts/serin/dashboards/{file}")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            json, original,
            "the ConfigMap ships the dashboard file {file}"
        );
        shipped.push(json["uid"].as_str().unwrap().to_string());
    }
    shipped.sort();
    assert_eq!(shipped, ["serin-canary", "serin-overview"]);

    // The load tester with its least-privilege Role, its token and its limits.
    let objects = render(json!({"loadtester": {"enabled": true, "maxRate": 200,
        "tokenSecret": {"name": "loadtester-token", "key": "bearer"}}}));
    let tester = find(&objects, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "serin-loadtester")
        .unwrap();
    let pod = &tester["spec"]["template"]["spec"];
    let tester_args = &pod["containers"][0]["args"];
    assert_eq!(tester_args[0], "loadtester");
    for expected in [
        "--token-file=/var/run/serin-loadtester/bearer",
        "--max-rate=200",
        "--max-concurrency=100",
        "--max-duration=1h",
        "--max-loads=20",
        "--max-gates=1000",
    ] {
        assert!(
            tester_args.as_array().unwrap().contains(&json!(expected)),
            "{expected} not in {tester_args}"
        );
    }
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "loadtester-token"
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/serin-loadtester"
    );
    let role = find(&objects, "Role")[0];
    assert_eq!(
        role["rules"],
        yaml_file("config/loadtester-rbac.yaml")["rules"]
    );
    // The install notes tell how to give a namespace its own token, not to share the key.
    let values = json!({"loadtester": {"enabled": true, "tokenSecret": {"name": "k"}}});
    let out = helm("render", &values, "serin-system", "serin").unwrap();
    let (_, notes) = out["manifests"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| template.ends_with("NOTES.txt"))
        .unwrap();
    let notes = notes.as_str().unwrap();
    assert!(
        notes.contains("Secret k holds its key")
            && notes.contains("serin loadtester token --namespace <ns>"),
        "{notes}"
    );
}

/// `rbac.routeTemplateRules` adds the kinds route templates write to the ClusterRole (and to
/// the namespaced Role), each named: a wildcard is refused at install.
#[test]
fn route_template_rules_extend_the_role_and_refuse_wildcards() {
    let rule = json!({"apiGroups": ["consul.hashicorp.com"], "resources": ["servicesplitters"],
        "verbs": ["get", "create", "patch", "update"]});
    let values = json!({"rbac": {"routeTemplateRules": [rule]}});
    let objects = render(values.clone());
    let rules = controller_role(&objects)["rules"].clone();
    let mut expected = yaml_file("config/rbac.yaml")["rules"].clone();
    expected.as_array_mut().unwrap().push(rule.clone());
    assert_eq!(
        rules, expected,
        "the template's kind appended, nothing else changed"
    );
    let mut namespaced = values;
    namespaced["scope"] = json!({"namespace": "apps"});
    let objects = render(namespaced);
    let role = find(&objects, "Role")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == "apps")
        .unwrap();
    assert_eq!(role["rules"].as_array().unwrap().last(), Some(&rule));
    for (wild, field) in [
        (
            json!({"apiGroups": ["*"], "resources": ["mappings"], "verbs": ["get"]}),
            "/rbac/routeTemplateRules/0/apiGroups/0",
        ),
        (
            json!({"apiGroups": ["getambassador.io"], "resources": ["*"], "verbs": ["get"]}),
            "/rbac/routeTemplateRules/0/resources/0",
        ),
        (
            json!({"apiGroups": ["getambassador.io"], "resources": ["mappings"], "verbs": ["delete"]}),
            "/rbac/routeTemplateRules/0/verbs/0",
        ),
    ] {
        let values = json!({"rbac": {"routeTemplateRules": [wild]}});
        let error = helm("validate", &values, "serin-system", "serin")
            .expect_err(&format!("{values} was accepted"));
        assert!(error.contains(field), "{values}: {error}");
    }
}

#[test]
fn bad_values_are_refused_at_install_with_the_field_named() {
    let cases = [
        (json!({"replicas": 2}), "/leaderElection/enabled"),
        (json!({"meshProvider": "skipper"}), "/meshProvider"),
        (
            json!({"metricsServer": "prometheus:9090"}),
            "/metricsServer",
        ),
        (json!({"alerts": {"severity": "loud"}}), "/alerts/severity"),
        (json!({"alerts": {"type": "pagerduty"}}), "/alerts/type"),
        (json!({"log": {"format": "xml"}}), "/log/format"),
        (
            json!({"replica": 2}),
            "additional properties 'replica' not allowed",
        ),
        (json!({"concurrency": 0}), "/concurrency"),
        (
            json!({"scope": {"namespace": "Apps_Prod"}}),
            "/scope/namespace",
        ),
        (
            json!({"serviceMonitor": {"enabled": true}, "podMonitor": {"enabled": true}}),
            "/podMonitor/enabled",
        ),
        (
            json!({"alerts": {"repeatWindow": "15 minutes"}}),
            "/alerts/repeatWindow",
        ),
        (json!({"service": {"port": "http"}}), "/service/port"),
        (json!({"secretsAccess": "never"}), "/secretsAccess"),
        (json!({"egress": {"policy": "deny-all"}}), "/egress/policy"),
        (
            json!({"egress": {"allow": ["10.0.0.1"]}}),
            "/egress/allow/0",
        ),
        (json!({"loadtester": {"enabled": true}}), "/loadtester"),
        (json!({"nameOverride": "Serin_Prod"}), "/nameOverride"),
        (json!({"crds": {"install": "yes"}}), "/crds/install"),
        (
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]}),
            "/topologySpreadConstraints/0",
        ),
        (
            json!({"extraVolumeMounts": [{"name": "ca", "mountPath": "etc/ca"}]}),
            "/extraVolumeMounts/0/mountPath",
        ),
        (
            json!({"prometheusRule": {"enabled": true, "stuckFor": "30 minutes"}}),
            "/prometheusRule/stuckFor",
        ),
        (
            json!({"loadtester": {"enabled": true, "tokenSecret": {"name": "t"}, "maxGates": 5000}}),
            "/loadtester/maxGates",
        ),
    ];
    for (values, field) in cases {
        let error = helm("validate", &values, "serin-system", "serin")
            .expect_err(&format!("{values} was accepted"));
        assert!(error.contains(field), "{values}: {error}");
    }
}

/// `helm install` on the real control plane: the chart's objects applied, then the
/// controller run with the rendered Deployment's arguments as the chart's ServiceAccount (the
/// Deployment's pod cannot pull an image here), through a whole rollout.
#[tokio::test]
async fn the_installed_chart_runs_a_rollout_as_its_service_account() {
    let client = client().await;
    install(&client).await;
    let ns = namespace(&client, "helm").await;
    let release = format!("serin-{ns}");
    // Leader election and Secrets read by name: the Lease's Role and the RBAC without list
    // or watch on Secrets are the only permissions it runs with.
    let objects = render_in(
        json!({"scope": {"namespace": ns}, "meshProvider": "gatewayapi",
            "leaderElection": {"enabled": true}, "secretsAccess": "by-name",
            "crds": {"install": false}}),
        &ns,
        &release,
    );
    let params = PatchParams::apply("helm").force();
    for object in &objects {
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                object["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap());
        let resource = ApiResource::from_gvk(&gvk);
        // Objects without a namespace are cluster-wide (the aggregated ClusterRoles).
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let name = object["metadata"]["name"].as_str().unwrap();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("applying {} {name}: {e}", object["kind"]));
    }
    let account = find(&objects, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_string();
    let kubeconfig = account_kubeconfig(
        &client,
        &ns,
        &account,
        work_dir().join(format!("kubeconfig-{ns}-chart")),
    )
    .await;
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args: Vec<String> = args(&objects)
        .into_iter()
        .map(|a| {
            if a.starts_with("--listen=") {
                format!("--listen={listen}")
            } else {
                a
            }
        })
        .collect();
    assert!(args.contains(&format!("--namespace={ns}")), "{args:?}");
    let controller = ControllerProcess::start_with_args(&kubeconfig, args, listen);
    let s = Setup {
        client: client.clone(),
        ns: ns.clone(),
        controller,
    };
    s.create_deployment("app", Readiness::Ready).await;
    let canary = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50});
    s.create_canary("app", canary, json!({"provider": null}))
        .await;
    s.wait_phase("app", Phase::Initialized).await;
    s.gitops_apply("app", "v2").await;
    s.wait_phase("app", Phase::Succeeded).await;
    assert_eq!(s.primary_version("app").await.as_deref(), Some("v2"));
}

fn pod_spec(objects: &[Value]) -> &Value {
    &find(objects, "Deployment")[0]["spec"]["template"]["spec"]
}

/// Objects are named after fullnameOverride, or the release and nameOverride; the name
/// label, which `serin version` selects the controller by, stays `serin`.
#[test]
fn name_overrides_rename_every_object_but_not_the_name_label() {
    let objects =
        render(json!({"fullnameOverride": "delivery", "leaderElection": {"enabled": true}}));
    let mut names: Vec<(String, String)> = objects
        .iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            (o["kind"].as_str().unwrap().to_string(), name)
        })
        .collect();
    names.sort();
    let expected = [
        ("ClusterRole", "delivery"),
        ("ClusterRole", "delivery-edit"),
        ("ClusterRole", "delivery-view"),
        ("ClusterRoleBinding", "delivery"),
        ("Deployment", "delivery"),
        ("Role", "delivery-leader-election"),
        ("RoleBinding", "delivery-leader-election"),
        ("Service", "delivery"),
        ("ServiceAccount", "delivery"),
    ]
    .map(|(k, n)| (k.to_string(), n.to_string()));
    assert_eq!(names, expected);
    let deployment = find(&objects, "Deployment")[0];
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "serin"
    );
    let objects = render_in(json!({"nameOverride": "rollouts"}), "platform", "platform");
    assert_eq!(
        find(&objects, "Deployment")[0]["metadata"]["name"],
        "platform-rollouts"
    );
    assert_eq!(
        find(&objects, "ServiceAccount")[0]["metadata"]["name"],
        "platform-rollouts"
    );
    let objects = render_in(json!({}), "platform", "platform");
    assert_eq!(
        find(&objects, "Deployment")[0]["metadata"]["name"],
        "platform-serin"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A platform chart with serin as a dependency: its `global` values reach serin's schema
/// (which refused them as unknown), and serin's values sit under `serin:`.
#[test]
fn the_chart_works_as_a_subchart_with_global_values() {
    let parent = std::env::temp_dir().join(format!("serin-parent-chart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    copy_dir(
        &Path::new(ROOT).join("charts/serin"),
        &parent.join("charts/serin"),
    );
    std::fs::create_dir_all(parent.join("templates")).unwrap();
    std::fs::write(
        parent.join("templates/NOTES.txt"),
        "The platform, with serin.\n",
    )
    .unwrap();
    std::fs::write(
        parent.join("Chart.yaml"),
        "apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n  - name: serin\n    version: 0.1.0\n",
    )
    .unwrap();
    let chart = parent.to_string_lossy().to_string();
    let run = |command: &str, values: &Value| -> Result<Value, String> {
        let out = Command::new(python())
            .arg(format!("{ROOT}/tests/helm/helm.py"))
            .args([command, &chart, &values.to_string(), "platform", "platform"])
            .output()
            .unwrap();
        let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
        match parsed.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(parsed),
        }
    };
    let values = json!({"global": {"imageRegistry": "registry.example", "storageClass": "fast"},
        "serin": {"replicas": 2, "leaderElection": {"enabled": true}, "dashboard": {"enabled": true}}});
    let out = run("render", &values).unwrap_or_else(|e| panic!("{e}"));
    let manifests = out["manifests"].as_object().unwrap();
    let deployment = manifests
        .iter()
        .find(|(template, _)| template.ends_with("serin/templates/deployment.yaml"))
        .map(|(_, text)| serde_yaml_ng::from_str::<Value>(text.as_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(deployment["metadata"]["name"], "platform-serin");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let report = run("lint", &values).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["errors"], json!([]));
    // The subchart's schema still guards its own values.
    let error = run(
        "render",
        &json!({"global": {"a": 1}, "serin": {"replicas": 2}}),
    )
    .unwrap_err();
    assert!(error.contains("/leaderElection/enabled"), "{error}");
    let _ = std::fs::remove_dir_all(&parent);
}

/// The default pod pins no UID (the image's numeric USER passes runAsNonRoot; OpenShift
/// assigns its own), and both security contexts take the values' keys over the defaults,
/// for the controller and the load tester alike.
#[test]
fn security_contexts_pin_no_uid_and_are_overridable() {
    let objects = render(json!({"loadtester": {"enabled": true, "tokenSecret": {"name": "t"}}}));
    for deployment in find(&objects, "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"],
            json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
            "{}",
            deployment["metadata"]["name"]
        );
        assert_eq!(
            pod["containers"][0]["securityContext"],
            json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "privileged": false, "capabilities": {"drop": ["ALL"]}})
        );
    }
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    assert!(
        dockerfile.lines().any(|l| l == "USER 65532:65532"),
        "runAsNonRoot without runAsUser needs a numeric USER in the image"
    );
    // Helm merges the values with the defaults key by key; null removes a default.
    let pinned = json!({"runAsUser": 1000650000, "fsGroup": 1000650000, "seccompProfile": null});
    let container =
        json!({"readOnlyRootFilesystem": false, "capabilities": {"add": ["NET_BIND_SERVICE"]}});
    let objects = render(
        json!({"podSecurityContext": pinned, "securityContext": container,
        "loadtester": {"enabled": true, "tokenSecret": {"name": "t"}}}),
    );
    for deployment in find(&objects, "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 1000650000, "fsGroup": 1000650000})
        );
        assert_eq!(
            pod["containers"][0]["securityContext"],
            json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": false,
                "privileged": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
        );
    }
}

#[test]
fn extra_volumes_mounts_and_env_join_the_charts_own() {
    let objects = render(json!({
        "meshKubeconfig": {"secretName": "istio-kubeconfig"},
        "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/extra", "readOnly": true}],
        "extraEnv": [{"name": "SSL_CERT_DIR", "value": "/etc/ssl/extra"}]}));
    let pod = pod_spec(&objects);
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["mesh-kubeconfig", "ca"]);
    assert_eq!(pod["volumes"][1]["configMap"]["name"], "ca-bundle");
    let c = container(&objects);
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("mesh-kubeconfig", "/etc/serin/mesh"),
            ("ca", "/etc/ssl/extra")
        ]
    );
    let env = c["env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|e| e == &json!({"name": "SSL_CERT_DIR", "value": "/etc/ssl/extra"}))
    );
    // Without any: no empty lists.
    let objects = render(json!({}));
    assert!(pod_spec(&objects).get("volumes").is_none());
    assert!(container(&objects).get("volumeMounts").is_none());
}

/// With more than one replica the pods prefer different nodes unless `affinity` says
/// otherwise; spread constraints without a selector spread the controller's own pods.
#[test]
fn replicas_spread_over_nodes_and_zones_with_a_priority_class() {
    let ha = json!({"replicas": 2, "leaderElection": {"enabled": true},
        "priorityClassName": "system-cluster-critical",
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"team": "platform"}}}]});
    let objects = render(ha.clone());
    let pod = pod_spec(&objects);
    let own = json!({"app.kubernetes.io/name": "serin", "app.kubernetes.io/instance": "serin",
        "app.kubernetes.io/component": "controller"});
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    let preferred =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        preferred["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        preferred["podAffinityTerm"]["labelSelector"]["matchLabels"],
        own
    );
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    assert_eq!(spread[0]["labelSelector"]["matchLabels"], own);
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread[1]["labelSelector"]["matchLabels"],
        json!({"team": "platform"})
    );
    assert_eq!(spread[1]["maxSkew"], 2);
    // The user's affinity replaces the default.
    let mut own_affinity = ha;
    own_affinity["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}});
    let objects = render(own_affinity.clone());
    assert_eq!(pod_spec(&objects)["affinity"], own_affinity["affinity"]);
    // One replica: nothing to spread.
    let objects = render(json!({}));
    let pod = pod_spec(&objects);
    assert!(pod.get("affinity").is_none() && pod.get("topologySpreadConstraints").is_none());
    assert!(pod.get("priorityClassName").is_none());
}

fn as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(as_floats).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), as_floats(v))).collect())
        }
        other => other.clone(),
    }
}

/// serin's CRDs are templates of the chart (so `helm upgrade` upgrades them; Helm's crds/
/// directory never would), the same as crds/serin.yaml, kept on uninstall unless told.
#[test]
fn crds_are_installed_upgraded_and_kept_as_the_values_say() {
    let out = helm("render", &json!({}), "serin-system", "serin").unwrap();
    assert_eq!(out["crds"], json!([]), "nothing in Helm's crds/ directory");
    let objects = render(json!({}));
    let crds = find(&objects, "CustomResourceDefinition");
    let originals: Vec<Value> = serde_yaml_ng::Deserializer::from_str(
        &std::fs::read_to_string(format!("{ROOT}/crds/serin.yaml")).unwrap(),
    )
    .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
    .collect();
    assert_eq!(crds.len(), originals.len());
    for (crd, original) in crds.iter().zip(&originals) {
        assert_eq!(crd["metadata"]["name"], original["metadata"]["name"]);
        // Helm reads numbers as floats: 65535.0 and 65535 are the same bound to the API server.
        assert_eq!(as_floats(&crd["spec"]), as_floats(&original["spec"]));
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
    }
    let objects = render(json!({"crds": {"keep": false}}));
    for crd in find(&objects, "CustomResourceDefinition") {
        assert!(crd["metadata"].get("annotations").is_none(), "{crd}");
    }
    let objects = render(json!({"crds": {"install": false}}));
    assert!(find(&objects, "CustomResourceDefinition").is_empty());
}

/// Kubernetes folds these into its view and edit roles: a namespace's readers see its
/// Canaries, its editors write them, send requests (a patch of the Canary's annotations)
/// and restart primaries (a patch of the Deployment's pod template), as the CLI does.
#[test]
fn aggregated_roles_let_namespace_users_read_and_request() {
    let role = |objects: &[Value], name: &str| -> Value {
        (*find(objects, "ClusterRole")
            .into_iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no ClusterRole {name}")))
        .clone()
    };
    let objects = render(json!({}));
    let view = role(&objects, "serin-view");
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    let read: std::collections::BTreeSet<_> = grants(&view["rules"]);
    for resource in [
        "canaries",
        "canaries/status",
        "metrictemplates",
        "alertproviders",
    ] {
        for verb in ["get", "list", "watch"] {
            assert!(
                read.contains(&(resource.into(), verb.into())),
                "view: {resource} {verb}"
            );
        }
    }
    assert!(
        read.iter()
            .all(|(_, verb)| ["get", "list", "watch"].contains(&verb.as_str()))
    );
    let edit = role(&objects, "serin-edit");
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let write = grants(&edit["rules"]);
    for (resource, verb) in [
        ("canaries", "patch"),
        ("canaries", "create"),
        ("canaries", "delete"),
        ("metrictemplates", "update"),
        ("alertproviders", "create"),
        ("deployments", "get"),
        ("deployments", "patch"),
        ("statefulsets", "patch"),
        ("daemonsets", "patch"),
    ] {
        assert!(
            write.contains(&(resource.into(), verb.into())),
            "edit: {resource} {verb}"
        );
    }
    assert_eq!(edit["rules"][0]["apiGroups"], json!(["serin.dev"]));
    // Drop-in mode: Flagger's group too.
    let objects = render(json!({"flaggerApi": {"enabled": true}}));
    assert_eq!(
        role(&objects, "serin-edit")["rules"][0]["apiGroups"],
        json!(["serin.dev", "flagger.app"])
    );
    let objects = render(json!({"rbac": {"aggregateClusterRoles": false}}));
    assert_eq!(find(&objects, "ClusterRole").len(), 1);
}

/// The PrometheusRule passes `promtool check rules`, and `promtool test rules` runs
/// tests/prometheus/alerts.test.yaml against it: each alert fires on its synthetic series.
#[test]
fn alerts_pass_promtool_and_each_fires_in_its_unit_test() {
    assert!(
        find(&render(json!({})), "PrometheusRule").is_empty(),
        "off by default"
    );
    let objects = render(
        json!({"prometheusRule": {"enabled": true, "labels": {"release": "prom"}},
        "serviceMonitor": {"enabled": true}}),
    );
    let rule = find(&objects, "PrometheusRule")[0];
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let dir = std::env::temp_dir().join(format!("serin-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml_ng::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        format!("{ROOT}/tests/prometheus/alerts.test.yaml"),
        dir.join("alerts.test.yaml"),
    )
    .unwrap();
    for args in [
        ["check", "rules", "rules.yaml"],
        ["test", "rules", "alerts.test.yaml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian: prometheus) is installed");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    let tests =
        std::fs::read_to_string(format!("{ROOT}/tests/prometheus/alerts.test.yaml")).unwrap();
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
    }
    // The controller-down alert reads the job the chart's PodMonitor gives serin's pods.
    let objects =
        render(json!({"prometheusRule": {"enabled": true}, "podMonitor": {"enabled": true}}));
    let rule = find(&objects, "PrometheusRule")[0];
    let down = &rule["spec"]["groups"][0]["rules"][2];
    assert_eq!(down["alert"], "SerinControllerDown");
    assert!(
        down["expr"]
            .as_str()
            .unwrap()
            .contains(r#"up{job="serin-system/serin", namespace="serin-system"}"#),
        "{down}"
    );
    let monitor = find(&objects, "PodMonitor")[0];
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["honorLabels"],
        true
    );
}

/// On the control plane, Kubernetes folds the chart's aggregated roles into its own: a user
/// with `edit` in a namespace may send requests to Canaries and restart primaries there (the
/// patches `serin promote` and `serin restart` send), one with `view` may read them and
/// nothing more.
#[tokio::test]
async fn namespace_editors_and_viewers_get_serins_verbs_through_aggregation() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kube::api::PostParams;

    let client = client().await;
    install(&client).await;
    let ns = namespace(&client, "aggregate").await;
    // A name of this test's own: ClusterRoles are cluster-wide.
    let objects = render(json!({"fullnameOverride": format!("serin-{ns}")}));
    let params = PatchParams::apply("helm").force();
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    for role in find(&objects, "ClusterRole") {
        let name = role["metadata"]["name"].as_str().unwrap();
        if name.ends_with("-view") || name.ends_with("-edit") {
            roles
                .patch(name, &params, &Patch::Apply(role))
                .await
                .unwrap_or_else(|e| panic!("applying ClusterRole {name}: {e}"));
        }
    }
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    for (user, role) in [("alice", "edit"), ("bob", "view")] {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}))
        .unwrap();
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let allowed =
        |user: &'static str, group: &'static str, resource: &'static str, verb: &'static str| {
            let reviews = reviews.clone();
            let ns = ns.clone();
            async move {
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(user.into()),
                        resource_attributes: Some(ResourceAttributes {
                            namespace: Some(ns),
                            group: Some(group.into()),
                            resource: Some(resource.into()),
                            verb: Some(verb.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let answer = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .unwrap();
                answer.status.is_some_and(|s| s.allowed)
            }
        };
    // The aggregation controller folds the rules in shortly after the roles appear.
    cluster::eventually(
        "edit aggregated serin-edit",
        std::time::Duration::from_secs(30),
        || async {
            allowed("alice", "serin.dev", "canaries", "patch")
                .await
                .then_some(())
        },
    )
    .await;
    for (user, group, resource, verb, expected) in [
        ("alice", "serin.dev", "canaries", "get", true),
        ("alice", "serin.dev", "metrictemplates", "create", true),
        ("alice", "apps", "deployments", "patch", true),
        ("bob", "serin.dev", "canaries", "get", true),
        ("bob", "serin.dev", "canaries", "list", true),
        ("bob", "serin.dev", "alertproviders", "watch", true),
        ("bob", "serin.dev", "canaries", "patch", false),
        ("bob", "serin.dev", "canaries", "delete", false),
    ] {
        assert_eq!(
            allowed(user, group, resource, verb).await,
            expected,
            "{user} {verb} {group}/{resource}"
        );
    }
}
