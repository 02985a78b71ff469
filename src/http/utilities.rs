//! `POST /v1/workloads/{concat,merge,time-scale,slice,sample,shift}`: reshape finished workloads into a new
//! workload resource (a job with its own files and manifest).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::dto::JobView;
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::AppJson;
use super::workloads::submit_error;
use super::{AppJsonOut, AppState};
use crate::domain::utility::{Operation, OutputOptions};
use crate::jobs::Work;

/// Body of the utility routes: input workload ids plus the mode's options.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"inputs": ["<workload id>", "<workload id>"], "gap_ms": 1000}))]
pub struct UtilityRequestDoc {
    /// Ids of succeeded workloads, in order (one for time-scale, slice, sample and shift).
    pub inputs: Vec<String>,
    /// concat: ms between one input's largest timestamp and the next input's 0 (default 0 = reference).
    pub gap_ms: Option<u64>,
    /// time-scale: factor > 0 (0.5 = twice as fast).
    pub factor: Option<f64>,
    /// slice: window start, ms.
    pub start_ms: Option<u64>,
    /// slice: window end (exclusive), ms.
    pub end_ms: Option<u64>,
    /// sample: fraction of requests (or whole sessions) kept, in (0, 1].
    pub fraction: Option<f64>,
    /// sample: seed (random when absent, recorded).
    pub seed: Option<u64>,
    /// shift: offset in ms (may be negative while no timestamp becomes negative).
    pub offset_ms: Option<i64>,
    /// Output layout: `{"format": "jsonl"|"json", "ascii": bool}`.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
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
    let op = op.validated(inputs.len())?;
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
    ($name:ident, $mode:literal, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "workloads",
            request_body(content = UtilityRequestDoc, content_type = "application/json"),
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
    "concat",
    "/v1/workloads/concat",
    "Concatenate workloads: each input shifted to start `gap_ms` after the previous one's largest timestamp."
);
utility_route!(
    merge,
    "merge",
    "/v1/workloads/merge",
    "Merge workloads on their original timestamps (k-way); equal timestamps are combined."
);
utility_route!(
    time_scale,
    "time-scale",
    "/v1/workloads/time-scale",
    "Multiply every timestamp of one workload by `factor`."
);
utility_route!(
    slice,
    "slice",
    "/v1/workloads/slice",
    "Keep the entries of one workload in `[start_ms, end_ms)`, re-based to 0."
);
utility_route!(
    sample,
    "sample",
    "/v1/workloads/sample",
    "Keep a seeded `fraction` of one workload's requests (whole sessions together)."
);
utility_route!(
    shift,
    "shift",
    "/v1/workloads/shift",
    "Add `offset_ms` to every timestamp of one workload."
);
