//! The `constant` traffic shape: arrivals at `traffic.target_qps` over the whole duration, each with the fixed
//! length targets of `lengths`.

use super::arrival::{Arrivals, RatePiece};
use super::emit::{GenerateError, GenerateInput, Summary, emit_matched, rng_for, streams};
use super::spec::ValidatedSpec;
use super::writer::EntrySink;

/// Generates a `constant` workload.
pub(crate) fn generate_constant(
    spec: &ValidatedSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let duration = s.duration_ms;
    let pieces = vec![RatePiece {
        start_ms: 0.0,
        end_ms: duration as f64,
        rate_per_s: s.traffic.target_qps,
    }];
    let arrivals = Arrivals::new(
        s.traffic.arrival,
        s.traffic.burstiness,
        pieces,
        rng_for(spec.seed(), streams::ARRIVALS),
    );
    let target_in = s.lengths.target_prompt_len;
    let target_out = s.lengths.target_completion_len;
    let times = arrivals.map(move |t| (t as u64, target_in, target_out));
    emit_matched(spec, input, sink, times)
}
