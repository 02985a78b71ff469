//! Graceful shutdown: running jobs are interrupted after the grace period; new jobs are refused.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn shutdown_interrupts_running_jobs_after_the_grace_period() {
    let app = TestApp::spawn_with(|c| c.shutdown_grace_secs = 0).await;
    let dir = app.dir.clone();
    let spec = json!({"trace_type": "constant", "seed": 1, "duration_ms": 9_000_000, "traffic": {"target_qps": 1000.0}});
    let v: serde_json::Value = app.submit(spec).await.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    app.stop().await;
    let rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("workloads").join(&id).join("job.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error"]["code"], "interrupted");
    // Nothing that looks like a result is left.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("workloads").join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["job.json".to_string()]);
}

#[tokio::test]
async fn a_stalled_download_does_not_outlive_the_grace_period() {
    let app = TestApp::spawn_with(|c| c.shutdown_grace_secs = 1).await;
    // About 30 MB of workload: far more than the socket buffers hold, so an unread response stalls.
    let spec = json!({"trace_type": "constant", "seed": 1, "duration_ms": 1_000_000, "traffic": {"target_qps": 10.0}});
    let v: serde_json::Value = app.submit(spec).await.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let res = app
        .client
        .get(app.url(&format!("/v1/workloads/{id}/workload.jsonl")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Hold the response without reading its body, then shut down.
    let started = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(15), app.stop())
        .await
        .expect("the server stops although a download is still open");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    drop(res);
}
