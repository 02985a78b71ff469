//! Disk admission: a job or upload is refused (507 `insufficient_storage`) when the free space under the data
//! directory, less what it is expected to write, would fall below the configured reserve, and an upload is
//! refused when the dataset and trace stores would exceed their quota.

use std::path::Path;

/// Why there is no room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoom {
    /// Free space below what is needed plus the reserve.
    #[error(
        "not enough free disk space for this job: it needs about {} and {} must stay free, but only {} are free",
        human(*needed), human(*reserve), human(*free)
    )]
    LowSpace {
        /// Bytes the work is expected to write.
        needed: u64,
        /// Bytes free now.
        free: u64,
        /// Bytes kept free.
        reserve: u64,
    },
    /// The stores' quota would be exceeded.
    #[error(
        "the dataset and trace stores hold {} of their {} quota; this upload ({}) does not fit: delete unused datasets or traces",
        human(*used), human(*quota), human(*incoming)
    )]
    Quota {
        /// Bytes stored now.
        used: u64,
        /// Bytes of the upload (declared, or received so far).
        incoming: u64,
        /// The quota.
        quota: u64,
    },
}

fn human(b: u64) -> String {
    crate::domain::limits::human_bytes(b as f64)
}

/// Bytes available to unprivileged users on the file system holding `path`.
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes available (no check on platforms without statvfs).
#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// The disk settings of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskPolicy {
    /// Bytes that must stay free under the data directory.
    pub reserve: u64,
    /// Most bytes the dataset and trace stores may hold together (0 = no quota).
    pub max_store_bytes: u64,
}

impl DiskPolicy {
    /// Refuses work expected to write `needed` bytes under `dir` when it would eat into the reserve. A
    /// failing statvfs admits the work (the write itself then reports the real error).
    pub fn admit(&self, dir: &Path, needed: u64) -> Result<(), NoRoom> {
        match free_bytes(dir) {
            Ok(free) if free < needed.saturating_add(self.reserve) => Err(NoRoom::LowSpace {
                needed,
                free,
                reserve: self.reserve,
            }),
            _ => Ok(()),
        }
    }

    /// Bytes an upload may still add to stores holding `used` bytes (u64::MAX without a quota).
    pub fn store_room(&self, used: u64) -> u64 {
        if self.max_store_bytes == 0 {
            u64::MAX
        } else {
            self.max_store_bytes.saturating_sub(used)
        }
    }

    /// Refuses an upload of `incoming` bytes to stores holding `used` bytes when it exceeds the quota.
    pub fn admit_upload(&self, used: u64, incoming: u64) -> Result<(), NoRoom> {
        if incoming > self.store_room(used) {
            return Err(NoRoom::Quota {
                used,
                incoming,
                quota: self.max_store_bytes,
            });
        }
        Ok(())
    }
}

/// True when an I/O error means the disk (or a quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_and_the_reserve_applies() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let p = DiskPolicy {
            reserve: 0,
            max_store_bytes: 0,
        };
        p.admit(dir.path(), 1).unwrap();
        let p = DiskPolicy {
            reserve: u64::MAX / 2,
            max_store_bytes: 0,
        };
        let e = p.admit(dir.path(), 1000).unwrap_err();
        assert!(matches!(e, NoRoom::LowSpace { needed: 1000, .. }), "{e}");
        assert!(e.to_string().contains("must stay free"), "{e}");
    }

    #[test]
    fn the_quota_counts_what_is_stored() {
        let p = DiskPolicy {
            reserve: 0,
            max_store_bytes: 1000,
        };
        p.admit_upload(400, 600).unwrap();
        let e = p.admit_upload(401, 600).unwrap_err();
        assert_eq!(
            e,
            NoRoom::Quota {
                used: 401,
                incoming: 600,
                quota: 1000
            }
        );
        assert_eq!(p.store_room(1200), 0);
        let none = DiskPolicy {
            reserve: 0,
            max_store_bytes: 0,
        };
        none.admit_upload(u64::MAX - 1, u64::MAX - 1).unwrap();
    }
}
