//! `serin judge --plot`: both samples as empirical distribution functions (the share of values
//! at or below each value), and under them the shift the judge estimated (Hodges-Lehmann) with
//! its confidence interval, the change of the means, and the band of change the judge allows.

use crate::judge::compare::{Class, Comparison, Direction, JudgeConfig};

use super::page;
use super::scale::{self, Linear};
use super::svg::{Attr, Svg, num, polyline};
use super::thin;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 32.0;
const ECDF_TOP: f64 = 70.0;
const ECDF_HEIGHT: f64 = 260.0;
const SHIFT_TOP: f64 = 410.0;
const SHIFT_HEIGHT: f64 = 70.0;
const HEIGHT: f64 = 560.0;
const CANARY: &str = "#ef6c00";
const PRIMARY: &str = "#1565c0";
const BAND: &str = "#c8e6c9";

/// What `judge --plot` draws: the samples as read and the judge's verdict on them.
pub struct Judged<'a> {
    pub canary: &'a [f64],
    pub primary: &'a [f64],
    pub result: &'a Comparison,
    pub config: &'a JudgeConfig,
}

pub fn svg(judged: &Judged<'_>) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT, "canary and primary distributions");
    svg.element(
        "rect",
        &[
            ("width", num(WIDTH)),
            ("height", num(HEIGHT)),
            ("fill", "white".into()),
        ],
    );
    let r = judged.result;
    let verdict = format!("class {:?}: {}", r.class, r.reason);
    let colour = if r.failed { "#c62828" } else { "black" };
    svg.text(
        LEFT,
        24.0,
        &[("font-size", "16".into()), ("font-weight", "bold".into())],
        "serin judge: canary against primary",
    );
    svg.text(
        LEFT,
        44.0,
        &[("class", "verdict".into()), ("fill", colour.into())],
        &verdict,
    );
    ecdf_panel(&mut svg, judged);
    shift_panel(&mut svg, judged);
    svg.finish()
}

pub fn html(judged: &Judged<'_>) -> String {
    let r = judged.result;
    let body = format!(
        "{}<p>{}</p>\n",
        svg(judged),
        super::svg::escape(&r.statistics())
    );
    page::document("serin judge: canary against primary", &body)
}

fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    out.sort_unstable_by(f64::total_cmp);
    out
}

fn ecdf_panel(svg: &mut Svg, judged: &Judged<'_>) {
    let (canary, primary) = (sorted_finite(judged.canary), sorted_finite(judged.primary));
    let lo = canary
        .first()
        .into_iter()
        .chain(primary.first())
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = canary
        .last()
        .into_iter()
        .chain(primary.last())
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let x = Linear::new((lo - pad, hi + pad), (LEFT, WIDTH - RIGHT));
    let y = Linear::new((0.0, 1.0), (ECDF_TOP + ECDF_HEIGHT, ECDF_TOP));
    svg.open("g", &[("class", "ecdf-panel".into())]);
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let attrs = [
            ("x1", num(LEFT)),
            ("x2", num(WIDTH - RIGHT)),
            ("y1", num(y.at(tick))),
            ("y2", num(y.at(tick))),
            ("stroke", "#e0e0e0".into()),
        ];
        svg.element("line", &attrs);
        svg.text(
            LEFT - 6.0,
            y.at(tick) + 4.0,
            &[("text-anchor", "end".into())],
            &format!("{}%", tick * 100.0),
        );
    }
    value_axis(svg, &x, ECDF_TOP + ECDF_HEIGHT, "value");
    let label_y = ECDF_TOP + ECDF_HEIGHT / 2.0;
    svg.axis_title(label_y, "share of values ≤ x");
    ecdf(
        svg,
        &x,
        &y,
        &primary,
        "primary",
        PRIMARY,
        judged.result.baseline_mean,
    );
    ecdf(
        svg,
        &x,
        &y,
        &canary,
        "canary",
        CANARY,
        judged.result.canary_mean,
    );
    svg.close("g");
}

fn value_axis(svg: &mut Svg, x: &Linear, y: f64, title: &str) {
    let (lo, hi) = x.domain();
    for tick in scale::ticks(lo, hi, 8) {
        svg.text(
            x.at(tick),
            y + 16.0,
            &[("text-anchor", "middle".into())],
            &scale::label(tick),
        );
    }
    svg.text(
        (LEFT + WIDTH - RIGHT) / 2.0,
        y + 34.0,
        &[("text-anchor", "middle".into())],
        title,
    );
}

/// One sample's distribution as a step line (thinned to a vertex per pixel), its mean as a
/// dashed line, and its legend entry.
fn ecdf(
    svg: &mut Svg,
    x: &Linear,
    y: &Linear,
    sorted: &[f64],
    side: &str,
    colour: &str,
    mean: Option<f64>,
) {
    let n = sorted.len() as f64;
    let vertices: Vec<(f64, f64)> = sorted
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, (i + 1) as f64 / n))
        .collect();
    let kept = thin::by_column(&vertices, 1.0, |(v, _)| x.at(*v), |_| 0, true);
    let mut points = Vec::with_capacity(kept.len() * 2 + 2);
    let mut below = 0.0;
    for (v, share) in kept {
        points.push((x.at(*v), y.at(below)));
        points.push((x.at(*v), y.at(*share)));
        below = *share;
    }
    if !points.is_empty() {
        points.push((WIDTH - RIGHT, y.at(below)));
    }
    let attrs = [
        ("class", format!("ecdf {side}")),
        ("data-count", sorted.len().to_string()),
        ("d", polyline(&points)),
        ("fill", "none".into()),
        ("stroke", colour.into()),
        ("stroke-width", "2".into()),
    ];
    svg.element("path", &attrs);
    let legend_y = if side == "canary" {
        ECDF_TOP - 8.0
    } else {
        ECDF_TOP - 24.0
    };
    let text = format!(
        "{side}: {} values, mean {}",
        sorted.len(),
        mean.map_or("-".into(), scale::label)
    );
    svg.text(
        WIDTH - RIGHT,
        legend_y,
        &[("text-anchor", "end".into()), ("fill", colour.into())],
        &text,
    );
    if let Some(mean) = mean {
        let attrs = [
            ("class", format!("mean {side}")),
            ("x1", num(x.at(mean))),
            ("x2", num(x.at(mean))),
            ("y1", num(ECDF_TOP)),
            ("y2", num(ECDF_TOP + ECDF_HEIGHT)),
            ("stroke", colour.into()),
            ("stroke-dasharray", "4 3".into()),
        ];
        svg.element("line", &attrs);
    }
}

/// The band of mean change the judge tolerates, in the metric's units: `allowedChange` times
/// the primary's mean, open on the side that is not a regression.
fn allowed(result: &Comparison, config: &JudgeConfig) -> (Option<f64>, Option<f64>) {
    let slack = config.allowed_change * result.baseline_mean.unwrap_or(0.0).abs();
    match config.direction {
        Direction::Increase => (None, Some(slack)),
        Direction::Decrease => (Some(-slack), None),
        Direction::Either => (Some(-slack), Some(slack)),
    }
}

fn shift_panel(svg: &mut Svg, judged: &Judged<'_>) {
    let r = judged.result;
    svg.open("g", &[("class", "shift-panel".into())]);
    let title = "canary − primary: shift (dot) with its interval, change of the means (diamond), \
                 allowed band (green)";
    let bold = [("font-weight", "bold".into())];
    svg.text(LEFT, SHIFT_TOP - 10.0, &bold, title);
    let (Some(shift), Some(lower), Some(upper)) = (r.shift, r.shift_lower, r.shift_upper) else {
        let note = if r.class == Class::NoData {
            "too few samples: no shift estimated"
        } else {
            "no shift estimated"
        };
        let class = [("class", "no-shift".into())];
        svg.text(LEFT, SHIFT_TOP + 30.0, &class, note);
        svg.close("g");
        return;
    };
    let difference = r.canary_mean.zip(r.baseline_mean).map(|(c, b)| c - b);
    let band = allowed(r, judged.config);
    let marks = [
        Some(shift),
        Some(lower),
        Some(upper),
        difference,
        band.0,
        band.1,
    ];
    let x = shift_scale(&marks);
    allowed_band(svg, &x, band, judged.config.allowed_change);
    let zero = x.at(0.0);
    svg.element(
        "line",
        &vline(zero, SHIFT_TOP, SHIFT_TOP + SHIFT_HEIGHT, "#9e9e9e"),
    );
    interval(svg, &x, shift, lower, upper, r);
    if let Some(d) = difference {
        mean_difference(svg, &x, d);
    }
    value_axis(svg, &x, SHIFT_TOP + SHIFT_HEIGHT, "canary − primary");
    svg.close("g");
}

/// An axis covering every mark and zero, padded.
fn shift_scale(marks: &[Option<f64>]) -> Linear {
    let finite = marks.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-9);
    Linear::new((lo - pad, hi + pad), (LEFT, WIDTH - RIGHT))
}

fn vline(x: f64, y1: f64, y2: f64, stroke: &str) -> Vec<Attr<'static>> {
    vec![
        ("x1", num(x)),
        ("x2", num(x)),
        ("y1", num(y1)),
        ("y2", num(y2)),
        ("stroke", stroke.into()),
    ]
}

/// The band of tolerated change; an open side runs to the panel's edge.
fn allowed_band(svg: &mut Svg, x: &Linear, (min, max): (Option<f64>, Option<f64>), change: f64) {
    let (lo, hi) = x.domain();
    let (x0, x1) = (x.at(min.unwrap_or(lo)), x.at(max.unwrap_or(hi)));
    let band = [
        ("class", "allowed".into()),
        ("data-min", min.map_or("-".into(), scale::label)),
        ("data-max", max.map_or("-".into(), scale::label)),
        ("x", num(x0)),
        ("y", num(SHIFT_TOP)),
        ("width", num((x1 - x0).max(1.0))),
        ("height", num(SHIFT_HEIGHT)),
        ("fill", BAND.into()),
    ];
    let title = format!(
        "allowed change of the mean: {}% of the primary's mean",
        scale::label(change * 100.0)
    );
    svg.element_titled("rect", &band, &title);
}

/// The difference of the means, which the allowed band applies to, as a diamond.
fn mean_difference(svg: &mut Svg, x: &Linear, difference: f64) {
    let (cx, cy) = (x.at(difference), SHIFT_TOP + SHIFT_HEIGHT * 0.75);
    let corners = [
        (cx, cy - 6.0),
        (cx + 6.0, cy),
        (cx, cy + 6.0),
        (cx - 6.0, cy),
    ];
    let attrs = [
        ("class", "mean-difference".into()),
        ("data-value", scale::label(difference)),
        ("d", polyline(&corners) + " Z"),
        ("fill", CANARY.into()),
    ];
    let title = format!("change of the means {}", scale::label(difference));
    svg.element_titled("path", &attrs, &title);
}

fn interval(svg: &mut Svg, x: &Linear, shift: f64, lower: f64, upper: f64, r: &Comparison) {
    let cy = SHIFT_TOP + SHIFT_HEIGHT * 0.35;
    let colour = if r.failed { "#c62828" } else { "#212121" };
    let label = format!(
        "shift {} [{}, {}] ({}% interval)",
        scale::label(shift),
        scale::label(lower),
        scale::label(upper),
        scale::label(r.confidence * 100.0)
    );
    svg.open(
        "g",
        &[
            ("class", "shift".into()),
            ("data-estimate", scale::label(shift)),
            ("data-lower", scale::label(lower)),
            ("data-upper", scale::label(upper)),
        ],
    );
    let bar = [
        ("x1", num(x.at(lower))),
        ("x2", num(x.at(upper))),
        ("y1", num(cy)),
        ("y2", num(cy)),
        ("stroke", colour.into()),
        ("stroke-width", "3".into()),
    ];
    svg.element_titled("line", &bar, &label);
    for end in [lower, upper] {
        let cap = [
            ("x1", num(x.at(end))),
            ("x2", num(x.at(end))),
            ("y1", num(cy - 7.0)),
            ("y2", num(cy + 7.0)),
            ("stroke", colour.into()),
            ("stroke-width", "2".into()),
        ];
        svg.element("line", &cap);
    }
    svg.element_titled(
        "circle",
        &[
            ("cx", num(x.at(shift))),
            ("cy", num(cy)),
            ("r", "5".into()),
            ("fill", colour.into()),
        ],
        &label,
    );
    svg.text(
        LEFT + 4.0,
        SHIFT_TOP + 14.0,
        &[("fill", colour.into())],
        &label,
    );
    svg.close("g");
}
