//! PPO (Schulman et al. 2017) for language models, as in Ouyang et al. 2022: a scalar value head
//! on the policy's final hidden states estimates each state's return, GAE (Schulman et al. 2016)
//! turns those estimates and the reward into per-token advantages, and the value head is trained
//! with a clipped regression loss next to the clipped policy surrogate.
//!
//! The episode is the sequence of the policy's own tokens (environment tokens are context, not
//! actions); the verifier's reward arrives at the last of them, every other step's reward is 0.
//! The KL to the reference and the aggregation are the shared options of
//! [`TrainConfig`](super::TrainConfig), applied as a loss term as in GRPO.
//!
//! One update ([`Trainer::update`] with `algorithm = "ppo"`) reads top to bottom in `update`
//! below: the rows, the old log-probs and values, the [`advantages`] (GAE, whitened), the loss
//! of each minibatch ([`loss::policy_term`] plus the [`value_loss`]), the metrics. The minibatch
//! loop and the optimiser step are the [`Trainer`]'s, shared with GRPO.
//!
//! Metrics: those of GRPO (`loss/policy`, `loss/kl`, `train/clip_frac`, the rows' counts, the
//! optimisation's), plus `loss/value`.

use super::{Row, TrainError, Trainer, loss};
use crate::lm::LmPolicy;
use burn::tensor::Tensor;
use loss::Aggregation;
use rlvr_engine::Group;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// PPO's own settings (`[train.ppo]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Discount per token. Default 1.0 (the reward is the episode's outcome).
    pub gamma: f64,
    /// GAE's lambda: 1.0 is the Monte-Carlo return, 0.0 one-step bootstrapping. Default 0.95.
    pub lambda: f64,
    /// How far a value may move from its old estimate before its loss is clipped. Default 0.2.
    pub value_clip: f32,
    /// Weight of the value loss. Default 0.5.
    pub value_coef: f32,
    /// Normalise advantages to zero mean and unit variance over the batch. Default true.
    pub whiten: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self { gamma: 1.0, lambda: 0.95, value_clip: 0.2, value_coef: 0.5, whiten: true }
    }
}

/// One PPO update of `policy` from the scored `groups` of iteration `iteration`; what
/// [`Trainer::update`] runs when `algorithm = "ppo"`.
pub(super) fn update(
    t: &mut Trainer,
    policy: &mut LmPolicy,
    groups: &[Group],
    iteration: u64,
) -> Result<BTreeMap<String, f64>, TrainError> {
    // Rows: every scored sample, none left out for its advantage, which GAE fills in once the
    // values are known.
    let (mut rows, mut metrics) = t.rows(policy, groups, |rewards| vec![0.0; rewards.len()], false);
    if rows.is_empty() {
        return Ok(metrics);
    }
    // Old log-probs and values: a no-grad pass of the model before the update.
    t.scoring_pass(policy, &mut rows, policy.options.sampling.temperature)?;
    // Advantages and the value head's targets.
    let c = t.config.clone();
    advantages(&mut rows, &c.ppo);
    // Loss: the policy term GRPO uses, plus the clipped value loss.
    let (kl, norm_len) = (t.reference.is_some(), t.norm_len);
    t.optimise(policy, &rows, iteration, false, &mut metrics, |b, m| {
        let ref_logp = kl.then(|| b.col(|r| &r.ref_logp));
        let adv = b.col(|r| &r.advantages);
        let term = loss::policy_term(b.logp.clone(), b.old_logp.clone(), adv, ref_logp, b.mask.clone(), &c, norm_len);
        let mut total = term.loss;
        if let Some(values) = b.values.clone() {
            let vl = value_loss(values, b.col(|r| &r.old_values), b.col(|r| &r.returns), c.ppo.value_clip);
            let vl = loss::aggregate(vl, b.mask.clone(), Aggregation::TokenMean, 0.0);
            m.add("loss/value", f64::from(vl.clone().detach().into_scalar::<f32>()));
            total = total + vl.mul_scalar(c.ppo.value_coef);
        }
        // Metrics.
        tracing::debug!(iteration, epoch = b.epoch, loss = term.policy, "policy loss of a minibatch");
        if let Some(kl) = term.kl {
            m.add("loss/kl", kl);
        }
        m.add("loss/policy", term.policy);
        m.add("train/clip_frac", term.clip_frac);
        total
    })?;
    Ok(metrics)
}

/// Fills each row's per-token `advantages` and `returns` by [`gae`] over its policy tokens, in
/// order, from its `old_values` and its reward (on the last); with `whiten`, the advantages of
/// every loss token of the batch are then [`whiten`]ed together.
pub fn advantages(rows: &mut [Row], config: &PpoConfig) {
    for row in rows.iter_mut() {
        // The episode's steps are its policy tokens, in order; the reward sits on the last.
        let idx: Vec<usize> = (0..row.mask.len()).filter(|&t| row.mask[t] > 0.0).collect();
        let values: Vec<f64> = idx.iter().map(|&t| f64::from(row.old_values[t])).collect();
        let (adv, ret) = gae(&values, f64::from(row.reward), config.gamma, config.lambda);
        row.returns = vec![0.0; row.mask.len()];
        for (k, &t) in idx.iter().enumerate() {
            row.advantages[t] = adv[k] as f32;
            row.returns[t] = ret[k] as f32;
        }
    }
    if config.whiten {
        let mut all: Vec<f64> = rows
            .iter()
            .flat_map(|r| r.mask.iter().zip(&r.advantages).filter(|(m, _)| **m > 0.0).map(|(_, a)| f64::from(*a)))
            .collect();
        whiten(&mut all);
        let mut it = all.into_iter();
        for row in rows.iter_mut() {
            for t in 0..row.mask.len() {
                if row.mask[t] > 0.0 {
                    row.advantages[t] = it.next().unwrap_or(0.0) as f32;
                }
            }
        }
    }
}

/// GAE over one episode of `values.len()` steps whose only reward, `reward`, comes at the last
/// step; the state after it is terminal (value 0). Returns the advantages and the returns
/// (advantage + value, the value head's targets).
///
/// `δ_t = r_t + γ V_{t+1} - V_t`, `A_t = δ_t + γ λ A_{t+1}`.
pub fn gae(values: &[f64], reward: f64, gamma: f64, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let n = values.len();
    let mut adv = vec![0.0; n];
    let mut next_value = 0.0;
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let r = if t + 1 == n { reward } else { 0.0 };
        let delta = r + gamma * next_value - values[t];
        next_adv = delta + gamma * lambda * next_adv;
        adv[t] = next_adv;
        next_value = values[t];
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Shifts and scales `xs` to zero mean and unit variance (population variance).
pub fn whiten(xs: &mut [f64]) {
    if xs.len() < 2 {
        return;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    let scale = 1.0 / (var.sqrt() + 1e-8);
    xs.iter_mut().for_each(|x| *x = (*x - mean) * scale);
}

/// The clipped value loss per token: `½ max((V - R)², (V_old + clip(V - V_old, ±c) - R)²)`.
pub fn value_loss(values: Tensor<2>, old_values: Tensor<2>, returns: Tensor<2>, clip: f32) -> Tensor<2> {
    let clipped = old_values.clone() + (values.clone() - old_values).clamp(-clip, clip);
    let plain = (values - returns.clone()).square();
    let cut = (clipped - returns).square();
    plain.max_pair(cut).mul_scalar(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn gae_by_hand() {
        // Three steps, values 0.5, 0.25, 0.75, reward 1 at the end, gamma 1, lambda 0.5:
        // δ2 = 1 - 0.75 = 0.25; δ1 = 0.75 - 0.25 = 0.5; δ0 = 0.25 - 0.5 = -0.25
        // A2 = 0.25; A1 = 0.5 + 0.5·0.25 = 0.625; A0 = -0.25 + 0.5·0.625 = 0.0625
        let (adv, ret) = gae(&[0.5, 0.25, 0.75], 1.0, 1.0, 0.5);
        close(&adv, &[0.0625, 0.625, 0.25]);
        close(&ret, &[0.5625, 0.875, 1.0]);
        // lambda 1, gamma 1: every advantage is the reward minus that step's value.
        let (adv, ret) = gae(&[0.5, 0.25, 0.75], 1.0, 1.0, 1.0);
        close(&adv, &[0.5, 0.75, 0.25]);
        close(&ret, &[1.0, 1.0, 1.0]);
        // gamma 0.5, lambda 0: one-step TD errors with discounting.
        let (adv, _) = gae(&[0.5, 0.25, 0.75], 1.0, 0.5, 0.0);
        close(&adv, &[0.5 * 0.25 - 0.5, 0.5 * 0.75 - 0.25, 0.25]);
    }

    #[test]
    fn whitening_gives_zero_mean_unit_variance() {
        let mut xs = vec![1.0, 2.0, 3.0, 6.0];
        whiten(&mut xs);
        let mean: f64 = xs.iter().sum::<f64>() / 4.0;
        let var: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-6, "{xs:?}");
    }

    #[test]
    fn value_loss_clips_moves_away_from_the_old_estimate() {
        let t =
            |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &crate::tests::test_device());
        // Returns 1. Token 0: V moved 0 -> 0.5 (clipped to 0.2): max(0.25, 0.64)/2 = 0.32.
        // Token 1: V moved 0.9 -> 1.0, inside the clip: max(0, 0)/2 = 0.
        // Token 2: V moved 1.5 -> 0.5 (clipped to 1.3): max(0.25, 0.09)/2 = 0.125.
        let loss = value_loss(t(&[0.5, 1.0, 0.5]), t(&[0.0, 0.9, 1.5]), t(&[1.0, 1.0, 1.0]), 0.2);
        let got: Vec<f32> = loss.into_data().try_into_vec().unwrap();
        for (g, w) in got.iter().zip([0.32f32, 0.0, 0.125]) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
