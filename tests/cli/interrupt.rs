//! A CLI run stopped by SIGINT/SIGTERM leaves no partial file; a dead run's partial file is cleaned next time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn partials(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".partial-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigterm_during_generate_removes_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // A stale partial of a process that cannot exist (pid above Linux's pid_max).
    std::fs::write(dir.path().join(".workload.jsonl.partial-4194304"), b"old").unwrap();
    // 9 M requests (within the default job limit): it is still writing when the signal comes.
    let child = Command::new(env!("CARGO_BIN_EXE_workload-generator"))
        .args([
            "generate",
            "--trace-type",
            "constant",
            "--target-qps",
            "2000",
            "--duration-ms",
            "4500000",
            "--seed",
            "1",
            "--no-cache",
            "--output-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mine = format!(".partial-{}", child.id());
    while !partials(dir.path()).iter().any(|n| n.ends_with(&mine)) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no partial file appeared: {:?}",
            partials(dir.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The stale one went at start-up.
    assert!(!dir.path().join(".workload.jsonl.partial-4194304").exists());
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    assert!(
        partials(dir.path()).is_empty(),
        "left behind: {:?}",
        partials(dir.path())
    );
    assert!(!dir.path().join("workload.jsonl").exists());
}
