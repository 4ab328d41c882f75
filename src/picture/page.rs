//! HTML pages around a drawing: one file, the SVG inline, a table of what it shows, no script
//! at all. The Content-Security-Policy forbids scripts and remote loads, so even a string that
//! escaped escaping could not run or call home.

use std::fmt::Write;

use super::moments::Moments;
use super::scale;
use super::svg::{clip, escape};
use super::timeline;

/// Rows in the moments table: a day-long run lists its first decisions and says how many more.
const MAX_ROWS: usize = 200;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#212121}\
table{border-collapse:collapse;margin-top:16px}\
td,th{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;font-size:13px}\
.fail{color:#c62828}.pass{color:#2e7d32}";

/// A page: title, heading, the body (already HTML) below it.
pub fn document(title: &str, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}</body>\n</html>\n",
        t = escape(title),
    );
    out
}

/// The rollout page: the timeline and the moments that decided it.
pub fn rollout(moments: &Moments) -> String {
    let mut body = String::new();
    body.push_str(&timeline::svg(moments));
    let hidden = moments.panels.len().saturating_sub(timeline::MAX_PANELS);
    if hidden > 0 {
        let names: Vec<String> = moments.panels[timeline::MAX_PANELS..]
            .iter()
            .map(|p| escape(&clip(&p.name, 60)))
            .take(50)
            .collect();
        let _ = writeln!(
            body,
            "<p class=\"hidden-panels\">{hidden} more metrics not drawn: {}</p>",
            names.join(", ")
        );
    }
    body.push_str(&moments_table(moments));
    document(
        &format!("serin simulate: {}", clip(&moments.name, 200)),
        &body,
    )
}

/// Decisions, holds and failed checks in time order, as a table.
fn moments_table(moments: &Moments) -> String {
    let mut rows: Vec<(f64, String, String, String)> = Vec::new();
    for d in &moments.decisions {
        rows.push((
            d.at,
            d.kind.as_str().into(),
            d.reason.clone(),
            d.message.clone(),
        ));
    }
    for h in &moments.holds {
        rows.push((h.start, "hold".into(), h.reason.clone(), h.message.clone()));
    }
    for panel in &moments.panels {
        for p in panel
            .points
            .iter()
            .filter(|p| p.result != crate::api::status::CheckResult::Pass)
        {
            rows.push((p.at, "check".into(), panel.name.clone(), p.message.clone()));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = rows.len();
    let mut out = String::from(
        "<h2>Moments</h2>\n<table class=\"moments\">\n<tr><th>time</th><th>what</th><th>reason</th><th>detail</th></tr>\n",
    );
    for (at, what, reason, detail) in rows.into_iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "<tr class=\"{what}\"><td>{}</td><td>{what}</td><td>{}</td><td>{}</td></tr>",
            scale::clock(at),
            escape(&clip(&reason, 100)),
            escape(&clip(&detail, 300)),
        );
    }
    out.push_str("</table>\n");
    if total > MAX_ROWS {
        let _ = writeln!(out, "<p>… and {} more</p>", total - MAX_ROWS);
    }
    out
}
