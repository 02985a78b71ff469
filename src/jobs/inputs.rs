//! The service's input caches: the domain's [`InputCache`] (tokenizers, tokenized datasets in memory and on
//! disk under `<data>/cache/lengths`) over the dataset store, plus the token statistics recorded on a dataset
//! the first time a tokenizer counts it.

use std::sync::Arc;

use crate::config::ServeConfig;
use crate::domain::dataset::Dataset;
use crate::domain::emit::GenerateError;
use crate::domain::inputs::{DatasetLoader, InputCache, Inputs, InputsError, PromptSource};
use crate::domain::run::RunError;
use crate::domain::sample::SAMPLE_DATASET_ID;
use crate::domain::spec::{GenerationSpec, SpecError};
use crate::domain::stats::Histogram;
use crate::domain::tokenizer::{Cancel, TokenCounter, TokenizerError, TokenizerPolicy};

use super::stores::{DatasetStore, TokenStats};

/// Tokenizers and tokenized datasets shared by every job and dataset tool.
#[derive(Debug)]
pub struct JobInputs {
    cache: InputCache,
    datasets: DatasetStore,
}

/// Reads collections from the dataset store.
struct StoreLoader<'a>(&'a DatasetStore);

impl DatasetLoader for StoreLoader<'_> {
    fn load(&self, id: &str) -> Result<Arc<Dataset>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.load(id)?)
    }
}

impl JobInputs {
    /// Tokenizers resolve by name in the configured tokenizer directory only (no paths, no HF cache).
    pub fn new(cfg: &ServeConfig, datasets: DatasetStore) -> Self {
        let policy = TokenizerPolicy {
            allow_paths: false,
            search_dirs: cfg.tokenizer_dir.iter().cloned().collect(),
            hf_cache: false,
        };
        let lengths_dir = cfg.data_dir.join("cache").join("lengths");
        Self {
            cache: InputCache::new(policy, Some(lengths_dir)),
            datasets,
        }
    }

    /// The tokenizer `name`, resolved once; an error names the spec field.
    pub fn tokenizer(&self, name: &str) -> Result<TokenCounter, SpecError> {
        self.cache.tokenizer(name).map_err(tokenizer_error)
    }

    /// The inputs of a generation job: its tokenizer and its stored dataset (the sample when none is named)
    /// with token lengths. The dataset's token statistics are recorded when the lengths were not in memory.
    /// `cancel` stops the tokenization (the job's cancel flag).
    pub fn prepare(&self, spec: &GenerationSpec, cancel: Cancel<'_>) -> Result<Inputs, RunError> {
        let id = spec.dataset.as_deref().unwrap_or(SAMPLE_DATASET_ID);
        let inputs = self
            .cache
            .prepare(
                &spec.tokenizer,
                spec.add_special_tokens,
                &PromptSource::Stored(id.to_string()),
                Some(&StoreLoader(&self.datasets)),
                &|_, _| {},
                cancel,
            )
            .map_err(|e| match e {
                InputsError::Tokenizer(t) => RunError::Generate(tokenizer_error(t).into()),
                InputsError::Count(TokenizerError::Cancelled) => {
                    RunError::Generate(GenerateError::Cancelled)
                }
                other => RunError::Io {
                    path: "dataset".into(),
                    source: std::io::Error::other(other.to_string()),
                },
            })?;
        if inputs.fresh {
            self.datasets
                .record_token_stats(id, token_stats(&inputs, spec.add_special_tokens));
        }
        Ok(inputs)
    }
}

/// Length statistics of a tokenized dataset.
fn token_stats(inputs: &Inputs, special: bool) -> TokenStats {
    let summary = |v: &mut dyn Iterator<Item = u32>| {
        let mut h = Histogram::default();
        v.for_each(|x| h.add(x as u64));
        h.summary()
    };
    let data = &inputs.data;
    TokenStats {
        tokenizer: inputs.tokenizer.id().to_string(),
        fingerprint: inputs.tokenizer.fingerprint().to_string(),
        add_special_tokens: special,
        prompt_length: summary(&mut data.prompt_len.iter().copied()),
        completion_length: summary(&mut data.completion_len.iter().flatten().copied()),
    }
}

/// A tokenizer failure as the client sees it: the field and the name it gave, never the server paths that
/// were tried or the file that failed to load (those are logged).
fn tokenizer_error(e: TokenizerError) -> SpecError {
    let message = match &e {
        TokenizerError::NotFound { name, .. } => format!(
            "'{name}' is not a known tokenizer: give the embedded default or a name from the server's \
             tokenizer directory"
        ),
        TokenizerError::Invalid { .. } => {
            "could not be loaded (the server log has the reason)".into()
        }
        TokenizerError::Encode(why) => format!("failed: {why}"),
        TokenizerError::Cancelled => "was cancelled".into(),
    };
    tracing::warn!(error = %e, "tokenizer not usable");
    SpecError {
        field: "tokenizer".into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spec::TraceType;
    use crate::domain::tokenizer::NEVER;

    fn setup() -> (tempfile::TempDir, JobInputs, DatasetStore) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ServeConfig::for_data_dir(dir.path().to_path_buf());
        let datasets = DatasetStore::open(dir.path()).unwrap();
        (dir, JobInputs::new(&cfg, datasets.clone()), datasets)
    }

    #[test]
    fn the_sample_is_read_from_the_store_and_its_stats_recorded_once() {
        let (dir, inputs, datasets) = setup();
        let spec = GenerationSpec::new(TraceType::Constant);
        let a = inputs.prepare(&spec, NEVER).unwrap();
        assert!(a.fresh);
        assert_eq!(a.files.len(), 1);
        assert_eq!(a.files[0].name, SAMPLE_DATASET_ID);
        assert_eq!(a.files[0].role, "prompts");
        let stats = datasets.get(SAMPLE_DATASET_ID).unwrap().token_stats;
        assert_eq!(stats.len(), 1, "{stats:?}");
        // Second time: from memory, same lengths, nothing recorded again.
        let b = inputs.prepare(&spec, NEVER).unwrap();
        assert!(!b.fresh && Arc::ptr_eq(&a.data, &b.data));
        // The lengths are on disk for the next server.
        let lens = std::fs::read_dir(dir.path().join("cache").join("lengths"))
            .unwrap()
            .count();
        assert_eq!(lens, 1);
    }

    #[test]
    fn a_missing_dataset_is_an_io_error_and_a_bad_tokenizer_a_spec_error() {
        let (_dir, inputs, _) = setup();
        let mut spec = GenerationSpec::new(TraceType::Constant);
        spec.dataset = Some("0123456789abcdef".into());
        let e = inputs.prepare(&spec, NEVER).unwrap_err();
        assert!(
            matches!(e, RunError::Io { ref path, .. } if path == "dataset"),
            "{e}"
        );
        let mut spec = GenerationSpec::new(TraceType::Constant);
        spec.tokenizer = "no/such-tokenizer".into();
        let e = inputs.prepare(&spec, NEVER).unwrap_err();
        assert!(matches!(e, RunError::Generate(_)), "{e}");
        let e = inputs.tokenizer("no/such-tokenizer").unwrap_err();
        let text = e.to_string();
        assert!(
            !text.contains("tokenizer tokenizer") && !text.contains("tried"),
            "{text}"
        );
        assert!(
            text.starts_with("tokenizer 'no/such-tokenizer' is not a known tokenizer"),
            "{text}"
        );
        assert!(inputs.tokenizer("default").is_ok());
    }
}
