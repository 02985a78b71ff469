//! Mooncake traces (FAST'25): JSONL `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`,
//! where each hash id names one KV block of `block_size` tokens (512 in the release).
//!
//! Each hash id maps to one block text of exactly `block_size` tokens, built deterministically from (seed,
//! hash id) out of the prompt collection's real text (the built-in sample when no collection is given):
//! a short header line `Block <id>` followed by real text, ending with a newline. Requests whose `hash_ids`
//! share a prefix therefore share a byte-identical text prefix, and a prefix cache sees the reuse the trace
//! describes.
//!
//! Concatenation is token-stable: every block starts with a letter and ends with `\n`. The pre-tokenizers of
//! byte-level BPE tokenizers (GPT-2/Qwen/Llama-3 style) end a piece at a newline that is followed by a letter,
//! so no token spans two blocks and the prompt's token count is the sum of its blocks' counts. The last block
//! is cut at a token boundary so the whole prompt tokenizes to exactly `input_length`; the count is always
//! verified by encoding the finished prompt, and that true count is emitted as `prompt_length`.
//!
//! Memory: the cache holds each distinct hash id's text once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;

use rand::Rng;
use serde_json::Value;

use super::group::{GroupEmitter, keyed_rng};
use super::rows::{RowReader, TraceRow, json_len};
use rayon::prelude::*;

use crate::domain::emit::{Collector, GenerateError, GenerateInput};
use crate::domain::exact::{SEPARATOR, fit_prefix};
use crate::domain::files::InputError;
use crate::domain::lengths::TokenizedDataset;
use crate::domain::sample::filler_text;
use crate::domain::spec::ValidatedSpec;
use crate::domain::tokenizer::{TokenCounter, TokenizerError};
use crate::domain::writer::{Entry, EntrySink, Request};

pub use super::spec::MIN_BLOCK_SIZE;

/// Streaming reader of a Mooncake JSONL trace.
pub struct MooncakeReader<R: BufRead> {
    r: R,
    buf: Vec<u8>,
    line: u64,
    file: String,
    done: bool,
}

impl<R: BufRead> MooncakeReader<R> {
    /// A reader over `r`, named `file` in errors.
    pub fn new(r: R, file: &str) -> Self {
        Self {
            r,
            buf: Vec::with_capacity(4096),
            line: 0,
            file: file.to_string(),
            done: false,
        }
    }

    fn parse(&self) -> Result<TraceRow, InputError> {
        let at =
            |field: Option<&str>, why: String| InputError::at(&self.file, self.line, field, why);
        let v: Value = serde_json::from_slice(&self.buf)
            .map_err(|e| at(None, format!("not valid JSON: {e}")))?;
        let Value::Object(o) = v else {
            return Err(at(None, "expected a JSON object".into()));
        };
        let time_ms = match o.get("timestamp") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(other) => {
                return Err(at(
                    Some("timestamp"),
                    format!("must be a number of ms, got {other}"),
                ));
            }
            None => return Err(at(Some("timestamp"), "is missing".into())),
        };
        if !time_ms.is_finite() {
            return Err(at(
                Some("timestamp"),
                "must be a finite number of ms".into(),
            ));
        }
        let input_len = json_len(o.get("input_length")).map_err(|w| at(Some("input_length"), w))?;
        let output_len =
            json_len(o.get("output_length")).map_err(|w| at(Some("output_length"), w))?;
        let hash_ids = match o.get("hash_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|h| {
                    h.as_u64().ok_or_else(|| {
                        at(
                            Some("hash_ids"),
                            format!("must hold non-negative integers, got {h}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(at(
                    Some("hash_ids"),
                    format!("must be an array, got {other}"),
                ));
            }
        };
        Ok(TraceRow {
            line: self.line,
            time_us: (time_ms * 1000.0).round() as i64,
            input_len,
            output_len: Some(output_len),
            session: None,
            hash_ids,
        })
    }
}

impl<R: BufRead> Iterator for MooncakeReader<R> {
    type Item = Result<TraceRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.r.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.trim_ascii().is_empty() {
                        continue;
                    }
                    let r = self.parse();
                    self.done = r.is_err();
                    return Some(r);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(InputError::at(
                        &self.file,
                        self.line + 1,
                        None,
                        format!("cannot read: {e}"),
                    )));
                }
            }
        }
        None
    }
}

impl<R: BufRead> RowReader for MooncakeReader<R> {}

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

/// Block texts by hash id: each built once, deterministic from (seed, hash id).
pub struct BlockCache<'a> {
    tok: &'a TokenCounter,
    pool: Vec<u32>,
    seed: u64,
    block_size: u32,
    blocks: HashMap<u64, Block>,
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
    /// A cache building blocks of `block_size` tokens from `pool` (see [`token_pool`]).
    pub fn new(tok: &'a TokenCounter, pool: Vec<u32>, seed: u64, block_size: u32) -> Self {
        Self {
            tok,
            pool,
            seed,
            block_size,
            blocks: HashMap::new(),
        }
    }

    /// Number of distinct blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when no block was built yet.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
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
        if !self.blocks.contains_key(&h) {
            let b = self.headed(&block_header(h), h, self.block_size)?;
            self.blocks.insert(h, b);
        }
        Ok(())
    }

    /// The block text of hash id `h` (exactly `block_size` tokens, cached).
    pub fn block(&mut self, h: u64) -> Result<&str, TokenizerError> {
        self.ensure(h)?;
        Ok(&self.blocks[&h].text)
    }

    /// The first `tokens` tokens of hash id `h`'s block, cut at a token boundary, with its verified count.
    /// The body's pool ids are reused, so the block is not encoded again.
    pub fn block_prefix(&mut self, h: u64, tokens: u32) -> Result<(String, u32), TokenizerError> {
        self.ensure(h)?;
        self.cut(h, tokens)
    }

    /// [`Self::block_prefix`] of a cached block.
    fn cut(&self, h: u64, tokens: u32) -> Result<(String, u32), TokenizerError> {
        let b = &self.blocks[&h];
        let mut ids = self.tok.encode(&block_header(h), false)?;
        ids.extend(self.window(b.off as usize, b.k as usize));
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
    fn assemble(
        &self,
        hash_ids: &[u64],
        content: u32,
        line: u64,
    ) -> Result<(String, u32), TokenizerError> {
        let b = self.block_size;
        let full = (content / b) as usize;
        let mut text = String::new();
        let mut count = 0;
        for &h in hash_ids.iter().take(full) {
            let block = &self.blocks[&h];
            text.push_str(&block.text);
            count += block.count;
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

/// Mooncake prompts from block texts.
pub(super) struct BlockEmitter<'a> {
    tok: &'a TokenCounter,
    cache: BlockCache<'a>,
    add_special: bool,
    special: u32,
    /// Encode every finished prompt to count it (when the probe found concatenation unstable).
    verify_all: bool,
}

impl<'a> BlockEmitter<'a> {
    /// Encodes the text pool and probes the tokenizer for token-stable block concatenation.
    pub(super) fn new(
        spec: &ValidatedSpec,
        trace: &super::spec::TraceSpec,
        input: &GenerateInput<'a>,
    ) -> Result<Self, GenerateError> {
        let s = spec.spec();
        let block_size = trace.block_size;
        let tok = input.tokenizer;
        let special = tok.count("", s.add_special_tokens)?;
        let pool = token_pool(tok, input.data, POOL_TOKENS.max(block_size as usize * 8))?;
        let mut cache = BlockCache::new(tok, pool, spec.seed(), block_size);
        let verify_all = !cache.concatenation_is_stable()?;
        Ok(Self {
            tok,
            cache,
            add_special: s.add_special_tokens,
            special,
            verify_all,
        })
    }
}

impl GroupEmitter for BlockEmitter<'_> {
    fn emit(
        &mut self,
        ts: u64,
        rows: &[TraceRow],
        sink: &mut dyn EntrySink,
        c: &mut Collector,
    ) -> Result<bool, GenerateError> {
        let all: Vec<u64> = rows
            .iter()
            .flat_map(|r| r.hash_ids.iter().copied())
            .collect();
        self.cache.prepare(&all)?;
        let cache = &self.cache;
        let special = self.special;
        let built: Vec<(String, u32)> = rows
            .par_iter()
            .map(|row| {
                cache.assemble(
                    &row.hash_ids,
                    row.input_len.saturating_sub(special),
                    row.line,
                )
            })
            .collect::<Result<_, _>>()?;
        let mut requests = Vec::with_capacity(rows.len());
        for (row, (text, pieces)) in rows.iter().zip(built) {
            // Every piece's count was verified when it was built and concatenation is stable (probed), so the
            // prompt's count is the sum of its pieces; otherwise count the whole prompt.
            let n = if self.verify_all {
                self.tok.count(&text, self.add_special)?
            } else {
                pieces + self.special
            };
            c.err.add(n, row.input_len);
            requests.push(Request {
                prompt: Cow::Owned(text),
                prompt_length: n,
                output_length: row.output_len,
                session_id: None,
                agent: None,
            });
        }
        let entry = Entry {
            timestamp: ts,
            requests,
            extra: None,
        };
        sink.entry(&entry)?;
        c.entry(&entry);
        Ok(true)
    }

    fn finish(&mut self, c: &mut Collector) {
        c.s.notes.push(format!(
            "{} distinct KV blocks of {} tokens were built",
            self.cache.len(),
            self.cache.block_size
        ));
        if self.verify_all {
            c.s.notes.push(
                "this tokenizer merges tokens across block boundaries; each prompt was counted by encoding it, \
                 and prompt_length is that count"
                    .to_string(),
            );
        }
    }
}
