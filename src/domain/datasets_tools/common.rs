//! What the collection tools share: their error, the JSONL line writers, the report's [`Distribution`], the
//! truncated Normal draw and the spec defaults and checks of the generators.

use serde::Serialize;
use thiserror::Error;

use crate::domain::files::InputError;
use crate::domain::spec::SpecError;
use crate::domain::tokenizer::{DEFAULT_TOKENIZER, TokenizerError};
use crate::domain::writer::write_json_str;

use super::text::TextError;

/// Why a collection could not be converted or generated.
#[derive(Debug, Error)]
pub enum DatasetToolError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An input file is invalid (names file, line and field).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Tokenization failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// An exact-length text could not be built.
    #[error(transparent)]
    Text(#[from] TextError),
    /// Writing the output failed.
    #[error("writing the collection: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends a `{"prompt": .., "completion": ..}` line (completion omitted when `None`) to `buf`.
pub(super) fn plain_line(buf: &mut Vec<u8>, prompt: &str, completion: Option<&str>) {
    buf.extend_from_slice(b"{\"prompt\": ");
    write_json_str(buf, prompt, false);
    if let Some(c) = completion {
        buf.extend_from_slice(b", \"completion\": ");
        write_json_str(buf, c, false);
    }
    buf.extend_from_slice(b"}\n");
}

/// A session id as written: an integer or a string.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OutId<'a> {
    Int(u64),
    Str(&'a str),
    Json(&'a serde_json::Number),
}

/// Appends a `{"session_id", "prompts", "completions"?}` line; completions omitted when empty.
pub(super) fn session_line<S: AsRef<str>>(
    buf: &mut Vec<u8>,
    id: OutId<'_>,
    prompts: &[S],
    completions: &[S],
) {
    buf.extend_from_slice(b"{\"session_id\": ");
    match id {
        OutId::Int(n) => buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        OutId::Str(s) => write_json_str(buf, s, false),
        OutId::Json(n) => buf.extend_from_slice(n.to_string().as_bytes()),
    }
    buf.extend_from_slice(b", \"prompts\": [");
    for (i, p) in prompts.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b", ");
        }
        write_json_str(buf, p.as_ref(), false);
    }
    buf.push(b']');
    if !completions.is_empty() {
        buf.extend_from_slice(b", \"completions\": [");
        for (i, c) in completions.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(b", ");
            }
            write_json_str(buf, c.as_ref(), false);
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b"}\n");
}

/// A Normal(mean, std) draw rounded and truncated below at `min` by redrawing (bounded: after 64 rejected
/// draws, `min`).
pub(super) fn normal_at_least(rng: &mut impl rand::Rng, mean: f64, std: f64, min: f64) -> f64 {
    use rand_distr::{Distribution, Normal};
    if std <= 0.0 {
        return mean.round().max(min);
    }
    let Ok(n) = Normal::new(mean, std) else {
        return mean.round().max(min);
    };
    for _ in 0..64 {
        let v = n.sample(rng).round();
        if v >= min {
            return v;
        }
    }
    min
}

/// Small summary of a list of values (mean and percentiles), for reports.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Distribution {
    /// Number of values.
    pub count: u64,
    /// Mean (3 decimals).
    pub mean: f64,
    /// Smallest value.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest value.
    pub max: u64,
}

impl Distribution {
    /// Summarises `values` (nearest-rank percentiles).
    pub fn of(mut values: Vec<u64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let n = values.len();
        let pct = |p: f64| values[(((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1];
        let sum: u64 = values.iter().sum();
        Self {
            count: n as u64,
            mean: ((sum as f64 / n as f64) * 1000.0).round() / 1000.0,
            min: values[0],
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            max: values[n - 1],
        }
    }
}

/// The default tokenizer of a generator spec.
pub(super) fn d_tokenizer() -> String {
    DEFAULT_TOKENIZER.to_string()
}
/// `true`, the serde default of boolean flags that are on unless turned off.
pub(super) fn yes() -> bool {
    true
}

/// A [`SpecError`] naming `field`.
pub(super) fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks that `v` is a finite number `>= min` (the error names `field`).
pub(super) fn finite_at_least(field: &str, v: f64, min: f64) -> Result<(), SpecError> {
    if v.is_finite() && v >= min {
        Ok(())
    } else {
        Err(err(field, format!("must be a number >= {min}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_load_as_collections() {
        let mut buf = Vec::new();
        plain_line(&mut buf, "héllo \"x\"", Some("c"));
        plain_line(&mut buf, "p2", None);
        let d = crate::domain::dataset::parse_jsonl(&buf[..], "t").unwrap();
        assert_eq!(d.prompts, vec!["héllo \"x\"", "p2"]);
        assert_eq!(d.completions.get(0), Some("c"));
        assert!(String::from_utf8(buf).unwrap().contains("héllo"));
        let mut buf = Vec::new();
        session_line(&mut buf, OutId::Str("a"), &["1", "2"], &["c1"]);
        session_line::<&str>(&mut buf, OutId::Int(3), &["x"], &[]);
        let d = crate::domain::dataset::parse_jsonl(&buf[..], "t").unwrap();
        assert_eq!(d.sessions.len(), 2);
        assert_eq!(d.prompts, vec!["1", "2", "x"]);
    }

    #[test]
    fn distribution_summary() {
        let d = Distribution::of((1..=100).collect());
        assert_eq!((d.p50, d.p90, d.p99, d.max), (50, 90, 99, 100));
        assert_eq!(d.mean, 50.5);
    }
}
