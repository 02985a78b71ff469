//! Prompts of the model calls: an anonymous prefix naming the session and node, then a repeated filler, cut
//! to the target number of tokens, as the reference's tokenizer-aware prompt factory builds them.
//!
//! The reference reports the re-tokenized length, which can differ slightly from the target. Here the text
//! is re-encoded and, if its length is off, corrected (cut or extended with filler tokens and decoded again)
//! until it re-tokenizes to exactly the target. Every step is O(target): no string is re-encoded while it
//! grows.

use super::super::tokenizer::{TokenCounter, TokenizerError};

/// The filler text appended after the prefix.
pub const FILLER: &str = " synthetic agent context";

/// Attempts at correcting a text whose re-encoding has the wrong length.
const MAX_CORRECTIONS: usize = 8;

/// The anonymous prefix of a model call's prompt.
pub fn prefix(session_id: &str, node_id: &str) -> String {
    format!(
        "Anonymous synthetic Agent session {session_id}, node {node_id}. No production content is included. "
    )
}

/// Builds the prompt of a model call.
pub trait PromptFactory {
    /// A prompt for `session_id`/`node_id` of `target` tokens, and its length as reported in the workload.
    fn prompt(
        &mut self,
        session_id: &str,
        node_id: &str,
        target: u32,
    ) -> Result<(String, u32), TokenizerError>;
}

/// The tokenizer-aware factory: prompts re-tokenize (without special tokens) to exactly the target.
#[derive(Debug)]
pub struct TokenizerPrompts<'a> {
    tok: &'a TokenCounter,
    filler: Vec<u32>,
    ids: Vec<u32>,
}

impl<'a> TokenizerPrompts<'a> {
    /// Prepares the filler ids; fails when the filler encodes to no token at all.
    pub fn new(tok: &'a TokenCounter) -> Result<Self, TokenizerError> {
        let filler = tok.encode(FILLER, false)?;
        if filler.is_empty() {
            return Err(TokenizerError::Encode(format!(
                "tokenizer '{}' encodes the agent filler {FILLER:?} to zero tokens",
                tok.id()
            )));
        }
        Ok(Self {
            tok,
            filler,
            ids: Vec::new(),
        })
    }

    /// Cuts `self.ids` to `target` or extends it with filler ids (cycled) up to `target`.
    fn fit(&mut self, target: usize) {
        if self.ids.len() >= target {
            self.ids.truncate(target);
            return;
        }
        let missing = target - self.ids.len();
        self.ids.reserve(missing);
        self.ids
            .extend(self.filler.iter().copied().cycle().take(missing));
    }
}

impl PromptFactory for TokenizerPrompts<'_> {
    fn prompt(
        &mut self,
        session_id: &str,
        node_id: &str,
        target: u32,
    ) -> Result<(String, u32), TokenizerError> {
        let target_len = target as usize;
        // Reference: prefix ids, then the filler ids repeated, cut to the target, decoded.
        self.ids = self.tok.encode(&prefix(session_id, node_id), false)?;
        self.fit(target_len);
        let mut text = self.tok.decode(&self.ids)?;
        for _ in 0..MAX_CORRECTIONS {
            self.ids = self.tok.encode(&text, false)?;
            if self.ids.len() == target_len {
                return Ok((text, target));
            }
            self.fit(target_len);
            text = self.tok.decode(&self.ids)?;
        }
        Err(TokenizerError::Encode(format!(
            "tokenizer '{}' could not build an agent prompt of exactly {target} tokens (decode/encode is not \
             length-stable for node {node_id})",
            self.tok.id()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_retokenize_to_exactly_the_target() {
        let tok = TokenCounter::embedded();
        let mut f = TokenizerPrompts::new(&tok).unwrap();
        let sid = "session_eadd5b688ee68e19";
        let nid = "node_9b5f4304e8a7c333";
        let prefix_len = tok.encode(&prefix(sid, nid), false).unwrap().len() as u32;
        // Shorter than the prefix, around it, and long.
        for target in (1..=prefix_len + 8).chain([100, 512, 1000, 4096, 20_000]) {
            let (text, len) = f.prompt(sid, nid, target).unwrap();
            assert_eq!(len, target);
            assert_eq!(
                tok.count(&text, false).unwrap(),
                target,
                "{target}: {text:?}"
            );
        }
        let (text, _) = f.prompt(sid, nid, 200).unwrap();
        assert!(text.starts_with(&prefix(sid, nid)), "{text}");
        assert!(
            text.ends_with(" synthetic agent context")
                || text.ends_with(" agent")
                || text.ends_with(" synthetic")
        );
    }

    #[test]
    fn an_empty_filler_is_refused() {
        // A word-level tokenizer that only knows "a": the filler becomes [UNK] tokens, which decode to nothing
        // with special tokens skipped; with no vocabulary at all the filler encodes to zero tokens.
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
          "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
          "model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#;
        let tok = TokenCounter::from_json_bytes("tiny", json.as_bytes()).unwrap();
        assert!(TokenizerPrompts::new(&tok).is_ok());
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
          "pre_tokenizer":{"type":"Split","pattern":{"Regex":".*"},"behavior":"Removed","invert":false},
          "post_processor":null,"decoder":null,
          "model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#;
        let tok = TokenCounter::from_json_bytes("empty", json.as_bytes()).unwrap();
        let e = TokenizerPrompts::new(&tok).unwrap_err().to_string();
        assert!(e.contains("zero tokens"), "{e}");
    }
}
