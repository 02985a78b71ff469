//! Workload plots as SVG, computed from one streaming [`analysis::analyze`] pass over a workload file.
//!
//! - `traffic.svg`: requests per second per bin, with the target rate curve where the spec had one;
//! - `tokens.svg`: prompt and output tokens per second (true sums per bin ÷ bin width) and mean lengths per
//!   request (labelled as means; the reference mislabels means as totals, W20);
//! - `lengths.svg`: CDFs of prompt and output lengths with the target where known;
//! - `interarrival.svg`: CDF of inter-arrival times against the exponential CDF of the same mean;
//! - `sessions.svg`: session timeline (one row per session, a dot per bin with requests), only when the
//!   workload has sessions, at most `max_session_rows` rows (the title says how many are drawn);
//! - `workload.svg`: an overview with the first three panels.
//!
//! Bins are left-closed `[t, t+bin)` from t = 0, so the first second is kept (unlike W20); an empty workload
//! gives valid figures that say "no requests" (unlike W21). Output is deterministic (fixed precision).

pub use crate::domain::analysis;
pub(crate) mod svg;

pub use analysis::{Analysis, AnalyzeError, AnalyzeOptions, analyze};

use std::path::Path;

use crate::domain::atomic;
use crate::domain::report::{LengthTarget, REPORT_FILE, RateCurve, Report, Targets, report};
use crate::domain::stats::Histogram;
use svg::{BLACK, BLUE, Figure, GREEN, GREY, ORANGE, Panel, RED, Series, Style, fmt_num};

/// Every plot name, served as `{name}.svg`. `sessions` exists only for workloads with sessions; see
/// [`plot_names`].
pub const PLOT_NAMES: [&str; 6] = [
    "workload",
    "traffic",
    "tokens",
    "lengths",
    "interarrival",
    "sessions",
];

/// Most points of a target curve drawn exactly; longer curves are drawn as per-bin averages.
const MAX_CURVE_POINTS: usize = 2000;

/// The plots that exist for `a` (every name of [`PLOT_NAMES`], without `sessions` when there are none).
pub fn plot_names(a: &Analysis) -> Vec<&'static str> {
    PLOT_NAMES
        .iter()
        .copied()
        .filter(|n| *n != "sessions" || a.sessions.is_some())
        .collect()
}

/// Renders plot `name` (without `.svg`), or None for an unknown name or `sessions` without sessions.
pub fn render(name: &str, a: &Analysis, t: &Targets) -> Option<String> {
    match name {
        "workload" => Some(render_workload(a, t)),
        "traffic" => Some(render_traffic(a, t)),
        "tokens" => Some(render_tokens(a, t)),
        "lengths" => Some(render_lengths(a, t)),
        "interarrival" => Some(render_interarrival(a, t)),
        "sessions" => render_sessions(a, t),
        _ => None,
    }
}

/// Every plot that exists for `a`, as `(name, svg)`.
pub fn render_all(a: &Analysis, t: &Targets) -> Vec<(&'static str, String)> {
    plot_names(a)
        .into_iter()
        .filter_map(|n| render(n, a, t).map(|s| (n, s)))
        .collect()
}

/// Analyzes the workload file at `workload` in one pass and writes every plot (`{name}.svg`) and
/// `report.json` into `dir`, each through a temporary file renamed into place. Returns the report and the
/// plot file names.
pub fn write_plots_and_report(
    workload: &Path,
    dir: &Path,
    options: &AnalyzeOptions<'_>,
    targets: &Targets,
) -> Result<(Report, Vec<String>), AnalyzeError> {
    let read = |source| AnalyzeError::Io {
        file: workload.display().to_string(),
        source,
    };
    let file = std::fs::File::open(workload).map_err(read)?;
    let a = analyze(std::io::BufReader::with_capacity(1 << 20, file), options)?;
    write_analysis(&a, dir, targets)
}

/// Writes the plots and `report.json` of an analysis into `dir`; returns the report and the plot file names.
pub fn write_analysis(
    a: &Analysis,
    dir: &Path,
    targets: &Targets,
) -> Result<(Report, Vec<String>), AnalyzeError> {
    let written = |name: &str| {
        let file = dir.join(name).display().to_string();
        move |source| AnalyzeError::Write { file, source }
    };
    std::fs::create_dir_all(dir).map_err(written(""))?;
    let rep = report(a, targets);
    let mut names = Vec::new();
    for (name, svg) in render_all(a, targets) {
        let file = format!("{name}.svg");
        atomic::write_bytes(&dir.join(&file), svg.as_bytes()).map_err(written(&file))?;
        names.push(file);
    }
    let mut text = serde_json::to_vec_pretty(&rep).expect("report serializes");
    text.push(b'\n');
    atomic::write_bytes(&dir.join(REPORT_FILE), &text).map_err(written(REPORT_FILE))?;
    Ok((rep, names))
}

/// The time axis of a workload: unit, extent and the bins over it.
struct TimeAxis {
    unit_ms: f64,
    label: &'static str,
    /// End of the plotted window, ms.
    end_ms: f64,
    /// Bin width over the window, ms (wider than the analysis' when the target window is much longer).
    bin_ms: u64,
    /// Bins over the window.
    bins: Vec<analysis::Bin>,
}

impl TimeAxis {
    fn of(a: &Analysis, t: &Targets) -> Self {
        let end_ms = t.duration_ms.unwrap_or(0).max(a.observed_end_ms()).max(1);
        let end = end_ms as f64;
        let (unit_ms, label) = if end <= 600_000.0 {
            (1000.0, "Time (s)")
        } else if end <= 36_000_000.0 {
            (60_000.0, "Time (min)")
        } else {
            (3_600_000.0, "Time (h)")
        };
        let (bin_ms, bins) = a.window_bins(end_ms);
        Self {
            unit_ms,
            label,
            end_ms: end,
            bin_ms,
            bins,
        }
    }

    fn x(&self, ms: f64) -> f64 {
        ms / self.unit_ms
    }

    /// Per-bin `(start, end, width_s)` over the plotted window.
    fn spans(&self) -> Vec<(f64, f64, f64)> {
        let bin = self.bin_ms as f64;
        let mut out = Vec::new();
        let mut k = 0u64;
        loop {
            let start = k as f64 * bin;
            if start >= self.end_ms {
                break;
            }
            let end = (start + bin).min(self.end_ms);
            out.push((start, end, (end - start) / 1000.0));
            k += 1;
        }
        out
    }

    fn bin(&self, k: usize) -> analysis::Bin {
        self.bins.get(k).cloned().unwrap_or_default()
    }
}

fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(3_600_000) {
        format!("{} h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn title(t: &Targets) -> String {
    t.title.clone().unwrap_or_else(|| "Workload".to_string())
}

fn subtitle(a: &Analysis, ax: &TimeAxis) -> String {
    if a.max_ts.is_none() {
        return format!("{} requests in {} entries", a.requests, a.entries);
    }
    format!(
        "{} requests in {} entries over {}; bins [t, t + {}) from t = 0",
        a.requests,
        a.entries,
        fmt_ms(ax.end_ms as u64),
        fmt_ms(ax.bin_ms)
    )
}

fn no_requests(mut p: Panel, ax: &TimeAxis, msg: &str) -> Panel {
    p.message = Some(msg.to_string());
    p.x_range = (0.0, ax.x(ax.end_ms));
    p.legend = false;
    p
}

/// Step polyline of per-bin values; non-finite values leave a gap.
fn steps(
    ax: &TimeAxis,
    bins: &[(f64, f64, f64)],
    value: impl Fn(usize, f64) -> f64,
) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(bins.len() * 2);
    for (k, &(s, e, w)) in bins.iter().enumerate() {
        let v = value(k, w);
        if v.is_finite() {
            pts.push((ax.x(s), v));
            pts.push((ax.x(e), v));
        } else {
            pts.push((f64::NAN, f64::NAN));
        }
    }
    pts
}

fn traffic_panel(a: &Analysis, t: &Targets, ax: &TimeAxis) -> Panel {
    let p = Panel::new(
        format!("Requests per second (bins of {})", fmt_ms(ax.bin_ms)),
        ax.label,
        "Requests per second",
    );
    if a.requests == 0 {
        return no_requests(p, ax, "no requests");
    }
    let mut p = p;
    let bins = ax.spans();
    p.series.push(Series::new(
        "achieved requests/s",
        BLUE,
        Style::Line,
        steps(ax, &bins, |k, w| ax.bin(k).requests as f64 / w),
    ));
    if let Some(rate) = &t.rate {
        let curve = RateCurve::new(rate);
        let window = t.duration_ms.map_or(ax.end_ms, |d| d as f64);
        let pts = if curve.len() <= MAX_CURVE_POINTS {
            curve
                .step_points(window)
                .into_iter()
                .map(|(x, y)| (ax.x(x), y))
                .collect()
        } else {
            steps(ax, &bins, |k, w| {
                let (s, e, _) = bins[k];
                if s >= window {
                    f64::NAN
                } else {
                    curve.integral(s, e.min(window)) / w
                }
            })
        };
        p.series
            .push(Series::new("target requests/s", BLACK, Style::Dashed, pts));
    }
    p.fit(Some(0.0), true);
    p.x_range.1 = p.x_range.1.max(ax.x(ax.end_ms));
    p
}

fn tokens_rate_panel(a: &Analysis, ax: &TimeAxis) -> Panel {
    let p = Panel::new(
        format!(
            "Tokens per second (true sums per bin ÷ {})",
            fmt_ms(ax.bin_ms)
        ),
        ax.label,
        "Tokens per second",
    );
    if a.requests == 0 {
        return no_requests(p, ax, "no requests");
    }
    let mut p = p;
    let bins = ax.spans();
    p.series.push(Series::new(
        "prompt tokens/s",
        BLUE,
        Style::Line,
        steps(ax, &bins, |k, w| ax.bin(k).prompt_tokens as f64 / w),
    ));
    p.series.push(Series::new(
        "output tokens/s",
        ORANGE,
        Style::Line,
        steps(ax, &bins, |k, w| ax.bin(k).output_tokens as f64 / w),
    ));
    p.fit(Some(0.0), true);
    p.x_range.1 = p.x_range.1.max(ax.x(ax.end_ms));
    p
}

fn mean_length_panel(a: &Analysis, ax: &TimeAxis) -> Panel {
    let p = Panel::new(
        "Mean length per request in each bin (means, not totals)",
        ax.label,
        "Mean tokens per request",
    );
    if a.requests == 0 {
        return no_requests(p, ax, "no requests");
    }
    let mut p = p;
    let bins = ax.spans();
    let mean = |sum: u64, n: u64| {
        if n == 0 {
            f64::NAN
        } else {
            sum as f64 / n as f64
        }
    };
    p.series.push(Series::new(
        "mean prompt length (tokens)",
        BLUE,
        Style::Line,
        steps(ax, &bins, |k, _| {
            let b = ax.bin(k);
            mean(b.prompt_tokens, b.prompt_n)
        }),
    ));
    p.series.push(Series::new(
        "mean output length (tokens)",
        ORANGE,
        Style::Line,
        steps(ax, &bins, |k, _| {
            let b = ax.bin(k);
            mean(b.output_tokens, b.output_n)
        }),
    ));
    p.fit(Some(0.0), true);
    p.x_range.1 = p.x_range.1.max(ax.x(ax.end_ms));
    p
}

/// Step CDF polyline of a histogram.
fn cdf_steps(h: &Histogram) -> Vec<(f64, f64)> {
    let pts = h.cdf_points(2000);
    let mut out = Vec::with_capacity(pts.len() * 2);
    let mut prev = 0.0;
    for (x, f) in pts {
        out.push((x, prev));
        out.push((x, f));
        prev = f;
    }
    out
}

fn target_series(name: &str, target: &LengthTarget, color: &'static str) -> Series {
    match target {
        LengthTarget::Fixed(v) => Series::new(
            format!("{name} target: {v} tokens"),
            color,
            Style::Dashed,
            vec![(*v as f64, 0.0), (*v as f64, 1.0)],
        ),
        LengthTarget::Distribution(_) => {
            let mut out = Vec::new();
            let mut prev = 0.0;
            for (x, f) in target.cdf_points() {
                out.push((x, prev));
                out.push((x, f));
                prev = f;
            }
            Series::new(
                format!("{name} target distribution"),
                color,
                Style::Dashed,
                out,
            )
        }
    }
}

fn length_panel(
    title: &str,
    parts: &[(
        &str,
        &Histogram,
        Option<&LengthTarget>,
        &'static str,
        &'static str,
    )],
    empty: &str,
) -> Panel {
    let mut p = Panel::new(title, "Length (tokens)", "Fraction of requests ≤ length");
    for (name, h, target, color, tcolor) in parts {
        if h.is_empty() {
            continue;
        }
        p.series.push(Series::new(
            format!("{name} length ({} requests)", h.len()),
            color,
            Style::Line,
            cdf_steps(h),
        ));
        if let Some(t) = target {
            p.series.push(target_series(name, t, tcolor));
        }
    }
    if p.series.is_empty() {
        p.message = Some(empty.to_string());
        p.legend = false;
        return p;
    }
    p.fit(Some(0.0), true);
    p.y_range = (0.0, 1.05);
    p
}

fn interarrival_panel(a: &Analysis) -> Panel {
    let g = &a.gaps;
    let mean = g.mean().unwrap_or(0.0);
    let (unit, label) = if mean >= 10_000.0 {
        (1000.0, "Inter-arrival time (s)")
    } else {
        (1.0, "Inter-arrival time (ms)")
    };
    let mut p = Panel::new(
        "Inter-arrival time CDF against an exponential of the same mean (x up to max(p99.9, 3 × mean))",
        label,
        "Fraction of gaps ≤ time",
    );
    if g.is_empty() {
        p.message = Some(if a.requests == 0 {
            "no requests".to_string()
        } else {
            "fewer than two requests: no inter-arrival times".to_string()
        });
        p.legend = false;
        return p;
    }
    let cv = g.std_dev().unwrap_or(0.0) / mean.max(f64::MIN_POSITIVE);
    let p999 = g.quantiles(&[0.999])[0] as f64;
    let xmax = p999.max(3.0 * mean).max(1.0);
    p.series.push(Series::new(
        format!(
            "achieved ({} gaps, mean {} ms, CV {})",
            g.len(),
            fmt_num((mean * 1000.0).round() / 1000.0),
            fmt_num((cv * 1000.0).round() / 1000.0)
        ),
        BLUE,
        Style::Line,
        cdf_steps(g)
            .into_iter()
            .map(|(x, f)| (x / unit, f))
            .collect(),
    ));
    if mean > 0.0 {
        p.series.push(Series::new(
            "exponential CDF with the same mean",
            GREY,
            Style::Dashed,
            (0..=200)
                .map(|i| {
                    let x = xmax * i as f64 / 200.0;
                    (x / unit, 1.0 - (-x / mean).exp())
                })
                .collect(),
        ));
    }
    p.x_range = (0.0, xmax / unit);
    p.y_range = (0.0, 1.05);
    p
}

fn figure(id: &'static str, a: &Analysis, t: &Targets, panels: Vec<Panel>) -> String {
    let ax = TimeAxis::of(a, t);
    svg::render(&Figure {
        id,
        title: title(t),
        subtitle: subtitle(a, &ax),
        panels,
    })
}

/// `traffic.svg`: requests per second per bin, with the target rate.
pub fn render_traffic(a: &Analysis, t: &Targets) -> String {
    let ax = TimeAxis::of(a, t);
    figure("traffic", a, t, vec![traffic_panel(a, t, &ax)])
}

/// `tokens.svg`: tokens per second (true sums) and mean lengths per request (means).
pub fn render_tokens(a: &Analysis, t: &Targets) -> String {
    let ax = TimeAxis::of(a, t);
    figure(
        "tokens",
        a,
        t,
        vec![tokens_rate_panel(a, &ax), mean_length_panel(a, &ax)],
    )
}

/// `lengths.svg`: CDFs of prompt and output lengths with their targets.
pub fn render_lengths(a: &Analysis, t: &Targets) -> String {
    let empty = if a.requests == 0 {
        "no requests"
    } else {
        "no lengths in the workload"
    };
    let prompt = length_panel(
        "Prompt length CDF",
        &[(
            "prompt",
            &a.prompt_len,
            t.prompt_length.as_ref(),
            BLUE,
            GREY,
        )],
        empty,
    );
    let output_empty = if a.requests == 0 {
        "no requests"
    } else {
        "no output lengths (all null)"
    };
    let output = length_panel(
        "Output length CDF",
        &[(
            "output",
            &a.output_len,
            t.output_length.as_ref(),
            ORANGE,
            GREY,
        )],
        output_empty,
    );
    figure("lengths", a, t, vec![prompt, output])
}

/// `interarrival.svg`: CDF of inter-arrival times against the exponential CDF of the same mean.
pub fn render_interarrival(a: &Analysis, t: &Targets) -> String {
    figure("interarrival", a, t, vec![interarrival_panel(a)])
}

/// `sessions.svg`: one row per session (the first `max_session_rows`), a dot per bin with requests; None when
/// the workload has no sessions.
pub fn render_sessions(a: &Analysis, t: &Targets) -> Option<String> {
    let s = a.sessions.as_ref()?;
    let ax = TimeAxis::of(a, t);
    let rows = s.rows.len();
    let shown = if (rows as u64) < s.count {
        format!("first {rows} of {} sessions", s.count)
    } else {
        format!("all {} sessions", s.count)
    };
    let mut p = Panel::new(
        format!(
            "Session timeline: one row per session, a dot per {} bin with requests ({shown})",
            fmt_ms(a.bin_ms)
        ),
        ax.label,
        "Session",
    );
    p.height = (rows as f64 * 12.0).clamp(120.0, 1200.0);
    let bin = a.bin_ms as f64;
    let mut pts = Vec::new();
    for (i, row) in s.rows.iter().enumerate() {
        let y = (rows - 1 - i) as f64;
        for &b in &row.bins {
            pts.push((ax.x(b as f64 * bin + bin / 2.0), y));
        }
    }
    p.series.push(Series::new(
        "requests of the session",
        GREEN,
        Style::Dots,
        pts,
    ));
    let every = rows.div_ceil(60).max(1);
    p.y_categories = Some(
        s.rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, r)| {
                let label: String = r.label.chars().take(14).collect();
                ((rows - 1 - i) as f64, label)
            })
            .collect(),
    );
    p.x_range = (0.0, ax.x(ax.end_ms));
    p.y_range = (-0.5, rows.max(1) as f64 - 0.5);
    p.legend = false;
    Some(figure("sessions", a, t, vec![p]))
}

/// `workload.svg`: the overview (requests per second, tokens per second, length CDFs).
pub fn render_workload(a: &Analysis, t: &Targets) -> String {
    let ax = TimeAxis::of(a, t);
    let lengths = length_panel(
        "Prompt and output length CDFs",
        &[
            (
                "prompt",
                &a.prompt_len,
                t.prompt_length.as_ref(),
                BLUE,
                GREY,
            ),
            (
                "output",
                &a.output_len,
                t.output_length.as_ref(),
                ORANGE,
                RED,
            ),
        ],
        if a.requests == 0 {
            "no requests"
        } else {
            "no lengths in the workload"
        },
    );
    figure(
        "workload",
        a,
        t,
        vec![traffic_panel(a, t, &ax), tokens_rate_panel(a, &ax), lengths],
    )
}
