//! Stable error codes shared by the HTTP error envelope and job records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable, machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (bad query, path or header).
    BadRequest,
    /// The body is not valid JSON or does not match the schema.
    InvalidJson,
    /// The generation spec is well-formed but a value is invalid.
    InvalidSpec,
    /// An uploaded prompt collection is invalid (the detail names the line and field).
    InvalidDataset,
    /// An uploaded trace is invalid.
    InvalidTrace,
    /// Missing or wrong bearer token.
    Unauthorized,
    /// No such resource.
    NotFound,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// The resource exists but is not ready (e.g. a job still running).
    NotReady,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The content type is not accepted.
    UnsupportedMediaType,
    /// The job queue is full; retry after `Retry-After` seconds.
    QueueFull,
    /// The server is shutting down.
    ShuttingDown,
    /// An unexpected server error.
    Internal,
    /// Generation failed (job error).
    GenerationFailed,
    /// An input file of the job is invalid (job error).
    InvalidInput,
    /// The job ran longer than the job timeout (job error).
    Timeout,
    /// The job was queued or running when the server stopped (job error).
    Interrupted,
    /// The job was cancelled (job error).
    Cancelled,
    /// The job would exceed, or crossed, a limit of the server (requests, output bytes, prompt tokens).
    LimitExceeded,
    /// The request URI is longer than the server accepts.
    UriTooLong,
    /// The request's header section is larger than the server accepts.
    HeadersTooLarge,
    /// Not enough free disk space under the data directory for the job, or the store quota is used up.
    InsufficientStorage,
}

impl ErrorCode {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidSpec => "invalid_spec",
            ErrorCode::InvalidDataset => "invalid_dataset",
            ErrorCode::InvalidTrace => "invalid_trace",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::GenerationFailed => "generation_failed",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Interrupted => "interrupted",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::InsufficientStorage => "insufficient_storage",
        }
    }
}
