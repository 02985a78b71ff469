//! `stats`: counts, span, mean rate and length percentiles of any workload file, in one streaming pass with
//! memory bounded by the number of distinct lengths and sessions.
//!
//! This is the minimal summary; the fuller fidelity report (per-second series, plots) belongs to the
//! report module, which can consume the same [`EntryReader`](super::read::EntryReader) stream.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::super::stats::{Histogram, LengthSummary, round3};
use super::read::RawEntry;

/// Summary of one workload file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadStats {
    /// Entries (lines).
    pub entries: u64,
    /// Requests over all entries.
    pub requests: u64,
    /// Entries with an empty `requests` list.
    pub empty_entries: u64,
    /// Smallest timestamp, ms.
    pub first_timestamp_ms: Option<u64>,
    /// Largest timestamp, ms.
    pub last_timestamp_ms: Option<u64>,
    /// `last − first`, ms.
    pub duration_ms: u64,
    /// Requests per second over the span (null for a span of 0).
    pub mean_rate_rps: Option<f64>,
    /// Whether timestamps never decrease in file order.
    pub sorted: bool,
    /// Entries sharing their timestamp with the previous entry (collisions, e.g. after a reference concat).
    pub duplicate_timestamps: u64,
    /// Distinct `session_id` values (0 without sessions).
    pub sessions: u64,
    /// Requests with a `session_id`.
    pub requests_with_session: u64,
    /// `prompt_length` (or legacy `Prompt Length`) distribution, tokens.
    pub prompt_length: Option<LengthSummary>,
    /// `output_length` (or legacy `Output Length`) distribution over integer values, tokens.
    pub output_length: Option<LengthSummary>,
    /// Requests whose output length is null, missing or not a non-negative integer (the client then sends no
    /// `max_tokens`).
    pub output_length_unset: u64,
    /// Requests whose lengths came from the legacy `Prompt Length`/`Output Length` keys.
    pub legacy_length_keys: u64,
}

/// Accumulates [`WorkloadStats`] entry by entry.
#[derive(Debug, Default)]
pub struct StatsCollector {
    entries: u64,
    requests: u64,
    empty: u64,
    first: Option<u64>,
    last: Option<u64>,
    prev: Option<u64>,
    sorted: bool,
    dups: u64,
    sessions: HashSet<String>,
    with_session: u64,
    prompt: Histogram,
    output: Histogram,
    output_unset: u64,
    legacy: u64,
}

fn length_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

impl StatsCollector {
    /// A new, empty collector.
    pub fn new() -> Self {
        Self {
            sorted: true,
            ..Self::default()
        }
    }

    /// Adds one entry.
    pub fn add(&mut self, e: &RawEntry) {
        let ts = e.timestamp;
        self.entries += 1;
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        if let Some(p) = self.prev {
            if ts < p {
                self.sorted = false;
            } else if ts == p {
                self.dups += 1;
            }
        }
        self.prev = Some(ts);
        let reqs = e.requests();
        if reqs.is_empty() {
            self.empty += 1;
        }
        for r in reqs {
            self.requests += 1;
            let Value::Object(r) = r else {
                self.output_unset += 1;
                continue;
            };
            let legacy = !r.contains_key("prompt_length") && r.contains_key("Prompt Length")
                || !r.contains_key("output_length") && r.contains_key("Output Length");
            if legacy {
                self.legacy += 1;
            }
            let p = r.get("prompt_length").or_else(|| r.get("Prompt Length"));
            if let Some(p) = length_of(p) {
                self.prompt.add(p);
            }
            let o = r.get("output_length").or_else(|| r.get("Output Length"));
            match length_of(o) {
                Some(o) => self.output.add(o),
                None => self.output_unset += 1,
            }
            if let Some(s) = r.get("session_id").filter(|s| !s.is_null()) {
                self.with_session += 1;
                let key = s.to_string();
                if !self.sessions.contains(&key) {
                    self.sessions.insert(key);
                }
            }
        }
    }

    /// The summary.
    pub fn finish(self) -> WorkloadStats {
        let duration_ms = match (self.first, self.last) {
            (Some(f), Some(l)) => l - f,
            _ => 0,
        };
        WorkloadStats {
            entries: self.entries,
            requests: self.requests,
            empty_entries: self.empty,
            first_timestamp_ms: self.first,
            last_timestamp_ms: self.last,
            duration_ms,
            mean_rate_rps: (duration_ms > 0)
                .then(|| round3(self.requests as f64 * 1000.0 / duration_ms as f64)),
            sorted: self.sorted,
            duplicate_timestamps: self.dups,
            sessions: self.sessions.len() as u64,
            requests_with_session: self.with_session,
            prompt_length: self.prompt.summary(),
            output_length: self.output.summary(),
            output_length_unset: self.output_unset,
            legacy_length_keys: self.legacy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::read_all;
    use super::*;

    #[test]
    fn counts_lengths_sessions_and_legacy_keys() {
        let text = br#"{"timestamp": 0, "requests": [{"prompt": "a", "prompt_length": 10, "output_length": 5, "session_id": 1}]}
{"timestamp": 1000, "requests": [{"prompt": "b", "Prompt Length": 20, "Output Length": 7}]}
{"timestamp": 1000, "requests": []}
{"timestamp": 500, "requests": [{"prompt": "c", "prompt_length": 30, "output_length": null, "session_id": 1}, {"prompt": "d", "prompt_length": 40, "output_length": 12.0, "session_id": "x"}]}
"#;
        let mut c = StatsCollector::new();
        for e in read_all("w.jsonl", text).unwrap() {
            c.add(&e);
        }
        let s = c.finish();
        assert_eq!((s.entries, s.requests, s.empty_entries), (4, 4, 1));
        assert_eq!(
            (s.first_timestamp_ms, s.last_timestamp_ms),
            (Some(0), Some(1000))
        );
        assert_eq!(s.mean_rate_rps, Some(4.0));
        assert!(!s.sorted);
        assert_eq!(s.duplicate_timestamps, 1);
        assert_eq!((s.sessions, s.requests_with_session), (2, 3));
        let p = s.prompt_length.unwrap();
        assert_eq!((p.count, p.min, p.max, p.p50), (4, 10, 40, 20));
        let o = s.output_length.unwrap();
        assert_eq!((o.count, o.min, o.max), (3, 5, 12));
        assert_eq!(s.output_length_unset, 1);
        assert_eq!(s.legacy_length_keys, 1);
    }
}
