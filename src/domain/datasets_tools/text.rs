//! Text of an exact token length, in O(L) per text.
//!
//! A [`TextSource`] is a corpus encoded **once** (the built-in sample text, or a prompt collection). A text of
//! `n` tokens is cut from it as a window of token ids starting at a word boundary, decoded, and re-encoded to
//! verify the count. Decoding and re-encoding a window is not always length-stable (a window edge can split a
//! character or a word that re-merges), so [`ExactText::build`] corrects the window length by the observed
//! difference and retries a bounded number of times, then tries other windows. A text is never grown by
//! re-encoding a growing string.
//!
//! [`ExactText::build`] can also extend a fixed head (a shared prefix): the **whole** text `head + tail` is
//! counted and only the tail is adjusted, so the total is exact even where the boundary tokenizes differently.

use std::collections::HashMap;

use rand::Rng;
use rayon::prelude::*;
use thiserror::Error;

use crate::domain::fit::{self, Moves, Policy, Trim};
use crate::domain::sample::filler_text;
use crate::domain::tokenizer::{TokenCounter, TokenizerError};

/// Windows tried before giving up on a length.
const MAX_WINDOWS: usize = 8;
/// Length corrections tried per window: the window length moves by the miss, a repeated length ends it.
const WINDOW_POLICY: Policy = Policy {
    rounds: 4,
    moves: Moves::StopOnRepeat,
};
/// Corpus cap for prompt collections (characters): enough variety, bounded memory and start-up time.
const MAX_CORPUS_CHARS: usize = 4 << 20;
/// Size of the pieces a corpus is encoded in (bytes).
const PIECE: usize = 64 << 10;
/// Words of built-in text in a corpus (about 1.3 tokens per word).
const BUILTIN_WORDS: usize = 120_000;

/// Why an exact-length text could not be built.
#[derive(Debug, Error)]
pub enum TextError {
    /// Tokenization failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// No window of the source gave the exact length.
    #[error(
        "could not build a text of exactly {target} tokens from the source '{source_name}' after {windows} windows"
    )]
    NotExact {
        /// The requested token count.
        target: u32,
        /// The source's name.
        source_name: String,
        /// Windows tried.
        windows: usize,
    },
    /// The head alone is already longer than the target, or the target is below the special tokens' count.
    #[error("a text of {target} tokens cannot hold {minimum} tokens (head and special tokens)")]
    TooShort {
        /// The requested token count.
        target: u32,
        /// Tokens that are there anyway.
        minimum: u32,
    },
    /// The source holds no text.
    #[error("the text source '{0}' is empty")]
    EmptySource(String),
}

/// A corpus of token ids cut into exact-length texts.
#[derive(Debug, Clone)]
pub struct TextSource {
    name: String,
    ids: Vec<u32>,
    /// Positions whose token starts a word (begins with whitespace): windows start there.
    starts: Vec<u32>,
}

impl TextSource {
    /// The built-in sample text (deterministic for `seed`), about 150,000 tokens.
    pub fn builtin(tok: &TokenCounter, seed: u64) -> Result<Self, TextError> {
        let text = filler_text(seed, BUILTIN_WORDS);
        Self::from_text(tok, "builtin:sample", &text)
    }

    /// A corpus of `texts` (e.g. the prompts of a collection) joined by blank lines, capped at 4 MiB of text.
    pub fn from_texts<S: AsRef<str>>(
        tok: &TokenCounter,
        name: &str,
        texts: &[S],
    ) -> Result<Self, TextError> {
        let mut corpus = String::new();
        for t in texts {
            let t = t.as_ref().trim();
            if t.is_empty() {
                continue;
            }
            if !corpus.is_empty() {
                corpus.push_str("\n\n");
            }
            corpus.push_str(t);
            if corpus.len() >= MAX_CORPUS_CHARS {
                break;
            }
        }
        Self::from_text(tok, name, &corpus)
    }

    /// A corpus of one text.
    pub fn from_text(tok: &TokenCounter, name: &str, text: &str) -> Result<Self, TextError> {
        // Encoded in parallel in pieces of about 64 KiB cut after blank lines or spaces (a window never needs
        // the exact encoding of the whole corpus: every text cut from it is verified).
        let mut pieces = Vec::new();
        let mut rest = text;
        while rest.len() > PIECE {
            let mut cut = PIECE;
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let end = rest[cut..]
                .find("\n\n")
                .or_else(|| rest[cut..].find(' '))
                .map(|i| cut + i)
                .unwrap_or(rest.len());
            pieces.push(&rest[..end]);
            rest = &rest[end..];
        }
        pieces.push(rest);
        let ids: Vec<u32> = pieces
            .par_iter()
            .map(|p| tok.encode(p, false))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        if ids.is_empty() {
            return Err(TextError::EmptySource(name.to_string()));
        }
        let mut word_start: HashMap<u32, bool> = HashMap::new();
        let mut starts = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let ws = match word_start.get(&id) {
                Some(&b) => b,
                None => {
                    let s = tok.decode(&[id])?;
                    let b = s.starts_with(' ')
                        && s.trim().chars().next().is_some_and(char::is_alphanumeric);
                    word_start.insert(id, b);
                    b
                }
            };
            if ws {
                starts.push(i as u32);
            }
        }
        if starts.len() < 64 {
            starts = (0..ids.len() as u32).collect();
        }
        Ok(Self {
            name: name.to_string(),
            ids,
            starts,
        })
    }

    /// The source's name (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of tokens in the corpus.
    pub fn tokens(&self) -> usize {
        self.ids.len()
    }

    /// `n` ids from position `start`, wrapping around the corpus.
    fn window(&self, start: usize, n: usize, out: &mut Vec<u32>) {
        out.clear();
        let len = self.ids.len();
        let mut pos = start % len;
        while out.len() < n {
            let take = (n - out.len()).min(len - pos);
            out.extend_from_slice(&self.ids[pos..pos + take]);
            pos = 0;
        }
    }
}

/// A text and its token ids (as counted, special tokens included when enabled).
#[derive(Debug, Clone, PartialEq)]
pub struct Exact {
    /// The text.
    pub text: String,
    /// Its token ids; `ids.len()` is the exact target.
    pub ids: Vec<u32>,
}

/// A shared head prepared by [`ExactText::head`].
#[derive(Debug, Clone)]
pub struct Head {
    exact: Exact,
    /// The head's last word(s), and their ids on their own.
    ctx: String,
    ctx_ids: Vec<u32>,
}

impl Head {
    /// The head's text and ids.
    pub fn exact(&self) -> &Exact {
        &self.exact
    }
}

/// Builds texts of exact token counts from a [`TextSource`].
#[derive(Debug, Clone)]
pub struct ExactText<'a> {
    tok: &'a TokenCounter,
    source: &'a TextSource,
    add_special_tokens: bool,
    specials: u32,
    /// Special tokens (if any) only go before the text, so a head's ids can be followed by a tail's.
    prepend_only: bool,
}

impl<'a> ExactText<'a> {
    /// Counts with `tok` (`add_special_tokens` as when the collection is loaded) and cuts from `source`.
    pub fn new(
        tok: &'a TokenCounter,
        source: &'a TextSource,
        add_special_tokens: bool,
    ) -> Result<Self, TextError> {
        let specials = tok.count("", add_special_tokens)?;
        let with = tok.encode("a b", add_special_tokens)?;
        let without = tok.encode("a b", false)?;
        Ok(Self {
            tok,
            source,
            add_special_tokens,
            specials,
            prepend_only: with.ends_with(&without),
        })
    }

    /// Tokens a text gets anyway (e.g. a BOS token).
    pub fn special_tokens(&self) -> u32 {
        self.specials
    }

    /// The token ids of `text`, counted as the collection loader counts them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TextError> {
        Ok(self.tok.encode(text, self.add_special_tokens)?)
    }

    /// A text of exactly `target` tokens that starts with `head` (byte-identical), whose own count is
    /// `head_tokens` (`None`: counted here). With an empty head the text is cut from the source alone. The
    /// whole text is re-encoded to verify the count (O(length of head + tail)); see [`ExactText::extend`]
    /// for a head shared by many texts.
    pub fn build(
        &self,
        head: &str,
        head_tokens: Option<u32>,
        target: u32,
        rng: &mut impl Rng,
    ) -> Result<Exact, TextError> {
        let head_tokens = match (head.is_empty(), head_tokens) {
            (true, _) => self.specials,
            (false, Some(n)) => n,
            (false, None) => self.tok.count(head, self.add_special_tokens)?,
        };
        if target < head_tokens {
            return Err(TextError::TooShort {
                target,
                minimum: head_tokens,
            });
        }
        let want = target - head_tokens;
        if want == 0 {
            let ids = self.encode(head)?;
            if ids.len() == target as usize {
                return Ok(Exact {
                    text: head.to_string(),
                    ids,
                });
            }
        }
        for _ in 0..MAX_WINDOWS {
            if let Some(e) = self.try_window(
                head,
                target,
                want,
                self.add_special_tokens,
                head.is_empty(),
                rng,
            )? {
                return Ok(e);
            }
        }
        Err(self.not_exact(target))
    }

    /// Prepares `head` (a shared prefix) for [`ExactText::extend`]: its last word(s) are kept with their
    /// token ids as the context in which tails are verified.
    pub fn head(&self, head: Exact) -> Result<Head, TextError> {
        const SPAN: usize = 48;
        let text = &head.text;
        let mut h = text.len().saturating_sub(SPAN);
        while !text.is_char_boundary(h) {
            h += 1;
        }
        let mut ctx = &text[h..];
        if h > 0
            && let Some(ws) = ctx.find(char::is_whitespace)
        {
            ctx = &ctx[ws..];
        }
        let ctx = ctx.to_string();
        let ctx_ids = self.tok.encode(&ctx, false)?;
        Ok(Head {
            exact: head,
            ctx,
            ctx_ids,
        })
    }

    /// A text of exactly `target` tokens that starts with `head` (byte-identical), in O(tail) instead of
    /// O(head + tail). The tail is a window of the source starting at a word boundary, encoded together with
    /// the head's last word(s): it is accepted when those words keep their ids, i.e. when the boundary
    /// tokenizes additively (with regex pre-tokenizers such as Qwen's and Llama's a word boundary does;
    /// pre-tokenization does not look further back than the previous word). The tail's length is corrected
    /// and other windows tried as in [`ExactText::build`]; when no window passes, or when the tokenizer adds
    /// special tokens after the text, the whole text is verified as [`ExactText::build`] does. The returned
    /// ids are the head's followed by the tail's.
    pub fn extend(&self, head: &Head, target: u32, rng: &mut impl Rng) -> Result<Exact, TextError> {
        let full = &head.exact;
        let head_n = full.ids.len() as u32;
        if target < head_n {
            return Err(TextError::TooShort {
                target,
                minimum: head_n,
            });
        }
        if full.text.is_empty() || !self.prepend_only {
            return self.build(&full.text, Some(head_n), target, rng);
        }
        if target == head_n {
            return Ok(full.clone());
        }
        let want = target - head_n;
        let ctx_n = head.ctx_ids.len() as u32;
        for _ in 0..MAX_WINDOWS {
            let Some(e) = self.try_window(&head.ctx, ctx_n + want, want, false, false, rng)? else {
                continue;
            };
            if e.ids.starts_with(&head.ctx_ids) {
                let mut ids = Vec::with_capacity(target as usize);
                ids.extend_from_slice(&full.ids);
                ids.extend_from_slice(&e.ids[ctx_n as usize..]);
                let tail = &e.text[head.ctx.len()..];
                let mut text = String::with_capacity(full.text.len() + tail.len());
                text.push_str(&full.text);
                text.push_str(tail);
                return Ok(Exact { text, ids });
            }
        }
        self.build(&full.text, Some(head_n), target, rng)
    }

    fn not_exact(&self, target: u32) -> TextError {
        TextError::NotExact {
            target,
            source_name: self.source.name.clone(),
            windows: MAX_WINDOWS,
        }
    }

    /// One window of the source: `head + tail` counted (`special` tokens or not) to exactly `target`, the
    /// tail's length corrected by the observed difference as [`WINDOW_POLICY`] allows.
    fn try_window(
        &self,
        head: &str,
        target: u32,
        want: u32,
        special: bool,
        trim_start: bool,
        rng: &mut impl Rng,
    ) -> Result<Option<Exact>, TextError> {
        let start = self.source.starts[rng.random_range(0..self.source.starts.len())] as usize;
        let mut window = Vec::with_capacity(want as usize + 8);
        let fitted = fit::fit(WINDOW_POLICY, target, want.max(1) as usize, |n| {
            self.source.window(start, n, &mut window);
            let tail = fit::decode(
                self.tok,
                &window,
                Trim::Both,
                crate::domain::tokenizer::NEVER,
            )?;
            let tail = if trim_start { tail.trim_start() } else { &tail };
            let mut text = String::with_capacity(head.len() + tail.len());
            text.push_str(head);
            text.push_str(tail);
            let ids = self.tok.encode(&text, special)?;
            let got = ids.len() as u32;
            Ok::<_, TokenizerError>((Exact { text, ids }, got))
        })?;
        Ok(fitted.filter(|f| f.exact).map(|f| f.value))
    }
}

/// Length of the longest common prefix of two id lists.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tok() -> TokenCounter {
        TokenCounter::embedded()
    }

    #[test]
    fn builds_exact_lengths_with_and_without_head() {
        let tok = tok();
        let src = TextSource::builtin(&tok, 1).unwrap();
        assert!(src.tokens() > 100_000, "{}", src.tokens());
        let ex = ExactText::new(&tok, &src, true).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for target in [1u32, 2, 3, 7, 50, 333, 1000, 4096] {
            let e = ex.build("", None, target, &mut rng).unwrap();
            assert_eq!(tok.count(&e.text, true).unwrap(), target, "{:?}", e.text);
            assert_eq!(e.ids.len(), target as usize);
            assert!(!e.text.starts_with(' '));
        }
        let head = ex.build("", None, 100, &mut rng).unwrap();
        for target in [100u32, 101, 150, 900] {
            let e = ex.build(&head.text, Some(100), target, &mut rng).unwrap();
            assert!(e.text.starts_with(&head.text));
            assert_eq!(tok.count(&e.text, true).unwrap(), target);
        }
        assert!(matches!(
            ex.build(&head.text, Some(100), 99, &mut rng),
            Err(TextError::TooShort { .. })
        ));
        // The O(tail) path: same guarantees, and its ids are the true encoding of the whole text.
        let head = ex.head(head).unwrap();
        for target in [100u32, 101, 102, 150, 1000] {
            for _ in 0..20 {
                let e = ex.extend(&head, target, &mut rng).unwrap();
                assert!(e.text.starts_with(&head.exact().text));
                assert_eq!(tok.encode(&e.text, true).unwrap(), e.ids);
                assert_eq!(e.ids.len(), target as usize);
            }
        }
        assert!(matches!(
            ex.extend(&head, 99, &mut rng),
            Err(TextError::TooShort { .. })
        ));
    }

    #[test]
    fn longer_than_the_corpus_wraps() {
        let tok = tok();
        let src = TextSource::from_text(
            &tok,
            "tiny",
            &"The quick brown fox jumps over the lazy dog. ".repeat(20),
        )
        .unwrap();
        let ex = ExactText::new(&tok, &src, true).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let e = ex.build("", None, 2000, &mut rng).unwrap();
        assert_eq!(tok.count(&e.text, true).unwrap(), 2000);
    }

    #[test]
    fn unstable_windows_are_corrected() {
        // CJK text: byte-level windows can cut characters in half; the edges are trimmed and the length is
        // corrected by re-encoding.
        let tok = tok();
        let src = TextSource::from_texts(
            &tok,
            "cjk",
            &["数据库的分布式事务如何保证一致性？请详细解释两阶段提交和三阶段提交的区别。🙂 混合 text with English words 和标点。"
                .repeat(30)],
        )
        .unwrap();
        // Decoding a window and re-encoding it does change the length here.
        let mut window = Vec::new();
        let unstable = (0..src.tokens())
            .filter(|&start| {
                src.window(start, 7, &mut window);
                tok.count(&tok.decode(&window).unwrap(), true).unwrap() != 7
            })
            .count();
        assert!(unstable > 0);
        let ex = ExactText::new(&tok, &src, true).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for target in [1u32, 5, 17, 64, 255] {
            let e = ex.build("", None, target, &mut rng).unwrap();
            assert_eq!(tok.count(&e.text, true).unwrap(), target);
            assert!(!e.text.contains('\u{FFFD}'));
        }
    }

    #[test]
    fn special_tokens_count_toward_the_target() {
        // A word-level tokenizer whose post-processor adds a BOS token.
        let json = r###"{"version":"1.0","truncation":null,"padding":null,
          "added_tokens":[{"id":0,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
          "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},
          "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[0],"tokens":["<s>"]}}},
          "decoder":{"type":"WordPiece","prefix":"##","cleanup":false},
          "model":{"type":"WordLevel","vocab":{"<s>":0,"[UNK]":1,"a":2,"b":3,"c":4},"unk_token":"[UNK]"}}"###;
        let tok = TokenCounter::from_json_bytes("bos", json.as_bytes()).unwrap();
        assert_eq!(tok.count("a b", true).unwrap(), 3);
        let src = TextSource::from_text(&tok, "abc", &"a b c ".repeat(50)).unwrap();
        let ex = ExactText::new(&tok, &src, true).unwrap();
        assert_eq!(ex.special_tokens(), 1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for target in [1u32, 2, 10] {
            let e = ex.build("", None, target, &mut rng).unwrap();
            assert_eq!(tok.count(&e.text, true).unwrap(), target, "{:?}", e.text);
        }
        assert!(matches!(
            ex.build("", None, 0, &mut rng),
            Err(TextError::TooShort { .. })
        ));
    }

    #[test]
    fn common_prefix_counts() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[1], &[]), 0);
    }
}
