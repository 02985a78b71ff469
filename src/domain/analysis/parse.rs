//! The borrowing entry parser: a workload entry deserialized straight from its line (prompts borrowed when
//! they have no escapes) and reduced to a [`Digests`] arena of what the fold needs.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hasher;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::model::BlockBasis;
use super::prefix::{SEED, hash_block};
use crate::domain::tokenizer::TokenCounter;

/// A length value: integer, float (floored), null or NaN.
#[derive(Debug, Clone, Copy)]
pub(super) enum Len {
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
pub(super) struct Text<'a>(pub(super) Cow<'a, [u8]>);

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
pub(super) struct SessionKey {
    pub(super) key: u64,
    pub(super) label: String,
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
pub(super) struct RawRequest<'a> {
    #[serde(borrow, default)]
    pub(super) prompt: Option<Text<'a>>,
    #[serde(default)]
    pub(super) prompt_length: Option<Len>,
    #[serde(default, rename = "Prompt Length")]
    pub(super) legacy_prompt_length: Option<Len>,
    #[serde(default)]
    pub(super) output_length: Option<Len>,
    #[serde(default, rename = "Output Length")]
    pub(super) legacy_output_length: Option<Len>,
    #[serde(default)]
    pub(super) session_id: Option<SessionKey>,
}

#[derive(Deserialize)]
pub(super) struct RawEntry<'a> {
    pub(super) timestamp: Len,
    #[serde(borrow, default)]
    pub(super) requests: Vec<RawRequest<'a>>,
}

/// One request reduced to what the fold needs.
#[derive(Debug)]
pub(super) struct ReqDigest {
    pub(super) prompt_len: Option<u64>,
    pub(super) output_len: Option<u64>,
    pub(super) session: Option<SessionKey>,
    /// Prompt units (bytes or tokens), when there is a prompt.
    pub(super) units: Option<u64>,
    /// Chained hashes of the full blocks: a range of [`Digests::blocks`].
    pub(super) blocks: (u32, u32),
}

/// Digests of a run of entries, in arenas (no allocation per entry).
#[derive(Debug, Default)]
pub(super) struct Digests {
    /// (timestamp, end of its requests in `reqs`).
    pub(super) entries: Vec<(u64, u32)>,
    pub(super) reqs: Vec<ReqDigest>,
    pub(super) blocks: Vec<u64>,
    /// Newlines in the chunk (line numbers of later chunks).
    pub(super) newlines: u64,
    /// The first error: (1-based line within the chunk, field, why).
    pub(super) error: Option<(u64, Option<&'static str>, String)>,
}

impl Digests {
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.reqs.clear();
        self.blocks.clear();
    }
}

/// How a digest step failed: (field, why).
pub(super) type DigestError = (Option<&'static str>, String);

pub(super) struct Digester<'a> {
    pub(super) basis: BlockBasis,
    pub(super) block: usize,
    pub(super) tokenizer: Option<&'a TokenCounter>,
    pub(super) add_special_tokens: bool,
}

impl Digester<'_> {
    pub(super) fn digest(&self, e: RawEntry<'_>, out: &mut Digests) -> Result<(), DigestError> {
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

    pub(super) fn requests(
        &self,
        reqs: Vec<RawRequest<'_>>,
        out: &mut Digests,
    ) -> Result<(), DigestError> {
        for r in reqs {
            let len = |v: Option<Len>, legacy: Option<Len>, field: &'static str| match v.or(legacy)
            {
                // Token counts are u32 everywhere else; a larger one would overflow the sums.
                Some(Len::Value(v)) if v > u64::from(u32::MAX) => Err((
                    Some(field),
                    format!("must be at most {} (the largest token count)", u32::MAX),
                )),
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

    pub(super) fn blocks(&self, prompt: &[u8], out: &mut Vec<u64>) -> Result<u64, DigestError> {
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
