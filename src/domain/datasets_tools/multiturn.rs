//! Multi-turn collections (reference §7.3).
//!
//! The number of sessions is `round(Normal(num_sessions_mean, num_sessions_std))`, at least 1; each session
//! has `round(Normal(num_turns_mean, num_turns_std))` turns, at least 1 (the reference truncates with `int()`,
//! which lowers the mean by about a half; rounding keeps it). Turn lengths follow the reference's Pareto
//! sampler: with `r = std / mean`, `α = 2 + 1/r²` and `x_m = mean·(α−1)/α`, a draw is `x_m · U^(−1/α)`, whose
//! mean is exactly `mean` (the reference draws from 100,000 pre-drawn values of the same law). Lengths are
//! rounded, at least 1. With `shared_prefix_len > 0` the first turn of every session starts with the same
//! system prefix of that many tokens (its total length is prefix + drawn length). Optional synthetic
//! completions have lengths `round(Normal(completion_length_mean, completion_length_std))`, at least 1.
//! Every prompt and completion has the exact token count, re-tokenized.

use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::common::{
    DatasetToolError, Distribution, OutId, d_tokenizer, err, finite_at_least, normal_at_least,
    session_line, yes,
};
use super::text::{Exact, ExactText, Head, TextError, TextSource};
use crate::domain::generate::rng_for;
use crate::domain::spec::SpecError;
use crate::domain::tokenizer::TokenCounter;

/// RNG streams of this generator.
mod streams {
    pub(super) const PLAN: u64 = 201;
    pub(super) const PREFIX: u64 = 202;
}

/// Largest mean of a length or count accepted.
pub const MAX_MEAN: f64 = 1_000_000.0;
/// Largest number of turns of one collection (expected value, `sessions · turns`).
pub const MAX_TURNS: f64 = 10_000_000.0;

/// A multi-turn collection to generate (defaults are the reference's).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultiTurnSpec {
    /// Seed of every random choice (drawn and recorded by `validate` when absent).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Tokenizer that defines the token counts (default: the embedded Qwen2.5-Coder-7B-Instruct).
    #[serde(default = "d_tokenizer")]
    pub tokenizer: String,
    /// Count special tokens (BOS) as the collection loader does (default true).
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
    /// Prompt collection whose text is cut to length (default: the built-in sample text).
    #[serde(default)]
    pub prompt_file: Option<String>,
    /// Tokens of the system prefix shared by the first turn of every session (default 0: none).
    #[serde(default)]
    pub shared_prefix_len: u32,
    /// Mean turn length, tokens (default 100).
    #[serde(default = "d_prompt_mean")]
    pub prompt_length_mean: f64,
    /// Standard deviation of the turn length (default 10).
    #[serde(default = "d_prompt_std")]
    pub prompt_length_std: f64,
    /// Mean turns per session (default 10).
    #[serde(default = "d_turns_mean")]
    pub num_turns_mean: f64,
    /// Standard deviation of turns per session (default 1).
    #[serde(default = "d_turns_std")]
    pub num_turns_std: f64,
    /// Mean number of sessions (default 10).
    #[serde(default = "d_sessions")]
    pub num_sessions_mean: f64,
    /// Standard deviation of the number of sessions (default 10, as the reference).
    #[serde(default = "d_sessions")]
    pub num_sessions_std: f64,
    /// Mean completion length, tokens; absent: no completions.
    #[serde(default)]
    pub completion_length_mean: Option<f64>,
    /// Standard deviation of the completion length (default 0).
    #[serde(default)]
    pub completion_length_std: f64,
}

fn d_prompt_mean() -> f64 {
    100.0
}
fn d_prompt_std() -> f64 {
    10.0
}
fn d_turns_mean() -> f64 {
    10.0
}
fn d_turns_std() -> f64 {
    1.0
}
fn d_sessions() -> f64 {
    10.0
}

impl Default for MultiTurnSpec {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults deserialize")
    }
}

impl MultiTurnSpec {
    /// Checks every value (errors name the field); draws the seed when it is absent.
    pub fn validate(mut self) -> Result<Self, SpecError> {
        if self.tokenizer.trim().is_empty() {
            return Err(err("tokenizer", "must not be empty"));
        }
        for (name, v, min) in [
            ("prompt_length_mean", self.prompt_length_mean, 1.0),
            ("prompt_length_std", self.prompt_length_std, 0.0),
            ("num_turns_mean", self.num_turns_mean, 1.0),
            ("num_turns_std", self.num_turns_std, 0.0),
            ("num_sessions_mean", self.num_sessions_mean, 1.0),
            ("num_sessions_std", self.num_sessions_std, 0.0),
            ("completion_length_std", self.completion_length_std, 0.0),
        ] {
            finite_at_least(name, v, min)?;
            if v > MAX_MEAN {
                return Err(err(name, format!("must be <= {MAX_MEAN}")));
            }
        }
        if let Some(c) = self.completion_length_mean {
            finite_at_least("completion_length_mean", c, 1.0)?;
            if c > MAX_MEAN {
                return Err(err(
                    "completion_length_mean",
                    format!("must be <= {MAX_MEAN}"),
                ));
            }
        }
        if f64::from(self.shared_prefix_len) > MAX_MEAN {
            return Err(err("shared_prefix_len", format!("must be <= {MAX_MEAN}")));
        }
        let expected = (self.num_sessions_mean + 3.0 * self.num_sessions_std)
            * (self.num_turns_mean + 3.0 * self.num_turns_std);
        if expected > MAX_TURNS {
            return Err(err(
                "num_sessions_mean",
                format!("sessions × turns could reach {expected:.0}; at most {MAX_TURNS} turns"),
            ));
        }
        self.seed = Some(self.seed.unwrap_or_else(rand::random));
        Ok(self)
    }

    /// The seed (0 before `validate`).
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }
}

/// The reference's turn-length law: Pareto with the given mean and `α = 2 + mean²/std²`.
#[derive(Debug, Clone, Copy)]
pub struct ParetoLengths {
    alpha: f64,
    x_m: f64,
    mean: f64,
}

impl ParetoLengths {
    /// The law of mean `mean` and nominal standard deviation `std` (`std = 0`: always `mean`).
    pub fn new(mean: f64, std: f64) -> Self {
        if std <= 0.0 {
            return Self {
                alpha: f64::INFINITY,
                x_m: mean,
                mean,
            };
        }
        let r = std / mean;
        let alpha = 2.0 + 1.0 / (r * r);
        Self {
            alpha,
            x_m: mean * (alpha - 1.0) / alpha,
            mean,
        }
    }

    /// One draw (a real number ≥ `x_m`).
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        if self.alpha.is_infinite() {
            return self.mean;
        }
        let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        self.x_m * u.powf(-1.0 / self.alpha)
    }
}

/// What [`generate`] produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MultiTurnReport {
    /// The seed used.
    pub seed: u64,
    /// Sessions written.
    pub sessions: u64,
    /// Turns written.
    pub turns: u64,
    /// Turns per session.
    pub turns_per_session: Distribution,
    /// Prompt lengths (tokens, the shared prefix included on first turns).
    pub prompt_tokens: Distribution,
    /// Completion lengths (tokens), when completions were generated.
    pub completion_tokens: Option<Distribution>,
}

/// The planned lengths of one session.
struct SessionPlan {
    prompts: Vec<u32>,
    completions: Vec<u32>,
    seed: u64,
}

/// Generates the collection of a validated `spec` into `out`: one sessioned JSONL line per session.
pub fn generate(
    spec: &MultiTurnSpec,
    tok: &TokenCounter,
    source: &TextSource,
    out: &mut dyn Write,
) -> Result<MultiTurnReport, DatasetToolError> {
    let ex = ExactText::new(tok, source, spec.add_special_tokens)?;
    let seed = spec.seed();
    let mut rng = rng_for(seed, streams::PLAN);
    let plans = plan(spec, &mut rng);
    let prefix_len = spec.shared_prefix_len.max(ex.special_tokens());
    let prefix = ex.head(if spec.shared_prefix_len > ex.special_tokens() {
        ex.build("", None, prefix_len, &mut rng_for(seed, streams::PREFIX))?
    } else {
        Exact {
            text: String::new(),
            ids: Vec::new(),
        }
    })?;
    let mut turns_per_session = Vec::with_capacity(plans.len());
    let mut prompt_tokens = Vec::new();
    let mut completion_tokens = Vec::new();
    let mut buf = Vec::with_capacity(1 << 16);
    // Sessions are built in parallel in chunks and written in order.
    for (ci, chunk) in plans.chunks(256).enumerate() {
        let built: Vec<(Vec<String>, Vec<String>)> = chunk
            .par_iter()
            .map(|p| build_session(&ex, p, &prefix))
            .collect::<Result<_, TextError>>()?;
        for (offset, ((prompts, completions), p)) in built.iter().zip(chunk).enumerate() {
            let index = ci * 256 + offset;
            buf.clear();
            session_line(&mut buf, OutId::Int(index as u64), prompts, completions);
            out.write_all(&buf)?;
            turns_per_session.push(prompts.len() as u64);
            prompt_tokens.extend(p.prompts.iter().enumerate().map(|(i, &l)| {
                u64::from(if i == 0 && !prefix.exact().text.is_empty() {
                    l + prefix_len
                } else {
                    l
                })
            }));
            completion_tokens.extend(p.completions.iter().map(|&l| u64::from(l)));
        }
    }
    out.flush()?;
    Ok(MultiTurnReport {
        seed,
        sessions: plans.len() as u64,
        turns: prompt_tokens.len() as u64,
        turns_per_session: Distribution::of(turns_per_session),
        prompt_tokens: Distribution::of(prompt_tokens),
        completion_tokens: spec
            .completion_length_mean
            .map(|_| Distribution::of(completion_tokens)),
    })
}

/// Draws every count and length (sequentially, so the plan depends on the seed only).
fn plan(spec: &MultiTurnSpec, rng: &mut ChaCha8Rng) -> Vec<SessionPlan> {
    let sessions =
        normal_at_least(rng, spec.num_sessions_mean, spec.num_sessions_std, 1.0) as usize;
    let lengths = ParetoLengths::new(spec.prompt_length_mean, spec.prompt_length_std);
    (0..sessions)
        .map(|_| {
            let turns = normal_at_least(rng, spec.num_turns_mean, spec.num_turns_std, 1.0) as usize;
            let prompts = (0..turns)
                .map(|_| (lengths.sample(rng).round() as u32).max(1))
                .collect();
            let completions = match spec.completion_length_mean {
                Some(m) => (0..turns)
                    .map(|_| normal_at_least(rng, m, spec.completion_length_std, 1.0) as u32)
                    .collect(),
                None => Vec::new(),
            };
            SessionPlan {
                prompts,
                completions,
                seed: rng.random(),
            }
        })
        .collect()
}

fn build_session(
    ex: &ExactText<'_>,
    plan: &SessionPlan,
    prefix: &Head,
) -> Result<(Vec<String>, Vec<String>), TextError> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let mut prompts = Vec::with_capacity(plan.prompts.len());
    for (i, &len) in plan.prompts.iter().enumerate() {
        let text = if i == 0 && !prefix.exact().text.is_empty() {
            ex.extend(prefix, prefix.exact().ids.len() as u32 + len, &mut rng)?
        } else {
            ex.build("", None, len.max(ex.special_tokens()), &mut rng)?
        };
        prompts.push(text.text);
    }
    let completions = plan
        .completions
        .iter()
        .map(|&len| {
            ex.build("", None, len.max(ex.special_tokens()), &mut rng)
                .map(|e| e.text)
        })
        .collect::<Result<_, _>>()?;
    Ok((prompts, completions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::{Schema, parse_jsonl};

    fn spec(seed: u64) -> MultiTurnSpec {
        MultiTurnSpec {
            seed: Some(seed),
            shared_prefix_len: 40,
            prompt_length_mean: 50.0,
            prompt_length_std: 20.0,
            num_turns_mean: 4.0,
            num_turns_std: 1.0,
            num_sessions_mean: 6.0,
            num_sessions_std: 2.0,
            completion_length_mean: Some(30.0),
            completion_length_std: 5.0,
            ..MultiTurnSpec::default()
        }
        .validate()
        .unwrap()
    }

    fn run(spec: &MultiTurnSpec, tok: &TokenCounter) -> (Vec<u8>, MultiTurnReport) {
        let src = TextSource::builtin(tok, 11).unwrap();
        let mut out = Vec::new();
        let r = generate(spec, tok, &src, &mut out).unwrap();
        (out, r)
    }

    #[test]
    fn sessions_have_exact_lengths_prefix_and_completions() {
        let tok = TokenCounter::embedded();
        let s = spec(3);
        let (out, report) = run(&s, &tok);
        assert_eq!(out, run(&s, &tok).0, "deterministic");
        assert_ne!(out, run(&spec(4), &tok).0);
        let ds = parse_jsonl(&out[..], "mt.jsonl").unwrap();
        assert_eq!(ds.schema, Schema::Sessioned);
        assert_eq!(ds.sessions.len() as u64, report.sessions);
        assert_eq!(ds.len() as u64, report.turns);
        // Re-tokenize: the plan's lengths are the texts' true counts.
        let mut rng = rng_for(3, streams::PLAN);
        let plans = plan(&s, &mut rng);
        let first_turns: Vec<&str> = ds
            .sessions
            .iter()
            .map(|x| ds.prompts[x.first_turn as usize].as_str())
            .collect();
        let common = first_turns[1..]
            .iter()
            .map(|p| {
                p.bytes()
                    .zip(first_turns[0].bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .min()
            .unwrap();
        assert!(tok.count(&first_turns[0][..common], true).unwrap() >= 40);
        for (sess, p) in ds.sessions.iter().zip(&plans) {
            for (t, &len) in p.prompts.iter().enumerate() {
                let i = sess.first_turn as usize + t;
                let want = if t == 0 { len + 40 } else { len };
                assert_eq!(tok.count(&ds.prompts[i], true).unwrap(), want);
                let c = ds.completions.get(i).unwrap();
                assert_eq!(tok.count(c, true).unwrap(), p.completions[t]);
            }
        }
    }

    #[test]
    fn distributions_have_the_requested_means() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (mean, std) in [(100.0, 10.0), (500.0, 250.0), (2000.0, 2000.0)] {
            let p = ParetoLengths::new(mean, std);
            let m = (0..10_000).map(|_| p.sample(&mut rng)).sum::<f64>() / 10_000.0;
            assert!((m - mean).abs() < mean * 0.05, "{mean}/{std}: {m}");
        }
        let s = MultiTurnSpec {
            seed: Some(2),
            num_sessions_mean: 10_000.0,
            num_sessions_std: 10.0,
            num_turns_mean: 10.0,
            num_turns_std: 1.0,
            prompt_length_mean: 100.0,
            prompt_length_std: 10.0,
            ..MultiTurnSpec::default()
        };
        let plans = plan(&s, &mut rng_for(2, streams::PLAN));
        assert!((plans.len() as f64 - 10_000.0).abs() < 500.0);
        let turns: Vec<usize> = plans.iter().map(|p| p.prompts.len()).collect();
        let mean_turns = turns.iter().sum::<usize>() as f64 / turns.len() as f64;
        assert!((mean_turns - 10.0).abs() < 0.5, "{mean_turns}");
        let lens: Vec<u32> = plans.iter().flat_map(|p| p.prompts.clone()).collect();
        let mean_len = lens.iter().map(|&l| f64::from(l)).sum::<f64>() / lens.len() as f64;
        assert!((mean_len - 100.0).abs() < 5.0, "{mean_len}");
        assert!(plans.iter().all(|p| p.completions.is_empty()));
        let s = MultiTurnSpec {
            completion_length_mean: Some(64.0),
            completion_length_std: 16.0,
            num_sessions_mean: 1000.0,
            num_sessions_std: 0.0,
            ..s
        };
        let plans = plan(&s, &mut rng_for(3, streams::PLAN));
        let c: Vec<u32> = plans.iter().flat_map(|p| p.completions.clone()).collect();
        assert!(c.len() >= 9_000, "{}", c.len());
        let mean_c = c.iter().map(|&l| f64::from(l)).sum::<f64>() / c.len() as f64;
        assert!((mean_c - 64.0).abs() < 3.2, "{mean_c}");
    }

    #[test]
    fn validation_names_fields() {
        let e = MultiTurnSpec {
            num_turns_mean: 0.0,
            ..MultiTurnSpec::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.to_string(), "num_turns_mean must be a number >= 1");
        let e = MultiTurnSpec {
            completion_length_mean: Some(f64::NAN),
            ..MultiTurnSpec::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "completion_length_mean");
    }
}
