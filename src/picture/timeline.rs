//! The rollout timeline as an SVG: the canary weight over time as a step line, the holds
//! (pauses, closed gates) as shaded bands, webhook answers and scripted events in lanes, one
//! small panel per metric with its allowed band and failures marked, and the decisions
//! (promote, rollback) as labelled lines across everything. The x axis is simulated time.

use crate::api::status::CheckResult;

use super::moments::{CheckPoint, Decision, DecisionKind, HookMark, Moments, Panel};
use super::scale::{self, Linear};
use super::svg::{Attr, Svg, clip, num, polyline};
use super::thin;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
const WEIGHT_TOP: f64 = 64.0;
const WEIGHT_HEIGHT: f64 = 160.0;
const LANE_HEIGHT: f64 = 24.0;
const PANEL_HEIGHT: f64 = 64.0;
/// Above each panel: its name and bounds.
const PANEL_TITLE: f64 = 24.0;
const AXIS_HEIGHT: f64 = 64.0;
/// More metrics than this are listed, not drawn: the picture stays a picture.
pub const MAX_PANELS: usize = 16;
/// Pixels per column when thinning marks (see `thin`).
const COLUMN: f64 = 2.0;

pub const PASS: &str = "#2e7d32";
pub const FAIL: &str = "#c62828";
const OTHER: &str = "#757575";
const WEIGHT: &str = "#1565c0";
const BAND: &str = "#c8e6c9";
const HOLD: &str = "#fff3c4";

/// Where everything goes, from the number of lanes and panels.
struct Frame {
    x: Linear,
    hooks_top: Option<f64>,
    events_top: Option<f64>,
    panels_top: f64,
    bottom: f64,
}

impl Frame {
    fn of(moments: &Moments) -> Self {
        let end = moments.end * 1.03;
        let x = Linear::new((0.0, end), (LEFT, WIDTH - RIGHT));
        let mut y = WEIGHT_TOP + WEIGHT_HEIGHT + 8.0;
        let mut lane = |present: bool| {
            present.then(|| {
                let top = y;
                y += LANE_HEIGHT;
                top
            })
        };
        let hooks_top = lane(!moments.hooks.is_empty());
        let events_top = lane(!moments.events.is_empty());
        let panels = moments.panels.len().min(MAX_PANELS) as f64;
        let panels_top = y;
        let bottom = panels_top + panels * (PANEL_TITLE + PANEL_HEIGHT) + 8.0;
        Self {
            x,
            hooks_top,
            events_top,
            panels_top,
            bottom,
        }
    }
}

/// The whole timeline as a standalone SVG document.
pub fn svg(moments: &Moments) -> String {
    let frame = Frame::of(moments);
    let height = frame.bottom + AXIS_HEIGHT;
    let mut svg = Svg::new(
        WIDTH,
        height,
        &format!("rollout timeline of {}", moments.name),
    );
    svg.element(
        "rect",
        &[
            ("width", num(WIDTH)),
            ("height", num(height)),
            ("fill", "white".into()),
        ],
    );
    header(&mut svg, moments);
    time_grid(&mut svg, &frame, moments.end);
    weight_panel(&mut svg, &frame, moments);
    if let Some(top) = frame.hooks_top {
        hook_lane(&mut svg, &frame, top, &moments.hooks);
    }
    if let Some(top) = frame.events_top {
        event_lane(&mut svg, &frame, top, &moments.events);
    }
    for (i, panel) in moments.panels.iter().take(MAX_PANELS).enumerate() {
        let top = frame.panels_top + i as f64 * (PANEL_TITLE + PANEL_HEIGHT) + PANEL_TITLE;
        check_panel(&mut svg, &frame, top, panel);
    }
    decisions(&mut svg, &frame, &moments.decisions);
    svg.finish()
}

fn header(svg: &mut Svg, moments: &Moments) {
    let title = format!("{} ({})", clip(&moments.name, 100), moments.strategy);
    svg.text(
        LEFT,
        22.0,
        &[("font-size", "16".into()), ("font-weight", "bold".into())],
        &title,
    );
    let o = &moments.outcome;
    let verdict = match o.expected {
        Some(true) => " — as expected",
        Some(false) => " — NOT as expected",
        None => "",
    };
    let line = format!(
        "outcome: {} at {} ({}){verdict}",
        o.phase,
        scale::clock(o.at),
        o.reason
    );
    let colour = if o.phase == "Failed" { FAIL } else { "black" };
    svg.text(
        LEFT,
        42.0,
        &[("class", "outcome".into()), ("fill", colour.into())],
        &line,
    );
}

/// Vertical grid lines at round simulated times, labelled under the last panel.
fn time_grid(svg: &mut Svg, frame: &Frame, end: f64) {
    svg.open("g", &[("class", "time-axis".into())]);
    for t in scale::time_ticks(end * 1.03, 10) {
        let x = frame.x.at(t);
        svg.element(
            "line",
            &[
                ("x1", num(x)),
                ("x2", num(x)),
                ("y1", num(WEIGHT_TOP)),
                ("y2", num(frame.bottom)),
                ("stroke", "#eeeeee".into()),
            ],
        );
        let label = [("text-anchor", "middle".into()), ("data-at", num(t))];
        svg.text(x, frame.bottom + 16.0, &label, &scale::clock(t));
    }
    let middle = (LEFT + WIDTH - RIGHT) / 2.0;
    let title = "simulated time since the start (m:ss, h:mm:ss)";
    svg.text(
        middle,
        frame.bottom + 36.0,
        &[("text-anchor", "middle".into())],
        title,
    );
    svg.close("g");
}

fn weight_panel(svg: &mut Svg, frame: &Frame, moments: &Moments) {
    let y = Linear::new((0.0, 100.0), (WEIGHT_TOP + WEIGHT_HEIGHT, WEIGHT_TOP));
    svg.open("g", &[("class", "weight-panel".into())]);
    holds(svg, frame, moments);
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        svg.element("line", &hline(LEFT, WIDTH - RIGHT, y.at(tick), "#e0e0e0"));
        let anchor = [("text-anchor", "end".into())];
        svg.text(LEFT - 6.0, y.at(tick) + 4.0, &anchor, &format!("{tick}%"));
    }
    let label_y = WEIGHT_TOP + WEIGHT_HEIGHT / 2.0;
    svg.axis_title(label_y, "canary weight");
    weight_line(svg, frame, &y, &moments.weights, moments.end);
    svg.close("g");
}

/// The weight as a step line; `data-points` lists its vertices as `seconds:weight`.
fn weight_line(svg: &mut Svg, frame: &Frame, y: &Linear, weights: &[(f64, i32)], end: f64) {
    let kept = thin::by_column(weights, 1.0, |(t, _)| frame.x.at(*t), |_| 0, true);
    let mut points = Vec::with_capacity(kept.len() * 2 + 1);
    let mut data = Vec::with_capacity(kept.len());
    for (i, (t, w)) in kept.iter().enumerate() {
        let x = frame.x.at(*t);
        if i > 0 {
            points.push((x, y.at(f64::from(kept[i - 1].1))));
        }
        points.push((x, y.at(f64::from(*w))));
        data.push(format!("{}:{w}", num(*t)));
    }
    if let Some((_, w)) = kept.last() {
        points.push((frame.x.at(end), y.at(f64::from(*w))));
    }
    svg.element(
        "path",
        &[
            ("class", "weight".into()),
            ("d", polyline(&points)),
            ("data-points", data.join(" ")),
            ("fill", "none".into()),
            ("stroke", WEIGHT.into()),
            ("stroke-width", "2".into()),
        ],
    );
}

/// Holds shade the weight panel and the lanes under it, so a flat stretch of the weight line
/// says why it is flat.
fn holds(svg: &mut Svg, frame: &Frame, moments: &Moments) {
    let kept = thin::by_column(&moments.holds, 1.0, |h| frame.x.at(h.start), |_| 0, false);
    let bottom = frame.panels_top;
    for hold in kept {
        let (x0, x1) = (frame.x.at(hold.start), frame.x.at(hold.end));
        let title = format!(
            "{}–{} {}: {}",
            scale::clock(hold.start),
            scale::clock(hold.end),
            hold.reason,
            clip(&hold.message, 200)
        );
        let attrs = [
            ("class", "hold".into()),
            ("data-reason", hold.reason.clone()),
            ("data-start", num(hold.start)),
            ("data-end", num(hold.end)),
            ("x", num(x0)),
            ("y", num(WEIGHT_TOP)),
            ("width", num((x1 - x0).max(1.0))),
            ("height", num(bottom - WEIGHT_TOP)),
            ("fill", HOLD.into()),
        ];
        svg.element_titled("rect", &attrs, &title);
    }
}

fn lane_label(svg: &mut Svg, top: f64, text: &str) {
    svg.text(
        LEFT - 6.0,
        top + 16.0,
        &[("text-anchor", "end".into())],
        text,
    );
}

fn colour(result: CheckResult) -> &'static str {
    match result {
        CheckResult::Pass => PASS,
        CheckResult::Fail => FAIL,
        CheckResult::NoData | CheckResult::Error => OTHER,
    }
}

fn class(result: CheckResult) -> &'static str {
    match result {
        CheckResult::Pass => "pass",
        CheckResult::Fail => "fail",
        CheckResult::NoData => "nodata",
        CheckResult::Error => "error",
    }
}

/// What a reader most needs to see when marks share a column.
fn rank(result: CheckResult) -> u8 {
    match result {
        CheckResult::Pass => 0,
        CheckResult::NoData => 1,
        CheckResult::Error => 2,
        CheckResult::Fail => 3,
    }
}

/// Webhook answers; gates (`confirm-*`) are tall marks, other hooks short ones.
fn hook_lane(svg: &mut Svg, frame: &Frame, top: f64, hooks: &[HookMark]) {
    svg.open("g", &[("class", "webhooks".into())]);
    lane_label(svg, top, "webhooks");
    let kept = thin::by_column(
        hooks,
        COLUMN,
        |h| frame.x.at(h.at),
        |h| rank(h.result),
        false,
    );
    for hook in kept {
        let gate = hook.kind.starts_with("confirm-");
        let height = if gate { 18.0 } else { 10.0 };
        let attrs = [
            ("class", format!("webhook {}", class(hook.result))),
            ("data-hook", hook.name.clone()),
            ("data-kind", hook.kind.clone()),
            ("data-at", num(hook.at)),
            ("x", num(frame.x.at(hook.at) - 2.0)),
            ("y", num(top + (LANE_HEIGHT - height) / 2.0)),
            ("width", "4".into()),
            ("height", num(height)),
            ("fill", colour(hook.result).into()),
        ];
        let title = format!(
            "{} {} ({}): {}",
            scale::clock(hook.at),
            clip(&hook.name, 80),
            hook.kind,
            clip(&hook.message, 200)
        );
        svg.element_titled("rect", &attrs, &title);
    }
    svg.close("g");
}

/// The script's events (releases, requests, config changes) as small triangles.
fn event_lane(svg: &mut Svg, frame: &Frame, top: f64, events: &[(f64, String)]) {
    svg.open("g", &[("class", "events".into())]);
    lane_label(svg, top, "events");
    for (at, what) in thin::by_column(events, COLUMN, |e| frame.x.at(e.0), |_| 0, false) {
        let x = frame.x.at(*at);
        let d = format!(
            "M{} {} L{} {} L{} {} Z",
            num(x),
            num(top + 4.0),
            num(x - 5.0),
            num(top + 18.0),
            num(x + 5.0),
            num(top + 18.0)
        );
        let attrs = [
            ("class", "event".into()),
            ("data-at", num(*at)),
            ("d", d),
            ("fill", "#6a1b9a".into()),
        ];
        let title = format!("{} {}", scale::clock(*at), clip(what, 200));
        svg.element_titled("path", &attrs, &title);
    }
    svg.close("g");
}

fn hline(x1: f64, x2: f64, y: f64, stroke: &str) -> Vec<Attr<'static>> {
    vec![
        ("x1", num(x1)),
        ("x2", num(x2)),
        ("y1", num(y)),
        ("y2", num(y)),
        ("stroke", stroke.into()),
    ]
}

/// The values' range with the bounds in it, padded so points do not sit on the frame.
fn panel_domain(panel: &Panel) -> (f64, f64) {
    let values = panel
        .points
        .iter()
        .flat_map(|p| [p.value, p.primary, p.allowed.min, p.allowed.max]);
    let all: Vec<f64> = values
        .chain([panel.bounds.min, panel.bounds.max])
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.15)
        .max(hi.abs().max(lo.abs()) * 0.02)
        .max(1e-9);
    (lo - pad, hi + pad)
}

fn check_panel(svg: &mut Svg, frame: &Frame, top: f64, panel: &Panel) {
    let y = Linear::new(panel_domain(panel), (top + PANEL_HEIGHT, top));
    svg.open(
        "g",
        &[
            ("class", "check-panel".into()),
            ("data-check", panel.name.clone()),
        ],
    );
    svg.text(
        LEFT,
        top - 6.0,
        &[("font-weight", "bold".into())],
        &panel_title(panel),
    );
    let frame_attrs = [
        ("x", num(LEFT)),
        ("y", num(top)),
        ("width", num(WIDTH - RIGHT - LEFT)),
        ("height", num(PANEL_HEIGHT)),
        ("fill", "none".into()),
        ("stroke", "#bdbdbd".into()),
    ];
    svg.element("rect", &frame_attrs);
    fixed_band(svg, &y, panel);
    let (lo, hi) = y.domain();
    for tick in scale::ticks(lo, hi, 3) {
        let anchor = [("text-anchor", "end".into()), ("font-size", "10".into())];
        svg.text(LEFT - 6.0, y.at(tick) + 3.0, &anchor, &scale::label(tick));
    }
    if panel.points.is_empty() {
        let note = [("class", "never-checked".into()), ("fill", OTHER.into())];
        svg.text(
            LEFT + 8.0,
            top + PANEL_HEIGHT / 2.0,
            &note,
            "never checked in this run",
        );
    }
    let kept = thin::by_column(
        &panel.points,
        COLUMN,
        |p| frame.x.at(p.at),
        |p| rank(p.result),
        false,
    );
    for point in kept {
        check_point(svg, frame, &y, &panel.name, point);
    }
    svg.close("g");
}

fn panel_title(panel: &Panel) -> String {
    let name = clip(&panel.name, 60);
    let bounds = match (panel.bounds.min, panel.bounds.max) {
        (Some(min), Some(max)) => format!("allowed {} to {}", scale::label(min), scale::label(max)),
        (Some(min), None) => format!("allowed ≥ {}", scale::label(min)),
        (None, Some(max)) => format!("allowed ≤ {}", scale::label(max)),
        (None, None) => String::new(),
    };
    let judged = if panel.judged {
        "judged against the primary (canary mean; band from the primary's mean)"
    } else {
        ""
    };
    [name, bounds, judged.to_string()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The thresholdRange as a band (open ends reach the panel's edge).
fn fixed_band(svg: &mut Svg, y: &Linear, panel: &Panel) {
    let (min, max) = (panel.bounds.min, panel.bounds.max);
    if min.is_none() && max.is_none() {
        return;
    }
    let (lo, hi) = y.domain();
    let (top, bottom) = (y.at(max.unwrap_or(hi)), y.at(min.unwrap_or(lo)));
    let attrs = [
        ("class", "bounds".into()),
        ("data-min", min.map_or("-".into(), scale::label)),
        ("data-max", max.map_or("-".into(), scale::label)),
        ("x", num(LEFT)),
        ("y", num(top)),
        ("width", num(WIDTH - RIGHT - LEFT)),
        ("height", num((bottom - top).max(0.5))),
        ("fill", BAND.into()),
    ];
    svg.element("rect", &attrs);
}

fn check_point(svg: &mut Svg, frame: &Frame, y: &Linear, name: &str, point: &CheckPoint) {
    let x = frame.x.at(point.at);
    if point.allowed.min.is_some() || point.allowed.max.is_some() {
        let (lo, hi) = y.domain();
        let (top, bottom) = (
            y.at(point.allowed.max.unwrap_or(hi)),
            y.at(point.allowed.min.unwrap_or(lo)),
        );
        let attrs = [
            ("class", "allowed".into()),
            ("x", num(x - 4.0)),
            ("y", num(top)),
            ("width", "8".into()),
            ("height", num((bottom - top).max(0.5))),
            ("fill", BAND.into()),
        ];
        svg.element("rect", &attrs);
    }
    let title = format!(
        "{} {} {}",
        scale::clock(point.at),
        clip(name, 80),
        clip(&point.message, 200)
    );
    let cy = point.value.map_or(y.at(y.domain().0), |v| y.at(v));
    let mut attrs = vec![
        ("class", format!("check-point {}", class(point.result))),
        ("data-at", num(point.at)),
        ("data-value", point.value.map_or("-".into(), scale::label)),
        ("cx", num(x)),
        ("cy", num(cy)),
        (
            "r",
            if point.result == CheckResult::Fail {
                "4.5"
            } else {
                "3"
            }
            .into(),
        ),
        ("fill", colour(point.result).into()),
    ];
    if point.value.is_none() {
        attrs.push(("fill-opacity", "0.4".into()));
    }
    svg.element_titled("circle", &attrs, &title);
}

/// Promote, rollback and success as lines across every panel, labelled at the top unless the
/// label would overlap the previous one (the tooltip always says it).
fn decisions(svg: &mut Svg, frame: &Frame, decisions: &[Decision]) {
    let kept = thin::by_column(
        decisions,
        COLUMN,
        |d| frame.x.at(d.at),
        |d| u8::from(d.kind == DecisionKind::Rollback),
        false,
    );
    let mut last_label = f64::NEG_INFINITY;
    for decision in kept {
        let x = frame.x.at(decision.at);
        let colour = match decision.kind {
            DecisionKind::Rollback => FAIL,
            DecisionKind::Promote => PASS,
            DecisionKind::Succeeded => WEIGHT,
        };
        svg.open(
            "g",
            &[
                ("class", format!("decision {}", decision.kind.as_str())),
                ("data-at", num(decision.at)),
                ("data-weight", decision.weight.to_string()),
                ("data-reason", decision.reason.clone()),
            ],
        );
        let title = format!(
            "{} {} at {}% ({}): {}",
            scale::clock(decision.at),
            decision.kind.as_str(),
            decision.weight,
            decision.reason,
            clip(&decision.message, 300)
        );
        let mut line = vec![
            ("x1", num(x)),
            ("x2", num(x)),
            ("y1", num(WEIGHT_TOP - 6.0)),
            ("y2", num(frame.bottom)),
        ];
        line.extend([
            ("stroke", colour.into()),
            ("stroke-width", "2".into()),
            ("stroke-dasharray", "6 3".into()),
        ]);
        svg.element_titled("line", &line, &title);
        if x - last_label > 150.0 {
            let right = x > WIDTH - 200.0;
            let (lx, anchor) = if right {
                (x - 4.0, "end")
            } else {
                (x + 4.0, "start")
            };
            let label = format!("{}: {}", decision.kind.as_str(), decision.reason);
            let attrs = [
                ("text-anchor", anchor.into()),
                ("fill", colour.into()),
                ("font-weight", "bold".into()),
            ];
            svg.text(lx, WEIGHT_TOP + 12.0, &attrs, &label);
            last_label = x;
        }
        svg.close("g");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::provider::{DEFAULT_NAME, TrafficProvider};
    use crate::sim::{self, Scenario};

    /// The rollback example with its values replaced by `values`, one per tick.
    fn drawn_with(values: &str) -> String {
        let yaml = include_str!("../../examples/podinfo-rollback.yaml").replace(
            "    - minWeight: 30\n      value: 91.4\n    - value: 99.9",
            values,
        );
        let provider = TrafficProvider::parse(DEFAULT_NAME).unwrap();
        let scenario = Scenario::from_yaml(&yaml, provider).unwrap();
        svg(&Moments::of(&sim::run(&scenario), &scenario.plan))
    }

    #[test]
    fn extreme_values_draw_inside_their_panel_with_plain_numbers() {
        let svg = drawn_with(
            "    - {before: 2m30s, value: .nan}\n    - {before: 3m30s, value: .inf}\n    \
             - {before: 4m30s, value: -1.7e308}\n    - value: 1.7e308",
        );
        // Every coordinate is a plain number: no NaN, inf or 300-digit values.
        let coordinate =
            regex::Regex::new(r#" (?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)""#).unwrap();
        for value in coordinate.captures_iter(&svg).map(|c| c[1].to_string()) {
            let number: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{value:?} in {svg}"));
            assert!((0.0..=2000.0).contains(&number), "{value} in {svg}");
        }
        assert!(svg.contains("class=\"check-point fail\""));
    }

    #[test]
    fn a_metric_never_checked_says_so() {
        let yaml = include_str!("../../examples/podinfo-never-ready.yaml");
        let provider = TrafficProvider::parse(DEFAULT_NAME).unwrap();
        let scenario = Scenario::from_yaml(yaml, provider).unwrap();
        let svg = svg(&Moments::of(&sim::run(&scenario), &scenario.plan));
        assert!(svg.contains("never checked in this run"), "{svg}");
        assert!(!svg.contains("class=\"check-point"));
    }
}
