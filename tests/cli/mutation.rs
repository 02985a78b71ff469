//! Mutated inputs through the real readers: prompt files, Azure and Mooncake traces, Grafana stat CSVs and
//! workload files, a few thousand of them (seeded, so a failure reproduces). Every mutant must give a result
//! or a clean error: no panic, an error of a caller-fixable kind (never `internal`) that names the file, and
//! no file left in the output directory of a run that failed.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use workload_generator::domain::analysis::{AnalyzeOptions, analyze};
use workload_generator::domain::dataset::load_file;
use workload_generator::domain::errors::{Classify, ErrorKind};
use workload_generator::domain::files::PathResolver;
use workload_generator::domain::lengths::{TokenizedDataset, tokenize};
use workload_generator::domain::run::{RunInput, run_to_dir};
use workload_generator::domain::sample::sample_dataset;
use workload_generator::domain::spec::parse_spec;
use workload_generator::domain::tokenizer::{NEVER, TokenCounter};
use workload_generator::domain::utility::{self, Input, Operation, OutputOptions};

/// Mutants per format.
const MUTANTS: usize = 500;

const TOKENS: &[&[u8]] = &[
    b",",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\n",
    b"\r\n",
    b":",
    b"-1",
    b"0",
    b"1e309",
    b"NaN",
    b"-0",
    b"\0",
    b"\xff\xfe",
    b"\xc3",
    b"99999999999999999999999",
    b"null",
    b"true",
    b"\"prompt\"",
    b"\"timestamp\"",
    b"\"hash_ids\"",
    b"\"requests\"",
    b"2023-13-45 25:61:61",
    b"1.5",
    b"  ",
    b"\t",
    b"\xef\xbb\xbf",
    b"\\u0000",
    b"\\ud800",
    b"4294967296",
];

/// One random edit of `seed`: flip, insert a token, delete or duplicate a range, swap or repeat lines, cut.
fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let n = b.len().max(1);
        let at = rng.random_range(0..n).min(b.len());
        match rng.random_range(0..8) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.random_range(1..40)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let end = (at + rng.random_range(1..200)).min(b.len());
                let dup = b[at..end].to_vec();
                b.splice(at..at, dup);
            }
            4 | 5 => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 2 {
                    let i = rng.random_range(0..lines.len());
                    let j = rng.random_range(0..lines.len());
                    if rng.random_bool(0.5) {
                        lines.swap(i, j);
                    } else {
                        let l = lines[i].clone();
                        lines.insert(j, l);
                    }
                }
                b = lines.join(&b'\n');
            }
            6 => b.truncate(at),
            _ => {
                // Replace a digit run with a random extreme number.
                if let Some(i) = (at..b.len()).find(|&i| b[i].is_ascii_digit()) {
                    let end = (i..b.len())
                        .find(|&k| !b[k].is_ascii_digit())
                        .unwrap_or(b.len());
                    let v = [
                        "0",
                        "-5",
                        "18446744073709551616",
                        "1e20",
                        "0.0001",
                        "4294967295",
                    ][rng.random_range(0..6)];
                    b.splice(i..end, v.bytes());
                }
            }
        }
    }
    b
}

/// The first `lines` lines of a fixture.
fn head(path: &str, lines: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    text.lines()
        .take(lines)
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn tok() -> &'static TokenCounter {
    static T: std::sync::OnceLock<TokenCounter> = std::sync::OnceLock::new();
    T.get_or_init(TokenCounter::embedded)
}

fn sample() -> &'static TokenizedDataset {
    static D: std::sync::OnceLock<TokenizedDataset> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        tokenize(
            Arc::new(sample_dataset()),
            tok(),
            true,
            None,
            &|_, _| {},
            NEVER,
        )
        .unwrap()
    })
}

/// What a mutant run gave.
enum Outcome {
    Ok,
    Err(ErrorKind, String),
}

/// Checks one outcome: no panic; an error is not internal and names `file`; a failed run left `out` empty.
fn check(
    what: &str,
    i: usize,
    file: &Path,
    out: &Path,
    r: std::thread::Result<Outcome>,
) -> Result<(), String> {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let fail = |why: String| {
        let input = std::fs::read(file).unwrap_or_default();
        Err(format!(
            "{what} mutant {i}: {why}\ninput: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(600)])
        ))
    };
    match r {
        Err(_) => fail("panicked".into()),
        Ok(Outcome::Ok) => Ok(()),
        Ok(Outcome::Err(kind, msg)) => {
            if kind == ErrorKind::Internal || kind == ErrorKind::Storage {
                return fail(format!("error of kind {kind:?}: {msg}"));
            }
            if kind == ErrorKind::Input && !msg.contains(&name) {
                return fail(format!("the error does not name the file {name}: {msg}"));
            }
            let left: Vec<_> = std::fs::read_dir(out)
                .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            if !left.is_empty() {
                return fail(format!("a failed run left {left:?} ({msg})"));
            }
            Ok(())
        }
    }
}

/// Generates with `spec` (JSON, `FILE` replaced by the mutant's path) into a fresh directory.
fn generate(spec: &str, file: &Path, data: &TokenizedDataset, out: &Path) -> Outcome {
    let text = spec.replace("FILE", &file.display().to_string());
    let spec = match parse_spec(text.as_bytes()) {
        Ok(s) => s,
        Err(e) => panic!("the test's own spec is invalid: {e}"),
    };
    let v = match spec.validate() {
        Ok(v) => v,
        Err(e) => return Outcome::Err(ErrorKind::Spec, e.to_string()),
    };
    match run_to_dir(
        &v,
        RunInput {
            data,
            tokenizer: tok(),
            inputs: Vec::new(),
            files: &PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        out,
    ) {
        Ok(run) => {
            assert!(run.workload.is_file() && run.manifest_path.is_file());
            Outcome::Ok
        }
        Err(e) => Outcome::Err(e.kind(), e.to_string()),
    }
}

/// Runs `MUTANTS` mutants of `seed` (written as `name`) through `run`; returns the number that gave a result.
fn fuzz(
    what: &str,
    name: &str,
    seed: &[u8],
    rng_seed: u64,
    run: &dyn Fn(&Path, &Path) -> Outcome,
) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    // The unmutated seed gives a result.
    let file = dir.path().join(name);
    std::fs::write(&file, seed).unwrap();
    let out = dir.path().join("out-seed");
    std::fs::create_dir(&out).unwrap();
    if let Outcome::Err(kind, msg) = run(&file, &out) {
        panic!("{what}: the seed itself fails ({kind:?}): {msg}");
    }
    let mut failures = Vec::new();
    let mut ok = 0;
    for i in 0..MUTANTS {
        let file = dir.path().join(format!("{i}-{name}"));
        std::fs::write(&file, mutate(&mut rng, seed)).unwrap();
        let out = dir.path().join(format!("out-{i}"));
        std::fs::create_dir(&out).unwrap();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| run(&file, &out)));
        if matches!(r, Ok(Outcome::Ok)) {
            ok += 1;
        }
        if let Err(e) = check(what, i, &file, &out, r) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {MUTANTS} {what} mutants failed; first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(3)].join("\n\n")
    );
    ok
}

#[test]
fn mutated_prompt_files() {
    // Plain records (a file is all plain or all sessioned; mutants that mix them must fail cleanly).
    let seed = concat!(
        r#"{"prompt": "Explain how a write-ahead log makes a database durable.", "completion": "It writes first."}"#,
        "\n",
        r#"{"prompt": "Summarise the causes of the French revolution in three sentences."}"#,
        "\n",
        r#"{"prompt": "Plan a marathon training week.", "completion": "Monday: rest."}"#,
        "\n",
        r#"{"prompt": "Write a haiku about vector clocks and causality in distributed systems."}"#,
        "\n",
    )
    .as_bytes()
    .to_vec();
    let spec = r#"{"trace_type": "constant", "duration_ms": 3000, "seed": 1, "traffic": {"target_qps": 2},
                   "length_policy": "exact", "lengths": {"target_prompt_len": 40}}"#;
    let ok = fuzz("prompt-file", "prompts.jsonl", &seed, 1, &|file, out| {
        let ds = match load_file(file) {
            Ok(d) => d,
            Err(e) => return Outcome::Err(ErrorKind::Input, e.to_string()),
        };
        let data = tokenize(Arc::new(ds), tok(), true, None, &|_, _| {}, NEVER).unwrap();
        generate(spec, file, &data, out)
    });
    assert!(ok > 0, "some mutants still load");
}

#[test]
fn mutated_azure_traces() {
    let seed = head("tests/fixtures/traces/azure_conv_2000.csv", 40);
    let spec =
        r#"{"trace_type": "azure", "seed": 1, "trace": {"file": "FILE", "max_requests": 60}}"#;
    let ok = fuzz("azure", "azure.csv", &seed, 2, &|file, out| {
        generate(spec, file, sample(), out)
    });
    assert!(ok > 0);
}

#[test]
fn mutated_mooncake_traces() {
    let seed = head("tests/fixtures/traces/mooncake_conv_1000.jsonl", 12);
    let spec = r#"{"trace_type": "mooncake", "seed": 1,
                   "trace": {"file": "FILE", "max_requests": 20, "block_size": 16}}"#;
    let ok = fuzz("mooncake", "mooncake.jsonl", &seed, 3, &|file, out| {
        generate(spec, file, sample(), out)
    });
    assert!(ok > 0);
}

#[test]
fn mutated_stat_csvs() {
    // Whole files: the two must cover the same times.
    let traffic = head("examples/stat/maas/traffic.csv", usize::MAX);
    let prompt = head("examples/stat/maas/prompt-len.csv", usize::MAX);
    let traffic_spec = format!(
        r#"{{"trace_type": "stat", "seed": 1, "duration_ms": 120000,
             "stat": {{"traffic_file": "FILE", "prompt_len_file": "{}"}}}}"#,
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/stat/maas/prompt-len.csv")
            .display()
    );
    let ok = fuzz("stat traffic", "traffic.csv", &traffic, 4, &|file, out| {
        generate(&traffic_spec, file, sample(), out)
    });
    assert!(ok > 0);
    let prompt_spec = format!(
        r#"{{"trace_type": "stat", "seed": 1, "duration_ms": 120000,
             "stat": {{"traffic_file": "{}", "prompt_len_file": "FILE"}}}}"#,
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/stat/maas/traffic.csv")
            .display()
    );
    let ok = fuzz(
        "stat prompt-len",
        "prompt-len.csv",
        &prompt,
        5,
        &|file, out| generate(&prompt_spec, file, sample(), out),
    );
    assert!(ok > 0);
}

#[test]
fn mutated_workload_files() {
    // A real workload with sessions: written by the generator from the agent fixture's shape.
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"trace_type": "constant", "duration_ms": 4000, "seed": 3, "traffic": {"target_qps": 3}}"#;
    let out = dir.path().join("w");
    std::fs::create_dir(&out).unwrap();
    assert!(matches!(
        generate(spec, &dir.path().join("unused"), sample(), &out),
        Outcome::Ok
    ));
    let seed = std::fs::read(out.join("workload.jsonl")).unwrap();
    let seed: Vec<u8> = seed
        .split(|&b| b == b'\n')
        .take(8)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let ok = fuzz("workload", "workload.jsonl", &seed, 6, &|file, out| {
        let opts = AnalyzeOptions {
            name: file.display().to_string(),
            ..AnalyzeOptions::default()
        };
        let reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
        if let Err(e) = analyze(reader, &opts) {
            return Outcome::Err(e.kind(), e.to_string());
        }
        match utility::run_to_dir(
            &Operation::Merge,
            &[Input::path(file)],
            out,
            OutputOptions::default(),
            &|| false,
        ) {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Err(e.kind(), e.to_string()),
        }
    });
    assert!(ok > 0);
}
