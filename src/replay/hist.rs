//! A mergeable log-linear histogram (HDR-style) of non-negative integer values (microseconds here).
//!
//! Values below 2^(P+1) (P = 7, so 256) are counted exactly; above, every power-of-two range is split into
//! 2^P = 128 equal buckets, so a bucket is never wider than 1/128 of its lower bound. Quantiles report the
//! bucket's midpoint: every reported quantile is within **0.4 %** (stated as 1 %) of a value of the
//! recorded set at that rank. Minimum, maximum, count and sum are exact. Merging adds counts, so the
//! merge of two histograms equals the histogram of the union of their values, bit for bit.

use serde::{Deserialize, Serialize};

/// log2 of the number of buckets per power of two.
const P: u32 = 7;
const HALF: u64 = 1 << P;
/// Relative precision of reported quantiles (a stated bound; the true bound is 1/256).
pub const RELATIVE_PRECISION: f64 = 0.01;

/// A histogram; `counts` is sparse (bucket index, count) when serialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Number of values.
    pub count: u64,
    /// Sum of the values.
    pub sum: u128,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Largest value (0 when empty).
    pub max: u64,
    /// (bucket index, count), sorted by index, counts > 0.
    #[serde(with = "sparse")]
    counts: Vec<u64>,
}

mod sparse {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(usize, u64)> = v
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i, *c))
            .collect();
        pairs.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let pairs: Vec<(usize, u64)> = Vec::deserialize(d)?;
        let len = pairs.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        if len > super::index_of(u64::MAX) + 1 {
            return Err(serde::de::Error::custom(
                "histogram bucket index out of range",
            ));
        }
        let mut v = vec![0; len];
        for (i, c) in pairs {
            v[i] += c;
        }
        Ok(v)
    }
}

/// The bucket of `v`.
fn index_of(v: u64) -> usize {
    if v < HALF {
        return v as usize;
    }
    let e = (63 - v.leading_zeros()) - P;
    let m = v >> e; // in [HALF, 2*HALF)
    (u64::from(e) * HALF + m) as usize
}

/// The smallest value of bucket `i` and the bucket's width.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * HALF {
        return (i, 1);
    }
    let e = i / HALF - 1;
    let m = i - e * HALF;
    (m << e, 1 << e)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        let i = index_of(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
    }

    /// The value at quantile `q` in [0, 1] (nearest rank), None when empty. Exact for the minimum and
    /// maximum; otherwise the midpoint of the value's bucket, clamped to [min, max].
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return Some(self.max);
        }
        if rank == 1 {
            return Some(self.min);
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bucket_range(i);
                return Some((lo + (w - 1) / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// The mean, None when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let mut prev = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index_of(v);
            assert!(i == prev || i == prev + 1 || v > 100_000, "{v}");
            let (lo, w) = bucket_range(i);
            assert!(lo <= v && v - lo < w, "{v} in [{lo}, +{w})");
            assert!(w == 1 || (w as f64) / (lo as f64) <= 1.0 / 128.0, "{v}");
            prev = i;
        }
        assert_eq!(index_of(255), 255);
        assert_eq!(index_of(256), 256);
        assert_eq!(index_of(257), 256);
    }

    #[test]
    fn quantiles_within_precision() {
        let mut h = Histogram::new();
        let values: Vec<u64> = (1..=10_000).map(|i| i * 37).collect();
        for v in &values {
            h.record(*v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = values[(q * values.len() as f64).ceil() as usize - 1] as f64;
            let got = h.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact <= RELATIVE_PRECISION,
                "{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), Some(370_000));
        assert_eq!(h.quantile(0.0), Some(37));
        assert_eq!(h.count, 10_000);
        assert_eq!(Histogram::new().quantile(0.5), None);
    }

    #[test]
    fn merge_equals_union_and_round_trips() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5000u64 {
            let x = v * v % 1_000_003;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        let mut m = Histogram::new();
        m.merge(&a);
        m.merge(&b);
        assert_eq!(m, all);
        let json = serde_json::to_string(&m).unwrap();
        let back: Histogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, all);
    }
}
