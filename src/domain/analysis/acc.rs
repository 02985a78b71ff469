//! The fold: digests, in file order, into bins, histograms, sessions and prefix reuse.

use std::collections::HashMap;

use super::model::{
    Analysis, AnalyzeOptions, Bin, BlockBasis, PrefixStats, SessionRow, SessionStats,
};
use super::parse::{Digester, Digests, ReqDigest, SessionKey};
use super::prefix::{IdBuild, Lru, PrefixCounter};
use crate::domain::stats::Histogram;

pub(super) struct SessionTrack {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) turns: u64,
}

pub(super) struct Acc {
    pub(super) a: Analysis,
    pub(super) max_points: usize,
    pub(super) max_rows: usize,
    pub(super) prev_req_ts: Option<u64>,
    pub(super) sessions: HashMap<u64, u32, IdBuild>,
    pub(super) tracks: Vec<SessionTrack>,
    pub(super) prefix: Option<PrefixCounter>,
}

impl Acc {
    pub(super) fn coarsen(&mut self) {
        let a = &mut self.a;
        a.bin_ms = a.bin_ms.saturating_mul(2);
        let old = std::mem::take(&mut a.bins);
        for (i, b) in old.into_iter().enumerate() {
            let j = i / 2;
            if a.bins.len() <= j {
                a.bins.push(Bin::default());
            }
            let t = &mut a.bins[j];
            t.entries += b.entries;
            t.requests += b.requests;
            t.prompt_tokens += b.prompt_tokens;
            t.prompt_n += b.prompt_n;
            t.output_tokens += b.output_tokens;
            t.output_n += b.output_n;
        }
        if let Some(s) = &mut a.sessions {
            for row in &mut s.rows {
                for b in &mut row.bins {
                    *b /= 2;
                }
                row.bins.dedup();
            }
        }
    }

    pub(super) fn bin(&mut self, ts: u64) -> usize {
        while ts / self.a.bin_ms >= self.max_points as u64 {
            self.coarsen();
        }
        let i = (ts / self.a.bin_ms) as usize;
        if self.a.bins.len() <= i {
            self.a.bins.resize(i + 1, Bin::default());
        }
        i
    }

    pub(super) fn digests(&mut self, d: &mut Digests) {
        let mut start = 0usize;
        let reqs = std::mem::take(&mut d.reqs);
        for &(ts, end) in &d.entries {
            self.entry(ts, &reqs[start..end as usize], &d.blocks);
            start = end as usize;
        }
        d.reqs = reqs;
    }

    pub(super) fn entry(&mut self, ts: u64, requests: &[ReqDigest], blocks: &[u64]) {
        let a = &mut self.a;
        a.entries += 1;
        if requests.is_empty() {
            a.empty_entries += 1;
        }
        a.min_ts = Some(a.min_ts.map_or(ts, |m| m.min(ts)));
        a.max_ts = Some(a.max_ts.map_or(ts, |m| m.max(ts)));
        let bi = self.bin(ts);
        self.a.bins[bi].entries += 1;
        for r in requests {
            let a = &mut self.a;
            a.requests += 1;
            let bin = &mut a.bins[bi];
            bin.requests += 1;
            match self.prev_req_ts {
                Some(p) if ts >= p => a.gaps.add(ts - p),
                Some(_) => a.out_of_order += 1,
                None => {}
            }
            self.prev_req_ts = Some(ts);
            match r.prompt_len {
                Some(v) => {
                    a.prompt_len.add(v);
                    bin.prompt_tokens += v;
                    bin.prompt_n += 1;
                }
                None => a.missing_prompt_length += 1,
            }
            match r.output_len {
                Some(v) => {
                    a.output_len.add(v);
                    bin.output_tokens += v;
                    bin.output_n += 1;
                }
                None => a.null_output_length += 1,
            }
            if let Some(s) = &r.session {
                self.session(s, ts, bi as u64);
            }
            if let (Some(units), Some(p)) = (r.units, &mut self.prefix) {
                p.request(units, &blocks[r.blocks.0 as usize..r.blocks.1 as usize]);
            }
        }
    }

    pub(super) fn session(&mut self, s: &SessionKey, ts: u64, bin: u64) {
        let stats = self.a.sessions.get_or_insert_with(SessionStats::default);
        let idx = match self.sessions.get(&s.key) {
            Some(&i) => {
                let t = &mut self.tracks[i as usize];
                t.first = t.first.min(ts);
                t.last = t.last.max(ts);
                t.turns += 1;
                i as usize
            }
            None => {
                let i = self.tracks.len();
                self.sessions.insert(s.key, i as u32);
                self.tracks.push(SessionTrack {
                    first: ts,
                    last: ts,
                    turns: 1,
                });
                if stats.rows.len() < self.max_rows {
                    stats.rows.push(SessionRow {
                        label: s.label.clone(),
                        bins: Vec::new(),
                    });
                }
                i
            }
        };
        if let Some(row) = stats.rows.get_mut(idx) {
            if row.bins.last() != Some(&bin) {
                row.bins.push(bin);
            }
            if row.bins.len() > 2 * self.max_points {
                row.bins.sort_unstable();
                row.bins.dedup();
            }
        }
    }

    pub(super) fn finish(mut self) -> Analysis {
        if let Some(s) = &mut self.a.sessions {
            s.count = self.tracks.len() as u64;
            let mut events: Vec<(u64, bool)> = Vec::with_capacity(self.tracks.len() * 2);
            for t in &self.tracks {
                s.turns.add(t.turns);
                // (time, is_end): starts sort before ends at the same time (inclusive intervals).
                events.push((t.first, false));
                events.push((t.last, true));
            }
            events.sort_unstable();
            let (mut open, mut max) = (0u64, 0u64);
            for (_, end) in events {
                if end {
                    open -= 1;
                } else {
                    open += 1;
                    max = max.max(open);
                }
            }
            s.max_concurrent = max;
            for row in &mut s.rows {
                row.bins.sort_unstable();
                row.bins.dedup();
            }
        }
        self.a.prefix = self.prefix.map(|p| p.stats);
        if self.a.prefix.as_ref().is_some_and(|p| p.total_units == 0) && self.a.requests == 0 {
            self.a.prefix = None;
        }
        self.a
    }
}

/// The digester and the empty accumulator of a pass under `opts`.
pub(super) fn start<'a>(opts: &AnalyzeOptions<'a>) -> (Digester<'a>, Acc) {
    let basis = if opts.tokenizer.is_some() {
        BlockBasis::Tokens
    } else {
        BlockBasis::Bytes
    };
    let block = match basis {
        BlockBasis::Tokens => opts.block_tokens,
        BlockBasis::Bytes => opts.block_bytes,
    }
    .max(1);
    let digester = Digester {
        basis,
        block,
        tokenizer: opts.tokenizer,
        add_special_tokens: opts.add_special_tokens,
    };
    let bin_ms = opts.bin_ms.max(1);
    let acc = Acc {
        a: Analysis {
            base_bin_ms: bin_ms,
            bin_ms,
            bins: Vec::new(),
            entries: 0,
            empty_entries: 0,
            requests: 0,
            min_ts: None,
            max_ts: None,
            prompt_len: Histogram::default(),
            output_len: Histogram::default(),
            missing_prompt_length: 0,
            null_output_length: 0,
            gaps: Histogram::default(),
            out_of_order: 0,
            sessions: None,
            prefix: None,
            max_points: opts.max_points.max(1),
        },
        max_points: opts.max_points.max(1),
        max_rows: opts.max_session_rows,
        prev_req_ts: None,
        sessions: HashMap::default(),
        tracks: Vec::new(),
        prefix: Some(PrefixCounter {
            stats: PrefixStats {
                basis,
                block_size: block,
                total_units: 0,
                reused_unlimited: 0,
                unlimited_saturated: false,
                lru_capacity_blocks: opts.lru_capacity_blocks,
                reused_lru: 0,
            },
            seen: Default::default(),
            cap: opts.unlimited_cap_blocks,
            lru: Lru::new(opts.lru_capacity_blocks),
        }),
    };

    (digester, acc)
}

/// The analysis of everything folded into `acc`.
pub(super) fn finish(acc: Acc) -> Analysis {
    let mut a = acc.finish();
    if a.requests == 0 {
        a.prefix = None;
    }
    a
}
