//! Policies: what writes the assistant's turns.
//!
//! - [`model`]: the Llama / Qwen2 / SmolLM decoder, written once for every burn device.
//! - [`weights`]: checkpoints (HF safetensors, sharded or not; our own) as one host map.
//! - [`gguf`]: llama.cpp's GGUF files (dequantized to that map) and their tokenizer metadata.
//! - [`tokenizer`]: the byte-level tokenizer of the tiny preset, HF `tokenizer.json`, and the
//!   chat templates.
//! - [`sample`] and [`generate`]: batched sampling with a KV cache, and log-probs for training.
//! - [`lm`]: the `lm/llama-v0` policy over all of it, implementing the engine's `Policy`.
//! - [`scripted`]: `scripted/gold-v0`, which plays an environment's gold answers (tests, demos).
//! - [`algo`]: training (GRPO, PPO, SFT); [`RunPolicy`]: a run's policy, with the language model
//!   typed when it can be trained.

#![deny(missing_docs)]

pub mod algo;
pub mod generate;
pub mod gguf;
pub mod lm;
pub mod model;
pub mod openai;
mod run;
pub mod sample;
pub mod scripted;
pub mod tokenizer;
pub mod weights;

#[cfg(test)]
mod tests;

/// The burn version this crate is written against, re-exported so that callers (benches, training
/// algorithms) use the same one.
pub use burn;
pub use run::RunPolicy;

use rlvr_engine::Registry;

/// Registers every policy compiled in.
pub fn register(registry: &mut Registry) {
    scripted::register(registry);
    lm::register(registry);
    openai::register(registry);
}
