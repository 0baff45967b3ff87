//! Training: GRPO and PPO updates from scored rollouts, and SFT on demonstrations, for the
//! [`LmPolicy`] on any burn device.
//!
//! - [`grpo`] and [`ppo`]: one update each, read top to bottom: rows, advantages, loss, metrics;
//! - [`loss`]: the clipped surrogate, KL estimators and aggregations as pure functions, and the
//!   policy term GRPO and PPO share;
//! - [`select`]: which groups an update learns from (DAPO's dynamic sampling);
//! - [`sft`]: cross-entropy warm start;
//! - [`Trainer`]: what an update keeps across iterations (the optimiser, the reference model,
//!   the settings), and the machinery both algorithms share: rows from groups, the no-grad
//!   scoring pass, and the minibatch loop with its optimiser steps.
//!
//! ## Design
//! The policy keeps its model on the plain device, where generation runs without building a
//! graph. An update moves a copy onto the autodiff device (`Module::train`), takes its optimiser
//! steps, and hands the plain model back (`Module::valid`); parameter ids survive the round trip,
//! so AdamW's moments carry over from one iteration to the next. Parameter ids are derived from
//! parameter names ([`Model::stabilise_ids`]), so the optimiser state saved in a checkpoint
//! matches the reloaded model.
//!
//! Log-probabilities for the loss are recomputed by the model being trained (at the sampling
//! temperature), never taken from the sampler: the sampler's numbers may come from a truncated
//! (top-p, top-k) distribution and a different kernel, and mixing the two makes the importance
//! ratio wrong at step zero. The old log-probs (the ratio's denominator) are the model's own
//! before the update's first step.
//!
//! [`Trainer::update`] chooses the algorithm once and hands over to [`grpo`] or [`ppo`]; what
//! differs between the two lives in their files, and the shared steps here take what differs
//! as arguments (the advantages of a group, the loss of a minibatch).

pub mod grpo;
pub mod lora;
pub mod loss;
pub mod ppo;
pub mod preference;
pub mod prefix;
pub mod reinforce_pp;
pub mod select;
pub mod sft;

use crate::generate::{GenerateError, forward};
use crate::lm::{LmPolicy, load_checkpoint};
use crate::model::Model;
use crate::weights::{Weights, WeightsError};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use grpo::GrpoConfig;
use loss::{Aggregation, KlEstimator};
use ppo::PpoConfig;
use rlvr_engine::Group;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which RL algorithm updates the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Group-relative advantages, no value model.
    #[default]
    Grpo,
    /// A value head and GAE.
    Ppo,
    /// GRPO's advantages with GSPO's sequence-level, length-normalised importance ratio and
    /// clip ([`loss::sequence_surrogate`]). GSPO's paper clips far tighter than PPO
    /// (`clip_low = 3e-4`, `clip_high = 4e-4`).
    Gspo,
    /// GRPO's advantages with CISPO's clipped, stop-gradient importance weights: every token
    /// keeps a gradient ([`loss::cispo_surrogate`]). MiniMax-M1 leaves the low side open
    /// and clips the high one.
    Cispo,
    /// REINFORCE++ ([`reinforce_pp`]): per-token returns with the KL in the reward, whitened
    /// over the whole batch (the global baseline), and PPO's clipped surrogate.
    #[serde(rename = "reinforce++")]
    ReinforcePp,
    /// Rejection-sampling fine-tuning (best-of-n SFT, as in RAFT and STaR): cross-entropy on the
    /// tokens of each iteration's samples whose reward reaches `rft_threshold`; the others are
    /// left out.
    Rft,
    /// Online DPO (Rafailov et al. 2023): each group's best and worst scored samples form a
    /// pair, trained with the sigmoid preference loss against the reference
    /// ([`preference::dpo_loss`]).
    Dpo,
    /// Online IPO (Azar et al. 2023): DPO's pairs with a squared loss that does not push the
    /// margin to infinity ([`preference::ipo_loss`]).
    Ipo,
    /// Online ORPO (Hong et al. 2024): reference-free; the chosen sample's cross-entropy plus a
    /// log-odds-ratio preference term ([`preference::orpo_loss`]).
    Orpo,
}

/// The reference model the KL term pulls towards (`[train.reference]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceConfig {
    /// Checkpoints whose weight average ("soup", as SALSA proposes) is the reference; empty
    /// means the policy as it was when training started.
    pub soup: Vec<PathBuf>,
    /// Every N iterations the reference becomes the current policy; 0 never.
    pub reset_every: u64,
}

/// `[train]`: the update's settings. Every field has a default, so `[train]` alone runs GRPO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `grpo`, `ppo`, `gspo`, `cispo` (these two: GRPO's advantages with their own surrogate),
    /// `reinforce++`, `rft`, or the preference losses on each group's best and worst samples
    /// (`dpo`, `ipo`, `orpo`). Default `grpo`.
    pub algorithm: Algorithm,
    /// AdamW learning rate. Default 1e-5.
    pub lr: f64,
    /// Iterations over which the learning rate rises linearly to `lr` (iteration `i` uses
    /// `lr * (i + 1) / warmup`); 0 starts at `lr`. Default 0. A fresh AdamW's first steps move
    /// every weight by about `lr` whatever the size of its gradient, which after a warm start
    /// costs accuracy that the policy then spends iterations winning back.
    pub warmup: u64,
    /// AdamW weight decay. Default 0.
    pub weight_decay: f32,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f32,
    /// Optimisation passes over each batch. Default 1.
    pub epochs: u32,
    /// Sequences per optimiser step; 0 takes the whole batch in one step. Default 0.
    pub minibatch: usize,
    /// Lower clip of the importance ratio (`1 - clip_low`). Default 0.2.
    pub clip_low: f32,
    /// Upper clip of the importance ratio (`1 + clip_high`); above `clip_low` is DAPO's
    /// clip-higher. Default 0.2.
    pub clip_high: f32,
    /// Weight of the KL penalty to the reference; 0 loads no reference. Default 0.
    pub kl_coef: f32,
    /// KL estimator (`k1`, `k2`, `k3`). Default `k3`.
    pub kl_estimator: KlEstimator,
    /// How token losses are averaged. Default `token-mean`.
    pub aggregation: Aggregation,
    /// Dr. GRPO's constant length for `seq-mean-token-sum-norm`; 0 uses the rollout's token
    /// budget per episode. Default 0.
    pub norm_len: usize,
    /// Drop groups whose rewards are all equal and roll out more tasks in their place, up to
    /// `max_resample` extra rounds (DAPO's dynamic sampling). Default false.
    pub dynamic_sampling: bool,
    /// Extra rollout rounds dynamic sampling may take per iteration. Default 3.
    pub max_resample: u32,
    /// Leave out of the loss any sample whose last turn was cut by the token budget (DAPO's
    /// overlong filtering): its reward says nothing about its answer. Default false.
    pub overlong_filter: bool,
    /// `rft`: the reward a sample needs to be trained on. Default 1.0 (a fully correct answer
    /// under the usual 0/1 rewards).
    pub rft_threshold: f64,
    /// `dpo`, `ipo`, `orpo`: the preference losses' settings.
    pub preference: preference::PreferenceConfig,
    /// Prefix-RFT's hybrid rollouts (`grpo`, `gspo`, `cispo`): samples that continue a prefix
    /// of the gold answer ([`prefix`]). Off by default.
    pub prefix: prefix::PrefixConfig,
    /// GRPO's settings.
    pub grpo: GrpoConfig,
    /// PPO's settings.
    pub ppo: PpoConfig,
    /// The KL reference.
    pub reference: ReferenceConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Grpo,
            rft_threshold: 1.0,
            preference: preference::PreferenceConfig::default(),
            prefix: prefix::PrefixConfig::default(),
            lr: 1e-5,
            warmup: 0,
            weight_decay: 0.0,
            grad_clip: 1.0,
            epochs: 1,
            minibatch: 0,
            clip_low: 0.2,
            clip_high: 0.2,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            aggregation: Aggregation::TokenMean,
            norm_len: 0,
            dynamic_sampling: false,
            max_resample: 3,
            overlong_filter: false,
            grpo: GrpoConfig::default(),
            ppo: PpoConfig::default(),
            reference: ReferenceConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks the settings that would otherwise fail deep inside an update.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Config(format!("[train] {m}")));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr must be a positive number");
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if !(0.0..1.0).contains(&self.clip_low) || self.clip_high < 0.0 {
            return bad("clip_low must be in [0, 1) and clip_high at least 0");
        }
        if self.kl_coef < 0.0 || self.grad_clip < 0.0 || self.weight_decay < 0.0 {
            return bad("kl_coef, grad_clip and weight_decay must not be negative");
        }
        if !(0.0..=1.0).contains(&self.ppo.lambda) || !(0.0..=1.0).contains(&self.ppo.gamma) {
            return bad("ppo.gamma and ppo.lambda must be in [0, 1]");
        }
        self.prefix.validate().or_else(|e| bad(&e))?;
        if self.prefix.on() && !matches!(self.algorithm, Algorithm::Grpo | Algorithm::Gspo | Algorithm::Cispo) {
            return bad("prefix (Prefix-RFT) works with the grpo, gspo and cispo algorithms");
        }
        if matches!(self.algorithm, Algorithm::Dpo | Algorithm::Ipo | Algorithm::Orpo) {
            let p = &self.preference;
            if !(p.beta > 0.0 && p.beta.is_finite() && p.orpo_lambda >= 0.0 && p.orpo_lambda.is_finite()) {
                return bad("preference.beta must be above 0 and preference.orpo_lambda at least 0");
            }
            if self.minibatch != 0 {
                return bad("the preference losses need each pair in one step: set minibatch = 0");
            }
        }
        Ok(())
    }
}

/// An update could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad settings or data that does not fit the model.
    #[error("{0}")]
    Config(String),
    /// A sequence the model cannot score.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// Reading or writing weights or optimiser state.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// One sequence of a training batch.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Every token of the episode.
    pub tokens: Vec<u32>,
    /// Per predicted token (`tokens[1..]`): 1.0 where it carries loss.
    pub mask: Vec<f32>,
    /// Per predicted token: its advantage (0 where masked).
    pub advantages: Vec<f32>,
    /// Per predicted token: the value head's target (PPO).
    pub returns: Vec<f32>,
    /// Per predicted token: the log-prob before the update (the ratio's denominator).
    pub old_logp: Vec<f32>,
    /// Per predicted token: the value before the update (PPO's value clip).
    pub old_values: Vec<f32>,
    /// Per predicted token: the reference's log-prob (when the KL term is on).
    pub ref_logp: Vec<f32>,
    /// Per predicted token: the log-prob the sampler recorded (0 where masked).
    pub sample_logp: Vec<f32>,
    /// Per predicted token: 1.0 on forced-prefix tokens (Prefix-RFT), which `mask` leaves out;
    /// empty when the episode had none.
    pub forced: Vec<f32>,
    /// The episode's reward (PPO's GAE starts from it).
    pub reward: f32,
    /// The index of its group in the update's batch (pairs the preference losses' rows).
    pub group: usize,
}

/// `[rows, width]` from per-row host vectors, zero-padded.
fn pad2(rows: &[&[f32]], width: usize, device: &Device) -> Tensor<2> {
    let mut flat = Vec::with_capacity(rows.len() * width);
    for r in rows {
        flat.extend_from_slice(&r[..r.len().min(width)]);
        flat.extend(std::iter::repeat_n(0.0, width.saturating_sub(r.len())));
    }
    Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
}

/// Rows of a `[rows, width]` tensor back on the host, each cut to `lens[i]`.
fn unpad2(t: Tensor<2>, lens: &[usize]) -> Vec<Vec<f32>> {
    let [_, width] = t.dims();
    let flat: Vec<f32> = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    lens.iter().enumerate().map(|(i, &n)| flat[i * width..i * width + n].to_vec()).collect()
}

/// Sequences per no-grad forward pass when scoring a batch before the update.
const SCORE_CHUNK: usize = 32;

/// The global L2 norm of the gradients of `model`'s parameters.
fn grad_norm(model: &Model, grads: &GradientsParams) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sq: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.sq += f64::from(g.square().sum().into_scalar::<f32>());
            }
        }
    }
    let mut v = Norm { grads, sq: 0.0 };
    model.visit(&mut v);
    v.sq.sqrt()
}

/// Multiplies every gradient of `model`'s parameters by `scale`.
fn scale_grads(model: &Model, grads: &mut GradientsParams, scale: f32) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        scale: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.scale));
            }
        }
    }
    model.visit(&mut Scale { grads, scale });
}

/// An AdamW optimiser with the settings the trainers share.
pub(crate) fn adamw(weight_decay: f32) -> ModuleOptimizer {
    AdamWConfig::new().with_weight_decay(weight_decay).with_epsilon(1e-8).init()
}

/// One optimiser step on `loss`: backward, global-norm clipping, AdamW. Returns the new model
/// and the gradient norm before clipping.
pub(crate) fn optimiser_step(
    model: Model,
    loss: Tensor<1>,
    optim: &mut ModuleOptimizer,
    lr: f64,
    clip: f32,
) -> (Model, f64) {
    let grads = loss.backward();
    let mut grads = GradientsParams::from_grads(grads, &model);
    let norm = grad_norm(&model, &grads);
    if clip > 0.0 && norm > f64::from(clip) {
        scale_grads(&model, &mut grads, (f64::from(clip) / norm) as f32);
    }
    (optim.step(lr, model, grads), norm)
}

/// Averages checkpoints weight by weight (a model soup, Wortsman et al. 2022).
pub fn soup(paths: &[PathBuf], device: &Device) -> Result<Model, TrainError> {
    let mut models = Vec::new();
    for p in paths {
        models.push(load_checkpoint(p, device).map_err(|e| TrainError::Config(format!("{}: {e}", p.display())))?.0);
    }
    let Some(first) = models.first() else {
        return Err(TrainError::Config("a soup needs at least one checkpoint".into()));
    };
    let config = first.config().clone();
    let weights: Vec<(Weights, f64)> =
        models.iter().map(|m| Ok((m.to_weights()?, 1.0 / models.len() as f64))).collect::<Result<_, TrainError>>()?;
    let avg = Weights::combine(None, &weights)?;
    Ok(Model::from_weights(&config, avg, device)?)
}

/// The RL update: holds the optimiser, the reference model and the settings across iterations.
pub struct Trainer {
    config: TrainConfig,
    optim: ModuleOptimizer,
    reference: Option<Model>,
    norm_len: f32,
    max_new_tokens: usize,
}

impl Trainer {
    /// A trainer for `policy`. `episode_tokens` is the rollout's policy-token budget per episode
    /// (Dr. GRPO's default length); `max_new_tokens` the per-turn budget (overlong filtering).
    /// PPO adds a value head (zero, so values start at 0) to a model without one.
    pub fn new(
        config: TrainConfig,
        policy: &mut LmPolicy,
        episode_tokens: usize,
        max_new_tokens: usize,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if config.algorithm == Algorithm::Ppo && policy.model.value_head.is_none() {
            policy.model = policy.model.clone().with_value_head();
            if let Some(l) = &mut policy.lora {
                l.model = l.model.clone().with_value_head();
            }
        }
        let reference = if config.kl_coef > 0.0 || matches!(config.algorithm, Algorithm::Dpo | Algorithm::Ipo) {
            Some(if config.reference.soup.is_empty() {
                policy.model.clone()
            } else {
                soup(&config.reference.soup, &policy.model.device())?
            })
        } else {
            None
        };
        let norm_len = if config.norm_len > 0 { config.norm_len } else { episode_tokens.max(1) } as f32;
        Ok(Self { optim: adamw(config.weight_decay), config, reference, norm_len, max_new_tokens })
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Writes the optimiser state and the reference model (when there is one) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let bytes = self.optim.into_bytes().map_err(|e| TrainError::Config(format!("optimiser state: {e:?}")))?;
        let path = dir.join("optimizer.bpk");
        std::fs::write(&path, &bytes[..]).map_err(|e| WeightsError::io(&path, e))?;
        // The reference is saved even when it never changes: a resumed run builds its trainer
        // from the checkpoint's policy, which is not the policy training started from.
        if let Some(r) = &self.reference {
            r.to_weights()?.write_safetensors(&dir.join("reference.safetensors"))?;
        }
        Ok(())
    }

    /// Restores what [`Trainer::save`] wrote.
    pub fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let path = dir.join("optimizer.bpk");
        let bytes = std::fs::read(&path).map_err(|e| WeightsError::io(&path, e))?;
        let optim = std::mem::replace(&mut self.optim, adamw(self.config.weight_decay));
        self.optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| TrainError::Config(format!("{}: {e:?}", path.display())))?;
        let reference = dir.join("reference.safetensors");
        if let Some(r) = &mut self.reference
            && reference.exists()
        {
            let mut w = Weights::default();
            w.read_safetensors(&reference)?;
            *r = Model::from_weights(r.config(), w, &r.device())?;
        }
        Ok(())
    }

    /// One update of `policy` from the scored `groups` of iteration `iteration`, by the
    /// configured algorithm (see [`grpo`] and [`ppo`]). Returns the metrics (`loss/*`,
    /// `train/*`).
    pub fn update(
        &mut self,
        policy: &mut LmPolicy,
        groups: &[Group],
        iteration: u64,
    ) -> Result<BTreeMap<String, f64>, TrainError> {
        match self.config.algorithm {
            Algorithm::Grpo | Algorithm::Gspo | Algorithm::Cispo | Algorithm::Rft => {
                grpo::update(self, policy, groups, iteration)
            }
            Algorithm::Ppo => ppo::update(self, policy, groups, iteration),
            Algorithm::ReinforcePp => reinforce_pp::update(self, policy, groups, iteration),
            Algorithm::Dpo | Algorithm::Ipo | Algorithm::Orpo => preference::update(self, policy, groups, iteration),
        }
    }

    /// The training rows of `groups`: every scored sample with a policy token, its tokens as
    /// sampled, its loss mask, and on each loss token the advantage `advantages` gives it from
    /// its group's rewards (the rewards of the group's scored samples, in order). Left out and
    /// counted: samples without a reward (`train/unscored`), overlong ones when
    /// `overlong_filter` is on (`train/overlong_filtered`), and with `drop_flat` those whose
    /// advantage is 0 (`train/zero_advantage`). Also counts `train/rows` and `train/tokens`.
    fn rows(
        &self,
        policy: &LmPolicy,
        groups: &[Group],
        advantages: impl Fn(&[f64]) -> Vec<f64>,
        drop_flat: bool,
    ) -> (Vec<Row>, BTreeMap<String, f64>) {
        let mut rows = Vec::new();
        let (mut overlong, mut flat, mut failed) = (0usize, 0usize, 0usize);
        for (group, g) in groups.iter().enumerate() {
            let scored: Vec<(&rlvr_engine::Sample, f64)> =
                g.samples.iter().filter_map(|s| s.reward().map(|r| (s, r))).collect();
            failed += g.samples.len() - scored.len();
            let rewards: Vec<f64> = scored.iter().map(|(_, r)| *r).collect();
            let adv = advantages(&rewards);
            for ((sample, reward), a) in scored.iter().zip(adv) {
                let tr = &sample.trajectory;
                if tr.tokens.len() < 2 || tr.policy_tokens() == 0 {
                    continue;
                }
                if self.config.overlong_filter && self.overlong(policy, tr) {
                    overlong += 1;
                    continue;
                }
                if drop_flat && a == 0.0 {
                    flat += 1;
                    continue;
                }
                let mask: Vec<f32> = tr.loss_mask[1..].iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
                let forced: Vec<f32> = if tr.forced.is_empty() {
                    Vec::new()
                } else {
                    tr.forced[1..].iter().map(|&f| if f { 1.0 } else { 0.0 }).collect()
                };
                // Forced tokens carry the sample's advantage too; the algorithm decides which of
                // them join the loss.
                let advantages =
                    mask.iter().enumerate().map(|(i, m)| (m + forced.get(i).unwrap_or(&0.0)) * a as f32).collect();
                let sample_logp = tr.logprobs.get(1..).unwrap_or_default().to_vec();
                let reward = *reward as f32;
                rows.push(Row {
                    tokens: tr.tokens.clone(),
                    mask,
                    advantages,
                    forced,
                    sample_logp,
                    reward,
                    group,
                    ..Row::default()
                });
            }
        }
        let mut m = BTreeMap::new();
        m.insert("train/overlong_filtered".into(), overlong as f64);
        m.insert("train/zero_advantage".into(), flat as f64);
        m.insert("train/unscored".into(), failed as f64);
        m.insert("train/rows".into(), rows.len() as f64);
        m.insert("train/tokens".into(), rows.iter().map(|r| r.mask.iter().sum::<f32>() as f64).sum());
        let forced: f64 = rows.iter().map(|r| r.forced.iter().sum::<f32>() as f64).sum();
        if forced > 0.0 {
            m.insert("train/forced_tokens".into(), forced);
        }
        (rows, m)
    }

    /// The last turn of `tr` ran out of tokens: it holds `max_new_tokens` sampled tokens and
    /// does not end with a stop token.
    fn overlong(&self, policy: &LmPolicy, tr: &rlvr_engine::Trajectory) -> bool {
        let last_turn = tr.loss_mask.iter().rev().skip_while(|m| !**m).take_while(|m| **m).count();
        let end = tr.loss_mask.iter().rposition(|m| *m);
        let stopped = end.is_some_and(|i| policy.options.stop_tokens.contains(&tr.tokens[i]));
        last_turn >= self.max_new_tokens && !stopped
    }

    /// The no-grad pass before the first optimiser step: fills each row's `old_logp` (the
    /// ratio's denominators) and `old_values` (when the model has a value head) from the current
    /// policy, and `ref_logp` from the reference when there is one, [`SCORE_CHUNK`] rows at a
    /// time.
    fn scoring_pass(&self, policy: &LmPolicy, rows: &mut [Row], temperature: f32) -> Result<(), TrainError> {
        for chunk in rows.chunks_mut(SCORE_CHUNK) {
            let seqs: Vec<&[u32]> = chunk.iter().map(|r| r.tokens.as_slice()).collect();
            let lens: Vec<usize> = chunk.iter().map(|r| r.tokens.len() - 1).collect();
            let f = forward(&policy.model, &seqs, temperature)?;
            let old = unpad2(f.logp, &lens);
            let values = f.values.map(|v| unpad2(v, &lens));
            let refs = match &self.reference {
                Some(r) => Some(unpad2(forward(r, &seqs, temperature)?.logp, &lens)),
                None => None,
            };
            for (i, row) in chunk.iter_mut().enumerate() {
                row.old_logp = old[i].clone();
                if let Some(r) = &refs {
                    row.ref_logp = r[i].clone();
                }
                if let Some(v) = &values {
                    row.old_values = v[i].clone();
                }
            }
        }
        Ok(())
    }

    /// The optimisation both algorithms share: `epochs` passes over `rows`, each in a seeded
    /// shuffled order cut into `minibatch` rows per step; per minibatch, the training forward,
    /// the algorithm's `objective` (the loss to step on; it records its own metrics) and one
    /// AdamW step. Then the trained model goes back into `policy`, and the reference becomes the
    /// policy when `reset_every` says so.
    ///
    /// With `one_pass` the old log-probs are the training forward's own, detached (the caller
    /// skipped the scoring pass); otherwise the rows'. Adds to `metrics` `train/lr` and the mean
    /// over minibatches of what `objective` records and of `train/sampler_logp_gap` (first
    /// epoch), `train/entropy`, `train/approx_kl_old` and `train/grad_norm`.
    fn optimise(
        &mut self,
        policy: &mut LmPolicy,
        rows: &[Row],
        iteration: u64,
        one_pass: bool,
        metrics: &mut BTreeMap<String, f64>,
        mut objective: impl FnMut(&Minibatch<'_>, &mut Means) -> Tensor<1>,
    ) -> Result<(), TrainError> {
        let c = &self.config;
        let temperature = policy.options.sampling.temperature;
        let lr = c.lr * warmup_factor(iteration, c.warmup);
        metrics.insert("train/lr".into(), lr);
        let (mut model, device) = policy.training_copy();
        let size = if c.minibatch == 0 { rows.len() } else { c.minibatch };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut means = Means::default();
        for epoch in 0..c.epochs {
            shuffle(&mut order, rlvr_engine::seed::derive(iteration, &[u64::from(epoch), 0x7261_696e]));
            for chunk in order.chunks(size) {
                let picked = chunk.iter().map(|&i| &rows[i]).collect();
                let batch = Minibatch::new(&model, picked, &device, temperature, epoch, one_pass)?;
                if epoch == 0 {
                    // How far the trainer's log-probs are from the sampler's: near 0 unless
                    // sampling truncates the distribution (top-p, top-k) or the two disagree
                    // about the context.
                    let gap = (batch.old_logp.clone() - batch.col(|r| &r.sample_logp)).abs();
                    means.add("train/sampler_logp_gap", loss::masked_mean(gap, batch.mask.clone()));
                }
                let total = objective(&batch, &mut means);
                let Minibatch { mask, logp, old_logp, entropy, .. } = batch;
                means.add("train/entropy", loss::masked_mean(entropy, mask.clone()));
                let approx_kl = loss::kl_per_token(logp.detach(), old_logp, KlEstimator::K3);
                means.add("train/approx_kl_old", loss::masked_mean(approx_kl, mask));
                let (next, norm) = optimiser_step(model, total, &mut self.optim, lr, c.grad_clip);
                model = next;
                means.add("train/grad_norm", norm);
            }
        }
        policy.set_trained(model.valid());
        if c.reference.reset_every > 0
            && (iteration + 1).is_multiple_of(c.reference.reset_every)
            && let Some(r) = &mut self.reference
        {
            *r = policy.model.clone();
        }
        for (k, (sum, n)) in means.0 {
            metrics.insert(k.into(), sum / n.max(1.0));
        }
        Ok(())
    }
}

/// One minibatch on the autodiff device: its rows, and the training forward over them.
struct Minibatch<'a> {
    rows: Vec<&'a Row>,
    /// The longest row's predicted tokens: every column is padded to it.
    width: usize,
    device: Device,
    /// The pass over the batch this minibatch belongs to, from 0.
    epoch: u32,
    /// 1.0 at loss tokens.
    mask: Tensor<2>,
    /// The log-probs under the model being trained, with the graph.
    logp: Tensor<2>,
    /// The ratio's denominators.
    old_logp: Tensor<2>,
    /// The value head's estimates, with the graph, when the model has a value head.
    values: Option<Tensor<2>>,
    /// The entropy of each position's sampling distribution (a metric).
    entropy: Tensor<2>,
}

impl<'a> Minibatch<'a> {
    /// Runs `model` over `rows`; with `one_pass` the old log-probs are the forward's own,
    /// detached, otherwise the rows' `old_logp`.
    fn new(
        model: &Model,
        rows: Vec<&'a Row>,
        device: &Device,
        temperature: f32,
        epoch: u32,
        one_pass: bool,
    ) -> Result<Self, TrainError> {
        let seqs: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
        let width = rows.iter().map(|r| r.mask.len()).max().unwrap_or(0);
        let col = |field: fn(&Row) -> &[f32]| pad2(&rows.iter().map(|r| field(r)).collect::<Vec<_>>(), width, device);
        let mask = col(|r| &r.mask);
        let f = forward(model, &seqs, temperature)?;
        let old_logp = if one_pass { f.logp.clone().detach() } else { col(|r| &r.old_logp) };
        let (logp, values, entropy) = (f.logp, f.values, f.entropy);
        Ok(Self { rows, width, device: device.clone(), epoch, mask, logp, old_logp, values, entropy })
    }

    /// One per-token field of the rows as a `[rows, width]` tensor, zero-padded.
    fn col(&self, field: fn(&Row) -> &[f32]) -> Tensor<2> {
        pad2(&self.rows.iter().map(|r| field(r)).collect::<Vec<_>>(), self.width, &self.device)
    }
}

/// Metrics recorded once per minibatch, averaged over the update's minibatches.
#[derive(Default)]
struct Means(BTreeMap<&'static str, (f64, f64)>);

impl Means {
    /// Records one minibatch's `value` of the metric `name`.
    fn add(&mut self, name: &'static str, value: f64) {
        let e = self.0.entry(name).or_insert((0.0, 0.0));
        e.0 += value;
        e.1 += 1.0;
    }
}

/// The share of the learning rate used at `iteration` with `warmup` iterations of linear warmup.
fn warmup_factor(iteration: u64, warmup: u64) -> f64 {
    if warmup == 0 { 1.0 } else { ((iteration + 1) as f64 / warmup as f64).min(1.0) }
}

/// A seeded Fisher-Yates shuffle (the order of minibatches is part of the run's determinism).
pub(crate) fn shuffle(xs: &mut [usize], seed: u64) {
    let mut s = seed;
    for i in (1..xs.len()).rev() {
        s = rlvr_engine::seed::mix(s.wrapping_add(i as u64));
        xs.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

#[cfg(test)]
mod tests;
