//! GGUF files, llama.cpp's single-file checkpoint format: header, metadata, tensors; the
//! `llama` and `qwen2` architectures mapped onto our HF-named [`Weights`] and [`ModelConfig`].
//!
//! Layout (versions 2 and 3, little-endian): `GGUF`, version `u32`, tensor count `u64`,
//! metadata count `u64`; the metadata as `(key string, type u32, value)`; the tensor infos as
//! `(name, n_dims u32, dims u64 × n_dims innermost first, ggml type u32, offset u64)`; padding to
//! `general.alignment` (default 32); then the tensor data, each tensor at its offset from there.
//!
//! A GGUF file is untrusted input: every count, length and offset is checked against the bytes
//! that are actually there before anything is allocated or sliced, so a truncated or corrupt file
//! is an error naming the file, never a panic or a huge allocation.
//!
//! Two facts of llama.cpp's converter matter for the weights:
//! - Dimensions are listed innermost first: a GGUF `[576, 49152]` tensor is HF's `[49152, 576]`.
//! - For `llama` it permutes the rows of the q and k projections, head by head, from HF's
//!   "rotate half" layout (the two halves of a head are rotated together) to the interleaved
//!   layout of its own RoPE kernel (pairs of adjacent rows). [`Gguf::weights`] undoes it, since
//!   our attention is HF's. `qwen2` files are not permuted (llama.cpp runs them with the
//!   rotate-half kernel).

use crate::model::ModelConfig;
use crate::weights::{HostTensor, Weights, WeightsError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file's first four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Alignment of the tensor data when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Deepest nesting of arrays accepted in metadata (llama.cpp itself writes one level).
const MAX_ARRAY_DEPTH: usize = 4;

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8: UTF-8 text, `u64` length then bytes.
    String(String),
    /// Type 9: element type `u32`, count `u64`, elements.
    Array(Vec<Value>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl Value {
    /// The value as a non-negative integer, whatever its integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float. An `f32` is read through its shortest decimal form, so the
    /// `1e-5` a converter stored as `f32` comes back as `1e-5` and not `9.99999974e-6`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => v.to_string().parse().ok(),
            Self::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// A ggml tensor type: how the values of a tensor are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    /// 0: f32.
    F32,
    /// 1: IEEE half.
    F16,
    /// 2: blocks of 32: f16 scale `d`, 16 bytes of 4-bit `q`; `x = (q - 8) * d`.
    Q4_0,
    /// 3: blocks of 32: f16 scale `d`, f16 minimum `m`, 16 bytes of 4-bit `q`; `x = q * d + m`.
    Q4_1,
    /// 8: blocks of 32: f16 scale `d`, 32 signed bytes `q`; `x = q * d`.
    Q8_0,
    /// 30: bfloat16.
    BF16,
    /// Any other type (K-quants, i-quants, integers): listed, not dequantized.
    Other(u32),
}

impl GgmlType {
    /// The type of a ggml type id.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    /// `(values per block, bytes per block)`, for the types this reader dequantizes.
    pub fn block(self) -> Option<(u64, u64)> {
        match self {
            Self::F32 => Some((1, 4)),
            Self::F16 | Self::BF16 => Some((1, 2)),
            Self::Q4_0 => Some((32, 18)),
            Self::Q4_1 => Some((32, 20)),
            Self::Q8_0 => Some((32, 34)),
            Self::Other(_) => None,
        }
    }

    /// ggml's name of the type.
    pub fn name(self) -> String {
        let known = [
            "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
            "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
            "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
        ];
        let id = match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
            Self::BF16 => 30,
            Self::Other(id) => id,
        };
        known.get(id as usize).map_or_else(|| format!("type {id}"), |n| (*n).to_string())
    }
}

/// Where a tensor is and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Its GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost (contiguous) first, as GGUF lists them.
    pub dims: Vec<u64>,
    /// How the values are stored.
    pub ggml_type: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The shape in HF order (outermost first).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file, held in memory.
pub struct Gguf {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, Value>,
    /// Tensor infos, in file order.
    pub tensors: Vec<TensorInfo>,
    bytes: Vec<u8>,
    data_start: usize,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(format!("truncated: needs {n} bytes at offset {}, only {left} left", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<String, String> {
        let at = self.pos;
        let n = self.u64()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("string at offset {at} is not UTF-8"))
    }

    /// One value of type `ty`; `depth` counts the arrays it is inside.
    fn value(&mut self, ty: u32, depth: usize) -> Result<Value, String> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("bool byte {b} at offset {}", self.pos - 1)),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!("arrays nested deeper than {MAX_ARRAY_DEPTH} at offset {}", self.pos));
                }
                let elem = self.u32()?;
                let count = self.u64()?;
                // Every element takes at least this many bytes, so a count the rest of the file
                // cannot hold is refused before anything is allocated.
                let min = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(format!("unknown metadata type {t} at offset {}", self.pos - 12)),
                };
                if count.saturating_mul(min) > self.left() {
                    return Err(format!(
                        "array of {count} elements at offset {} is larger than the rest of the file",
                        self.pos - 12
                    ));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            t => return Err(format!("unknown metadata type {t} at offset {}", self.pos - 4)),
        })
    }
}

impl Gguf {
    /// Reads and parses a GGUF file.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|e| WeightsError::io(path, e))?;
        Self::parse(bytes, path)
    }

    /// Parses the bytes of a GGUF file; `path` names it in errors.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self, WeightsError> {
        let fail = |m: String| WeightsError::Format(format!("{}: {m}", path.display()));
        let mut c = Cursor { buf: &bytes, pos: 0 };
        if c.take(4).map_err(&fail)? != MAGIC {
            return Err(fail("not a GGUF file (no GGUF magic)".into()));
        }
        let version = c.u32().map_err(&fail)?;
        if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            return Err(fail("big-endian GGUF files are not supported".into()));
        }
        if !(2..=3).contains(&version) {
            return Err(fail(format!("GGUF version {version} is not supported (2 and 3 are)")));
        }
        let n_tensors = c.u64().map_err(&fail)?;
        let n_kv = c.u64().map_err(&fail)?;
        // A key-value pair takes at least 13 bytes and a tensor info 24.
        if n_kv.saturating_mul(13).saturating_add(n_tensors.saturating_mul(24)) > c.left() {
            return Err(fail(format!(
                "header claims {n_kv} metadata entries and {n_tensors} tensors, more than the file holds"
            )));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string().map_err(&fail)?;
            let ty = c.u32().map_err(&fail)?;
            let value = c.value(ty, 0).map_err(|e| fail(format!("metadata {key}: {e}")))?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(fail(format!("metadata key {key} appears twice")));
            }
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string().map_err(&fail)?;
            let n_dims = c.u32().map_err(&fail)?;
            if n_dims > MAX_DIMS {
                return Err(fail(format!("tensor {name} has {n_dims} dimensions (at most {MAX_DIMS})")));
            }
            let dims = (0..n_dims).map(|_| c.u64()).collect::<Result<Vec<u64>, _>>().map_err(&fail)?;
            let ggml_type = GgmlType::from_id(c.u32().map_err(&fail)?);
            let offset = c.u64().map_err(&fail)?;
            tensors.push(TensorInfo { name, dims, ggml_type, offset });
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => return Err(fail(format!("general.alignment {v:?} is not a power of two"))),
            },
        };
        let data_start = (c.pos as u64).div_ceil(alignment).saturating_mul(alignment);
        let file_len = bytes.len() as u64;
        if data_start > file_len && !tensors.is_empty() {
            return Err(fail("truncated: the tensor data section is missing".into()));
        }
        let mut names = std::collections::HashSet::new();
        for t in &tensors {
            if !names.insert(t.name.as_str()) {
                return Err(fail(format!("tensor {} appears twice", t.name)));
            }
            if !t.offset.is_multiple_of(alignment) {
                return Err(fail(format!("tensor {}: offset {} is not aligned to {alignment}", t.name, t.offset)));
            }
            // Types this reader cannot decode are only listed: their size is not checked here,
            // and reading one is an error.
            if let Some(size) = tensor_bytes(t).map_err(&fail)? {
                let end = data_start.checked_add(t.offset).and_then(|s| s.checked_add(size));
                if end.is_none_or(|e| e > file_len) {
                    return Err(fail(format!(
                        "truncated: tensor {} ({} bytes at data offset {}) runs past the end of the file ({file_len} bytes)",
                        t.name, size, t.offset
                    )));
                }
            }
        }
        let data_start = data_start.min(file_len) as usize;
        Ok(Self { path: path.to_path_buf(), version, metadata, tensors, bytes, data_start })
    }

    fn fail(&self, m: impl std::fmt::Display) -> WeightsError {
        WeightsError::Format(format!("{}: {m}", self.path.display()))
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, WeightsError> {
        self.get("general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| self.fail("no general.architecture in the metadata"))
    }

    fn usize_of(&self, key: &str) -> Result<Option<usize>, WeightsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.fail(format!("{key} is {v:?}, not a non-negative integer"))),
        }
    }

    fn required(&self, key: &str) -> Result<usize, WeightsError> {
        self.usize_of(key)?.ok_or_else(|| self.fail(format!("metadata {key} is missing")))
    }

    fn f64_of(&self, key: &str) -> Result<Option<f64>, WeightsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| self.fail(format!("{key} is {v:?}, not a number"))),
        }
    }

    /// The tensor `name`, dequantized to f32, in HF shape (outermost first).
    pub fn tensor(&self, name: &str) -> Result<HostTensor, WeightsError> {
        let t = self.tensors.iter().find(|t| t.name == name).ok_or_else(|| self.fail(format!("no tensor {name}")))?;
        self.read(t)
    }

    fn read(&self, t: &TensorInfo) -> Result<HostTensor, WeightsError> {
        let size = tensor_bytes(t).map_err(|e| self.fail(e))?.ok_or_else(|| {
            self.fail(format!(
                "tensor {} is {}, which this reader does not dequantize (F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
                t.name,
                t.ggml_type.name()
            ))
        })?;
        // `parse` checked that the tensor lies inside the file.
        let start = self.data_start + t.offset as usize;
        let raw = &self.bytes[start..start + size as usize];
        let n: u64 = t.dims.iter().product();
        Ok(HostTensor { shape: t.shape(), data: dequantize(t.ggml_type, raw, n as usize) })
    }

    /// The architecture's hyper-parameters from the `ARCH.*` metadata (`llama` or `qwen2`).
    /// The output projection is tied to the embedding when the file has no `output.weight`.
    pub fn model_config(&self) -> Result<ModelConfig, WeightsError> {
        let arch = self.architecture()?;
        if !matches!(arch, "llama" | "qwen2") {
            return Err(self.fail(format!("architecture {arch:?} is not supported (llama, qwen2)")));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let heads = self.required(&k("attention.head_count"))?;
        let hidden = self.required(&k("embedding_length"))?;
        let kv_heads = self.usize_of(&k("attention.head_count_kv"))?.unwrap_or(heads);
        let vocab = match self.usize_of(&k("vocab_size"))? {
            Some(v) => v,
            None => self
                .get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(<[Value]>::len)
                .ok_or_else(|| self.fail(format!("neither {arch}.vocab_size nor tokenizer.ggml.tokens")))?,
        };
        let head_dim = self.usize_of(&k("attention.key_length"))?;
        let config = ModelConfig {
            model_type: arch.into(),
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: self.required(&k("feed_forward_length"))?,
            num_hidden_layers: self.required(&k("block_count"))?,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: head_dim.filter(|&d| heads == 0 || d != hidden / heads),
            rms_norm_eps: self.f64_of(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6),
            rope_theta: self.f64_of(&k("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: self.usize_of(&k("context_length"))?.unwrap_or(2048),
            tie_word_embeddings: !self.tensors.iter().any(|t| t.name == "output.weight"),
            attention_bias: false,
            hidden_act: "silu".into(),
            bos_token_id: self.usize_of("tokenizer.ggml.bos_token_id")?.and_then(|v| u32::try_from(v).ok()),
            eos_token_id: self
                .usize_of("tokenizer.ggml.eos_token_id")?
                .and_then(|v| u32::try_from(v).ok())
                .map(crate::model::OneOrMany::One),
            value_head: false,
        };
        config.validate().map_err(|e| self.fail(e))?;
        if let Some(rot) = self.usize_of(&k("rope.dimension_count"))?
            && rot != config.head_dim()
        {
            return Err(self.fail(format!(
                "rope.dimension_count {rot} differs from the head width {}: partial rotary embeddings are not supported",
                config.head_dim()
            )));
        }
        match self.get(&k("rope.scaling.type")).and_then(Value::as_str) {
            None | Some("none") => {}
            Some(other) => return Err(self.fail(format!("rope.scaling.type {other:?} is not supported"))),
        }
        Ok(config)
    }

    /// Every tensor dequantized, under its HF name and in HF layout, for `config` (from
    /// [`Gguf::model_config`]): llama's permuted q/k rows are put back in HF order. A tensor
    /// with a name this reader does not map is an error naming it.
    pub fn weights(&self, config: &ModelConfig) -> Result<Weights, WeightsError> {
        let permuted = self.architecture()? == "llama";
        let mut w = Weights::default();
        let mut unknown = Vec::new();
        for t in &self.tensors {
            let Some(name) = hf_name(&t.name) else {
                unknown.push(t.name.clone());
                continue;
            };
            let mut tensor = self.read(t)?;
            if permuted {
                let heads = if t.name.contains(".attn_q.") {
                    Some(config.num_attention_heads)
                } else if t.name.contains(".attn_k.") {
                    Some(config.kv_heads())
                } else {
                    None
                };
                if let Some(heads) = heads {
                    tensor = unpermute_rows(tensor, heads).map_err(|e| self.fail(format!("tensor {}: {e}", t.name)))?;
                }
            }
            w.0.insert(name, tensor);
        }
        if !unknown.is_empty() {
            return Err(self.fail(format!("tensors this reader does not map onto the architecture: {unknown:?}")));
        }
        Ok(w)
    }
}

/// Bytes of a tensor's data, or `None` for a type this reader does not decode.
fn tensor_bytes(t: &TensorInfo) -> Result<Option<u64>, String> {
    let Some((block, size)) = t.ggml_type.block() else { return Ok(None) };
    let n = t.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let n = n.ok_or_else(|| format!("tensor {}: element count overflows", t.name))?;
    let d0 = t.dims.first().copied().unwrap_or(1);
    if !d0.is_multiple_of(block) {
        return Err(format!(
            "tensor {}: {} blocks of {block} values do not divide its rows of {d0}",
            t.name,
            t.ggml_type.name()
        ));
    }
    (n / block).checked_mul(size).map(Some).ok_or_else(|| format!("tensor {}: byte size overflows", t.name))
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Decodes `n` values of type `ty` from `raw`, whose length [`tensor_bytes`] computed.
fn dequantize(ty: GgmlType, raw: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => out.extend(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => out.extend(raw.chunks_exact(2).map(f16)),
        GgmlType::BF16 => out.extend(raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::Q4_0 => {
            for b in raw.chunks_exact(18) {
                let (d, qs) = (f16(&b[0..2]), &b[2..18]);
                out.extend(qs.iter().map(|&q| (f32::from(q & 0x0f) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in raw.chunks_exact(20) {
                let (d, m, qs) = (f16(&b[0..2]), f16(&b[2..4]), &b[4..20]);
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        GgmlType::Q8_0 => {
            for b in raw.chunks_exact(34) {
                let d = f16(&b[0..2]);
                out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Other(_) => {}
    }
    out
}

/// The HF name of a GGUF tensor of the llama/qwen2 layout.
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.into());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    if !matches!(kind, "weight" | "bias") {
        return None;
    }
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's q/k row permutation. Its converter maps HF row `h·hd + j·hd/2 + i` (head
/// `h`, half `j`, pair `i`) to row `h·hd + 2i + j`, so that the two values RoPE rotates together
/// sit side by side; this puts every row back. Works on a weight `[rows, cols]` or a bias `[rows]`.
pub fn unpermute_rows(t: HostTensor, heads: usize) -> Result<HostTensor, WeightsError> {
    move_rows(t, heads, true)
}

/// The inverse of [`unpermute_rows`]: what llama.cpp's converter does (tests write GGUF files
/// with it).
pub fn permute_rows(t: HostTensor, heads: usize) -> Result<HostTensor, WeightsError> {
    move_rows(t, heads, false)
}

fn move_rows(t: HostTensor, heads: usize, to_hf: bool) -> Result<HostTensor, WeightsError> {
    let rows = t.shape.first().copied().unwrap_or(0);
    if heads == 0 || rows == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(WeightsError::Format(format!("{rows} rows do not split into {heads} heads of even width")));
    }
    let cols = t.data.len() / rows;
    let (hd, half) = (rows / heads, rows / heads / 2);
    let mut data = vec![0.0; t.data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let (gguf, hf) = (h * hd + 2 * i + j, h * hd + j * half + i);
                let (from, to) = if to_hf { (gguf, hf) } else { (hf, gguf) };
                data[to * cols..(to + 1) * cols].copy_from_slice(&t.data[from * cols..(from + 1) * cols]);
            }
        }
    }
    Ok(HostTensor { shape: t.shape, data })
}

#[cfg(test)]
#[path = "gguf_tests.rs"]
pub(crate) mod tests;
