//! Liveness, readiness and metrics: open even when auth is on.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;
use super::dto::HealthView;
use crate::http::AppJsonOut;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = HealthView)))]
pub async fn healthz() -> AppJsonOut<HealthView> {
    AppJsonOut(HealthView {
        status: "ok".into(),
    })
}

/// Readiness: false (503) while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = HealthView),
    (status = 503, description = "Shutting down", body = HealthView)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.jobs.accepting() {
        (
            StatusCode::OK,
            AppJsonOut(HealthView {
                status: "ok".into(),
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            AppJsonOut(HealthView {
                status: "shutting_down".into(),
            }),
        )
    }
}

/// Prometheus metrics: jobs by status, queue depth, running jobs, rejected submissions, job durations, bytes.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let jobs = state.jobs.clone();
    let text = tokio::task::spawn_blocking(move || jobs.metrics_text())
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
