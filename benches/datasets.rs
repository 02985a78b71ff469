//! Benchmarks of the prompt-collection tools (issue "prompt collections"):
//! (a) a 10,000-prompt shared-prefix collection with 1,000-token prompts (10 groups of 1,000, 90 % shared,
//!     exact token counts), written to a temporary file: budget under 5 s;
//! (b) a multi-turn collection (1,000 sessions of ~10 turns of ~100 tokens, with 100-token completions);
//! (c) ShareGPT conversion throughput on a generated 20,000-conversation JSON array (MB/s).
//!
//! Run: `cargo bench --bench datasets`. Numbers go to stdout.

use std::time::Instant;

use workload_generator::domain::atomic::write_with;
use workload_generator::domain::datasets_tools::convert::{
    ConvertSpec, SourceFormat, convert_file,
};
use workload_generator::domain::datasets_tools::multiturn::{self, MultiTurnSpec};
use workload_generator::domain::datasets_tools::shared_prefix::{
    self, PrefixConfig, SharedPrefixSpec,
};
use workload_generator::domain::datasets_tools::text::TextSource;
use workload_generator::domain::tokenizer::TokenCounter;

fn main() {
    let tok = TokenCounter::embedded();
    let dir = tempfile::tempdir().expect("temp dir");
    println!("threads: {}", rayon::current_num_threads());

    // (a) Shared prefix, 10,000 × 1,000 tokens.
    let spec = SharedPrefixSpec {
        seed: Some(1),
        configs: vec![PrefixConfig {
            prompt_length: 1000.0,
            prompt_length_std: 0.0,
            shared_proportion: 0.9,
            shared_proportion_std: 0.0,
            num_samples_per_prefix: 1000,
            num_prefix: 10,
        }],
        ..SharedPrefixSpec::default()
    }
    .validate()
    .expect("valid");
    let t0 = Instant::now();
    let src = TextSource::builtin(&tok, spec.seed()).expect("source");
    let t_src = t0.elapsed();
    let out = dir.path().join("shared.jsonl");
    let report =
        write_with(&out, |w| shared_prefix::generate(&spec, &tok, &src, w)).expect("generated");
    let total = t0.elapsed();
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "shared-prefix: {} prompts, {} tokens, sharing ratio {}, {:.1} MB in {:.2} s (source {:.2} s) = {:.0} prompts/s; budget 5 s: {}",
        report.prompts,
        report.total_tokens,
        report.sharing_ratio,
        bytes as f64 / 1e6,
        total.as_secs_f64(),
        t_src.as_secs_f64(),
        report.prompts as f64 / total.as_secs_f64(),
        if total.as_secs_f64() < 5.0 {
            "PASS"
        } else {
            "FAIL"
        }
    );

    // (b) Multi-turn.
    let spec = MultiTurnSpec {
        seed: Some(2),
        num_sessions_mean: 1000.0,
        num_sessions_std: 0.0,
        shared_prefix_len: 200,
        completion_length_mean: Some(100.0),
        completion_length_std: 20.0,
        ..MultiTurnSpec::default()
    }
    .validate()
    .expect("valid");
    let t0 = Instant::now();
    let out = dir.path().join("mt.jsonl");
    let report =
        write_with(&out, |w| multiturn::generate(&spec, &tok, &src, w)).expect("generated");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "multi-turn: {} sessions, {} turns (+ completions) in {:.2} s = {:.0} turns/s",
        report.sessions,
        report.turns,
        secs,
        report.turns as f64 / secs
    );

    // (c) ShareGPT conversion.
    let input = dir.path().join("sharegpt.json");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
        f.write_all(b"[\n").expect("write");
        for i in 0..20_000 {
            let text = workload_generator::domain::sample::filler_text(i, 300);
            let conv = serde_json::json!({"id": format!("c{i}"), "conversations": [
                {"from": "human", "value": text}, {"from": "gpt", "value": text},
                {"from": "human", "value": "And then?"}, {"from": "gpt", "value": text}]});
            if i > 0 {
                f.write_all(b",\n").expect("write");
            }
            serde_json::to_writer(&mut f, &conv).expect("write");
        }
        f.write_all(b"\n]").expect("write");
    }
    let size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    let t0 = Instant::now();
    let report = convert_file(
        &ConvertSpec {
            from: SourceFormat::Sharegpt,
            format: None,
        },
        &input,
        &dir.path().join("sg.jsonl"),
    )
    .expect("converted");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "sharegpt convert: {} conversations, {:.1} MB in {:.2} s = {:.0} MB/s",
        report.written,
        size as f64 / 1e6,
        secs,
        size as f64 / 1e6 / secs
    );
}
