//! Benchmarks of the HTTP service (issue "HTTP service"):
//! (a) p50/p99 latency of a small job (constant, 60 s at 5 QPS, `sample` dataset) through the whole HTTP flow
//!     (submit with `?wait=true`, then download `workload.jsonl`) under 16 concurrent clients;
//! (b) throughput of streaming a 1,000,000-request workload download, and the peak RSS while downloading.
//!
//! Run: `cargo bench --bench service`. The server runs in-process on 127.0.0.1:0 with a temporary data dir.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use workload_generator::config::ServeConfig;
use workload_generator::startup::App;

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ServeConfig::for_data_dir(dir.path().to_path_buf());
    cfg.workers = None;
    cfg.queue_capacity = 64;
    let app = App::build(cfg).await.expect("builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let small = json!({"trace_type": "constant", "dataset": "sample", "duration_ms": 60000, "traffic": {"target_qps": 5.0}});
    // Warm-up: the first job tokenizes the sample collection and fills the length cache.
    client
        .post(format!("{base}/v1/workloads?wait=true"))
        .json(&small)
        .send()
        .await
        .expect("warm-up");

    let clients = 16;
    let per_client = 25;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let base = base.clone();
        let small = small.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..per_client {
                let t = Instant::now();
                let v: serde_json::Value = client
                    .post(format!("{base}/v1/workloads?wait=true"))
                    .json(&small)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(v["status"], "succeeded");
                let body = client
                    .get(format!(
                        "{base}/v1/workloads/{}/workload.jsonl",
                        v["id"].as_str().unwrap()
                    ))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert!(!body.is_empty());
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = t.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "small job (60 s at 5 QPS, sample) submit+wait+download, {clients} clients x {per_client}: p50 {:.1} ms, p99 {:.1} ms, {:.1} jobs/s",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len() as f64 / wall
    );

    // (b) A 1,000,000-request workload, then a streamed download.
    let big = json!({"trace_type": "constant", "dataset": "sample", "seed": 1, "duration_ms": 1_000_000, "traffic": {"target_qps": 1000.0}});
    let t = Instant::now();
    let v: serde_json::Value = client
        .post(format!("{base}/v1/workloads?wait=true"))
        .json(&big)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");
    println!(
        "1,000,000-request job generated in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let t = Instant::now();
    let res = client
        .get(format!(
            "{base}/v1/workloads/{}/workload.jsonl",
            v["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.unwrap().len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "download: {:.1} MB in {:.2} s = {:.0} MB/s; RSS before {} MB, peak during download {} MB",
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs,
        rss_before / 1024,
        status_kb("VmHWM:") / 1024
    );
    let _ = stop.send(());
    let _ = server.await;
}
