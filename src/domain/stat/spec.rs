//! The `stat` section of the spec and its validation.

use serde::{Deserialize, Serialize};

use crate::domain::spec::common::SpecError;

/// Which Grafana export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatTraceType {
    /// Traffic, prompt-length and completion-length percentile CSVs.
    #[default]
    Maas,
    /// Traffic rate CSV plus received/sent byte rates.
    Cloudide,
}

/// How the per-second rate follows a row's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateNoise {
    /// The rate is the row's rate; with Poisson arrivals the per-second counts are Poisson around it.
    #[default]
    None,
    /// Each second's rate is a Poisson draw around the row's rate.
    Poisson,
    /// The reference: Poisson draws averaged over a trailing window of up to 10 seconds (restarted every
    /// row), rounded, at least 1 request/s unless the row's rate is 0.
    Smoothed,
}

/// `stat` spec options (the reference's stat flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatSpec {
    /// `maas` (default) or `cloudide` (`--stat-trace-type`).
    pub stat_trace_type: StatTraceType,
    /// The traffic CSV (`--traffic-file`; required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_file: Option<String>,
    /// Prompt-length CSV (`--prompt-len-file`); without it prompts have no length target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_file: Option<String>,
    /// Completion-length CSV (`--completion-len-file`); cloudide uses `prompt_len_file` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_file: Option<String>,
    /// Divides the rate (default 1).
    pub qps_scale: f64,
    /// Divides the prompt lengths (default 1).
    pub input_scale: f64,
    /// Divides the completion lengths (default 1).
    pub output_scale: f64,
    /// cloudide: bytes per token (default 1, the reference; about 4 is realistic for English text).
    pub bytes_per_token: f64,
    /// How long the last row lasts, ms (default: the gap before it; a one-row file: `interval_ms`). Without a
    /// `Time` column in the traffic file, every row lasts this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_duration_ms: Option<u64>,
    /// Rate noise per second: `none` (default), `poisson`, `smoothed` (the reference).
    pub rate_noise: RateNoise,
}

impl Default for StatSpec {
    fn default() -> Self {
        Self {
            stat_trace_type: StatTraceType::Maas,
            traffic_file: None,
            prompt_len_file: None,
            completion_len_file: None,
            qps_scale: 1.0,
            input_scale: 1.0,
            output_scale: 1.0,
            bytes_per_token: 1.0,
            row_duration_ms: None,
            rate_noise: RateNoise::None,
        }
    }
}

pub(super) fn spec_err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl StatSpec {
    /// The file names this spec refers to, with their dotted field (for resolving them before generation).
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        [
            ("stat.traffic_file", &self.traffic_file),
            ("stat.prompt_len_file", &self.prompt_len_file),
            ("stat.completion_len_file", &self.completion_len_file),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.as_deref().map(|n| (f, n)))
        .collect()
    }

    /// Checks the options of a `stat` spec.
    pub fn validate(&self) -> Result<(), SpecError> {
        match &self.traffic_file {
            None => return Err(spec_err("stat.traffic_file", "is required")),
            Some(f) if f.trim().is_empty() => {
                return Err(spec_err("stat.traffic_file", "must not be empty"));
            }
            Some(_) => {}
        }
        for (field, f) in [
            ("stat.prompt_len_file", &self.prompt_len_file),
            ("stat.completion_len_file", &self.completion_len_file),
        ] {
            if f.as_deref().is_some_and(|f| f.trim().is_empty()) {
                return Err(spec_err(field, "must not be empty"));
            }
        }
        for (field, v) in [
            ("stat.qps_scale", self.qps_scale),
            ("stat.input_scale", self.input_scale),
            ("stat.output_scale", self.output_scale),
            ("stat.bytes_per_token", self.bytes_per_token),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(spec_err(field, "must be > 0"));
            }
        }
        if self.row_duration_ms == Some(0) {
            return Err(spec_err("stat.row_duration_ms", "must be > 0"));
        }
        Ok(())
    }
}
