//! `serin simulate -o html|svg|markdown` and `serin judge --plot` as a user sees them: the
//! drawings are opened in headless Chromium (Debian's `chromium`, installed by tests/run.sh)
//! and the test asserts on the DOM the browser built: the weight line's points, one panel per
//! metric, the rollback where it happened, nothing from a user's string live as markup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;

fn serin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .output()
        .expect("serin runs")
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("serin-pictures-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serin simulate FILE -o FORMAT`, stdout as text (the run must succeed).
fn simulate(file: &str, format: &str) -> String {
    let out = serin(&["simulate", file, "-o", format]);
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The DOM Chromium builds from `file` (HTML, or SVG through its XML parser), serialised.
fn browser_dom(file: &Path) -> String {
    let profile = scratch(&format!(
        "profile-{}",
        file.file_name().unwrap().to_string_lossy()
    ));
    // The DOM goes to a file: a pipe would fill up and stall the browser on a large drawing.
    let dom_file = profile.join("dom.html");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(std::fs::File::create(&dom_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("Debian's chromium is installed (tests/run.sh installs it)");
    // A browser that never returns would hang the suite: give up after two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {}", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    assert!(
        !dom.is_empty(),
        "chromium printed no DOM for {}",
        file.display()
    );
    dom
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every match of `pattern`'s first group in `dom`.
fn all(dom: &str, pattern: &str) -> Vec<String> {
    Regex::new(pattern)
        .unwrap()
        .captures_iter(dom)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn the_rollback_drawn_in_chromium_steps_to_30_percent_and_rolls_back_there() {
    let html = simulate("examples/podinfo-rollback.yaml", "html");
    let dom = browser_dom(&write(&scratch("rollback"), "rollback.html", &html));
    // The weight line, as seconds:weight vertices: 10% steps each minute, back to 0 at 5:05.
    assert_eq!(
        all(&dom, r#"<path class="weight"[^>]* data-points="([^"]*)""#),
        ["0:0 65:10 125:20 185:30 305:0"]
    );
    assert_eq!(
        all(&dom, r#"class="check-panel" data-check="([^"]*)""#),
        ["request-success-rate", "request-duration"]
    );
    let rollback = all(&dom, r#"(<g class="decision rollback"[^>]*>)"#);
    assert_eq!(rollback.len(), 1, "one rollback: {rollback:?}");
    for part in [
        r#"data-at="305""#,
        r#"data-weight="30""#,
        r#"data-reason="ThresholdReached""#,
    ] {
        assert!(rollback[0].contains(part), "{part} in {}", rollback[0]);
    }
    // The failing success rate, marked at both failing ticks, with its value.
    assert_eq!(
        all(
            &dom,
            r#"class="check-point fail" data-at="(\d+)" data-value="91.4""#
        ),
        ["245", "305"]
    );
    assert!(dom.contains(r#"class="bounds" data-min="99" data-max="-""#));
    assert!(
        dom.contains("rollback: ThresholdReached"),
        "the decision is labelled"
    );
    assert!(
        dom.contains(">5:00<"),
        "the time axis reads in simulated minutes"
    );
}

/// The metrics an example's Canary declares.
fn declared_metrics(path: &Path) -> Vec<String> {
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["canary"]["spec"]["analysis"]["metrics"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_example_draws_well_formed_svg_with_one_panel_per_metric() {
    let dir = scratch("examples");
    let examples: Vec<PathBuf> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(examples.len() >= 7);
    std::thread::scope(|threads| {
        for chunk in examples.chunks(examples.len().div_ceil(3)) {
            let dir = &dir;
            threads.spawn(move || {
                for example in chunk {
                    let name = example.file_stem().unwrap().to_string_lossy();
                    let svg = simulate(example.to_str().unwrap(), "svg");
                    let dom = browser_dom(&write(dir, &format!("{name}.svg"), &svg));
                    // Chromium's XML parser reports a malformed document as <parsererror>.
                    assert!(!dom.contains("parsererror"), "{name}: {dom}");
                    assert!(dom.starts_with("<svg"), "{name}: {dom}");
                    assert_eq!(
                        all(&dom, r#"class="check-panel" data-check="([^"]*)""#),
                        declared_metrics(example),
                        "{name}"
                    );
                }
            });
        }
    });
}

#[test]
fn the_blue_green_gate_is_drawn_as_a_hold_with_its_webhook_answers() {
    let svg = simulate("examples/podinfo-blue-green.yaml", "svg");
    let dom = browser_dom(&write(&scratch("gate"), "gate.svg", &svg));
    let holds = all(&dom, r#"class="hold" data-reason="([^"]*)""#);
    assert_eq!(holds, ["WaitingForPromotion"]);
    let gates = all(
        &dom,
        r#"class="webhook (\w+)" data-hook="approval" data-kind="confirm-promotion""#,
    );
    assert!(
        gates.iter().filter(|g| *g == "fail").count() >= 10,
        "{gates:?}"
    );
    assert_eq!(
        gates.last().map(String::as_str),
        Some("pass"),
        "the gate opens at last"
    );
    assert!(dom.contains(r#"class="decision promote""#));
}

const HOSTILE: &str = r#"
name: "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
canary:
  apiVersion: serin.dev/v1beta1
  kind: Canary
  metadata: {name: podinfo, namespace: test}
  spec:
    provider: gatewayapi
    targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
    service: {port: 9898, gatewayRefs: [{name: public, namespace: gateway-system}]}
    analysis:
      interval: 1m
      threshold: 1
      maxWeight: 20
      stepWeight: 10
      metrics:
        - name: "<script>document.title='pwned'</script>"
          templateRef: {name: errors}
          thresholdRange: {max: 5}
events:
  - {at: 1m, release: "v2<b onmouseover=alert(1)>"}
metrics:
  "<script>document.title='pwned'</script>":
    - {minWeight: 20, error: "</svg><script>alert(2)</script>"}
    - {value: 1}
"#;

#[test]
fn markup_in_scenario_names_metrics_and_messages_is_shown_not_run() {
    let dir = scratch("hostile");
    let scenario = write(&dir, "hostile.yaml", HOSTILE);
    let html = simulate(scenario.to_str().unwrap(), "html");
    let dom = browser_dom(&write(&dir, "hostile.html", &html));
    assert!(!dom.contains("<title>pwned</title>"), "a script ran");
    for element in ["<script", "<img", "<b "] {
        assert!(!dom.contains(element), "{element} became an element: {dom}");
    }
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(
        dom.contains("data-check=\"&lt;script&gt;document.title='pwned'&lt;/script&gt;\""),
        "the name is an attribute value, intact"
    );
    let markdown = simulate(scenario.to_str().unwrap(), "markdown");
    assert!(!markdown.contains("<script"), "{markdown}");
    assert!(markdown.contains("&lt;script&gt;"), "{markdown}");
}

#[test]
fn markdown_holds_a_weight_chart_a_phase_timeline_and_the_decisions() {
    let md = simulate("examples/podinfo-rollback.yaml", "markdown");
    let lines: Vec<&str> = md.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{md}"))
    };
    assert!(lines[0].starts_with("### serin simulate: podinfo canary that rolls back at 30%"));
    let chart = at("xychart-beta");
    assert_eq!(lines[chart - 1], "```mermaid");
    assert!(lines[at("x-axis")].starts_with(r#"    x-axis "simulated time" ["0s", "10s""#));
    assert_eq!(
        lines[at("y-axis")],
        r#"    y-axis "canary weight (%)" 0 --> 100"#
    );
    let values = &lines[at("line [")];
    let weights: Vec<i32> = values
        .trim()
        .trim_start_matches("line [")
        .trim_end_matches(']')
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(weights.iter().max(), Some(&30), "never past 30%: {values}");
    assert_eq!(weights.last(), Some(&0), "all traffic back on the primary");
    let timeline = at("timeline");
    assert_eq!(lines[timeline - 1], "```mermaid");
    assert_eq!(lines[timeline + 1], "    title Phases");
    assert!(lines.contains(&"    1m00s to 5m05s : Progressing"), "{md}");
    assert!(lines.contains(&"    from 5m05s : Failed"), "{md}");
    assert_eq!(md.matches("```mermaid").count(), 2);
    assert_eq!(md.matches("```").count(), 4, "every fence closed");
    assert!(lines.contains(&"| time | what | detail |"));
    assert!(md.contains("| 5m05s | rollback at 30% | ThresholdReached: rolling back"));
    assert!(md.contains(
        "| 4m05s to 5m05s | check request-success-rate | 91.4 &lt; 99 (min) (2 checks in a row) |"
    ));
}

/// A gate that never opens, checks every 10 seconds, for a simulated day: 8,640 ticks.
const DAY_LONG: &str = r#"
name: a gate that never opens, checked every 10 seconds for a day
canary:
  apiVersion: serin.dev/v1beta1
  kind: Canary
  metadata: {name: podinfo, namespace: test}
  spec:
    provider: gatewayapi
    targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
    service: {port: 9898, gatewayRefs: [{name: public, namespace: gateway-system}]}
    analysis:
      interval: 10s
      threshold: 1000000
      maxWeight: 50
      stepWeight: 10
      metrics:
        - name: request-success-rate
          thresholdRange: {min: 99}
        - name: errors
          templateRef: {name: errors}
          thresholdRange: {max: 5}
      webhooks:
        - {name: traffic-gate, type: confirm-traffic-increase, url: "http://gate.test/"}
events:
  - {at: 1m, release: podinfo:6.0.1}
metrics:
  request-success-rate:
    - {after: 5h, before: 5h1m, value: 50}
    - {value: 99.9}
  errors:
    - {after: 2h, value: 7}
    - {value: 1}
webhooks:
  traffic-gate:
    - {pass: false}
"#;

#[test]
fn a_day_of_ticks_draws_in_bounded_size_and_keeps_every_failure_visible() {
    let dir = scratch("long");
    let scenario = write(&dir, "long.yaml", DAY_LONG);
    let path = scenario.to_str().unwrap();
    let report: serde_json::Value = serde_json::from_str(&simulate(path, "json")).unwrap();
    let entries = report["timeline"].as_array().unwrap().len();
    assert!(entries > 8000, "the run is long: {entries} entries");
    let svg = simulate(path, "svg");
    let html = simulate(path, "html");
    let markdown = simulate(path, "markdown");
    assert!(svg.len() < 400_000, "svg {} bytes", svg.len());
    assert!(html.len() < 450_000, "html {} bytes", html.len());
    assert!(markdown.len() < 10_000, "markdown {} bytes", markdown.len());
    // The one minute of failing success rate, 5h in, survives the thinning.
    let dom = browser_dom(&write(&dir, "long.svg", &svg));
    let failed = all(
        &dom,
        r#"class="check-point fail" data-at="(\d+)" data-value="50""#,
    );
    assert!(!failed.is_empty(), "the 5h dip is drawn");
    assert!(
        failed
            .iter()
            .all(|t| (18000..18060).contains(&t.parse::<u32>().unwrap()))
    );
    assert!(markdown.contains("(7920 checks in a row)"), "{markdown}");
}

fn judge_files(dir: &Path, canary_center: f64) -> (String, String) {
    let values = |center: f64| -> String {
        (0..40)
            .map(|i| format!("{}\n", center + f64::from(i % 9) * 0.5 - 2.0))
            .collect()
    };
    (
        write(dir, "canary.txt", &values(canary_center))
            .to_string_lossy()
            .into_owned(),
        write(dir, "primary.txt", &values(100.0))
            .to_string_lossy()
            .into_owned(),
    )
}

#[test]
fn judge_plot_draws_both_distributions_the_shift_and_the_allowed_band() {
    let dir = scratch("judge");
    let (canary, primary) = judge_files(&dir, 150.0);
    let plot = dir.join("judged.html");
    let out = serin(&[
        "judge",
        "--canary",
        &canary,
        "--primary",
        &primary,
        "-o",
        "json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "a regression");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dom = browser_dom(&plot);
    assert_eq!(
        all(&dom, r#"class="ecdf (\w+)" data-count="40""#),
        ["primary", "canary"]
    );
    let number = |pattern: &str| -> f64 { all(&dom, pattern)[0].parse().unwrap() };
    let shift = number(r#"class="shift" data-estimate="([-\d.e]+)""#);
    assert!(
        (shift - result["shift"].as_f64().unwrap()).abs() < 1e-3,
        "{shift}"
    );
    let lower = number(r#"data-lower="([-\d.e]+)""#);
    assert!((lower - result["shiftLower"].as_f64().unwrap()).abs() < 1e-3);
    // Increase is the regression: the band is open below and ends at 10% of the primary's mean.
    let band = number(r#"class="allowed" data-min="-" data-max="([-\d.e]+)""#);
    let allowed = 0.1 * result["baselineMean"].as_f64().unwrap();
    assert!((band - allowed).abs() < 1e-3, "{band} vs {allowed}");
    assert!(
        dom.contains("class High"),
        "the verdict is written on the drawing"
    );
}

#[test]
fn judge_plot_names_the_flag_for_an_unknown_format_and_stays_small_for_large_samples() {
    let dir = scratch("judge-large");
    let (canary, primary) = judge_files(&dir, 100.0);
    let out = serin(&[
        "judge",
        "--canary",
        &canary,
        "--primary",
        &primary,
        "--plot",
        "x.png",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--plot x.png") && stderr.contains(".svg or .html"),
        "{stderr}"
    );
    let many = |offset: f64| -> String {
        (0..50_000)
            .map(|i| format!("{}\n", offset + f64::from(i % 997) * 0.37))
            .collect()
    };
    let canary = write(&dir, "big-canary.txt", &many(1.0));
    let primary = write(&dir, "big-primary.txt", &many(0.0));
    let plot = dir.join("big.svg");
    let out = serin(&[
        "judge",
        "--canary",
        canary.to_str().unwrap(),
        "--primary",
        primary.to_str().unwrap(),
        "--min-samples",
        "20",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&plot).unwrap().len();
    assert!(size < 120_000, "50,000 values each drawn in {size} bytes");
}
