//! Block texts of Mooncake hash ids, by construction.
//!
//! Each hash id maps to one block text of exactly `block_size` tokens, a pure function of (seed, hash id, the
//! prompt collection): a header line `Block <id>`, then words, then a newline.
//!
//! **Words by construction.** The words are the collection's own word tokens in text order (a window of the
//! "word stream" starting at an offset drawn from (seed, hash id), so blocks read like the collection's
//! text with its punctuation and numbers left out). A word token is one that decodes to a space followed by
//! ASCII letters and that the tokenizer counts as exactly one token on its own, checked once per distinct
//! token. The split of byte-level BPE tokenizers (GPT-2, Qwen, Llama-3 style) starts a new piece at every
//! such word, and a newline before a letter is a piece of its own, so a block of `k` words after a header of
//! `h` tokens is `h + k + 1` tokens, and a prefix of it that ends after a word is a prefix of its tokens:
//! nothing is encoded to build or cut a block. A probe checks the construction once per cache (the counts of
//! probe blocks and of their concatenation); a tokenizer that fails it, or a collection without word
//! tokens, uses the fitted path (real text cut from the token pool and fitted by re-encoding). The tests
//! re-encode every prompt.
//!
//! Memory: a word block is not stored (it is rebuilt from its offset when needed, in about a microsecond);
//! fitted blocks are cached once per hash id.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rayon::prelude::*;

use super::group::keyed_rng;
use crate::domain::exact::{SEPARATOR, fit_prefix};
use crate::domain::lengths::TokenizedDataset;
use crate::domain::sample::filler_text;
use crate::domain::tokenizer::{TokenCounter, TokenizerError};

/// Word tokens of the pool in text order (see the module documentation).
struct Words {
    /// Distinct word texts (a space and ASCII letters).
    text: Vec<Box<str>>,
    /// The pool's word tokens in order, as indices into `text`.
    stream: Vec<u32>,
}

/// Fewest word tokens a pool must have for word blocks.
const MIN_WORDS: usize = 64;

impl Words {
    /// The word tokens of `pool`, each verified to count as one token alone (`None` if fewer than
    /// [`MIN_WORDS`]).
    fn of(tok: &TokenCounter, pool: &[u32]) -> Result<Option<Self>, TokenizerError> {
        let mut slot_of: HashMap<u32, Option<u32>> = HashMap::new();
        let mut text: Vec<Box<str>> = Vec::new();
        let mut stream = Vec::with_capacity(pool.len() / 2);
        for &id in pool {
            let slot = match slot_of.get(&id) {
                Some(&s) => s,
                None => {
                    let s = tok.decode(&[id])?;
                    let b = s.as_bytes();
                    let word = (2..=32).contains(&b.len())
                        && b[0] == b' '
                        && b[1..].iter().all(u8::is_ascii_alphabetic)
                        && tok.count(&s, false)? == 1;
                    let slot = word.then(|| {
                        text.push(s.into_boxed_str());
                        (text.len() - 1) as u32
                    });
                    slot_of.insert(id, slot);
                    slot
                }
            };
            if let Some(w) = slot {
                stream.push(w);
            }
        }
        Ok((stream.len() >= MIN_WORDS).then_some(Self { text, stream }))
    }

    /// Appends the `k` words of the stream from `off` (cycling).
    fn push(&self, out: &mut String, off: usize, k: usize) {
        let n = self.stream.len();
        for j in 0..k {
            out.push_str(&self.text[self.stream[(off + j) % n] as usize]);
        }
    }
}

/// Tokens of real text that block bodies are cut from (encoded once).
pub const POOL_TOKENS: usize = 262_144;

/// A block: its text and where its body came from in the pool (for cutting it without re-encoding).
#[derive(Debug)]
struct Block {
    text: Box<str>,
    off: u32,
    k: u32,
    /// Verified token count (`block_size` unless no cut point fitted).
    count: u32,
}

/// Block texts by hash id, deterministic from (seed, hash id).
pub struct BlockCache<'a> {
    tok: &'a TokenCounter,
    pool: Vec<u32>,
    seed: u64,
    pub(super) block_size: u32,
    /// Word tokens for blocks by construction (`None`: every block is fitted).
    words: Option<Words>,
    /// Every hash id's block is a word block (words, and room for one after the longest header).
    word_blocks: bool,
    /// Fitted blocks by hash id.
    blocks: HashMap<u64, Block>,
    /// Hash ids asked for (word blocks are not stored).
    seen: HashSet<u64>,
}

/// Token ids of the collection's text, prompts in file order joined by a blank line, up to `max_tokens`
/// (the built-in filler text when the collection has no text).
pub fn token_pool(
    tok: &TokenCounter,
    data: &TokenizedDataset,
    max_tokens: usize,
) -> Result<Vec<u32>, TokenizerError> {
    let ds = &data.dataset;
    let mut take = 0;
    let mut est = 0usize;
    while take < ds.len() && est < max_tokens {
        est += data.prompt_len[take] as usize + 1;
        take += 1;
    }
    let parts: Vec<Vec<u32>> = ds.prompts[..take]
        .par_iter()
        .map(|p| tok.encode(p, false))
        .collect::<Result<_, _>>()?;
    let sep = tok.encode(SEPARATOR, false)?;
    let mut pool = Vec::with_capacity(est + take * sep.len());
    for p in parts.iter().filter(|p| !p.is_empty()) {
        if !pool.is_empty() {
            pool.extend_from_slice(&sep);
        }
        pool.extend_from_slice(p);
    }
    pool.truncate(max_tokens);
    if pool.len() < 64 {
        pool = tok.encode(&filler_text(0x6d6f_6f6e, 4096), false)?;
    }
    Ok(pool)
}

impl<'a> BlockCache<'a> {
    /// A cache building blocks of `block_size` tokens from `pool` (see [`token_pool`]): by construction from
    /// the pool's word tokens when the probe passes, fitted otherwise.
    pub fn new(
        tok: &'a TokenCounter,
        pool: Vec<u32>,
        seed: u64,
        block_size: u32,
    ) -> Result<Self, TokenizerError> {
        let words = Words::of(tok, &pool)?;
        let mut cache = Self {
            tok,
            pool,
            seed,
            block_size,
            words,
            word_blocks: false,
            blocks: HashMap::new(),
            seen: HashSet::new(),
        };
        if cache.words.is_some() && !cache.words_probe()? {
            cache.words = None;
        }
        cache.word_blocks =
            cache.words.is_some() && block_size >= tok.count(&block_header(u64::MAX), false)? + 2;
        Ok(cache)
    }

    /// Whether hash id blocks are built from words (no encode) rather than fitted.
    pub fn by_construction(&self) -> bool {
        self.word_blocks
    }

    /// Checks the word construction on this tokenizer: probe blocks of several sizes count what they were
    /// built to, alone, concatenated, and cut after a word.
    fn words_probe(&self) -> Result<bool, TokenizerError> {
        let mut joined = String::new();
        let mut want = 0;
        for (i, words) in [1u32, 40, 300, 1024].into_iter().enumerate() {
            let key = u64::MAX / 11 + i as u64;
            let header = block_header(key);
            let size = self.tok.count(&header, false)? + words + 1;
            let Some(b) = self.word_block(&header, key, size)? else {
                return Ok(false);
            };
            if self.tok.count(&b, false)? != size {
                return Ok(false);
            }
            joined.push_str(&b);
            want += size;
        }
        let key = u64::MAX / 13;
        let header = block_header(key);
        let h = self.tok.count(&header, false)?;
        let Some(cut) = self.word_prefix(&header, key, h + 40, h + 25)? else {
            return Ok(false);
        };
        joined.push_str(&cut);
        Ok(self.tok.count(&joined, false)? == want + h + 25)
    }

    /// The word stream offset of the block keyed `key` (a pure function of (seed, key)).
    fn word_offset(&self, words: &Words, key: u64) -> usize {
        keyed_rng(self.seed, key).random_range(0..words.stream.len())
    }

    /// The word block of `size` tokens: `header`, words, `\n` (`None` without words, or when `size` leaves
    /// no room for a word after the header).
    fn word_block(
        &self,
        header: &str,
        key: u64,
        size: u32,
    ) -> Result<Option<String>, TokenizerError> {
        self.word_text(header, key, size, size)
    }

    /// The first `tokens` tokens of the word block keyed `key` of `size` tokens, when they end after a word
    /// (`None` otherwise: no words, or a cut inside the header).
    fn word_prefix(
        &self,
        header: &str,
        key: u64,
        size: u32,
        tokens: u32,
    ) -> Result<Option<String>, TokenizerError> {
        if tokens >= size {
            return Ok(None);
        }
        self.word_text(header, key, size, tokens)
    }

    /// The first `tokens` tokens of the word block of `size` tokens (all of it, with its `\n`, when `tokens`
    /// is `size`): `header`, then the words from the block's offset.
    fn word_text(
        &self,
        header: &str,
        key: u64,
        size: u32,
        tokens: u32,
    ) -> Result<Option<String>, TokenizerError> {
        let Some(words) = &self.words else {
            return Ok(None);
        };
        let h = self.tok.count(header, false)?;
        if size < h + 2 || tokens <= h {
            return Ok(None);
        }
        let whole = tokens == size;
        let k = (tokens - h) as usize - usize::from(whole);
        let mut text = String::with_capacity(header.len() + k * 6 + 1);
        text.push_str(header);
        words.push(&mut text, self.word_offset(words, key), k);
        if whole {
            text.push('\n');
        }
        Ok(Some(text))
    }

    /// Number of distinct blocks asked for.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no block was asked for yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// `len` pool ids from `off`, cycling.
    fn window(&self, off: usize, len: usize) -> Vec<u32> {
        let mut v = Vec::with_capacity(len);
        let mut i = off % self.pool.len();
        while v.len() < len {
            let take = (self.pool.len() - i).min(len - v.len());
            v.extend_from_slice(&self.pool[i..i + take]);
            i = 0;
        }
        v
    }

    /// A text of `size` tokens (verified; the closest count found otherwise, returned with it): `header`
    /// (which starts with a letter and ends with a newline), then real text from the pool at an offset chosen
    /// by (seed, key), then `\n`.
    fn headed(&self, header: &str, key: u64, size: u32) -> Result<Block, TokenizerError> {
        if let Some(text) = self.word_block(header, key, size)? {
            return Ok(Block {
                text: text.into_boxed_str(),
                off: 0,
                k: 0,
                count: size,
            });
        }
        let htoks = self.tok.count(header, false)?;
        let mut rng = keyed_rng(self.seed, key);
        let body = size.saturating_sub(htoks + 1).max(1) as usize;
        let mut best: Option<Block> = None;
        for _ in 0..4 {
            let off = self.good_offset(rng.random_range(0..self.pool.len()), body)?;
            let ids = self.window(off, body + 32 + body / 8);
            let (text, c, k) = fit_prefix(self.tok, &ids, size, body, &|t| {
                format!("{header}{}\n", t.trim_end())
            })?;
            let cand = Block {
                text: text.into_boxed_str(),
                off: off as u32,
                k: k as u32,
                count: c,
            };
            if c == size {
                return Ok(cand);
            }
            if best
                .as_ref()
                .is_none_or(|b| c.abs_diff(size) < b.count.abs_diff(size))
            {
                best = Some(cand);
            }
        }
        // No cut point fitted (a cut after punctuation merges with the newline, the next one adds two
        // tokens): pad the closest shorter candidate with one-token words before the newline.
        let mut best = best.expect("tried at least once");
        if best.count < size {
            let mut text = best.text.trim_end_matches('\n').to_string();
            for _ in best.count..size {
                text.push_str(" a");
            }
            text.push('\n');
            let c = self.tok.count(&text, false)?;
            if c.abs_diff(size) < best.count.abs_diff(size) {
                best.text = text.into_boxed_str();
                best.count = c;
            }
        }
        Ok(best)
    }

    /// The first offset from `off` (within 64) whose `body`-token window starts with a letter, digit or space
    /// and ends with a letter or digit: such a window re-encodes after the header and before the newline
    /// without merges, so the first cut tried is usually exact.
    fn good_offset(&self, off: usize, body: usize) -> Result<usize, TokenizerError> {
        let len = self.pool.len();
        for j in 0..64 {
            let first = self.tok.decode(&[self.pool[(off + j) % len]])?;
            let last = self.tok.decode(&[self.pool[(off + j + body - 1) % len]])?;
            let starts = first
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == ' ');
            let ends = last.chars().last().is_some_and(char::is_alphanumeric);
            if starts && ends {
                return Ok((off + j) % len);
            }
        }
        Ok(off)
    }

    /// Builds the blocks of `hash_ids` that are not cached yet, in parallel (each is a pure function of
    /// (seed, hash id), so the result does not depend on the thread count).
    pub fn prepare(&mut self, hash_ids: &[u64]) -> Result<(), TokenizerError> {
        self.seen.extend(hash_ids.iter().copied());
        if self.word_blocks {
            return Ok(());
        }
        let mut missing: Vec<u64> = hash_ids
            .iter()
            .copied()
            .filter(|h| !self.blocks.contains_key(h))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let this = &*self;
        let built: Vec<Block> = missing
            .par_iter()
            .map(|&h| this.headed(&block_header(h), h, this.block_size))
            .collect::<Result<_, _>>()?;
        self.blocks.extend(missing.into_iter().zip(built));
        Ok(())
    }

    fn ensure(&mut self, h: u64) -> Result<(), TokenizerError> {
        self.seen.insert(h);
        if !self.word_blocks && !self.blocks.contains_key(&h) {
            let b = self.headed(&block_header(h), h, self.block_size)?;
            self.blocks.insert(h, b);
        }
        Ok(())
    }

    /// The block text of hash id `h` (exactly `block_size` tokens).
    pub fn block(&mut self, h: u64) -> Result<String, TokenizerError> {
        self.ensure(h)?;
        self.full(h)
    }

    /// The whole block of a hash id ([`Self::prepare`]d).
    fn full(&self, h: u64) -> Result<String, TokenizerError> {
        if let Some(text) = self.word_block(&block_header(h), h, self.block_size)? {
            return Ok(text);
        }
        Ok(self.blocks[&h].text.to_string())
    }

    /// The first `tokens` tokens of hash id `h`'s block, cut at a token boundary, with its verified count.
    /// The body's pool ids are reused, so the block is not encoded again.
    pub fn block_prefix(&mut self, h: u64, tokens: u32) -> Result<(String, u32), TokenizerError> {
        self.ensure(h)?;
        self.cut(h, tokens)
    }

    /// [`Self::block_prefix`] of a cached block.
    fn cut(&self, h: u64, tokens: u32) -> Result<(String, u32), TokenizerError> {
        let header = block_header(h);
        if let Some(text) = self.word_prefix(&header, h, self.block_size, tokens)? {
            return Ok((text, tokens));
        }
        let mut ids = self.tok.encode(&header, false)?;
        if let Some(b) = self.blocks.get(&h) {
            ids.extend(self.window(b.off as usize, b.k as usize));
        }
        let (text, c, _) = fit_prefix(self.tok, &ids, tokens, tokens as usize, &|t| t.to_string())?;
        Ok((text, c))
    }

    /// Unshared text of `tokens` tokens for request line `line` (when `input_length` exceeds its blocks).
    fn extra(&self, line: u64, tokens: u32) -> Result<(String, u32), TokenizerError> {
        let header = format!("Request {line}\n");
        if tokens <= self.tok.count(&header, false)? + 2 {
            let mut s = String::from("a");
            for _ in 1..tokens {
                s.push_str(" a");
            }
            let c = self.tok.count(&s, false)?;
            return Ok((s, c));
        }
        let b = self.headed(&header, u64::MAX - line, tokens)?;
        Ok((b.text.into(), b.count))
    }

    /// The prompt of a request: its blocks, the last one cut, so that it has `content` tokens (without
    /// special tokens). Returns the text and the sum of its pieces' verified token counts (equal to `content`
    /// unless a piece could not be fitted exactly).
    pub fn prompt(
        &mut self,
        hash_ids: &[u64],
        content: u32,
        line: u64,
    ) -> Result<(String, u32), TokenizerError> {
        self.prepare(hash_ids)?;
        self.assemble(hash_ids, content, line)
    }

    /// [`Self::prompt`] once every block of `hash_ids` is cached ([`Self::prepare`]).
    pub(super) fn assemble(
        &self,
        hash_ids: &[u64],
        content: u32,
        line: u64,
    ) -> Result<(String, u32), TokenizerError> {
        let b = self.block_size;
        let full = (content / b) as usize;
        let mut text = String::new();
        let mut count = 0;
        let words = self.word_blocks;
        for &h in hash_ids.iter().take(full) {
            if words {
                text.push_str(&self.full(h)?);
                count += b;
            } else {
                let block = &self.blocks[&h];
                text.push_str(&block.text);
                count += block.count;
            }
        }
        if full < hash_ids.len() {
            let rem = content - full as u32 * b;
            if rem > 0 {
                let (t, c) = self.cut(hash_ids[full], rem)?;
                text.push_str(&t);
                count += c;
            }
        } else {
            let extra = content - hash_ids.len() as u32 * b;
            if extra > 0 {
                let (t, c) = self.extra(line, extra)?;
                text.push_str(&t);
                count += c;
            }
        }
        Ok((text, count))
    }

    /// Checks that this tokenizer encodes block concatenations piece by piece (no token spans a block
    /// boundary): `encode(A + B + cut(C)) == encode(A) ++ encode(B) ++ encode(cut(C))` for probe blocks.
    pub fn concatenation_is_stable(&mut self) -> Result<bool, TokenizerError> {
        let keys = [u64::MAX / 3, u64::MAX / 5, u64::MAX / 7];
        let a = self.headed(&block_header(keys[0]), keys[0], self.block_size)?;
        let b = self.headed(&block_header(keys[1]), keys[1], self.block_size)?;
        let c = self.headed(&block_header(keys[2]), keys[2], self.block_size)?;
        let cut = &c.text[..c.text.len() / 2];
        let cut = &cut[..cut.floor_char_boundary(cut.len())];
        let whole = format!("{}{}{cut}", a.text, b.text);
        let mut parts = self.tok.encode(&a.text, false)?;
        parts.extend(self.tok.encode(&b.text, false)?);
        parts.extend(self.tok.encode(cut, false)?);
        Ok(self.tok.encode(&whole, false)? == parts)
    }
}

/// The first line of a block: starts with a letter, ends with a newline, unique per hash id.
pub fn block_header(h: u64) -> String {
    format!("Block {h}\n")
}
