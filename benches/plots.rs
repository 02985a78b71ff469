//! Benchmark of plots + report (issue 6): one streaming pass over a generated 1,000,000-request workload
//! (constant 1,000 req/s for 1,000 s, built-in sample prompts matched to 128 tokens, about 645 MB of JSONL),
//! then `report.json` and every SVG. Budget: under 2 s on this machine, memory independent of request count.
//!
//! Run: `cargo bench --bench plots` (optionally `-- FILE.jsonl` to analyze an existing workload instead).
//! The workload is generated once into the temp dir and reused by later runs. Numbers go to stdout.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use workload_generator::domain::files::PathResolver;
use workload_generator::domain::generate::{GenerateInput, generate};
use workload_generator::domain::lengths::tokenize;
use workload_generator::domain::plot::{AnalyzeOptions, analyze, render_all};
use workload_generator::domain::report::{Targets, report};
use workload_generator::domain::sample::sample_dataset;
use workload_generator::domain::spec::{GenerationSpec, TraceType};
use workload_generator::domain::tokenizer::TokenCounter;
use workload_generator::domain::writer::WorkloadFile;

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

/// CPU time (user + system, all threads) of this process, s; assumes the usual 100 clock ticks per second.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn spec() -> GenerationSpec {
    let mut spec = GenerationSpec::new(TraceType::Constant);
    spec.seed = Some(1);
    spec.duration_ms = 1_000_000;
    spec.traffic.target_qps = 1000.0;
    spec.lengths.target_prompt_len = Some(128);
    spec.lengths.target_completion_len = Some(64);
    spec
}

/// Generates the 1M-request workload once (reused when present).
fn workload() -> PathBuf {
    let dir = std::env::temp_dir().join("wg-bench-plots");
    let path = dir.join("workload.jsonl");
    if path.is_file() {
        return path;
    }
    let spec = spec().validate().expect("valid spec");
    let tok = TokenCounter::embedded();
    let data = tokenize(
        Arc::new(sample_dataset()),
        &tok,
        true,
        None,
        &|_, _| {},
        workload_generator::domain::tokenizer::NEVER,
    )
    .expect("tokenizes");
    let t = Instant::now();
    let mut file = WorkloadFile::create(&dir, Default::default(), false, None).expect("temp dir");
    let summary = generate(
        &spec,
        GenerateInput {
            data: &data,
            tokenizer: &tok,
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut file,
    )
    .expect("generates");
    file.commit().expect("commits");
    println!(
        "generated {} requests into {} in {:.1} s",
        summary.requests,
        path.display(),
        t.elapsed().as_secs_f64()
    );
    path
}

fn main() {
    let path = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(p) => PathBuf::from(p),
        None => workload(),
    };
    let bytes = std::fs::metadata(&path).expect("workload exists").len();
    let targets = Targets::from_spec(&spec().validate().expect("valid"), None);
    let threads = rayon::current_num_threads();
    // Reset the peak-RSS counter so VmHWM covers the measured passes only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let mut times = Vec::new();
    let mut cpus = Vec::new();
    for run in 0..3 {
        let t = Instant::now();
        let cpu0 = cpu_secs();
        let f = std::fs::File::open(&path).expect("readable");
        let a = analyze(
            BufReader::with_capacity(1 << 20, f),
            &AnalyzeOptions {
                name: path.display().to_string(),
                ..Default::default()
            },
        )
        .expect("valid workload");
        let t_analyze = t.elapsed().as_secs_f64();
        let r = report(&a, &targets);
        let json = serde_json::to_vec_pretty(&r).expect("serializes");
        let plots = render_all(&a, &targets);
        let total = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let svg_bytes: usize = plots.iter().map(|(_, s)| s.len()).sum();
        println!(
            "run {run}: {} requests, {:.0} MB: analysis {:.2} s ({:.0} MB/s), report + {} plots {:.3} s; total {:.2} s wall, {:.2} s CPU \
(report {} B, SVG {} B, bin {} ms)",
            a.requests,
            bytes as f64 / 1e6,
            t_analyze,
            bytes as f64 / 1e6 / t_analyze,
            plots.len(),
            total - t_analyze,
            total,
            cpu,
            json.len(),
            svg_bytes,
            a.bin_ms
        );
        times.push(total);
        cpus.push(cpu);
    }
    times.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    println!(
        "plots + report: wall best {:.2} s, median {:.2} s on {threads} threads (budget 2 s: {}); CPU median {:.2} s \
(wall on an idle machine is at most that); peak RSS {} MB (before {} MB)",
        times[0],
        times[1],
        if times[1] < 2.0 { "met" } else { "NOT met" },
        cpus[1],
        status_kb("VmHWM:") / 1024,
        rss_before / 1024
    );
}
