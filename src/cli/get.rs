//! `serin get`: one line per Canary.

use chrono::{DateTime, Utc};
use kube::api::ListParams;

use super::canaries;
use super::{Format, Style, age, list_of, print_structured, short, table};
use crate::api::{Canary, Phase};

/// Lists the Canaries of `namespace` (all namespaces when None) that match the label
/// `selector` (kubectl's syntax, checked by the API server).
pub async fn run(
    client: kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let params = match selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    let found = canaries::list(&client, namespace, &params)
        .await
        .map_err(|e| match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) if s.code == 400 && selector.is_some() => {
                anyhow::anyhow!("--selector: {}", s.message)
            }
            _ => e.context("listing Canaries"),
        })?;
    if format != Format::Table {
        let objects: Vec<&serde_json::Value> = found.iter().map(|f| &f.object).collect();
        return print_structured(&list_of(&objects)?, format);
    }
    let canaries: Vec<Canary> = found.into_iter().map(|f| f.canary).collect();
    if canaries.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No canaries in namespace {ns}{}.", matching(selector)),
            None => eprintln!("No canaries in any namespace{}.", matching(selector)),
        }
        return Ok(());
    }
    crate::out!(
        "{}",
        render(&canaries, namespace.is_none(), Utc::now(), Style::detect())
    );
    Ok(())
}

fn matching(selector: Option<&str>) -> String {
    selector.map_or(String::new(), |s| format!(" matching {s}"))
}

/// The table; `all` adds the namespace column.
pub fn render(canaries: &[Canary], all: bool, now: DateTime<Utc>, style: Style) -> String {
    let mut header = vec!["NAME", "PHASE", "WEIGHT", "FAILED", "REVISION", "AGE"];
    if all {
        header.insert(0, "NAMESPACE");
    }
    let rows: Vec<Vec<String>> = canaries
        .iter()
        .map(|canary| {
            let status = canary.status.clone().unwrap_or_default();
            let threshold = canary.spec.analysis.threshold.unwrap_or(1);
            let mut row = vec![
                canary.metadata.name.clone().unwrap_or_default(),
                phase(status.phase, status.paused, style),
                format!("{}%", status.canary_weight),
                format!("{}/{threshold}", status.failed_checks),
                short(status.last_applied_spec.as_deref()),
                age(
                    canary
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .and_then(super::time),
                    now,
                ),
            ];
            if all {
                row.insert(0, canary.metadata.namespace.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    table(&header, &rows)
}

/// The phase, coloured by outcome, with `(paused)` when a pause request holds it.
pub fn phase(phase: Option<Phase>, paused: bool, style: Style) -> String {
    let text = phase.map_or("Pending", Phase::as_str);
    let text = if paused {
        format!("{text} (paused)")
    } else {
        text.to_string()
    };
    match phase {
        Some(Phase::Succeeded | Phase::Initialized) => style.good(&text),
        Some(Phase::Failed) => style.bad(&text),
        Some(Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion | Phase::Promoting) => {
            style.warn(&text)
        }
        _ => text,
    }
}
