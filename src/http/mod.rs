//! The HTTP layer: axum handlers, wire DTOs, the error envelope and the OpenAPI document. Handlers are thin:
//! extract, validate into a domain type, call the job manager or a store, map to a DTO.

pub mod dataset_tools;
pub mod datasets;
pub mod dto;
pub mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod utilities;
pub mod workloads;

use std::sync::Arc;
use std::time::Duration;

pub use axum::Json as AppJsonOut;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServeConfig;
use crate::jobs::JobManager;
use error::{ApiError, ErrorCode};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Settings.
    pub cfg: Arc<ServeConfig>,
    /// Jobs, datasets and traces.
    pub jobs: JobManager,
}

/// The routes with their OpenAPI registrations, without state or middleware (also used to build the spec).
pub fn api_routes(max_spec_bytes: usize) -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let v1 = OpenApiRouter::new()
        .routes(routes!(datasets::upload_dataset, datasets::list_datasets))
        .routes(routes!(datasets::get_dataset, datasets::delete_dataset))
        .routes(routes!(dataset_tools::convert))
        .routes(routes!(datasets::upload_trace, datasets::list_traces))
        .routes(routes!(datasets::get_trace, datasets::delete_trace))
        .routes(routes!(workloads::list))
        .routes(routes!(workloads::get, workloads::delete))
        .routes(routes!(workloads::workload_jsonl))
        .routes(routes!(workloads::workload_json))
        .routes(routes!(workloads::manifest))
        .routes(routes!(workloads::report))
        .routes(routes!(workloads::plot))
        .routes(routes!(workloads::events));
    let submit = OpenApiRouter::new()
        .routes(routes!(workloads::submit))
        .routes(routes!(dataset_tools::generate))
        .routes(routes!(utilities::concat))
        .routes(routes!(utilities::merge))
        .routes(routes!(utilities::time_scale))
        .routes(routes!(utilities::slice))
        .routes(routes!(utilities::sample))
        .routes(routes!(utilities::shift))
        .layer(DefaultBodyLimit::max(max_spec_bytes));
    let ops = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics));
    (v1.merge(submit), ops)
}

async fn require_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.cfg.auth_token.as_deref() else {
        return next.run(req).await;
    };
    // Everything under /v1 needs the token, routed or not: an unknown route or method answers 401 before
    // 404/405, so the API's shape is not visible without it. Health, readiness, metrics and docs stay open.
    let path = req.uri().path();
    if !(path == "/v1" || path.starts_with("/v1/")) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison.
    let ok = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .into_response()
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Longest request URI accepted (path and query), in bytes; longer ones answer 414 problem+json.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section accepted (names, values and separators), in bytes; larger ones answer 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses over-long URIs and header sections with the envelope. hyper's own limits (64 KiB URIs, 100
/// headers, a 400 KiB head) lie above these, so any request hyper parses meets ours first and gets
/// problem+json; only a request hyper cannot parse at all gets its bare answer.
async fn request_limits(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request URI has {uri_len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!(
                "the request headers have {header_bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
        )
        .into_response();
    }
    next.run(req).await
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("handler panicked").into_response()
}

/// The complete application router: routes, auth, error envelope, request ids, tracing, Swagger UI.
pub fn router(state: AppState) -> Router {
    let (v1, ops) = api_routes(state.cfg.max_spec_bytes);
    let v1 = v1.layer(DefaultBodyLimit::disable());
    let (router, mut api) = OpenApiRouter::with_openapi(openapi::base())
        .merge(v1)
        .merge(ops)
        .split_for_parts();
    openapi::add_common_responses(&mut api);
    let request_id = HeaderName::from_static("x-request-id");
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
                    tracing::info_span!("request", request_id = %rid, method = %req.method(), matched_path = %path)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "request");
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(middleware::from_fn(error::render_problems))
        .layer(middleware::from_fn(request_limits))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(RequestDecompressionLayer::new());
    router
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", api))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .layer(layers)
        .with_state(state)
}
