//! Replay dispatch against an in-process mock server: lateness p50/p99/p99.9 at 1,000 and 10,000
//! requests/s (streamed answers of 4 tokens) and peak RSS. `cargo bench --bench replay [-- SECONDS]`.
//!
//! `cargo bench --bench replay -- concurrent [N]` instead holds N (default 10,000) streaming responses open
//! at once: N requests sent within 2 s, each answered with 200 tokens 20 ms apart (about 4 s), from
//! a mock server in a child process (one process would need two sockets per stream, beyond the machine's
//! 20,000 file descriptors). It prints the replay process's peak RSS.
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

fn options(base: String, dir: &std::path::Path) -> ReplayOptions {
    ReplayOptions {
        target: Target {
            base_url: base,
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
        timeout: Some(Duration::from_secs(120)),
        shard: "0/1".into(),
        output_dir: dir.to_path_buf(),
        target_metrics: None,
    }
}

/// The child: serves the mock and prints its base URL.
fn serve_mock() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mock = mock::Mock::start(50, 20).await;
        println!("{}", mock.base);
        std::future::pending::<()>().await;
    });
}

fn concurrent(n: u64) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("serve-mock")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mock child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    let plan: Vec<Planned> = (0..n)
        .map(|i| Planned {
            index: i,
            timestamp_ms: i * 2000 / n,
            due_us: i * 2_000_000 / n,
            prompt: "hello world".into(),
            prompt_length: Some(2),
            output_length: Some(200),
            session_id: None,
            turn: 0,
            turns: 1,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let s = rt
        .block_on(replay(plan, options(base, dir.path())))
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let q = |q: f64| s.lateness_us.quantile(q).unwrap_or(0) as f64 / 1000.0;
    println!(
        "| concurrent streams | requests | ok | tokens delivered | wall (s) | lateness p99 (ms) | peak RSS (MB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n} | {} | {} | {} | {wall:.1} | {:.1} | {:.0} |",
        s.requests,
        s.ok,
        s.output_tokens,
        q(0.99),
        peak_rss_mb()
    );
    println!("statuses: {:?}", s.status_counts);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "serve-mock") {
        return serve_mock();
    }
    if let Some(k) = args.iter().position(|a| a == "concurrent") {
        let n = args
            .get(k + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        return concurrent(n);
    }
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
        let opts = options(mock.base.clone(), dir.path());
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
