//! `workload-generator plot`: plots and `report.json` for any workload file (ours, the reference's, or a legacy
//! one with `Prompt Length`/`Output Length` keys), like the reference's `plot_workload` but without its bugs.

use std::path::PathBuf;

use clap::Args;

use crate::domain::plot::{AnalyzeOptions, write_plots_and_report};
use crate::domain::report::{LengthTarget, RatePoint, Targets};
use crate::domain::tokenizer::{TokenCounter, TokenizerPolicy};

/// Flags of `plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The workload file (JSONL, or a JSON array of entries).
    pub workload: PathBuf,
    /// Where to write the SVGs and report.json (default: the workload's directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Targets from a generation spec (the body of POST /v1/workloads); the flags below override it.
    #[arg(long, value_name = "FILE.json")]
    pub spec: Option<PathBuf>,
    /// Target constant rate, requests per second.
    #[arg(long)]
    pub target_qps: Option<f64>,
    /// Target prompt length, tokens.
    #[arg(long)]
    pub target_prompt_len: Option<u32>,
    /// Target output length, tokens.
    #[arg(long)]
    pub target_completion_len: Option<u32>,
    /// Nominal duration, ms (default: the spec's, else the last timestamp rounded up to a bin).
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// Bin width, ms (widened automatically to keep at most 2,000 points per series).
    #[arg(long, default_value_t = 1000)]
    pub bin_ms: u64,
    /// LRU prefix-cache capacity, blocks.
    #[arg(long, default_value_t = 32_768)]
    pub cache_blocks: usize,
    /// Tokenizer for prefix reuse by 16-token blocks (tokenizes every prompt; default: 64-byte blocks).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Figure title (default: from the spec, else "Workload").
    #[arg(long)]
    pub title: Option<String>,
}

/// Runs `plot`.
pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let mut targets = match &args.spec {
        Some(path) => {
            let spec = crate::cli::read_spec(path)?.validate()?;
            Targets::from_spec(&spec, None)
        }
        None => Targets::default(),
    };
    if let Some(q) = args.target_qps {
        anyhow::ensure!(q.is_finite() && q >= 0.0, "--target-qps must be ≥ 0");
        targets.rate = Some(vec![RatePoint { t_ms: 0, qps: q }]);
    }
    if let Some(p) = args.target_prompt_len {
        targets.prompt_length = Some(LengthTarget::Fixed(p));
    }
    if let Some(o) = args.target_completion_len {
        targets.output_length = Some(LengthTarget::Fixed(o));
    }
    if let Some(d) = args.duration_ms {
        targets.duration_ms = Some(d);
    }
    if let Some(t) = args.title {
        targets.title = Some(t);
    }
    let tokenizer = args
        .tokenizer
        .as_deref()
        .map(|name| TokenCounter::resolve(name, &TokenizerPolicy::cli()))
        .transpose()?;
    let dir = match &args.output_dir {
        Some(d) => d.clone(),
        None => args
            .workload
            .parent()
            .map(|p| p.to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let options = AnalyzeOptions {
        name: args.workload.display().to_string(),
        bin_ms: args.bin_ms.max(1),
        lru_capacity_blocks: args.cache_blocks,
        tokenizer: tokenizer.as_ref(),
        ..Default::default()
    };
    let (report, plots) = write_plots_and_report(&args.workload, &dir, &options, &targets)?;
    for p in &plots {
        println!("wrote {}", dir.join(p).display());
    }
    println!(
        "wrote {}",
        dir.join(crate::domain::report::REPORT_FILE).display()
    );
    println!(
        "{} requests, {:.3} req/s over {} ms",
        report.requests, report.mean_rate_qps, report.window_ms
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}
