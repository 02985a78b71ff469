//! `synthetic` and `stat` trace types end to end: the example files under `examples/`, the CLI flags, the
//! interval grid (W2), only_rise lengths (W4), cloudide sent bytes (W14), errors.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use workload_generator::domain::arrival::ArrivalKind;
use workload_generator::domain::dataset::parse_jsonl;
use workload_generator::domain::files::PathResolver;
use workload_generator::domain::generate::{GenerateError, GenerateInput, Summary, generate};
use workload_generator::domain::lengths::TokenizedDataset;
use workload_generator::domain::pattern::{Pattern, Period, Preset};
use workload_generator::domain::spec::{GenerationSpec, TraceType};
use workload_generator::domain::stat::{RateNoise, StatTraceType};
use workload_generator::domain::tokenizer::TokenCounter;
use workload_generator::domain::writer::VecSink;

fn example(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel)
        .display()
        .to_string()
}

/// 400 prompts of 10..2005 tokens.
fn data() -> TokenizedDataset {
    let text: String = (0..400)
        .map(|i| format!("{{\"prompt\": \"p{i}\"}}\n"))
        .collect();
    TokenizedDataset {
        dataset: Arc::new(parse_jsonl(text.as_bytes(), "t").unwrap()),
        prompt_len: (0..400).map(|i| 10 + i * 5).collect(),
        completion_len: (0..400).map(|i| Some(5 + i)).collect(),
        from_cache: false,
    }
}

struct Req {
    ts: u64,
    prompt_length: u64,
    output_length: Option<u64>,
}

fn try_run(spec: GenerationSpec) -> Result<(Vec<u8>, Vec<Req>, Summary), GenerateError> {
    let v = spec.validate()?;
    let d = data();
    let mut sink = VecSink::default();
    let summary = generate(
        &v,
        GenerateInput {
            data: &d,
            tokenizer: &TokenCounter::embedded(),
            files: &PathResolver,
            cancel: &|| false,
            progress: &mut |_| {},
        },
        &mut sink,
    )?;
    let reqs = sink
        .jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            let r = &v["requests"][0];
            Req {
                ts: v["timestamp"].as_u64().unwrap(),
                prompt_length: r["prompt_length"].as_u64().unwrap(),
                output_length: r["output_length"].as_u64(),
            }
        })
        .collect();
    Ok((sink.jsonl, reqs, summary))
}

fn run(spec: GenerationSpec) -> (Vec<u8>, Vec<Req>, Summary) {
    try_run(spec).unwrap()
}

fn synthetic(cfg: Value) -> GenerationSpec {
    let mut s: GenerationSpec =
        serde_json::from_value(json!({"trace_type": "synthetic", "seed": 9, "synthetic": cfg}))
            .unwrap();
    s.duration_ms = 600_000;
    s
}

#[test]
fn synthetic_follows_the_reference_example_configs() {
    let spec = synthetic(json!({
        "traffic_pattern_config": example("synthetic/traffic-config.json"),
        "prompt_len_pattern_config": example("synthetic/prompt-len-config.json"),
        "completion_len_pattern_config": example("synthetic/completion-len-config.json"),
    }));
    let (bytes, reqs, summary) = run(spec.clone());
    // 6 ± 2 req/s with a 300 s period over 600 s: about 3600 requests.
    let n = reqs.len() as f64;
    assert!((n - 3600.0).abs() < 3.0 * 60.0, "{n}");
    // The first half period (sin > 0) is busier than the second: expected 1091 vs 709.
    let a = reqs.iter().filter(|r| r.ts < 150_000).count();
    let b = reqs
        .iter()
        .filter(|r| (150_000..300_000).contains(&r.ts))
        .count();
    assert!(a > b + 250, "{a} vs {b}");
    // Completion targets 169 ± 8 (+ noise) are emitted as output_length; prompts are matched to 309 ± 15.
    assert!(
        reqs.iter()
            .all(|r| (160..=178).contains(&r.output_length.unwrap()))
    );
    assert!(reqs.iter().all(|r| (145..=490).contains(&r.prompt_length)));
    assert_eq!(summary.matching.in_window, summary.requests);
    // Deterministic for a seed.
    assert_eq!(run(spec).0, bytes);
}

#[test]
fn autoscaling_predefined_configs_are_accepted_unchanged() {
    let read = |kind: &str, name: &str| -> Pattern {
        let text = std::fs::read_to_string(example(&format!(
            "synthetic/predefined/{kind}-configs/{name}.json"
        )))
        .unwrap();
        Pattern::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
    };
    // The spec's table: (mean, High/Low fluctuate, Fast/Slow period).
    for (kind, mean, high, low, fast, slow) in [
        ("traffic", 12.0, 3.6, 1.08, 120_000.0, 840_000.0),
        ("prompt-len", 1024.0, 696.0, 174.0, 90_000.0, 120_000.0),
        ("completion-len", 43.0, 34.0, 7.1, 120_000.0, 300_000.0),
    ] {
        for (name, a, p) in [
            ("HighFast", high, fast),
            ("HighSlow", high, slow),
            ("LowFast", low, fast),
            ("LowSlow", low, slow),
        ] {
            let pat = read(kind, name);
            assert_eq!(
                (
                    pat.mean,
                    pat.amplitude,
                    pat.period,
                    pat.noise,
                    pat.only_rise
                ),
                (mean, a, Period::LengthMs(p), 0.1, false),
                "{kind}/{name}"
            );
        }
    }
    for name in ["HighFast", "LowSlow"] {
        let mut spec = synthetic(json!({
            "traffic_pattern_config": example(&format!("synthetic/predefined/traffic-configs/{name}.json")),
            "prompt_len_pattern_config": example(&format!("synthetic/predefined/prompt-len-configs/{name}.json")),
            "completion_len_pattern_config": example(&format!("synthetic/predefined/completion-len-configs/{name}.json")),
        }));
        spec.duration_ms = 120_000;
        let (_, reqs, _) = run(spec);
        let n = reqs.len() as f64;
        assert!((n - 1440.0).abs() < 300.0, "{name}: {n}");
        let mean_out = reqs
            .iter()
            .map(|r| r.output_length.unwrap() as f64)
            .sum::<f64>()
            / n;
        assert!((mean_out - 43.0).abs() < 10.0, "{name}: {mean_out}");
    }
}

#[test]
fn presets_with_only_rise_lengths_and_a_configurable_mean() {
    // quick_rising for a length crashes the reference (W4).
    let spec = synthetic(json!({
        "traffic_pattern": "quick_rising", "traffic_pattern_mean": 10,
        "prompt_len_pattern": "slow_rising", "prompt_len_pattern_mean": 500,
        "completion_len_pattern": "quick_rising", "completion_len_pattern_mean": 100,
    }));
    let (_, reqs, _) = run(spec);
    let outs: Vec<u64> = reqs.iter().map(|r| r.output_length.unwrap()).collect();
    assert!(outs.windows(2).all(|w| w[1] >= w[0]), "only_rise");
    assert!((149..=151).contains(outs.last().unwrap()));
    // After the rise (30 s of 600 s) the rate sits at 1.5 × 10 = 15 req/s.
    let late = reqs.iter().filter(|r| r.ts >= 300_000).count() as f64;
    assert!((late - 4500.0).abs() < 3.0 * 4500f64.sqrt(), "{late}");
    for p in Preset::ALL {
        let mut s = synthetic(json!({"traffic_pattern": p.as_str()}));
        s.duration_ms = 10_000;
        let (_, reqs, _) = run(s);
        assert!(!reqs.is_empty(), "{p:?}");
        assert!(reqs.iter().all(|r| r.output_length.is_some()));
    }
}

#[test]
fn interval_grid_never_changes_the_workload_length() {
    // W2: with interval_ms = 2000 the reference generates only the first 30 s of a 60 s pattern.
    let mut spec = synthetic(json!({
        "traffic_pattern_config": {"fluctuate": 0, "mean": 5},
        "prompt_len_pattern_config": {"fluctuate": 100, "mean": 300, "period_len_ms": 60000},
    }));
    spec.duration_ms = 60_000;
    spec.interval_ms = 2000;
    spec.lengths.target_completion_len = Some(64); // no completion pattern: the fixed target applies
    spec.traffic.arrival = ArrivalKind::Uniform;
    let (_, reqs, _) = run(spec.clone());
    assert_eq!(reqs.len(), 300);
    assert_eq!(reqs.last().unwrap().ts, 59_800);
    assert!(reqs.iter().all(|r| r.output_length == Some(64)));
    // Prompt targets follow the 2 s grid: 300 ± 100 over one 60 s cycle, matched within ±50%.
    let early: Vec<u64> = reqs
        .iter()
        .filter(|r| (14_000..16_000).contains(&r.ts))
        .map(|r| r.prompt_length)
        .collect();
    assert!(early.iter().all(|&l| (200..=600).contains(&l)), "{early:?}");
    // Gamma arrivals work too.
    spec.traffic.arrival = ArrivalKind::Gamma;
    spec.traffic.burstiness = 0.5;
    let (_, reqs, _) = run(spec);
    assert!((reqs.len() as f64 - 300.0).abs() < 120.0);
}

#[test]
fn stat_maas_example_spec_runs_and_is_deterministic() {
    let text = std::fs::read_to_string(example("specs/stat-maas.json")).unwrap();
    let mut spec: GenerationSpec = serde_json::from_str(&text).unwrap();
    let stat = spec.stat.as_mut().unwrap();
    for f in [
        &mut stat.traffic_file,
        &mut stat.prompt_len_file,
        &mut stat.completion_len_file,
    ] {
        *f = Some(example(
            f.as_deref().unwrap().trim_start_matches("examples/"),
        ));
    }
    let (bytes, reqs, summary) = run(spec.clone());
    // Success per minute: 2,3,4,6,8,8,7,5,3,2 req/s.
    for (i, rate) in [2.0, 3.0, 4.0, 6.0, 8.0, 8.0, 7.0, 5.0, 3.0, 2.0f64]
        .iter()
        .enumerate()
    {
        let lo = i as u64 * 60_000;
        let n = reqs
            .iter()
            .filter(|r| (lo..lo + 60_000).contains(&r.ts))
            .count() as f64;
        let want = rate * 60.0;
        assert!(
            (n - want).abs() <= 3.0 * want.sqrt(),
            "minute {i}: {n} vs {want}"
        );
    }
    assert!(summary.notes.is_empty(), "{:?}", summary.notes);
    assert_eq!(run(spec.clone()).0, bytes);
    // qps_scale divides the rate; duration_ms cuts the rows and says so.
    spec.stat.as_mut().unwrap().qps_scale = 2.0;
    spec.duration_ms = 120_000;
    let (_, reqs, summary) = run(spec);
    assert!((reqs.len() as f64 - 150.0).abs() < 3.0 * 150f64.sqrt());
    assert!(summary.notes[0].contains("cut them"), "{:?}", summary.notes);
}

#[test]
fn stat_readme_form_and_cloudide_examples() {
    let mut spec = GenerationSpec::new(TraceType::Stat);
    spec.seed = Some(3);
    let stat = spec.stat.get_or_insert_with(Default::default);
    stat.traffic_file = Some(example("stat/maas-readme-form/traffic.csv"));
    stat.prompt_len_file = Some(example("stat/maas-readme-form/prompt-len.csv"));
    stat.rate_noise = RateNoise::Smoothed;
    spec.duration_ms = 600_000;
    let (_, reqs, summary) = run(spec);
    // Three one-minute rows at 4, 6 and 5 req/s (smoothed Poisson rates, as the reference).
    assert!((reqs.len() as f64 - 900.0).abs() < 120.0, "{}", reqs.len());
    assert!(reqs.last().unwrap().ts < 180_000);
    assert!(reqs.iter().all(|r| r.output_length.is_some())); // the dataset's completion lengths
    assert!(summary.notes[0].contains("the workload ends there"));

    let mut spec = GenerationSpec::new(TraceType::Stat);
    spec.seed = Some(3);
    let stat = spec.stat.get_or_insert_with(Default::default);
    stat.stat_trace_type = StatTraceType::Cloudide;
    stat.traffic_file = Some(example("stat/cloudide/traffic.csv"));
    stat.prompt_len_file = Some(example("stat/cloudide/bytes.csv"));
    stat.bytes_per_token = 4.0;
    let (_, reqs, _) = run(spec);
    // Row 0 (0-30 s): 1200/4/3... outputs from SENT bytes: (900+300)/3/4 = 100 tokens (W14).
    assert!(
        reqs.iter()
            .filter(|r| r.ts < 30_000)
            .all(|r| r.output_length == Some(100))
    );
    assert!(
        !reqs.iter().any(|r| (60_000..90_000).contains(&r.ts)),
        "rate 0 row"
    );
}

#[test]
fn errors_name_files_rows_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("prompt.csv");
    std::fs::write(&bad, "Time,P50,P90\n2024-10-01 00:00:00,10,x\n").unwrap();
    let mut spec = GenerationSpec::new(TraceType::Stat);
    let stat = spec.stat.get_or_insert_with(Default::default);
    stat.traffic_file = Some(example("stat/maas/traffic.csv"));
    stat.prompt_len_file = Some(bad.display().to_string());
    let e = try_run(spec.clone()).err().unwrap().to_string();
    assert_eq!(
        e,
        format!("{}:2: column 'P90': 'x' is not a number", bad.display())
    );
    spec.stat.as_mut().unwrap().prompt_len_file = Some("/no/such.csv".into());
    let e = try_run(spec).err().unwrap().to_string();
    assert_eq!(e, "stat.prompt_len_file file '/no/such.csv' does not exist");

    let cfg = dir.path().join("cfg.json");
    std::fs::write(
        &cfg,
        r#"{"fluctuate": 1, "mean": 5, "noise": -1, "period_len_ms": 1000}"#,
    )
    .unwrap();
    let spec = synthetic(json!({"traffic_pattern_config": cfg.display().to_string()}));
    let e = try_run(spec).err().unwrap().to_string();
    assert_eq!(
        e,
        format!("{}: column 'noise': must be >= 0", cfg.display())
    );
    std::fs::write(&cfg, "{\n  \"mean\": \n").unwrap();
    let spec = synthetic(json!({"traffic_pattern_config": cfg.display().to_string()}));
    let e = try_run(spec).err().unwrap().to_string();
    assert!(
        e.starts_with(&format!("{}:3: invalid JSON", cfg.display())),
        "{e}"
    );

    let spec = synthetic(json!({"traffic_pattern": "slow_rising", "traffic_pattern_mean": 1e7}));
    assert!(
        try_run(spec)
            .err()
            .unwrap()
            .to_string()
            .starts_with("synthetic.traffic_pattern gives about "),
    );
    let spec = synthetic(json!({"traffic_pattern_config": {"mean": 5, "sigma": 1}}));
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "synthetic.traffic_pattern_config.sigma belongs to the older form (A, B, sigma, period); use fluctuate, mean, noise, period_len_ms"
    );
    let spec: GenerationSpec = serde_json::from_value(json!({"trace_type": "synthetic"})).unwrap();
    assert_eq!(
        spec.validate().unwrap_err().field,
        "synthetic.traffic_pattern"
    );
    let spec: GenerationSpec = serde_json::from_value(json!({"trace_type": "stat"})).unwrap();
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "stat.traffic_file is required"
    );
    assert!(
        serde_json::from_value::<GenerationSpec>(
            json!({"trace_type": "synthetic", "synthetic": {"traffic_pattern": "fast_rising"}})
        )
        .is_err()
    );
}
