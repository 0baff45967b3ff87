//! Tokenizers and chat templates.
//!
//! A chat template is rendered in Rust into a list of [`Piece`]s (special tokens and plain
//! text); special tokens map to their ids directly and never come from tokenizing text, so a
//! user message containing `<|im_end|>` stays text. Rendering is incremental: `render(messages,
//! first)` emits only what follows the existing context, so the tokens of earlier turns are
//! never re-tokenized (re-tokenizing a whole conversation can merge a turn's last token with
//! the next turn's first and silently change the sampled tokens; verl and TRL users report it).

use rlvr_engine::{Message, Role};
use serde::{Deserialize, Serialize};

/// Vocabulary size of the byte-level tokenizer: 256 bytes, then the special tokens.
pub const BYTE_VOCAB: usize = 256 + BYTE_SPECIALS.len();

/// Special tokens of the byte-level tokenizer, with ids 256, 257, ...
pub const BYTE_SPECIALS: [&str; 4] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"];

/// Turns text into ids and back.
#[derive(Clone, Debug)]
pub enum Tokenizer {
    /// One token per byte, plus [`BYTE_SPECIALS`]: no training, no files; the tiny preset's.
    Bytes,
}

impl Tokenizer {
    /// Ids of `text`, with no special tokens recognised in it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            Self::Bytes => Ok(text.bytes().map(u32::from).collect()),
        }
    }

    /// The id of a special token, if the vocabulary has it.
    pub fn special(&self, token: &str) -> Option<u32> {
        match self {
            Self::Bytes => BYTE_SPECIALS.iter().position(|s| *s == token).map(|i| 256 + i as u32),
        }
    }

    /// The text of `ids`, special tokens left out (invalid UTF-8 is replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Bytes => {
                let bytes: Vec<u8> = ids.iter().filter_map(|&i| u8::try_from(i).ok()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }

    /// Size of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Bytes => BYTE_VOCAB,
        }
    }
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
                    text(&mut out, format!("{}\n{}", role_name(m.role), m.content));
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
                        r => role_name(r),
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

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
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
