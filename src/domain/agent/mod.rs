//! `trace_type: agent`: synthetic agent-session DAG workloads, bit-for-bit identical to the reference's
//! `agent_session_generator.py` for the same config and seed.
//!
//! * [`config`]: the config keys, defaults and validation (every error names its field).
//! * [`pyrandom`]: CPython's `random.Random` (MT19937, `randint`, `random`, `expovariate`), bit-exact.
//! * [`dag`]: the per-session DAG (plan → parallel tools with retries → join → follow-up → wait) and the
//!   timeline, built lazily in timestamp order.
//! * [`prompt`]: prompts of the model calls, exactly `prompt_tokens` long with the tokenizer.
//!
//! Each output entry is `{"schema_version", "timestamp", "requests", "events"}`: model calls are requests
//! (with an `agent` object), tool/retry/join/wait nodes are events.
//!
//! Seed: the config's `seed` key seeds the sessions when present (as in the reference); otherwise the spec's
//! seed does (the reference's default would be 0).

pub mod config;
pub mod dag;
pub mod prompt;
pub mod pyrandom;
pub mod spec;

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{Value, json};

use self::config::AgentConfig;
use self::dag::{Event, EventKind, ModelCall, SCHEMA_VERSION, Slot, Timeline};
use self::prompt::{PromptFactory, TokenizerPrompts};
use self::spec::spec_error;
pub use self::spec::{AgentSource, CONFIG_FILE_FIELD, section};
use super::dataset::SessionId;
use super::emit::{GenerateError, GenerateInput, Progress, Summary};
use super::files::{FileResolver, InputError};
use super::spec::ValidatedSpec;
use super::stats::{ErrorCollector, Histogram, round3};
use super::writer::{Entry, EntryExtra, EntrySink, Request};

/// 1-based line of the first `"key"` in `text` (to point config errors at a line).
fn line_of_key(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\""))?;
    Some(text[..at].bytes().filter(|&b| b == b'\n').count() as u64 + 1)
}

/// Parses an agent config file's text; errors name the file, the line and the field.
pub fn parse_config_file(name: &str, text: &str) -> Result<AgentConfig, InputError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m)
            .to_string();
        InputError::at(
            name,
            e.line() as u64,
            None,
            format!("invalid JSON at column {}: {msg}", e.column()),
        )
    })?;
    AgentConfig::from_value(&v).map_err(|e| match line_of_key(text, &e.field) {
        Some(line) => InputError::at(name, line, None, e.to_string()),
        None => InputError::file(name, e.to_string()),
    })
}

/// Loads the agent config of a validated spec: the inline one, or the file named by `agent_config`.
pub fn load_config(
    source: &AgentSource,
    files: &dyn FileResolver,
) -> Result<AgentConfig, GenerateError> {
    match source {
        AgentSource::Inline(cfg) => Ok(cfg.clone()),
        AgentSource::File(name) => {
            let path = files.resolve(CONFIG_FILE_FIELD, name)?;
            let text = read_text(name, &path)?;
            Ok(parse_config_file(name, &text)?)
        }
    }
}

fn read_text(name: &str, path: &Path) -> Result<String, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError::file(name, e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::file(
            name,
            format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// The empty prompt collection used for `trace_type: agent`, which reads no prompt file (prompts are built
/// with the tokenizer).
pub use crate::domain::inputs::no_prompts;

/// Generates the agent workload of `spec` (`trace_type: agent`).
pub fn generate_agent(
    spec: &ValidatedSpec,
    source: &AgentSource,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let cfg = load_config(source, input.files)?;
    let (seed, from_config) = match cfg.seed {
        Some(s) => (s, true),
        None => (i128::from(spec.seed()), false),
    };
    let prompts = TokenizerPrompts::new(input.tokenizer)?;
    let mut summary = generate_sessions(&cfg, seed, &prompts, sink, input.cancel, input.progress)?;
    summary.notes.push(if from_config {
        format!("sessions seeded with the agent config's seed {seed} (the spec's seed is not used)")
    } else {
        format!("sessions seeded with the spec's seed {seed} (the agent config has no seed)")
    });
    Ok(summary)
}

fn model_call_json(c: &ModelCall) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "task_id": c.session.task_id,
        "node_id": c.node_id,
        "parent_ids": c.parent_ids,
        "node_type": "model",
        "turn": c.turn,
        "phase": c.phase.as_str(),
        "expected_latency_ms": c.expected_latency_ms,
        "state_refs": [c.session.state_ref],
        "context_delta_tokens": c.context_delta_tokens,
    })
}

fn event_json(e: &Event) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("schema_version".into(), SCHEMA_VERSION.into());
    m.insert("session_id".into(), e.session.session_id.clone().into());
    m.insert("task_id".into(), e.session.task_id.clone().into());
    m.insert("node_id".into(), e.node_id.clone().into());
    m.insert("parent_ids".into(), e.parent_ids.clone().into());
    m.insert("node_type".into(), e.node_type().into());
    m.insert("turn".into(), e.turn.into());
    if let EventKind::Tool {
        branch,
        attempt,
        failed,
    } = e.kind
    {
        m.insert("branch".into(), branch.into());
        m.insert("attempt".into(), attempt.into());
        m.insert("duration_ms".into(), e.duration_ms.into());
        m.insert(
            "status".into(),
            if failed { "failed" } else { "succeeded" }.into(),
        );
        m.insert("side_effects".into(), false.into());
    } else {
        m.insert("duration_ms".into(), e.duration_ms.into());
    }
    m.insert(
        "state_refs".into(),
        vec![e.session.state_ref.clone()].into(),
    );
    m.insert("context_delta_tokens".into(), e.context_delta_tokens.into());
    Value::Object(m)
}

/// Model calls whose prompts are built together (in parallel) before their entries are written: at most
/// this many calls...
const PROMPT_BATCH: usize = 64;
/// ...or about this many prompt tokens (bounds memory and the time between cancellation checks).
const PROMPT_BATCH_TOKENS: u64 = 1 << 20;

/// Counts and statistics of what was emitted.
#[derive(Debug, Default)]
struct Emitted {
    s: Summary,
    plen: Histogram,
    olen: Histogram,
    err: ErrorCollector,
    tool: u64,
    retry: u64,
    join: u64,
    wait: u64,
}

impl Emitted {
    /// Writes the entry of one slot whose prompts are built.
    fn entry(
        &mut self,
        ts: u64,
        slot: Slot,
        prompts: impl Iterator<Item = (String, u32)>,
        output_length: u32,
        sink: &mut dyn EntrySink,
    ) -> Result<(), GenerateError> {
        let Slot { requests, events } = slot;
        let session_ids: Vec<SessionId> = requests
            .iter()
            .map(|c| SessionId::Str(c.session.session_id.clone()))
            .collect();
        let mut reqs = Vec::with_capacity(requests.len());
        for ((c, sid), (text, len)) in requests.iter().zip(&session_ids).zip(prompts) {
            self.plen.add(u64::from(len));
            self.olen.add(u64::from(output_length));
            self.err.add(len, prompt_target(c));
            reqs.push(Request {
                prompt: Cow::Owned(text),
                prompt_length: len,
                output_length: Some(output_length),
                session_id: Some(sid),
                agent: Some(model_call_json(c)),
            });
        }
        for e in &events {
            match e.kind {
                EventKind::Tool { attempt: 0, .. } => self.tool += 1,
                EventKind::Tool { .. } => self.retry += 1,
                EventKind::Join => self.join += 1,
                EventKind::Wait => self.wait += 1,
            }
        }
        let entry = Entry {
            timestamp: ts,
            requests: reqs,
            extra: Some(EntryExtra {
                schema_version: SCHEMA_VERSION.to_string(),
                events: events.iter().map(event_json).collect(),
            }),
        };
        sink.entry(&entry)?;
        self.s.entries += 1;
        self.s.requests += entry.requests.len() as u64;
        self.s.first_timestamp_ms.get_or_insert(ts);
        self.s.last_timestamp_ms = Some(ts);
        Ok(())
    }
}

fn prompt_target(c: &ModelCall) -> u32 {
    u32::try_from(c.prompt_tokens).expect("validated <= MAX_PROMPT_TOKENS")
}

/// Builds the prompts of every model call of `batch`, in parallel, in order.
fn build_prompts(
    batch: &[(u64, Slot)],
    prompts: &dyn PromptFactory,
) -> Result<Vec<(String, u32)>, GenerateError> {
    let calls: Vec<&ModelCall> = batch.iter().flat_map(|(_, s)| &s.requests).collect();
    calls
        .par_iter()
        .map(|c| prompts.prompt(&c.session.session_id, &c.node_id, prompt_target(c)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(GenerateError::from)
}

/// Generates the sessions of `cfg` with `seed` into `sink`, with prompts from `prompts`. The timeline is
/// built lazily, so memory follows the overlapping sessions rather than the workload; prompts are built in
/// parallel batches.
pub fn generate_sessions(
    cfg: &AgentConfig,
    seed: i128,
    prompts: &dyn PromptFactory,
    sink: &mut dyn EntrySink,
    cancel: &(dyn Fn() -> bool + Sync),
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, GenerateError> {
    let mut timeline = Timeline::new(cfg, seed);
    let mut out = Emitted::default();
    let mut last_progress = 0u64;
    let output_length = u32::try_from(cfg.output_tokens).expect("validated <= u32::MAX");
    let mut batch: Vec<(u64, Slot)> = Vec::new();
    let mut batch_calls = 0usize;
    let mut batch_tokens = 0u64;
    let mut done = false;
    while !done {
        if cancel() {
            return Err(GenerateError::Cancelled);
        }
        match timeline.next() {
            Some(item) => {
                let (ts, slot) = item.map_err(|e| spec_error("agent", e.to_string()))?;
                batch_calls += slot.requests.len();
                batch_tokens += slot.requests.iter().map(|c| c.prompt_tokens).sum::<u64>();
                batch.push((ts, slot));
                if batch_calls < PROMPT_BATCH && batch_tokens < PROMPT_BATCH_TOKENS {
                    continue;
                }
            }
            None => done = true,
        }
        let built = build_prompts(&batch, prompts)?;
        let mut built = built.into_iter();
        for (ts, slot) in batch.drain(..) {
            let n = slot.requests.len();
            out.entry(ts, slot, built.by_ref().take(n), output_length, sink)?;
        }
        batch_calls = 0;
        batch_tokens = 0;
        if out.s.requests - last_progress >= 256 {
            last_progress = out.s.requests;
            progress(Progress {
                fraction: timeline.sessions_built() as f64 / cfg.num_sessions as f64,
                requests: out.s.requests,
            });
        }
    }
    let Emitted {
        mut s,
        plen,
        olen,
        err,
        tool,
        retry,
        join,
        wait,
    } = out;
    let span = s.last_timestamp_ms.unwrap_or(0);
    s.duration_ms = span;
    s.mean_rate_qps = if span > 0 {
        round3(s.requests as f64 / (span as f64 / 1000.0))
    } else {
        0.0
    };
    s.prompt_length = plen.summary();
    s.output_length = olen.summary();
    s.matching.prompt_length_error = err.summary();
    s.sessions_started = Some(cfg.num_sessions);
    s.sessions_finished = Some(cfg.num_sessions);
    s.notes.push(format!(
        "agent sessions: {} sessions, {} model calls, {} events ({} tool, {} retry, {} join, {} wait)",
        cfg.num_sessions,
        s.requests,
        tool + retry + join + wait,
        tool,
        retry,
        join,
        wait
    ));
    progress(Progress {
        fraction: 1.0,
        requests: s.requests,
    });
    Ok(s)
}

#[cfg(test)]
mod tests;
