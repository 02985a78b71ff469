//! Dataset tools run by the service: generating synthetic prompt collections and converting uploads, on the
//! same worker permits as jobs, stored as datasets.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::datasets_tools::convert::{ConvertSpec, convert_file_named};
use crate::domain::datasets_tools::{DatasetGenerateSpec, DatasetToolError, generate_collection};
use crate::domain::files::{FileResolver, sha256_file};
use crate::domain::spec::SpecError;

use super::blobs::TempUpload;
use super::disk::{DiskPolicy, NoRoom};
use super::inputs::JobInputs;
use super::stores::{DatasetRecord, DatasetStore, UploadError};

/// Why a dataset could not be generated or converted by the service.
#[derive(Debug, thiserror::Error)]
pub enum DatasetToolFailure {
    /// The tool failed (bad spec, bad input, text or tokenizer problem).
    #[error(transparent)]
    Tool(#[from] DatasetToolError),
    /// The result could not be stored.
    #[error(transparent)]
    Store(#[from] UploadError),
    /// The result does not fit the stores' quota (or the disk's reserve).
    #[error(transparent)]
    NoRoom(#[from] NoRoom),
    /// The worker pool is gone (shutting down).
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// A stored dataset, whether it is new, and the tool's report.
pub type ToolResult = Result<(DatasetRecord, bool, serde_json::Value), DatasetToolFailure>;

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

/// What a tool's result may take: the disk policy and the bytes the dataset and trace stores hold now.
#[derive(Debug, Clone, Copy)]
pub struct StoreRoom {
    /// The service's disk settings.
    pub policy: DiskPolicy,
    /// Bytes stored now (uploaded datasets and traces).
    pub used: u64,
}

/// Runs dataset tools behind the job workers' permits.
#[derive(Debug, Clone)]
pub struct DatasetTools {
    inputs: Arc<JobInputs>,
    datasets: DatasetStore,
    tmp_dir: PathBuf,
    permits: Arc<Semaphore>,
}

impl DatasetTools {
    /// Tools storing into `datasets`, with temporaries in `tmp_dir`, sharing `permits` with the jobs.
    pub(super) fn new(
        inputs: Arc<JobInputs>,
        datasets: DatasetStore,
        tmp_dir: PathBuf,
        permits: Arc<Semaphore>,
    ) -> Self {
        Self {
            inputs,
            datasets,
            tmp_dir,
            permits,
        }
    }

    /// Runs CPU-bound work on the blocking pool behind the same permits as jobs.
    async fn limited<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _p = permit;
            f()
        })
        .await
        .ok()
    }

    /// Generates a synthetic prompt collection and stores it as a dataset. Returns the record, whether it is
    /// new, and the generator's report.
    pub async fn generate(&self, spec: DatasetGenerateSpec, room: StoreRoom) -> ToolResult {
        let tok = self
            .inputs
            .tokenizer(spec.tokenizer())
            .map_err(DatasetToolError::from)?;
        let tools = self.clone();
        self.limited(move || {
            std::fs::create_dir_all(&tools.tmp_dir).map_err(DatasetToolError::from)?;
            let path = tools
                .tmp_dir
                .join(format!("generated-{}", uuid::Uuid::new_v4().simple()));
            let mut upload = TempUpload {
                path,
                sha256: String::new(),
                bytes: 0,
            };
            let report = {
                let f = std::fs::File::create(&upload.path).map_err(DatasetToolError::from)?;
                let mut w = std::io::BufWriter::new(f);
                let r =
                    generate_collection(&spec, &tok, &DatasetResolver(&tools.datasets), &mut w)?;
                std::io::Write::flush(&mut w).map_err(DatasetToolError::from)?;
                r
            };
            let (sha, bytes) = sha256_file(&upload.path).map_err(DatasetToolError::from)?;
            // Refused (and the temporary removed) when the collection does not fit the quota.
            room.policy.admit_upload(room.used, bytes)?;
            upload.sha256 = sha;
            upload.bytes = bytes;
            let name = match &spec {
                DatasetGenerateSpec::SharedPrefix(_) => "generated shared-prefix collection",
                DatasetGenerateSpec::MultiTurn(_) => "generated multi-turn collection",
            };
            let (rec, new) = tools.datasets.store_upload(upload, name)?;
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
    pub async fn convert(
        &self,
        spec: ConvertSpec,
        upload: TempUpload,
        name: String,
        room: StoreRoom,
    ) -> ToolResult {
        let datasets = self.datasets.clone();
        self.limited(move || {
            let out_path = upload.path.with_extension("converted");
            let mut out = TempUpload {
                path: out_path,
                sha256: String::new(),
                bytes: 0,
            };
            let report = convert_file_named(&spec, &upload.path, &name, &out.path)?;
            let (sha, bytes) = sha256_file(&out.path).map_err(DatasetToolError::from)?;
            room.policy.admit_upload(room.used, bytes)?;
            out.sha256 = sha;
            out.bytes = bytes;
            let (rec, new) = datasets.store_upload(out, &name)?;
            Ok((
                rec,
                new,
                serde_json::to_value(&report).expect("report serializes"),
            ))
        })
        .await
        .unwrap_or(Err(DatasetToolFailure::ShuttingDown))
    }
}
