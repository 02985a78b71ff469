//! Token lengths of a prompt collection, computed once in parallel and cached on disk per
//! (dataset content hash, tokenizer fingerprint, special-token setting), so a second run does not re-tokenize.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dataset::Dataset;
use super::tokenizer::{Cancel, TokenCounter, TokenizerError};

const NONE: u32 = u32::MAX;
const MAGIC: &[u8; 8] = b"WGLEN001";

/// A collection together with the token lengths of its prompts and completions.
#[derive(Debug, Clone)]
pub struct TokenizedDataset {
    /// The collection.
    pub dataset: Arc<Dataset>,
    /// Token count of each prompt.
    pub prompt_len: Vec<u32>,
    /// Token count of each completion, when there is one.
    pub completion_len: Vec<Option<u32>>,
    /// True when the lengths came from the on-disk cache.
    pub from_cache: bool,
}

/// Where the cache file for a dataset and tokenizer lives.
pub fn cache_path(dir: &Path, dataset: &Dataset, tok: &TokenCounter, add_special: bool) -> PathBuf {
    cache_path_of(dir, &dataset.sha256, tok, add_special)
}

fn cache_path_of(dir: &Path, sha256: &str, tok: &TokenCounter, add_special: bool) -> PathBuf {
    dir.join(format!(
        "{sha256}-{}-{}.lens",
        tok.fingerprint(),
        if add_special { "s" } else { "n" }
    ))
}

/// Whether `dir` holds lengths for the collection file at `path` (hashed now, without parsing it). A hint
/// only, to load the tokenizer before the collection when it will be needed (the model's load leaves freed
/// memory that the collection then fills, instead of both adding up); [`tokenize`] still checks the cache
/// against the parsed collection's own hash.
pub fn cached_for_file(dir: &Path, path: &Path, tok: &TokenCounter, add_special: bool) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut h = Sha256::new();
    if std::io::copy(&mut f, &mut h).is_err() {
        return false;
    }
    cache_path_of(dir, &hex::encode(h.finalize()), tok, add_special).is_file()
}

/// Tokenizes `dataset` (or reads the cached lengths from `cache_dir`). `progress(done, total)` reports texts
/// tokenized; `cancel` is polled per batch of 64 texts and inside long ones ([`TokenizerError::Cancelled`]).
pub fn tokenize(
    mut dataset: Arc<Dataset>,
    tok: &TokenCounter,
    add_special: bool,
    cache_dir: Option<&Path>,
    progress: &(dyn Fn(usize, usize) + Sync),
    cancel: Cancel<'_>,
) -> Result<TokenizedDataset, TokenizerError> {
    let n = dataset.len();
    if let Some(dir) = cache_dir {
        let path = cache_path(dir, &dataset, tok, add_special);
        if let Some((p, c)) = read_cache(&path, n) {
            release_completions(&mut dataset);
            return Ok(TokenizedDataset {
                dataset,
                prompt_len: p,
                completion_len: c,
                from_cache: true,
            });
        }
    }
    // Prompts and present completions in one parallel batch.
    let mut texts: Vec<&str> = dataset.prompts.iter().map(String::as_str).collect();
    let mut comp_slot = Vec::with_capacity(n);
    for c in dataset.completions.iter() {
        match c {
            Some(c) => {
                comp_slot.push(Some(texts.len()));
                texts.push(c);
            }
            None => comp_slot.push(None),
        }
    }
    let total = texts.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let counts = tok.count_many(
        &texts,
        add_special,
        &|k| {
            let d = done.fetch_add(k, std::sync::atomic::Ordering::Relaxed) + k;
            progress(d, total);
        },
        cancel,
    )?;
    let prompt_len = counts[..n].to_vec();
    let completion_len = comp_slot.iter().map(|s| s.map(|i| counts[i])).collect();
    drop(texts);
    release_completions(&mut dataset);
    let out = TokenizedDataset {
        dataset,
        prompt_len,
        completion_len,
        from_cache: false,
    };
    if let Some(dir) = cache_dir {
        // The cache is an optimisation: failing to write it is not an error.
        let _ = write_cache(&cache_path(dir, &out.dataset, tok, add_special), &out);
    }
    Ok(out)
}

/// Frees the completion texts of a collection this call owns alone (a file read for one run): once counted,
/// nothing reads them (outputs take prompts and lengths), and in a ShareGPT-style file they are most of the
/// text. A shared collection (the service's store) keeps them for other tokenizers.
fn release_completions(dataset: &mut Arc<Dataset>) {
    if let Some(d) = Arc::get_mut(dataset) {
        d.completions.release();
    }
}

fn read_cache(path: &Path, n: usize) -> Option<(Vec<u32>, Vec<Option<u32>>)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() != 16 + 8 * n || &bytes[..8] != MAGIC {
        return None;
    }
    let count = u64::from_le_bytes(bytes[8..16].try_into().ok()?) as usize;
    if count != n {
        return None;
    }
    let word =
        |i: usize| u32::from_le_bytes(bytes[16 + 4 * i..20 + 4 * i].try_into().expect("4 bytes"));
    let p = (0..n).map(word).collect();
    let c = (0..n)
        .map(|i| match word(n + i) {
            NONE => None,
            v => Some(v),
        })
        .collect();
    Some((p, c))
}

fn write_cache(path: &Path, t: &TokenizedDataset) -> std::io::Result<()> {
    let n = t.prompt_len.len();
    let mut buf = Vec::with_capacity(16 + 8 * n);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(n as u64).to_le_bytes());
    for &p in &t.prompt_len {
        buf.extend_from_slice(&p.to_le_bytes());
    }
    for c in &t.completion_len {
        buf.extend_from_slice(&c.unwrap_or(NONE).to_le_bytes());
    }
    super::atomic::write_bytes(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::parse_jsonl;
    use crate::domain::tokenizer::NEVER;

    #[test]
    fn second_run_reads_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Arc::new(
            parse_jsonl(
                "{\"prompt\": \"Hello world\", \"completion\": \"a b c\"}\n{\"prompt\": \"x\"}\n"
                    .as_bytes(),
                "t",
            )
            .unwrap(),
        );
        let tok = TokenCounter::embedded();
        let a = tokenize(ds.clone(), &tok, true, Some(dir.path()), &|_, _| {}, NEVER).unwrap();
        assert!(!a.from_cache);
        assert_eq!(a.prompt_len, vec![2, 1]);
        assert_eq!(a.completion_len, vec![Some(3), None]);
        let b = tokenize(ds, &tok, true, Some(dir.path()), &|_, _| {}, NEVER).unwrap();
        assert!(b.from_cache);
        assert_eq!(b.prompt_len, a.prompt_len);
        assert_eq!(b.completion_len, a.completion_len);
    }
}
