//! Replay: drive a workload file against an OpenAI-compatible server, open loop, and measure what was
//! really sent and served. An async layer over the domain (tokio, reqwest); the domain stays synchronous.
//!
//! - [`plan`]: the requests of a workload file with due times, sessions, turns and `--shard`.
//! - [`client`]: one request (completions or chat, streamed or not) and its timings.
//! - [`run`]: the timer thread, session tasks and the results writer.
//! - [`report`]: per-request results, the mergeable summary and the report.
//! - [`hist`]: the log-linear histogram behind every percentile.
//! - [`metrics`]: the target's Prometheus metrics before, during and after (`--target-metrics`).
//! - [`plots`]: the SVG figures (rate, lateness, latency over time, output asked vs delivered).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::atomic::AtomicFile;

pub mod client;
pub mod hist;
pub mod metrics;
pub mod plan;
pub mod plots;
pub mod report;
pub mod run;

pub use run::{REPORT, RESULTS, SUMMARY};

/// Combines the replay directories `dirs` (one per shard) into `out`: `results.jsonl` concatenated,
/// summaries (histograms and counters) merged, the report of the merge and the plots of the merged results. The report equals the one a
/// single replay would write for the same result records.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<report::Summary> {
    anyhow::ensure!(!dirs.is_empty(), "nothing to merge");
    let mut merged: Option<report::Summary> = None;
    std::fs::create_dir_all(out)?;
    let results = out.join(RESULTS);
    let mut text = Vec::new();
    for d in dirs {
        let path = d.join(SUMMARY);
        let raw = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let s: report::Summary = serde_json::from_slice(&raw)
            .map_err(|e| anyhow::anyhow!("{}: not a replay summary: {e}", path.display()))?;
        match &mut merged {
            None => merged = Some(s),
            Some(m) => m
                .merge(&s)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        }
        let rpath = d.join(RESULTS);
        let r = std::fs::read(&rpath)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", rpath.display()))?;
        text.extend_from_slice(&r);
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
    }
    let merged = merged.expect("at least one directory");
    let mut acc = plots::PlotAcc::new();
    let text_str =
        std::str::from_utf8(&text).map_err(|e| anyhow::anyhow!("{RESULTS}: not UTF-8: {e}"))?;
    for r in report::parse_results(text_str)? {
        acc.add(&r);
    }
    let mut file = AtomicFile::create(&results)?;
    file.write_all(&text)?;
    run::write_json(&out.join(SUMMARY), &merged)?;
    run::write_json(&out.join(REPORT), &merged.report())?;
    plots::write(out, &acc, &merged)?;
    file.commit()?;
    Ok(merged)
}
