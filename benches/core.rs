//! Benchmarks of the generation core (issue "generation core"):
//! (a) tokenization throughput of a prompt collection on all cores, in tokens/s;
//! (b) constant traffic from a 20,000-prompt collection with a 512-token prompt target, written to JSONL on
//!     local disk: requests/s, bytes/s, and peak RSS of the generation phase for 5,000,000 requests.
//!
//! Run: `cargo bench --bench core` (optionally `-- FILE.jsonl` to tokenize another collection, e.g. the
//! ShareGPT sample). Numbers go to stdout.

use std::sync::Arc;
use std::time::Instant;

use workload_generator::domain::dataset::parse_jsonl;
use workload_generator::domain::files::PathResolver;
use workload_generator::domain::generate::{GenerateInput, generate};
use workload_generator::domain::lengths::tokenize;
use workload_generator::domain::run::{RunInput, run_to_dir};
use workload_generator::domain::sample::generate_jsonl;
use workload_generator::domain::spec::{GenerationSpec, TraceType};
use workload_generator::domain::tokenizer::TokenCounter;
use workload_generator::domain::writer::{Entry, EntrySink, SinkError, format_jsonl};

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let tok = TokenCounter::embedded();
    // Load it now (it loads on first use), so that the timings below are of counting alone.
    tok.count("", false).expect("loads");
    let threads = rayon::current_num_threads();

    // (a) Tokenization.
    let text = match std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
        Some(path) => std::fs::read_to_string(&path).expect("readable collection"),
        None => generate_jsonl(42, 20_000),
    };
    let ds = Arc::new(parse_jsonl(text.as_bytes(), "bench").expect("valid collection"));
    drop(text);
    // Timed tokenization of the whole collection (no length cache).
    let timed = || {
        let t = Instant::now();
        let data = tokenize(
            ds.clone(),
            &tok,
            true,
            None,
            &|_, _| {},
            workload_generator::domain::tokenizer::NEVER,
        )
        .expect("tokenizes");
        (data, t.elapsed().as_secs_f64())
    };
    let (data, secs) = timed();
    let tokens: u64 = data.prompt_len.iter().map(|&x| x as u64).sum::<u64>()
        + data
            .completion_len
            .iter()
            .flatten()
            .map(|&x| x as u64)
            .sum::<u64>();
    println!(
        "tokenization: {} texts, {} tokens in {:.2} s = {:.2} M tokens/s on {threads} threads",
        ds.len() + ds.completions.iter().flatten().count(),
        tokens,
        secs,
        tokens as f64 / secs / 1e6
    );
    // Again with the tokenizer's piece cache filled by the first pass (a new job on the same collection
    // after its length cache was lost, or another collection of the same language).
    let (again, warm) = timed();
    assert_eq!(again.prompt_len, data.prompt_len, "the same counts");
    println!(
        "tokenization, warm piece cache: {:.2} s = {:.2} M tokens/s",
        warm,
        tokens as f64 / warm / 1e6
    );
    if std::env::var_os("WG_BENCH_TOKENIZE_ONLY").is_some() {
        return;
    }

    // (b) Generation: 5,000,000 requests (5,000 req/s for 1,000 s), 512-token prompt target.
    let dir = std::env::temp_dir().join(format!("wg-bench-{}", std::process::id()));
    let mut spec = GenerationSpec::new(TraceType::Constant);
    spec.seed = Some(1);
    spec.duration_ms = 1_000_000;
    spec.traffic.target_qps = 5000.0;
    spec.lengths.target_prompt_len = Some(512);
    let spec = spec.validate().expect("valid spec");
    // Reset the peak-RSS counter so VmHWM covers the generation phase only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let t = Instant::now();
    let out = run_to_dir(
        &spec,
        RunInput {
            data: &data,
            tokenizer: &tok,
            inputs: vec![],
            files: &PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &dir,
    )
    .expect("generates");
    let secs = t.elapsed().as_secs_f64();
    let s = &out.manifest.summary;
    let bytes = out.manifest.output.bytes;
    println!(
        "generation: {} requests, {:.1} MB in {:.2} s = {:.0} requests/s, {:.1} MB/s; RSS before {} MB, peak during generation {} MB",
        s.requests,
        bytes as f64 / 1e6,
        secs,
        s.requests as f64 / secs,
        bytes as f64 / 1e6 / secs,
        rss_before / 1024,
        status_kb("VmHWM:") / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The same generation, formatted to JSONL in memory but not written: the CPU cost without the disk.
    struct Counting(Vec<u8>, u64);
    impl EntrySink for Counting {
        fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
            self.0.clear();
            format_jsonl(&mut self.0, e, false);
            self.1 += self.0.len() as u64;
            Ok(())
        }
    }
    let mut sink = Counting(Vec::new(), 0);
    let t = Instant::now();
    let s = generate(
        &spec,
        GenerateInput {
            data: &data,
            tokenizer: &tok,
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )
    .expect("generates");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "generation without disk: {} requests, {:.1} MB formatted in {:.2} s = {:.0} requests/s, {:.1} MB/s",
        s.requests,
        sink.1 as f64 / 1e6,
        secs,
        s.requests as f64 / secs,
        sink.1 as f64 / 1e6 / secs
    );
}
