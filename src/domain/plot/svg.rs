//! A small hand-written SVG chart renderer: stacked panels with axes, nice ticks, line/step/dot series,
//! legends and a "no requests" message. Text is XML-escaped, coordinates have one decimal, and fonts are the
//! viewer's generic `sans-serif`, so output is byte-stable and needs no font files.

use std::fmt::Write as _;

/// Width of every figure, px.
pub(crate) const WIDTH: f64 = 960.0;
const MARGIN_LEFT: f64 = 84.0;
const MARGIN_RIGHT: f64 = 24.0;
const PANEL_TOP: f64 = 34.0;
const PANEL_BOTTOM: f64 = 52.0;
const FIGURE_TITLE: f64 = 40.0;

/// Colours of series (colour-blind friendly Okabe–Ito palette).
pub(crate) const BLUE: &str = "#0072B2";
/// Orange.
pub(crate) const ORANGE: &str = "#E69F00";
/// Green.
pub(crate) const GREEN: &str = "#009E73";
/// Vermillion.
pub(crate) const RED: &str = "#D55E00";
/// Black for targets drawn over noisy series.
pub(crate) const BLACK: &str = "#000000";
/// Grey for targets and references.
pub(crate) const GREY: &str = "#555555";

fn legend_width(name: &str) -> f64 {
    name.chars().count() as f64 * 6.6 + 44.0
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Style {
    /// A solid polyline.
    Line,
    /// A dashed polyline (targets, references).
    Dashed,
    /// Round dots.
    Dots,
}

/// One series of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text (also the `data-series` attribute).
    pub name: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Drawing style.
    pub style: Style,
    /// Data points (x, y) in data units.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub(crate) fn new(
        name: impl Into<String>,
        color: &'static str,
        style: Style,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            name: name.into(),
            color,
            style,
            points,
        }
    }
}

/// A labelled value on a categorical y axis (session rows).
pub(crate) type Category = (f64, String);

/// One chart panel.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub series: Vec<Series>,
    /// A centred message instead of data ("no requests").
    pub message: Option<String>,
    /// Labels for y ticks instead of numbers (session timeline).
    pub y_categories: Option<Vec<Category>>,
    /// Plot-area height, px.
    pub height: f64,
    /// Show the legend.
    pub legend: bool,
}

impl Panel {
    pub(crate) fn new(title: impl Into<String>, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            series: Vec::new(),
            message: None,
            y_categories: None,
            height: 220.0,
            legend: true,
        }
    }

    /// Sets the ranges to cover every series point (y from 0), with a little headroom on y.
    pub(crate) fn fit(&mut self, x_min: Option<f64>, y_zero: bool) {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            return;
        }
        if let Some(m) = x_min {
            x0 = x0.min(m);
        }
        if y_zero {
            y0 = y0.min(0.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        } else {
            y1 += (y1 - y0) * 0.05;
        }
        self.x_range = (x0, x1);
        self.y_range = (y0, y1);
    }

    fn total_height(&self) -> f64 {
        self.header() + self.height + PANEL_BOTTOM
    }

    /// Legend rows (entries wrap at the plot width).
    fn legend_rows(&self) -> usize {
        if !self.legend || self.series.is_empty() || self.message.is_some() {
            return 0;
        }
        let (x0, x1) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
        let (mut lx, mut rows) = (x0, 1);
        for ser in &self.series {
            let w = legend_width(&ser.name);
            if lx + w > x1 && lx > x0 {
                lx = x0;
                rows += 1;
            }
            lx += w;
        }
        rows
    }

    /// Title plus legend rows, px.
    fn header(&self) -> f64 {
        PANEL_TOP + 15.0 * self.legend_rows() as f64
    }
}

/// A figure: a title and panels stacked vertically.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub id: &'static str,
    pub title: String,
    pub subtitle: String,
    pub panels: Vec<Panel>,
}

/// Nice tick values covering `[lo, hi]` (about `target` of them), steps of 1, 2 or 5 × 10^k.
pub(crate) fn ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return (vec![lo], 1.0);
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let out = (first..=last).map(|i| i as f64 * step).collect();
    (out, step)
}

/// Formats a tick value: thousands as `k`/`M`, decimals only as many as the step needs.
pub(crate) fn fmt_tick(v: f64, step: f64) -> String {
    let a = v.abs();
    if a >= 1e6 && step >= 1e5 {
        return trim(format!("{:.*}", decimals(step / 1e6), v / 1e6)) + "M";
    }
    if a >= 1e4 && step >= 1e3 {
        return trim(format!("{:.*}", decimals(step / 1e3), v / 1e3)) + "k";
    }
    format!("{:.*}", decimals(step), v)
}

fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(6)
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Formats a number for titles and legends: integers plainly, otherwise up to 3 significant decimals.
pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        trim(format!("{v:.3}"))
    }
}

/// Renders a figure as a complete SVG document.
pub(crate) fn render(fig: &Figure) -> String {
    let height: f64 = FIGURE_TITLE + fig.panels.iter().map(Panel::total_height).sum::<f64>() + 8.0;
    let mut s = String::with_capacity(64 * 1024);
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
font-family=\"sans-serif\" font-size=\"12\">",
        id = fig.id,
        w = WIDTH,
        h = height.round()
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&fig.title));
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let _ = writeln!(
        s,
        "<text class=\"figure-title\" x=\"{:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        WIDTH / 2.0,
        escape(&fig.title)
    );
    if !fig.subtitle.is_empty() {
        let _ = writeln!(
            s,
            "<text class=\"figure-subtitle\" x=\"{:.1}\" y=\"35\" text-anchor=\"middle\" fill=\"{GREY}\">{}</text>",
            WIDTH / 2.0,
            escape(&fig.subtitle)
        );
    }
    let mut top = FIGURE_TITLE;
    for p in &fig.panels {
        render_panel(&mut s, fig.id, p, top);
        top += p.total_height();
    }
    s.push_str("</svg>\n");
    s
}

fn render_panel(s: &mut String, id: &str, p: &Panel, top: f64) {
    let x0 = MARGIN_LEFT;
    let x1 = WIDTH - MARGIN_RIGHT;
    let y0 = top + p.header(); // top of the plot area
    let y1 = y0 + p.height; // bottom
    let (dx0, dx1) = p.x_range;
    let (dy0, dy1) = p.y_range;
    let sx = |x: f64| x0 + (x - dx0) / (dx1 - dx0) * (x1 - x0);
    let sy = |y: f64| y1 - (y - dy0) / (dy1 - dy0) * (y1 - y0);
    let _ = writeln!(s, "<g class=\"panel\" data-title=\"{}\">", escape(&p.title));
    let _ = writeln!(
        s,
        "<text class=\"panel-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        (x0 + x1) / 2.0,
        top + 22.0,
        escape(&p.title)
    );
    let _ = writeln!(
        s,
        "<rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#999999\"/>",
        x1 - x0,
        y1 - y0
    );
    // Axis labels.
    let _ = writeln!(
        s,
        "<text class=\"x-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        y1 + 40.0,
        escape(&p.x_label)
    );
    let _ = writeln!(
        s,
        "<text class=\"y-label\" transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        18.0,
        (y0 + y1) / 2.0,
        escape(&p.y_label)
    );
    if let Some(msg) = &p.message {
        let _ = writeln!(
            s,
            "<text class=\"message\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"16\" fill=\"{GREY}\">{}</text>",
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            escape(msg)
        );
        s.push_str("</g>\n");
        return;
    }
    // Ticks and grid.
    let (xt, xstep) = ticks(dx0, dx1, 8);
    s.push_str("<g class=\"x-ticks\" text-anchor=\"middle\" fill=\"#333333\">\n");
    for v in xt {
        let x = sx(v);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{y1:.1}\" stroke=\"#e5e5e5\"/><text x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
            y1 + 16.0,
            escape(&fmt_tick(v, xstep))
        );
    }
    s.push_str("</g>\n");
    s.push_str("<g class=\"y-ticks\" text-anchor=\"end\" fill=\"#333333\">\n");
    match &p.y_categories {
        Some(cats) => {
            for (v, label) in cats {
                let y = sy(*v);
                let _ = writeln!(
                    s,
                    "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#f0f0f0\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                    x0 - 6.0,
                    y + 3.5,
                    escape(label)
                );
            }
        }
        None => {
            let (yt, ystep) = ticks(dy0, dy1, 5);
            for v in yt {
                let y = sy(v);
                let _ = writeln!(
                    s,
                    "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x0 - 6.0,
                    y + 4.0,
                    escape(&fmt_tick(v, ystep))
                );
            }
        }
    }
    s.push_str("</g>\n");
    // Series, clipped to the plot area.
    let clip = format!("clip-{id}-{top:.0}");
    let _ = writeln!(
        s,
        "<clipPath id=\"{clip}\"><rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath>",
        x1 - x0,
        y1 - y0
    );
    for ser in &p.series {
        let mut d = String::with_capacity(ser.points.len() * 16);
        let mut prev: Option<(String, String)> = None;
        for &(x, y) in &ser.points {
            if !(x.is_finite() && y.is_finite()) {
                // A gap: the next point starts a new subpath.
                prev = None;
                continue;
            }
            let (px, py) = (format!("{:.1}", sx(x)), format!("{:.1}", sy(y)));
            match ser.style {
                Style::Dots => {
                    let _ = write!(d, "M{px} {py}h0.1");
                }
                _ => {
                    // Skip points that land on the same pixel as the previous one.
                    if prev.as_ref() == Some(&(px.clone(), py.clone())) {
                        continue;
                    }
                    let _ = write!(d, "{}{px} {py}", if prev.is_none() { "M" } else { "L" });
                    prev = Some((px, py));
                }
            }
        }
        let style = match ser.style {
            Style::Line => format!("stroke=\"{}\" stroke-width=\"1.5\"", ser.color),
            Style::Dashed => format!(
                "stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"6 4\"",
                ser.color
            ),
            Style::Dots => format!(
                "stroke=\"{}\" stroke-width=\"5\" stroke-linecap=\"round\"",
                ser.color
            ),
        };
        let _ = writeln!(
            s,
            "<path class=\"series\" data-series=\"{}\" clip-path=\"url(#{clip})\" fill=\"none\" stroke-linejoin=\"round\" {style} d=\"{d}\"/>",
            escape(&ser.name)
        );
    }
    // Legend: one row of entries between the panel title and the plot area, wrapping when needed.
    if p.legend_rows() > 0 {
        s.push_str("<g class=\"legend\">\n");
        let (mut lx, mut ly) = (x0, top + 40.0);
        for ser in &p.series {
            let w = legend_width(&ser.name);
            if lx + w > x1 && lx > x0 {
                lx = x0;
                ly += 15.0;
            }
            let dash = match ser.style {
                Style::Dashed => " stroke-dasharray=\"6 4\"",
                _ => "",
            };
            let width = if ser.style == Style::Dots { 5 } else { 2 };
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{width}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx,
                ly - 4.0,
                lx + 22.0,
                ly - 4.0,
                ser.color,
                lx + 28.0,
                ly,
                escape(&ser.name)
            );
            lx += w;
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        let (t, step) = ticks(0.0, 60.0, 8);
        assert_eq!(step, 10.0);
        assert_eq!(t, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let (t, step) = ticks(0.0, 1.0, 5);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        assert_eq!(fmt_tick(0.4, 0.2), "0.4");
        assert_eq!(fmt_tick(20_000.0, 5_000.0), "20k");
        assert_eq!(fmt_tick(2_500_000.0, 500_000.0), "2.5M");
        assert_eq!(fmt_tick(1500.0, 500.0), "1500");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt; "
        );
    }
}
