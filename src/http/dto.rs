//! Wire types of the API (the only place with `ToSchema`). Request bodies for specs deserialize straight
//! into the domain's `GenerationSpec`; the `*Doc` types here describe that JSON for the OpenAPI document, and
//! a test checks that they list the same fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::Problem;
use crate::jobs::model::{JobRecord, JobStatus};
use crate::jobs::stores::{DatasetRecord, TokenStats, TraceRecord};

/// Traffic rate and arrival process.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficDoc {
    /// Requests per second for `constant` traffic (float, default 1).
    #[schema(example = 5.0)]
    pub target_qps: Option<f64>,
    /// `poisson` (default, exponential gaps), `uniform` (evenly spaced) or `gamma`.
    #[schema(example = "poisson")]
    pub arrival: Option<String>,
    /// Gamma shape for `arrival: gamma` (1 = Poisson; CV = 1/√burstiness). Default 1.
    pub burstiness: Option<f64>,
}

/// Length targets, in tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LengthsDoc {
    /// Prompt length target.
    #[schema(example = 512)]
    pub target_prompt_len: Option<u32>,
    /// Output length target; emitted as `output_length` unless `output_length_source` is `dataset`.
    #[schema(example = 128)]
    pub target_completion_len: Option<u32>,
}

/// Prompt selection.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingDoc {
    /// Reuse prompts (default true).
    pub replacement: Option<bool>,
    /// First relative tolerance (0.5 synthetic, 0.1 traces by default).
    pub initial_tolerance: Option<f64>,
    /// Tolerance increment (default 0.05), up to ±100%.
    pub tolerance_step: Option<f64>,
}

/// Output options.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputDoc {
    /// `jsonl` (default) or `json`.
    pub format: Option<String>,
    /// Escape non-ASCII like Python's json.dumps (default false).
    pub ascii: Option<bool>,
}

/// The generation spec: the same JSON as `workload-generator generate --spec FILE`. Unknown keys are rejected.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "trace_type": "constant", "seed": 42, "dataset": "sample", "duration_ms": 60000,
    "traffic": {"target_qps": 5.0, "arrival": "poisson"},
    "lengths": {"target_prompt_len": 512, "target_completion_len": 128}
}))]
#[serde(deny_unknown_fields)]
pub struct GenerationSpecDoc {
    /// `constant`, `synthetic`, `stat`, `azure`, `mooncake`, `burstgpt`, `generic` or `agent`.
    #[schema(example = "constant")]
    pub trace_type: String,
    /// Seed of every random choice (random when absent; recorded in the manifest).
    pub seed: Option<u64>,
    /// Dataset id (`sample` = built-in, the default).
    pub dataset: Option<String>,
    /// Not accepted by the service (CLI only): upload the file and use `dataset`.
    pub prompt_file: Option<String>,
    /// Tokenizer: the embedded `Qwen/Qwen2.5-Coder-7B-Instruct` (default) or a name in the tokenizer directory.
    pub tokenizer: Option<String>,
    /// Count special tokens (default true).
    pub add_special_tokens: Option<bool>,
    /// Workload length in ms (default 60000).
    pub duration_ms: Option<u64>,
    /// Rate-series grid in ms (default 1000).
    pub interval_ms: Option<u64>,
    /// Traffic.
    pub traffic: Option<TrafficDoc>,
    /// Length targets.
    pub lengths: Option<LengthsDoc>,
    /// Prompt selection.
    pub sampling: Option<SamplingDoc>,
    /// `target` (default) or `dataset`.
    pub output_length_source: Option<String>,
    /// Session concurrency limit (absent or 0 = unlimited).
    pub max_concurrent_sessions: Option<u32>,
    /// Output options.
    pub output: Option<OutputDoc>,
    /// `trace_type: synthetic`: sine patterns for rate, prompt and completion lengths: presets
    /// (`traffic_pattern`, `prompt_len_pattern`, `completion_len_pattern`: `quick_rising`, `slow_rising`,
    /// `slight_fluctuation`, `severe_fluctuation`, with `*_pattern_mean`) or reference configs
    /// (`*_pattern_config`: an inline object `{fluctuate, mean, noise, period_len_ms, only_rise}` or the id of an
    /// uploaded JSON file). See the README section "Synthetic patterns and Grafana statistics".
    #[schema(value_type = Option<Object>)]
    pub synthetic: Option<serde_json::Value>,
    /// `trace_type: stat`: Grafana exports by uploaded id (`traffic_file`, `prompt_len_file`,
    /// `completion_len_file`), `stat_trace_type` (`maas`|`cloudide`), `qps_scale`, `input_scale`,
    /// `output_scale`, `bytes_per_token`, `row_duration_ms`, `rate_noise` (`none`|`poisson`|`smoothed`).
    #[schema(value_type = Option<Object>)]
    pub stat: Option<serde_json::Value>,
    /// `trace_type: agent`: the agent-session config inline, with the reference's keys (`num_sessions`,
    /// `session_arrival_rate_rps`, `turns_per_session`, `parallel_tools`, ... `seed`).
    #[schema(value_type = Option<Object>)]
    pub agent: Option<serde_json::Value>,
    /// `trace_type: agent`: the agent-session config as the id of an uploaded JSON file (instead of `agent`).
    pub agent_config: Option<String>,
    /// `near` (default: within ±5% of the target, a real prompt when one is that close, else built text of
    /// exactly the target), `sample` (the reference's widening windows; `match` is the same) or `exact`
    /// (prompts of exactly the target length), for every trace type with a prompt-length target.
    #[schema(example = "near")]
    pub length_policy: Option<String>,
    /// Trace replay (`azure`, `mooncake`, `burstgpt`, `generic`): `file` (uploaded trace id, required),
    /// `group_interval_ms`, `grouping` (`window`|`exact`), `block_size` (mooncake), `start_ms`, `time_scale`,
    /// `sample_fraction`, `max_requests`, BurstGPT filters (`model`, `log_type`, `keep_failed`) and the generic
    /// column mapping (`format`, `columns`). See the README section "Trace replay".
    #[schema(value_type = Option<Object>)]
    pub trace: Option<serde_json::Value>,
}

/// Job progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    /// Fraction of the workload duration generated (0..1).
    pub fraction: f64,
    /// Requests generated so far.
    pub requests: u64,
}

/// Links to a job's resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobLinks {
    /// This job.
    #[serde(rename = "self")]
    pub this: String,
    /// Progress events (SSE).
    pub events: String,
    /// The workload file (when succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The manifest (when succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// A generation job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(example = "running")]
    pub status: String,
    /// Progress.
    pub progress: ProgressView,
    /// Submission time (RFC 3339).
    pub created_at: String,
    /// Start time.
    pub started_at: Option<String>,
    /// End time.
    pub finished_at: Option<String>,
    /// Seconds from start to end.
    pub duration_secs: Option<f64>,
    /// `generate`, or the utility mode (`concat`, `merge`, `time-scale`, `slice`, `sample`, `shift`).
    pub kind: String,
    /// The normalized spec (seed filled in), or the utility operation with its input ids.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Counts and achieved statistics (when succeeded).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    /// Why the job failed (problem object).
    pub error: Option<Problem>,
    /// Result files.
    pub files: Vec<String>,
    /// Links.
    pub links: JobLinks,
}

impl JobView {
    /// The view of a record with live progress.
    pub fn new(rec: JobRecord, progress: (f64, u64)) -> Self {
        let base = format!("/v1/workloads/{}", rec.id);
        let done = rec.status == JobStatus::Succeeded;
        let workload = rec
            .files
            .iter()
            .find(|f| f.starts_with("workload."))
            .cloned();
        let (fraction, requests) = match rec.status {
            JobStatus::Succeeded => (
                1.0,
                rec.summary
                    .as_ref()
                    .and_then(|s| s["requests"].as_u64())
                    .unwrap_or(progress.1),
            ),
            _ => progress,
        };
        Self {
            links: JobLinks {
                this: base.clone(),
                events: format!("{base}/events"),
                workload: workload.filter(|_| done).map(|w| format!("{base}/{w}")),
                manifest: done.then(|| format!("{base}/manifest.json")),
            },
            id: rec.id,
            status: rec.status.as_str().to_string(),
            progress: ProgressView { fraction, requests },
            created_at: rec.created_at,
            started_at: rec.started_at,
            finished_at: rec.finished_at,
            duration_secs: rec.duration_secs,
            kind: rec.kind,
            spec: rec.spec,
            summary: rec.summary,
            error: rec.error.map(|e| Problem {
                kind: "about:blank".into(),
                title: super::error::job_error_title(e.code).into(),
                status: super::error::status_for(e.code).as_u16(),
                detail: e.detail,
                code: e.code,
                request_id: None,
                field: None,
                line: None,
            }),
            files: rec.files,
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Jobs, newest first.
    pub items: Vec<JobView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
    /// The id of the last job of the previous page.
    pub after: Option<String>,
}

/// Options of `POST /v1/workloads`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    /// Answer when the job is done (up to the server's wait cap, then 202).
    pub wait: Option<bool>,
}

/// Token statistics of a dataset under one tokenizer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenStatsView {
    /// Tokenizer name.
    pub tokenizer: String,
    /// Tokenizer fingerprint.
    pub fingerprint: String,
    /// Special tokens counted.
    pub add_special_tokens: bool,
    /// Prompt lengths (count, min, mean, p50, p90, p99, max).
    #[schema(value_type = Option<Object>)]
    pub prompt_length: Option<serde_json::Value>,
    /// Completion lengths.
    #[schema(value_type = Option<Object>)]
    pub completion_length: Option<serde_json::Value>,
}

impl From<TokenStats> for TokenStatsView {
    fn from(t: TokenStats) -> Self {
        Self {
            tokenizer: t.tokenizer,
            fingerprint: t.fingerprint,
            add_special_tokens: t.add_special_tokens,
            prompt_length: t
                .prompt_length
                .map(|s| serde_json::to_value(s).expect("serializes")),
            completion_length: t
                .completion_length
                .map(|s| serde_json::to_value(s).expect("serializes")),
        }
    }
}

/// A stored prompt collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetView {
    /// SHA-256 of the content, or `sample`.
    pub id: String,
    /// Name given at upload.
    pub name: String,
    /// `plain` or `sessioned`.
    pub schema: String,
    /// Records.
    pub records: u64,
    /// Sessions.
    pub sessions: u64,
    /// Prompts (plain) or turns (sessioned).
    pub turns: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Upload time.
    pub created_at: String,
    /// Token statistics per tokenizer, once a job has tokenized the dataset.
    pub token_stats: BTreeMap<String, TokenStatsView>,
}

impl From<DatasetRecord> for DatasetView {
    fn from(r: DatasetRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            schema: r.schema,
            records: r.records,
            sessions: r.sessions,
            turns: r.turns,
            bytes: r.bytes,
            created_at: r.created_at,
            token_stats: r
                .token_stats
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
        }
    }
}

/// Datasets.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    /// Every dataset.
    pub items: Vec<DatasetView>,
}

/// A stored trace (or other input file a spec can name).
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceView {
    /// SHA-256 of the content.
    pub id: String,
    /// Name given at upload.
    pub name: String,
    /// Declared format.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Non-blank lines.
    pub lines: u64,
    /// Upload time.
    pub created_at: String,
}

impl From<TraceRecord> for TraceView {
    fn from(r: TraceRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            format: r.format,
            bytes: r.bytes,
            lines: r.lines,
            created_at: r.created_at,
        }
    }
}

/// Traces.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceList {
    /// Every trace.
    pub items: Vec<TraceView>,
}

/// Upload options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A name for the upload (default: the multipart file name, or the id).
    pub name: Option<String>,
}

/// Trace upload options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceUploadQuery {
    /// `azure`, `mooncake`, `burstgpt`, `generic`, `csv`, `jsonl` or `json`.
    pub format: String,
    /// A name for the upload.
    pub name: Option<String>,
}

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `ok`, or `shutting_down` on /readyz while draining.
    pub status: String,
}

/// One Server-Sent Event of `GET /v1/workloads/{id}/events` (as OpenAPI 3.1 reads a `text/event-stream`
/// schema: it describes one event). Keep-alive comments carry no event.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEventDoc {
    /// `progress` while the job runs; one final `status`, after which the stream ends.
    pub event: JobEventKind,
    /// JSON text: `{"status", "fraction", "requests"}` for `progress`; the job view (`JobView`) for `status`.
    pub data: String,
}

/// The kinds of job event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobEventKind {
    /// The job runs: its status and progress.
    Progress,
    /// The job is finished: its final view.
    Status,
}
