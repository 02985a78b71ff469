//! Token counting with HuggingFace `tokenizer.json` files.
//!
//! The default tokenizer (Qwen2.5-Coder-7B-Instruct) is compiled into the binary, gzip-compressed, so no
//! network or download is ever needed. Truncation and padding are always disabled before counting, whatever
//! the file says.

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
}

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
    added: Vec<String>,
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
        Some(Self {
            byte_char: byte_level_chars(),
            added,
        })
    }

    fn applies(&self, text: &str) -> bool {
        !self.added.iter().any(|a| text.contains(a.as_str()))
    }

    /// Counts `text` piece by piece. The text is cut before every space that follows a non-whitespace
    /// character: no split of the pattern and no NFC composition crosses such a cut (the pattern has no
    /// look-behind, and a space after a non-space ends every alternative). ASCII pieces take the hand-written
    /// split; others the full pipeline, so only words with non-ASCII characters pay for it.
    fn count(&self, tok: &TokenCounter, text: &str) -> Result<u32, TokenizerError> {
        let s = text.as_bytes();
        let mut total = 0u32;
        let mut start = 0;
        let mut prev_ws = true;
        for (k, ch) in text.char_indices() {
            if ch == ' ' && !prev_ws && k > start {
                total += self.count_piece(tok, &text[start..k])?;
                start = k;
            }
            prev_ws = ch.is_whitespace();
        }
        if start < s.len() {
            total += self.count_piece(tok, &text[start..])?;
        }
        Ok(total)
    }

    fn count_piece(&self, tok: &TokenCounter, piece: &str) -> Result<u32, TokenizerError> {
        if piece.is_ascii() {
            self.count_ascii(&tok.inner, piece)
        } else {
            tok.count_full(piece, false)
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
            piece.clear();
            piece.extend(s[i..end].iter().map(|&b| self.byte_char[b as usize]));
            n += model
                .tokenize(&piece)
                .map_err(|e| TokenizerError::Encode(e.to_string()))?
                .len() as u32;
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

    /// Number of tokens of `text`.
    pub fn count(&self, text: &str, add_special_tokens: bool) -> Result<u32, TokenizerError> {
        if let Some(fast) = &self.fast
            && fast.applies(text)
        {
            return fast.count(self, text);
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
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Counts tokens of many texts in parallel on all cores; `progress` is called with the number of texts
    /// finished (from worker threads).
    pub fn count_many<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        add_special_tokens: bool,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<u32>, TokenizerError> {
        texts
            .par_chunks(64)
            .map(|chunk| {
                let r = chunk
                    .iter()
                    .map(|t| self.count(t.as_ref(), add_special_tokens))
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
            .count_many(&["Hello world", "", "a b c"], true, &|_| {})
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
        for t in &texts {
            assert_eq!(
                tok.count(t, true).unwrap(),
                tok.count_full(t, true).unwrap(),
                "{t:?}"
            );
        }
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
