//! Flagger's MetricTemplate queries, in Go's template syntax, through `serin check`: accepted
//! as Flagger accepts them, and what serin does not run refused on `spec.query` with the
//! construct and the reason.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dir(test: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("go-templates")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(file: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap()
}

fn template(name: &str, query: &str) -> String {
    let query = query.replace('\n', "\n    ");
    format!(
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  provider: {{type: prometheus, address: 'http://prometheus:9090'}}\n  query: |\n    {query}\n"
    )
}

const CANARY: &str = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo, namespace: test}\nspec:\n  provider: istio\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  service: {port: 9898}\n  analysis:\n    interval: 15s\n    threshold: 5\n    stepWeight: 10\n    maxWeight: 50\n    metrics:\n      - name: latency\n        templateRef: {name: latency}\n        thresholdRange: {max: 500}\n        interval: 1m\n        templateVariables: {direction: inbound, quantile: '0.99'}\n      - name: routes\n        templateRef: {name: routes}\n        thresholdRange: {max: 1}\n";

#[test]
fn check_accepts_flagger_go_template_queries() {
    let dir = dir("accepts");
    let file = dir.join("podinfo.yaml");
    let latency = template(
        "latency",
        "{{- /* p99 by direction */ -}}\nhistogram_quantile({{ index variables \"quantile\" }},\n  sum(rate(response_latency_ms_bucket{\n    namespace=\"{{ namespace }}\",\n    deployment=~\"{{ target }}\",\n    direction=\"{{ variables.direction }}\"\n  }[{{ interval | printf \"%s\" }}])) by (le))",
    );
    let routes = template(
        "routes",
        "sum(rate(apisix_http_status{route=~\"{{ namespace }}_{{ route }}-{{ printf \"%s-canary\" target }}_.+\"{{ if eq (index variables \"code\") \"\" }}, code!~\"4..\"{{ end }}}[{{ interval }}]))",
    );
    std::fs::write(&file, [CANARY.to_string(), latency, routes].join("---\n")).unwrap();
    let out = check(&file);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_refuses_go_constructs_serin_does_not_run_on_spec_query() {
    let dir = dir("refuses");
    let file = dir.join("templates.yaml");
    let docs = [
        template("loop", "{{ range variables }}up{{ end }}"),
        template("field", "up{namespace=\"{{ .Namespace }}\"}"),
        template("width", "up{pod=\"{{ printf \"%10s\" target }}\"}"),
    ];
    std::fs::write(&file, docs.join("---\n")).unwrap();
    let out = check(&file);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, why) in [
        (
            "loop",
            "`range` is not supported in query templates: loops are not run",
        ),
        (
            "field",
            "`.Namespace` is not supported in query templates: Flagger renders queries without data",
        ),
        ("width", "`%1` is not supported in query templates"),
    ] {
        assert!(
            stdout.contains(&format!(
                "MetricTemplate {name}: spec.query: query template: {why}"
            )),
            "{name}: {stdout}"
        );
    }
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}
