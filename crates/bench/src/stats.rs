//! Latency percentiles, medians and a small deterministic random source.

use std::time::Duration;

use serde::Serialize;

/// Latency of single operations (request sent → reply complete and verified), microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Number of operations measured.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// Percentiles of `samples` (nearest rank), or `None` when there is none. Sorts in place.
pub fn latency(samples: &mut [Duration]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Some(Latency {
        samples: samples.len() as u64,
        p50_us: us(nearest_rank(samples, 0.50)),
        p90_us: us(nearest_rank(samples, 0.90)),
        p99_us: us(nearest_rank(samples, 0.99)),
        max_us: us(samples[samples.len() - 1]),
    })
}

/// The nearest-rank percentile `q` (0 < q ≤ 1) of sorted, non-empty `sorted`.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The index of the run whose value is the (lower) median: the run the report shows in full.
pub fn median_index(values: &[f64]) -> usize {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    idx.get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// SplitMix64: a small, fast, seedable generator, so that every run of a workload makes the
/// same choices and writes the same file contents.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with mean `mean` (the gaps of a Poisson process).
    pub fn exponential(&mut self, mean: Duration) -> Duration {
        let u = self.unit();
        mean.mul_f64(-(1.0 - u).ln())
    }

    /// Fills `buf` with random octets.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = ms(&(1..=100).rev().collect::<Vec<_>>());
        let l = latency(&mut s).expect("samples");
        assert_eq!(l.samples, 100);
        assert_eq!(l.p50_us, 50_000.0);
        assert_eq!(l.p90_us, 90_000.0);
        assert_eq!(l.p99_us, 99_000.0);
        assert_eq!(l.max_us, 100_000.0);

        let mut one = ms(&[7]);
        let l = latency(&mut one).expect("samples");
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (7000.0, 7000.0, 7000.0));
        assert!(latency(&mut []).is_none());
    }

    #[test]
    fn a_slow_tail_shows_in_p99_not_p50() {
        let mut s = ms(&[1; 985]);
        s.extend(ms(&[500; 15]));
        let l = latency(&mut s).expect("samples");
        assert_eq!(l.p50_us, 1000.0);
        assert_eq!(l.p99_us, 500_000.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median_index(&[3.0, 1.0, 2.0]), 2);
        assert_eq!(median_index(&[5.0, 1.0]), 1);
        assert_eq!(median_index(&[]), 0);
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(2).next_u64(), xs[0]);

        let mut buf = [0u8; 13];
        Rng::new(3).fill(&mut buf);
        assert!(buf.iter().filter(|&&b| b == 0).count() < 4, "{buf:?}");

        let mut r = Rng::new(4);
        let mean = Duration::from_millis(100);
        let n = 20_000;
        let total: Duration = (0..n).map(|_| r.exponential(mean)).sum();
        let avg = total.as_secs_f64() / n as f64;
        assert!((0.09..0.11).contains(&avg), "mean gap {avg}");
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
