//! Uploads: raw, multipart, gzip, limits, validation, content addressing.

use std::io::Write;

use crate::helpers::{TestApp, problem};

const PLAIN: &str = "{\"prompt\": \"Hello there, how are you?\", \"completion\": \"Fine.\"}\n{\"prompt\": \"Explain tokenizers.\"}\n";

#[tokio::test]
async fn upload_raw_is_content_addressed_and_listed() {
    let app = TestApp::spawn().await;
    let res = app.upload(PLAIN).await;
    assert_eq!(res.status(), 201);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["schema"], "plain");
    assert_eq!(v["records"], 2);
    assert_eq!(v["turns"], 2);
    assert_eq!(v["name"], "t.jsonl");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(loc, format!("/v1/datasets/{id}"));
    // Same bytes again: same id, 200.
    let again = app.upload(PLAIN).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["id"], id);
    let list: serde_json::Value = app.get_json("/v1/datasets").await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"sample") && ids.contains(&id.as_str()));
    // Delete, then 404.
    assert_eq!(
        app.client
            .delete(app.url(&loc))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    problem(
        app.client.get(app.url(&loc)).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    // The built-in sample cannot be deleted.
    problem(
        app.client
            .delete(app.url("/v1/datasets/sample"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn multipart_and_gzip_uploads() {
    let app = TestApp::spawn().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PLAIN.as_bytes().to_vec()).file_name("mine.jsonl"),
    );
    let res = app
        .client
        .post(app.url("/v1/datasets"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["name"], "mine.jsonl");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"session_id\": 1, \"prompts\": [\"a\", \"b\"]}\n")
        .unwrap();
    let res = app
        .client
        .post(app.url("/v1/datasets"))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (
            v["schema"].as_str(),
            v["sessions"].as_u64(),
            v["turns"].as_u64()
        ),
        (Some("sessioned"), Some(1), Some(2))
    );
}

#[tokio::test]
async fn malformed_jsonl_names_the_line_and_field() {
    let app = TestApp::spawn().await;
    let res = app
        .upload("{\"prompt\": \"ok\"}\n\n{\"prompt\": [1]}\n")
        .await;
    let v = problem(res, 422, "invalid_dataset").await;
    assert_eq!(v["line"], 3);
    assert_eq!(v["field"], "prompt");
    assert!(v["detail"].as_str().unwrap().contains("t.jsonl:3"), "{v}");
    let res = app.upload("{\"prompt\": \"ok\"}\n{not json\n").await;
    assert_eq!(problem(res, 422, "invalid_dataset").await["line"], 2);
    // Nothing was stored.
    let list: serde_json::Value = app.get_json("/v1/datasets").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_uploads_get_413_declared_or_streamed() {
    let app = TestApp::spawn_with(|c| c.max_upload_bytes = 1000).await;
    let big =
        "{\"prompt\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n".repeat(100);
    let res = app
        .client
        .post(app.url("/v1/datasets"))
        .header("content-type", "application/x-ndjson")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(res, 413, "payload_too_large").await;
    // Chunked (no Content-Length): stopped while streaming.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let res = app
        .client
        .post(app.url("/v1/datasets"))
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    problem(res, 413, "payload_too_large").await;
    // No temporary file is left behind.
    let tmp = app.dir.path().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0), 0);
}

#[tokio::test]
async fn traces_are_checked_for_their_format() {
    let app = TestApp::spawn().await;
    let azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n";
    let res = app
        .client
        .post(app.url("/v1/traces?format=azure&name=a.csv"))
        .header("content-type", "text/csv")
        .body(azure)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (v["format"].as_str(), v["lines"].as_u64()),
        (Some("azure"), Some(2))
    );
    let res = app
        .client
        .post(app.url("/v1/traces?format=azure"))
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    problem(res, 422, "invalid_trace").await;
    let res = app
        .client
        .post(app.url("/v1/traces?format=mooncake"))
        .header("content-type", "application/x-ndjson")
        .body("{\"timestamp\": 0}\n")
        .send()
        .await
        .unwrap();
    let v = problem(res, 422, "invalid_trace").await;
    assert_eq!(v["line"], 1);
    let res = app
        .client
        .post(app.url("/v1/traces?format=pdf"))
        .body("x")
        .send()
        .await
        .unwrap();
    problem(res, 400, "bad_request").await;
}

fn collection(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"prompt\": \"{tag} prompt number {i} with some words in it\"}}\n"))
        .collect()
}

/// The dataset and trace stores have a quota: an upload that does not fit, declared or streamed, gets
/// 507 `insufficient_storage` and leaves nothing behind; after a delete it fits.
#[tokio::test]
async fn the_store_quota_refuses_uploads_that_do_not_fit() {
    let app = TestApp::spawn_with(|c| c.max_store_bytes = 6000).await;
    let first = collection(80, "first"); // about 4 KB
    assert!(first.len() > 3000 && first.len() < 6000, "{}", first.len());
    let post = |body: String| {
        app.client
            .post(app.url("/v1/datasets?name=q.jsonl"))
            .header("content-type", "application/x-ndjson")
            .body(body)
    };
    let res = post(first.clone()).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Declared length over the room left.
    let v = problem(
        post(collection(80, "second")).send().await.unwrap(),
        507,
        "insufficient_storage",
    )
    .await;
    assert!(v["detail"].as_str().unwrap().contains("quota"), "{v}");
    // Streamed without a length: refused while reading.
    let body = collection(80, "third");
    let stream = futures_util::stream::iter(
        body.into_bytes()
            .chunks(500)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let res = app
        .client
        .post(app.url("/v1/datasets?name=q.jsonl"))
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(res, 507, "insufficient_storage").await;
    let list: serde_json::Value = app.get_json("/v1/datasets").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "sample + the first: {list}"
    );
    // Room again after a delete.
    let res = app
        .client
        .delete(app.url(&format!("/v1/datasets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        post(collection(80, "second"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

/// Below the free-space reserve nothing new is accepted: jobs and uploads get 507 before any work.
#[tokio::test]
async fn low_free_space_refuses_jobs_and_uploads() {
    let app = TestApp::spawn_with(|c| c.min_free_bytes = u64::MAX / 4).await;
    let v = problem(
        app.submit(crate::helpers::small_spec()).await,
        507,
        "insufficient_storage",
    )
    .await;
    assert!(
        v["detail"].as_str().unwrap().contains("must stay free"),
        "{v}"
    );
    problem(app.upload(PLAIN).await, 507, "insufficient_storage").await;
    let jobs: serde_json::Value = app.get_json("/v1/workloads").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 0, "{jobs}");
}
