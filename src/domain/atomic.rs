//! The one atomic file writer: every output file is written to `.{name}.partial-{pid}` beside its
//! destination and renamed into place only when complete, so a reader never sees a half-written file.
//! An uncommitted temporary file is removed when its writer is dropped (`cli/cleanup.rs` removes those of
//! killed processes by their name).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name of `dest`: `.{file_name}.partial-{pid}` in the same directory.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// A buffered file written under [`partial_path`] and renamed to its destination by [`AtomicFile::commit`];
/// dropped without a commit, the temporary file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file of `dest` (its directory is created if needed).
    pub fn create(dest: &Path) -> std::io::Result<Self> {
        if let Some(d) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let tmp = partial_path(dest);
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        Ok(Self {
            out: Some(out),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs and renames the file into place; returns its final path. On an error the temporary
    /// file is removed.
    pub fn commit(mut self) -> std::io::Result<PathBuf> {
        let out = self.out.take().expect("not committed twice");
        let done = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.dest));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        Ok(std::mem::take(&mut self.dest))
    }

    fn out(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("not committed")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_bytes(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit().map(drop)
}

/// Writes `dest` atomically with `write`; the file is renamed into place only when `write` succeeds.
pub fn write_with<T, E>(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<std::io::Error>,
{
    let mut f = AtomicFile::create(dest)?;
    let result = write(&mut f)?;
    f.commit()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub").join("out.jsonl");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"partial").unwrap();
        let tmp = format!(".out.jsonl.partial-{}", std::process::id());
        assert_eq!(names(&dir.path().join("sub")), vec![tmp]);
        drop(f);
        assert!(names(&dir.path().join("sub")).is_empty());
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"done\n").unwrap();
        assert_eq!(f.commit().unwrap(), dest);
        assert_eq!(std::fs::read(&dest).unwrap(), b"done\n");
        assert_eq!(names(&dir.path().join("sub")), vec!["out.jsonl"]);
    }

    #[test]
    fn write_with_leaves_nothing_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        let r: Result<(), std::io::Error> = write_with(&p, |w| {
            w.write_all(b"x")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert!(names(dir.path()).is_empty());
        write_with(&p, |w| w.write_all(b"ok\n")).unwrap();
        write_bytes(&dir.path().join("b.json"), b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"ok\n");
        assert_eq!(names(dir.path()), vec!["b.json", "out.jsonl"]);
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("taken");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("x"), b"").unwrap();
        assert!(write_bytes(&dest, b"x").is_err());
        assert_eq!(names(dir.path()), vec!["taken"]);
    }
}
