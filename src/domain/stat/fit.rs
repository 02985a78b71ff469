//! Lognormal fit of length percentiles.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

// ---------------------------------------------------------------------------------------------------------
// Lognormal fit

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error below
/// 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// A lognormal length distribution: `ln L ~ N(mu, sigma²)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    /// Mean of ln L.
    pub mu: f64,
    /// Standard deviation of ln L (0 = a constant length).
    pub sigma: f64,
}

impl LogNormal {
    /// Least-squares fit of `ln L_j ≈ mu + sigma·Φ⁻¹(p_j)` over `(p_j, L_j)` (closed form: a linear regression
    /// of ln L on the normal quantiles). Lengths below 1 count as 1; one point gives `sigma = 0`.
    pub fn fit(points: &[(f64, f64)]) -> Self {
        let n = points.len() as f64;
        let zy: Vec<(f64, f64)> = points
            .iter()
            .map(|&(p, l)| (normal_quantile(p), l.max(1.0).ln()))
            .collect();
        let zm = zy.iter().map(|v| v.0).sum::<f64>() / n;
        let ym = zy.iter().map(|v| v.1).sum::<f64>() / n;
        let sxx: f64 = zy.iter().map(|v| (v.0 - zm).powi(2)).sum();
        let sxy: f64 = zy.iter().map(|v| (v.0 - zm) * (v.1 - ym)).sum();
        let sigma = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
        Self {
            mu: ym - sigma * zm,
            sigma,
        }
    }

    /// A constant length.
    pub fn constant(len: f64) -> Self {
        Self {
            mu: len.max(1.0).ln(),
            sigma: 0.0,
        }
    }

    /// The p-quantile.
    pub fn quantile(&self, p: f64) -> f64 {
        (self.mu + self.sigma * normal_quantile(p)).exp()
    }

    /// One length in whole tokens (at least 1). Draws one standard normal even when `sigma` is 0.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let z: f64 = StandardNormal.sample(rng);
        let v = (self.mu + self.sigma * z).exp().round();
        if v.is_nan() || v < 1.0 {
            1
        } else if v > u32::MAX as f64 {
            u32::MAX
        } else {
            v as u32
        }
    }
}
