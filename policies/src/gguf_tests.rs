//! GGUF tests over files the tests write themselves: hand-worked quantized blocks, the q/k
//! permutation against our own path, metadata errors, truncated and corrupt files, and the
//! tokenizer built from GGUF metadata.

use super::*;
use crate::lm::load_checkpoint;
use crate::model::{Model, ModelConfig};
use crate::tokenizer::{ChatTemplate, Tokenizer};
use burn::tensor::{Int, Tensor, TensorData};

/// Writes GGUF files the way llama.cpp's writer lays them out.
#[derive(Default)]
pub(crate) struct Writer {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn string(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend(s.as_bytes());
    b
}

impl Writer {
    pub(crate) fn raw(&mut self, key: &str, ty: u32, value: &[u8]) -> &mut Self {
        self.kv.extend(string(key));
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(value);
        self.n_kv += 1;
        self
    }
    pub(crate) fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.raw(key, 8, &string(v))
    }
    pub(crate) fn u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.raw(key, 4, &v.to_le_bytes())
    }
    pub(crate) fn f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.raw(key, 6, &v.to_le_bytes())
    }
    pub(crate) fn strs(&mut self, key: &str, v: &[&str]) -> &mut Self {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|s| b.extend(string(s)));
        self.raw(key, 9, &b)
    }
    pub(crate) fn i32s(&mut self, key: &str, v: &[i32]) -> &mut Self {
        let mut b = 5u32.to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| b.extend(x.to_le_bytes()));
        self.raw(key, 9, &b)
    }
    /// A tensor with GGUF dims (innermost first) and raw bytes of ggml type `ty`.
    pub(crate) fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, raw: Vec<u8>) -> &mut Self {
        self.tensors.push((name.into(), dims.to_vec(), ty, raw));
        self
    }
    /// An f32 tensor from HF shape (outermost first).
    pub(crate) fn f32_tensor(&mut self, name: &str, t: &HostTensor) -> &mut Self {
        let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
        self.tensor(name, &dims, 0, t.data.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let align = 32usize;
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0usize;
        let mut data = Vec::new();
        for (i, (name, dims, ty, raw)) in self.tensors.iter().enumerate() {
            out.extend(string(name));
            out.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(ty.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            data.extend(raw);
            offset += raw.len();
            // Padding between tensors, none after the last: the file ends with tensor data.
            if i + 1 < self.tensors.len() {
                offset = offset.div_ceil(align) * align;
                data.resize(offset, 0);
            }
        }
        out.resize(out.len().div_ceil(align) * align, 0);
        out.extend(data);
        out
    }
}

fn parse(bytes: Vec<u8>) -> Result<Gguf, WeightsError> {
    Gguf::parse(bytes, Path::new("test.gguf"))
}

fn f16b(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

#[test]
fn dequantizes_hand_worked_blocks() {
    // Q4_0: d = 0.5, low nibbles j, high nibbles 15 - j: x[j] = (j - 8) / 2, x[16 + j] = (7 - j) / 2.
    let mut q4_0 = f16b(0.5).to_vec();
    q4_0.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    // Q4_1: d = 0.25, m = -1: x[j] = j / 4 - 1, x[16 + j] = (15 - j) / 4 - 1.
    let mut q4_1 = [f16b(0.25), f16b(-1.0)].concat();
    q4_1.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    // Q8_0, two blocks (one row of 64): d = 0.5 then -2, q = 8k - 128.
    let mut q8_0 = Vec::new();
    for d in [0.5f32, -2.0] {
        q8_0.extend(f16b(d));
        q8_0.extend((0..32).map(|k| (8 * k - 128) as i8 as u8));
    }
    let f16s: Vec<u8> = [1.5f32, -2.0, 65504.0].iter().flat_map(|&x| f16b(x)).collect();
    let bf16s: Vec<u8> = [1.0f32, -3.5].iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    let f32s: Vec<u8> = [0.1f32, -7.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut w = Writer::default();
    w.tensor("q4_0", &[32], 2, q4_0)
        .tensor("q4_1", &[32], 3, q4_1)
        .tensor("q8_0", &[32, 2], 8, q8_0)
        .tensor("f16", &[3], 1, f16s)
        .tensor("bf16", &[2], 30, bf16s)
        .tensor("f32", &[2, 1], 0, f32s);
    let g = parse(w.bytes()).unwrap();
    let t = |n: &str| g.tensor(n).unwrap();
    let want: Vec<f32> =
        (0..16).map(|j| (j as f32 - 8.0) / 2.0).chain((0..16).map(|j| (7.0 - j as f32) / 2.0)).collect();
    assert_eq!(t("q4_0").data, want);
    let want: Vec<f32> =
        (0..16).map(|j| j as f32 / 4.0 - 1.0).chain((0..16).map(|j| (15.0 - j as f32) / 4.0 - 1.0)).collect();
    assert_eq!(t("q4_1").data, want);
    let q8 = t("q8_0");
    assert_eq!(q8.shape, vec![2, 32], "GGUF dims are innermost first");
    assert_eq!(q8.data[0], -64.0);
    assert_eq!(q8.data[31], (8.0 * 31.0 - 128.0) * 0.5);
    assert_eq!(q8.data[32], 256.0);
    assert_eq!(q8.data[63], (8.0 * 31.0 - 128.0) * -2.0);
    assert_eq!(t("f16").data, vec![1.5, -2.0, 65504.0]);
    assert_eq!(t("bf16").data, vec![1.0, -3.5]);
    assert_eq!(t("f32").shape, vec![1, 2]);
    assert_eq!(t("f32").data, vec![0.1, -7.0]);
}

#[test]
fn unsupported_types_are_named_not_guessed() {
    let mut w = Writer::default();
    w.tensor("k", &[256], 14, vec![0; 210]);
    let g = parse(w.bytes()).unwrap();
    let e = g.tensor("k").unwrap_err().to_string();
    assert!(e.contains("test.gguf") && e.contains("Q6_K"), "{e}");
    // A quantized row must hold whole blocks.
    let mut w = Writer::default();
    w.tensor("bad", &[16], 8, vec![0; 34]);
    let e = parse(w.bytes()).unwrap_err().to_string();
    assert!(e.contains("bad") && e.contains("blocks of 32"), "{e}");
}

fn metadata_file() -> Writer {
    let mut w = metadata_without_kv_heads();
    w.u32("llama.attention.head_count_kv", 1);
    w
}

fn metadata_without_kv_heads() -> Writer {
    let mut w = Writer::default();
    w.str("general.architecture", "llama")
        .u32("llama.block_count", 1)
        .u32("llama.embedding_length", 8)
        .u32("llama.feed_forward_length", 16)
        .u32("llama.attention.head_count", 2)
        .u32("llama.context_length", 64)
        .u32("llama.vocab_size", 10)
        .f32("llama.rope.freq_base", 100_000.0)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    w
}

#[test]
fn config_comes_from_the_metadata() {
    let c = parse(metadata_file().bytes()).unwrap().model_config().unwrap();
    assert_eq!((c.num_hidden_layers, c.hidden_size, c.intermediate_size), (1, 8, 16));
    assert_eq!((c.num_attention_heads, c.kv_heads(), c.head_dim()), (2, 1, 4));
    assert_eq!((c.max_position_embeddings, c.vocab_size), (64, 10));
    assert_eq!(c.rope_theta, 100_000.0);
    assert_eq!(c.rms_norm_eps, 1e-5, "the f32 is read through its shortest decimal");
    assert!(c.tie_word_embeddings, "no output.weight: tied");

    let mut w = metadata_file();
    w.u32("llama.rope.dimension_count", 2);
    let e = parse(w.bytes()).unwrap().model_config().unwrap_err().to_string();
    assert!(e.contains("test.gguf") && e.contains("partial rotary"), "{e}");

    let mut w = Writer::default();
    w.str("general.architecture", "llama").u32("llama.embedding_length", 8);
    let e = parse(w.bytes()).unwrap().model_config().unwrap_err().to_string();
    assert!(e.contains("test.gguf") && e.contains("llama.attention.head_count is missing"), "{e}");

    let mut w = Writer::default();
    w.str("general.architecture", "gpt2");
    let e = parse(w.bytes()).unwrap().model_config().unwrap_err().to_string();
    assert!(e.contains("\"gpt2\" is not supported"), "{e}");

    let mut w = metadata_without_kv_heads();
    w.str("llama.attention.head_count_kv", "one");
    let e = parse(w.bytes()).unwrap().model_config().unwrap_err().to_string();
    assert!(e.contains("head_count_kv") && e.contains("not a non-negative integer"), "{e}");

    let mut w = metadata_file();
    w.u32("llama.block_count", 2);
    let e = parse(w.bytes()).unwrap_err().to_string();
    assert!(e.contains("llama.block_count appears twice"), "{e}");
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let mut w = metadata_file();
    w.strs("tokenizer.ggml.tokens", &["a", "b"]).tensor("q", &[32, 2], 8, vec![7; 68]).tensor(
        "f",
        &[3],
        0,
        vec![1; 12],
    );
    let whole = w.bytes();
    assert!(parse(whole.clone()).is_ok());
    for n in 0..whole.len() {
        assert!(parse(whole[..n].to_vec()).is_err(), "a file cut at {n} bytes parsed");
    }
    // Any byte overwritten: an error or a file that still reads, never a panic.
    for i in 0..whole.len() {
        for v in [0x00, 0x7f, 0xff] {
            let mut b = whole.clone();
            b[i] = v;
            if let Ok(g) = parse(b) {
                for t in g.tensors.clone() {
                    let _ = g.tensor(&t.name);
                }
                let _ = g.model_config();
            }
        }
    }
    // Counts that the file cannot hold are refused before allocating.
    let mut b = whole.clone();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = parse(b).unwrap_err().to_string();
    assert!(e.contains("more than the file holds"), "{e}");
    let mut w = Writer::default();
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend((1u64 << 60).to_le_bytes());
    w.raw("big", 9, &arr);
    let e = parse(w.bytes()).unwrap_err().to_string();
    assert!(e.contains("metadata big") && e.contains("larger than the rest of the file"), "{e}");
    let mut w = Writer::default();
    w.raw("s", 8, &(1u64 << 62).to_le_bytes());
    assert!(parse(w.bytes()).unwrap_err().to_string().contains("truncated"));
    let mut w = Writer::default();
    w.tensor("huge", &[1 << 40, 1 << 40], 0, vec![]);
    assert!(parse(w.bytes()).unwrap_err().to_string().contains("huge"));
    assert!(parse(b"GGUF\x01\0\0\0".to_vec()).unwrap_err().to_string().contains("version 1"));
    assert!(parse(b"GGML".to_vec()).unwrap_err().to_string().contains("not a GGUF file"));
    let e = Gguf::open(Path::new("no/such.gguf")).unwrap_err().to_string();
    assert!(e.contains("no/such.gguf"), "{e}");
}

// --- a tiny byte-level BPE vocabulary, and models written as GGUF -----------------------------

/// GPT-2's map from bytes to printable characters (what byte-level BPE vocabularies spell).
pub(crate) fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            let c = if printable.contains(&b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(c).unwrap()
        })
        .collect()
}

pub(crate) const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
pub(crate) const MERGES: [&str; 9] = ["Ġ w", "o r", "Ġw or", "l d", "h e", "l l", "he ll", "hell o", "1 2"];

/// Three control tokens, the 256 byte characters, then one token per merge.
pub(crate) fn vocab() -> (Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(byte_chars().iter().map(|c| c.to_string()));
    tokens.extend(MERGES.iter().map(|m| m.replace(' ', "")));
    let types = tokens.iter().enumerate().map(|(i, _)| if i < 3 { 3 } else { 1 }).collect();
    (tokens, types)
}

fn id_of(tokens: &[String], t: &str) -> u32 {
    tokens.iter().position(|x| x == t).unwrap() as u32
}

fn tokenizer_file(pre: &str) -> Writer {
    let (tokens, types) = vocab();
    let toks: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut w = Writer::default();
    w.str("tokenizer.ggml.model", "gpt2")
        .str("tokenizer.ggml.pre", pre)
        .strs("tokenizer.ggml.tokens", &toks)
        .i32s("tokenizer.ggml.token_type", &types)
        .strs("tokenizer.ggml.merges", &MERGES)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2);
    w
}

#[test]
fn tokenizer_from_gguf_metadata_encodes_like_the_vocabulary_says() {
    let (tokens, _) = vocab();
    let t = Tokenizer::from_gguf(&parse(tokenizer_file("smollm").bytes()).unwrap()).unwrap();
    assert_eq!(t.vocab_size(), tokens.len());
    let ids = t.encode("hello world").unwrap();
    assert_eq!(ids, vec![id_of(&tokens, "hello"), id_of(&tokens, "Ġwor"), id_of(&tokens, "ld")]);
    assert_eq!(t.decode(&ids), "hello world");
    // smollm splits digits one by one before BPE, so the merge "1 2" never applies.
    let one = id_of(&tokens, "1");
    assert_eq!(t.encode("12").unwrap(), vec![one, one + 1]);
    let gpt2 = Tokenizer::from_gguf(&parse(tokenizer_file("gpt-2").bytes()).unwrap()).unwrap();
    assert_eq!(gpt2.encode("12").unwrap(), vec![id_of(&tokens, "12")]);
    // Special tokens are ids for the template, text in a message; decoding skips them.
    assert_eq!(t.special("<|im_end|>"), Some(2));
    let text = t.encode("<|im_end|>").unwrap();
    assert!(text.len() > 1 && !text.contains(&2), "{text:?}");
    assert_eq!(t.decode(&[1, id_of(&tokens, "hello"), 2]), "hello");
    // Bytes outside the merges still round-trip, multi-byte characters included.
    let s = "Ünïcödé\n\t ok ✓";
    assert_eq!(t.decode(&t.encode(s).unwrap()), s);
    let e = Tokenizer::from_gguf(&parse(tokenizer_file("llama-bpe").bytes()).unwrap()).unwrap_err().to_string();
    assert!(e.contains("test.gguf") && e.contains("llama-bpe") && e.contains("tokenizer.json"), "{e}");
}

#[test]
fn chatml_prompt_through_the_gguf_tokenizer() {
    let t = Tokenizer::from_gguf(&parse(tokenizer_file("smollm").bytes()).unwrap()).unwrap();
    let ids = ChatTemplate::chatml().encode(&t, &[rlvr_engine::Message::user("hello")], true).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().filter(|&&i| i < 3).count(), 3, "im_start, im_end, im_start");
    assert_eq!(t.decode(&ids), "user\nhello\nassistant\n");
}

/// A tiny llama over [`vocab`]: GQA 4/2, head width 8.
pub(crate) fn tiny_config(model_type: &str, tied: bool) -> ModelConfig {
    ModelConfig {
        model_type: model_type.into(),
        vocab_size: vocab().0.len(),
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        rope_theta: 100_000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 128,
        tie_word_embeddings: tied,
        bos_token_id: Some(1),
        eos_token_id: Some(crate::model::OneOrMany::One(2)),
        ..ModelConfig::tiny()
    }
}

/// Random weights at a scale that makes the logits far from flat, so that a wrong layout shows.
pub(crate) fn scaled_weights(config: &ModelConfig, seed: u64) -> Weights {
    let mut w = Weights::random(config, seed);
    for (name, t) in w.0.iter_mut() {
        if !name.contains("norm") {
            t.data.iter_mut().for_each(|x| *x *= 25.0);
        }
    }
    w
}

fn gguf_name(hf: &str) -> String {
    let fixed = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = fixed.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let (part, kind) = rest.rsplit_once('.').unwrap();
    let g = match part {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        other => panic!("{other}"),
    };
    format!("blk.{layer}.{g}.{kind}")
}

/// `weights` written as llama.cpp's converter writes them: GGUF names, q/k rows permuted for
/// `llama`, the architecture's metadata, and the tiny vocabulary.
pub(crate) fn model_file(config: &ModelConfig, weights: &Weights) -> Vec<u8> {
    let arch = config.model_type.as_str();
    let mut w = tokenizer_file("smollm");
    let k = |s: &str| format!("{arch}.{s}");
    w.str("general.architecture", arch)
        .u32(&k("block_count"), config.num_hidden_layers as u32)
        .u32(&k("embedding_length"), config.hidden_size as u32)
        .u32(&k("feed_forward_length"), config.intermediate_size as u32)
        .u32(&k("attention.head_count"), config.num_attention_heads as u32)
        .u32(&k("attention.head_count_kv"), config.kv_heads() as u32)
        .u32(&k("context_length"), config.max_position_embeddings as u32)
        .u32(&k("rope.dimension_count"), config.head_dim() as u32)
        .f32(&k("rope.freq_base"), config.rope_theta as f32)
        .f32(&k("attention.layer_norm_rms_epsilon"), config.rms_norm_eps as f32)
        .str("tokenizer.chat_template", "{{ '<|im_start|>' + message['role'] }}");
    for (name, t) in &weights.0 {
        let mut t = t.clone();
        if arch == "llama" && name.contains("q_proj") {
            t = permute_rows(t, config.num_attention_heads).unwrap();
        } else if arch == "llama" && name.contains("k_proj") {
            t = permute_rows(t, config.kv_heads()).unwrap();
        }
        w.f32_tensor(&gguf_name(name), &t);
    }
    w.bytes()
}

fn logits(m: &Model, tokens: &[u32]) -> Vec<f32> {
    let v: Vec<i64> = tokens.iter().map(|&x| i64::from(x)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(v, [1, tokens.len()]), &m.device());
    m.forward(t).into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn permutation_round_trips() {
    let t = HostTensor { shape: vec![8, 2], data: (0..16).map(|x| x as f32).collect() };
    let p = permute_rows(t.clone(), 2).unwrap();
    // Head 0 has rows 0..4: HF halves (0, 1 | 2, 3) interleave to 0, 2, 1, 3.
    assert_eq!(&p.data[..8], &[0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
    assert_eq!(unpermute_rows(p, 2).unwrap(), t);
    assert!(unpermute_rows(HostTensor { shape: vec![6, 1], data: vec![0.0; 6] }, 2).is_err());
}

#[test]
fn llama_gguf_gives_the_logits_of_the_same_weights_in_hf_layout() {
    let dev = crate::tests::test_device();
    let tokens = [5u32, 80, 200, 17, 3, 99, 140];
    for (arch, tied) in [("llama", false), ("llama", true), ("qwen2", true)] {
        let config = tiny_config(arch, tied);
        let weights = scaled_weights(&config, 7);
        let reference = Model::from_weights(&config, weights.clone(), &dev).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, model_file(&config, &weights)).unwrap();

        let g = Gguf::open(&path).unwrap();
        let read = g.model_config().unwrap();
        assert_eq!(read.tie_word_embeddings, tied);
        assert_eq!(read.model_type, arch);
        let (model, tokenizer, template) = load_checkpoint(&path, &dev).unwrap();
        assert_eq!(template, ChatTemplate::chatml());
        assert_eq!(tokenizer.vocab_size(), config.vocab_size);
        let (want, got) = (logits(&reference, &tokens), logits(&model, &tokens));
        assert_eq!(want, got, "{arch} tied={tied}: same f32 weights, same logits");

        if arch == "llama" {
            // Reading the q/k rows as stored, without undoing the permutation, changes the
            // logits: the test above would catch a reader that forgot it.
            let mut raw = g.weights(&read).unwrap();
            for (name, t) in raw.0.iter_mut() {
                let heads = if name.contains("q_proj") { 4 } else { 2 };
                if name.contains("q_proj") || name.contains("k_proj") {
                    *t = permute_rows(t.clone(), heads).unwrap();
                }
            }
            let wrong = Model::from_weights(&read, raw, &dev).unwrap();
            assert!(max_diff(&want, &logits(&wrong, &tokens)) > 1e-2);
        }
    }
}

#[test]
fn unmapped_tensors_and_wrong_shapes_name_the_file() {
    let dev = crate::tests::test_device();
    let config = tiny_config("llama", true);
    let mut weights = scaled_weights(&config, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.gguf");
    let mut bytes = model_file(&config, &weights);
    // A q projection of the wrong shape.
    let q = "model.layers.0.self_attn.q_proj.weight";
    weights.0.insert(q.into(), HostTensor { shape: vec![8, 32], data: vec![0.0; 256] });
    std::fs::write(&path, model_file(&config, &weights)).unwrap();
    let e = load_checkpoint(&path, &dev).unwrap_err().to_string();
    assert!(e.contains("extra.gguf") && e.contains(q) && e.contains("[32, 32]"), "{e}");
    // A tensor the reader does not map.
    let mut w = Writer::default();
    w.str("general.architecture", "llama").tensor("rope_freqs.weight", &[4], 0, vec![0; 16]);
    let e = parse(w.bytes()).unwrap().weights(&config).unwrap_err().to_string();
    assert!(e.contains("rope_freqs.weight"), "{e}");
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, bytes).unwrap();
    let e = load_checkpoint(&path, &dev).unwrap_err().to_string();
    assert!(e.contains("extra.gguf") && e.contains("truncated"), "{e}");
}
