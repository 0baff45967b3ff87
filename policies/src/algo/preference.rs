//! Preference optimisation on our own groups: each group's best and worst scored samples form a
//! pair (when their rewards differ by more than `preference.margin`), which is rejection-sampling
//! optimisation in spirit, and the pair is trained with DPO's, IPO's or ORPO's loss.
//!
//! With `h = (log π(y_c) - log π_ref(y_c)) - (log π(y_r) - log π_ref(y_r))`, sums over each
//! sample's policy tokens and `β = preference.beta`:
//! - DPO (Rafailov et al. 2023): `-log σ(β·h)`;
//! - IPO (Azar et al. 2023): `(h - 1/(2β))²`, which stops pulling once the margin reaches
//!   `1/(2β)` instead of pushing it without end;
//! - ORPO (Hong et al. 2024), reference-free: with `a` a sample's mean token log-probability and
//!   `log odds = a - log(1 - e^a)`, the chosen sample's cross-entropy `-a_c` plus
//!   `orpo_lambda · -log σ(log odds_c - log odds_r)`.
//!
//! The reference of DPO and IPO is the policy as training started (`[train.reference]` applies).
//! A pair's two rows must be in one optimiser step, so `minibatch` must be 0.
//!
//! Metrics: `loss/policy` (the preference loss), `train/pairs`, `train/pref_accuracy` (the share
//! of pairs whose implicit reward margin `h` is positive, before the step) and
//! `train/pref_margin` (the mean `β·h`; ORPO: the mean log-odds difference).

use super::{Algorithm, TrainError, Trainer};
use crate::lm::LmPolicy;
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Tensor, TensorData};
use rlvr_engine::Group;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[train.preference]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreferenceConfig {
    /// DPO's and IPO's β (the strength of the pull towards the reference). Default 0.1.
    pub beta: f64,
    /// ORPO's weight of the odds-ratio term. Default 0.1.
    pub orpo_lambda: f64,
    /// A pair needs its best reward above its worst by more than this. Default 0.
    pub margin: f64,
}

impl Default for PreferenceConfig {
    fn default() -> Self {
        Self { beta: 0.1, orpo_lambda: 0.1, margin: 0.0 }
    }
}

/// DPO's loss over pairs: the mean of `-log σ(β·h)`; `h` is `[pairs, 1]`.
pub fn dpo_loss(h: Tensor<2>, beta: f64) -> Tensor<1> {
    -log_sigmoid(h.mul_scalar(beta)).mean()
}

/// IPO's loss over pairs: the mean of `(h - 1/(2β))²`.
pub fn ipo_loss(h: Tensor<2>, beta: f64) -> Tensor<1> {
    h.sub_scalar(1.0 / (2.0 * beta)).square().mean()
}

/// The log-odds of a sequence whose mean token log-probability is `a` (< 0): `a - log(1 - e^a)`.
pub fn log_odds(a: Tensor<2>) -> Tensor<2> {
    a.clone() - (-a.exp()).log1p()
}

/// ORPO's loss over pairs, from the mean token log-probabilities of the chosen and rejected
/// samples (`[pairs, 1]` each): `mean(-a_c) + λ·mean(-log σ(log odds_c - log odds_r))`.
pub fn orpo_loss(chosen: Tensor<2>, rejected: Tensor<2>, lambda: f64) -> Tensor<1> {
    let nll = -chosen.clone().mean();
    let ratio = -log_sigmoid(log_odds(chosen) - log_odds(rejected)).mean();
    nll + ratio.mul_scalar(lambda)
}

/// Marks each group's pair: +1 on its first best sample, -1 on its first worst, 0 elsewhere;
/// all 0 when the rewards differ by `margin` or less.
pub fn pair_marks(rewards: &[f64], margin: f64) -> Vec<f64> {
    let mut marks = vec![0.0; rewards.len()];
    let best = (0..rewards.len()).reduce(|a, b| if rewards[b] > rewards[a] { b } else { a });
    let worst = (0..rewards.len()).reduce(|a, b| if rewards[b] < rewards[a] { b } else { a });
    if let (Some(b), Some(w)) = (best, worst)
        && rewards[b] - rewards[w] > margin
    {
        marks[b] = 1.0;
        marks[w] = -1.0;
    }
    marks
}

/// One online preference update of `policy` from the scored `groups`.
pub(super) fn update(
    t: &mut Trainer,
    policy: &mut LmPolicy,
    groups: &[Group],
    iteration: u64,
) -> Result<BTreeMap<String, f64>, TrainError> {
    let c = t.config.clone();
    let margin = c.preference.margin;
    // Rows: the chosen (+1) and rejected (-1) sample of each group with a pair; the rest left out.
    let (mut rows, mut metrics) = t.rows(policy, groups, |rewards| pair_marks(rewards, margin), true);
    // A row whose partner was left out (overlong, no policy token) has no pair.
    let mut sides: BTreeMap<usize, (bool, bool)> = BTreeMap::new();
    for r in &rows {
        let e = sides.entry(r.group).or_default();
        if chosen(r) { e.0 = true } else { e.1 = true }
    }
    rows.retain(|r| sides.get(&r.group).is_some_and(|&(a, b)| a && b));
    metrics.insert("train/pairs".into(), rows.len() as f64 / 2.0);
    if rows.is_empty() {
        return Ok(metrics);
    }
    t.scoring_pass(policy, &mut rows, policy.options.sampling.temperature)?;
    let with_ref = t.reference.is_some() && c.algorithm != Algorithm::Orpo;
    t.optimise(policy, &rows, iteration, false, &mut metrics, |b, m| {
        // Per row: the sum and the mean of its loss tokens' log-probabilities.
        let tokens = b.mask.clone().sum_dim(1).clamp_min(1.0);
        let sum = (b.logp.clone() * b.mask.clone()).sum_dim(1);
        // The pair matrix: +1 at a pair's chosen row, -1 at its rejected one.
        let groups: Vec<usize> = {
            let mut g: Vec<usize> = b.rows.iter().map(|r| r.group).collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let n = b.rows.len();
        let mut s = vec![0.0f32; groups.len() * n];
        let (mut pick_c, mut pick_r) = (vec![0.0f32; groups.len() * n], vec![0.0f32; groups.len() * n]);
        for (i, r) in b.rows.iter().enumerate() {
            let p = groups.binary_search(&r.group).unwrap_or(0);
            let sign = if chosen(r) { 1.0 } else { -1.0 };
            s[p * n + i] = sign;
            if chosen(r) { pick_c[p * n + i] = 1.0 } else { pick_r[p * n + i] = 1.0 }
        }
        let matrix = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [groups.len(), n]), &b.device);
        let (loss, margin_value, right) = if c.algorithm == Algorithm::Orpo {
            let mean = sum / tokens;
            let (ac, ar) = (matrix(pick_c).matmul(mean.clone()), matrix(pick_r).matmul(mean));
            let diff = (log_odds(ac.clone()) - log_odds(ar.clone())).detach();
            let loss = orpo_loss(ac, ar, c.preference.orpo_lambda);
            (loss, diff.clone().mean(), diff.greater_elem(0.0).float().mean())
        } else {
            let logratio = if with_ref { sum - (b.col(|r| &r.ref_logp) * b.mask.clone()).sum_dim(1) } else { sum };
            let h = matrix(s).matmul(logratio);
            let loss = if c.algorithm == Algorithm::Ipo {
                ipo_loss(h.clone(), c.preference.beta)
            } else {
                dpo_loss(h.clone(), c.preference.beta)
            };
            let h = h.detach();
            (loss, h.clone().mean().mul_scalar(c.preference.beta), h.greater_elem(0.0).float().mean())
        };
        m.add("loss/policy", f64::from(loss.clone().detach().into_scalar::<f32>()));
        m.add("train/pref_margin", f64::from(margin_value.into_scalar::<f32>()));
        if b.epoch == 0 {
            m.add("train/pref_accuracy", f64::from(right.into_scalar::<f32>()));
        }
        loss
    })?;
    Ok(metrics)
}

/// Whether a row is its pair's chosen sample (its mark, on every loss token, is +1).
fn chosen(r: &super::Row) -> bool {
    r.advantages.iter().zip(&r.mask).any(|(a, m)| *m > 0.0 && *a > 0.0)
}

/// `[preference]`: offline preference optimisation on a JSONL of pairs, run as a warm start
/// after `[sft]` (when there is one) and before the RL iterations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// `dpo`, `ipo` or `orpo`. Default `dpo`.
    pub loss: OfflineLoss,
    /// A JSONL file of `{"prompt", "chosen", "rejected"}` (TRL's preference format): `prompt`
    /// a string (one user message) or a list of messages, `chosen` and `rejected` strings or
    /// one-message lists. Required.
    pub data: String,
    /// Optimiser steps. Default 100.
    pub steps: u64,
    /// Pairs per step. Default 8.
    pub batch_size: usize,
    /// AdamW learning rate. Default 1e-5.
    pub lr: f64,
    /// DPO's and IPO's β. Default 0.1.
    pub beta: f64,
    /// ORPO's weight of the odds-ratio term. Default 0.1.
    pub orpo_lambda: f64,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f32,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            loss: OfflineLoss::Dpo,
            data: String::new(),
            steps: 100,
            batch_size: 8,
            lr: 1e-5,
            beta: 0.1,
            orpo_lambda: 0.1,
            grad_clip: 1.0,
        }
    }
}

/// The offline preference loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflineLoss {
    /// [`dpo_loss`].
    #[default]
    Dpo,
    /// [`ipo_loss`].
    Ipo,
    /// [`orpo_loss`] (no reference).
    Orpo,
}

/// One preference pair: the prompt, and the chosen and rejected answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// The conversation before the answer.
    pub prompt: Vec<rlvr_engine::Message>,
    /// The preferred answer.
    pub chosen: String,
    /// The other.
    pub rejected: String,
}

/// Reads `{"prompt", "chosen", "rejected"}` lines; errors name the file and line.
pub fn read_pairs(path: &std::path::Path) -> Result<Vec<Pair>, TrainError> {
    use rlvr_engine::Message;
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Config(format!("cannot read preference data {}: {e}", path.display())))?;
    let answer = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => a.last()?.get("content")?.as_str().map(String::from),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |m: &str| TrainError::Config(format!("{}:{}: {m}", path.display(), i + 1));
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
        let prompt = match &v["prompt"] {
            serde_json::Value::String(s) => vec![Message::user(s.clone())],
            serde_json::Value::Array(_) => {
                serde_json::from_value(v["prompt"].clone()).map_err(|e| at(&format!("prompt: {e}")))?
            }
            _ => return Err(at("prompt must be a string or a list of messages")),
        };
        let chosen = answer(&v["chosen"]).ok_or_else(|| at("chosen must be a string or a list of messages"))?;
        let rejected = answer(&v["rejected"]).ok_or_else(|| at("rejected must be a string or a list of messages"))?;
        out.push(Pair { prompt, chosen, rejected });
    }
    if out.is_empty() {
        return Err(TrainError::Config(format!("{}: no preference pairs", path.display())));
    }
    Ok(out)
}

/// What an offline preference warm start did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfflineReport {
    /// Optimiser steps taken.
    pub steps: u64,
    /// The first and the last step's loss.
    pub first_loss: f64,
    /// The last step's loss.
    pub last_loss: f64,
    /// The share of the last step's pairs whose chosen answer the policy preferred (DPO/IPO:
    /// positive implicit reward margin; ORPO: higher log-odds).
    pub last_accuracy: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Trains `policy` on `pairs` for `config.steps` steps, batches drawn by a seeded shuffle; the
/// reference of DPO and IPO is the policy as it enters.
pub fn train_offline(
    policy: &mut LmPolicy,
    pairs: &[Pair],
    config: &OfflineConfig,
    seed: u64,
) -> Result<OfflineReport, TrainError> {
    use super::{adamw, forward, optimiser_step, pad2, sft, shuffle};
    use burn::module::Module;
    if pairs.is_empty() || config.batch_size == 0 || config.beta.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(TrainError::Config("[preference] needs pairs, batch_size >= 1 and beta > 0".into()));
    }
    let started = std::time::Instant::now();
    // Each pair as two rows (chosen, rejected): tokens and the response mask.
    let mut rows: Vec<(Vec<u32>, Vec<f32>)> = Vec::with_capacity(2 * pairs.len());
    for p in pairs {
        for answer in [&p.chosen, &p.rejected] {
            let d = sft::demo(policy, &p.prompt, answer)?;
            let mut tokens = d.context.clone();
            tokens.extend_from_slice(&d.response);
            let mut mask = vec![0.0; d.context.len().saturating_sub(1)];
            mask.extend(std::iter::repeat_n(1.0, d.response.len()));
            rows.push((tokens, mask));
        }
    }
    let reference = policy.model.clone();
    let (mut model, device) = policy.training_copy();
    let mut optim = adamw(0.0);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    let (mut epoch, mut pos) = (0u64, order.len());
    let mut report = OfflineReport::default();
    for step in 0..config.steps {
        let mut batch = Vec::new();
        while batch.len() < config.batch_size.min(pairs.len()) {
            if pos == order.len() {
                shuffle(&mut order, rlvr_engine::seed::derive(seed, &[epoch, 0x9a1f]));
                epoch += 1;
                pos = 0;
            }
            batch.push(order[pos]);
            pos += 1;
        }
        // Rows 0..k are the chosen answers, k..2k the rejected ones.
        let picked: Vec<&(Vec<u32>, Vec<f32>)> =
            batch.iter().map(|&p| &rows[2 * p]).chain(batch.iter().map(|&p| &rows[2 * p + 1])).collect();
        let k = batch.len();
        let seqs: Vec<&[u32]> = picked.iter().map(|r| r.0.as_slice()).collect();
        let width = picked.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let mask = pad2(&picked.iter().map(|r| r.1.as_slice()).collect::<Vec<_>>(), width, &device);
        let f = forward(&model, &seqs, 1.0)?;
        let sum = (f.logp * mask.clone()).sum_dim(1);
        let (chosen, rejected) = (sum.clone().slice([0..k, 0..1]), sum.slice([k..2 * k, 0..1]));
        let (loss, right) = match config.loss {
            OfflineLoss::Orpo => {
                let tokens = mask.sum_dim(1).clamp_min(1.0);
                let (tc, tr) = (tokens.clone().slice([0..k, 0..1]), tokens.slice([k..2 * k, 0..1]));
                let (ac, ar) = (chosen / tc, rejected / tr);
                let right = (log_odds(ac.clone()) - log_odds(ar.clone())).detach().greater_elem(0.0).float().mean();
                (orpo_loss(ac, ar, config.orpo_lambda), right)
            }
            loss => {
                let r = forward(&reference, &seqs, 1.0)?;
                let rmask =
                    pad2(&picked.iter().map(|r| r.1.as_slice()).collect::<Vec<_>>(), width, &reference.device());
                let rsum: Vec<f32> = (r.logp * rmask)
                    .sum_dim(1)
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| TrainError::Config(format!("reading the reference's log-probs: {e:?}")))?;
                let rsum = Tensor::<2>::from_data(TensorData::new(rsum, [2 * k, 1]), &device);
                let h = (chosen - rsum.clone().slice([0..k, 0..1])) - (rejected - rsum.slice([k..2 * k, 0..1]));
                let right = h.clone().detach().greater_elem(0.0).float().mean();
                let l = if loss == OfflineLoss::Ipo { ipo_loss(h, config.beta) } else { dpo_loss(h, config.beta) };
                (l, right)
            }
        };
        let value = f64::from(loss.clone().detach().into_scalar::<f32>());
        let (next, _) = optimiser_step(model, loss, &mut optim, config.lr, config.grad_clip);
        model = next;
        if step == 0 {
            report.first_loss = value;
        }
        report.last_loss = value;
        report.last_accuracy = f64::from(right.into_scalar::<f32>());
        report.steps = step + 1;
    }
    policy.set_trained(model.valid());
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn col(v: &[f32]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len(), 1]), &crate::tests::test_device())
    }

    fn close(got: Tensor<1>, want: f64) {
        let g = f64::from(got.into_scalar::<f32>());
        assert!((g - want).abs() < 1e-5, "got {g}, want {want}");
    }

    #[test]
    fn dpo_and_ipo_by_hand() {
        // At h = 0 DPO's loss is log 2; at h = 10, β = 0.1: -log σ(1) = log(1 + e^-1).
        close(dpo_loss(col(&[0.0]), 0.1), 2f64.ln());
        close(dpo_loss(col(&[0.0, 10.0]), 0.1), (2f64.ln() + (1.0 + (-1f64).exp()).ln()) / 2.0);
        // IPO is 0 at its target margin 1/(2β) = 5, and grows on either side of it.
        close(ipo_loss(col(&[5.0]), 0.1), 0.0);
        close(ipo_loss(col(&[3.0, 8.0]), 0.1), (4.0 + 9.0) / 2.0);
    }

    #[test]
    fn orpo_by_hand() {
        // Mean log-probs ln 0.5 and ln 0.25: odds 1 and 1/3, log-odds 0 and -ln 3.
        let (c, r) = (0.5f32.ln(), 0.25f32.ln());
        close(log_odds(col(&[c, r])).sum(), -(3f64.ln()));
        let want = 2f64.ln() + 0.1 * (1.0 + (-(3f64.ln())).exp()).ln();
        close(orpo_loss(col(&[c]), col(&[r]), 0.1), want);
    }

    #[test]
    fn dpo_pushes_the_chosen_up_and_the_rejected_down() {
        // d/dh of -log σ(βh) is -β σ(-βh): at h = 0, -β/2; h = lc - lr, so the chosen's
        // log-probability gets -β/2 and the rejected's +β/2 (gradient descent raises one and
        // lowers the other).
        let device = Device::autodiff(crate::tests::test_device());
        let l = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, -1.0], [2, 1]), &device).require_grad();
        let s = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -1.0], [1, 2]), &device);
        let loss = dpo_loss(s.matmul(l.clone()), 0.1);
        let g: Vec<f32> = l.grad(&loss.backward()).unwrap().into_data().try_into_vec().unwrap();
        assert!((g[0] + 0.05).abs() < 1e-6 && (g[1] - 0.05).abs() < 1e-6, "{g:?}");
    }

    #[test]
    fn pairs_are_each_groups_best_and_worst_past_the_margin() {
        assert_eq!(pair_marks(&[0.5, 1.0, 0.0, 1.0, 0.0], 0.0), vec![0.0, 1.0, -1.0, 0.0, 0.0]);
        assert_eq!(pair_marks(&[0.5, 0.5], 0.0), vec![0.0, 0.0], "no preference in a flat group");
        assert_eq!(pair_marks(&[0.6, 0.5], 0.2), vec![0.0, 0.0], "within the margin");
        assert_eq!(pair_marks(&[1.0], 0.0), vec![0.0]);
    }
}
