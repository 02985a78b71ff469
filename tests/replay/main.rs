//! Replay against an in-process mock OpenAI-compatible server: open-loop timing, sessions with history,
//! pinned output lengths, error recording, report figures and shard merging.
#![allow(unreachable_pub)]

mod mock;

use std::path::Path;
use std::time::Duration;

use mock::Mock;
use serde_json::{Value, json};
use workload_generator::domain::files::InputError;
use workload_generator::domain::utility::read::read_all;
use workload_generator::replay::client::{Endpoint, Target};
use workload_generator::replay::plan::{PlanOptions, Planned, Shard, plan_entries};
use workload_generator::replay::report::{RequestResult, Slo, Summary, parse_results};
use workload_generator::replay::run::{LatePolicy, ReplayOptions, replay};

fn plan(text: &str, opts: PlanOptions) -> Vec<Planned> {
    let entries = read_all("w.jsonl", text.as_bytes()).unwrap();
    plan_entries(entries.into_iter().map(Ok::<_, InputError>), &opts).unwrap()
}

fn options(base: &str, endpoint: Endpoint, dir: &Path) -> ReplayOptions {
    ReplayOptions {
        target: Target {
            base_url: base.to_string(),
            model: "m".into(),
            endpoint,
            stream: true,
            ignore_eos: false,
        },
        headers: Default::default(),
        max_inflight: None,
        think_time: Duration::ZERO,
        late: LatePolicy::Send,
        slo: Slo::default(),
        window_ms: 1000,
        timeout: Some(Duration::from_secs(30)),
        shard: "0/1".into(),
        output_dir: dir.to_path_buf(),
        target_metrics: None,
    }
}

fn results(dir: &Path) -> Vec<RequestResult> {
    let mut r =
        parse_results(&std::fs::read_to_string(dir.join("results.jsonl")).unwrap()).unwrap();
    r.sort_by_key(|r| r.index);
    r
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn entry(ts: u64, reqs: &[Value]) -> String {
    format!("{}\n", json!({"timestamp": ts, "requests": reqs}))
}

fn req(prompt: &str, out: Option<u64>, session: Option<Value>) -> Value {
    let mut r = json!({"prompt": prompt, "prompt_length": 2, "output_length": out});
    if let Some(s) = session {
        r["session_id"] = s;
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_at_timestamps_even_when_the_server_is_slow() {
    // 300 ms to the first token, a request every 40 ms: an open loop sends them all on time, overlapping.
    let mock = Mock::start(300, 1).await;
    let text: String = (0..15)
        .map(|i| entry(i * 40, &[req("hello world", Some(3), None)]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Completions, dir.path());
    opts.headers
        .insert("routing-strategy", "random".parse().unwrap());
    opts.headers
        .insert("authorization", "Bearer k".parse().unwrap());
    let s = replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    assert_eq!((s.requests, s.ok), (15, 15));
    let got = mock.received();
    let t0 = got[0].at;
    for (i, r) in got.iter().enumerate() {
        let at = (r.at - t0).as_secs_f64() * 1000.0;
        assert!(
            (at - i as f64 * 40.0).abs() < 15.0,
            "request {i} arrived at {at:.1} ms"
        );
        assert_eq!(r.body["max_tokens"], 3, "max_tokens = output_length");
        assert_eq!(r.body["stream"], true);
        assert_eq!(r.body["stream_options"]["include_usage"], true);
        assert_eq!(r.body["model"], "m");
        assert!(r.body.get("ignore_eos").is_none());
        assert_eq!(r.route.as_deref(), Some("random"));
        assert_eq!(r.auth.as_deref(), Some("Bearer k"));
        assert_eq!(r.path, "/v1/completions");
    }
    let rs = results(dir.path());
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(r.scheduled_ms, i as f64 * 40.0);
        assert!(r.lateness_ms < 10.0, "{r:?}");
        assert!(r.ttft_ms.unwrap() >= 300.0, "{r:?}");
        assert_eq!(
            (r.output_tokens, r.prompt_tokens, r.status),
            (Some(3), Some(2), Some(200))
        );
        assert_eq!(r.itl.as_ref().unwrap().count, 2);
        assert!(r.e2e_ms >= r.ttft_ms.unwrap());
        assert!(r.tpot_ms.unwrap() < 50.0);
    }
    let rep = report(dir.path());
    assert!(rep["fidelity"]["lateness_ms"]["p99"].as_f64().unwrap() < 10.0);
    assert_eq!(rep["fidelity"]["output_length"]["share_equal"], 1.0);
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sessions_wait_for_the_previous_turn_and_carry_real_history() {
    // Turns due every 20 ms but each answer takes over 100 ms: turn k+1 goes out right after turn k ends.
    let mock = Mock::start(100, 2).await;
    let s = |n: u64| Some(json!(n));
    let text = [
        entry(
            0,
            &[
                req("a0", Some(2), s(1)),
                req("b0", Some(2), Some(json!("x"))),
            ],
        ),
        entry(20, &[req("a1", Some(2), s(1))]),
        entry(
            40,
            &[
                req("a2", Some(3), s(1)),
                req("b1", Some(2), Some(json!("x"))),
            ],
        ),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Chat, dir.path());
    opts.target.ignore_eos = true;
    replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let got = mock.received();
    let of = |p: &str| {
        got.iter()
            .find(|r| r.body["messages"].as_array().unwrap().last().unwrap()["content"] == p)
            .unwrap()
            .clone()
    };
    let a2 = of("a2");
    assert_eq!(
        a2.body["messages"],
        json!([
            {"role": "user", "content": "a0"}, {"role": "assistant", "content": "t0 t1 "},
            {"role": "user", "content": "a1"}, {"role": "assistant", "content": "t0 t1 "},
            {"role": "user", "content": "a2"},
        ])
    );
    assert_eq!(
        (
            a2.body["max_tokens"].clone(),
            a2.body["min_tokens"].clone(),
            a2.body["ignore_eos"].clone()
        ),
        (json!(3), json!(3), json!(true))
    );
    assert_eq!(of("b1").body["messages"].as_array().unwrap().len(), 3);
    let (t0, t1, t2) = (of("a0").at, of("a1").at, a2.at);
    assert!(t1 - t0 >= Duration::from_millis(100) && t2 - t1 >= Duration::from_millis(100));
    let rs = results(dir.path());
    let a: Vec<_> = rs.iter().filter(|r| r.session_id == s(1)).collect();
    assert_eq!(
        a.iter()
            .map(|r| (r.turn, r.turns, r.off_schedule))
            .collect::<Vec<_>>(),
        [(0, 3, false), (1, 3, true), (2, 3, true)]
    );
    assert!(a[1].lateness_ms >= 80.0);
    let rep = report(dir.path());
    assert_eq!(
        rep["fidelity"]["sessions"],
        json!({"count": 2, "whole_in_order": 2, "share_whole_in_order": 1.0, "off_schedule_turns": 3})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_sessions_concatenate_context_and_think_time_is_kept() {
    let mock = Mock::start(5, 1).await;
    let text = [
        entry(0, &[req("p0", Some(2), Some(json!(7)))]),
        entry(1, &[req("p1", None, Some(json!(7)))]),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Completions, dir.path());
    opts.think_time = Duration::from_millis(50);
    opts.target.stream = false;
    replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let got = mock.received();
    assert_eq!(got[1].body["prompt"], "p0t0 t1 \np1");
    assert!(
        got[1].body.get("max_tokens").is_none(),
        "no output_length, no max_tokens"
    );
    assert!(got[1].body.get("stream_options").is_none());
    assert!(got[1].at - got[0].at >= Duration::from_millis(55));
    let rs = results(dir.path());
    assert_eq!(rs[0].output_tokens, Some(2));
    assert_eq!(
        (rs[0].ttft_ms, rs[0].tpot_ms, rs[0].itl.clone()),
        (None, None, None),
        "not streamed"
    );
    assert!(rs[1].off_schedule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_recorded_and_report_figures_add_up() {
    // Hand-computable: 4 requests in windows 0 and 1; one fails, one gets one token short.
    let mock = Mock::start(1, 1).await;
    let text = [
        entry(0, &[req("a", Some(4), None), req("b FAIL", Some(4), None)]),
        entry(
            1500,
            &[req("c SHORT", Some(4), None), req("d", Some(4), None)],
        ),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Completions, dir.path());
    opts.slo = "ttft=10s,tpot=1s".parse().unwrap();
    let s = replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let rs = results(dir.path());
    assert_eq!(
        (rs[1].status, rs[1].error.as_deref()),
        (Some(500), Some("HTTP 500: boom"))
    );
    assert_eq!(rs[2].output_tokens, Some(3));
    let rep = report(dir.path());
    assert_eq!(
        (
            rep["requests"].clone(),
            rep["ok"].clone(),
            rep["errors"].clone()
        ),
        (json!(4), json!(3), json!(1))
    );
    assert_eq!(rep["status_counts"], json!({"200": 3, "500": 1}));
    assert_eq!(
        rep["fidelity"]["output_length"],
        json!({"known": 3, "equal": 2, "share_equal": 0.667})
    );
    assert_eq!(rep["fidelity"]["windows"]["planned"], json!([2, 2]));
    assert_eq!(rep["fidelity"]["windows"]["sent"], json!([2, 2]));
    assert_eq!(rep["goodput"]["good"], 3);
    assert_eq!(rep["goodput"]["share"], 0.75);
    assert_eq!(rep["tokens"], json!({"prompt": 4, "output": 11}));
    assert_eq!(rep["latency_ms"]["e2e"]["count"], 3);
    assert_eq!(s.requests, 4);
    // The plots: every figure, with its series; the output CDFs reach the largest value asked (4) and
    // delivered (4: the short answer has 3).
    for name in workload_generator::replay::plots::PLOTS {
        let svg = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(svg.contains("4 requests, 3 answered 2xx"), "{name}");
    }
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    assert!(
        read("rate.svg").contains("data-series=\"planned\"")
            && read("rate.svg").contains("data-series=\"sent\"")
    );
    for series in ["p50", "p90", "p99"] {
        assert!(read("latency.svg").contains(&format!("data-series=\"{series}\"")));
    }
    assert!(read("output.svg").contains("delivered (usage)"));
    let acc = {
        let mut a = workload_generator::replay::plots::PlotAcc::new();
        for r in &rs {
            a.add(r);
        }
        a
    };
    let rendered = acc.render(&s);
    assert_eq!(
        rendered[3].1,
        read("output.svg"),
        "the figures are a function of the results"
    );

    // Nothing listening: every request is an error without a status, and the files are still complete.
    let dead = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = options(
        &format!("http://127.0.0.1:{port}"),
        Endpoint::Chat,
        dead.path(),
    );
    replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let rs = results(dead.path());
    assert!(
        rs.iter().all(
            |r| r.status.is_none() && r.error.as_deref().unwrap().starts_with("request failed")
        )
    );
    assert_eq!(report(dead.path())["status_counts"], json!({"none": 4}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_metrics_are_scraped_before_during_and_after() {
    let mock = Mock::start(5, 5).await;
    let text: String = (0..12u64)
        .map(|i| entry(i * 20, &[req(&format!("p{i}"), Some(4), None)]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Completions, dir.path());
    opts.target_metrics = Some(workload_generator::replay::run::TargetMetrics {
        url: format!("{}/metrics", mock.base),
        interval: Duration::from_millis(20),
        predicted: Some(json!({"reuse_unlimited": 0.25})),
    });
    replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let server = &report(dir.path())["server"];
    // 12 requests between the first scrape and the last: the counters' differences are exact.
    assert_eq!(server["counters"]["vllm:prefix_cache_queries"], 120.0);
    assert_eq!(server["counters"]["vllm:prefix_cache_hits"], 48.0);
    assert_eq!(server["counters"]["vllm:generation_tokens"], 96.0);
    assert_eq!(server["prefix_cache_hit_rate"], 0.4);
    assert_eq!(server["predicted"]["reuse_unlimited"], 0.25);
    let running = &server["gauges"]["vllm:num_requests_running"];
    assert_eq!(running["max"], 12.0);
    // Before, after, and some during a replay of about 240 ms at 20 ms.
    assert!(running["samples"].as_u64().unwrap() >= 4, "{running}");
    assert_eq!(server["scrapes"]["failed"], 0);

    // A metrics URL that fails is reported, and the replay still completes.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock.base, Endpoint::Completions, dir.path());
    opts.target_metrics = Some(workload_generator::replay::run::TargetMetrics {
        url: format!("{}/nope", mock.base),
        interval: Duration::from_millis(50),
        predicted: None,
    });
    replay(plan(&text, PlanOptions::default()), opts)
        .await
        .unwrap();
    let server = &report(dir.path())["server"];
    assert!(server["scrapes"]["failed"].as_u64().unwrap() >= 2);
    assert!(
        server["scrapes"]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 404")
    );
    assert_eq!(server["counters"], json!({}));
    assert_eq!(results(dir.path()).len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_merge_into_the_report_of_all_their_records() {
    let mock = Mock::start(2, 1).await;
    let text: String = (0..40u64)
        .map(|i| {
            let session = (i % 4 != 0).then(|| json!(i % 6));
            entry(i * 5, &[req(&format!("p{i}"), Some(1 + i % 3), session)])
        })
        .collect();
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for i in 0..2 {
        let dir = root.path().join(format!("shard{i}"));
        let shard = Shard { index: i, count: 2 };
        let mut opts = options(&mock.base, Endpoint::Chat, &dir);
        opts.shard = shard.to_string();
        opts.slo = "ttft=1s".parse().unwrap();
        let p = plan(
            &text,
            PlanOptions {
                shard,
                ..PlanOptions::default()
            },
        );
        assert!(!p.is_empty());
        replay(p, opts).await.unwrap();
        dirs.push(dir);
    }
    let out = root.path().join("merged");
    let merged = workload_generator::replay::merge(&dirs, &out).unwrap();
    let all = results(&out);
    assert_eq!(all.len(), 40);
    assert_eq!(
        all.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    let mut folded = Summary::new(1000, "ttft=1s".parse().unwrap(), "0/2".into());
    for r in &all {
        folded.add(r);
    }
    folded.close();
    folded.shards.push("1/2".into());
    assert_eq!(merged, folded);
    assert_eq!(report(&out), folded.report());
    assert_eq!(report(&out)["fidelity"]["sessions"]["count"], 6);
    assert_eq!(report(&out)["fidelity"]["sessions"]["whole_in_order"], 6);
    // The merged plots are those of all the records.
    let mut acc = workload_generator::replay::plots::PlotAcc::new();
    for r in &all {
        acc.add(r);
    }
    for (name, svg) in acc.render(&merged) {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            svg,
            "{name}"
        );
    }
}

#[test]
fn cli_replays_and_merges() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt.block_on(Mock::start(1, 1));
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.json");
    std::fs::write(&w, "[{\"timestamp\": 0, \"requests\": [{\"prompt\": \"x\", \"Prompt Length\": 1, \"Output Length\": 2}]},\n {\"timestamp\": 5000, \"requests\": [{\"prompt\": \"y\", \"output_length\": NaN}]}]").unwrap();
    let bin = env!("CARGO_BIN_EXE_workload-generator");
    let out = dir.path().join("out");
    let run = std::process::Command::new(bin)
        .args([
            "replay",
            "--workload",
            w.to_str().unwrap(),
            "--base-url",
            &format!("{}/v1", mock.base),
            "--model",
            "m",
        ])
        .args([
            "--endpoint",
            "chat",
            "--duration",
            "1000",
            "--slo",
            "ttft=2s,tpot=100ms",
            "--header",
            "x-a: b",
            "--metrics-interval",
            "50",
        ])
        .arg("--target-metrics")
        .arg(format!("{}/metrics", mock.base))
        .arg("--output-dir")
        .arg(&out)
        .env("WG_REPLAY_API_KEY", "secret")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got = mock.received();
    assert_eq!(got.len(), 1, "--duration 1000 drops the request at 5 s");
    assert_eq!(got[0].auth.as_deref(), Some("Bearer secret"));
    assert_eq!(got[0].body["max_tokens"], 2, "legacy Output Length");
    // --target-metrics: the server's counters beside the workload's own prefix-reuse figure.
    let server = report(&out)["server"].clone();
    assert_eq!(server["counters"]["vllm:prefix_cache_queries"], 10.0);
    // The prediction reads this JSON array with Python's `NaN` like the replay does.
    assert_eq!(server["predicted"]["basis"], "bytes", "{server}");
    assert_eq!(server["predicted"]["reuse_unlimited"], 0.0);
    let merged = dir.path().join("merged");
    let m = std::process::Command::new(bin)
        .args(["replay", "merge"])
        .arg(&out)
        .arg("--output-dir")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert_eq!(report(&merged)["requests"], 1);
    assert_eq!(report(&merged)["goodput"]["good"], 1);
}

/// Runs the CLI with `args`; panics with its stderr on failure.
fn cli(args: &[&str]) {
    let bin = env!("CARGO_BIN_EXE_workload-generator");
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Opt-in, against a real vLLM: set `WG_VLLM_URL` (e.g. `http://127.0.0.1:18000`, started by
/// `../shared/tools/vllm-cpu/setup_and_serve.sh start`; model `WG_VLLM_MODEL`, default `tiny`) and run
/// `cargo test --release --test replay -- --ignored vllm --nocapture`. Replays a sessioned chat workload and a
/// Mooncake-style workload with shared hash-id prefixes, pinned output lengths and the server's `/metrics`;
/// prints TTFT and the prefix-cache hits predicted vs counted.
#[test]
#[ignore]
fn vllm_replays_sessions_and_mooncake() {
    let Ok(base) = std::env::var("WG_VLLM_URL") else {
        eprintln!("WG_VLLM_URL is not set: skipped");
        return;
    };
    let model = std::env::var("WG_VLLM_MODEL").unwrap_or_else(|_| "tiny".into());
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let metrics = format!("{}/metrics", base.trim_end_matches('/'));
    let api = format!("{}/v1", base.trim_end_matches('/'));

    // 1. Sessions: a generated multi-turn collection, 2 sessions starting per second for 20 s.
    cli(&[
        "dataset",
        "multi-turn",
        "--seed",
        "5",
        "--output",
        &p("mt.jsonl"),
        "--num-sessions-mean",
        "4",
        "--num-sessions-std",
        "1",
        "--prompt-length-mean",
        "60",
    ]);
    cli(&[
        "generate",
        "--trace-type",
        "constant",
        "--target-qps",
        "2",
        "--duration-ms",
        "20000",
        "--prompt-file",
        &p("mt.jsonl"),
        "--target-completion-len",
        "16",
        "--seed",
        "1",
        "--output-dir",
        &p("w1"),
    ]);
    // 2. Mooncake-style: 24 requests of 2-6 blocks of 512 tokens, sharing their first two blocks.
    let trace: String = (0..24u64)
        .map(|i| {
            let blocks = 2 + i % 5;
            let mut ids = vec![0u64, 1];
            ids.extend((0..blocks - 2).map(|k| 100 + i * 10 + k));
            format!(
                "{}\n",
                json!({"timestamp": i * 500, "input_length": blocks * 512 - 100,
                       "output_length": 16, "hash_ids": ids})
            )
        })
        .collect();
    std::fs::write(dir.path().join("mc.jsonl"), trace).unwrap();
    cli(&[
        "generate",
        "--trace-type",
        "mooncake",
        "--traffic-file",
        &p("mc.jsonl"),
        "--seed",
        "1",
        "--duration-ms",
        "60000",
        "--output-dir",
        &p("w2"),
    ]);
    for (w, endpoint, out) in [("w1", "chat", "r1"), ("w2", "completions", "r2")] {
        cli(&[
            "replay",
            "--workload",
            &format!("{}/workload.jsonl", p(w)),
            "--base-url",
            &api,
            "--model",
            &model,
            "--endpoint",
            endpoint,
            "--ignore-eos",
            "--target-metrics",
            &metrics,
            "--metrics-interval",
            "500",
            "--slo",
            "ttft=2s,tpot=200ms",
            "--output-dir",
            &p(out),
        ]);
        let rep = report(&dir.path().join(out));
        let server = &rep["server"];
        println!(
            "{w} ({endpoint}): {} requests, {} ok; TTFT ms p50 {} p99 {}; output equal {}; lateness p99 {} ms; \
             sessions whole {}; prefix-cache hit rate counted {} vs predicted (bytes) {}; counters {}",
            rep["requests"],
            rep["ok"],
            rep["latency_ms"]["ttft"]["p50"],
            rep["latency_ms"]["ttft"]["p99"],
            rep["fidelity"]["output_length"]["share_equal"],
            rep["fidelity"]["lateness_ms"]["p99"],
            rep["fidelity"]["sessions"],
            server["prefix_cache_hit_rate"],
            server["predicted"]["reuse_unlimited"],
            server["counters"]
        );
        assert_eq!(rep["ok"], rep["requests"], "{rep}");
        assert!(
            server["counters"]["vllm:prefix_cache_queries"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        for name in workload_generator::replay::plots::PLOTS {
            assert!(dir.path().join(out).join(name).is_file());
        }
    }
}
