//! Benchmarks of the `synthetic` and `stat` trace types (no disk, no tokenization: a 20,000-prompt collection
//! with known lengths, entries formatted to JSONL in memory):
//! (a) reading a 200,000-row maas export (three CSVs, joined on Time, one lognormal fit per row and side);
//! (b) synthetic generation of about 1,000,000 requests with rate, prompt and completion patterns;
//! (c) stat generation of about 1,000,000 requests from 1,000 one-second rows, with and without length files
//!     (the difference is the cost of matching lognormal-spread targets against the collection).
//!
//! Run: `cargo bench --bench synthetic_stat`. Numbers go to stdout.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use workload_generator::domain::dataset::parse_jsonl;
use workload_generator::domain::files::PathResolver;
use workload_generator::domain::generate::{GenerateInput, generate};
use workload_generator::domain::lengths::TokenizedDataset;
use workload_generator::domain::spec::{GenerationSpec, ValidatedSpec};
use workload_generator::domain::stat::{StatSpec, StatTimeline};
use workload_generator::domain::tokenizer::TokenCounter;
use workload_generator::domain::writer::{Entry, EntrySink, SinkError, format_jsonl};

struct Counting(Vec<u8>, u64);
impl EntrySink for Counting {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        self.0.clear();
        format_jsonl(&mut self.0, e, false);
        self.1 += self.0.len() as u64;
        Ok(())
    }
}

fn data() -> TokenizedDataset {
    let n = 20_000u32;
    let text: String = (0..n)
        .map(|i| format!("{{\"prompt\": \"prompt number {i}\"}}\n"))
        .collect();
    TokenizedDataset {
        dataset: Arc::new(parse_jsonl(text.as_bytes(), "bench").expect("valid")),
        prompt_len: (0..n).map(|i| 5 + (i * 7919) % 4000).collect(),
        completion_len: (0..n).map(|i| Some(1 + (i * 104_729) % 2000)).collect(),
        from_cache: false,
    }
}

fn run(label: &str, spec: &ValidatedSpec, data: &TokenizedDataset, tok: &TokenCounter) {
    let mut sink = Counting(Vec::new(), 0);
    let t = Instant::now();
    let s = generate(
        spec,
        GenerateInput {
            data,
            tokenizer: tok,
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )
    .expect("generates");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: {} requests, {:.1} MB formatted in {:.2} s = {:.0} requests/s",
        s.requests,
        sink.1 as f64 / 1e6,
        secs,
        s.requests as f64 / secs
    );
}

fn maas_export(dir: &std::path::Path, rows: usize, row_s: usize, rate: f64) -> StatSpec {
    let (mut t, mut p, mut c) = (
        String::from("\"Time\",\"Total\",\"Success\",\"4xx Error\"\n"),
        String::from("\"Time\",\"P50\",\"P70\",\"P90\",\"P99\"\n"),
        String::from("\"Time\",\"P50\",\"P70\",\"P95\",\"P99\"\n"),
    );
    for i in 0..rows {
        let secs = i * row_s;
        let time = format!(
            "2024-10-{:02} {:02}:{:02}:{:02}",
            1 + secs / 86_400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
        let k = (i % 50) as f64;
        writeln!(t, "{time},{},{rate},0", rate + 1.0).unwrap();
        writeln!(
            p,
            "{time},{},{},{},{}",
            300.0 + k,
            450.0 + k,
            800.0 + k,
            1900.0 + k
        )
        .unwrap();
        writeln!(
            c,
            "{time},{},{},{},{}",
            150.0 + k,
            200.0 + k,
            400.0 + k,
            600.0 + k
        )
        .unwrap();
    }
    let mut stat = StatSpec::default();
    for (name, text, slot) in [
        ("traffic.csv", t, &mut stat.traffic_file),
        ("prompt.csv", p, &mut stat.prompt_len_file),
        ("completion.csv", c, &mut stat.completion_len_file),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        *slot = Some(path.display().to_string());
    }
    stat
}

fn main() {
    let tok = TokenCounter::embedded();
    let data = data();
    let dir = std::env::temp_dir().join(format!("wg-bench-syn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // (a) Reading a large export.
    let stat = maas_export(&dir, 200_000, 10, 5.0);
    let bytes: u64 = stat
        .files()
        .iter()
        .map(|(_, f)| std::fs::metadata(f).unwrap().len())
        .sum();
    let t = Instant::now();
    let tl = StatTimeline::load(&stat, 1000, &PathResolver).expect("reads");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "stat read: {} rows ({:.1} MB in 3 CSVs) in {:.3} s = {:.0} rows/s",
        tl.rows.len(),
        bytes as f64 / 1e6,
        secs,
        tl.rows.len() as f64 / secs
    );

    // (b) Synthetic: ~1,000 req/s for 1,000 s with length patterns on a 100 ms grid.
    let mut spec: GenerationSpec = serde_json::from_value(json!({
        "trace_type": "synthetic", "seed": 1, "duration_ms": 1_000_000, "interval_ms": 100,
        "synthetic": {
            "traffic_pattern": "severe_fluctuation", "traffic_pattern_mean": 1000,
            "prompt_len_pattern_config": {"fluctuate": 300, "mean": 800, "noise": 20, "period_len_ms": 60000},
            "completion_len_pattern": "quick_rising", "completion_len_pattern_mean": 200
        }
    }))
    .unwrap();
    spec.seed = Some(1);
    run(
        "synthetic generation",
        &spec.validate().unwrap(),
        &data,
        &tok,
    );

    // (c) Stat: 1,000 one-second rows at 1,000 req/s.
    let mut spec = GenerationSpec::new(workload_generator::domain::spec::TraceType::Stat);
    spec.seed = Some(1);
    spec.duration_ms = 1_000_000;
    spec.stat = Some(maas_export(&dir, 1000, 1, 1000.0));
    run(
        "stat generation",
        &spec.clone().validate().unwrap(),
        &data,
        &tok,
    );
    // The same rows without length files: arrivals and row lookup only (prompts untargeted).
    let st = spec.stat.as_mut().unwrap();
    st.prompt_len_file = None;
    st.completion_len_file = None;
    run(
        "stat generation, no length targets",
        &spec.validate().unwrap(),
        &data,
        &tok,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
