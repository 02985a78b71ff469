//! One job in memory and its persisted `job.json`: record snapshots, progress, change notifications,
//! cancellation, and recovery of the records a previous server left behind.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::model::{JobError, JobRecord, JobStatus};
use super::stores::now_rfc3339;
use crate::codes::ErrorCode;

/// File name of a job's persisted state.
pub const JOB_FILE: &str = "job.json";

/// Progress of a finished job, in millionths.
const DONE_PPM: u64 = 1_000_000;

/// One job.
#[derive(Debug)]
pub struct Job {
    record: Mutex<JobRecord>,
    cancel: CancellationToken,
    cancel_code: Mutex<Option<(ErrorCode, String)>>,
    progress_ppm: AtomicU64,
    requests: AtomicU64,
    changed: watch::Sender<u64>,
    deleted: AtomicBool,
    dir: PathBuf,
    /// The worker slot while the job computes; given back as soon as the job sees its cancellation, so the
    /// clean-up that follows (unlinking gigabytes of partial output takes a second) does not hold it.
    permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl Job {
    /// A job of `rec` whose files live in `dir`, with `progress_ppm` millionths done.
    fn new(rec: JobRecord, dir: PathBuf, progress_ppm: u64) -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            record: Mutex::new(rec),
            cancel: CancellationToken::new(),
            cancel_code: Mutex::new(None),
            progress_ppm: AtomicU64::new(progress_ppm),
            requests: AtomicU64::new(0),
            changed,
            deleted: AtomicBool::new(false),
            dir,
            permit: Mutex::new(None),
        }
    }

    /// A new queued job: its record is persisted before it is returned.
    pub(super) fn queued(rec: JobRecord, dir: PathBuf) -> std::io::Result<Self> {
        persist(&dir, &rec)?;
        Ok(Self::new(rec, dir, 0))
    }

    /// A snapshot of the record.
    pub fn record(&self) -> JobRecord {
        self.record.lock().expect("not poisoned").clone()
    }

    /// Progress: (fraction, requests so far).
    pub fn progress(&self) -> (f64, u64) {
        (
            self.progress_ppm.load(Ordering::Relaxed) as f64 / 1e6,
            self.requests.load(Ordering::Relaxed),
        )
    }

    /// A receiver notified on every change (progress or status).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The directory of the job's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Tells subscribers that something changed.
    pub(super) fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Records progress without notifying (the caller rate-limits notifications).
    pub(super) fn set_progress(&self, fraction: f64, requests: u64) {
        self.progress_ppm
            .store((fraction.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
        self.requests.store(requests, Ordering::Relaxed);
    }

    /// Marks the work as fully done.
    pub(super) fn set_done(&self) {
        self.progress_ppm.store(DONE_PPM, Ordering::Relaxed);
    }

    /// The cancellation token polled by the work.
    pub(super) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True once cancelled (by a client, a timeout or shutdown).
    pub(super) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The poll of running work: true once cancelled, and then the worker slot is given back (the work
    /// stops computing at this point; what is left is removing its files).
    pub(super) fn stop_requested(&self) -> bool {
        let stop = self.is_cancelled();
        if stop {
            self.release_permit();
        }
        stop
    }

    /// Holds the worker slot while the job runs.
    pub(super) fn hold_permit(&self, permit: tokio::sync::OwnedSemaphorePermit) {
        *self.permit.lock().expect("not poisoned") = Some(permit);
    }

    /// Gives the worker slot back (idempotent).
    pub(super) fn release_permit(&self) {
        drop(self.permit.lock().expect("not poisoned").take());
    }

    /// Cancels the job; the first reason given is the one recorded.
    pub(super) fn cancel_with(&self, code: ErrorCode, detail: &str) {
        let mut c = self.cancel_code.lock().expect("not poisoned");
        if c.is_none() {
            *c = Some((code, detail.to_string()));
        }
        drop(c);
        self.cancel.cancel();
    }

    /// Why the job was cancelled: a streaming client that went away unless a reason was given.
    pub(super) fn cancel_reason(&self) -> (ErrorCode, String) {
        self.cancel_code
            .lock()
            .expect("not poisoned")
            .clone()
            .unwrap_or((
                ErrorCode::Cancelled,
                "the streaming client went away".into(),
            ))
    }

    /// Marks the job deleted: its record is no longer persisted.
    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    /// True once deleted.
    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// Changes the record, persists it (unless deleted) and notifies subscribers.
    pub(super) fn update(&self, f: impl FnOnce(&mut JobRecord)) {
        let mut r = self.record.lock().expect("not poisoned");
        f(&mut r);
        let snapshot = r.clone();
        drop(r);
        if !self.deleted.load(Ordering::Relaxed) {
            // Persisting is best effort for progress; status changes are retried by the next update.
            let _ = persist(&self.dir, &snapshot);
        }
        self.notify();
    }
}

/// Writes `rec` as `dir/job.json` through a temporary file.
fn persist(dir: &Path, rec: &JobRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::domain::atomic::write_bytes(
        &dir.join(JOB_FILE),
        &serde_json::to_vec_pretty(rec).expect("record serializes"),
    )
}

/// The jobs persisted under `dir` (one directory each; unreadable records are skipped). A job that was queued
/// or running when the previous server stopped is marked failed with code `interrupted` and its partial
/// results are removed.
pub(super) fn recover(dir: &Path) -> std::io::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let dir = entry.path();
        let Ok(bytes) = std::fs::read(dir.join(JOB_FILE)) else {
            continue;
        };
        let Ok(mut rec) = serde_json::from_slice::<JobRecord>(&bytes) else {
            continue;
        };
        if !rec.status.is_terminal() {
            rec.status = JobStatus::Failed;
            rec.finished_at = Some(now_rfc3339());
            rec.error = Some(JobError {
                code: ErrorCode::Interrupted,
                detail: "the server stopped while this job was queued or running".into(),
            });
            rec.files.clear();
            remove_results(&dir);
            persist(&dir, &rec)?;
        }
        jobs.push(Job::new(rec, dir, DONE_PPM));
    }
    Ok(jobs)
}

/// The result files of a job directory (sorted; no temporaries, no `job.json`).
pub(super) fn list_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| !n.starts_with('.') && n != JOB_FILE)
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Removes every file of a job but its `job.json` (partial or complete results of a job that did not succeed).
pub(super) fn remove_results(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_name().to_string_lossy() != JOB_FILE {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Bytes of every file below `dir`.
pub(super) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: JobStatus) -> JobRecord {
        JobRecord {
            id: id.into(),
            status,
            kind: "generate".into(),
            spec: serde_json::json!({"trace_type": "constant"}),
            created_at: "2026-01-01T00:00:00Z".into(),
            started_at: None,
            finished_at: None,
            duration_secs: None,
            summary: None,
            error: None,
            files: Vec::new(),
        }
    }

    fn read(dir: &Path) -> JobRecord {
        serde_json::from_slice(&std::fs::read(dir.join(JOB_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn a_queued_job_is_persisted_and_updates_are_written_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a");
        let job = Job::queued(record("a", JobStatus::Queued), dir.clone()).unwrap();
        assert_eq!(read(&dir), job.record());
        let rx = job.subscribe();
        job.update(|r| {
            r.status = JobStatus::Succeeded;
            r.files = vec!["workload.jsonl".into()];
        });
        assert!(rx.has_changed().unwrap());
        let back = read(&dir);
        assert_eq!(back, job.record());
        assert_eq!(back.status, JobStatus::Succeeded);
        assert!(!dir.join(format!(".{JOB_FILE}.partial")).exists());
        // Deleted jobs are no longer written.
        job.mark_deleted();
        job.update(|r| r.status = JobStatus::Failed);
        assert_eq!(read(&dir).status, JobStatus::Succeeded);
    }

    #[test]
    fn recovery_keeps_finished_jobs_and_marks_unfinished_ones_interrupted() {
        let root = tempfile::tempdir().unwrap();
        let mut done = record("done", JobStatus::Succeeded);
        done.files = vec!["workload.jsonl".into()];
        for (id, rec) in [
            ("done", done.clone()),
            ("queued", record("queued", JobStatus::Queued)),
            ("running", record("running", JobStatus::Running)),
        ] {
            let dir = root.path().join(id);
            persist(&dir, &rec).unwrap();
            std::fs::write(dir.join("workload.jsonl"), "{}\n").unwrap();
        }
        // Not a job: skipped.
        std::fs::create_dir_all(root.path().join("junk")).unwrap();
        std::fs::write(root.path().join("junk").join(JOB_FILE), "not json").unwrap();

        let mut jobs = recover(root.path()).unwrap();
        jobs.sort_by_key(|j| j.record().id);
        let ids: Vec<String> = jobs.iter().map(|j| j.record().id).collect();
        assert_eq!(ids, ["done", "queued", "running"]);
        assert_eq!(jobs[0].record(), done);
        assert_eq!(list_files(jobs[0].dir()), ["workload.jsonl"]);
        for j in &jobs[1..] {
            let r = j.record();
            assert_eq!(r.status, JobStatus::Failed);
            assert!(r.finished_at.is_some());
            assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::Interrupted);
            assert_eq!(read(j.dir()), r, "the marking is persisted");
            assert!(list_files(j.dir()).is_empty(), "partial results removed");
            assert_eq!(j.progress(), (1.0, 0));
        }
    }

    #[test]
    fn the_first_cancel_reason_wins() {
        let root = tempfile::tempdir().unwrap();
        let job = Job::queued(record("c", JobStatus::Queued), root.path().join("c")).unwrap();
        assert_eq!(job.cancel_reason().0, ErrorCode::Cancelled);
        assert!(!job.is_cancelled());
        job.cancel_with(ErrorCode::Timeout, "too long");
        job.cancel_with(ErrorCode::Interrupted, "shutdown");
        assert!(job.is_cancelled());
        assert_eq!(job.cancel_reason(), (ErrorCode::Timeout, "too long".into()));
    }

    #[test]
    fn the_worker_slot_is_given_back_when_the_work_sees_its_cancel() {
        let root = tempfile::tempdir().unwrap();
        let job = Job::queued(record("s", JobStatus::Running), root.path().join("s")).unwrap();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        job.hold_permit(slots.clone().try_acquire_owned().unwrap());
        assert!(!job.stop_requested());
        assert_eq!(slots.available_permits(), 0, "held while the work runs");
        job.cancel_with(ErrorCode::Cancelled, "cancelled by DELETE");
        assert_eq!(slots.available_permits(), 0, "held until the work notices");
        assert!(job.stop_requested());
        assert_eq!(slots.available_permits(), 1, "free before the clean-up");
        job.release_permit();
        assert_eq!(
            slots.available_permits(),
            1,
            "giving it back twice is harmless"
        );
    }

    #[test]
    fn progress_is_clamped() {
        let root = tempfile::tempdir().unwrap();
        let job = Job::queued(record("p", JobStatus::Queued), root.path().join("p")).unwrap();
        job.set_progress(1.5, 7);
        assert_eq!(job.progress(), (1.0, 7));
        job.set_progress(0.25, 8);
        assert_eq!(job.progress(), (0.25, 8));
    }
}
