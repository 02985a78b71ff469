//! What a utility run is asked ([`Operation`], [`Input`], [`OutputOptions`]) and what it reports, or why it
//! failed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::stats::WorkloadStats;
use crate::domain::files::InputError;
use crate::domain::spec::{OutputFormat, SpecError};

/// One utility operation with its options. Serialized with a `mode` tag, e.g.
/// `{"mode": "concat", "gap_ms": 0}` or `{"mode": "time-scale", "factor": 0.5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Files one after another.
    Concat {
        /// Milliseconds between the previous file's largest timestamp and the next file's time 0
        /// (0 = reference: the entries collide).
        #[serde(default)]
        gap_ms: u64,
    },
    /// Interleave on original timestamps; equal timestamps are combined.
    Merge,
    /// Multiply every timestamp by `factor` (rounded to the nearest ms).
    TimeScale {
        /// Factor > 0 (0.5 = twice as fast).
        factor: f64,
    },
    /// Keep entries with `start_ms <= timestamp < end_ms`, re-based so `start_ms` becomes 0.
    Slice {
        /// Window start, ms (default 0).
        #[serde(default)]
        start_ms: u64,
        /// Window end (exclusive), ms; absent = to the end.
        #[serde(default)]
        end_ms: Option<u64>,
    },
    /// Keep each request with probability `fraction`; requests with a `session_id` are kept or dropped with
    /// their whole session. Entries left without requests are dropped.
    Sample {
        /// Fraction of requests (or sessions) to keep, in (0, 1].
        fraction: f64,
        /// Seed; random when absent (and reported).
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Add `offset_ms` to every timestamp.
    Shift {
        /// Offset, ms; may be negative as long as no timestamp becomes negative.
        offset_ms: i64,
    },
    /// Summarize one workload file.
    Stats,
}

impl Operation {
    /// The mode name (`concat`, `time-scale`, ...).
    pub fn mode(&self) -> &'static str {
        match self {
            Operation::Concat { .. } => "concat",
            Operation::Merge => "merge",
            Operation::TimeScale { .. } => "time-scale",
            Operation::Slice { .. } => "slice",
            Operation::Sample { .. } => "sample",
            Operation::Shift { .. } => "shift",
            Operation::Stats => "stats",
        }
    }

    /// Checks the options against `inputs` files; returns the operation with defaults filled in (a seed for
    /// `sample`).
    pub fn validated(&self, inputs: usize) -> Result<Operation, SpecError> {
        let err = |field: &str, message: String| SpecError {
            field: field.to_string(),
            message,
        };
        let multi = matches!(self, Operation::Concat { .. } | Operation::Merge);
        if inputs == 0 {
            return Err(err("input_files", "must name at least one file".into()));
        }
        if !multi && inputs != 1 {
            return Err(err(
                "input_files",
                format!("mode {} takes exactly one file, got {inputs}", self.mode()),
            ));
        }
        let mut op = self.clone();
        match &mut op {
            Operation::TimeScale { factor } if !(factor.is_finite() && *factor > 0.0) => {
                return Err(err("factor", format!("must be a number > 0, got {factor}")));
            }
            Operation::Slice {
                start_ms,
                end_ms: Some(end),
            } if *end <= *start_ms => {
                return Err(err(
                    "end_ms",
                    format!("must be greater than start_ms ({start_ms}), got {end}"),
                ));
            }
            Operation::Sample { fraction, seed } => {
                if !(*fraction > 0.0 && *fraction <= 1.0) {
                    return Err(err(
                        "fraction",
                        format!("must be in (0, 1], got {fraction}"),
                    ));
                }
                seed.get_or_insert_with(rand::random);
            }
            _ => {}
        }
        Ok(op)
    }
}

/// An input workload: a display name for errors and the manifest (a path or an id) and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Name used in errors and the manifest.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

impl Input {
    /// An input named by its path (CLI).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: path.display().to_string(),
            path,
        }
    }
}

/// Output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutputOptions {
    /// JSONL (default) or an indented JSON array.
    #[serde(default)]
    pub format: OutputFormat,
    /// Escape non-ASCII as `\uXXXX` like Python's default.
    #[serde(default)]
    pub ascii: bool,
}

/// Why a utility run failed. Nothing is written in any of these cases.
#[derive(Debug, Error)]
pub enum UtilityError {
    /// An option is invalid.
    #[error(transparent)]
    Options(#[from] SpecError),
    /// An input file is not a valid workload (names file, line and field).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Cancelled by the caller.
    #[error("the utility run was cancelled")]
    Cancelled,
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UtilityError + '_ {
    move |source| UtilityError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What was read from one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputReport {
    /// Its name.
    pub name: String,
    /// `jsonl` or `json`.
    pub layout: &'static str,
    /// Entries read.
    pub entries: u64,
    /// Requests read.
    pub requests: u64,
    /// Whether its timestamps never decrease in file order.
    pub sorted: bool,
    /// Bare `NaN`/`Infinity` values (reference output) read as null.
    pub non_finite_as_null: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputReport {
    /// Entries written.
    pub entries: u64,
    /// Requests written.
    pub requests: u64,
    /// First timestamp written, ms.
    pub first_timestamp_ms: Option<u64>,
    /// Largest timestamp written, ms.
    pub last_timestamp_ms: Option<u64>,
    /// Bytes written.
    pub bytes: u64,
}

/// The result of a utility run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityReport {
    /// The operation as run (defaults and the seed filled in).
    pub operation: Operation,
    /// Per input.
    pub inputs: Vec<InputReport>,
    /// The written workload (absent for `stats`).
    pub output: Option<OutputReport>,
    /// The summary (`stats` only).
    pub stats: Option<WorkloadStats>,
    /// Things worth knowing (unsorted inputs, combined keys with differing values, ...).
    pub notes: Vec<String>,
}
