//! Input files named by a spec (traces, pattern configs, statistics CSVs).
//!
//! A spec names files by string. The CLI resolves the string as a path; the service resolves it as the id of
//! an uploaded trace, so a spec can never reach an arbitrary server path. Generators only see the
//! [`FileResolver`] trait, and every file they open is recorded (with its SHA-256) for the manifest.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::spec::common::SpecError;

/// An input file as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputFile {
    /// What it is used for (`prompts`, `trace`, ...).
    pub role: String,
    /// Path (CLI) or id (service).
    pub name: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Turns a file name from a spec field into a readable path.
pub trait FileResolver: Sync {
    /// Resolves `name` given in spec field `field` (e.g. `stat.traffic_file`).
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError>;

    /// Tells the resolver the SHA-256 (hex) and size of the whole file at `path`, hashed while a reader read
    /// it, so that a manifest need not read it again. Ignored by default.
    fn hashed(&self, _path: &Path, _sha256: &str, _bytes: u64) {}
}

/// A reader that hashes what it reads (see [`digest_of`]).
pub struct HashingRead<R> {
    inner: R,
    state: std::sync::Arc<Mutex<(Sha256, u64)>>,
}

/// The hash state a [`HashingRead`] shares with its creator.
pub type HashState = std::sync::Arc<Mutex<(Sha256, u64)>>;

impl<R: Read> HashingRead<R> {
    /// Wraps `inner`; the returned state sees every byte read.
    pub fn new(inner: R) -> (Self, HashState) {
        let state: HashState = std::sync::Arc::new(Mutex::new((Sha256::new(), 0)));
        (
            Self {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

/// The SHA-256 (hex) and count of the bytes a [`HashingRead`] has read so far.
pub fn digest_of(state: &HashState) -> (String, u64) {
    let s = state.lock().expect("not poisoned");
    (hex::encode(s.0.clone().finalize()), s.1)
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.lock().expect("not poisoned");
        s.0.update(&buf[..n]);
        s.1 += n as u64;
        Ok(n)
    }
}

/// CLI resolver: names are paths and must exist.
#[derive(Debug, Default, Clone, Copy)]
pub struct PathResolver;

impl FileResolver for PathResolver {
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        let p = PathBuf::from(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(SpecError {
                field: field.to_string(),
                message: format!("file '{name}' does not exist"),
            })
        }
    }
}

/// Wraps a resolver and remembers every file resolved, for the manifest.
pub struct RecordingResolver<'a> {
    inner: &'a dyn FileResolver,
    used: Mutex<Vec<(String, String, PathBuf)>>,
    /// Hashes taken while the files were read ([`FileResolver::hashed`]).
    hashes: Mutex<std::collections::HashMap<PathBuf, (String, u64)>>,
}

impl<'a> RecordingResolver<'a> {
    /// Records what `inner` resolves.
    pub fn new(inner: &'a dyn FileResolver) -> Self {
        Self {
            inner,
            used: Mutex::new(Vec::new()),
            hashes: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The files resolved so far, hashed (each once, in first-use order): with the hash taken while a reader
    /// read the file when there is one, else by reading it now.
    pub fn inputs(&self) -> std::io::Result<Vec<InputFile>> {
        let used = self.used.lock().expect("not poisoned").clone();
        let hashes = self.hashes.lock().expect("not poisoned").clone();
        let mut out: Vec<InputFile> = Vec::new();
        for (field, name, path) in used {
            if out.iter().any(|i| i.role == field && i.name == name) {
                continue;
            }
            let (sha256, bytes) = match hashes.get(&path) {
                Some(h) => h.clone(),
                None => sha256_file(&path)?,
            };
            out.push(InputFile {
                role: field,
                name,
                sha256,
                bytes,
            });
        }
        Ok(out)
    }
}

impl FileResolver for RecordingResolver<'_> {
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        let p = self.inner.resolve(field, name)?;
        self.used.lock().expect("not poisoned").push((
            field.to_string(),
            name.to_string(),
            p.clone(),
        ));
        Ok(p)
    }

    fn hashed(&self, path: &Path, sha256: &str, bytes: u64) {
        self.hashes
            .lock()
            .expect("not poisoned")
            .insert(path.to_path_buf(), (sha256.to_string(), bytes));
    }
}

/// SHA-256 (hex) and size of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(h.finalize()), total))
}

/// A problem in an input file (trace, CSV, config): which file, line, column/field, and why.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{file}{}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!(": column '{f}'")).unwrap_or_default())]
pub struct InputError {
    /// The file (as named in the spec).
    pub file: String,
    /// 1-based line (or row) number, when known.
    pub line: Option<u64>,
    /// Column or field, when known.
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

impl InputError {
    /// An error about a whole file.
    pub fn file(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            field: None,
            reason: reason.into(),
        }
    }

    /// An error at a line (and optionally a column).
    pub fn at(
        file: impl Into<String>,
        line: u64,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: Some(line),
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_hash_taken_while_reading_is_the_files_and_spares_a_second_read() {
        let text = b"TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,374\n".repeat(100);
        let (mut r, state) = HashingRead::new(&text[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        let want = hex::encode(Sha256::digest(&text));
        assert_eq!(digest_of(&state), (want.clone(), text.len() as u64));
        // Recorded for a path, the hash is used as is: the file is not read again (here it does not exist).
        let rec = RecordingResolver::new(&PathResolver);
        rec.used.lock().unwrap().push((
            "trace.file".into(),
            "t.csv".into(),
            PathBuf::from("/nonexistent/t.csv"),
        ));
        rec.hashed(Path::new("/nonexistent/t.csv"), &want, 7);
        let inputs = rec.inputs().unwrap();
        assert_eq!(
            (inputs[0].sha256.as_str(), inputs[0].bytes),
            (want.as_str(), 7)
        );
    }

    use super::*;

    #[test]
    fn input_error_display() {
        assert_eq!(
            InputError::at("t.csv", 3, Some("P50"), "not a number").to_string(),
            "t.csv:3: column 'P50': not a number"
        );
        assert_eq!(
            InputError::file("t.csv", "empty").to_string(),
            "t.csv: empty"
        );
    }

    #[test]
    fn recording_resolver_hashes_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "abc").unwrap();
        let r = RecordingResolver::new(&PathResolver);
        let name = p.display().to_string();
        r.resolve("stat.traffic_file", &name).unwrap();
        r.resolve("stat.traffic_file", &name).unwrap();
        let inputs = r.inputs().unwrap();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].bytes, 3);
        assert_eq!(
            inputs[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            PathResolver
                .resolve("f", "/no/such")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }
}
