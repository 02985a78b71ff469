//! A bit-exact re-implementation of the parts of CPython's `random.Random` the agent generator uses.
//!
//! CPython's generator is MT19937 seeded with `init_by_array` from the 32-bit little-endian words of
//! `abs(seed)` (one zero word for seed 0). On top of the 32-bit output:
//! * `getrandbits(k)` keeps the top `k` bits of each 32-bit draw (little-endian words for `k > 32`);
//! * `randbelow(n)` draws `getrandbits(bit_length(n))` until the value is below `n` (so `n == 1` still
//!   consumes at least one draw) and `randint(a, b) = a + randbelow(b - a + 1)`;
//! * `random() = ((u32 >> 5) * 2^26 + (u32 >> 6)) / 2^53` from two draws;
//! * `expovariate(λ) = -ln(1 - random()) / λ`.
//!
//! The same seed gives the same sequence as `random.Random(seed)` on CPython 3.x.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython-compatible Mersenne Twister (`random.Random`).
#[derive(Clone)]
pub struct PyRandom {
    mt: Box<[u32; N]>,
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative seed (CPython uses `abs(seed)`, so pass the magnitude).
    pub fn new(seed: u64) -> Self {
        let lo = seed as u32;
        let hi = (seed >> 32) as u32;
        if hi == 0 {
            Self::from_key(&[lo])
        } else {
            Self::from_key(&[lo, hi])
        }
    }

    /// Seeds with `init_by_array(key)` (the key must not be empty).
    pub fn from_key(key: &[u32]) -> Self {
        assert!(!key.is_empty(), "init_by_array needs at least one word");
        let mut r = Self::init_genrand(19_650_218);
        let mt = &mut r.mt;
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(s: u32) -> Self {
        let mut mt = Box::new([0u32; N]);
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, index: N }
    }

    fn twist(&mut self) {
        let mt = &mut self.mt;
        for kk in 0..N {
            let y = (mt[kk] & UPPER_MASK) | (mt[(kk + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            mt[kk] = mt[(kk + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `getrandbits(k)` for `1 <= k <= 64`.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!((1..=64).contains(&k), "getrandbits supports 1..=64 bits");
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        // Little-endian 32-bit words; the last (most significant) one keeps only its top bits.
        let low = u64::from(self.next_u32());
        let rest = k - 32;
        let high = u64::from(self.next_u32() >> (32 - rest));
        low | (high << 32)
    }

    /// `_randbelow(n)` for `n >= 1`: rejection sampling on `getrandbits(bit_length(n))`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n >= 1, "randbelow needs n >= 1");
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randint(a, b)`, inclusive, for `0 <= a <= b < 2^64 - 1`.
    pub fn randint(&mut self, a: u64, b: u64) -> u64 {
        assert!(a <= b && b < u64::MAX, "randint needs a <= b < 2^64 - 1");
        a + self.randbelow(b - a + 1)
    }

    /// `random()`: a float in [0, 1) with 53 random bits from two draws.
    pub fn random(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `expovariate(lambd)`: an exponential variate with rate `lambd`.
    pub fn expovariate(&mut self, lambd: f64) -> f64 {
        -(1.0 - self.random()).ln() / lambd
    }
}

/// Python's `round()` of a float to an integer: ties go to the even neighbour (2.5 → 2, 3.5 → 4).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed with CPython 3.11.7, e.g.
    //   python3 -c "import random; r=random.Random(17); print([r.random() for _ in range(3)])"

    #[test]
    fn random_matches_cpython() {
        // [random.Random(17).random() for _ in range(3)]
        let mut r = PyRandom::new(17);
        assert_eq!(r.random(), 0.5219839097124932);
        assert_eq!(r.random(), 0.8066907771186791);
        assert_eq!(r.random(), 0.9604947743238768);
        // r = random.Random(1234567); [r.random() for _ in range(1000)]; r.random()  (crosses a twist)
        let mut r = PyRandom::new(1_234_567);
        for _ in 0..1000 {
            r.random();
        }
        assert_eq!(r.random(), 0.5374054967773154);
    }

    #[test]
    fn seeds_use_the_32_bit_words_of_the_magnitude() {
        // [random.Random(17).getrandbits(32) for _ in range(3)]
        let mut r = PyRandom::new(17);
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [2_241_903_809, 1_778_837_931, 3_464_710_496]);
        // random.Random(0): one zero word
        let mut r = PyRandom::new(0);
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [3_626_764_237, 1_654_615_998, 3_255_389_356]);
        // random.Random(2**40 + 3): two words
        let mut r = PyRandom::new((1 << 40) + 3);
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [943_978_446, 261_273_136, 2_359_950_418]);
        // random.Random(-5) == random.Random(5)
        let mut r = PyRandom::new(5);
        assert_eq!(r.next_u32(), 2_675_342_405);
        assert_eq!(r.next_u32(), 1_097_127_993);
    }

    #[test]
    fn getrandbits_randint_and_expovariate_match_cpython() {
        // r = random.Random(17); [r.getrandbits(k) for k in (1, 5, 31, 32)]
        let mut r = PyRandom::new(17);
        let got: Vec<u64> = [1, 5, 31, 32].iter().map(|&k| r.getrandbits(k)).collect();
        assert_eq!(got, [1, 13, 1_732_355_248, 1_303_193_990]);
        // r = random.Random(5); [r.randint(0,10) for _ in range(8)], [r.randint(7,7) for _ in range(3)],
        //   [r.randint(100,1500) for _ in range(4)]
        let mut r = PyRandom::new(5);
        let a: Vec<u64> = (0..8).map(|_| r.randint(0, 10)).collect();
        assert_eq!(a, [9, 4, 5, 10, 8, 0, 7, 3]);
        let b: Vec<u64> = (0..3).map(|_| r.randint(7, 7)).collect();
        assert_eq!(b, [7, 7, 7]);
        let c: Vec<u64> = (0..4).map(|_| r.randint(100, 1500)).collect();
        assert_eq!(c, [861, 1060, 604, 879]);
        // r = random.Random(9); [r.randint(0, 2**40) for _ in range(3)], [r.randint(0, 2**63-1) for _ in range(2)]
        let mut r = PyRandom::new(9);
        let d: Vec<u64> = (0..3).map(|_| r.randint(0, 1 << 40)).collect();
        assert_eq!(d, [585_718_914_800, 408_616_915_370, 743_056_980_560]);
        let e: Vec<u64> = (0..2).map(|_| r.randint(0, (1 << 63) - 1)).collect();
        assert_eq!(e, [8_554_152_435_637_441_414, 6_161_655_336_973_386_967]);
        // r = random.Random(3); [r.expovariate(0.5) for _ in range(3)]
        let mut r = PyRandom::new(3);
        assert_eq!(r.expovariate(0.5), 0.5435246064673367);
        assert_eq!(r.expovariate(0.5), 1.5715305658195429);
        assert_eq!(r.expovariate(0.5), 0.9239285958384258);
    }

    #[test]
    fn randint_of_one_value_still_draws() {
        // Random(17) draws 2241903809, 1778837931, 3464710496 (above). randint(3, 3) = 3 + randbelow(1):
        // getrandbits(1) gives 2241903809 >> 31 = 1 (rejected), then 1778837931 >> 31 = 0 (accepted).
        let mut r = PyRandom::new(17);
        assert_eq!(r.randint(3, 3), 3);
        assert_eq!(r.next_u32(), 3_464_710_496);
    }

    #[test]
    fn round_half_even_is_python_round() {
        // [round(x) for x in (0.5, 1.5, 2.5, -0.5, 2.675 * 1000)]
        let got: Vec<f64> = [0.5, 1.5, 2.5, -0.5, 2.675 * 1000.0]
            .iter()
            .map(|&x| round_half_even(x))
            .collect();
        assert_eq!(got, [0.0, 2.0, 2.0, -0.0, 2675.0]);
    }
}
