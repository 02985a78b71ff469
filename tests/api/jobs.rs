//! Generation jobs: the 202 flow, streaming, concurrency, cancellation, SSE, restart recovery.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{TestApp, problem, small_spec};

#[tokio::test]
async fn upload_generate_download() {
    let app = TestApp::spawn().await;
    let ds: serde_json::Value = app
        .upload("{\"prompt\": \"short one\", \"completion\": \"ok\"}\n{\"prompt\": \"a somewhat longer prompt about tokenizers and their many uses\"}\n")
        .await
        .json()
        .await
        .unwrap();
    let id = ds["id"].as_str().unwrap();
    let mut spec = small_spec();
    spec["dataset"] = json!(id);
    let res = app.submit(spec).await;
    assert_eq!(res.status(), 202);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let view: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        loc,
        format!("/v1/workloads/{}", view["id"].as_str().unwrap())
    );
    let done = app.wait_done(view["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let requests = done["summary"]["requests"].as_u64().unwrap();
    assert!(requests > 20);
    let res = app
        .client
        .get(app.url(&format!("{loc}/workload.jsonl")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().count() as u64, requests);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["requests"][0]["prompt"].is_string());
    }
    let manifest: serde_json::Value = app.get_json(&format!("{loc}/manifest.json")).await;
    assert_eq!(manifest["inputs"][0]["sha256"], id);
    assert_eq!(manifest["seed"], 7);
    // Plots and the report are served too.
    let svg = app
        .client
        .get(app.url(&format!("{loc}/plots/traffic.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let report: serde_json::Value = app.get_json(&format!("{loc}/report.json")).await;
    assert_eq!(report["requests"].as_u64(), Some(requests), "{report}");
    problem(
        app.client
            .get(app.url(&format!("{loc}/plots/..%2Fjob.json")))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    // The dataset view now has token statistics for the default tokenizer.
    let dsv: serde_json::Value = app.get_json(&format!("/v1/datasets/{id}")).await;
    assert_eq!(dsv["token_stats"].as_object().unwrap().len(), 1);
    // Paginated listing.
    let list: serde_json::Value = app.get_json("/v1/workloads?limit=1").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Same spec + seed: identical bytes from a second job.
    let mut spec = small_spec();
    spec["dataset"] = json!(id);
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
    assert_eq!(v["status"], "succeeded");
    let again = app
        .get_text(&format!(
            "/v1/workloads/{}/workload.jsonl",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again, text);
}

#[tokio::test]
async fn streaming_flow_returns_the_same_lines_as_the_file() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/v1/workloads"))
        .header("accept", "application/x-ndjson")
        .json(&small_spec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let streamed = res.text().await.unwrap();
    let id = loc.rsplit('/').next().unwrap();
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "succeeded");
    let file = app.get_text(&format!("{loc}/workload.jsonl")).await;
    assert!(!streamed.is_empty());
    assert_eq!(streamed, file);
}

#[tokio::test]
async fn streaming_client_that_goes_away_cancels_the_job() {
    let app = TestApp::spawn().await;
    let spec = json!({"trace_type": "constant", "seed": 1, "duration_ms": 18_000_000, "traffic": {"target_qps": 500.0}});
    let res = app
        .client
        .post(app.url("/v1/workloads"))
        .header("accept", "application/x-ndjson")
        .json(&spec)
        .send()
        .await
        .unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);
    let done = app.wait_done(loc.rsplit('/').next().unwrap()).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(done["files"].as_array().unwrap().is_empty());
    // The job's error object says it was cancelled, not that the server failed.
    assert_eq!(done["error"]["code"], "cancelled", "{done}");
    assert_eq!(done["error"]["title"], "Job cancelled");
    assert_eq!(done["error"]["status"], 409);
}

#[tokio::test]
async fn twenty_jobs_on_two_workers_all_succeed_or_get_429() {
    let app = TestApp::spawn_with(|c| {
        c.workers = Some(2);
        c.queue_capacity = 6;
    })
    .await;
    let mut handles = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/v1/workloads");
        handles.push(tokio::spawn(async move {
            let spec = json!({"trace_type": "constant", "seed": i, "duration_ms": 60000, "traffic": {"target_qps": 50.0}});
            client.post(url).json(&spec).send().await.unwrap()
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for h in handles {
        let res = h.await.unwrap();
        match res.status().as_u16() {
            202 => accepted.push(
                res.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                problem(res, 429, "queue_full").await;
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted.len() + refused, 20);
    assert!(!accepted.is_empty());
    for id in &accepted {
        assert_eq!(app.wait_done(id).await["status"], "succeeded");
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains(&format!("wg_rejected_submissions_total {refused}")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "wg_jobs{{status=\"succeeded\"}} {}",
        accepted.len()
    )));
}

/// Admission control, deterministically: one worker busy with a long job, one job waiting in a queue of one;
/// the next submission is refused with 429 `queue_full` and a Retry-After header.
#[tokio::test]
async fn a_full_queue_answers_429_queue_full_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.workers = Some(1);
        c.queue_capacity = 1;
    })
    .await;
    let long = json!({"trace_type": "constant", "seed": 1, "duration_ms": 9_000_000, "traffic": {"target_qps": 1000.0}});
    let submit = |spec: serde_json::Value| async {
        let res = app.submit(spec).await;
        assert_eq!(res.status().as_u16(), 202);
        res.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let running = submit(long.clone()).await;
    // The first job holds the only worker before the second is queued.
    for _ in 0..500 {
        if app.job(&running).await["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.job(&running).await["status"], "running");
    let queued = submit(long).await;
    assert_eq!(app.job(&queued).await["status"], "queued");

    let res = app.submit(small_spec()).await;
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    problem(res, 429, "queue_full").await;
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s > 0)),
        "Retry-After in seconds"
    );

    for id in [&queued, &running] {
        let res = app
            .client
            .delete(app.url(&format!("/v1/workloads/{id}")))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    // The cancelled jobs end and free the worker and the queue.
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics = app.get_text("/metrics").await;
        if metrics.contains("wg_running_jobs 0") && metrics.contains("wg_queue_depth 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.contains("wg_running_jobs 0") && metrics.contains("wg_queue_depth 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wg_rejected_submissions_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn delete_cancels_a_running_job_and_removes_its_files() {
    let app = TestApp::spawn().await;
    let spec = json!({"trace_type": "constant", "seed": 1, "duration_ms": 9_000_000, "traffic": {"target_qps": 1000.0}});
    let v: serde_json::Value = app.submit(spec).await.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    for _ in 0..200 {
        if app.job(&id).await["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = app
        .client
        .delete(app.url(&format!("/v1/workloads/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    problem(
        app.client
            .get(app.url(&format!("/v1/workloads/{id}")))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let dir = app.dir.path().join("workloads").join(&id);
    for _ in 0..1500 {
        if !dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dir.exists(), "the job directory is removed");
}

#[tokio::test]
async fn results_of_unfinished_jobs_are_409() {
    let app = TestApp::spawn_with(|c| c.workers = Some(1)).await;
    let long = json!({"trace_type": "constant", "seed": 1, "duration_ms": 9_000_000, "traffic": {"target_qps": 1000.0}});
    let a: serde_json::Value = app.submit(long.clone()).await.json().await.unwrap();
    let id = a["id"].as_str().unwrap();
    let res = app
        .client
        .get(app.url(&format!("/v1/workloads/{id}/workload.jsonl")))
        .send()
        .await
        .unwrap();
    problem(res, 409, "not_ready").await;
    app.client
        .delete(app.url(&format!("/v1/workloads/{id}")))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn sse_reports_progress_and_final_status() {
    let app = TestApp::spawn().await;
    let v: serde_json::Value = app.submit(small_spec()).await.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    let res = app
        .client
        .get(app.url(&format!("/v1/workloads/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(60), res.text())
        .await
        .unwrap()
        .unwrap();
    let status_line = text
        .lines()
        .skip_while(|l| *l != "event: status")
        .nth(1)
        .unwrap();
    let final_view: serde_json::Value =
        serde_json::from_str(status_line.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(final_view["status"], "succeeded");
}

#[tokio::test]
async fn finished_jobs_survive_a_restart_and_unfinished_ones_are_interrupted() {
    let app = TestApp::spawn().await;
    let dir = app.dir.clone();
    let v: serde_json::Value = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&small_spec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "succeeded");
    let id = v["id"].as_str().unwrap().to_string();
    let before = app
        .get_text(&format!("/v1/workloads/{id}/workload.jsonl"))
        .await;
    app.stop().await;
    // A job that was running when the process died.
    let ghost = dir
        .path()
        .join("workloads")
        .join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&ghost).unwrap();
    let mut rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("workloads").join(&id).join("job.json")).unwrap(),
    )
    .unwrap();
    rec["id"] = json!("0123456789abcdef0123456789abcdef");
    rec["status"] = json!("running");
    rec["files"] = json!([]);
    std::fs::write(ghost.join("job.json"), rec.to_string()).unwrap();
    std::fs::write(ghost.join(".workload.jsonl.partial-1"), "half").unwrap();

    let app = TestApp::spawn_in(dir, |_| {}).await;
    let after = app
        .get_text(&format!("/v1/workloads/{id}/workload.jsonl"))
        .await;
    assert_eq!(before, after);
    let g = app.job("0123456789abcdef0123456789abcdef").await;
    assert_eq!(g["status"], "failed");
    assert_eq!(g["error"]["code"], "interrupted");
    assert_eq!(g["error"]["title"], "Job interrupted by a server stop");
    assert_eq!(g["error"]["status"], 503);
    assert!(!ghost.join(".workload.jsonl.partial-1").exists());
}

#[tokio::test]
async fn auth_token_guards_v1_but_not_health() {
    let app = TestApp::spawn_with(|c| c.auth_token = Some("s3cret".into())).await;
    let res = app
        .client
        .get(app.url("/v1/datasets"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .get(app.url("/v1/datasets"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    problem(res, 401, "unauthorized").await;
    assert_eq!(
        app.client
            .get(app.url("/v1/datasets"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            app.client.get(app.url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn retention_removes_old_finished_jobs() {
    let app = TestApp::spawn_with(|c| c.result_ttl_secs = 3600).await;
    let v: serde_json::Value = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&small_spec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(app.jobs.reap(now), 0, "young jobs stay");
    assert_eq!(app.jobs.reap(now + time::Duration::hours(2)), 1);
    problem(
        app.client
            .get(app.url(&format!("/v1/workloads/{id}")))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert!(!app.dir.path().join("workloads").join(&id).exists());
}

#[tokio::test]
async fn azure_trace_replay_through_the_service() {
    let app = TestApp::spawn().await;
    let full = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces/azure_conv_2000.csv"
    ))
    .unwrap();
    let csv: String = full.lines().take(41).map(|l| format!("{l}\n")).collect();
    let res = app
        .client
        .post(app.url("/v1/traces?format=azure&name=azure.csv"))
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let trace_id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = json!({"trace_type": "azure", "seed": 3, "duration_ms": 3_600_000, "trace": {"file": trace_id}});
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
    assert_eq!(v["status"], "succeeded", "{v}");
    let text = app
        .get_text(&format!(
            "/v1/workloads/{}/workload.jsonl",
            v["id"].as_str().unwrap()
        ))
        .await;
    let outputs: Vec<u64> = text
        .lines()
        .flat_map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            e["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["output_length"].as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let want: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        outputs, want,
        "every output_length is the trace's GeneratedTokens"
    );
    let manifest: serde_json::Value = app
        .get_json(&format!(
            "/v1/workloads/{}/manifest.json",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        manifest["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["role"] == "trace.file" && i["sha256"] == trace_id.as_str())
    );
}
