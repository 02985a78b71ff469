//! Extractors whose rejections are [`ApiError`]s, so malformed JSON, paths and queries get the same
//! problem+json envelope as everything else.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};
use crate::domain::spec::{GenerationSpec, parse_spec};

/// JSON body with field-path errors (`traffic.target_qps: invalid type ...`).
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        // Every JSON body of this API is an object; serde would read an array positionally.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidJson,
                    "the body must be a JSON object",
                ));
            }
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut *de) {
            // One JSON value and nothing after it but whitespace: `{..} {..}` is not a spec.
            Ok(v) => match de.end() {
                Ok(()) => Ok(AppJson(v)),
                Err(e) => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidJson,
                    format!("the body is not valid JSON: trailing data after the JSON value ({e})"),
                )),
            },
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let (status, detail) = if inner.is_syntax() || inner.is_eof() {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("the body is not valid JSON: {inner}"),
                    )
                } else if path == "." {
                    (StatusCode::UNPROCESSABLE_ENTITY, format!("{inner}"))
                } else {
                    (StatusCode::UNPROCESSABLE_ENTITY, format!("{path}: {inner}"))
                };
                let mut err = ApiError::new(status, ErrorCode::InvalidJson, detail);
                if path != "." {
                    err.field = Some(path);
                }
                Err(err)
            }
        }
    }
}

/// The body of a JSON request: refuses other content types (415) and maps body-reading failures.
async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let json_ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            ct == "application/json" || ct.ends_with("+json")
        })
        .unwrap_or(false);
    if !json_ct {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "expected a JSON body with Content-Type: application/json",
        ));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(body_rejection)
}

/// A generation spec body, read by the domain's [`parse_spec`] (the same rules as the CLI's `--spec`: one
/// JSON value, null = absent, sections are objects). Not JSON → 400 `invalid_json`; JSON that is not a
/// spec → 422 `invalid_json` naming the field.
#[derive(Debug)]
pub struct SpecJson(pub GenerationSpec);

impl<S: Send + Sync> FromRequest<S> for SpecJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        parse_spec(&bytes).map(SpecJson).map_err(|e| {
            let (status, detail) = if e.syntax {
                (
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid JSON: {}", e.message),
                )
            } else {
                (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            };
            let mut err = ApiError::new(status, ErrorCode::InvalidJson, detail);
            err.field = e.field;
            err
        })
    }
}

/// Maps body-reading failures: over the limit → 413, otherwise 400.
pub fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the body exceeds the size limit",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("reading the body failed: {}", r.body_text()),
        )
    }
}

/// Query string with problem+json rejections.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    format!("invalid query: {}", e.body_text()),
                )
            })
    }
}

/// Path parameters with problem+json rejections.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    format!("invalid path: {}", e.body_text()),
                )
            })
    }
}
