//! `workload-generator dataset ...`: prepare prompt collections.
//!
//! - `convert --type sharegpt|aibrix-client|openai-chat --path FILE --output OUT [--format plain|sessioned]`
//! - `shared-prefix` and `multi-turn` with the reference generators' flag names, plus `--seed`,
//!   `--tokenizer`, `--prompt-file` (text source) and `--spec FILE.json` (the body of
//!   `POST /v1/datasets/generate`; flags override its values).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::domain::atomic;
use crate::domain::datasets_tools::convert::{
    ConvertSpec, OutputSchema, SourceFormat, convert_file,
};
use crate::domain::datasets_tools::multiturn::MultiTurnSpec;
use crate::domain::datasets_tools::shared_prefix::{PrefixConfig, SharedPrefixSpec};
use crate::domain::datasets_tools::{
    DatasetGenerateReport, DatasetGenerateSpec, DatasetToolError, generate_collection,
};
use crate::domain::files::PathResolver;
use crate::domain::tokenizer::{TokenCounter, TokenizerPolicy};

/// Flags of `dataset`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// What to prepare.
    #[command(subcommand)]
    pub command: DatasetCommand,
}

/// `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Convert ShareGPT, AIBrix client output or OpenAI chat JSONL into a prompt collection.
    Convert(ConvertArgs),
    /// Generate groups of prompts that share a prefix (exact token lengths).
    SharedPrefix(SharedPrefixArgs),
    /// Generate multi-turn sessions (exact token lengths).
    MultiTurn(MultiTurnArgs),
}

/// Input formats of `convert`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    /// ShareGPT JSON array (or JSON Lines of the same objects).
    Sharegpt,
    /// AIBrix client output JSONL (`trace` in the reference).
    #[value(alias = "trace")]
    AibrixClient,
    /// OpenAI-style `{"messages": [...]}` JSONL.
    OpenaiChat,
}

/// Output schemas of `convert`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaArg {
    /// `{"prompt", "completion"?}` per line.
    Plain,
    /// `{"session_id", "prompts", "completions"?}` per line.
    Sessioned,
}

/// Flags of `dataset convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input format.
    #[arg(long = "type", value_enum)]
    pub kind: TypeArg,
    /// Input file.
    #[arg(long)]
    pub path: PathBuf,
    /// Output collection (JSONL).
    #[arg(long, default_value = "output.jsonl")]
    pub output: PathBuf,
    /// Output schema (default: sessioned for sharegpt and openai-chat, plain for aibrix-client).
    #[arg(long, value_enum)]
    pub format: Option<SchemaArg>,
}

/// Flags of `dataset shared-prefix` (multi-config values are comma-separated; one value applies to all).
#[derive(Debug, Args)]
pub struct SharedPrefixArgs {
    /// A JSON spec (`{"kind": "shared_prefix", ...}` or the same without `kind`); flags override it.
    #[arg(long, value_name = "FILE.json")]
    pub spec: Option<PathBuf>,
    /// Number of configs (default 1, or the spec file's).
    #[arg(long)]
    pub num_configs: Option<usize>,
    /// Mean prompt length per config, tokens (default 1000).
    #[arg(long)]
    pub prompt_length: Option<String>,
    /// Standard deviation of the prompt length per config (default 100).
    #[arg(long)]
    pub prompt_length_std: Option<String>,
    /// Mean shared proportion per config, 0..1 (default 0.9).
    #[arg(long)]
    pub shared_proportion: Option<String>,
    /// Standard deviation of the shared proportion per config (default 0.01).
    #[arg(long)]
    pub shared_proportion_std: Option<String>,
    /// Prompts per group, per config (default 200).
    #[arg(long)]
    pub num_samples_per_prefix: Option<String>,
    /// Groups per config (default 10).
    #[arg(long)]
    pub num_prefix: Option<String>,
    /// Shuffle the prompts of each config.
    #[arg(long)]
    pub randomize_order: bool,
    #[command(flatten)]
    /// Common flags.
    pub common: CommonArgs,
}

/// Flags of `dataset multi-turn`.
#[derive(Debug, Args)]
pub struct MultiTurnArgs {
    /// A JSON spec (`{"kind": "multi_turn", ...}` or the same without `kind`); flags override it.
    #[arg(long, value_name = "FILE.json")]
    pub spec: Option<PathBuf>,
    /// Tokens of a system prefix shared by the first turn of every session (default 0).
    #[arg(long)]
    pub shared_prefix_len: Option<u32>,
    /// Mean turn length, tokens (default 100).
    #[arg(long)]
    pub prompt_length_mean: Option<f64>,
    /// Standard deviation of the turn length (default 10).
    #[arg(long)]
    pub prompt_length_std: Option<f64>,
    /// Mean turns per session (default 10).
    #[arg(long)]
    pub num_turns_mean: Option<f64>,
    /// Standard deviation of the turns per session (default 1).
    #[arg(long)]
    pub num_turns_std: Option<f64>,
    /// Mean number of sessions (default 10).
    #[arg(long)]
    pub num_sessions_mean: Option<f64>,
    /// Standard deviation of the number of sessions (default 10).
    #[arg(long)]
    pub num_sessions_std: Option<f64>,
    /// Generate completions with this mean length, tokens.
    #[arg(long)]
    pub completion_length_mean: Option<f64>,
    /// Standard deviation of the completion length (default 0).
    #[arg(long)]
    pub completion_length_std: Option<f64>,
    #[command(flatten)]
    /// Common flags.
    pub common: CommonArgs,
}

/// Flags shared by the generators.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Output collection (JSONL).
    #[arg(long, default_value = "output.jsonl")]
    pub output: PathBuf,
    /// Seed of every random choice (random when absent; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tokenizer that defines the token counts (default: the embedded Qwen2.5-Coder-7B-Instruct).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Cut text from this prompt collection instead of the built-in sample text.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Count tokens without special tokens (BOS/EOS).
    #[arg(long)]
    pub no_special_tokens: bool,
}

/// Runs `dataset ...`.
pub fn run(args: DatasetArgs) -> anyhow::Result<()> {
    match args.command {
        DatasetCommand::Convert(a) => run_convert(a),
        DatasetCommand::SharedPrefix(a) => {
            let spec = DatasetGenerateSpec::SharedPrefix(a.to_spec()?);
            run_generate(spec, &a.common.output)
        }
        DatasetCommand::MultiTurn(a) => {
            let spec = DatasetGenerateSpec::MultiTurn(a.to_spec()?);
            run_generate(spec, &a.common.output)
        }
    }
}

fn run_convert(a: ConvertArgs) -> anyhow::Result<()> {
    let spec = ConvertSpec {
        from: match a.kind {
            TypeArg::Sharegpt => SourceFormat::Sharegpt,
            TypeArg::AibrixClient => SourceFormat::AibrixClient,
            TypeArg::OpenaiChat => SourceFormat::OpenaiChat,
        },
        format: a.format.map(|f| match f {
            SchemaArg::Plain => OutputSchema::Plain,
            SchemaArg::Sessioned => OutputSchema::Sessioned,
        }),
    }
    .validate()?;
    let report = convert_file(&spec, &a.path, &a.output)?;
    println!(
        "wrote {} ({} {} records, {} prompts, {} completions, from {} records)",
        a.output.display(),
        report.written,
        match report.format {
            OutputSchema::Plain => "plain",
            OutputSchema::Sessioned => "sessioned",
        },
        report.prompts,
        report.completions,
        report.records
    );
    for (why, n) in &report.skipped {
        println!("skipped: {n} {why}");
    }
    if report.truncated {
        println!(
            "note: the input is truncated: read up to its last complete record; {} bytes of an incomplete record skipped",
            report.skipped_bytes
        );
    }
    Ok(())
}

fn run_generate(spec: DatasetGenerateSpec, output: &Path) -> anyhow::Result<()> {
    let spec = spec.validate()?;
    let tok = TokenCounter::resolve(spec.tokenizer(), &TokenizerPolicy::cli())?;
    let report = atomic::write_with(output, |w| {
        generate_collection(&spec, &tok, &PathResolver, w)
    })
    .map_err(|e: DatasetToolError| anyhow::anyhow!(e))?;
    match &report {
        DatasetGenerateReport::SharedPrefix(r) => println!(
            "wrote {} ({} prompts, {} tokens, sharing ratio {} on tokens, seed {})",
            output.display(),
            r.prompts,
            r.total_tokens,
            r.sharing_ratio,
            r.seed
        ),
        DatasetGenerateReport::MultiTurn(r) => println!(
            "wrote {} ({} sessions, {} turns, mean turn {} tokens, seed {})",
            output.display(),
            r.sessions,
            r.turns,
            r.prompt_tokens.mean,
            r.seed
        ),
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Reads a spec file that may or may not carry the `kind` tag.
fn read_spec<T: serde::de::DeserializeOwned>(path: &Path, kind: &str) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    if let Some(obj) = v.as_object_mut()
        && let Some(k) = obj.remove("kind")
        && k != kind
    {
        anyhow::bail!("{}: kind is {k}, expected \"{kind}\"", path.display());
    }
    serde_json::from_value(v).with_context(|| format!("{}: invalid {kind} spec", path.display()))
}

/// Splits a comma-separated list for `n` configs (one value applies to all).
fn list<T: std::str::FromStr + Clone>(flag: &str, s: &str, n: usize) -> anyhow::Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let items = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("--{flag}: '{}': {e}", x.trim()))
        })
        .collect::<anyhow::Result<Vec<T>>>()?;
    match items.len() {
        1 => Ok(std::iter::repeat_n(items.into_iter().next().expect("one"), n).collect()),
        len if len == n => Ok(items),
        len => anyhow::bail!("--{flag}: {len} values for {n} configs (--num-configs)"),
    }
}

impl SharedPrefixArgs {
    /// The spec: the file (if any) with the flags applied on top.
    pub fn to_spec(&self) -> anyhow::Result<SharedPrefixSpec> {
        let mut spec = match &self.spec {
            Some(p) => read_spec::<SharedPrefixSpec>(p, "shared_prefix")?,
            None => SharedPrefixSpec::default(),
        };
        let n = self.num_configs.unwrap_or(spec.configs.len()).max(1);
        if n != spec.configs.len() {
            let last = spec.configs.last().cloned().unwrap_or_default();
            spec.configs.resize(n, last);
        }
        fn apply<T: std::str::FromStr + Copy>(
            configs: &mut [PrefixConfig],
            flag: &str,
            value: &Option<String>,
            set: impl Fn(&mut PrefixConfig, T),
        ) -> anyhow::Result<()>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(s) = value {
                let values = list::<T>(flag, s, configs.len())?;
                for (c, v) in configs.iter_mut().zip(values) {
                    set(c, v);
                }
            }
            Ok(())
        }
        let c = &mut spec.configs;
        apply(c, "prompt-length", &self.prompt_length, |c, v: f64| {
            c.prompt_length = v
        })?;
        apply(
            c,
            "prompt-length-std",
            &self.prompt_length_std,
            |c, v: f64| c.prompt_length_std = v,
        )?;
        apply(
            c,
            "shared-proportion",
            &self.shared_proportion,
            |c, v: f64| c.shared_proportion = v,
        )?;
        apply(
            c,
            "shared-proportion-std",
            &self.shared_proportion_std,
            |c, v: f64| c.shared_proportion_std = v,
        )?;
        apply(
            c,
            "num-samples-per-prefix",
            &self.num_samples_per_prefix,
            |c, v: u32| c.num_samples_per_prefix = v,
        )?;
        apply(c, "num-prefix", &self.num_prefix, |c, v: u32| {
            c.num_prefix = v
        })?;
        if self.randomize_order {
            spec.randomize_order = true;
        }
        let common = &self.common;
        if let Some(s) = common.seed {
            spec.seed = Some(s);
        }
        if let Some(t) = &common.tokenizer {
            spec.tokenizer = t.clone();
        }
        if let Some(p) = &common.prompt_file {
            spec.prompt_file = Some(p.display().to_string());
        }
        if common.no_special_tokens {
            spec.add_special_tokens = false;
        }
        Ok(spec)
    }
}

impl MultiTurnArgs {
    /// The spec: the file (if any) with the flags applied on top.
    pub fn to_spec(&self) -> anyhow::Result<MultiTurnSpec> {
        let mut spec = match &self.spec {
            Some(p) => read_spec::<MultiTurnSpec>(p, "multi_turn")?,
            None => MultiTurnSpec::default(),
        };
        if let Some(v) = self.shared_prefix_len {
            spec.shared_prefix_len = v;
        }
        for (flag, target) in [
            (self.prompt_length_mean, &mut spec.prompt_length_mean),
            (self.prompt_length_std, &mut spec.prompt_length_std),
            (self.num_turns_mean, &mut spec.num_turns_mean),
            (self.num_turns_std, &mut spec.num_turns_std),
            (self.num_sessions_mean, &mut spec.num_sessions_mean),
            (self.num_sessions_std, &mut spec.num_sessions_std),
            (self.completion_length_std, &mut spec.completion_length_std),
        ] {
            if let Some(v) = flag {
                *target = v;
            }
        }
        if let Some(v) = self.completion_length_mean {
            spec.completion_length_mean = Some(v);
        }
        let common = &self.common;
        if let Some(s) = common.seed {
            spec.seed = Some(s);
        }
        if let Some(t) = &common.tokenizer {
            spec.tokenizer = t.clone();
        }
        if let Some(p) = &common.prompt_file {
            spec.prompt_file = Some(p.display().to_string());
        }
        if common.no_special_tokens {
            spec.add_special_tokens = false;
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: DatasetCommand,
    }

    #[test]
    fn shared_prefix_flags_per_config() {
        let t = T::parse_from([
            "x",
            "shared-prefix",
            "--num-configs",
            "2",
            "--prompt-length",
            "500,2000",
            "--shared-proportion",
            "0.5",
            "--num-prefix",
            "3,4",
            "--seed",
            "9",
        ]);
        let DatasetCommand::SharedPrefix(a) = t.cmd else {
            panic!("shared-prefix")
        };
        let s = a.to_spec().unwrap().validate().unwrap();
        assert_eq!(s.configs.len(), 2);
        assert_eq!(s.configs[1].prompt_length, 2000.0);
        assert_eq!(s.configs[1].shared_proportion, 0.5);
        assert_eq!(s.configs[0].num_prefix, 3);
        assert_eq!(s.configs[0].num_samples_per_prefix, 200);
        assert_eq!(s.seed, Some(9));
        let t = T::parse_from([
            "x",
            "shared-prefix",
            "--num-configs",
            "3",
            "--num-prefix",
            "1,2",
        ]);
        let DatasetCommand::SharedPrefix(a) = t.cmd else {
            panic!("shared-prefix")
        };
        assert!(
            a.to_spec()
                .unwrap_err()
                .to_string()
                .contains("2 values for 3 configs")
        );
    }

    #[test]
    fn multi_turn_flags() {
        let t = T::parse_from([
            "x",
            "multi-turn",
            "--shared-prefix-len",
            "64",
            "--num-turns-mean",
            "3",
            "--completion-length-mean",
            "20",
            "--output",
            "o.jsonl",
        ]);
        let DatasetCommand::MultiTurn(a) = t.cmd else {
            panic!("multi-turn")
        };
        let s = a.to_spec().unwrap();
        assert_eq!(s.shared_prefix_len, 64);
        assert_eq!(s.num_turns_mean, 3.0);
        assert_eq!(s.num_sessions_std, 10.0);
        assert_eq!(s.completion_length_mean, Some(20.0));
        assert_eq!(a.common.output, PathBuf::from("o.jsonl"));
    }
}
