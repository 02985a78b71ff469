//! Token counting with HuggingFace `tokenizer.json` files.
//!
//! The default tokenizer (Qwen2.5-Coder-7B-Instruct) is compiled into the binary, gzip-compressed, so no
//! network or download is ever needed. Truncation and padding are always disabled before counting, whatever
//! the file says.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Hub id of the embedded default tokenizer.
pub const DEFAULT_TOKENIZER: &str = "Qwen/Qwen2.5-Coder-7B-Instruct";

static EMBEDDED_QWEN: &[u8] =
    include_bytes!("../../assets/tokenizers/qwen2.5-coder-7b-instruct.tokenizer.json.gz");

/// Names that resolve to the embedded tokenizer.
const EMBEDDED_ALIASES: &[&str] = &[
    DEFAULT_TOKENIZER,
    "qwen2.5-coder-7b-instruct",
    "builtin",
    "default",
];

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// The name did not resolve to any file; `tried` lists every place that was looked at.
    #[error("tokenizer '{name}' not found (offline; tried: {})", tried.join(", "))]
    NotFound {
        /// The requested name.
        name: String,
        /// Every path or rule tried.
        tried: Vec<String>,
    },
    /// A file was found but could not be read or parsed.
    #[error("tokenizer file {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Encoding a text failed.
    #[error("tokenization failed: {0}")]
    Encode(String),
    /// The caller's cancel flag was set while a long text was being encoded, decoded or counted.
    #[error("cancelled")]
    Cancelled,
}

/// A cancel flag polled by the long tokenizer calls (about every 64 KiB of text or 64 Ki ids).
pub type Cancel<'a> = &'a (dyn Fn() -> bool + Sync);

/// The flag of work that is never cancelled.
pub const NEVER: Cancel<'static> = &|| false;

/// Bytes of text per chunk of a cancellable encode.
const ENCODE_CHUNK: usize = 64 << 10;

/// Ids per step of a cancellable decode, and pieces per step of a cancellable count.
const POLL_EVERY: usize = 64 << 10;

/// Where tokenizer names may resolve to.
#[derive(Debug, Clone, Default)]
pub struct TokenizerPolicy {
    /// Allow names that are file-system paths (the CLI does; the service does not).
    pub allow_paths: bool,
    /// Directories searched for `<name>/tokenizer.json` or `<name>.json` (the service's tokenizer directory).
    pub search_dirs: Vec<PathBuf>,
    /// Look in the local HuggingFace cache (`$HF_HOME/hub/models--Org--Name/snapshots/*/tokenizer.json`).
    pub hf_cache: bool,
}

impl TokenizerPolicy {
    /// The CLI's policy: paths, the HF cache and nothing else.
    pub fn cli() -> Self {
        Self {
            allow_paths: true,
            search_dirs: Vec::new(),
            hf_cache: true,
        }
    }
}

/// A loaded tokenizer that counts tokens. Cheap to clone (shared).
#[derive(Clone)]
pub struct TokenCounter {
    inner: Arc<tokenizers::Tokenizer>,
    id: String,
    fingerprint: String,
    fast: Option<Arc<FastPath>>,
}

/// The GPT-4-style split pattern of the Qwen2 family, with its ByteLevel step.
const QWEN_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A faster count for the Qwen2 pipeline (NFC, the split regex above, ByteLevel, BPE, nothing added after): for
/// ASCII the split is hand-written (the fancy-regex pre-tokenizer is most of the cost), then each piece goes
/// through the same BPE model; words with other characters take the full pipeline, and text that holds an added
/// token takes it whole. Tests check that both paths agree.
struct FastPath {
    byte_char: [char; 256],
    char_byte: std::collections::HashMap<char, u8>,
    added: Vec<String>,
    /// The decoder is ByteLevel alone, so ids can be decoded in steps (see [`FastPath::decode`]).
    byte_decoder: bool,
    /// Per id: its decoded bytes (`ids[id]..ids[id + 1]` in `bytes`), built on the first stepped decode.
    decode_table: std::sync::OnceLock<DecodeTable>,
    /// Split piece -> token count, shared by every thread that counts with this tokenizer.
    pieces: PieceCache,
}

/// Most pieces the [`PieceCache`] holds (about 40 MiB at the most; English text needs far fewer).
const PIECE_CACHE_ENTRIES: usize = 1 << 19;
/// Longest piece worth caching (longer ones are rare and mostly unique).
const PIECE_CACHE_MAX_LEN: usize = 48;
const PIECE_SHARDS: usize = 16;

/// A bounded, sharded map from one split piece (the pattern's unit: a word with its leading space, a digit, a
/// run of punctuation or whitespace) to its BPE token count. BPE without dropout is a function of the piece,
/// so a hit is exact; a full shard stops taking new pieces (no eviction, so no churn and no lock upgrades on
/// hot paths). Keys are the piece's bytes, compared in full: a hash collision cannot give a wrong count.
struct PieceCache {
    shards: Vec<std::sync::RwLock<PieceMap>>,
}

type PieceMap = HashMap<Box<[u8]>, u32, FxBuild>;

impl PieceCache {
    fn new() -> Self {
        Self {
            shards: (0..PIECE_SHARDS)
                .map(|_| std::sync::RwLock::new(HashMap::default()))
                .collect(),
        }
    }

    /// The count of `piece`, from the cache or from `count` (then remembered while there is room).
    fn get_or<E>(&self, piece: &[u8], count: impl FnOnce() -> Result<u32, E>) -> Result<u32, E> {
        if piece.len() > PIECE_CACHE_MAX_LEN {
            return count();
        }
        let h = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = FxBuild.build_hasher();
            h.write(piece);
            h.finish()
        };
        // Not the top bits: the map keeps those as its tag, and a shard of one tag prefix probes in vain.
        let shard =
            &self.shards[(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % PIECE_SHARDS];
        if let Some(&n) = shard.read().unwrap_or_else(|e| e.into_inner()).get(piece) {
            return Ok(n);
        }
        let n = count()?;
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < PIECE_CACHE_ENTRIES / PIECE_SHARDS {
            map.insert(piece.into(), n);
        }
        Ok(n)
    }
}

/// The FxHash mix (rustc's): a multiply-rotate over 8-byte words. Fast on short keys; not DoS-resistant, which
/// does not matter for a bounded cache whose keys are compared in full.
#[derive(Clone, Copy, Default)]
struct FxBuild;

#[derive(Default)]
struct FxHasher(u64);

impl std::hash::BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

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
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        // Spread the high-entropy bits down, so shard (top bits) and bucket (low bits) both vary.
        self.0 ^ (self.0 >> 29)
    }
}

/// Every id's bytes as the ByteLevel decoder produces them, and whether the id is a special token.
struct DecodeTable {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    special: Vec<bool>,
    known: Vec<bool>,
}

impl FastPath {
    /// Enabled only when the tokenizer file has exactly the pipeline this path reproduces.
    fn detect(json: &[u8]) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let pre = v.get("pre_tokenizer")?;
        let steps = pre.get("pretokenizers")?.as_array()?;
        let split_ok = steps.len() == 2
            && steps[0]["type"] == "Split"
            && steps[0]["pattern"]["Regex"] == QWEN_SPLIT
            && steps[0]["behavior"] == "Isolated"
            && steps[0]["invert"] == false
            && steps[1]["type"] == "ByteLevel"
            && steps[1]["add_prefix_space"] == false
            && steps[1]["use_regex"] == false;
        let norm_ok = v["normalizer"].is_null() || v["normalizer"]["type"] == "NFC";
        let post = &v["post_processor"];
        let post_ok = post.is_null() || (post["type"] == "ByteLevel");
        let m = &v["model"];
        let model_ok = m["type"] == "BPE"
            && m["dropout"].is_null()
            && m["byte_fallback"] != true
            && m["continuing_subword_prefix"]
                .as_str()
                .unwrap_or("")
                .is_empty()
            && m["end_of_word_suffix"].as_str().unwrap_or("").is_empty();
        if !(split_ok && norm_ok && post_ok && model_ok) {
            return None;
        }
        let added = v["added_tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["content"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let d = &v["decoder"];
        let byte_decoder = d["type"] == "ByteLevel";
        let byte_char = byte_level_chars();
        Some(Self {
            byte_char,
            char_byte: (0..=255u8).map(|b| (byte_char[b as usize], b)).collect(),
            added,
            byte_decoder,
            decode_table: std::sync::OnceLock::new(),
            pieces: PieceCache::new(),
        })
    }

    /// The start of every piece of `text`: it is cut before every space that follows a non-whitespace
    /// character. No split of the pattern and no NFC composition crosses such a cut (the pattern has no
    /// look-behind, a space after a non-space ends every alternative, and a space composes with nothing
    /// before it), so pieces can be tokenized one by one and their tokens concatenated.
    fn cuts(text: &str) -> impl Iterator<Item = usize> + '_ {
        let mut prev_ws = true;
        std::iter::once(0).chain(text.char_indices().filter_map(move |(k, ch)| {
            let cut = ch == ' ' && !prev_ws && k > 0;
            prev_ws = ch.is_whitespace();
            cut.then_some(k)
        }))
    }

    /// `text` in chunks of at least `min` bytes (the last may be shorter), cut at [`FastPath::cuts`].
    fn chunks(text: &str, min: usize) -> impl Iterator<Item = &str> + '_ {
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

    fn table(&self, tok: &tokenizers::Tokenizer) -> &DecodeTable {
        self.decode_table.get_or_init(|| {
            let n = tok.get_vocab_size(true);
            let added = tok.get_added_vocabulary();
            let mut t = DecodeTable {
                bytes: Vec::with_capacity(n * 7),
                ends: Vec::with_capacity(n + 1),
                special: Vec::with_capacity(n),
                known: Vec::with_capacity(n),
            };
            t.ends.push(0);
            for id in 0..n as u32 {
                match tok.id_to_token(id) {
                    Some(token) => {
                        t.special.push(added.is_special_token(&token));
                        t.known.push(true);
                        self.token_bytes(&token, &mut t.bytes);
                    }
                    None => {
                        t.special.push(false);
                        t.known.push(false);
                    }
                }
                t.ends.push(t.bytes.len() as u32);
            }
            t
        })
    }

    /// Appends the bytes of `token` as the ByteLevel decoder gives them: every char through the byte table,
    /// or the token's own UTF-8 bytes when one of its chars is not in the table.
    fn token_bytes(&self, token: &str, out: &mut Vec<u8>) {
        let start = out.len();
        for c in token.chars() {
            match self.char_byte.get(&c) {
                Some(&b) => out.push(b),
                None => {
                    out.truncate(start);
                    out.extend_from_slice(token.as_bytes());
                    return;
                }
            }
        }
    }

    /// Decodes `ids` (special tokens skipped) as `Tokenizer::decode` with the ByteLevel decoder does: the
    /// tokens' bytes concatenated, then read as UTF-8 with replacement characters. Polls `cancel` every
    /// [`POLL_EVERY`] ids.
    fn decode(
        &self,
        tok: &tokenizers::Tokenizer,
        ids: &[u32],
        cancel: Cancel<'_>,
    ) -> Result<String, TokenizerError> {
        let t = self.table(tok);
        let mut out = Vec::with_capacity(ids.len() * 4);
        for step in ids.chunks(POLL_EVERY) {
            if cancel() {
                return Err(TokenizerError::Cancelled);
            }
            for &id in step {
                let i = id as usize;
                if i < t.known.len() {
                    if t.known[i] && !t.special[i] {
                        out.extend_from_slice(&t.bytes[t.ends[i] as usize..t.ends[i + 1] as usize]);
                    }
                } else if let Some(token) = tok.id_to_token(id)
                    && !tok.get_added_vocabulary().is_special_token(&token)
                {
                    // Beyond the vocabulary size (an added token with a gap before it).
                    self.token_bytes(&token, &mut out);
                }
            }
        }
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn applies(&self, text: &str) -> bool {
        !self.added.iter().any(|a| text.contains(a.as_str()))
    }

    /// Counts `text` piece by piece (cut at [`FastPath::cuts`]). ASCII pieces take the hand-written split;
    /// others the full pipeline, so only words with non-ASCII characters pay for it. Polls `cancel` every
    /// [`POLL_EVERY`] pieces.
    fn count(
        &self,
        tok: &TokenCounter,
        text: &str,
        cancel: Cancel<'_>,
    ) -> Result<u32, TokenizerError> {
        let mut total = 0u32;
        let mut start = 0;
        for (i, k) in Self::cuts(text)
            .skip(1)
            .chain(std::iter::once(text.len()))
            .enumerate()
        {
            if k > start {
                total += self.count_piece(tok, &text[start..k])?;
                start = k;
            }
            if i % POLL_EVERY == POLL_EVERY - 1 && cancel() {
                return Err(TokenizerError::Cancelled);
            }
        }
        Ok(total)
    }

    fn count_piece(&self, tok: &TokenCounter, piece: &str) -> Result<u32, TokenizerError> {
        if piece.is_ascii() {
            self.count_ascii(&tok.inner, piece)
        } else {
            // Short non-ASCII pieces (a word of another script with its leading space) repeat too.
            self.pieces
                .get_or(piece.as_bytes(), || tok.count_full(piece, false))
        }
    }

    fn count_ascii(&self, tok: &tokenizers::Tokenizer, text: &str) -> Result<u32, TokenizerError> {
        use tokenizers::Model;
        let s = text.as_bytes();
        let model = tok.get_model();
        let mut piece = String::with_capacity(64);
        let mut n = 0u32;
        let mut i = 0;
        while i < s.len() {
            let end = split_end(s, i);
            n += self.pieces.get_or(&s[i..end], || {
                piece.clear();
                piece.extend(s[i..end].iter().map(|&b| self.byte_char[b as usize]));
                model
                    .tokenize(&piece)
                    .map(|t| t.len() as u32)
                    .map_err(|e| TokenizerError::Encode(e.to_string()))
            })?;
            i = end;
        }
        Ok(n)
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

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl TokenCounter {
    /// The embedded default tokenizer (Qwen2.5-Coder-7B-Instruct).
    pub fn embedded() -> Self {
        let mut json = Vec::with_capacity(5 << 20);
        flate2::read::GzDecoder::new(EMBEDDED_QWEN)
            .read_to_end(&mut json)
            .expect("embedded tokenizer is valid gzip");
        Self::from_json_bytes(DEFAULT_TOKENIZER, &json).expect("embedded tokenizer is valid")
    }

    /// Resolves a tokenizer name under `policy` and loads it.
    pub fn resolve(name: &str, policy: &TokenizerPolicy) -> Result<Self, TokenizerError> {
        if EMBEDDED_ALIASES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
        {
            return Ok(Self::embedded());
        }
        let mut tried = Vec::new();
        if policy.allow_paths {
            let p = Path::new(name);
            let candidate = if p.is_dir() {
                p.join("tokenizer.json")
            } else {
                p.to_path_buf()
            };
            if candidate.is_file() {
                return Self::from_file(name, &candidate);
            }
            tried.push(format!("path {}", candidate.display()));
        }
        let safe_name = !name.is_empty()
            && !name.starts_with('/')
            && !name
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
            && !name.contains('\\');
        if safe_name {
            for dir in &policy.search_dirs {
                for candidate in [
                    dir.join(name).join("tokenizer.json"),
                    dir.join(format!("{name}.json")),
                ] {
                    if candidate.is_file() {
                        return Self::from_file(name, &candidate);
                    }
                    tried.push(format!("{}", candidate.display()));
                }
            }
            if policy.hf_cache && name.split('/').count() == 2 {
                let hub = hf_hub_dir();
                let model_dir = hub.join(format!("models--{}", name.replace('/', "--")));
                let snapshots = model_dir.join("snapshots");
                if let Ok(entries) = std::fs::read_dir(&snapshots) {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path().join("tokenizer.json"))
                        .filter(|p| p.is_file())
                        .collect();
                    found.sort();
                    if let Some(p) = found.pop() {
                        return Self::from_file(name, &p);
                    }
                }
                tried.push(format!("{}/*/tokenizer.json", snapshots.display()));
            }
        }
        tried.push(format!("built-in names: {}", EMBEDDED_ALIASES.join(", ")));
        Err(TokenizerError::NotFound {
            name: name.to_string(),
            tried,
        })
    }

    /// Loads a `tokenizer.json` file.
    pub fn from_file(id: &str, path: &Path) -> Result<Self, TokenizerError> {
        let bytes = std::fs::read(path).map_err(|e| TokenizerError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json_bytes(id, &bytes).map_err(|e| match e {
            TokenizerError::Invalid { reason, .. } => TokenizerError::Invalid {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses `tokenizer.json` content; truncation and padding are disabled.
    pub fn from_json_bytes(id: &str, json: &[u8]) -> Result<Self, TokenizerError> {
        let invalid = |reason: String| TokenizerError::Invalid {
            path: id.to_string(),
            reason,
        };
        let mut tok =
            tokenizers::Tokenizer::from_bytes(json).map_err(|e| invalid(e.to_string()))?;
        tok.with_truncation(None)
            .map_err(|e| invalid(e.to_string()))?;
        tok.with_padding(None);
        let fingerprint = hex::encode(&Sha256::digest(json)[..8]);
        Ok(Self {
            inner: Arc::new(tok),
            id: id.to_string(),
            fingerprint,
            fast: FastPath::detect(json).map(Arc::new),
        })
    }

    /// The name this tokenizer was loaded under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// First 16 hex digits of the SHA-256 of the `tokenizer.json` content.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode_fast(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Token ids of `text` without special tokens, encoded in chunks of about 64 KiB with `cancel` polled
    /// between them (the same ids as [`TokenCounter::encode`]; a tokenizer without the fast path encodes the
    /// text whole).
    pub fn encode_cancellable(
        &self,
        text: &str,
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        self.encode_chunked(text, ENCODE_CHUNK, cancel)
    }

    fn encode_chunked(
        &self,
        text: &str,
        chunk: usize,
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        match &self.fast {
            Some(fast) if fast.applies(text) => {
                let mut ids = Vec::with_capacity(text.len() / 3);
                for part in FastPath::chunks(text, chunk) {
                    if cancel() {
                        return Err(TokenizerError::Cancelled);
                    }
                    ids.extend_from_slice(self.encode(part, false)?.as_slice());
                }
                Ok(ids)
            }
            _ => {
                if cancel() {
                    return Err(TokenizerError::Cancelled);
                }
                self.encode(text, false)
            }
        }
    }

    /// Number of tokens of `text`.
    pub fn count(&self, text: &str, add_special_tokens: bool) -> Result<u32, TokenizerError> {
        self.count_cancellable(text, add_special_tokens, NEVER)
    }

    /// Number of tokens of `text`, polling `cancel` along the way (on the fast path; otherwise once).
    pub fn count_cancellable(
        &self,
        text: &str,
        add_special_tokens: bool,
        cancel: Cancel<'_>,
    ) -> Result<u32, TokenizerError> {
        if let Some(fast) = &self.fast
            && fast.applies(text)
        {
            return fast.count(self, text, cancel);
        }
        if cancel() {
            return Err(TokenizerError::Cancelled);
        }
        self.count_full(text, add_special_tokens)
    }

    /// Number of tokens of `text` through the whole `tokenizers` pipeline.
    pub fn count_full(&self, text: &str, add_special_tokens: bool) -> Result<u32, TokenizerError> {
        self.inner
            .encode_fast(text, add_special_tokens)
            .map(|e| e.len() as u32)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Decodes ids back to text (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.decode_cancellable(ids, NEVER)
    }

    /// Decodes ids back to text (special tokens skipped), polling `cancel` every 64 Ki ids when the
    /// decoder is ByteLevel (otherwise once, before the library's decode).
    pub fn decode_cancellable(
        &self,
        ids: &[u32],
        cancel: Cancel<'_>,
    ) -> Result<String, TokenizerError> {
        if let Some(fast) = &self.fast
            && fast.byte_decoder
        {
            return fast.decode(&self.inner, ids, cancel);
        }
        if cancel() {
            return Err(TokenizerError::Cancelled);
        }
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Counts tokens of many texts in parallel on all cores; `progress` is called with the number of texts
    /// finished (from worker threads). `cancel` is polled per batch of 64 texts and inside long texts.
    pub fn count_many<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        add_special_tokens: bool,
        progress: &(dyn Fn(usize) + Sync),
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        texts
            .par_chunks(64)
            .map(|chunk| {
                if cancel() {
                    return Err(TokenizerError::Cancelled);
                }
                let r = chunk
                    .iter()
                    .map(|t| self.count_cancellable(t.as_ref(), add_special_tokens, cancel))
                    .collect::<Result<Vec<u32>, _>>();
                progress(chunk.len());
                r
            })
            .collect::<Result<Vec<Vec<u32>>, _>>()
            .map(|v| v.concat())
    }
}

fn hf_hub_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("huggingface").join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_vectors_46_of_46() {
        let inp = include_str!("../../tests/fixtures/tokenizer/conformance-vectors.inp");
        let out = include_str!("../../tests/fixtures/tokenizer/conformance-vectors.out");
        let inputs: Vec<&str> = inp
            .strip_suffix("\n__ggml_vocab_test__\n")
            .unwrap_or(inp)
            .split("\n__ggml_vocab_test__\n")
            .collect();
        let outputs: Vec<&str> = out.lines().collect();
        assert_eq!(inputs.len(), 46);
        assert_eq!(outputs.len(), 46);
        let tok = TokenCounter::embedded();
        let mut ok = 0;
        for (i, (text, expected)) in inputs.iter().zip(&outputs).enumerate() {
            let want: Vec<u32> = expected
                .split_whitespace()
                .map(|s| s.parse().expect("id"))
                .collect();
            let got = tok.encode(text, false).expect("encode");
            assert_eq!(got, want, "vector {i}: {text:?}");
            ok += 1;
        }
        assert_eq!(ok, 46);
    }

    #[test]
    fn qwen_adds_no_special_tokens_and_counts_match() {
        let tok = TokenCounter::embedded();
        assert_eq!(tok.count("Hello world", true).unwrap(), 2);
        assert_eq!(tok.count("Hello world", false).unwrap(), 2);
        assert_eq!(tok.count("", true).unwrap(), 0);
        let many = tok
            .count_many(&["Hello world", "", "a b c"], true, &|_| {}, NEVER)
            .unwrap();
        assert_eq!(many, vec![2, 0, 3]);
    }

    #[test]
    fn fast_count_equals_the_full_pipeline() {
        use rand::{Rng, SeedableRng};
        let tok = TokenCounter::embedded();
        assert!(
            tok.fast.is_some(),
            "the embedded tokenizer takes the fast path"
        );
        let ds = crate::domain::sample::sample_dataset();
        let mut texts: Vec<String> = ds.prompts.clone();
        texts.extend(ds.completions.iter().flatten().cloned());
        // Random ASCII with every class the split distinguishes: letters, digits, apostrophes, punctuation,
        // spaces, tabs, vertical tab, form feed, CR, LF, and an added token (full path).
        let alphabet: &[u8] =
            b"aZk'sStTreVEmlLdD09 7 \t\n\r\x0b\x0c.,!?-_()[]{}<>|/\\\"#@ \n\n  \r\n";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..3000 {
            let len = rng.random_range(0..40);
            let t: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            texts.push(t);
        }
        texts.push("I'm <|im_start|> ok".into());
        texts.push("déjà vu  \n ".into());
        // Mixed text: accents, curly quotes, CJK, Unicode spaces before ASCII spaces, combining marks (NFC).
        let mixed: &[&str] = &[
            "é", "’", "中文", "\u{3000}", "\u{a0}", "e\u{301}", "😀", " ", "  ", "\n", "a", "Z",
            "'s", "7", ".", "\t",
        ];
        for _ in 0..3000 {
            let len = rng.random_range(0..30);
            let t: String = (0..len)
                .map(|_| mixed[rng.random_range(0..mixed.len())])
                .collect();
            texts.push(t);
        }
        // Cold (the piece cache fills as it goes), then warm (counts come from the cache), then the same from
        // another thread in a shuffled order (the cache is shared).
        let full: Vec<u32> = texts
            .iter()
            .map(|t| tok.count_full(t, true).unwrap())
            .collect();
        for pass in ["cold", "warm"] {
            for (t, &n) in texts.iter().zip(&full) {
                assert_eq!(tok.count(t, true).unwrap(), n, "{pass}: {t:?}");
            }
        }
        let cached: usize = tok
            .fast
            .as_ref()
            .unwrap()
            .pieces
            .shards
            .iter()
            .map(|s| s.read().unwrap().len())
            .sum();
        assert!(cached > 1000, "the piece cache fills ({cached} pieces)");
        let joined = texts.join(" ");
        let shared = tok.clone();
        let n = std::thread::spawn(move || shared.count(&joined, true).unwrap())
            .join()
            .unwrap();
        assert_eq!(n, tok.count_full(&texts.join(" "), true).unwrap());
    }

    /// Large mixed text: the sample prompts and completions, random ASCII and Unicode, joined.
    fn big_text(seed: u64) -> String {
        use rand::{Rng, SeedableRng};
        let ds = crate::domain::sample::sample_dataset();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mixed: &[&str] = &[
            "é", "’", "中文", "\u{3000}", "\u{a0}", "e\u{301}", "😀", " ", "  ", "\n", "a", "Z",
            "'s", "7", ".", "\t", "word", " x", "\r\n",
        ];
        let mut text = String::new();
        for (i, p) in ds.prompts.iter().enumerate() {
            text.push_str(p);
            text.push_str(if i % 3 == 0 { "\n\n" } else { " " });
            for _ in 0..rng.random_range(0..40) {
                text.push_str(mixed[rng.random_range(0..mixed.len())]);
            }
        }
        text
    }

    #[test]
    fn chunked_encode_equals_the_whole_encode() {
        let tok = TokenCounter::embedded();
        let text = big_text(1);
        assert!(text.len() > 200_000, "{}", text.len());
        let whole = tok.encode(&text, false).unwrap();
        for chunk in [1, 7, 100, 4096, ENCODE_CHUNK] {
            let parts = tok.encode_chunked(&text, chunk, NEVER).unwrap();
            assert_eq!(parts.len(), whole.len(), "chunk {chunk}");
            assert!(parts == whole, "chunk {chunk}: ids differ");
        }
        let chunks: Vec<&str> = FastPath::chunks(&text, 4096).collect();
        assert_eq!(chunks.concat(), text);
        assert!(chunks.len() > 10);
        // An added token makes the text take the whole pipeline: still the same ids.
        let with_added = format!("{text}<|im_start|> tail");
        assert_eq!(
            tok.encode_cancellable(&with_added, NEVER).unwrap(),
            tok.encode(&with_added, false).unwrap()
        );
    }

    #[test]
    fn stepped_decode_equals_the_library_decode() {
        use rand::{Rng, SeedableRng};
        let tok = TokenCounter::embedded();
        let fast = tok.fast.as_ref().expect("fast path");
        assert!(fast.byte_decoder);
        let ids = tok.encode(&big_text(2), false).unwrap();
        let lib = |ids: &[u32]| tok.inner.decode(ids, true).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), lib(&ids));
        // Random ids: special and non-special added tokens, ids past the vocabulary, cuts inside characters.
        let n = tok.inner.get_vocab_size(true) as u32;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..2000 {
            let len = rng.random_range(0..30);
            let r: Vec<u32> = (0..len)
                .map(|_| match rng.random_range(0..10) {
                    0 => rng.random_range(151_640..n + 5),
                    1 => ids[rng.random_range(0..ids.len())],
                    _ => rng.random_range(0..n),
                })
                .collect();
            assert_eq!(tok.decode(&r).unwrap(), lib(&r), "{r:?}");
        }
        for k in [0, 1, 2, 3, 1000, ids.len() / 2, ids.len()] {
            assert_eq!(tok.decode(&ids[..k]).unwrap(), lib(&ids[..k]), "prefix {k}");
        }
    }

    #[test]
    fn long_calls_stop_when_cancelled() {
        let tok = TokenCounter::embedded();
        let text = big_text(3).repeat(4);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        // Cancelled after the first poll: the work stops at the second.
        let cancel = || calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
        assert!(matches!(
            tok.encode_cancellable(&text, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let ids = tok.encode(&text, false).unwrap();
        assert!(ids.len() > 2 * POLL_EVERY);
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            tok.decode_cancellable(&ids, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let words = "word ".repeat(3 * POLL_EVERY);
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            tok.count_cancellable(&words, false, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let texts = vec!["a b"; 1000];
        assert!(matches!(
            tok.count_many(&texts, false, &|_| {}, &|| true),
            Err(TokenizerError::Cancelled)
        ));
        // Never cancelled: the same answers as the plain calls.
        assert_eq!(
            tok.count_cancellable(&words, false, NEVER).unwrap(),
            tok.count_full(&words, false).unwrap()
        );
    }

    #[test]
    fn unknown_name_lists_what_was_tried() {
        let policy = TokenizerPolicy {
            allow_paths: true,
            search_dirs: vec![PathBuf::from("/nonexistent-dir")],
            hf_cache: true,
        };
        let err = TokenCounter::resolve("NoSuchOrg/NoSuchModel", &policy).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("NoSuchOrg/NoSuchModel"), "{msg}");
        assert!(msg.contains("models--NoSuchOrg--NoSuchModel"), "{msg}");
        assert!(msg.contains("/nonexistent-dir"), "{msg}");
    }

    #[test]
    fn truncation_and_padding_are_disabled() {
        // A tokenizer file that asks for truncation at 4 tokens and padding: counts must ignore both.
        let json = r#"{"version":"1.0","truncation":{"direction":"Right","max_length":4,"strategy":"LongestFirst","stride":0},
          "padding":{"strategy":{"Fixed":16},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[PAD]"},
          "added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
          "model":{"type":"WordLevel","vocab":{"[PAD]":0,"[UNK]":1,"a":2,"b":3},"unk_token":"[UNK]"}}"#;
        let tok = TokenCounter::from_json_bytes("test", json.as_bytes()).unwrap();
        assert_eq!(tok.count("a b a b a b a b", true).unwrap(), 8);
    }
}
