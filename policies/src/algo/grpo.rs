//! GRPO (Shao et al. 2024, DeepSeekMath): no value model; each sample's advantage is its reward
//! measured against the other samples of its task.
//!
//! Options, each a line of [`GrpoConfig`]:
//! - the baseline: the group mean, or the mean of the *other* samples (RLOO, Ahmadian et al. 2024),
//!   which makes the estimate unbiased;
//! - scaling by the group's standard deviation (on by default, as in GRPO; off as in Dr. GRPO,
//!   Liu et al. 2025, which shows the scaling over-weights near-solved and near-hopeless tasks);
//! - everything the shared loss offers ([`TrainConfig`](super::TrainConfig)): separate low and high
//!   clip, the KL estimator and its coefficient, the aggregation.
//!
//! The advantage is the same for every token of a sample; only the policy's tokens carry loss.
//!
//! One update ([`Trainer::update`] with `algorithm = "grpo"`) reads top to bottom in `update`
//! below: the rows with their [`advantages`], the old log-probs, the loss of each minibatch
//! ([`loss::policy_term`]), the metrics. The minibatch loop and the optimiser step are the
//! [`Trainer`]'s, shared with PPO.
//!
//! Metrics: `loss/policy`, `loss/kl` (with a reference), `train/clip_frac`; the rows' counts
//! (`train/rows`, `train/tokens`, `train/unscored`, `train/overlong_filtered`,
//! `train/zero_advantage`) and the optimisation's (`train/lr`, `train/sampler_logp_gap`,
//! `train/entropy`, `train/approx_kl_old`, `train/grad_norm`).

use super::{Minibatch, Row, TrainError, Trainer, loss, pad2, prefix, unpad2};
use crate::lm::LmPolicy;
use burn::tensor::Tensor;
use rlvr_engine::Group;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a sample's reward is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// The mean reward of the whole group, the sample included (GRPO).
    #[default]
    Mean,
    /// The mean reward of the group's other samples (RLOO).
    LeaveOneOut,
}

/// GRPO's own settings (`[train.grpo]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    /// The baseline. Default `mean`.
    pub baseline: Baseline,
    /// Divide advantages by the group's standard deviation. Default true; false is Dr. GRPO.
    pub scale_std: bool,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self { baseline: Baseline::Mean, scale_std: true }
    }
}

/// One GRPO update of `policy` from the scored `groups` of iteration `iteration`; what
/// [`Trainer::update`] runs when `algorithm = "grpo"`.
pub(super) fn update(
    t: &mut Trainer,
    policy: &mut LmPolicy,
    groups: &[Group],
    iteration: u64,
) -> Result<BTreeMap<String, f64>, TrainError> {
    // Rows, each with its sample's group-relative advantage on every loss token.
    let (mut rows, mut metrics) = rows(t, policy, groups);
    if rows.is_empty() {
        return Ok(metrics);
    }
    // Old log-probs. One optimiser step over the whole batch with nothing else to score takes
    // them from the training forward, detached, and skips the separate no-grad pass (a quarter
    // of the update's compute).
    let c = t.config.clone();
    let one_pass = c.epochs == 1 && (c.minibatch == 0 || c.minibatch >= rows.len()) && t.reference.is_none();
    if !one_pass {
        t.scoring_pass(policy, &mut rows, policy.options.sampling.temperature)?;
    }
    // Loss: the clipped surrogate, plus the KL term when there is a reference.
    let (kl, norm_len) = (t.reference.is_some(), t.norm_len);
    t.optimise(policy, &rows, iteration, one_pass, &mut metrics, |b, m| {
        let ref_logp = kl.then(|| b.col(|r| &r.ref_logp));
        let adv = b.col(|r| &r.advantages);
        // Prefix-RFT: the highest-entropy forced tokens join the sampled ones in the loss.
        let mask = match prefix_mask(b, c.prefix.entropy_top) {
            Some((extra, trained)) => {
                m.add("train/forced_trained_share", trained);
                b.mask.clone() + extra
            }
            None => b.mask.clone(),
        };
        let term = loss::policy_term(b.logp.clone(), b.old_logp.clone(), adv, ref_logp, mask, &c, norm_len);
        // Metrics.
        tracing::debug!(iteration, epoch = b.epoch, loss = term.policy, "policy loss of a minibatch");
        if let Some(kl) = term.kl {
            m.add("loss/kl", kl);
        }
        m.add("loss/policy", term.policy);
        m.add("train/clip_frac", term.clip_frac);
        term.loss
    })?;
    Ok(metrics)
}

/// The forced tokens of the minibatch `b` that carry loss ([`prefix::entropy_mask`] under the
/// training forward's entropies), as a mask to add to the sampled tokens', and the share of the
/// forced tokens it keeps; `None` when no row of `b` has a forced token.
fn prefix_mask(b: &Minibatch<'_>, top: f64) -> Option<(Tensor<2>, f64)> {
    if b.rows.iter().all(|r| r.forced.iter().all(|&f| f == 0.0)) {
        return None;
    }
    let lens: Vec<usize> = b.rows.iter().map(|r| r.mask.len()).collect();
    let entropy = unpad2(b.entropy.clone().detach(), &lens);
    let forced: Vec<Vec<f32>> = b.rows.iter().map(|r| r.forced.clone()).collect();
    let keep = prefix::entropy_mask(&entropy, &forced, top);
    let total: f32 = forced.iter().flatten().sum();
    let kept: f32 = keep.iter().flatten().sum();
    let rows: Vec<&[f32]> = keep.iter().map(Vec::as_slice).collect();
    Some((pad2(&rows, b.width, &b.device), f64::from(kept / total)))
}

/// The training rows of `groups`, each loss token carrying its sample's [`advantages`]. A row
/// whose advantage is 0 has no gradient unless the KL term is on, and is then left out
/// (`train/zero_advantage`); this also keeps it out of the token-mean's denominator.
pub(super) fn rows(t: &Trainer, policy: &LmPolicy, groups: &[Group]) -> (Vec<Row>, BTreeMap<String, f64>) {
    if t.config.algorithm == super::Algorithm::Rft {
        // Rejection sampling: weight 1 on the samples that pass, and only those are kept.
        let threshold = t.config.rft_threshold;
        return t.rows(
            policy,
            groups,
            |rewards| rewards.iter().map(|&r| f64::from(u8::from(r >= threshold))).collect(),
            true,
        );
    }
    t.rows(policy, groups, |rewards| advantages(rewards, &t.config.grpo), t.reference.is_none())
}

/// Added to the standard deviation so that a group whose rewards barely differ does not blow up.
pub const STD_EPS: f64 = 1e-6;

/// The advantages of one group's rewards.
///
/// The standard deviation is the sample one (divisor `n - 1`), as TRL and the GRPO paper's code
/// compute it. A group whose rewards are all equal gets zero advantages under every option: it
/// has no signal. A group of one has no baseline and gets zero.
pub fn advantages(rewards: &[f64], config: &GrpoConfig) -> Vec<f64> {
    let n = rewards.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let sum: f64 = rewards.iter().sum();
    let mean = sum / n as f64;
    let centred: Vec<f64> = match config.baseline {
        Baseline::Mean => rewards.iter().map(|r| r - mean).collect(),
        Baseline::LeaveOneOut => rewards.iter().map(|r| r - (sum - r) / (n - 1) as f64).collect(),
    };
    if !config.scale_std {
        return centred;
    }
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    centred.into_iter().map(|a| a / (std + STD_EPS)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
        }
    }

    const ONE_OF_FOUR: [f64; 4] = [1.0, 0.0, 0.0, 0.0];

    #[test]
    fn mean_baseline_with_and_without_std_scaling() {
        // mean 0.25; sample std sqrt((0.75² + 3·0.25²) / 3) = 0.5
        let plain = GrpoConfig { scale_std: false, ..GrpoConfig::default() };
        close(&advantages(&ONE_OF_FOUR, &plain), &[0.75, -0.25, -0.25, -0.25]);
        close(&advantages(&ONE_OF_FOUR, &GrpoConfig::default()), &[1.5, -0.5, -0.5, -0.5]);
    }

    #[test]
    fn leave_one_out_compares_with_the_others() {
        // 1 - mean(0, 0, 0) = 1; 0 - mean(1, 0, 0) = -1/3
        let rloo = GrpoConfig { baseline: Baseline::LeaveOneOut, scale_std: false };
        close(&advantages(&ONE_OF_FOUR, &rloo), &[1.0, -1.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0]);
        // RLOO's advantages are the mean-baseline ones times n / (n - 1).
        let scaled = GrpoConfig { baseline: Baseline::LeaveOneOut, scale_std: true };
        close(&advantages(&ONE_OF_FOUR, &scaled), &[2.0, -2.0 / 3.0, -2.0 / 3.0, -2.0 / 3.0]);
    }

    #[test]
    fn flat_groups_and_singletons_have_no_signal() {
        for config in [
            GrpoConfig::default(),
            GrpoConfig { scale_std: false, ..GrpoConfig::default() },
            GrpoConfig { baseline: Baseline::LeaveOneOut, scale_std: true },
        ] {
            close(&advantages(&[0.7; 5], &config), &[0.0; 5]);
            close(&advantages(&[1.0], &config), &[0.0]);
        }
    }
}
