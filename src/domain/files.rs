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
}

impl<'a> RecordingResolver<'a> {
    /// Records what `inner` resolves.
    pub fn new(inner: &'a dyn FileResolver) -> Self {
        Self {
            inner,
            used: Mutex::new(Vec::new()),
        }
    }

    /// The files resolved so far, hashed (each once, in first-use order).
    pub fn inputs(&self) -> std::io::Result<Vec<InputFile>> {
        let used = self.used.lock().expect("not poisoned").clone();
        let mut out: Vec<InputFile> = Vec::new();
        for (field, name, path) in used {
            if out.iter().any(|i| i.role == field && i.name == name) {
                continue;
            }
            let (sha256, bytes) = sha256_file(&path)?;
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
