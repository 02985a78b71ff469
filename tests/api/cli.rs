//! The `generate` command line: reference flags, determinism, errors.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_workload-generator"))
}

fn generate(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args([
            "generate",
            "--trace-type",
            "constant",
            "--target-qps",
            "3.5",
            "--duration-ms",
            "20000",
            "--seed",
            "5",
        ])
        .args(["--output-dir", dir.to_str().unwrap(), "--no-cache"])
        .args(extra)
        .output()
        .expect("runs")
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let flags = [
        "--target-prompt-len",
        "256",
        "--target-completion-len",
        "64",
        "--interval-ms",
        "2000",
    ];
    assert!(generate(a.path(), &flags).status.success());
    assert!(generate(b.path(), &flags).status.success());
    for f in ["workload.jsonl", "manifest.json"] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let text = std::fs::read_to_string(a.path().join("workload.jsonl")).unwrap();
    let mut last = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_u64().unwrap();
        assert!(ts >= last && ts < 20_000);
        last = ts;
        assert_eq!(v["requests"][0]["output_length"], 64);
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["seed"], 5);
    assert_eq!(m["spec"]["traffic"]["target_qps"], 3.5);
    assert_eq!(
        m["summary"]["requests"].as_u64().unwrap() as usize,
        text.lines().count()
    );
    assert_eq!(m["tokenizer"]["id"], "Qwen/Qwen2.5-Coder-7B-Instruct");
    assert_eq!(m["inputs"][0]["name"], "builtin:sample");
}

#[test]
fn spec_file_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, r#"{"trace_type": "constant", "seed": 3, "duration_ms": 3000, "traffic": {"target_qps": 2, "arrival": "uniform"}, "output": {"format": "json"}}"#).unwrap();
    let out = bin()
        .args([
            "generate",
            "--spec",
            spec.to_str().unwrap(),
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--no-cache",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("workload.json")).unwrap()).unwrap();
    let ts: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(ts, vec![0, 500, 1000, 1500, 2000, 2500]);
}

#[test]
fn bad_inputs_fail_clearly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"a\"}\n{\"prompt\": null, \"completion\": 1}\n{\"prompt\": 4}\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = generate(&out_dir, &["--prompt-file", prompts.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p.jsonl:3: field 'prompt': must be a string"),
        "{err}"
    );
    assert!(!out_dir.join("workload.jsonl").exists());
    let out = bin()
        .args([
            "generate",
            "--target-qps",
            "0",
            "--output-dir",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("traffic.target_qps must be > 0"));
    let out = bin()
        .args([
            "generate",
            "--trace-type",
            "azure",
            "--output-dir",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not implemented yet") || err.contains("trace"),
        "{err}"
    );
}
