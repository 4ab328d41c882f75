//! `serin judge` as a team uses it on recorded data: exit codes, formats, bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn serin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .output()
        .expect("serin runs")
}

fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("serin-judge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `serin judge -o json` on two files: the exit code and the parsed report.
fn judge_json(canary: &str, primary: &str) -> (Option<i32>, serde_json::Value) {
    let out = serin(&[
        "judge",
        "--canary",
        canary,
        "--primary",
        primary,
        "-o",
        "json",
    ]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

/// 40 values around `center`, spread ±2.
fn values(center: f64) -> String {
    (0..40)
        .map(|i| format!("{}\n", center + f64::from(i % 9) * 0.5 - 2.0))
        .collect()
}

#[test]
fn a_regression_exits_1_and_says_why() {
    let (canary, primary) = (
        file("c1.txt", &values(150.0)),
        file("p1.txt", &values(100.0)),
    );
    let out = serin(&["judge", "--canary", &canary, "--primary", &primary]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("class High: regression"), "{text}");
    assert!(text.contains("98% interval"), "{text}");
}

#[test]
fn no_regression_exits_0_and_json_carries_every_statistic() {
    let (canary, primary) = (
        file("c2.txt", &values(100.0)),
        file("p2.txt", &values(100.0)),
    );
    let (code, json) = judge_json(&canary, &primary);
    assert_eq!(code, Some(0));
    assert_eq!(json["class"], "Pass");
    for field in [
        "u",
        "z",
        "pValue",
        "shift",
        "shiftLower",
        "shiftUpper",
        "effect",
        "change",
        "canaryMean",
    ] {
        assert!(json[field].is_number(), "{field} in {json}");
    }
}

#[test]
fn an_improvement_fails_only_when_decreases_are_the_regression() {
    let (canary, primary) = (
        file("c3.txt", &values(50.0)),
        file("p3.txt", &values(100.0)),
    );
    assert_eq!(
        serin(&["judge", "--canary", &canary, "--primary", &primary])
            .status
            .code(),
        Some(0)
    );
    let out = serin(&[
        "judge",
        "--canary",
        &canary,
        "--primary",
        &primary,
        "--direction",
        "decrease",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_saved_prometheus_range_query_is_read() {
    let series = |center: f64| {
        let points: Vec<String> = (0..30)
            .map(|i| {
                format!(
                    "[{},\"{}\"]",
                    1_700_000_000 + i * 15,
                    center + f64::from(i % 5)
                )
            })
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
            points.join(",")
        )
    };
    let (canary, primary) = (
        file("c4.json", &series(300.0)),
        file("p4.json", &series(100.0)),
    );
    let (_, json) = judge_json(&canary, &primary);
    assert_eq!(json["canaryCount"], 30);
    assert_eq!(json["class"], "High");
}

#[test]
fn too_few_samples_exit_3() {
    let (canary, primary) = (file("c5.txt", "1\n2\n3\n"), file("p5.txt", &values(1.0)));
    let out = serin(&["judge", "--canary", &canary, "--primary", &primary]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("too few samples: canary 3"));
}

#[test]
fn bad_input_exits_2_naming_the_flag_and_line() {
    let good = file("p6.txt", &values(1.0));
    let bad = file("c6.txt", "1\n2\nlots\n");
    let out = serin(&["judge", "--canary", &bad, "--primary", &good]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--canary") && stderr.contains("line 3: \"lots\" is not a number"),
        "{stderr}"
    );
    let out = serin(&[
        "judge",
        "--canary",
        &good,
        "--primary",
        &good,
        "--confidence",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--confidence"));
}
