//! The server's own view (`--target-metrics URL`): its Prometheus metrics scraped before the replay, every
//! interval during it and after it, reduced to what matters for a serving benchmark. Counters are reported as
//! the difference after − before, gauges as their maximum and mean over the samples; every series of a
//! metric is summed over its labels (a server that serves several models reports their total). The vLLM
//! names are recognised with or without the `_total` suffix of the exposition format; other servers' metrics
//! are simply absent from the section.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// Counters that matter (vLLM names), reported as after − before.
pub const COUNTERS: &[&str] = &[
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:prompt_tokens",
    "vllm:prompt_tokens_cached",
    "vllm:generation_tokens",
    "vllm:num_preemptions",
    "vllm:request_success",
];

/// Gauges that matter (vLLM names), reported as max and mean over the samples.
pub const GAUGES: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:gpu_cache_usage_perc",
    "vllm:kv_cache_usage_perc",
];

/// One scrape: metric name (without a `_total` suffix) → the sum of its samples over labels.
pub type Sample = BTreeMap<String, f64>;

/// Parses the Prometheus text exposition format: `name{labels} value [timestamp]` lines; comments, blank
/// lines and lines that do not parse are skipped (a scrape is best effort).
pub fn parse(text: &str) -> Sample {
    let mut out = Sample::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) if line.as_bytes()[i] == b'{' => match labels_end(&line[i..]) {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            Some(i) => (&line[..i], &line[i..]),
            None => continue,
        };
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        if !v.is_finite() {
            continue;
        }
        let name = name.strip_suffix("_total").unwrap_or(name);
        *out.entry(name.to_string()).or_insert(0.0) += v;
    }
    out
}

/// The offset of the `}` that closes the label set `s` starts with, outside quoted values (which may hold
/// braces and escaped quotes).
fn labels_end(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Everything scraped during one replay.
#[derive(Debug, Default, Clone)]
pub struct ServerView {
    /// The URL scraped.
    pub url: String,
    /// Before the first request.
    pub before: Option<Sample>,
    /// During the replay, at the interval.
    pub during: Vec<Sample>,
    /// After the last answer.
    pub after: Option<Sample>,
    /// Scrapes that failed (the error of the last one).
    pub failed: u64,
    pub last_error: Option<String>,
}

impl ServerView {
    /// One scrape's sample, or None after counting its failure.
    fn take(&mut self, r: Result<Sample, String>) -> Option<Sample> {
        match r {
            Ok(s) => Some(s),
            Err(e) => {
                self.failed += 1;
                self.last_error = Some(e);
                None
            }
        }
    }

    /// The report section: counters' deltas, gauges' max and mean, the prefix-cache hit rate the server
    /// counted, and `predicted` (the workload's own prefix-reuse figure) beside it.
    pub fn report(&self, predicted: Option<Value>) -> Value {
        let mut counters = serde_json::Map::new();
        if let (Some(b), Some(a)) = (&self.before, &self.after) {
            for &c in COUNTERS {
                if let (Some(x), Some(y)) = (b.get(c), a.get(c)) {
                    counters.insert(c.to_string(), json!(round3(y - x)));
                }
            }
        }
        let mut gauges = serde_json::Map::new();
        let samples: Vec<&Sample> = self
            .before
            .iter()
            .chain(&self.during)
            .chain(&self.after)
            .collect();
        for &g in GAUGES {
            let vals: Vec<f64> = samples.iter().filter_map(|s| s.get(g).copied()).collect();
            if vals.is_empty() {
                continue;
            }
            let max = vals.iter().copied().fold(f64::MIN, f64::max);
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            gauges.insert(
                g.to_string(),
                json!({"max": round3(max), "mean": round3(mean), "samples": vals.len()}),
            );
        }
        let hit_rate = match (
            counters
                .get("vllm:prefix_cache_hits")
                .and_then(Value::as_f64),
            counters
                .get("vllm:prefix_cache_queries")
                .and_then(Value::as_f64),
        ) {
            (Some(h), Some(q)) if q > 0.0 => Some(round3(h / q)),
            _ => None,
        };
        json!({
            "url": self.url,
            "scrapes": {"ok": samples.len(), "failed": self.failed, "last_error": self.last_error},
            "counters": counters,
            "gauges": gauges,
            "prefix_cache_hit_rate": hit_rate,
            "predicted": predicted,
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Scrapes `url` once.
pub async fn scrape(client: &reqwest::Client, url: &str) -> Result<Sample, String> {
    let res = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", res.status().as_u16()));
    }
    let text = res.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok(parse(&text))
}

/// Scrapes before, then every `interval` until `stop` fires, then once more after.
pub async fn watch(
    client: reqwest::Client,
    url: String,
    interval: Duration,
    started: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> ServerView {
    let mut view = ServerView {
        url: url.clone(),
        ..Default::default()
    };
    let first = scrape(&client, &url).await;
    view.before = view.take(first);
    let _ = started.send(());
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let r = scrape(&client, &url).await;
                if let Some(s) = view.take(r) {
                    view.during.push(s);
                }
            }
        }
    }
    let last = scrape(&client, &url).await;
    view.after = view.take(last);
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exposition_format_and_sums_over_labels() {
        let text = "# HELP vllm:num_requests_running Number of requests running.\n\
            # TYPE vllm:num_requests_running gauge\n\
            vllm:num_requests_running{model_name=\"a\"} 3\n\
            vllm:num_requests_running{model_name=\"b\",x=\"{}\\\"}\"} 2.5\n\
            vllm:prefix_cache_hits_total{model_name=\"a\"} 1.5e3 1700000000000\n\
            process_open_fds 12\n\
            bad line\n\
            nan_metric NaN\n";
        let s = parse(text);
        assert_eq!(s["vllm:num_requests_running"], 5.5);
        assert_eq!(s["vllm:prefix_cache_hits"], 1500.0);
        assert_eq!(s["process_open_fds"], 12.0);
        assert!(!s.contains_key("bad") && !s.contains_key("nan_metric"));
    }

    #[test]
    fn the_report_gives_deltas_gauges_and_the_hit_rate() {
        let sample = |q: f64, h: f64, run: f64| -> Sample {
            [
                ("vllm:prefix_cache_queries".to_string(), q),
                ("vllm:prefix_cache_hits".to_string(), h),
                ("vllm:num_requests_running".to_string(), run),
            ]
            .into_iter()
            .collect()
        };
        let view = ServerView {
            url: "http://x/metrics".into(),
            before: Some(sample(100.0, 10.0, 0.0)),
            during: vec![sample(300.0, 90.0, 4.0), sample(500.0, 170.0, 2.0)],
            after: Some(sample(600.0, 210.0, 0.0)),
            failed: 1,
            last_error: Some("timeout".into()),
        };
        let r = view.report(Some(json!({"reuse_unlimited": 0.4})));
        assert_eq!(r["counters"]["vllm:prefix_cache_queries"], 500.0);
        assert_eq!(r["counters"]["vllm:prefix_cache_hits"], 200.0);
        assert_eq!(r["prefix_cache_hit_rate"], 0.4);
        assert_eq!(
            r["gauges"]["vllm:num_requests_running"],
            json!({"max": 4.0, "mean": 1.5, "samples": 4})
        );
        assert_eq!(
            r["scrapes"],
            json!({"ok": 4, "failed": 1, "last_error": "timeout"})
        );
        assert_eq!(r["predicted"]["reuse_unlimited"], 0.4);
    }
}
