//! The `generate` command line: reference flags, determinism, errors, and the files it writes.

use serde_json::Value;

use crate::bin;
use crate::svg::parse_svg;

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

#[test]
fn cli_binary_generates_a_stat_workload_from_the_examples() {
    let out = tempfile::tempdir().unwrap();
    let status = bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "generate",
            "--trace-type",
            "stat",
            "--stat-trace-type",
            "maas",
            "--traffic-file",
            "examples/stat/maas/traffic.csv",
            "--prompt-len-file",
            "examples/stat/maas/prompt-len.csv",
            "--completion-len-file",
            "examples/stat/maas/completion-len.csv",
            "--qps-scale",
            "2",
            "--duration-ms",
            "600000",
            "--seed",
            "1",
            "--no-cache",
        ])
        .arg("--output-dir")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let roles: Vec<&str> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "prompts",
            "stat.traffic_file",
            "stat.prompt_len_file",
            "stat.completion_len_file"
        ]
    );
    assert_eq!(manifest["spec"]["stat"]["qps_scale"], 2.0);
    let n = manifest["summary"]["requests"].as_f64().unwrap();
    assert!((n - 1440.0).abs() < 3.0 * 1440f64.sqrt(), "{n}");
}

#[test]
fn generate_writes_plots_and_report_beside_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "generate",
            "--target-qps",
            "4",
            "--duration-ms",
            "10000",
            "--target-prompt-len",
            "200",
            "--target-completion-len",
            "64",
            "--seed",
            "7",
            "--output-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["workload", "traffic", "tokens", "lengths", "interarrival"] {
        let svg = std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
        parse_svg(&svg, "data-series");
        assert!(svg.contains(
            "constant workload: 4 req/s poisson, prompt 200 tok, output 64 tok, 10 s, seed 7"
        ));
    }
    assert!(!dir.path().join("sessions.svg").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["report"], report);
    assert_eq!(report["requests"], manifest["summary"]["requests"]);
    assert_eq!(report["target_requests"], 40.0);
    assert_eq!(report["output_length"]["achieved"]["p50"], 64);
    assert_eq!(manifest["plots"][0], "workload.svg");
    // No temporary files are left behind.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "{name}");
    }
}

#[test]
fn generate_with_sessions_writes_the_session_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("sessions.jsonl");
    let mut text = String::new();
    for s in 0..8 {
        text.push_str(&format!(
            "{{\"session_id\": {s}, \"prompts\": [\"first question of session {s}\", \"follow-up {s}\", \"last one {s}\"], \"completions\": [\"a\", \"b\", \"c\"]}}\n"
        ));
    }
    std::fs::write(&prompts, text).unwrap();
    let out_dir = dir.path().join("out");
    let out = bin()
        .args([
            "generate",
            "--target-qps",
            "2",
            "--duration-ms",
            "20000",
            "--seed",
            "3",
            "--no-cache",
        ])
        .arg("--prompt-file")
        .arg(&prompts)
        .arg("--output-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(out_dir.join("sessions.svg")).unwrap();
    let (series, texts) = parse_svg(&svg, "data-series");
    assert_eq!(series, vec!["requests of the session".to_string()]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let sessions = &report["sessions"];
    let count = sessions["count"].as_u64().unwrap();
    assert!((1..=8).contains(&count), "{sessions}");
    assert!(
        texts
            .iter()
            .any(|t| t.ends_with(&format!("(all {count} sessions)"))),
        "{texts:?}"
    );
    assert!(sessions["turns_max"].as_u64().unwrap() <= 3);
    assert!(sessions["max_concurrent"].as_u64().unwrap() >= 1);
}

#[test]
fn limits_refuse_before_work_and_stop_a_run_that_crosses_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    // Before any work: 3.5 qps for 20 s is about 70 requests.
    let out = generate(dir.path(), &["--max-job-requests", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("traffic.target_qps") && err.contains("max_job_requests"),
        "{err}"
    );
    assert!(!dir.path().join("workload.jsonl").exists());
    // While writing: a trace is sized only when read, so the budget stops it and no file is left.
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces/azure_conv_2000.csv"
    );
    let out = bin()
        .args(["generate", "--trace-type", "azure", "--traffic-file", trace])
        .args(["--output-dir", dir.path().to_str().unwrap(), "--no-cache"])
        .args(["--max-job-requests", "50"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("crossed its budget of 50 requests"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
