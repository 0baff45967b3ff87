//! Tool calls parsed from a model's text, in the two formats models emit:
//!
//! - Hermes / Qwen: one or more `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`;
//! - Python-call syntax, as BFCL prompts for: `[func(a=1, b="x"), other(c=[1, 2])]`.
//!
//! The Python reader follows BFCL's decoder (`default_decode_ast_prompting` then
//! `resolve_ast_by_type`) so that the AST checker sees the values BFCL would: keyword arguments
//! only (positional ones are dropped), bare names become strings, a nested call without keywords
//! becomes its source text, arithmetic such as `2*3` is evaluated, and a unary `+` negates (a
//! quirk of BFCL's decoder that we keep for agreement). Where Python would build a value we do not
//! model (bytes, sets, f-strings, lambdas, subscripts) the parse fails, as BFCL's decoder mostly
//! does too.
//!
//! Input is bounded: nesting deeper than [`MAX_DEPTH`] or text longer than [`MAX_LEN`] is a
//! categorised failure, never a stack overflow or a long stall.
//!
//! One file per reader: `hermes` (the `<tool_call>` blocks), `python` (Python-call syntax and
//! the recursive-descent reader of both formats, JSON being its stricter dialect), `fast` (the
//! one-pass path for the common shapes, which falls back to the general reader) and `eval`
//! (BFCL's `resolve_ast_by_type`: expressions to values).

mod eval;
mod fast;
mod hermes;
mod python;
#[cfg(test)]
mod tests;

pub use hermes::parse_hermes;
pub use python::parse_python;

use super::value::{CompactString, Val};
use std::fmt;

/// Deepest nesting of brackets and calls accepted.
pub const MAX_DEPTH: usize = 64;
/// Longest text accepted, in bytes.
pub const MAX_LEN: usize = 1 << 20;

/// One parsed call: the function's name and its keyword arguments in the order written.
#[derive(Clone, Debug)]
pub struct Call {
    /// Dotted function name.
    pub name: CompactString,
    /// Keyword arguments, unique names, in order.
    pub args: Vec<(CompactString, Val)>,
}

impl Call {
    /// The argument `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&Val> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The call in Python syntax, `name(a=1, b='x')`.
    pub fn to_python(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={}", v.repr())).collect();
        format!("{}({})", self.name, args.join(", "))
    }
}

/// Why text could not be read as tool calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What kind of failure: `syntax`, `unbalanced_tags`, `too_deep`, `too_long`, `not_a_call`.
    pub kind: &'static str,
    /// Where and what.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ParseError {}

pub(super) fn err<T>(kind: &'static str, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { kind, message: message.into() })
}

/// The calls in `text`: `<tool_call>` blocks if it has any tag, Python syntax otherwise.
pub fn parse_calls(text: &str) -> Result<Vec<Call>, ParseError> {
    if has_tool_call_tag(text) { parse_hermes(text) } else { parse_python(text) }
}

/// True when `text` holds a `<tool_call>` tag, i.e. the model tried to call a tool.
pub fn has_tool_call_tag(text: &str) -> bool {
    hermes::tags(text).next().is_some()
}

