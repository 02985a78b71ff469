//! Workload generation: the dispatcher. It picks the traffic shape's generator; the shapes share the emit
//! layer ([`super::emit`]).

pub use super::emit::{
    GenerateError, GenerateInput, MatchSummary, Progress, Summary, rng_for, streams,
};
use super::spec::{Shape, ValidatedSpec};
use super::writer::EntrySink;

/// Generates the workload described by `spec` into `sink`.
pub fn generate(
    spec: &ValidatedSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    match spec.shape() {
        Shape::Constant => super::constant::generate_constant(spec, input, sink),
        Shape::Synthetic(syn) => super::pattern::generate_synthetic(spec, syn, input, sink),
        Shape::Stat(stat) => super::stat::generate_stat(spec, stat, input, sink),
        Shape::Agent(source) => super::agent::generate_agent(spec, source, input, sink),
        Shape::Trace(kind, trace) => super::trace::generate_trace(spec, *kind, trace, input, sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::arrival::ArrivalKind;
    use crate::domain::dataset::parse_jsonl;
    use crate::domain::lengths::TokenizedDataset;
    use crate::domain::spec::OutputLengthSource;
    use crate::domain::spec::{GenerationSpec, TraceType};
    use crate::domain::tokenizer::TokenCounter;
    use crate::domain::writer::VecSink;
    use std::sync::Arc;

    fn data() -> TokenizedDataset {
        let text: String = (0..200)
            .map(|i| format!("{{\"prompt\": \"p{i}\"}}\n"))
            .collect();
        TokenizedDataset {
            dataset: Arc::new(parse_jsonl(text.as_bytes(), "t").unwrap()),
            prompt_len: (0..200).map(|i| 10 + i * 5).collect(),
            completion_len: (0..200).map(|i| Some(5 + i)).collect(),
            from_cache: false,
        }
    }

    fn run(spec: GenerationSpec, d: &TokenizedDataset) -> (Vec<u8>, Summary) {
        let v = spec.validate().unwrap();
        let mut sink = VecSink::default();
        let summary = generate(
            &v,
            GenerateInput {
                data: d,
                tokenizer: &TokenCounter::embedded(),
                files: &crate::domain::files::PathResolver,
                cancel: &|| false,
                progress: &mut |_| {},
            },
            &mut sink,
        )
        .unwrap();
        (sink.jsonl, summary)
    }

    fn constant(qps: f64) -> GenerationSpec {
        let mut s = GenerationSpec::new(TraceType::Constant);
        s.seed = Some(11);
        s.traffic.target_qps = qps;
        s
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let d = data();
        let (a, _) = run(constant(5.0), &d);
        let (b, _) = run(constant(5.0), &d);
        assert_eq!(a, b);
        let mut other = constant(5.0);
        other.seed = Some(12);
        assert_ne!(run(other, &d).0, a);
    }

    #[test]
    fn changing_lengths_does_not_move_arrivals() {
        let d = data();
        let ts = |out: &[u8]| -> Vec<u64> {
            out.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    serde_json::from_slice::<serde_json::Value>(l).unwrap()["timestamp"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        let (a, _) = run(constant(5.0), &d);
        let mut s = constant(5.0);
        s.lengths.target_prompt_len = Some(300);
        let (b, _) = run(s, &d);
        assert_eq!(ts(&a), ts(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn targets_are_honoured_and_output_length_is_the_target() {
        let d = data();
        let mut s = constant(20.0);
        s.lengths.target_prompt_len = Some(500);
        s.lengths.target_completion_len = Some(64);
        let (out, summary) = run(s.clone(), &d);
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let r = &v["requests"][0];
            let pl = r["prompt_length"].as_u64().unwrap();
            assert!((250..=750).contains(&pl), "{pl}");
            assert_eq!(r["output_length"], 64);
        }
        assert_eq!(summary.matching.in_window, summary.requests);
        assert_eq!(summary.output_length.unwrap().p50, 64);
        // output_length_source: dataset emits the matched completion's length (the reference).
        s.output_length_source = OutputLengthSource::Dataset;
        let (out, _) = run(s, &d);
        let v: serde_json::Value =
            serde_json::from_slice(out.split(|&b| b == b'\n').next().unwrap()).unwrap();
        assert_ne!(v["requests"][0]["output_length"], 64);
    }

    #[test]
    fn interval_never_changes_length_and_rate_is_a_float() {
        let d = data();
        let mut s = constant(2.5);
        s.interval_ms = 2000;
        s.traffic.arrival = ArrivalKind::Uniform;
        let (_, summary) = run(s, &d);
        assert_eq!(summary.requests, 150);
        assert_eq!(summary.first_timestamp_ms, Some(0));
        assert_eq!(summary.last_timestamp_ms, Some(59_600));
    }

    #[test]
    fn without_replacement_stops_and_says_so() {
        let d = data();
        let mut s = constant(10.0);
        s.sampling.replacement = false;
        let (out, summary) = run(s, &d);
        assert_eq!(summary.requests, 200);
        assert_eq!(
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
            200
        );
        assert!(
            summary.notes[0].contains("all 200 prompts were used"),
            "{:?}",
            summary.notes
        );
    }

    #[test]
    fn cancellation_stops_generation() {
        let d = data();
        let v = constant(100.0).validate().unwrap();
        let mut sink = VecSink::default();
        let r = generate(
            &v,
            GenerateInput {
                data: &d,
                tokenizer: &TokenCounter::embedded(),
                files: &crate::domain::files::PathResolver,
                cancel: &|| true,
                progress: &mut |_| {},
            },
            &mut sink,
        );
        assert!(matches!(r, Err(GenerateError::Cancelled)));
    }
}
