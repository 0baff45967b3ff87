//! The Hermes / Qwen format: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks,
//! each body read as JSON (one pass straight to a call where it can, else the general reader).

use super::python::{Dialect, Parser};
use super::{Call, MAX_LEN, ParseError, err};
use crate::tools::value::{CompactString, Val};

/// The `<tool_call>` (true) and `</tool_call>` (false) tags of `text`, with where each starts:
/// one byte search for `<`, cheap on text without tags, rather than substring searches. The
/// `memchr` crate's search reads 16 or 32 bytes a step where `str::match_indices` reads one or
/// two words: a hundred instructions less on a typical completion, which has no `<` at all.
pub(super) fn tags(text: &str) -> impl Iterator<Item = (usize, bool)> + '_ {
    memchr::memchr_iter(b'<', text.as_bytes()).filter_map(|i| {
        let rest = &text.as_bytes()[i + 1..];
        if rest.starts_with(b"tool_call>") {
            Some((i, true))
        } else if rest.starts_with(b"/tool_call>") {
            Some((i, false))
        } else {
            None
        }
    })
}

/// Every `<tool_call>...</tool_call>` block of `text`, in order; text outside them is ignored.
/// An opening tag without its closing one (or the reverse), or a block that is not a JSON object
/// with a string `name` and an object `arguments`, fails the whole message.
pub fn parse_hermes(text: &str) -> Result<Vec<Call>, ParseError> {
    const OPEN: &str = "<tool_call>";
    if text.len() > MAX_LEN {
        return err("too_long", format!("{} bytes exceeds the limit of {MAX_LEN}", text.len()));
    }
    let mut calls = Vec::new();
    // Where the body of the open block starts, while one is open.
    let mut body_start = None;
    for (i, open) in tags(text) {
        match (open, body_start) {
            (true, None) => body_start = Some(i + OPEN.len()),
            (true, Some(_)) => {
                return err("unbalanced_tags", "a <tool_call> opens before the previous one closes");
            }
            (false, Some(b)) => {
                calls.push(hermes_block(&text[b..i], calls.len())?);
                body_start = None;
            }
            (false, None) => return err("unbalanced_tags", "</tool_call> without <tool_call>"),
        }
    }
    if body_start.is_some() {
        return err("unbalanced_tags", "<tool_call> without </tool_call>");
    }
    Ok(calls)
}

fn hermes_block(body: &str, index: usize) -> Result<Call, ParseError> {
    match Parser::new(body.trim(), Dialect::Json).fast_hermes() {
        Some(call) => Ok(call),
        None => hermes_block_general(body, index),
    }
}

/// [`hermes_block`] by way of a JSON value: every form and every error.
pub(super) fn hermes_block_general(body: &str, index: usize) -> Result<Call, ParseError> {
    let v = Parser::new(body.trim(), Dialect::Json).whole()?;
    let Val::Dict(mut fields) = v else {
        return err("not_a_call", format!("tool call {index} is not a JSON object"));
    };
    let find = |fields: &[(Val, Val)], k: &str| fields.iter().position(|(key, _)| key.as_str() == Some(k));
    let Some(name_at) = find(&fields, "name").filter(|&i| matches!(fields[i].1, Val::Str(_))) else {
        return err("not_a_call", format!("tool call {index} has no string `name`"));
    };
    let args_at = find(&fields, "arguments").or_else(|| find(&fields, "parameters"));
    // The values are moved out of the parsed object, not copied.
    let args = match args_at.map(|i| std::mem::replace(&mut fields[i].1, Val::None)) {
        None => Vec::new(),
        Some(Val::Dict(d)) => dict_to_args(d, index)?,
        // Some models send the arguments as a JSON string holding the object.
        Some(Val::Str(s)) => match Parser::new(s.trim(), Dialect::Json).whole()? {
            Val::Dict(d) => dict_to_args(d, index)?,
            _ => {
                return err("not_a_call", format!("tool call {index}: `arguments` is not an object"));
            }
        },
        Some(_) => {
            return err("not_a_call", format!("tool call {index}: `arguments` is not an object"));
        }
    };
    let Val::Str(name) = std::mem::replace(&mut fields[name_at].1, Val::None) else {
        unreachable!("checked to be a string above");
    };
    Ok(Call { name, args })
}

fn dict_to_args(d: Vec<(Val, Val)>, index: usize) -> Result<Vec<(CompactString, Val)>, ParseError> {
    d.into_iter()
        .map(|(k, v)| match k {
            Val::Str(k) => Ok((k, v)),
            _ => err("not_a_call", format!("tool call {index}: argument names must be strings")),
        })
        .collect()
}
