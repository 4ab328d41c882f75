//! `serin migrate` as someone moving a repository of Flagger manifests to serin's group runs
//! it: the binary on files, the converted text compared byte for byte, notes read by a person.

use std::path::{Path, PathBuf};
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

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("migrate-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/migrate").join(name)).unwrap()
}

const FLAGGER: &str = "tests/fixtures/migrate/podinfo.flagger.yaml";

#[test]
fn a_commented_flagger_file_keeps_its_comments_order_and_other_documents() {
    let out = serin(&["migrate", FLAGGER]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), fixture("podinfo.serin.yaml"));
    assert!(
        text(&out.stderr).contains("converted 2 Flagger objects; 0 need a decision"),
        "{}",
        text(&out.stderr)
    );
    // What came out is what serin runs, without a warning left to act on.
    let dir = tempdir("checked");
    let file = dir.join("podinfo.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = serin(&["check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
}

#[test]
fn migrating_the_output_again_changes_nothing() {
    let first = serin(&["migrate", FLAGGER]);
    let dir = tempdir("idempotent");
    let file = dir.join("podinfo.yaml");
    std::fs::write(&file, &first.stdout).unwrap();
    let second = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(text(&second.stdout), text(&first.stdout));
    assert!(text(&second.stderr).contains("converted 0 Flagger objects"));
}

#[test]
fn in_place_rewrites_only_the_files_that_change_and_leaves_no_temporary_file() {
    let dir = tempdir("in-place");
    let canary = dir.join("canary.yaml");
    let deployment = dir.join("deployment.yaml");
    std::fs::write(&canary, fixture("podinfo.flagger.yaml")).unwrap();
    let untouched = "apiVersion: apps/v1\nkind: Deployment # flagger.app/v1beta1 in a comment\nmetadata: {name: podinfo}\n";
    std::fs::write(&deployment, untouched).unwrap();
    let out = serin(&["migrate", "--in-place", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("rewrote 1 of 2 files in place"));
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        fixture("podinfo.serin.yaml")
    );
    assert_eq!(std::fs::read_to_string(&deployment).unwrap(), untouched);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["canary.yaml", "deployment.yaml"]);

    // Standard input has no file to write back to.
    let out = serin(&["migrate", "--in-place", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--in-place: standard input"));
}

#[test]
fn in_place_writes_nothing_when_a_file_cannot_be_read() {
    let dir = tempdir("in-place-broken");
    let canary = dir.join("a.yaml");
    std::fs::write(&canary, fixture("podinfo.flagger.yaml")).unwrap();
    std::fs::write(dir.join("b.yaml"), "kind: Canary\nspec: [unclosed\n").unwrap();
    let out = serin(&["migrate", "--in-place", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("b.yaml"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        fixture("podinfo.flagger.yaml")
    );
}

#[test]
fn several_files_are_printed_one_after_another_under_their_names() {
    let dir = tempdir("several");
    let a = dir.join("a.yaml");
    let b = dir.join("b.yaml");
    std::fs::write(&a, "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata: {name: team}\nspec: {type: slack, channel: deploys}").unwrap();
    std::fs::write(
        &b,
        "# b\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
    )
    .unwrap();
    let out = serin(&["migrate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "# file: {}\napiVersion: serin.dev/v1beta1\nkind: AlertProvider\nmetadata: {{name: team}}\nspec: {{type: slack, channel: deploys}}\n---\n# file: {}\n# b\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n",
            a.display(),
            b.display()
        )
    );
}

#[test]
fn flaggers_pre_1_0_api_is_refused_and_left_as_written() {
    let dir = tempdir("v1alpha3");
    let file = dir.join("old.yaml");
    let old = "apiVersion: flagger.app/v1alpha3\nkind: Canary\nmetadata: {name: podinfo}\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  service: {port: 9898}\n  canaryAnalysis: {interval: 1m, threshold: 5, stepWeight: 10}\n";
    std::fs::write(&file, old).unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), old);
    let expected = format!(
        "needs a decision: {}:1:1 Canary podinfo: apiVersion: flagger.app/v1alpha3 is not converted: it is Flagger's pre-1.0 API; upgrade it as Flagger's upgrade guide says (apiVersion flagger.app/v1beta1, spec.canaryAnalysis renamed spec.analysis), then migrate it",
        file.display()
    );
    assert!(
        text(&out.stderr).lines().any(|l| l == expected),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_unknown_field_is_listed_with_its_line_beside_a_decoding_error() {
    let dir = tempdir("unknown");
    let file = dir.join("canary.yaml");
    let flagger = "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
spec:
  skipAnalysys: true
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service:
    port: eighty
  analysis:
    interval: 1m
    stepWeight: 10
    metrics:
      - name: request-success-rate
        tresholdRange: {min: 99}
";
    std::fs::write(&file, flagger).unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let path = file.display();
    for expected in [
        format!(
            "needs a decision: {path}:15:9 Canary web: spec.analysis.metrics[0].tresholdRange: serin has no such field"
        ),
        format!(
            "needs a decision: {path}:6:3 Canary web: spec.skipAnalysys: serin has no such field"
        ),
        format!(
            "needs a decision: {path}:9:5 Canary web: spec.service.port: invalid type: string \"eighty\", expected i32"
        ),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in\n{stderr}"
        );
    }
    assert_eq!(stderr.matches("needs a decision").count(), 3, "{stderr}");
    // Converted all the same, the unknown fields kept for the person deciding.
    assert_eq!(
        text(&out.stdout),
        flagger.replace("flagger.app/v1beta1", "serin.dev/v1beta1")
    );
}

#[test]
fn a_document_that_cannot_be_edited_in_place_is_reserialised_alone_with_a_note() {
    let dir = tempdir("reserialised");
    let file = dir.join("canary.yaml");
    // The second threshold is an alias of the first: no text of its own to rewrite.
    let service = "# the apex Service\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n";
    let canary = "# thresholds shared by anchor
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 1m
    stepWeight: 10
    metrics:
      - name: latency-p50
        threshold: &limit 500
        query: q1
      - name: latency-p99
        threshold: *limit
        query: q2
";
    std::fs::write(&file, format!("{service}---\n{canary}")).unwrap();
    let out = serin(&["migrate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("{service}---\n")), "{stdout}");
    let converted: serde_json::Value =
        serde_yaml_ng::from_str(&stdout[service.len() + 4..]).unwrap();
    assert_eq!(converted["apiVersion"], "serin.dev/v1beta1");
    let metrics = &converted["spec"]["analysis"]["metrics"];
    assert_eq!(
        metrics[0]["thresholdRange"],
        serde_json::json!({"max": 500})
    );
    assert_eq!(
        metrics[1]["thresholdRange"],
        serde_json::json!({"max": 500})
    );
    assert!(!stdout.contains("# thresholds shared"), "{stdout}");
    let expected = format!(
        "note: {}:6 Canary web: (document): re-serialised, so its comments and layout are not kept: spec.analysis.metrics[1].threshold is not a key with a plain value",
        file.display()
    );
    assert!(
        text(&out.stderr).lines().any(|l| l == expected),
        "{}",
        text(&out.stderr)
    );
}
