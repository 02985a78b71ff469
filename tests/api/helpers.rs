//! A test server on 127.0.0.1:0 with a temporary data directory.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use workload_generator::config::ServeConfig;
use workload_generator::startup::App;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    pub jobs: workload_generator::jobs::JobManager,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::spawn_in(dir, f).await
    }

    pub async fn spawn_in(
        dir: std::sync::Arc<tempfile::TempDir>,
        f: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let mut cfg = ServeConfig::for_data_dir(dir.path().to_path_buf());
        f(&mut cfg);
        let app = App::build(cfg).await.expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let jobs = app.state().jobs.clone();
        let (stop, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            dir,
            jobs,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Triggers graceful shutdown and waits for the server to stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("server ran");
        }
    }

    pub async fn submit(&self, spec: Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/workloads"))
            .json(&spec)
            .send()
            .await
            .expect("request")
    }

    pub async fn job(&self, id: &str) -> Value {
        self.client
            .get(self.url(&format!("/v1/workloads/{id}")))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    /// Polls until the job is terminal (at most 60 s).
    pub async fn wait_done(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let v = self.job(id).await;
            let s = v["status"].as_str().unwrap_or("");
            if ["succeeded", "failed", "cancelled"].contains(&s) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} did not finish");
    }

    /// GETs `path` and returns the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    }

    /// GETs `path` and returns the body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    pub async fn upload(&self, body: &'static str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/datasets?name=t.jsonl"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("request")
    }
}

/// A small constant spec.
pub fn small_spec() -> Value {
    json!({"trace_type": "constant", "seed": 7, "duration_ms": 10000, "traffic": {"target_qps": 5.0}})
}

/// Asserts a problem+json answer and returns its body.
pub async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let rid = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(ct, "application/problem+json");
    let v: Value = res.json().await.expect("json body");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["status"], status);
    assert_eq!(v["type"], "about:blank");
    assert!(v["title"].is_string() && v["detail"].is_string());
    assert_eq!(
        v["request_id"].as_str(),
        rid.as_deref(),
        "request id in body and header"
    );
    v
}
