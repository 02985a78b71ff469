//! The `trace` section of the spec (the file and its time controls) and its validation.

use serde::{Deserialize, Serialize};

use crate::domain::spec::common::{SpecError, TraceType};

/// Smallest Mooncake block size accepted.
pub const MIN_BLOCK_SIZE: u32 = 16;

/// Default Mooncake KV-block size in tokens.
pub const DEFAULT_BLOCK_SIZE: u32 = 512;

/// RNG stream of the `sample_fraction` thinning (separate from arrivals, lengths and prompt choice).
pub const THINNING_STREAM: u64 = 0x7472_6163_6501;

/// How trace requests are grouped into workload entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// One entry per `group_interval_ms` window, stamped at the window start (reference; Azure default).
    Window,
    /// Each request keeps its own time in ms; consecutive requests with the same ms share an entry (default
    /// for Mooncake, BurstGPT and generic traces).
    Exact,
}

/// Unit of a generic trace's timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Seconds (a number, fractions allowed). Default.
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// A date-time string `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM]`.
    Datetime,
}

/// File format of a generic trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Column mapping of a generic trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceColumns {
    /// Column (CSV header name or JSON key) of the request time.
    pub timestamp: String,
    /// Unit of the time column: `s` (default), `ms`, `us` or `datetime`.
    #[serde(default)]
    pub timestamp_unit: TimestampUnit,
    /// Column of the prompt length (tokens).
    pub input: String,
    /// Column of the output length (tokens); absent = no output target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Column of a session id, emitted as `session_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// Trace replay options (`trace` in the spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file: a path (CLI, `--traffic-file`) or an uploaded trace id (service).
    #[serde(default)]
    pub file: String,
    /// Generic traces: `csv` or `jsonl` (default: from the file name, `.jsonl`/`.json` = jsonl, else csv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TraceFormat>,
    /// Window of `grouping: window`, ms (default: the spec's `interval_ms`, as the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval_ms: Option<u64>,
    /// `window` (Azure default) or `exact` (default for the other trace types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<Grouping>,
    /// Mooncake: tokens per KV block (default 512).
    #[serde(default = "default_block_size")]
    pub block_size: u32,
    /// BurstGPT: keep only rows of this `Model` (e.g. `ChatGPT`, `GPT-4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// BurstGPT: keep only rows of this `Log Type` (e.g. `Conversation log`, `API log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
    /// BurstGPT: keep failed requests (0 response tokens), dropped by default.
    #[serde(default)]
    pub keep_failed: bool,
    /// Generic traces: the column mapping.
    #[serde(
        default,
        deserialize_with = "crate::domain::spec::object::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub columns: Option<TraceColumns>,
    /// Skip the first `start_ms` of the trace (trace time, before scaling).
    #[serde(default)]
    pub start_ms: u64,
    /// Multiplies trace time gaps: 0.5 replays twice as fast (default 1).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Keep each request with this probability (seeded thinning; keeps the burst shape). Default 1.
    #[serde(default = "one")]
    pub sample_fraction: f64,
    /// Stop after this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
}

pub(super) fn default_block_size() -> u32 {
    DEFAULT_BLOCK_SIZE
}
pub(super) fn one() -> f64 {
    1.0
}

impl TraceSpec {
    /// Options for `file` with every default.
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            format: None,
            group_interval_ms: None,
            grouping: None,
            block_size: DEFAULT_BLOCK_SIZE,
            model: None,
            log_type: None,
            keep_failed: false,
            columns: None,
            start_ms: 0,
            time_scale: 1.0,
            sample_fraction: 1.0,
            max_requests: None,
        }
    }
}

pub(super) fn spec_err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The trace types replayed by this module: the typed form of `trace_type` for [`Shape::Trace`].
///
/// [`Shape::Trace`]: crate::domain::spec::Shape::Trace
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// The Azure LLM inference trace (CSV).
    Azure,
    /// The Mooncake trace (JSONL with hash ids).
    Mooncake,
    /// The BurstGPT trace (CSV).
    Burstgpt,
    /// Any CSV/JSONL trace with named columns.
    Generic,
}

impl TraceKind {
    /// The trace kind of `t`, or None when `t` does not replay a trace file.
    pub fn of(t: TraceType) -> Option<Self> {
        match t {
            TraceType::Azure => Some(Self::Azure),
            TraceType::Mooncake => Some(Self::Mooncake),
            TraceType::Burstgpt => Some(Self::Burstgpt),
            TraceType::Generic => Some(Self::Generic),
            TraceType::Constant | TraceType::Synthetic | TraceType::Stat | TraceType::Agent => None,
        }
    }

    /// The `trace_type` it comes from.
    pub fn trace_type(self) -> TraceType {
        match self {
            Self::Azure => TraceType::Azure,
            Self::Mooncake => TraceType::Mooncake,
            Self::Burstgpt => TraceType::Burstgpt,
            Self::Generic => TraceType::Generic,
        }
    }
}

/// True for the trace types replayed by this module.
pub fn is_trace_type(t: TraceType) -> bool {
    TraceKind::of(t).is_some()
}

/// Checks the `trace` object against the trace type: the typed section for a trace type, None for the
/// others (which must not have one).
pub fn section(
    ty: TraceType,
    trace: Option<&TraceSpec>,
) -> Result<Option<(TraceKind, TraceSpec)>, SpecError> {
    {
        let Some(t) = trace else {
            if is_trace_type(ty) {
                return Err(spec_err(
                    "trace.file",
                    format!(
                        "is required for trace_type {} (CLI: --traffic-file)",
                        ty.as_str()
                    ),
                ));
            }
            return Ok(None);
        };
        let Some(kind) = TraceKind::of(ty) else {
            return Err(spec_err(
                "trace",
                "is only used by trace_type azure, mooncake, burstgpt or generic",
            ));
        };
        if t.file.trim().is_empty() {
            return Err(spec_err(
                "trace.file",
                format!(
                    "is required for trace_type {} (CLI: --traffic-file)",
                    ty.as_str()
                ),
            ));
        }
        if t.group_interval_ms == Some(0) {
            return Err(spec_err("trace.group_interval_ms", "must be > 0"));
        }
        if !(t.time_scale.is_finite() && t.time_scale > 0.0) {
            return Err(spec_err("trace.time_scale", "must be > 0"));
        }
        if !(t.sample_fraction.is_finite() && t.sample_fraction > 0.0 && t.sample_fraction <= 1.0) {
            return Err(spec_err("trace.sample_fraction", "must be within (0, 1]"));
        }
        if t.max_requests == Some(0) {
            return Err(spec_err(
                "trace.max_requests",
                "must be > 0 (omit it for no limit)",
            ));
        }
        if ty == TraceType::Mooncake && !(MIN_BLOCK_SIZE..=1 << 20).contains(&t.block_size) {
            return Err(spec_err(
                "trace.block_size",
                format!("must be within [{MIN_BLOCK_SIZE}, 1048576]"),
            ));
        }
        if ty != TraceType::Mooncake && t.block_size != DEFAULT_BLOCK_SIZE {
            return Err(spec_err(
                "trace.block_size",
                "is only used by trace_type mooncake",
            ));
        }
        if ty != TraceType::Burstgpt && (t.model.is_some() || t.log_type.is_some() || t.keep_failed)
        {
            let f = if t.model.is_some() {
                "trace.model"
            } else if t.log_type.is_some() {
                "trace.log_type"
            } else {
                "trace.keep_failed"
            };
            return Err(spec_err(f, "is only used by trace_type burstgpt"));
        }
        match (ty, &t.columns) {
            (TraceType::Generic, None) => {
                return Err(spec_err(
                    "trace.columns",
                    "is required for trace_type generic (at least timestamp and input)",
                ));
            }
            (TraceType::Generic, Some(c)) => {
                if c.timestamp.trim().is_empty() {
                    return Err(spec_err("trace.columns.timestamp", "must not be empty"));
                }
                if c.input.trim().is_empty() {
                    return Err(spec_err("trace.columns.input", "must not be empty"));
                }
            }
            (_, Some(_)) => {
                return Err(spec_err(
                    "trace.columns",
                    "is only used by trace_type generic",
                ));
            }
            _ => {}
        }
        if ty != TraceType::Generic && t.format.is_some() {
            return Err(spec_err(
                "trace.format",
                "is only used by trace_type generic",
            ));
        }
        Ok(Some((kind, t.clone())))
    }
}
