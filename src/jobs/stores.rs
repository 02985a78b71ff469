//! The dataset and trace stores: uploads validated record by record, stored content-addressed, plus the
//! built-in `sample` dataset registered at startup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::blobs::{BlobStore, TempUpload, valid_id};
use crate::domain::dataset::{Dataset, DatasetError, DatasetParser, Schema};
use crate::domain::sample::{SAMPLE_DATASET_ID, sample_jsonl};
use crate::domain::stats::LengthSummary;

/// Now as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Token-length statistics of a dataset under one tokenizer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenStats {
    /// Tokenizer name.
    pub tokenizer: String,
    /// Tokenizer fingerprint.
    pub fingerprint: String,
    /// Whether special tokens were counted.
    pub add_special_tokens: bool,
    /// Prompt lengths.
    pub prompt_length: Option<LengthSummary>,
    /// Completion lengths.
    pub completion_length: Option<LengthSummary>,
}

/// The stored record of a dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetRecord {
    /// SHA-256 of the content (or `sample`).
    pub id: String,
    /// Name given at upload (file name), or the id.
    pub name: String,
    /// `plain` or `sessioned`.
    pub schema: String,
    /// Non-blank records.
    pub records: u64,
    /// Sessions (sessioned collections).
    pub sessions: u64,
    /// Prompts (plain) or turns (sessioned).
    pub turns: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Upload time.
    pub created_at: String,
    /// Token statistics keyed by `tokenizer@fingerprint`, filled once a job has tokenized the dataset.
    #[serde(default)]
    pub token_stats: BTreeMap<String, TokenStats>,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The content is invalid.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A trace is invalid.
    #[error("{detail}")]
    Trace {
        /// What is wrong.
        detail: String,
        /// The line, when known.
        line: Option<u64>,
    },
    /// Storage failed.
    #[error("storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed dataset kept in memory, by id.
type CachedDataset = (String, Arc<Dataset>);

/// Prompt collections on disk, with a small cache of parsed datasets.
#[derive(Debug, Clone)]
pub struct DatasetStore {
    blobs: BlobStore,
    cache: Arc<Mutex<Vec<CachedDataset>>>,
    stats_lock: Arc<Mutex<()>>,
}

const CACHED_DATASETS: usize = 4;

impl DatasetStore {
    /// Opens `<data>/datasets` and registers the built-in `sample` collection.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let blobs = BlobStore::open(data_dir.join("datasets"), "jsonl")?;
        let store = Self {
            blobs,
            cache: Arc::default(),
            stats_lock: Arc::default(),
        };
        if store.get(SAMPLE_DATASET_ID).is_none()
            || !store.blobs.content_path(SAMPLE_DATASET_ID).exists()
        {
            let text = sample_jsonl();
            let tmp = data_dir.join("datasets").join(".sample.partial");
            std::fs::write(&tmp, &text)?;
            let ds = parse_file(&tmp, SAMPLE_DATASET_ID).map_err(std::io::Error::other)?;
            let upload = TempUpload {
                path: tmp,
                sha256: ds.sha256.clone(),
                bytes: ds.bytes,
            };
            let rec = record_of(&ds, SAMPLE_DATASET_ID, "built-in sample collection");
            store.blobs.put(&upload, SAMPLE_DATASET_ID, &rec)?;
        }
        Ok(store)
    }

    /// The record of `id`.
    pub fn get(&self, id: &str) -> Option<DatasetRecord> {
        valid_id(id, &[SAMPLE_DATASET_ID])
            .then(|| self.blobs.get(id))
            .flatten()
    }

    /// Every record.
    pub fn list(&self) -> Vec<DatasetRecord> {
        self.blobs.list()
    }

    /// Validates an upload (blocking: call off the runtime) and stores it. Returns the record and whether it
    /// is new.
    pub fn store_upload(
        &self,
        upload: TempUpload,
        name: &str,
    ) -> Result<(DatasetRecord, bool), UploadError> {
        let ds = parse_file(&upload.path, name)?;
        debug_assert_eq!(ds.sha256, upload.sha256);
        let id = upload.sha256.clone();
        if let Some(existing) = self.get(&id) {
            return Ok((existing, false));
        }
        let rec = record_of(&ds, &id, name);
        let created = self.blobs.put(&upload, &id, &rec)?;
        Ok((rec, created))
    }

    /// Path of a stored dataset's content.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        self.get(id).map(|_| self.blobs.content_path(id))
    }

    /// Removes a dataset (the built-in one cannot be removed).
    pub fn delete(&self, id: &str) -> Option<u64> {
        if id == SAMPLE_DATASET_ID || !valid_id(id, &[]) {
            return None;
        }
        self.cache
            .lock()
            .expect("not poisoned")
            .retain(|(k, _)| k != id);
        self.blobs.delete(id)
    }

    /// Loads and parses `id` (blocking), from a small cache.
    pub fn load(&self, id: &str) -> Result<Arc<Dataset>, UploadError> {
        if let Some((_, d)) = self
            .cache
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(k, _)| k == id)
        {
            return Ok(d.clone());
        }
        let rec = self.get(id).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no dataset with id '{id}'"),
            )
        })?;
        let ds = Arc::new(parse_file(&self.blobs.content_path(id), &rec.name)?);
        let mut cache = self.cache.lock().expect("not poisoned");
        cache.retain(|(k, _)| k != id);
        cache.insert(0, (id.to_string(), ds.clone()));
        cache.truncate(CACHED_DATASETS);
        Ok(ds)
    }

    /// Records token statistics for `id` (once per tokenizer).
    pub fn record_token_stats(&self, id: &str, stats: TokenStats) {
        let _guard = self.stats_lock.lock().expect("not poisoned");
        let Some(mut rec) = self.get(id) else { return };
        let key = format!(
            "{}@{}{}",
            stats.tokenizer,
            stats.fingerprint,
            if stats.add_special_tokens {
                ""
            } else {
                "/no-special"
            }
        );
        if rec.token_stats.contains_key(&key) {
            return;
        }
        rec.token_stats.insert(key, stats);
        let _ = self.blobs.write_meta(id, &rec);
    }

    /// Bytes stored.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.total_bytes()
    }

    /// Bytes of uploaded collections (what the store quota counts: the built-in sample is not an upload).
    pub fn uploaded_bytes(&self) -> u64 {
        let sample =
            std::fs::metadata(self.blobs.content_path(SAMPLE_DATASET_ID)).map_or(0, |m| m.len());
        self.total_bytes().saturating_sub(sample)
    }
}

fn parse_file(path: &Path, name: &str) -> Result<Dataset, DatasetError> {
    let f = std::fs::File::open(path).map_err(|e| DatasetError::Io {
        file: name.to_string(),
        reason: e.to_string(),
    })?;
    let mut p = DatasetParser::new(name);
    p.read_all(std::io::BufReader::with_capacity(1 << 20, f))?;
    p.finish()
}

fn record_of(ds: &Dataset, id: &str, name: &str) -> DatasetRecord {
    DatasetRecord {
        id: id.to_string(),
        name: name.to_string(),
        schema: match ds.schema {
            Schema::Plain => "plain".into(),
            Schema::Sessioned => "sessioned".into(),
        },
        records: ds.records,
        sessions: ds.sessions.len() as u64,
        turns: ds.len() as u64,
        bytes: ds.bytes,
        created_at: now_rfc3339(),
        token_stats: BTreeMap::new(),
    }
}

/// Trace formats accepted by `POST /v1/traces`.
pub const TRACE_FORMATS: &[&str] = &[
    "azure", "mooncake", "burstgpt", "generic", "csv", "jsonl", "json",
];

/// The stored record of a trace (or any input file a spec can name: stat CSVs, pattern configs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceRecord {
    /// SHA-256 of the content.
    pub id: String,
    /// Name given at upload.
    pub name: String,
    /// Declared format.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Non-blank lines.
    pub lines: u64,
    /// Upload time.
    pub created_at: String,
}

/// Trace files on disk.
#[derive(Debug, Clone)]
pub struct TraceStore {
    blobs: BlobStore,
}

impl TraceStore {
    /// Opens `<data>/traces`.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            blobs: BlobStore::open(data_dir.join("traces"), "data")?,
        })
    }

    /// The record of `id`.
    pub fn get(&self, id: &str) -> Option<TraceRecord> {
        valid_id(id, &[]).then(|| self.blobs.get(id)).flatten()
    }

    /// Every record.
    pub fn list(&self) -> Vec<TraceRecord> {
        self.blobs.list()
    }

    /// Path of a stored trace's content.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        self.get(id).map(|_| self.blobs.content_path(id))
    }

    /// Checks the upload's shape for its format (blocking) and stores it.
    pub fn store_upload(
        &self,
        upload: TempUpload,
        name: &str,
        format: &str,
    ) -> Result<(TraceRecord, bool), UploadError> {
        let lines = check_trace(&upload.path, format)?;
        let id = upload.sha256.clone();
        if let Some(existing) = self.get(&id) {
            return Ok((existing, false));
        }
        let rec = TraceRecord {
            id: id.clone(),
            name: name.to_string(),
            format: format.to_string(),
            bytes: upload.bytes,
            lines,
            created_at: now_rfc3339(),
        };
        let created = self.blobs.put(&upload, &id, &rec)?;
        Ok((rec, created))
    }

    /// Removes a trace.
    pub fn delete(&self, id: &str) -> Option<u64> {
        valid_id(id, &[]).then(|| self.blobs.delete(id)).flatten()
    }

    /// Bytes stored.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.total_bytes()
    }
}

/// Validates the container shape of a trace: UTF-8 lines; JSONL formats parse line by line as objects;
/// CSV formats have a header and rows with the header's number of fields; the Azure and Mooncake formats
/// have their required columns/keys. Returns the number of non-blank lines.
fn check_trace(path: &Path, format: &str) -> Result<u64, UploadError> {
    use std::io::BufRead;
    let bad = |line: u64, detail: String| UploadError::Trace {
        detail,
        line: Some(line),
    };
    let f = std::fs::File::open(path)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, f);
    let jsonl = matches!(format, "mooncake" | "jsonl");
    let csv_like = matches!(format, "azure" | "burstgpt" | "csv");
    let mut header_fields = 0usize;
    let mut lines = 0u64;
    let mut buf = Vec::new();
    let mut reader = reader;
    let mut no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        no += 1;
        let text =
            std::str::from_utf8(&buf).map_err(|_| bad(no, format!("line {no}: invalid UTF-8")))?;
        let text = if no == 1 {
            crate::domain::bom::strip_bom_str(text)
        } else {
            text
        }
        .trim();
        if text.is_empty() {
            continue;
        }
        lines += 1;
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| bad(no, format!("line {no}: invalid JSON: {e}")))?;
            let obj = v
                .as_object()
                .ok_or_else(|| bad(no, format!("line {no}: a record must be a JSON object")))?;
            if format == "mooncake" {
                for key in ["timestamp", "input_length", "output_length"] {
                    if !obj.contains_key(key) {
                        return Err(bad(no, format!("line {no}: field '{key}' is missing")));
                    }
                }
            }
        } else if csv_like {
            let fields = text.split(',').count();
            if lines == 1 {
                header_fields = fields;
                if format == "azure" {
                    for col in ["TIMESTAMP", "ContextTokens", "GeneratedTokens"] {
                        if !text.split(',').any(|c| c.trim().trim_matches('"') == col) {
                            return Err(bad(
                                no,
                                format!("line {no}: the header lacks the column '{col}'"),
                            ));
                        }
                    }
                }
            } else if fields < header_fields && format != "csv" {
                return Err(bad(
                    no,
                    format!("line {no}: {fields} fields, the header has {header_fields}"),
                ));
            }
        }
    }
    if lines == 0 {
        return Err(UploadError::Trace {
            detail: "the trace is empty".into(),
            line: None,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_registered_and_uploads_are_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::open(dir.path()).unwrap();
        let sample = store.get("sample").unwrap();
        assert_eq!(sample.turns, 1000);
        assert!(store.load("sample").unwrap().len() == 1000);
        let write = |text: &str| {
            let p = dir
                .path()
                .join(format!("u{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&p, text).unwrap();
            let (sha, bytes) = crate::domain::files::sha256_file(&p).unwrap();
            TempUpload {
                path: p,
                sha256: sha,
                bytes,
            }
        };
        let (a, new_a) = store
            .store_upload(write("{\"prompt\": \"x\"}\n"), "a.jsonl")
            .unwrap();
        let (b, new_b) = store
            .store_upload(write("{\"prompt\": \"x\"}\n"), "b.jsonl")
            .unwrap();
        assert!(new_a && !new_b);
        assert_eq!(a.id, b.id);
        let err = store
            .store_upload(write("{\"prompt\": 1}\n"), "bad.jsonl")
            .unwrap_err();
        assert!(err.to_string().contains("bad.jsonl:1"));
        assert!(store.delete("sample").is_none());
        assert!(store.delete(&a.id).is_some());
        assert!(store.get(&a.id).is_none());
        assert!(store.get("../etc/passwd").is_none());
    }
}
