//! The Grafana dashboards the chart ships (charts/serin/dashboards): each one type-checked
//! against Grafana's own dashboard model (the TypeScript types of the npm package
//! `@grafana/schema`, which ships no JSON schema), laid out as Grafana draws it, every query
//! valid PromQL (promtool), and the per-Canary dashboard's comparison of canary and primary
//! made of the very queries the controller judges (`serin::metrics::builtin`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use serin::api::Phase;
use serin::controller::telemetry::phase_code;
use serin::metrics::builtin::{self, DURATION, SUCCESS_RATE, Source as MetricSource};
use serin::metrics::template::{Vars, render};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// tests/grafana/package.json pins it (with TypeScript); tests/run.sh installs it.
const SCHEMA_DIR: &str = "grafana-schema-13.2.3";

fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(ROOT).join("charts/serin/dashboards");
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            (name, value)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        found.len() >= 2,
        "the overview and the per-Canary dashboard"
    );
    found
}

/// Every panel, those inside collapsed rows included, with the row it sits in.
fn panels(dashboard: &Value) -> Vec<(Option<&Value>, &Value)> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        all.push((None, panel));
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner.iter().map(|p| (Some(panel), p)));
        }
    }
    all
}

/// A node project with TypeScript and @grafana/schema: `SERIN_GRAFANA_SCHEMA` (tests/run.sh
/// makes it), else one made here once in ~/.cache/serin from tests/grafana's lock file
/// (built aside and renamed into place, so racing test processes never see half of it).
fn schema_project() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(path) = std::env::var_os("SERIN_GRAFANA_SCHEMA") {
            return PathBuf::from(path);
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let dir = Path::new(&home).join(".cache/serin").join(SCHEMA_DIR);
        if dir.join("node_modules/typescript/bin/tsc").exists() {
            return dir;
        }
        let staging = dir.with_extension(format!("staging-{}", std::process::id()));
        std::fs::create_dir_all(&staging).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(
                Path::new(ROOT).join("tests/grafana").join(file),
                staging.join(file),
            )
            .unwrap();
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&staging)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "npm ci in {} failed: the dashboard tests need node and npm (Debian: nodejs, npm) and the npm registry",
            staging.display()
        );
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        dir
    })
    .clone()
}

/// Grafana's panel plugins whose options the check knows: (panel type, module of
/// @grafana/schema, whether it has custom field options).
const PANEL_TYPES: [(&str, &str, bool); 5] = [
    (
        "timeseries",
        "timeseries/panelcfg/x/TimeSeriesPanelCfg",
        true,
    ),
    ("stat", "stat/panelcfg/x/StatPanelCfg", false),
    (
        "state-timeline",
        "statetimeline/panelcfg/x/StateTimelinePanelCfg",
        true,
    ),
    ("bargauge", "bargauge/panelcfg/x/BarGaugePanelCfg", false),
    ("table", "table/panelcfg/x/TablePanelCfg", true),
];

/// The dashboard as TypeScript assigning each part, as an object literal, to its type in
/// @grafana/schema: the dashboard to `Dashboard`, each panel's `options` and custom field
/// config to its plugin's `Options` and `FieldConfig`. Object literals get TypeScript's
/// excess-property check, so a misspelt or unknown field fails like a wrong type. String
/// enums are loosened to their values (JSON has no enums); panel options may leave fields
/// out, as Grafana fills its defaults.
fn typescript(dashboard: &Value) -> String {
    let mut ts = String::from("import type { Dashboard } from '@grafana/schema';\n");
    for (index, (_, module, _)) in PANEL_TYPES.iter().enumerate() {
        ts += &format!(
            "import type * as Plugin{index} from '@grafana/schema/dist/esm/raw/composable/{module}_types.gen';\n"
        );
    }
    ts += "type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;\n";
    ts += "type Partly<T> = T extends string ? `${T}` : T extends (infer U)[] ? Partly<U>[] : T extends object ? { [K in keyof T]?: Partly<T[K]> } : T;\n";
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    ts += &format!(
        "export const dashboard: Loose<Dashboard> = {};\n",
        pretty(dashboard)
    );
    for (_, panel) in panels(dashboard) {
        let kind = panel["type"].as_str().unwrap();
        let id = &panel["id"];
        if kind == "row" {
            continue;
        }
        let Some(index) = PANEL_TYPES.iter().position(|(t, _, _)| *t == kind) else {
            panic!("panel {id} has type {kind:?}, which this check does not know");
        };
        let options = panel.get("options").cloned().unwrap_or(json!({}));
        ts += &format!(
            "export const options_{id}: Partly<Plugin{index}.Options> = {};\n",
            pretty(&options)
        );
        if PANEL_TYPES[index].2 {
            let custom = panel["fieldConfig"]["defaults"]
                .get("custom")
                .cloned()
                .unwrap_or(json!({}));
            ts += &format!(
                "export const custom_{id}: Partly<Plugin{index}.FieldConfig> = {};\n",
                pretty(&custom)
            );
        }
    }
    ts
}

fn tsc(project: &Path, files: &[PathBuf]) -> std::process::Output {
    Command::new("node")
        .arg(project.join("node_modules/typescript/bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            "--target",
            "es2022",
        ])
        .args(files)
        .current_dir(project)
        .output()
        .expect("node runs")
}

#[test]
fn every_dashboard_type_checks_against_grafanas_dashboard_model() {
    let project = schema_project();
    let checks = project.join("checks");
    std::fs::create_dir_all(&checks).unwrap();
    // One compiler run for every dashboard: tsc takes its time to start.
    let files: Vec<PathBuf> = dashboards()
        .into_iter()
        .map(|(name, dashboard)| {
            let stem = name.trim_end_matches(".json");
            let file = checks.join(format!("{stem}-{}.ts", std::process::id()));
            std::fs::write(&file, typescript(&dashboard)).unwrap();
            file
        })
        .collect();
    let out = tsc(&project, &files);
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    assert!(
        out.status.success(),
        "a dashboard does not fit Grafana's dashboard model (@grafana/schema):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The check above catches what a user would see as a broken import: a field Grafana does
/// not know, or a value of the wrong kind.
#[test]
fn the_type_check_refuses_unknown_fields_and_wrong_values() {
    let project = schema_project();
    let checks = project.join("checks");
    std::fs::create_dir_all(&checks).unwrap();
    let (_, mut bad) = dashboards().remove(0);
    bad["panels"][0]["titel"] = json!("State");
    bad["schemaVersion"] = json!("39");
    let timeseries = bad["panels"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["type"] == "timeseries")
        .unwrap();
    timeseries["options"]["legend"]["displayMode"] = json!("lists");
    let file = checks.join(format!("bad-{}.ts", std::process::id()));
    std::fs::write(&file, typescript(&bad)).unwrap();
    let out = tsc(&project, std::slice::from_ref(&file));
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for error in [
        "'\"titel\"' does not exist",
        "Type 'string' is not assignable to type 'number'",
        "Type '\"lists\"' is not assignable",
    ] {
        assert!(text.contains(error), "{error} not in {text}");
    }
}

fn overlaps(a: &Value, b: &Value) -> bool {
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap();
    n(a, "x") < n(b, "x") + n(b, "w")
        && n(b, "x") < n(a, "x") + n(a, "w")
        && n(a, "y") < n(b, "y") + n(b, "h")
        && n(b, "y") < n(a, "y") + n(a, "h")
}

/// What Grafana's JSON model asks beyond types: unique panel ids, panels inside the 24-column
/// grid and not on top of each other (a collapsed row's panels where they unfold), one
/// Prometheus data source chosen by the `datasource` variable, and every variable a query
/// uses defined.
#[test]
fn dashboards_are_laid_out_and_wired_as_grafana_reads_them() {
    for (name, dashboard) in dashboards() {
        let variables: BTreeSet<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(variables.contains("datasource"), "{name}");
        let all = panels(&dashboard);
        let mut ids = BTreeSet::new();
        for (_, panel) in &all {
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{name}: id {}",
                panel["id"]
            );
            let pos = &panel["gridPos"];
            let (x, w) = (pos["x"].as_i64().unwrap(), pos["w"].as_i64().unwrap());
            assert!(
                x >= 0 && w > 0 && x + w <= 24,
                "{name}: {} {pos}",
                panel["title"]
            );
            assert!(pos["h"].as_i64().unwrap() > 0, "{name}: {}", panel["title"]);
        }
        // Top-level panels (rows count one grid line), then each collapsed row's own.
        let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for (row, panel) in &all {
            let key = row.map_or(String::new(), |r| r["id"].to_string());
            groups.entry(key).or_default().push(panel);
        }
        for group in groups.values() {
            for (i, a) in group.iter().enumerate() {
                for b in &group[i + 1..] {
                    assert!(
                        !overlaps(&a["gridPos"], &b["gridPos"]),
                        "{name}: {} overlaps {}",
                        a["title"],
                        b["title"]
                    );
                }
            }
        }
        for (_, panel) in all.iter().filter(|(_, p)| p["type"] != "row") {
            let title = &panel["title"];
            let source = json!({"type": "prometheus", "uid": "${datasource}"});
            assert_eq!(panel["datasource"], source, "{name}: {title}");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title} has no query");
            let mut refs = BTreeSet::new();
            for target in targets {
                assert_eq!(target["datasource"], source, "{name}: {title}");
                assert!(
                    refs.insert(target["refId"].as_str().unwrap()),
                    "{name}: {title}"
                );
                let expr = target["expr"].as_str().unwrap();
                for used in expr.split('$').skip(1) {
                    // `$name` ends at the first character that is not a word character
                    // (Grafana's reading); `${name}` and `${name:format}` at the brace.
                    let var: String = match used.strip_prefix('{') {
                        Some(braced) => braced
                            .chars()
                            .take_while(|c| *c != '}' && *c != ':')
                            .collect(),
                        None => used
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect(),
                    };
                    assert!(
                        var.starts_with("__") || variables.contains(var.as_str()),
                        "{name}: {title} uses ${var}, which is not a variable"
                    );
                }
            }
        }
    }
}

/// Every query as Prometheus will see it once Grafana has put its variables in.
fn substituted(expr: &str) -> String {
    expr.replace("$__rate_interval", "2m")
        .replace("${namespace}", "shop")
        .replace("${target}", "web")
        .replace("$namespace", "shop")
        .replace("$canary", "web")
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let dir = std::env::temp_dir().join(format!("serin-dashboards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, dashboard) in dashboards() {
        let mut rules = Vec::new();
        for (_, panel) in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = substituted(target["expr"].as_str().unwrap());
                rules.push(json!({"record": format!("panel_{}_{}", panel["id"], target["refId"].as_str().unwrap()), "expr": expr}));
            }
        }
        // promtool checks a rules file's expressions with Prometheus's own parser.
        let file = dir.join(format!("{name}.rules.json"));
        let groups = json!({"groups": [{"name": name, "rules": rules}]});
        std::fs::write(&file, groups.to_string()).unwrap();
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("promtool (Debian: prometheus) is installed");
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The per-Canary dashboard's rows, one per traffic provider's metrics.
/// Not APISIX: its built-in queries read the same requests for the canary and the primary
/// (APISIX labels no backend), which a comparison would only pretend to tell apart.
const PROVIDER_ROWS: [(&str, MetricSource); 8] = [
    ("Istio", MetricSource::Istio),
    ("Linkerd", MetricSource::Linkerd),
    (
        "Application metrics (kubernetes, gatewayapi)",
        MetricSource::App,
    ),
    ("NGINX", MetricSource::Nginx),
    ("Contour", MetricSource::Contour),
    ("Traefik", MetricSource::Traefik),
    ("Gloo", MetricSource::Gloo),
    ("Kuma", MetricSource::Kuma),
];

/// A built-in query for the canary (`${target}`) or its primary, written with Grafana's
/// variables where the controller puts the Canary's names and the metric's interval. The
/// braces matter: Grafana reads `$namespace_` (Contour's cluster names) as a variable
/// `namespace_`.
fn builtin_query(name: &str, source: MetricSource, workload: &str) -> String {
    let none = BTreeMap::new();
    let vars = Vars {
        name: "${canary}",
        namespace: "${namespace}",
        target: "${target}",
        service: "${target}",
        interval: "$__rate_interval".into(),
        workload,
        ingress: "${target}",
        route: "${target}",
        variables: &none,
    };
    render(builtin::query(name, source).unwrap(), &vars).unwrap()
}

/// Requests per second: the denominator of request-success-rate.
fn request_rate(source: MetricSource, workload: &str) -> String {
    let ratio = builtin_query(SUCCESS_RATE, source, workload);
    let (_, denominator) = ratio
        .split_once(") / sum(")
        .unwrap_or_else(|| panic!("{ratio} is not a ratio of sums"));
    let denominator = denominator
        .strip_suffix(" * 100")
        .unwrap_or_else(|| panic!("{ratio} is not a percentage"));
    format!("sum({denominator}")
}

/// What each provider row's panels query: (panel title, query for a workload).
fn expected_panels(source: MetricSource) -> [(&'static str, [String; 2]); 3] {
    let both = |f: &dyn Fn(&str) -> String| [f("${target}"), f("${target}-primary")];
    [
        ("Request rate", both(&|w| request_rate(source, w))),
        (
            SUCCESS_RATE,
            both(&|w| builtin_query(SUCCESS_RATE, source, w)),
        ),
        (DURATION, both(&|w| builtin_query(DURATION, source, w))),
    ]
}

/// What a user compares on the dashboard is what the controller judged: each provider row
/// plots canary against primary with the built-in queries, rendered for `${target}` and
/// `${target}-primary` over `$__rate_interval`. `SERIN_BLESS=1` writes the current queries
/// into the dashboard (after a change of `metrics::builtin`).
#[test]
fn the_canary_dashboard_compares_with_the_controllers_own_queries() {
    let path = Path::new(ROOT).join("charts/serin/dashboards/serin-canary.json");
    let mut dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let bless = std::env::var_os("SERIN_BLESS").is_some();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "namespace", "canary", "target"]);
    let rows: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str()?.strip_prefix("Canary vs primary: "))
        .map(str::to_string)
        .collect();
    let expected_rows: Vec<&str> = PROVIDER_ROWS.iter().map(|(row, _)| *row).collect();
    assert_eq!(rows, expected_rows);
    let mut mismatches = Vec::new();
    for row in dashboard["panels"].as_array_mut().unwrap() {
        let Some(provider) = row["title"]
            .as_str()
            .and_then(|t| t.strip_prefix("Canary vs primary: "))
            .map(str::to_string)
        else {
            continue;
        };
        let source = PROVIDER_ROWS
            .iter()
            .find(|(r, _)| *r == provider)
            .unwrap()
            .1;
        assert_eq!(
            row["collapsed"], true,
            "{provider}: collapsed, so its queries run only when opened"
        );
        let inner = row["panels"].as_array_mut().unwrap();
        let expected = expected_panels(source);
        assert_eq!(inner.len(), expected.len(), "{provider}");
        for (panel, (title, queries)) in inner.iter_mut().zip(expected) {
            assert_eq!(panel["title"], title, "{provider}");
            let targets = panel["targets"].as_array_mut().unwrap();
            assert_eq!(targets.len(), 2, "{provider} {title}");
            for (target, (who, query)) in targets
                .iter_mut()
                .zip(["canary", "primary"].into_iter().zip(queries))
            {
                assert_eq!(target["refId"], who, "{provider} {title}");
                assert_eq!(target["legendFormat"], who, "{provider} {title}");
                if target["expr"] != query.as_str() {
                    mismatches.push(format!(
                        "{provider} {title} {who}:\n  dashboard: {}\n  builtin:   {query}",
                        target["expr"]
                    ));
                    target["expr"] = json!(query);
                }
            }
        }
    }
    if bless && !mismatches.is_empty() {
        let text = serde_json::to_string_pretty(&dashboard).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        mismatches.is_empty(),
        "the dashboard's queries differ from the controller's (SERIN_BLESS=1 rewrites them):\n{}",
        mismatches.join("\n")
    );
}

/// Every value mapping that names phases, in any panel of any dashboard.
fn phase_mappings(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if map.get("type") == Some(&json!("value"))
                && let Some(options) = map.get("options")
                && options.to_string().contains("\"Progressing\"")
            {
                found.push(options.clone());
            }
            map.values().for_each(|v| phase_mappings(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| phase_mappings(v, found)),
        _ => {}
    }
}

/// The dashboards name each value of `serin_canary_phase` as the controller means it.
#[test]
fn the_dashboards_name_phases_by_the_controllers_codes() {
    let mut found = Vec::new();
    for (_, dashboard) in dashboards() {
        phase_mappings(&dashboard, &mut found);
    }
    assert!(found.len() >= 2, "the Phase stat and the rollout timeline");
    for options in found {
        let named: BTreeMap<String, String> = options
            .as_object()
            .unwrap()
            .iter()
            .map(|(code, result)| (code.clone(), result["text"].as_str().unwrap().to_string()))
            .collect();
        let expected: BTreeMap<String, String> = Phase::ALL
            .iter()
            .map(|p| (phase_code(*p).to_string(), p.as_str().to_string()))
            .collect();
        assert_eq!(named, expected);
    }
}
