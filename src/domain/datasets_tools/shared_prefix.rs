//! Shared-prefix collections (reference §7.2, the Preble-style setup).
//!
//! Per config: `num_prefix` groups of `num_samples_per_prefix` prompts. Per group, a shared proportion
//! `s ~ Normal(shared_proportion, shared_proportion_std)` clamped to [0, 1] gives the prefix length
//! `P = round(s · prompt_length)` tokens; every prompt of the group starts with the same (byte-identical)
//! prefix text of `P` tokens. Per prompt, `L ~ Normal(prompt_length, prompt_length_std)` rounded, redrawn
//! below 1, and at least `P + 1` so that every prompt has a unique part. The whole prompt is counted and only
//! its unique part adjusted, so `token_count` is the exact, re-tokenized count.
//!
//! Differences from the reference: the prefix is truly shared (the reference extends it with different
//! filler per prompt), the sharing ratio is measured on token ids, `randomize_order` shuffles each config's
//! prompts (the reference ignores it in dataset mode), and everything is seeded.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Write;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::common::{
    DatasetToolError, Distribution, d_tokenizer, err, finite_at_least, normal_at_least, yes,
};
use super::text::{Exact, ExactText, TextError, TextSource, common_prefix};
use crate::domain::generate::rng_for;
use crate::domain::spec::SpecError;
use crate::domain::tokenizer::TokenCounter;
use crate::domain::writer::write_json_str;

/// RNG streams of this generator.
mod streams {
    pub(super) const PLAN: u64 = 101;
    pub(super) const ORDER: u64 = 102;
}

/// Largest mean prompt length accepted (tokens).
pub const MAX_PROMPT_LENGTH: f64 = 1_000_000.0;
/// Largest number of prompts of one collection.
pub const MAX_PROMPTS: u64 = 10_000_000;

/// One configuration: its groups and length distributions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrefixConfig {
    /// Mean prompt length, tokens (default 1000).
    #[serde(default = "d_prompt_length")]
    pub prompt_length: f64,
    /// Standard deviation of the prompt length (default 100).
    #[serde(default = "d_prompt_length_std")]
    pub prompt_length_std: f64,
    /// Mean share of the prompt that is the group's common prefix, 0..1 (default 0.9).
    #[serde(default = "d_shared_proportion")]
    pub shared_proportion: f64,
    /// Standard deviation of the shared proportion, drawn once per group (default 0.01).
    #[serde(default = "d_shared_proportion_std")]
    pub shared_proportion_std: f64,
    /// Prompts per group (default 200).
    #[serde(default = "d_samples")]
    pub num_samples_per_prefix: u32,
    /// Groups (default 10).
    #[serde(default = "d_num_prefix")]
    pub num_prefix: u32,
}

impl Default for PrefixConfig {
    fn default() -> Self {
        Self {
            prompt_length: d_prompt_length(),
            prompt_length_std: d_prompt_length_std(),
            shared_proportion: d_shared_proportion(),
            shared_proportion_std: d_shared_proportion_std(),
            num_samples_per_prefix: d_samples(),
            num_prefix: d_num_prefix(),
        }
    }
}

fn d_prompt_length() -> f64 {
    1000.0
}
fn d_prompt_length_std() -> f64 {
    100.0
}
fn d_shared_proportion() -> f64 {
    0.9
}
fn d_shared_proportion_std() -> f64 {
    0.01
}
fn d_samples() -> u32 {
    200
}
fn d_num_prefix() -> u32 {
    10
}
fn d_configs() -> Vec<PrefixConfig> {
    vec![PrefixConfig::default()]
}

/// A shared-prefix collection to generate.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixSpec {
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
    /// The configs, written one after another (default: one config with every default).
    #[serde(default = "d_configs")]
    pub configs: Vec<PrefixConfig>,
    /// Shuffle the prompts of each config.
    #[serde(default)]
    pub randomize_order: bool,
}

impl Default for SharedPrefixSpec {
    fn default() -> Self {
        Self {
            seed: None,
            tokenizer: d_tokenizer(),
            add_special_tokens: true,
            prompt_file: None,
            configs: d_configs(),
            randomize_order: false,
        }
    }
}

impl SharedPrefixSpec {
    /// Checks every value (errors name the dotted field, e.g. `configs.0.shared_proportion`); draws the seed
    /// when it is absent.
    pub fn validate(mut self) -> Result<Self, SpecError> {
        if self.tokenizer.trim().is_empty() {
            return Err(err("tokenizer", "must not be empty"));
        }
        if self.configs.is_empty() {
            return Err(err("configs", "must hold at least one config"));
        }
        let mut total: u64 = 0;
        for (i, c) in self.configs.iter().enumerate() {
            let f = |name: &str| format!("configs.{i}.{name}");
            finite_at_least(&f("prompt_length"), c.prompt_length, 1.0)?;
            if c.prompt_length > MAX_PROMPT_LENGTH {
                return Err(err(
                    f("prompt_length"),
                    format!("must be <= {MAX_PROMPT_LENGTH}"),
                ));
            }
            finite_at_least(&f("prompt_length_std"), c.prompt_length_std, 0.0)?;
            if !(c.shared_proportion.is_finite() && (0.0..=1.0).contains(&c.shared_proportion)) {
                return Err(err(f("shared_proportion"), "must be between 0 and 1"));
            }
            finite_at_least(&f("shared_proportion_std"), c.shared_proportion_std, 0.0)?;
            if c.num_samples_per_prefix == 0 {
                return Err(err(f("num_samples_per_prefix"), "must be >= 1"));
            }
            if c.num_prefix == 0 {
                return Err(err(f("num_prefix"), "must be >= 1"));
            }
            total += u64::from(c.num_samples_per_prefix) * u64::from(c.num_prefix);
        }
        if total > MAX_PROMPTS {
            return Err(err(
                "configs",
                format!("ask for {total} prompts in all; at most {MAX_PROMPTS}"),
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

/// Statistics of one config.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigReport {
    /// Index of the config (the `config_id` key).
    pub config_id: u32,
    /// Groups.
    pub groups: u32,
    /// Prompts.
    pub prompts: u64,
    /// Tokens of all prompts.
    pub total_tokens: u64,
    /// Tokens in the common prefix of each group, summed over its prompts.
    pub shared_tokens: u64,
    /// `shared_tokens / total_tokens`, measured on token ids (3 decimals).
    pub sharing_ratio: f64,
    /// Prompt lengths (tokens).
    pub prompt_tokens: Distribution,
    /// Common-prefix length of each group (tokens, on token ids).
    pub prefix_tokens: Distribution,
}

/// What [`generate`] produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SharedPrefixReport {
    /// The seed used.
    pub seed: u64,
    /// Prompts written.
    pub prompts: u64,
    /// Tokens of all prompts.
    pub total_tokens: u64,
    /// Tokens in the common prefixes (per prompt, summed).
    pub shared_tokens: u64,
    /// Achieved sharing ratio: tokens in the group's common prefix over total tokens (3 decimals). A group of
    /// one prompt shares nothing.
    pub sharing_ratio: f64,
    /// Per config.
    pub configs: Vec<ConfigReport>,
}

/// The planned lengths of one group.
struct GroupPlan {
    prefix_len: u32,
    lens: Vec<u32>,
    seed: u64,
}

/// One generated prompt.
struct Prompt {
    text: String,
    tokens: u32,
    group: u32,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        ((a as f64 / b as f64) * 1000.0).round() / 1000.0
    }
}

/// Generates the collection of a validated `spec` into `out`: one JSONL line
/// `{"prompt", "token_count", "prefix_group", "config_id"}` per prompt.
pub fn generate(
    spec: &SharedPrefixSpec,
    tok: &TokenCounter,
    source: &TextSource,
    out: &mut dyn Write,
) -> Result<SharedPrefixReport, DatasetToolError> {
    let ex = ExactText::new(tok, source, spec.add_special_tokens)?;
    let specials = ex.special_tokens();
    let seed = spec.seed();
    let mut plan_rng = rng_for(seed, streams::PLAN);
    let mut order_rng = rng_for(seed, streams::ORDER);
    let mut report = SharedPrefixReport {
        seed,
        prompts: 0,
        total_tokens: 0,
        shared_tokens: 0,
        sharing_ratio: 0.0,
        configs: Vec::with_capacity(spec.configs.len()),
    };
    let mut buf = Vec::with_capacity(1 << 16);
    for (ci, cfg) in spec.configs.iter().enumerate() {
        let plans = plan_config(cfg, specials, &mut plan_rng);
        let built: Vec<(Vec<Prompt>, u32)> = plans
            .par_iter()
            .enumerate()
            .map(|(g, plan)| build_group(&ex, g as u32, plan))
            .collect::<Result<_, TextError>>()?;
        let mut cr = ConfigReport {
            config_id: ci as u32,
            groups: cfg.num_prefix,
            prompts: 0,
            total_tokens: 0,
            shared_tokens: 0,
            sharing_ratio: 0.0,
            prompt_tokens: Distribution::default(),
            prefix_tokens: Distribution::of(built.iter().map(|(_, l)| u64::from(*l)).collect()),
        };
        let mut prompts: Vec<Prompt> = Vec::with_capacity(built.iter().map(|(p, _)| p.len()).sum());
        for (group, lcp) in built {
            cr.shared_tokens += u64::from(lcp) * group.len() as u64;
            prompts.extend(group);
        }
        if spec.randomize_order {
            prompts.shuffle(&mut order_rng);
        }
        cr.prompts = prompts.len() as u64;
        cr.total_tokens = prompts.iter().map(|p| u64::from(p.tokens)).sum();
        cr.sharing_ratio = ratio(cr.shared_tokens, cr.total_tokens);
        cr.prompt_tokens = Distribution::of(prompts.iter().map(|p| u64::from(p.tokens)).collect());
        for p in &prompts {
            buf.clear();
            buf.extend_from_slice(b"{\"prompt\": ");
            write_json_str(&mut buf, &p.text, false);
            buf.extend_from_slice(b", \"token_count\": ");
            buf.extend_from_slice(itoa::Buffer::new().format(p.tokens).as_bytes());
            buf.extend_from_slice(b", \"prefix_group\": ");
            buf.extend_from_slice(itoa::Buffer::new().format(p.group).as_bytes());
            buf.extend_from_slice(b", \"config_id\": ");
            buf.extend_from_slice(itoa::Buffer::new().format(ci).as_bytes());
            buf.extend_from_slice(b"}\n");
            out.write_all(&buf)?;
        }
        report.prompts += cr.prompts;
        report.total_tokens += cr.total_tokens;
        report.shared_tokens += cr.shared_tokens;
        report.configs.push(cr);
    }
    out.flush()?;
    report.sharing_ratio = ratio(report.shared_tokens, report.total_tokens);
    Ok(report)
}

/// Draws the lengths of every group of `cfg` (sequentially, so the plan depends on the seed only).
fn plan_config(cfg: &PrefixConfig, specials: u32, rng: &mut ChaCha8Rng) -> Vec<GroupPlan> {
    let proportion = Normal::new(cfg.shared_proportion, cfg.shared_proportion_std.max(0.0)).ok();
    (0..cfg.num_prefix)
        .map(|_| {
            let s = match &proportion {
                Some(n) if cfg.shared_proportion_std > 0.0 => n.sample(rng),
                _ => cfg.shared_proportion,
            }
            .clamp(0.0, 1.0);
            let prefix_len = ((s * cfg.prompt_length).round() as u32).max(specials);
            let lens = (0..cfg.num_samples_per_prefix)
                .map(|_| {
                    let l = normal_at_least(rng, cfg.prompt_length, cfg.prompt_length_std, 1.0);
                    (l as u32).max(prefix_len + 1)
                })
                .collect();
            GroupPlan {
                prefix_len,
                lens,
                seed: rng.random(),
            }
        })
        .collect()
}

/// Builds one group: the prefix, then every prompt (in parallel; each has its own RNG stream so the result
/// does not depend on scheduling). Returns the prompts and the common prefix length on token ids.
fn build_group(
    ex: &ExactText<'_>,
    group: u32,
    plan: &GroupPlan,
) -> Result<(Vec<Prompt>, u32), TextError> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let prefix = ex.head(if plan.prefix_len > ex.special_tokens() {
        ex.build("", None, plan.prefix_len, &mut rng)?
    } else {
        Exact {
            text: String::new(),
            ids: ex.encode("")?,
        }
    })?;
    let n = plan.lens.len() as u64;
    let make = |i: usize, attempt: u64| -> Result<Exact, TextError> {
        let mut r = ChaCha8Rng::seed_from_u64(plan.seed);
        r.set_stream(1 + i as u64 + attempt * n);
        ex.extend(&prefix, plan.lens[i], &mut r)
    };
    let mut exact: Vec<Exact> = (0..plan.lens.len())
        .into_par_iter()
        .map(|i| make(i, 0))
        .collect::<Result<_, _>>()?;
    // Unique parts must differ: rebuild (bounded) any prompt equal to an earlier one of the group.
    let hash = |t: &str| {
        let mut h = std::hash::DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    };
    let mut seen: HashSet<u64> = HashSet::with_capacity(exact.len());
    for (i, e) in exact.iter_mut().enumerate() {
        let mut attempt = 1;
        while seen.contains(&hash(&e.text)) && attempt <= 4 {
            *e = make(i, attempt)?;
            attempt += 1;
        }
        seen.insert(hash(&e.text));
    }
    let lcp = if exact.len() < 2 {
        0
    } else {
        let first = &exact[0].ids;
        exact[1..]
            .iter()
            .map(|e| common_prefix(first, &e.ids))
            .min()
            .unwrap_or(0) as u32
    };
    let prompts = exact
        .into_iter()
        .map(|e| Prompt {
            tokens: e.ids.len() as u32,
            text: e.text,
            group,
        })
        .collect();
    Ok((prompts, lcp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::parse_jsonl;

    fn small_spec(seed: u64) -> SharedPrefixSpec {
        SharedPrefixSpec {
            seed: Some(seed),
            configs: vec![
                PrefixConfig {
                    prompt_length: 200.0,
                    prompt_length_std: 20.0,
                    shared_proportion: 0.5,
                    shared_proportion_std: 0.05,
                    num_samples_per_prefix: 6,
                    num_prefix: 3,
                },
                PrefixConfig {
                    prompt_length: 60.0,
                    prompt_length_std: 0.0,
                    shared_proportion: 0.9,
                    shared_proportion_std: 0.0,
                    num_samples_per_prefix: 4,
                    num_prefix: 2,
                },
            ],
            ..SharedPrefixSpec::default()
        }
        .validate()
        .unwrap()
    }

    fn run(spec: &SharedPrefixSpec, tok: &TokenCounter) -> (Vec<u8>, SharedPrefixReport) {
        let src = TextSource::builtin(tok, spec.seed()).unwrap();
        let mut out = Vec::new();
        let r = generate(spec, tok, &src, &mut out).unwrap();
        (out, r)
    }

    fn common_bytes(a: &str, b: &str) -> usize {
        a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
    }

    #[test]
    fn exact_counts_shared_prefixes_and_determinism() {
        let tok = TokenCounter::embedded();
        let spec = small_spec(7);
        let (out, report) = run(&spec, &tok);
        let (again, _) = run(&spec, &tok);
        assert_eq!(out, again, "same seed, same bytes");
        let (other, _) = run(&small_spec(8), &tok);
        assert_ne!(out, other);
        // Loads as a plain collection; extra keys are ignored.
        let ds = parse_jsonl(&out[..], "sp.jsonl").unwrap();
        assert_eq!(ds.len(), 3 * 6 + 2 * 4);
        assert_eq!(report.prompts, 26);
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let mut total = 0u64;
        for v in &lines {
            let p = v["prompt"].as_str().unwrap();
            let n = tok.count(p, true).unwrap();
            assert_eq!(u64::from(n), v["token_count"].as_u64().unwrap(), "{p:?}");
            total += u64::from(n);
        }
        assert_eq!(report.total_tokens, total);
        // Byte-identical prefixes within a group, of (at least) the group's drawn token length.
        for (cid, groups, per) in [(0u64, 3u64, 6usize), (1, 2, 4)] {
            for g in 0..groups {
                let ps: Vec<&str> = lines
                    .iter()
                    .filter(|v| v["config_id"] == cid && v["prefix_group"] == g)
                    .map(|v| v["prompt"].as_str().unwrap())
                    .collect();
                assert_eq!(ps.len(), per);
                let common = ps[1..]
                    .iter()
                    .map(|p| common_bytes(ps[0], p))
                    .min()
                    .unwrap();
                let prefix = &ps[0][..common];
                let prefix_tokens = tok.count(prefix, true).unwrap() as f64;
                let want = if cid == 0 { 100.0 } else { 54.0 };
                assert!(
                    prefix_tokens >= want * 0.6,
                    "group {cid}/{g}: {prefix_tokens}"
                );
                let set: HashSet<&str> = ps.iter().copied().collect();
                assert_eq!(set.len(), ps.len(), "unique parts differ");
            }
        }
        // Config 1 has no randomness in its lengths: every prompt is 60 tokens, the prefix 54.
        let c1 = &report.configs[1];
        assert_eq!((c1.prompt_tokens.min, c1.prompt_tokens.max), (60, 60));
        assert!(c1.prefix_tokens.min >= 53, "{:?}", c1.prefix_tokens);
        assert!(
            (c1.sharing_ratio - 0.9).abs() < 0.03,
            "{}",
            c1.sharing_ratio
        );
        assert!((report.configs[0].sharing_ratio - 0.5).abs() < 0.1);
    }

    #[test]
    fn randomize_order_shuffles_within_configs() {
        let tok = TokenCounter::embedded();
        let mut spec = small_spec(7);
        let (plain, _) = run(&spec, &tok);
        spec.randomize_order = true;
        let (shuffled, _) = run(&spec, &tok);
        assert_ne!(plain, shuffled);
        let mut a: Vec<&[u8]> = plain.split(|&b| b == b'\n').collect();
        let mut b: Vec<&[u8]> = shuffled.split(|&b| b == b'\n').collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn planned_distributions_have_the_requested_means() {
        let cfg = PrefixConfig {
            prompt_length: 1000.0,
            prompt_length_std: 100.0,
            shared_proportion: 0.7,
            shared_proportion_std: 0.1,
            num_samples_per_prefix: 1,
            num_prefix: 10_000,
        };
        let mut rng = rng_for(1, streams::PLAN);
        let plans = plan_config(&cfg, 0, &mut rng);
        let mean_len = plans.iter().map(|p| f64::from(p.lens[0])).sum::<f64>() / 10_000.0;
        let mean_prefix = plans.iter().map(|p| f64::from(p.prefix_len)).sum::<f64>() / 10_000.0;
        assert!((mean_len - 1000.0).abs() < 50.0, "{mean_len}");
        assert!((mean_prefix - 700.0).abs() < 35.0, "{mean_prefix}");
    }

    #[test]
    fn validation_names_dotted_fields() {
        let bad = |json: &str| {
            serde_json::from_str::<SharedPrefixSpec>(json)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(r#"{"configs": [{}, {"shared_proportion": 1.5}]}"#),
            "configs.1.shared_proportion must be between 0 and 1"
        );
        assert_eq!(
            bad(r#"{"configs": [{"num_prefix": 0}]}"#),
            "configs.0.num_prefix must be >= 1"
        );
        assert_eq!(
            bad(r#"{"configs": []}"#),
            "configs must hold at least one config"
        );
        assert!(serde_json::from_str::<SharedPrefixSpec>(r#"{"nope": 1}"#).is_err());
        let v = serde_json::from_str::<SharedPrefixSpec>("{}")
            .unwrap()
            .validate()
            .unwrap();
        assert!(v.seed.is_some());
        assert_eq!(v.configs, vec![PrefixConfig::default()]);
    }
}
