//! Line plots written as SVG (text, by hand) and PNG (rasterized): titled, labelled axes, ticks,
//! optional log-scale y, a legend.
//!
//! Both formats are drawn from one [`Layout`]: the data's bounds, the ticks and every series mapped to
//! pixel coordinates, so the two files show the same picture. The PNG is drawn with anti-aliased
//! strokes and a built-in bitmap font (no system fonts needed).

use std::fmt::Write;
use std::path::Path;

use convexnn::data::atomic::write_atomic;
use convexnn::{Error, Result};

/// One curve.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Stroke colour, `#rrggbb`.
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

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const DASH: [f32; 2] = [8.0, 5.0];
/// Characters of a legend line (the right margin holds about this many).
const LEGEND_CHARS: usize = 28;
/// Pixels between legend rows.
const LEGEND_ROW: f64 = 17.0;

/// Splits `text` into lines of at most `width` characters at spaces (a longer word gets a line of
/// its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

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

/// Tick values for a log axis spanning 10^lo .. 10^hi: the powers of ten over two decades or more,
/// else the 1-2-5 (or, over less than a factor of three, 1..9) multiples inside the range.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let inside = |mults: &[f64]| -> Vec<f64> {
        (lo.floor() as i64..=hi.ceil() as i64)
            .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e as i32)))
            .filter(|v| (lo..=hi).contains(&v.log10()))
            .collect()
    };
    for mults in [
        &[1.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let t = inside(mults);
        if t.len() >= 3 {
            return t;
        }
    }
    let t = inside(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if t.len() >= 2 {
        t
    } else {
        nice_ticks(10f64.powf(lo), 10f64.powf(hi), 4)
    }
}

/// A series in pixel coordinates.
struct Drawn<'a> {
    series: &'a Series,
    pixels: Vec<(f64, f64)>,
}

/// Everything both renderers draw, in pixel coordinates (origin top left).
struct Layout<'a> {
    /// Legend entries: (index into `series`, first row, the label's lines).
    legend: Vec<(usize, usize, Vec<String>)>,
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    /// Pixel x and label of each x tick.
    x_ticks: Vec<(f64, String)>,
    /// Pixel y and label of each y tick.
    y_ticks: Vec<(f64, String)>,
    series: Vec<Drawn<'a>>,
}

impl<'a> Layout<'a> {
    fn new(plot: &Plot<'a>, series: &'a [Series]) -> Self {
        let ty = |v: f64| if plot.log_y { v.max(1e-300).log10() } else { v };
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y) in series.iter().flat_map(|s| s.points.iter()).filter(finite) {
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
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |v: f64| TOP + (1.0 - (v - y0) / (y1 - y0)) * ph;
        // Integer data (indices, counts) get integer ticks only.
        let integer_x = series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(finite)
            .all(|p| p.0.fract() == 0.0);
        let x_ticks = nice_ticks(x0, x1, 6)
            .into_iter()
            .filter(|t| !integer_x || t.fract() == 0.0)
            .map(|t| (sx(t), fmt_tick(t)))
            .collect();
        let y_ticks = if plot.log_y {
            log_ticks(y0, y1)
                .into_iter()
                .map(|v| (sy(v.log10()), fmt_tick(v)))
                .collect()
        } else {
            nice_ticks(y0, y1, 6)
                .into_iter()
                .map(|t| (sy(t), fmt_tick(t)))
                .collect()
        };
        let series: Vec<Drawn> = series
            .iter()
            .map(|s| Drawn {
                series: s,
                pixels: s
                    .points
                    .iter()
                    .filter(finite)
                    .map(|&(x, y)| (sx(x), sy(ty(y))))
                    .collect(),
            })
            .collect();
        let mut legend = Vec::new();
        let mut row = 0;
        for (k, d) in series.iter().enumerate() {
            if !d.series.label.is_empty() {
                let lines = wrap(&d.series.label, LEGEND_CHARS);
                let rows = lines.len();
                legend.push((k, row, lines));
                row += rows;
            }
        }
        Layout {
            legend,
            title: plot.title,
            x_label: plot.x_label,
            y_label: plot.y_label,
            x_ticks,
            y_ticks,
            series,
        }
    }

    /// The y (pixel) of the k-th legend row.
    fn legend_y(row: usize) -> f64 {
        TOP + 14.0 + LEGEND_ROW * row as f64
    }
}

/// Renders the plot as an SVG document.
pub fn svg(plot: &Plot<'_>, series: &[Series]) -> String {
    let lay = Layout::new(plot, series);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="28" text-anchor="middle" font-size="17">{}</text>
<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
"#,
        LEFT + pw / 2.0,
        escape(lay.title)
    );
    for (x, label) in &lay.x_ticks {
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
        );
    }
    for (y, label) in &lay.y_ticks {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 15.0,
        escape(lay.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{0}" text-anchor="middle" transform="rotate(-90 20 {0})">{1}</text>"#,
        TOP + ph / 2.0,
        escape(lay.y_label)
    );
    let dash_of = |ser: &Series| {
        if ser.dashed {
            format!(r#" stroke-dasharray="{} {}""#, DASH[0], DASH[1])
        } else {
            String::new()
        }
    };
    for d in &lay.series {
        let ser = d.series;
        if ser.markers {
            for (cx, cy) in &d.pixels {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="3.5" fill="{}"/>"#,
                    ser.color
                );
            }
        } else {
            let path: Vec<String> = d
                .pixels
                .iter()
                .map(|(x, y)| format!("{x:.2},{y:.2}"))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{} points="{}"/>"#,
                ser.color,
                dash_of(ser),
                path.join(" ")
            );
        }
    }
    for (k, row, lines) in &lay.legend {
        let ser = lay.series[*k].series;
        let ly = Layout::legend_y(*row);
        if ser.markers {
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{ly}" r="3.5" fill="{}"/>"#,
                WIDTH - RIGHT + 26.0,
                ser.color
            );
        } else {
            let _ = write!(
                s,
                r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{}/>"#,
                WIDTH - RIGHT + 12.0,
                WIDTH - RIGHT + 40.0,
                ser.color,
                dash_of(ser)
            );
        }
        for (i, l) in lines.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}">{}</text>"#,
                WIDTH - RIGHT + 46.0,
                Layout::legend_y(row + i) + 4.0,
                escape(l)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Raster rendering of a [`Layout`] into PNG bytes.
mod raster {
    use embedded_graphics::mono_font::iso_8859_1::{FONT_10X20, FONT_7X13};
    use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
    use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
    use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
    use embedded_graphics::text::{Alignment, Text};
    use embedded_graphics::{Drawable, Pixel};
    use tiny_skia::{
        Paint, PathBuilder, Pixmap, PremultipliedColorU8, Rect, Stroke, StrokeDash, Transform,
    };

    use super::{Layout, BOTTOM, DASH, HEIGHT, LEFT, RIGHT, TOP, WIDTH};

    /// `#rrggbb` to (r, g, b); black for anything else.
    pub(super) fn rgb(color: &str) -> (u8, u8, u8) {
        let hex = color.strip_prefix('#').unwrap_or("");
        let byte = |k: usize| {
            hex.get(k..k + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match (hex.len(), byte(0), byte(2), byte(4)) {
            (6, Some(r), Some(g), Some(b)) => (r, g, b),
            _ => (0, 0, 0),
        }
    }

    fn paint(color: &str) -> Paint<'static> {
        let (r, g, b) = rgb(color);
        let mut p = Paint::default();
        p.set_color_rgba8(r, g, b, 255);
        p.anti_alias = true;
        p
    }

    /// A text target over the pixmap; `rotate` turns the text 90° counter-clockwise about `origin`.
    struct Canvas<'p> {
        pixmap: &'p mut Pixmap,
        rotate: Option<Point>,
    }

    impl OriginDimensions for Canvas<'_> {
        fn size(&self) -> Size {
            Size::new(self.pixmap.width(), self.pixmap.height())
        }
    }

    impl DrawTarget for Canvas<'_> {
        type Color = Rgb888;
        type Error = std::convert::Infallible;

        fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
        where
            I: IntoIterator<Item = Pixel<Self::Color>>,
        {
            let (w, h) = (self.pixmap.width() as i32, self.pixmap.height() as i32);
            let data = self.pixmap.pixels_mut();
            for Pixel(p, c) in pixels {
                let (x, y) = match self.rotate {
                    Some(o) => (o.x + (p.y - o.y), o.y - (p.x - o.x)),
                    None => (p.x, p.y),
                };
                if (0..w).contains(&x) && (0..h).contains(&y) {
                    data[(y * w + x) as usize] =
                        PremultipliedColorU8::from_rgba(c.r(), c.g(), c.b(), 255)
                            .expect("opaque colours are valid premultiplied colours");
                }
            }
            Ok(())
        }
    }

    /// Latin-1 text as the font has it (other characters become `?`).
    fn latin1(text: &str) -> String {
        text.chars()
            .map(|c| if (c as u32) < 256 { c } else { '?' })
            .collect()
    }

    fn text(
        pixmap: &mut Pixmap,
        s: &str,
        at: (f64, f64),
        font: &MonoFont<'_>,
        align: Alignment,
        rotate: bool,
    ) {
        let p = Point::new(at.0.round() as i32, at.1.round() as i32);
        let mut canvas = Canvas {
            pixmap,
            rotate: rotate.then_some(p),
        };
        let style = MonoTextStyle::new(font, Rgb888::new(0, 0, 0));
        let s = latin1(s);
        let _ = Text::with_alignment(&s, p, style, align).draw(&mut canvas);
    }

    fn line(
        pixmap: &mut Pixmap,
        pts: &[(f64, f64)],
        color: &str,
        width: f32,
        dashed: bool,
    ) -> Option<()> {
        let mut pb = PathBuilder::new();
        let (first, rest) = pts.split_first()?;
        pb.move_to(first.0 as f32, first.1 as f32);
        for p in rest {
            pb.line_to(p.0 as f32, p.1 as f32);
        }
        let path = pb.finish()?;
        let stroke = Stroke {
            width,
            dash: if dashed {
                StrokeDash::new(DASH.to_vec(), 0.0)
            } else {
                None
            },
            ..Stroke::default()
        };
        pixmap.stroke_path(&path, &paint(color), &stroke, Transform::identity(), None);
        Some(())
    }

    fn dot(pixmap: &mut Pixmap, at: (f64, f64), color: &str) {
        if let Some(c) = PathBuilder::from_circle(at.0 as f32, at.1 as f32, 3.5) {
            let fill = tiny_skia::FillRule::Winding;
            pixmap.fill_path(&c, &paint(color), fill, Transform::identity(), None);
        }
    }

    pub(super) fn png(lay: &Layout<'_>) -> Result<Vec<u8>, String> {
        let mut pm = Pixmap::new(WIDTH as u32, HEIGHT as u32).ok_or("empty image")?;
        pm.fill(tiny_skia::Color::WHITE);
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let (font, big) = (&FONT_7X13, &FONT_10X20);
        for (x, label) in &lay.x_ticks {
            line(&mut pm, &[(*x, TOP), (*x, TOP + ph)], "#dddddd", 1.0, false);
            let at = (*x, TOP + ph + 18.0);
            text(&mut pm, label, at, font, Alignment::Center, false);
        }
        for (y, label) in &lay.y_ticks {
            line(
                &mut pm,
                &[(LEFT, *y), (LEFT + pw, *y)],
                "#dddddd",
                1.0,
                false,
            );
            let at = (LEFT - 6.0, y + 4.0);
            text(&mut pm, label, at, font, Alignment::Right, false);
        }
        if let Some(frame) = Rect::from_xywh(LEFT as f32, TOP as f32, pw as f32, ph as f32) {
            let stroke = Stroke::default();
            let path = PathBuilder::from_rect(frame);
            pm.stroke_path(
                &path,
                &paint("#000000"),
                &stroke,
                Transform::identity(),
                None,
            );
        }
        let title = (LEFT + pw / 2.0, 30.0);
        text(&mut pm, lay.title, title, big, Alignment::Center, false);
        let xl = (LEFT + pw / 2.0, HEIGHT - 15.0);
        text(&mut pm, lay.x_label, xl, font, Alignment::Center, false);
        let yl = (22.0, TOP + ph / 2.0);
        text(&mut pm, lay.y_label, yl, font, Alignment::Center, true);
        for d in &lay.series {
            if d.series.markers {
                for &at in &d.pixels {
                    dot(&mut pm, at, d.series.color);
                }
            } else {
                line(&mut pm, &d.pixels, d.series.color, 1.6, d.series.dashed);
            }
        }
        for (k, row, lines) in &lay.legend {
            let ser = lay.series[*k].series;
            let ly = Layout::legend_y(*row);
            if ser.markers {
                dot(&mut pm, (WIDTH - RIGHT + 26.0, ly), ser.color);
            } else {
                let key = [(WIDTH - RIGHT + 12.0, ly), (WIDTH - RIGHT + 40.0, ly)];
                line(&mut pm, &key, ser.color, 2.0, ser.dashed);
            }
            for (i, l) in lines.iter().enumerate() {
                let at = (WIDTH - RIGHT + 46.0, Layout::legend_y(row + i) + 4.0);
                text(&mut pm, l, at, font, Alignment::Left, false);
            }
        }
        pm.encode_png().map_err(|e| e.to_string())
    }
}

/// Renders the plot as PNG bytes (the same picture as [`svg`]).
pub fn png(plot: &Plot<'_>, series: &[Series]) -> Result<Vec<u8>> {
    raster::png(&Layout::new(plot, series))
        .map_err(|e| Error::Backend(format!("could not encode the plot {:?}: {e}", plot.title)))
}

/// Writes the figure as `DIR/NAME.svg` and `DIR/NAME.png` (each written atomically) and returns the
/// file names.
pub fn write_figure(
    dir: &Path,
    name: &str,
    plot: &Plot<'_>,
    series: &[Series],
) -> Result<Vec<String>> {
    let (svg_file, png_file) = (format!("{name}.svg"), format!("{name}.png"));
    let text = svg(plot, series);
    write_atomic(&dir.join(&svg_file), |w| w.write_all(text.as_bytes()))?;
    let bytes = png(plot, series)?;
    write_atomic(&dir.join(&png_file), |w| w.write_all(&bytes))?;
    Ok(vec![svg_file, png_file])
}

fn fmt_tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
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

    fn example() -> (Plot<'static>, Vec<Series>) {
        (
            Plot {
                title: "T <1>",
                x_label: "iterations",
                y_label: "objective",
                log_y: true,
            },
            vec![
                Series {
                    label: "a".into(),
                    points: vec![(0.0, 1.0), (10.0, 0.01)],
                    color: COLORS[0],
                    dashed: false,
                    markers: false,
                },
                Series {
                    label: "b".into(),
                    points: vec![(0.0, 0.05), (10.0, 0.05)],
                    color: "#d62728",
                    dashed: true,
                    markers: false,
                },
            ],
        )
    }

    #[test]
    fn svg_has_title_axes_and_legend() {
        let (plot, series) = example();
        let s = svg(&plot, &series);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("T &lt;1&gt;") && s.contains("iterations") && s.contains("<polyline"));
        assert!(s.contains("stroke-dasharray"));
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(log_ticks(-2.0, 1.0), vec![0.01, 0.1, 1.0, 10.0]);
        let t = log_ticks(0.05f64.log10(), 0.7f64.log10());
        assert_eq!(t.len(), 4, "{t:?}"); // 0.05, 0.1, 0.2, 0.5
        assert!(log_ticks(0.0, 0.1).len() >= 2);
        assert_eq!(
            wrap("convex: global optimum (91 patterns)", 28),
            vec!["convex: global optimum (91", "patterns)"]
        );
    }

    /// Decodes the PNG and checks its size and that the series' colours and black text were drawn.
    #[test]
    fn png_is_valid_and_shows_the_series() {
        let (plot, series) = example();
        let bytes = png(&plot, &series).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH as u32, HEIGHT as u32));
        let count = |c: &str| {
            let (r, g, b) = raster::rgb(c);
            img.pixels()
                .iter()
                .filter(|p| (p.red(), p.green(), p.blue()) == (r, g, b))
                .count()
        };
        assert!(count(COLORS[0]) > 100, "the solid series is drawn");
        assert!(count("#d62728") > 50, "the dashed series is drawn");
        assert!(count("#000000") > 200, "the frame and the text are drawn");
        assert_eq!(raster::rgb("nonsense"), (0, 0, 0));
    }
}
