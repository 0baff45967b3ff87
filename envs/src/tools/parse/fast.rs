//! The one-pass fast path: the common shapes of calls read straight to values, without a
//! syntax tree. Where it gives up (`None`), the general reader in [`super::python`] runs and
//! gives every error and every rarer form; where it succeeds, that reader would return the same
//! calls.

use super::Call;
use super::eval::{negate, resolve};
use super::python::{Parser, insert, is_constant_name, is_keyword};
use crate::tools::value::{CompactString, Val};

impl<'a> Parser<'a> {
    /// The common case in one pass, straight to values: `[name(kw=value, ...), ...]` whose
    /// values are literals, names, and lists, tuples and dicts of them. `None` sends the text
    /// to the general path (syntax tree, then values), which gives every error and every rarer
    /// form; where this succeeds, that path would return the same calls. A keyword value this
    /// pass does not read is read by the general path where it stands.
    pub(super) fn fast_calls(&mut self) -> Option<Vec<Call>> {
        self.ws();
        if !self.eat("[") {
            return None;
        }
        // Room for a few calls up front: growing from empty costs more than the allocation.
        let mut calls = Vec::with_capacity(4);
        let mut trailing = false;
        loop {
            self.ws();
            if self.eat("]") {
                break;
            }
            if !calls.is_empty() && !trailing {
                return None;
            }
            calls.push(self.fast_call()?);
            self.ws();
            trailing = self.eat(",");
        }
        self.ws();
        (self.pos == self.src.len()).then_some(calls)
    }

    /// One call, as [`Self::name_or_call`] and [`Self::call`] read it.
    pub(super) fn fast_call(&mut self) -> Option<Call> {
        self.ws();
        let start = self.pos;
        let first = self.ident()?;
        if is_keyword(first) || is_constant_name(first) || matches!(self.peek(), Some(b'\'' | b'"')) {
            return None;
        }
        // A dotted name written without spaces is copied whole; one with spaces (rare) is left
        // to the general path.
        loop {
            let save = self.pos;
            self.ws();
            if self.pos != save {
                if self.peek() == Some(b'.') {
                    return None;
                }
                self.pos = save;
                break;
            }
            if !self.eat(".") {
                break;
            }
            self.ident()?;
        }
        let name = CompactString::from(&self.src[start..self.pos]);
        self.ws();
        if !self.eat("(") {
            return None;
        }
        let mut args: Vec<(CompactString, Val)> = Vec::with_capacity(4);
        let mut positional = false;
        let mut trailing = false;
        loop {
            self.ws();
            if self.eat(")") {
                break;
            }
            if (positional || !args.is_empty()) && !trailing {
                return None;
            }
            if self.peek() == Some(b'*') {
                return None;
            }
            let save = self.pos;
            let kw = self.ident().filter(|k| !is_keyword(k) && !is_constant_name(k));
            self.ws();
            match kw {
                Some(k) if self.peek() == Some(b'=') && !self.rest().starts_with("==") => {
                    self.pos += 1;
                    if args.iter().any(|(old, _)| old == k) {
                        return None;
                    }
                    let start = self.pos;
                    let v = match self.fast_value(0) {
                        Some(v) => v,
                        None => {
                            // The general path, at the nesting depth it would have here.
                            self.pos = start;
                            self.depth = 4;
                            resolve(self.expr().ok()?).ok()?
                        }
                    };
                    args.push((k.into(), v));
                }
                _ => {
                    // Positional arguments are read and dropped, as BFCL does.
                    self.pos = save;
                    if !args.is_empty() {
                        return None;
                    }
                    self.depth = 4;
                    self.expr().ok()?;
                    positional = true;
                }
            }
            self.ws();
            trailing = self.eat(",");
        }
        Some(Call { name, args })
    }

    /// A literal, a bare name (as a string), or a list, tuple or dict of them, followed by no
    /// operator: what [`resolve`] would make of [`Self::expr`] there. `None` for anything else.
    pub(super) fn fast_value(&mut self, depth: usize) -> Option<Val> {
        if depth > 16 {
            return None;
        }
        self.ws();
        let v = match self.peek()? {
            b'"' | b'\'' => Val::Str(self.strings(false).ok()?),
            b'0'..=b'9' | b'.' => self.number().ok()?,
            // `-1`, and by BFCL's quirk `+1`, negate a number.
            b'-' | b'+' => {
                self.pos += 1;
                self.ws();
                if !matches!(self.peek(), Some(b'0'..=b'9' | b'.')) {
                    return None;
                }
                negate(&self.number().ok()?).ok()?
            }
            b'[' => {
                self.pos += 1;
                Val::List(self.fast_items(b']', depth)?.0)
            }
            b'(' => {
                self.pos += 1;
                let (mut items, trailing) = self.fast_items(b')', depth)?;
                if items.len() == 1 && !trailing { items.pop()? } else { Val::Tuple(items) }
            }
            b'{' => {
                self.pos += 1;
                let mut out: Vec<(Val, Val)> = Vec::with_capacity(4);
                self.fast_seq(b'}', true, |p| {
                    let k = p.fast_value(depth + 1)?;
                    p.ws();
                    if !p.eat(":") || matches!(k, Val::List(_) | Val::Dict(_)) {
                        return None;
                    }
                    let v = p.fast_value(depth + 1)?;
                    insert(&mut out, k, v);
                    Some(())
                })?;
                Val::Dict(out)
            }
            _ => {
                let name = self.ident()?;
                match name {
                    "True" => Val::Bool(true),
                    "False" => Val::Bool(false),
                    "None" => Val::None,
                    _ if is_keyword(name) || matches!(self.peek(), Some(b'\'' | b'"')) => return None,
                    _ => {
                        let save = self.pos;
                        self.ws();
                        if matches!(self.peek(), Some(b'.' | b'(')) {
                            return None;
                        }
                        self.pos = save;
                        Val::Str(name.into())
                    }
                }
            }
        };
        let save = self.pos;
        self.ws();
        if matches!(self.peek(), Some(b'*' | b'/' | b'%' | b'+' | b'-')) {
            return None;
        }
        self.pos = save;
        Some(v)
    }

    /// One JSON value straight to a value, as [`Self::atom`] then [`resolve`] read it in the JSON
    /// dialect; `None` for anything that path would reject or that nests deeply, so that it
    /// gives the error.
    pub(super) fn fast_json(&mut self, depth: usize) -> Option<Val> {
        if depth > 16 {
            return None;
        }
        self.ws();
        Some(match self.peek()? {
            b'"' => Val::Str(self.strings(false).ok()?),
            b'0'..=b'9' | b'.' | b'-' => self.number().ok()?,
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.fast_seq(b']', false, |p| p.fast_json(depth + 1).map(|v| items.push(v)))?;
                Val::List(items)
            }
            b'{' => {
                self.pos += 1;
                let mut out: Vec<(Val, Val)> = Vec::with_capacity(4);
                self.fast_seq(b'}', false, |p| {
                    let k = Val::Str(p.fast_key()?);
                    let v = p.fast_json(depth + 1)?;
                    insert(&mut out, k, v);
                    Some(())
                })?;
                Val::Dict(out)
            }
            _ => match self.ident()? {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                "null" => Val::None,
                _ => return None,
            },
        })
    }

    /// A `<tool_call>` body, `{"name": "...", "arguments": {...}}`, straight to a call: the
    /// arguments object becomes the argument list without being built as a dict first. `None`
    /// for anything else (arguments sent as a string, no string name, any error), which
    /// [`hermes_block_general`] then reads or reports. Keys repeat as in a dict: the last
    /// value wins, in the first one's place.
    pub(super) fn fast_hermes(&mut self) -> Option<Call> {
        if !self.eat("{") {
            return None;
        }
        let (mut name, mut arguments, mut parameters) = (None, None, None);
        self.fast_seq(b'}', false, |p| {
            let key = p.fast_key()?;
            p.ws();
            match key.as_str() {
                "name" => name = Some(p.fast_json(1)?),
                "arguments" | "parameters" => {
                    // `None` inside: present but not an object.
                    let args = if p.peek() == Some(b'{') {
                        Some(p.fast_args()?)
                    } else {
                        p.fast_json(1)?;
                        None
                    };
                    if key == "arguments" { arguments = Some(args) } else { parameters = Some(args) }
                }
                _ => {
                    p.fast_json(1)?;
                }
            }
            Some(())
        })?;
        self.ws();
        if self.pos != self.src.len() {
            return None;
        }
        let Some(Val::Str(name)) = name else { return None };
        let args = match arguments.or(parameters) {
            None => Vec::new(),
            Some(args) => args?,
        };
        Some(Call { name, args })
    }

    /// A JSON object's key and the `:` after it, for the fast readers.
    pub(super) fn fast_key(&mut self) -> Option<CompactString> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let k = self.strings(false).ok()?;
        self.ws();
        self.eat(":").then_some(k)
    }

    /// The arguments object of [`Self::fast_hermes`], at its `{`.
    pub(super) fn fast_args(&mut self) -> Option<Vec<(CompactString, Val)>> {
        self.pos += 1;
        let mut out: Vec<(CompactString, Val)> = Vec::with_capacity(4);
        self.fast_seq(b'}', false, |p| {
            let k = p.fast_key()?;
            let v = p.fast_json(2)?;
            match out.iter_mut().find(|(old, _)| *old == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
            Some(())
        })?;
        Some(out)
    }

    /// Comma-separated items up to `close` for the fast readers, each read by `item`; returns
    /// whether a comma trails (refused where JSON forbids it, `trailing_ok` false).
    pub(super) fn fast_seq(
        &mut self,
        close: u8,
        trailing_ok: bool,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<bool> {
        let (mut trailing, mut first) = (false, true);
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return (trailing_ok || !trailing).then_some(trailing);
            }
            if !first && !trailing {
                return None;
            }
            item(self)?;
            first = false;
            self.ws();
            trailing = self.eat(",");
        }
    }

    /// Items up to `close` for [`Self::fast_value`], and whether a comma trails.
    pub(super) fn fast_items(&mut self, close: u8, depth: usize) -> Option<(Vec<Val>, bool)> {
        let mut items = Vec::new();
        let trailing = self.fast_seq(close, true, |p| p.fast_value(depth + 1).map(|v| items.push(v)))?;
        Some((items, trailing))
    }
}
