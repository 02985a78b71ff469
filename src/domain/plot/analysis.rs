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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;

use rayon::prelude::*;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use thiserror::Error;

use crate::domain::bom::{BOM, has_bom};
use crate::domain::files::InputError;
use crate::domain::stats::Histogram;
use crate::domain::tokenizer::TokenCounter;
use crate::domain::utility::read::replace_non_finite;

/// Options of [`analyze`].
#[derive(Clone)]
pub struct AnalyzeOptions<'a> {
    /// Name of the input in error messages (a path or an id).
    pub name: String,
    /// Width of a time bin, ms (default 1000). Doubled automatically for long workloads.
    pub bin_ms: u64,
    /// At most this many bins per series (default 2000).
    pub max_points: usize,
    /// Prefix-reuse block size in UTF-8 bytes when no tokenizer is given (default 64, about 16 tokens).
    pub block_bytes: usize,
    /// Prefix-reuse block size in tokens when a tokenizer is given (default 16).
    pub block_tokens: usize,
    /// Capacity of the LRU prefix cache, in blocks (default 32768, i.e. 524,288 tokens of 16-token blocks).
    pub lru_capacity_blocks: usize,
    /// Distinct blocks the "unlimited" cache remembers at most (default 4,194,304); beyond that the unlimited
    /// figure is reported as a lower bound.
    pub unlimited_cap_blocks: usize,
    /// Sessions drawn in the timeline (default 100); all sessions are counted in the report.
    pub max_session_rows: usize,
    /// Tokenizer for token blocks. Without one, blocks are UTF-8 bytes (tokenizing every prompt is costly).
    pub tokenizer: Option<&'a TokenCounter>,
    /// Whether the tokenizer counts special tokens.
    pub add_special_tokens: bool,
}

impl Default for AnalyzeOptions<'_> {
    fn default() -> Self {
        Self {
            name: "workload".into(),
            bin_ms: 1000,
            max_points: 2000,
            block_bytes: 64,
            block_tokens: 16,
            lru_capacity_blocks: 32_768,
            unlimited_cap_blocks: 1 << 22,
            max_session_rows: 100,
            tokenizer: None,
            add_special_tokens: true,
        }
    }
}

/// Why a workload could not be analyzed.
#[derive(Debug, Error)]
pub enum AnalyzeError {
    /// Reading failed.
    #[error("reading {file}: {source}")]
    Io {
        /// The input's name.
        file: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a plot or the report failed.
    #[error("writing {file}: {source}")]
    Write {
        /// The path.
        file: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An entry is invalid (file, line, field and why).
    #[error(transparent)]
    Input(#[from] InputError),
}

/// Counts of one time bin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bin {
    /// Lines (entries) whose timestamp is in the bin.
    pub entries: u64,
    /// Requests.
    pub requests: u64,
    /// Sum of `prompt_length` over requests that have one.
    pub prompt_tokens: u64,
    /// Requests with a `prompt_length`.
    pub prompt_n: u64,
    /// Sum of `output_length` over requests that have one.
    pub output_tokens: u64,
    /// Requests with an `output_length`.
    pub output_n: u64,
}

/// One drawn row of the session timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// The session id as text (strings quoted when they look like a number).
    pub label: String,
    /// Bin indices (at the final bin width) holding at least one of its requests, ascending.
    pub bins: Vec<u64>,
}

/// Sessions seen in the workload.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Distinct session ids.
    pub count: u64,
    /// Requests per session.
    pub turns: Histogram,
    /// Largest number of sessions open at once (a session is open from its first to its last request,
    /// both inclusive).
    pub max_concurrent: u64,
    /// The first `max_session_rows` sessions by first appearance.
    pub rows: Vec<SessionRow>,
}

/// What a prefix-reuse block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockBasis {
    /// Fixed-size blocks of UTF-8 bytes of the prompt.
    Bytes,
    /// Fixed-size blocks of token ids.
    Tokens,
}

/// Prefix reuse: the share of prompt units (bytes or tokens) in full blocks whose whole prefix (this block
/// and every block before it) appeared in an earlier request. Hits stop at the first miss, as a prefix cache
/// does.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixStats {
    /// Bytes or tokens.
    pub basis: BlockBasis,
    /// Block size in units.
    pub block_size: usize,
    /// Total prompt units (including partial last blocks, which are never reused).
    pub total_units: u64,
    /// Units reused with an unlimited cache.
    pub reused_unlimited: u64,
    /// True when the unlimited cache hit its memory cap (the unlimited figure is then a lower bound).
    pub unlimited_saturated: bool,
    /// LRU capacity, blocks.
    pub lru_capacity_blocks: usize,
    /// Units reused with the LRU cache.
    pub reused_lru: u64,
}

/// Everything collected in one pass over a workload.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Bin width requested, ms.
    pub base_bin_ms: u64,
    /// Final bin width, ms (a power-of-two multiple of `base_bin_ms`).
    pub bin_ms: u64,
    /// Bins from t = 0; bin k covers `[k·bin_ms, (k+1)·bin_ms)`.
    pub bins: Vec<Bin>,
    /// Lines.
    pub entries: u64,
    /// Lines with no requests.
    pub empty_entries: u64,
    /// Requests.
    pub requests: u64,
    /// Smallest timestamp, ms.
    pub min_ts: Option<u64>,
    /// Largest timestamp, ms.
    pub max_ts: Option<u64>,
    /// Prompt lengths (requests with one).
    pub prompt_len: Histogram,
    /// Output lengths (requests with one).
    pub output_len: Histogram,
    /// Requests without a prompt length.
    pub missing_prompt_length: u64,
    /// Requests whose output length is null or absent.
    pub null_output_length: u64,
    /// Gaps between consecutive requests in file order, ms (0 within an entry).
    pub gaps: Histogram,
    /// Requests whose timestamp is earlier than the previous request's (gap not counted).
    pub out_of_order: u64,
    /// Sessions, when any request has a `session_id`.
    pub sessions: Option<SessionStats>,
    /// Prefix reuse, when any request has a prompt.
    pub prefix: Option<PrefixStats>,
    /// At most this many bins per series.
    pub max_points: usize,
}

impl Analysis {
    /// The bins covering `[0, end_ms)` (padded with empty bins), merged pairwise as in the pass until there are
    /// at most `max_points` of them: `(bin_ms, bins)`. Bins past `end_ms` are kept.
    pub fn window_bins(&self, end_ms: u64) -> (u64, Vec<Bin>) {
        let mut bin = self.bin_ms;
        let mut bins = self.bins.clone();
        while end_ms.div_ceil(bin) > self.max_points.max(1) as u64 {
            bins = bins
                .chunks(2)
                .map(|pair| {
                    let mut t = Bin::default();
                    for b in pair {
                        t.entries += b.entries;
                        t.requests += b.requests;
                        t.prompt_tokens += b.prompt_tokens;
                        t.prompt_n += b.prompt_n;
                        t.output_tokens += b.output_tokens;
                        t.output_n += b.output_n;
                    }
                    t
                })
                .collect();
            bin = bin.saturating_mul(2);
        }
        let n = end_ms.div_ceil(bin) as usize;
        if bins.len() < n {
            bins.resize(n, Bin::default());
        }
        (bin, bins)
    }

    /// End of the observed window: the largest timestamp rounded up to a whole base bin (at least one bin).
    pub fn observed_end_ms(&self) -> u64 {
        match self.max_ts {
            Some(t) => (t / self.base_bin_ms + 1).saturating_mul(self.base_bin_ms),
            None => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/// A length value: integer, float (floored), null or NaN.
#[derive(Debug, Clone, Copy)]
enum Len {
    Value(u64),
    Null,
    Invalid,
}

impl<'de> Deserialize<'de> for Len {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Len;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number or null")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Len, E> {
                Ok(Len::Value(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Len, E> {
                Ok(if v >= 0 {
                    Len::Value(v as u64)
                } else {
                    Len::Invalid
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Len, E> {
                Ok(if v.is_nan() {
                    Len::Null
                } else if v.is_finite() && v >= 0.0 {
                    Len::Value(v.floor() as u64)
                } else {
                    Len::Invalid
                })
            }
            fn visit_unit<E>(self) -> Result<Len, E> {
                Ok(Len::Null)
            }
            fn visit_none<E>(self) -> Result<Len, E> {
                Ok(Len::Null)
            }
            // Other types are reported by the digest step, which knows the field's name.
            fn visit_str<E>(self, _: &str) -> Result<Len, E> {
                Ok(Len::Invalid)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Len, E> {
                Ok(Len::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Len, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Len::Invalid)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Len, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Len::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

/// A prompt, borrowed from the line when it has no escapes.
struct Text<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_vec())))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        // serde_json hands strings over as unescaped bytes here, skipping UTF-8 validation (blocks are bytes).
        d.deserialize_bytes(V)
    }
}

/// A session id of any JSON scalar type: a stable 64-bit key plus its text.
#[derive(Debug, Clone)]
struct SessionKey {
    key: u64,
    label: String,
}

impl<'de> Deserialize<'de> for SessionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn mk(tag: u8, bytes: &[u8], label: String) -> SessionKey {
            let mut h = std::hash::DefaultHasher::new();
            h.write_u8(tag);
            h.write(bytes);
            SessionKey {
                key: h.finish(),
                label,
            }
        }
        impl Visitor<'_> for V {
            type Value = SessionKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session id (number or string)")
            }
            fn visit_u64<E>(self, v: u64) -> Result<SessionKey, E> {
                Ok(mk(b'i', &(v as i128).to_le_bytes(), v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<SessionKey, E> {
                Ok(mk(b'i', &(v as i128).to_le_bytes(), v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<SessionKey, E> {
                Ok(mk(b'f', &v.to_bits().to_le_bytes(), v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<SessionKey, E> {
                Ok(mk(b'b', &[v as u8], v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<SessionKey, E> {
                let label = if v.parse::<f64>().is_ok() {
                    format!("\"{v}\"")
                } else {
                    v.to_string()
                };
                Ok(mk(b's', v.as_bytes(), label))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow, default)]
    prompt: Option<Text<'a>>,
    #[serde(default)]
    prompt_length: Option<Len>,
    #[serde(default, rename = "Prompt Length")]
    legacy_prompt_length: Option<Len>,
    #[serde(default)]
    output_length: Option<Len>,
    #[serde(default, rename = "Output Length")]
    legacy_output_length: Option<Len>,
    #[serde(default)]
    session_id: Option<SessionKey>,
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    timestamp: Len,
    #[serde(borrow, default)]
    requests: Vec<RawRequest<'a>>,
}

/// One request reduced to what the fold needs.
#[derive(Debug)]
struct ReqDigest {
    prompt_len: Option<u64>,
    output_len: Option<u64>,
    session: Option<SessionKey>,
    /// Prompt units (bytes or tokens), when there is a prompt.
    units: Option<u64>,
    /// Chained hashes of the full blocks: a range of [`Digests::blocks`].
    blocks: (u32, u32),
}

/// Digests of a run of entries, in arenas (no allocation per entry).
#[derive(Debug, Default)]
struct Digests {
    /// (timestamp, end of its requests in `reqs`).
    entries: Vec<(u64, u32)>,
    reqs: Vec<ReqDigest>,
    blocks: Vec<u64>,
    /// Newlines in the chunk (line numbers of later chunks).
    newlines: u64,
    /// The first error: (1-based line within the chunk, field, why).
    error: Option<(u64, Option<&'static str>, String)>,
}

impl Digests {
    fn clear(&mut self) {
        self.entries.clear();
        self.reqs.clear();
        self.blocks.clear();
    }
}

/// How a digest step failed: (field, why).
type DigestError = (Option<&'static str>, String);

struct Digester<'a> {
    basis: BlockBasis,
    block: usize,
    tokenizer: Option<&'a TokenCounter>,
    add_special_tokens: bool,
}

impl Digester<'_> {
    fn digest(&self, e: RawEntry<'_>, out: &mut Digests) -> Result<(), DigestError> {
        let Len::Value(ts) = e.timestamp else {
            return Err((
                Some("timestamp"),
                "must be a non-negative number of ms".into(),
            ));
        };
        let (nreqs, nblocks) = (out.reqs.len(), out.blocks.len());
        let res = self.requests(e.requests, out);
        if res.is_err() {
            out.reqs.truncate(nreqs);
            out.blocks.truncate(nblocks);
        }
        res?;
        out.entries.push((ts, out.reqs.len() as u32));
        Ok(())
    }

    fn requests(&self, reqs: Vec<RawRequest<'_>>, out: &mut Digests) -> Result<(), DigestError> {
        for r in reqs {
            let len = |v: Option<Len>, legacy: Option<Len>, field: &'static str| match v.or(legacy)
            {
                Some(Len::Value(v)) => Ok(Some(v)),
                None | Some(Len::Null) => Ok(None),
                Some(Len::Invalid) => {
                    Err((Some(field), "must be a non-negative number".to_string()))
                }
            };
            let prompt_len = len(r.prompt_length, r.legacy_prompt_length, "prompt_length")?;
            let output_len = len(r.output_length, r.legacy_output_length, "output_length")?;
            let start = out.blocks.len() as u32;
            let units = match &r.prompt {
                None => None,
                Some(Text(p)) => Some(self.blocks(p, &mut out.blocks)?),
            };
            out.reqs.push(ReqDigest {
                prompt_len,
                output_len,
                session: r.session_id,
                units,
                blocks: (start, out.blocks.len() as u32),
            });
        }
        Ok(())
    }

    fn blocks(&self, prompt: &[u8], out: &mut Vec<u64>) -> Result<u64, DigestError> {
        match (self.basis, self.tokenizer) {
            (BlockBasis::Tokens, Some(tok)) => {
                let text = std::str::from_utf8(prompt)
                    .map_err(|e| (Some("prompt"), format!("not valid UTF-8: {e}")))?;
                let ids = tok
                    .encode(text, self.add_special_tokens)
                    .map_err(|e| (Some("prompt"), e.to_string()))?;
                let mut h = SEED;
                for chunk in ids.chunks_exact(self.block) {
                    let mut bytes = Vec::with_capacity(chunk.len() * 4);
                    for id in chunk {
                        bytes.extend_from_slice(&id.to_le_bytes());
                    }
                    h = hash_block(h, &bytes);
                    out.push(h);
                }
                Ok(ids.len() as u64)
            }
            _ => {
                let bytes = prompt;
                let mut h = SEED;
                for chunk in bytes.chunks_exact(self.block) {
                    h = hash_block(h, chunk);
                    out.push(h);
                }
                Ok(bytes.len() as u64)
            }
        }
    }
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Chained block hash: FxHash-style word mixing over the block, seeded with the previous block's hash,
/// finished with the SplitMix64 finalizer.
fn hash_block(prev: u64, block: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = prev;
    let mut words = block.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^= block.len() as u64;
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Splits serde_json's " at line L column C" suffix off its message.
fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Caches

#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdBuild = BuildHasherDefault<IdHasher>;

const NIL: u32 = u32::MAX;

/// An LRU set of block hashes (slab-backed doubly linked list).
struct Lru {
    map: HashMap<u64, u32, IdBuild>,
    keys: Vec<u64>,
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    cap: usize,
}

impl Lru {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::default(),
            keys: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
    }

    fn push_front(&mut self, i: u32) {
        self.prev[i as usize] = NIL;
        self.next[i as usize] = self.head;
        if self.head != NIL {
            self.prev[self.head as usize] = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Marks `k` most recently used; returns whether it was cached.
    fn touch(&mut self, k: u64) -> bool {
        if self.cap == 0 {
            return false;
        }
        if let Some(&i) = self.map.get(&k) {
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return true;
        }
        let i = if self.keys.len() < self.cap {
            self.keys.push(k);
            self.prev.push(NIL);
            self.next.push(NIL);
            (self.keys.len() - 1) as u32
        } else {
            let i = self.tail;
            self.unlink(i);
            self.map.remove(&self.keys[i as usize]);
            self.keys[i as usize] = k;
            i
        };
        self.map.insert(k, i);
        self.push_front(i);
        false
    }
}

struct PrefixCounter {
    stats: PrefixStats,
    seen: HashSet<u64, IdBuild>,
    cap: usize,
    lru: Lru,
}

impl PrefixCounter {
    fn request(&mut self, units: u64, blocks: &[u64]) {
        let s = &mut self.stats;
        s.total_units += units;
        let b = s.block_size as u64;
        let mut hit = true;
        for &h in blocks {
            if hit && self.seen.contains(&h) {
                s.reused_unlimited += b;
            } else {
                hit = false;
                if self.seen.len() < self.cap {
                    self.seen.insert(h);
                } else {
                    s.unlimited_saturated = true;
                }
            }
        }
        let mut hit = true;
        for &h in blocks {
            let cached = self.lru.touch(h);
            if hit && cached {
                s.reused_lru += b;
            } else {
                hit = false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The fold

struct SessionTrack {
    first: u64,
    last: u64,
    turns: u64,
}

struct Acc {
    a: Analysis,
    max_points: usize,
    max_rows: usize,
    prev_req_ts: Option<u64>,
    sessions: HashMap<u64, u32, IdBuild>,
    tracks: Vec<SessionTrack>,
    prefix: Option<PrefixCounter>,
}

impl Acc {
    fn coarsen(&mut self) {
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

    fn bin(&mut self, ts: u64) -> usize {
        while ts / self.a.bin_ms >= self.max_points as u64 {
            self.coarsen();
        }
        let i = (ts / self.a.bin_ms) as usize;
        if self.a.bins.len() <= i {
            self.a.bins.resize(i + 1, Bin::default());
        }
        i
    }

    fn digests(&mut self, d: &mut Digests) {
        let mut start = 0usize;
        let reqs = std::mem::take(&mut d.reqs);
        for &(ts, end) in &d.entries {
            self.entry(ts, &reqs[start..end as usize], &d.blocks);
            start = end as usize;
        }
        d.reqs = reqs;
    }

    fn entry(&mut self, ts: u64, requests: &[ReqDigest], blocks: &[u64]) {
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

    fn session(&mut self, s: &SessionKey, ts: u64, bin: u64) {
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

    fn finish(mut self) -> Analysis {
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

// ---------------------------------------------------------------------------------------------------------
// Entry points

const BATCH_BYTES: usize = 16 << 20;

/// Analyzes a workload (JSONL, or a JSON array of entries) in one streaming pass.
pub fn analyze(
    mut reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
) -> Result<Analysis, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        file: opts.name.clone(),
        source,
    };
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
    let mut acc = Acc {
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
            seen: HashSet::default(),
            cap: opts.unlimited_cap_blocks,
            lru: Lru::new(opts.lru_capacity_blocks),
        }),
    };

    // Skip a BOM and whitespace to find out whether this is a JSON array.
    let first = loop {
        let buf = reader.fill_buf().map_err(io)?;
        if buf.is_empty() {
            break None;
        }
        let skip = buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(buf.len());
        if skip < buf.len() && has_bom(&buf[skip..]) {
            reader.consume(skip + BOM.len());
            continue;
        }
        if skip < buf.len() {
            break Some(buf[skip]);
        }
        let n = buf.len();
        reader.consume(n);
    };
    match first {
        None => {}
        Some(b'[') => analyze_array(reader, opts, &digester, &mut acc)?,
        Some(_) => analyze_lines(reader, opts, &digester, &mut acc)?,
    }
    let mut a = acc.finish();
    if a.requests == 0 {
        a.prefix = None;
    }
    Ok(a)
}

fn analyze_lines(
    mut reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
    digester: &Digester<'_>,
    acc: &mut Acc,
) -> Result<(), AnalyzeError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    let mut want = BATCH_BYTES;
    let mut eof = false;
    let mut lines_before = 0u64;
    let mut pending: Vec<Digests> = Vec::new();
    let pieces = rayon::current_num_threads() * 4;
    loop {
        // Fill the buffer up to `want` bytes (or EOF).
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while !eof && filled < want {
            match reader.read(&mut buf[filled..want]) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(AnalyzeError::Io {
                        file: opts.name.clone(),
                        source,
                    });
                }
            }
        }
        // Complete lines only, unless at EOF.
        let end = if eof {
            filled
        } else {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(p) => p + 1,
                None => {
                    // A line longer than the buffer: read more.
                    want = filled + BATCH_BYTES;
                    continue;
                }
            }
        };
        let region = &buf[..end];
        // Split at newlines into pieces parsed in parallel, folded in order.
        let mut bounds = vec![0usize];
        for i in 1..pieces {
            let target = (region.len() * i / pieces).max(*bounds.last().expect("non-empty"));
            if let Some(p) = region[target..].iter().position(|&b| b == b'\n') {
                let b = target + p + 1;
                if b > *bounds.last().expect("non-empty") && b < region.len() {
                    bounds.push(b);
                }
            }
        }
        bounds.push(region.len());
        // Fold the previous batch while this one is parsed.
        let (folded, parsed) = rayon::join(
            || fold_batch(acc, &mut pending, &mut lines_before, &opts.name),
            || -> Vec<Digests> {
                bounds
                    .windows(2)
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|w| digest_chunk(&region[w[0]..w[1]], digester))
                    .collect()
            },
        );
        folded?;
        pending = parsed;
        buf.copy_within(end..filled, 0);
        filled -= end;
        want = BATCH_BYTES.max(filled + 1);
        if eof && filled == 0 {
            return fold_batch(acc, &mut pending, &mut lines_before, &opts.name);
        }
    }
}

/// Folds parsed chunks in order; the first bad line stops with its file, line and field.
fn fold_batch(
    acc: &mut Acc,
    batch: &mut Vec<Digests>,
    lines_before: &mut u64,
    name: &str,
) -> Result<(), AnalyzeError> {
    for d in batch.iter_mut() {
        acc.digests(d);
        if let Some((line, field, why)) = d.error.take() {
            return Err(InputError::at(name, *lines_before + line, field, why).into());
        }
        *lines_before += d.newlines;
    }
    batch.clear();
    Ok(())
}

/// Counts `\n` bytes with byte-wide lane counters (vectorizes well; a lane takes at most 255 per block).
fn count_newlines(bytes: &[u8]) -> u64 {
    const LANES: usize = 32;
    let mut total = 0u64;
    for block in bytes.chunks(255 * LANES) {
        let mut acc = [0u8; LANES];
        let mut words = block.chunks_exact(LANES);
        for w in &mut words {
            for (a, &b) in acc.iter_mut().zip(w) {
                *a += (b == b'\n') as u8;
            }
        }
        total += acc.iter().map(|&a| a as u64).sum::<u64>();
        total += words.remainder().iter().filter(|&&b| b == b'\n').count() as u64;
    }
    total
}

/// Digests a run of complete lines: a fast streaming parse, and line by line (with Python's `NaN` repaired)
/// when that fails, to find the offending line.
fn digest_chunk(chunk: &[u8], digester: &Digester<'_>) -> Digests {
    let mut out = Digests {
        newlines: count_newlines(chunk),
        ..Default::default()
    };
    let mut stream = serde_json::Deserializer::from_slice(chunk).into_iter::<RawEntry<'_>>();
    let fast = loop {
        match stream.next() {
            None => break true,
            Some(Ok(e)) => {
                if digester.digest(e, &mut out).is_err() {
                    break false;
                }
            }
            Some(Err(_)) => break false,
        }
    };
    if fast {
        return out;
    }
    out.clear();
    for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err((field, why)) = parse_line(line, digester, &mut out) {
            out.error = Some((i as u64 + 1, field, why));
            break;
        }
    }
    out
}

fn parse_line(line: &[u8], digester: &Digester<'_>, out: &mut Digests) -> Result<(), DigestError> {
    match serde_json::from_slice::<RawEntry<'_>>(line) {
        Ok(e) => digester.digest(e, out),
        Err(err) => {
            if let Some((clean, _)) = replace_non_finite(line)
                && let Ok(e) = serde_json::from_slice::<RawEntry<'_>>(&clean)
            {
                return digester.digest(e, out);
            }
            Err((
                None,
                format!("column {}: {}", err.column(), json_reason(&err)),
            ))
        }
    }
}

fn analyze_array(
    reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
    digester: &Digester<'_>,
    acc: &mut Acc,
) -> Result<(), AnalyzeError> {
    struct Seed<'x, 'y> {
        digester: &'x Digester<'y>,
        acc: &'x mut Acc,
    }
    impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of workload entries")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut d = Digests::default();
            while let Some(e) = seq.next_element::<RawEntry<'de>>()? {
                d.clear();
                self.digester
                    .digest(e, &mut d)
                    .map_err(|(field, why)| match field {
                        Some(f) => de::Error::custom(format!("field '{f}': {why}")),
                        None => de::Error::custom(why),
                    })?;
                self.acc.digests(&mut d);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let res = Seed { digester, acc }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    res.map_err(|e| {
        InputError::at(
            opts.name.clone(),
            e.line() as u64,
            None,
            format!("column {}: {}", e.column(), json_reason(&e)),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Analysis {
        analyze(text.as_bytes(), &AnalyzeOptions::default()).unwrap()
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
