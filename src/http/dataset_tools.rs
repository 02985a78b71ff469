//! `POST /v1/datasets/generate` (a synthetic collection from a spec) and `POST /v1/datasets/convert` (an upload
//! in another format), both stored as datasets.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::datasets::{receive, sanitize_name, upload_error};
use super::dto::DatasetView;
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::{AppJson, AppQuery};
use super::{AppJsonOut, AppState};
use crate::domain::datasets_tools::convert::{ConvertSpec, OutputSchema, SourceFormat};
use crate::domain::datasets_tools::{DatasetGenerateSpec, DatasetToolError};
use crate::jobs::{DatasetToolFailure, StoreRoom};

/// A dataset made by the service, with what the tool reports (counts, achieved sharing ratio, skipped records).
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetCreated {
    /// The stored dataset.
    pub dataset: DatasetView,
    /// The tool's report.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// Body of `POST /v1/datasets/generate`, tagged by `kind` (see the README section "Preparing prompt
/// collections" for every field).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "shared_prefix", "seed": 1, "configs": [{"prompt_length": 1000, "prompt_length_std": 100,
    "shared_proportion": 0.9, "shared_proportion_std": 0.01, "num_samples_per_prefix": 20, "num_prefix": 5}]}))]
pub struct DatasetGenerateDoc {
    /// `shared_prefix` or `multi_turn`.
    pub kind: String,
    /// Seed (random when absent, reported).
    pub seed: Option<u64>,
    /// Tokenizer name (default: the embedded one).
    pub tokenizer: Option<String>,
    /// Text source: the id of a stored dataset (default: the built-in sample text).
    pub prompt_file: Option<String>,
}

/// Options of `POST /v1/datasets/convert`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConvertQuery {
    /// `sharegpt`, `aibrix-client` or `openai-chat`.
    pub from: String,
    /// `plain` or `sessioned` (default: sessioned for ShareGPT and OpenAI chat, plain for the AIBrix client).
    pub format: Option<String>,
    /// A name for the stored dataset.
    pub name: Option<String>,
}

/// The store quota's room for a tool's result, after the free-space reserve admits it.
async fn room(state: &AppState) -> Result<StoreRoom, ApiError> {
    let policy = state.cfg.disk();
    let used = super::datasets::store_used(state).await?;
    policy.admit(&state.cfg.data_dir, 0)?;
    Ok(StoreRoom { policy, used })
}

fn failure(e: DatasetToolFailure) -> ApiError {
    match e {
        DatasetToolFailure::NoRoom(e) => e.into(),
        DatasetToolFailure::Tool(DatasetToolError::Spec(s)) => s.into(),
        DatasetToolFailure::Tool(DatasetToolError::Input(i)) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidDataset,
            i.to_string(),
        )
        .with_line(i.line),
        DatasetToolFailure::Tool(DatasetToolError::Io(e)) => ApiError::internal(e),
        DatasetToolFailure::Tool(other) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidSpec,
            other.to_string(),
        ),
        DatasetToolFailure::Store(s) => upload_error(s, ErrorCode::InvalidDataset),
        DatasetToolFailure::ShuttingDown => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ),
    }
}

fn created(
    rec: crate::jobs::stores::DatasetRecord,
    new: bool,
    report: serde_json::Value,
) -> Response {
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/datasets/{}", rec.id);
    (
        status,
        [(header::LOCATION, location)],
        AppJsonOut(DatasetCreated {
            dataset: rec.into(),
            report,
        }),
    )
        .into_response()
}

/// Generate a synthetic prompt collection (shared-prefix groups or multi-turn sessions, exact token lengths,
/// seeded) and store it as a dataset.
#[utoipa::path(post, path = "/v1/datasets/generate", tag = "datasets",
    request_body(content = DatasetGenerateDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Generated and stored", body = DatasetCreated),
        (status = 200, description = "The same collection was already stored", body = DatasetCreated),
        (status = 422, description = "Invalid spec (the detail names the field)", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn generate(
    State(state): State<AppState>,
    AppJson(spec): AppJson<DatasetGenerateSpec>,
) -> Result<Response, ApiError> {
    let spec = spec.validate()?;
    let room = room(&state).await?;
    let (rec, new, report) = state
        .jobs
        .dataset_tools()
        .generate(spec, room)
        .await
        .map_err(failure)?;
    Ok(created(rec, new, report))
}

/// Convert an upload (ShareGPT JSON/JSONL, AIBrix client output, OpenAI chat JSONL; raw, multipart or gzip) into
/// a prompt collection and store it.
#[utoipa::path(post, path = "/v1/datasets/convert", tag = "datasets", params(ConvertQuery),
    request_body(content = String, description = "The file to convert", content_type = "application/json"),
    responses(
        (status = 201, description = "Converted and stored", body = DatasetCreated),
        (status = 200, description = "Already stored", body = DatasetCreated),
        (status = 400, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input (names the line)", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn convert(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ConvertQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let bad = |field: &str, m: String| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, m).with_field(field)
    };
    let from: SourceFormat = serde_json::from_value(serde_json::Value::String(q.from.clone()))
        .map_err(|_| {
            bad(
                "from",
                "from must be sharegpt, aibrix-client or openai-chat".into(),
            )
        })?;
    let format: Option<OutputSchema> = match &q.format {
        Some(f) => Some(
            serde_json::from_value(serde_json::Value::String(f.clone()))
                .map_err(|_| bad("format", "format must be plain or sessioned".into()))?,
        ),
        None => None,
    };
    let spec = ConvertSpec { from, format }.validate()?;
    let (upload, file_name) = receive(&state, req).await?;
    let name = q
        .name
        .map(|n| sanitize_name(&n))
        .or(file_name)
        .unwrap_or_else(|| format!("converted from {}", q.from));
    let room = room(&state).await?;
    let (rec, new, report) = state
        .jobs
        .dataset_tools()
        .convert(spec, upload, name, room)
        .await
        .map_err(failure)?;
    Ok(created(rec, new, report))
}
