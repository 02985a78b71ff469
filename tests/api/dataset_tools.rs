//! `POST /v1/datasets/generate` and `POST /v1/datasets/convert`.

use serde_json::json;

use crate::helpers::{TestApp, problem};

#[tokio::test]
async fn generate_a_shared_prefix_collection_and_use_it() {
    let app = TestApp::spawn().await;
    let spec = json!({"kind": "shared_prefix", "seed": 3, "configs": [{"prompt_length": 60, "prompt_length_std": 5,
        "shared_proportion": 0.5, "shared_proportion_std": 0.01, "num_samples_per_prefix": 4, "num_prefix": 3}]});
    let res = app
        .client
        .post(app.url("/v1/datasets/generate"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["dataset"]["records"], 12);
    assert_eq!(v["dataset"]["schema"], "plain");
    assert!(v["report"].is_object());
    // Same seed: the same bytes, the same dataset.
    let again = app
        .client
        .post(app.url("/v1/datasets/generate"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    // The generated collection feeds a workload.
    let id = v["dataset"]["id"].as_str().unwrap();
    let w: serde_json::Value = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&json!({"trace_type": "constant", "dataset": id, "duration_ms": 5000, "traffic": {"target_qps": 4}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["status"], "succeeded");
    // Errors name the field; prompt_file must be a stored dataset id.
    let v = problem(
        app.client
            .post(app.url("/v1/datasets/generate"))
            .json(&json!({"kind": "shared_prefix", "prompt_file": "/etc/passwd"}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "prompt_file");
}

#[tokio::test]
async fn convert_sharegpt_and_reject_bad_input() {
    let app = TestApp::spawn().await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/datasets/sharegpt.json"
    ))
    .unwrap();
    let res = app
        .client
        .post(app.url("/v1/datasets/convert?from=sharegpt&name=sg.json"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["dataset"]["schema"], "sessioned");
    assert!(v["dataset"]["sessions"].as_u64().unwrap() > 0);
    let res = app
        .client
        .post(app.url("/v1/datasets/convert?from=pdf"))
        .body("x")
        .send()
        .await
        .unwrap();
    problem(res, 400, "bad_request").await;
    let res = app
        .client
        .post(app.url("/v1/datasets/convert?from=openai-chat"))
        .header("content-type", "application/x-ndjson")
        .body("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{not json\n")
        .send()
        .await
        .unwrap();
    let v = problem(res, 422, "invalid_dataset").await;
    assert_eq!(v["line"], 2);
    // The message names the upload, never the server's temporary file.
    let detail = v["detail"].as_str().unwrap();
    assert!(
        !detail.contains('/') && !detail.contains("upload-"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_generated_collection_over_the_store_quota_is_refused_and_left_nowhere() {
    let app = TestApp::spawn_with(|c| c.max_store_bytes = 3000).await;
    // 3 x 40 prompts of about 60 tokens: well over 3,000 bytes.
    let spec = json!({"kind": "shared_prefix", "seed": 3, "configs": [{"prompt_length": 60, "prompt_length_std": 5,
        "shared_proportion": 0.5, "shared_proportion_std": 0.01, "num_samples_per_prefix": 40, "num_prefix": 3}]});
    let post = || {
        app.client
            .post(app.url("/v1/datasets/generate"))
            .json(&spec)
            .send()
    };
    let v = problem(post().await.unwrap(), 507, "insufficient_storage").await;
    assert!(v["detail"].as_str().unwrap().contains("quota"), "{v}");
    let list: serde_json::Value = app.get_json("/v1/datasets").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only the sample: {list}"
    );
    let tmp = app.dir.path().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporaries left: {left:?}");
}
