//! The generation spec: one JSON document that describes a workload. The CLI (`generate --spec FILE`, or its
//! flags) and the HTTP service (`POST /v1/workloads`) accept the same document.
//!
//! `GenerationSpec` is the wire-compatible serde type (unknown keys are rejected, so typos are caught);
//! [`GenerationSpec::validate`] turns it into a [`ValidatedSpec`] or a [`SpecError`] naming the field path.

use serde::{Deserialize, Serialize};

pub mod common;
pub mod object;
pub mod parse;

pub use self::common::{
    LengthPolicy, LengthSpec, OutputFormat, OutputLengthSource, OutputSpec, SamplingSpec,
    SpecError, TraceType, TrafficSpec,
};
pub use self::parse::SpecParseError;
pub use super::agent::spec::AgentSource;
use super::arrival::ArrivalKind;
use super::limits::{BYTES_PER_TOKEN, Estimate, LimitError, Limits, REQUEST_OVERHEAD_BYTES};
pub use super::pattern::spec::SyntheticSpec;
use super::sampler::Tolerance;
pub use super::stat::spec::StatSpec;
use super::tokenizer::DEFAULT_TOKENIZER;
pub use super::trace::spec::{
    Grouping, TimestampUnit, TraceColumns, TraceFormat, TraceKind, TraceSpec,
};

/// The generation spec (the JSON accepted by `generate --spec` and `POST /v1/workloads`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    /// The traffic shape.
    pub trace_type: TraceType,
    /// Seed of every random choice; random when absent (and then recorded in the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Prompt collection by id (service) or `"sample"` for the built-in one. Default: `sample`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Prompt collection by path (CLI only; the service refuses paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_file: Option<String>,
    /// Tokenizer name: the embedded default, a `tokenizer.json` path (CLI), or a hub id in the local cache.
    #[serde(default = "default_tokenizer")]
    pub tokenizer: String,
    /// Count special tokens (BOS/EOS) as the reference does (default true).
    #[serde(default = "default_true")]
    pub add_special_tokens: bool,
    /// Length of the workload in ms (default 60000).
    #[serde(default = "default_duration")]
    pub duration_ms: u64,
    /// Grid of the rate series in ms (default 1000). It never changes the workload's length.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Traffic rate and arrival process.
    #[serde(default, deserialize_with = "object::object")]
    pub traffic: TrafficSpec,
    /// Length targets.
    #[serde(default, deserialize_with = "object::object")]
    pub lengths: LengthSpec,
    /// Prompt selection.
    #[serde(default, deserialize_with = "object::object")]
    pub sampling: SamplingSpec,
    /// Emitted `output_length` when there is an output target: `target` (default) or `dataset`.
    #[serde(default)]
    pub output_length_source: OutputLengthSource,
    /// At most this many sessions open at once (sessioned collections); absent or 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_sessions: Option<u32>,
    /// Output options.
    #[serde(default, deserialize_with = "object::object")]
    pub output: OutputSpec,
    /// `synthetic` trace options: sine patterns of rate and lengths.
    #[serde(
        default,
        deserialize_with = "object::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub synthetic: Option<SyntheticSpec>,
    /// `stat` trace options: Grafana-exported statistics files.
    #[serde(
        default,
        deserialize_with = "object::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub stat: Option<StatSpec>,
    /// Agent-session config given inline (`trace_type: agent`): the reference's keys, e.g.
    /// `{"num_sessions": 10, "turns_per_session": [2, 5], "seed": 17}`; `{}` for every default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<serde_json::Value>,
    /// Agent-session config file (`trace_type: agent`; CLI: a path, service: an uploaded id); instead of
    /// `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_config: Option<String>,
    /// `match` (default): real prompts near the target length; `exact`: prompts of exactly the target length.
    #[serde(default)]
    pub length_policy: LengthPolicy,
    /// Trace replay options (`azure`, `mooncake`, `burstgpt`, `generic`): the file and its time controls.
    #[serde(
        default,
        deserialize_with = "object::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace: Option<TraceSpec>,
}

fn default_tokenizer() -> String {
    DEFAULT_TOKENIZER.to_string()
}
fn default_true() -> bool {
    true
}
fn default_duration() -> u64 {
    60_000
}
fn default_interval() -> u64 {
    1000
}

/// The traffic shape of a validated spec, with its own section (checked by the shape's module). The wire
/// document keeps `trace_type` plus one optional object per shape; [`GenerationSpec::validate`] turns that
/// into exactly one of these, so a generator never looks at another shape's section.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `constant`: a fixed rate with Poisson, gamma or uniform arrivals (the `traffic` object).
    Constant,
    /// `synthetic`: sine patterns of rate and lengths.
    Synthetic(SyntheticSpec),
    /// `stat`: Grafana-exported statistics files.
    Stat(StatSpec),
    /// `azure`, `mooncake`, `burstgpt`, `generic`: a trace file replayed.
    Trace(TraceKind, TraceSpec),
    /// `agent`: agent sessions from a config.
    Agent(AgentSource),
}

impl Shape {
    /// The `trace_type` of this shape (for a trace, its kind).
    pub fn trace_type(&self) -> TraceType {
        match self {
            Shape::Constant => TraceType::Constant,
            Shape::Synthetic(_) => TraceType::Synthetic,
            Shape::Stat(_) => TraceType::Stat,
            Shape::Trace(kind, _) => kind.trace_type(),
            Shape::Agent(_) => TraceType::Agent,
        }
    }
}

/// A spec whose values have been checked; `seed` is always set.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSpec {
    spec: GenerationSpec,
    shape: Shape,
    seed: u64,
    limits: Limits,
}

impl ValidatedSpec {
    /// The normalized spec (defaults filled in, `seed` set).
    pub fn spec(&self) -> &GenerationSpec {
        &self.spec
    }

    /// The traffic shape and its section.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The limits this job runs under (the defaults until [`ValidatedSpec::limited`]).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks the spec's [`estimate`](ValidatedSpec::estimate) against `limits` before any work, and makes them
    /// the job's run-time budget.
    pub fn limited(mut self, limits: Limits) -> Result<Self, LimitError> {
        limits.check(&self.estimate())?;
        self.limits = limits;
        Ok(self)
    }

    /// The expected size of the job, as far as the spec tells without reading its inputs: requests for
    /// `constant` and preset `synthetic` rates and inline agent configs, bytes where the prompt length is
    /// known, and the longest prompt to build. Statistics files, pattern files and traces are sized when the
    /// job reads them (and every job is bounded by its budget while it writes).
    pub fn estimate(&self) -> Estimate {
        let s = &self.spec;
        let secs = s.duration_ms as f64 / 1000.0;
        let mut e = Estimate::default();
        // Agent prompts come from the agent config; every other shape builds or picks to the length target.
        let target = match &self.shape {
            Shape::Agent(_) => None,
            _ => s.lengths.target_prompt_len.map(u64::from),
        };
        let mut prompt_tokens = target;
        match &self.shape {
            Shape::Constant => {
                e.requests = Some(("traffic.target_qps".into(), s.traffic.target_qps * secs));
            }
            Shape::Synthetic(syn) => {
                if syn.traffic_pattern.is_some() && syn.traffic_pattern_config.is_none() {
                    let mean = syn
                        .traffic_pattern_mean
                        .unwrap_or(super::pattern::spec::DEFAULT_TRAFFIC_MEAN);
                    e.requests = Some(("synthetic.traffic_pattern_mean".into(), mean * secs));
                }
                if prompt_tokens.is_none()
                    && syn.prompt_len_pattern.is_some()
                    && syn.prompt_len_pattern_config.is_none()
                {
                    let mean = syn
                        .prompt_len_pattern_mean
                        .unwrap_or(super::pattern::spec::DEFAULT_LENGTH_MEAN);
                    prompt_tokens = Some(mean.max(0.0) as u64);
                }
            }
            Shape::Agent(super::agent::spec::AgentSource::Inline(cfg)) => {
                e.requests = Some(("agent.num_sessions".into(), cfg.max_model_calls()));
                let longest = u64::try_from(cfg.max_prompt_tokens()).unwrap_or(u64::MAX);
                e.prompt_tokens = Some(("agent.initial_prompt_tokens".into(), longest));
                prompt_tokens = Some(longest);
            }
            Shape::Stat(_) | Shape::Trace(..) | Shape::Agent(_) => {}
        }
        if let Some(t) = target {
            e.prompt_tokens = Some(("lengths.target_prompt_len".into(), t));
        }
        if let (Some((field, n)), Some(t)) = (&e.requests, prompt_tokens) {
            let per_request = REQUEST_OVERHEAD_BYTES + BYTES_PER_TOKEN * t as f64;
            e.bytes = Some((field.clone(), n * per_request));
        }
        e
    }

    /// The tolerance schedule for this trace type.
    pub fn tolerance(&self) -> Tolerance {
        let base = match self.spec.trace_type {
            TraceType::Constant | TraceType::Synthetic | TraceType::Stat => Tolerance::SYNTHETIC,
            _ => Tolerance::TRACE,
        };
        let initial = match self.spec.length_policy {
            // The first window is the one whose prompts are kept; a wider one only finds the start of a
            // built prompt.
            LengthPolicy::Near => LengthPolicy::NEAR,
            _ => base.initial,
        };
        Tolerance {
            initial: self.spec.sampling.initial_tolerance.unwrap_or(initial),
            step: self.spec.sampling.tolerance_step,
            max: 1.0,
            inward: self.spec.length_policy == LengthPolicy::Near,
        }
    }

    /// Session concurrency limit (None = unlimited).
    pub fn max_open_sessions(&self) -> Option<u32> {
        self.spec.max_concurrent_sessions.filter(|&k| k > 0)
    }
}

/// Smallest `traffic.burstiness` accepted (gamma shape; CV 10).
pub const MIN_BURSTINESS: f64 = 0.01;
/// Largest `traffic.burstiness` accepted (CV about 0.03).
pub const MAX_BURSTINESS: f64 = 1000.0;

fn positive_finite(field: &str, v: f64) -> Result<(), SpecError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(field, "must be > 0"))
    }
}

impl GenerationSpec {
    /// A spec of `trace_type` with every default.
    pub fn new(trace_type: TraceType) -> Self {
        Self {
            trace_type,
            seed: None,
            dataset: None,
            prompt_file: None,
            tokenizer: default_tokenizer(),
            add_special_tokens: true,
            duration_ms: default_duration(),
            interval_ms: default_interval(),
            traffic: TrafficSpec::default(),
            lengths: LengthSpec::default(),
            sampling: SamplingSpec::default(),
            output_length_source: OutputLengthSource::default(),
            max_concurrent_sessions: None,
            output: OutputSpec::default(),
            synthetic: None,
            stat: None,
            agent: None,
            agent_config: None,
            length_policy: LengthPolicy::default(),
            trace: None,
        }
    }

    /// Every file the spec names, as (dotted field, name): resolved as paths by the CLI and as uploaded ids by
    /// the service (which checks them before queueing a job).
    pub fn file_fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some(s) = &self.synthetic {
            out.extend(
                s.files()
                    .into_iter()
                    .map(|(f, n)| (f.to_string(), n.to_string())),
            );
        }
        if let Some(s) = &self.stat {
            out.extend(
                s.files()
                    .into_iter()
                    .map(|(f, n)| (f.to_string(), n.to_string())),
            );
        }
        if let Some(a) = &self.agent_config {
            out.push(("agent_config".to_string(), a.clone()));
        }
        if let Some(t) = &self.trace
            && !t.file.is_empty()
        {
            out.push(("trace.file".to_string(), t.file.clone()));
        }
        out
    }

    /// Checks every value; a missing seed is drawn from the OS.
    pub fn validate(mut self) -> Result<ValidatedSpec, SpecError> {
        if self.duration_ms == 0 {
            return Err(SpecError::new("duration_ms", "must be > 0"));
        }
        if self.interval_ms == 0 {
            return Err(SpecError::new("interval_ms", "must be > 0"));
        }
        if self.dataset.is_some() && self.prompt_file.is_some() {
            return Err(SpecError::new(
                "dataset",
                "cannot be combined with prompt_file: give one of them",
            ));
        }
        if self.tokenizer.trim().is_empty() {
            return Err(SpecError::new("tokenizer", "must not be empty"));
        }
        positive_finite("traffic.target_qps", self.traffic.target_qps)?;
        if self.traffic.arrival == ArrivalKind::Gamma {
            positive_finite("traffic.burstiness", self.traffic.burstiness)?;
            // Below 0.01 (CV 10) gaps underflow to zero and one "burst" holds about 1/burstiness requests at
            // one timestamp; above 1000 (CV 0.03) the arrivals are as regular as `uniform`.
            if !(MIN_BURSTINESS..=MAX_BURSTINESS).contains(&self.traffic.burstiness) {
                return Err(SpecError::new(
                    "traffic.burstiness",
                    format!(
                        "must be within [{MIN_BURSTINESS}, {MAX_BURSTINESS}] (CV = 1/sqrt(burstiness) from 10 \
                         to 0.03); got {:?}",
                        self.traffic.burstiness
                    ),
                ));
            }
        }
        if self.lengths.target_prompt_len == Some(0) {
            return Err(SpecError::new(
                "lengths.target_prompt_len",
                "must be > 0 (omit it for no target)",
            ));
        }
        if self.lengths.target_completion_len == Some(0) {
            return Err(SpecError::new(
                "lengths.target_completion_len",
                "must be > 0 (omit it for no target)",
            ));
        }
        if let Some(t) = self.sampling.initial_tolerance
            && !(t.is_finite() && t > 0.0 && t <= 1.0)
        {
            return Err(SpecError::new(
                "sampling.initial_tolerance",
                "must be within (0, 1]",
            ));
        }
        if !(self.sampling.tolerance_step.is_finite() && self.sampling.tolerance_step > 0.0) {
            return Err(SpecError::new("sampling.tolerance_step", "must be > 0"));
        }
        // Each shape checks its own section (in this order, so the first error reported stays the same).
        let mut shape = None;
        if self.trace_type == TraceType::Synthetic {
            let syn = self.synthetic.get_or_insert_with(Default::default);
            syn.validate(self.duration_ms, self.interval_ms)?;
            shape = Some(Shape::Synthetic(syn.clone()));
        }
        if self.trace_type == TraceType::Stat {
            let stat = self.stat.get_or_insert_with(Default::default);
            stat.validate()?;
            shape = Some(Shape::Stat(stat.clone()));
        }
        if let Some(a) = crate::domain::agent::spec::section(
            self.trace_type,
            self.agent.as_ref(),
            self.agent_config.as_ref(),
        )? {
            shape = Some(Shape::Agent(a));
        }
        if let Some((kind, t)) =
            crate::domain::trace::spec::section(self.trace_type, self.trace.as_ref())?
        {
            shape = Some(Shape::Trace(kind, t));
        }
        let shape = shape.unwrap_or(Shape::Constant);
        debug_assert_eq!(shape.trace_type().as_str(), self.trace_type.as_str());
        if self.dataset.is_none() && self.prompt_file.is_none() {
            self.dataset = Some(crate::domain::sample::SAMPLE_DATASET_ID.to_string());
        }
        let seed = self.seed.unwrap_or_else(rand::random);
        self.seed = Some(seed);
        Ok(ValidatedSpec {
            spec: self,
            shape,
            seed,
            limits: Limits::default(),
        })
    }
}

/// Reads a spec from JSON text: exactly one JSON value (whitespace around it only), nulls treated as absent
/// outside the opaque sections, every section an object, unknown keys refused (see [`parse`]).
pub fn parse_spec(text: &[u8]) -> Result<GenerationSpec, SpecParseError> {
    parse::parse_document(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let s: GenerationSpec =
            serde_json::from_str(r#"{"trace_type": "constant", "seed": 3}"#).unwrap();
        assert_eq!(s.duration_ms, 60_000);
        assert_eq!(s.traffic.target_qps, 1.0);
        assert!(s.sampling.replacement);
        assert_eq!(s.tokenizer, DEFAULT_TOKENIZER);
        let v = s.clone().validate().unwrap();
        let back: GenerationSpec =
            serde_json::from_str(&serde_json::to_string(v.spec()).unwrap()).unwrap();
        assert_eq!(&back, v.spec());
        assert_eq!(v.seed(), 3);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected_with_the_field() {
        let e = serde_json::from_str::<GenerationSpec>(
            r#"{"trace_type": "constant", "traffic": {"qps": 1}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `qps`"), "{e}");
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.traffic.target_qps = 0.0;
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "traffic.target_qps must be > 0"
        );
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.traffic.arrival = ArrivalKind::Gamma;
        s.traffic.burstiness = -1.0;
        assert_eq!(s.validate().unwrap_err().field, "traffic.burstiness");
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.sampling.initial_tolerance = Some(1.5);
        assert_eq!(
            s.validate().unwrap_err().field,
            "sampling.initial_tolerance"
        );
    }

    #[test]
    fn burstiness_is_range_checked_where_it_stops_meaning_anything() {
        for (b, ok) in [
            (1e-300, false),
            (1e-6, false),
            (0.01, true),
            (1000.0, true),
            (1e4, false),
        ] {
            let mut s = GenerationSpec::new(TraceType::Constant);
            s.traffic.arrival = ArrivalKind::Gamma;
            s.traffic.burstiness = b;
            let r = s.validate();
            assert_eq!(r.is_ok(), ok, "{b}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.field, "traffic.burstiness");
            }
        }
    }

    #[test]
    fn the_estimate_is_checked_against_the_limits_before_any_work() {
        use crate::domain::limits::Limits;
        // The issue's repros: 10^9 requests, and a 2^32-token exact prompt.
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.traffic.target_qps = 1e5;
        s.duration_ms = 10_000_000;
        let e = s
            .validate()
            .unwrap()
            .limited(Limits::default())
            .unwrap_err();
        assert_eq!(e.field, "traffic.target_qps");
        assert!(e.message.contains("1000000000 requests"), "{e}");
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.length_policy = LengthPolicy::Exact;
        s.lengths.target_prompt_len = Some(u32::MAX);
        let e = s
            .validate()
            .unwrap()
            .limited(Limits::default())
            .unwrap_err();
        assert_eq!(e.field, "lengths.target_prompt_len");
        // Bytes: 1 M requests of 10,000-token prompts is about 40 GB.
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.traffic.target_qps = 100.0;
        s.duration_ms = 10_000_000;
        s.lengths.target_prompt_len = Some(10_000);
        let v = s.validate().unwrap();
        let est = v.estimate();
        assert_eq!(est.requests.as_ref().unwrap().1, 1e6);
        assert!((est.bytes.as_ref().unwrap().1 - 1e6 * 40_090.0).abs() < 1.0);
        let e = v.clone().limited(Limits::default()).unwrap_err();
        assert!(e.message.contains("max_job_output_bytes"), "{e}");
        // Within the limits: accepted, and the limits become the job's budget.
        let small = Limits {
            max_requests: 2_000_000,
            max_output_bytes: u64::MAX,
            max_prompt_tokens: 20_000,
        };
        assert_eq!(v.limited(small).unwrap().limits(), &small);
        // Traces and statistics are sized when read: no estimate here.
        let mut s = GenerationSpec::new(TraceType::Azure);
        s.trace = Some(TraceSpec::new("t.csv"));
        assert_eq!(s.validate().unwrap().estimate().requests, None);
    }

    #[test]
    fn missing_seed_is_drawn_and_recorded() {
        let v = GenerationSpec::new(TraceType::Constant).validate().unwrap();
        assert_eq!(v.spec().seed, Some(v.seed()));
    }
}
