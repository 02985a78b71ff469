//! Utility routes: new workload resources made from finished ones.

use serde_json::json;

use crate::helpers::{TestApp, problem, small_spec};

async fn finished(app: &TestApp, seed: u64) -> (String, String) {
    let mut spec = small_spec();
    spec["seed"] = json!(seed);
    let v: serde_json::Value = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let text = app
        .get_text(&format!("/v1/workloads/{id}/workload.jsonl"))
        .await;
    (id, text)
}

fn timestamps(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["timestamp"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn concat_and_shift_make_new_workloads() {
    let app = TestApp::spawn().await;
    let (a, ta) = finished(&app, 1).await;
    let (b, tb) = finished(&app, 2).await;
    let res = app
        .client
        .post(app.url("/v1/workloads/concat"))
        .json(&json!({"inputs": [a, b], "gap_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["kind"], "concat");
    let done = app.wait_done(v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let text = app
        .get_text(&format!(
            "/v1/workloads/{}/workload.jsonl",
            v["id"].as_str().unwrap()
        ))
        .await;
    let (ts_a, ts_b, ts) = (timestamps(&ta), timestamps(&tb), timestamps(&text));
    assert_eq!(ts.len(), ts_a.len() + ts_b.len());
    let offset = ts_a.iter().max().unwrap() + 1000;
    assert_eq!(ts[ts_a.len()], ts_b[0] + offset);
    let manifest: serde_json::Value = app
        .get_json(&format!(
            "/v1/workloads/{}/manifest.json",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 2);

    let res = app
        .client
        .post(app.url("/v1/workloads/shift"))
        .json(&json!({"inputs": [a], "offset_ms": 250}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    let done = app.wait_done(v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded");
    let text = app
        .get_text(&format!(
            "/v1/workloads/{}/workload.jsonl",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        timestamps(&text),
        ts_a.iter().map(|t| t + 250).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn utility_errors_name_the_field() {
    let app = TestApp::spawn().await;
    let v = problem(
        app.client
            .post(app.url("/v1/workloads/merge"))
            .json(&json!({"inputs": ["nope"]}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "inputs[0]");
    let v = problem(
        app.client
            .post(app.url("/v1/workloads/time-scale"))
            .json(&json!({"inputs": []}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_spec",
    )
    .await;
    assert!(
        v["detail"].as_str().unwrap().contains("factor")
            || v["detail"].as_str().unwrap().contains("inputs"),
        "{v}"
    );
    let v = problem(
        app.client
            .post(app.url("/v1/workloads/concat"))
            .json(&json!({"gap_ms": 1}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "inputs");
}
