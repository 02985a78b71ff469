//! One streaming pass over a workload file (JSONL, or the pretty JSON array), collecting everything the plots
//! and `report.json` need with memory independent of the number of requests:
//!
//! - time series in fixed, left-closed bins `[k·bin, (k+1)·bin)` from t = 0, doubled (adjacent bins merged)
//!   whenever a timestamp would need more than `max_points` bins, so a series never has more points;
//! - exact integer histograms of prompt length, output length and inter-arrival gap (ms);
//! - per-session first/last time and turn count (memory grows with the number of *sessions*), and a dot
//!   timeline for the first `max_session_rows` sessions only;
//! - prefix reuse: chained hashes of fixed-size prompt blocks against an unlimited cache (capped at
//!   `unlimited_cap_blocks` distinct blocks, beyond which the figure is a lower bound) and an LRU cache.
//!
//! Lines are parsed in parallel batches (rayon) and folded in file order, so the result is deterministic.
//! Accepted request keys: `prompt`, `prompt_length`/`Prompt Length` (legacy), `output_length`/`Output Length`,
//! `session_id`; unknown keys are ignored. Lengths may be integers, floats (floored), `null` or Python's bare
//! `NaN` (read as null).
//!
//! [`crate::domain::report`] summarizes an [`Analysis`] and [`crate::domain::plot`] draws it; this module
//! imports neither.

use std::io::BufRead;

use crate::domain::layout::Layout;

mod acc;
mod model;
mod parse;
mod prefix;
mod read;
mod tee;

pub use model::{
    Analysis, AnalyzeError, AnalyzeOptions, Bin, BlockBasis, PrefixStats, SessionRow, SessionStats,
};

use read::{analyze_array, analyze_lines};
pub use tee::Tee;

/// Analyzes a workload (JSONL, or a JSON array of entries) in one streaming pass.
pub fn analyze(
    mut reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
) -> Result<Analysis, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        file: opts.name.clone(),
        source,
    };
    let (digester, mut acc) = acc::start(opts);
    // Skip a BOM and blank space to find out whether this is a JSON array.
    let (layout, skipped_lines) = crate::domain::layout::detect(&mut reader).map_err(io)?;
    match layout {
        None => {}
        Some(Layout::JsonArray) => analyze_array(
            std::io::BufReader::new(crate::domain::json::NonFiniteReader::new(reader)),
            opts,
            &digester,
            &mut acc,
        )?,
        Some(Layout::Jsonl) => analyze_lines(reader, opts, skipped_lines, &digester, &mut acc)?,
    }
    Ok(acc::finish(acc))
}

#[cfg(test)]
mod tests {
    use super::prefix::Lru;
    use super::read::count_newlines;
    use super::*;
    use crate::domain::stats::Histogram;

    fn run(text: &str) -> Analysis {
        analyze(text.as_bytes(), &AnalyzeOptions::default()).unwrap()
    }

    #[test]
    fn a_json_array_with_pythons_nan_reads_as_null() {
        let a = run(
            "[\n {\"timestamp\": 0, \"requests\": [{\"prompt\": \"NaN\", \"prompt_length\": 1, \"output_length\": NaN}]},\n {\"timestamp\": 5, \"requests\": [{\"prompt\": \"y\", \"prompt_length\": Infinity, \"output_length\": 3}]}\n]",
        );
        assert_eq!((a.requests, a.null_output_length), (2, 1));
        assert_eq!(a.missing_prompt_length, 1);
    }

    #[test]
    fn int_hist_quantiles_and_cdf() {
        let mut h = Histogram::default();
        for v in [1, 2, 2, 3, 100_000] {
            h.add(v);
        }
        assert_eq!(h.quantiles(&[0.2, 0.5, 0.8, 1.0]), vec![1, 2, 3, 100_000]);
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.max(), Some(100_000));
        assert_eq!(
            h.cdf_points(10),
            vec![(1.0, 0.2), (2.0, 0.6), (3.0, 0.8), (100_000.0, 1.0)]
        );
        assert_eq!(h.cdf_points(2).len(), 2);
    }

    #[test]
    fn bins_are_left_closed_and_the_first_second_is_kept() {
        let a = run(concat!(
            "{\"timestamp\": 0, \"requests\": [{\"prompt\": \"a\", \"prompt_length\": 3, \"output_length\": 5}]}\n",
            "{\"timestamp\": 999, \"requests\": [{\"prompt\": \"b\", \"prompt_length\": 7, \"output_length\": null}]}\n",
            "{\"timestamp\": 1000, \"requests\": []}\n",
            "\n",
            "{\"timestamp\": 2500, \"requests\": [{\"Prompt Length\": 4, \"Output Length\": 8, \"prompt\": \"c\"}]}\n",
        ));
        assert_eq!(a.bins.len(), 3);
        assert_eq!(a.bins[0].requests, 2);
        assert_eq!(a.bins[0].prompt_tokens, 10);
        assert_eq!(a.bins[0].output_tokens, 5);
        assert_eq!(a.bins[1].requests, 0);
        assert_eq!(a.bins[1].entries, 1);
        assert_eq!(a.bins[2].prompt_tokens, 4);
        assert_eq!(a.bins[2].output_tokens, 8);
        assert_eq!((a.entries, a.empty_entries, a.requests), (4, 1, 3));
        assert_eq!(a.null_output_length, 1);
        assert_eq!(a.gaps.quantiles(&[0.5, 1.0]), vec![999, 1501]);
        assert_eq!(a.observed_end_ms(), 3000);
    }

    #[test]
    fn a_raised_cancel_flag_stops_the_pass() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut lines = String::new();
        for s in 0..5000u64 {
            lines.push_str(&format!(
                "{{\"timestamp\": {s}, \"requests\": [{{\"prompt_length\": 1}}]}}\n"
            ));
        }
        let array = format!("[{}]", lines.trim_end().replace('\n', ","));
        for text in [&lines, &array] {
            let polls = AtomicU64::new(0);
            let cancel = || polls.fetch_add(1, Ordering::Relaxed) >= 1;
            let opts = AnalyzeOptions {
                cancel: Some(&cancel),
                ..Default::default()
            };
            // An array polls every 1,024 entries: the first poll passes, the second stops the pass.
            let r = analyze(text.as_bytes(), &opts);
            if text.starts_with('[') {
                assert!(matches!(r, Err(AnalyzeError::Cancelled)), "{r:?}");
            } else {
                // One batch holds this whole small file; a flag raised from the start stops it at once.
                let always = || true;
                let opts = AnalyzeOptions {
                    cancel: Some(&always),
                    ..Default::default()
                };
                assert!(matches!(
                    analyze(text.as_bytes(), &opts),
                    Err(AnalyzeError::Cancelled)
                ));
            }
            // Without a raised flag the pass completes.
            let never = || false;
            let opts = AnalyzeOptions {
                cancel: Some(&never),
                ..Default::default()
            };
            assert_eq!(analyze(text.as_bytes(), &opts).unwrap().requests, 5000);
        }
    }

    #[test]
    fn long_workloads_are_coarsened_by_merging() {
        let mut text = String::new();
        for s in 0..5000u64 {
            text.push_str(&format!(
                "{{\"timestamp\": {}, \"requests\": [{{\"prompt_length\": 1}}]}}\n",
                s * 1000
            ));
        }
        let a = analyze(
            text.as_bytes(),
            &AnalyzeOptions {
                max_points: 2000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.bin_ms, 4000);
        assert_eq!(a.bins.len(), 1250);
        assert!(a.bins.iter().all(|b| b.requests == 4));
    }

    #[test]
    fn nan_and_json_arrays_and_errors() {
        let a = run(
            "{\"timestamp\": 5, \"requests\": [{\"prompt\": \"NaN\", \"prompt_length\": 2, \"output_length\": NaN}]}",
        );
        assert_eq!(a.null_output_length, 1);
        let a = run(
            "\u{feff}[\n    {\n        \"timestamp\": 19,\n        \"requests\": [\n            {\"prompt\": \"p\", \"prompt_length\": 1, \"output_length\": 2, \"session_id\": 0}\n        ]\n    }\n]",
        );
        assert_eq!(a.requests, 1);
        assert_eq!(a.sessions.as_ref().unwrap().count, 1);
        let e = analyze(
            "{\"timestamp\": 1, \"requests\": []}\n{\"timestamp\": -4, \"requests\": []}\n"
                .as_bytes(),
            &AnalyzeOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "workload:2: column 'timestamp': must be a non-negative number of ms"
        );
        let e = analyze(
            "{\"timestamp\": 1, \"requests\": [}\n".as_bytes(),
            &AnalyzeOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("workload:1: column 31: expected value"),
            "{e}"
        );
        let e = analyze(
            "[{\"timestamp\": 1},\n {\"timestamp\": \"x\"}]".as_bytes(),
            &AnalyzeOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("workload:2: column"), "{e}");
    }

    #[test]
    fn error_lines_are_exact_across_parallel_chunks() {
        let mut text = String::new();
        for i in 1..=200_000u64 {
            if i == 177_777 {
                text.push_str("{\"timestamp\": 5, \"requests\": [{\"prompt_length\": -1}]}\n");
            } else if i % 1000 == 0 {
                text.push('\n');
            } else {
                text.push_str(&format!(
                    "{{\"timestamp\": {i}, \"requests\": [{{\"prompt\": \"p\\n{i}\", \"prompt_length\": 3, \"output_length\": NaN}}]}}\n"
                ));
            }
        }
        let e = analyze(text.as_bytes(), &AnalyzeOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "workload:177777: column 'prompt_length': must be a non-negative number"
        );
        let huge = text.replace("\"prompt_length\": -1", "\"prompt_length\": 1e20");
        assert_eq!(
            analyze(huge.as_bytes(), &AnalyzeOptions::default())
                .unwrap_err()
                .to_string(),
            "workload:177777: column 'prompt_length': must be at most 4294967295 (the largest token count)"
        );
        let ok = text.replace("\"prompt_length\": -1", "\"prompt_length\": 1");
        let a = analyze(ok.as_bytes(), &AnalyzeOptions::default()).unwrap();
        assert_eq!(a.requests, 199_800);
        assert_eq!(a.null_output_length, 199_800);
    }

    #[test]
    fn newline_count() {
        let text: Vec<u8> = (0..100_000u32)
            .map(|i| if i % 7 == 0 { b'\n' } else { b'x' })
            .collect();
        assert_eq!(count_newlines(&text), 14_286);
        assert_eq!(count_newlines(b""), 0);
        assert_eq!(count_newlines(b"\n\n"), 2);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut l = Lru::new(2);
        assert!(!l.touch(1));
        assert!(!l.touch(2));
        assert!(l.touch(1));
        assert!(!l.touch(3)); // evicts 2
        assert!(!l.touch(2)); // evicts 1
        assert!(l.touch(3));
        assert!(!l.touch(1));
        assert!(!Lru::new(0).touch(1));
    }
}
