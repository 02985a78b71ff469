//! `trace`: tools for traces (`trace anonymize`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::domain::tokenizer::{DEFAULT_TOKENIZER, NEVER, TokenCounter, TokenizerPolicy};
use crate::domain::utility::anonymize::{AnonymizeOptions, anonymize};

/// `trace` subcommands.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub command: TraceCommand,
}

/// What `trace` does.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Turn a workload with real prompts into a Mooncake-style trace (timestamps, lengths, hash_ids of token
    /// blocks) that holds no text, so production traffic can be shared and replayed.
    Anonymize(AnonymizeArgs),
}

/// `trace anonymize` flags.
#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// The workload (JSONL or JSON, ours or the reference's).
    #[arg(long)]
    pub input: PathBuf,
    /// The trace to write (JSONL; written whole or not at all).
    #[arg(long)]
    pub output: PathBuf,
    /// Tokens per block (Mooncake: 512).
    #[arg(long, default_value_t = 512)]
    pub block_size: u32,
    /// Tokenizer name or tokenizer.json path (default: the embedded Qwen2.5 tokenizer).
    #[arg(long, default_value = DEFAULT_TOKENIZER)]
    pub tokenizer: String,
    /// Environment variable holding the hash key (any text); default: 32 random bytes, never written.
    #[arg(long)]
    pub key_env: Option<String>,
}

/// Runs `trace`.
pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    match args.command {
        TraceCommand::Anonymize(a) => run_anonymize(a),
    }
}

fn run_anonymize(a: AnonymizeArgs) -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    anyhow::ensure!(a.block_size >= 1, "--block-size must be at least 1");
    let key: [u8; 32] = match &a.key_env {
        Some(var) => {
            let v = std::env::var(var).with_context(|| format!("--key-env {var}: not set"))?;
            Sha256::digest(v.as_bytes()).into()
        }
        None => rand::random(),
    };
    let tok = TokenCounter::resolve(&a.tokenizer, &TokenizerPolicy::cli())?;
    let name = a.input.display().to_string();
    let src = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&a.input).with_context(|| format!("{name}: cannot open"))?,
    );
    let opts = AnonymizeOptions {
        block_size: a.block_size,
        key,
    };
    let report = crate::domain::atomic::write_with(&a.output, |out| {
        anonymize(&name, src, &tok, &opts, out, NEVER).map_err(anyhow::Error::from)
    })?;
    println!(
        "wrote {} ({} requests, {} prompt tokens, {} blocks of {} tokens, {} distinct)",
        a.output.display(),
        report.requests,
        report.prompt_tokens,
        report.blocks,
        a.block_size,
        report.distinct_blocks
    );
    Ok(())
}
