//! The decoder-only transformer of the Llama / Qwen2 / SmolLM family, written once for every
//! burn device.
//!
//! What the family shares, and what this file therefore implements: pre-norm blocks with RMSNorm,
//! rotary position embeddings (non-interleaved "rotate half" layout, the checkpoint's theta and
//! optional `linear` or `llama3` frequency scaling), grouped-query attention (several query heads
//! share one key/value head), a SwiGLU MLP (`down(silu(gate(x)) * up(x))`), and tied or untied
//! input/output embeddings. What differs is only configuration: Qwen2 puts a bias on the q/k/v
//! projections, Llama's `attention_bias` puts one on all four.
//!
//! References: Touvron et al. 2023 (Llama), Su et al. 2021 (RoFormer), Shazeer 2020 (GLU
//! variants), Ainslie et al. 2023 (GQA); the layout of the weights is that of HF `transformers`'
//! `LlamaForCausalLM`, so a `config.json` and `*.safetensors` load without renaming.
//!
//! Linear weights are stored as burn stores them, `[in, out]`; HF stores `[out, in]`, so
//! [`Model::from_weights`] and [`Model::to_weights`] transpose.

use crate::weights::{Weights, WeightsError};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The architecture's hyper-parameters, mirroring HF `config.json` field for field (unknown
/// fields are ignored, so a real checkpoint's file deserialises as it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `"llama"` or `"qwen2"` (Qwen2 implies a bias on q/k/v); anything else is read as llama.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Number of tokens.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head; defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon. HF default 1e-6.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base. HF default 10,000.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// RoPE frequency scaling (`linear` or `llama3`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Longest context the model was trained for; generation refuses longer contexts.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// The output projection is the input embedding, transposed.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's switch for a bias on all four attention projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// The activation of the MLP; only `silu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Begin-of-sequence token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s): HF writes one id or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<OneOrMany>,
    /// Adds a scalar value head (for PPO) on the final hidden states. Not an HF field.
    #[serde(default)]
    pub value_head: bool,
}

/// One id or several, as HF's `eos_token_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl OneOrMany {
    /// The ids as a list.
    pub fn ids(&self) -> Vec<u32> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }
}

/// HF `rope_scaling`. `rope_type` (or the older `type`) says which.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `linear`, `llama3` or `default`.
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scaling factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// Llama 3: wavelengths above `original_max_position_embeddings / low_freq_factor` are
    /// divided by `factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// Llama 3: wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// Llama 3: the context length of pre-training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
}

fn default_model_type() -> String {
    "llama".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}
fn one() -> f64 {
    1.0
}

impl ModelConfig {
    /// The `tiny` preset: ~3.2M parameters over the byte-level tokenizer's 260 ids, for CPU
    /// experiments and tests. GQA (4 query heads on 2 kv heads) and tied embeddings, so the tests
    /// exercise the same paths as SmolLM2.
    pub fn tiny() -> Self {
        Self {
            model_type: "llama".into(),
            vocab_size: crate::tokenizer::BYTE_VOCAB,
            hidden_size: 256,
            intermediate_size: 768,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            attention_bias: false,
            hidden_act: "silu".into(),
            bos_token_id: None,
            eos_token_id: None,
            value_head: false,
        }
    }

    /// The `micro` preset: ~0.45M parameters (2 layers of width 128), small enough that SFT and
    /// RL from scratch show results within minutes on two CPU cores (the quickstart).
    pub fn micro() -> Self {
        Self { hidden_size: 128, intermediate_size: 384, num_hidden_layers: 2, ..Self::tiny() }
    }

    /// A preset by name (`tiny`, `micro`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "tiny" => Some(Self::tiny()),
            "micro" => Some(Self::micro()),
            _ => None,
        }
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == "qwen2"
    }

    /// Checks what the forward pass relies on, so that a bad `config.json` is an error and not
    /// a panic deep inside a matmul.
    pub fn validate(&self) -> Result<(), WeightsError> {
        let bad = |m: String| Err(WeightsError::Config(m));
        if self.hidden_act != "silu" {
            return bad(format!("hidden_act {:?} is not supported (only silu)", self.hidden_act));
        }
        if self.num_attention_heads == 0 || self.kv_heads() == 0 || self.head_dim() == 0 {
            return bad("heads and head_dim must be positive".into());
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(format!(
                "{} query heads do not divide into {} kv heads",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad("head_dim must be even for rotary embeddings".into());
        }
        if let Some(s) = &self.rope_scaling
            && !matches!(s.rope_type.as_str(), "linear" | "llama3" | "default")
        {
            return bad(format!("rope_scaling type {:?} is not supported", s.rope_type));
        }
        Ok(())
    }

    /// The rotary inverse frequencies, one per pair of dimensions, after scaling.
    pub fn inv_freq(&self) -> Vec<f64> {
        let hd = self.head_dim();
        let mut f: Vec<f64> = (0..hd / 2).map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / hd as f64)).collect();
        match &self.rope_scaling {
            Some(s) if s.rope_type == "linear" => f.iter_mut().for_each(|x| *x /= s.factor),
            Some(s) if s.rope_type == "llama3" => {
                let low = s.low_freq_factor.unwrap_or(1.0);
                let high = s.high_freq_factor.unwrap_or(4.0);
                let old = s.original_max_position_embeddings.unwrap_or(8192) as f64;
                let (low_wl, high_wl) = (old / low, old / high);
                for x in &mut f {
                    let wl = 2.0 * std::f64::consts::PI / *x;
                    if wl > low_wl {
                        *x /= s.factor;
                    } else if wl >= high_wl {
                        let smooth = (old / wl - low) / (high - low);
                        *x = (1.0 - smooth) * *x / s.factor + smooth * *x;
                    }
                }
            }
            _ => {}
        }
        f
    }
}

/// RMSNorm: `x / sqrt(mean(x^2) + eps) * weight`.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// The per-channel gain.
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    eps: f64,
}

impl RmsNorm {
    /// Normalises over the last dimension.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let rms = x.clone().square().mean_dim(2).add_scalar(self.eps).sqrt().recip();
        x.mul(rms).mul(self.weight.val().unsqueeze_dim::<2>(0).unsqueeze_dim::<3>(0))
    }
}

/// Grouped-query self-attention with rotary embeddings.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

/// The SwiGLU MLP.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Gate projection (goes through SiLU).
    pub gate: Linear,
    /// Up projection.
    pub up: Linear,
    /// Down projection.
    pub down: Linear,
}

/// One pre-norm block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub input_norm: RmsNorm,
    /// Attention.
    pub attn: Attention,
    /// Norm before the MLP.
    pub post_attn_norm: RmsNorm,
    /// MLP.
    pub mlp: Mlp,
}

/// The whole model.
#[derive(Module, Debug)]
pub struct Model {
    /// Token embedding `[vocab, hidden]`.
    pub embed: Param<Tensor<2>>,
    /// The blocks.
    pub layers: Vec<Block>,
    /// The final norm.
    pub norm: RmsNorm,
    /// Output projection `[hidden, vocab]`; `None` when tied to `embed`.
    pub lm_head: Option<Linear>,
    /// Optional scalar value head `[hidden, 1]` (PPO).
    pub value_head: Option<Linear>,
    #[module(skip)]
    config: ModelConfig,
}

/// The keys and values of every layer for the positions seen so far, `[batch, kv_heads, seen,
/// head_dim]` each, keys already rotated. Grows by concatenation at each decoding step.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many positions it holds.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map_or(0, |(k, _)| k.dims()[2])
    }

    /// Keeps only the given batch rows, in that order (rows that finished generating leave).
    pub fn retain(&mut self, rows: &[usize]) {
        for (k, v) in self.layers.iter_mut().flatten() {
            let device = k.device();
            let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx);
        }
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one forward pass needs besides the tokens: each token's position (for RoPE) and which
/// keys each query may see. Built by [`Layout::left_padded`] for a left-padded batch.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Position of each new token, `batch * new` values, row-major.
    pub positions: Vec<u32>,
    /// Additive attention bias, `batch * new * (past + new)` values: 0 where allowed, `-inf`
    /// where masked.
    pub bias: Vec<f32>,
    /// Batch size.
    pub batch: usize,
    /// New tokens per row.
    pub new: usize,
    /// Cached positions before them.
    pub past: usize,
}

impl Layout {
    /// Causal attention over a left-padded batch: row `b` starts with `pads[b]` padding slots,
    /// which no real token attends to and which take no position. A padding query attends to
    /// itself only, so its softmax stays finite; its output is never read.
    pub fn left_padded(pads: &[usize], past: usize, new: usize) -> Self {
        let total = past + new;
        let mut positions = Vec::with_capacity(pads.len() * new);
        let mut bias = Vec::with_capacity(pads.len() * new * total);
        for &pad in pads {
            for i in 0..new {
                let q = past + i;
                positions.push(q.saturating_sub(pad) as u32);
                for j in 0..total {
                    let allowed = if q < pad { j == q } else { j >= pad && j <= q };
                    bias.push(if allowed { 0.0 } else { f32::NEG_INFINITY });
                }
            }
        }
        Self { positions, bias, batch: pads.len(), new, past }
    }
}

impl Model {
    /// The device its weights live on.
    pub fn device(&self) -> Device {
        self.embed.val().device()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// A model with weights drawn from N(0, 0.02) (norms at 1), reproducibly from `seed`.
    pub fn random(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self, WeightsError> {
        let weights = Weights::random(config, seed);
        Self::from_weights(config, weights, device)
    }

    /// Builds the model from HF-named, HF-laid-out weights; every expected tensor must be present
    /// with its exact shape.
    pub fn from_weights(config: &ModelConfig, mut w: Weights, device: &Device) -> Result<Self, WeightsError> {
        config.validate()?;
        let (d, hd) = (config.hidden_size, config.head_dim());
        let (h, kvh) = (config.num_attention_heads, config.kv_heads());
        let qkv_bias = config.qkv_bias();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut lin = |name: &str, out: usize, inp: usize, bias: bool| {
                linear(&mut w, &format!("{p}.{name}"), out, inp, bias, device)
            };
            let attn = Attention {
                q: lin("self_attn.q_proj", h * hd, d, qkv_bias)?,
                k: lin("self_attn.k_proj", kvh * hd, d, qkv_bias)?,
                v: lin("self_attn.v_proj", kvh * hd, d, qkv_bias)?,
                o: lin("self_attn.o_proj", d, h * hd, config.attention_bias)?,
                heads: h,
                kv_heads: kvh,
                head_dim: hd,
            };
            let mlp = Mlp {
                gate: lin("mlp.gate_proj", config.intermediate_size, d, false)?,
                up: lin("mlp.up_proj", config.intermediate_size, d, false)?,
                down: lin("mlp.down_proj", d, config.intermediate_size, false)?,
            };
            layers.push(Block {
                input_norm: norm(&mut w, &format!("{p}.input_layernorm"), config, device)?,
                attn,
                post_attn_norm: norm(&mut w, &format!("{p}.post_attention_layernorm"), config, device)?,
                mlp,
            });
        }
        // Some tied checkpoints still carry a copy of the head; it is dropped only if it equals
        // the embedding, since a different one means the checkpoint is not really tied.
        let tied_copy = if config.tie_word_embeddings { w.remove("lm_head.weight") } else { None };
        if let Some(copy) = tied_copy
            && w.0.get("model.embed_tokens.weight").is_some_and(|e| *e != copy)
        {
            return Err(WeightsError::Format(
                "tie_word_embeddings is set but lm_head.weight differs from model.embed_tokens.weight".into(),
            ));
        }
        let embed = w.take_tensor::<2>("model.embed_tokens.weight", &[config.vocab_size, d], device)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(linear(&mut w, "lm_head", config.vocab_size, d, false, device)?)
        };
        let value_head = if config.value_head { Some(linear(&mut w, "v_head", 1, d, true, device)?) } else { None };
        let model = Self {
            embed: Param::from_tensor(embed),
            layers,
            norm: norm(&mut w, "model.norm", config, device)?,
            lm_head,
            value_head,
            config: config.clone(),
        };
        w.reject_leftovers()?;
        Ok(model.stabilise_ids())
    }

    /// Gives every parameter an id that depends only on its place in the model, so that the same
    /// architecture loaded twice has the same ids: optimiser state saved with one checkpoint
    /// (keyed by parameter id) then applies to the reloaded model.
    pub fn stabilise_ids(self) -> Self {
        struct Ids(u64);
        impl burn::module::ModuleMapper for Ids {
            fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.id = burn::module::ParamId::from(0x726c_7672_0000_0000 + self.0);
                self.0 += 1;
                param
            }
        }
        self.map(&mut Ids(0))
    }

    /// The model with a value head (PPO) if it had none: zero weights, so every value starts at
    /// 0 and the policy's outputs are unchanged.
    pub fn with_value_head(mut self) -> Self {
        if self.value_head.is_some() {
            return self;
        }
        let device = self.device();
        let d = self.config.hidden_size;
        let weight = Tensor::<2>::zeros([d, 1], &device);
        let bias = Tensor::<1>::zeros([1], &device);
        self.value_head = Some(Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) });
        self.config.value_head = true;
        self.stabilise_ids()
    }

    /// The weights under their HF names and layouts, as f32: what [`Model::from_weights`] reads.
    /// A projection with a LoRA adapter contributes its effective weight, base plus adapter.
    pub fn to_weights(&self) -> Result<Weights, WeightsError> {
        self.weights_of(Param::val)
    }

    /// The weights as [`Model::to_weights`] gives them, but with each LoRA-adapted projection's
    /// frozen base instead of its effective weight: the model the adapter was trained on.
    pub fn to_base_weights(&self) -> Result<Weights, WeightsError> {
        self.weights_of(Param::base)
    }

    fn weights_of(&self, value: fn(&Param<Tensor<2>>) -> Tensor<2>) -> Result<Weights, WeightsError> {
        let mut w = Weights::default();
        w.put_tensor("model.embed_tokens.weight", self.embed.val())?;
        for (name, lin) in self.projections() {
            w.put_tensor(&format!("{name}.weight"), value(&lin.weight).transpose())?;
            if let Some(b) = &lin.bias {
                w.put_tensor(&format!("{name}.bias"), b.val())?;
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            w.put_tensor(&format!("{p}.input_layernorm.weight"), l.input_norm.weight.val())?;
            w.put_tensor(&format!("{p}.post_attention_layernorm.weight"), l.post_attn_norm.weight.val())?;
        }
        w.put_tensor("model.norm.weight", self.norm.weight.val())?;
        if let Some(head) = &self.lm_head {
            put_linear(&mut w, "lm_head", head)?;
        }
        if let Some(head) = &self.value_head {
            put_linear(&mut w, "v_head", head)?;
        }
        Ok(w)
    }

    /// Every block's seven projections under their HF names (`model.layers.3.self_attn.q_proj`,
    /// `model.layers.3.mlp.down_proj`), in layer order: what LoRA adapts and what checkpoints
    /// name.
    pub fn projections(&self) -> Vec<(String, &Linear)> {
        let mut out = Vec::with_capacity(self.layers.len() * 7);
        for (i, l) in self.layers.iter().enumerate() {
            let a = &l.attn;
            for (name, lin) in [
                ("self_attn.q_proj", &a.q),
                ("self_attn.k_proj", &a.k),
                ("self_attn.v_proj", &a.v),
                ("self_attn.o_proj", &a.o),
                ("mlp.gate_proj", &l.mlp.gate),
                ("mlp.up_proj", &l.mlp.up),
                ("mlp.down_proj", &l.mlp.down),
            ] {
                out.push((format!("model.layers.{i}.{name}"), lin));
            }
        }
        out
    }

    /// Final hidden states `[batch, new, hidden]` of `tokens` `[batch, new]`, attending to the
    /// cached positions and appending the new keys and values to `cache` when given.
    pub fn hidden(&self, tokens: Tensor<2, Int>, layout: &Layout, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let device = tokens.device();
        let [b, t] = tokens.dims();
        let (cos, sin) = self.rope_tables(&layout.positions, b, t, &device);
        let total = layout.past + t;
        let bias = Tensor::<4>::from_data(TensorData::new(layout.bias.clone(), [b, 1, t, total]), &device);
        let mut x = burn::tensor::module::embedding(self.embed.val(), tokens);
        if let Some(c) = cache.as_deref_mut()
            && c.layers.len() != self.layers.len()
        {
            c.layers = (0..self.layers.len()).map(|_| None).collect();
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = layer.attn.forward(layer.input_norm.forward(x.clone()), &cos, &sin, &bias, slot);
            x = x + h;
            let h = layer.mlp.forward(layer.post_attn_norm.forward(x.clone()));
            x = x + h;
        }
        self.norm.forward(x)
    }

    /// Logits `[batch, n, vocab]` of hidden states `[batch, n, hidden]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            // Tied: `embed · hiddenᵀ` keeps the large `[vocab, hidden]` matrix in its stored
            // order; only the small activations are transposed (a strided view of the embedding
            // made each decoding step several times slower).
            None => {
                let [b, t, d] = hidden.dims();
                let v = self.config.vocab_size;
                let rows = hidden.reshape([b * t, d]).transpose();
                self.embed.val().matmul(rows).transpose().reshape([b, t, v])
            }
        }
    }

    /// Value estimates `[batch, n]` of hidden states, if the model has a value head.
    pub fn values(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        self.value_head.as_ref().map(|h| h.forward(hidden).squeeze_dim::<2>(2))
    }

    /// Logits of every position of a batch of equal-length sequences, without a cache: the
    /// reference that cached decoding is tested against.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = tokens.dims();
        let layout = Layout::left_padded(&vec![0; b], 0, t);
        self.logits(self.hidden(tokens, &layout, None))
    }

    /// cos and sin `[batch, 1, new, head_dim]` for the given positions (the "rotate half"
    /// layout: the frequencies repeated twice).
    fn rope_tables(&self, positions: &[u32], b: usize, t: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let inv = self.config.inv_freq();
        let hd = self.config.head_dim();
        let mut cos = Vec::with_capacity(b * t * hd);
        let mut sin = Vec::with_capacity(b * t * hd);
        for &p in positions {
            for _ in 0..2 {
                for f in &inv {
                    let a = f64::from(p) * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let mk = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [b, 1, t, hd]), device);
        (mk(cos), mk(sin))
    }
}

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        bias: &Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, hd]).swap_dims(1, 2);
        let q = rotate(heads(self.q.forward(x.clone()), h), cos, sin);
        let mut k = rotate(heads(self.k.forward(x.clone()), kvh), cos, sin);
        let mut v = heads(self.v.forward(x), kvh);
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let s = k.dims()[2];
        let rep = h / kvh;
        // Query heads sharing a kv head are adjacent, so grouping them into the row dimension
        // lets one matmul serve the group without copying the keys `rep` times.
        let q = q.reshape([b, kvh, rep * t, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (hd as f64).sqrt()).reshape([b, h, t, s]);
        let probs = softmax(scores + bias.clone(), 3).reshape([b, kvh, rep * t, s]);
        let out = probs.matmul(v).reshape([b, h, t, hd]);
        self.o.forward(out.swap_dims(1, 2).reshape([b, t, h * hd]))
    }
}

/// Applies RoPE to `[batch, heads, new, head_dim]`: `x * cos + rotate_half(x) * sin`.
fn rotate(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, t, hd] = x.dims();
    let x1 = x.clone().narrow(3, 0, hd / 2);
    let x2 = x.clone().narrow(3, hd / 2, hd / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    debug_assert_eq!(rotated.dims(), [b, h, t, hd]);
    x * cos.clone() + rotated * sin.clone()
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down.forward(silu(self.gate.forward(x.clone())) * self.up.forward(x))
    }
}

fn linear(
    w: &mut Weights,
    name: &str,
    out: usize,
    inp: usize,
    bias: bool,
    device: &Device,
) -> Result<Linear, WeightsError> {
    // Transposed on the host, so that the device holds `[in, out]` contiguously rather than a
    // strided view of `[out, in]` that every matmul would have to walk.
    let hf = w.remove(&format!("{name}.weight")).ok_or_else(|| WeightsError::Missing(format!("{name}.weight")))?;
    if hf.shape != [out, inp] {
        return Err(WeightsError::Shape { name: format!("{name}.weight"), expected: vec![out, inp], found: hf.shape });
    }
    let mut data = vec![0.0f32; out * inp];
    for (o, row) in hf.data.chunks_exact(inp).enumerate() {
        for (i, &x) in row.iter().enumerate() {
            data[i * out + o] = x;
        }
    }
    let weight = Tensor::<2>::from_data(TensorData::new(data, [inp, out]), device);
    let bias = if bias {
        Some(Param::from_tensor(w.take_tensor::<1>(&format!("{name}.bias"), &[out], device)?))
    } else {
        None
    };
    Ok(Linear { weight: Param::from_tensor(weight), bias })
}

fn put_linear(w: &mut Weights, name: &str, lin: &Linear) -> Result<(), WeightsError> {
    w.put_tensor(&format!("{name}.weight"), lin.weight.val().transpose())?;
    if let Some(b) = &lin.bias {
        w.put_tensor(&format!("{name}.bias"), b.val())?;
    }
    Ok(())
}

fn norm(w: &mut Weights, name: &str, config: &ModelConfig, device: &Device) -> Result<RmsNorm, WeightsError> {
    Ok(RmsNorm {
        weight: Param::from_tensor(w.take_tensor::<1>(&format!("{name}.weight"), &[config.hidden_size], device)?),
        eps: config.rms_norm_eps,
    })
}
