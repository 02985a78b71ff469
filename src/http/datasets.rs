//! `/v1/datasets` and `/v1/traces`: streamed uploads, listing, lookup, deletion.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use super::dto::{DatasetList, DatasetView, TraceList, TraceUploadQuery, TraceView, UploadQuery};
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::{AppPath, AppQuery};
use super::{AppJsonOut, AppState};
use crate::jobs::blobs::{IngestError, TempUpload, ingest};
use crate::jobs::stores::{TRACE_FORMATS, UploadError};

/// Bytes the dataset and trace stores hold now (what the store quota counts).
pub(crate) async fn store_used(state: &AppState) -> Result<u64, ApiError> {
    let (datasets, traces) = (state.jobs.datasets().clone(), state.jobs.traces().clone());
    tokio::task::spawn_blocking(move || datasets.uploaded_bytes() + traces.total_bytes())
        .await
        .map_err(ApiError::internal)
}

/// Streams the request body (raw, or the multipart field `file`) to a temporary file.
pub(crate) async fn receive(
    state: &AppState,
    req: Request,
) -> Result<(TempUpload, Option<String>), ApiError> {
    let limit = state.cfg.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the upload exceeds the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // The stores' quota and the free-space reserve: refused before reading when the declared size does
    // not fit, and while streaming when the body outgrows the quota's room.
    let policy = state.cfg.disk();
    let used = store_used(state).await?;
    let incoming = declared.unwrap_or(0);
    policy.admit_upload(used, incoming)?;
    policy.admit(&state.cfg.data_dir, incoming)?;
    let room = policy.store_room(used);
    let quota_binds = room < limit;
    let limit = limit.min(room);
    let ct = content_type(req.headers());
    let tmp = state.cfg.data_dir.join("tmp");
    let map = |e: IngestError| match e {
        IngestError::TooLarge { limit } if quota_binds => policy
            .admit_upload(used, limit + 1)
            .err()
            .map_or_else(too_large, ApiError::from),
        IngestError::TooLarge { .. } => too_large(),
        IngestError::Io(e) if crate::jobs::disk::is_disk_full(&e) => {
            tracing::error!(error = %e, "the disk is full while storing an upload");
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
                "the disk is full: the upload could not be stored",
            )
        }
        IngestError::Body(m) => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, m),
        IngestError::Io(e) => ApiError::internal(e),
    };
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("invalid multipart body: {}", e.body_text()),
            )
        })?;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("invalid multipart body: {}", e.body_text()),
            )
        })? {
            if field.name() == Some("file") {
                let name = field.file_name().map(sanitize_name);
                let upload = ingest(&tmp, field, limit).await.map_err(map)?;
                return Ok((upload, name));
            }
        }
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "the multipart body has no field named `file`",
        ));
    }
    let accepted = [
        "application/x-ndjson",
        "application/jsonl",
        "application/json-lines",
        "application/octet-stream",
        "text/plain",
        "text/csv",
        "application/json",
        "",
    ];
    if !accepted.contains(&ct.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "unsupported content type '{ct}': send application/x-ndjson (raw body) or multipart/form-data with a `file` field"
            ),
        ));
    }
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(|e| e.to_string());
    Ok((ingest(&tmp, stream, limit).await.map_err(map)?, None))
}

fn content_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Keeps a display name printable and short; it is never used as a path.
pub(crate) fn sanitize_name(n: &str) -> String {
    n.chars().filter(|c| !c.is_control()).take(200).collect()
}

pub(crate) fn upload_error(e: UploadError, code: ErrorCode) -> ApiError {
    match e {
        UploadError::Dataset(d) => {
            let line = d.line();
            let field = match &d {
                crate::domain::dataset::DatasetError::Record { field, .. } => field.clone(),
                _ => None,
            };
            let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, d.to_string())
                .with_line(line);
            err.field = field;
            err
        }
        UploadError::Trace { detail, line } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).with_line(line)
        }
        UploadError::Io(e) => ApiError::internal(e),
    }
}

fn created(location: String, body: impl serde::Serialize, new: bool) -> Response {
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, [(header::LOCATION, location)], AppJsonOut(body)).into_response()
}

/// Upload a prompt collection (JSONL, plain or sessioned), as the raw body or the multipart field `file`;
/// `Content-Encoding: gzip` is accepted. Validated record by record and stored by content (the same bytes give
/// the same id: 201 the first time, 200 after).
#[utoipa::path(post, path = "/v1/datasets", tag = "datasets", params(UploadQuery),
    request_body(content = String, description = "JSONL prompt collection", content_type = "application/x-ndjson"),
    responses(
        (status = 201, description = "Stored", body = DatasetView),
        (status = 200, description = "Already stored (same bytes)", body = DatasetView),
        (status = 413, description = "Larger than the upload limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported content type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid record (the detail and `line` name it)", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upload_dataset(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (upload, file_name) = receive(&state, req).await?;
    let name = q
        .name
        .map(|n| sanitize_name(&n))
        .or(file_name)
        .unwrap_or_else(|| upload.sha256.clone());
    let store = state.jobs.datasets().clone();
    let (rec, new) = tokio::task::spawn_blocking(move || store.store_upload(upload, &name))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| upload_error(e, ErrorCode::InvalidDataset))?;
    Ok(created(
        format!("/v1/datasets/{}", rec.id),
        DatasetView::from(rec),
        new,
    ))
}

/// List datasets (the built-in `sample` is always there).
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets", responses((status = 200, body = DatasetList)), security(("bearer" = [])))]
pub async fn list_datasets(State(state): State<AppState>) -> AppJsonOut<DatasetList> {
    AppJsonOut(DatasetList {
        items: state
            .jobs
            .datasets()
            .list()
            .into_iter()
            .map(Into::into)
            .collect(),
    })
}

/// One dataset, with token statistics per tokenizer once computed.
#[utoipa::path(get, path = "/v1/datasets/{id}", tag = "datasets", params(("id" = String, Path, description = "Dataset id")),
    responses((status = 200, body = DatasetView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_dataset(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<AppJsonOut<DatasetView>, ApiError> {
    state
        .jobs
        .datasets()
        .get(&id)
        .map(|r| AppJsonOut(r.into()))
        .ok_or_else(|| ApiError::not_found("dataset", &id))
}

/// Delete a dataset (not the built-in `sample`).
#[utoipa::path(delete, path = "/v1/datasets/{id}", tag = "datasets", params(("id" = String, Path, description = "Dataset id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .jobs
        .datasets()
        .delete(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| ApiError::not_found("dataset", &id))
}

/// Upload a trace or another input file a spec names (Azure CSV, Mooncake JSONL, BurstGPT CSV, stat CSVs,
/// pattern configs), raw or multipart, gzip accepted. Its shape is checked for the declared format; specs refer
/// to it by id.
#[utoipa::path(post, path = "/v1/traces", tag = "traces", params(TraceUploadQuery),
    request_body(content = String, description = "Trace file", content_type = "text/csv"),
    responses(
        (status = 201, description = "Stored", body = TraceView),
        (status = 200, description = "Already stored", body = TraceView),
        (status = 400, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid trace", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upload_trace(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<TraceUploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    if !TRACE_FORMATS.contains(&q.format.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("format must be one of {}", TRACE_FORMATS.join(", ")),
        )
        .with_field("format"));
    }
    let (upload, file_name) = receive(&state, req).await?;
    let name = q
        .name
        .map(|n| sanitize_name(&n))
        .or(file_name)
        .unwrap_or_else(|| upload.sha256.clone());
    let store = state.jobs.traces().clone();
    let (rec, new) =
        tokio::task::spawn_blocking(move || store.store_upload(upload, &name, &q.format))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| upload_error(e, ErrorCode::InvalidTrace))?;
    Ok(created(
        format!("/v1/traces/{}", rec.id),
        TraceView::from(rec),
        new,
    ))
}

/// List traces.
#[utoipa::path(get, path = "/v1/traces", tag = "traces", responses((status = 200, body = TraceList)), security(("bearer" = [])))]
pub async fn list_traces(State(state): State<AppState>) -> AppJsonOut<TraceList> {
    AppJsonOut(TraceList {
        items: state
            .jobs
            .traces()
            .list()
            .into_iter()
            .map(Into::into)
            .collect(),
    })
}

/// One trace.
#[utoipa::path(get, path = "/v1/traces/{id}", tag = "traces", params(("id" = String, Path, description = "Trace id")),
    responses((status = 200, body = TraceView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_trace(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<AppJsonOut<TraceView>, ApiError> {
    state
        .jobs
        .traces()
        .get(&id)
        .map(|r| AppJsonOut(r.into()))
        .ok_or_else(|| ApiError::not_found("trace", &id))
}

/// Delete a trace.
#[utoipa::path(delete, path = "/v1/traces/{id}", tag = "traces", params(("id" = String, Path, description = "Trace id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete_trace(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .jobs
        .traces()
        .delete(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| ApiError::not_found("trace", &id))
}
