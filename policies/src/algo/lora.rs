//! LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): train a
//! low-rank update `scale · A·B` beside each targeted projection's frozen weight, and nothing
//! else.
//!
//! ```toml
//! [policy.config.lora]
//! rank = 8
//! alpha = 16.0                 # the update is scaled by alpha / rank, as PEFT scales it
//! targets = ["q_proj", "v_proj"]   # default: all seven projections of every block
//! ```
//!
//! The adapters are burn's own ([`burn::module::Lora`]): every parameter of the model is frozen,
//! each targeted weight becomes `base + scale · A·B`, and only `A` and `B` reach the optimiser
//! (AdamW keeps moments for them alone, which is where LoRA saves memory). `A` starts as PEFT
//! starts it, uniform in `±1/√in` from the run's seed, and `B` at zero, so the adapted model
//! starts equal to its base. A PPO value head stays trainable.
//!
//! Burn composes an adapter at the weight, so there is no input-side dropout (`lora_dropout`);
//! in RL it would also make the update's two forward passes of one sequence disagree, which
//! skews the importance ratio.
//!
//! The policy keeps two models ([`crate::lm::LmPolicy::lora`]): the adapted one, which updates
//! train, and its merge, which generates, since composing `A·B` at every decoding step would
//! cost more than the step. A checkpoint holds the merge (an HF directory any loader reads),
//! the adapter as PEFT saves one (`adapter/adapter_config.json`,
//! `adapter/adapter_model.safetensors`) and the frozen base (`base/`), from which a resumed
//! run rebuilds the adapted model exactly. [`merge_adapter`] adds an adapter (ours or PEFT's)
//! into its base on the host (`rlvr merge --adapter`).

use crate::model::Model;
use crate::sample::Rng;
use crate::weights::{HostTensor, Weights, WeightsError};
use burn::module::{Lora, Module, ModuleMapper, Param, ParamGroup, ParamId};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The projections LoRA can adapt, by their HF module names (PEFT's `target_modules`).
pub const TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// `[policy.config.lora]`: the adapters' shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// The rank of `A·B`. Default 8.
    pub rank: usize,
    /// The update is scaled by `alpha / rank`. Default 16.
    pub alpha: f64,
    /// Which projections get an adapter, from [`TARGETS`]. Default: all seven.
    pub targets: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self { rank: 8, alpha: 16.0, targets: TARGETS.iter().map(|t| t.to_string()).collect() }
    }
}

impl LoraConfig {
    /// Refuses settings that describe no adapter.
    pub fn validate(&self) -> Result<(), String> {
        if self.rank == 0 {
            return Err("lora.rank must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("lora.alpha must be a finite number above 0, found {}", self.alpha));
        }
        if self.targets.is_empty() {
            return Err("lora.targets is empty: name at least one projection".into());
        }
        for t in &self.targets {
            if !TARGETS.contains(&t.as_str()) {
                return Err(format!("lora.targets: unknown projection {t:?} (one of {})", TARGETS.join(", ")));
            }
        }
        Ok(())
    }

    /// `alpha / rank`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    fn targets(&self, name: &str) -> bool {
        self.targets.iter().any(|t| name.ends_with(&format!(".{t}")))
    }
}

/// Freezes `model` and attaches fresh adapters to its targeted projections: `A` uniform in
/// `±1/√in` from `seed` (PEFT's initialisation), `B` zero.
pub fn attach(model: Model, config: &LoraConfig, seed: u64) -> Result<Model, WeightsError> {
    config.validate().map_err(WeightsError::Format)?;
    if model.projections().iter().any(|(_, l)| l.weight.adapter().is_some()) {
        return Err(WeightsError::Format("the model already carries LoRA adapters".into()));
    }
    let ids = model.projections().into_iter().filter(|(n, _)| config.targets(n)).map(|(_, l)| l.weight.id).collect();
    let mut model = model.apply_lora(Lora::new(config.rank, config.alpha).set_param_group(ParamGroup::from_ids(ids)));
    model.value_head = model.value_head.map(|h| h.set_require_grad(true));
    let model = model.stabilise_ids();
    let mut rng = Rng::new(seed);
    let mut values = HashMap::new();
    for (_, lin) in model.projections() {
        if let Some(adapter) = lin.weight.adapter() {
            let [d_in, rank] = adapter.a.val().dims();
            let bound = 1.0 / (d_in as f64).sqrt();
            let a = (0..d_in * rank).map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32).collect();
            values.insert(adapter.a.id, TensorData::new(a, [d_in, rank]));
        }
    }
    Ok(set_params(model, values))
}

/// The adapter of `model` as PEFT saves it: `base_model.model.{name}.lora_A.weight` `[rank, in]`
/// and `lora_B.weight` `[out, rank]` for each adapted projection.
pub fn adapter_weights(model: &Model) -> Result<Weights, WeightsError> {
    let mut w = Weights::default();
    for (name, lin) in model.projections() {
        if let Some(adapter) = lin.weight.adapter() {
            w.put_tensor(&format!("base_model.model.{name}.lora_A.weight"), adapter.a.val().transpose())?;
            w.put_tensor(&format!("base_model.model.{name}.lora_B.weight"), adapter.b.val().transpose())?;
        }
    }
    Ok(w)
}

/// Sets the adapters of `model` (from [`attach`], with the same targets and rank) to those of
/// `adapter`, as [`adapter_weights`] writes them. Every adapter must be there, with its shape.
pub fn load_adapter(model: Model, mut adapter: Weights) -> Result<Model, WeightsError> {
    let mut values = HashMap::new();
    for (name, lin) in model.projections() {
        if let Some(a) = lin.weight.adapter() {
            for (factor, param) in [("lora_A", &a.a), ("lora_B", &a.b)] {
                let key = format!("base_model.model.{name}.{factor}.weight");
                let [rows, cols] = param.val().dims();
                let t = adapter.remove(&key).ok_or_else(|| WeightsError::Missing(key.clone()))?;
                if t.shape != [cols, rows] {
                    return Err(WeightsError::Shape { name: key, expected: vec![cols, rows], found: t.shape });
                }
                values.insert(param.id, TensorData::new(transpose(&t), [rows, cols]));
            }
        }
    }
    adapter.reject_leftovers()?;
    Ok(set_params(model, values))
}

/// Writes `model`'s adapter as a PEFT adapter directory: `adapter_config.json` and
/// `adapter_model.safetensors`, which PEFT's `PeftModel.from_pretrained` loads onto the base.
pub fn save_adapter(dir: &Path, model: &Model, config: &LoraConfig) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| WeightsError::io(dir, e))?;
    let peft = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": 0.0,
        "target_modules": config.targets,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "inference_mode": true,
        "base_model_name_or_path": "../base",
    });
    let path = dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&peft).map_err(|e| WeightsError::Format(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| WeightsError::io(&path, e))?;
    adapter_weights(model)?.write_safetensors(&dir.join("adapter_model.safetensors"))
}

/// An adapter directory's settings, as `adapter_config.json` gives them (PEFT's or ours).
pub fn read_adapter_config(dir: &Path) -> Result<LoraConfig, WeightsError> {
    let path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WeightsError::io(&path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", path.display())))?;
    let bad = |what: &str| WeightsError::Format(format!("{}: {what}", path.display()));
    if v["peft_type"].as_str() != Some("LORA") {
        return Err(bad("not a LoRA adapter (peft_type is not \"LORA\")"));
    }
    if v["use_rslora"].as_bool() == Some(true) || v["use_dora"].as_bool() == Some(true) {
        return Err(bad("rsLoRA and DoRA adapters are not supported"));
    }
    if v["fan_in_fan_out"].as_bool() == Some(true) {
        return Err(bad("fan_in_fan_out adapters (GPT-2's Conv1D layout) are not supported"));
    }
    let rank = v["r"].as_u64().ok_or_else(|| bad("no integer `r`"))? as usize;
    let alpha = v["lora_alpha"].as_f64().ok_or_else(|| bad("no `lora_alpha`"))?;
    let targets = match &v["target_modules"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
        _ => return Err(bad("no `target_modules` list")),
    };
    let config = LoraConfig { rank, alpha, targets };
    config.validate().map_err(|e| bad(&e))?;
    Ok(config)
}

/// Adds the adapter in `dir` into `base` (HF names and layouts): `W += alpha/r · B·A` for each
/// `lora_A`/`lora_B` pair. Fails on a pair whose projection `base` lacks, or a shape that does
/// not fit; returns how many projections were merged.
pub fn merge_adapter(base: &mut Weights, dir: &Path) -> Result<usize, WeightsError> {
    let config = read_adapter_config(dir)?;
    let mut adapter = Weights::default();
    adapter.read_safetensors(&dir.join("adapter_model.safetensors"))?;
    let scale = config.scale() as f32;
    let mut merged = 0;
    let keys: Vec<String> = adapter.0.keys().filter(|k| k.ends_with(".lora_A.weight")).cloned().collect();
    for a_key in keys {
        let module = a_key.trim_end_matches(".lora_A.weight");
        let b_key = format!("{module}.lora_B.weight");
        let a = adapter.remove(&a_key).expect("listed above");
        let b = adapter.remove(&b_key).ok_or_else(|| WeightsError::Missing(b_key.clone()))?;
        let name = format!("{}.weight", module.trim_start_matches("base_model.model."));
        let w = base.0.get_mut(&name).ok_or_else(|| WeightsError::Missing(name.clone()))?;
        let (out, inp) = match w.shape[..] {
            [o, i] => (o, i),
            _ => return Err(WeightsError::Format(format!("{name} is not a matrix"))),
        };
        let r = a.shape[0];
        if a.shape != [r, inp] || b.shape != [out, r] {
            return Err(WeightsError::Format(format!(
                "{module}: lora_A {:?} and lora_B {:?} do not fit {name} {:?}",
                a.shape, b.shape, w.shape
            )));
        }
        for o in 0..out {
            for i in 0..inp {
                let dot: f32 = (0..r).map(|k| b.data[o * r + k] * a.data[k * inp + i]).sum();
                w.data[o * inp + i] += scale * dot;
            }
        }
        merged += 1;
    }
    if let Some(left) = adapter.0.keys().next() {
        return Err(WeightsError::Format(format!("{}: unexpected tensor {left}", dir.display())));
    }
    Ok(merged)
}

/// `t` (a matrix) transposed, row-major.
fn transpose(t: &HostTensor) -> Vec<f32> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = t.data[r * cols + c];
        }
    }
    out
}

/// `model` with the parameters named in `values` (by id) set to those values, keeping their
/// trainability.
fn set_params(model: Model, values: HashMap<ParamId, TensorData>) -> Model {
    struct Set(HashMap<ParamId, TensorData>);
    impl ModuleMapper for Set {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.0.remove(&param.id) {
                Some(data) => param.map(|t| {
                    let grad = t.is_require_grad();
                    Tensor::<D>::from_data(data, &t.device()).set_require_grad(grad)
                }),
                None => param,
            }
        }
    }
    model.map(&mut Set(values))
}
