//! Trace parsing and replay throughput on a generated 5,000,000-row Azure-format trace.
//!
//! Run: `cargo bench --bench traces` (optionally `-- ROWS`). Prints rows/s of the streaming parser, rows/s of
//! the whole replay (validation pass + replay pass, length matching against the built-in sample collection,
//! output counted and discarded), and the peak RSS (VmHWM) after each phase. Budget: >= 1 M rows/s parsed and
//! peak RSS < 300 MB excluding the prompt collection, flat in the number of rows.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use workload_generator::domain::files::PathResolver;
use workload_generator::domain::generate::{GenerateInput, generate};
use workload_generator::domain::lengths::tokenize;
use workload_generator::domain::sample::sample_dataset;
use workload_generator::domain::spec::{GenerationSpec, TraceSpec, TraceType};
use workload_generator::domain::tokenizer::TokenCounter;
use workload_generator::domain::trace::azure::AzureReader;
use workload_generator::domain::writer::{Entry, EntrySink, SinkError};

fn vm_hwm_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct CountingSink {
    entries: u64,
    prompt_bytes: u64,
}

impl EntrySink for CountingSink {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        self.entries += 1;
        self.prompt_bytes += e
            .requests
            .iter()
            .map(|r| r.prompt.len() as u64)
            .sum::<u64>();
        Ok(())
    }
}

fn write_trace(path: &std::path::Path, rows: u64) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "TIMESTAMP,ContextTokens,GeneratedTokens")?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut t_100ns: u64 = 0;
    for _ in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        t_100ns += state % 200_000; // mean gap 10 ms
        let secs = t_100ns / 10_000_000;
        let frac = t_100ns % 10_000_000;
        let (d, h, m, s) = (
            16 + secs / 86_400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
        );
        writeln!(
            w,
            "2023-11-{d:02} {h:02}:{m:02}:{s:02}.{frac:07},{},{}",
            20 + state % 4000,
            1 + (state >> 20) % 700
        )?;
    }
    w.flush()
}

fn main() {
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("azure.csv");
    let t = Instant::now();
    write_trace(&path, rows).expect("write trace");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {rows} rows ({:.0} MB) in {:.2?}",
        bytes as f64 / 1e6,
        t.elapsed()
    );
    println!("peak RSS before parsing: {:.1} MB", vm_hwm_mb());

    let t = Instant::now();
    let f = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&path).unwrap());
    let mut n = 0u64;
    let mut sum = 0u64;
    for row in AzureReader::new(f, "azure.csv").expect("header") {
        let row = row.expect("valid row");
        n += 1;
        sum += row.input_len as u64;
    }
    let el = t.elapsed().as_secs_f64();
    assert_eq!(n, rows);
    println!(
        "parse:  {n} rows in {el:.2} s = {:.2} M rows/s ({:.0} MB/s; checksum {sum}); peak RSS {:.1} MB",
        n as f64 / el / 1e6,
        bytes as f64 / el / 1e6,
        vm_hwm_mb()
    );

    let tok = TokenCounter::embedded();
    let data = tokenize(
        Arc::new(sample_dataset()),
        &tok,
        true,
        None,
        &|_, _| {},
        workload_generator::domain::tokenizer::NEVER,
    )
    .unwrap();
    let with_collection = vm_hwm_mb();
    println!("peak RSS with tokenizer and sample collection loaded: {with_collection:.1} MB");

    let mut spec = GenerationSpec::new(TraceType::Azure);
    spec.seed = Some(1);
    spec.duration_ms = u64::MAX / 4;
    spec.trace = Some(TraceSpec::new(path.display().to_string()));
    let spec = spec.validate().expect("valid spec");
    let mut sink = CountingSink::default();
    let t = Instant::now();
    let summary = generate(
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
    .expect("replay");
    let el = t.elapsed().as_secs_f64();
    assert_eq!(summary.requests, rows);
    let peak = vm_hwm_mb();
    println!(
        "replay: {} requests in {} entries in {el:.2} s = {:.2} M rows/s (validation pass + replay pass with \
         length matching); peak RSS {peak:.1} MB ({:.1} MB above the loaded collection)",
        summary.requests,
        sink.entries,
        rows as f64 / el / 1e6,
        peak - with_collection
    );
}
