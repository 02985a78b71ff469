//! The sine pattern itself: the reference presets, the JSON config (reference and legacy keys) and its
//! evaluation, plus the rate helpers shared by the rate-driven shapes.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::domain::json::kind;

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

pub(super) const REFERENCE_KEYS: [&str; 5] =
    ["fluctuate", "mean", "noise", "period_len_ms", "only_rise"];
pub(super) const LEGACY_KEYS: [&str; 6] = ["A", "B", "sigma", "period", "omega", "only_rise"];

pub(super) fn number(
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
            format!("must be a number, got {}", kind(other)),
        )),
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
                message: format!("a pattern config must be a JSON object, got {}", kind(v)),
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
                    format!("must be true or false, got {}", kind(other)),
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
