//! `trace anonymize`: a Mooncake workload we generate, anonymized, gives back its source trace's structure.

use serde_json::Value;

use super::bin;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every row's `hash_ids`, renamed to the order of first appearance.
fn canonical(rows: &[Value]) -> Vec<Vec<usize>> {
    let mut ids = std::collections::HashMap::new();
    rows.iter()
        .map(|r| {
            r["hash_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let n = ids.len();
                    *ids.entry(h.as_u64().unwrap()).or_insert(n)
                })
                .collect()
        })
        .collect()
}

#[test]
fn anonymizing_a_mooncake_workload_gives_back_the_trace_structure() {
    let dir = tempfile::tempdir().unwrap();
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces/mooncake_conv_1000.jsonl"
    );
    let st = bin()
        .args([
            "generate",
            "--trace-type",
            "mooncake",
            "--traffic-file",
            trace,
        ])
        .args(["--duration-ms", "20000", "--seed", "3", "--output-dir"])
        .arg(dir.path().join("w"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = dir.path().join("t.jsonl");
    let st = bin()
        .args(["trace", "anonymize", "--input"])
        .arg(dir.path().join("w/workload.jsonl"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let got = lines(&out);
    let src: Vec<Value> = lines(std::path::Path::new(trace))
        .into_iter()
        .take(got.len())
        .collect();
    assert!(got.len() > 20, "{} rows", got.len());
    for (a, b) in src.iter().zip(&got) {
        assert_eq!(a["input_length"], b["input_length"]);
        assert_eq!(a["output_length"], b["output_length"]);
        assert_eq!(a["timestamp"], b["timestamp"]);
        assert!(b.get("prompt").is_none());
    }
    assert_eq!(
        canonical(&src),
        canonical(&got),
        "the same prefix structure"
    );
    // A workload without prompts is refused, and nothing is left behind.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"timestamp\": 0, \"requests\": [{\"prompt_length\": 4}]}\n",
    )
    .unwrap();
    let st = bin()
        .args(["trace", "anonymize", "--input"])
        .arg(&bad)
        .arg("--output")
        .arg(dir.path().join("none.jsonl"))
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        err.contains("bad.jsonl") && err.contains("requests[0].prompt"),
        "{err}"
    );
    assert!(!dir.path().join("none.jsonl").exists());
}
