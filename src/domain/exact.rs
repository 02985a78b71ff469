//! Prompts of an exact token length (`length_policy: exact`, and `near` where no real prompt is within ±5%).
//!
//! The builder starts from the prompt the matcher chose. A prompt that is too long is cut at a token boundary;
//! a prompt that is too short is extended with the prompts that follow it in the collection (a blank line
//! between them) and then cut. Decoding a token prefix and re-encoding it is not always length-stable (the
//! last word may merge or split, a cut may fall inside a UTF-8 character), so every candidate is verified by
//! re-encoding and the cut point is moved until the count is exact.
//!
//! Cost is O(L) per prompt for a target of L tokens: the source text is gathered by the known token lengths
//! of the collection (never by re-encoding a growing string), capped to a byte budget proportional to L,
//! encoded once, and each of the few (bounded) adjustment rounds decodes and encodes one candidate of about
//! L tokens.

use super::fit::{self, Moves, Policy, Trim};
use super::lengths::TokenizedDataset;
use super::sample::filler_text;
use super::tokenizer::{Cancel, NEVER, TokenCounter, TokenizerError};

/// Text placed between two prompts of the collection when a prompt is extended.
pub const SEPARATOR: &str = "\n\n";

/// The traces' fitting policy: adjustment rounds (before falling back to padding) over prefix lengths of a
/// source of `len` tokens.
fn policy(len: usize) -> Policy {
    Policy {
        rounds: 10,
        moves: Moves::ClampAndWalk { max: len },
    }
}

/// Decodes `ids` and drops a trailing replacement character left by a cut inside a multi-byte character.
pub fn decode_prefix(
    tok: &TokenCounter,
    ids: &[u32],
    cancel: Cancel<'_>,
) -> Result<String, TokenizerError> {
    fit::decode(tok, ids, Trim::End, cancel)
}

/// Finds a prefix of the token sequence `ids` whose finished text (`finish(decoded prefix)`) encodes (without
/// special tokens) to exactly `target` tokens. `k0` is the first prefix length tried. Returns the best text
/// found, its true token count (equal to `target` unless no prefix fits) and the prefix length used.
pub fn fit_prefix(
    tok: &TokenCounter,
    ids: &[u32],
    target: u32,
    k0: usize,
    finish: &dyn Fn(&str) -> String,
) -> Result<(String, u32, usize), TokenizerError> {
    let f = fit::fit(policy(ids.len()), target, k0, |k| {
        let text = finish(&decode_prefix(tok, &ids[..k], NEVER)?);
        let c = tok.count(&text, false)?;
        Ok::<_, TokenizerError>((text, c))
    })?
    .expect("at least one round ran");
    Ok((f.value, f.count, f.n))
}

/// Why an exact-length prompt was not built.
#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    /// Tokenization failed.
    #[error(transparent)]
    Tokenizer(TokenizerError),
    /// The caller cancelled (polled between the steps and inside every encode, decode and count).
    #[error("cancelled")]
    Cancelled,
}

impl From<TokenizerError> for ExactError {
    fn from(e: TokenizerError) -> Self {
        match e {
            TokenizerError::Cancelled => ExactError::Cancelled,
            other => ExactError::Tokenizer(other),
        }
    }
}

/// Builds prompts of an exact token length from a prompt collection.
pub struct ExactBuilder<'a> {
    tok: &'a TokenCounter,
    data: &'a TokenizedDataset,
    add_special: bool,
    /// Special tokens of an empty text, counted on first use (a run that builds nothing loads no tokenizer).
    special: std::sync::OnceLock<u32>,
    cancel: Cancel<'a>,
}

impl std::fmt::Debug for ExactBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactBuilder")
            .field("special", &self.special)
            .finish()
    }
}

impl<'a> ExactBuilder<'a> {
    /// A builder over `data`, counting like the collection (`add_special` special tokens included).
    pub fn new(
        tok: &'a TokenCounter,
        data: &'a TokenizedDataset,
        add_special: bool,
    ) -> Result<Self, TokenizerError> {
        Ok(Self {
            tok,
            data,
            add_special,
            special: std::sync::OnceLock::new(),
            cancel: NEVER,
        })
    }

    /// Polls `cancel` between the steps of every build and inside its long tokenizer calls (every 64 KiB of
    /// text encoded, 64 Ki ids decoded, 64 Ki words counted), so a cancelled job stops within milliseconds,
    /// not after the whole prompt.
    pub fn with_cancel(mut self, cancel: Cancel<'a>) -> Self {
        self.cancel = cancel;
        self
    }

    fn check(&self) -> Result<(), ExactError> {
        if (self.cancel)() {
            return Err(ExactError::Cancelled);
        }
        Ok(())
    }

    /// Special tokens the tokenizer adds to every text (BOS/EOS), counted in every target.
    pub fn special_tokens(&self) -> u32 {
        // Counting an empty text cannot fail where any other count succeeds; a tokenizer that fails here
        // fails the build's own counts right after.
        *self
            .special
            .get_or_init(|| self.tok.count("", self.add_special).unwrap_or(0))
    }

    /// Source text starting at collection item `item`, following prompts appended with [`SEPARATOR`], until
    /// the known token lengths reach `need` content tokens. The last prompt is cut to its share of bytes
    /// (by its own bytes per token, times `slack`), so about `need · slack` tokens are gathered. Without
    /// prompts, the built-in filler text is used.
    fn gather(&self, item: usize, need: u32, slack: f64) -> String {
        let ds = &self.data.dataset;
        let n = ds.prompts.len();
        let mut text = String::new();
        let mut est = 0u64;
        let mut j = item % n.max(1);
        let mut visited = 0usize;
        while n > 0 && est < need as u64 {
            if !text.is_empty() {
                text.push_str(SEPARATOR);
                est += 1;
            }
            let p = &ds.prompts[j];
            let pl = self.data.prompt_len[j].saturating_sub(self.special_tokens()) as u64;
            let left = (need as u64).saturating_sub(est);
            if pl > left {
                let bytes = (left as f64 * p.len() as f64 / pl as f64 * slack) as usize + 16;
                let mut cut = bytes.min(p.len());
                while !p.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.push_str(&p[..cut]);
                est += if cut == p.len() { pl } else { left };
            } else {
                text.push_str(p);
                est += pl;
            }
            j = (j + 1) % n;
            visited += 1;
            if visited >= n && est == 0 {
                break; // a collection of empty prompts
            }
        }
        if est == 0 {
            text = filler_text(item as u64, need as usize + 16);
        }
        text
    }

    /// The token ids of source text starting at `item` holding at least `need` content tokens (the collection
    /// is cycled; a short result only when it has no text at all).
    pub(crate) fn source_ids(&self, item: usize, need: u32) -> Result<Vec<u32>, TokenizerError> {
        let mut slack = 1.1;
        loop {
            let text = self.gather(item, need + 8, slack);
            let ids = self.tok.encode_cancellable(&text, self.cancel)?;
            if ids.len() >= need as usize || slack > 16.0 {
                return Ok(ids);
            }
            slack *= 3.0;
        }
    }

    /// [`ExactBuilder::build_near`] in `window`, or [`ExactBuilder::build`] without one.
    pub fn build_within(
        &self,
        item: usize,
        target: u32,
        window: Option<(u32, u32)>,
    ) -> Result<(String, u32), ExactError> {
        match window {
            Some((lo, hi)) => self.build_near(item, target, lo, hi),
            None => self.build(item, target),
        }
    }

    /// A prompt of `lo..=hi` tokens (the collection's special-token setting) for a target of `target`, made of
    /// whole prompts when it can be: `item`, then those after it that still fit (a blank line between them),
    /// chosen by their known token lengths and counted once to check, with nothing encoded. When `item` is
    /// longer than `hi`, no such sum lands in the window within 256 prompts, or the count disagrees, it is
    /// [`ExactBuilder::build`] of `target`.
    pub fn build_near(
        &self,
        item: usize,
        target: u32,
        lo: u32,
        hi: u32,
    ) -> Result<(String, u32), ExactError> {
        const SCAN: usize = 256;
        let ds = &self.data.dataset;
        let n = ds.prompts.len();
        let special = u64::from(self.special_tokens());
        let len = |j: usize| u64::from(self.data.prompt_len[j]).saturating_sub(special);
        let (lo64, hi64) = (u64::from(lo), u64::from(hi));
        if n > 0 && len(item % n) + special <= hi64 {
            let first = item % n;
            let mut parts = vec![first];
            let mut est = len(first) + special;
            for step in 1..SCAN.min(n) {
                if est >= lo64 {
                    break;
                }
                let j = (first + step) % n;
                // One token for the separator (a blank line is one token in byte-level BPEs; the count checks).
                if est + 1 + len(j) <= hi64 {
                    parts.push(j);
                    est += 1 + len(j);
                }
            }
            if (lo64..=hi64).contains(&est) {
                self.check()?;
                let mut text = String::new();
                for (k, &j) in parts.iter().enumerate() {
                    if k > 0 {
                        text.push_str(SEPARATOR);
                    }
                    text.push_str(&ds.prompts[j]);
                }
                let c = self
                    .tok
                    .count_cancellable(&text, self.add_special, self.cancel)?;
                if (lo..=hi).contains(&c) {
                    return Ok((text, c));
                }
            }
        }
        self.build(item, target)
    }

    /// A prompt starting with collection item `item` that tokenizes (with the collection's special-token
    /// setting) to exactly `target` tokens; returns the text and its true token count, which equals `target`
    /// unless the tokenizer makes it impossible (then the closest count found).
    pub fn build(&self, item: usize, target: u32) -> Result<(String, u32), ExactError> {
        let content = target.saturating_sub(self.special_tokens());
        if content == 0 {
            return Ok((String::new(), self.tok.count("", self.add_special)?));
        }
        self.check()?;
        let ids = self.source_ids(item, content)?;
        let fitted = fit::fit(policy(ids.len()), content, content as usize, |k| {
            self.check()?;
            let text = decode_prefix(self.tok, &ids[..k], self.cancel)?;
            let c = self.tok.count_cancellable(&text, false, self.cancel)?;
            Ok::<_, ExactError>((text, c))
        })?
        .expect("at least one round ran");
        let (mut text, mut c) = (fitted.value, fitted.count);
        // Rare fallback: no cut point is exact (or the source is too short): pad with one-token words.
        let mut rounds = 0;
        while c < content && rounds < 3 {
            self.check()?;
            for _ in c..content {
                text.push_str(" a");
            }
            c = self.tok.count_cancellable(&text, false, self.cancel)?;
            rounds += 1;
        }
        let total = self
            .tok
            .count_cancellable(&text, self.add_special, self.cancel)?;
        Ok((text, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lengths::tokenize;
    use std::sync::Arc;

    #[test]
    fn cuts_and_extends_to_exact_lengths() {
        let (tok, d) = (
            crate::domain::trace::tests::tok(),
            crate::domain::trace::tests::data(),
        );
        let b = ExactBuilder::new(tok, d, true).unwrap();
        for (item, target) in [(0, 1), (1, 7), (2, 100), (3, 513), (4, 3000), (5, 9000)] {
            let (text, n) = b.build(item, target).unwrap();
            assert_eq!(n, target, "item {item}");
            assert_eq!(tok.count(&text, true).unwrap(), target);
            // It starts with the chosen prompt (cut or whole).
            let p = &d.dataset.prompts[item];
            let head = &p[..p.len().min(20)];
            assert!(
                text.starts_with(head) || p.starts_with(&text),
                "item {item}"
            );
        }
        // Extension uses the following prompts with the separator.
        let short = (0..d.dataset.len())
            .find(|&i| d.prompt_len[i] < 50)
            .unwrap();
        let (text, _) = b.build(short, 2000).unwrap();
        assert!(text.starts_with(&format!("{}{SEPARATOR}", d.dataset.prompts[short])));
    }

    #[test]
    fn near_builds_join_whole_prompts_or_fall_back_to_exact() {
        let (tok, d) = (
            crate::domain::trace::tests::tok(),
            crate::domain::trace::tests::data(),
        );
        let b = ExactBuilder::new(tok, d, true).unwrap();
        let ds = &d.dataset;
        let short = (0..ds.len()).find(|&i| d.prompt_len[i] < 50).unwrap();
        let mut joined = 0;
        for target in [200u32, 900, 2500] {
            let (lo, hi) = (target * 95 / 100 + 1, target * 105 / 100);
            let (text, n) = b.build_near(short, target, lo, hi).unwrap();
            assert_eq!(tok.count(&text, true).unwrap(), n);
            assert!((lo..=hi).contains(&n), "{n} not in {lo}..={hi}");
            assert!(text.starts_with(&ds.prompts[short]));
            // Whole prompts of the collection, a blank line between them, when the sum fits.
            let parts: Vec<&str> = text.split(SEPARATOR).collect();
            if n != target {
                joined += 1;
                assert!(
                    parts
                        .iter()
                        .all(|p| ds.prompts.iter().any(|q| q.contains(p))),
                    "target {target}: parts are the collection's"
                );
            }
        }
        assert!(joined > 0, "some target is met by whole prompts");
        // A prompt longer than the window is cut to exactly the target.
        let long = (0..ds.len()).max_by_key(|&i| d.prompt_len[i]).unwrap();
        let t = d.prompt_len[long] / 2;
        let (text, n) = b.build_near(long, t, t - t / 20, t + t / 20).unwrap();
        assert_eq!((n, tok.count(&text, true).unwrap()), (t, t));
    }

    #[test]
    fn a_cancelled_build_stops_between_steps() {
        let (tok, d) = (
            crate::domain::trace::tests::tok(),
            crate::domain::trace::tests::data(),
        );
        // Cancelled before it starts: no work.
        let b = ExactBuilder::new(tok, d, true)
            .unwrap()
            .with_cancel(&|| true);
        assert!(matches!(b.build(0, 5000), Err(ExactError::Cancelled)));
        // Cancelled after the source is encoded: the first fitting round sees it.
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let cancel = || calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
        let b = ExactBuilder::new(tok, d, true)
            .unwrap()
            .with_cancel(&cancel);
        assert!(matches!(b.build(0, 5000), Err(ExactError::Cancelled)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        // Not cancelled: exact as without a cancel flag.
        let b = ExactBuilder::new(tok, d, true)
            .unwrap()
            .with_cancel(&|| false);
        assert_eq!(b.build(0, 5000).unwrap().1, 5000);
    }

    #[test]
    fn multibyte_text_is_exact_too() {
        let tok = TokenCounter::embedded();
        let text: String = (0..50)
            .map(|i| format!("{{\"prompt\": \"héllo wörld 你好世界 🚀 {i} ünïcödé\"}}\n"))
            .collect();
        let ds = crate::domain::dataset::parse_jsonl(text.as_bytes(), "u").unwrap();
        let d = tokenize(
            Arc::new(ds),
            &tok,
            true,
            None,
            &|_, _| {},
            crate::domain::tokenizer::NEVER,
        )
        .unwrap();
        let b = ExactBuilder::new(&tok, &d, true).unwrap();
        for target in 1..120 {
            let (text, n) = b.build(target as usize % 50, target).unwrap();
            assert_eq!(n, target);
            assert_eq!(tok.count(&text, true).unwrap(), target);
            assert!(!text.contains('\u{FFFD}'));
        }
    }
}
