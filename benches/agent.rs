//! Throughput of agent-session generation (`trace_type: agent`). Run with `cargo bench --bench agent`.
//!
//! 1. The DAG and the output format alone (prompts from a stand-in factory): 100,000 sessions of the example
//!    config's shape, written as JSONL to a counting sink.
//! 2. The full path with the embedded Qwen tokenizer: prompts built and re-tokenized to their exact length.

use std::time::Instant;

use serde_json::json;
use workload_generator::domain::agent::config::AgentConfig;
use workload_generator::domain::agent::generate_sessions;
use workload_generator::domain::agent::prompt::{PromptFactory, TokenizerPrompts};
use workload_generator::domain::tokenizer::{TokenCounter, TokenizerError};
use workload_generator::domain::writer::{Entry, EntrySink, SinkError, format_jsonl};

/// Formats every entry as JSONL and counts the bytes (no I/O).
#[derive(Default)]
struct Counting {
    buf: Vec<u8>,
    bytes: u64,
}

impl EntrySink for Counting {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        self.buf.clear();
        format_jsonl(&mut self.buf, e, false);
        self.bytes += self.buf.len() as u64;
        Ok(())
    }
}

struct Named;

impl PromptFactory for Named {
    fn prompt(&self, sid: &str, nid: &str, target: u32) -> Result<(String, u32), TokenizerError> {
        Ok((format!("prompt:{sid}:{nid}"), target))
    }
}

/// CPU seconds used by this process so far (user + system, from /proc/self/stat; 0 when unavailable).
/// Reported next to wall time because the machine may be shared.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After the command name: state is not numeric, so utime and stime are the 11th and 12th numbers.
    f.get(10)
        .zip(f.get(11))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}

fn config(sessions: u64) -> AgentConfig {
    AgentConfig::from_value(&json!({
        "num_sessions": sessions, "session_arrival_rate_rps": 0.5, "turns_per_session": [2, 5],
        "parallel_tools": [1, 4], "tool_latency_ms": [100, 1500], "model_latency_ms": [100, 400],
        "think_time_ms": [250, 3000], "retry_probability": 0.1, "max_tool_retries": 1,
        "initial_prompt_tokens": 512, "context_growth_tokens": 256, "tool_result_tokens": 128,
        "output_tokens": 128, "seed": 17
    }))
    .expect("valid config")
}

fn main() {
    let cfg = config(100_000);
    let mut sink = Counting::default();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let s =
        generate_sessions(&cfg, 17, &Named, &mut sink, &|| false, &mut |_| {}).expect("generate");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "dag+jsonl   {:>8.3} s wall {:>7.2} s cpu  {} sessions, {} entries, {} model calls: {:>9.0} entries/s  {:>6.1} MB/s",
        secs,
        cpu,
        cfg.num_sessions,
        s.entries,
        s.requests,
        s.entries as f64 / secs,
        sink.bytes as f64 / 1e6 / secs
    );

    let tok = TokenCounter::embedded();
    let cfg = config(100);
    let prompts = TokenizerPrompts::new(&tok).expect("filler");
    let mut sink = Counting::default();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let s =
        generate_sessions(&cfg, 17, &prompts, &mut sink, &|| false, &mut |_| {}).expect("generate");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let tokens = s
        .prompt_length
        .as_ref()
        .map_or(0.0, |p| p.mean * p.count as f64);
    println!(
        "tokenizer   {:>8.3} s wall {:>7.2} s cpu  {} sessions, {} model calls ({:.0} prompt tokens): {:>7.0} calls/s  {:>5.2} M tokens/s  {:>6.1} MB/s",
        secs,
        cpu,
        cfg.num_sessions,
        s.requests,
        tokens,
        s.requests as f64 / secs,
        tokens / 1e6 / secs,
        sink.bytes as f64 / 1e6 / secs
    );
}
