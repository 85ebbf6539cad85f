//! File contents described by a length and a seed: the octets are generated on demand, so a
//! session of many MiB shrinks and prints as a few numbers.

use std::fmt;

use proptest::prelude::*;

/// `len` pseudo-random octets from `seed` (seed 0: the readable pattern `i mod 251`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Content {
    /// Length in octets.
    pub len: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Content {
    /// A content.
    pub const fn new(len: usize, seed: u64) -> Self {
        Self { len, seed }
    }

    /// The octets.
    pub fn bytes(&self) -> Vec<u8> {
        if self.seed == 0 {
            return (0..self.len).map(|i| (i % 251) as u8).collect();
        }
        let mut out = Vec::with_capacity(self.len + 8);
        let mut x = self.seed;
        while out.len() < self.len {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            out.extend_from_slice(&z.to_le_bytes());
        }
        out.truncate(self.len);
        out
    }

    /// The length as a `u64`.
    pub fn size(&self) -> u64 {
        self.len as u64
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} octets #{}", self.len, self.seed)
    }
}

/// Contents from empty to several MiB, biased small; some cross `max-eager` and `max-chunk`
/// (1 MiB).
pub fn content() -> impl Strategy<Value = Content> {
    let len = prop_oneof![
        2 => Just(0usize),
        10 => 1usize..=64,
        5 => 65usize..=16 * 1024,
        2 => 16 * 1024 + 1..=(1usize << 20) + 70_000,
        1 => (1usize << 20) + 70_000..=4 << 20,
        // `max-eager` and `max-chunk` (1 MiB) and the neighbours of both.
        1 => proptest::sample::select(&[(1usize << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20][..]),
    ];
    (len, 0u64..1000).prop_map(|(len, seed)| Content::new(len, seed))
}

/// Small contents (up to 64 KiB), for pipelined batches and fixtures.
pub fn small_content() -> impl Strategy<Value = Content> {
    let len = prop_oneof![1 => Just(0usize), 6 => 1usize..=64, 2 => 65usize..=64 * 1024];
    (len, 0u64..1000).prop_map(|(len, seed)| Content::new(len, seed))
}
