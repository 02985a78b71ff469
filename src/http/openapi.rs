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
    let (_, mut api) = OpenApiRouter::<AppState>::with_openapi(base())
        .merge(v1)
        .merge(ops)
        .split_for_parts();
    add_common_responses(&mut api);
    api
}

/// The shared error answers, by component name.
const COMMON: &[(&str, &str)] = &[
    ("UriTooLong", "The request URI is too long (`uri_too_long`)"),
    (
        "HeadersTooLarge",
        "The request headers are too large (`headers_too_large`)",
    ),
    (
        "Internal",
        "Internal error (`internal`; the body carries no internals)",
    ),
    (
        "Unauthorized",
        "A valid bearer token is required (`unauthorized`; only when the server has a token)",
    ),
    (
        "BadParameter",
        "A query or path parameter is invalid (`bad_request`)",
    ),
    (
        "BadBody",
        "The body is not JSON, or not one JSON value (`invalid_json`, `bad_request`)",
    ),
    (
        "PayloadTooLarge",
        "The body exceeds the size limit (`payload_too_large`)",
    ),
    (
        "UnsupportedMediaType",
        "Unsupported Content-Type or Content-Encoding (`unsupported_media_type`)",
    ),
    (
        "Unprocessable",
        "The body is not valid for this route (the problem names the field)",
    ),
    (
        "QueueFull",
        "The job queue is full (`queue_full`; see Retry-After)",
    ),
    (
        "ShuttingDown",
        "The server is shutting down (`shutting_down`)",
    ),
    (
        "MethodNotAllowed",
        "The id names a sibling route (for example `sample`), which takes other methods (`method_not_allowed`)",
    ),
    (
        "InsufficientStorage",
        "Not enough free disk space, or the store quota is used up (`insufficient_storage`)",
    ),
];

/// Adds the answers every route can give, which the handlers' own annotations leave out because they come
/// from the layers around them: 414/431 (request limits) and 500 everywhere; 401 under `/v1` (with a
/// token); 400, 413, 415 and 422 for a body; 429, 503 and 507 for routes that create jobs or store files;
/// 405 where a path parameter can spell a static sibling route that lacks the method
/// (`GET /v1/workloads/sample` reaches the POST-only `sample` route). Existing entries are kept. Applied to the served and the committed document alike.
pub fn add_common_responses(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    let comps = api.components.get_or_insert_with(Default::default);
    let add = |op: &mut Operation, status: &str, name: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
    };
    for (name, description) in COMMON {
        comps
            .responses
            .insert(name.to_string(), problem(description));
    }
    let shadows = shadowed_methods(&api.paths);
    for (path, item) in api.paths.paths.iter_mut() {
        let v1 = path == "/v1" || path.starts_with("/v1/");
        let shadowed = shadows.get(path);
        let ops = [
            (&mut item.get, false, "get"),
            (&mut item.post, true, "post"),
            (&mut item.put, true, "put"),
            (&mut item.delete, false, "delete"),
        ];
        for (op, writes, method) in ops {
            let Some(op) = op.as_mut() else { continue };
            if shadowed.is_some_and(|m| m.contains(&method)) {
                add(op, "405", "MethodNotAllowed");
            }
            add(op, "414", "UriTooLong");
            add(op, "431", "HeadersTooLarge");
            add(op, "500", "Internal");
            if v1 {
                add(op, "401", "Unauthorized");
            }
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                add(op, "400", "BadParameter");
            }
            if op.request_body.is_some() {
                add(op, "400", "BadBody");
                add(op, "413", "PayloadTooLarge");
                add(op, "415", "UnsupportedMediaType");
                add(op, "422", "Unprocessable");
            }
            if writes && v1 {
                add(op, "429", "QueueFull");
                add(op, "503", "ShuttingDown");
                add(op, "507", "InsufficientStorage");
            }
        }
    }
}

/// For each templated path, the methods it has that some static sibling (the same path with a literal in
/// place of a parameter, such as `/v1/workloads/sample` for `/v1/workloads/{id}`) lacks: the router
/// sends such a request to the sibling, which answers 405.
fn shadowed_methods(
    paths: &utoipa::openapi::path::Paths,
) -> std::collections::HashMap<String, Vec<&'static str>> {
    let methods = |item: &utoipa::openapi::path::PathItem| {
        let mut m = Vec::new();
        for (op, name) in [
            (&item.get, "get"),
            (&item.post, "post"),
            (&item.put, "put"),
            (&item.delete, "delete"),
        ] {
            if op.is_some() {
                m.push(name);
            }
        }
        m
    };
    let is_param = |s: &str| s.starts_with('{') && s.ends_with('}');
    let mut out = std::collections::HashMap::new();
    for (templ, item) in &paths.paths {
        let t: Vec<&str> = templ.split('/').collect();
        if !t.iter().any(|s| is_param(s)) {
            continue;
        }
        let mine = methods(item);
        let mut shadowed: Vec<&'static str> = Vec::new();
        for (other, other_item) in &paths.paths {
            let o: Vec<&str> = other.split('/').collect();
            let covers = o.len() == t.len()
                && other != templ
                && t.iter()
                    .zip(&o)
                    .all(|(a, b)| a == b || (is_param(a) && !is_param(b)));
            if covers {
                let theirs = methods(other_item);
                for m in &mine {
                    if !theirs.contains(m) && !shadowed.contains(m) {
                        shadowed.push(m);
                    }
                }
            }
        }
        if !shadowed.is_empty() {
            out.insert(templ.clone(), shadowed);
        }
    }
    out
}

/// The document as pretty JSON with a trailing newline (the committed file's form).
pub fn spec_json() -> String {
    let mut s = spec()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    s.push('\n');
    s
}
