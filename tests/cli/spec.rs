//! Flags into specs: `generate`'s command line parsed to a `GenerationSpec` (no binary run).

use clap::Parser;
use serde_json::json;
use workload_generator::cli::{Cli, Command};
use workload_generator::domain::inputs::InputCache;
use workload_generator::domain::pattern::Preset;
use workload_generator::domain::spec::{GenerationSpec, LengthPolicy, TraceType};
use workload_generator::domain::stat::{RateNoise, StatTraceType};
use workload_generator::domain::tokenizer::TokenizerPolicy;

fn cli_spec(args: &[&str]) -> anyhow::Result<GenerationSpec> {
    let mut all = vec!["workload-generator", "generate"];
    all.extend_from_slice(args);
    let Some(Command::Generate(g)) = Cli::try_parse_from(all).unwrap().command else {
        panic!("`generate` parses as the generate command");
    };
    g.to_spec()
}

/// The collection and manifest inputs the CLI reads for `spec`.
fn load_prompts(
    spec: &GenerationSpec,
) -> (
    std::sync::Arc<workload_generator::domain::dataset::Dataset>,
    Vec<workload_generator::domain::run::InputFile>,
) {
    let inputs = InputCache::new(TokenizerPolicy::cli(), None)
        .prepare(
            &spec.tokenizer,
            spec.add_special_tokens,
            &workload_generator::cli::generate::prompt_source(spec),
            None,
            &|_, _| {},
            workload_generator::domain::tokenizer::NEVER,
        )
        .unwrap();
    (inputs.data.dataset.clone(), inputs.files)
}

#[test]
fn reference_cli_flags_map_to_the_spec() {
    let s = cli_spec(&[
        "--trace-type",
        "synthetic",
        "--traffic-pattern",
        "quick_rising",
        "--traffic-pattern-mean",
        "3.5",
        "--prompt-len-pattern-config",
        "p.json",
        "--completion-len-pattern",
        "severe_fluctuation",
    ])
    .unwrap();
    let syn = s.synthetic.unwrap();
    assert_eq!(syn.traffic_pattern, Some(Preset::QuickRising));
    assert_eq!(syn.traffic_pattern_mean, Some(3.5));
    assert_eq!(syn.prompt_len_pattern_config, Some(json!("p.json")));
    assert_eq!(syn.completion_len_pattern, Some(Preset::SevereFluctuation));

    let s = cli_spec(&[
        "--trace-type",
        "stat",
        "--stat-trace-type",
        "cloudide",
        "--traffic-file",
        "t.csv",
        "--prompt-len-file",
        "b.csv",
        "--completion-len-file",
        "b.csv",
        "--qps-scale",
        "10",
        "--input-scale",
        "2",
        "--output-scale",
        "3",
        "--bytes-per-token",
        "4",
        "--row-duration-ms",
        "30000",
        "--rate-noise",
        "smoothed",
    ])
    .unwrap();
    let st = s.stat.unwrap();
    assert_eq!(st.stat_trace_type, StatTraceType::Cloudide);
    assert_eq!(st.traffic_file.as_deref(), Some("t.csv"));
    assert_eq!(st.completion_len_file.as_deref(), Some("b.csv"));
    assert_eq!(
        (
            st.qps_scale,
            st.input_scale,
            st.output_scale,
            st.bytes_per_token
        ),
        (10.0, 2.0, 3.0, 4.0)
    );
    assert_eq!(
        (st.row_duration_ms, st.rate_noise),
        (Some(30_000), RateNoise::Smoothed)
    );

    // A preset flag replaces the spec file's config of the same series.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("spec.json");
    std::fs::write(
        &f,
        r#"{"trace_type": "synthetic", "synthetic": {"traffic_pattern_config": {"mean": 2}}}"#,
    )
    .unwrap();
    let s = cli_spec(&[
        "--spec",
        f.to_str().unwrap(),
        "--traffic-pattern",
        "slow_rising",
    ])
    .unwrap();
    let syn = s.synthetic.unwrap();
    assert_eq!(
        (syn.traffic_pattern, syn.traffic_pattern_config),
        (Some(Preset::SlowRising), None)
    );
    assert!(cli_spec(&["--traffic-file", "t.csv"]).is_err());
    assert!(
        Cli::try_parse_from([
            "workload-generator",
            "generate",
            "--traffic-pattern",
            "fast"
        ])
        .is_err()
    );
}

#[test]
fn cli_flag_sets_the_config_file_and_reads_no_prompts() {
    let cli = workload_generator::cli::Cli::try_parse_from([
        "workload-generator",
        "generate",
        "--trace-type",
        "agent",
        "--agent-config",
        "examples/agent-session-config.json",
    ])
    .unwrap();
    let Some(workload_generator::cli::Command::Generate(args)) = cli.command else {
        panic!("`generate` parses as the generate command");
    };
    let spec = args.to_spec().unwrap();
    assert_eq!(spec.trace_type, TraceType::Agent);
    assert_eq!(
        spec.agent_config.as_deref(),
        Some("examples/agent-session-config.json")
    );
    let (ds, inputs) = load_prompts(&spec);
    assert!(ds.is_empty() && inputs.is_empty());
}

#[test]
fn cli_traffic_file_maps_into_the_trace_for_trace_types_only() {
    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: workload_generator::cli::generate::GenerateArgs,
    }
    let w = W::parse_from([
        "x",
        "--trace-type",
        "azure",
        "--traffic-file",
        "t.csv",
        "--group-interval-seconds",
        "5",
        "--length-policy",
        "exact",
        "--time-scale",
        "0.5",
        "--max-requests",
        "10",
    ]);
    let s = w.a.to_spec().unwrap();
    let t = s.trace.unwrap();
    assert_eq!(t.file, "t.csv");
    assert_eq!(t.group_interval_ms, Some(5000));
    assert_eq!(t.time_scale, 0.5);
    assert_eq!(t.max_requests, Some(10));
    assert_eq!(s.length_policy, LengthPolicy::Exact);
    // The default is `near`, also with the AIBrix flags; `sample` (or its earlier name `match`) is the
    // reference's sampling.
    for (flags, want) in [
        (&[][..], LengthPolicy::Near),
        (&["--length-policy", "near"][..], LengthPolicy::Near),
        (&["--length-policy", "sample"][..], LengthPolicy::Sample),
        (&["--length-policy", "match"][..], LengthPolicy::Sample),
    ] {
        let mut argv = vec![
            "x",
            "--trace-type",
            "constant",
            "--target-prompt-len",
            "512",
        ];
        argv.extend_from_slice(flags);
        let s = W::parse_from(argv).a.to_spec().unwrap();
        assert_eq!(s.length_policy, want, "{flags:?}");
    }
    // Constant traffic reads no traffic file: a clear error rather than a silently ignored flag.
    let w = W::parse_from(["x", "--trace-type", "constant", "--traffic-file", "t.csv"]);
    let err = w.a.to_spec().unwrap_err().to_string();
    assert!(
        err.contains("--traffic-file is not used by --trace-type constant"),
        "{err}"
    );
}
