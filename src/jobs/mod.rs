//! The job system: admission control, a bounded pool of blocking workers, persisted job state, results on
//! disk, retention and shutdown. Jobs belong to the [`JobManager`], never to the request that submitted them.
//!
//! A submitted job waits for one of `workers` semaphore permits (at most `queue_capacity` may wait; more are
//! refused with 429), then runs the domain generator on `spawn_blocking`. Cancellation is cooperative: the
//! generator polls a flag between entries.

pub mod blobs;
pub mod metrics;
pub mod model;
pub mod stores;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codes::ErrorCode;
use crate::config::ServeConfig;
use crate::domain::files::FileResolver;
use crate::domain::generate::GenerateError;
use crate::domain::lengths::{TokenizedDataset, tokenize};
use crate::domain::run::{InputFile, RunError, RunInput, run_to_dir};
use crate::domain::spec::{SpecError, ValidatedSpec};
use crate::domain::stats::Histogram;
use crate::domain::tokenizer::{TokenCounter, TokenizerPolicy};
use crate::domain::utility::{Input, Operation, OutputOptions};
use crate::domain::writer::LineTap;
use metrics::Metrics;
use model::{JobError, JobRecord, JobStatus};
use stores::{DatasetStore, TokenStats, TraceStore, now_rfc3339};

/// File name of a job's persisted state.
pub const JOB_FILE: &str = "job.json";

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
}

impl Job {
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

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn cancel_with(&self, code: ErrorCode, detail: &str) {
        let mut c = self.cancel_code.lock().expect("not poisoned");
        if c.is_none() {
            *c = Some((code, detail.to_string()));
        }
        drop(c);
        self.cancel.cancel();
    }

    fn update(&self, f: impl FnOnce(&mut JobRecord)) {
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

fn persist(dir: &Path, rec: &JobRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{JOB_FILE}.partial"));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(rec).expect("record serializes"),
    )?;
    std::fs::rename(tmp, dir.join(JOB_FILE))
}

/// What a job does.
#[derive(Debug, Clone)]
pub enum Work {
    /// Generate a workload from a spec.
    Generate(Box<ValidatedSpec>),
    /// Reshape finished workloads (concat, merge, time-scale, slice, sample, shift).
    Utility {
        /// The validated operation.
        op: Operation,
        /// Ids of the input jobs, in order.
        inputs: Vec<String>,
        /// Output layout.
        output: OutputOptions,
    },
}

impl Work {
    fn kind(&self) -> String {
        match self {
            Work::Generate(_) => "generate".into(),
            Work::Utility { op, .. } => op.mode().to_string(),
        }
    }

    fn record_spec(&self) -> serde_json::Value {
        match self {
            Work::Generate(s) => serde_json::to_value(s.spec()).expect("spec serializes"),
            Work::Utility { op, inputs, output } => {
                let mut v = serde_json::to_value(op).expect("operation serializes");
                if let Some(m) = v.as_object_mut() {
                    m.insert("inputs".into(), serde_json::json!(inputs));
                    m.insert(
                        "output".into(),
                        serde_json::to_value(output).expect("serializes"),
                    );
                }
                v
            }
        }
    }
}

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
}

struct Inner {
    cfg: Arc<ServeConfig>,
    dir: PathBuf,
    cache_dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    running: AtomicUsize,
    accepting: AtomicBool,
    datasets: DatasetStore,
    traces: TraceStore,
    tokenizers: Mutex<HashMap<String, TokenCounter>>,
    tokenized: Mutex<Vec<(String, Arc<TokenizedDataset>)>>,
    tracker: TaskTracker,
    metrics: Metrics,
    policy: TokenizerPolicy,
}

/// Owns every job: submission, execution, cancellation, listing, recovery, retention and shutdown.
#[derive(Clone)]
pub struct JobManager {
    inner: Arc<Inner>,
}

/// Resolves a dataset tool's `prompt_file` to a stored dataset (by id), never a server path.
struct DatasetResolver<'a>(&'a DatasetStore);

impl FileResolver for DatasetResolver<'_> {
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        self.0.path(name).ok_or_else(|| SpecError {
            field: field.to_string(),
            message: format!(
                "names no stored dataset: '{name}' (upload it to /v1/datasets and give its id)"
            ),
        })
    }
}

/// Why a dataset could not be generated or converted by the service.
#[derive(Debug, thiserror::Error)]
pub enum DatasetToolFailure {
    /// The tool failed (bad spec, bad input, text or tokenizer problem).
    #[error(transparent)]
    Tool(#[from] crate::domain::datasets_tools::DatasetToolError),
    /// The result could not be stored.
    #[error(transparent)]
    Store(#[from] stores::UploadError),
    /// The worker pool is gone (shutting down).
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Resolves spec file names to uploaded traces: only ids of stored traces, never server paths.
struct TraceResolver<'a>(&'a TraceStore);

impl FileResolver for TraceResolver<'_> {
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        self.0.path(name).ok_or_else(|| SpecError {
            field: field.to_string(),
            message: format!(
                "names no uploaded trace: '{name}' (upload files to /v1/traces and give their id)"
            ),
        })
    }
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
        let cache_dir = cfg.data_dir.join("cache").join("lengths");
        let policy = TokenizerPolicy {
            allow_paths: false,
            search_dirs: cfg.tokenizer_dir.iter().cloned().collect(),
            hf_cache: false,
        };
        let inner = Inner {
            permits: Arc::new(Semaphore::new(cfg.worker_count())),
            cfg,
            dir,
            cache_dir,
            jobs: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            datasets,
            traces,
            tokenizers: Mutex::new(HashMap::new()),
            tokenized: Mutex::new(Vec::new()),
            tracker: TaskTracker::new(),
            metrics: Metrics::default(),
            policy,
        };
        let mgr = Self {
            inner: Arc::new(inner),
        };
        mgr.recover()?;
        Ok(mgr)
    }

    fn recover(&self) -> std::io::Result<()> {
        let mut jobs = self.inner.jobs.lock().expect("not poisoned");
        for entry in std::fs::read_dir(&self.inner.dir)?.filter_map(Result::ok) {
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
            let (changed, _) = watch::channel(0);
            jobs.insert(
                rec.id.clone(),
                Arc::new(Job {
                    record: Mutex::new(rec),
                    cancel: CancellationToken::new(),
                    cancel_code: Mutex::new(None),
                    progress_ppm: AtomicU64::new(1_000_000),
                    requests: AtomicU64::new(0),
                    changed,
                    deleted: AtomicBool::new(false),
                    dir,
                }),
            );
        }
        Ok(())
    }

    /// The dataset store.
    pub fn datasets(&self) -> &DatasetStore {
        &self.inner.datasets
    }

    /// The trace store.
    pub fn traces(&self) -> &TraceStore {
        &self.inner.traces
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
        self.tokenizer(&s.tokenizer)?;
        let traces = TraceResolver(&self.inner.traces);
        for (field, name) in s.file_fields() {
            traces.resolve(&field, &name)?;
        }
        Ok(())
    }

    fn tokenizer(&self, name: &str) -> Result<TokenCounter, SpecError> {
        if let Some(t) = self
            .inner
            .tokenizers
            .lock()
            .expect("not poisoned")
            .get(name)
        {
            return Ok(t.clone());
        }
        let t = TokenCounter::resolve(name, &self.inner.policy).map_err(|e| SpecError {
            field: "tokenizer".into(),
            message: e.to_string(),
        })?;
        self.inner
            .tokenizers
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Queues a job. `tap` receives the JSONL lines while they are written (streaming responses).
    pub fn submit(&self, work: Work, tap: Option<LineTap>) -> Result<Arc<Job>, SubmitError> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::SeqCst) {
            inner.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::ShuttingDown);
        }
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
        let dir = inner.dir.join(&id);
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
        let (changed, _) = watch::channel(0);
        let job = Arc::new(Job {
            record: Mutex::new(rec.clone()),
            cancel: CancellationToken::new(),
            cancel_code: Mutex::new(None),
            progress_ppm: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            changed,
            deleted: AtomicBool::new(false),
            dir,
        });
        if let Err(e) = persist(&job.dir, &rec) {
            inner.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::Spec(SpecError {
                field: "spec".into(),
                message: format!("could not be stored: {e}"),
            }));
        }
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
            _ = job.cancel.cancelled() => None,
        };
        inner.queued.fetch_sub(1, Ordering::SeqCst);
        let Some(permit) = permit else {
            self.finish_cancelled(&job, None);
            if job.deleted.load(Ordering::SeqCst) {
                let _ = std::fs::remove_dir_all(&job.dir);
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
        let mut handle = tokio::task::spawn_blocking(move || {
            let _p = permit;
            span.in_scope(|| match &work {
                Work::Generate(spec) => mgr.run_blocking(&j, spec, tap),
                Work::Utility { op, inputs, output } => mgr.run_utility(&j, op, inputs, *output),
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
            Ok(Err(RunError::Generate(GenerateError::Cancelled)))
            | Ok(Err(RunError::Generate(GenerateError::Sink(
                crate::domain::writer::SinkError::Closed,
            )))) => self.finish_cancelled(&job, Some(secs)),
            Ok(Err(e)) => {
                let code = match &e {
                    RunError::Generate(GenerateError::Input(_)) => ErrorCode::InvalidInput,
                    RunError::Generate(GenerateError::Spec(_)) => ErrorCode::InvalidSpec,
                    _ => ErrorCode::GenerationFailed,
                };
                job.update(|r| {
                    r.status = JobStatus::Failed;
                    r.finished_at = Some(now_rfc3339());
                    r.duration_secs = Some(secs);
                    r.error = Some(JobError {
                        code,
                        detail: e.to_string(),
                    });
                });
            }
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
        if job.deleted.load(Ordering::SeqCst) {
            let _ = std::fs::remove_dir_all(&job.dir);
        }
    }

    fn finish_cancelled(&self, job: &Job, secs: Option<f64>) {
        let (code, detail) = job
            .cancel_code
            .lock()
            .expect("not poisoned")
            .clone()
            .unwrap_or((
                ErrorCode::Cancelled,
                "the streaming client went away".into(),
            ));
        remove_results(&job.dir);
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

    /// Runs on a blocking thread: load, tokenize, generate.
    fn run_blocking(
        &self,
        job: &Job,
        spec: &ValidatedSpec,
        tap: Option<LineTap>,
    ) -> Result<(serde_json::Value, Vec<String>), RunError> {
        let s = spec.spec();
        let io = |e: String| RunError::Io {
            path: "dataset".into(),
            source: std::io::Error::other(e),
        };
        let tokenizer = self
            .tokenizer(&s.tokenizer)
            .map_err(|e| RunError::Generate(e.into()))?;
        let ds_id = s
            .dataset
            .clone()
            .unwrap_or_else(|| crate::domain::sample::SAMPLE_DATASET_ID.into());
        let data = self
            .tokenized(&ds_id, &tokenizer, s.add_special_tokens)
            .map_err(io)?;
        let input = InputFile {
            role: "prompts".into(),
            name: ds_id.clone(),
            sha256: data.dataset.sha256.clone(),
            bytes: data.dataset.bytes,
        };
        let resolver = TraceResolver(&self.inner.traces);
        let cancel = || job.cancel.is_cancelled();
        let mut last = Instant::now();
        let mut progress = |p: crate::domain::generate::Progress| {
            job.progress_ppm
                .store((p.fraction.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
            job.requests.store(p.requests, Ordering::Relaxed);
            if last.elapsed() >= Duration::from_millis(100) || p.fraction >= 1.0 {
                last = Instant::now();
                job.notify();
            }
        };
        let out = run_to_dir(
            spec,
            RunInput {
                data: &data,
                tokenizer: &tokenizer,
                inputs: vec![input],
                files: &resolver,
                tap,
                cancel: &cancel,
                progress: &mut progress,
            },
            &job.dir,
        )?;
        let summary = serde_json::to_value(&out.manifest.summary).expect("summary serializes");
        Ok((summary, list_files(&job.dir)))
    }

    /// The input files of a utility job: each id must be a succeeded job with a workload file.
    fn utility_inputs(&self, ids: &[String]) -> Result<Vec<Input>, SpecError> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let err = |m: String| SpecError {
                    field: format!("inputs[{i}]"),
                    message: m,
                };
                let job = self
                    .get(id)
                    .ok_or_else(|| err(format!("names no workload: '{id}'")))?;
                let rec = job.record();
                if rec.status != JobStatus::Succeeded {
                    return Err(err(format!(
                        "workload '{id}' is {}, not succeeded",
                        rec.status.as_str()
                    )));
                }
                let file = rec
                    .files
                    .iter()
                    .find(|f| f.starts_with("workload."))
                    .ok_or_else(|| err(format!("workload '{id}' has no workload file")))?;
                Ok(Input {
                    name: id.clone(),
                    path: job.dir.join(file),
                })
            })
            .collect()
    }

    /// Runs a utility operation on a blocking thread.
    fn run_utility(
        &self,
        job: &Job,
        op: &Operation,
        ids: &[String],
        output: OutputOptions,
    ) -> Result<(serde_json::Value, Vec<String>), RunError> {
        let inputs = self
            .utility_inputs(ids)
            .map_err(|e| RunError::Generate(e.into()))?;
        let cancel = || job.cancel.is_cancelled();
        let run = crate::domain::utility::run_to_dir(op, &inputs, &job.dir, output, &cancel)
            .map_err(|e| match e {
                crate::domain::utility::UtilityError::Cancelled => {
                    RunError::Generate(GenerateError::Cancelled)
                }
                crate::domain::utility::UtilityError::Input(i) => RunError::Generate(i.into()),
                crate::domain::utility::UtilityError::Options(s) => RunError::Generate(s.into()),
                crate::domain::utility::UtilityError::Io { path, source } => {
                    RunError::Io { path, source }
                }
            })?;
        job.progress_ppm.store(1_000_000, Ordering::Relaxed);
        let summary = serde_json::to_value(&run.manifest.report).expect("report serializes");
        Ok((summary, list_files(&job.dir)))
    }

    /// The tokenized dataset, from memory, the on-disk length cache, or tokenized now.
    fn tokenized(
        &self,
        id: &str,
        tok: &TokenCounter,
        special: bool,
    ) -> Result<Arc<TokenizedDataset>, String> {
        let key = format!("{id}|{}|{special}", tok.fingerprint());
        if let Some((_, d)) = self
            .inner
            .tokenized
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Ok(d.clone());
        }
        let ds = self.inner.datasets.load(id).map_err(|e| e.to_string())?;
        let data = Arc::new(
            tokenize(ds, tok, special, Some(&self.inner.cache_dir), &|_, _| {})
                .map_err(|e| e.to_string())?,
        );
        let summary = |v: &mut dyn Iterator<Item = u32>| {
            let mut h = Histogram::default();
            v.for_each(|x| h.add(x as u64));
            h.summary()
        };
        self.inner.datasets.record_token_stats(
            id,
            TokenStats {
                tokenizer: tok.id().to_string(),
                fingerprint: tok.fingerprint().to_string(),
                add_special_tokens: special,
                prompt_length: summary(&mut data.prompt_len.iter().copied()),
                completion_length: summary(&mut data.completion_len.iter().flatten().copied()),
            },
        );
        let mut cache = self.inner.tokenized.lock().expect("not poisoned");
        cache.retain(|(k, _)| *k != key);
        cache.insert(0, (key, data.clone()));
        cache.truncate(4);
        Ok(data)
    }

    /// Runs CPU-bound work on the blocking pool behind the same permits as jobs.
    async fn limited<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.inner.permits.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _p = permit;
            f()
        })
        .await
        .ok()
    }

    /// Generates a synthetic prompt collection and stores it as a dataset. Returns the record, whether it is
    /// new, and the generator's report.
    pub async fn generate_dataset(
        &self,
        spec: crate::domain::datasets_tools::DatasetGenerateSpec,
    ) -> Result<(stores::DatasetRecord, bool, serde_json::Value), DatasetToolFailure> {
        let tok = self
            .tokenizer(spec.tokenizer())
            .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
        let mgr = self.clone();
        self.limited(move || {
            let tmp_dir = mgr.inner.cfg.data_dir.join("tmp");
            std::fs::create_dir_all(&tmp_dir)
                .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
            let path = tmp_dir.join(format!("generated-{}", uuid::Uuid::new_v4().simple()));
            let mut upload = blobs::TempUpload {
                path,
                sha256: String::new(),
                bytes: 0,
            };
            let report = {
                let f = std::fs::File::create(&upload.path)
                    .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
                let mut w = std::io::BufWriter::new(f);
                let r = crate::domain::datasets_tools::generate_collection(
                    &spec,
                    &tok,
                    &DatasetResolver(&mgr.inner.datasets),
                    &mut w,
                )?;
                std::io::Write::flush(&mut w)
                    .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
                r
            };
            let (sha, bytes) = crate::domain::files::sha256_file(&upload.path)
                .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
            upload.sha256 = sha;
            upload.bytes = bytes;
            let name = match &spec {
                crate::domain::datasets_tools::DatasetGenerateSpec::SharedPrefix(_) => {
                    "generated shared-prefix collection"
                }
                crate::domain::datasets_tools::DatasetGenerateSpec::MultiTurn(_) => {
                    "generated multi-turn collection"
                }
            };
            let (rec, new) = mgr.inner.datasets.store_upload(upload, name)?;
            Ok((
                rec,
                new,
                serde_json::to_value(&report).expect("report serializes"),
            ))
        })
        .await
        .unwrap_or(Err(DatasetToolFailure::ShuttingDown))
    }

    /// Converts an uploaded file (ShareGPT, AIBrix client output, OpenAI chat) and stores the collection.
    pub async fn convert_dataset(
        &self,
        spec: crate::domain::datasets_tools::convert::ConvertSpec,
        upload: blobs::TempUpload,
        name: String,
    ) -> Result<(stores::DatasetRecord, bool, serde_json::Value), DatasetToolFailure> {
        let mgr = self.clone();
        self.limited(move || {
            let out_path = upload.path.with_extension("converted");
            let mut out = blobs::TempUpload {
                path: out_path,
                sha256: String::new(),
                bytes: 0,
            };
            let report = crate::domain::datasets_tools::convert::convert_file(
                &spec,
                &upload.path,
                &out.path,
            )?;
            let (sha, bytes) = crate::domain::files::sha256_file(&out.path)
                .map_err(crate::domain::datasets_tools::DatasetToolError::from)?;
            out.sha256 = sha;
            out.bytes = bytes;
            let (rec, new) = mgr.inner.datasets.store_upload(out, &name)?;
            Ok((
                rec,
                new,
                serde_json::to_value(&report).expect("report serializes"),
            ))
        })
        .await
        .unwrap_or(Err(DatasetToolFailure::ShuttingDown))
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
    pub fn list(&self, limit: usize, after: Option<&str>) -> (Vec<JobRecord>, Option<String>) {
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
        let start = after
            .and_then(|a| all.iter().position(|r| r.id == a))
            .map_or(0, |p| p + 1);
        let page: Vec<JobRecord> = all.iter().skip(start).take(limit).cloned().collect();
        let next = (start + page.len() < all.len())
            .then(|| page.last().map(|r| r.id.clone()))
            .flatten();
        (page, next)
    }

    /// Cancels a queued or running job and deletes its files; removes a finished job. False when unknown.
    pub fn delete(&self, id: &str) -> bool {
        let Some(job) = self.inner.jobs.lock().expect("not poisoned").remove(id) else {
            return false;
        };
        job.deleted.store(true, Ordering::SeqCst);
        if job.record().status.is_terminal() {
            let _ = std::fs::remove_dir_all(&job.dir);
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

/// The result files of a job directory (sorted; no temporaries, no `job.json`).
fn list_files(dir: &Path) -> Vec<String> {
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
fn remove_results(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_name().to_string_lossy() != JOB_FILE {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
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
