//! One input-preparation path for the CLI and the service: where a run's prompts come from, its tokenizer, and
//! the prompts' token lengths, ready for a run.
//!
//! An [`InputCache`] keeps resolved tokenizers and the last few tokenized collections in memory, in front of
//! the on-disk length cache of [`super::lengths`] (per content hash, tokenizer fingerprint and special-token
//! setting). The CLI uses one for a single run; the service keeps one for its lifetime.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

use super::dataset::{Dataset, DatasetError, Schema, load_file};
use super::lengths::{TokenizedDataset, tokenize};
use super::sample::{SAMPLE_DATASET_ID, sample_dataset};
use super::tokenizer::{Cancel, TokenCounter, TokenizerError, TokenizerPolicy};

// The manifest's record of an input. It belongs in `files` (below this module) and is imported from there once
// it moves; `run` does not import this module, so there is no cycle.
use super::files::InputFile;

/// How many tokenized collections an [`InputCache`] keeps in memory.
const KEPT_COLLECTIONS: usize = 4;

/// The manifest role of the prompt collection.
const PROMPTS_ROLE: &str = "prompts";

/// Where a run's prompt collection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSource {
    /// No collection: the shape builds its prompts with the tokenizer (agent sessions).
    None,
    /// The built-in sample collection.
    Sample,
    /// A JSONL file (the CLI's `--prompt-file`).
    File(String),
    /// A stored collection by id, read through a [`DatasetLoader`] (the service's datasets).
    Stored(String),
}

impl PromptSource {
    /// The collection a spec names when files may be read: none when the shape reads no prompts, else the
    /// prompt file, the built-in sample (no dataset, or `sample`), or a stored collection.
    pub fn named(reads_prompts: bool, prompt_file: Option<&str>, dataset: Option<&str>) -> Self {
        if !reads_prompts {
            return Self::None;
        }
        match (prompt_file, dataset) {
            (Some(path), _) => Self::File(path.to_string()),
            (None, None) | (None, Some(SAMPLE_DATASET_ID)) => Self::Sample,
            (None, Some(id)) => Self::Stored(id.to_string()),
        }
    }

    /// The name recorded in the manifest (`None` for no collection).
    fn manifest_name(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Sample => Some(format!("builtin:{SAMPLE_DATASET_ID}")),
            Self::File(path) => Some(path.clone()),
            Self::Stored(id) => Some(id.clone()),
        }
    }

    /// The key of the in-memory cache.
    fn key(&self) -> String {
        match self {
            Self::None => "none:".into(),
            Self::Sample => format!("builtin:{SAMPLE_DATASET_ID}"),
            Self::File(path) => format!("file:{path}"),
            Self::Stored(id) => format!("stored:{id}"),
        }
    }
}

/// Reads stored collections by id (the service's dataset store).
pub trait DatasetLoader: Sync {
    /// The collection `id`.
    fn load(&self, id: &str) -> Result<Arc<Dataset>, Box<dyn Error + Send + Sync>>;
}

/// Why the inputs of a run could not be prepared.
#[derive(Debug, Error)]
pub enum InputsError {
    /// The tokenizer name did not resolve or its file is invalid.
    #[error(transparent)]
    Tokenizer(TokenizerError),
    /// The prompt file could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A stored collection could not be loaded.
    #[error(transparent)]
    Load(Box<dyn Error + Send + Sync>),
    /// A stored collection was named where there is no store (the CLI).
    #[error(
        "dataset '{0}': the CLI reads prompt files with --prompt-file (dataset ids are for the service)"
    )]
    NoStore(String),
    /// Counting the prompts' tokens failed.
    #[error(transparent)]
    Count(TokenizerError),
}

/// Everything a run reads besides the spec.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The tokenizer.
    pub tokenizer: TokenCounter,
    /// The prompt collection with its token lengths.
    pub data: Arc<TokenizedDataset>,
    /// The manifest's input files (the prompt collection, when one is read).
    pub files: Vec<InputFile>,
    /// True when the lengths were not in memory yet (loaded from the disk cache or tokenized now).
    pub fresh: bool,
}

/// Resolved tokenizers and recently tokenized collections, in front of the on-disk length cache.
#[derive(Debug)]
pub struct InputCache {
    policy: TokenizerPolicy,
    lengths_dir: Option<PathBuf>,
    tokenizers: Mutex<HashMap<String, TokenCounter>>,
    tokenized: Mutex<Vec<(String, Arc<TokenizedDataset>)>>,
}

impl InputCache {
    /// Resolves tokenizer names under `policy`; keeps token lengths in `lengths_dir` (none: no disk cache).
    pub fn new(policy: TokenizerPolicy, lengths_dir: Option<PathBuf>) -> Self {
        Self {
            policy,
            lengths_dir,
            tokenizers: Mutex::new(HashMap::new()),
            tokenized: Mutex::new(Vec::new()),
        }
    }

    /// The tokenizer `name`, resolved once.
    pub fn tokenizer(&self, name: &str) -> Result<TokenCounter, TokenizerError> {
        if let Some(t) = self.tokenizers.lock().expect("not poisoned").get(name) {
            return Ok(t.clone());
        }
        let t = TokenCounter::resolve(name, &self.policy)?;
        self.tokenizers
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// The token lengths of `source` counted by `tok`: from memory, the on-disk cache, or tokenized now
    /// (`progress(done, total)` reports texts tokenized; `cancel` stops the tokenization). The flag is true
    /// when they were not in memory.
    pub fn lengths(
        &self,
        source: &PromptSource,
        loader: Option<&dyn DatasetLoader>,
        tok: &TokenCounter,
        add_special: bool,
        progress: &(dyn Fn(usize, usize) + Sync),
        cancel: Cancel<'_>,
    ) -> Result<(Arc<TokenizedDataset>, bool), InputsError> {
        let key = format!("{}|{}|{add_special}", source.key(), tok.fingerprint());
        if let Some((_, d)) = self
            .tokenized
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Ok((d.clone(), false));
        }
        if let PromptSource::File(path) = source
            && !self.lengths_dir.as_deref().is_some_and(|dir| {
                super::lengths::cached_for_file(dir, Path::new(path), tok, add_special)
            })
        {
            // It will tokenize: load the tokenizer first (see `cached_for_file`).
            tok.preload();
        }
        let dataset = load(source, loader)?;
        let data = Arc::new(
            tokenize(
                dataset,
                tok,
                add_special,
                self.lengths_dir.as_deref(),
                progress,
                cancel,
            )
            .map_err(InputsError::Count)?,
        );
        let mut cache = self.tokenized.lock().expect("not poisoned");
        cache.retain(|(k, _)| *k != key);
        cache.insert(0, (key, data.clone()));
        cache.truncate(KEPT_COLLECTIONS);
        Ok((data, true))
    }

    /// The inputs of a run: the tokenizer `tokenizer`, the lengths of `source` and the manifest's input files.
    pub fn prepare(
        &self,
        tokenizer: &str,
        add_special: bool,
        source: &PromptSource,
        loader: Option<&dyn DatasetLoader>,
        progress: &(dyn Fn(usize, usize) + Sync),
        cancel: Cancel<'_>,
    ) -> Result<Inputs, InputsError> {
        let tokenizer = self.tokenizer(tokenizer).map_err(InputsError::Tokenizer)?;
        let (data, fresh) =
            self.lengths(source, loader, &tokenizer, add_special, progress, cancel)?;
        let files = source
            .manifest_name()
            .map(|name| InputFile {
                role: PROMPTS_ROLE.into(),
                name,
                sha256: data.dataset.sha256.clone(),
                bytes: data.dataset.bytes,
            })
            .into_iter()
            .collect();
        Ok(Inputs {
            tokenizer,
            data,
            files,
            fresh,
        })
    }
}

/// Reads the collection of `source`.
fn load(
    source: &PromptSource,
    loader: Option<&dyn DatasetLoader>,
) -> Result<Arc<Dataset>, InputsError> {
    Ok(match source {
        PromptSource::None => Arc::new(no_prompts()),
        PromptSource::Sample => Arc::new(sample_dataset()),
        PromptSource::File(path) => Arc::new(load_file(Path::new(path))?),
        PromptSource::Stored(id) => match loader {
            Some(l) => l.load(id).map_err(InputsError::Load)?,
            None => return Err(InputsError::NoStore(id.clone())),
        },
    })
}

/// The empty collection of a run that reads no prompts.
pub fn no_prompts() -> Dataset {
    use sha2::{Digest, Sha256};
    Dataset {
        name: "none (agent prompts are synthetic)".to_string(),
        schema: Schema::Plain,
        prompts: Vec::new(),
        completions: Default::default(),
        sessions: Vec::new(),
        skipped_records: 0,
        records: 0,
        sha256: hex::encode(Sha256::digest(b"")),
        bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::parse_jsonl;
    use crate::domain::tokenizer::NEVER;

    struct Store(Arc<Dataset>, std::sync::atomic::AtomicUsize);

    impl DatasetLoader for Store {
        fn load(&self, id: &str) -> Result<Arc<Dataset>, Box<dyn Error + Send + Sync>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if id.starts_with("known") {
                Ok(self.0.clone())
            } else {
                Err(format!("no dataset with id '{id}'").into())
            }
        }
    }

    fn store() -> Store {
        let ds = parse_jsonl(
            "{\"prompt\": \"Hello world\", \"completion\": \"a b c\"}\n{\"prompt\": \"x\"}\n"
                .as_bytes(),
            "known",
        )
        .unwrap();
        Store(Arc::new(ds), Default::default())
    }

    fn cache(dir: Option<&Path>) -> InputCache {
        InputCache::new(TokenizerPolicy::default(), dir.map(Path::to_path_buf))
    }

    #[test]
    fn a_spec_names_no_collection_the_sample_a_file_or_a_stored_one() {
        assert_eq!(
            PromptSource::named(false, Some("p.jsonl"), None),
            PromptSource::None
        );
        assert_eq!(PromptSource::named(true, None, None), PromptSource::Sample);
        assert_eq!(
            PromptSource::named(true, None, Some(SAMPLE_DATASET_ID)),
            PromptSource::Sample
        );
        assert_eq!(
            PromptSource::named(true, Some("p.jsonl"), Some("x")),
            PromptSource::File("p.jsonl".into())
        );
        assert_eq!(
            PromptSource::named(true, None, Some("x")),
            PromptSource::Stored("x".into())
        );
    }

    #[test]
    fn no_collection_gives_empty_lengths_and_no_input_file() {
        let c = cache(None);
        let i = c
            .prepare(
                "default",
                true,
                &PromptSource::None,
                None,
                &|_, _| {},
                NEVER,
            )
            .unwrap();
        assert!(i.data.dataset.is_empty() && i.data.prompt_len.is_empty());
        assert!(i.files.is_empty());
    }

    #[test]
    fn the_sample_is_recorded_as_builtin() {
        let i = cache(None)
            .prepare(
                "default",
                true,
                &PromptSource::Sample,
                None,
                &|_, _| {},
                NEVER,
            )
            .unwrap();
        assert_eq!(i.files.len(), 1);
        assert_eq!(i.files[0].role, "prompts");
        assert_eq!(i.files[0].name, "builtin:sample");
        assert_eq!(i.files[0].sha256, i.data.dataset.sha256);
        assert_eq!(i.data.prompt_len.len(), i.data.dataset.len());
    }

    #[test]
    fn lengths_are_kept_in_memory_then_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = store();
        let src = PromptSource::Stored("known".into());
        let c = cache(Some(dir.path()));
        let a = c
            .prepare("default", true, &src, Some(&s), &|_, _| {}, NEVER)
            .unwrap();
        assert!(a.fresh && !a.data.from_cache);
        assert_eq!(a.files[0].name, "known");
        // In memory: not loaded again.
        let b = c
            .prepare("default", true, &src, Some(&s), &|_, _| {}, NEVER)
            .unwrap();
        assert!(!b.fresh && Arc::ptr_eq(&a.data, &b.data));
        assert_eq!(s.1.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another setting is another entry.
        let n = c
            .prepare("default", false, &src, Some(&s), &|_, _| {}, NEVER)
            .unwrap();
        assert!(n.fresh);
        assert_eq!(s.1.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A new cache reads the lengths from disk.
        let d = cache(Some(dir.path()))
            .prepare("default", true, &src, Some(&s), &|_, _| {}, NEVER)
            .unwrap();
        assert!(d.fresh && d.data.from_cache);
        assert_eq!(d.data.prompt_len, a.data.prompt_len);
    }

    #[test]
    fn memory_keeps_the_last_few_collections() {
        let c = cache(None);
        let s = store();
        let tok = c.tokenizer("default").unwrap();
        let src = |i: usize| PromptSource::Stored(format!("known{i}"));
        let (first, _) = c
            .lengths(&src(0), Some(&s), &tok, true, &|_, _| {}, NEVER)
            .unwrap();
        // Failures are not kept.
        let missing = PromptSource::File("/nonexistent/p.jsonl".into());
        for _ in 0..KEPT_COLLECTIONS {
            assert!(matches!(
                c.lengths(&missing, None, &tok, true, &|_, _| {}, NEVER),
                Err(InputsError::Dataset(_))
            ));
        }
        let (again, fresh) = c
            .lengths(&src(0), Some(&s), &tok, true, &|_, _| {}, NEVER)
            .unwrap();
        assert!(!fresh && Arc::ptr_eq(&first, &again));
        for i in 1..=KEPT_COLLECTIONS {
            assert!(
                c.lengths(&src(i), Some(&s), &tok, true, &|_, _| {}, NEVER)
                    .unwrap()
                    .1
            );
        }
        let (_, fresh) = c
            .lengths(&src(0), Some(&s), &tok, true, &|_, _| {}, NEVER)
            .unwrap();
        assert!(fresh, "pushed out by newer collections");
    }

    #[test]
    fn errors_tell_which_input_failed() {
        let c = cache(None);
        let e = c
            .prepare(
                "no-such-tokenizer",
                true,
                &PromptSource::Sample,
                None,
                &|_, _| {},
                NEVER,
            )
            .unwrap_err();
        assert!(matches!(e, InputsError::Tokenizer(_)), "{e}");
        let e = c
            .prepare(
                "default",
                true,
                &PromptSource::Stored("x".into()),
                None,
                &|_, _| {},
                NEVER,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset 'x': the CLI reads prompt files with --prompt-file (dataset ids are for the service)"
        );
        let e = c
            .prepare(
                "default",
                true,
                &PromptSource::Stored("y".into()),
                Some(&store()),
                &|_, _| {},
                NEVER,
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "no dataset with id 'y'");
    }

    #[test]
    fn a_cancelled_tokenization_stops_and_caches_nothing() {
        let c = cache(None);
        let e = c
            .prepare(
                "default",
                true,
                &PromptSource::Sample,
                None,
                &|_, _| {},
                &|| true,
            )
            .unwrap_err();
        assert!(
            matches!(e, InputsError::Count(TokenizerError::Cancelled)),
            "{e}"
        );
        let (_, fresh) = c
            .lengths(
                &PromptSource::Sample,
                None,
                &c.tokenizer("default").unwrap(),
                true,
                &|_, _| {},
                NEVER,
            )
            .unwrap();
        assert!(fresh, "the cancelled run left nothing in memory");
    }
}
