//! The fidelity report (`report.json`, also embedded in `manifest.json`): what was generated against what
//! was asked, computed from an [`Analysis`] of the workload file and the spec's [`Targets`].
//!
//! Conventions: rates are computed over the *window* `[0, duration_ms)` (the spec's duration when known,
//! else the last timestamp rounded up to a whole bin); per-window figures use the analysis bins (left-closed,
//! `bin_ms` wide, the last one clipped to the window); percentiles are nearest-rank; fractions have 4
//! decimals and other figures 3.

use serde::Serialize;

use super::analysis::{Analysis, BlockBasis};
use super::generate::Summary;
use super::plot::svg::fmt_num;
use super::spec::{TraceType, ValidatedSpec};
use super::stats::{Histogram, LengthError, LengthSummary, round3};

/// File name of the report.
pub const REPORT_FILE: &str = "report.json";

/// One point of a target rate curve: `qps` from `t_ms` until the next point (the last one holds until the
/// end of the window). A step function, like the generator's rate pieces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    /// Start of the step, ms.
    pub t_ms: u64,
    /// Target requests per second.
    pub qps: f64,
}

/// A length target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthTarget {
    /// Every request targets this many tokens.
    Fixed(u32),
    /// A distribution of targets: `(tokens, weight)` pairs (weights need not sum to 1).
    Distribution(Vec<(u32, f64)>),
}

impl LengthTarget {
    /// Nearest-rank (weighted) quantile.
    pub fn quantile(&self, q: f64) -> Option<u32> {
        match self {
            LengthTarget::Fixed(v) => Some(*v),
            LengthTarget::Distribution(d) => {
                let mut d: Vec<(u32, f64)> = d
                    .iter()
                    .copied()
                    .filter(|(_, w)| w.is_finite() && *w > 0.0)
                    .collect();
                d.sort_by_key(|(v, _)| *v);
                let total: f64 = d.iter().map(|(_, w)| w).sum();
                let mut seen = 0.0;
                for (v, w) in &d {
                    seen += w;
                    if seen >= q * total - 1e-12 {
                        return Some(*v);
                    }
                }
                d.last().map(|(v, _)| *v)
            }
        }
    }

    /// CDF points `(tokens, fraction ≤ tokens)` for plotting.
    pub fn cdf_points(&self) -> Vec<(f64, f64)> {
        match self {
            LengthTarget::Fixed(v) => vec![(*v as f64, 0.0), (*v as f64, 1.0)],
            LengthTarget::Distribution(d) => {
                let mut d: Vec<(u32, f64)> = d
                    .iter()
                    .copied()
                    .filter(|(_, w)| w.is_finite() && *w > 0.0)
                    .collect();
                d.sort_by_key(|(v, _)| *v);
                let total: f64 = d.iter().map(|(_, w)| w).sum();
                let mut seen = 0.0;
                d.into_iter()
                    .map(|(v, w)| {
                        seen += w;
                        (v as f64, seen / total)
                    })
                    .collect()
            }
        }
    }
}

/// What the spec asked for, as far as the plots and the report can compare. Every field is optional, so any
/// trace type (and a workload file without a spec) can be reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Targets {
    /// Figure title: trace type and key parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The workload's nominal duration, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Target rate as a step curve (sorted by `t_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Vec<RatePoint>>,
    /// Prompt length target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length: Option<LengthTarget>,
    /// Output length target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_length: Option<LengthTarget>,
    /// Prompt-length error measured by the generator against per-request targets (used when the prompt
    /// target is not a single fixed value, since the file does not record per-request targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length_error: Option<LengthError>,
}

impl Targets {
    /// Targets of a validated spec (and the generator's summary, for per-request matching errors).
    pub fn from_spec(spec: &ValidatedSpec, summary: Option<&Summary>) -> Self {
        let s = spec.spec();
        let mut t = Targets {
            duration_ms: Some(s.duration_ms),
            prompt_length: s.lengths.target_prompt_len.map(LengthTarget::Fixed),
            output_length: s.lengths.target_completion_len.map(LengthTarget::Fixed),
            prompt_length_error: summary.and_then(|x| x.matching.prompt_length_error.clone()),
            ..Default::default()
        };
        let mut params = Vec::new();
        if let Some(pieces) = summary.and_then(|x| x.target_rate.as_ref()) {
            // Step points of the rate curve the arrivals followed; equal neighbours merged.
            let mut points: Vec<RatePoint> = Vec::new();
            for p in pieces {
                if points.last().is_none_or(|l| l.qps != p.rate_per_s) {
                    points.push(RatePoint {
                        t_ms: p.start_ms as u64,
                        qps: p.rate_per_s,
                    });
                }
            }
            t.rate = Some(points);
        }
        if s.trace_type == TraceType::Constant {
            t.rate = Some(vec![RatePoint {
                t_ms: 0,
                qps: s.traffic.target_qps,
            }]);
            params.push(format!(
                "{} req/s {}",
                fmt_num(s.traffic.target_qps),
                serde_json::to_value(s.traffic.arrival)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ));
        }
        if let Some(p) = s.lengths.target_prompt_len {
            params.push(format!("prompt {p} tok"));
        }
        if let Some(o) = s.lengths.target_completion_len {
            params.push(format!("output {o} tok"));
        }
        params.push(format!("{} s", fmt_num(s.duration_ms as f64 / 1000.0)));
        params.push(format!("seed {}", spec.seed()));
        t.title = Some(format!(
            "{} workload: {}",
            s.trace_type.as_str(),
            params.join(", ")
        ));
        t
    }

    /// Target requests in `[0, end_ms)`: the integral of the rate curve.
    pub fn expected_requests(&self, end_ms: u64) -> Option<f64> {
        self.rate
            .as_ref()
            .map(|r| RateCurve::new(r).integral(0.0, end_ms as f64))
    }
}

/// A step rate curve with a prefix integral, for window averages in O(log n).
pub(crate) struct RateCurve {
    t: Vec<f64>,
    qps: Vec<f64>,
    /// Requests from 0 to `t[i]`.
    cum: Vec<f64>,
}

impl RateCurve {
    pub(crate) fn new(points: &[RatePoint]) -> Self {
        let mut p: Vec<RatePoint> = points
            .iter()
            .copied()
            .filter(|p| p.qps.is_finite())
            .collect();
        p.sort_by_key(|p| p.t_ms);
        let t: Vec<f64> = p.iter().map(|p| p.t_ms as f64).collect();
        let qps: Vec<f64> = p.iter().map(|p| p.qps.max(0.0)).collect();
        let mut cum = Vec::with_capacity(t.len());
        let mut acc = 0.0;
        for i in 0..t.len() {
            if i > 0 {
                acc += qps[i - 1] * (t[i] - t[i - 1]) / 1000.0;
            }
            cum.push(acc);
        }
        Self { t, qps, cum }
    }

    /// Requests from 0 to `x` ms.
    fn upto(&self, x: f64) -> f64 {
        let i = self.t.partition_point(|&t| t <= x);
        if i == 0 {
            return 0.0;
        }
        self.cum[i - 1] + self.qps[i - 1] * (x - self.t[i - 1]) / 1000.0
    }

    /// Requests in `[a, b)` ms.
    pub(crate) fn integral(&self, a: f64, b: f64) -> f64 {
        self.upto(b) - self.upto(a)
    }

    /// The step points `(t_ms, qps)` up to `end_ms`, as a polyline.
    pub(crate) fn step_points(&self, end_ms: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.t.len() * 2);
        for i in 0..self.t.len() {
            let start = self.t[i];
            if start >= end_ms {
                break;
            }
            let stop = self.t.get(i + 1).copied().unwrap_or(end_ms).min(end_ms);
            out.push((start, self.qps[i]));
            out.push((stop, self.qps[i]));
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.t.len()
    }
}

/// Achieved rate per window against the target curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateFit {
    /// Window width, ms (the analysis bin).
    pub window_ms: u64,
    /// Windows compared (the last one may be shorter).
    pub windows: u64,
    /// Mean over windows of |achieved − target| requests/s.
    pub mean_abs_error_qps: f64,
    /// The same divided by the target mean rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_mean_abs_error: Option<f64>,
    /// Largest |achieved − target| over windows, requests/s.
    pub max_abs_error_qps: f64,
}

/// Inter-arrival times between consecutive requests (file order), ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interarrival {
    /// Gaps measured.
    pub count: u64,
    /// Mean gap, ms.
    pub mean_ms: f64,
    /// Coefficient of variation (std/mean; 1 for a Poisson process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv: Option<f64>,
    /// Median gap, ms.
    pub p50_ms: u64,
    /// 90th percentile, ms.
    pub p90_ms: u64,
    /// 99th percentile, ms.
    pub p99_ms: u64,
    /// Requests earlier than the previous one (not counted as gaps).
    pub out_of_order: u64,
}

/// Target percentiles of a length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetPercentiles {
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
}

/// A length, achieved against its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthReport {
    /// Achieved distribution (tokens).
    pub achieved: LengthSummary,
    /// The target's percentiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetPercentiles>,
}

/// Sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionReport {
    /// Distinct session ids.
    pub count: u64,
    /// Mean requests per session.
    pub turns_mean: f64,
    /// Median requests per session.
    pub turns_p50: u64,
    /// 90th percentile of requests per session.
    pub turns_p90: u64,
    /// Most requests in one session.
    pub turns_max: u64,
    /// Most sessions open at once (open = from first to last request, inclusive).
    pub max_concurrent: u64,
    /// Sessions drawn in `sessions.svg`.
    pub drawn: u64,
}

/// Prefix reuse: the share of prompt units in full blocks whose whole prefix was sent by an earlier request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixReuse {
    /// Units per block (bytes or tokens, see the field name).
    pub block_size: u64,
    /// Total prompt units.
    pub prompt_units: u64,
    /// Fraction reused with an unlimited cache.
    pub reused_fraction_unlimited: f64,
    /// True when the unlimited cache reached its memory cap: the unlimited fraction is then a lower bound.
    pub unlimited_is_lower_bound: bool,
    /// LRU cache capacity, blocks.
    pub lru_capacity_blocks: u64,
    /// Fraction reused with the LRU cache.
    pub reused_fraction_lru: f64,
}

/// `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Requests in the file.
    pub requests: u64,
    /// Target request count (integral of the target rate over the window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_requests: Option<f64>,
    /// Lines in the file.
    pub entries: u64,
    /// Lines with no requests.
    pub empty_entries: u64,
    /// Smallest timestamp, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_timestamp_ms: Option<u64>,
    /// Largest timestamp, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_timestamp_ms: Option<u64>,
    /// The window rates are computed over, ms.
    pub window_ms: u64,
    /// Target duration, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_duration_ms: Option<u64>,
    /// Requests per second over the window.
    pub mean_rate_qps: f64,
    /// Target mean rate over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_mean_rate_qps: Option<f64>,
    /// Per-window rate against the target curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_window: Option<RateFit>,
    /// Inter-arrival times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interarrival: Option<Interarrival>,
    /// Prompt lengths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length: Option<LengthReport>,
    /// Output lengths (requests with one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_length: Option<LengthReport>,
    /// Requests with a null or absent output length.
    pub null_output_lengths: u64,
    /// Prompt length against its target (relative error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length_error: Option<LengthError>,
    /// Sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionReport>,
    /// Prefix reuse by blocks of UTF-8 bytes of the prompt text (used when no tokenizer is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_reuse_byte_blocks: Option<PrefixReuse>,
    /// Prefix reuse by blocks of tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_reuse_token_blocks: Option<PrefixReuse>,
    /// Bin width of the plots and per-window figures, ms.
    pub bin_ms: u64,
    /// Things to know when reading the figures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn length_report(h: &Histogram, target: Option<&LengthTarget>) -> Option<LengthReport> {
    Some(LengthReport {
        achieved: h.summary()?,
        target: target.and_then(|t| {
            Some(TargetPercentiles {
                p50: t.quantile(0.5)?,
                p90: t.quantile(0.9)?,
                p99: t.quantile(0.99)?,
            })
        }),
    })
}

/// Relative error of every prompt length against one fixed target, from the exact histogram.
fn fixed_error(h: &Histogram, target: u32) -> Option<LengthError> {
    if h.is_empty() {
        return None;
    }
    let t = target.max(1) as f64;
    let mut errs = Histogram::default();
    let (mut outside_5, mut outside_10) = (0u64, 0u64);
    for (v, c) in h.iter() {
        let rel = (v as f64 - t).abs() / t;
        if rel > 0.05 {
            outside_5 += c;
        }
        if rel > 0.10 {
            outside_10 += c;
        }
        errs.add_n((rel * 10_000.0).round() as u64, c);
    }
    LengthError::of(&errs, outside_5, outside_10)
}

/// The report of `a` against `t`.
pub fn report(a: &Analysis, t: &Targets) -> Report {
    let window = t.duration_ms.unwrap_or_else(|| a.observed_end_ms());
    let secs = window as f64 / 1000.0;
    let mut notes = Vec::new();
    let curve = t.rate.as_ref().map(|r| RateCurve::new(r));
    let target_requests = curve
        .as_ref()
        .map(|c| round3(c.integral(0.0, window as f64)));
    let rate_per_window = curve.as_ref().filter(|_| window > 0).map(|c| {
        let (bin, bins) = a.window_bins(window);
        let n = window.div_ceil(bin);
        let (mut sum, mut max) = (0.0f64, 0.0f64);
        for k in 0..n {
            let start = k * bin;
            let end = (start + bin).min(window);
            let w = (end - start) as f64 / 1000.0;
            let got = bins.get(k as usize).map_or(0, |b| b.requests) as f64 / w;
            let want = c.integral(start as f64, end as f64) / w;
            let err = (got - want).abs();
            sum += err;
            max = max.max(err);
        }
        let mae = sum / n as f64;
        let target_mean = c.integral(0.0, window as f64) / secs;
        RateFit {
            window_ms: bin,
            windows: n,
            mean_abs_error_qps: round3(mae),
            relative_mean_abs_error: (target_mean > 0.0).then(|| round4(mae / target_mean)),
            max_abs_error_qps: round3(max),
        }
    });
    if let (Some(d), Some(max)) = (t.duration_ms, a.max_ts)
        && max >= d
    {
        let late: u64 = a
            .bins
            .iter()
            .enumerate()
            .filter(|(k, _)| *k as u64 * a.bin_ms >= d)
            .map(|(_, b)| b.requests)
            .sum();
        notes.push(format!(
            "timestamps reach {max} ms, beyond the target duration of {d} ms (at least {late} requests in bins after it)"
        ));
    }
    let interarrival = (!a.gaps.is_empty()).then(|| {
        let q = a.gaps.quantiles(&[0.5, 0.9, 0.99]);
        let mean = a.gaps.mean().unwrap_or(0.0);
        Interarrival {
            count: a.gaps.len(),
            mean_ms: round3(mean),
            cv: (mean > 0.0).then(|| round4(a.gaps.std_dev().unwrap_or(0.0) / mean)),
            p50_ms: q[0],
            p90_ms: q[1],
            p99_ms: q[2],
            out_of_order: a.out_of_order,
        }
    });
    if a.out_of_order > 0 {
        notes.push(format!(
            "{} requests are earlier than the request before them in the file; their gaps are not counted",
            a.out_of_order
        ));
    }
    if a.missing_prompt_length > 0 {
        notes.push(format!(
            "{} requests have no prompt_length; they are left out of prompt-length figures",
            a.missing_prompt_length
        ));
    }
    if a.bin_ms != a.base_bin_ms {
        notes.push(format!(
            "bins were widened from {} ms to {} ms to keep at most 2000 points per series",
            a.base_bin_ms, a.bin_ms
        ));
    }
    let prompt_length_error = match &t.prompt_length {
        Some(LengthTarget::Fixed(v)) => fixed_error(&a.prompt_len, *v),
        _ => t.prompt_length_error.clone(),
    };
    let sessions = a.sessions.as_ref().map(|s| {
        let q = s.turns.quantiles(&[0.5, 0.9]);
        SessionReport {
            count: s.count,
            turns_mean: round3(s.turns.mean().unwrap_or(0.0)),
            turns_p50: q.first().copied().unwrap_or(0),
            turns_p90: q.get(1).copied().unwrap_or(0),
            turns_max: s.turns.max().unwrap_or(0),
            max_concurrent: s.max_concurrent,
            drawn: s.rows.len() as u64,
        }
    });
    if let Some(s) = &sessions
        && s.drawn < s.count
    {
        notes.push(format!(
            "sessions.svg draws the first {} of {} sessions",
            s.drawn, s.count
        ));
    }
    let prefix = a.prefix.as_ref().map(|p| {
        let frac = |x: u64| {
            if p.total_units == 0 {
                0.0
            } else {
                round4(x as f64 / p.total_units as f64)
            }
        };
        (
            p.basis,
            PrefixReuse {
                block_size: p.block_size as u64,
                prompt_units: p.total_units,
                reused_fraction_unlimited: frac(p.reused_unlimited),
                unlimited_is_lower_bound: p.unlimited_saturated,
                lru_capacity_blocks: p.lru_capacity_blocks as u64,
                reused_fraction_lru: frac(p.reused_lru),
            },
        )
    });
    let (bytes, tokens) = match prefix {
        Some((BlockBasis::Bytes, p)) => (Some(p), None),
        Some((BlockBasis::Tokens, p)) => (None, Some(p)),
        None => (None, None),
    };
    if a.requests == 0 {
        notes.push("the workload has no requests".into());
    }
    Report {
        requests: a.requests,
        target_requests,
        entries: a.entries,
        empty_entries: a.empty_entries,
        first_timestamp_ms: a.min_ts,
        last_timestamp_ms: a.max_ts,
        window_ms: window,
        target_duration_ms: t.duration_ms,
        mean_rate_qps: if window > 0 {
            round3(a.requests as f64 / secs)
        } else {
            0.0
        },
        target_mean_rate_qps: curve
            .as_ref()
            .filter(|_| window > 0)
            .map(|c| round3(c.integral(0.0, window as f64) / secs)),
        rate_per_window,
        interarrival,
        prompt_length: length_report(&a.prompt_len, t.prompt_length.as_ref()),
        output_length: length_report(&a.output_len, t.output_length.as_ref()),
        null_output_lengths: a.null_output_length,
        prompt_length_error,
        sessions,
        prefix_reuse_byte_blocks: bytes,
        prefix_reuse_token_blocks: tokens,
        bin_ms: a.bin_ms,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::arrival::RatePiece;
    use crate::domain::spec::GenerationSpec;

    #[test]
    fn the_followed_rate_curve_becomes_the_target() {
        let spec: GenerationSpec = serde_json::from_str(
            r#"{"trace_type": "synthetic", "seed": 1, "synthetic": {"traffic_pattern": "slight_fluctuation"}}"#,
        )
        .unwrap();
        let v = spec.validate().unwrap();
        let piece = |s: f64, e: f64, r: f64| RatePiece {
            start_ms: s,
            end_ms: e,
            rate_per_s: r,
        };
        let summary = Summary {
            target_rate: Some(vec![
                piece(0.0, 1000.0, 2.0),
                piece(1000.0, 2000.0, 2.0),
                piece(2000.0, 3000.0, 5.0),
            ]),
            ..Summary::default()
        };
        let rate = Targets::from_spec(&v, Some(&summary)).rate.unwrap();
        assert_eq!(
            rate,
            vec![
                RatePoint { t_ms: 0, qps: 2.0 },
                RatePoint {
                    t_ms: 2000,
                    qps: 5.0
                }
            ]
        );
        assert!(Targets::from_spec(&v, None).rate.is_none());
    }
}
