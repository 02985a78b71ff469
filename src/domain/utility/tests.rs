use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::domain::spec::OutputFormat;

fn never() -> bool {
    false
}

fn write(dir: &Path, name: &str, text: &str) -> Input {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    Input::path(p)
}

fn run(op: Operation, inputs: &[Input], dir: &Path) -> (String, UtilityReport) {
    let dest = dir.join("out.jsonl");
    let report = apply(&op, inputs, &dest, OutputOptions::default(), &never).unwrap();
    (std::fs::read_to_string(dest).unwrap(), report)
}

fn timestamps(jsonl: &str) -> Vec<u64> {
    jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["timestamp"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn line(ts: u64, prompts: &[&str]) -> String {
    let reqs: Vec<String> = prompts
        .iter()
        .map(|p| format!("{{\"prompt\": \"{p}\", \"prompt_length\": 3, \"output_length\": null}}"))
        .collect();
    format!(
        "{{\"timestamp\": {ts}, \"requests\": [{}]}}\n",
        reqs.join(", ")
    )
}

#[test]
fn concat_reference_collision_with_gap_zero() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a0"]) + &line(100, &["a1"])),
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        &(line(0, &["b0"]) + &line(50, &["b1"])),
    );
    let c = write(dir.path(), "c.jsonl", &line(10, &["c0"]));
    let (out, report) = run(
        Operation::Concat { gap_ms: 0 },
        &[a.clone(), b.clone(), c.clone()],
        dir.path(),
    );
    // Reference: offset = previous file's (shifted) last timestamp; b's first entry collides with a's last.
    assert_eq!(timestamps(&out), vec![0, 100, 100, 150, 160]);
    assert_eq!(out.lines().count(), 5, "collisions stay separate entries");
    assert_eq!(
        out.lines().nth(2).unwrap(),
        "{\"timestamp\": 100, \"requests\": [{\"prompt\": \"b0\", \"prompt_length\": 3, \"output_length\": null}]}"
    );
    let o = report.output.unwrap();
    assert_eq!(
        (o.entries, o.requests, o.last_timestamp_ms),
        (5, 5, Some(160))
    );
    let (out, _) = run(Operation::Concat { gap_ms: 1000 }, &[a, b, c], dir.path());
    assert_eq!(timestamps(&out), vec![0, 100, 1100, 1150, 2160]);
}

#[test]
fn concat_chains_on_the_maximum_of_an_unsorted_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a"]) + &line(300, &["b"]) + &line(100, &["c"])),
    );
    let empty = write(dir.path(), "e.jsonl", "");
    let b = write(dir.path(), "b.jsonl", &line(0, &["d"]));
    let (out, report) = run(Operation::Concat { gap_ms: 0 }, &[a, empty, b], dir.path());
    // The reference would use the last line (100); the maximum (300) keeps the next file after this one.
    assert_eq!(timestamps(&out), vec![0, 300, 100, 300]);
    assert!(!report.inputs[0].sorted);
    assert!(report.notes[0].contains("not sorted"), "{:?}", report.notes);
    assert_eq!(report.inputs[1].entries, 0);
}

#[test]
fn merge_combines_equal_timestamps_in_input_order_and_keeps_extra_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a0"])
            + "{\"timestamp\": 100, \"requests\": [{\"prompt\": \"a1\"}], \"schema_version\": 1, \"events\": [\"ea\"]}\n"
            + &line(100, &["a2"])
            + &line(300, &["a3"])),
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        &(line(50, &["b0"])
            + "{\"timestamp\": 100, \"requests\": [{\"prompt\": \"b1\"}], \"schema_version\": 2, \"events\": [\"eb\"], \"extra\": true}\n"),
    );
    let (out, report) = run(Operation::Merge, &[a, b], dir.path());
    assert_eq!(timestamps(&out), vec![0, 50, 100, 300]);
    let merged: Value = serde_json::from_str(out.lines().nth(2).unwrap()).unwrap();
    let prompts: Vec<&str> = merged["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prompt"].as_str().unwrap())
        .collect();
    // File order, then line order (as the reference's bucketing).
    assert_eq!(prompts, ["a1", "a2", "b1"]);
    assert_eq!(merged["events"], json!(["ea", "eb"]));
    assert_eq!(merged["schema_version"], 1);
    assert_eq!(merged["extra"], true);
    let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["timestamp", "requests", "schema_version", "events", "extra"]
    );
    assert_eq!(report.output.as_ref().unwrap().requests, 6);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("2 entries were combined")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.contains("'schema_version'")),
        "{:?}",
        report.notes
    );
}

#[test]
fn merge_sorts_an_unsorted_input_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a0"]) + &line(200, &["a1"])),
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        &(line(300, &["b0"]) + &line(100, &["b1"]) + &line(100, &["b2"]) + &line(0, &["b3"])),
    );
    let (out, report) = run(Operation::Merge, &[a, b.clone()], dir.path());
    assert_eq!(timestamps(&out), vec![0, 100, 200, 300]);
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["requests"][1]["prompt"], "b3");
    let second: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        second["requests"][0]["prompt"], "b1",
        "stable sort keeps line order"
    );
    assert_eq!(second["requests"][1]["prompt"], "b2");
    assert!(
        report.notes[0].contains("b.jsonl: not sorted by timestamp (line 2: 100 after 300)"),
        "{:?}",
        report.notes
    );
    assert!(!report.inputs[1].sorted);
    assert_eq!(report.inputs[1].entries, 4);
}

#[test]
fn merge_of_one_file_combines_its_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(5, &["x"]) + &line(5, &["y"]) + &line(6, &[])),
    );
    let (out, _) = run(Operation::Merge, &[a], dir.path());
    assert_eq!(timestamps(&out), vec![5, 6]);
}

#[test]
fn time_scale_slice_shift() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a"]) + &line(1001, &["b"]) + &line(3000, &["c"])),
    );
    let (out, _) = run(
        Operation::TimeScale { factor: 0.5 },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_eq!(timestamps(&out), vec![0, 501, 1500]);
    let (out, _) = run(
        Operation::Slice {
            start_ms: 1000,
            end_ms: Some(3000),
        },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_eq!(timestamps(&out), vec![1]);
    let (out, _) = run(
        Operation::Slice {
            start_ms: 1000,
            end_ms: None,
        },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_eq!(timestamps(&out), vec![1, 2000]);
    let (out, _) = run(
        Operation::Shift { offset_ms: 250 },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_eq!(timestamps(&out), vec![250, 1251, 3250]);
    let shifted = write(dir.path(), "s.jsonl", &out);
    let (out, _) = run(Operation::Shift { offset_ms: -250 }, &[shifted], dir.path());
    assert_eq!(timestamps(&out), vec![0, 1001, 3000]);
    let dest = dir.path().join("neg.jsonl");
    let err = apply(
        &Operation::Shift { offset_ms: -1 },
        &[a],
        &dest,
        OutputOptions::default(),
        &never,
    )
    .unwrap_err()
    .to_string();
    assert!(err.ends_with("a.jsonl:1: column 'timestamp': shifting by -1 ms takes timestamp 0 out of range [0, 2^53]"), "{err}");
    assert!(!dest.exists());
}

#[test]
fn sample_is_seeded_and_keeps_whole_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..2000u64 {
        let s = i % 50;
        text.push_str(&format!(
            "{{\"timestamp\": {i}, \"requests\": [{{\"prompt\": \"p{i}\", \"session_id\": {s}}}, {{\"prompt\": \"q{i}\"}}]}}\n"
        ));
    }
    let a = write(dir.path(), "a.jsonl", &text);
    let op = Operation::Sample {
        fraction: 0.3,
        seed: Some(7),
    };
    let (out1, r1) = run(op.clone(), std::slice::from_ref(&a), dir.path());
    let (out2, _) = run(op, std::slice::from_ref(&a), dir.path());
    assert_eq!(out1, out2, "same seed, same bytes");
    let (out3, _) = run(
        Operation::Sample {
            fraction: 0.3,
            seed: Some(8),
        },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_ne!(out1, out3);
    let kept = r1.output.unwrap().requests as f64 / 4000.0;
    assert!((0.2..0.4).contains(&kept), "{kept}");
    // Every session is all-or-nothing: 40 turns each.
    let mut turns: HashMap<u64, u64> = HashMap::new();
    for l in out1.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        for r in v["requests"].as_array().unwrap() {
            if let Some(s) = r["session_id"].as_u64() {
                *turns.entry(s).or_default() += 1;
            }
        }
        assert!(!v["requests"].as_array().unwrap().is_empty());
    }
    assert!(turns.values().all(|n| *n == 40), "{turns:?}");
    let (all, _) = run(
        Operation::Sample {
            fraction: 1.0,
            seed: None,
        },
        &[a],
        dir.path(),
    );
    assert_eq!(all, text);
}

#[test]
fn legacy_keys_json_array_and_nan_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = "[\n    {\"timestamp\": 0, \"requests\": [{\"Prompt Length\": 12, \"Output Length\": 34, \"prompt\": \"h\\u00e9\"}]},\n    {\"timestamp\": 1000, \"requests\": [{\"prompt\": \"x\", \"prompt_length\": 5, \"output_length\": NaN}]}\n]\n";
    let a = write(dir.path(), "legacy.json", legacy);
    let (out, report) = run(
        Operation::Shift { offset_ms: 10 },
        std::slice::from_ref(&a),
        dir.path(),
    );
    assert_eq!(
        out,
        "{\"timestamp\": 10, \"requests\": [{\"Prompt Length\": 12, \"Output Length\": 34, \"prompt\": \"hé\"}]}\n\
         {\"timestamp\": 1010, \"requests\": [{\"prompt\": \"x\", \"prompt_length\": 5, \"output_length\": null}]}\n"
    );
    assert_eq!(report.inputs[0].layout, "json");
    assert_eq!(report.inputs[0].non_finite_as_null, 1);
    let stats = workload_stats(&a, &never).unwrap();
    assert_eq!(stats.legacy_length_keys, 1);
    assert_eq!(stats.prompt_length.unwrap().max, 12);
    // JSON-array output, ASCII-escaped like the reference.
    let dest = dir.path().join("out.json");
    apply(
        &Operation::Shift { offset_ms: 0 },
        &[a],
        &dest,
        OutputOptions {
            format: OutputFormat::Json,
            ascii: true,
        },
        &never,
    )
    .unwrap();
    let text = std::fs::read_to_string(&dest).unwrap();
    assert!(text.starts_with("[\n    {\n        \"timestamp\": 0,\n        \"requests\": [\n            {\n                \"Prompt Length\": 12,"), "{text}");
    assert!(text.contains("\"h\\u00e9\""));
    assert_eq!(read::read_all("o", text.as_bytes()).unwrap().len(), 2);
}

#[test]
fn bad_input_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", &line(0, &["a"]));
    let cases = [
        (
            "{\"requests\": []}\n",
            "bad.jsonl:2: column 'timestamp': missing",
        ),
        (
            "{\"timestamp\": -1, \"requests\": []}\n",
            "bad.jsonl:2: column 'timestamp': must not be negative, got -1",
        ),
        (
            "{\"timestamp\": 2.5, \"requests\": []}\n",
            "bad.jsonl:2: column 'timestamp': must be an integer number of ms, got 2.5",
        ),
        (
            "\"just a string\"\n",
            "bad.jsonl:2: not a workload entry: expected a JSON object, got a string",
        ),
        (
            "{\"timestamp\": 3, \"requests\": {}}\n",
            "bad.jsonl:2: column 'requests': must be a list, got an object",
        ),
    ];
    for (bad_line, want) in cases {
        let bad = write(dir.path(), "bad.jsonl", &(line(0, &["x"]) + bad_line));
        for op in [Operation::Concat { gap_ms: 0 }, Operation::Merge] {
            let dest = dir.path().join("out.jsonl");
            let err = apply(
                &op,
                &[good.clone(), bad.clone()],
                &dest,
                OutputOptions::default(),
                &never,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{err} vs {want}");
            assert!(!dest.exists(), "nothing written on error");
        }
    }
    let only_out: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(only_out.is_empty(), "{only_out:?}");
}

#[test]
fn options_are_validated() {
    let one = [Input::path("a")];
    let two = [Input::path("a"), Input::path("b")];
    let e = |op: Operation, inputs: &[Input]| op.validated(inputs.len()).unwrap_err().to_string();
    assert_eq!(
        e(Operation::TimeScale { factor: 0.0 }, &one),
        "factor must be a number > 0, got 0"
    );
    assert_eq!(
        e(
            Operation::Sample {
                fraction: 1.5,
                seed: None
            },
            &one
        ),
        "fraction must be in (0, 1], got 1.5"
    );
    assert_eq!(
        e(
            Operation::Slice {
                start_ms: 5,
                end_ms: Some(5)
            },
            &one
        ),
        "end_ms must be greater than start_ms (5), got 5"
    );
    assert_eq!(
        e(Operation::Shift { offset_ms: 1 }, &two),
        "input_files mode shift takes exactly one file, got 2"
    );
    assert_eq!(
        e(Operation::Merge, &[]),
        "input_files must name at least one file"
    );
    let op = Operation::Sample {
        fraction: 0.5,
        seed: None,
    }
    .validated(1)
    .unwrap();
    assert!(matches!(op, Operation::Sample { seed: Some(_), .. }));
    let parsed: Operation =
        serde_json::from_value(json!({"mode": "time-scale", "factor": 2.0})).unwrap();
    assert_eq!(parsed, Operation::TimeScale { factor: 2.0 });
    let parsed: Operation = serde_json::from_value(json!({"mode": "concat"})).unwrap();
    assert_eq!(parsed, Operation::Concat { gap_ms: 0 });
    assert!(serde_json::from_value::<Operation>(json!({"mode": "concat", "gap": 1})).is_err());
}

#[test]
fn run_to_dir_writes_workload_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.jsonl", &line(0, &["a"]));
    let b = write(dir.path(), "b.jsonl", &line(0, &["b"]));
    let out_dir = dir.path().join("w1");
    let run = run_to_dir(
        &Operation::Concat { gap_ms: 5 },
        &[a, b],
        &out_dir,
        OutputOptions::default(),
        &never,
    )
    .unwrap();
    assert_eq!(
        timestamps(&std::fs::read_to_string(&run.workload).unwrap()),
        vec![0, 5]
    );
    let m: Value = serde_json::from_slice(&std::fs::read(&run.manifest_path).unwrap()).unwrap();
    assert_eq!(m["operation"], json!({"mode": "concat", "gap_ms": 5}));
    assert_eq!(m["inputs"][1]["role"], "input_files[1]");
    assert_eq!(m["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["output"]["file"], "workload.jsonl");
    assert_eq!(m["report"]["output"]["entries"], 2);
    let cancelled = run_to_dir(
        &Operation::Merge,
        &[Input::path(&run.workload)],
        &dir.path().join("w2"),
        OutputOptions::default(),
        &|| true,
    );
    assert!(matches!(cancelled, Err(UtilityError::Cancelled)));
    assert!(!dir.path().join("w2/workload.jsonl").exists());
}

#[test]
fn stats_mode_writes_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(line(0, &["a", "b"]) + &line(2000, &["c"])),
    );
    let dest = dir.path().join("stats.json");
    let r = apply(
        &Operation::Stats,
        &[a],
        &dest,
        OutputOptions::default(),
        &never,
    )
    .unwrap();
    let s = r.stats.unwrap();
    assert_eq!(
        (s.entries, s.requests, s.duration_ms, s.mean_rate_rps),
        (2, 3, 2000, Some(1.5))
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&dest).unwrap()).unwrap();
    assert_eq!(v["requests"], 3);
}

/// 200k entries through concat and a 4-way merge (the merge holds one entry per input).
#[test]
fn large_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50_000u64;
    let mut inputs = Vec::new();
    for k in 0..4u64 {
        let mut text = String::with_capacity(n as usize * 90);
        for i in 0..n {
            text.push_str(&format!(
                "{{\"timestamp\": {}, \"requests\": [{{\"prompt\": \"prompt {k} {i}\", \"prompt_length\": 4, \"output_length\": 8}}]}}\n",
                i * 10 + k
            ));
        }
        inputs.push(write(dir.path(), &format!("in{k}.jsonl"), &text));
    }
    let (out, r) = run(Operation::Merge, &inputs, dir.path());
    let o = r.output.unwrap();
    assert_eq!((o.entries, o.requests), (4 * n, 4 * n));
    let ts = timestamps(&out);
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
    let (out, r) = run(Operation::Concat { gap_ms: 0 }, &inputs, dir.path());
    assert_eq!(r.output.unwrap().entries, 4 * n);
    let ts = timestamps(&out);
    assert_eq!(ts.len() as u64, 4 * n);
    assert_eq!(*ts.last().unwrap(), 4 * ((n - 1) * 10) + 6);
}
