//! Seeds derived from the run seed and a position, never from a shared random stream.
//!
//! Every random choice in a run (which task, which environment seed, which sampling seed) is a
//! pure function of the run seed and the indices that name the choice. A run therefore gives the
//! same result whatever order the threads finish in, and a resumed run continues exactly where an
//! uninterrupted one would be.

/// Mixes `parts` into `seed` with SplitMix64 finalisers. Different orders of the same parts give
/// different seeds; `derive(s, &[])` is a (bijective) scramble of `s`.
pub fn derive(seed: u64, parts: &[u64]) -> u64 {
    let mut h = mix(seed ^ 0x243F_6A88_85A3_08D3);
    for &p in parts {
        h = mix(h ^ mix(p.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    }
    h
}

/// The SplitMix64 output function: a bijection on u64 with good avalanche.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Named streams, so that the seed of (iteration 3, task 5) for choosing tasks differs from the
/// seed of the same indices for resetting an environment.
pub mod stream {
    /// Shuffles of a dataset's order, per epoch.
    pub const TASK_ORDER: u64 = 1;
    /// `Environment::reset` seeds, per (iteration, task, sample).
    pub const ENV: u64 = 2;
    /// Sampling seeds, per (iteration, task, sample, turn).
    pub const SAMPLE: u64 = 3;
    /// Evaluation episodes.
    pub const EVAL: u64 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_value_of_parts_matter() {
        assert_ne!(derive(1, &[2, 3]), derive(1, &[3, 2]));
        assert_ne!(derive(1, &[2]), derive(2, &[2]));
        assert_ne!(derive(0, &[0]), derive(0, &[0, 0]));
        assert_eq!(derive(7, &[1, 2]), derive(7, &[1, 2]));
    }
}
