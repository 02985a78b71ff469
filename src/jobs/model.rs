//! Job records: what is persisted as `job.json` and shown in job views.

use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Generating.
    Running,
    /// Done; files are available.
    Succeeded,
    /// Failed; `error` says why.
    Failed,
    /// Cancelled by `DELETE` or by a streaming client that went away.
    Cancelled,
}

impl JobStatus {
    /// True for succeeded, failed and cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Every status.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobError {
    /// Stable code (`generation_failed`, `invalid_input`, `timeout`, `interrupted`, `cancelled`, ...).
    pub code: ErrorCode,
    /// What went wrong.
    pub detail: String,
}

/// The persisted state of a job (`<data>/workloads/<id>/job.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Current status.
    pub status: JobStatus,
    /// What the job does: `generate` (from a spec) or a utility mode (`concat`, `merge`, ...).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The normalized generation spec (seed filled in), or the utility operation with its input ids.
    pub spec: serde_json::Value,
    /// Submission time.
    pub created_at: String,
    /// Start of generation.
    #[serde(default)]
    pub started_at: Option<String>,
    /// End of the job.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Seconds from start to end.
    #[serde(default)]
    pub duration_secs: Option<f64>,
    /// Counts and statistics of the result (the manifest's `summary`).
    #[serde(default)]
    pub summary: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<JobError>,
    /// Files of the result, by name.
    #[serde(default)]
    pub files: Vec<String>,
}

fn default_kind() -> String {
    "generate".into()
}
