//! Prefix-RFT (Huang et al. 2025, "Blending Supervised and Reinforcement Fine-Tuning with Prefix
//! Sampling"): some samples of each group start from a prefix of the gold demonstration and the
//! policy writes the rest; the whole answer is scored with the others and shares their group's
//! advantage.
//!
//! The three parts, each a pure function here:
//! - [`PrefixConfig::share`]: how much of the gold answer the prefix holds, on a cosine from
//!   `start` at the first iteration to `end` at the last, so that guidance anneals away and the
//!   policy ends up writing whole answers;
//! - [`cut`]: the prefix itself, that share of the answer's characters. The runner encodes it
//!   with the policy's tokenizer, writes it into the policy's turn, and marks its tokens as
//!   forced (`Trajectory::forced`); the policy continues from there;
//! - [`entropy_mask`]: which forced tokens carry loss. They were not sampled by the policy, so
//!   their gradient is imitation weighted by the advantage; the paper keeps it on the share
//!   `entropy_top` of each prefix's tokens where the policy is least sure (highest entropy),
//!   so that confident tokens the policy already writes are not pushed further. The sampled
//!   continuation trains as in GRPO.
//!
//! The forced tokens enter the same clipped surrogate as the sampled ones (GRPO's, or GSPO's or
//! CISPO's): their old log-probs are the policy's own before the update, like every token's.
//! Evaluation is never guided.

use serde::{Deserialize, Serialize};

/// `[train.prefix]`: Prefix-RFT's settings. `samples = 0` (the default) turns it off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrefixConfig {
    /// Samples of each group guided by a gold prefix (the first ones by sample index); the
    /// others are ordinary rollouts. Must leave at least one unguided. Default 0 (off).
    pub samples: u32,
    /// The prefix's share of the gold answer at the first iteration. Default 0.95.
    pub start: f64,
    /// Its share at the last iteration. Default 0: the last iterations are unguided.
    pub end: f64,
    /// Share of each prefix's tokens that carry loss, the highest-entropy ones; 0 trains only
    /// the continuation. Default 0.2, as in the paper.
    pub entropy_top: f64,
}

impl Default for PrefixConfig {
    fn default() -> Self {
        Self { samples: 0, start: 0.95, end: 0.0, entropy_top: 0.2 }
    }
}

impl PrefixConfig {
    /// Whether Prefix-RFT is on.
    pub fn on(&self) -> bool {
        self.samples > 0
    }

    /// Checks the shares; `Err` says which setting is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if !(unit(self.start) && unit(self.end) && unit(self.entropy_top)) {
            return Err("prefix.start, prefix.end and prefix.entropy_top must be in [0, 1]".into());
        }
        Ok(())
    }

    /// The prefix's share of the gold answer at `iteration` (from 0) of `iterations`: a cosine
    /// from `start` to `end`.
    pub fn share(&self, iteration: u64, iterations: u64) -> f64 {
        if iterations < 2 {
            return self.start;
        }
        let t = (iteration.min(iterations - 1)) as f64 / (iterations - 1) as f64;
        self.end + (self.start - self.end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// The first `share` of `answer`'s characters (rounded down), cut on a character boundary.
pub fn cut(answer: &str, share: f64) -> &str {
    let n = answer.chars().count();
    let keep = ((share.clamp(0.0, 1.0) * n as f64).floor() as usize).min(n);
    match answer.char_indices().nth(keep) {
        Some((at, _)) => &answer[..at],
        None => answer,
    }
}

/// Per row, 1.0 on the forced positions that carry loss: the `ceil(top * n)` of the row's `n`
/// forced positions (`forced[i] > 0`) with the highest `entropy` (ties to the earlier
/// position); 0 elsewhere. Rows are per predicted token, like every column of a minibatch.
pub fn entropy_mask(entropy: &[Vec<f32>], forced: &[Vec<f32>], top: f64) -> Vec<Vec<f32>> {
    entropy
        .iter()
        .zip(forced)
        .map(|(h, f)| {
            let mut at: Vec<usize> = (0..f.len().min(h.len())).filter(|&i| f[i] > 0.0).collect();
            let keep = (top.clamp(0.0, 1.0) * at.len() as f64).ceil() as usize;
            // Stable: equal entropies keep their order, so the earlier position wins.
            at.sort_by(|&a, &b| h[b].total_cmp(&h[a]));
            let mut mask = vec![0.0; h.len()];
            for &i in &at[..keep.min(at.len())] {
                mask[i] = 1.0;
            }
            mask
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_falls_on_a_cosine_from_start_to_end() {
        let c = PrefixConfig { samples: 1, start: 0.9, end: 0.1, entropy_top: 0.2 };
        assert_eq!(c.share(0, 5), 0.9);
        // Halfway the cosine is at its middle: (0.9 + 0.1) / 2.
        assert!((c.share(2, 5) - 0.5).abs() < 1e-12);
        // A quarter of the way: 0.1 + 0.8 * (1 + cos(pi/4)) / 2 = 0.1 + 0.4 * 1.7071 = 0.7828.
        assert!((c.share(1, 5) - 0.782_842_712).abs() < 1e-8);
        assert!((c.share(4, 5) - 0.1).abs() < 1e-12);
        // Past the end, and a run of one iteration.
        assert!((c.share(9, 5) - 0.1).abs() < 1e-12);
        assert_eq!(c.share(0, 1), 0.9);
    }

    #[test]
    fn the_prefix_is_cut_on_characters() {
        assert_eq!(cut("<answer>27</answer>", 0.5), "<answer>2");
        assert_eq!(cut("<answer>27</answer>", 0.0), "");
        assert_eq!(cut("<answer>27</answer>", 1.0), "<answer>27</answer>");
        // 4 characters of 5 (0.8 x 5); "é" is two bytes and is not split.
        assert_eq!(cut("caféé", 0.8), "café");
        assert_eq!(cut("é", 0.99), "");
        assert_eq!(cut("", 0.5), "");
    }

    #[test]
    fn the_highest_entropy_forced_tokens_carry_loss() {
        let entropy = vec![vec![0.5, 2.0, 0.1, 1.0, 3.0, 9.0], vec![1.0, 1.0, 1.0, 0.0]];
        // Row 0: positions 0-4 forced, 5 sampled (its high entropy does not count).
        // Row 1: positions 0-2 forced, all equal.
        let forced = vec![vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0], vec![1.0, 1.0, 1.0, 0.0]];
        // ceil(0.2 * 5) = 1: position 4 (3.0); ceil(0.2 * 3) = 1: the earliest of the ties.
        assert_eq!(
            entropy_mask(&entropy, &forced, 0.2),
            vec![vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0, 0.0]]
        );
        // ceil(0.5 * 5) = 3: 3.0, 2.0, 1.0.
        assert_eq!(entropy_mask(&entropy, &forced, 0.5)[0], vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        // 0 trains no forced token; 1 trains them all.
        assert_eq!(entropy_mask(&entropy, &forced, 0.0)[0], vec![0.0; 6]);
        assert_eq!(entropy_mask(&entropy, &forced, 1.0)[1], vec![1.0, 1.0, 1.0, 0.0]);
        // A row with nothing forced.
        assert_eq!(entropy_mask(&[vec![1.0, 2.0]], &[vec![]], 0.2), vec![vec![0.0, 0.0]]);
    }

    #[test]
    fn bad_shares_are_refused() {
        for bad in [
            PrefixConfig { start: 1.5, ..PrefixConfig::default() },
            PrefixConfig { end: -0.1, ..PrefixConfig::default() },
            PrefixConfig { entropy_top: f64::NAN, ..PrefixConfig::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(PrefixConfig::default().validate().is_ok());
    }
}
