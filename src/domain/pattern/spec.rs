//! The `synthetic` section of the spec and its validation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{MAX_POINTS, Pattern, Preset};
use crate::domain::json::kind;
use crate::domain::spec::common::SpecError;

/// `synthetic` spec options: one pattern per series, as a preset or a config (inline object or file name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSpec {
    /// Preset of the request rate (`--traffic-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern: Option<Preset>,
    /// Rate config: an inline object or a file name (`--traffic-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern_config: Option<Value>,
    /// Mean of the traffic preset, requests per second (default 6, the reference's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_pattern_mean: Option<f64>,
    /// Preset of the prompt length (`--prompt-len-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern: Option<Preset>,
    /// Prompt-length config: inline object or file name (`--prompt-len-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern_config: Option<Value>,
    /// Mean of the prompt-length preset, tokens (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_len_pattern_mean: Option<f64>,
    /// Preset of the completion length (`--completion-len-pattern`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern: Option<Preset>,
    /// Completion-length config: inline object or file name (`--completion-len-pattern-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern_config: Option<Value>,
    /// Mean of the completion-length preset, tokens (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_len_pattern_mean: Option<f64>,
}

/// Default mean of the traffic presets (requests per second).
pub const DEFAULT_TRAFFIC_MEAN: f64 = 6.0;
/// Default mean of the length presets (tokens).
pub const DEFAULT_LENGTH_MEAN: f64 = 1024.0;

/// Which of the three series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Series {
    Traffic,
    Prompt,
    Completion,
}

impl Series {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Series::Traffic => "traffic",
            Series::Prompt => "prompt_len",
            Series::Completion => "completion_len",
        }
    }
}

/// Where a series' pattern comes from (resolved from the spec, not yet read).
pub(super) enum Source<'a> {
    Preset(Preset, f64),
    Inline(&'a Value),
    File(&'a str),
}

impl SyntheticSpec {
    pub(super) fn parts(&self, s: Series) -> (Option<Preset>, Option<&Value>, Option<f64>) {
        match s {
            Series::Traffic => (
                self.traffic_pattern,
                self.traffic_pattern_config.as_ref(),
                self.traffic_pattern_mean,
            ),
            Series::Prompt => (
                self.prompt_len_pattern,
                self.prompt_len_pattern_config.as_ref(),
                self.prompt_len_pattern_mean,
            ),
            Series::Completion => (
                self.completion_len_pattern,
                self.completion_len_pattern_config.as_ref(),
                self.completion_len_pattern_mean,
            ),
        }
    }

    pub(super) fn source(&self, s: Series) -> Result<Option<Source<'_>>, SpecError> {
        let p = s.prefix();
        let (preset, config, mean) = self.parts(s);
        let err = |field: String, message: String| SpecError { field, message };
        if let Some(m) = mean
            && !(m.is_finite() && m > 0.0)
        {
            return Err(err(
                format!("synthetic.{p}_pattern_mean"),
                "must be > 0".into(),
            ));
        }
        match (preset, config) {
            (Some(_), Some(_)) => Err(err(
                format!("synthetic.{p}_pattern"),
                format!("cannot be combined with synthetic.{p}_pattern_config: give one of them"),
            )),
            (Some(preset), None) => {
                let default = if s == Series::Traffic {
                    DEFAULT_TRAFFIC_MEAN
                } else {
                    DEFAULT_LENGTH_MEAN
                };
                Ok(Some(Source::Preset(preset, mean.unwrap_or(default))))
            }
            (None, Some(cfg)) => {
                if mean.is_some() {
                    return Err(err(
                        format!("synthetic.{p}_pattern_mean"),
                        format!(
                            "applies to presets only; set `mean` in synthetic.{p}_pattern_config"
                        ),
                    ));
                }
                match cfg {
                    Value::String(name) if name.trim().is_empty() => Err(err(
                        format!("synthetic.{p}_pattern_config"),
                        "must not be empty".into(),
                    )),
                    Value::String(name) => Ok(Some(Source::File(name))),
                    Value::Object(_) => {
                        Pattern::from_json(cfg).map_err(|e| {
                            let field = match &e.key {
                                Some(k) => format!("synthetic.{p}_pattern_config.{k}"),
                                None => format!("synthetic.{p}_pattern_config"),
                            };
                            err(field, e.message)
                        })?;
                        Ok(Some(Source::Inline(cfg)))
                    }
                    other => Err(err(
                        format!("synthetic.{p}_pattern_config"),
                        format!("must be a file name or a JSON object, got {}", kind(other)),
                    )),
                }
            }
            (None, None) if mean.is_some() => Err(err(
                format!("synthetic.{p}_pattern_mean"),
                format!("needs synthetic.{p}_pattern (a preset)"),
            )),
            (None, None) => Ok(None),
        }
    }

    /// The file names this spec refers to, with their dotted field (for resolving them before generation,
    /// e.g. to reject unknown upload ids early).
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        [
            (
                "synthetic.traffic_pattern_config",
                &self.traffic_pattern_config,
            ),
            (
                "synthetic.prompt_len_pattern_config",
                &self.prompt_len_pattern_config,
            ),
            (
                "synthetic.completion_len_pattern_config",
                &self.completion_len_pattern_config,
            ),
        ]
        .into_iter()
        .filter_map(|(f, v)| match v {
            Some(Value::String(name)) => Some((f, name.as_str())),
            _ => None,
        })
        .collect()
    }

    /// Checks the options of a `synthetic` spec: a traffic pattern is required; inline configs are parsed.
    pub fn validate(&self, duration_ms: u64, interval_ms: u64) -> Result<(), SpecError> {
        if self.source(Series::Traffic)?.is_none() {
            return Err(SpecError {
                field: "synthetic.traffic_pattern".into(),
                message: format!(
                    "is required (a preset: {}; or synthetic.traffic_pattern_config)",
                    Preset::ALL.map(Preset::as_str).join(", ")
                ),
            });
        }
        self.source(Series::Prompt)?;
        self.source(Series::Completion)?;
        let points = duration_ms.div_ceil(interval_ms.max(1));
        if points > MAX_POINTS {
            return Err(SpecError {
                field: "interval_ms".into(),
                message: format!(
                    "gives {points} pattern points over duration_ms; at most {MAX_POINTS} are allowed"
                ),
            });
        }
        Ok(())
    }
}
