//! The `plot` command line: plots and report of any workload file, legacy keys, errors.

use crate::bin;
use crate::svg::parse_svg;

#[test]
fn plot_subcommand_reads_a_legacy_reference_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.jsonl");
    // The reference's legacy keys, Python's bare NaN, float lengths and an empty entry.
    std::fs::write(
        &path,
        concat!(
            "{\"timestamp\": 0, \"requests\": [{\"Prompt Length\": 10, \"Output Length\": 8, \"prompt\": \"a b c\", \"prefix_group\": 1}]}\n",
            "{\"timestamp\": 400, \"requests\": []}\n",
            "{\"timestamp\": 1200, \"requests\": [{\"prompt\": \"d\", \"prompt_length\": 30.0, \"output_length\": NaN}]}\n",
        ),
    )
    .unwrap();
    let out = bin()
        .arg("plot")
        .arg(&path)
        .args([
            "--target-qps",
            "1",
            "--duration-ms",
            "2000",
            "--target-prompt-len",
            "20",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["requests"], 2);
    assert_eq!(report["empty_entries"], 1);
    assert_eq!(report["null_output_lengths"], 1);
    assert_eq!(report["prompt_length"]["achieved"]["max"], 30);
    assert_eq!(report["target_requests"], 2.0);
    assert_eq!(report["prompt_length_error"]["median"], 0.5);
    let svg = std::fs::read_to_string(dir.path().join("traffic.svg")).unwrap();
    let (series, _) = parse_svg(&svg, "data-series");
    assert_eq!(series, vec!["achieved requests/s", "target requests/s"]);
    // A bad line names the file, line and field.
    std::fs::write(&path, "{\"timestamp\": 0, \"requests\": []}\n{\"timestamp\": 1, \"requests\": [{\"prompt_length\": \"x\"}]}\n").unwrap();
    let out = bin().arg("plot").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("legacy.jsonl:2: column 'prompt_length': must be a non-negative number"),
        "{err}"
    );
}
