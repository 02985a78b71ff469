//! Trace replay tests on the fixtures in `tests/fixtures/traces/` (slices of the real Azure and Mooncake
//! conversation traces, and BurstGPT/generic files in the documented formats).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::*;
use crate::domain::files::PathResolver;
use crate::domain::generate::generate;
use crate::domain::lengths::tokenize;
use crate::domain::sample::sample_dataset;
use crate::domain::spec::{GenerationSpec, TraceType};
use crate::domain::tokenizer::TokenCounter;
use crate::domain::writer::VecSink;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/traces/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The embedded tokenizer, loaded once per test binary.
pub(crate) fn tok() -> &'static TokenCounter {
    static T: OnceLock<TokenCounter> = OnceLock::new();
    T.get_or_init(TokenCounter::embedded)
}

/// The built-in sample collection, tokenized once per test binary.
pub(crate) fn data() -> &'static TokenizedDataset {
    static D: OnceLock<TokenizedDataset> = OnceLock::new();
    D.get_or_init(|| {
        tokenize(
            Arc::new(sample_dataset()),
            tok(),
            true,
            None,
            &|_, _| {},
            crate::domain::tokenizer::NEVER,
        )
        .unwrap()
    })
}

fn spec(ty: TraceType, file: &str) -> GenerationSpec {
    let mut s = GenerationSpec::new(ty);
    s.seed = Some(7);
    s.duration_ms = 3_600_000;
    s.trace = Some(TraceSpec::new(fixture(file)));
    s
}

fn try_run(s: GenerationSpec) -> Result<(Vec<u8>, Summary), GenerateError> {
    let v = s.validate().map_err(GenerateError::Spec)?;
    let mut sink = VecSink::default();
    let summary = generate(
        &v,
        GenerateInput {
            data: data(),
            tokenizer: tok(),
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )?;
    Ok((sink.jsonl, summary))
}

fn run(s: GenerationSpec) -> (Vec<u8>, Summary) {
    try_run(s).unwrap()
}

fn entries(out: &[u8]) -> Vec<Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn requests(out: &[u8]) -> Vec<Value> {
    entries(out)
        .into_iter()
        .flat_map(|e| e["requests"].as_array().unwrap().clone())
        .collect()
}

/// (relative ms from the first row, ContextTokens, GeneratedTokens) of the Azure fixture.
fn azure_rows() -> Vec<(f64, u32, u32)> {
    let text = std::fs::read_to_string(fixture("azure_conv_2000.csv")).unwrap();
    let rows: Vec<(i64, u32, u32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                parse_datetime_us(f[0].as_bytes()).unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let t0 = rows[0].0;
    rows.iter()
        .map(|&(t, i, o)| ((t - t0) as f64 / 1000.0, i, o))
        .collect()
}

#[test]
fn datetime_parsing() {
    let a = parse_datetime_us(b"2023-11-16 18:15:46.6805900").unwrap();
    let b = parse_datetime_us(b"2023-11-16T18:15:46Z").unwrap();
    assert_eq!(a - b, 680_590);
    assert_eq!(
        parse_datetime_us(b"1970-01-01 00:00:01").unwrap(),
        1_000_000
    );
    assert_eq!(
        parse_datetime_us(b"2024-05-01T14:00:00+02:00"),
        parse_datetime_us(b"2024-05-01 12:00:00")
    );
    assert!(parse_datetime_us(b"2023-13-16 18:15:46").is_none());
    assert!(parse_datetime_us(b"2023-11-16 18:15:46.").is_none());
    assert_eq!(parse_len(b"512.0"), Ok(512));
    assert!(parse_len(b"1.5").is_err());
    assert!(parse_len(b"-3").unwrap_err().contains("negative"));
}

#[test]
fn azure_window_counts_and_output_lengths_equal_the_trace() {
    let rows = azure_rows();
    for window in [1000u64, 5000] {
        let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
        s.trace.as_mut().unwrap().group_interval_ms = Some(window);
        let (out, summary) = run(s);
        let mut want: BTreeMap<u64, usize> = BTreeMap::new();
        for &(t, _, _) in &rows {
            *want.entry(t as u64 / window * window).or_default() += 1;
        }
        let got: BTreeMap<u64, usize> = entries(&out)
            .iter()
            .map(|e| {
                (
                    e["timestamp"].as_u64().unwrap(),
                    e["requests"].as_array().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(got, want, "window {window}");
        assert_eq!(summary.requests, 2000);
        // W10: output_length is the trace's GeneratedTokens, in trace order.
        let outs: Vec<u64> = requests(&out)
            .iter()
            .map(|r| r["output_length"].as_u64().unwrap())
            .collect();
        let want_outs: Vec<u64> = rows.iter().map(|r| r.2 as u64).collect();
        assert_eq!(outs, want_outs);
        // Matching starts at ±10%, and the manifest reports the error.
        let err = summary.matching.prompt_length_error.unwrap();
        assert_eq!(err.targeted, 2000);
        assert!(summary.matching.in_window > 1900);
    }
}

#[test]
fn azure_interval_ms_is_the_default_window_and_duration_ends_the_windows() {
    let rows = azure_rows();
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.interval_ms = 2000;
    s.duration_ms = 60_000;
    let (out, summary) = run(s);
    let e = entries(&out);
    assert!(
        e.iter()
            .all(|e| e["timestamp"].as_u64().unwrap() % 2000 == 0)
    );
    // No window at or past duration_ms (the reference emits one extra).
    assert!(e.iter().all(|e| e["timestamp"].as_u64().unwrap() < 60_000));
    let want = rows.iter().filter(|r| r.0 < 60_000.0).count() as u64;
    assert_eq!(summary.requests, want);
}

#[test]
fn azure_exact_prompts_retokenize_to_context_tokens() {
    let rows = azure_rows();
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.length_policy = LengthPolicy::Exact;
    s.trace.as_mut().unwrap().max_requests = Some(300);
    let (out, summary) = run(s);
    let reqs = requests(&out);
    assert_eq!(reqs.len(), 300);
    for (r, row) in reqs.iter().zip(&rows) {
        let p = r["prompt"].as_str().unwrap();
        let n = tok().count(p, true).unwrap();
        assert_eq!(n, row.1, "prompt of {} tokens", row.1);
        assert_eq!(r["prompt_length"].as_u64().unwrap(), n as u64);
        assert_eq!(r["output_length"].as_u64().unwrap(), row.2 as u64);
    }
    let err = summary.matching.prompt_length_error.unwrap();
    assert_eq!((err.max, err.fraction_outside_5pct), (0.0, 0.0));
}

#[test]
fn azure_match_prompt_length_is_the_true_count() {
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().max_requests = Some(50);
    let (out, _) = run(s);
    for r in requests(&out) {
        let n = tok().count(r["prompt"].as_str().unwrap(), true).unwrap();
        assert_eq!(r["prompt_length"].as_u64().unwrap(), n as u64);
    }
}

#[test]
fn azure_exact_grouping_keeps_own_times() {
    let rows = azure_rows();
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().grouping = Some(Grouping::Exact);
    let (out, _) = run(s);
    let mut ts: Vec<u64> = Vec::new();
    for e in entries(&out) {
        for _ in e["requests"].as_array().unwrap() {
            ts.push(e["timestamp"].as_u64().unwrap());
        }
    }
    let want: Vec<u64> = rows.iter().map(|r| r.0 as u64).collect();
    assert_eq!(ts, want);
}

#[test]
fn output_length_source_dataset_restores_the_reference() {
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.output_length_source = OutputLengthSource::Dataset;
    s.trace.as_mut().unwrap().max_requests = Some(100);
    let (out, _) = run(s);
    let rows = azure_rows();
    let differs = requests(&out)
        .iter()
        .zip(&rows)
        .filter(|(r, row)| r["output_length"].as_u64() != Some(row.2 as u64))
        .count();
    assert!(differs > 50, "{differs}");
}

#[test]
fn time_controls() {
    let rows = azure_rows();
    // start_ms skips the start; time_scale 0.5 replays twice as fast.
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    {
        let t = s.trace.as_mut().unwrap();
        t.start_ms = 100_000;
        t.time_scale = 0.5;
        t.grouping = Some(Grouping::Exact);
    }
    s.duration_ms = 50_000;
    let (out, summary) = run(s);
    let want: Vec<u64> = rows
        .iter()
        .filter(|r| r.0 >= 100_000.0 && (r.0 - 100_000.0) * 0.5 < 50_000.0)
        .map(|r| ((r.0 - 100_000.0) * 0.5) as u64)
        .collect();
    let got: Vec<u64> = entries(&out)
        .iter()
        .flat_map(|e| {
            let ts = e["timestamp"].as_u64().unwrap();
            e["requests"].as_array().unwrap().iter().map(move |_| ts)
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(summary.requests as usize, want.len());
    // sample_fraction thins with the seed: deterministic, about half, same windows as the full trace.
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().sample_fraction = 0.5;
    let (a, sa) = run(s.clone());
    let (b, _) = run(s.clone());
    assert_eq!(a, b);
    assert!((850..1150).contains(&sa.requests), "{}", sa.requests);
    assert!(
        sa.notes
            .iter()
            .any(|n| n.contains("sample_fraction 0.5 dropped"))
    );
    s.seed = Some(8);
    assert_ne!(run(s).0, a);
    // max_requests stops the replay.
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().max_requests = Some(123);
    let (_, sm) = run(s);
    assert_eq!(sm.requests, 123);
    assert!(sm.notes.iter().any(|n| n.contains("max_requests 123")));
}

fn temp_trace(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    (dir, p.display().to_string())
}

#[test]
fn unsorted_rows_are_sorted_with_a_note_and_bad_lengths_name_the_line() {
    let (_d, path) = temp_trace(
        "t.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47.0,300,40\n2023-11-16 18:15:46.0,100,10\n2023-11-16 18:15:48.0,200,20\n",
    );
    let mut s = GenerationSpec::new(TraceType::Azure);
    s.seed = Some(1);
    s.trace = Some(TraceSpec::new(path));
    s.trace.as_mut().unwrap().grouping = Some(Grouping::Exact);
    let (out, summary) = run(s);
    let e = entries(&out);
    assert_eq!(
        e.iter()
            .map(|e| e["timestamp"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1000, 2000]
    );
    assert_eq!(e[0]["requests"][0]["output_length"], 10);
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("not sorted") && n.contains("line 3")),
        "{:?}",
        summary.notes
    );
    let (_d, path) = temp_trace(
        "bad.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47.0,300,40\n2023-11-16 18:15:48.0,x12,20\n",
    );
    let mut s = GenerationSpec::new(TraceType::Azure);
    s.trace = Some(TraceSpec::new(path.clone()));
    let err = try_run(s).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{path}:3: column 'ContextTokens': 'x12' is not a non-negative integer")
    );
    let (_d, path) = temp_trace(
        "bad.jsonl",
        "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": [1]}\n{\"timestamp\": 5, \"input_length\": -5, \"output_length\": 1, \"hash_ids\": [1]}\n",
    );
    let mut s = GenerationSpec::new(TraceType::Mooncake);
    s.trace = Some(TraceSpec::new(path.clone()));
    let err = try_run(s).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{path}:2: column 'input_length': '-5' is negative; expected a non-negative integer"
        )
    );
}

#[test]
fn spec_validation_names_trace_fields() {
    let e = GenerationSpec::new(TraceType::Azure)
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "trace.file is required for trace_type azure (CLI: --traffic-file)"
    );
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().sample_fraction = 0.0;
    assert_eq!(s.validate().unwrap_err().field, "trace.sample_fraction");
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().time_scale = -1.0;
    assert_eq!(s.validate().unwrap_err().field, "trace.time_scale");
    let mut s = spec(TraceType::Generic, "generic_prefill_decode.csv");
    assert_eq!(s.clone().validate().unwrap_err().field, "trace.columns");
    s.trace_type = TraceType::Constant;
    assert_eq!(s.validate().unwrap_err().field, "trace");
    let mut s = spec(TraceType::Mooncake, "mooncake_conv_1000.jsonl");
    s.trace.as_mut().unwrap().block_size = 4;
    assert_eq!(s.validate().unwrap_err().field, "trace.block_size");
    let text = r#"{"trace_type": "azure", "length_policy": "exact",
        "trace": {"file": "a.csv", "group_interval_ms": 5000, "grouping": "exact", "start_ms": 10,
                  "time_scale": 0.5, "sample_fraction": 0.25, "max_requests": 9}}"#;
    let s: GenerationSpec = serde_json::from_str(text).unwrap();
    assert_eq!(s.length_policy, LengthPolicy::Exact);
    let back: GenerationSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    assert!(
        serde_json::from_str::<GenerationSpec>(r#"{"trace_type": "azure", "trace": {"fil": "x"}}"#)
            .is_err()
    );
}

/// (input_length, output_length, hash_ids) of the first Mooncake fixture rows with timestamp < `until_ms`.
fn mooncake_rows(until_ms: u64) -> Vec<(u32, u32, Vec<u64>)> {
    std::fs::read_to_string(fixture("mooncake_conv_1000.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .take_while(|v| v["timestamp"].as_u64().unwrap() < until_ms)
        .map(|v| {
            (
                v["input_length"].as_u64().unwrap() as u32,
                v["output_length"].as_u64().unwrap() as u32,
                v["hash_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn mooncake_spec(seed: u64) -> GenerationSpec {
    let mut s = spec(TraceType::Mooncake, "mooncake_conv_1000.jsonl");
    s.duration_ms = 12_000;
    s.seed = Some(seed);
    s
}

#[test]
fn mooncake_prompts_are_exact_and_share_prefixes_by_hash_ids() {
    let rows = mooncake_rows(12_000);
    assert!(rows.len() >= 20, "{}", rows.len());
    let (out, summary) = run(mooncake_spec(7));
    let reqs = requests(&out);
    assert_eq!(reqs.len(), rows.len());
    let texts: Vec<&str> = reqs.iter().map(|r| r["prompt"].as_str().unwrap()).collect();
    for ((r, row), text) in reqs.iter().zip(&rows).zip(&texts) {
        let n = tok().count(text, true).unwrap();
        assert_eq!(n, row.0);
        assert_eq!(r["prompt_length"].as_u64().unwrap(), n as u64);
        assert_eq!(r["output_length"].as_u64().unwrap(), row.1 as u64);
    }
    let err = summary.matching.prompt_length_error.unwrap();
    assert_eq!(err.max, 0.0);
    // Rebuild the block texts independently: same seed, same collection.
    let pool = mooncake::token_pool(tok(), data(), mooncake::POOL_TOKENS).unwrap();
    let mut cache = mooncake::BlockCache::new(tok(), pool, 7, 512).unwrap();
    let full_blocks = |row: &(u32, u32, Vec<u64>)| (row.0 as usize / 512).min(row.2.len());
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let (a, b) = (&rows[i], &rows[j]);
            let common = a.2.iter().zip(&b.2).take_while(|(x, y)| x == y).count();
            let shared = common.min(full_blocks(a)).min(full_blocks(b));
            let mut want = 0;
            for &h in &a.2[..shared] {
                want += cache.block(h).unwrap().len();
            }
            let got = texts[i]
                .bytes()
                .zip(texts[j].bytes())
                .take_while(|(x, y)| x == y)
                .count();
            // The shared blocks are a byte-identical prefix ...
            assert!(got >= want, "requests {i} and {j}: {got} < {want}");
            // ... and the first block that differs in the trace differs in the text (within its header).
            if shared == common && shared < full_blocks(a) && shared < full_blocks(b) {
                assert!(got < want + 16, "requests {i} and {j}: {got} vs {want}");
            }
        }
    }
    // The cache holds each hash id once, and blocks are exactly 512 tokens.
    let blocks_used: std::collections::HashSet<u64> =
        rows.iter().flat_map(|r| r.2.iter().copied()).collect();
    assert!(cache.len() <= blocks_used.len());
    for &h in rows[0].2.iter().take(3) {
        assert_eq!(tok().count(&cache.block(h).unwrap(), false).unwrap(), 512);
    }
}

#[test]
fn mooncake_block_concatenation_is_token_stable() {
    let pool = mooncake::token_pool(tok(), data(), 65_536).unwrap();
    let mut cache = mooncake::BlockCache::new(tok(), pool, 3, 64).unwrap();
    assert!(cache.concatenation_is_stable().unwrap());
    let blocks: Vec<String> = (0..40u64)
        .map(|h| cache.block(h).unwrap().to_string())
        .collect();
    for b in &blocks {
        assert_eq!(tok().count(b, false).unwrap(), 64);
        assert!(b.starts_with("Block ") && b.ends_with('\n'));
    }
    for w in blocks.windows(2) {
        let joined = format!("{}{}", w[0], w[1]);
        let mut parts = tok().encode(&w[0], false).unwrap();
        parts.extend(tok().encode(&w[1], false).unwrap());
        assert_eq!(tok().encode(&joined, false).unwrap(), parts);
    }
    // Every cut of a block after full blocks keeps the count additive too.
    let (text, count) = cache.prompt(&[1, 2, 3], 64 * 2 + 17, 1).unwrap();
    assert_eq!(count, 145);
    assert_eq!(tok().count(&text, false).unwrap(), 145);
    // Longer than its blocks: unshared text extends it.
    let (text, count) = cache.prompt(&[1], 100, 2).unwrap();
    assert_eq!((count, tok().count(&text, false).unwrap()), (100, 100));
}

#[test]
fn mooncake_blocks_are_built_from_words_and_every_prompt_is_exact() {
    use rand::{Rng, SeedableRng};
    let pool = mooncake::token_pool(tok(), data(), 65_536).unwrap();
    let mut cache = mooncake::BlockCache::new(tok(), pool, 5, 128).unwrap();
    assert!(cache.by_construction(), "the sample's words pass the probe");
    let block = cache.block(3).unwrap();
    assert!(block.starts_with("Block 3\n ") && block.ends_with('\n'));
    // Words only between the header and the final newline.
    assert!(
        block["Block 3\n".len()..block.len() - 1]
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_alphabetic())
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for line in 0..80u64 {
        let n: u32 = rng.random_range(1..5);
        let ids: Vec<u64> = (0..n).map(|_| rng.random_range(0..12)).collect();
        // Cuts inside headers, after words, whole blocks, and longer than the blocks.
        let content = rng.random_range(1..=n * 128 + 300);
        let (text, count) = cache.prompt(&ids, content, line).unwrap();
        assert_eq!(count, content, "{ids:?}");
        assert_eq!(
            tok().count(&text, false).unwrap(),
            content,
            "{ids:?} {content}"
        );
    }
}

#[test]
fn mooncake_blocks_from_a_pool_without_words_are_fitted() {
    let text = "1234, 5678; 9012. (3456) [7890] ".repeat(300);
    let pool = tok().encode(&text, false).unwrap();
    let mut cache = mooncake::BlockCache::new(tok(), pool, 5, 64).unwrap();
    assert!(!cache.by_construction());
    for h in 0..5u64 {
        let b = cache.block(h).unwrap();
        assert_eq!(tok().count(&b, false).unwrap(), 64, "{b:?}");
    }
    let (text, count) = cache.prompt(&[1, 2], 64 + 30, 9).unwrap();
    assert_eq!(tok().count(&text, false).unwrap(), count);
}

#[test]
fn mooncake_is_deterministic_by_seed() {
    let mut s = mooncake_spec(7);
    s.duration_ms = 2_000;
    let (a, _) = run(s.clone());
    let (b, _) = run(s.clone());
    assert_eq!(a, b);
    s.seed = Some(9);
    assert_ne!(run(s).0, a);
}

#[test]
fn burstgpt_filters_failed_requests_and_sessions() {
    let text = std::fs::read_to_string(fixture("burstgpt_sample.csv")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let mut s = spec(TraceType::Burstgpt, "burstgpt_sample.csv");
    s.trace.as_mut().unwrap().model = Some("ChatGPT".into());
    let (out, summary) = run(s);
    let kept: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[3] == "ChatGPT" && r[5] != "0")
        .collect();
    let reqs = requests(&out);
    assert_eq!(reqs.len(), kept.len());
    for (r, row) in reqs.iter().zip(&kept) {
        assert_eq!(r["output_length"].as_u64().unwrap().to_string(), row[5]);
        assert_eq!(r["session_id"].as_u64().unwrap().to_string(), row[1]);
    }
    // Time zero is the first request that passes the filters; times are seconds since then.
    let t0: u64 = kept[0][0].parse().unwrap();
    let mut i = 0;
    for e in entries(&out) {
        for _ in e["requests"].as_array().unwrap() {
            let want = (kept[i][0].parse::<u64>().unwrap() - t0) * 1000;
            assert_eq!(e["timestamp"].as_u64().unwrap(), want);
            i += 1;
        }
    }
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("'Model' is not 'ChatGPT'"))
    );
    assert!(summary.notes.iter().any(|n| n.contains("failed requests")));
    // keep_failed and log_type.
    let mut s = spec(TraceType::Burstgpt, "burstgpt_sample.csv");
    s.trace.as_mut().unwrap().keep_failed = true;
    s.trace.as_mut().unwrap().log_type = Some("API log".into());
    let (_, summary) = run(s);
    let want = rows.iter().filter(|r| r[7] == "API log").count() as u64;
    assert_eq!(summary.requests, want);
}

#[test]
fn generic_csv_and_jsonl_with_column_mapping() {
    let mut s = spec(TraceType::Generic, "generic_prefill_decode.csv");
    s.trace.as_mut().unwrap().columns = Some(TraceColumns {
        timestamp: "arrived_at".into(),
        timestamp_unit: TimestampUnit::S,
        input: "num_prefill_tokens".into(),
        output: Some("num_decode_tokens".into()),
        session: None,
    });
    s.length_policy = LengthPolicy::Exact;
    let (out, summary) = run(s);
    let text = std::fs::read_to_string(fixture("generic_prefill_decode.csv")).unwrap();
    let rows: Vec<(f64, u32, u32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary.requests, rows.len() as u64);
    let mut i = 0;
    for e in entries(&out) {
        for r in e["requests"].as_array().unwrap() {
            let want_ts = ((rows[i].0 - rows[0].0) * 1000.0) as u64;
            assert!(e["timestamp"].as_u64().unwrap().abs_diff(want_ts) <= 1);
            assert_eq!(r["prompt_length"].as_u64().unwrap(), rows[i].1 as u64);
            assert_eq!(
                tok().count(r["prompt"].as_str().unwrap(), true).unwrap(),
                rows[i].1
            );
            assert_eq!(r["output_length"].as_u64().unwrap(), rows[i].2 as u64);
            i += 1;
        }
    }
    // JSONL with date-times and a session column.
    let mut s = spec(TraceType::Generic, "generic_sessions.jsonl");
    s.trace.as_mut().unwrap().columns = Some(TraceColumns {
        timestamp: "time".into(),
        timestamp_unit: TimestampUnit::Datetime,
        input: "in".into(),
        output: Some("out".into()),
        session: Some("user".into()),
    });
    let (out, summary) = run(s);
    assert_eq!(summary.requests, 40);
    let e = entries(&out);
    assert_eq!(e[1]["timestamp"], 750);
    assert_eq!(e[0]["requests"][0]["session_id"], "u2");
    // A missing mapped column names the column.
    let mut s = spec(TraceType::Generic, "generic_prefill_decode.csv");
    s.trace.as_mut().unwrap().columns = Some(TraceColumns {
        timestamp: "arrived".into(),
        timestamp_unit: TimestampUnit::S,
        input: "num_prefill_tokens".into(),
        output: None,
        session: None,
    });
    let err = try_run(s).unwrap_err().to_string();
    assert!(
        err.contains(":1: column 'arrived': column missing"),
        "{err}"
    );
}

#[test]
fn constant_traffic_honours_exact_length_policy() {
    let mut s = GenerationSpec::new(TraceType::Constant);
    s.seed = Some(5);
    s.duration_ms = 10_000;
    s.traffic.target_qps = 3.0;
    s.lengths.target_prompt_len = Some(777);
    s.length_policy = LengthPolicy::Sample;
    let (matched, ms) = run(s.clone());
    s.length_policy = LengthPolicy::Exact;
    let (exact, es) = run(s);
    let (m, e) = (requests(&matched), requests(&exact));
    assert_eq!(m.len(), e.len());
    for r in &e {
        assert_eq!(r["prompt_length"], 777);
        assert_eq!(
            tok().count(r["prompt"].as_str().unwrap(), true).unwrap(),
            777
        );
    }
    assert!(ms.matching.prompt_length_error.unwrap().max > 0.0);
    assert_eq!(es.matching.prompt_length_error.unwrap().max, 0.0);
    // Only the prompt text changes: same times, same output lengths.
    for (a, b) in m.iter().zip(&e) {
        assert_eq!(a["output_length"], b["output_length"]);
    }
}

#[test]
fn the_default_length_policy_stays_within_five_percent() {
    // The built-in sample has prompts near some targets and none near others: real prompts are kept when
    // they are within ±5%, and text of exactly the target is built otherwise.
    let ds = crate::domain::sample::sample_dataset();
    let lens: Vec<u32> = ds
        .prompts
        .iter()
        .map(|p| tok().count(p, true).unwrap())
        .collect();
    for target in [64u32, 512, 3000] {
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.seed = Some(3);
        s.duration_ms = 20_000;
        s.traffic.target_qps = 5.0;
        s.lengths.target_prompt_len = Some(target);
        assert_eq!(s.length_policy, LengthPolicy::Near, "the default");
        let (near, summary) = run(s.clone());
        let reqs = requests(&near);
        assert!(reqs.len() > 50);
        let mut kept = 0;
        for r in &reqs {
            let text = r["prompt"].as_str().unwrap();
            let n = r["prompt_length"].as_u64().unwrap() as u32;
            assert_eq!(tok().count(text, true).unwrap(), n);
            assert!(
                LengthPolicy::Near.keeps(n, target),
                "{n} is not within 5% of {target}"
            );
            kept += usize::from(ds.prompts.iter().any(|p| p == text));
        }
        let near_exists = lens.iter().any(|&l| LengthPolicy::Near.keeps(l, target));
        assert_eq!(
            kept == reqs.len(),
            near_exists,
            "target {target}: real prompts are kept exactly when one is near ({kept} of {})",
            reqs.len()
        );
        let err = summary.matching.prompt_length_error.unwrap();
        assert_eq!((err.share_within_5pct, err.share_within_10pct), (1.0, 1.0));
        assert_eq!(err.fraction_outside_5pct, 0.0);
        // The reference's sampling stays available and is as wide as it was.
        s.length_policy = LengthPolicy::Sample;
        let (_, sampled) = run(s);
        let e = sampled.matching.prompt_length_error.unwrap();
        if !near_exists {
            assert!(e.share_within_5pct < 1.0, "target {target}: {e:?}");
        }
    }
    let old: GenerationSpec =
        serde_json::from_str(r#"{"trace_type": "constant", "length_policy": "match"}"#).unwrap();
    assert_eq!(old.length_policy, LengthPolicy::Sample, "the earlier name");
}

/// The whole Mooncake fixture (1,000 requests, 13.7 M prompt tokens): every prompt re-tokenizes to its
/// `input_length`. Slow (minutes); run with `cargo test --release -- --ignored mooncake_whole_fixture`.
#[test]
#[ignore]
fn mooncake_whole_fixture_is_exact() {
    let rows = mooncake_rows(u64::MAX);
    let (out, summary) = run(mooncake_spec(11).tap_duration(u64::MAX / 4));
    let reqs = requests(&out);
    assert_eq!(reqs.len(), rows.len());
    for (r, row) in reqs.iter().zip(&rows) {
        let n = tok().count(r["prompt"].as_str().unwrap(), true).unwrap();
        assert_eq!(n, row.0);
        assert_eq!(r["prompt_length"].as_u64().unwrap(), n as u64);
    }
    assert_eq!(summary.matching.prompt_length_error.unwrap().max, 0.0);
}

trait TapDuration {
    fn tap_duration(self, ms: u64) -> Self;
}

impl TapDuration for GenerationSpec {
    fn tap_duration(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }
}

#[test]
fn manifest_records_the_trace_file_and_the_length_error() {
    use crate::domain::run::{RunInput, run_to_dir};
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(TraceType::Azure, "azure_conv_2000.csv");
    s.trace.as_mut().unwrap().max_requests = Some(40);
    s.length_policy = LengthPolicy::Exact;
    let v = s.validate().unwrap();
    let out = run_to_dir(
        &v,
        RunInput {
            data: data(),
            tokenizer: tok(),
            inputs: Vec::new(),
            files: &PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        dir.path(),
    )
    .unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(&out.manifest_path).unwrap()).unwrap();
    let input = &m["inputs"][0];
    assert_eq!(input["role"], "trace.file");
    assert_eq!(input["bytes"], 74_611);
    // Hashed while the validation pass read it: the same as hashing the file.
    let (sha, bytes) =
        crate::domain::files::sha256_file(std::path::Path::new(&fixture("azure_conv_2000.csv")))
            .unwrap();
    assert_eq!(
        (input["sha256"].as_str().unwrap(), bytes),
        (sha.as_str(), 74_611)
    );
    assert_eq!(m["spec"]["length_policy"], "exact");
    assert_eq!(m["spec"]["trace"]["max_requests"], 40);
    let err = &m["summary"]["matching"]["prompt_length_error"];
    assert_eq!(err["targeted"], 40);
    assert_eq!(err["max"], 0.0);
}

#[test]
fn the_trace_is_hashed_by_the_pass_that_reads_it() {
    use crate::domain::files::FileResolver;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    /// Paths as given, and the hashes the trace pipeline reports.
    struct Seen(Mutex<Vec<(PathBuf, String, u64)>>);
    impl FileResolver for Seen {
        fn resolve(
            &self,
            field: &str,
            name: &str,
        ) -> Result<PathBuf, crate::domain::spec::common::SpecError> {
            PathResolver.resolve(field, name)
        }
        fn hashed(&self, path: &Path, sha256: &str, bytes: u64) {
            self.0
                .lock()
                .unwrap()
                .push((path.to_path_buf(), sha256.to_string(), bytes));
        }
    }
    let seen = Seen(Mutex::new(Vec::new()));
    let mut s = spec(TraceType::Mooncake, "mooncake_conv_1000.jsonl");
    s.duration_ms = 2_000;
    let v = s.validate().unwrap();
    let mut sink = VecSink::default();
    generate(
        &v,
        GenerateInput {
            data: data(),
            tokenizer: tok(),
            files: &seen,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )
    .unwrap();
    let got = seen.0.into_inner().unwrap();
    let path = fixture("mooncake_conv_1000.jsonl");
    let (sha, bytes) = crate::domain::files::sha256_file(Path::new(&path)).unwrap();
    // Once, for the whole file, though only its first 2 s are replayed.
    assert_eq!(got, vec![(PathBuf::from(&path), sha, bytes)]);
}
