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

/// Decisions, holds and runs of failed checks in time order, as a table.
fn moments_table(moments: &Moments) -> String {
    let rows = moments.notable();
    let mut out = String::from(
        "<h2>Moments</h2>\n<table class=\"moments\">\n<tr><th>time</th><th>what</th><th>detail</th></tr>\n",
    );
    for row in rows.iter().take(MAX_ROWS) {
        let time = match row.until {
            Some(until) => format!("{}–{}", scale::clock(row.at), scale::clock(until)),
            None => scale::clock(row.at),
        };
        let _ = writeln!(
            out,
            "<tr><td>{time}</td><td>{}</td><td>{}</td></tr>",
            escape(&clip(&row.what, 100)),
            escape(&clip(&row.detail, 300)),
        );
    }
    out.push_str("</table>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(out, "<p>… and {} more</p>", rows.len() - MAX_ROWS);
    }
    out
}
