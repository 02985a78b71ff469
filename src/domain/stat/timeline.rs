//! The joined statistics as a timeline of rows: rates for the arrivals and lognormal length targets.

use rand::Rng;
use rand_distr::{Distribution, Poisson};

use super::fit::LogNormal;
use super::read::*;
use super::spec::{RateNoise, StatSpec, StatTraceType, spec_err};
use crate::domain::arrival::RatePiece;
use crate::domain::emit::GenerateError;
use crate::domain::files::{FileResolver, InputError};

// ---------------------------------------------------------------------------------------------------------
// Timeline

/// One row of the joined statistics, on the workload's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatRow {
    /// Line of the traffic file.
    pub line: u64,
    /// Start, ms from the first row.
    pub start_ms: f64,
    /// How long the row lasts, ms.
    pub duration_ms: f64,
    /// Requests per second (before `qps_scale`).
    pub rate: f64,
    /// Prompt lengths (after `input_scale`).
    pub input: Option<LogNormal>,
    /// Completion lengths (after `output_scale`).
    pub output: Option<LogNormal>,
}

/// The statistics as consecutive rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatTimeline {
    /// Rows in time order.
    pub rows: Vec<StatRow>,
}

impl StatTimeline {
    /// Reads the files named by `stat` through `files`.
    pub fn load<'a>(
        stat: &'a StatSpec,
        interval_ms: u64,
        files: &'a dyn FileResolver,
    ) -> Result<Self, GenerateError> {
        let open = |field: &str, name: &'a str| -> Result<CsvInput<'a>, GenerateError> {
            let path = files.resolve(field, name)?;
            let f = std::fs::File::open(&path)
                .map_err(|e| InputError::file(name, format!("cannot read: {e}")))?;
            Ok(CsvInput {
                name,
                reader: Box::new(f),
            })
        };
        let traffic_name = stat
            .traffic_file
            .as_deref()
            .ok_or_else(|| spec_err("stat.traffic_file", "is required"))?;
        let traffic = open("stat.traffic_file", traffic_name)?;
        let prompt = match stat.prompt_len_file.as_deref() {
            Some(n) => Some(open("stat.prompt_len_file", n)?),
            None => None,
        };
        // One file for both sides when both fields name it; cloudide also when only the prompt file is given.
        let completion = match (
            stat.completion_len_file.as_deref(),
            stat.prompt_len_file.as_deref(),
        ) {
            (Some(c), Some(p)) if c == p => Some(open("stat.prompt_len_file", p)?),
            (Some(c), _) => Some(open("stat.completion_len_file", c)?),
            (None, Some(p)) if stat.stat_trace_type == StatTraceType::Cloudide => {
                Some(open("stat.prompt_len_file", p)?)
            }
            (None, _) => None,
        };
        Ok(Self::parse(stat, interval_ms, traffic, prompt, completion)?)
    }

    /// Parses the CSVs (traffic, prompt lengths, completion lengths), row by row.
    pub fn parse(
        stat: &StatSpec,
        interval_ms: u64,
        traffic: CsvInput<'_>,
        prompt: Option<CsvInput<'_>>,
        completion: Option<CsvInput<'_>>,
    ) -> Result<Self, InputError> {
        let traffic_name = traffic.name;
        let trows = read_traffic(Csv::open(traffic)?, stat.stat_trace_type)?;
        // Times strictly increasing.
        for w in trows.windows(2) {
            if let (Some(a), Some(b)) = (w[0].time, w[1].time)
                && b <= a
            {
                return Err(InputError::at(
                    traffic_name,
                    w[1].line,
                    Some("Time"),
                    format!("not after the previous row's time (line {})", w[0].line),
                ));
            }
        }
        let n = trows.len();
        let (inputs, outputs): (Vec<Option<LogNormal>>, Vec<Option<LogNormal>>) = match stat
            .stat_trace_type
        {
            StatTraceType::Maas => {
                let side = |f: Option<CsvInput<'_>>,
                            scale: f64|
                 -> Result<Vec<Option<LogNormal>>, InputError> {
                    let Some(f) = f else {
                        return Ok(vec![None; n]);
                    };
                    let name = f.name;
                    let rows = read_percentiles(Csv::open(f)?, scale)?;
                    let keys: Vec<(u64, Option<i64>)> =
                        rows.iter().map(|r| (r.line, r.time)).collect();
                    let m = join(traffic_name, &trows, name, &keys)?;
                    Ok(m.into_iter().map(|j| Some(rows[j].dist)).collect())
                };
                (
                    side(prompt, stat.input_scale)?,
                    side(completion, stat.output_scale)?,
                )
            }
            StatTraceType::Cloudide => {
                let side = |f: Option<CsvInput<'_>>,
                            prefix: &str,
                            scale: f64|
                 -> Result<Vec<Option<LogNormal>>, InputError> {
                    let Some(f) = f else {
                        return Ok(vec![None; n]);
                    };
                    let name = f.name;
                    let rows = read_bytes(Csv::open(f)?, prefix)?;
                    let keys: Vec<(u64, Option<i64>)> = rows.iter().map(|r| (r.0, r.1)).collect();
                    let m = join(traffic_name, &trows, name, &keys)?;
                    Ok(m.into_iter()
                        .zip(&trows)
                        .map(|(j, t)| {
                            (t.rate > 0.0).then(|| {
                                LogNormal::constant(
                                    rows[j].2 / t.rate / stat.bytes_per_token / scale,
                                )
                            })
                        })
                        .collect())
                };
                (
                    side(prompt, "recv_bytes", stat.input_scale)?,
                    side(completion, "sent_bytes", stat.output_scale)?,
                )
            }
        };
        let t0 = trows[0].time;
        let fallback = stat.row_duration_ms.unwrap_or(interval_ms) as f64;
        let rows = trows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (start_ms, duration_ms) = match (t0, r.time) {
                    (Some(t0), Some(t)) => {
                        let dur = match trows.get(i + 1).and_then(|n| n.time) {
                            Some(next) => (next - t) as f64,
                            None => match (stat.row_duration_ms, i.checked_sub(1)) {
                                (Some(d), _) => d as f64,
                                (None, Some(p)) => (t - trows[p].time.expect("timed")) as f64,
                                (None, None) => fallback,
                            },
                        };
                        ((t - t0) as f64, dur)
                    }
                    _ => (i as f64 * fallback, fallback),
                };
                StatRow {
                    line: r.line,
                    start_ms,
                    duration_ms,
                    rate: r.rate,
                    input: inputs[i],
                    output: outputs[i],
                }
            })
            .collect();
        Ok(Self { rows })
    }

    /// Total length of the rows, ms.
    pub fn span_ms(&self) -> f64 {
        self.rows.last().map_or(0.0, |r| r.start_ms + r.duration_ms)
    }

    /// The rate function up to `duration_ms`: one piece per row, or one per second of each row with rate
    /// noise (drawn from `rng`). Rates are divided by `qps_scale`.
    pub fn pieces(
        &self,
        qps_scale: f64,
        noise: RateNoise,
        duration_ms: u64,
        rng: &mut impl Rng,
    ) -> Vec<RatePiece> {
        let end = duration_ms as f64;
        let mut out = Vec::new();
        for r in &self.rows {
            if r.start_ms >= end {
                break;
            }
            let row_end = (r.start_ms + r.duration_ms).min(end);
            let poisson = (r.rate > 0.0).then(|| Poisson::new(r.rate).ok()).flatten();
            match (noise, poisson) {
                (RateNoise::None, _) | (_, None) => out.push(RatePiece {
                    start_ms: r.start_ms,
                    end_ms: row_end,
                    rate_per_s: r.rate / qps_scale,
                }),
                (mode, Some(dist)) => {
                    let mut window: Vec<f64> = Vec::with_capacity(10);
                    let mut t = r.start_ms;
                    let mut i = 0usize;
                    while t < row_end {
                        let x: f64 = dist.sample(rng);
                        let rate = if mode == RateNoise::Smoothed {
                            if window.len() == 10 {
                                window.remove(0);
                            }
                            window.push(x);
                            let m = window.iter().sum::<f64>() / window.len() as f64;
                            m.round_ties_even().max(1.0)
                        } else {
                            x
                        };
                        let next = (r.start_ms + (i + 1) as f64 * 1000.0).min(row_end);
                        out.push(RatePiece {
                            start_ms: t,
                            end_ms: next,
                            rate_per_s: rate / qps_scale,
                        });
                        t = next;
                        i += 1;
                    }
                }
            }
        }
        out
    }

    /// Length targets for arrivals (in time order): each from the row the arrival falls in, drawn from `rng`
    /// (one normal per present series per arrival).
    pub fn with_lengths<'a, R: Rng + 'a>(
        &'a self,
        arrivals: impl Iterator<Item = f64> + 'a,
        mut rng: R,
    ) -> impl Iterator<Item = (f64, Option<u32>, Option<u32>)> + 'a {
        let mut cur = 0usize;
        arrivals.map(move |t| {
            while cur + 1 < self.rows.len() && t >= self.rows[cur + 1].start_ms {
                cur += 1;
            }
            let r = &self.rows[cur];
            let tin = r.input.map(|d| d.sample(&mut rng));
            let tout = r.output.map(|d| d.sample(&mut rng));
            (t, tin, tout)
        })
    }
}
