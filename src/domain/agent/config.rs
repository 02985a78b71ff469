//! The agent-session config: the reference's JSON keys, defaults and validation.
//!
//! Unknown keys are ignored. Booleans are rejected wherever a number is expected. A range is an integer or
//! a `[min, max]` pair of integers (sampled uniformly, inclusive). Every error names its field.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::domain::json::py_kind;

/// An inclusive integer range `[min, max]`; a single integer `v` is `[v, v]` (and still consumes a draw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

impl IntRange {
    /// `[min, max]`.
    pub const fn new(min: u64, max: u64) -> Self {
        Self { min, max }
    }

    fn to_json(self) -> Value {
        if self.min == self.max {
            Value::from(self.min)
        } else {
            Value::from(vec![self.min, self.max])
        }
    }
}

/// Largest value accepted in an integer field (Python has no limit; this keeps the arithmetic exact).
pub const MAX_INT: u64 = i64::MAX as u64;

/// Largest prompt the config may ask for, in tokens (2,097,152: beyond any model's context).
pub const MAX_PROMPT_TOKENS: u64 = 1 << 21;

/// Most DAG nodes one session may have (a session is built at once, so this bounds memory and the time
/// between cancellation checks).
pub const MAX_SESSION_NODES: u128 = 1_000_000;

/// A config value that is invalid: the field and what is wrong. Displays as `field message`, e.g.
/// `session_arrival_rate_rps must be greater than zero`.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{field} {message}")]
pub struct AgentConfigError {
    /// The config key.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl AgentConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The agent-session config (`AgentSessionConfig` of the reference).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Number of sessions (default 10).
    pub num_sessions: u64,
    /// Poisson arrival rate of sessions per second (default 1.0).
    pub session_arrival_rate_rps: f64,
    /// Turns per session (default 3; min ≥ 1).
    pub turns_per_session: IntRange,
    /// Parallel tool calls per turn (default 2; min ≥ 1).
    pub parallel_tools: IntRange,
    /// Tool latency, ms (default [100, 500]).
    pub tool_latency_ms: IntRange,
    /// Model latency, ms (default [50, 150]).
    pub model_latency_ms: IntRange,
    /// Think time between turns, ms (default [0, 1000]).
    pub think_time_ms: IntRange,
    /// Probability that a tool attempt fails and is retried (default 0).
    pub retry_probability: f64,
    /// Retries per tool call at most (default 1).
    pub max_tool_retries: u64,
    /// Prompt tokens of the first plan call (default 256).
    pub initial_prompt_tokens: u64,
    /// Prompt tokens added per turn (default 128).
    pub context_growth_tokens: u64,
    /// Prompt tokens added per tool result (default 64).
    pub tool_result_tokens: u64,
    /// `output_length` of every model call (default 64).
    pub output_tokens: u64,
    /// The config's seed when it has one (the reference default is 0; here the spec's seed is used instead).
    pub seed: Option<i128>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            num_sessions: 10,
            session_arrival_rate_rps: 1.0,
            turns_per_session: IntRange::new(3, 3),
            parallel_tools: IntRange::new(2, 2),
            tool_latency_ms: IntRange::new(100, 500),
            model_latency_ms: IntRange::new(50, 150),
            think_time_ms: IntRange::new(0, 1000),
            retry_probability: 0.0,
            max_tool_retries: 1,
            initial_prompt_tokens: 256,
            context_growth_tokens: 128,
            tool_result_tokens: 64,
            output_tokens: 64,
            seed: None,
        }
    }
}

fn int_of(field: &str, v: &Value, what: &str) -> Result<i128, AgentConfigError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| AgentConfigError::new(field, format!("must be {what}, not {n}"))),
        Value::Bool(b) => Err(AgentConfigError::new(
            field,
            format!("must be {what}, not a boolean ({b})"),
        )),
        other => Err(AgentConfigError::new(
            field,
            format!("must be {what}, not {}", py_kind(other)),
        )),
    }
}

fn bounded(field: &str, v: i128, min: u64, what: &str) -> Result<u64, AgentConfigError> {
    if v < i128::from(min) {
        return Err(AgentConfigError::new(
            field,
            format!("must be {what}, got {v}"),
        ));
    }
    if v > i128::from(MAX_INT) {
        return Err(AgentConfigError::new(
            field,
            format!("must be at most {MAX_INT}, got {v}"),
        ));
    }
    Ok(v as u64)
}

fn int_field(
    obj: &Map<String, Value>,
    field: &str,
    default: u64,
    min: u64,
) -> Result<u64, AgentConfigError> {
    let what = if min == 0 {
        "an integer >= 0"
    } else {
        "a positive integer"
    };
    match obj.get(field) {
        None => Ok(default),
        Some(v) => bounded(field, int_of(field, v, what)?, min, what),
    }
}

fn number_field(
    obj: &Map<String, Value>,
    field: &str,
    default: f64,
) -> Result<f64, AgentConfigError> {
    match obj.get(field) {
        None => Ok(default),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Some(other) => Err(AgentConfigError::new(
            field,
            format!("must be a number, not {}", py_kind(other)),
        )),
    }
}

fn range_field(
    obj: &Map<String, Value>,
    field: &str,
    default: IntRange,
    lower: u64,
) -> Result<IntRange, AgentConfigError> {
    let what = "an integer or a [min, max] list of two integers";
    let (min, max) = match obj.get(field) {
        None => return Ok(default),
        Some(Value::Array(items)) => {
            if items.len() != 2 {
                return Err(AgentConfigError::new(
                    field,
                    format!("must be {what}, got a list of {} items", items.len()),
                ));
            }
            (
                int_of(field, &items[0], what)?,
                int_of(field, &items[1], what)?,
            )
        }
        Some(v) => {
            let x = int_of(field, v, what)?;
            (x, x)
        }
    };
    if min < i128::from(lower) {
        return Err(AgentConfigError::new(
            field,
            format!("must have min >= {lower}, got {min}"),
        ));
    }
    if min > max {
        return Err(AgentConfigError::new(
            field,
            format!("must have min <= max, got [{min}, {max}]"),
        ));
    }
    if max > i128::from(MAX_INT) {
        return Err(AgentConfigError::new(
            field,
            format!("must have max <= {MAX_INT}, got {max}"),
        ));
    }
    Ok(IntRange::new(min as u64, max as u64))
}

impl AgentConfig {
    /// Parses and validates a config object (the reference's `AgentSessionConfig.from_dict`).
    pub fn from_value(v: &Value) -> Result<Self, AgentConfigError> {
        let Value::Object(obj) = v else {
            return Err(AgentConfigError::new(
                "agent config",
                format!("must be a JSON object, not {}", py_kind(v)),
            ));
        };
        let d = Self::default();
        let num_sessions = int_field(obj, "num_sessions", d.num_sessions, 1)?;
        let rate = number_field(obj, "session_arrival_rate_rps", d.session_arrival_rate_rps)?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(AgentConfigError::new(
                "session_arrival_rate_rps",
                "must be greater than zero",
            ));
        }
        let turns_per_session = range_field(obj, "turns_per_session", d.turns_per_session, 1)?;
        let parallel_tools = range_field(obj, "parallel_tools", d.parallel_tools, 1)?;
        let tool_latency_ms = range_field(obj, "tool_latency_ms", d.tool_latency_ms, 0)?;
        let model_latency_ms = range_field(obj, "model_latency_ms", d.model_latency_ms, 0)?;
        let think_time_ms = range_field(obj, "think_time_ms", d.think_time_ms, 0)?;
        let retry_probability = number_field(obj, "retry_probability", d.retry_probability)?;
        if !(0.0..=1.0).contains(&retry_probability) {
            return Err(AgentConfigError::new(
                "retry_probability",
                format!("must be between 0 and 1, got {retry_probability}"),
            ));
        }
        let max_tool_retries = int_field(obj, "max_tool_retries", d.max_tool_retries, 0)?;
        let initial_prompt_tokens =
            int_field(obj, "initial_prompt_tokens", d.initial_prompt_tokens, 1)?;
        let context_growth_tokens =
            int_field(obj, "context_growth_tokens", d.context_growth_tokens, 0)?;
        let tool_result_tokens = int_field(obj, "tool_result_tokens", d.tool_result_tokens, 0)?;
        let output_tokens = int_field(obj, "output_tokens", d.output_tokens, 1)?;
        if output_tokens > u64::from(u32::MAX) {
            return Err(AgentConfigError::new(
                "output_tokens",
                format!("must be at most {}, got {output_tokens}", u32::MAX),
            ));
        }
        let seed = match obj.get("seed") {
            None => None,
            Some(v) => Some(int_of("seed", v, "an integer")?),
        };
        let cfg = Self {
            num_sessions,
            session_arrival_rate_rps: rate,
            turns_per_session,
            parallel_tools,
            tool_latency_ms,
            model_latency_ms,
            think_time_ms,
            retry_probability,
            max_tool_retries,
            initial_prompt_tokens,
            context_growth_tokens,
            tool_result_tokens,
            output_tokens,
            seed,
        };
        let largest = cfg.max_prompt_tokens();
        if largest > u128::from(MAX_PROMPT_TOKENS) {
            return Err(AgentConfigError::new(
                "initial_prompt_tokens",
                format!(
                    "with context_growth_tokens, tool_result_tokens and the turn and tool ranges gives prompts of up to \
                     {largest} tokens; at most {MAX_PROMPT_TOKENS} are supported"
                ),
            ));
        }
        let nodes = cfg.max_session_nodes();
        if nodes > MAX_SESSION_NODES {
            return Err(AgentConfigError::new(
                "turns_per_session",
                format!(
                    "with parallel_tools and max_tool_retries allows up to {nodes} DAG nodes in one session; at most \
                     {MAX_SESSION_NODES} are supported"
                ),
            ));
        }
        Ok(cfg)
    }

    /// The most DAG nodes one session can have: per turn a plan, a join, a follow-up, a wait and every tool
    /// attempt (retries only count when `retry_probability` > 0).
    pub fn max_session_nodes(&self) -> u128 {
        let attempts = if self.retry_probability > 0.0 {
            u128::from(self.max_tool_retries) + 1
        } else {
            1
        };
        u128::from(self.turns_per_session.max)
            * (4 + u128::from(self.parallel_tools.max) * attempts)
    }

    /// The most requests (model calls: a plan and a follow-up per turn) the config can produce.
    pub fn max_model_calls(&self) -> f64 {
        self.num_sessions as f64 * 2.0 * self.turns_per_session.max as f64
    }

    /// The longest prompt the config can ask for: the last turn's follow-up with the most tools.
    pub fn max_prompt_tokens(&self) -> u128 {
        u128::from(self.initial_prompt_tokens)
            + u128::from(self.turns_per_session.max - 1) * u128::from(self.context_growth_tokens)
            + u128::from(self.parallel_tools.max) * u128::from(self.tool_result_tokens)
    }

    /// The config as a JSON object with every key (ranges as an integer when min == max).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("num_sessions".into(), self.num_sessions.into());
        m.insert(
            "session_arrival_rate_rps".into(),
            self.session_arrival_rate_rps.into(),
        );
        m.insert("turns_per_session".into(), self.turns_per_session.to_json());
        m.insert("parallel_tools".into(), self.parallel_tools.to_json());
        m.insert("tool_latency_ms".into(), self.tool_latency_ms.to_json());
        m.insert("model_latency_ms".into(), self.model_latency_ms.to_json());
        m.insert("think_time_ms".into(), self.think_time_ms.to_json());
        m.insert("retry_probability".into(), self.retry_probability.into());
        m.insert("max_tool_retries".into(), self.max_tool_retries.into());
        m.insert(
            "initial_prompt_tokens".into(),
            self.initial_prompt_tokens.into(),
        );
        m.insert(
            "context_growth_tokens".into(),
            self.context_growth_tokens.into(),
        );
        m.insert("tool_result_tokens".into(), self.tool_result_tokens.into());
        m.insert("output_tokens".into(), self.output_tokens.into());
        if let Some(seed) = self.seed {
            let n = i64::try_from(seed)
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(seed as u64));
            m.insert("seed".into(), n);
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        AgentConfig::from_value(&v).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = AgentConfig::from_value(&json!({"whatever": [1, 2], "notes": "x"})).unwrap();
        assert_eq!(c, AgentConfig::default());
        assert_eq!(c.turns_per_session, IntRange::new(3, 3));
        assert_eq!(c.tool_latency_ms, IntRange::new(100, 500));
        assert_eq!(c.seed, None);
    }

    #[test]
    fn ranges_are_an_int_or_a_pair() {
        let c = AgentConfig::from_value(&json!({
            "turns_per_session": [2, 5], "parallel_tools": 4, "think_time_ms": [0, 0],
            "session_arrival_rate_rps": 2, "retry_probability": 1, "seed": -3
        }))
        .unwrap();
        assert_eq!(c.turns_per_session, IntRange::new(2, 5));
        assert_eq!(c.parallel_tools, IntRange::new(4, 4));
        assert_eq!(c.think_time_ms, IntRange::new(0, 0));
        assert_eq!(c.session_arrival_rate_rps, 2.0);
        assert_eq!(c.retry_probability, 1.0);
        assert_eq!(c.seed, Some(-3));
        let back = AgentConfig::from_value(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn every_error_names_its_field() {
        assert_eq!(
            err(json!({"session_arrival_rate_rps": 0})),
            "session_arrival_rate_rps must be greater than zero"
        );
        assert_eq!(
            err(json!({"session_arrival_rate_rps": -1.5})),
            "session_arrival_rate_rps must be greater than zero"
        );
        assert_eq!(
            err(json!({"session_arrival_rate_rps": true})),
            "session_arrival_rate_rps must be a number, not a boolean"
        );
        assert_eq!(
            err(json!({"num_sessions": 0})),
            "num_sessions must be a positive integer, got 0"
        );
        assert_eq!(
            err(json!({"num_sessions": 2.5})),
            "num_sessions must be a positive integer, not 2.5"
        );
        assert_eq!(
            err(json!({"num_sessions": true})),
            "num_sessions must be a positive integer, not a boolean (true)"
        );
        assert_eq!(
            err(json!({"turns_per_session": 0})),
            "turns_per_session must have min >= 1, got 0"
        );
        assert_eq!(
            err(json!({"parallel_tools": [3, 2]})),
            "parallel_tools must have min <= max, got [3, 2]"
        );
        assert_eq!(
            err(json!({"tool_latency_ms": [1, 2, 3]})),
            "tool_latency_ms must be an integer or a [min, max] list of two integers, got a list of 3 items"
        );
        assert_eq!(
            err(json!({"model_latency_ms": [-1, 5]})),
            "model_latency_ms must have min >= 0, got -1"
        );
        assert_eq!(
            err(json!({"think_time_ms": [false, 5]})),
            "think_time_ms must be an integer or a [min, max] list of two integers, not a boolean (false)"
        );
        assert_eq!(
            err(json!({"retry_probability": 1.5})),
            "retry_probability must be between 0 and 1, got 1.5"
        );
        assert_eq!(
            err(json!({"max_tool_retries": -1})),
            "max_tool_retries must be an integer >= 0, got -1"
        );
        assert_eq!(
            err(json!({"initial_prompt_tokens": 0})),
            "initial_prompt_tokens must be a positive integer, got 0"
        );
        assert_eq!(
            err(json!({"context_growth_tokens": "10"})),
            "context_growth_tokens must be an integer >= 0, not a string"
        );
        assert_eq!(
            err(json!({"tool_result_tokens": null})),
            "tool_result_tokens must be an integer >= 0, not null"
        );
        assert_eq!(
            err(json!({"output_tokens": 0})),
            "output_tokens must be a positive integer, got 0"
        );
        assert_eq!(
            err(json!({"seed": 1.0})),
            "seed must be an integer, not 1.0"
        );
        assert_eq!(
            err(json!([1])),
            "agent config must be a JSON object, not a list"
        );
        let e = AgentConfig::from_value(&json!({"turns_per_session": [1, 1_000_000]})).unwrap_err();
        assert_eq!(e.field, "initial_prompt_tokens");
        let e = AgentConfig::from_value(&json!({
            "turns_per_session": 1000, "parallel_tools": 10, "retry_probability": 1, "max_tool_retries": 1000,
            "context_growth_tokens": 0
        }))
        .unwrap_err();
        assert_eq!(e.field, "turns_per_session");
        assert!(e.message.contains("up to 10014000 DAG nodes"), "{e}");
        // Retries cannot happen with retry_probability 0, so they do not count.
        AgentConfig::from_value(&json!({"turns_per_session": 1000, "max_tool_retries": 1_000_000}))
            .unwrap();
        let e = AgentConfig::from_value(&json!({"initial_prompt_tokens": 1u64 << 40})).unwrap_err();
        assert_eq!(e.field, "initial_prompt_tokens");
        assert!(e.message.contains("at most 2097152"), "{e}");
    }
}
