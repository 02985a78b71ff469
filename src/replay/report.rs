//! Per-request results (one JSONL line each), the mergeable summary they fold into, and the replay report.
//!
//! The summary is a pure function of the result records: folding the records of several shards one by
//! one, or merging the shards' summaries, gives the same summary and so the same report.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::hist::{Histogram, RELATIVE_PRECISION};

/// Summary of the gaps between consecutive token chunks of one response, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapSummary {
    /// Gaps (chunks - 1).
    pub count: u64,
    /// Mean gap.
    pub mean_ms: f64,
    /// Median gap (nearest rank).
    pub p50_ms: f64,
    /// 99th percentile gap (nearest rank).
    pub p99_ms: f64,
    /// Largest gap.
    pub max_ms: f64,
}

/// One line of `results.jsonl`. Times are ms from the start of the replay, with µs resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestResult {
    /// 0-based position of the request in the workload file.
    pub index: u64,
    /// The session id as written in the workload, or null.
    pub session_id: Option<Value>,
    /// 0-based turn within the session.
    pub turn: u32,
    /// Turns of the session in this replay.
    pub turns: u32,
    /// The workload's timestamp, ms.
    pub timestamp_ms: u64,
    /// When the request was due (after `--time-scale`).
    pub scheduled_ms: f64,
    /// When it was handed to the HTTP client.
    pub sent_ms: f64,
    /// `sent_ms - scheduled_ms`.
    pub lateness_ms: f64,
    /// Time spent waiting for a `--max-inflight` slot (included in the lateness).
    pub inflight_wait_ms: f64,
    /// A session turn whose previous turn (plus think time) finished after the turn was due.
    pub off_schedule: bool,
    /// HTTP status, null when no response arrived.
    pub status: Option<u16>,
    /// Why the request failed; null on success.
    pub error: Option<String>,
    /// Time to first token (streaming).
    pub ttft_ms: Option<f64>,
    /// Time per output token after the first: (last chunk - first chunk) / (output tokens - 1).
    pub tpot_ms: Option<f64>,
    /// Gaps between token chunks (streaming).
    pub itl: Option<GapSummary>,
    /// End-to-end latency.
    pub e2e_ms: f64,
    /// `prompt_length` of the workload.
    pub prompt_length: Option<u64>,
    /// `output_length` of the workload (the `max_tokens` sent).
    pub output_length: Option<u64>,
    /// `usage.prompt_tokens` of the server.
    pub prompt_tokens: Option<u64>,
    /// `usage.completion_tokens` of the server.
    pub output_tokens: Option<u64>,
}

/// ms (with µs resolution) from a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn us(ms: f64) -> u64 {
    (ms * 1000.0).round().max(0.0) as u64
}

/// Summarises gaps exactly (nearest rank).
pub fn gap_summary(gaps: &[Duration]) -> Option<GapSummary> {
    if gaps.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = gaps.iter().map(|g| g.as_micros() as u64).collect();
    v.sort_unstable();
    let rank =
        |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    Some(GapSummary {
        count: v.len() as u64,
        mean_ms: (v.iter().sum::<u64>() as f64 / v.len() as f64).round() / 1000.0,
        p50_ms: rank(0.5),
        p99_ms: rank(0.99),
        max_ms: *v.last().expect("not empty") as f64 / 1000.0,
    })
}

/// Service-level objectives for goodput (`--slo ttft=2s,tpot=100ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Largest acceptable time to first token, ms (non-streaming requests use their end-to-end latency).
    pub ttft_ms: Option<f64>,
    /// Largest acceptable time per output token, ms (requests without one meet it).
    pub tpot_ms: Option<f64>,
    /// Largest acceptable end-to-end latency, ms.
    pub e2e_ms: Option<f64>,
}

fn parse_ms(v: &str) -> Result<f64, String> {
    let v = v.trim();
    let (num, factor) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration '{v}' (e.g. 2s, 100ms)"))?;
    if !(x.is_finite() && x >= 0.0) {
        return Err(format!("bad duration '{v}'"));
    }
    Ok(x * factor)
}

impl std::str::FromStr for Slo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut slo = Slo::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=duration, got '{part}'"))?;
            let v = Some(parse_ms(v)?);
            match k.trim() {
                "ttft" => slo.ttft_ms = v,
                "tpot" => slo.tpot_ms = v,
                "e2e" => slo.e2e_ms = v,
                other => return Err(format!("unknown SLO '{other}' (ttft, tpot, e2e)")),
            }
        }
        Ok(slo)
    }
}

impl Slo {
    /// Whether a successful request meets every objective.
    pub fn met(&self, r: &RequestResult) -> bool {
        let ttft = r.ttft_ms.unwrap_or(r.e2e_ms);
        self.ttft_ms.is_none_or(|t| ttft <= t)
            && self
                .tpot_ms
                .is_none_or(|t| r.tpot_ms.is_none_or(|x| x <= t))
            && self.e2e_ms.is_none_or(|t| r.e2e_ms <= t)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct OpenSession {
    seen: u32,
    whole: bool,
    last_sent_ms: f64,
}

/// The mergeable state of a replay (written as `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Window of the planned-vs-sent counts, ms.
    pub window_ms: u64,
    /// The objectives goodput was counted against.
    pub slo: Slo,
    /// Shards folded in (e.g. `["0/2", "1/2"]`).
    pub shards: Vec<String>,
    /// Result records.
    pub requests: u64,
    /// Records without an error.
    pub ok: u64,
    /// Records per HTTP status (`"none"` when no response arrived).
    pub status_counts: BTreeMap<String, u64>,
    /// Successful records meeting every SLO.
    pub good: u64,
    /// Records that waited for a `--max-inflight` slot.
    pub inflight_delayed: u64,
    /// Session turns that could not keep their schedule.
    pub off_schedule_turns: u64,
    /// Successful records with both `output_length` and `usage.completion_tokens`.
    pub output_known: u64,
    /// ... of which the server delivered exactly `output_length` tokens.
    pub output_equal: u64,
    /// Sum of `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// Sum of `usage.completion_tokens`.
    pub output_tokens: u64,
    /// Sessions with all their turns recorded.
    pub sessions: u64,
    /// ... of which every turn succeeded, in turn order, each sent after the previous one.
    pub sessions_whole: u64,
    /// Latest end of a request (sent + e2e), ms.
    pub span_ms: f64,
    /// Time to first token, µs.
    pub ttft_us: Histogram,
    /// Time per output token, µs.
    pub tpot_us: Histogram,
    /// Gaps between token chunks (every gap of every response), µs.
    pub itl_us: Histogram,
    /// End-to-end latency, µs.
    pub e2e_us: Histogram,
    /// Send lateness, µs.
    pub lateness_us: Histogram,
    /// Requests planned per window (by scheduled time).
    pub planned: Vec<u64>,
    /// Requests sent per window (by actual send time).
    pub sent: Vec<u64>,
    /// Sessions seen but not complete yet (key: session id JSON text).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    open: BTreeMap<String, OpenSession>,
}

fn bump(v: &mut Vec<u64>, i: usize, by: u64) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += by;
}

impl Summary {
    /// An empty summary.
    pub fn new(window_ms: u64, slo: Slo, shard: String) -> Self {
        Self {
            window_ms: window_ms.max(1),
            slo,
            shards: vec![shard],
            requests: 0,
            ok: 0,
            status_counts: BTreeMap::new(),
            good: 0,
            inflight_delayed: 0,
            off_schedule_turns: 0,
            output_known: 0,
            output_equal: 0,
            prompt_tokens: 0,
            output_tokens: 0,
            sessions: 0,
            sessions_whole: 0,
            span_ms: 0.0,
            ttft_us: Histogram::new(),
            tpot_us: Histogram::new(),
            itl_us: Histogram::new(),
            e2e_us: Histogram::new(),
            lateness_us: Histogram::new(),
            planned: Vec::new(),
            sent: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    /// Folds in one record.
    pub fn add(&mut self, r: &RequestResult) {
        self.requests += 1;
        let ok = r.error.is_none();
        let status = r
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        *self.status_counts.entry(status).or_default() += 1;
        self.inflight_delayed += u64::from(r.inflight_wait_ms > 0.0);
        self.off_schedule_turns += u64::from(r.off_schedule);
        self.lateness_us.record(us(r.lateness_ms));
        let w = self.window_ms as f64;
        bump(&mut self.planned, (r.scheduled_ms / w) as usize, 1);
        bump(&mut self.sent, (r.sent_ms / w) as usize, 1);
        self.span_ms = self.span_ms.max(r.sent_ms + r.e2e_ms);
        self.prompt_tokens += r.prompt_tokens.unwrap_or(0);
        self.output_tokens += r.output_tokens.unwrap_or(0);
        if ok {
            self.ok += 1;
            self.good += u64::from(self.slo.met(r));
            self.e2e_us.record(us(r.e2e_ms));
            if let Some(t) = r.ttft_ms {
                self.ttft_us.record(us(t));
            }
            if let Some(t) = r.tpot_ms {
                self.tpot_us.record(us(t));
            }
            if let (Some(want), Some(got)) = (r.output_length, r.output_tokens) {
                self.output_known += 1;
                self.output_equal += u64::from(want == got);
            }
        }
        if let Some(g) = &r.itl {
            // Per-response summaries only: the gap histogram holds each response's median gap.
            self.itl_us.record(us(g.p50_ms));
        }
        if let Some(id) = &r.session_id {
            let key = id.to_string();
            let s = self.open.entry(key.clone()).or_insert(OpenSession {
                seen: 0,
                whole: true,
                last_sent_ms: f64::NEG_INFINITY,
            });
            s.whole &= ok && r.turn == s.seen && r.sent_ms >= s.last_sent_ms;
            s.seen += 1;
            s.last_sent_ms = r.sent_ms;
            if s.seen >= r.turns {
                let whole = s.whole;
                self.open.remove(&key);
                self.sessions += 1;
                self.sessions_whole += u64::from(whole);
            }
        }
    }

    /// Folds in another summary (another shard). Fails when windows or SLOs differ.
    pub fn merge(&mut self, o: &Summary) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.window_ms == o.window_ms,
            "summaries use different windows ({} ms and {} ms)",
            self.window_ms,
            o.window_ms
        );
        anyhow::ensure!(self.slo == o.slo, "summaries use different SLOs");
        anyhow::ensure!(
            self.open.is_empty() && o.open.is_empty(),
            "a summary has unfinished sessions"
        );
        self.shards.extend(o.shards.iter().cloned());
        self.requests += o.requests;
        self.ok += o.ok;
        for (k, v) in &o.status_counts {
            *self.status_counts.entry(k.clone()).or_default() += v;
        }
        self.good += o.good;
        self.inflight_delayed += o.inflight_delayed;
        self.off_schedule_turns += o.off_schedule_turns;
        self.output_known += o.output_known;
        self.output_equal += o.output_equal;
        self.prompt_tokens += o.prompt_tokens;
        self.output_tokens += o.output_tokens;
        self.sessions += o.sessions;
        self.sessions_whole += o.sessions_whole;
        self.span_ms = self.span_ms.max(o.span_ms);
        self.ttft_us.merge(&o.ttft_us);
        self.tpot_us.merge(&o.tpot_us);
        self.itl_us.merge(&o.itl_us);
        self.e2e_us.merge(&o.e2e_us);
        self.lateness_us.merge(&o.lateness_us);
        for (i, c) in o.planned.iter().enumerate() {
            bump(&mut self.planned, i, *c);
        }
        for (i, c) in o.sent.iter().enumerate() {
            bump(&mut self.sent, i, *c);
        }
        Ok(())
    }

    /// Sessions still open count as replayed, not whole (called when the replay ends).
    pub fn close(&mut self) {
        let n = self.open.len() as u64;
        self.sessions += n;
        self.open.clear();
    }

    /// The report (JSON).
    pub fn report(&self) -> Value {
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let share = |a: u64, b: u64| (b > 0).then(|| r3(a as f64 / b as f64));
        let lat = |h: &Histogram| {
            let q = |q: f64| h.quantile(q).map(|v| v as f64 / 1000.0);
            json!({
                "count": h.count,
                "mean": h.mean().map(|m| r3(m / 1000.0)),
                "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p99.9": q(0.999),
                "max": (h.count > 0).then(|| h.max as f64 / 1000.0),
            })
        };
        let n = self.planned.len().max(self.sent.len());
        let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        let errs: Vec<u64> = (0..n)
            .map(|i| at(&self.planned, i).abs_diff(at(&self.sent, i)))
            .collect();
        let seconds = self.span_ms / 1000.0;
        json!({
            "shards": self.shards,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.requests - self.ok,
            "status_counts": self.status_counts,
            "duration_s": r3(seconds),
            "throughput_rps": (seconds > 0.0).then(|| r3(self.ok as f64 / seconds)),
            "tokens": {"prompt": self.prompt_tokens, "output": self.output_tokens},
            "latency_ms": {
                "relative_precision": RELATIVE_PRECISION,
                "ttft": lat(&self.ttft_us),
                "tpot": lat(&self.tpot_us),
                "itl_median_per_request": lat(&self.itl_us),
                "e2e": lat(&self.e2e_us),
            },
            "fidelity": {
                "lateness_ms": lat(&self.lateness_us),
                "max_inflight_delayed": self.inflight_delayed,
                "windows": {
                    "window_ms": self.window_ms,
                    "planned": self.planned,
                    "sent": self.sent,
                    "max_abs_error": errs.iter().max().copied().unwrap_or(0),
                    "total_abs_error": errs.iter().sum::<u64>(),
                },
                "output_length": {
                    "known": self.output_known,
                    "equal": self.output_equal,
                    "share_equal": share(self.output_equal, self.output_known),
                },
                "sessions": {
                    "count": self.sessions,
                    "whole_in_order": self.sessions_whole,
                    "share_whole_in_order": share(self.sessions_whole, self.sessions),
                    "off_schedule_turns": self.off_schedule_turns,
                },
            },
            "goodput": {
                "slo": self.slo,
                "good": self.good,
                "share": share(self.good, self.requests),
                "per_s": (seconds > 0.0).then(|| r3(self.good as f64 / seconds)),
            },
        })
    }
}

/// Reads `results.jsonl` text into records.
pub fn parse_results(text: &str) -> anyhow::Result<Vec<RequestResult>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| anyhow::anyhow!("results line {}: {e}", i + 1))
        })
        .collect()
}
