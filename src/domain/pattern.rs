//! Sine patterns of the `synthetic` trace type: the request rate, the prompt length and the completion length
//! each follow `value(t) = A·sin(2π·period·t/duration) + B + N(0, σ)`, where `period` is the number of full
//! cycles over the workload, optionally never decreasing (`only_rise`).
//!
//! A pattern comes from one of the reference presets (with a configurable mean) or from a config in the
//! reference's JSON form (`fluctuate`, `mean`, `noise`, `period_len_ms`, `only_rise`; the older
//! `A`, `B`, `sigma`, `period`, `omega` keys are accepted too), given inline in the spec or as a file.
//!
//! The series lives on the `interval_ms` grid: point k covers `[k·interval_ms, (k+1)·interval_ms)`, so the
//! grid never changes the workload's length (the reference treats every point as one second: W2).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::arrival::{Arrivals, RatePiece};
use super::files::InputError;
use super::generate::{GenerateError, GenerateInput, Summary, emit_matched, rng_for, streams};
use super::spec::{SpecError, ValidatedSpec};
use super::writer::EntrySink;

/// Most grid points a synthetic series may have (`duration_ms / interval_ms`).
pub const MAX_POINTS: u64 = 10_000_000;

/// The reference's preset patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Rises from the mean to 1.5× the mean within the first twentieth of the workload, then stays there.
    QuickRising,
    /// A quarter sine over the whole workload: from the mean up to 1.5× the mean.
    SlowRising,
    /// One cycle of ±10% around the mean.
    SlightFluctuation,
    /// Twelve cycles of ±50% around the mean.
    SevereFluctuation,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [
        Preset::QuickRising,
        Preset::SlowRising,
        Preset::SlightFluctuation,
        Preset::SevereFluctuation,
    ];

    /// The name used in specs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::QuickRising => "quick_rising",
            Preset::SlowRising => "slow_rising",
            Preset::SlightFluctuation => "slight_fluctuation",
            Preset::SevereFluctuation => "severe_fluctuation",
        }
    }

    /// The preset around `mean` (the reference uses 6 QPS for traffic and 1024 tokens for lengths).
    pub fn pattern(self, mean: f64) -> Pattern {
        let (a, cycles, only_rise) = match self {
            Preset::QuickRising => (0.5, 5.0, true),
            Preset::SlowRising => (0.5, 0.25, true),
            Preset::SlightFluctuation => (0.1, 1.0, false),
            Preset::SevereFluctuation => (0.5, 12.0, false),
        };
        Pattern {
            amplitude: a * mean,
            mean,
            noise: 0.1,
            period: Period::Cycles(cycles),
            only_rise,
        }
    }
}

/// How the sine period is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Period {
    /// Full cycles over the workload (presets, legacy `period` key).
    Cycles(f64),
    /// Length of one cycle in ms (`period_len_ms`): `duration_ms / period_len_ms` cycles.
    LengthMs(f64),
}

/// One sine pattern: `amplitude·sin(2π·cycles·t/duration) + mean + N(0, noise)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pattern {
    /// A (`fluctuate`).
    pub amplitude: f64,
    /// B (`mean`).
    pub mean: f64,
    /// σ of the Gaussian noise added to every point (`noise`).
    pub noise: f64,
    /// The period.
    pub period: Period,
    /// Every point is at least the previous one.
    pub only_rise: bool,
}

/// A pattern config that cannot be used: the offending key (if any) and why.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}{message}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct PatternConfigError {
    /// The key of the config, e.g. `noise`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl PatternConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

const REFERENCE_KEYS: [&str; 5] = ["fluctuate", "mean", "noise", "period_len_ms", "only_rise"];
const LEGACY_KEYS: [&str; 6] = ["A", "B", "sigma", "period", "omega", "only_rise"];

fn number(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<f64>, PatternConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(PatternConfigError::key(key, "must be a finite number")),
        },
        Some(other) => Err(PatternConfigError::key(
            key,
            format!("must be a number, got {}", json_kind(other)),
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Pattern {
    /// Reads a config in the reference's form (`fluctuate`, `mean`, `noise`, `period_len_ms`, `only_rise`) or
    /// the older form (`A`, `B`, `sigma`, `period` in cycles, `omega` = null). `mean` (`B`) is required;
    /// `fluctuate` and `noise` default to 0, `only_rise` to false; the period is required when `fluctuate` ≠ 0.
    pub fn from_json(v: &Value) -> Result<Self, PatternConfigError> {
        let Value::Object(obj) = v else {
            return Err(PatternConfigError {
                key: None,
                message: format!(
                    "a pattern config must be a JSON object, got {}",
                    json_kind(v)
                ),
            });
        };
        let legacy_key = ["A", "B", "sigma", "period", "omega"]
            .into_iter()
            .find(|k| obj.contains_key(*k));
        let reference = ["fluctuate", "mean", "noise", "period_len_ms"]
            .iter()
            .any(|k| obj.contains_key(*k));
        if let (Some(k), true) = (legacy_key, reference) {
            return Err(PatternConfigError::key(
                k,
                "belongs to the older form (A, B, sigma, period); use fluctuate, mean, noise, period_len_ms",
            ));
        }
        let legacy = legacy_key.is_some();
        let allowed: &[&str] = if legacy {
            &LEGACY_KEYS
        } else {
            &REFERENCE_KEYS
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            let expected = allowed.join(", ");
            return Err(PatternConfigError::key(
                k,
                format!("unknown key (expected {expected})"),
            ));
        }
        let (a_key, b_key, s_key) = if legacy {
            ("A", "B", "sigma")
        } else {
            ("fluctuate", "mean", "noise")
        };
        let amplitude = number(obj, a_key)?.unwrap_or(0.0);
        let mean =
            number(obj, b_key)?.ok_or_else(|| PatternConfigError::key(b_key, "is required"))?;
        let noise = number(obj, s_key)?.unwrap_or(0.0);
        if noise < 0.0 {
            return Err(PatternConfigError::key(s_key, "must be >= 0"));
        }
        let only_rise = match obj.get("only_rise") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(PatternConfigError::key(
                    "only_rise",
                    format!("must be true or false, got {}", json_kind(other)),
                ));
            }
        };
        let period = if legacy {
            if number(obj, "omega")?.is_some() {
                return Err(PatternConfigError::key(
                    "omega",
                    "is not supported (the reference crashes on it too); give `period` in cycles",
                ));
            }
            match number(obj, "period")? {
                Some(p) if p >= 0.0 => Period::Cycles(p),
                Some(_) => return Err(PatternConfigError::key("period", "must be >= 0")),
                None if amplitude == 0.0 => Period::Cycles(0.0),
                None => {
                    return Err(PatternConfigError::key(
                        "period",
                        "is required when A is not 0",
                    ));
                }
            }
        } else {
            match number(obj, "period_len_ms")? {
                Some(p) if p > 0.0 => Period::LengthMs(p),
                Some(_) => return Err(PatternConfigError::key("period_len_ms", "must be > 0")),
                None if amplitude == 0.0 => Period::Cycles(0.0),
                None => {
                    return Err(PatternConfigError::key(
                        "period_len_ms",
                        "is required when fluctuate is not 0",
                    ));
                }
            }
        };
        Ok(Pattern {
            amplitude,
            mean,
            noise,
            period,
            only_rise,
        })
    }

    /// Full sine cycles over a workload of `duration_ms`.
    pub fn cycles(&self, duration_ms: u64) -> f64 {
        match self.period {
            Period::Cycles(c) => c,
            Period::LengthMs(len) => duration_ms as f64 / len,
        }
    }

    /// The pattern's value at each of `points` grid points (point k at `k·interval_ms`), noise drawn from
    /// `rng` (one standard normal per point, also when `noise` is 0, so series stay aligned across configs).
    pub fn series(
        &self,
        points: usize,
        interval_ms: u64,
        duration_ms: u64,
        rng: &mut impl Rng,
    ) -> Vec<f64> {
        let omega = 2.0 * std::f64::consts::PI * self.cycles(duration_ms) / duration_ms as f64;
        let mut prev = f64::NEG_INFINITY;
        (0..points)
            .map(|k| {
                let t = k as f64 * interval_ms as f64;
                let z: f64 = StandardNormal.sample(rng);
                let mut v = self.amplitude * (omega * t).sin() + self.mean + self.noise * z;
                if self.only_rise {
                    v = v.max(prev);
                    prev = v;
                }
                v
            })
            .collect()
    }
}

/// Most requests a rate series may produce (about; as for `constant` traffic).
pub const MAX_REQUESTS: f64 = 1e9;

/// The expected number of arrivals of a rate function.
pub fn expected_requests(pieces: &[RatePiece]) -> f64 {
    pieces
        .iter()
        .map(|p| p.rate_per_s.max(0.0) * (p.end_ms - p.start_ms) / 1000.0)
        .sum()
}

/// Rounds a length pattern value to whole tokens, at least 1.
pub fn length_of(v: f64) -> u32 {
    let r = v.round();
    if r.is_nan() || r < 1.0 {
        1
    } else if r > u32::MAX as f64 {
        u32::MAX
    } else {
        r as u32
    }
}

/// `synthetic` spec options: one pattern per series, as a preset or a config (inline object or file name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSpec {
    /// Preset of the request rate (`--traffic-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern: Option<Preset>,
    /// Rate config: an inline object or a file name (`--traffic-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern_config: Option<Value>,
    /// Mean of the traffic preset, requests per second (default 6, the reference's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern_mean: Option<f64>,
    /// Preset of the prompt length (`--prompt-len-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern: Option<Preset>,
    /// Prompt-length config: inline object or file name (`--prompt-len-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern_config: Option<Value>,
    /// Mean of the prompt-length preset, tokens (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern_mean: Option<f64>,
    /// Preset of the completion length (`--completion-len-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern: Option<Preset>,
    /// Completion-length config: inline object or file name (`--completion-len-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern_config: Option<Value>,
    /// Mean of the completion-length preset, tokens (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern_mean: Option<f64>,
}

/// Default mean of the traffic presets (requests per second).
pub const DEFAULT_TRAFFIC_MEAN: f64 = 6.0;
/// Default mean of the length presets (tokens).
pub const DEFAULT_LENGTH_MEAN: f64 = 1024.0;

/// Which of the three series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    Traffic,
    Prompt,
    Completion,
}

impl Series {
    fn prefix(self) -> &'static str {
        match self {
            Series::Traffic => "traffic",
            Series::Prompt => "prompt_len",
            Series::Completion => "completion_len",
        }
    }
}

/// Where a series' pattern comes from (resolved from the spec, not yet read).
enum Source<'a> {
    Preset(Preset, f64),
    Inline(&'a Value),
    File(&'a str),
}

impl SyntheticSpec {
    fn parts(&self, s: Series) -> (Option<Preset>, Option<&Value>, Option<f64>) {
        match s {
            Series::Traffic => (
                self.traffic_pattern,
                self.traffic_pattern_config.as_ref(),
                self.traffic_pattern_mean,
            ),
            Series::Prompt => (
                self.prompt_len_pattern,
                self.prompt_len_pattern_config.as_ref(),
                self.prompt_len_pattern_mean,
            ),
            Series::Completion => (
                self.completion_len_pattern,
                self.completion_len_pattern_config.as_ref(),
                self.completion_len_pattern_mean,
            ),
        }
    }

    fn source(&self, s: Series) -> Result<Option<Source<'_>>, SpecError> {
        let p = s.prefix();
        let (preset, config, mean) = self.parts(s);
        let err = |field: String, message: String| SpecError { field, message };
        if let Some(m) = mean
            && !(m.is_finite() && m > 0.0)
        {
            return Err(err(
                format!("synthetic.{p}_pattern_mean"),
                "must be > 0".into(),
            ));
        }
        match (preset, config) {
            (Some(_), Some(_)) => Err(err(
                format!("synthetic.{p}_pattern"),
                format!("cannot be combined with synthetic.{p}_pattern_config: give one of them"),
            )),
            (Some(preset), None) => {
                let default = if s == Series::Traffic {
                    DEFAULT_TRAFFIC_MEAN
                } else {
                    DEFAULT_LENGTH_MEAN
                };
                Ok(Some(Source::Preset(preset, mean.unwrap_or(default))))
            }
            (None, Some(cfg)) => {
                if mean.is_some() {
                    return Err(err(
                        format!("synthetic.{p}_pattern_mean"),
                        format!(
                            "applies to presets only; set `mean` in synthetic.{p}_pattern_config"
                        ),
                    ));
                }
                match cfg {
                    Value::String(name) if name.trim().is_empty() => Err(err(
                        format!("synthetic.{p}_pattern_config"),
                        "must not be empty".into(),
                    )),
                    Value::String(name) => Ok(Some(Source::File(name))),
                    Value::Object(_) => {
                        Pattern::from_json(cfg).map_err(|e| {
                            let field = match &e.key {
                                Some(k) => format!("synthetic.{p}_pattern_config.{k}"),
                                None => format!("synthetic.{p}_pattern_config"),
                            };
                            err(field, e.message)
                        })?;
                        Ok(Some(Source::Inline(cfg)))
                    }
                    other => Err(err(
                        format!("synthetic.{p}_pattern_config"),
                        format!(
                            "must be a file name or a JSON object, got {}",
                            json_kind(other)
                        ),
                    )),
                }
            }
            (None, None) if mean.is_some() => Err(err(
                format!("synthetic.{p}_pattern_mean"),
                format!("needs synthetic.{p}_pattern (a preset)"),
            )),
            (None, None) => Ok(None),
        }
    }

    /// The file names this spec refers to, with their dotted field (for resolving them before generation,
    /// e.g. to reject unknown upload ids early).
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        [
            (
                "synthetic.traffic_pattern_config",
                &self.traffic_pattern_config,
            ),
            (
                "synthetic.prompt_len_pattern_config",
                &self.prompt_len_pattern_config,
            ),
            (
                "synthetic.completion_len_pattern_config",
                &self.completion_len_pattern_config,
            ),
        ]
        .into_iter()
        .filter_map(|(f, v)| match v {
            Some(Value::String(name)) => Some((f, name.as_str())),
            _ => None,
        })
        .collect()
    }

    /// Checks the options of a `synthetic` spec: a traffic pattern is required; inline configs are parsed.
    pub fn validate(&self, duration_ms: u64, interval_ms: u64) -> Result<(), SpecError> {
        if self.source(Series::Traffic)?.is_none() {
            return Err(SpecError {
                field: "synthetic.traffic_pattern".into(),
                message: format!(
                    "is required (a preset: {}; or synthetic.traffic_pattern_config)",
                    Preset::ALL.map(Preset::as_str).join(", ")
                ),
            });
        }
        self.source(Series::Prompt)?;
        self.source(Series::Completion)?;
        let points = duration_ms.div_ceil(interval_ms.max(1));
        if points > MAX_POINTS {
            return Err(SpecError {
                field: "interval_ms".into(),
                message: format!(
                    "gives {points} pattern points over duration_ms; at most {MAX_POINTS} are allowed"
                ),
            });
        }
        Ok(())
    }
}

/// Reads the pattern of one series (preset, inline config, or config file through the resolver).
fn load(
    syn: &SyntheticSpec,
    s: Series,
    input: &GenerateInput<'_>,
) -> Result<Option<Pattern>, GenerateError> {
    let field = format!("synthetic.{}_pattern_config", s.prefix());
    Ok(match syn.source(s)? {
        None => None,
        Some(Source::Preset(p, mean)) => Some(p.pattern(mean)),
        Some(Source::Inline(v)) => Some(Pattern::from_json(v).map_err(|e| SpecError {
            field: field.clone(),
            message: e.to_string(),
        })?),
        Some(Source::File(name)) => {
            let path = input.files.resolve(&field, name)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| InputError::file(name, format!("cannot read: {e}")))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                InputError::at(name, e.line() as u64, None, format!("invalid JSON: {e}"))
            })?;
            Some(Pattern::from_json(&v).map_err(|e| InputError {
                file: name.to_string(),
                line: None,
                field: e.key.clone(),
                reason: e.message,
            })?)
        }
    })
}

/// The three series on the grid: rates (requests/s, ≥ 0) and optional prompt/completion lengths (≥ 1).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSeries {
    /// Grid step, ms.
    pub interval_ms: u64,
    /// Workload length, ms.
    pub duration_ms: u64,
    /// Requests per second of each point.
    pub rate: Vec<f64>,
    /// Prompt length target of each point.
    pub prompt: Option<Vec<u32>>,
    /// Completion length target of each point.
    pub completion: Option<Vec<u32>>,
}

impl SyntheticSeries {
    /// Evaluates the patterns on the `interval_ms` grid over `duration_ms` (`ceil(duration/interval)` points).
    /// Noise comes from `rng` in a fixed order (rate, then prompt, then completion), so the rate series does
    /// not depend on the length patterns.
    pub fn build(
        traffic: &Pattern,
        prompt: Option<&Pattern>,
        completion: Option<&Pattern>,
        duration_ms: u64,
        interval_ms: u64,
        rng: &mut impl Rng,
    ) -> Self {
        let n = duration_ms.div_ceil(interval_ms) as usize;
        let rate = traffic
            .series(n, interval_ms, duration_ms, rng)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let mut lengths = |p: Option<&Pattern>| {
            p.map(|p| {
                p.series(n, interval_ms, duration_ms, rng)
                    .into_iter()
                    .map(length_of)
                    .collect::<Vec<u32>>()
            })
        };
        let prompt = lengths(prompt);
        let completion = lengths(completion);
        Self {
            interval_ms,
            duration_ms,
            rate,
            prompt,
            completion,
        }
    }

    /// The rate as pieces: point k over `[k·interval, min((k+1)·interval, duration))`.
    pub fn pieces(&self) -> Vec<RatePiece> {
        let iv = self.interval_ms as f64;
        let end = self.duration_ms as f64;
        self.rate
            .iter()
            .enumerate()
            .map(|(k, &r)| RatePiece {
                start_ms: k as f64 * iv,
                end_ms: ((k + 1) as f64 * iv).min(end),
                rate_per_s: r,
            })
            .collect()
    }

    /// Prompt and completion targets of the point that contains `t_ms`.
    pub fn targets_at(&self, t_ms: f64) -> (Option<u32>, Option<u32>) {
        let k = ((t_ms / self.interval_ms as f64) as usize).min(self.rate.len().saturating_sub(1));
        (
            self.prompt.as_ref().map(|p| p[k]),
            self.completion.as_ref().map(|c| c[k]),
        )
    }
}

/// Generates a `synthetic` workload: arrivals following the rate series, lengths from the point each falls in.
pub(crate) fn generate_synthetic(
    spec: &ValidatedSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let default = SyntheticSpec::default();
    let syn = s.synthetic.as_ref().unwrap_or(&default);
    syn.validate(s.duration_ms, s.interval_ms)?;
    let traffic = load(syn, Series::Traffic, &input)?.ok_or_else(|| SpecError {
        field: "synthetic.traffic_pattern".into(),
        message: "is required".into(),
    })?;
    let prompt = load(syn, Series::Prompt, &input)?;
    let completion = load(syn, Series::Completion, &input)?;
    let mut rng = rng_for(spec.seed(), streams::LENGTHS);
    let series = SyntheticSeries::build(
        &traffic,
        prompt.as_ref(),
        completion.as_ref(),
        s.duration_ms,
        s.interval_ms,
        &mut rng,
    );
    let pieces = series.pieces();
    let expected = expected_requests(&pieces);
    if expected > MAX_REQUESTS {
        let field = if syn.traffic_pattern.is_some() {
            "synthetic.traffic_pattern"
        } else {
            "synthetic.traffic_pattern_config"
        };
        return Err(SpecError {
            field: field.into(),
            message: format!(
                "gives about {expected:.0} requests over duration_ms; at most 10^9 are allowed"
            ),
        }
        .into());
    }
    let arrivals = Arrivals::new(
        s.traffic.arrival,
        s.traffic.burstiness,
        pieces.clone(),
        rng_for(spec.seed(), streams::ARRIVALS),
    );
    // A series without a pattern falls back to the fixed targets of `lengths` (if any).
    let (fin, fout) = (s.lengths.target_prompt_len, s.lengths.target_completion_len);
    let times = arrivals.map(|t| {
        let (tin, tout) = series.targets_at(t);
        (t as u64, tin.or(fin), tout.or(fout))
    });
    let mut summary = emit_matched(spec, input, sink, times)?;
    summary.target_rate = Some(pieces);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(5)
    }

    #[test]
    fn presets_have_the_reference_shapes() {
        let n = 600;
        // quick_rising: reaches the peak (1.5×mean) by N/20 and never falls.
        let q = Preset::QuickRising
            .pattern(6.0)
            .series(n, 1000, 600_000, &mut rng());
        assert!(q.windows(2).all(|w| w[1] >= w[0]));
        assert!((q[n / 20] - 9.0).abs() < 0.5, "{}", q[n / 20]);
        assert!((q[n - 1] - 9.0).abs() < 0.5);
        // slow_rising: a quarter sine over the whole trace: mean → 1.5×mean, monotone.
        let s = Preset::SlowRising
            .pattern(100.0)
            .series(n, 1000, 600_000, &mut rng());
        assert!(s.windows(2).all(|w| w[1] >= w[0]));
        assert!((s[0] - 100.0).abs() < 1.0 && (s[n - 1] - 150.0).abs() < 1.0);
        assert!((s[n / 2] - (100.0 + 50.0 * (std::f64::consts::PI / 4.0).sin())).abs() < 1.0);
        // slight: one cycle of ±10%.
        let sl = Preset::SlightFluctuation
            .pattern(1000.0)
            .series(n, 1000, 600_000, &mut rng());
        let (lo, hi) = min_max(&sl);
        assert!(
            (lo - 900.0).abs() < 1.0 && (hi - 1100.0).abs() < 1.0,
            "{lo} {hi}"
        );
        assert!((sl[n / 4] - 1100.0).abs() < 1.0);
        // severe: 12 cycles of ±50%: the first peak at N/48.
        let sv = Preset::SevereFluctuation
            .pattern(6.0)
            .series(4800, 1000, 4_800_000, &mut rng());
        assert!((sv[100] - 9.0).abs() < 0.5 && (sv[300] - 3.0).abs() < 0.5);
        assert_eq!(Preset::SevereFluctuation.pattern(6.0).cycles(1), 12.0);
    }

    fn min_max(v: &[f64]) -> (f64, f64) {
        v.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            })
    }

    #[test]
    fn reference_and_legacy_configs_parse() {
        let p = Pattern::from_json(&json!({"fluctuate": 2, "mean": 6, "noise": 0.1,
            "period_len_ms": 300000, "only_rise": false}))
        .unwrap();
        assert_eq!(p.amplitude, 2.0);
        assert_eq!(p.cycles(1_200_000), 4.0);
        let l = Pattern::from_json(&json!({"A": 15, "B": 309, "sigma": 0.1, "period": 1,
            "omega": null, "only_rise": false}))
        .unwrap();
        assert_eq!(
            (l.amplitude, l.mean, l.period),
            (15.0, 309.0, Period::Cycles(1.0))
        );
        let flat = Pattern::from_json(&json!({"mean": 3})).unwrap();
        assert_eq!(
            (flat.amplitude, flat.noise, flat.only_rise),
            (0.0, 0.0, false)
        );
    }

    #[test]
    fn bad_configs_name_the_key() {
        let cases = [
            (
                json!({"fluctuate": 2, "noise": 0.1, "period_len_ms": 1}),
                "mean: is required",
            ),
            (json!({"mean": 6, "noise": -1}), "noise: must be >= 0"),
            (json!({"mean": "6"}), "mean: must be a number, got a string"),
            (
                json!({"mean": 6, "fluctuate": 1}),
                "period_len_ms: is required when fluctuate is not 0",
            ),
            (
                json!({"mean": 6, "period_len_ms": 0}),
                "period_len_ms: must be > 0",
            ),
            (
                json!({"mean": 6, "only_rise": 1}),
                "only_rise: must be true or false, got a number",
            ),
            (json!({"mean": 6, "nosie": 1}), "nosie: unknown key"),
            (
                json!({"mean": 6, "sigma": 1}),
                "sigma: belongs to the older form",
            ),
            (
                json!({"B": 6, "A": 1, "period": 1, "omega": 2}),
                "omega: is not supported",
            ),
            (
                json!([1]),
                "a pattern config must be a JSON object, got an array",
            ),
        ];
        for (v, want) in cases {
            let e = Pattern::from_json(&v).unwrap_err().to_string();
            assert!(e.starts_with(want), "{v}: {e}");
        }
    }

    #[test]
    fn only_rise_lengths_work_and_clamp_to_one() {
        // W4: only_rise length patterns crash in the reference.
        let traffic = Preset::SlightFluctuation.pattern(5.0);
        let up = Preset::QuickRising.pattern(200.0);
        let neg = Pattern::from_json(&json!({"fluctuate": 50, "mean": 10, "period_len_ms": 10000}))
            .unwrap();
        let s = SyntheticSeries::build(&traffic, Some(&up), Some(&neg), 60_000, 1000, &mut rng());
        let p = s.prompt.as_ref().unwrap();
        assert_eq!(p.len(), 60);
        assert!(p.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*p.last().unwrap(), 300);
        let c = s.completion.as_ref().unwrap();
        assert!(c.iter().all(|&v| v >= 1) && c.contains(&1), "{c:?}");
        // Negative rates clamp to zero.
        let neg_rate = SyntheticSeries::build(&neg, None, None, 60_000, 1000, &mut rng());
        assert!(neg_rate.rate.iter().all(|&r| r >= 0.0) && neg_rate.rate.contains(&0.0));
    }

    #[test]
    fn grid_points_cover_the_interval_and_never_change_the_length() {
        // W2: 2000 ms points over 60 s: 30 points of 2 s each, the last ends at 60 s.
        let traffic =
            Pattern::from_json(&json!({"fluctuate": 4, "mean": 5, "period_len_ms": 120000}))
                .unwrap();
        let s = SyntheticSeries::build(&traffic, None, None, 60_000, 2000, &mut rng());
        let pieces = s.pieces();
        assert_eq!(pieces.len(), 30);
        assert_eq!((pieces[1].start_ms, pieces[1].end_ms), (2000.0, 4000.0));
        assert_eq!(pieces.last().unwrap().end_ms, 60_000.0);
        // Half a cycle over 60 s peaks at 30 s: point 15 of the 2 s grid (the reference would put it at 15 s).
        let peak = (0..30)
            .max_by(|&a, &b| s.rate[a].total_cmp(&s.rate[b]))
            .unwrap();
        assert_eq!(peak, 15);
        // A grid that does not divide the duration: the last point is cut at the duration.
        let s = SyntheticSeries::build(&traffic, None, None, 10_500, 1000, &mut rng());
        assert_eq!(s.pieces().len(), 11);
        assert_eq!(s.pieces()[10].end_ms, 10_500.0);
        assert_eq!(s.targets_at(10_499.0), (None, None));
    }

    #[test]
    fn spec_validation_names_dotted_fields() {
        let mut syn = SyntheticSpec::default();
        assert_eq!(
            syn.validate(60_000, 1000).unwrap_err().field,
            "synthetic.traffic_pattern"
        );
        syn.traffic_pattern = Some(Preset::QuickRising);
        syn.traffic_pattern_config = Some(json!("x.json"));
        assert_eq!(
            syn.validate(60_000, 1000).unwrap_err().field,
            "synthetic.traffic_pattern"
        );
        syn.traffic_pattern_config = None;
        syn.prompt_len_pattern_config = Some(json!({"mean": 10, "noise": -2}));
        let e = syn.validate(60_000, 1000).unwrap_err();
        assert_eq!(e.field, "synthetic.prompt_len_pattern_config.noise");
        assert_eq!(
            e.to_string(),
            "synthetic.prompt_len_pattern_config.noise must be >= 0"
        );
        syn.prompt_len_pattern_config = Some(json!(3));
        assert_eq!(
            syn.validate(60_000, 1000).unwrap_err().field,
            "synthetic.prompt_len_pattern_config"
        );
        syn.prompt_len_pattern_config = None;
        syn.traffic_pattern_mean = Some(0.0);
        assert_eq!(
            syn.validate(60_000, 1000).unwrap_err().field,
            "synthetic.traffic_pattern_mean"
        );
        syn.traffic_pattern_mean = Some(2.0);
        assert!(syn.validate(60_000, 1000).is_ok());
        syn.completion_len_pattern_config = Some(json!("c.json"));
        syn.prompt_len_pattern_config = Some(json!({"mean": 3}));
        assert_eq!(
            syn.files(),
            vec![("synthetic.completion_len_pattern_config", "c.json")]
        );
        assert_eq!(
            syn.validate(u64::MAX / 2, 1).unwrap_err().field,
            "interval_ms"
        );
    }
}
