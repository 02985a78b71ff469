//! The common part of the generation spec: the fields every traffic shape shares (traffic, lengths,
//! sampling, output) and the [`SpecError`] every section's validation returns. It imports nothing of the
//! domain, so shape sections and the emit layer can use it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::arrival::ArrivalKind;

/// Which traffic shape to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceType {
    /// Constant rate (`traffic.target_qps`).
    Constant,
    /// Sine-shaped rate and length patterns.
    Synthetic,
    /// Grafana-exported statistics.
    Stat,
    /// Azure LLM inference trace replay.
    Azure,
    /// Mooncake trace replay.
    Mooncake,
    /// BurstGPT trace replay.
    Burstgpt,
    /// A user trace with a column mapping.
    Generic,
    /// Agent session DAGs.
    Agent,
}

impl TraceType {
    /// The name used in specs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceType::Constant => "constant",
            TraceType::Synthetic => "synthetic",
            TraceType::Stat => "stat",
            TraceType::Azure => "azure",
            TraceType::Mooncake => "mooncake",
            TraceType::Burstgpt => "burstgpt",
            TraceType::Generic => "generic",
            TraceType::Agent => "agent",
        }
    }
}

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// `workload.jsonl`: one entry per line (default).
    #[default]
    Jsonl,
    /// `workload.json`: one pretty-printed array.
    Json,
}

/// Which `output_length` is emitted when the spec has an output-length target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputLengthSource {
    /// The target itself (benchmark clients pin the generated length with it).
    #[default]
    Target,
    /// The matched prompt's completion length (reference behaviour).
    Dataset,
}

/// How emitted prompts relate to their length targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthPolicy {
    /// Within ±5% of the target: a real prompt from a ±5% window when the collection has one (reused as
    /// needed), else text of exactly the target built from the nearest prompt and the ones after it.
    #[default]
    Near,
    /// The reference's sampling: a real prompt within the widening tolerance windows, else the nearest one,
    /// however far (`match` is accepted for it, the name of earlier versions).
    #[serde(alias = "match")]
    Sample,
    /// The emitted prompt tokenizes to exactly the target: the matched prompt cut at a token boundary or
    /// extended with following prompts of the collection.
    Exact,
}

impl LengthPolicy {
    /// Largest relative distance from its target a real prompt may have under [`LengthPolicy::Near`].
    pub const NEAR: f64 = 0.05;

    /// The lengths within [`LengthPolicy::NEAR`] of `target`: `ceil(0.95 t)..=floor(1.05 t)`.
    pub fn near_bounds(target: u32) -> (u32, u32) {
        let t = f64::from(target);
        let lo = (t * (1.0 - Self::NEAR)).ceil() as u32;
        let hi = (t * (1.0 + Self::NEAR)).floor() as u32;
        (lo, hi.max(lo))
    }

    /// The window a built prompt must land in: [`LengthPolicy::near_bounds`] under `near`, none (exactly the
    /// target) under `exact`.
    pub fn build_window(self, target: u32) -> Option<(u32, u32)> {
        (self == LengthPolicy::Near).then(|| Self::near_bounds(target))
    }

    /// The output-length target the matcher also matches: under [`LengthPolicy::Near`] none when the output
    /// length is the target itself (the completion's length is not used, so it should not narrow the choice
    /// of prompts); otherwise `tout`, as the reference matches both.
    pub fn matched_output(self, tout: Option<u32>, source: OutputLengthSource) -> Option<u32> {
        match (self, source) {
            (LengthPolicy::Near, OutputLengthSource::Target) => None,
            _ => tout,
        }
    }

    /// Whether a prompt of `len` tokens is kept as it is for a target of `target` tokens (otherwise text of
    /// exactly `target` tokens is built).
    pub fn keeps(self, len: u32, target: u32) -> bool {
        match self {
            LengthPolicy::Sample => true,
            LengthPolicy::Exact => target == 0,
            LengthPolicy::Near => {
                target == 0
                    || (f64::from(len) - f64::from(target)).abs() <= Self::NEAR * f64::from(target)
            }
        }
    }
}

/// Traffic rate and arrival process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficSpec {
    /// Requests per second for `constant` traffic (a float; default 1).
    pub target_qps: f64,
    /// Gap distribution: `poisson` (default), `uniform` or `gamma`.
    pub arrival: ArrivalKind,
    /// Gamma shape for `arrival: gamma` (1 = Poisson; CV = 1/√burstiness). Default 1.
    pub burstiness: f64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            target_qps: 1.0,
            arrival: ArrivalKind::Poisson,
            burstiness: 1.0,
        }
    }
}

/// Length targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LengthSpec {
    /// Prompt length target in tokens (`--target-prompt-len`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_prompt_len: Option<u32>,
    /// Output length target in tokens (`--target-completion-len`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_completion_len: Option<u32>,
}

/// How prompts are chosen from the collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingSpec {
    /// Reuse prompts (default true). Without replacement, generation stops when the collection is used up.
    pub replacement: bool,
    /// First relative tolerance of the length window (default 0.5 for synthetic traffic, 0.1 for traces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_tolerance: Option<f64>,
    /// Tolerance increment (default 0.05); windows widen up to and including ±100%.
    pub tolerance_step: f64,
}

impl Default for SamplingSpec {
    fn default() -> Self {
        Self {
            replacement: true,
            initial_tolerance: None,
            tolerance_step: 0.05,
        }
    }
}

/// Output options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSpec {
    /// `jsonl` (default) or `json`.
    pub format: OutputFormat,
    /// Escape non-ASCII characters as `\uXXXX`, as Python's `json.dumps` does (default false: UTF-8).
    pub ascii: bool,
}

/// A spec field with an invalid value.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{field} {message}")]
pub struct SpecError {
    /// Dotted field path, e.g. `traffic.target_qps`.
    pub field: String,
    /// What is wrong, e.g. `must be > 0`.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
