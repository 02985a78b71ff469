//! The committed OpenAPI document matches the code.

use workload_generator::http::openapi::spec_json;

#[test]
fn committed_openapi_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let current = spec_json();
    assert!(
        committed == current,
        "openapi/openapi.json is out of date; regenerate it with:\n    cargo run -- openapi > openapi/openapi.json"
    );
}

#[test]
fn every_route_and_the_spec_example_are_documented() {
    let doc: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/datasets",
        "/v1/datasets/{id}",
        "/v1/traces",
        "/v1/traces/{id}",
        "/v1/workloads",
        "/v1/workloads/{id}",
        "/v1/workloads/{id}/workload.jsonl",
        "/v1/workloads/{id}/manifest.json",
        "/v1/workloads/{id}/events",
        "/v1/workloads/{id}/plots/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    // The request example deserializes into the real spec type and validates.
    let example = &doc["components"]["schemas"]["GenerationSpecDoc"]["example"];
    let spec: workload_generator::domain::spec::GenerationSpec =
        serde_json::from_value(example.clone()).unwrap();
    spec.validate().unwrap();
}

#[test]
fn spec_doc_lists_every_spec_field() {
    let doc: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    let props = doc["components"]["schemas"]["GenerationSpecDoc"]["properties"]
        .as_object()
        .unwrap();
    let mut spec = workload_generator::domain::spec::GenerationSpec::new(
        workload_generator::domain::spec::TraceType::Constant,
    );
    spec.seed = Some(1);
    spec.dataset = Some("sample".into());
    spec.prompt_file = Some("x".into());
    spec.max_concurrent_sessions = Some(1);
    spec.synthetic = Some(Default::default());
    spec.stat = Some(Default::default());
    spec.agent = Some(serde_json::json!({}));
    spec.agent_config = Some("x".into());
    spec.trace = Some(workload_generator::domain::spec::TraceSpec::new("x"));
    let v = serde_json::to_value(&spec).unwrap();
    for key in v.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "GenerationSpecDoc lacks `{key}`");
    }
}
