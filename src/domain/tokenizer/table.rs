//! The stepped ByteLevel decode's table: every id's bytes, built from the tokenizer file.

use std::collections::HashMap;

use super::bpe::Str;

/// Every id's bytes as the ByteLevel decoder produces them, and whether the id is a special token.
pub(super) struct DecodeTable {
    pub(super) bytes: Vec<u8>,
    pub(super) ends: Vec<u32>,
    pub(super) special: Vec<bool>,
    pub(super) known: Vec<bool>,
}

impl DecodeTable {
    /// The table of the model's vocabulary and the file's added tokens (an added token's content wins for
    /// its id, and a token is special when its text is that of a special added token, as `id_to_token` and
    /// `is_special_token` decide). `None` when an id is implausibly large.
    pub(super) fn of(
        vocab: &HashMap<Str<'_>, u32>,
        added: &serde_json::Value,
        char_byte: &HashMap<char, u8>,
    ) -> Option<Self> {
        let added: Vec<(u32, &str, bool)> = added
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        Some((
                            u32::try_from(t["id"].as_u64()?).ok()?,
                            t["content"].as_str()?,
                            t["special"].as_bool().unwrap_or(false),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let n = vocab
            .values()
            .copied()
            .chain(added.iter().map(|a| a.0))
            .max()
            .map_or(0, |m| m as usize + 1);
        if n > 1 << 24 {
            return None;
        }
        let mut token: Vec<Option<&str>> = vec![None; n];
        for (t, &id) in vocab {
            token[id as usize] = Some(std::borrow::Borrow::<str>::borrow(t));
        }
        for &(id, content, _) in &added {
            token[id as usize] = Some(content);
        }
        let special_text: std::collections::HashSet<&str> =
            added.iter().filter(|a| a.2).map(|a| a.1).collect();
        let mut t = DecodeTable {
            bytes: Vec::with_capacity(n * 7),
            ends: Vec::with_capacity(n + 1),
            special: Vec::with_capacity(n),
            known: Vec::with_capacity(n),
        };
        t.ends.push(0);
        for tok in &token {
            t.known.push(tok.is_some());
            t.special
                .push(tok.is_some_and(|s| special_text.contains(s)));
            if let Some(s) = tok {
                token_bytes(char_byte, s, &mut t.bytes);
            }
            t.ends.push(t.bytes.len() as u32);
        }
        t.bytes.shrink_to_fit();
        Some(t)
    }
}

/// Appends the bytes of `token` as the ByteLevel decoder gives them: every char through the byte table, or
/// the token's own UTF-8 bytes when one of its chars is not in the table.
fn token_bytes(char_byte: &HashMap<char, u8>, token: &str, out: &mut Vec<u8>) {
    let start = out.len();
    for c in token.chars() {
        match char_byte.get(&c) {
            Some(&b) => out.push(b),
            None => {
                out.truncate(start);
                out.extend_from_slice(token.as_bytes());
                return;
            }
        }
    }
}
