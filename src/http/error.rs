//! The one error envelope: RFC 9457 `application/problem+json` with a stable `code` and the `request_id`.
//!
//! Handlers return [`ApiError`]. Its `IntoResponse` only attaches the error to the response; the
//! [`render_problems`] middleware (which knows the request id) logs it once and writes the body. Rejections,
//! the 404 fallback, 405 and panics all become `ApiError`s, so every error has the same shape.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::codes::ErrorCode;

/// A problem details body (RFC 9457) as sent on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
    "detail": "traffic.target_qps must be > 0", "code": "invalid_spec", "request_id": "6f1c0c7e-..."}))]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status text.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// The request id (`x-request-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The offending field, when known (dotted path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The offending line of an upload, when known (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// Stable code.
    pub code: ErrorCode,
    /// Client-facing detail (generic for 5xx).
    pub detail: String,
    /// Field path, when known.
    pub field: Option<String>,
    /// Line number, when known.
    pub line: Option<u64>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// Internal cause, logged, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            line: None,
            retry_after: None,
            internal: None,
        }
    }

    /// 404 for a missing resource.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no {what} with id '{id}'"),
        )
    }

    /// 500 with a generic detail; `cause` is logged only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal server error",
        );
        e.internal = Some(cause.to_string());
        e
    }

    /// 422 invalid spec naming the field.
    pub fn invalid_spec(field: &str, message: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidSpec,
            format!("{field} {message}"),
        );
        e.field = Some(field.to_string());
        e
    }

    /// Sets the field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the line.
    pub fn with_line(mut self, line: Option<u64>) -> Self {
        self.line = line;
        self
    }

    /// The wire body.
    pub fn problem(&self, request_id: Option<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").into(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            request_id,
            field: self.field.clone(),
            line: self.line,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

/// The HTTP status of each error code: the one place codes map to statuses (job errors embedded in a job
/// view use it too, so a cancelled job does not claim a 500).
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidJson => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidSpec
        | ErrorCode::InvalidDataset
        | ErrorCode::InvalidTrace
        | ErrorCode::InvalidInput
        | ErrorCode::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::NotReady | ErrorCode::Cancelled => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::QueueFull => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ShuttingDown | ErrorCode::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
        ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Internal | ErrorCode::GenerationFailed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code of an error status that reached the envelope without an [`ApiError`] (tower-http layers answer
/// with bare statuses: 415 for an unsupported `Content-Encoding`, 413, 400).
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::QueueFull,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ShuttingDown,
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::INSUFFICIENT_STORAGE => ErrorCode::InsufficientStorage,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// The detail of a bare error status.
fn detail_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the request's Content-Encoding is not supported (only gzip is)"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the body exceeds the size limit",
        s if s.is_server_error() => "internal server error",
        _ => "the request was refused",
    }
}

/// The title of a job's error object, by code.
pub fn job_error_title(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Cancelled => "Job cancelled",
        ErrorCode::Timeout => "Job timed out",
        ErrorCode::Interrupted => "Job interrupted by a server stop",
        ErrorCode::InvalidSpec => "Invalid spec",
        ErrorCode::LimitExceeded => "Job limit exceeded",
        ErrorCode::InvalidInput | ErrorCode::InvalidDataset | ErrorCode::InvalidTrace => {
            "Invalid input file"
        }
        _ => "Job failed",
    }
}

impl From<crate::jobs::disk::NoRoom> for ApiError {
    fn from(e: crate::jobs::disk::NoRoom) -> Self {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::InsufficientStorage,
            e.to_string(),
        )
    }
}

impl From<crate::domain::spec::SpecError> for ApiError {
    fn from(e: crate::domain::spec::SpecError) -> Self {
        ApiError::invalid_spec(&e.field, &e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.extensions_mut().insert(Arc::new(self));
        res
    }
}

/// Writes problem bodies for responses that carry an [`ApiError`], and logs each error once.
pub async fn render_problems(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut res = next.run(req).await;
    let err = match res.extensions_mut().remove::<Arc<ApiError>>() {
        Some(err) => err,
        // A bare error status from a layer (no body, no content type): give it the envelope too. Error
        // answers with a typed body of their own (`/readyz`'s 503) pass as they are.
        None if (res.status().is_client_error() || res.status().is_server_error())
            && !res.headers().contains_key(header::CONTENT_TYPE) =>
        {
            let status = res.status();
            Arc::new(ApiError::new(
                status,
                code_for_status(status),
                detail_for_status(status),
            ))
        }
        None => return res,
    };
    if err.status.is_server_error() {
        tracing::error!(
            code = err.code.as_str(),
            cause = err.internal.as_deref().unwrap_or(""),
            "{}",
            err.detail
        );
    } else {
        tracing::info!(code = err.code.as_str(), "{}", err.detail);
    }
    let body = serde_json::to_vec(&err.problem(request_id)).expect("problem serializes");
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
