//! Achieved statistics of a generated workload, collected in one pass with memory independent of the
//! number of requests (exact histograms of integer lengths).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An exact histogram of non-negative integers: dense below 65,536, sparse above.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    dense: Vec<u64>,
    sparse: BTreeMap<u64, u64>,
    n: u64,
    sum: u128,
    sum_sq: u128,
}

const DENSE: u64 = 1 << 16;

impl Histogram {
    /// Adds one value.
    pub fn add(&mut self, v: u64) {
        self.add_n(v, 1);
    }

    /// Adds `count` copies of `v`.
    pub fn add_n(&mut self, v: u64, count: u64) {
        if count == 0 {
            return;
        }
        if v < DENSE {
            if self.dense.is_empty() {
                self.dense = vec![0; DENSE as usize];
            }
            self.dense[v as usize] += count;
        } else {
            *self.sparse.entry(v).or_default() += count;
        }
        self.n += count;
        self.sum += v as u128 * count as u128;
        self.sum_sq += (v as u128) * (v as u128) * count as u128;
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Sum of the values.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Mean.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }

    /// Population standard deviation.
    pub fn std_dev(&self) -> Option<f64> {
        let mean = self.mean()?;
        let var = (self.sum_sq as f64 / self.n as f64 - mean * mean).max(0.0);
        Some(var.sqrt())
    }

    /// Distinct values with their counts, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(v, c)| (v as u64, *c))
            .chain(self.sparse.iter().map(|(v, c)| (*v, *c)))
    }

    /// Nearest-rank quantiles for `qs` (ascending), in one sweep: the smallest `v` with at least `q·n` values ≤ `v`.
    pub fn quantiles(&self, qs: &[f64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(qs.len());
        if self.n == 0 {
            return out;
        }
        let mut seen = 0u64;
        let mut it = self.iter();
        let mut cur = None;
        for &q in qs {
            let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
            while seen < rank {
                match it.next() {
                    Some((v, c)) => {
                        seen += c;
                        cur = Some(v);
                    }
                    None => break,
                }
            }
            out.push(cur.unwrap_or(0));
        }
        out
    }

    /// The smallest value `v` such that at least `q·n` values are ≤ `v` (nearest-rank percentile).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        self.quantiles(&[q]).pop()
    }

    /// Summary (min, mean, p50, p90, p99, max).
    pub fn summary(&self) -> Option<LengthSummary> {
        let q = self.quantiles(&[0.5, 0.9, 0.99]);
        Some(LengthSummary {
            count: self.n,
            min: self.min()?,
            mean: round3(self.mean()?),
            p50: q[0],
            p90: q[1],
            p99: q[2],
            max: self.max()?,
        })
    }

    /// Smallest value.
    pub fn min(&self) -> Option<u64> {
        self.iter().next().map(|(v, _)| v)
    }

    /// Largest value.
    pub fn max(&self) -> Option<u64> {
        if let Some((v, _)) = self.sparse.iter().next_back() {
            return Some(*v);
        }
        self.dense.iter().rposition(|c| *c > 0).map(|v| v as u64)
    }

    /// Points of the empirical CDF `(value, fraction ≤ value)`: every distinct value when there are at most
    /// `max_points`, else the values at `max_points` evenly spaced quantiles.
    pub fn cdf_points(&self, max_points: usize) -> Vec<(f64, f64)> {
        let n = self.n as f64;
        let distinct = self.iter().count();
        if distinct <= max_points.max(2) {
            let mut seen = 0u64;
            return self
                .iter()
                .map(|(v, c)| {
                    seen += c;
                    (v as f64, seen as f64 / n)
                })
                .collect();
        }
        let qs: Vec<f64> = (1..=max_points)
            .map(|i| i as f64 / max_points as f64)
            .collect();
        let vs = self.quantiles(&qs);
        vs.into_iter().zip(qs).map(|(v, q)| (v as f64, q)).collect()
    }
}

/// Rounds to 3 decimals so reports are stable and readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Distribution summary of a length (tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthSummary {
    /// Number of values.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// How far emitted prompt lengths are from their targets (relative error).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthError {
    /// Requests that had a prompt-length target.
    pub targeted: u64,
    /// Median relative error |len − target| / target.
    pub median: f64,
    /// 99th percentile of the relative error.
    pub p99: f64,
    /// Largest relative error.
    pub max: f64,
    /// Fraction of targeted requests more than 5% off.
    pub fraction_outside_5pct: f64,
    /// Fraction of targeted requests within ±5% of their target (`1 - fraction_outside_5pct`).
    pub share_within_5pct: f64,
    /// Fraction of targeted requests within ±10% of their target.
    pub share_within_10pct: f64,
}

impl LengthError {
    /// The summary of relative errors in units of 1e-4 (`errs`), of which `outside_5` and `outside_10` are more
    /// than 5% and 10% off.
    pub fn of(errs: &Histogram, outside_5: u64, outside_10: u64) -> Option<Self> {
        let n = errs.len();
        if n == 0 {
            return None;
        }
        let q = errs.quantiles(&[0.5, 0.99, 1.0]);
        let share = |k: u64| round3(k as f64 / n as f64);
        Some(Self {
            targeted: n,
            median: q[0] as f64 / 10_000.0,
            p99: q[1] as f64 / 10_000.0,
            max: q[2] as f64 / 10_000.0,
            fraction_outside_5pct: share(outside_5),
            share_within_5pct: share(n - outside_5),
            share_within_10pct: share(n - outside_10),
        })
    }
}

/// Collects relative errors in units of 1e-4.
#[derive(Debug, Clone, Default)]
pub struct ErrorCollector {
    hist: Histogram,
    outside: u64,
    outside_10: u64,
}

impl ErrorCollector {
    /// Records one (length, target) pair.
    pub fn add(&mut self, len: u32, target: u32) {
        let rel = (len as f64 - target as f64).abs() / target.max(1) as f64;
        if rel > 0.05 {
            self.outside += 1;
        }
        if rel > 0.10 {
            self.outside_10 += 1;
        }
        self.hist.add((rel * 10_000.0).round() as u64);
    }

    /// The summary, or None without targets.
    pub fn summary(&self) -> Option<LengthError> {
        LengthError::of(&self.hist, self.outside, self.outside_10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        let s = h.summary().unwrap();
        assert_eq!((s.min, s.max, s.mean), (1, 100, 50.5));
        assert!(Histogram::default().summary().is_none());
    }

    #[test]
    fn length_error() {
        let mut e = ErrorCollector::default();
        e.add(100, 100);
        e.add(110, 100);
        e.add(90, 100);
        e.add(104, 100);
        let s = e.summary().unwrap();
        assert_eq!(s.targeted, 4);
        assert_eq!(s.max, 0.1);
        assert_eq!(s.fraction_outside_5pct, 0.5);
        assert_eq!(s.median, 0.04);
    }
}
