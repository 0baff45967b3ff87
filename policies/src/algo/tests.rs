//! Updates on a small random model: the direction of each gradient, and checkpoints of the
//! optimiser that resume exactly.

use super::sft::{self, Demo, SftConfig};
use super::*;
use crate::lm::LmPolicy;
use crate::model::ModelConfig;
use crate::sample::SamplingConfig;
use crate::tokenizer::{ChatTemplate, Tokenizer};
use rlvr_engine::{Outcome, Rubric, Sample, Status, Task, Trajectory};
use std::sync::Arc;

/// The shared small test model with a tied head, as the presets have.
fn small() -> ModelConfig {
    ModelConfig { tie_word_embeddings: true, ..crate::tests::small() }
}

fn policy(seed: u64) -> LmPolicy {
    let model = Model::random(&small(), seed, &crate::tests::test_device()).unwrap();
    LmPolicy::new(model, Tokenizer::Bytes, ChatTemplate::chatml(), SamplingConfig::default(), vec![]).unwrap()
}

const PROMPT: &[u32] = &[10, 20, 30, 40];

/// A group of one task: each answer is a few sampled tokens after `PROMPT`; the rubric gives 1
/// to answers ending in token 7.
fn group(answers: &[&[u32]]) -> Group {
    let rubric = Rubric::new().term("hit", 1.0, |_: &Task, tr: &Trajectory| Ok((tr.tokens.last() == Some(&7)).into()));
    let task = Arc::new(Task::new("t", serde_json::json!({})));
    let samples = answers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut tr = Trajectory { status: Status::Terminated, ..Trajectory::default() };
            tr.push_context(PROMPT);
            tr.push_sampled(a, &vec![0.0; a.len()]);
            let outcome = Outcome::Scored(rubric.score(&task, &tr));
            Sample { sample_index: i as u32, seed: 0, trajectory: tr, outcome }
        })
        .collect();
    Group { task_index: 0, task, samples }
}

/// The summed log-prob of `answer` after `PROMPT` under `p`.
fn logp(p: &LmPolicy, answer: &[u32]) -> f64 {
    let mut seq = PROMPT.to_vec();
    seq.extend_from_slice(answer);
    let f = forward(&p.model, &[&seq], 1.0).unwrap();
    let v: Vec<f32> = f.logp.into_data().try_into_vec().unwrap();
    v[PROMPT.len() - 1..].iter().map(|&x| f64::from(x)).sum()
}

const GOOD: &[u32] = &[5, 6, 7];
const BAD: &[u32] = &[5, 6, 8];

#[test]
fn a_grpo_step_raises_the_rewarded_sample_and_lowers_the_other() {
    let mut p = policy(1);
    let (good, bad) = (logp(&p, GOOD), logp(&p, BAD));
    let config = TrainConfig { lr: 1e-2, ..TrainConfig::default() };
    let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
    let m = t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
    assert!(logp(&p, GOOD) > good, "{} -> {}", good, logp(&p, GOOD));
    assert!(logp(&p, BAD) < bad, "{} -> {}", bad, logp(&p, BAD));
    assert_eq!(m["train/rows"], 2.0);
    assert_eq!(m["train/tokens"], 6.0, "only the sampled tokens carry loss");
    // On-policy first step: the ratio is exactly 1, nothing is clipped.
    assert_eq!((m["train/clip_frac"], m["train/approx_kl_old"]), (0.0, 0.0));
    assert!(m["loss/policy"].abs() < 1e-6, "the surrogate of centred advantages at ratio 1 is 0");
    assert!(m["train/grad_norm"] > 0.0 && m["train/entropy"] > 0.0);
}

/// Gradient checkpointing recomputes activations instead of keeping them: the update it makes
/// is the one without it, weight for weight, for RL and for SFT.
#[test]
fn gradient_checkpointing_makes_the_same_update() {
    let step = |checkpointing: bool| {
        let mut p = policy(4);
        p.gradient_checkpointing = checkpointing;
        let config = TrainConfig { lr: 1e-2, ..TrainConfig::default() };
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, &[group(&[GOOD, BAD]), group(&[&[9, 7], &[9, 9, 9]])], 0).unwrap();
        let demos = vec![Demo { context: vec![1, 2, 3], response: vec![60, 61] }];
        sft::train(
            &mut p,
            &demos,
            &SftConfig { steps: 2, batch_size: 1, lr: 1e-2, ..SftConfig::default() },
            0,
            |_, _| {},
        )
        .unwrap();
        (p.model.to_weights().unwrap(), m["train/grad_norm"])
    };
    let ((plain, norm), (recomputed, norm_again)) = (step(false), step(true));
    assert!((norm - norm_again).abs() < 1e-5 * norm.max(1.0), "{norm} vs {norm_again}");
    for (name, t) in &plain.0 {
        assert!(max_diff(t, &recomputed.0[name]) < 1e-5, "{name} differs");
    }
    let strategy = |on: bool| {
        let mut p = policy(4);
        p.gradient_checkpointing = on;
        p.autodiff_device().gradient_checkpointing_strategy()
    };
    assert_ne!(strategy(true), strategy(false), "the flag reaches the device");
}

/// GSPO and CISPO share GRPO's advantages and move the policy the same way on a first,
/// on-policy step; GSPO's tight clip does not bind at ratio 1.
#[test]
fn gspo_and_cispo_steps_raise_the_rewarded_sample_and_lower_the_other() {
    for (algorithm, clip_low, clip_high) in [(Algorithm::Gspo, 3e-4, 4e-4), (Algorithm::Cispo, 0.99, 0.28)] {
        let mut p = policy(1);
        let (good, bad) = (logp(&p, GOOD), logp(&p, BAD));
        let config = TrainConfig { algorithm, lr: 1e-2, clip_low, clip_high, ..TrainConfig::default() };
        config.validate().unwrap();
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
        assert!(logp(&p, GOOD) > good, "{algorithm:?}: {} -> {}", good, logp(&p, GOOD));
        assert!(logp(&p, BAD) < bad, "{algorithm:?}: {} -> {}", bad, logp(&p, BAD));
        assert_eq!(m["train/clip_frac"], 0.0, "{algorithm:?}");
    }
}

/// Prefix-RFT: a guided sample's forced tokens carry no loss unless `entropy_top` keeps them;
/// kept, a rewarded prefix is imitated (its log-prob rises more than when only the sampled
/// continuation trains).
#[test]
fn forced_prefix_tokens_train_only_where_entropy_top_keeps_them() {
    const FORCED: &[u32] = &[5, 6];
    let rubric = Rubric::new().term("hit", 1.0, |_: &Task, tr: &Trajectory| Ok((tr.tokens.last() == Some(&7)).into()));
    let task = Arc::new(Task::new("t", serde_json::json!({})));
    let sample = |i: u32, forced: &[u32], sampled: &[u32]| {
        let mut tr = Trajectory { status: Status::Terminated, ..Trajectory::default() };
        tr.push_context(PROMPT);
        tr.push_forced(forced);
        tr.push_sampled(sampled, &vec![0.0; sampled.len()]);
        let outcome = Outcome::Scored(rubric.score(&task, &tr));
        Sample { sample_index: i, seed: 0, trajectory: tr, outcome }
    };
    let g =
        Group { task_index: 0, task: task.clone(), samples: vec![sample(0, FORCED, &[7]), sample(1, &[], &[9, 8])] };
    let gain = |entropy_top: f64| {
        let mut p = policy(1);
        let before = logp(&p, FORCED);
        let prefix = prefix::PrefixConfig { samples: 1, entropy_top, ..prefix::PrefixConfig::default() };
        let config = TrainConfig { lr: 1e-2, prefix, ..TrainConfig::default() };
        config.validate().unwrap();
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, std::slice::from_ref(&g), 0).unwrap();
        assert_eq!((m["train/tokens"], m["train/forced_tokens"]), (3.0, 2.0), "sampled and forced counted apart");
        (logp(&p, FORCED) - before, m["train/forced_trained_share"])
    };
    let ((none, share_none), (half, share_half), (all, share_all)) = (gain(0.0), gain(0.5), gain(1.0));
    assert_eq!((share_none, share_half, share_all), (0.0, 0.5, 1.0));
    assert!(all > none && half > none, "kept forced tokens are imitated: {none} < {half}, {all}");
    let prefix = prefix::PrefixConfig { samples: 1, ..prefix::PrefixConfig::default() };
    let ppo = TrainConfig { algorithm: Algorithm::Ppo, prefix, ..TrainConfig::default() };
    assert!(ppo.validate().unwrap_err().to_string().contains("grpo, gspo and cispo"));
}

/// REINFORCE++'s batch-whitened returns move a first step the same way, with and without the
/// KL penalty in the reward.
#[test]
fn a_reinforce_pp_step_raises_the_rewarded_sample_and_lowers_the_other() {
    for kl_coef in [0.0, 0.05] {
        let mut p = policy(1);
        let (good, bad) = (logp(&p, GOOD), logp(&p, BAD));
        let config = TrainConfig { algorithm: Algorithm::ReinforcePp, lr: 1e-2, kl_coef, ..TrainConfig::default() };
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
        assert!(logp(&p, GOOD) > good, "kl {kl_coef}: {} -> {}", good, logp(&p, GOOD));
        assert!(logp(&p, BAD) < bad, "kl {kl_coef}: {} -> {}", bad, logp(&p, BAD));
        // Before the first step the policy is its own reference: the penalty is 0.
        assert_eq!(m.get("train/kl_reward").copied(), (kl_coef > 0.0).then_some(0.0));
    }
}

/// RFT trains on the sample that passes and leaves the other out.
#[test]
fn an_rft_step_is_sft_on_the_passing_samples() {
    let mut p = policy(1);
    let good = logp(&p, GOOD);
    let config = TrainConfig { algorithm: Algorithm::Rft, lr: 1e-2, ..TrainConfig::default() };
    let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
    let m = t.update(&mut p, &[group(&[GOOD, BAD, BAD])], 0).unwrap();
    assert!(logp(&p, GOOD) > good, "{} -> {}", good, logp(&p, GOOD));
    assert_eq!((m["train/rows"], m["train/zero_advantage"], m["train/tokens"]), (1.0, 2.0, 3.0));
    // The loss is the cross-entropy of the kept sample's tokens under the model before the step.
    assert!((m["loss/policy"] + good / 3.0).abs() < 1e-4, "{} vs {}", m["loss/policy"], -good / 3.0);
}

/// The online preference losses pair the group's best and worst samples and move them apart.
#[test]
fn dpo_ipo_and_orpo_steps_prefer_the_rewarded_sample() {
    for algorithm in [Algorithm::Dpo, Algorithm::Ipo, Algorithm::Orpo] {
        let mut p = policy(1);
        let (good, bad) = (logp(&p, GOOD), logp(&p, BAD));
        let config = TrainConfig { algorithm, lr: 1e-2, ..TrainConfig::default() };
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, &[group(&[BAD, GOOD, BAD])], 0).unwrap();
        let (good2, bad2) = (logp(&p, GOOD), logp(&p, BAD));
        assert!(good2 - bad2 > good - bad, "{algorithm:?}: margin {} -> {}", good - bad, good2 - bad2);
        assert_eq!((m["train/pairs"], m["train/rows"]), (1.0, 2.0), "{algorithm:?}");
        if algorithm == Algorithm::Dpo {
            // The policy is its own reference before the step: h = 0, the loss log 2.
            assert!((m["loss/policy"] - 2f64.ln()).abs() < 1e-5, "{}", m["loss/policy"]);
        }
    }
    let bad = TrainConfig { algorithm: Algorithm::Dpo, minibatch: 4, ..TrainConfig::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("minibatch = 0"));
}

/// Offline DPO, IPO and ORPO from pairs in TRL's format: the chosen answer's log-probability
/// rises against the rejected one's; bad lines are errors naming the line.
#[test]
fn offline_preference_training_prefers_the_chosen_answers() {
    use super::preference::{OfflineConfig, OfflineLoss, read_pairs, train_offline};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"2+2?\", \"chosen\": \"4\", \"rejected\": \"5\"}\n\n\
         {\"prompt\": [{\"role\": \"user\", \"content\": \"3+3?\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"6\"}], \"rejected\": \"7\"}\n",
    )
    .unwrap();
    let pairs = read_pairs(&path).unwrap();
    assert_eq!((pairs.len(), pairs[1].chosen.as_str(), pairs[1].rejected.as_str()), (2, "6", "7"));
    let margin = |p: &LmPolicy| {
        pairs
            .iter()
            .map(|pair| {
                let ctx = rlvr_engine::Policy::encode(p, &pair.prompt, true).unwrap();
                let score = |a: &str| logp_of(p, &ctx, &p.tokenizer.encode(a).unwrap());
                score(&pair.chosen) - score(&pair.rejected)
            })
            .sum::<f64>()
    };
    for loss in [OfflineLoss::Dpo, OfflineLoss::Ipo, OfflineLoss::Orpo] {
        let mut p = policy(3);
        let before = margin(&p);
        let config = OfflineConfig { loss, steps: 10, batch_size: 2, lr: 1e-2, ..OfflineConfig::default() };
        let r = train_offline(&mut p, &pairs, &config, 0).unwrap();
        assert!(margin(&p) > before + 0.5, "{loss:?}: {before} -> {}", margin(&p));
        assert_eq!(r.last_accuracy, 1.0, "{loss:?}: {r:?}");
        if loss == OfflineLoss::Dpo {
            assert!((r.first_loss - 2f64.ln()).abs() < 1e-5, "the policy starts as its own reference: {r:?}");
        }
    }
    std::fs::write(&path, "{\"prompt\": \"x\", \"chosen\": 3, \"rejected\": \"y\"}\n").unwrap();
    let e = read_pairs(&path).unwrap_err().to_string();
    assert!(e.contains("pairs.jsonl:1: chosen"), "{e}");
}

#[test]
fn the_training_forward_scores_a_batch_as_the_separate_scoring_pass_does() {
    // A single step over the whole batch takes its old log-probs from the training forward (one
    // padded batch, on the autodiff device) instead of the scoring pass (chunks of SCORE_CHUNK,
    // each padded to its own width): the two must agree token for token.
    let mut p = policy(3);
    let t = Trainer::new(TrainConfig::default(), &mut p, 16, 16).unwrap();
    let answers: Vec<Vec<u32>> = (0..40u32).map(|i| (0..1 + i % 7).map(|k| 20 + (i * 5 + k) % 11).collect()).collect();
    let groups: Vec<Group> =
        answers.chunks(2).map(|pair| group(&[&[pair[0].as_slice(), &[7]].concat(), &pair[1]])).collect();
    let (mut rows, _) = grpo::rows(&t, &p, &groups);
    assert!(rows.len() > SCORE_CHUNK, "the scoring pass must take more than one chunk");
    t.scoring_pass(&p, &mut rows, 1.0).unwrap();
    let model = p.model.clone().to_device(&p.autodiff_device()).train();
    let seqs: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
    let lens: Vec<usize> = rows.iter().map(|r| r.mask.len()).collect();
    let one = unpad2(forward(&model, &seqs, 1.0).unwrap().logp, &lens);
    for (row, logp) in rows.iter().zip(&one) {
        for (a, b) in row.old_logp.iter().zip(logp) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

#[test]
fn warmup_ramps_the_learning_rate_then_holds_it() {
    let f: Vec<f64> = (0..5).map(|i| warmup_factor(i, 4)).collect();
    assert_eq!(f, [0.25, 0.5, 0.75, 1.0, 1.0]);
    assert_eq!(warmup_factor(0, 0), 1.0);
    // The factor reaches the optimiser: a step in warmup moves the weights less.
    let moved = |warmup| {
        let mut p = policy(1);
        let before = logp(&p, GOOD);
        let config = TrainConfig { lr: 1e-2, warmup, ..TrainConfig::default() };
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let m = t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
        (logp(&p, GOOD) - before, m["train/lr"])
    };
    let ((full, lr_full), (ramped, lr_ramped)) = (moved(0), moved(10));
    assert_eq!((lr_full, lr_ramped), (1e-2, 1e-3));
    assert!(full > ramped && ramped > 0.0, "{full} vs {ramped}");
}

#[test]
fn flat_groups_and_overlong_samples_are_left_out() {
    let mut p = policy(2);
    let config = TrainConfig { lr: 1e-2, overlong_filter: true, ..TrainConfig::default() };
    // max_new_tokens 3: the three-token answer without a stop token ran out of budget.
    let mut t = Trainer::new(config, &mut p, 16, 3).unwrap();
    let before = p.model.to_weights().unwrap();
    let m = t.update(&mut p, &[group(&[GOOD, GOOD])], 0).unwrap();
    assert_eq!((m["train/rows"], m["train/overlong_filtered"]), (0.0, 2.0));
    let config = TrainConfig { lr: 1e-2, ..TrainConfig::default() };
    let mut t = Trainer::new(config, &mut p, 16, 3).unwrap();
    let m = t.update(&mut p, &[group(&[BAD, BAD])], 0).unwrap();
    assert_eq!((m["train/rows"], m["train/zero_advantage"]), (0.0, 2.0));
    assert_eq!(p.model.to_weights().unwrap(), before, "nothing to learn, nothing changed");
}

#[test]
fn the_kl_term_pulls_back_towards_the_reference() {
    // With zero advantages only the KL term has a gradient: after the policy drifted (one
    // rewarded step), KL steps move it back towards the reference.
    let mut p = policy(3);
    let start = logp(&p, GOOD);
    let config = TrainConfig { lr: 1e-2, kl_coef: 1.0, ..TrainConfig::default() };
    let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
    t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
    let drifted = logp(&p, GOOD);
    assert!(drifted > start);
    let m = t.update(&mut p, &[group(&[GOOD, GOOD])], 1).unwrap();
    assert!(m["loss/kl"] > 0.0);
    assert!(logp(&p, GOOD) < drifted, "{start} -> {drifted} -> {}", logp(&p, GOOD));
}

/// Five PPO updates of `p` on one group (GOOD rewarded, BAD not); checks that a value head was
/// added and that its loss fell, and returns the two answers' log-probs before the updates.
fn five_ppo_updates(p: &mut LmPolicy) -> (f64, f64) {
    let config = TrainConfig {
        algorithm: Algorithm::Ppo,
        lr: 1e-2,
        ppo: ppo::PpoConfig { lambda: 1.0, ..ppo::PpoConfig::default() },
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(config, p, 16, 16).unwrap();
    assert!(p.model.value_head.is_some());
    let before = (logp(p, GOOD), logp(p, BAD));
    let mut losses = Vec::new();
    for it in 0..5 {
        losses.push(t.update(p, &[group(&[GOOD, BAD])], it).unwrap()["loss/value"]);
    }
    assert!(losses[4] < losses[0], "value loss {losses:?}");
    before
}

#[test]
fn ppo_adds_a_value_head_and_fits_it_to_the_returns() {
    let mut p = policy(4);
    let (good, bad) = five_ppo_updates(&mut p);
    assert!(logp(&p, GOOD) > good && logp(&p, BAD) < bad);
}

#[test]
fn optimiser_state_survives_a_checkpoint() {
    // Two updates in one process, against one update, a save and reload of model and optimiser
    // into a fresh trainer, and the second update: the weights must agree (to float noise).
    let config = TrainConfig { lr: 1e-2, ..TrainConfig::default() };
    let g = [group(&[GOOD, BAD])];
    let mut a = policy(5);
    let mut ta = Trainer::new(config.clone(), &mut a, 16, 16).unwrap();
    ta.update(&mut a, &g, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    crate::lm::save_checkpoint(dir.path(), &a.model, &a.tokenizer, &a.template).unwrap();
    ta.save(dir.path()).unwrap();
    ta.update(&mut a, &g, 1).unwrap();

    let mut b = policy(99);
    rlvr_engine::Policy::load(&mut b, dir.path()).unwrap();
    let mut tb = Trainer::new(config, &mut b, 16, 16).unwrap();
    tb.load(dir.path()).unwrap();
    tb.update(&mut b, &g, 1).unwrap();
    let (wa, wb) = (a.model.to_weights().unwrap(), b.model.to_weights().unwrap());
    for (name, t) in &wa.0 {
        let max = t.data.iter().zip(&wb.0[name].data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        // Fresh moments would move every weight by about lr = 1e-2 here; the last bits of a
        // reloaded tensor's layout may change summation order, which Adam's normalisation
        // amplifies for parameters with near-zero gradients (unseen embedding rows).
        assert!(max < 1e-3, "{name} differs by {max}");
    }
}

#[test]
fn sft_learns_the_response_and_only_the_response() {
    let mut p = policy(6);
    let demos = vec![Demo { context: vec![1, 2, 3, 4, 5], response: vec![60, 61, 62] }];
    let before = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]);
    let config = SftConfig { steps: 20, batch_size: 1, lr: 1e-2, ..SftConfig::default() };
    let r = sft::train(&mut p, &demos, &config, 0, |_, _| {}).unwrap();
    assert!(r.last_loss < r.first_loss / 2.0, "{r:?}");
    assert_eq!(r.tokens, 20 * 3, "three response tokens a step");
    assert!(logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]) > before);
    // The demo's first loss is the mean cross-entropy of its response under the initial model.
    assert!((r.first_loss + before / 3.0).abs() < 1e-4, "{} vs {}", r.first_loss, -before / 3.0);
}

/// DFT's weights by hand, its gradient against cross-entropy's, and a DFT warm start that
/// raises the demonstration's probability as cross-entropy's does.
#[test]
fn dft_weighs_each_token_by_its_detached_probability() {
    let device = Device::autodiff(crate::tests::test_device());
    let lp =
        Tensor::<2>::from_data(burn::tensor::TensorData::new(vec![0.5f32.ln(), 0.25f32.ln(), -9.0], [1, 3]), &device)
            .require_grad();
    let mask = Tensor::<2>::from_data(burn::tensor::TensorData::new(vec![1.0f32, 1.0, 0.0], [1, 3]), &device);
    // -(0.5·ln 0.5 + 0.25·ln 0.25) / 2; the masked token counts for nothing.
    let want = -(0.5 * 0.5f32.ln() + 0.25 * 0.25f32.ln()) / 2.0;
    let loss = sft::dft_loss(lp.clone(), mask.clone());
    assert!((loss.clone().into_scalar::<f32>() - want).abs() < 1e-6);
    let g: Vec<f32> = lp.grad(&loss.backward()).unwrap().into_data().try_into_vec().unwrap();
    // d/dlogp of -sg(p)·logp / N is -p/N: -0.25 and -0.125; cross-entropy's would be -0.5 each.
    for (got, want) in g.iter().zip([-0.25f32, -0.125, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{g:?}");
    }
    let mut p = policy(6);
    let demos = vec![Demo { context: vec![1, 2, 3, 4, 5], response: vec![60, 61, 62] }];
    let before = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]);
    let config = SftConfig { steps: 20, batch_size: 1, lr: 1e-2, loss: sft::SftLoss::Dft, ..SftConfig::default() };
    sft::train(&mut p, &demos, &config, 0, |_, _| {}).unwrap();
    assert!(logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]) > before);
}

fn logp_of(p: &LmPolicy, ctx: &[u32], resp: &[u32]) -> f64 {
    let mut seq = ctx.to_vec();
    seq.extend_from_slice(resp);
    let f = forward(&p.model, &[&seq], 1.0).unwrap();
    let v: Vec<f32> = f.logp.into_data().try_into_vec().unwrap();
    v[ctx.len() - 1..].iter().map(|&x| f64::from(x)).sum()
}

#[test]
fn soups_and_task_vectors_by_hand() {
    let w = |x: f32| {
        Weights([("a".to_string(), crate::weights::HostTensor { shape: vec![2], data: vec![x, 2.0 * x] })].into())
    };
    let soup = Weights::combine(None, &[(w(1.0), 0.5), (w(3.0), 0.5)]).unwrap();
    assert_eq!(soup.0["a"].data, vec![2.0, 4.0]);
    // base 1; task vectors (3 - 1) and (2 - 1): 1 + 1·2 - 0.5·1 = 2.5
    let ta = Weights::combine(Some(&w(1.0)), &[(w(3.0), 1.0), (w(2.0), -0.5)]).unwrap();
    assert_eq!(ta.0["a"].data, vec![2.5, 5.0]);
    let other = Weights([("b".to_string(), crate::weights::HostTensor { shape: vec![2], data: vec![0.0; 2] })].into());
    assert!(Weights::combine(None, &[(w(1.0), 0.5), (other, 0.5)]).is_err());
}

#[test]
fn a_reset_reference_follows_the_policy_and_a_soup_is_the_average() {
    // reset_every = 1: after the drifting update the reference is the policy, so the KL of the
    // next (zero-advantage) batch is exactly 0.
    let mut p = policy(7);
    let reset = ReferenceConfig { reset_every: 1, ..ReferenceConfig::default() };
    let config = TrainConfig { lr: 1e-2, kl_coef: 1.0, reference: reset, ..TrainConfig::default() };
    let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
    t.update(&mut p, &[group(&[GOOD, BAD])], 0).unwrap();
    let m = t.update(&mut p, &[group(&[GOOD, GOOD])], 1).unwrap();
    assert!(m["loss/kl"].abs() < 1e-7, "{}", m["loss/kl"]);

    // A soup of the policy with itself is the policy: zero KL at the first update; a soup with
    // another model is not.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let p8 = policy(8);
    crate::lm::save_checkpoint(&a, &p8.model, &p8.tokenizer, &p8.template).unwrap();
    crate::lm::save_checkpoint(&b, &policy(9).model, &p8.tokenizer, &p8.template).unwrap();
    for (soup, zero) in [(vec![a.clone(), a.clone()], true), (vec![a.clone(), b], false)] {
        let mut p = policy(8);
        let reference = ReferenceConfig { soup, ..ReferenceConfig::default() };
        let config = TrainConfig { lr: 1e-2, kl_coef: 1.0, reference, ..TrainConfig::default() };
        let mut t = Trainer::new(config, &mut p, 16, 16).unwrap();
        let kl = t.update(&mut p, &[group(&[GOOD, GOOD])], 0).unwrap()["loss/kl"];
        assert_eq!(kl.abs() < 1e-7, zero, "kl {kl}");
    }
}

fn lora_policy(seed: u64, targets: &[&str]) -> LmPolicy {
    let config = lora::LoraConfig { rank: 2, alpha: 4.0, targets: targets.iter().map(|t| t.to_string()).collect() };
    policy(seed).with_lora(config, 7).unwrap()
}

fn max_diff(a: &crate::weights::HostTensor, b: &crate::weights::HostTensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

/// Fresh adapters change nothing; an SFT run under LoRA moves only the adapted projections,
/// learns the demonstration, and its gradients reach the adapters alone.
#[test]
fn lora_trains_only_its_adapters() {
    let mut p = lora_policy(8, &["q_proj", "down_proj"]);
    let start = policy(8).model.to_weights().unwrap();
    assert_eq!(p.model.to_weights().unwrap(), start, "B = 0: the adapted model starts as its base");
    let l = p.lora.as_ref().unwrap();
    assert_eq!(l.model.to_weights().unwrap(), start);
    // Gradients of a loss through the adapted model: only the factors get one.
    let device = p.autodiff_device();
    let m = l.model.clone().to_device(&device).train();
    let f = forward(&m, &[&[1, 2, 3, 4]], 1.0).unwrap();
    let grads = GradientsParams::from_grads(f.logp.sum().backward(), &m);
    let layers = small().num_hidden_layers;
    assert_eq!(grads.len(), 2 * 2 * layers, "A and B of two projections per layer, nothing else");

    let demos = vec![Demo { context: vec![1, 2, 3, 4, 5], response: vec![60, 61, 62] }];
    let before = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]);
    let config = SftConfig { steps: 20, batch_size: 1, lr: 5e-2, ..SftConfig::default() };
    sft::train(&mut p, &demos, &config, 0, |_, _| {}).unwrap();
    let after_lp = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]);
    assert!(after_lp > before + 1.0, "{before} -> {after_lp}");
    let l = p.lora.as_ref().unwrap();
    assert_eq!(l.model.to_base_weights().unwrap(), start, "the base stays frozen");
    let after = p.model.to_weights().unwrap();
    for (name, t) in &after.0 {
        let moved = max_diff(t, &start.0[name]) > 0.0;
        let adapted = name.ends_with("q_proj.weight") || name.ends_with("down_proj.weight");
        assert_eq!(moved, adapted, "{name}");
    }
}

/// The merge the policy generates with is base + (alpha/r)·(A·B)ᵀ, within float tolerance, by
/// burn's composition, by the host merge of the saved PEFT adapter, and by hand.
#[test]
fn lora_merge_is_base_plus_scaled_product() {
    let mut p = lora_policy(9, &lora::TARGETS);
    let demos = vec![Demo { context: vec![1, 2, 3], response: vec![40, 41] }];
    let config = SftConfig { steps: 5, batch_size: 1, lr: 1e-2, ..SftConfig::default() };
    sft::train(&mut p, &demos, &config, 0, |_, _| {}).unwrap();
    let l = p.lora.as_ref().unwrap();
    let (base, merged) = (l.model.to_base_weights().unwrap(), p.model.to_weights().unwrap());
    let adapter = lora::adapter_weights(&l.model).unwrap();
    let name = "model.layers.0.self_attn.q_proj";
    let (a, b) = (
        &adapter.0[&format!("base_model.model.{name}.lora_A.weight")],
        &adapter.0[&format!("base_model.model.{name}.lora_B.weight")],
    );
    let (w0, w1) = (&base.0[&format!("{name}.weight")], &merged.0[&format!("{name}.weight")]);
    let (out, inp, r) = (w0.shape[0], w0.shape[1], a.shape[0]);
    assert_eq!((a.shape.clone(), b.shape.clone()), (vec![r, inp], vec![out, r]));
    for o in 0..out {
        for i in 0..inp {
            let dot: f32 = (0..r).map(|k| b.data[o * r + k] * a.data[k * inp + i]).sum();
            let want = w0.data[o * inp + i] + 2.0 * dot;
            assert!((w1.data[o * inp + i] - want).abs() < 1e-5, "[{o}, {i}]");
        }
    }
    assert!(max_diff(w0, w1) > 1e-4, "five steps moved the weight");
    // The host merge of the adapter directory gives the same weights.
    let dir = tempfile::tempdir().unwrap();
    lora::save_adapter(dir.path(), &l.model, &l.config).unwrap();
    let mut host = base.clone();
    assert_eq!(lora::merge_adapter(&mut host, dir.path()).unwrap(), 7 * small().num_hidden_layers);
    for (n, t) in &merged.0 {
        assert!(max_diff(t, &host.0[n]) < 1e-5, "{n}");
    }
    // And the merged model scores what the adapted one scores.
    let seq: &[u32] = &[1, 2, 3, 40, 41];
    let lp = |m: &Model| -> Vec<f32> { forward(m, &[seq], 1.0).unwrap().logp.into_data().try_into_vec().unwrap() };
    for (x, y) in lp(&p.model).iter().zip(lp(&l.model)) {
        assert!((x - y).abs() < 1e-4);
    }
}

/// A LoRA checkpoint (merge, adapter, base) reloads into the same adapted model, and an
/// update after the reload matches the update without one; a policy without LoRA settings reads
/// the merge, and one with other settings is refused.
#[test]
fn a_lora_checkpoint_resumes_exactly() {
    let config = TrainConfig { lr: 1e-2, ..TrainConfig::default() };
    let g = [group(&[GOOD, BAD])];
    let mut a = lora_policy(10, &["v_proj", "up_proj"]);
    let mut ta = Trainer::new(config.clone(), &mut a, 16, 16).unwrap();
    ta.update(&mut a, &g, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    rlvr_engine::Policy::save(&a, dir.path()).unwrap();
    ta.save(dir.path()).unwrap();
    for f in ["config.json", "model.safetensors", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    assert!(dir.path().join("base/model.safetensors").exists());
    ta.update(&mut a, &g, 1).unwrap();

    let mut b = lora_policy(99, &["v_proj", "up_proj"]);
    rlvr_engine::Policy::load(&mut b, dir.path()).unwrap();
    let mut tb = Trainer::new(config, &mut b, 16, 16).unwrap();
    tb.load(dir.path()).unwrap();
    tb.update(&mut b, &g, 1).unwrap();
    let (wa, wb) = (a.model.to_weights().unwrap(), b.model.to_weights().unwrap());
    for (name, t) in &wa.0 {
        assert!(max_diff(t, &wb.0[name]) < 1e-5, "{name}");
    }

    let mut plain = policy(3);
    rlvr_engine::Policy::load(&mut plain, dir.path()).unwrap();
    let saved = crate::lm::load_checkpoint(dir.path(), &crate::tests::test_device()).unwrap().0.to_weights().unwrap();
    assert_eq!(plain.model.to_weights().unwrap(), saved);
    let mut other = lora_policy(3, &["q_proj"]);
    let err = rlvr_engine::Policy::load(&mut other, dir.path()).unwrap_err().to_string();
    assert!(err.contains("differs from [policy.config.lora]"), "{err}");
}

#[test]
fn lora_settings_are_checked() {
    let bad = |c: lora::LoraConfig| c.validate().unwrap_err();
    assert!(bad(lora::LoraConfig { rank: 0, ..Default::default() }).contains("rank"));
    assert!(bad(lora::LoraConfig { alpha: f64::NAN, ..Default::default() }).contains("alpha"));
    assert!(bad(lora::LoraConfig { targets: vec![], ..Default::default() }).contains("empty"));
    assert!(bad(lora::LoraConfig { targets: vec!["lm_head".into()], ..Default::default() }).contains("lm_head"));
    let p = lora_policy(1, &["q_proj"]);
    assert!(p.with_lora(lora::LoraConfig::default(), 0).is_err(), "adapters on adapters");
}

/// PPO adds its value head to the adapted model too, and trains it beside the adapters.
#[test]
fn ppo_under_lora_trains_the_value_head_and_the_adapters() {
    let mut p = lora_policy(4, &lora::TARGETS);
    let (good, bad) = five_ppo_updates(&mut p);
    assert!(p.lora.as_ref().unwrap().model.value_head.is_some());
    let (g1, b1) = (logp(&p, GOOD), logp(&p, BAD));
    // The two answers share their first two tokens, which the rewarded one pulls up for both.
    assert!(g1 > good && g1 - b1 > good - bad + 0.1, "good {good} -> {g1}, bad {bad} -> {b1}");
    let l = p.lora.as_ref().unwrap();
    assert_eq!(
        l.model.to_base_weights().unwrap().0["model.embed_tokens.weight"],
        policy(4).model.to_weights().unwrap().0["model.embed_tokens.weight"]
    );
}

/// ASFT's anchor by hand on a two-token vocabulary, its gradient, and a warm start whose anchor
/// holds the model nearer its start than DFT alone while it still learns the demonstration.
#[test]
fn asft_anchors_dft_to_the_starting_model() {
    use burn::tensor::TensorData;
    let device = Device::autodiff(crate::tests::test_device());
    let ln = |x: f32| x.ln();
    // Two positions: p = (0.5, 0.5) and (0.9, 0.1); the reference q = (0.8, 0.2) at both; the
    // second position is masked out.
    let logp = Tensor::<3>::from_data(TensorData::new(vec![ln(0.5), ln(0.5), ln(0.9), ln(0.1)], [1, 2, 2]), &device)
        .require_grad();
    let reference =
        Tensor::<3>::from_data(TensorData::new(vec![ln(0.8), ln(0.2), ln(0.8), ln(0.2)], [1, 2, 2]), &device);
    let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &device);
    let kl = sft::anchor_kl(logp.clone(), reference, mask);
    let want = 0.8 * (0.8f32 / 0.5).ln() + 0.2 * (0.2f32 / 0.5).ln();
    assert!((kl.clone().into_scalar::<f32>() - want).abs() < 1e-6);
    // d KL(q ‖ p) / d log p_v = -q_v on the counted position, nothing on the masked one.
    let g: Vec<f32> = logp.grad(&kl.backward()).unwrap().into_data().try_into_vec().unwrap();
    for (got, want) in g.iter().zip([-0.8f32, -0.2, 0.0, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{g:?}");
    }

    let demos = vec![Demo { context: vec![1, 2, 3, 4, 5], response: vec![60, 61, 62] }];
    let probe: &[u32] = &[9, 8, 7, 6, 5, 4];
    let drift = |loss: sft::SftLoss, asft_alpha: f64| {
        let mut p = policy(6);
        let start = logp_of(&p, &probe[..3], &probe[3..]);
        let before = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]);
        let config = SftConfig { steps: 30, batch_size: 1, lr: 1e-2, loss, asft_alpha, ..SftConfig::default() };
        sft::train(&mut p, &demos, &config, 0, |_, _| {}).unwrap();
        let learned = logp_of(&p, &[1, 2, 3, 4, 5], &[60, 61, 62]) - before;
        (learned, (logp_of(&p, &probe[..3], &probe[3..]) - start).abs())
    };
    let (dft_learned, dft_drift) = drift(sft::SftLoss::Dft, 0.0);
    let (asft_learned, asft_drift) = drift(sft::SftLoss::Asft, 5.0);
    let (zero_learned, zero_drift) = drift(sft::SftLoss::Asft, 0.0);
    assert!((zero_learned - dft_learned).abs() < 1e-9 && (zero_drift - dft_drift).abs() < 1e-9, "alpha 0 is DFT");
    assert!(asft_learned > 0.0, "ASFT still learns the demonstration: {asft_learned}");
    assert!(
        asft_drift < dft_drift,
        "the anchor holds an unrelated sequence nearer its start: {asft_drift} vs {dft_drift}"
    );
}
