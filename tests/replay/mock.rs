//! An in-process OpenAI-compatible mock server (axum, 127.0.0.1:0) that streams tokens with controllable
//! timing, errors and usage, and remembers every request it received.
//!
//! Behaviour per request, from the prompt (the last user message for chat):
//! - contains `FAIL`: HTTP 500 `{"error": {"message": "boom"}}`;
//! - contains `SHORT`: one token fewer than `max_tokens`;
//! - otherwise `max_tokens` tokens (8 without it), `ttft_ms` before the first and `gap_ms` between tokens.
//!
//! Usage: `prompt_tokens` = words of the prompt, `completion_tokens` = tokens sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub body: Value,
    pub auth: Option<String>,
    pub route: Option<String>,
}

#[derive(Clone)]
pub struct Mock {
    pub base: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct St {
    ttft_ms: u64,
    gap_ms: u64,
    received: Arc<Mutex<Vec<Received>>>,
    chat: bool,
}

impl Mock {
    pub async fn start(ttft_ms: u64, gap_ms: u64) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let st = |chat| St {
            ttft_ms,
            gap_ms,
            received: received.clone(),
            chat,
        };
        let app = Router::new()
            .route("/v1/completions", post(handle).with_state(st(false)))
            .route("/v1/chat/completions", post(handle).with_state(st(true)))
            .route(
                "/metrics",
                axum::routing::get(metrics).with_state(st(false)),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, received }
    }

    pub fn received(&self) -> Vec<Received> {
        let mut v = self.received.lock().unwrap().clone();
        v.sort_by_key(|r| r.at);
        v
    }
}

fn prompt_of(body: &Value, chat: bool) -> String {
    if chat {
        body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    } else {
        body["prompt"].as_str().unwrap_or_default().to_string()
    }
}

/// vLLM-style Prometheus metrics derived from the requests received so far: per request 10 prefix-cache
/// queries, 4 hits and 8 generation tokens; `num_requests_running` is the count received (a gauge).
async fn metrics(State(st): State<St>) -> String {
    let n = st.received.lock().unwrap().len();
    format!(
        "# HELP vllm:prefix_cache_queries_total Prefix cache queries.\n\
         # TYPE vllm:prefix_cache_queries_total counter\n\
         vllm:prefix_cache_queries_total{{model_name=\"m\"}} {}\n\
         vllm:prefix_cache_hits_total{{model_name=\"m\"}} {}\n\
         vllm:generation_tokens_total{{model_name=\"m\"}} {}\n\
         vllm:num_requests_running{{model_name=\"m\"}} {n}\n",
        10 * n,
        4 * n,
        8 * n
    )
}

async fn handle(
    State(st): State<St>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let at = Instant::now();
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    st.received.lock().unwrap().push(Received {
        at,
        path: uri.path().to_string(),
        body: body.clone(),
        auth: h("authorization"),
        route: h("routing-strategy"),
    });
    let prompt = prompt_of(&body, st.chat);
    if prompt.contains("FAIL") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": {"message": "boom"}})),
        )
            .into_response();
    }
    let max = body["max_tokens"].as_u64().unwrap_or(8);
    let n = if prompt.contains("SHORT") {
        max.saturating_sub(1)
    } else {
        max
    };
    let usage = json!({
        "prompt_tokens": body.get("prompt").and_then(Value::as_str).unwrap_or(&prompt).split_whitespace().count(),
        "completion_tokens": n,
    });
    let tokens: Vec<String> = (0..n).map(|i| format!("t{i} ")).collect();
    let stream = body["stream"].as_bool().unwrap_or(false);
    if !stream {
        tokio::time::sleep(Duration::from_millis(
            st.ttft_ms + st.gap_ms * n.saturating_sub(1),
        ))
        .await;
        let text = tokens.concat();
        let choice = if st.chat {
            json!({"message": {"role": "assistant", "content": text}})
        } else {
            json!({"text": text})
        };
        return axum::Json(json!({"choices": [choice], "usage": usage})).into_response();
    }
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let chat = st.chat;
    let (ttft, gap) = (st.ttft_ms, st.gap_ms);
    let events = futures_util::stream::unfold(0usize, move |i| {
        let tokens = tokens.clone();
        let usage = usage.clone();
        async move {
            let n = tokens.len();
            let text = if i < n {
                tokio::time::sleep(Duration::from_millis(if i == 0 { ttft } else { gap })).await;
                let choice = if chat {
                    json!({"index": 0, "delta": {"content": tokens[i]}})
                } else {
                    json!({"index": 0, "text": tokens[i]})
                };
                format!("data: {}\n\n", json!({"choices": [choice]}))
            } else if i == n && include_usage {
                format!("data: {}\n\n", json!({"choices": [], "usage": usage}))
            } else if i <= n + 1 {
                "data: [DONE]\n\n".to_string()
            } else {
                return None;
            };
            let next = if i == n && !include_usage {
                n + 2
            } else {
                i + 1
            };
            Some((Ok::<_, std::io::Error>(text), next))
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(events))
        .unwrap()
}
