//! One request to an OpenAI-compatible server (`/v1/completions` or `/v1/chat/completions`), streamed
//! (server-sent events) or not, timed from the moment it is handed to the HTTP client.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

/// Which API to call.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `POST {base}/v1/completions` with `prompt`.
    Completions,
    /// `POST {base}/v1/chat/completions` with `messages`.
    Chat,
}

/// Settings shared by every request.
#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8000` (a trailing `/v1` is accepted).
    pub base_url: String,
    /// `model` of every request.
    pub model: String,
    /// The API.
    pub endpoint: Endpoint,
    /// Stream the answer (SSE) and ask for usage in the last chunk.
    pub stream: bool,
    /// Add `ignore_eos: true` and `min_tokens = max_tokens` (vLLM's extensions) to pin the output length.
    pub ignore_eos: bool,
}

impl Target {
    /// The URL of the endpoint.
    pub fn url(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        match self.endpoint {
            Endpoint::Completions => format!("{base}/v1/completions"),
            Endpoint::Chat => format!("{base}/v1/chat/completions"),
        }
    }

    /// The request body. `input` is the prompt (completions) or the messages (chat).
    pub fn body(&self, input: Value, max_tokens: Option<u64>) -> Value {
        let mut body = json!({ "model": self.model });
        let obj = body.as_object_mut().expect("an object");
        match self.endpoint {
            Endpoint::Completions => obj.insert("prompt".into(), input),
            Endpoint::Chat => obj.insert("messages".into(), input),
        };
        if let Some(n) = max_tokens {
            obj.insert("max_tokens".into(), n.into());
            if self.ignore_eos {
                obj.insert("ignore_eos".into(), true.into());
                obj.insert("min_tokens".into(), n.into());
            }
        }
        obj.insert("stream".into(), self.stream.into());
        if self.stream {
            obj.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        body
    }
}

/// What happened to one request; times are from the moment it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// HTTP status, None when no response arrived.
    pub status: Option<u16>,
    /// Why the request failed (None = success).
    pub error: Option<String>,
    /// Time to the first non-empty token chunk (streaming only).
    pub ttft: Option<Duration>,
    /// Gaps between consecutive non-empty token chunks.
    pub gaps: Vec<Duration>,
    /// Time from the first to the last token chunk (streaming only).
    pub decode: Option<Duration>,
    /// Time to the end of the response.
    pub e2e: Duration,
    /// `usage.prompt_tokens` of the server.
    pub prompt_tokens: Option<u64>,
    /// `usage.completion_tokens` of the server.
    pub output_tokens: Option<u64>,
    /// Non-empty token chunks received (streaming).
    pub chunks: u64,
    /// The generated text (for the next turn's history).
    pub text: String,
}

fn content_of(endpoint: Endpoint, chunk: &Value, stream: bool) -> Option<&str> {
    let c = chunk.get("choices")?.get(0)?;
    match (endpoint, stream) {
        (Endpoint::Completions, _) => c.get("text")?.as_str(),
        (Endpoint::Chat, true) => c.get("delta")?.get("content")?.as_str(),
        (Endpoint::Chat, false) => c.get("message")?.get("content")?.as_str(),
    }
}

fn usage_of(out: &mut Outcome, v: &Value) {
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_u64);
        out.output_tokens = u.get("completion_tokens").and_then(Value::as_u64);
    }
}

fn error_text(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    Some(match e.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => e.to_string(),
    })
}

fn clip(s: &str) -> String {
    let mut end = s.len().min(300);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Sends `body` and reads the whole answer. Never fails: errors are recorded in the outcome.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    url: &str,
    body: &Value,
    headers: &reqwest::header::HeaderMap,
    start: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let finish = |mut out: Outcome| {
        out.e2e = start.elapsed();
        out
    };
    let resp = match client
        .post(url)
        .headers(headers.clone())
        .json(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(format!("request failed: {e}"));
            return finish(out);
        }
    };
    let status = resp.status();
    out.status = Some(status.as_u16());
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| error_text(&v))
            .unwrap_or(text);
        out.error = Some(format!("HTTP {}: {}", status.as_u16(), clip(&detail)));
        return finish(out);
    }
    if !target.stream {
        match resp.bytes().await {
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(v) => {
                    if let Some(e) = error_text(&v) {
                        out.error = Some(clip(&e));
                    }
                    out.text = content_of(target.endpoint, &v, false)
                        .unwrap_or_default()
                        .to_string();
                    usage_of(&mut out, &v);
                }
                Err(e) => out.error = Some(format!("answer is not JSON: {e}")),
            },
            Err(e) => out.error = Some(format!("reading the answer failed: {e}")),
        }
        return finish(out);
    }
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut done = false;
    'read: while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                out.error = Some(format!("stream broken: {e}"));
                break;
            }
        };
        let now = Instant::now();
        buf.extend_from_slice(&piece);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                done = true;
                break 'read;
            }
            let v: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    out.error = Some(format!("bad event: {e}"));
                    continue;
                }
            };
            if let Some(e) = error_text(&v) {
                out.error = Some(clip(&e));
            }
            usage_of(&mut out, &v);
            if let Some(t) = content_of(target.endpoint, &v, true).filter(|t| !t.is_empty()) {
                out.text.push_str(t);
                out.chunks += 1;
                match last {
                    None => first = Some(now),
                    Some(prev) => out.gaps.push(now - prev),
                }
                last = Some(now);
            }
        }
    }
    if !done && out.error.is_none() {
        out.error = Some("stream ended without [DONE]".into());
    }
    out.ttft = first.map(|f| f - start);
    if let (Some(f), Some(l)) = (first, last) {
        out.decode = Some(l - f);
    }
    finish(out)
}
