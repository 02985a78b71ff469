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
use serde_json::Value;

pub mod model;
pub mod spec;

pub use self::model::*;
pub use self::spec::*;
use crate::domain::arrival::{Arrivals, RatePiece, expected_requests};
use crate::domain::emit::{GenerateError, GenerateInput, Summary, emit_matched, rng_for, streams};
use crate::domain::files::InputError;
use crate::domain::spec::{SpecError, ValidatedSpec};
use crate::domain::writer::EntrySink;

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
    syn: &SyntheticSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
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
    let field = if syn.traffic_pattern.is_some() {
        "synthetic.traffic_pattern"
    } else {
        "synthetic.traffic_pattern_config"
    };
    spec.limits()
        .check_requests(field, expected_requests(&pieces))?;
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
