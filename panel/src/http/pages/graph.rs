//! Usage graphs as inline SVG, drawn on the server: no JavaScript, no chart library.

use std::fmt::Write;

/// Width and height of the drawing area, in SVG units.
const W: f64 = 600.0;
const H: f64 = 120.0;

/// A line graph of `points` (time, value) between `from` and `to`, with `label` formatting
/// the top of the scale. Gaps longer than `gap` seconds break the line.
pub fn line(
    points: &[(i64, f64)],
    from: i64,
    to: i64,
    gap: i64,
    label: impl Fn(f64) -> String,
) -> String {
    let top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let span = (to - from).max(1) as f64;
    let x = |t: i64| ((t - from) as f64 / span * W).clamp(0.0, W);
    let y = |v: f64| H - (v / top * H).clamp(0.0, H);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"graph\" viewBox=\"0 0 {W} {}\" role=\"img\" preserveAspectRatio=\"none\">\
         <line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" class=\"axis\"/>\
         <text x=\"2\" y=\"10\" class=\"scale\">{}</text>",
        H + 2.0,
        label(top)
    );
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
            "<text x=\"{}\" y=\"{}\" class=\"empty\">no samples yet</text>",
            W / 2.0 - 40.0,
            H / 2.0
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
        let svg = line(
            &[(0, 1.0), (60, 2.0), (120, 1.0), (1000, 5.0)],
            0,
            1000,
            300,
            |v| format!("{v:.0}%"),
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
        let empty = line(&[], 0, 10, 5, |v| format!("{v}"));
        assert!(empty.contains("no samples yet"));
    }
}
