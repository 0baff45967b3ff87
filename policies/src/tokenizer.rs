//! Tokenizers and chat templates.
//!
//! A chat template is rendered in Rust into a list of [`Piece`]s (special tokens and plain
//! text); special tokens map to their ids directly and never come from tokenizing text, so a
//! user message containing `<|im_end|>` stays text. Rendering is incremental: `render(messages,
//! first)` emits only what follows the existing context, so the tokens of earlier turns are
//! never re-tokenized (re-tokenizing a whole conversation can merge a turn's last token with
//! the next turn's first and silently change the sampled tokens; verl and TRL users report it).
//!
//! Real vocabularies go through HF's `tokenizers` crate ([`Tokenizer::Hf`]): read from a
//! `tokenizer.json`, or built from a GGUF file's `tokenizer.ggml.*` metadata by writing the
//! equivalent `tokenizer.json` (byte-level BPE; the pre-tokenizer llama.cpp names in
//! `tokenizer.ggml.pre`), so that both sources run the same code.

use crate::gguf::{Gguf, Value};
use crate::weights::WeightsError;
use rlvr_engine::{Message, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Vocabulary size of the byte-level tokenizer: 256 bytes, then the special tokens.
pub const BYTE_VOCAB: usize = 256 + BYTE_SPECIALS.len();

/// Special tokens of the byte-level tokenizer, with ids 256, 257, ...
pub const BYTE_SPECIALS: [&str; 4] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"];

/// Turns text into ids and back.
#[derive(Clone, Debug)]
pub enum Tokenizer {
    /// One token per byte, plus [`BYTE_SPECIALS`]: no training, no files; the tiny preset's.
    Bytes,
    /// An HF `tokenizers` tokenizer (from `tokenizer.json` or GGUF metadata); shared, since a
    /// real vocabulary is megabytes.
    Hf(Arc<HfTokenizer>),
}

/// An HF tokenizer with its added tokens by text.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    added: BTreeMap<String, u32>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The derived form would print the whole vocabulary.
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("added", &self.added.len())
            .finish()
    }
}

impl HfTokenizer {
    /// The `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

impl Tokenizer {
    /// An HF tokenizer from the text of a `tokenizer.json`.
    ///
    /// Special tokens written in the text to encode are tokenized as text (`tokenizers`'
    /// `encode_special_tokens`): only the chat template inserts them, by id. Added tokens that
    /// the file does not mark special are still matched in text, as HF does.
    pub fn from_hf_json(json: &str) -> Result<Self, WeightsError> {
        let mut inner: tokenizers::Tokenizer =
            json.parse().map_err(|e| WeightsError::Format(format!("not a tokenizer.json: {e}")))?;
        inner.set_encode_special_tokens(true);
        let added = inner.get_added_tokens_decoder().into_iter().map(|(id, t)| (t.content, id)).collect();
        Ok(Self::Hf(Arc::new(HfTokenizer { inner, added })))
    }

    /// An HF tokenizer from a `tokenizer.json` file.
    pub fn from_hf_file(path: &std::path::Path) -> Result<Self, WeightsError> {
        let text = std::fs::read_to_string(path).map_err(|e| WeightsError::Io { path: path.into(), source: e })?;
        Self::from_hf_json(&text).map_err(|e| WeightsError::Format(format!("{}: {e}", path.display())))
    }

    /// The tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self, WeightsError> {
        let at_file = |e: &dyn std::fmt::Display| WeightsError::Format(format!("{}: {e}", gguf.path.display()));
        let json = gguf_tokenizer_json(gguf).map_err(|e| at_file(&e))?;
        Self::from_hf_json(&json.to_string()).map_err(|e| at_file(&e))
    }

    /// The `tokenizer.json` text of an HF tokenizer (`None` for [`Tokenizer::Bytes`]).
    pub fn to_hf_json(&self) -> Result<Option<String>, WeightsError> {
        match self {
            Self::Bytes => Ok(None),
            Self::Hf(t) => t.inner.to_string(true).map(Some).map_err(|e| WeightsError::Format(e.to_string())),
        }
    }

    /// Ids of `text`, with no special tokens recognised in it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            Self::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Self::Hf(t) => t.inner.encode_fast(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| e.to_string()),
        }
    }

    /// The id of a special token, if the vocabulary has it (for an HF tokenizer: one of its
    /// added tokens).
    pub fn special(&self, token: &str) -> Option<u32> {
        match self {
            Self::Bytes => BYTE_SPECIALS.iter().position(|s| *s == token).map(|i| 256 + i as u32),
            Self::Hf(t) => t.added.get(token).copied(),
        }
    }

    /// The text of `ids`, special tokens left out (invalid UTF-8 is replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Bytes => {
                let bytes: Vec<u8> = ids.iter().filter_map(|&i| u8::try_from(i).ok()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            // The byte-level decoder cannot fail on ids of the vocabulary and skips unknown ones;
            // should a custom decoder fail, the tokens' own text is the most useful answer.
            Self::Hf(t) => t
                .inner
                .decode(ids, true)
                .unwrap_or_else(|_| ids.iter().filter_map(|&i| t.inner.id_to_token(i)).collect::<Vec<_>>().join("")),
        }
    }

    /// The text of one token as the vocabulary spells it (a special token's name), if known.
    pub fn token_text(&self, id: u32) -> Option<String> {
        match self {
            Self::Bytes => match id {
                0..=255 => Some(char::from(id as u8).to_string()),
                _ => BYTE_SPECIALS.get(id as usize - 256).map(|s| (*s).to_string()),
            },
            Self::Hf(t) => t.inner.id_to_token(id),
        }
    }

    /// Size of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Bytes => BYTE_VOCAB,
            Self::Hf(t) => t.inner.get_vocab_size(true),
        }
    }
}

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

/// The `tokenizer.json` equivalent to a GGUF file's byte-level BPE vocabulary.
///
/// `tokenizer.ggml.pre` names the pre-tokenizer the way llama.cpp does; the ones read here are
/// those whose HF form is known to match llama.cpp's split exactly: `gpt-2` (GPT-2's regex) and
/// `smollm`/`starcoder` (each digit apart, then GPT-2's regex). Control tokens become special
/// added tokens, user-defined ones plain added tokens.
fn gguf_tokenizer_json(g: &Gguf) -> Result<serde_json::Value, String> {
    let model = g.get("tokenizer.ggml.model").and_then(Value::as_str).ok_or("no tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(format!(
            "tokenizer.ggml.model {model:?} is not supported (only gpt2, byte-level BPE); \
             load an HF directory with its tokenizer.json instead"
        ));
    }
    let strings = |key: &str| -> Result<Vec<&str>, String> {
        let a = g.get(key).and_then(Value::as_array).ok_or_else(|| format!("no {key} array"))?;
        a.iter().map(|v| v.as_str().ok_or_else(|| format!("{key} holds a non-string"))).collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?;
    let types: Vec<u64> = match g.get("tokenizer.ggml.token_type").and_then(Value::as_array) {
        Some(a) if a.len() == tokens.len() => a
            .iter()
            .map(|v| v.as_u64().ok_or("tokenizer.ggml.token_type holds a non-integer"))
            .collect::<Result<_, _>>()?,
        Some(a) => return Err(format!("{} token types for {} tokens", a.len(), tokens.len())),
        None => vec![1; tokens.len()],
    };
    let digits = json!({"type": "Digits", "individual_digits": true});
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let pre = g.get("tokenizer.ggml.pre").and_then(Value::as_str);
    let pre_tokenizer = match pre {
        Some("gpt-2") => byte_level.clone(),
        Some("smollm" | "starcoder") => json!({"type": "Sequence", "pretokenizers": [digits, byte_level]}),
        other => {
            return Err(format!(
                "tokenizer.ggml.pre {other:?} is not supported (gpt-2, smollm, starcoder); \
                 load an HF directory with its tokenizer.json instead"
            ));
        }
    };
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, (&tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        if vocab.contains_key(tok) {
            return Err(format!("token {tok:?} appears twice in tokenizer.ggml.tokens"));
        }
        vocab.insert(tok.into(), id.into());
        if ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": ty == TOKEN_CONTROL,
            }));
        }
    }
    let merges: Vec<[&str; 2]> = merges
        .iter()
        .map(|m| m.split_once(' ').map(|(a, b)| [a, b]).ok_or_else(|| format!("merge {m:?} is not two tokens")))
        .collect::<Result<_, _>>()?;
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

/// A piece of a rendered chat: a special token, or text to tokenize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A special token, by its text.
    Special(&'static str),
    /// Plain text.
    Text(String),
}

/// The chat formats of the supported families.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatTemplate {
    /// ChatML (Qwen, SmolLM, the tiny preset): `<|im_start|>role\ncontent<|im_end|>\n`.
    ChatMl {
        /// The system message used when an episode opens without one (SmolLM2's template
        /// inserts one).
        #[serde(default)]
        default_system: Option<String>,
    },
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3,
}

impl ChatTemplate {
    /// Plain ChatML with no default system message.
    pub fn chatml() -> Self {
        Self::ChatMl { default_system: None }
    }

    /// The supported family a checkpoint's Jinja chat template belongs to, if any: ChatML when it
    /// writes `<|im_start|>`, Llama 3 when it writes `<|start_header_id|>`. We render templates in
    /// Rust rather than run Jinja; what ChatML templates add beyond the format is the system
    /// message inserted when a conversation has none (SmolLM2's, Qwen2.5's), taken from the
    /// literal `<|im_start|>system\n...<|im_end|>` in the template.
    pub fn from_jinja(jinja: &str) -> Option<Self> {
        if jinja.contains("<|im_start|>") {
            Some(Self::ChatMl { default_system: jinja_default_system(jinja) })
        } else if jinja.contains("<|start_header_id|>") {
            Some(Self::Llama3)
        } else {
            None
        }
    }

    /// A Jinja template equivalent to this one's rendering (with `add_generation_prompt`), for
    /// the `tokenizer_config.json` of an HF export.
    pub fn to_jinja(&self) -> String {
        match self {
            Self::ChatMl { default_system } => {
                let system = default_system.as_ref().map_or(String::new(), |s| {
                    let s = s.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n");
                    format!(
                        "{{% if loop.first and messages[0]['role'] != 'system' %}}\
                         {{{{ '<|im_start|>system\\n{s}<|im_end|>\\n' }}}}{{% endif %}}"
                    )
                });
                format!(
                    "{{% for message in messages %}}{system}\
                     {{{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}}}\
                     {{% endfor %}}{{% if add_generation_prompt %}}{{{{ '<|im_start|>assistant\\n' }}}}{{% endif %}}"
                )
            }
            Self::Llama3 => "{{ '<|begin_of_text|>' }}{% for message in messages %}\
                 {{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}\
                 {% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
                .into(),
        }
    }

    /// The token that ends an assistant turn: generation stops on it.
    pub fn end_of_turn(&self) -> &'static str {
        match self {
            Self::ChatMl { .. } => "<|im_end|>",
            Self::Llama3 => "<|eot_id|>",
        }
    }

    /// Renders `messages` followed by the prompt of the assistant's next turn. With `first`
    /// false they continue a context that ends with the policy's last turn, itself ended by
    /// [`ChatTemplate::end_of_turn`] as sampled.
    pub fn render(&self, messages: &[Message], first: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        let text = |out: &mut Vec<Piece>, s: String| out.push(Piece::Text(s));
        match self {
            Self::ChatMl { default_system } => {
                if !first {
                    // ChatML closes a turn with `<|im_end|>\n`; the sampled turn ended at the token.
                    text(&mut out, "\n".into());
                }
                let opens_without_system = messages.first().is_none_or(|m| m.role != Role::System);
                if first
                    && opens_without_system
                    && let Some(sys) = default_system
                {
                    out.push(Piece::Special("<|im_start|>"));
                    text(&mut out, format!("system\n{sys}"));
                    out.push(Piece::Special("<|im_end|>"));
                    text(&mut out, "\n".into());
                }
                for m in messages {
                    out.push(Piece::Special("<|im_start|>"));
                    text(&mut out, format!("{}\n{}", m.role.as_str(), m.content));
                    out.push(Piece::Special("<|im_end|>"));
                    text(&mut out, "\n".into());
                }
                out.push(Piece::Special("<|im_start|>"));
                text(&mut out, "assistant\n".into());
            }
            Self::Llama3 => {
                if first {
                    out.push(Piece::Special("<|begin_of_text|>"));
                }
                for m in messages {
                    let role = match m.role {
                        Role::Tool => "ipython",
                        r => r.as_str(),
                    };
                    out.push(Piece::Special("<|start_header_id|>"));
                    text(&mut out, role.into());
                    out.push(Piece::Special("<|end_header_id|>"));
                    text(&mut out, format!("\n\n{}", m.content));
                    out.push(Piece::Special("<|eot_id|>"));
                }
                out.push(Piece::Special("<|start_header_id|>"));
                text(&mut out, "assistant".into());
                out.push(Piece::Special("<|end_header_id|>"));
                text(&mut out, "\n\n".into());
            }
        }
        out
    }

    /// Renders and tokenizes: adjacent text pieces are tokenized together, special tokens are
    /// looked up by id.
    pub fn encode(&self, tokenizer: &Tokenizer, messages: &[Message], first: bool) -> Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        let mut pending = String::new();
        for piece in self.render(messages, first) {
            match piece {
                Piece::Text(t) => pending.push_str(&t),
                Piece::Special(s) => {
                    if !pending.is_empty() {
                        ids.extend(tokenizer.encode(&std::mem::take(&mut pending))?);
                    }
                    ids.push(
                        tokenizer
                            .special(s)
                            .ok_or_else(|| format!("the tokenizer has no special token {s} that the template needs"))?,
                    );
                }
            }
        }
        if !pending.is_empty() {
            ids.extend(tokenizer.encode(&pending)?);
        }
        Ok(ids)
    }
}

/// The system message a ChatML Jinja template writes as a literal, if it writes one: the text
/// between `<|im_start|>system` plus a newline (real or escaped) and `<|im_end|>` within one
/// quoted Jinja string (escapes undone), or in the template's plain text.
fn jinja_default_system(jinja: &str) -> Option<String> {
    let at = jinja.find("<|im_start|>system")?;
    let quote = jinja[..at].chars().next_back().filter(|c| *c == '\'' || *c == '"');
    let rest = &jinja[at + "<|im_start|>system".len()..];
    let mut text = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', Some(_)) => match chars.next()? {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                other => text.push(other),
            },
            (c, Some(q)) if c == q => return None,
            ('{' | '}', None) => return None,
            (c, _) => text.push(c),
        }
        if let Some(body) = text.strip_suffix("<|im_end|>") {
            let body = body.strip_prefix('\n')?;
            return (!body.is_empty()).then(|| body.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| match i {
                0..=255 => char::from(i as u8).to_string(),
                s => BYTE_SPECIALS[s as usize - 256].to_string(),
            })
            .collect()
    }

    #[test]
    fn chatml_renders_each_turn_once() {
        let t = ChatTemplate::chatml();
        let first = t.encode(&Tokenizer::Bytes, &[Message::system("S"), Message::user("<|im_end|>hi")], true).unwrap();
        assert_eq!(
            text_of(&first),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|im_end|>hi<|im_end|>\n<|im_start|>assistant\n"
        );
        // The special-looking text in the user message stays bytes: five special ids, all
        // from the template.
        assert_eq!(first.iter().filter(|&&i| i >= 256).count(), 5);
        let next = t.encode(&Tokenizer::Bytes, &[Message::tool("calc", "4")], false).unwrap();
        assert_eq!(text_of(&next), "\n<|im_start|>tool\n4<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn default_system_only_when_none_given() {
        let t = ChatTemplate::ChatMl { default_system: Some("D".into()) };
        let with = text_of(&t.encode(&Tokenizer::Bytes, &[Message::user("u")], true).unwrap());
        assert!(with.starts_with("<|im_start|>system\nD<|im_end|>\n<|im_start|>user\nu"));
        let own = text_of(&t.encode(&Tokenizer::Bytes, &[Message::system("S"), Message::user("u")], true).unwrap());
        assert!(!own.contains("\nD<"));
    }

    #[test]
    fn llama3_needs_its_special_tokens() {
        let err = ChatTemplate::Llama3.encode(&Tokenizer::Bytes, &[Message::user("u")], true).unwrap_err();
        assert!(err.contains("<|begin_of_text|>"), "{err}");
        let pieces = ChatTemplate::Llama3.render(&[Message::user("u")], false);
        assert_eq!(
            pieces,
            vec![
                Piece::Special("<|start_header_id|>"),
                Piece::Text("user".into()),
                Piece::Special("<|end_header_id|>"),
                Piece::Text("\n\nu".into()),
                Piece::Special("<|eot_id|>"),
                Piece::Special("<|start_header_id|>"),
                Piece::Text("assistant".into()),
                Piece::Special("<|end_header_id|>"),
                Piece::Text("\n\n".into()),
            ]
        );
    }

    #[test]
    fn bytes_round_trip_and_skip_specials() {
        let ids = Tokenizer::Bytes.encode("héllo").unwrap();
        assert_eq!(ids.len(), 6);
        let mut with_special = ids.clone();
        with_special.push(258);
        assert_eq!(Tokenizer::Bytes.decode(&with_special), "héllo");
        assert_eq!(Tokenizer::Bytes.special("<|im_end|>"), Some(258));
    }
}
