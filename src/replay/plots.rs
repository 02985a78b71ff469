//! The replay's figures, drawn with the workload plots' SVG renderer:
//!
//! - `rate.svg`: requests per second planned (from the workload's timestamps) and sent, per report window;
//! - `lateness.svg`: the CDF of dispatch lateness (actual send time minus scheduled);
//! - `latency.svg`: TTFT, TPOT and end-to-end latency, p50/p90/p99 per time bin of the send time;
//! - `output.svg`: the CDFs of the output length asked (`output_length`) and delivered (the server's `usage`).
//!
//! [`PlotAcc`] folds the result records one by one (the writer thread feeds them as they come, `replay merge`
//! feeds the merged results), so its memory does not grow with the number of requests: time bins start at
//! 100 ms and are merged pairwise whenever a replay would need more than [`MAX_BINS`], and every
//! percentile comes from the log-linear histograms of [`super::hist`] (1 % precision).

use std::path::Path;

use crate::domain::atomic;
use crate::domain::plot::svg::{
    self, BLACK, BLUE, Figure, GREEN, ORANGE, Panel, RED, Series, Style,
};

use super::hist::Histogram;
use super::report::{RequestResult, Summary};

/// Most time bins of `latency.svg`.
pub const MAX_BINS: usize = 200;
/// The first bin width of `latency.svg` (doubled as the replay grows): 100 ms, 200 ms, 400 ms, ...
pub const FIRST_BIN_MS: u64 = 100;

/// The file names, in the order they are written.
pub const PLOTS: [&str; 4] = ["rate.svg", "lateness.svg", "latency.svg", "output.svg"];

#[derive(Default, Clone)]
struct Bin {
    ttft: Histogram,
    tpot: Histogram,
    e2e: Histogram,
}

impl Bin {
    fn merge(&mut self, o: &Bin) {
        self.ttft.merge(&o.ttft);
        self.tpot.merge(&o.tpot);
        self.e2e.merge(&o.e2e);
    }
}

/// What the figures need from the result records.
pub struct PlotAcc {
    bin_us: u64,
    bins: Vec<Bin>,
    asked: Histogram,
    delivered: Histogram,
}

fn us(ms: f64) -> u64 {
    (ms.max(0.0) * 1000.0).round() as u64
}

impl PlotAcc {
    /// Empty, with time bins of [`FIRST_BIN_MS`] to start with.
    pub fn new() -> Self {
        Self {
            bin_us: FIRST_BIN_MS * 1000,
            bins: Vec::new(),
            asked: Histogram::new(),
            delivered: Histogram::new(),
        }
    }

    /// Folds one result record.
    pub fn add(&mut self, r: &RequestResult) {
        if let Some(n) = r.output_length {
            self.asked.record(n);
        }
        if let Some(n) = r.output_tokens {
            self.delivered.record(n);
        }
        let mut i = (us(r.sent_ms) / self.bin_us) as usize;
        while i >= MAX_BINS {
            self.coarsen();
            i = (us(r.sent_ms) / self.bin_us) as usize;
        }
        if i >= self.bins.len() {
            self.bins.resize(i + 1, Bin::default());
        }
        let b = &mut self.bins[i];
        if let Some(v) = r.ttft_ms {
            b.ttft.record(us(v));
        }
        if let Some(v) = r.tpot_ms {
            b.tpot.record(us(v));
        }
        b.e2e.record(us(r.e2e_ms));
    }

    /// Doubles the bin width, merging adjacent bins.
    fn coarsen(&mut self) {
        self.bin_us *= 2;
        let old = std::mem::take(&mut self.bins);
        for pair in old.chunks(2) {
            let mut b = pair[0].clone();
            if let Some(o) = pair.get(1) {
                b.merge(o);
            }
            self.bins.push(b);
        }
    }

    /// The four figures as (file name, SVG).
    pub fn render(&self, s: &Summary) -> Vec<(&'static str, String)> {
        let subtitle = format!(
            "{} requests, {} answered 2xx, over {:.1} s of replay",
            s.requests,
            s.ok,
            s.span_ms / 1000.0
        );
        let fig = |id: &'static str, title: &str, panels: Vec<Panel>| {
            svg::render(&Figure {
                id,
                title: title.to_string(),
                subtitle: subtitle.clone(),
                panels,
            })
        };
        vec![
            (
                PLOTS[0],
                fig("rate", "Replay: planned vs sent", vec![rate_panel(s)]),
            ),
            (
                PLOTS[1],
                fig(
                    "lateness",
                    "Replay: dispatch lateness",
                    vec![cdf_panel(
                        "Lateness (sent − scheduled), CDF",
                        "Lateness (ms)",
                        vec![("lateness", BLUE, Style::Line, &s.lateness_us, 1e-3)],
                    )],
                ),
            ),
            (
                PLOTS[2],
                fig(
                    "latency",
                    "Replay: latency over time",
                    vec![
                        self.latency_panel("Time to first token", |b| &b.ttft),
                        self.latency_panel("Time per output token", |b| &b.tpot),
                        self.latency_panel("End-to-end latency", |b| &b.e2e),
                    ],
                ),
            ),
            (
                PLOTS[3],
                fig(
                    "output",
                    "Replay: output length asked vs delivered",
                    vec![cdf_panel(
                        "Output tokens, CDF",
                        "Output tokens",
                        vec![
                            (
                                "asked (output_length)",
                                BLACK,
                                Style::Dashed,
                                &self.asked,
                                1.0,
                            ),
                            (
                                "delivered (usage)",
                                GREEN,
                                Style::Line,
                                &self.delivered,
                                1.0,
                            ),
                        ],
                    )],
                ),
            ),
        ]
    }

    fn latency_panel(&self, what: &str, pick: impl Fn(&Bin) -> &Histogram) -> Panel {
        let mut p = Panel::new(
            format!("{what}: p50, p90, p99 per {} bin", fmt_bin(self.bin_us)),
            "Time (s)",
            "ms",
        );
        for (q, name, color) in [(0.5, "p50", BLUE), (0.9, "p90", ORANGE), (0.99, "p99", RED)] {
            let pts: Vec<(f64, f64)> = self
                .bins
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let v = pick(b).quantile(q)?;
                    let x = (i as f64 + 0.5) * self.bin_us as f64 / 1e6;
                    Some((x, v as f64 / 1000.0))
                })
                .collect();
            p.series.push(Series::new(name, color, Style::Line, pts));
        }
        finish(p, "no answers")
    }
}

fn fmt_bin(bin_us: u64) -> String {
    let ms = bin_us / 1000;
    if ms >= 1000 {
        format!("{} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

impl Default for PlotAcc {
    fn default() -> Self {
        Self::new()
    }
}

fn rate_panel(s: &Summary) -> Panel {
    let mut p = Panel::new(
        format!("Requests per second per {} ms window", s.window_ms),
        "Time (s)",
        "Requests/s",
    );
    let w = s.window_ms.max(1) as f64 / 1000.0;
    let series = |counts: &[u64]| -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| {
                // A step per window.
                let y = c as f64 / w;
                [(i as f64 * w, y), ((i + 1) as f64 * w, y)]
            })
            .collect()
    };
    p.series.push(Series::new(
        "planned",
        BLACK,
        Style::Dashed,
        series(&s.planned),
    ));
    p.series
        .push(Series::new("sent", BLUE, Style::Line, series(&s.sent)));
    finish(p, "no requests")
}

/// A CDF panel of histograms: (name, colour, style, histogram, unit factor of its values).
fn cdf_panel(
    title: &str,
    x_label: &str,
    hists: Vec<(&str, &'static str, Style, &Histogram, f64)>,
) -> Panel {
    let mut p = Panel::new(title, x_label, "Fraction of requests");
    for (name, color, style, h, unit) in hists {
        let pts: Vec<(f64, f64)> = (0..=200)
            .filter_map(|k| {
                let q = k as f64 / 200.0;
                h.quantile(q).map(|v| (v as f64 * unit, q))
            })
            .collect();
        p.series.push(Series::new(name, color, style, pts));
    }
    finish(p, "no requests")
}

/// Fits the ranges, or says `empty` when no series has a point.
fn finish(mut p: Panel, empty: &str) -> Panel {
    if p.series.iter().all(|s| s.points.is_empty()) {
        p.message = Some(empty.to_string());
    } else {
        p.fit(Some(0.0), true);
    }
    p
}

/// Writes the figures into `dir` (each atomically); returns their names.
pub fn write(dir: &Path, acc: &PlotAcc, s: &Summary) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, text) in acc.render(s) {
        atomic::write_bytes(&dir.join(name), text.as_bytes())?;
        names.push(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(sent_ms: f64, e2e_ms: f64) -> RequestResult {
        serde_json::from_value(serde_json::json!({
            "index": 0, "session_id": null, "turn": 0, "turns": 1, "timestamp_ms": 0,
            "scheduled_ms": sent_ms, "sent_ms": sent_ms, "lateness_ms": 0.0, "inflight_wait_ms": 0.0,
            "off_schedule": false, "status": 200, "error": null, "ttft_ms": e2e_ms / 2.0, "tpot_ms": 1.0,
            "itl": null, "e2e_ms": e2e_ms, "prompt_length": 10, "output_length": 8,
            "prompt_tokens": 10, "output_tokens": 8
        }))
        .unwrap()
    }

    #[test]
    fn bins_double_to_stay_within_the_limit_and_keep_every_request() {
        let mut acc = PlotAcc::new();
        for i in 0..10_000u64 {
            // 0 .. 1,000 s of replay, latency growing with time.
            acc.add(&result(i as f64 * 100.0, 10.0 + i as f64 / 100.0));
        }
        assert!(acc.bins.len() <= MAX_BINS, "{}", acc.bins.len());
        // 100 ms doubled until 1,000 s fits in 200 bins: 6.4 s.
        assert_eq!(acc.bin_us, 6_400_000);
        let n: u64 = acc.bins.iter().map(|b| b.e2e.count).sum();
        assert_eq!(n, 10_000);
        // The first bin's median is near the first latencies, the last bin's near the last.
        let first = acc.bins[0].e2e.quantile(0.5).unwrap() as f64 / 1000.0;
        let last = acc.bins.last().unwrap().e2e.quantile(0.5).unwrap() as f64 / 1000.0;
        assert!((10.0..11.0).contains(&first), "{first}");
        assert!((108.0..110.5).contains(&last), "{last}");
        assert_eq!((acc.asked.count, acc.delivered.count), (10_000, 10_000));
        let s = Summary::new(1000, Default::default(), "0/1".into());
        assert_eq!(acc.render(&s).len(), PLOTS.len());
    }

    #[test]
    fn an_empty_replay_says_so() {
        let s = Summary::new(1000, Default::default(), "0/1".into());
        for (name, svg) in PlotAcc::new().render(&s) {
            assert!(svg.contains("no "), "{name}");
        }
    }
}
