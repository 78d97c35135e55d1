//! Deterministic generators of realistic log traffic, for benchmarks, tests and `kuzet gen`
//! (`scenario`: the mixed stream with attacks and its ground truth; `truth`: checking alerts).
//! Seeded, dependency-free, and stable across versions: the same seed gives the same bytes,
//! so benchmark inputs and ground truth can be regenerated anywhere.

pub mod scenario;
pub mod syslog;
pub mod truth;
pub mod windows;

/// xorshift64*: small, fast, and good enough for synthetic logs (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}
