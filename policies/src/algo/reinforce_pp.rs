//! REINFORCE++ (Hu 2025, "REINFORCE++: A Simple and Efficient Approach for Aligning Large
//! Language Models"): no value model and no group baseline. The KL to the reference is a
//! per-token penalty folded into the reward, each token's advantage is its return (the sum of
//! the rewards from it to the episode's end), and the advantages of the whole batch are
//! normalised together: the global batch is the baseline. The policy loss is PPO's clipped
//! surrogate, with no separate KL term.
//!
//! Per policy token `t` of a sample with reward `R`, `kl_coef = β` and the k1 estimate
//! `kl_t = log π_old(y_t) - log π_ref(y_t)`:
//!
//! ```text
//! r_t = -β·kl_t  (+ R on the last token),   G_t = Σ_{s ≥ t} r_s,   A = whiten(G) over the batch
//! ```
//!
//! One update ([`Trainer::update`] with `algorithm = "reinforce++"`) reads top to bottom in
//! `update` below. With `kl_coef = 0` it needs no reference and `G_t = R` on every token.
//!
//! Metrics: `loss/policy`, `train/clip_frac`, `train/kl_reward` (the mean `kl_t` over loss
//! tokens, with a reference), and the shared rows' and optimisation's counts.

use super::{TrainError, Trainer, loss, ppo};
use crate::lm::LmPolicy;
use rlvr_engine::Group;
use std::collections::BTreeMap;

/// One REINFORCE++ update of `policy` from the scored `groups` of iteration `iteration`.
pub(super) fn update(
    t: &mut Trainer,
    policy: &mut LmPolicy,
    groups: &[Group],
    iteration: u64,
) -> Result<BTreeMap<String, f64>, TrainError> {
    // Rows: every scored sample; the advantages come from the whole batch below.
    let (mut rows, mut metrics) = t.rows(policy, groups, |rewards| vec![0.0; rewards.len()], false);
    if rows.is_empty() {
        return Ok(metrics);
    }
    // Old log-probs (and the reference's, when kl_coef > 0): a no-grad pass before the update.
    t.scoring_pass(policy, &mut rows, policy.options.sampling.temperature)?;
    let c = t.config.clone();
    let with_kl = t.reference.is_some();
    // Per-token returns with the KL penalty in the reward, then whitened over the batch.
    let (mut all, mut kls) = (Vec::new(), Vec::new());
    for row in &rows {
        let idx: Vec<usize> = (0..row.mask.len()).filter(|&k| row.mask[k] > 0.0).collect();
        let kl: Vec<f64> = if with_kl {
            idx.iter().map(|&k| f64::from(row.old_logp[k] - row.ref_logp[k])).collect()
        } else {
            vec![0.0; idx.len()]
        };
        kls.extend_from_slice(&kl);
        all.extend(returns(&kl, f64::from(row.reward), f64::from(c.kl_coef)));
    }
    ppo::whiten(&mut all);
    let mut it = all.into_iter();
    for row in rows.iter_mut() {
        for k in 0..row.mask.len() {
            row.advantages[k] = if row.mask[k] > 0.0 { it.next().unwrap_or(0.0) as f32 } else { 0.0 };
        }
    }
    if with_kl {
        metrics.insert("train/kl_reward".into(), kls.iter().sum::<f64>() / kls.len().max(1) as f64);
    }
    // Loss: the clipped surrogate alone (the KL is already in the advantages).
    let norm_len = t.norm_len;
    t.optimise(policy, &rows, iteration, false, &mut metrics, |b, m| {
        let adv = b.col(|r| &r.advantages);
        let term = loss::policy_term(b.logp.clone(), b.old_logp.clone(), adv, None, b.mask.clone(), &c, norm_len);
        m.add("loss/policy", term.policy);
        m.add("train/clip_frac", term.clip_frac);
        term.loss
    })?;
    Ok(metrics)
}

/// The returns of one episode's policy tokens: each token is rewarded `-coef·kl[t]`, the last
/// also `reward`, and a token's return is the sum of the rewards from it to the end (no
/// discount).
pub fn returns(kl: &[f64], reward: f64, coef: f64) -> Vec<f64> {
    let mut out = vec![0.0; kl.len()];
    let mut acc = 0.0;
    for t in (0..kl.len()).rev() {
        acc += -coef * kl[t] + if t + 1 == kl.len() { reward } else { 0.0 };
        out[t] = acc;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_sum_the_kl_penalties_to_the_end_and_the_reward_at_it() {
        // kl = [0.5, -0.25, 1.0], β = 0.1, R = 1: rewards -0.05, +0.025, 1 - 0.1.
        let r = returns(&[0.5, -0.25, 1.0], 1.0, 0.1);
        let want = [0.9 + 0.025 - 0.05, 0.9 + 0.025, 0.9];
        for (g, w) in r.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{r:?}");
        }
        // Without the penalty every token's return is the reward.
        assert_eq!(returns(&[3.0, 3.0], 0.5, 0.0), vec![0.5, 0.5]);
        assert!(returns(&[], 1.0, 0.1).is_empty());
    }

    #[test]
    fn the_algorithm_is_named_as_the_paper_names_it() {
        use super::super::Algorithm;
        for (name, a) in [
            ("reinforce++", Algorithm::ReinforcePp),
            ("gspo", Algorithm::Gspo),
            ("cispo", Algorithm::Cispo),
            ("grpo", Algorithm::Grpo),
        ] {
            assert_eq!(serde_json::from_value::<Algorithm>(serde_json::json!(name)).unwrap(), a);
        }
    }
}
