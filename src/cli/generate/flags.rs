//! Flags into a spec: the spec file (if any) with the flags given on the command line applied on top.

use std::path::PathBuf;

use super::args::*;
use crate::domain::arrival::ArrivalKind;
use crate::domain::pattern::SyntheticSpec;
use crate::domain::spec::{
    GenerationSpec, Grouping, LengthPolicy, OutputFormat, OutputLengthSource, TimestampUnit,
    TraceColumns, TraceFormat, TraceSpec, TraceType,
};
use crate::domain::stat::{RateNoise, StatSpec, StatTraceType};
use crate::domain::trace::is_trace_type;

impl GenerateArgs {
    /// The spec: the file (if any) with the flags applied on top.
    pub fn to_spec(&self) -> anyhow::Result<GenerationSpec> {
        let mut spec = match &self.spec {
            Some(path) => crate::cli::read_spec(path)?,
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
                LengthPolicyArg::Near => LengthPolicy::Near,
                LengthPolicyArg::Sample => LengthPolicy::Sample,
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

    pub(super) fn cache_dir(&self) -> Option<PathBuf> {
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
