//! The flags of `generate`: the reference CLI's, plus `--spec FILE.json` and a few new knobs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::domain::pattern::Preset;
use crate::domain::spec::TraceType;

/// Trace types accepted on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TraceTypeArg {
    /// Constant rate.
    Constant,
    /// Sine patterns.
    Synthetic,
    /// Grafana statistics.
    Stat,
    /// Azure trace.
    Azure,
    /// Mooncake trace.
    Mooncake,
    /// BurstGPT trace.
    Burstgpt,
    /// Generic trace.
    Generic,
    /// Agent sessions.
    Agent,
}

impl From<TraceTypeArg> for TraceType {
    fn from(t: TraceTypeArg) -> Self {
        match t {
            TraceTypeArg::Constant => TraceType::Constant,
            TraceTypeArg::Synthetic => TraceType::Synthetic,
            TraceTypeArg::Stat => TraceType::Stat,
            TraceTypeArg::Azure => TraceType::Azure,
            TraceTypeArg::Mooncake => TraceType::Mooncake,
            TraceTypeArg::Burstgpt => TraceType::Burstgpt,
            TraceTypeArg::Generic => TraceType::Generic,
            TraceTypeArg::Agent => TraceType::Agent,
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// One entry per line (default).
    Jsonl,
    /// A pretty-printed array.
    Json,
}

/// Arrival processes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArrivalArg {
    /// Exponential gaps (reference).
    Poisson,
    /// Evenly spaced.
    Uniform,
    /// Gamma gaps with `--burstiness`.
    Gamma,
}

/// Output length sources.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputLengthArg {
    /// Emit the target.
    Target,
    /// Emit the matched prompt's completion length (reference).
    Dataset,
}

/// Synthetic pattern presets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetArg {
    /// Rises to 1.5× the mean within the first twentieth, then stays.
    #[value(name = "quick_rising")]
    QuickRising,
    /// A quarter sine over the whole workload, mean → 1.5× mean.
    #[value(name = "slow_rising")]
    SlowRising,
    /// One cycle of ±10%.
    #[value(name = "slight_fluctuation")]
    SlightFluctuation,
    /// Twelve cycles of ±50%.
    #[value(name = "severe_fluctuation")]
    SevereFluctuation,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::QuickRising => Preset::QuickRising,
            PresetArg::SlowRising => Preset::SlowRising,
            PresetArg::SlightFluctuation => Preset::SlightFluctuation,
            PresetArg::SevereFluctuation => Preset::SevereFluctuation,
        }
    }
}

/// Grafana export kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatTraceArg {
    /// Traffic + percentile CSVs.
    Maas,
    /// Traffic + byte-rate CSV.
    Cloudide,
}

/// Per-second rate noise of stat rows.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RateNoiseArg {
    /// The row's rate (per-second counts are Poisson with Poisson arrivals).
    None,
    /// A Poisson draw per second.
    Poisson,
    /// Poisson draws averaged over 10 s, at least 1 (reference).
    Smoothed,
}

/// Flags of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A JSON generation spec (the body of `POST /v1/workloads`); flags override its values.
    #[arg(long, value_name = "FILE.json")]
    pub spec: Option<PathBuf>,
    /// Traffic shape (default: constant).
    #[arg(long, value_enum)]
    pub trace_type: Option<TraceTypeArg>,
    /// Tokenizer: the embedded default `Qwen/Qwen2.5-Coder-7B-Instruct`, a tokenizer.json path or directory,
    /// or a hub id present in the local HuggingFace cache.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Prompt collection (JSONL, plain or sessioned). Default: the built-in sample collection.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Grid of rate series, ms (default 1000).
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// Workload length, ms (default 60000).
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// Output directory (default `output`).
    #[arg(long, default_value = "output")]
    pub output_dir: PathBuf,
    /// `jsonl` (default) or `json`.
    #[arg(long, value_enum)]
    pub output_format: Option<FormatArg>,
    /// Requests per second (constant traffic; a float).
    #[arg(long)]
    pub target_qps: Option<f64>,
    /// Prompt length target, tokens.
    #[arg(long)]
    pub target_prompt_len: Option<u32>,
    /// Output length target, tokens.
    #[arg(long)]
    pub target_completion_len: Option<u32>,
    /// At most this many sessions open at once (sessioned collections; default unlimited).
    #[arg(long)]
    pub max_concurrent_sessions: Option<u32>,
    /// Seed of every random choice (random when absent; recorded in manifest.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Arrival process: poisson (default), uniform or gamma.
    #[arg(long, value_enum)]
    pub arrival: Option<ArrivalArg>,
    /// Gamma shape for `--arrival gamma` (1 = Poisson, lower = burstier).
    #[arg(long)]
    pub burstiness: Option<f64>,
    /// Emitted output_length when there is an output target: target (default) or dataset.
    #[arg(long, value_enum)]
    pub output_length_source: Option<OutputLengthArg>,
    /// Sample prompts without replacement (stop when the collection is used up).
    #[arg(long)]
    pub no_replacement: bool,
    /// Escape non-ASCII characters like Python's json.dumps.
    #[arg(long)]
    pub ascii: bool,
    /// Count tokens without special tokens (BOS/EOS).
    #[arg(long)]
    pub no_special_tokens: bool,
    /// Directory of the token-length cache (default: $XDG_CACHE_HOME or ~/.cache, /workload-generator).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the token-length cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Limits of the job (checked against the spec's estimate before any work, and while writing).
    #[command(flatten)]
    pub limits: crate::config::JobLimitArgs,
    /// synthetic: preset of the request rate.
    #[arg(long, value_enum, help_heading = "Synthetic patterns")]
    pub traffic_pattern: Option<PresetArg>,
    /// synthetic: preset of the prompt length.
    #[arg(long, value_enum, help_heading = "Synthetic patterns")]
    pub prompt_len_pattern: Option<PresetArg>,
    /// synthetic: preset of the completion length.
    #[arg(long, value_enum, help_heading = "Synthetic patterns")]
    pub completion_len_pattern: Option<PresetArg>,
    /// synthetic: rate pattern config JSON (`fluctuate, mean, noise, period_len_ms, only_rise`).
    #[arg(long, value_name = "FILE.json", help_heading = "Synthetic patterns")]
    pub traffic_pattern_config: Option<PathBuf>,
    /// synthetic: prompt-length pattern config JSON.
    #[arg(long, value_name = "FILE.json", help_heading = "Synthetic patterns")]
    pub prompt_len_pattern_config: Option<PathBuf>,
    /// synthetic: completion-length pattern config JSON.
    #[arg(long, value_name = "FILE.json", help_heading = "Synthetic patterns")]
    pub completion_len_pattern_config: Option<PathBuf>,
    /// synthetic: mean of the traffic preset, requests/s (default 6).
    #[arg(long, help_heading = "Synthetic patterns")]
    pub traffic_pattern_mean: Option<f64>,
    /// synthetic: mean of the prompt-length preset, tokens (default 1024).
    #[arg(long, help_heading = "Synthetic patterns")]
    pub prompt_len_pattern_mean: Option<f64>,
    /// synthetic: mean of the completion-length preset, tokens (default 1024).
    #[arg(long, help_heading = "Synthetic patterns")]
    pub completion_len_pattern_mean: Option<f64>,
    /// stat: `maas` (default) or `cloudide`.
    #[arg(long, value_enum, help_heading = "Grafana statistics")]
    pub stat_trace_type: Option<StatTraceArg>,
    /// The traffic file: the stat traffic CSV (`--trace-type stat`) or the trace (azure CSV, mooncake JSONL,
    /// burstgpt CSV, generic CSV/JSONL).
    #[arg(long)]
    pub traffic_file: Option<PathBuf>,
    /// stat: the prompt-length CSV (maas percentiles; cloudide recv/sent bytes).
    #[arg(long, help_heading = "Grafana statistics")]
    pub prompt_len_file: Option<PathBuf>,
    /// stat: the completion-length CSV.
    #[arg(long, help_heading = "Grafana statistics")]
    pub completion_len_file: Option<PathBuf>,
    /// stat: divides the rate (default 1).
    #[arg(long, help_heading = "Grafana statistics")]
    pub qps_scale: Option<f64>,
    /// stat: divides the prompt lengths (default 1).
    #[arg(long, help_heading = "Grafana statistics")]
    pub input_scale: Option<f64>,
    /// stat: divides the completion lengths (default 1).
    #[arg(long, help_heading = "Grafana statistics")]
    pub output_scale: Option<f64>,
    /// stat cloudide: bytes per token (default 1 as the reference; about 4 is realistic).
    #[arg(long, help_heading = "Grafana statistics")]
    pub bytes_per_token: Option<f64>,
    /// stat: how long the last (or only) row lasts, ms (default: the gap before it, or --interval-ms).
    #[arg(long, help_heading = "Grafana statistics")]
    pub row_duration_ms: Option<u64>,
    /// stat: per-second rate noise: none (default), poisson, smoothed (reference).
    #[arg(long, value_enum, help_heading = "Grafana statistics")]
    pub rate_noise: Option<RateNoiseArg>,
    /// Agent-session config JSON (`--trace-type agent`): the reference's keys (num_sessions, turns_per_session, ...).
    #[arg(long, value_name = "FILE")]
    pub agent_config: Option<PathBuf>,
    /// Trace replay: window of `--grouping window`, seconds (default: --interval-ms, as the reference).
    #[arg(long)]
    pub group_interval_seconds: Option<u64>,
    /// Trace replay: `window` stamps requests at their window start (azure default); `exact` keeps each
    /// request's own ms (default for the other traces).
    #[arg(long, value_enum)]
    pub grouping: Option<GroupingArg>,
    /// Prompt lengths: `near` (default; within ±5% of the target: a real prompt when one is that close, else
    /// built text of exactly the target), `sample` (the reference's windows, ±50% and wider; `match` is the
    /// same) or `exact` (exactly the target).
    #[arg(long, value_enum)]
    pub length_policy: Option<LengthPolicyArg>,
    /// Mooncake: tokens per KV block (default 512).
    #[arg(long)]
    pub block_size: Option<u32>,
    /// Trace replay: skip the first ms of the trace.
    #[arg(long)]
    pub start_ms: Option<u64>,
    /// Trace replay: multiply time gaps (0.5 = twice as fast).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Trace replay: keep each request with this probability (seeded).
    #[arg(long)]
    pub sample_fraction: Option<f64>,
    /// Trace replay: stop after this many requests.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// BurstGPT: keep only rows of this Model (e.g. ChatGPT, GPT-4).
    #[arg(long)]
    pub trace_model: Option<String>,
    /// BurstGPT: keep only rows of this Log Type (e.g. "Conversation log").
    #[arg(long)]
    pub trace_log_type: Option<String>,
    /// BurstGPT: keep failed requests (0 response tokens).
    #[arg(long)]
    pub keep_failed: bool,
    /// Generic traces: `csv` or `jsonl` (default: from the file name).
    #[arg(long, value_enum)]
    pub trace_format: Option<TraceFormatArg>,
    /// Generic traces: the time column.
    #[arg(long)]
    pub timestamp_column: Option<String>,
    /// Generic traces: unit of the time column (default s).
    #[arg(long, value_enum)]
    pub timestamp_unit: Option<TimestampUnitArg>,
    /// Generic traces: the prompt-length column.
    #[arg(long)]
    pub input_column: Option<String>,
    /// Generic traces: the output-length column.
    #[arg(long)]
    pub output_column: Option<String>,
    /// Generic traces: the session column.
    #[arg(long)]
    pub session_column: Option<String>,
}

/// Trace grouping.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GroupingArg {
    /// Window starts.
    Window,
    /// Each request's own ms.
    Exact,
}

/// Length policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LengthPolicyArg {
    /// Within ±5% of the target.
    Near,
    /// The reference's sampling windows.
    #[value(alias = "match")]
    Sample,
    /// Exactly the target.
    Exact,
}

/// Generic trace formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TraceFormatArg {
    /// CSV with a header.
    Csv,
    /// JSON lines.
    Jsonl,
}

/// Time units of a generic trace.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TimestampUnitArg {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Date-time strings.
    Datetime,
}
