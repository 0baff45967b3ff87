//! SFT: cross-entropy on demonstrations, masked to the response, as the warm start before RL.
//!
//! A demonstration is a prompt (the environment's opening messages, rendered by the policy's chat
//! template exactly as a rollout renders them) and the assistant's answer followed by the
//! template's end-of-turn token, so the model learns to stop where generation stops. The
//! demonstrations come from an environment's gold player or a JSONL file.

use super::{TrainError, adamw, forward, loss, optimiser_step, pad2, shuffle};
use crate::generate::forward_dist;
use crate::lm::LmPolicy;
use burn::module::Module;
use burn::tensor::Tensor;
use rlvr_engine::{Message, Policy, Role};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// `[sft]`: the warm start's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// Optimiser steps. Default 100.
    pub steps: u64,
    /// Demonstrations per step. Default 16.
    pub batch_size: usize,
    /// AdamW learning rate (the peak, with `decay`). Default 1e-4.
    pub lr: f64,
    /// Decay the learning rate linearly to 0 over `steps`. Default true: with a constant rate
    /// the last steps' noise decides where the warm start ends, and short runs end far apart.
    pub decay: bool,
    /// AdamW weight decay. Default 0.
    pub weight_decay: f32,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f32,
    /// `gold` (the environment's gold answers on training tasks) or a JSONL file of
    /// `{"messages": [...]}` whose last message is the assistant's answer. Default `gold`.
    pub data: String,
    /// Training tasks to draw gold demonstrations from; 0 means `steps × batch_size`. Default 0.
    pub tasks: u64,
    /// The loss: `ce` (cross-entropy), `dft` (dynamic fine-tuning: each token's cross-entropy
    /// weighted by its own detached probability, [`dft_loss`]) or `asft` (DFT anchored to the
    /// starting model by a KL term, [`anchor_kl`]). Default `ce`.
    pub loss: SftLoss,
    /// ASFT's weight on the anchor, `KL(start ‖ model)` per response token. Default 0.1, as
    /// the paper's code and LLaMA-Factory set it.
    pub asft_alpha: f64,
}

/// The SFT loss (`[sft] loss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SftLoss {
    /// Cross-entropy: minus the mean log-probability of the response tokens.
    #[default]
    Ce,
    /// Dynamic fine-tuning (Wu et al. 2025, "On the Generalization of SFT: A Reinforcement
    /// Learning Perspective with Reward Rectification"): `-sg(p)·log p` per token. SFT's gradient
    /// is a policy gradient whose implicit reward is `1/p`, which blows up on tokens the model
    /// finds unlikely; weighting by `p` cancels it.
    Dft,
    /// Anchored SFT (Zhu et al. 2025, "Anchored Supervised Fine-Tuning"): DFT plus
    /// `asft_alpha · KL(π_start ‖ π)` over the full vocabulary at each response token. DFT's
    /// reweighting drifts without an anchor; the KL term to the model the warm start began
    /// from holds it.
    Asft,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 16,
            lr: 1e-4,
            decay: true,
            weight_decay: 0.0,
            grad_clip: 1.0,
            data: "gold".into(),
            tasks: 0,
            loss: SftLoss::Ce,
            asft_alpha: 0.1,
        }
    }
}

/// One demonstration, as tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Demo {
    /// The prompt, ending with the assistant-turn header.
    pub context: Vec<u32>,
    /// The answer and the end-of-turn token: the only tokens with loss.
    pub response: Vec<u32>,
}

/// Renders `prompt` and `answer` with `policy`'s template and tokenizer.
pub fn demo(policy: &LmPolicy, prompt: &[Message], answer: &str) -> Result<Demo, TrainError> {
    let context = policy.encode(prompt, true).map_err(|e| TrainError::Config(e.to_string()))?;
    let mut response = policy.tokenizer.encode(answer).map_err(TrainError::Config)?;
    let eot = policy.template.end_of_turn();
    response
        .push(policy.tokenizer.special(eot).ok_or_else(|| TrainError::Config(format!("the tokenizer has no {eot}")))?);
    Ok(Demo { context, response })
}

/// Reads a JSONL file of `{"messages": [...]}` lines; the last message of each must be the
/// assistant's. Errors name the line.
pub fn read_jsonl(path: &Path) -> Result<Vec<(Vec<Message>, String)>, TrainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Config(format!("cannot read SFT data {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        #[derive(Deserialize)]
        struct Line {
            messages: Vec<Message>,
        }
        let at = |m: String| TrainError::Config(format!("{}:{}: {m}", path.display(), i + 1));
        let mut l: Line = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        match l.messages.pop() {
            Some(last) if last.role == Role::Assistant && !l.messages.is_empty() => {
                out.push((l.messages, last.content))
            }
            _ => return Err(at("the last message must be the assistant's, after at least one other".into())),
        }
    }
    if out.is_empty() {
        return Err(TrainError::Config(format!("{}: no demonstrations", path.display())));
    }
    Ok(out)
}

/// Cross-entropy of the masked tokens: minus their mean log-probability.
pub fn cross_entropy(logp: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    -loss::aggregate(logp, mask, loss::Aggregation::TokenMean, 0.0)
}

/// DFT's loss: over the masked tokens, the mean of `-sg(p)·log p` with `p = exp(logp)`; the
/// gradient of a token's log-probability is `-p/N` where cross-entropy's is `-1/N`.
pub fn dft_loss(logp: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let weight = logp.clone().exp().detach();
    -loss::aggregate(weight * logp, mask, loss::Aggregation::TokenMean, 0.0)
}

/// ASFT's anchor: over the masked positions, the mean of `KL(ref ‖ model) = Σ_v q_v·(log q_v -
/// log p_v)`, from the full log-distributions `logp_all` (the model's) and `ref_all` (the
/// reference's, `[batch, positions, vocab]`, detached here). The direction is the one ASFT's
/// code computes (`kl_div(log p, q)`): mass the reference gives a token must stay with it.
pub fn anchor_kl(logp_all: Tensor<3>, ref_all: Tensor<3>, mask: Tensor<2>) -> Tensor<1> {
    let ref_all = ref_all.detach();
    let kl = (ref_all.clone().exp() * (ref_all - logp_all)).sum_dim(2).squeeze_dim::<2>(2);
    loss::aggregate(kl, mask, loss::Aggregation::TokenMean, 0.0)
}

/// What a warm start did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SftReport {
    /// Optimiser steps taken.
    pub steps: u64,
    /// Loss of the first and the last step.
    pub first_loss: f64,
    /// Loss of the last step.
    pub last_loss: f64,
    /// Response tokens trained on, over all steps.
    pub tokens: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Trains `policy` on `demos` for `config.steps` steps (batches drawn by a seeded shuffle,
/// epoch after epoch); `on_step(step, loss)` sees every step.
pub fn train(
    policy: &mut LmPolicy,
    demos: &[Demo],
    config: &SftConfig,
    seed: u64,
    mut on_step: impl FnMut(u64, f64),
) -> Result<SftReport, TrainError> {
    if demos.is_empty() || config.batch_size == 0 {
        return Err(TrainError::Config("[sft] needs demonstrations and batch_size of at least 1".into()));
    }
    let started = Instant::now();
    let (mut model, device) = policy.training_copy();
    let mut optim = adamw(config.weight_decay);
    // ASFT's anchor: the model as the warm start found it, frozen, on the same device.
    let anchor = (config.loss == SftLoss::Asft).then(|| policy.model.clone().to_device(&device).no_grad());
    let rows: Vec<(Vec<u32>, Vec<f32>)> = demos
        .iter()
        .map(|d| {
            let mut tokens = d.context.clone();
            tokens.extend_from_slice(&d.response);
            let mut mask = vec![0.0; d.context.len().saturating_sub(1)];
            mask.extend(std::iter::repeat_n(1.0, d.response.len()));
            (tokens, mask)
        })
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut report = SftReport::default();
    let (mut epoch, mut pos) = (0u64, order.len());
    for step in 0..config.steps {
        let mut batch = Vec::with_capacity(config.batch_size);
        while batch.len() < config.batch_size.min(rows.len()) {
            if pos == order.len() {
                shuffle(&mut order, rlvr_engine::seed::derive(seed, &[epoch, 0x5f7f]));
                epoch += 1;
                pos = 0;
            }
            batch.push(&rows[order[pos]]);
            pos += 1;
        }
        let seqs: Vec<&[u32]> = batch.iter().map(|r| r.0.as_slice()).collect();
        let width = batch.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let mask = pad2(&batch.iter().map(|r| r.1.as_slice()).collect::<Vec<_>>(), width, &device);
        let ce = match (config.loss, &anchor) {
            (SftLoss::Asft, Some(anchor)) => {
                let (f, all) = forward_dist(&model, &seqs, 1.0)?;
                let (_, ref_all) = forward_dist(anchor, &seqs, 1.0)?;
                let kl = anchor_kl(all, ref_all, mask.clone());
                dft_loss(f.logp, mask) + kl.mul_scalar(config.asft_alpha)
            }
            (SftLoss::Dft | SftLoss::Asft, _) => dft_loss(forward(&model, &seqs, 1.0)?.logp, mask),
            (SftLoss::Ce, _) => cross_entropy(forward(&model, &seqs, 1.0)?.logp, mask),
        };
        let value = f64::from(ce.clone().detach().into_scalar::<f32>());
        let lr = if config.decay { config.lr * (1.0 - step as f64 / config.steps as f64) } else { config.lr };
        let (next, _) = optimiser_step(model, ce, &mut optim, lr, config.grad_clip);
        model = next;
        if step == 0 {
            report.first_loss = value;
        }
        report.last_loss = value;
        report.steps = step + 1;
        report.tokens += batch.iter().map(|r| r.1.iter().sum::<f32>() as u64).sum::<u64>();
        on_step(step, value);
    }
    policy.set_trained(model.valid());
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
