//! The fast exact path for the Qwen2 pipeline: a hand-written ASCII split, a shared piece -> count cache, a
//! compact BPE ([`super::bpe`]) for counts and ids, and a stepped ByteLevel decode from a table built from the
//! file. `TokenCounter` uses it when [`FastPath::detect`] accepts the tokenizer file, and then needs the
//! `tokenizers` pipeline only for text holding an added token; the tests in the parent module check every
//! path against that pipeline.

use std::collections::HashMap;

use super::base::{Cancel, POLL_EVERY, TokenizerError};
use super::bpe::{Bpe, Merge, Str};
use super::table::DecodeTable;

/// The GPT-4-style split pattern of the Qwen2 family, with its ByteLevel step.
const QWEN_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The Qwen2 pipeline (NFC, the split regex above, ByteLevel, BPE, nothing added after) rebuilt from its parts:
/// for ASCII the split is hand-written (the fancy-regex pre-tokenizer is most of the cost); words with other
/// characters take NFC and the same regex (the crates `tokenizers` uses); every piece then goes through the
/// compact BPE. Text that holds an added token takes the full pipeline whole. Tests check that both paths
/// agree.
pub(super) struct FastPath {
    added: Vec<String>,
    /// The decoder is ByteLevel alone, so ids can be decoded in steps (see [`FastPath::decode`]).
    pub(super) byte_decoder: bool,
    /// Per id: its decoded bytes (`ends[id]..ends[id + 1]` in `bytes`), built from the file.
    table: DecodeTable,
    /// Split piece -> token count, shared by every thread that counts with this tokenizer.
    pub(super) pieces: PieceCache,
    /// The model's merges, for counting without the `tokenizers` pipeline.
    bpe: Bpe,
    /// The split pattern, compiled on the first piece with a non-ASCII character.
    split: std::sync::OnceLock<Result<fancy_regex::Regex, String>>,
}

/// Most short pieces (up to 15 bytes) a shard holds: 7/8 of a power of two, so the map never grows past
/// 16 Ki slots (about 0.5 MiB a shard, 8 MiB in all).
const SHORT_PER_SHARD: usize = 14_336;
/// Most longer pieces a shard holds (4 Ki slots, plus their bytes).
const LONG_PER_SHARD: usize = 3_584;
/// Longest piece worth caching (longer ones are rare and mostly unique).
const PIECE_CACHE_MAX_LEN: usize = 48;
const PIECE_SHARDS: usize = 16;

/// A bounded, sharded map from one split piece (the pattern's unit: a word with its leading space, a digit, a
/// run of punctuation or whitespace) to its BPE token count. BPE without dropout is a function of the piece,
/// so a hit is exact; a full shard stops taking new pieces (no eviction, so no churn and no lock upgrades on
/// hot paths). Keys are the piece's bytes, compared in full: a hash collision cannot give a wrong count.
/// Pieces of up to 15 bytes (most of them) are stored packed into a `u128` with their length, without an
/// allocation; longer ones as boxed bytes.
///
/// In front of it, each thread keeps its own map of short pieces (packed the same way, so a hit is one integer
/// hash and compare, with no lock and no pointer to follow). It is tagged with the cache's unique id and
/// cleared when the thread counts for another tokenizer.
pub(super) struct PieceCache {
    pub(super) shards: Vec<std::sync::RwLock<Shard>>,
    id: u64,
}

/// One shard of the [`PieceCache`].
#[derive(Default)]
pub(super) struct Shard {
    short: HashMap<u128, u32, PackedBuild>,
    long: HashMap<Box<[u8]>, u32, FxBuild>,
}

impl Shard {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

/// Most entries of a thread's front map: 7/8 of 64 Ki slots, so it never grows past about 2 MiB.
const FRONT_ENTRIES: usize = 57_344;
/// Longest piece the front map holds (its bytes and length fit in a `u128`).
const FRONT_MAX_LEN: usize = 15;

type FrontMap = HashMap<u128, u32, PackedBuild>;

thread_local! {
    /// (id of the [`PieceCache`] it serves, packed piece -> count).
    static FRONT: std::cell::RefCell<(u64, FrontMap)> =
        std::cell::RefCell::new((0, HashMap::default()));
}

/// Most entries of a thread's map of short pieces' ids (7/8 of 32 Ki slots, about 1 MiB).
const IDS_ENTRIES: usize = 28_672;
/// Most ids a cached piece has (they are packed with their number into a `u128`).
const IDS_MAX: usize = 4;

thread_local! {
    /// (id of the [`PieceCache`] it serves, packed piece -> its ids packed, see [`pack_ids`]).
    static IDS_FRONT: std::cell::RefCell<(u64, HashMap<u128, u128, PackedBuild>)> =
        std::cell::RefCell::new((0, HashMap::default()));
}

/// Up to [`IDS_MAX`] ids of below 2^30 and their number in one integer.
fn pack_ids(ids: &[u32]) -> Option<u128> {
    if ids.len() > IDS_MAX || ids.iter().any(|&i| i >= 1 << 30) {
        return None;
    }
    let mut v = ids.len() as u128;
    for (k, &id) in ids.iter().enumerate() {
        v |= u128::from(id) << (8 + 30 * k);
    }
    Some(v)
}

fn unpack_ids(v: u128, out: &mut Vec<u32>) {
    for k in 0..(v & 0xff) as usize {
        out.push((v >> (8 + 30 * k)) as u32 & ((1 << 30) - 1));
    }
}

static NEXT_CACHE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// `piece` (at most 15 bytes) and its length in one integer: distinct pieces give distinct keys.
fn pack(piece: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..piece.len()].copy_from_slice(piece);
    b[15] = piece.len() as u8;
    u128::from_le_bytes(b)
}

impl PieceCache {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..PIECE_SHARDS)
                .map(|_| std::sync::RwLock::new(Shard::default()))
                .collect(),
            id: NEXT_CACHE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The count of `piece`, from the cache or from `count` (then remembered while there is room).
    fn get_or<E>(&self, piece: &[u8], count: impl FnOnce() -> Result<u32, E>) -> Result<u32, E> {
        if piece.len() > FRONT_MAX_LEN {
            return self.long_get_or(piece, count);
        }
        let key = pack(piece);
        let hit = FRONT.with(|f| {
            let f = f.borrow();
            if f.0 == self.id {
                f.1.get(&key).copied()
            } else {
                None
            }
        });
        if let Some(n) = hit {
            return Ok(n);
        }
        let n = self.short_get_or(key, count)?;
        FRONT.with(|f| {
            let mut f = f.borrow_mut();
            if f.0 != self.id {
                f.0 = self.id;
                f.1.clear();
            }
            if f.1.len() < FRONT_ENTRIES {
                f.1.insert(key, n);
            }
        });
        Ok(n)
    }

    /// The shard of a key hash. Not the top bits: the maps keep those as their tag, and a shard of one tag
    /// prefix probes in vain.
    fn shard(&self, h: u64) -> &std::sync::RwLock<Shard> {
        &self.shards[(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % PIECE_SHARDS]
    }

    /// [`Self::get_or`] of a packed short piece in the shared shards.
    fn short_get_or<E>(&self, key: u128, count: impl FnOnce() -> Result<u32, E>) -> Result<u32, E> {
        use std::hash::BuildHasher;
        let hash = PackedBuild::default().hash_one(key);
        self.shared_get_or(
            hash,
            &key,
            || key,
            |s| &s.short,
            |s| &mut s.short,
            SHORT_PER_SHARD,
            count,
        )
    }

    /// [`Self::get_or`] of a longer piece in the shared shards.
    fn long_get_or<E>(
        &self,
        piece: &[u8],
        count: impl FnOnce() -> Result<u32, E>,
    ) -> Result<u32, E> {
        use std::hash::BuildHasher;
        if piece.len() > PIECE_CACHE_MAX_LEN {
            return count();
        }
        let hash = FxBuild::default().hash_one(piece);
        let owned = || Box::<[u8]>::from(piece);
        self.shared_get_or(
            hash,
            piece,
            owned,
            |s| &s.long,
            |s| &mut s.long,
            LONG_PER_SHARD,
            count,
        )
    }

    /// The count of `key` in one map of the shard of `hash` (`map`/`map_mut` pick it), or `count()`, then
    /// remembered there while the map holds fewer than `cap` pieces.
    #[allow(clippy::too_many_arguments)]
    fn shared_get_or<K, Q, S, E>(
        &self,
        hash: u64,
        key: &Q,
        owned: impl FnOnce() -> K,
        map: impl for<'s> Fn(&'s Shard) -> &'s HashMap<K, u32, S>,
        map_mut: impl for<'s> Fn(&'s mut Shard) -> &'s mut HashMap<K, u32, S>,
        cap: usize,
        count: impl FnOnce() -> Result<u32, E>,
    ) -> Result<u32, E>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
        S: std::hash::BuildHasher,
    {
        let shard = self.shard(hash);
        if let Some(&n) = map(&shard.read().unwrap_or_else(|e| e.into_inner())).get(key) {
            return Ok(n);
        }
        let n = count()?;
        let mut s = shard.write().unwrap_or_else(|e| e.into_inner());
        let m = map_mut(&mut s);
        if m.len() < cap {
            m.insert(owned(), n);
        }
        Ok(n)
    }
}

/// The FxHash mix (rustc's): a multiply-rotate over 8-byte words. Fast on short keys; not DoS-resistant, which
/// does not matter for a bounded cache whose keys are compared in full.
pub(super) type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

#[derive(Default)]
pub(super) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf1357aea2e62a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(26) ^ u64::from_le_bytes(b)).wrapping_mul(K);
        }
        self.0 = (self.0.rotate_left(26) ^ bytes.len() as u64).wrapping_mul(K);
    }
    fn finish(&self) -> u64 {
        // Spread the high-entropy bits down, so shard (top bits) and bucket (low bits) both vary.
        self.0 ^ (self.0 >> 29)
    }
}

/// A hasher for packed pieces: one multiply-xor over the two halves.
pub(super) type PackedBuild = std::hash::BuildHasherDefault<PackedHasher>;

#[derive(Default)]
pub(super) struct PackedHasher(u64);

impl std::hash::Hasher for PackedHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u128` keys; kept correct for any other use.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u128(&mut self, k: u128) {
        let (lo, hi) = (k as u64, (k >> 64) as u64);
        let m = u128::from(lo ^ 0x243f_6a88_85a3_08d3) * u128::from(hi ^ 0x1319_8a2e_0370_7344);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastPath {
    /// Enabled only when the tokenizer file has exactly the pipeline this path reproduces.
    pub(super) fn detect(json: &[u8]) -> Option<Self> {
        // One pass over the file: the pipeline's small sections as values, the vocabulary and merges as
        // strings borrowed from the file (no copy unless escaped), turned into integer tables and dropped.
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(default)]
            pre_tokenizer: serde_json::Value,
            #[serde(default)]
            normalizer: serde_json::Value,
            #[serde(default)]
            post_processor: serde_json::Value,
            #[serde(default)]
            decoder: serde_json::Value,
            #[serde(default)]
            added_tokens: serde_json::Value,
            #[serde(default, borrow)]
            model: ModelProbe<'a>,
        }
        #[derive(serde::Deserialize, Default)]
        struct ModelProbe<'a> {
            #[serde(default, rename = "type")]
            kind: serde_json::Value,
            #[serde(default)]
            dropout: serde_json::Value,
            #[serde(default)]
            byte_fallback: serde_json::Value,
            #[serde(default)]
            continuing_subword_prefix: serde_json::Value,
            #[serde(default)]
            end_of_word_suffix: serde_json::Value,
            #[serde(default)]
            ignore_merges: serde_json::Value,
            #[serde(default, borrow)]
            vocab: HashMap<Str<'a>, u32>,
            #[serde(default, borrow)]
            merges: Vec<Merge<'a>>,
        }
        let v: Probe<'_> = serde_json::from_slice(json).ok()?;
        let pre = &v.pre_tokenizer;
        let steps = pre.get("pretokenizers")?.as_array()?;
        let split_ok = steps.len() == 2
            && steps[0]["type"] == "Split"
            && steps[0]["pattern"]["Regex"] == QWEN_SPLIT
            && steps[0]["behavior"] == "Isolated"
            && steps[0]["invert"] == false
            && steps[1]["type"] == "ByteLevel"
            && steps[1]["add_prefix_space"] == false
            && steps[1]["use_regex"] == false;
        let norm_ok = v.normalizer.is_null() || v.normalizer["type"] == "NFC";
        let post = &v.post_processor;
        let post_ok = post.is_null() || (post["type"] == "ByteLevel");
        let m = &v.model;
        let model_ok = m.kind == "BPE"
            && m.dropout.is_null()
            && m.byte_fallback != true
            && m.continuing_subword_prefix
                .as_str()
                .unwrap_or("")
                .is_empty()
            && m.end_of_word_suffix.as_str().unwrap_or("").is_empty()
            && m.ignore_merges != true;
        if !(split_ok && norm_ok && post_ok && model_ok) {
            return None;
        }
        let added = v
            .added_tokens
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["content"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let d = &v.decoder;
        let byte_decoder = d["type"] == "ByteLevel";
        let byte_char = byte_level_chars();
        let bpe = Bpe::build(&m.vocab, &m.merges, &byte_char)?;
        let char_byte: HashMap<char, u8> =
            (0..=255u8).map(|b| (byte_char[b as usize], b)).collect();
        let table = DecodeTable::of(&m.vocab, &v.added_tokens, &char_byte)?;
        Some(Self {
            added,
            byte_decoder,
            table,
            pieces: PieceCache::new(),
            bpe,
            split: std::sync::OnceLock::new(),
        })
    }

    /// The start of every piece of `text`: it is cut before every space that follows a non-whitespace
    /// character. No split of the pattern and no NFC composition crosses such a cut (the pattern has no
    /// look-behind, a space after a non-space ends every alternative, and a space composes with nothing
    /// before it), so pieces can be tokenized one by one and their tokens concatenated.
    pub(super) fn cuts(text: &str) -> impl Iterator<Item = usize> + '_ {
        let mut prev_ws = true;
        std::iter::once(0).chain(text.char_indices().filter_map(move |(k, ch)| {
            let cut = ch == ' ' && !prev_ws && k > 0;
            prev_ws = ch.is_whitespace();
            cut.then_some(k)
        }))
    }

    /// `text` in chunks of at least `min` bytes (the last may be shorter), cut at [`FastPath::cuts`].
    pub(super) fn chunks(text: &str, min: usize) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        let mut cuts = Self::cuts(text).skip(1).chain(std::iter::once(text.len()));
        std::iter::from_fn(move || {
            if start >= text.len() {
                return None;
            }
            for c in cuts.by_ref() {
                if c - start >= min || c == text.len() {
                    let piece = &text[start..c];
                    start = c;
                    return Some(piece);
                }
            }
            None
        })
    }

    /// Decodes `ids` (special tokens skipped) as `Tokenizer::decode` with the ByteLevel decoder does: the
    /// tokens' bytes concatenated, then read as UTF-8 with replacement characters (unknown ids are skipped).
    /// Polls `cancel` every [`POLL_EVERY`] ids.
    pub(super) fn decode(&self, ids: &[u32], cancel: Cancel<'_>) -> Result<String, TokenizerError> {
        let t = &self.table;
        let mut out = Vec::with_capacity(ids.len() * 4);
        for step in ids.chunks(POLL_EVERY) {
            if cancel() {
                return Err(TokenizerError::Cancelled);
            }
            for &id in step {
                let i = id as usize;
                if i < t.known.len() && t.known[i] && !t.special[i] {
                    out.extend_from_slice(&t.bytes[t.ends[i] as usize..t.ends[i + 1] as usize]);
                }
            }
        }
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Token ids of `text` (which [`FastPath::applies`] to), piece by piece as [`FastPath::count`] counts.
    /// Polls `cancel` every [`POLL_EVERY`] pieces.
    pub(super) fn encode(
        &self,
        text: &str,
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        let mut start = 0;
        for (i, k) in Self::cuts(text)
            .skip(1)
            .chain(std::iter::once(text.len()))
            .enumerate()
        {
            if k > start {
                let piece = &text[start..k];
                if piece.is_ascii() {
                    let s = piece.as_bytes();
                    let mut j = 0;
                    while j < s.len() {
                        let end = split_end(s, j);
                        self.piece_ids(&s[j..end], &mut ids);
                        j = end;
                    }
                } else {
                    self.unicode_parts(piece, |part| self.piece_ids(part, &mut ids))?;
                }
                start = k;
            }
            if i % POLL_EVERY == POLL_EVERY - 1 && cancel() {
                return Err(TokenizerError::Cancelled);
            }
        }
        Ok(ids)
    }

    /// Appends the ids of one split piece: short pieces from this thread's map when seen before.
    fn piece_ids(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() > FRONT_MAX_LEN {
            return self.bpe.ids(piece, out);
        }
        let key = pack(piece);
        let id = self.pieces.id;
        let hit = IDS_FRONT.with(|f| {
            let f = f.borrow();
            if f.0 == id {
                f.1.get(&key).copied()
            } else {
                None
            }
        });
        if let Some(v) = hit {
            return unpack_ids(v, out);
        }
        let start = out.len();
        self.bpe.ids(piece, out);
        if let Some(v) = pack_ids(&out[start..]) {
            IDS_FRONT.with(|f| {
                let mut f = f.borrow_mut();
                if f.0 != id {
                    f.0 = id;
                    f.1.clear();
                }
                if f.1.len() < IDS_ENTRIES {
                    f.1.insert(key, v);
                }
            });
        }
    }

    pub(super) fn applies(&self, text: &str) -> bool {
        !self.added.iter().any(|a| text.contains(a.as_str()))
    }

    /// Counts `text` piece by piece (cut at [`FastPath::cuts`]). ASCII pieces take the hand-written split;
    /// others NFC and the regex, so only words with non-ASCII characters pay for it. Polls `cancel` every
    /// [`POLL_EVERY`] pieces.
    pub(super) fn count(&self, text: &str, cancel: Cancel<'_>) -> Result<u32, TokenizerError> {
        let mut total = 0u32;
        let mut start = 0;
        for (i, k) in Self::cuts(text)
            .skip(1)
            .chain(std::iter::once(text.len()))
            .enumerate()
        {
            if k > start {
                total += self.count_piece(&text[start..k])?;
                start = k;
            }
            if i % POLL_EVERY == POLL_EVERY - 1 && cancel() {
                return Err(TokenizerError::Cancelled);
            }
        }
        Ok(total)
    }

    fn count_piece(&self, piece: &str) -> Result<u32, TokenizerError> {
        if piece.is_ascii() {
            Ok(self.count_ascii(piece))
        } else {
            // Short non-ASCII pieces (a word of another script with its leading space) repeat too.
            self.pieces
                .get_or(piece.as_bytes(), || self.count_unicode(piece))
        }
    }

    fn count_unicode(&self, piece: &str) -> Result<u32, TokenizerError> {
        let mut n = 0;
        self.unicode_parts(piece, |part| n += self.bpe.count(part))?;
        Ok(n)
    }

    /// The pipeline's steps for a piece with non-ASCII characters: NFC, then the split pattern (matches and
    /// the gaps between them, as `Split` with `Isolated` keeps both); `each` gets every part's bytes.
    fn unicode_parts(
        &self,
        piece: &str,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), TokenizerError> {
        use unicode_normalization_alignments::UnicodeNormalization;
        let re = self
            .split
            .get_or_init(|| fancy_regex::Regex::new(QWEN_SPLIT).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TokenizerError::Encode(e.clone()))?;
        let text: String = piece.nfc().map(|(c, _)| c).collect();
        let b = text.as_bytes();
        let mut prev = 0;
        for m in re.find_iter(&text) {
            let m = m.map_err(|e| TokenizerError::Encode(e.to_string()))?;
            if m.start() > prev {
                each(&b[prev..m.start()]);
            }
            each(&b[m.start()..m.end()]);
            prev = m.end();
        }
        if prev < b.len() {
            each(&b[prev..]);
        }
        Ok(())
    }

    fn count_ascii(&self, text: &str) -> u32 {
        let s = text.as_bytes();
        let mut n = 0u32;
        let mut i = 0;
        while i < s.len() {
            let end = split_end(s, i);
            let piece = &s[i..end];
            n += self
                .pieces
                .get_or(piece, || {
                    Ok::<u32, std::convert::Infallible>(self.bpe.count(piece))
                })
                .unwrap_or_else(|e| match e {});
            i = end;
        }
        n
    }
}

/// GPT-2's byte-to-unicode table used by ByteLevel.
fn byte_level_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0u32;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).expect("valid")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("valid")
        };
    }
    table
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn is_other(b: u8) -> bool {
    !is_ws(b) && !b.is_ascii_alphanumeric()
}

/// End of the split starting at `i` (ASCII input), following the alternatives of `QWEN_SPLIT` in order, with
/// the regex engine's leftmost-first backtracking.
fn split_end(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let c = s[i];
    let letters_end = |mut j: usize| {
        while j < n && s[j].is_ascii_alphabetic() {
            j += 1;
        }
        j
    };
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if c == b'\'' && i + 1 < n {
        let a = s[i + 1].to_ascii_lowercase();
        let b = s.get(i + 2).map(u8::to_ascii_lowercase);
        match (a, b) {
            (b's' | b't' | b'm' | b'd', _) => return i + 2,
            (b'r' | b'v', Some(b'e')) | (b'l', Some(b'l')) => return i + 3,
            _ => {}
        }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if c.is_ascii_alphabetic() {
        return letters_end(i);
    }
    if c != b'\r'
        && c != b'\n'
        && !c.is_ascii_digit()
        && i + 1 < n
        && s[i + 1].is_ascii_alphabetic()
    {
        return letters_end(i + 1);
    }
    // \p{N}
    if c.is_ascii_digit() {
        return i + 1;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    let start = if c == b' ' && i + 1 < n && is_other(s[i + 1]) {
        i + 1
    } else {
        i
    };
    if is_other(s[start]) {
        let mut e = start;
        while e < n && is_other(s[e]) {
            e += 1;
        }
        while e < n && (s[e] == b'\r' || s[e] == b'\n') {
            e += 1;
        }
        return e;
    }
    // Whitespace from here on.
    let mut j = i;
    while j < n && is_ws(s[j]) {
        j += 1;
    }
    // \s*[\r\n]+ : up to the last line break of the run.
    if let Some(k) = (i..j).rev().find(|&k| s[k] == b'\r' || s[k] == b'\n') {
        return k + 1;
    }
    // \s+(?!\S) : the run, or all of it but its last character when text follows.
    if j == n {
        return j;
    }
    if j - i >= 2 {
        return j - 1;
    }
    // \s+
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_front_map_serves_one_cache_at_a_time() {
        // Two caches (two tokenizers) count the same pieces differently; one thread alternates between them.
        let a = PieceCache::new();
        let b = PieceCache::new();
        let ok = |n: u32| move || Ok::<u32, ()>(n);
        for piece in [&b" hello"[..], b"x", b"", b"fifteen bytes!!", b" a", b"a "] {
            assert_eq!(a.get_or(piece, ok(1)), Ok(1));
            assert_eq!(b.get_or(piece, ok(2)), Ok(2));
            // Hits now: the closures' values are ignored.
            assert_eq!(a.get_or(piece, ok(9)), Ok(1));
            assert_eq!(b.get_or(piece, ok(9)), Ok(2));
        }
        // Packing keeps the length, so pieces that differ only by trailing zero bytes stay apart.
        assert_ne!(pack(b"a"), pack(b"a\0"));
        assert_ne!(pack(b""), pack(b"\0"));
        // Longer pieces skip the front map and still hit the shared cache.
        let long = b"a piece longer than fifteen bytes";
        assert_eq!(a.get_or(long, ok(7)), Ok(7));
        assert_eq!(a.get_or(long, ok(9)), Ok(7));
    }
}
