//! Golden vectors of the reference (§4.7), byte-level output, validation, determinism and prompt lengths.
//!
//! The fixtures under `tests/fixtures/agent/` are the reference's output for the same configs and seeds with
//! the reference tests' fake prompt factory (`(f"prompt:{sid}:{nid}", target)`), written with Python's
//! `json.dumps` (JSONL) and `json.dumps(workload, indent=4)` (JSON); see `tests/fixtures/NOTICE.md`.

use std::io::Read;

use serde_json::{Value, json};

use super::config::AgentConfig;
use super::dag::session_starts;
use super::prompt::PromptFactory;
use super::*;
use crate::domain::files::PathResolver;
use crate::domain::lengths::TokenizedDataset;
use crate::domain::spec::GenerationSpec;
use crate::domain::spec::OutputFormat;
use crate::domain::spec::TraceType;
use crate::domain::tokenizer::{TokenCounter, TokenizerError};
use crate::domain::writer::{VecSink, WorkloadFile};

const EXAMPLE_CONFIG: &str = include_str!("../../../examples/agent-session-config.json");
const TEST_CONFIG_JSONL: &str = include_str!("../../../tests/fixtures/agent/test-config.jsonl");
const TEST_CONFIG_JSON: &str = include_str!("../../../tests/fixtures/agent/test-config.json");
const EXAMPLE_JSONL_GZ: &[u8] =
    include_bytes!("../../../tests/fixtures/agent/example-seed17.jsonl.gz");

/// The reference tests' fake factory: the prompt names the node, the length is the target.
struct Fake;

impl PromptFactory for Fake {
    fn prompt(&self, sid: &str, nid: &str, target: u32) -> Result<(String, u32), TokenizerError> {
        Ok((format!("prompt:{sid}:{nid}"), target))
    }
}

/// The config of the reference's unit tests.
fn test_config() -> Value {
    json!({
        "num_sessions": 2, "session_arrival_rate_rps": 2, "turns_per_session": 2, "parallel_tools": 2,
        "tool_latency_ms": [10, 20], "model_latency_ms": [5, 10], "think_time_ms": [1, 3],
        "retry_probability": 0.0, "initial_prompt_tokens": 100, "context_growth_tokens": 20,
        "tool_result_tokens": 10, "output_tokens": 16, "seed": 7
    })
}

fn fake_run(cfg: &AgentConfig, sink: &mut dyn EntrySink) -> Summary {
    generate_sessions(
        cfg,
        cfg.seed.unwrap_or(0),
        &Fake,
        sink,
        &|| false,
        &mut |_| {},
    )
    .unwrap()
}

fn lines(jsonl: &[u8]) -> Vec<Value> {
    jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn assert_same_text(got: &str, want: &str) {
    if got != want {
        let at = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "output differs from the reference at line {}:\n got: {:?}\nwant: {:?}",
            at + 1,
            got.lines().nth(at),
            want.lines().nth(at)
        );
    }
}

#[test]
fn golden_test_config_is_byte_identical_in_jsonl_and_json() {
    let cfg = AgentConfig::from_value(&test_config()).unwrap();
    let mut sink = VecSink::default();
    let summary = fake_run(&cfg, &mut sink);
    assert_same_text(std::str::from_utf8(&sink.jsonl).unwrap(), TEST_CONFIG_JSONL);
    assert_eq!(summary.entries, 14);
    assert_eq!(summary.requests, 8);
    let ts: Vec<u64> = lines(&sink.jsonl)
        .iter()
        .map(|e| e["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ts,
        [0, 6, 26, 35, 36, 45, 61, 400, 409, 428, 437, 440, 448, 461]
    );
    // The pretty JSON array (indent 4) as the reference writes it.
    let dir = tempfile::tempdir().unwrap();
    let mut file = WorkloadFile::create(dir.path(), OutputFormat::Json, true, None).unwrap();
    fake_run(&cfg, &mut file);
    let path = file.commit().unwrap();
    assert_same_text(&std::fs::read_to_string(path).unwrap(), TEST_CONFIG_JSON);
}

#[test]
fn reference_unit_test_properties_hold() {
    let cfg = AgentConfig::from_value(&test_config()).unwrap();
    let mut sink = VecSink::default();
    fake_run(&cfg, &mut sink);
    let entries = lines(&sink.jsonl);
    let mut nodes = std::collections::HashSet::new();
    let mut parents = Vec::new();
    let mut first_session_lengths = Vec::new();
    for e in &entries {
        assert_eq!(e["schema_version"], SCHEMA_VERSION);
        for r in e["requests"].as_array().unwrap() {
            nodes.insert(r["agent"]["node_id"].as_str().unwrap().to_string());
            parents.extend(r["agent"]["parent_ids"].as_array().unwrap().clone());
            assert!(r["session_id"].as_str().unwrap().starts_with("session_"));
            assert_eq!(r["output_length"], 16);
            if r["session_id"] == "session_f2c1c82b66d207fd" {
                first_session_lengths.push(r["prompt_length"].as_u64().unwrap());
            }
        }
        for ev in e["events"].as_array().unwrap() {
            nodes.insert(ev["node_id"].as_str().unwrap().to_string());
            parents.extend(ev["parent_ids"].as_array().unwrap().clone());
            let delta = ev["context_delta_tokens"].as_u64().unwrap();
            match ev["node_type"].as_str().unwrap() {
                "tool" | "retry" if ev["status"] == "succeeded" => assert_eq!(delta, 10),
                "join" => assert_eq!(delta, 0),
                _ => {}
            }
        }
    }
    for p in parents {
        assert!(nodes.contains(p.as_str().unwrap()), "dangling parent {p}");
    }
    assert_eq!(first_session_lengths, [100, 120, 120, 140]);
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn golden_example_config_seed_17() {
    let cfg = parse_config_file("agent-session-config.json", EXAMPLE_CONFIG).unwrap();
    assert_eq!(cfg.seed, Some(17));
    let mut sink = VecSink::default();
    let summary = fake_run(&cfg, &mut sink);
    assert_same_text(
        std::str::from_utf8(&sink.jsonl).unwrap(),
        &gunzip(EXAMPLE_JSONL_GZ),
    );
    // The figures of §4.7.
    assert_eq!(summary.entries, 177);
    assert_eq!(summary.requests, 86);
    assert_eq!(summary.last_timestamp_ms, Some(34_078));
    assert!(
        summary.notes[0].contains("198 events (107 tool, 15 retry, 43 join, 33 wait)"),
        "{:?}",
        summary.notes
    );
    assert_eq!(
        session_starts(&cfg, 17).unwrap(),
        [0, 4047, 4644, 6094, 7989, 9730, 16009, 18010, 18961, 19603]
    );
    let entries = lines(&sink.jsonl);
    assert_eq!(
        entries[0]["requests"][0]["session_id"],
        "session_eadd5b688ee68e19"
    );
    let events: usize = entries
        .iter()
        .map(|e| e["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(events, 198);
}

fn tokenized_empty() -> TokenizedDataset {
    TokenizedDataset {
        dataset: std::sync::Arc::new(no_prompts()),
        prompt_len: Vec::new(),
        completion_len: Vec::new(),
        from_cache: false,
    }
}

fn run_spec(spec: GenerationSpec, tok: &TokenCounter) -> Result<(Vec<u8>, Summary), GenerateError> {
    let v = spec.validate()?;
    let data = tokenized_empty();
    let mut sink = VecSink::default();
    let summary = crate::domain::generate::generate(
        &v,
        GenerateInput {
            data: &data,
            tokenizer: tok,
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )?;
    Ok((sink.jsonl, summary))
}

fn agent_spec(config: Value) -> GenerationSpec {
    let mut s = GenerationSpec::new(TraceType::Agent);
    s.agent = Some(config);
    s
}

#[test]
fn example_config_with_the_tokenizer_gives_exact_prompts_and_the_reference_dag() {
    let tok = TokenCounter::embedded();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.json");
    std::fs::write(&path, EXAMPLE_CONFIG).unwrap();
    let mut spec = GenerationSpec::new(TraceType::Agent);
    spec.agent_config = Some(path.display().to_string());
    let (out, summary) = run_spec(spec, &tok).unwrap();
    let got = lines(&out);
    let want = lines(gunzip(EXAMPLE_JSONL_GZ).as_bytes());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        // Everything but the prompt text is the reference's; prompts have exactly the target length.
        assert_eq!(g["timestamp"], w["timestamp"]);
        assert_eq!(g["events"], w["events"]);
        let (gr, wr) = (
            g["requests"].as_array().unwrap(),
            w["requests"].as_array().unwrap(),
        );
        assert_eq!(gr.len(), wr.len());
        for (a, b) in gr.iter().zip(wr) {
            for key in ["prompt_length", "output_length", "session_id", "agent"] {
                assert_eq!(a[key], b[key], "{key}");
            }
            let text = a["prompt"].as_str().unwrap();
            let sid = a["session_id"].as_str().unwrap();
            let nid = a["agent"]["node_id"].as_str().unwrap();
            assert!(text.starts_with(&prompt::prefix(sid, nid)));
            assert_eq!(
                u64::from(tok.count(text, false).unwrap()),
                a["prompt_length"].as_u64().unwrap(),
                "prompt of {nid}"
            );
        }
    }
    let err = summary.matching.prompt_length_error.unwrap();
    assert_eq!((err.targeted, err.max), (86, 0.0));
    assert_eq!(summary.prompt_length.unwrap().min, 512);
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("agent config's seed 17")),
        "{:?}",
        summary.notes
    );
}

#[test]
fn same_seed_same_bytes_and_the_spec_seed_is_used_without_a_config_seed() {
    let tok = TokenCounter::embedded();
    let config = json!({"num_sessions": 3, "turns_per_session": [1, 3], "parallel_tools": [1, 3],
                        "retry_probability": 0.3, "initial_prompt_tokens": 40, "context_growth_tokens": 8,
                        "tool_result_tokens": 4, "output_tokens": 8});
    let with_seed = |seed: u64| {
        let mut s = agent_spec(config.clone());
        s.seed = Some(seed);
        run_spec(s, &tok).unwrap().0
    };
    let a = with_seed(5);
    assert_eq!(a, with_seed(5));
    assert_ne!(a, with_seed(6));
    // The spec seed behaves as the config key "seed" would.
    let mut keyed = config.clone();
    keyed["seed"] = json!(5);
    let mut s = agent_spec(keyed);
    s.seed = Some(999);
    assert_eq!(run_spec(s, &tok).unwrap().0, a);
    // Every prompt re-tokenizes to its prompt_length.
    for e in lines(&a) {
        for r in e["requests"].as_array().unwrap() {
            let n = tok.count(r["prompt"].as_str().unwrap(), false).unwrap();
            assert_eq!(u64::from(n), r["prompt_length"].as_u64().unwrap());
        }
    }
}

#[test]
fn spec_validation_names_the_field() {
    let e = GenerationSpec::new(TraceType::Agent)
        .validate()
        .unwrap_err();
    assert_eq!(e.field, "agent_config");
    let e = agent_spec(json!({"session_arrival_rate_rps": 0}))
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "agent.session_arrival_rate_rps must be greater than zero"
    );
    let e = agent_spec(json!("x")).validate().unwrap_err();
    assert_eq!(e.to_string(), "agent must be a JSON object, not a string");
    let mut s = agent_spec(json!({}));
    s.agent_config = Some("a.json".into());
    assert_eq!(s.validate().unwrap_err().field, "agent");
    let mut s = GenerationSpec::new(TraceType::Constant);
    s.agent = Some(json!({}));
    assert_eq!(
        s.validate().unwrap_err().to_string(),
        "agent is only used with trace_type agent"
    );
    // Round trip of the spec with an inline config (the manifest keeps it).
    let v = agent_spec(json!({"num_sessions": 1})).validate().unwrap();
    let back: GenerationSpec =
        serde_json::from_str(&serde_json::to_string(v.spec()).unwrap()).unwrap();
    assert_eq!(&back, v.spec());
    // Defaults: `{}` gives 10 sessions of 3 turns.
    let (_, summary) = run_spec(agent_spec(json!({})), &TokenCounter::embedded()).unwrap();
    assert_eq!(summary.requests, 10 * 3 * 2);
}

#[test]
fn config_file_errors_name_file_line_and_field() {
    let e = parse_config_file(
        "cfg.json",
        "{\n  \"num_sessions\": 2,\n  \"session_arrival_rate_rps\": 0\n}",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cfg.json:3: session_arrival_rate_rps must be greater than zero"
    );
    let e = parse_config_file("cfg.json", "{\n  \"num_sessions\": 2,\n}").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(
        e.to_string()
            .starts_with("cfg.json:3: invalid JSON at column 1: trailing comma"),
        "{e}"
    );
    // A missing file is a spec error on agent_config.
    let mut s = GenerationSpec::new(TraceType::Agent);
    s.agent_config = Some("/no/such/agent.json".into());
    let e = run_spec(s, &TokenCounter::embedded()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "agent_config file '/no/such/agent.json' does not exist"
    );
}

#[test]
fn cancellation_stops_generation() {
    let cfg = AgentConfig::from_value(&test_config()).unwrap();
    let r = generate_sessions(
        &cfg,
        7,
        &Fake,
        &mut VecSink::default(),
        &|| true,
        &mut |_| {},
    );
    assert!(matches!(r, Err(GenerateError::Cancelled)));
}

#[test]
fn memory_follows_overlapping_sessions() {
    // 20,000 short sessions arriving far apart: entries stream out as each next session start is drawn.
    let cfg = AgentConfig::from_value(&json!({
        "num_sessions": 20000, "session_arrival_rate_rps": 0.01, "turns_per_session": 1, "parallel_tools": 1,
        "seed": 3
    }))
    .unwrap();
    let mut t = dag::Timeline::new(&cfg, 3);
    let mut n = 0;
    while let Some(item) = t.next() {
        item.unwrap();
        n += 1;
        if n == 4 {
            // The first session's 4 slots (plan, tool, join+followup) came out before session 2 was built.
            assert!(t.sessions_built() <= 2, "{}", t.sessions_built());
        }
    }
    assert!(n > 2 * 20000 && n <= 3 * 20000, "{n}");
}

#[test]
fn an_agent_run_reads_no_prompts() {
    use crate::domain::inputs::{InputCache, PromptSource};
    use crate::domain::tokenizer::TokenizerPolicy;
    // Agent sessions build their prompts: a spec of theirs names no collection, even with a prompt file.
    let source = PromptSource::named(false, Some("prompts.jsonl"), None);
    assert_eq!(source, PromptSource::None);
    let inputs = InputCache::new(TokenizerPolicy::default(), None)
        .prepare(
            "default",
            true,
            &source,
            None,
            &|_, _| {},
            crate::domain::tokenizer::NEVER,
        )
        .unwrap();
    assert!(inputs.data.dataset.is_empty() && inputs.files.is_empty());
    assert_eq!(inputs.data.dataset.sha256, no_prompts().sha256);
}

#[test]
fn a_run_records_the_config_file_in_the_manifest() {
    use crate::domain::run::{RunInput, run_to_dir};
    let tok = TokenCounter::embedded();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("agent.json");
    std::fs::write(
        &cfg_path,
        r#"{"num_sessions": 2, "initial_prompt_tokens": 64, "seed": 1}"#,
    )
    .unwrap();
    let mut spec = GenerationSpec::new(TraceType::Agent);
    spec.agent_config = Some(cfg_path.display().to_string());
    spec.output.format = OutputFormat::Json;
    let v = spec.validate().unwrap();
    let data = tokenized_empty();
    let out = run_to_dir(
        &v,
        RunInput {
            data: &data,
            tokenizer: &tok,
            inputs: Vec::new(),
            files: &PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &dir.path().join("out"),
    )
    .unwrap();
    let inputs = &out.manifest.inputs;
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].role, "agent_config");
    let text = std::fs::read_to_string(&out.workload).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len() as u64, out.manifest.summary.entries);
    assert_eq!(all[0]["schema_version"], SCHEMA_VERSION);
    assert_eq!(out.manifest.summary.requests, 2 * 3 * 2);
}
