//! `/v1/workloads`: submit generation jobs, watch them, download results, cancel.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;

use super::dto::{GenerationSpecDoc, JobEventDoc, JobList, JobView, ListQuery, SubmitQuery};
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::{AppPath, AppQuery, SpecJson};
use super::{AppJsonOut, AppState};
use crate::jobs::model::JobStatus;
use crate::jobs::{Job, SubmitError, Work};

fn view(job: &Job) -> JobView {
    JobView::new(job.record(), job.progress())
}

pub(crate) fn submit_error(e: SubmitError) -> ApiError {
    match e {
        SubmitError::QueueFull(_) => {
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::QueueFull,
                e.to_string(),
            );
            err.retry_after = Some(5);
            err
        }
        SubmitError::ShuttingDown => {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                e.to_string(),
            );
            err.retry_after = Some(10);
            err
        }
        SubmitError::Spec(s) => s.into(),
        SubmitError::Storage(io) => ApiError::internal(io),
        SubmitError::NoRoom(n) => n.into(),
        SubmitError::Limit(l) => ApiError::new(
            super::error::status_for(ErrorCode::LimitExceeded),
            ErrorCode::LimitExceeded,
            l.to_string(),
        )
        .with_field(l.field),
    }
}

fn wants_stream(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|p| p.trim().starts_with("application/x-ndjson"))
        })
}

/// Submit a generation job. Answers 202 with `Location` and the job view. `?wait=true` answers when the job
/// is done (200), up to the server's wait cap (then 202). With `Accept: application/x-ndjson` the workload
/// lines are streamed back while they are generated (the job is cancelled if the client goes away; `Location`
/// names the job, whose status says whether the stream was complete).
#[utoipa::path(post, path = "/v1/workloads", tag = "workloads", params(SubmitQuery),
    request_body(content = GenerationSpecDoc, description = "Generation spec", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted; poll `Location`", body = JobView,
            headers(("Location" = String, description = "/v1/workloads/{id}"))),
        (status = 200, description = "Done (`wait=true`), or the streamed workload (`Accept: application/x-ndjson`)", body = JobView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Spec larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid spec (the detail names the field)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Queue full; see Retry-After", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Shutting down", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<SubmitQuery>,
    headers: HeaderMap,
    SpecJson(spec): SpecJson,
) -> Result<Response, ApiError> {
    let spec = spec.validate()?;
    if wants_stream(&headers) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let tap =
            Box::new(move |line: &[u8]| tx.blocking_send(Bytes::copy_from_slice(line)).is_ok());
        let job = state
            .jobs
            .submit(Work::Generate(Box::new(spec)), Some(tap))
            .map_err(submit_error)?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let body = Body::from_stream(futures_util::StreamExt::map(stream, Ok::<_, Infallible>));
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
                (
                    header::LOCATION,
                    format!("/v1/workloads/{}", job.record().id),
                ),
            ],
            body,
        )
            .into_response());
    }
    let job = state
        .jobs
        .submit(Work::Generate(Box::new(spec)), None)
        .map_err(submit_error)?;
    let location = format!("/v1/workloads/{}", job.record().id);
    let mut status = StatusCode::ACCEPTED;
    if q.wait == Some(true) {
        let mut rx = job.subscribe();
        let cap = Duration::from_secs(state.cfg.wait_cap_secs);
        let done = tokio::time::timeout(cap, async {
            while !job.record().status.is_terminal() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if done.is_ok() {
            status = StatusCode::OK;
        }
    }
    Ok((
        status,
        [(header::LOCATION, location)],
        AppJsonOut(view(&job)),
    )
        .into_response())
}

/// List jobs, newest first (paginated).
#[utoipa::path(get, path = "/v1/workloads", tag = "workloads", params(ListQuery),
    responses((status = 200, body = JobList),
        (status = 400, description = "Invalid query, or `after` names no listed job", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJsonOut<JobList>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let (records, next) = state.jobs.list(limit, q.after.as_deref()).ok_or_else(|| {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "`after` names no listed job (deleted or expired): list again without `after`",
        );
        e.field = Some("after".into());
        e
    })?;
    let items = records
        .into_iter()
        .map(|r| {
            let p = state.jobs.get(&r.id).map_or((0.0, 0), |j| j.progress());
            JobView::new(r, p)
        })
        .collect();
    Ok(AppJsonOut(JobList { items, next }))
}

fn job_or_404(state: &AppState, id: &str) -> Result<Arc<Job>, ApiError> {
    state
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found("workload", id))
}

/// One job: status, progress, timings, summary, error.
#[utoipa::path(get, path = "/v1/workloads/{id}", tag = "workloads", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<AppJsonOut<JobView>, ApiError> {
    let job = job_or_404(&state, &id)?;
    Ok(AppJsonOut(view(&job)))
}

/// Cancel a queued or running job (cooperatively) and delete its files; or delete a finished job.
#[utoipa::path(delete, path = "/v1/workloads/{id}", tag = "workloads", params(("id" = String, Path, description = "Job id")),
    responses((status = 204, description = "Cancelled / deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.jobs.delete(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("workload", &id))
    }
}

async fn serve_file(
    state: &AppState,
    id: &str,
    name: &str,
    content_type: &str,
) -> Result<Response, ApiError> {
    let job = job_or_404(state, id)?;
    let rec = job.record();
    match rec.status {
        JobStatus::Succeeded => {}
        JobStatus::Queued | JobStatus::Running => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotReady,
                format!(
                    "workload '{id}' is {}; try again when it has succeeded",
                    rec.status.as_str()
                ),
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("workload '{id}' {} and has no files", rec.status.as_str()),
            ));
        }
    }
    if !rec.files.iter().any(|f| f == name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "workload '{id}' has no file '{name}' (files: {})",
                rec.files.join(", ")
            ),
        ));
    }
    let path = job.dir().join(name);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Download the workload as JSONL (streamed).
#[utoipa::path(get, path = "/v1/workloads/{id}/workload.jsonl", tag = "results", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "One entry per line", body = String, content_type = "application/x-ndjson"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished yet", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn workload_jsonl(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    serve_file(&state, &id, "workload.jsonl", "application/x-ndjson").await
}

/// Download the workload as a JSON array (jobs with `output.format: json`).
#[utoipa::path(get, path = "/v1/workloads/{id}/workload.json", tag = "results", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Pretty-printed array", body = String, content_type = "application/json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn workload_json(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    serve_file(&state, &id, "workload.json", "application/json").await
}

/// Download the manifest: version, normalized spec, seed, input hashes, tokenizer, counts and statistics.
#[utoipa::path(get, path = "/v1/workloads/{id}/manifest.json", tag = "results", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Manifest", body = Object, content_type = "application/json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn manifest(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    serve_file(&state, &id, "manifest.json", "application/json").await
}

/// Download the fidelity report (achieved against target).
#[utoipa::path(get, path = "/v1/workloads/{id}/report.json", tag = "results", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Report", body = Object, content_type = "application/json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    serve_file(&state, &id, "report.json", "application/json").await
}

/// Download a plot (`traffic.svg`, `tokens.svg`, `lengths.svg`, `interarrival.svg`, `sessions.svg`,
/// `workload.svg`).
#[utoipa::path(get, path = "/v1/workloads/{id}/plots/{name}", tag = "results",
    params(("id" = String, Path, description = "Job id"), ("name" = String, Path, description = "Plot file, e.g. traffic.svg")),
    responses((status = 200, description = "SVG", body = String, content_type = "image/svg+xml"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn plot(
    State(state): State<AppState>,
    AppPath((id, name)): AppPath<(String, String)>,
) -> Result<Response, ApiError> {
    let stem = name.strip_suffix(".svg").unwrap_or("");
    if stem.is_empty()
        || !stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no plot named '{name}'"),
        ));
    }
    serve_file(&state, &id, &name, "image/svg+xml").await
}

/// Server-Sent Events: `progress` events (status, fraction, requests) while the job runs, then one `status`
/// event with the final job view.
#[utoipa::path(get, path = "/v1/workloads/{id}/events", tag = "workloads", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "SSE stream; the schema describes one event", body = JobEventDoc, content_type = "text/event-stream"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = job_or_404(&state, &id)?;
    let rx = job.subscribe();
    let stream = futures_util::stream::unfold(
        (job, rx, false, true),
        |(job, mut rx, done, first)| async move {
            if done {
                return None;
            }
            if !first && !job.record().status.is_terminal() {
                let _ = rx.changed().await;
            }
            let rec = job.record();
            let ev = if rec.status.is_terminal() {
                let v =
                    serde_json::to_string(&JobView::new(rec, job.progress())).expect("serializes");
                (Event::default().event("status").data(v), true)
            } else {
                let (fraction, requests) = job.progress();
                let v = serde_json::json!({"status": rec.status.as_str(), "fraction": fraction, "requests": requests});
                (
                    Event::default().event("progress").data(v.to_string()),
                    false,
                )
            };
            if !ev.1 {
                // Throttle: at most ~10 progress events per second.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((Ok(ev.0), (job, rx, ev.1, false)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
