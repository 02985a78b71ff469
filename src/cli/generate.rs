//! `workload-generator generate`: the reference CLI flags, plus `--spec FILE.json` and a few new knobs.
//! Flags given on the command line override the same values of the spec file.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::domain::arrival::ArrivalKind;
use crate::domain::inputs::{InputCache, PromptSource};
use crate::domain::pattern::{Preset, SyntheticSpec};
use crate::domain::run::{RunInput, run_to_dir};
use crate::domain::spec::{
    GenerationSpec, Grouping, LengthPolicy, OutputFormat, OutputLengthSource, TimestampUnit,
    TraceColumns, TraceFormat, TraceSpec, TraceType,
};
use crate::domain::stat::{RateNoise, StatSpec, StatTraceType};
use crate::domain::tokenizer::TokenizerPolicy;
use crate::domain::trace::is_trace_type;

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
    /// Prompt lengths: `match` (default; a real prompt near the target) or `exact` (exactly the target).
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
    /// A real prompt near the target.
    Match,
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

impl GenerateArgs {
    /// The spec: the file (if any) with the flags applied on top.
    pub fn to_spec(&self) -> anyhow::Result<GenerationSpec> {
        let mut spec = match &self.spec {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str::<GenerationSpec>(&text)
                    .with_context(|| format!("{}: invalid generation spec", path.display()))?
            }
            None => GenerationSpec::new(TraceType::Constant),
        };
        if let Some(t) = self.trace_type {
            spec.trace_type = t.into();
        }
        if let Some(t) = &self.tokenizer {
            spec.tokenizer = t.clone();
        }
        if let Some(p) = &self.prompt_file {
            spec.prompt_file = Some(p.display().to_string());
            spec.dataset = None;
        }
        if let Some(v) = self.interval_ms {
            spec.interval_ms = v;
        }
        if let Some(v) = self.duration_ms {
            spec.duration_ms = v;
        }
        if let Some(f) = self.output_format {
            spec.output.format = match f {
                FormatArg::Jsonl => OutputFormat::Jsonl,
                FormatArg::Json => OutputFormat::Json,
            };
        }
        if let Some(v) = self.target_qps {
            spec.traffic.target_qps = v;
        }
        if let Some(v) = self.target_prompt_len {
            spec.lengths.target_prompt_len = Some(v);
        }
        if let Some(v) = self.target_completion_len {
            spec.lengths.target_completion_len = Some(v);
        }
        if let Some(v) = self.max_concurrent_sessions {
            spec.max_concurrent_sessions = Some(v);
        }
        if let Some(v) = self.seed {
            spec.seed = Some(v);
        }
        if let Some(a) = self.arrival {
            spec.traffic.arrival = match a {
                ArrivalArg::Poisson => ArrivalKind::Poisson,
                ArrivalArg::Uniform => ArrivalKind::Uniform,
                ArrivalArg::Gamma => ArrivalKind::Gamma,
            };
        }
        if let Some(b) = self.burstiness {
            spec.traffic.burstiness = b;
        }
        if let Some(o) = self.output_length_source {
            spec.output_length_source = match o {
                OutputLengthArg::Target => OutputLengthSource::Target,
                OutputLengthArg::Dataset => OutputLengthSource::Dataset,
            };
        }
        if self.no_replacement {
            spec.sampling.replacement = false;
        }
        if self.ascii {
            spec.output.ascii = true;
        }
        if self.no_special_tokens {
            spec.add_special_tokens = false;
        }
        self.apply_synthetic(&mut spec);
        self.apply_stat(&mut spec)?;
        if let Some(p) = &self.agent_config {
            spec.agent_config = Some(p.display().to_string());
            spec.agent = None;
        }
        if let Some(p) = self.length_policy {
            spec.length_policy = match p {
                LengthPolicyArg::Match => LengthPolicy::Match,
                LengthPolicyArg::Exact => LengthPolicy::Exact,
            };
        }
        self.apply_trace_flags(&mut spec);
        Ok(spec)
    }

    /// The synthetic flags: a preset replaces a config of the same series from the spec file and vice versa.
    fn apply_synthetic(&self, spec: &mut GenerationSpec) {
        let path = |p: &PathBuf| serde_json::Value::String(p.display().to_string());
        let flags = [
            (
                self.traffic_pattern,
                &self.traffic_pattern_config,
                self.traffic_pattern_mean,
            ),
            (
                self.prompt_len_pattern,
                &self.prompt_len_pattern_config,
                self.prompt_len_pattern_mean,
            ),
            (
                self.completion_len_pattern,
                &self.completion_len_pattern_config,
                self.completion_len_pattern_mean,
            ),
        ];
        if flags
            .iter()
            .all(|(p, c, m)| p.is_none() && c.is_none() && m.is_none())
        {
            return;
        }
        let syn = spec.synthetic.get_or_insert_with(SyntheticSpec::default);
        let slots = [
            (
                &mut syn.traffic_pattern,
                &mut syn.traffic_pattern_config,
                &mut syn.traffic_pattern_mean,
            ),
            (
                &mut syn.prompt_len_pattern,
                &mut syn.prompt_len_pattern_config,
                &mut syn.prompt_len_pattern_mean,
            ),
            (
                &mut syn.completion_len_pattern,
                &mut syn.completion_len_pattern_config,
                &mut syn.completion_len_pattern_mean,
            ),
        ];
        for ((preset, config, mean), (sp, sc, sm)) in flags.into_iter().zip(slots) {
            if let Some(p) = preset {
                *sp = Some(p.into());
                *sc = None;
            }
            if let Some(c) = config {
                *sc = Some(path(c));
                *sp = None;
                *sm = None;
            }
            if let Some(m) = mean {
                *sm = Some(m);
            }
        }
    }

    /// The stat flags (`--traffic-file` names the stat traffic CSV for `--trace-type stat`).
    fn apply_stat(&self, spec: &mut GenerationSpec) -> anyhow::Result<()> {
        let name = |p: &PathBuf| Some(p.display().to_string());
        if let Some(f) = &self.traffic_file {
            match spec.trace_type {
                TraceType::Stat => {
                    spec.stat.get_or_insert_with(StatSpec::default).traffic_file = name(f);
                }
                // The trace types read it as `trace.file` (see `apply_trace_flags`).
                t if is_trace_type(t) => {}
                other => anyhow::bail!(
                    "--traffic-file is not used by --trace-type {}",
                    other.as_str()
                ),
            }
        }
        let any = self.stat_trace_type.is_some()
            || self.prompt_len_file.is_some()
            || self.completion_len_file.is_some()
            || self.qps_scale.is_some()
            || self.input_scale.is_some()
            || self.output_scale.is_some()
            || self.bytes_per_token.is_some()
            || self.row_duration_ms.is_some()
            || self.rate_noise.is_some();
        if !any {
            return Ok(());
        }
        let stat = spec.stat.get_or_insert_with(StatSpec::default);
        if let Some(t) = self.stat_trace_type {
            stat.stat_trace_type = match t {
                StatTraceArg::Maas => StatTraceType::Maas,
                StatTraceArg::Cloudide => StatTraceType::Cloudide,
            };
        }
        if let Some(f) = &self.prompt_len_file {
            stat.prompt_len_file = name(f);
        }
        if let Some(f) = &self.completion_len_file {
            stat.completion_len_file = name(f);
        }
        if let Some(v) = self.qps_scale {
            stat.qps_scale = v;
        }
        if let Some(v) = self.input_scale {
            stat.input_scale = v;
        }
        if let Some(v) = self.output_scale {
            stat.output_scale = v;
        }
        if let Some(v) = self.bytes_per_token {
            stat.bytes_per_token = v;
        }
        if let Some(v) = self.row_duration_ms {
            stat.row_duration_ms = Some(v);
        }
        if let Some(n) = self.rate_noise {
            stat.rate_noise = match n {
                RateNoiseArg::None => RateNoise::None,
                RateNoiseArg::Poisson => RateNoise::Poisson,
                RateNoiseArg::Smoothed => RateNoise::Smoothed,
            };
        }
        Ok(())
    }

    /// Trace replay flags (azure, mooncake, burstgpt, generic) into `spec.trace`.
    fn apply_trace_flags(&self, spec: &mut GenerationSpec) {
        if !is_trace_type(spec.trace_type) {
            return;
        }
        let any = self.traffic_file.is_some()
            || self.group_interval_seconds.is_some()
            || self.grouping.is_some()
            || self.block_size.is_some()
            || self.start_ms.is_some()
            || self.time_scale.is_some()
            || self.sample_fraction.is_some()
            || self.max_requests.is_some()
            || self.trace_model.is_some()
            || self.trace_log_type.is_some()
            || self.keep_failed
            || self.trace_format.is_some()
            || self.timestamp_column.is_some()
            || self.input_column.is_some()
            || self.timestamp_unit.is_some()
            || self.output_column.is_some()
            || self.session_column.is_some();
        if !any && spec.trace.is_none() {
            return;
        }
        let t = spec.trace.get_or_insert_with(|| TraceSpec::new(""));
        if let Some(f) = &self.traffic_file {
            t.file = f.display().to_string();
        }
        if let Some(s) = self.group_interval_seconds {
            t.group_interval_ms = Some(s.saturating_mul(1000));
        }
        if let Some(g) = self.grouping {
            t.grouping = Some(match g {
                GroupingArg::Window => Grouping::Window,
                GroupingArg::Exact => Grouping::Exact,
            });
        }
        if let Some(b) = self.block_size {
            t.block_size = b;
        }
        if let Some(v) = self.start_ms {
            t.start_ms = v;
        }
        if let Some(v) = self.time_scale {
            t.time_scale = v;
        }
        if let Some(v) = self.sample_fraction {
            t.sample_fraction = v;
        }
        if let Some(v) = self.max_requests {
            t.max_requests = Some(v);
        }
        if let Some(v) = &self.trace_model {
            t.model = Some(v.clone());
        }
        if let Some(v) = &self.trace_log_type {
            t.log_type = Some(v.clone());
        }
        if self.keep_failed {
            t.keep_failed = true;
        }
        if let Some(f) = self.trace_format {
            t.format = Some(match f {
                TraceFormatArg::Csv => TraceFormat::Csv,
                TraceFormatArg::Jsonl => TraceFormat::Jsonl,
            });
        }
        if self.timestamp_column.is_some()
            || self.input_column.is_some()
            || self.timestamp_unit.is_some()
            || self.output_column.is_some()
            || self.session_column.is_some()
        {
            let c = t.columns.get_or_insert_with(|| TraceColumns {
                timestamp: String::new(),
                timestamp_unit: TimestampUnit::S,
                input: String::new(),
                output: None,
                session: None,
            });
            if let Some(v) = &self.timestamp_column {
                c.timestamp = v.clone();
            }
            if let Some(u) = self.timestamp_unit {
                c.timestamp_unit = match u {
                    TimestampUnitArg::S => TimestampUnit::S,
                    TimestampUnitArg::Ms => TimestampUnit::Ms,
                    TimestampUnitArg::Us => TimestampUnit::Us,
                    TimestampUnitArg::Datetime => TimestampUnit::Datetime,
                };
            }
            if let Some(v) = &self.input_column {
                c.input = v.clone();
            }
            if let Some(v) = &self.output_column {
                c.output = Some(v.clone());
            }
            if let Some(v) = &self.session_column {
                c.session = Some(v.clone());
            }
        }
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(d) = &self.cache_dir {
            return Some(d.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("workload-generator").join("lengths"))
    }
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Where the CLI reads a spec's prompts: no collection for agent sessions, else `--prompt-file` or the
/// built-in sample (dataset ids are for the service).
pub fn prompt_source(spec: &GenerationSpec) -> PromptSource {
    PromptSource::named(
        spec.trace_type != TraceType::Agent,
        spec.prompt_file.as_deref(),
        spec.dataset.as_deref(),
    )
}

/// Runs `generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let spec = args.to_spec()?.validate()?;
    let s = spec.spec();
    let cache = InputCache::new(TokenizerPolicy::cli(), args.cache_dir());
    let bar = std::sync::OnceLock::new();
    let prepared = cache.prepare(
        &s.tokenizer,
        s.add_special_tokens,
        &prompt_source(s),
        None,
        &|d, total| {
            bar.get_or_init(|| progress_bar(total as u64, "tokenizing"))
                .set_position(d as u64)
        },
    )?;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    let bar = progress_bar(1000, "generating");
    let mut progress =
        |p: crate::domain::generate::Progress| bar.set_position((p.fraction * 1000.0) as u64);
    let out = run_to_dir(
        &spec,
        RunInput {
            data: &prepared.data,
            tokenizer: &prepared.tokenizer,
            inputs: prepared.files,
            files: &crate::domain::files::PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut progress,
        },
        &args.output_dir,
    )?;
    bar.finish_and_clear();
    let sum = &out.manifest.summary;
    println!(
        "wrote {} ({} entries, {} requests, {:.3} req/s over {} ms, seed {})",
        out.workload.display(),
        sum.entries,
        sum.requests,
        sum.mean_rate_qps,
        sum.duration_ms,
        spec.seed()
    );
    println!("wrote {}", out.manifest_path.display());
    for note in &sum.notes {
        println!("note: {note}");
    }
    Ok(())
}
