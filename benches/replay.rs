//! Replay dispatch against an in-process mock server: lateness p50/p99/p99.9 at 1,000 and 10,000
//! requests/s (streamed answers of 4 tokens) and peak RSS. `cargo bench --bench replay [-- SECONDS]`.
#![allow(unreachable_pub)]

#[allow(dead_code)] // the bench uses the mock server, not its request log
#[path = "../tests/replay/mock.rs"]
mod mock;

use std::time::Duration;

use workload_generator::replay::client::{Endpoint, Target};
use workload_generator::replay::plan::Planned;
use workload_generator::replay::report::Slo;
use workload_generator::replay::run::{LatePolicy, ReplayOptions, replay};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let seconds: u64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = rt.block_on(mock::Mock::start(20, 2));
    println!(
        "| rate (req/s) | requests | ok | lateness p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | peak RSS (MB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for rate in [1_000u64, 10_000] {
        let n = rate * seconds;
        let plan: Vec<Planned> = (0..n)
            .map(|i| Planned {
                index: i,
                timestamp_ms: i * 1000 / rate,
                due_us: i * 1_000_000 / rate,
                prompt: "hello world".into(),
                prompt_length: Some(2),
                output_length: Some(4),
                session_id: None,
                turn: 0,
                turns: 1,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let opts = ReplayOptions {
            target: Target {
                base_url: mock.base.clone(),
                model: "m".into(),
                endpoint: Endpoint::Completions,
                stream: true,
                ignore_eos: false,
            },
            headers: Default::default(),
            max_inflight: None,
            think_time: Duration::ZERO,
            late: LatePolicy::Send,
            slo: Slo::default(),
            window_ms: 1000,
            timeout: Some(Duration::from_secs(60)),
            shard: "0/1".into(),
            output_dir: dir.path().to_path_buf(),
            target_metrics: None,
        };
        let s = rt.block_on(replay(plan, opts)).unwrap();
        let q = |q: f64| s.lateness_us.quantile(q).unwrap_or(0) as f64 / 1000.0;
        println!(
            "| {rate} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
            s.requests,
            s.ok,
            q(0.5),
            q(0.99),
            q(0.999),
            s.lateness_us.max as f64 / 1000.0,
            peak_rss_mb()
        );
    }
}
