//! The group emitter every trace pipeline writes through, and keyed per-row randomness.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::rows::TraceRow;
use crate::domain::emit::{Collector, GenerateError};
use crate::domain::writer::EntrySink;

/// Turns a group of rows (one workload entry) into requests and writes them.
pub(super) trait GroupEmitter {
    /// Emits the entry; returns false when generation must stop (collection used up).
    fn emit(
        &mut self,
        ts: u64,
        rows: &[TraceRow],
        sink: &mut dyn EntrySink,
        c: &mut Collector,
    ) -> Result<bool, GenerateError>;

    /// Adds final counters to the summary.
    fn finish(&mut self, _c: &mut Collector) {}
}
/// Deterministic 64-bit mix of a seed and a key (SplitMix64 finalizer).
pub(crate) fn mix(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 generator for `key` under `seed`.
pub(crate) fn keyed_rng(seed: u64, key: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed, key))
}
