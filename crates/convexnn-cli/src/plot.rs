//! Line plots written as SVG by hand: titled, labelled axes, ticks, optional log-scale y, a legend.

use std::fmt::Write;
use std::path::Path;

use convexnn::data::atomic::write_atomic;
use convexnn::Result;

/// One curve.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed stroke (used for reference lines).
    pub dashed: bool,
    /// Draw the points as dots instead of a line (data).
    pub markers: bool,
}

/// A plot's text and scales.
pub struct Plot<'a> {
    /// Title.
    pub title: &'a str,
    /// x-axis label (with units).
    pub x_label: &'a str,
    /// y-axis label (with units).
    pub y_label: &'a str,
    /// Logarithmic y axis.
    pub log_y: bool,
}

/// A palette for runs.
pub const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
];

fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-300);
    let raw = span / count as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..=count * 2)
        .map(|k| first + k as f64 * step)
        .take_while(|v| *v <= hi + 1e-12 * span)
        .collect()
}

/// Renders the plot as an SVG document.
pub fn svg(plot: &Plot<'_>, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (960.0, 560.0, 90.0, 260.0, 50.0, 60.0);
    let ty = |v: f64| if plot.log_y { v.max(1e-300).log10() } else { v };
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-12);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |v: f64| top + (1.0 - (v - y0) / (y1 - y0)) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="28" text-anchor="middle" font-size="17">{}</text>
<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
"#,
        left + pw / 2.0,
        escape(plot.title)
    );
    for t in nice_ticks(x0, x1, 6) {
        let x = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            top,
            top + ph,
            top + ph + 18.0,
            fmt_tick(t)
        );
    }
    let y_ticks = if plot.log_y && y1 - y0 >= 2.0 {
        (y0.ceil() as i64..=y1.floor() as i64)
            .map(|e| e as f64)
            .collect()
    } else {
        nice_ticks(y0, y1, 6)
    };
    for t in y_ticks {
        let y = sy(t);
        let label = if plot.log_y {
            format!("1e{}", t)
        } else {
            fmt_tick(t)
        };
        let label = if plot.log_y && t.fract() != 0.0 {
            format!("{:.3e}", 10f64.powf(t))
        } else {
            label
        };
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            label
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 15.0,
        escape(plot.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{}" text-anchor="middle" transform="rotate(-90 20 {})">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        escape(plot.y_label)
    );
    for (k, ser) in series.iter().enumerate() {
        let path: Vec<String> = ser
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(ty(y))))
            .collect();
        let dash = if ser.dashed {
            r#" stroke-dasharray="8 5""#
        } else {
            ""
        };
        if ser.markers {
            for p in &path {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{}"/>"#,
                    ser.color
                );
            }
        } else {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"/>"#,
                ser.color,
                path.join(" ")
            );
        }
        let ly = top + 14.0 + 20.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            w - right + 12.0,
            w - right + 40.0,
            ser.color,
            w - right + 46.0,
            ly + 4.0,
            escape(&ser.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes the figure as `DIR/NAME.svg` (each file written atomically) and returns the file names.
pub fn write_figure(
    dir: &Path,
    name: &str,
    plot: &Plot<'_>,
    series: &[Series],
) -> Result<Vec<String>> {
    let file = format!("{name}.svg");
    let text = svg(plot, series);
    write_atomic(&dir.join(&file), |w| w.write_all(text.as_bytes()))?;
    Ok(vec![file])
}

fn fmt_tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.1e}")
    } else {
        let t = format!("{v:.4}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_title_axes_and_legend() {
        let s = svg(
            &Plot {
                title: "T <1>",
                x_label: "iterations",
                y_label: "objective",
                log_y: true,
            },
            &[Series {
                label: "a".into(),
                points: vec![(0.0, 1.0), (10.0, 0.01)],
                color: COLORS[0],
                dashed: false,
                markers: false,
            }],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("T &lt;1&gt;") && s.contains("iterations") && s.contains("<polyline"));
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
    }
}
