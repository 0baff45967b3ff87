//! Batched generation with a KV cache, and per-token log-probs of given sequences.
//!
//! ## Design
//! Contexts of different lengths share one batch by left padding: every row's last token sits at
//! the same column, so one forward step serves all rows. Padding slots are masked out of
//! attention and take no RoPE position, so a row's tokens are the same as if it ran alone (a
//! test checks this). Rows that finish leave the batch (their cache rows are dropped), so a
//! long answer does not make short ones pay. Logits come back to the host once per step and each
//! row is sampled there with its own random stream: a row's tokens depend on its seed only.

use crate::model::{KvCache, Layout, Model};
use crate::sample::{Rng, SamplingConfig, sample};
use crate::tokenizer::Tokenizer;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;

/// One sequence to continue.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The tokens so far; not empty.
    pub context: &'a [u32],
    /// At most this many new tokens.
    pub max_new_tokens: usize,
    /// Seed of this row's sampling.
    pub seed: u64,
    /// Take the argmax instead of sampling.
    pub greedy: bool,
}

/// How generation behaves apart from the per-row request.
#[derive(Clone, Debug, Default)]
pub struct GenOptions {
    /// The sampling distribution.
    pub sampling: SamplingConfig,
    /// Tokens that end a row; they are kept in `tokens` (they were sampled and carry a
    /// log-prob, so training learns to stop) and left out of `text`.
    pub stop_tokens: Vec<u32>,
    /// Strings that end a row when the decoded text contains one; `text` is cut before it.
    pub stop_strings: Vec<String>,
}

/// Why a row stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// It sampled a stop token.
    StopToken,
    /// Its text reached a stop string.
    StopString,
    /// It reached `max_new_tokens` (or the model's context length).
    Length,
}

/// One row's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The sampled tokens, in order.
    pub tokens: Vec<u32>,
    /// Each token's log-probability under the distribution it was drawn from.
    pub logprobs: Vec<f32>,
    /// The decoded text, without stop tokens and cut before a stop string.
    pub text: String,
    /// Why it stopped.
    pub finish: Finish,
}

/// Generation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A request the model cannot serve (empty context, context too long, bad token id).
    #[error("request {index}: {reason}")]
    BadRequest {
        /// Which request.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Reading logits back from the device failed.
    #[error("readback: {0}")]
    Readback(String),
}

fn host(t: Tensor<3>) -> Result<Vec<f32>, GenerateError> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| GenerateError::Readback(format!("{e:?}")))
}

fn int_tensor(ids: Vec<u32>, shape: [usize; 2], device: &burn::tensor::Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
    Tensor::from_data(TensorData::new(ids, shape), device)
}

struct Row {
    req: usize,
    rng: Rng,
    pad: usize,
    limit: usize,
    out: Generated,
    done: bool,
}

/// Continues every request; returns one output per request, in order.
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    opts: &GenOptions,
    requests: &[Request<'_>],
) -> Result<Vec<Generated>, GenerateError> {
    let max_pos = model.config().max_position_embeddings;
    let vocab = model.config().vocab_size;
    for (index, r) in requests.iter().enumerate() {
        let bad = |reason: String| Err(GenerateError::BadRequest { index, reason });
        if r.context.is_empty() {
            return bad("empty context".into());
        }
        if r.context.len() >= max_pos {
            return bad(format!(
                "context of {} tokens leaves no room in the model's {max_pos} positions",
                r.context.len()
            ));
        }
        if let Some(&t) = r.context.iter().find(|&&t| t as usize >= vocab) {
            return bad(format!("token id {t} outside the vocabulary of {vocab}"));
        }
    }
    let shards = shards(model, requests.len());
    if shards < 2 {
        return decode(model, tokenizer, opts, requests);
    }
    let size = requests.len().div_ceil(shards);
    let parts: Vec<Result<Vec<Generated>, GenerateError>> =
        requests.par_chunks(size).map(|part| decode(model, tokenizer, opts, part)).collect();
    let mut outs = Vec::with_capacity(requests.len());
    for part in parts {
        outs.extend(part?);
    }
    Ok(outs)
}

/// Fewest rows a shard of a batch gets: below this, one batched pass beats two.
const SHARD_ROWS: usize = 4;

/// Into how many shards, decoded side by side, a batch of `rows` goes on `model`'s device.
///
/// On flex a decoding step is many small products; burn-flex runs a product on one thread
/// below about 7M multiply-adds (at batch 16 on SmolLM2, every attention projection), and each
/// threaded one waits on the slowest thread, so a single batch used 1.4 of 2 cores. Shards of
/// at least [`SHARD_ROWS`] rows, one per thread, keep every core busy for the whole step; each
/// shard reads the weights again, which costs less than the idle core at these batch sizes.
/// Rows do not interact (each has its own seed and its own padding), so sharding changes no
/// result. libtorch has its own thread pool, so other devices decode in one pass.
fn shards(model: &Model, rows: usize) -> usize {
    if model.device() != burn::tensor::Device::flex() {
        return 1;
    }
    rayon::current_num_threads().min(rows / SHARD_ROWS).max(1)
}

/// [`generate`] on one batch, decoded together: its requests are already checked.
pub(crate) fn decode(
    model: &Model,
    tokenizer: &Tokenizer,
    opts: &GenOptions,
    requests: &[Request<'_>],
) -> Result<Vec<Generated>, GenerateError> {
    let max_pos = model.config().max_position_embeddings;
    let vocab = model.config().vocab_size;
    let mut outs: Vec<Option<Generated>> = vec![None; requests.len()];
    let longest = requests.iter().map(|r| r.context.len()).max().unwrap_or(0);
    let mut rows: Vec<Row> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| Row {
            req: i,
            rng: Rng::new(r.seed),
            pad: longest - r.context.len(),
            limit: r.max_new_tokens.min(max_pos - r.context.len()),
            out: Generated { tokens: Vec::new(), logprobs: Vec::new(), text: String::new(), finish: Finish::Length },
            done: false,
        })
        .collect();
    let device = model.device();
    let mut cache = KvCache::new();
    // Prefill: the padded contexts, logits of the last column only.
    let mut ids = Vec::with_capacity(rows.len() * longest);
    for row in &rows {
        ids.extend(std::iter::repeat_n(0, row.pad));
        ids.extend_from_slice(requests[row.req].context);
    }
    let pads: Vec<usize> = rows.iter().map(|r| r.pad).collect();
    let mut logits = if rows.iter().all(|r| r.limit == 0) {
        Vec::new()
    } else {
        let hidden = model.hidden(
            int_tensor(ids, [rows.len(), longest], &device),
            &Layout::left_padded(&pads, 0, longest),
            Some(&mut cache),
        );
        host(model.logits(hidden.narrow(1, longest - 1, 1)))?
    };
    loop {
        for (i, row) in rows.iter_mut().enumerate() {
            if row.out.tokens.len() >= row.limit {
                row.done = true;
                continue;
            }
            let r = &requests[row.req];
            let (tok, lp) = sample(&logits[i * vocab..(i + 1) * vocab], &opts.sampling, r.greedy, &mut row.rng);
            row.out.tokens.push(tok);
            row.out.logprobs.push(lp);
            if opts.stop_tokens.contains(&tok) {
                row.out.finish = Finish::StopToken;
                row.done = true;
            } else if !opts.stop_strings.is_empty() {
                let text = tokenizer.decode(&row.out.tokens);
                if let Some(cut) = opts.stop_strings.iter().filter_map(|s| text.find(s)).min() {
                    row.out.text = text[..cut].to_string();
                    row.out.finish = Finish::StopString;
                    row.done = true;
                }
            }
            if row.out.tokens.len() >= row.limit {
                row.done = true;
            }
        }
        // Finished rows leave the batch.
        if rows.iter().any(|r| r.done) {
            let keep: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].done).collect();
            let mut kept = Vec::with_capacity(keep.len());
            for row in rows {
                if row.done {
                    let mut out = row.out;
                    if out.finish != Finish::StopString {
                        let body: Vec<u32> =
                            out.tokens.iter().copied().filter(|t| !opts.stop_tokens.contains(t)).collect();
                        out.text = tokenizer.decode(&body);
                    }
                    outs[row.req] = Some(out);
                } else {
                    kept.push(row);
                }
            }
            rows = kept;
            if rows.is_empty() {
                break;
            }
            cache.retain(&keep);
        }
        let last: Vec<u32> = rows.iter().map(|r| *r.out.tokens.last().expect("a live row has sampled")).collect();
        let pads: Vec<usize> = rows.iter().map(|r| r.pad).collect();
        let past = cache.len();
        let hidden = model.hidden(
            int_tensor(last, [rows.len(), 1], &device),
            &Layout::left_padded(&pads, past, 1),
            Some(&mut cache),
        );
        logits = host(model.logits(hidden))?;
    }
    Ok(outs.into_iter().map(|o| o.expect("every row finishes")).collect())
}

/// Per-token log-probs of `sequences` under `model`: entry `[b, t]` is
/// `log p(seq[b][t + 1] | seq[b][..=t])`, for `t < len - 1`; entries past a sequence's end are 0
/// and masked. Returns `(logprobs, mask)`, both `[batch, longest - 1]`, on the model's device:
/// differentiable when the model is on an autodiff device, so a loss can be built on it.
pub fn sequence_logprobs(model: &Model, sequences: &[&[u32]]) -> Result<(Tensor<2>, Tensor<2>), GenerateError> {
    let f = forward(model, sequences, 1.0)?;
    let [b, width] = f.logp.dims();
    let mask: Vec<f32> =
        sequences.iter().flat_map(|s| (0..width).map(move |t| if t + 1 < s.len() { 1.0 } else { 0.0 })).collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, width]), &model.device());
    Ok((f.logp * mask.clone(), mask))
}

/// The model's view of a batch of sequences: per predicted token, its log-prob, the entropy of
/// the distribution it came from (detached: a metric), and the value estimate if the model has a
/// value head. All `[rows, longest - 1]`, zero past a row's end.
pub struct Forward {
    /// `log p(tokens[t + 1] | tokens[..=t])` at the given temperature.
    pub logp: Tensor<2>,
    /// Entropy of each predicted position's distribution.
    pub entropy: Tensor<2>,
    /// `V(tokens[..=t])`, if the model has a value head.
    pub values: Option<Tensor<2>>,
}

/// Runs `model` over right-padded `rows` (each at least two tokens).
pub fn forward(model: &Model, rows: &[&[u32]], temperature: f32) -> Result<Forward, GenerateError> {
    forward_dist(model, rows, temperature).map(|(f, _)| f)
}

/// [`forward`], with the whole next-token distribution beside it: the log-probabilities of
/// every vocabulary entry at every predicted position, `[batch, longest - 1, vocab]` (what a
/// full KL term needs; ASFT's anchor).
pub fn forward_dist(model: &Model, rows: &[&[u32]], temperature: f32) -> Result<(Forward, Tensor<3>), GenerateError> {
    let vocab = model.config().vocab_size;
    let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if rows.is_empty() {
        return Err(GenerateError::BadRequest { index: 0, reason: "no sequences to score".into() });
    }
    for (index, r) in rows.iter().enumerate() {
        if r.len() < 2 || r.len() > model.config().max_position_embeddings {
            return Err(GenerateError::BadRequest {
                index,
                reason: format!("{} tokens: a trained sequence needs 2 up to the model's positions", r.len()),
            });
        }
        if let Some(&t) = r.iter().find(|&&t| t as usize >= vocab) {
            return Err(GenerateError::BadRequest {
                index,
                reason: format!("token id {t} outside the vocabulary of {vocab}"),
            });
        }
    }
    let b = rows.len();
    let device = model.device();
    let mut ids = Vec::with_capacity(b * longest);
    let mut targets = Vec::with_capacity(b * (longest - 1));
    for r in rows {
        ids.extend(r.iter().map(|&t| i64::from(t)));
        ids.extend(std::iter::repeat_n(0, longest - r.len()));
        targets.extend(r[1..].iter().map(|&t| i64::from(t)));
        targets.extend(std::iter::repeat_n(0, longest - r.len()));
    }
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, longest]), &device);
    let hidden = model.hidden(ids, &Layout::left_padded(&vec![0; b], 0, longest), None).narrow(1, 0, longest - 1);
    let mut logits = model.logits(hidden.clone());
    if temperature > 0.0 && temperature != 1.0 {
        logits = logits.div_scalar(temperature);
    }
    let all = log_softmax(logits, 2);
    let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [b, longest - 1, 1]), &device);
    let logp = all.clone().gather(2, targets).squeeze_dim::<2>(2);
    let detached = all.clone().detach();
    let entropy = -(detached.clone().exp() * detached).sum_dim(2).squeeze_dim::<2>(2);
    Ok((Forward { logp, entropy, values: model.values(hidden) }, all))
}
