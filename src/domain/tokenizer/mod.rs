//! Token counting with HuggingFace `tokenizer.json` files.
//!
//! The default tokenizer (Qwen2.5-Coder-7B-Instruct) is compiled into the binary, gzip-compressed, so no
//! network or download is ever needed. Truncation and padding are always disabled before counting, whatever
//! the file says.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

mod base;
mod bpe;
mod fast;
mod table;
use base::ENCODE_CHUNK;
pub use base::{Cancel, NEVER, TokenizerError};
use fast::FastPath;
use sha2::{Digest, Sha256};

/// Hub id of the embedded default tokenizer.
pub const DEFAULT_TOKENIZER: &str = "Qwen/Qwen2.5-Coder-7B-Instruct";

static EMBEDDED_QWEN: &[u8] =
    include_bytes!("../../../assets/tokenizers/qwen2.5-coder-7b-instruct.tokenizer.json.gz");

/// Names that resolve to the embedded tokenizer.
const EMBEDDED_ALIASES: &[&str] = &[
    DEFAULT_TOKENIZER,
    "qwen2.5-coder-7b-instruct",
    "builtin",
    "default",
];

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

/// SHA-256 prefix of the embedded tokenizer's JSON (checked by a test), so that naming the embedded
/// tokenizer costs nothing until it counts or builds text.
const EMBEDDED_FINGERPRINT: &str = "428232b70ba96534";

/// A tokenizer that counts tokens. Cheap to clone (shared). A file is parsed when resolved (so that a bad
/// file fails there); the embedded tokenizer is loaded on first use, once per clone family (a run whose
/// lengths come from the length cache and that builds no text never loads it).
#[derive(Clone)]
pub struct TokenCounter {
    model: Arc<Lazy>,
    id: String,
    fingerprint: String,
}

/// The `tokenizers` pipeline and the fast path it allows, built now or on first use.
struct Lazy {
    cell: std::sync::OnceLock<Model>,
    init: fn() -> Model,
}

/// What counts and encodes. The embedded tokenizer counts on its fast path alone; its `tokenizers` pipeline
/// (several times larger in memory) is built only when a call needs ids, text, or the full pipeline.
struct Model {
    tok: std::sync::OnceLock<tokenizers::Tokenizer>,
    tok_init: fn() -> tokenizers::Tokenizer,
    fast: Option<FastPath>,
}

fn no_init() -> Model {
    unreachable!("a tokenizer loaded from a file is built when resolved")
}

fn no_tok_init() -> tokenizers::Tokenizer {
    unreachable!("a tokenizer loaded from a file builds its pipeline when resolved")
}

/// Builds the pipeline from `json` with truncation and padding off.
fn build_tokenizer(id: &str, json: &[u8]) -> Result<tokenizers::Tokenizer, TokenizerError> {
    let invalid = |reason: String| TokenizerError::Invalid {
        path: id.to_string(),
        reason,
    };
    let mut tok = tokenizers::Tokenizer::from_bytes(json).map_err(|e| invalid(e.to_string()))?;
    tok.with_truncation(None)
        .map_err(|e| invalid(e.to_string()))?;
    tok.with_padding(None);
    Ok(tok)
}

/// The pipeline and the fast path of `json`, both built now (a bad file fails here).
fn build_model(id: &str, json: &[u8]) -> Result<Model, TokenizerError> {
    let tok = build_tokenizer(id, json)?;
    Ok(Model {
        tok: std::sync::OnceLock::from(tok),
        tok_init: no_tok_init,
        fast: FastPath::detect(json),
    })
}

fn embedded_json() -> Vec<u8> {
    let mut json = Vec::with_capacity(8 << 20);
    flate2::read::GzDecoder::new(EMBEDDED_QWEN)
        .read_to_end(&mut json)
        .expect("embedded tokenizer is valid gzip");
    json
}

fn load_embedded() -> Model {
    let fast = FastPath::detect(&embedded_json());
    assert!(fast.is_some(), "the embedded tokenizer takes the fast path");
    Model {
        tok: std::sync::OnceLock::new(),
        tok_init: embedded_tokenizer,
        fast,
    }
}

fn embedded_tokenizer() -> tokenizers::Tokenizer {
    build_tokenizer(DEFAULT_TOKENIZER, &embedded_json()).expect("embedded tokenizer is valid")
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
        Self {
            model: Arc::new(Lazy {
                cell: std::sync::OnceLock::new(),
                init: load_embedded,
            }),
            id: DEFAULT_TOKENIZER.to_string(),
            fingerprint: EMBEDDED_FINGERPRINT.to_string(),
        }
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
        let model = build_model(id, json)?;
        Ok(Self {
            model: Arc::new(Lazy {
                cell: std::sync::OnceLock::from(model),
                init: no_init,
            }),
            id: id.to_string(),
            fingerprint: hex::encode(&Sha256::digest(json)[..8]),
        })
    }

    /// Loads the pipeline now if it loads on first use (a no-op otherwise).
    pub fn preload(&self) {
        self.model();
    }

    fn model(&self) -> &Model {
        self.model.cell.get_or_init(self.model.init)
    }

    fn tok(&self) -> &tokenizers::Tokenizer {
        let m = self.model();
        m.tok.get_or_init(m.tok_init)
    }

    fn fast(&self) -> Option<&FastPath> {
        self.model().fast.as_ref()
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
        if let Some(fast) = self.fast()
            && fast.applies(text)
        {
            return fast.encode(text, NEVER);
        }
        self.encode_full(text, add_special_tokens)
    }

    /// Token ids of `text` through the whole `tokenizers` pipeline.
    pub fn encode_full(
        &self,
        text: &str,
        add_special_tokens: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        self.tok()
            .encode_fast(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Token ids of `text` without special tokens, encoded in chunks of about 64 KiB with `cancel` polled
    /// between them (the same ids as [`TokenCounter::encode`]; a tokenizer without the fast path encodes the
    /// text whole).
    pub fn encode_cancellable(
        &self,
        text: &str,
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        self.encode_chunked(text, ENCODE_CHUNK, cancel)
    }

    fn encode_chunked(
        &self,
        text: &str,
        chunk: usize,
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        match self.fast() {
            Some(fast) if fast.applies(text) => {
                let mut ids = Vec::with_capacity(text.len() / 3);
                for part in FastPath::chunks(text, chunk) {
                    if cancel() {
                        return Err(TokenizerError::Cancelled);
                    }
                    ids.extend_from_slice(self.encode(part, false)?.as_slice());
                }
                Ok(ids)
            }
            _ => {
                if cancel() {
                    return Err(TokenizerError::Cancelled);
                }
                self.encode(text, false)
            }
        }
    }

    /// Number of tokens of `text`.
    pub fn count(&self, text: &str, add_special_tokens: bool) -> Result<u32, TokenizerError> {
        self.count_cancellable(text, add_special_tokens, NEVER)
    }

    /// Number of tokens of `text`, polling `cancel` along the way (on the fast path; otherwise once).
    pub fn count_cancellable(
        &self,
        text: &str,
        add_special_tokens: bool,
        cancel: Cancel<'_>,
    ) -> Result<u32, TokenizerError> {
        if let Some(fast) = self.fast()
            && fast.applies(text)
        {
            return fast.count(text, cancel);
        }
        if cancel() {
            return Err(TokenizerError::Cancelled);
        }
        self.count_full(text, add_special_tokens)
    }

    /// Number of tokens of `text` through the whole `tokenizers` pipeline.
    pub fn count_full(&self, text: &str, add_special_tokens: bool) -> Result<u32, TokenizerError> {
        self.tok()
            .encode_fast(text, add_special_tokens)
            .map(|e| e.len() as u32)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Decodes ids back to text (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.decode_cancellable(ids, NEVER)
    }

    /// Decodes ids back to text (special tokens skipped), polling `cancel` every 64 Ki ids when the
    /// decoder is ByteLevel (otherwise once, before the library's decode).
    pub fn decode_cancellable(
        &self,
        ids: &[u32],
        cancel: Cancel<'_>,
    ) -> Result<String, TokenizerError> {
        if let Some(fast) = self.fast()
            && fast.byte_decoder
        {
            return fast.decode(ids, cancel);
        }
        if cancel() {
            return Err(TokenizerError::Cancelled);
        }
        self.tok()
            .decode(ids, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Counts tokens of many texts in parallel on all cores; `progress` is called with the number of texts
    /// finished (from worker threads). `cancel` is polled per batch of 64 texts and inside long texts.
    pub fn count_many<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        add_special_tokens: bool,
        progress: &(dyn Fn(usize) + Sync),
        cancel: Cancel<'_>,
    ) -> Result<Vec<u32>, TokenizerError> {
        texts
            .par_chunks(64)
            .map(|chunk| {
                if cancel() {
                    return Err(TokenizerError::Cancelled);
                }
                let r = chunk
                    .iter()
                    .map(|t| self.count_cancellable(t.as_ref(), add_special_tokens, cancel))
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
    use super::base::POLL_EVERY;
    use super::*;

    #[test]
    fn conformance_vectors_46_of_46() {
        let inp = include_str!("../../../tests/fixtures/tokenizer/conformance-vectors.inp");
        let out = include_str!("../../../tests/fixtures/tokenizer/conformance-vectors.out");
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
            .count_many(&["Hello world", "", "a b c"], true, &|_| {}, NEVER)
            .unwrap();
        assert_eq!(many, vec![2, 0, 3]);
    }

    #[test]
    fn the_embedded_fingerprint_is_that_of_its_json_and_loading_waits_for_use() {
        let json = embedded_json();
        let loaded = TokenCounter::from_json_bytes(DEFAULT_TOKENIZER, &json).unwrap();
        let lazy = TokenCounter::embedded();
        assert_eq!(lazy.fingerprint(), loaded.fingerprint());
        assert!(lazy.model.cell.get().is_none(), "not loaded when named");
        let text = "Hello, world! Ünïcödé and code: fn main() {}";
        assert_eq!(
            lazy.count(text, false).unwrap(),
            loaded.count(text, false).unwrap()
        );
        assert!(
            lazy.clone().model.cell.get().is_some(),
            "loaded once, shared by clones"
        );
        let model = lazy.model.cell.get().unwrap();
        let ids = lazy.encode(text, false).unwrap();
        assert_eq!(ids, loaded.encode_full(text, false).unwrap());
        assert_eq!(lazy.decode(&ids).unwrap(), text);
        assert!(
            model.tok.get().is_none(),
            "counting, encoding and decoding need no `tokenizers` pipeline"
        );
        assert_eq!(lazy.count("<|im_start|>", false).unwrap(), 1);
        assert!(model.tok.get().is_some(), "added tokens take the pipeline");
    }

    #[test]
    fn fast_count_and_ids_equal_the_full_pipeline() {
        use rand::{Rng, SeedableRng};
        let tok = TokenCounter::embedded();
        assert!(
            tok.fast().is_some(),
            "the embedded tokenizer takes the fast path"
        );
        let ds = crate::domain::sample::sample_dataset();
        let mut texts: Vec<String> = ds.prompts.clone();
        texts.extend(ds.completions.iter().flatten().map(str::to_string));
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
        // Long pieces (many merges in one word, stale heap entries): runs of one letter, of two, random
        // letters and digits, whitespace and punctuation runs, long words of other scripts.
        for (unit, times) in [
            ("a", 700),
            ("ab", 333),
            ("=", 250),
            (" ", 129),
            ("\n", 64),
            ("中", 200),
            ("é", 150),
            ("ok", 3),
        ] {
            texts.push(unit.repeat(times));
            texts.push(format!("x {}y", unit.repeat(times)));
        }
        for _ in 0..200 {
            let len = rng.random_range(40..400);
            let t: String = (0..len)
                .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
                .collect();
            texts.push(t);
        }
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
        // Cold (the piece cache fills as it goes), then warm (counts come from the cache), then the same from
        // another thread in a shuffled order (the cache is shared).
        let full: Vec<u32> = texts
            .iter()
            .map(|t| tok.count_full(t, true).unwrap())
            .collect();
        for pass in ["cold", "warm"] {
            for (t, &n) in texts.iter().zip(&full) {
                assert_eq!(tok.count(t, true).unwrap(), n, "{pass}: {t:?}");
            }
        }
        for t in &texts {
            assert_eq!(
                tok.encode(t, true).unwrap(),
                tok.encode_full(t, true).unwrap(),
                "ids of {t:?}"
            );
        }
        let cached: usize = tok
            .fast()
            .unwrap()
            .pieces
            .shards
            .iter()
            .map(|s| s.read().unwrap().len())
            .sum();
        assert!(cached > 1000, "the piece cache fills ({cached} pieces)");
        let joined = texts.join(" ");
        let shared = tok.clone();
        let n = std::thread::spawn(move || shared.count(&joined, true).unwrap())
            .join()
            .unwrap();
        assert_eq!(n, tok.count_full(&texts.join(" "), true).unwrap());
    }

    /// Large mixed text: the sample prompts and completions, random ASCII and Unicode, joined.
    fn big_text(seed: u64) -> String {
        use rand::{Rng, SeedableRng};
        let ds = crate::domain::sample::sample_dataset();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mixed: &[&str] = &[
            "é", "’", "中文", "\u{3000}", "\u{a0}", "e\u{301}", "😀", " ", "  ", "\n", "a", "Z",
            "'s", "7", ".", "\t", "word", " x", "\r\n",
        ];
        let mut text = String::new();
        for (i, p) in ds.prompts.iter().enumerate() {
            text.push_str(p);
            text.push_str(if i % 3 == 0 { "\n\n" } else { " " });
            for _ in 0..rng.random_range(0..40) {
                text.push_str(mixed[rng.random_range(0..mixed.len())]);
            }
        }
        text
    }

    #[test]
    fn chunked_encode_equals_the_whole_encode() {
        let tok = TokenCounter::embedded();
        let text = big_text(1);
        assert!(text.len() > 200_000, "{}", text.len());
        let whole = tok.encode_full(&text, false).unwrap();
        assert!(
            tok.encode(&text, false).unwrap() == whole,
            "fast ids differ"
        );
        for chunk in [1, 7, 100, 4096, ENCODE_CHUNK] {
            let parts = tok.encode_chunked(&text, chunk, NEVER).unwrap();
            assert_eq!(parts.len(), whole.len(), "chunk {chunk}");
            assert!(parts == whole, "chunk {chunk}: ids differ");
        }
        let chunks: Vec<&str> = FastPath::chunks(&text, 4096).collect();
        assert_eq!(chunks.concat(), text);
        assert!(chunks.len() > 10);
        // An added token makes the text take the whole pipeline: still the same ids.
        let with_added = format!("{text}<|im_start|> tail");
        assert_eq!(
            tok.encode_cancellable(&with_added, NEVER).unwrap(),
            tok.encode(&with_added, false).unwrap()
        );
    }

    #[test]
    fn stepped_decode_equals_the_library_decode() {
        use rand::{Rng, SeedableRng};
        let tok = TokenCounter::embedded();
        let fast = tok.fast().expect("fast path");
        assert!(fast.byte_decoder);
        let ids = tok.encode(&big_text(2), false).unwrap();
        let lib = |ids: &[u32]| tok.tok().decode(ids, true).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), lib(&ids));
        // Random ids: special and non-special added tokens, ids past the vocabulary, cuts inside characters.
        let n = tok.tok().get_vocab_size(true) as u32;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..2000 {
            let len = rng.random_range(0..30);
            let r: Vec<u32> = (0..len)
                .map(|_| match rng.random_range(0..10) {
                    0 => rng.random_range(151_640..n + 5),
                    1 => ids[rng.random_range(0..ids.len())],
                    _ => rng.random_range(0..n),
                })
                .collect();
            assert_eq!(tok.decode(&r).unwrap(), lib(&r), "{r:?}");
        }
        for k in [0, 1, 2, 3, 1000, ids.len() / 2, ids.len()] {
            assert_eq!(tok.decode(&ids[..k]).unwrap(), lib(&ids[..k]), "prefix {k}");
        }
    }

    #[test]
    fn long_calls_stop_when_cancelled() {
        let tok = TokenCounter::embedded();
        let text = big_text(3).repeat(4);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        // Cancelled after the first poll: the work stops at the second.
        let cancel = || calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
        assert!(matches!(
            tok.encode_cancellable(&text, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let ids = tok.encode(&text, false).unwrap();
        assert!(ids.len() > 2 * POLL_EVERY);
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            tok.decode_cancellable(&ids, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let words = "word ".repeat(3 * POLL_EVERY);
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            tok.count_cancellable(&words, false, &cancel),
            Err(TokenizerError::Cancelled)
        ));
        let texts = vec!["a b"; 1000];
        assert!(matches!(
            tok.count_many(&texts, false, &|_| {}, &|| true),
            Err(TokenizerError::Cancelled)
        ));
        // Never cancelled: the same answers as the plain calls.
        assert_eq!(
            tok.count_cancellable(&words, false, NEVER).unwrap(),
            tok.count_full(&words, false).unwrap()
        );
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
