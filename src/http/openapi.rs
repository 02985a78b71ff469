//! The OpenAPI document, generated from the code (utoipa + utoipa-axum `routes!`), committed at
//! `openapi/openapi.json` and checked for drift by a test. Regenerate with
//! `cargo run -- openapi > openapi/openapi.json`.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let comps = api.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
                "Required on /v1 routes when the server runs with --auth-token / WG_AUTH_TOKEN",
            )).build()),
        );
    }
}

/// Document metadata: info, tags, security scheme.
#[derive(OpenApi)]
#[openapi(
    info(title = "workload-generator", description = "Generates timed benchmark workloads for LLM serving systems. Errors are RFC 9457 application/problem+json with a stable `code` and the `request_id`."),
    modifiers(&Security),
    tags(
        (name = "workloads", description = "Generation jobs"),
        (name = "results", description = "Files of finished jobs"),
        (name = "datasets", description = "Prompt collections"),
        (name = "traces", description = "Traces and other input files named by specs"),
        (name = "operations", description = "Health, readiness, metrics"),
    ),
    components(schemas(super::error::Problem, super::error::ErrorCode))
)]
pub struct ApiDoc;

/// The base document (info, tags, components) before routes are added.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The full document: the base plus every registered route, built without state.
pub fn spec() -> utoipa::openapi::OpenApi {
    let (v1, ops) = super::api_routes(1);
    let (_, api) = OpenApiRouter::<AppState>::with_openapi(base())
        .merge(v1)
        .merge(ops)
        .split_for_parts();
    api
}

/// The document as pretty JSON with a trailing newline (the committed file's form).
pub fn spec_json() -> String {
    let mut s = spec()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    s.push('\n');
    s
}
