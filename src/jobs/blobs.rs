//! Content-addressed storage of uploaded files (prompt collections and traces) under the data directory.
//!
//! An upload is streamed to a temporary file while its SHA-256 is computed and its size checked against the
//! limit; it is then validated (off the async runtime) and renamed to `<dir>/<sha256>.<ext>` next to a
//! `<sha256>.meta.json` record. Uploading the same bytes twice gives the same id.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// True for ids this store could have produced: 64 lowercase hex digits, or a reserved name.
pub fn valid_id(id: &str, reserved: &[&str]) -> bool {
    reserved.contains(&id)
        || (id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A finished upload in a temporary file.
#[derive(Debug)]
pub struct TempUpload {
    /// The temporary file.
    pub path: PathBuf,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size.
    pub bytes: u64,
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        // Renamed away on success; removed otherwise.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why an upload stream could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The content exceeded the limit.
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's stream failed (disconnect, bad gzip, ...).
    #[error("reading the upload failed: {0}")]
    Body(String),
    /// Writing the temporary file failed.
    #[error("storing the upload failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams `body` into a temporary file under `tmp_dir`, hashing it and enforcing `limit`.
pub async fn ingest<S, E>(
    tmp_dir: &Path,
    mut body: S,
    limit: u64,
) -> Result<TempUpload, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    tokio::fs::create_dir_all(tmp_dir).await?;
    let path = tmp_dir.join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
    let mut upload = TempUpload {
        path,
        sha256: String::new(),
        bytes: 0,
    };
    let file = tokio::fs::File::create(&upload.path).await?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            let msg = e.to_string();
            if msg.contains("length limit") {
                IngestError::TooLarge { limit }
            } else {
                IngestError::Body(msg)
            }
        })?;
        upload.bytes += chunk.len() as u64;
        if upload.bytes > limit {
            return Err(IngestError::TooLarge { limit });
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    upload.sha256 = hex::encode(hasher.finalize());
    Ok(upload)
}

/// A directory of content-addressed files with JSON metadata records of type `M`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    ext: &'static str,
}

impl BlobStore {
    /// A store in `dir` whose content files end in `.ext`.
    pub fn open(dir: PathBuf, ext: &'static str) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, ext })
    }

    /// Path of the content of `id`.
    pub fn content_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{}", self.ext))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.meta.json"))
    }

    /// The record of `id`, if stored.
    pub fn get<M: DeserializeOwned>(&self, id: &str) -> Option<M> {
        let bytes = std::fs::read(self.meta_path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every record.
    pub fn list<M: DeserializeOwned>(&self) -> Vec<M> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".meta.json"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.iter().filter_map(|id| self.get(id)).collect()
    }

    /// Stores `upload` as `id` with `meta`; returns false when it was already stored (the same bytes).
    pub fn put<M: Serialize>(
        &self,
        upload: &TempUpload,
        id: &str,
        meta: &M,
    ) -> std::io::Result<bool> {
        let dest = self.content_path(id);
        let meta_path = self.meta_path(id);
        if meta_path.exists() && dest.exists() {
            return Ok(false);
        }
        std::fs::rename(&upload.path, &dest)?;
        self.write_meta(id, meta)?;
        Ok(true)
    }

    /// Writes the metadata record atomically.
    pub fn write_meta<M: Serialize>(&self, id: &str, meta: &M) -> std::io::Result<()> {
        crate::domain::atomic::write_bytes(
            &self.meta_path(id),
            &serde_json::to_vec_pretty(meta).expect("meta serializes"),
        )
    }

    /// Removes `id`; returns the bytes freed, or None when absent.
    pub fn delete(&self, id: &str) -> Option<u64> {
        let meta = self.meta_path(id);
        if !meta.exists() {
            return None;
        }
        let content = self.content_path(id);
        let bytes = std::fs::metadata(&content).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&content);
        let _ = std::fs::remove_file(&meta);
        Some(bytes)
    }

    /// Total bytes of content files.
    pub fn total_bytes(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(&format!(".{}", self.ext)))
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}
