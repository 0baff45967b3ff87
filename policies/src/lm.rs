//! `lm/llama-v0`: a burn language model as the engine's [`Policy`].
//!
//! ```toml
//! [policy]
//! id = "lm/llama-v0"
//! [policy.config]
//! preset = "tiny"          # or: checkpoint = "path/to/hf-dir"
//! temperature = 1.0
//! top_p = 0.95
//! stop = ["</answer>"]
//! ```
//!
//! A checkpoint directory is HF's format (`config.json`, `*.safetensors`, sharded or not);
//! [`Policy::save`] writes the same format in f32 plus `rlvr.json` (tokenizer and template), so a
//! saved policy reloads bitwise and is at the same time an HF export.

use crate::generate::{GenOptions, Request, generate};
use crate::model::{Model, ModelConfig};
use crate::sample::SamplingConfig;
use crate::tokenizer::{ChatTemplate, Tokenizer};
use crate::weights::{Weights, WeightsError};
use burn::tensor::Device;
use rlvr_engine::{
    Action, BoxError, Config, GenRequest, Message, Policy, PolicyContext, PolicyError, Registry, parse_config,
};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of `[policy.config]` for `lm/llama-v0`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmConfig {
    /// A built-in architecture with random weights (`tiny`). Exactly one of `preset` and
    /// `checkpoint`.
    pub preset: Option<String>,
    /// A checkpoint directory (HF format or our own).
    pub checkpoint: Option<PathBuf>,
    /// Seed of a preset's random weights; default: the run seed.
    pub init_seed: Option<u64>,
    /// Burn device: `flex` (CPU, default), `cuda` or `tch` (libtorch CUDA), each compiled in by
    /// its feature.
    pub device: String,
    /// Sampling temperature. Default 1.0.
    pub temperature: f32,
    /// Top-k; 0 keeps all. Default 0.
    pub top_k: usize,
    /// Top-p. Default 1.0.
    pub top_p: f32,
    /// Min-p. Default 0.0.
    pub min_p: f32,
    /// Extra stop strings (the template's end-of-turn token always stops).
    pub stop: Vec<String>,
    /// Chat template override (`chatml` or `llama3`); default: the checkpoint's.
    pub chat_template: Option<String>,
}

impl Default for LmConfig {
    fn default() -> Self {
        let s = SamplingConfig::default();
        Self {
            preset: None,
            checkpoint: None,
            init_seed: None,
            device: "flex".into(),
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            stop: Vec::new(),
            chat_template: None,
        }
    }
}

/// Building or running the policy failed.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// Reading or writing a checkpoint.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Generation.
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    /// Bad settings.
    #[error("{0}")]
    Config(String),
}

impl From<LmError> for PolicyError {
    fn from(e: LmError) -> Self {
        PolicyError(Box::new(e))
    }
}

/// What `rlvr.json` records next to the weights: what the HF files do not say.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Extras {
    tokenizer: String,
    chat_template: ChatTemplate,
}

/// Resolves a device name to a burn device compiled into this build.
pub fn device(name: &str) -> Result<Device, LmError> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch_cuda(0)),
        other => Err(LmError::Config(format!("device {other:?} is not compiled in (features: flex, cuda, tch)"))),
    }
}

/// A language model with its tokenizer, template and sampling settings.
pub struct LmPolicy {
    /// The model.
    pub model: Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its chat format.
    pub template: ChatTemplate,
    /// Sampling and stopping.
    pub options: GenOptions,
}

impl LmPolicy {
    /// A policy from its parts; stop tokens are the template's end of turn and the model's EOS.
    pub fn new(
        model: Model,
        tokenizer: Tokenizer,
        template: ChatTemplate,
        sampling: SamplingConfig,
        stop_strings: Vec<String>,
    ) -> Result<Self, LmError> {
        sampling.validate().map_err(LmError::Config)?;
        if tokenizer.vocab_size() > model.config().vocab_size {
            return Err(LmError::Config(format!(
                "tokenizer has {} ids, the model only {}",
                tokenizer.vocab_size(),
                model.config().vocab_size
            )));
        }
        let mut stop_tokens: Vec<u32> = model.config().eos_token_id.as_ref().map(|e| e.ids()).unwrap_or_default();
        stop_tokens.extend(tokenizer.special(template.end_of_turn()));
        stop_tokens.extend(tokenizer.special("<|endoftext|>"));
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        Ok(Self { model, tokenizer, template, options: GenOptions { sampling, stop_tokens, stop_strings } })
    }

    /// Builds the policy `config` describes.
    pub fn from_config(config: &LmConfig, run_seed: u64) -> Result<Self, LmError> {
        let device = device(&config.device)?;
        let sampling = SamplingConfig {
            temperature: config.temperature,
            top_k: config.top_k,
            top_p: config.top_p,
            min_p: config.min_p,
        };
        let (model, tokenizer, template) = match (&config.preset, &config.checkpoint) {
            (Some(p), None) => {
                let mc = ModelConfig::preset(p)
                    .ok_or_else(|| LmError::Config(format!("unknown preset {p:?} (tiny, micro)")))?;
                let model = Model::random(&mc, config.init_seed.unwrap_or(run_seed), &device)?;
                (model, Tokenizer::Bytes, ChatTemplate::chatml())
            }
            (None, Some(path)) => load_checkpoint(path, &device)?,
            _ => {
                return Err(LmError::Config("give exactly one of `preset` and `checkpoint`".into()));
            }
        };
        let template = match config.chat_template.as_deref() {
            None => template,
            Some("chatml") => ChatTemplate::chatml(),
            Some("llama3") => ChatTemplate::Llama3,
            Some(other) => {
                return Err(LmError::Config(format!("unknown chat_template {other:?} (chatml, llama3)")));
            }
        };
        Self::new(model, tokenizer, template, sampling, config.stop.clone())
    }
}

/// Loads a checkpoint directory: the model, its tokenizer and its chat template.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Model, Tokenizer, ChatTemplate), LmError> {
    let config_path = path.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| WeightsError::io(&config_path, e))?;
    let config: ModelConfig =
        serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", config_path.display())))?;
    let extras_path = path.join("rlvr.json");
    let (tokenizer, template) = if extras_path.exists() {
        let text = std::fs::read_to_string(&extras_path).map_err(|e| WeightsError::io(&extras_path, e))?;
        let extras: Extras =
            serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", extras_path.display())))?;
        if extras.tokenizer != "bytes" {
            return Err(LmError::Config(format!(
                "{}: unknown tokenizer {:?}",
                extras_path.display(),
                extras.tokenizer
            )));
        }
        (Tokenizer::Bytes, extras.chat_template)
    } else {
        return Err(LmError::Config(format!(
            "{}: no rlvr.json naming the tokenizer (HF tokenizer.json is not supported yet)",
            path.display()
        )));
    };
    let model = Model::from_weights(&config, Weights::read_hf_dir(path)?, device)?;
    Ok((model, tokenizer, template))
}

/// Writes `model` as an HF directory in f32, with `rlvr.json` for what HF files do not say.
pub fn save_checkpoint(dir: &Path, model: &Model, template: &ChatTemplate) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| WeightsError::io(dir, e))?;
    let config_path = dir.join("config.json");
    let mut config = serde_json::to_value(model.config()).map_err(|e| WeightsError::Format(e.to_string()))?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("architectures".into(), serde_json::json!(["LlamaForCausalLM"]));
        obj.insert("torch_dtype".into(), "float32".into());
    }
    write_json(&config_path, &config)?;
    let extras = Extras { tokenizer: "bytes".into(), chat_template: template.clone() };
    write_json(&dir.join("rlvr.json"), &extras)?;
    model.to_weights()?.write_safetensors(&dir.join("model.safetensors"))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), WeightsError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| WeightsError::Format(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| WeightsError::io(path, e))
}

impl Policy for LmPolicy {
    fn encode(&self, messages: &[Message], first: bool) -> Result<Vec<u32>, PolicyError> {
        self.template.encode(&self.tokenizer, messages, first).map_err(PolicyError::msg)
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        let requests: Vec<Request<'_>> = batch
            .iter()
            .map(|r| Request { context: r.context, max_new_tokens: r.max_new_tokens, seed: r.seed, greedy: r.greedy })
            .collect();
        let out = generate(&self.model, &self.tokenizer, &self.options, &requests).map_err(LmError::from)?;
        Ok(out.into_iter().map(|g| Action { text: g.text, tokens: g.tokens, logprobs: g.logprobs }).collect())
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        save_checkpoint(dir, &self.model, &self.template).map_err(|e| LmError::from(e).into())
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let (model, _, template) = load_checkpoint(dir, &self.model.device())?;
        if model.config() != self.model.config() {
            return Err(PolicyError::msg(format!(
                "{}: the checkpoint's architecture differs from this policy's",
                dir.display()
            )));
        }
        self.model = model;
        self.template = template;
        Ok(())
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
}

/// What `rlvr generate` asks for.
#[derive(Clone, Debug)]
pub struct GenerateArgs {
    /// A checkpoint directory, or `preset:tiny` for random tiny weights.
    pub model: String,
    /// The prompt.
    pub prompt: String,
    /// Render the prompt as a user message with the model's chat template.
    pub chat: bool,
    /// At most this many new tokens.
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// Sampling seed.
    pub seed: u64,
}

/// What `rlvr generate --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateOutput {
    /// The completion.
    pub text: String,
    /// Its tokens.
    pub tokens: Vec<u32>,
    /// New tokens per second of wall-clock time, prefill included.
    pub tokens_per_s: f64,
}

/// `rlvr generate`: loads a model and continues one prompt.
pub fn generate_cli(args: &GenerateArgs) -> Result<GenerateOutput, LmError> {
    let mut config = LmConfig { temperature: args.temperature, ..LmConfig::default() };
    match args.model.strip_prefix("preset:") {
        Some(p) => config.preset = Some(p.into()),
        None => config.checkpoint = Some(args.model.clone().into()),
    }
    let policy = LmPolicy::from_config(&config, args.seed)?;
    let context = if args.chat {
        policy.template.encode(&policy.tokenizer, &[Message::user(args.prompt.clone())], true)
    } else {
        policy.tokenizer.encode(&args.prompt)
    }
    .map_err(LmError::Config)?;
    let started = Instant::now();
    let out = generate(
        &policy.model,
        &policy.tokenizer,
        &policy.options,
        &[Request {
            context: &context,
            max_new_tokens: args.max_new_tokens,
            seed: args.seed,
            greedy: args.temperature == 0.0,
        }],
    )?
    .remove(0);
    let secs = started.elapsed().as_secs_f64();
    Ok(GenerateOutput { tokens_per_s: out.tokens.len() as f64 / secs.max(1e-9), text: out.text, tokens: out.tokens })
}

/// Registers `lm/llama-v0`.
pub fn register(registry: &mut Registry) {
    registry.policy(
        "lm/llama-v0",
        "a Llama/Qwen2/SmolLM-family model on burn (preset `tiny` or an HF checkpoint)",
        |config: &Config, ctx: &PolicyContext| {
            let config: LmConfig = parse_config(config)?;
            let policy = LmPolicy::from_config(&config, ctx.seed).map_err(BoxError::from)?;
            Ok(Box::new(policy) as Box<dyn Policy>)
        },
    );
}
