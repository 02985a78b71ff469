//! Prompts of the model calls: an anonymous prefix naming the session and node, then a repeated filler, cut
//! to the target number of tokens, as the reference's tokenizer-aware prompt factory builds them.
//!
//! The reference reports the re-tokenized length, which can differ slightly from the target. Here the text
//! is re-encoded and, if its length is off, corrected (cut or extended with filler tokens and decoded again)
//! until it re-tokenizes to exactly the target. Every step is O(target): no string is re-encoded while it
//! grows.

use super::super::fit::{self, Moves, Policy};
use super::super::tokenizer::{TokenCounter, TokenizerError};

/// The filler text appended after the prefix.
pub const FILLER: &str = " synthetic agent context";

/// Attempts at correcting a text whose re-encoding has the wrong length (each is O(target); real tokenizers
/// need none or one, a filler whose tokens partly vanish on decoding converges geometrically).
const CORRECTIONS: Policy = Policy {
    rounds: 24,
    moves: Moves::Sequential,
};

/// The anonymous prefix of a model call's prompt.
pub fn prefix(session_id: &str, node_id: &str) -> String {
    format!(
        "Anonymous synthetic Agent session {session_id}, node {node_id}. No production content is included. "
    )
}

/// Builds the prompt of a model call (called from several threads at once).
pub trait PromptFactory: Sync {
    /// A prompt for `session_id`/`node_id` of `target` tokens, and its length as reported in the workload.
    fn prompt(
        &self,
        session_id: &str,
        node_id: &str,
        target: u32,
    ) -> Result<(String, u32), TokenizerError>;
}

/// Encoding and decoding without special tokens (the [`TokenCounter`]; a stand-in in tests).
pub trait Codec: Sync {
    /// Token ids of `text`, without special tokens.
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// Text of `ids`, special tokens skipped.
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError>;
    /// Name for messages.
    fn name(&self) -> &str;
}

impl Codec for TokenCounter {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        TokenCounter::encode(self, text, false)
    }
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        TokenCounter::decode(self, ids)
    }
    fn name(&self) -> &str {
        self.id()
    }
}

/// The tokenizer-aware factory: prompts re-tokenize (without special tokens) to exactly the target.
#[derive(Debug)]
pub struct TokenizerPrompts<'a, C: Codec + ?Sized = TokenCounter> {
    tok: &'a C,
    filler: Vec<u32>,
}

impl<'a, C: Codec + ?Sized> TokenizerPrompts<'a, C> {
    /// Prepares the filler ids; fails when the filler encodes to no token at all.
    pub fn new(tok: &'a C) -> Result<Self, TokenizerError> {
        let filler = tok.encode(FILLER)?;
        if filler.is_empty() {
            return Err(TokenizerError::Encode(format!(
                "tokenizer '{}' encodes the agent filler {FILLER:?} to zero tokens",
                tok.name()
            )));
        }
        Ok(Self { tok, filler })
    }

    /// Cuts `ids` to `target` or extends it with filler ids (cycled, starting at filler position `phase`) up
    /// to `target`.
    fn fit(&self, ids: &mut Vec<u32>, target: usize, phase: usize) {
        if ids.len() >= target {
            ids.truncate(target);
            return;
        }
        let missing = target - ids.len();
        ids.reserve(missing);
        ids.extend(
            self.filler
                .iter()
                .copied()
                .cycle()
                .skip(phase)
                .take(missing),
        );
    }
}

impl<C: Codec + ?Sized> PromptFactory for TokenizerPrompts<'_, C> {
    fn prompt(
        &self,
        session_id: &str,
        node_id: &str,
        target: u32,
    ) -> Result<(String, u32), TokenizerError> {
        let target_len = target as usize;
        // Reference: prefix ids, then the filler ids repeated, cut to the target, decoded.
        let mut ids = self.tok.encode(&prefix(session_id, node_id))?;
        self.fit(&mut ids, target_len, 0);
        let mut text = self.tok.decode(&ids)?;
        // Re-encode; when the length is off (decode/encode not length-stable), cut or extend and decode again.
        // Each attempt starts the filler at another position, so no single token can stall it.
        let fitted = fit::fit(CORRECTIONS, target, 1, |attempt| {
            let mut ids = self.tok.encode(&text)?;
            let got = ids.len() as u32;
            if ids.len() != target_len {
                self.fit(&mut ids, target_len, attempt % self.filler.len());
                text = self.tok.decode(&ids)?;
            }
            Ok::<_, TokenizerError>(((), got))
        })?;
        if fitted.is_some_and(|f| f.exact) {
            return Ok((text, target));
        }
        Err(TokenizerError::Encode(format!(
            "tokenizer '{}' could not build an agent prompt of exactly {target} tokens (decode/encode is not \
             length-stable for node {node_id})",
            self.tok.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_retokenize_to_exactly_the_target() {
        let tok = TokenCounter::embedded();
        let f = TokenizerPrompts::new(&tok).unwrap();
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

    /// One id per character, plus id 1000 = "ab" that encoding never produces, and id 1001 = "<s>", a special
    /// token that decoding skips.
    struct Chars;

    impl Codec for Chars {
        fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
            Ok(text.chars().map(|c| c as u32).collect())
        }
        fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
            Ok(ids
                .iter()
                .map(|&i| match i {
                    1000 => "ab".to_string(),
                    1001 => String::new(),
                    c => char::from_u32(c).unwrap().to_string(),
                })
                .collect())
        }
        fn name(&self) -> &str {
            "chars"
        }
    }

    #[test]
    fn lengths_that_move_on_re_encoding_are_corrected() {
        let mut f = TokenizerPrompts::new(&Chars).unwrap();
        // Merged tokens re-encode longer: the text is cut and decoded again.
        f.filler = vec![1000];
        for target in [1, 60, 150, 400] {
            let (text, len) = f.prompt("s", "n", target).unwrap();
            assert_eq!(
                (len, text.chars().count()),
                (target, target as usize),
                "{text}"
            );
        }
        // Skipped special tokens re-encode shorter: the text is extended with filler and decoded again.
        f.filler = vec![1001, 'x' as u32];
        let (text, len) = f.prompt("s", "n", 300).unwrap();
        assert_eq!((len, text.chars().count()), (300, 300));
        assert!(text.ends_with("xxx"), "{text}");
        // A filler that decodes to nothing can never reach the target: a clear error, no endless loop.
        f.filler = vec![1001];
        let e = f.prompt("s", "n", 300).unwrap_err().to_string();
        assert!(e.contains("exactly 300 tokens"), "{e}");
    }

    #[test]
    fn an_empty_filler_is_refused() {
        // A pre-tokenizer that removes everything: the filler encodes to zero tokens (reference: ValueError).
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
          "pre_tokenizer":{"type":"Split","pattern":{"Regex":".*"},"behavior":"Removed","invert":false},
          "post_processor":null,"decoder":null,
          "model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#;
        let tok = TokenCounter::from_json_bytes("empty", json.as_bytes()).unwrap();
        let e = TokenizerPrompts::new(&tok).unwrap_err().to_string();
        assert!(e.contains("zero tokens"), "{e}");
    }
}
