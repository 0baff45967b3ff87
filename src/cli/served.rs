//! `rlvr serve --model`: a burn language model as the server's [`ServedModel`].

use rlvr_engine::Message;
use rlvr_policies::generate::{GenOptions, Request, generate};
use rlvr_policies::lm::{LmConfig, LmPolicy};
use rlvr_policies::sample::SamplingConfig;
use rlvr_server::{GenOut, GenSpec, ServedModel};

/// Loads `model` (`preset:NAME`, an HF directory or a `.gguf` file) on the `flex` CPU device.
pub fn load(model: &str) -> Result<LmPolicy, String> {
    let mut config = LmConfig::default();
    match model.strip_prefix("preset:") {
        Some(p) => config.preset = Some(p.into()),
        None => config.checkpoint = Some(model.into()),
    }
    LmPolicy::from_config(&config, 0).map_err(|e| format!("--model {model}: {e}"))
}

/// The policy's model, tokenizer and template, with each request's own sampling.
pub struct Served(pub LmPolicy);

impl ServedModel for Served {
    fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        self.0.template.encode(&self.0.tokenizer, messages, true)
    }

    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        self.0.tokenizer.encode(text)
    }

    fn token_text(&self, id: u32) -> String {
        self.0.tokenizer.decode(&[id])
    }

    fn context_length(&self) -> usize {
        self.0.model.config().max_position_embeddings
    }

    fn generate(&mut self, batch: &[GenSpec]) -> Vec<Result<GenOut, String>> {
        // One `generate` per distinct sampling setting; the usual case (every client asks the
        // same) is one call for the whole batch.
        let mut out: Vec<Option<Result<GenOut, String>>> = vec![None; batch.len()];
        let mut done = vec![false; batch.len()];
        for first in 0..batch.len() {
            if done[first] {
                continue;
            }
            let key = |s: &GenSpec| (s.temperature.to_bits(), s.top_p.to_bits(), s.stop.clone());
            let group: Vec<usize> =
                (first..batch.len()).filter(|&i| !done[i] && key(&batch[i]) == key(&batch[first])).collect();
            for &i in &group {
                done[i] = true;
            }
            let spec = &batch[first];
            let greedy = spec.temperature == 0.0;
            let options = GenOptions {
                sampling: SamplingConfig {
                    temperature: if greedy { 1.0 } else { spec.temperature },
                    top_p: spec.top_p,
                    ..SamplingConfig::default()
                },
                stop_tokens: self.0.options.stop_tokens.clone(),
                stop_strings: spec.stop.clone(),
            };
            let requests: Vec<Request<'_>> = group
                .iter()
                .map(|&i| Request {
                    context: &batch[i].context,
                    max_new_tokens: batch[i].max_new_tokens,
                    seed: batch[i].seed,
                    greedy,
                })
                .collect();
            match generate(&self.0.model, &self.0.tokenizer, &options, &requests) {
                Ok(gens) => {
                    for (&i, g) in group.iter().zip(gens) {
                        let length = g.finish == rlvr_policies::generate::Finish::Length;
                        out[i] = Some(Ok(GenOut { text: g.text, tokens: g.tokens, logprobs: g.logprobs, length }));
                    }
                }
                Err(e) => {
                    for &i in &group {
                        out[i] = Some(Err(e.to_string()));
                    }
                }
            }
        }
        out.into_iter().map(|o| o.unwrap_or_else(|| Err("not generated".into()))).collect()
    }
}
