//! Arrival processes: when requests are dispatched.
//!
//! Every process is a renewal process in "operational time" (unit-mean gaps), mapped to real time through
//! the cumulative rate of a piecewise-constant rate function (time rescaling). With one constant piece this
//! is the ordinary process: exponential gaps (`poisson`, the reference), evenly spaced (`uniform`), or gamma
//! gaps with shape `burstiness` (`gamma`, CV = 1/√burstiness, as vLLM's `--burstiness`). With many pieces
//! (synthetic patterns, Grafana rows) the rate follows the pieces exactly, with no per-second quantisation.

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma};
use serde::{Deserialize, Serialize};

/// The shape of the gaps between arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    /// Exponential gaps (Poisson process), the reference behaviour.
    #[default]
    Poisson,
    /// Evenly spaced arrivals at exactly the target rate.
    Uniform,
    /// Gamma-distributed gaps; `burstiness` is the shape (1 = Poisson, < 1 burstier, > 1 smoother).
    Gamma,
}

/// A piece of the rate function: `rate_per_s` over `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePiece {
    /// Start, ms (inclusive).
    pub start_ms: f64,
    /// End, ms (exclusive).
    pub end_ms: f64,
    /// Requests per second.
    pub rate_per_s: f64,
}

enum Gap {
    Exp,
    Uniform,
    Gamma(Gamma<f64>),
}

/// An iterator of arrival times (float ms, strictly inside the pieces), in order.
pub struct Arrivals<R: Rng> {
    rng: R,
    gap: Gap,
    pieces: Vec<RatePiece>,
    piece: usize,
    t: f64,
    /// Remaining operational time until the next arrival.
    remaining: f64,
}

impl<R: Rng> Arrivals<R> {
    /// Arrivals over `pieces` (sorted, non-overlapping). `burstiness` is used by `Gamma` only and must be > 0.
    pub fn new(kind: ArrivalKind, burstiness: f64, pieces: Vec<RatePiece>, mut rng: R) -> Self {
        let gap = match kind {
            ArrivalKind::Poisson => Gap::Exp,
            ArrivalKind::Uniform => Gap::Uniform,
            ArrivalKind::Gamma => {
                Gap::Gamma(Gamma::new(burstiness, 1.0 / burstiness).expect("burstiness > 0"))
            }
        };
        let remaining = match &gap {
            Gap::Uniform => 0.0,
            Gap::Exp => Exp1.sample(&mut rng),
            Gap::Gamma(g) => g.sample(&mut rng),
        };
        let t = pieces.first().map_or(0.0, |p| p.start_ms);
        Self {
            rng,
            gap,
            pieces,
            piece: 0,
            t,
            remaining,
        }
    }

    fn draw(&mut self) -> f64 {
        match &self.gap {
            Gap::Exp => Exp1.sample(&mut self.rng),
            Gap::Uniform => 1.0,
            Gap::Gamma(g) => g.sample(&mut self.rng),
        }
    }
}

impl<R: Rng> Iterator for Arrivals<R> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        while let Some(p) = self.pieces.get(self.piece).copied() {
            if self.t < p.start_ms {
                self.t = p.start_ms;
            }
            let per_ms = p.rate_per_s.max(0.0) / 1000.0;
            if per_ms > 0.0 {
                let need = self.remaining / per_ms;
                if self.t + need < p.end_ms {
                    self.t += need;
                    self.remaining = self.draw();
                    return Some(self.t);
                }
                self.remaining -= (p.end_ms - self.t) * per_ms;
            }
            self.t = p.end_ms;
            self.piece += 1;
        }
        None
    }
}

/// The expected number of arrivals of a rate function.
pub fn expected_requests(pieces: &[RatePiece]) -> f64 {
    pieces
        .iter()
        .map(|p| p.rate_per_s.max(0.0) * (p.end_ms - p.start_ms) / 1000.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn stats(kind: ArrivalKind, burstiness: f64, qps: f64) -> (f64, f64, usize) {
        let n = 100_000f64;
        let end = n / qps * 1000.0;
        let pieces = vec![RatePiece {
            start_ms: 0.0,
            end_ms: end,
            rate_per_s: qps,
        }];
        // Integer-ms timestamps, as written to the workload.
        let ts: Vec<u64> = Arrivals::new(kind, burstiness, pieces, ChaCha8Rng::seed_from_u64(9))
            .map(|t| t as u64)
            .collect();
        let gaps: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let rate = ts.len() as f64 / (end / 1000.0);
        (rate, var.sqrt() / mean, ts.len())
    }

    #[test]
    fn rate_and_cv_match_targets_over_100k_arrivals() {
        for (kind, b, want_cv) in [
            (ArrivalKind::Poisson, 1.0, 1.0),
            (ArrivalKind::Gamma, 0.25, 2.0),
            (ArrivalKind::Gamma, 4.0, 0.5),
            (ArrivalKind::Uniform, 1.0, 0.0),
        ] {
            let qps = 7.5;
            let (rate, cv, n) = stats(kind, b, qps);
            assert!(
                (rate - qps).abs() / qps < 0.02,
                "{kind:?} rate {rate} n {n}"
            );
            assert!(
                (cv - want_cv).abs() <= 0.05 * want_cv.max(1.0),
                "{kind:?} b={b} cv {cv}"
            );
        }
    }

    #[test]
    fn uniform_is_exact_and_starts_at_zero() {
        let pieces = vec![RatePiece {
            start_ms: 0.0,
            end_ms: 60_000.0,
            rate_per_s: 5.0,
        }];
        let ts: Vec<u64> = Arrivals::new(
            ArrivalKind::Uniform,
            1.0,
            pieces,
            ChaCha8Rng::seed_from_u64(1),
        )
        .map(|t| t as u64)
        .collect();
        assert_eq!(ts.len(), 300);
        assert_eq!(&ts[..3], &[0, 200, 400]);
        assert_eq!(*ts.last().unwrap(), 59_800);
    }

    #[test]
    fn follows_piecewise_rates_and_skips_zero_pieces() {
        let pieces = vec![
            RatePiece {
                start_ms: 0.0,
                end_ms: 10_000.0,
                rate_per_s: 10.0,
            },
            RatePiece {
                start_ms: 10_000.0,
                end_ms: 20_000.0,
                rate_per_s: 0.0,
            },
            RatePiece {
                start_ms: 20_000.0,
                end_ms: 30_000.0,
                rate_per_s: 2.0,
            },
        ];
        let ts: Vec<f64> = Arrivals::new(
            ArrivalKind::Uniform,
            1.0,
            pieces,
            ChaCha8Rng::seed_from_u64(1),
        )
        .collect();
        assert_eq!(ts.iter().filter(|&&t| t < 10_000.0).count(), 100);
        assert_eq!(
            ts.iter()
                .filter(|&&t| (10_000.0..20_000.0).contains(&t))
                .count(),
            0
        );
        assert_eq!(ts.iter().filter(|&&t| t >= 20_000.0).count(), 20);
    }
}
