//! `workload-generator replay`: send a workload to an OpenAI-compatible server at its timestamps and write
//! per-request results and a report; `replay merge DIR...` combines the directories of several shards.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::replay::client::{Endpoint, Target};
use crate::replay::plan::{PlanOptions, Shard, plan_file};
use crate::replay::report::Slo;
use crate::replay::run::{LatePolicy, ReplayOptions, TargetMetrics, replay};

/// Flags of `replay`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReplayArgs {
    /// `merge` instead of a replay.
    #[command(subcommand)]
    pub action: Option<ReplayAction>,
    /// The replay itself.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands of `replay`.
#[derive(Debug, Subcommand)]
pub enum ReplayAction {
    /// Combine the output directories of several shards into one results file, summary and report.
    Merge {
        /// Replay output directories (each with results.jsonl and summary.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged files.
        #[arg(long, default_value = "replay-merged")]
        output_dir: PathBuf,
    },
}

/// Flags of a replay.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workload file (JSONL or a JSON array; ours, the reference's or legacy keys).
    #[arg(long, required = true)]
    pub workload: Option<PathBuf>,
    /// The server, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted).
    #[arg(long, required = true)]
    pub base_url: Option<String>,
    /// `model` of every request.
    #[arg(long, required = true)]
    pub model: Option<String>,
    /// The API to call.
    #[arg(long, value_enum, default_value_t = Endpoint::Completions)]
    pub endpoint: Endpoint,
    /// Bearer token sent as `Authorization: Bearer ...`.
    #[arg(long, env = "WG_REPLAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Extra header `Name: value` (repeatable), e.g. AIBrix routing headers.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Factor for every timestamp (0.5 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Replay only requests due in the first MS milliseconds (after --time-scale).
    #[arg(long, value_name = "MS")]
    pub duration: Option<u64>,
    /// At most N requests in flight; a send that waits for a slot is counted in the report.
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Stream answers (SSE) and request usage in the last chunk (default).
    #[arg(long, overrides_with = "no_stream")]
    pub stream: bool,
    /// Do not stream (no TTFT, TPOT or inter-token gaps).
    #[arg(long)]
    pub no_stream: bool,
    /// Pin the output length with `ignore_eos: true` and `min_tokens` (vLLM extensions).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Minimum time between a turn's answer and the session's next turn, ms.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub think_time: u64,
    /// A turn whose previous turn finished after it was due: `send` it then (later turns keep their
    /// times), or `shift` the rest of the session by the delay.
    #[arg(long, value_enum, default_value_t = LatePolicy::Send)]
    pub late_turns: LatePolicy,
    /// Goodput objectives, e.g. ttft=2s,tpot=100ms (also e2e=...).
    #[arg(long, default_value = "")]
    pub slo: String,
    /// Window of the planned-vs-sent counts in the report, ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub window: u64,
    /// Per-request timeout, seconds (0 = none).
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Replay one share of the workload: whole sessions by a hash of the session id, other requests by
    /// their index (e.g. 0/4; `JOB_COMPLETION_INDEX` of an Indexed Job is the i).
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// Where to write results.jsonl, summary.json and report.json.
    #[arg(long, default_value = "replay-out")]
    pub output_dir: PathBuf,
    /// The target's Prometheus metrics URL (e.g. http://127.0.0.1:8000/metrics): scraped before, during and
    /// after the replay; report.json gets a `server` section beside the workload's predicted prefix reuse.
    #[arg(long, value_name = "URL")]
    pub target_metrics: Option<String>,
    /// Time between scrapes of --target-metrics during the replay, ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub metrics_interval: u64,
}

/// The workload's own prefix-reuse figure (the workload report's, UTF-8 byte blocks), to set beside the
/// prefix-cache hits the server counts.
fn predicted_prefix_reuse(workload: &std::path::Path) -> anyhow::Result<Option<serde_json::Value>> {
    use crate::domain::analysis::{AnalyzeOptions, analyze};
    let f = std::fs::File::open(workload)
        .with_context(|| format!("{}: cannot read", workload.display()))?;
    let a = analyze(
        std::io::BufReader::with_capacity(1 << 20, f),
        &AnalyzeOptions {
            name: workload.display().to_string(),
            ..Default::default()
        },
    )?;
    Ok(a.prefix.map(|p| {
        let share = |n: u64| {
            if p.total_units == 0 {
                0.0
            } else {
                (n as f64 / p.total_units as f64 * 1000.0).round() / 1000.0
            }
        };
        serde_json::json!({
            "basis": "bytes",
            "block_size": p.block_size,
            "reuse_unlimited": share(p.reused_unlimited),
            "reuse_lru": share(p.reused_lru),
            "lru_capacity_blocks": p.lru_capacity_blocks,
            "of": "the whole workload (all shards)",
        })
    }))
}

fn headers(args: &RunArgs) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    if let Some(key) = args.api_key.as_deref().filter(|k| !k.is_empty()) {
        map.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).context("--api-key")?,
        );
    }
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("--header '{h}': expected NAME:VALUE"))?;
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .with_context(|| format!("--header '{h}': bad name"))?;
        let value = HeaderValue::from_str(v.trim())
            .with_context(|| format!("--header '{h}': bad value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Turns the flags into a plan and options.
pub fn options(args: &RunArgs) -> anyhow::Result<(PathBuf, PlanOptions, ReplayOptions)> {
    let workload = args.workload.clone().context("--workload is required")?;
    let slo: Slo = args
        .slo
        .parse()
        .map_err(|e| anyhow::anyhow!("--slo: {e}"))?;
    let plan = PlanOptions {
        time_scale: args.time_scale,
        duration_ms: args.duration,
        shard: args.shard,
    };
    let opts = ReplayOptions {
        target: Target {
            base_url: args.base_url.clone().context("--base-url is required")?,
            model: args.model.clone().context("--model is required")?,
            endpoint: args.endpoint,
            stream: !args.no_stream,
            ignore_eos: args.ignore_eos,
        },
        headers: headers(args)?,
        max_inflight: args.max_inflight,
        think_time: Duration::from_millis(args.think_time),
        late: args.late_turns,
        slo,
        window_ms: args.window.max(1),
        timeout: (args.timeout_s > 0).then(|| Duration::from_secs(args.timeout_s)),
        shard: args.shard.to_string(),
        output_dir: args.output_dir.clone(),
        target_metrics: args.target_metrics.as_ref().map(|url| TargetMetrics {
            url: url.clone(),
            interval: Duration::from_millis(args.metrics_interval.max(10)),
            // Best effort: a workload the analysis cannot read still replays.
            predicted: predicted_prefix_reuse(&workload)
                .unwrap_or_else(|e| Some(serde_json::json!({ "error": e.to_string() }))),
        }),
    };
    Ok((workload, plan, opts))
}

/// Runs `replay` or `replay merge`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if let Some(ReplayAction::Merge { dirs, output_dir }) = args.action {
        let s = crate::replay::merge(&dirs, &output_dir)?;
        println!(
            "merged {} shards, {} requests -> {}",
            s.shards.len(),
            s.requests,
            output_dir.display()
        );
        return Ok(());
    }
    let (workload, plan_opts, opts) = options(&args.run)?;
    let plan = plan_file(&workload, &plan_opts)?;
    let n = plan.len();
    let out = opts.output_dir.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = rt.block_on(replay(plan, opts))?;
    println!(
        "replayed {n} requests ({} ok, {} errors) -> {}",
        summary.ok,
        summary.requests - summary.ok,
        out.display()
    );
    Ok(())
}
