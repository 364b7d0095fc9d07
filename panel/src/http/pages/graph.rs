//! Usage graphs as inline SVG, drawn on the server: no JavaScript, no chart library.

use std::fmt::Write;

/// The whole picture, in SVG units; the plot sits inside the margins.
const W: f64 = 640.0;
const H: f64 = 150.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// How the time axis is marked: a tick every `step` seconds, labelled by `label`.
pub struct TimeAxis {
    pub step: i64,
    pub label: fn(i64) -> String,
}

/// "09:40" (UTC), for the last hour.
pub fn clock(t: i64) -> String {
    let s = t.rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// "11-21" (UTC), for the last 30 days.
pub fn day(t: i64) -> String {
    let (_, m, d) = crate::domain::period::civil(t.div_euclid(86_400));
    format!("{m:02}-{d:02}")
}

/// A line graph of `points` (time, value) between `from` and `to`: a value scale on the
/// left (0, half and the top, written by `label` with their unit), time ticks below.
/// Gaps longer than `gap` seconds break the line.
pub fn line(
    points: &[(i64, f64)],
    from: i64,
    to: i64,
    gap: i64,
    label: impl Fn(f64) -> String,
    axis: &TimeAxis,
) -> String {
    let top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let span = (to - from).max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: i64| LEFT + ((t - from) as f64 / span * pw).clamp(0.0, pw);
    let y = |v: f64| TOP + ph - (v / top * ph).clamp(0.0, ph);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"graph\" viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    // The value scale: grid lines at 0, half and the top.
    for (i, v) in [0.0, top / 2.0, top].into_iter().enumerate() {
        let gy = y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{gy:.1}\" x2=\"{:.1}\" y2=\"{gy:.1}\" class=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"scale\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            if i == 0 { "axis" } else { "grid" },
            LEFT - 4.0,
            gy + 4.0,
            label(v)
        );
    }
    // Time ticks on whole steps.
    let first = from.div_euclid(axis.step) * axis.step + axis.step;
    let mut t = first;
    while t < to {
        let tx = x(t);
        let _ = write!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" class=\"axis\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" class=\"scale\" text-anchor=\"middle\">{}</text>",
            TOP + ph,
            TOP + ph + 4.0,
            H - 6.0,
            (axis.label)(t)
        );
        t += axis.step;
    }
    let mut run: Vec<String> = Vec::new();
    let mut last: Option<i64> = None;
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        if run.len() == 1 {
            // A lone point: a dot.
            let (px, py) = run[0].split_once(',').expect("x,y");
            let _ = write!(
                svg,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"2\" class=\"dot\"/>"
            );
        } else if run.len() > 1 {
            let _ = write!(
                svg,
                "<polyline points=\"{}\" class=\"line\"/>",
                run.join(" ")
            );
        }
        run.clear();
    };
    for &(t, v) in points {
        if last.is_some_and(|l| t - l > gap) {
            flush(&mut run, &mut svg);
        }
        run.push(format!("{:.1},{:.1}", x(t), y(v)));
        last = Some(t);
    }
    flush(&mut run, &mut svg);
    if points.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"empty\" text-anchor=\"middle\">no samples yet</text>",
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_lines_dots_and_gaps() {
        let axis = TimeAxis {
            step: 600,
            label: clock,
        };
        let svg = line(
            &[(0, 1.0), (60, 2.0), (120, 1.0), (1000, 5.0)],
            0,
            1000,
            300,
            |v| format!("{v:.0}%"),
            &axis,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("<circle").count(),
            1,
            "the point after the gap stands alone: {svg}"
        );
        assert!(
            svg.contains(">6%<"),
            "scale label at 110% of the top: {svg}"
        );
        assert!(svg.contains(">00:10<"), "a time tick at 600 s: {svg}");
        assert!(
            svg.contains(">0%<") && svg.contains(">3%<"),
            "the scale: {svg}"
        );
        let empty = line(&[], 0, 10, 5, |v| format!("{v}"), &axis);
        assert!(empty.contains("no samples yet"));
        assert_eq!(day(1_795_651_200), "11-26");
    }
}
