//! The job lifecycle: admission control, a bounded pool of blocking workers, listing, deletion, retention,
//! metrics and shutdown. Jobs belong to the [`JobManager`], never to the request that submitted them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::codes::ErrorCode;
use crate::config::ServeConfig;
use crate::domain::files::FileResolver;
use crate::domain::spec::{SpecError, ValidatedSpec};
use crate::domain::utility::Input;
use crate::domain::writer::LineTap;

use super::dataset_tools::DatasetTools;
use super::execute::{self, TraceResolver, Work};
use super::inputs::JobInputs;
use super::job::{self, Job, dir_size, remove_results};
use super::metrics::Metrics;
use super::model::{JobError, JobRecord, JobStatus};
use super::stores::{DatasetStore, TraceStore, now_rfc3339};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Too many jobs wait already.
    #[error("the job queue is full ({0} jobs waiting); retry later")]
    QueueFull(usize),
    /// The server is shutting down.
    #[error("the server is shutting down and accepts no new jobs")]
    ShuttingDown,
    /// The spec refers to something that does not exist or is not allowed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The job would exceed a limit of the server.
    #[error(transparent)]
    Limit(crate::domain::limits::LimitError),
    /// The job could not be recorded on disk (a storage failure, not the spec's fault).
    #[error("the job could not be stored: {0}")]
    Storage(std::io::Error),
    /// Not enough free disk space for the job.
    #[error(transparent)]
    NoRoom(super::disk::NoRoom),
}

struct Inner {
    cfg: Arc<ServeConfig>,
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    running: AtomicUsize,
    accepting: AtomicBool,
    datasets: DatasetStore,
    traces: TraceStore,
    inputs: Arc<JobInputs>,
    tools: DatasetTools,
    tracker: TaskTracker,
    metrics: Metrics,
}

/// Owns every job: submission, execution, cancellation, listing, recovery, retention and shutdown.
#[derive(Clone)]
pub struct JobManager {
    inner: Arc<Inner>,
}

impl JobManager {
    /// Opens `<data>/workloads`, restores finished jobs and marks interrupted ones.
    pub fn open(
        cfg: Arc<ServeConfig>,
        datasets: DatasetStore,
        traces: TraceStore,
    ) -> std::io::Result<Self> {
        let dir = cfg.data_dir.join("workloads");
        std::fs::create_dir_all(&dir)?;
        let permits = Arc::new(Semaphore::new(cfg.worker_count()));
        let inputs = Arc::new(JobInputs::new(&cfg, datasets.clone()));
        let tools = DatasetTools::new(
            inputs.clone(),
            datasets.clone(),
            cfg.data_dir.join("tmp"),
            permits.clone(),
        );
        let jobs = job::recover(&dir)?
            .into_iter()
            .map(|j| (j.record().id, Arc::new(j)))
            .collect();
        let inner = Inner {
            permits,
            cfg,
            dir,
            jobs: Mutex::new(jobs),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            datasets,
            traces,
            inputs,
            tools,
            tracker: TaskTracker::new(),
            metrics: Metrics::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The dataset store.
    pub fn datasets(&self) -> &DatasetStore {
        &self.inner.datasets
    }

    /// The trace store.
    pub fn traces(&self) -> &TraceStore {
        &self.inner.traces
    }

    /// The dataset tools (generate and convert collections), behind the same worker permits.
    pub fn dataset_tools(&self) -> &DatasetTools {
        &self.inner.tools
    }

    /// Checks what a spec refers to before it is queued: the dataset exists, the tokenizer resolves, no paths.
    pub fn check_references(&self, spec: &ValidatedSpec) -> Result<(), SpecError> {
        let s = spec.spec();
        if s.prompt_file.is_some() {
            return Err(SpecError {
                field: "prompt_file".into(),
                message: "is not accepted by the service: upload the collection to /v1/datasets and give its id in `dataset`".into(),
            });
        }
        let ds = s
            .dataset
            .as_deref()
            .unwrap_or(crate::domain::sample::SAMPLE_DATASET_ID);
        if self.inner.datasets.get(ds).is_none() {
            return Err(SpecError {
                field: "dataset".into(),
                message: format!("names no stored dataset: '{ds}'"),
            });
        }
        self.inner.inputs.tokenizer(&s.tokenizer)?;
        let traces = TraceResolver(&self.inner.traces);
        for (field, name) in s.file_fields() {
            traces.resolve(&field, &name)?;
        }
        Ok(())
    }

    /// The input files of a utility job.
    fn utility_inputs(&self, ids: &[String]) -> Result<Vec<Input>, SpecError> {
        execute::utility_inputs(ids, |id| self.get(id))
    }

    /// Queues a job. `tap` receives the JSONL lines while they are written (streaming responses).
    pub fn submit(&self, work: Work, tap: Option<LineTap>) -> Result<Arc<Job>, SubmitError> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::SeqCst) {
            inner.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::ShuttingDown);
        }
        let work = match work {
            Work::Generate(spec) => Work::Generate(Box::new(
                spec.limited(inner.cfg.limits.limits())
                    .map_err(SubmitError::Limit)?,
            )),
            other => other,
        };
        // Room on disk for what the job is expected to write, plus the reserve (utility jobs: the reserve).
        let needed = match &work {
            Work::Generate(spec) => spec.estimate().bytes.map_or(0, |(_, b)| b as u64),
            Work::Utility { .. } => 0,
        };
        inner
            .cfg
            .disk()
            .admit(&inner.dir, needed)
            .map_err(SubmitError::NoRoom)?;
        match &work {
            Work::Generate(spec) => self.check_references(spec)?,
            Work::Utility { inputs, .. } => {
                self.utility_inputs(inputs)?;
            }
        }
        let cap = inner.cfg.queue_capacity;
        if inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < cap).then_some(q + 1)
            })
            .is_err()
        {
            inner.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::QueueFull(cap));
        }
        inner.metrics.submitted.fetch_add(1, Ordering::Relaxed);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let rec = JobRecord {
            id: id.clone(),
            status: JobStatus::Queued,
            kind: work.kind(),
            spec: work.record_spec(),
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            duration_secs: None,
            summary: None,
            error: None,
            files: Vec::new(),
        };
        let job = match Job::queued(rec, inner.dir.join(&id)) {
            Ok(job) => Arc::new(job),
            Err(e) => {
                inner.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(SubmitError::Storage(e));
            }
        };
        tracing::info!(job_id = %id, status = "queued", kind = %work.kind(), "job queued");
        inner
            .jobs
            .lock()
            .expect("not poisoned")
            .insert(id, job.clone());
        let mgr = self.clone();
        let j = job.clone();
        inner
            .tracker
            .spawn(async move { mgr.drive(j, work, tap).await });
        Ok(job)
    }

    async fn drive(&self, job: Arc<Job>, work: Work, tap: Option<LineTap>) {
        let inner = &self.inner;
        let permit = tokio::select! {
            p = inner.permits.clone().acquire_owned() => p.ok(),
            _ = job.cancel_token().cancelled() => None,
        };
        inner.queued.fetch_sub(1, Ordering::SeqCst);
        let Some(permit) = permit else {
            self.finish_cancelled(&job, None);
            if job.is_deleted() {
                let _ = std::fs::remove_dir_all(job.dir());
            }
            return;
        };
        inner.running.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        job.update(|r| {
            r.status = JobStatus::Running;
            r.started_at = Some(now_rfc3339());
        });
        tracing::info!(job_id = %job.record().id, status = "running", "job started");
        let mgr = self.clone();
        let j = job.clone();
        let span = tracing::info_span!("job", job_id = %job.record().id);
        job.hold_permit(permit);
        let mut handle = tokio::task::spawn_blocking(move || {
            span.in_scope(|| match &work {
                Work::Generate(spec) => {
                    execute::generate(&j, spec, &mgr.inner.inputs, &mgr.inner.traces, tap)
                }
                Work::Utility { op, inputs, output } => mgr
                    .utility_inputs(inputs)
                    .map_err(|e| crate::domain::run::RunError::Generate(e.into()))
                    .and_then(|inputs| execute::utility(&j, op, &inputs, *output)),
            })
        });
        let timeout = inner.cfg.job_timeout();
        let result = tokio::select! {
            r = &mut handle => r,
            _ = tokio::time::sleep(timeout) => {
                job.cancel_with(ErrorCode::Timeout, &format!("the job ran longer than {} s", timeout.as_secs()));
                handle.await
            }
        };
        job.release_permit();
        inner.running.fetch_sub(1, Ordering::SeqCst);
        let secs = started.elapsed().as_secs_f64();
        inner.metrics.observe_duration(secs);
        match result {
            Ok(Ok((summary, files))) => job.update(|r| {
                r.status = JobStatus::Succeeded;
                r.finished_at = Some(now_rfc3339());
                r.duration_secs = Some(secs);
                r.summary = Some(summary);
                r.files = files;
            }),
            Ok(Err(e)) => match execute::failure_code(&e) {
                None => self.finish_cancelled(&job, Some(secs)),
                Some(code) => job.update(|r| {
                    r.status = JobStatus::Failed;
                    r.finished_at = Some(now_rfc3339());
                    r.duration_secs = Some(secs);
                    r.error = Some(JobError {
                        code,
                        detail: e.to_string(),
                    });
                }),
            },
            Err(join) => {
                tracing::error!(error = %join, "job panicked");
                job.update(|r| {
                    r.status = JobStatus::Failed;
                    r.finished_at = Some(now_rfc3339());
                    r.error = Some(JobError {
                        code: ErrorCode::Internal,
                        detail: "internal error while generating".into(),
                    });
                });
            }
        }
        let rec = job.record();
        tracing::info!(job_id = %rec.id, status = rec.status.as_str(), "job finished");
        if job.is_deleted() {
            let _ = std::fs::remove_dir_all(job.dir());
        }
    }

    fn finish_cancelled(&self, job: &Job, secs: Option<f64>) {
        let (code, detail) = job.cancel_reason();
        remove_results(job.dir());
        job.update(|r| {
            r.status = if code == ErrorCode::Cancelled {
                JobStatus::Cancelled
            } else {
                JobStatus::Failed
            };
            r.finished_at = Some(now_rfc3339());
            r.duration_secs = secs;
            r.error = Some(JobError { code, detail });
        });
    }

    /// A job by id.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.inner
            .jobs
            .lock()
            .expect("not poisoned")
            .get(id)
            .cloned()
    }

    /// Jobs, newest first: `limit` of them after the job `after` (exclusive).
    ///
    /// `None` when `after` names no listed job (deleted, expired or never listed): the client must start
    /// again from the first page rather than silently get it again and loop.
    pub fn list(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Option<(Vec<JobRecord>, Option<String>)> {
        let mut all: Vec<JobRecord> = self
            .inner
            .jobs
            .lock()
            .expect("not poisoned")
            .values()
            .map(|j| j.record())
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let start = match after {
            None => 0,
            Some(a) => all.iter().position(|r| r.id == a)? + 1,
        };
        let page: Vec<JobRecord> = all.iter().skip(start).take(limit).cloned().collect();
        let next = (start + page.len() < all.len())
            .then(|| page.last().map(|r| r.id.clone()))
            .flatten();
        Some((page, next))
    }

    /// Cancels a queued or running job and deletes its files; removes a finished job. False when unknown.
    pub fn delete(&self, id: &str) -> bool {
        let Some(job) = self.inner.jobs.lock().expect("not poisoned").remove(id) else {
            return false;
        };
        job.mark_deleted();
        if job.record().status.is_terminal() {
            let _ = std::fs::remove_dir_all(job.dir());
        } else {
            job.cancel_with(ErrorCode::Cancelled, "cancelled by DELETE");
        }
        true
    }

    /// Removes finished jobs older than the retention period; returns how many were removed.
    pub fn reap(&self, now: time::OffsetDateTime) -> usize {
        let ttl = self.inner.cfg.result_ttl_secs;
        if ttl == 0 {
            return 0;
        }
        let old: Vec<String> = self
            .inner
            .jobs
            .lock()
            .expect("not poisoned")
            .values()
            .map(|j| j.record())
            .filter(|r| r.status.is_terminal())
            .filter(|r| {
                r.finished_at
                    .as_deref()
                    .and_then(|f| {
                        time::OffsetDateTime::parse(
                            f,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .is_some_and(|f| (now - f).whole_seconds() >= ttl as i64)
            })
            .map(|r| r.id)
            .collect();
        for id in &old {
            self.delete(id);
        }
        old.len()
    }

    /// Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut counts = [0u64; 5];
        for j in self.inner.jobs.lock().expect("not poisoned").values() {
            let s = j.record().status;
            counts[JobStatus::ALL
                .iter()
                .position(|x| *x == s)
                .expect("known status")] += 1;
        }
        let by_status: Vec<(&str, u64)> = JobStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .zip(counts)
            .collect();
        let bytes = self.inner.datasets.total_bytes()
            + self.inner.traces.total_bytes()
            + dir_size(&self.inner.dir);
        self.inner.metrics.render(
            &by_status,
            self.inner.queued.load(Ordering::SeqCst) as u64,
            self.inner.running.load(Ordering::SeqCst) as u64,
            bytes,
        )
    }

    /// True while new jobs are accepted.
    pub fn accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
    }

    /// Stops accepting jobs, cancels queued ones, gives running ones `grace`, then cancels them; they end as
    /// failed with code `interrupted`.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        let jobs: Vec<Arc<Job>> = self
            .inner
            .jobs
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect();
        for j in &jobs {
            if j.record().status == JobStatus::Queued {
                j.cancel_with(
                    ErrorCode::Interrupted,
                    "the server shut down before the job started",
                );
            }
        }
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            for j in &jobs {
                j.cancel_with(
                    ErrorCode::Interrupted,
                    "the server shut down while the job was running",
                );
            }
            self.inner.tracker.wait().await;
        }
    }
}
