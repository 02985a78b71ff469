//! The `dataset` command line: converters on the fixtures, generators' determinism and exact counts.

use crate::bin;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/datasets");

#[test]
fn convert_truncated_sharegpt_reports_skipped_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sg.jsonl");
    let o = bin()
        .args(["dataset", "convert", "--type", "sharegpt", "--path"])
        .arg(format!("{FIX}/sharegpt_truncated.json"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(
        stdout.contains("40 bytes of an incomplete record skipped"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("\"completions\": ["));
    // The reference's name for the client converter works too; bad input names the file and line.
    let o = bin()
        .args(["dataset", "convert", "--type", "trace", "--path"])
        .arg(format!("{FIX}/sharegpt.json"))
        .arg("--output")
        .arg(dir.path().join("x.jsonl"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sharegpt.json:2: column 'input': missing"),
        "{err}"
    );
    assert!(!dir.path().join("x.jsonl").exists());
}

#[test]
fn shared_prefix_and_multi_turn_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sub: &str, name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = bin()
            .args(["dataset", sub, "--seed", "5", "--output"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    };
    let flags = [
        "--num-configs",
        "2",
        "--prompt-length",
        "120,40",
        "--prompt-length-std",
        "10",
        "--num-samples-per-prefix",
        "5",
        "--num-prefix",
        "2",
        "--randomize-order",
    ];
    let a = run("shared-prefix", "a.jsonl", &flags);
    assert_eq!(a, run("shared-prefix", "b.jsonl", &flags));
    assert_eq!(
        a.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
        20
    );
    let mt = [
        "--num-sessions-mean",
        "3",
        "--num-sessions-std",
        "0",
        "--prompt-length-mean",
        "30",
    ];
    let m = run("multi-turn", "m1.jsonl", &mt);
    assert_eq!(m, run("multi-turn", "m2.jsonl", &mt));
    assert_eq!(
        m.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
        3
    );
}
