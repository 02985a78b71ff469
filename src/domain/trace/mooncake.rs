//! Mooncake traces (FAST'25): JSONL `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`,
//! where each hash id names one KV block of `block_size` tokens (512 in the release).
//!
//! Each hash id maps to one block text of exactly `block_size` tokens, built deterministically from (seed,
//! hash id) out of the prompt collection's words (the built-in sample when no collection is given; see
//! `blocks` for the construction). Requests whose `hash_ids` share a prefix therefore share a
//! byte-identical text prefix, and a prefix cache sees the reuse the trace describes.
//!
//! Concatenation is token-stable: every block starts with a letter and ends with `\n`, and the pre-tokenizers
//! of byte-level BPE tokenizers (GPT-2/Qwen/Llama-3 style) end a piece at a newline that is followed by a
//! letter, so no token spans two blocks and the prompt's token count is the sum of its pieces' counts. The last
//! block is cut after a word so the whole prompt tokenizes to exactly `input_length`. A probe checks
//! concatenation once per run; if this tokenizer fails it, every finished prompt is encoded and its true count
//! is emitted as `prompt_length`.

use std::borrow::Cow;
use std::io::BufRead;

use serde_json::Value;

use super::group::GroupEmitter;
use super::rows::{RowReader, TraceRow, json_len};
use rayon::prelude::*;

use crate::domain::emit::{Collector, GenerateError, GenerateInput};
use crate::domain::files::InputError;
use crate::domain::spec::ValidatedSpec;
use crate::domain::tokenizer::TokenCounter;
use crate::domain::writer::{Entry, EntrySink, Request};

pub use super::blocks::{BlockCache, POOL_TOKENS, block_header, token_pool};
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
        let mut cache = BlockCache::new(tok, pool, spec.seed(), block_size)?;
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
