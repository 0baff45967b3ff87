//! Weights on the host, by HF name: the common currency of every checkpoint format.
//!
//! HF safetensors (one file or a sharded index) and our own checkpoints are read into
//! [`Weights`] (f32, HF names and layouts) and the model is built from that one map, so each
//! format is a reader and nothing more (a GGUF reader would be one more). Our own checkpoint is
//! an HF-layout directory in f32 (`config.json` + `model.safetensors`), which makes saving
//! lossless.

use crate::model::ModelConfig;
use crate::sample::Rng;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;
use safetensors::tensor::Metadata;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How task vectors are combined by [`Weights::merge_task_vectors`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MergeMethod {
    /// Their weighted sum (Ilharco et al. 2023).
    TaskArithmetic,
    /// DARE (Yu et al. 2024, "Language Models are Super Mario"): each entry of each task vector
    /// is dropped with probability `drop` and the kept ones are divided by `1 - drop`, by a mask
    /// drawn from `seed`; then summed. `drop = 0` is task arithmetic.
    Dare {
        /// The drop probability, in [0, 1).
        drop: f64,
        /// Seeds the masks (one stream per model and tensor).
        seed: u64,
    },
    /// TIES (Yadav et al. 2023): trim each task vector to its `density` share of
    /// largest-magnitude entries (per tensor), elect each entry's sign as that of the trimmed
    /// vectors' sum, and average the trimmed entries that agree with it.
    Ties {
        /// The share of entries kept, in (0, 1].
        density: f64,
    },
}

/// A stable hash of a tensor's name (FNV-1a), so DARE's masks do not depend on map order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// TIES over one tensor's task vectors (each the same length): trim, elect, disjoint mean.
pub fn ties(deltas: &[Vec<f64>], density: f64) -> Vec<f64> {
    let n = deltas.first().map_or(0, Vec::len);
    let keep = ((density * n as f64).ceil() as usize).min(n);
    let trimmed: Vec<Vec<f64>> = deltas
        .iter()
        .map(|d| {
            let mut order: Vec<usize> = (0..n).collect();
            // Largest magnitude first; ties broken by position, so the result is deterministic.
            order.sort_by(|&a, &b| d[b].abs().total_cmp(&d[a].abs()).then(a.cmp(&b)));
            let mut t = vec![0.0; n];
            for &j in &order[..keep] {
                t[j] = d[j];
            }
            t
        })
        .collect();
    (0..n)
        .map(|j| {
            let total: f64 = trimmed.iter().map(|t| t[j]).sum();
            let agree: Vec<f64> =
                trimmed.iter().map(|t| t[j]).filter(|&x| x != 0.0 && x.signum() == total.signum()).collect();
            if total == 0.0 || agree.is_empty() { 0.0 } else { agree.iter().sum::<f64>() / agree.len() as f64 }
        })
        .collect()
}

/// A checkpoint could not be read, written, or did not fit the architecture.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it claims to be.
    #[error("{0}")]
    Format(String),
    /// The configuration describes a model this file cannot build.
    #[error("config: {0}")]
    Config(String),
    /// An expected tensor is absent.
    #[error("missing tensor {0}")]
    Missing(String),
    /// A tensor has the wrong shape.
    #[error("tensor {name}: expected shape {expected:?}, found {found:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// What the config implies.
        expected: Vec<usize>,
        /// What the file holds.
        found: Vec<usize>,
    },
    /// Tensors the architecture does not use: a sign of the wrong config or architecture.
    #[error("unexpected tensors: {0:?}")]
    Unexpected(Vec<String>),
    /// Reading a tensor back from the device failed.
    #[error("tensor readback: {0}")]
    Readback(String),
}

impl WeightsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// One tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Its shape, outermost first.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: Vec<f32>,
}

/// Tensors by HF name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights(pub BTreeMap<String, HostTensor>);

impl Weights {
    /// Random weights for `config`: N(0, 0.02) for matrices and biases, 1 for norm gains.
    pub fn random(config: &ModelConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut w = Self::default();
        let (d, hd, i) = (config.hidden_size, config.head_dim(), config.intermediate_size);
        let (h, kvh, v) = (config.num_attention_heads, config.kv_heads(), config.vocab_size);
        let mut normal = |w: &mut Self, name: String, shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            let data = (0..n).map(|_| 0.02 * rng.normal()).collect();
            w.0.insert(name, HostTensor { shape, data });
        };
        let ones = |w: &mut Self, name: String| {
            w.0.insert(name, HostTensor { shape: vec![d], data: vec![1.0; d] });
        };
        normal(&mut w, "model.embed_tokens.weight".into(), vec![v, d]);
        let qkv_bias = config.attention_bias || config.model_type == "qwen2";
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            for (name, out, inp, bias) in [
                ("self_attn.q_proj", h * hd, d, qkv_bias),
                ("self_attn.k_proj", kvh * hd, d, qkv_bias),
                ("self_attn.v_proj", kvh * hd, d, qkv_bias),
                ("self_attn.o_proj", d, h * hd, config.attention_bias),
                ("mlp.gate_proj", i, d, false),
                ("mlp.up_proj", i, d, false),
                ("mlp.down_proj", d, i, false),
            ] {
                normal(&mut w, format!("{p}.{name}.weight"), vec![out, inp]);
                if bias {
                    normal(&mut w, format!("{p}.{name}.bias"), vec![out]);
                }
            }
            ones(&mut w, format!("{p}.input_layernorm.weight"));
            ones(&mut w, format!("{p}.post_attention_layernorm.weight"));
        }
        ones(&mut w, "model.norm.weight".into());
        if !config.tie_word_embeddings {
            normal(&mut w, "lm_head.weight".into(), vec![v, d]);
        }
        if config.value_head {
            normal(&mut w, "v_head.weight".into(), vec![1, d]);
            normal(&mut w, "v_head.bias".into(), vec![1]);
        }
        w
    }

    /// Removes a tensor, if present.
    pub fn remove(&mut self, name: &str) -> Option<HostTensor> {
        self.0.remove(name)
    }

    /// Removes the tensor `name`, checks its shape and puts it on `device`.
    pub fn take_tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor<D>, WeightsError> {
        let t = self.0.remove(name).ok_or_else(|| WeightsError::Missing(name.into()))?;
        if t.shape != shape {
            return Err(WeightsError::Shape { name: name.into(), expected: shape.to_vec(), found: t.shape });
        }
        Ok(Tensor::from_data(TensorData::new(t.data, t.shape), device))
    }

    /// Reads `tensor` back to the host under `name`.
    pub fn put_tensor<const D: usize>(&mut self, name: &str, tensor: Tensor<D>) -> Result<(), WeightsError> {
        let shape = tensor.dims().to_vec();
        let data = tensor
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| WeightsError::Readback(format!("{e:?}")))?;
        self.0.insert(name.into(), HostTensor { shape, data });
        Ok(())
    }

    /// Fails if tensors remain that the model did not take (rotary frequency buffers, which
    /// some checkpoints store and the model recomputes, are allowed).
    pub fn reject_leftovers(&self) -> Result<(), WeightsError> {
        let left: Vec<String> = self.0.keys().filter(|k| !k.ends_with("rotary_emb.inv_freq")).cloned().collect();
        if left.is_empty() { Ok(()) } else { Err(WeightsError::Unexpected(left)) }
    }

    /// Reads one safetensors file (F32, F16 or BF16 tensors, converted to f32).
    ///
    /// The file is read one tensor at a time through a buffer the size of the largest tensor,
    /// not whole: holding the file's bytes beside the converted tensors doubled the peak
    /// memory of loading an f32 checkpoint. The header is parsed and checked by the
    /// `safetensors` crate (offsets contiguous, sizes matching shapes), and the file's length
    /// is checked against it before any tensor is read.
    pub fn read_safetensors(&mut self, path: &Path) -> Result<(), WeightsError> {
        use std::io::Read;
        let format = |what: String| WeightsError::Format(format!("{}: {what}", path.display()));
        let mut file = std::fs::File::open(path).map_err(|e| WeightsError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| WeightsError::io(path, e))?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n).map_err(|_| format("shorter than a safetensors header".into()))?;
        let n = u64::from_le_bytes(n);
        // The crate's own limit on a header (100 MB), checked before allocating it.
        if n > 100_000_000 || 8 + n > file_len {
            return Err(format(format!("header length {n} does not fit a file of {file_len} bytes")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(|e| WeightsError::io(path, e))?;
        let meta: Metadata = serde_json::from_slice(&header).map_err(|e| format(format!("header: {e}")))?;
        if 8 + n + meta.data_len() as u64 != file_len {
            return Err(format(format!(
                "the header describes {} bytes of tensors, the file holds {}",
                meta.data_len(),
                file_len - 8 - n
            )));
        }
        let infos = meta.tensors();
        let names = meta.offset_keys();
        let largest = infos.values().map(|i| i.data_offsets.1 - i.data_offsets.0).max().unwrap_or(0);
        let mut raw = vec![0u8; largest];
        for name in names {
            let info = infos[&name];
            // Offsets are contiguous from 0 (the crate checked), so the tensors are read in order.
            let raw = &mut raw[..info.data_offsets.1 - info.data_offsets.0];
            file.read_exact(raw).map_err(|e| WeightsError::io(path, e))?;
            let data: Vec<f32> = match info.dtype {
                Dtype::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                Dtype::F16 => raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                Dtype::BF16 => raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                other => {
                    return Err(format(format!("tensor {name} has dtype {other:?}; only F32, F16 and BF16 are read")));
                }
            };
            self.0.insert(name, HostTensor { shape: info.shape.clone(), data });
        }
        Ok(())
    }

    /// Reads the weights of an HF directory: the shards its `model.safetensors.index.json`
    /// names, or else every `*.safetensors` file in it.
    pub fn read_hf_dir(dir: &Path) -> Result<Self, WeightsError> {
        let mut w = Self::default();
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| WeightsError::io(&index, e))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", index.display())))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| WeightsError::Format(format!("{}: no weight_map", index.display())))?;
            let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
            shards.sort_unstable();
            shards.dedup();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| WeightsError::io(dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            files.sort();
            files
        };
        if files.is_empty() {
            return Err(WeightsError::Format(format!("{}: no *.safetensors files", dir.display())));
        }
        for f in files {
            w.read_safetensors(&f)?;
        }
        Ok(w)
    }

    /// Weight arithmetic over models of one architecture. Without `base`: the weighted sum
    /// `Σ wᵢ·mᵢ` (a model soup when the weights sum to 1). With `base`: `base + Σ wᵢ·(mᵢ - base)`,
    /// task arithmetic (Ilharco et al. 2023): a positive weight adds model i's task vector, a
    /// negative one subtracts it. Every model must have the same tensors with the same shapes.
    pub fn combine(base: Option<&Weights>, parts: &[(Weights, f64)]) -> Result<Weights, WeightsError> {
        let Some((first, _)) = parts.first() else {
            return Err(WeightsError::Format("nothing to combine".into()));
        };
        let reference = base.unwrap_or(first);
        for (i, (w, _)) in parts.iter().enumerate() {
            let same = w.0.len() == reference.0.len()
                && w.0.iter().all(|(k, t)| reference.0.get(k).is_some_and(|r| r.shape == t.shape));
            if !same {
                return Err(WeightsError::Format(format!(
                    "model {} does not have the same tensors and shapes as the {}",
                    i + 1,
                    if base.is_some() { "base" } else { "first model" }
                )));
            }
        }
        let mut out = reference.clone();
        for (name, t) in out.0.iter_mut() {
            let b = base.map(|b| &b.0[name].data);
            for (j, x) in t.data.iter_mut().enumerate() {
                let b0 = b.map_or(0.0, |b| f64::from(b[j]));
                let delta: f64 = parts.iter().map(|(w, c)| c * (f64::from(w.0[name].data[j]) - b0)).sum();
                *x = (b0 + delta) as f32;
            }
        }
        Ok(out)
    }

    /// Task-vector merging onto `base` (`rlvr merge --base --method`): each model's task vector
    /// `δᵢ = wᵢ·(mᵢ - base)` is combined as `method` says and added to the base. Every model must
    /// have the base's tensors and shapes.
    pub fn merge_task_vectors(
        base: &Weights,
        parts: &[(Weights, f64)],
        method: MergeMethod,
    ) -> Result<Weights, WeightsError> {
        if let MergeMethod::TaskArithmetic = method {
            return Self::combine(Some(base), parts);
        }
        // The shape checks and the error are combine's.
        Self::combine(Some(base), parts)?;
        let mut out = base.clone();
        for (name, t) in out.0.iter_mut() {
            let b = &base.0[name].data;
            let deltas: Vec<Vec<f64>> = parts
                .iter()
                .map(|(w, c)| w.0[name].data.iter().zip(b).map(|(x, b)| c * (f64::from(*x) - f64::from(*b))).collect())
                .collect();
            let merged: Vec<f64> = match method {
                MergeMethod::TaskArithmetic => unreachable!("handled above"),
                MergeMethod::Dare { drop, seed } => {
                    let mut sum = vec![0.0; b.len()];
                    for (i, d) in deltas.iter().enumerate() {
                        let mut rng = Rng::new(rlvr_engine::seed::derive(seed, &[i as u64, name_hash(name)]));
                        for (s, x) in sum.iter_mut().zip(d) {
                            // Kept with probability 1 - drop, and rescaled so the expectation is δ.
                            if rng.uniform() >= drop {
                                *s += x / (1.0 - drop);
                            }
                        }
                    }
                    sum
                }
                MergeMethod::Ties { density } => ties(&deltas, density),
            };
            for ((x, b), m) in t.data.iter_mut().zip(b).zip(merged) {
                *x = (f64::from(*b) + m) as f32;
            }
        }
        Ok(out)
    }

    /// Writes every tensor as F32 into one safetensors file (lossless for our f32 models).
    pub fn write_safetensors(&self, path: &Path) -> Result<(), WeightsError> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .0
            .iter()
            .map(|(k, t)| {
                let b = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                (k.clone(), b, t.shape.clone())
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, b, s)| {
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| WeightsError::Format(format!("{k}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = [("format".to_string(), "pt".to_string())].into();
        safetensors::serialize_to_file(views, Some(metadata), path)
            .map_err(|e| WeightsError::Format(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn one(data: Vec<f32>) -> Weights {
        let shape = vec![data.len()];
        Weights([("w".to_string(), HostTensor { shape, data })].into())
    }

    fn data(w: &Weights) -> Vec<f32> {
        w.0["w"].data.clone()
    }

    #[test]
    fn dare_with_drop_zero_is_task_arithmetic() {
        let base = one(vec![0.5, -1.0, 2.0]);
        let parts = vec![(one(vec![1.5, -0.5, 2.25]), 0.7), (one(vec![0.0, -3.0, 1.0]), -0.4)];
        let ta = Weights::merge_task_vectors(&base, &parts, MergeMethod::TaskArithmetic).unwrap();
        let dare = Weights::merge_task_vectors(&base, &parts, MergeMethod::Dare { drop: 0.0, seed: 3 }).unwrap();
        assert_eq!(data(&ta), data(&dare));
    }

    #[test]
    fn dare_drops_and_rescales_by_a_seeded_mask() {
        let n = 20_000;
        let base = one(vec![0.0; n]);
        let parts = vec![(one(vec![1.0; n]), 1.0)];
        let merged =
            |seed| data(&Weights::merge_task_vectors(&base, &parts, MergeMethod::Dare { drop: 0.5, seed }).unwrap());
        let a = merged(7);
        // Each entry is dropped (0) or kept and doubled (2); about half of each, so the mean stays 1.
        assert!(a.iter().all(|&x| x == 0.0 || x == 2.0));
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        assert_eq!(a, merged(7), "the same seed draws the same mask");
        assert_ne!(a, merged(8));
    }

    #[test]
    fn ties_trims_elects_the_sign_and_averages_the_agreeing_entries() {
        let base = one(vec![0.0; 4]);
        let parts = vec![
            (one(vec![1.0, -2.0, 0.5, 0.0]), 1.0),
            (one(vec![3.0, 1.0, -0.1, 0.0]), 1.0),
            (one(vec![-1.0, -1.0, 0.2, 0.0]), 1.0),
        ];
        // Untrimmed: sums 3, -2, 0.6, 0 elect +, -, +, none; the agreeing entries average to
        // (1 + 3) / 2, (-2 - 1) / 2, (0.5 + 0.2) / 2, and 0.
        let full = data(&Weights::merge_task_vectors(&base, &parts, MergeMethod::Ties { density: 1.0 }).unwrap());
        let want = [2.0f32, -1.5, 0.35, 0.0];
        for (g, w) in full.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{full:?}");
        }
        // Keeping half (2 of 4 entries each) trims every third entry: it ends at 0.
        let half = data(&Weights::merge_task_vectors(&base, &parts, MergeMethod::Ties { density: 0.5 }).unwrap());
        assert_eq!(half, vec![2.0, -1.5, 0.0, 0.0]);
        // Onto a base: the merged task vector is added to it.
        let shifted = Weights::merge_task_vectors(
            &one(vec![1.0; 4]),
            &parts.iter().map(|(w, c)| (one(data(w).iter().map(|x| x + 1.0).collect()), *c)).collect::<Vec<_>>(),
            MergeMethod::Ties { density: 1.0 },
        )
        .unwrap();
        for (g, w) in data(&shifted).iter().zip(want) {
            assert!((g - (w + 1.0)).abs() < 1e-6);
        }
    }

    #[test]
    fn models_of_another_shape_are_refused() {
        let e = Weights::merge_task_vectors(
            &one(vec![0.0; 2]),
            &[(one(vec![0.0; 3]), 1.0)],
            MergeMethod::Ties { density: 0.5 },
        )
        .unwrap_err();
        assert!(e.to_string().contains("same tensors and shapes"), "{e}");
    }
}
