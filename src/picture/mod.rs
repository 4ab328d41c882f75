//! Pictures of rollouts and judgements, drawn by serin itself (no scripts, no CDNs): a
//! simulated rollout as an SVG timeline, a self-contained HTML page around it, or a Mermaid
//! chart for a pull-request comment; and the judge's two samples with the shift it estimated.
//!
//! - [`moments`]: what a rollout picture shows, read from a simulation report;
//! - [`timeline`]: the rollout as SVG; [`page`]: the HTML around a drawing;
//! - [`mermaid`]: the rollout as Markdown with Mermaid charts;
//! - [`distribution`]: `serin judge --plot`;
//! - [`svg`], [`scale`], [`thin`]: the drawing's tools: escaping, axes, bounded marks.

pub mod distribution;
pub mod mermaid;
pub mod moments;
pub mod page;
pub mod scale;
pub mod svg;
pub mod thin;
pub mod timeline;

use crate::engine::Plan;
use crate::sim::Report;

pub use moments::Moments;

/// The rollout timeline as a standalone SVG document.
pub fn rollout_svg(report: &Report, plan: &Plan) -> String {
    timeline::svg(&Moments::of(report, plan))
}

/// The rollout timeline as a self-contained HTML page: the drawing and a table of its moments.
pub fn rollout_html(report: &Report, plan: &Plan) -> String {
    page::rollout(&Moments::of(report, plan))
}

/// The rollout as Markdown: Mermaid charts of the weight and the phases, and a table of the
/// moments that decided it, for a pull-request comment.
pub fn rollout_markdown(report: &Report, plan: &Plan) -> String {
    mermaid::markdown(&Moments::of(report, plan))
}
