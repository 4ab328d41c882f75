//! The rollout as Markdown for a pull-request comment: a Mermaid `xychart-beta` of the canary
//! weight sampled at round instants of simulated time, a Mermaid `timeline` of the phases, and
//! a table of the moments that decided the outcome. GitHub renders Mermaid in comments, so a CI
//! job can show what a Canary change will do before it merges.

use std::fmt::Write;

use super::moments::Moments;
use super::scale;
use super::svg::clip;

/// Samples of the weight chart: enough for steps to read as steps, few enough to stay legible.
const SAMPLES: usize = 40;
/// Phases in the timeline chart and rows in the table; the rest is counted, not listed.
const MAX_PHASES: usize = 24;
const MAX_ROWS: usize = 50;

pub fn markdown(moments: &Moments) -> String {
    let mut out = String::new();
    let o = &moments.outcome;
    let verdict = match o.expected {
        Some(true) => " (as expected)",
        Some(false) => " (NOT as expected)",
        None => "",
    };
    let _ = writeln!(
        out,
        "### serin simulate: {} ({})\n\n**Outcome: {} at {}**{verdict}: {}: {}\n",
        cell(&clip(&moments.name, 200)),
        moments.strategy,
        o.phase,
        span(o.at),
        o.reason,
        cell(&clip(&o.message, 300)),
    );
    out.push_str(&weight_chart(moments));
    out.push_str(&phase_timeline(moments));
    out.push_str(&moments_table(moments));
    out
}

/// Simulated time without colons (Mermaid reads `:` as a separator): `45s`, `5m05s`, `1h02m`.
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// The weight in effect at `t`.
fn weight_at(weights: &[(f64, i32)], t: f64) -> i32 {
    weights
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or(0, |(_, w)| *w)
}

fn weight_chart(moments: &Moments) -> String {
    let ticks = scale::time_ticks(moments.end, SAMPLES - 1);
    let step = ticks.get(1).copied().unwrap_or(moments.end);
    let mut instants = ticks;
    if instants.last().is_some_and(|t| *t < moments.end) {
        instants.push(instants.last().copied().unwrap_or(0.0) + step);
    }
    let labels: Vec<String> = instants
        .iter()
        .map(|t| format!("\"{}\"", span(*t)))
        .collect();
    let values: Vec<String> = instants
        .iter()
        .map(|t| weight_at(&moments.weights, *t).to_string())
        .collect();
    format!(
        "```mermaid\nxychart-beta\n    title \"Canary weight every {} of simulated time\"\n    \
         x-axis \"simulated time\" [{}]\n    y-axis \"canary weight (%)\" 0 --> 100\n    \
         line [{}]\n```\n\n",
        span(step),
        labels.join(", "),
        values.join(", ")
    )
}

/// A phrase safe inside a Mermaid timeline line: no `:` `#` `;` or markup.
fn phrase(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ':' | ';' | '#' | '\n' | '\r' | '"' | '`' => ' ',
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .collect()
}

fn phase_timeline(moments: &Moments) -> String {
    let mut out = String::from("```mermaid\ntimeline\n    title Phases\n");
    for run in moments.phases.iter().take(MAX_PHASES) {
        let period = if run.end > run.start {
            format!("{} to {}", span(run.start), span(run.end))
        } else {
            format!("from {}", span(run.start))
        };
        let _ = writeln!(out, "    {period} : {}", phrase(&run.phase));
    }
    let more = moments.phases.len().saturating_sub(MAX_PHASES);
    if more > 0 {
        let _ = writeln!(out, "    later : {more} more phase changes");
    }
    out.push_str("```\n\n");
    out
}

/// A Markdown table cell: no column breaks, no raw HTML.
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn moments_table(moments: &Moments) -> String {
    let rows = moments.notable();
    let mut out = String::from("| time | what | detail |\n| --- | --- | --- |\n");
    for row in rows.iter().take(MAX_ROWS) {
        let time = match row.until {
            Some(until) => format!("{} to {}", span(row.at), span(until)),
            None => span(row.at),
        };
        let _ = writeln!(
            out,
            "| {time} | {} | {} |",
            cell(&clip(&row.what, 100)),
            cell(&clip(&row.detail, 300))
        );
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(out, "\n… and {} more", rows.len() - MAX_ROWS);
    }
    out
}
