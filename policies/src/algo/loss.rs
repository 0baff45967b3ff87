//! The pieces every policy-gradient loss here is built from, as pure functions of tensors:
//! the clipped importance-ratio surrogate, the KL estimators, the ways per-token losses become
//! one number, and [`policy_term`], the policy loss GRPO and PPO share. Each is tested on small
//! inputs against values worked out by hand.
//!
//! All tensors are `[rows, tokens]`: one row per sequence, one column per predicted token. A
//! `mask` is 1.0 where a token carries loss (the policy sampled it and its row is kept) and 0.0
//! elsewhere (prompt, environment output, padding, filtered rows); masked tokens contribute
//! nothing to any value or gradient.

use super::{Algorithm, TrainConfig};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which estimator of KL(policy || reference) a token's penalty uses, following Schulman's
/// "Approximating KL divergence" (2020). With `d = log p_ref - log p` for a token sampled from
/// the policy:
/// - `k1 = -d`: unbiased, high variance, can be negative;
/// - `k2 = d² / 2`: biased, low variance, always positive;
/// - `k3 = exp(d) - d - 1`: unbiased and always positive (GRPO's choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// `log p - log p_ref`.
    K1,
    /// `(log p - log p_ref)² / 2`.
    K2,
    /// `exp(log p_ref - log p) - (log p_ref - log p) - 1`.
    #[default]
    K3,
}

/// How per-token losses are averaged into the batch loss. The choice sets how much each token
/// weighs: long and short answers are not treated alike by the first two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// Sum over every loss token of the batch, divided by their count: every token weighs the
    /// same (DAPO).
    #[default]
    TokenMean,
    /// Mean over each row's tokens, then mean over rows: every sequence weighs the same, so a
    /// token of a short answer weighs more (the original GRPO).
    SeqMeanTokenMean,
    /// Sum over each row's tokens divided by a constant length, then mean over rows: no length
    /// bias in either direction (Dr. GRPO).
    SeqMeanTokenSumNorm,
}

/// The per-token KL penalty estimate for tokens sampled from the policy.
pub fn kl_per_token(logp: Tensor<2>, ref_logp: Tensor<2>, estimator: KlEstimator) -> Tensor<2> {
    match estimator {
        KlEstimator::K1 => logp - ref_logp,
        KlEstimator::K2 => (logp - ref_logp).square().mul_scalar(0.5),
        KlEstimator::K3 => {
            let d = ref_logp - logp;
            d.clone().exp() - d - 1.0
        }
    }
}

/// PPO's clipped surrogate, per token, with separate clip sides (DAPO's clip-higher): the loss
/// is `max(-A·r, -A·clip(r, 1 - low, 1 + high))` with `r = exp(logp - old_logp)`. Returns the
/// loss and, per token, 1.0 where the clipped term was the larger (its gradient is cut).
pub fn clipped_surrogate(
    logp: Tensor<2>,
    old_logp: Tensor<2>,
    advantages: Tensor<2>,
    clip_low: f32,
    clip_high: f32,
) -> (Tensor<2>, Tensor<2>) {
    let ratio = (logp - old_logp).exp();
    let unclipped = -(advantages.clone() * ratio.clone());
    let clipped = -(advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high));
    let cut = clipped.clone().greater(unclipped.clone()).float();
    (unclipped.max_pair(clipped), cut)
}

/// GSPO's sequence-level clipped surrogate (Zheng et al. 2025, "Group Sequence Policy
/// Optimization"): each row's importance ratio is the geometric mean of its tokens' ratios,
/// `s = exp(mean over the row's loss tokens of (logp - old_logp))`, so long and short answers
/// move alike, and the row's loss is `max(-A·s, -A·clip(s, 1 - low, 1 + high))` with `A` the
/// row's advantage (the mean of `advantages` over its loss tokens; GRPO gives every token of a
/// sample the same one). Returns the mean over rows that have a loss token (GSPO weighs
/// sequences alike), and the share of those rows whose clipped term was taken.
pub fn sequence_surrogate(
    logp: Tensor<2>,
    old_logp: Tensor<2>,
    advantages: Tensor<2>,
    mask: Tensor<2>,
    clip_low: f32,
    clip_high: f32,
) -> (Tensor<1>, Tensor<1>) {
    let tokens = mask.clone().sum_dim(1);
    let present = tokens.clone().greater_elem(0.0).float();
    let per_row = |x: Tensor<2>| (x * mask.clone()).sum_dim(1) / tokens.clone().clamp_min(1.0);
    // PPO's clipped surrogate on one "token" per row: the row's mean log-ratio against zero.
    let log_ratio = per_row(logp - old_logp);
    let zero = log_ratio.zeros_like();
    let (loss, cut) = clipped_surrogate(log_ratio, zero, per_row(advantages), clip_low, clip_high);
    let rows = present.clone().sum().clamp_min(1.0);
    ((loss * present.clone()).sum() / rows.clone(), (cut * present).sum() / rows)
}

/// CISPO's per-token loss (MiniMax-M1, 2025): `-sg(clip(r, 1 - low, 1 + high))·A·logp` with
/// `r = exp(logp - old_logp)` and `sg` a stop-gradient. Unlike the PPO clip, which zeroes the
/// gradient of a clipped token, every token keeps one: the clip bounds only its weight, so rare
/// tokens whose ratio jumps still teach. Returns the loss and, per token, 1.0 where the ratio lay
/// outside the clip range.
pub fn cispo_surrogate(
    logp: Tensor<2>,
    old_logp: Tensor<2>,
    advantages: Tensor<2>,
    clip_low: f32,
    clip_high: f32,
) -> (Tensor<2>, Tensor<2>) {
    let ratio = (logp.clone() - old_logp).exp().detach();
    let weight = ratio.clone().clamp(1.0 - clip_low, 1.0 + clip_high);
    let cut = weight.clone().not_equal(ratio).float();
    (-(weight * advantages * logp), cut)
}

/// Averages per-token `loss` over the tokens `mask` selects, as `mode` says. `norm_len` is Dr.
/// GRPO's constant (usually the generation budget); the other modes ignore it. Rows whose mask
/// is all zero are not counted as rows. Returns a one-element tensor (0 for an empty mask).
pub fn aggregate(loss: Tensor<2>, mask: Tensor<2>, mode: Aggregation, norm_len: f32) -> Tensor<1> {
    let masked = loss * mask.clone();
    match mode {
        Aggregation::TokenMean => masked.sum() / mask.sum().clamp_min(1.0),
        Aggregation::SeqMeanTokenMean => {
            let per_row = mask.clone().sum_dim(1);
            let rows = per_row.clone().greater_elem(0.0).float().sum().clamp_min(1.0);
            (masked.sum_dim(1) / per_row.clamp_min(1.0)).sum() / rows
        }
        Aggregation::SeqMeanTokenSumNorm => {
            let rows = mask.sum_dim(1).greater_elem(0.0).float().sum().clamp_min(1.0);
            masked.sum() / (rows * norm_len.max(1e-6))
        }
    }
}

/// The mean of `x` over the tokens `mask` selects, as a host number (for metrics).
pub fn masked_mean(x: Tensor<2>, mask: Tensor<2>) -> f64 {
    let v = (x * mask.clone()).sum() / mask.sum().clamp_min(1.0);
    f64::from(v.into_scalar::<f32>())
}

/// The policy term of one minibatch, with the numbers the update logs.
pub struct PolicyTerm {
    /// The loss to step on, with its graph.
    pub loss: Tensor<1>,
    /// The surrogate alone, aggregated (`loss/policy`).
    pub policy: f64,
    /// The mean KL estimate over loss tokens (`loss/kl`), when there is a reference.
    pub kl: Option<f64>,
    /// The share of loss tokens whose clipped term was taken (`train/clip_frac`).
    pub clip_frac: f64,
}

/// The policy loss of every algorithm here: the surrogate `algorithm` names (the
/// [`clipped_surrogate`] for GRPO and PPO, the [`sequence_surrogate`] for GSPO, the
/// [`cispo_surrogate`] for CISPO; `clip_low`, `clip_high`), [`aggregate`]d over `mask` as
/// `aggregation` says with Dr. GRPO's `norm_len` (GSPO averages over sequences), plus, when
/// `ref_logp` is given, `kl_coef` times the aggregated [`kl_per_token`] estimate
/// (`kl_estimator`). Aggregation is linear, so adding the KL before or after it is the same.
pub fn policy_term(
    logp: Tensor<2>,
    old_logp: Tensor<2>,
    advantages: Tensor<2>,
    ref_logp: Option<Tensor<2>>,
    mask: Tensor<2>,
    config: &TrainConfig,
    norm_len: f32,
) -> PolicyTerm {
    let (low, high) = (config.clip_low, config.clip_high);
    // The surrogate, aggregated, and the share of clipped tokens (of rows, for GSPO).
    let (surrogate, clip_frac) = match config.algorithm {
        Algorithm::Gspo => {
            let (loss, cut) = sequence_surrogate(logp.clone(), old_logp, advantages, mask.clone(), low, high);
            (loss, f64::from(cut.into_scalar::<f32>()))
        }
        Algorithm::Cispo => {
            let (loss, cut) = cispo_surrogate(logp.clone(), old_logp, advantages, low, high);
            (aggregate(loss, mask.clone(), config.aggregation, norm_len), masked_mean(cut, mask.clone()))
        }
        Algorithm::Rft => {
            // Cross-entropy on the kept samples: their advantage is 1, the others' 0.
            (aggregate(-(advantages * logp.clone()), mask.clone(), config.aggregation, norm_len), 0.0)
        }
        // The preference losses do not use the policy term (algo::preference has its own).
        Algorithm::Grpo
        | Algorithm::Ppo
        | Algorithm::ReinforcePp
        | Algorithm::Dpo
        | Algorithm::Ipo
        | Algorithm::Orpo => {
            let (loss, cut) = clipped_surrogate(logp.clone(), old_logp, advantages, low, high);
            (aggregate(loss, mask.clone(), config.aggregation, norm_len), masked_mean(cut, mask.clone()))
        }
    };
    let policy = f64::from(surrogate.clone().detach().into_scalar::<f32>());
    let mut loss = surrogate;
    let mut kl_mean = None;
    if let Some(ref_logp) = ref_logp {
        let kl = kl_per_token(logp, ref_logp, config.kl_estimator);
        kl_mean = Some(masked_mean(kl.clone().detach(), mask.clone().detach()));
        loss = loss + aggregate(kl, mask, config.aggregation, norm_len).mul_scalar(config.kl_coef);
    }
    PolicyTerm { loss, policy, kl: kl_mean, clip_frac }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(rows: &[&[f32]]) -> Tensor<2> {
        let w = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), w]), &crate::tests::test_device())
    }

    fn v2(x: Tensor<2>) -> Vec<f32> {
        x.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    fn scalar(x: Tensor<1>) -> f32 {
        x.into_scalar::<f32>()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn kl_estimators_match_their_formulas() {
        // logp = ln 0.5, ref = ln 0.25: d = ref - logp = -ln 2.
        let (lp, rp) = (0.5f32.ln(), 0.25f32.ln());
        let ln2 = 2f32.ln();
        let k = |e| v2(kl_per_token(t(&[&[lp, lp]]), t(&[&[rp, lp]]), e));
        close(&k(KlEstimator::K1), &[ln2, 0.0]);
        close(&k(KlEstimator::K2), &[ln2 * ln2 / 2.0, 0.0]);
        // exp(-ln 2) + ln 2 - 1 = 0.5 + 0.693147 - 1
        close(&k(KlEstimator::K3), &[0.5 + ln2 - 1.0, 0.0]);
        // k3 is never negative, k1 is when the reference is more likely.
        let flipped = v2(kl_per_token(t(&[&[rp]]), t(&[&[lp]]), KlEstimator::K3))[0];
        assert!((flipped - (2.0 - ln2 - 1.0)).abs() < 1e-5);
        assert!(v2(kl_per_token(t(&[&[rp]]), t(&[&[lp]]), KlEstimator::K1))[0] < 0.0);
    }

    #[test]
    fn each_clip_side_binds_only_on_its_own_side() {
        // Ratios e^0.5 = 1.6487 and e^-0.5 = 0.6065, low 0.2 (floor 0.8), high 0.28 (ceiling 1.28).
        let lp = t(&[&[0.5, -0.5, 0.5, -0.5]]);
        let old = t(&[&[0.0, 0.0, 0.0, 0.0]]);
        let adv = t(&[&[1.0, 1.0, -1.0, -1.0]]);
        let (loss, cut) = clipped_surrogate(lp, old, adv, 0.2, 0.28);
        let (r_hi, r_lo) = (0.5f32.exp(), (-0.5f32).exp());
        // A > 0, r above the ceiling: clipped to -1.28 (the larger of -1.6487 and -1.28).
        // A > 0, r below the floor: the unclipped -0.6065 is larger than -0.8, no cut.
        // A < 0, r above the ceiling: the unclipped 1.6487 is larger than 1.28, no cut.
        // A < 0, r below the floor: clipped to 0.8, larger than 0.6065.
        close(&v2(loss), &[-1.28, -r_lo, r_hi, 0.8]);
        close(&v2(cut), &[1.0, 0.0, 0.0, 1.0]);
        // A wider high side lets the positive-advantage token through unclipped.
        let (loss, cut) = clipped_surrogate(t(&[&[0.5]]), t(&[&[0.0]]), t(&[&[2.0]]), 0.2, 1.0);
        close(&v2(loss), &[-2.0 * r_hi]);
        close(&v2(cut), &[0.0]);
    }

    #[test]
    fn aggregation_modes_weigh_tokens_as_documented() {
        // Row 0 has three loss tokens (1, 2, 3), row 1 one (10), row 2 none.
        let loss = t(&[&[1.0, 2.0, 3.0, 99.0], &[10.0, 99.0, 99.0, 99.0], &[99.0, 99.0, 99.0, 99.0]]);
        let mask = t(&[&[1.0, 1.0, 1.0, 0.0], &[1.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]]);
        let agg = |m, n| scalar(aggregate(loss.clone(), mask.clone(), m, n));
        // token mean: (1 + 2 + 3 + 10) / 4
        assert!((agg(Aggregation::TokenMean, 0.0) - 4.0).abs() < 1e-6);
        // sequence mean of token means: (2 + 10) / 2; the empty row is not a row
        assert!((agg(Aggregation::SeqMeanTokenMean, 0.0) - 6.0).abs() < 1e-6);
        // sequence mean of token sums over a constant 8: (6 + 10) / (2 * 8)
        assert!((agg(Aggregation::SeqMeanTokenSumNorm, 8.0) - 1.0).abs() < 1e-6);
        // An empty mask gives 0, not NaN.
        let empty = aggregate(loss.clone(), mask.clone().mul_scalar(0.0), Aggregation::TokenMean, 0.0);
        assert_eq!(scalar(empty), 0.0);
    }

    #[test]
    fn masked_tokens_carry_no_gradient() {
        let device = Device::autodiff(crate::tests::test_device());
        let lp = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, -2.0, -3.0], [1, 3]), &device).require_grad();
        let old = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, -2.0, -3.0], [1, 3]), &device);
        let adv = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 3], [1, 3]), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 1.0], [1, 3]), &device);
        let (loss, _) = clipped_surrogate(lp.clone(), old, adv, 0.2, 0.2);
        let kl = kl_per_token(lp.clone(), lp.clone().detach().add_scalar(0.1), KlEstimator::K3);
        let total = aggregate(loss + kl, mask, Aggregation::TokenMean, 0.0);
        let grads = total.backward();
        let g = v2(lp.grad(&grads).unwrap());
        assert_eq!(g[1], 0.0, "the masked token's gradient: {g:?}");
        // d/dlogp of -A·r at r = 1 is -A = -1, over 2 tokens; k3's gradient at d = 0.1 is
        // 1 - exp(0.1) (per token), also over 2.
        let want = (-1.0 + (1.0 - 0.1f32.exp())) / 2.0;
        close(&[g[0], g[2]], &[want, want]);
    }

    #[test]
    fn the_policy_term_adds_the_weighted_kl_to_the_surrogate() {
        // Ratio 1 at the two loss tokens, advantages 1 and -1: the surrogate is -1 and 1, its
        // token mean 0. The reference halves the first token's probability: k3 = 0.5 + ln 2 - 1
        // there, 0 at the second. The third token is masked and counts for nothing.
        let (half, quarter) = (0.5f32.ln(), 0.25f32.ln());
        let logp = t(&[&[half, half, 0.5]]);
        let old = t(&[&[half, half, 0.0]]);
        let adv = t(&[&[1.0, -1.0, 5.0]]);
        let refs = t(&[&[quarter, half, 9.0]]);
        let mask = t(&[&[1.0, 1.0, 0.0]]);
        let config = TrainConfig { kl_coef: 0.5, ..TrainConfig::default() };
        let k3 = 0.5 + 2f32.ln() - 1.0;
        let term = policy_term(logp.clone(), old.clone(), adv.clone(), Some(refs), mask.clone(), &config, 0.0);
        // token mean of (-1 + 0.5 k3) and (1 + 0)
        close(&[scalar(term.loss)], &[0.5 * k3 / 2.0]);
        assert_eq!((term.policy, term.clip_frac), (0.0, 0.0));
        assert!((term.kl.unwrap() - f64::from(k3 / 2.0)).abs() < 1e-6, "{:?}", term.kl);
        // Without a reference the loss is the surrogate alone.
        let term = policy_term(logp, old, adv, None, mask, &config, 0.0);
        assert_eq!((scalar(term.loss), term.kl), (0.0, None));
    }

    #[test]
    fn gspo_ratios_are_per_sequence_length_normalised_and_clipped_per_sequence() {
        // Row 0: log-ratios 0.2 and -0.2 average to 0, so s = 1 whatever the tokens do: -A = -2.
        // Row 1: two tokens of log-ratio ln 1.5 each (a product of 2.25) average to ln 1.5, so
        //   s = 1.5, not 2.25; A = 1 > 0 and s is above 1.2: clipped to -1.2.
        // Row 2: the same s = 1.5 with A = -1: the unclipped 1.5 is larger, no cut.
        // Row 3: no loss token; it is not a row. The masked token of row 0 is ignored.
        let l15 = 1.5f32.ln();
        let logp = t(&[&[-1.0, -1.0, 7.0], &[l15, l15, 0.0], &[l15, l15, 0.0], &[3.0, 3.0, 3.0]]);
        let old = t(&[&[-1.2, -0.8, 0.0], &[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0]]);
        let adv = t(&[&[2.0, 2.0, 2.0], &[1.0, 1.0, 1.0], &[-1.0, -1.0, -1.0], &[5.0, 5.0, 5.0]]);
        let mask = t(&[&[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0], &[0.0, 0.0, 0.0]]);
        let (loss, cut) = sequence_surrogate(logp, old, adv, mask, 0.2, 0.2);
        close(&[scalar(loss)], &[(-2.0 - 1.2 + 1.5) / 3.0]);
        close(&[scalar(cut)], &[1.0 / 3.0]);
    }

    #[test]
    fn gspo_gives_each_token_the_sequence_gradient_over_its_length() {
        // One unclipped row of 4 loss tokens at ratio 1, A = 1: loss = -s, and ds/dlogp_t = s / 4.
        let device = Device::autodiff(crate::tests::test_device());
        let data = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 5]), &device);
        let lp = data(vec![-1.0, -2.0, -0.5, -3.0, -1.0]).require_grad();
        let (loss, _) = sequence_surrogate(
            lp.clone(),
            data(vec![-1.0, -2.0, -0.5, -3.0, 0.0]),
            data(vec![1.0; 5]),
            data(vec![1.0, 1.0, 1.0, 1.0, 0.0]),
            0.2,
            0.2,
        );
        let g = v2(lp.grad(&loss.backward()).unwrap());
        close(&g, &[-0.25, -0.25, -0.25, -0.25, 0.0]);
    }

    #[test]
    fn cispo_clips_the_weight_but_keeps_every_gradient() {
        // Ratios e^0.5 (above the ceiling 1.2) and 1, A = 1: the weights are 1.2 and 1.
        let device = Device::autodiff(crate::tests::test_device());
        let data = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 2]), &device);
        let lp = data(vec![-0.5, -1.0]).require_grad();
        let (loss, cut) = cispo_surrogate(lp.clone(), data(vec![-1.0, -1.0]), data(vec![1.0, 1.0]), 0.2, 0.2);
        close(&v2(loss.clone().detach()), &[-1.2 * -0.5, -1.0 * -1.0]);
        close(&v2(cut.detach()), &[1.0, 0.0]);
        let total = aggregate(loss, data(vec![1.0, 1.0]), Aggregation::TokenMean, 0.0);
        let g = v2(lp.grad(&total.backward()).unwrap());
        // -weight·A over 2 tokens: the clipped token still has a gradient, where PPO's clip
        // would give it none.
        close(&g, &[-0.6, -0.5]);
        let (ppo, _) = clipped_surrogate(lp.clone(), data(vec![-1.0, -1.0]), data(vec![1.0, 1.0]), 0.2, 0.2);
        let g = v2(lp.grad(&aggregate(ppo, data(vec![1.0, 1.0]), Aggregation::TokenMean, 0.0).backward()).unwrap());
        close(&g, &[0.0, -0.5]);
    }

    #[test]
    fn the_policy_term_follows_the_algorithm() {
        let l15 = 1.5f32.ln();
        let logp = t(&[&[l15, l15]]);
        let old = t(&[&[0.0, 0.0]]);
        let adv = t(&[&[1.0, 1.0]]);
        let mask = t(&[&[1.0, 1.0]]);
        let term = |algorithm| {
            let config = TrainConfig { algorithm, ..TrainConfig::default() };
            let p = policy_term(logp.clone(), old.clone(), adv.clone(), None, mask.clone(), &config, 0.0);
            (scalar(p.loss), p.clip_frac)
        };
        // Token ratios 1.5 each: PPO's clip takes 1.2 on both tokens; GSPO's sequence ratio is
        // 1.5 too, clipped once; CISPO weighs each token's -logp by 1.2.
        let (ppo, gspo, cispo) = (term(Algorithm::Grpo), term(Algorithm::Gspo), term(Algorithm::Cispo));
        close(&[ppo.0, gspo.0, cispo.0], &[-1.2, -1.2, -1.2 * l15]);
        assert_eq!((ppo.1, gspo.1, cispo.1), (1.0, 1.0, 1.0));
    }
}
