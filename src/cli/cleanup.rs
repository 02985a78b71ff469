//! Partial files of an interrupted CLI run. Results are written to `.<name>.partial-<pid>` and renamed when
//! complete; a run killed by SIGINT/SIGTERM removes its own partial files before it exits, and the next run
//! in the same directory removes those of processes that no longer exist (e.g. after `kill -9`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static DIRS: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();

/// The pid a partial file belongs to, from its name (`.workload.jsonl.partial-1234` → 1234).
fn partial_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, pid) = name.rsplit_once(".partial-")?;
    pid.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    // Linux: a live process has a /proc entry. Elsewhere, assume alive (never delete another's file).
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the partial files in `dir` whose owner matches `which`. Returns how many were removed.
fn remove_partials(dir: &Path, which: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(partial_pid) else {
            continue;
        };
        if which(pid) && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Cleans `dir` of stale partial files and makes sure ours are removed if the process is interrupted.
pub fn guard(dir: &Path) {
    let me = std::process::id();
    let stale = remove_partials(dir, |pid| pid != me && !pid_alive(pid));
    if stale > 0 {
        eprintln!(
            "removed {stale} partial file(s) left in {} by an interrupted run",
            dir.display()
        );
    }
    let dirs = DIRS.get_or_init(|| {
        install_handler();
        Mutex::new(Vec::new())
    });
    if let Ok(mut d) = dirs.lock() {
        d.push(dir.to_path_buf());
    }
}

/// A thread that waits for SIGINT/SIGTERM, removes this process's partial files and exits with 128 + signal.
fn install_handler() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // Register the handlers before returning, so a signal that arrives right after is caught.
    let registered = rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(i), Ok(t)) => Some((i, t)),
                _ => None,
            }
        }
        #[cfg(not(unix))]
        {
            None::<((), ())>
        }
    });
    #[cfg(unix)]
    if let Some((mut int, mut term)) = registered {
        std::thread::spawn(move || {
            let code = rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                }
            });
            let me = std::process::id();
            if let Some(dirs) = DIRS.get()
                && let Ok(d) = dirs.lock()
            {
                for dir in d.iter() {
                    remove_partials(dir, |pid| pid == me);
                }
            }
            eprintln!("interrupted: partial files removed");
            std::process::exit(code);
        });
    }
    #[cfg(not(unix))]
    let _ = registered;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        assert_eq!(partial_pid(".workload.jsonl.partial-1234"), Some(1234));
        assert_eq!(partial_pid(".traffic.svg.partial-7"), Some(7));
        assert_eq!(partial_pid("workload.jsonl.partial-7"), None);
        assert_eq!(partial_pid(".job.json.partial"), None);
        assert_eq!(partial_pid(".x.partial-abc"), None);
    }

    #[test]
    fn stale_partials_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 4194304 is above Linux's pid_max: never alive.
        let dead = dir.path().join(".workload.jsonl.partial-4194304");
        let mine = dir
            .path()
            .join(format!(".workload.jsonl.partial-{}", std::process::id()));
        let done = dir.path().join("workload.jsonl");
        for p in [&dead, &mine, &done] {
            std::fs::write(p, b"x").unwrap();
        }
        let removed = remove_partials(dir.path(), |pid| !pid_alive(pid));
        assert_eq!(removed, usize::from(cfg!(target_os = "linux")));
        assert!(mine.exists() && done.exists());
    }
}
