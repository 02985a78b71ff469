//! `POST /v1/workloads/{concat,merge,time-scale,slice,sample,shift}`: reshape finished workloads into a new
//! workload resource (a job with its own files and manifest).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::dto::{JobView, OutputDoc};
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::AppJson;
use super::workloads::submit_error;
use super::{AppJsonOut, AppState};
use crate::domain::utility::{Operation, OutputOptions};
use crate::jobs::Work;

/// `POST /v1/workloads/concat`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"inputs": ["<workload id>", "<workload id>"], "gap_ms": 1000}))]
pub struct ConcatRequest {
    /// Ids of succeeded workloads, in order.
    #[schema(min_items = 1)]
    pub inputs: Vec<String>,
    /// Ms between one input's largest timestamp and the next input's 0 (default 0 = reference).
    pub gap_ms: Option<u64>,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

/// `POST /v1/workloads/merge`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// Ids of succeeded workloads.
    #[schema(min_items = 1)]
    pub inputs: Vec<String>,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

/// `POST /v1/workloads/time-scale`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeScaleRequest {
    /// The id of one succeeded workload.
    #[schema(min_items = 1, max_items = 1)]
    pub inputs: Vec<String>,
    /// Factor > 0 (0.5 = twice as fast).
    #[schema(exclusive_minimum = 0.0)]
    pub factor: f64,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

/// `POST /v1/workloads/slice`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SliceRequest {
    /// The id of one succeeded workload.
    #[schema(min_items = 1, max_items = 1)]
    pub inputs: Vec<String>,
    /// Window start, ms (default 0).
    pub start_ms: Option<u64>,
    /// Window end (exclusive), ms, greater than `start_ms`; absent = to the end.
    pub end_ms: Option<u64>,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

/// `POST /v1/workloads/sample`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleRequest {
    /// The id of one succeeded workload.
    #[schema(min_items = 1, max_items = 1)]
    pub inputs: Vec<String>,
    /// Fraction of requests (or whole sessions) kept, in (0, 1].
    #[schema(exclusive_minimum = 0.0, maximum = 1.0)]
    pub fraction: f64,
    /// Seed (random when absent, recorded).
    pub seed: Option<u64>,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

/// `POST /v1/workloads/shift`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftRequest {
    /// The id of one succeeded workload.
    #[schema(min_items = 1, max_items = 1)]
    pub inputs: Vec<String>,
    /// Offset in ms (may be negative while no timestamp becomes negative).
    pub offset_ms: i64,
    /// Output layout.
    pub output: Option<OutputDoc>,
}

fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidSpec,
        format!("{field} {message}"),
    )
    .with_field(field)
}

async fn run(
    state: AppState,
    mode: &str,
    mut body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let inputs: Vec<String> = match body.remove("inputs") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| bad("inputs", format!("must be a list of workload ids: {e}")))?,
        None => return Err(bad("inputs", "is required: a list of workload ids")),
    };
    let output: OutputOptions = match body.remove("output") {
        Some(v) => serde_json::from_value(v).map_err(|e| bad("output", e))?,
        None => OutputOptions::default(),
    };
    body.insert("mode".into(), Value::String(mode.into()));
    let op: Operation =
        serde_json::from_value(Value::Object(body)).map_err(|e| bad("options", e))?;
    let op = op.validated(inputs.len()).map_err(|mut e| {
        // The domain names the CLI's `input_files`; this route's field is `inputs`.
        if e.field == "input_files" {
            e.field = "inputs".into();
        }
        e
    })?;
    let job = state
        .jobs
        .submit(Work::Utility { op, inputs, output }, None)
        .map_err(submit_error)?;
    let rec = job.record();
    let location = format!("/v1/workloads/{}", rec.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        AppJsonOut(JobView::new(rec, job.progress())),
    )
        .into_response())
}

macro_rules! utility_route {
    ($name:ident, $body:ty, $mode:literal, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "workloads",
            request_body(content = $body, content_type = "application/json"),
            responses(
                (status = 202, description = "Accepted; the new workload is a job (poll `Location`)", body = JobView),
                (status = 422, description = "Invalid options or inputs (the detail names the field)", body = Problem, content_type = "application/problem+json"),
                (status = 429, description = "Queue full", body = Problem, content_type = "application/problem+json")),
            security(("bearer" = [])))]
        pub async fn $name(State(state): State<AppState>, AppJson(body): AppJson<Map<String, Value>>) -> Result<Response, ApiError> {
            run(state, $mode, body).await
        }
    };
}

utility_route!(
    concat,
    ConcatRequest,
    "concat",
    "/v1/workloads/concat",
    "Concatenate workloads: each input shifted to start `gap_ms` after the previous one's largest timestamp."
);
utility_route!(
    merge,
    MergeRequest,
    "merge",
    "/v1/workloads/merge",
    "Merge workloads on their original timestamps (k-way); equal timestamps are combined."
);
utility_route!(
    time_scale,
    TimeScaleRequest,
    "time-scale",
    "/v1/workloads/time-scale",
    "Multiply every timestamp of one workload by `factor`."
);
utility_route!(
    slice,
    SliceRequest,
    "slice",
    "/v1/workloads/slice",
    "Keep the entries of one workload in `[start_ms, end_ms)`, re-based to 0."
);
utility_route!(
    sample,
    SampleRequest,
    "sample",
    "/v1/workloads/sample",
    "Keep a seeded `fraction` of one workload's requests (whole sessions together)."
);
utility_route!(
    shift,
    ShiftRequest,
    "shift",
    "/v1/workloads/shift",
    "Add `offset_ms` to every timestamp of one workload."
);
