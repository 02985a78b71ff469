//! The agent fields of the spec (`agent` inline, or the `agent_config` file) and their validation.

use serde_json::Value;

use super::config::{AgentConfig, AgentConfigError};
use crate::domain::spec::common::{SpecError, TraceType};

/// The spec field that names an agent config file (resolved through the [`FileResolver`]).
pub const CONFIG_FILE_FIELD: &str = "agent_config";

pub(super) fn spec_error(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

pub(super) fn inline_error(e: AgentConfigError) -> SpecError {
    let field = if e.field == "agent config" {
        "agent".to_string()
    } else {
        format!("agent.{}", e.field)
    };
    SpecError {
        field,
        message: e.message,
    }
}

/// Where a validated agent spec's config comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentSource {
    /// Given inline as `agent` (already parsed and checked).
    Inline(AgentConfig),
    /// The file (CLI: a path; service: an uploaded id) named by `agent_config`, read when the job runs.
    File(String),
}

/// Checks the agent fields of a spec: `agent` (inline config) or `agent_config` (file) for `trace_type:
/// agent`, and neither for other trace types. An inline config is parsed and validated here. Returns the
/// typed section for `trace_type: agent`, None for the other types.
pub fn section(
    trace_type: TraceType,
    agent: Option<&Value>,
    agent_config: Option<&String>,
) -> Result<Option<AgentSource>, SpecError> {
    let is_agent = trace_type == TraceType::Agent;
    match (agent, agent_config) {
        (Some(_), _) if !is_agent => Err(spec_error("agent", "is only used with trace_type agent")),
        (_, Some(_)) if !is_agent => Err(spec_error(
            CONFIG_FILE_FIELD,
            "is only used with trace_type agent",
        )),
        (Some(_), Some(_)) => Err(spec_error(
            "agent",
            "cannot be combined with agent_config: give one of them",
        )),
        (None, None) if is_agent => Err(spec_error(
            CONFIG_FILE_FIELD,
            "is required for trace_type agent (a config file; or give the config inline as \"agent\", \
             e.g. {} for every default)",
        )),
        (Some(v), None) => Ok(Some(AgentSource::Inline(
            AgentConfig::from_value(v).map_err(inline_error)?,
        ))),
        (None, Some(name)) if name.trim().is_empty() => {
            Err(spec_error(CONFIG_FILE_FIELD, "must not be empty"))
        }
        (None, Some(name)) => Ok(Some(AgentSource::File(name.clone()))),
        (None, None) => Ok(None),
    }
}
