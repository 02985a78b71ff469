//! Service configuration: one struct, every setting a flag that also reads a `WG_*` environment variable.
//! The doc comment of each field is its `--help` text and the README table repeats it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::domain::limits::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_PROMPT_TOKENS, DEFAULT_MAX_REQUESTS, Limits,
};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// What one generation job may build (`serve` and `generate`): the spec's estimate is checked before any
/// work (422 `limit_exceeded` naming the field and the estimate), and a job that crosses the request or byte
/// budget while it writes stops with `limit_exceeded` and leaves no result.
#[derive(Debug, Clone, Copy, Args)]
pub struct JobLimitArgs {
    /// Most requests one workload may have.
    #[arg(long, env = "WG_MAX_JOB_REQUESTS", default_value_t = DEFAULT_MAX_REQUESTS)]
    pub max_job_requests: u64,
    /// Most bytes one workload file may have.
    #[arg(long, env = "WG_MAX_JOB_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_job_output_bytes: u64,
    /// Most tokens of one prompt that is built (exact lengths, Mooncake blocks, agent prompts).
    #[arg(long, env = "WG_MAX_PROMPT_TOKENS", default_value_t = DEFAULT_MAX_PROMPT_TOKENS)]
    pub max_prompt_tokens: u64,
}

impl Default for JobLimitArgs {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_job_requests: l.max_requests,
            max_job_output_bytes: l.max_output_bytes,
            max_prompt_tokens: l.max_prompt_tokens,
        }
    }
}

impl JobLimitArgs {
    /// The domain limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_requests: self.max_job_requests,
            max_output_bytes: self.max_job_output_bytes,
            max_prompt_tokens: self.max_prompt_tokens,
        }
    }
}

/// Settings of `workload-generator serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "WG_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory for datasets, traces, job state and results (created if missing).
    #[arg(long, env = "WG_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Generation jobs running at once (CPU-bound; default: available CPUs).
    #[arg(long, env = "WG_WORKERS")]
    pub workers: Option<usize>,
    /// Jobs that may wait for a worker; beyond that submissions get 429 with Retry-After.
    #[arg(long, env = "WG_QUEUE_CAPACITY", default_value_t = 16)]
    pub queue_capacity: usize,
    /// Largest upload (dataset or trace) in bytes, after decompression.
    #[arg(long, env = "WG_MAX_UPLOAD_BYTES", default_value_t = 1 << 30)]
    pub max_upload_bytes: u64,
    /// Largest generation spec body in bytes.
    #[arg(long, env = "WG_MAX_SPEC_BYTES", default_value_t = 1 << 20)]
    pub max_spec_bytes: usize,
    /// A job running longer than this fails with code `timeout`.
    #[arg(long, env = "WG_JOB_TIMEOUT_SECS", default_value_t = 3600)]
    pub job_timeout_secs: u64,
    /// Finished jobs and their files are removed after this many seconds (0 keeps them forever).
    #[arg(long, env = "WG_RESULT_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub result_ttl_secs: u64,
    /// Longest time `POST /v1/workloads?wait=true` waits before answering 202.
    #[arg(long, env = "WG_WAIT_CAP_SECS", default_value_t = 60)]
    pub wait_cap_secs: u64,
    /// Log format: pretty or json.
    #[arg(long, env = "WG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// When set, every /v1 route requires `Authorization: Bearer <token>` (health, readiness, metrics stay open).
    #[arg(long, env = "WG_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// On SIGTERM/SIGINT, running jobs get this long to finish before they are cancelled.
    #[arg(long, env = "WG_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Directory of extra tokenizers: `<dir>/<name>/tokenizer.json` or `<dir>/<name>.json`.
    #[arg(long, env = "WG_TOKENIZER_DIR")]
    pub tokenizer_dir: Option<PathBuf>,
    /// Bytes that must stay free under the data directory: a job or upload that would leave less is refused
    /// with 507 `insufficient_storage` (default 1 GiB).
    #[arg(long, env = "WG_MIN_FREE_BYTES", default_value_t = 1 << 30)]
    pub min_free_bytes: u64,
    /// Most bytes the dataset and trace stores may hold together; an upload beyond it gets 507 (0 = no
    /// quota; default 20 GiB).
    #[arg(long, env = "WG_MAX_STORE_BYTES", default_value_t = 20 << 30)]
    pub max_store_bytes: u64,
    /// Job limits.
    #[command(flatten)]
    pub limits: JobLimitArgs,
}

impl ServeConfig {
    /// Defaults with a data directory (tests).
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("valid address"),
            data_dir,
            workers: Some(2),
            queue_capacity: 16,
            max_upload_bytes: 1 << 30,
            max_spec_bytes: 1 << 20,
            job_timeout_secs: 3600,
            result_ttl_secs: 0,
            wait_cap_secs: 60,
            log_format: LogFormat::Pretty,
            auth_token: None,
            shutdown_grace_secs: 30,
            tokenizer_dir: None,
            min_free_bytes: 0,
            max_store_bytes: 20 << 30,
            limits: JobLimitArgs::default(),
        }
    }

    /// Worker count: the setting, or the available parallelism.
    pub fn worker_count(&self) -> usize {
        self.workers
            .filter(|&w| w > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Checks values that clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.workers != Some(0), "--workers must be at least 1");
        anyhow::ensure!(self.max_upload_bytes > 0, "--max-upload-bytes must be > 0");
        anyhow::ensure!(self.max_spec_bytes > 0, "--max-spec-bytes must be > 0");
        anyhow::ensure!(self.job_timeout_secs > 0, "--job-timeout-secs must be > 0");
        if let Some(t) = &self.auth_token {
            anyhow::ensure!(
                !t.trim().is_empty(),
                "--auth-token must not be empty when set"
            );
        }
        Ok(())
    }

    /// The disk admission settings.
    pub fn disk(&self) -> crate::jobs::disk::DiskPolicy {
        crate::jobs::disk::DiskPolicy {
            reserve: self.min_free_bytes,
            max_store_bytes: self.max_store_bytes,
        }
    }

    /// Job timeout.
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs)
    }

    /// Shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The settings for the startup log line, secrets redacted.
    pub fn redacted(&self) -> String {
        format!(
            "bind={} data_dir={} workers={} queue_capacity={} max_upload_bytes={} max_spec_bytes={} job_timeout_secs={} result_ttl_secs={} auth={} shutdown_grace_secs={} min_free_bytes={} max_store_bytes={}",
            self.bind,
            self.data_dir.display(),
            self.worker_count(),
            self.queue_capacity,
            self.max_upload_bytes,
            self.max_spec_bytes,
            self.job_timeout_secs,
            self.result_ttl_secs,
            if self.auth_token.is_some() {
                "on"
            } else {
                "off"
            },
            self.shutdown_grace_secs,
            self.min_free_bytes,
            self.max_store_bytes
        )
    }
}
