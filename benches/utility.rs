//! Throughput of the workload utilities on generated files: 4 inputs × 100,000 entries (one ~600-byte prompt
//! each), concat / merge / sample / stats. Run with `cargo bench --bench utility`; prints entries/s and MB/s.

use std::path::Path;
use std::time::Instant;

use workload_generator::domain::utility::{Input, Operation, OutputOptions, apply, workload_stats};

const FILES: u64 = 4;
const ENTRIES: u64 = 100_000;

fn write_input(dir: &Path, k: u64) -> Input {
    let filler = "The quick brown fox jumps over the lazy dog while the benchmark keeps counting. "
        .repeat(8);
    let mut text = String::with_capacity((ENTRIES * 700) as usize);
    for i in 0..ENTRIES {
        text.push_str(&format!(
            "{{\"timestamp\": {}, \"requests\": [{{\"prompt\": \"{k} {i} {filler}\", \"prompt_length\": 130, \"output_length\": 128, \"session_id\": {}}}]}}\n",
            i * 7 + k,
            i % 1000
        ));
    }
    let p = dir.join(format!("in{k}.jsonl"));
    std::fs::write(&p, text).expect("write input");
    Input::path(p)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs: Vec<Input> = (0..FILES).map(|k| write_input(dir.path(), k)).collect();
    let bytes: u64 = inputs
        .iter()
        .map(|i| std::fs::metadata(&i.path).expect("stat").len())
        .sum();
    let never = || false;
    let dest = dir.path().join("out.jsonl");
    println!(
        "inputs: {FILES} files × {ENTRIES} entries, {:.1} MB total",
        bytes as f64 / 1e6
    );
    let report = |name: &str, entries: u64, bytes: u64, secs: f64| {
        println!(
            "{name:<12} {:>8.3} s  {:>10.0} entries/s  {:>7.1} MB/s (input)",
            secs,
            entries as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
    };
    for (name, op) in [
        ("concat", Operation::Concat { gap_ms: 0 }),
        ("merge", Operation::Merge),
    ] {
        let t = Instant::now();
        let r = apply(&op, &inputs, &dest, OutputOptions::default(), &never).expect("run");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(
            r.inputs.iter().map(|i| i.entries).sum::<u64>(),
            FILES * ENTRIES
        );
        report(name, FILES * ENTRIES, bytes, secs);
    }
    let one = &inputs[..1];
    let one_bytes = std::fs::metadata(&one[0].path).expect("stat").len();
    let t = Instant::now();
    apply(
        &Operation::Sample {
            fraction: 0.5,
            seed: Some(1),
        },
        one,
        &dest,
        OutputOptions::default(),
        &never,
    )
    .expect("sample");
    report("sample", ENTRIES, one_bytes, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let s = workload_stats(&one[0], &never).expect("stats");
    assert_eq!(s.entries, ENTRIES);
    report("stats", ENTRIES, one_bytes, t.elapsed().as_secs_f64());
}
