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

use super::value::{CompactString, Val, py_eq};
use std::fmt;

/// Deepest nesting of brackets and calls accepted.
pub const MAX_DEPTH: usize = 64;
/// Longest text accepted, in bytes.
pub const MAX_LEN: usize = 1 << 20;
/// Largest integer exponent evaluated in `a ** b` (Python would build a huge integer).
const MAX_POW: i128 = 4096;

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

fn err<T>(kind: &'static str, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { kind, message: message.into() })
}

/// The calls in `text`: `<tool_call>` blocks if it has any tag, Python syntax otherwise.
pub fn parse_calls(text: &str) -> Result<Vec<Call>, ParseError> {
    if has_tool_call_tag(text) { parse_hermes(text) } else { parse_python(text) }
}

/// True when `text` holds a `<tool_call>` tag, i.e. the model tried to call a tool.
pub fn has_tool_call_tag(text: &str) -> bool {
    tags(text).next().is_some()
}

/// The `<tool_call>` (true) and `</tool_call>` (false) tags of `text`, with where each starts:
/// one byte search for `<`, cheap on text without tags, rather than substring searches. The
/// `memchr` crate's search reads 16 or 32 bytes a step where `str::match_indices` reads one or
/// two words: a hundred instructions less on a typical completion, which has no `<` at all.
fn tags(text: &str) -> impl Iterator<Item = (usize, bool)> + '_ {
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
fn hermes_block_general(body: &str, index: usize) -> Result<Call, ParseError> {
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

/// Python-call syntax, normalised as BFCL's decoder does: strip backticks, newlines and spaces,
/// add the missing `[` / `]`, strip whitespace and single quotes, then read one expression that
/// must be a call or a list of calls.
pub fn parse_python(text: &str) -> Result<Vec<Call>, ParseError> {
    if text.len() > MAX_LEN {
        return err("too_long", format!("{} bytes exceeds the limit of {MAX_LEN}", text.len()));
    }
    let s = text.trim_matches(|c| c == '`' || c == '\n' || c == ' ');
    // The text is copied only when a bracket must be added. BFCL then strips whitespace and `'`
    // from both ends, which does nothing to text that starts with `[` and ends with `]`.
    let owned;
    let cleaned = if s.starts_with('[') && s.ends_with(']') {
        s
    } else {
        let mut o = String::with_capacity(s.len() + 2);
        if !s.starts_with('[') {
            o.push('[');
        }
        o.push_str(s);
        if !s.ends_with(']') {
            o.push(']');
        }
        owned = o;
        owned.as_str()
    };
    match Parser::new(cleaned, Dialect::Python).fast_calls() {
        Some(calls) => Ok(calls),
        None => python_calls(cleaned),
    }
}

/// The general path of [`parse_python`] on bracketed text: the syntax tree, then values.
fn python_calls(cleaned: &str) -> Result<Vec<Call>, ParseError> {
    let expr = Parser::new(cleaned, Dialect::Python).whole_expr()?;
    let elts = match expr {
        Expr::Call { .. } => vec![expr],
        Expr::List(e) | Expr::Tuple(e) | Expr::Set(e) => e,
        _ => return err("not_a_call", "expected a call or a list of calls"),
    };
    elts.into_iter()
        .map(|e| match e {
            Expr::Call { name, kwargs, .. } => Ok(Call { name: name.into(), args: resolve_kwargs(kwargs)? }),
            _ => err("not_a_call", "every element of the list must be a function call"),
        })
        .collect()
}

fn resolve_kwargs(kwargs: Vec<(String, Expr)>) -> Result<Vec<(CompactString, Val)>, ParseError> {
    kwargs.into_iter().map(|(k, e)| Ok((k.into(), resolve(e)?))).collect()
}

/// BFCL's `resolve_ast_by_type`: the value a keyword argument's expression stands for.
fn resolve(e: Expr) -> Result<Val, ParseError> {
    Ok(match e {
        Expr::Const(v) => v,
        Expr::Name(n) => Val::Str(n.into()),
        Expr::List(items) => Val::List(items.into_iter().map(resolve).collect::<Result<_, _>>()?),
        Expr::Tuple(items) => Val::Tuple(items.into_iter().map(resolve).collect::<Result<_, _>>()?),
        Expr::Dict(pairs) => {
            let mut out: Vec<(Val, Val)> = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let (k, v) = (resolve(k)?, resolve(v)?);
                if matches!(k, Val::List(_) | Val::Dict(_)) {
                    return err("syntax", "unhashable dict key");
                }
                insert(&mut out, k, v);
            }
            Val::Dict(out)
        }
        // `-x` (and, by BFCL's quirk, `+x`) negate a constant operand only.
        Expr::Unary(_, inner) => match *inner {
            Expr::Const(v) => negate(&v)?,
            _ => return err("syntax", "unary operator on a non-constant"),
        },
        e @ Expr::Bin(..) => eval(&e, 0)?,
        e @ Expr::Call { .. } => {
            let Expr::Call { name, kwargs, .. } = &e else { unreachable!("matched above") };
            if kwargs.is_empty() {
                Val::Str(unparse(&e).into())
            } else {
                let args = resolve_kwargs(kwargs.clone())?;
                Val::Dict(vec![(
                    Val::Str(name.as_str().into()),
                    Val::Dict(args.into_iter().map(|(k, v)| (Val::Str(k), v)).collect()),
                )])
            }
        }
        Expr::Set(_) | Expr::Attr(_) => {
            return err("syntax", "unsupported expression (set or attribute)");
        }
    })
}

fn negate(v: &Val) -> Result<Val, ParseError> {
    match v {
        Val::Int(i) => Ok(Val::Int(-i)),
        Val::Bool(b) => Ok(Val::Int(-i128::from(*b))),
        Val::Float(f) => Ok(Val::Float(-f)),
        Val::BigInt(s) => Ok(Val::BigInt(s.strip_prefix('-').map(str::to_string).unwrap_or_else(|| format!("-{s}")))),
        _ => err("syntax", "bad operand type for unary -"),
    }
}

/// Evaluates arithmetic (what BFCL does with `eval` on a `BinOp`), over numbers, strings and lists.
fn eval(e: &Expr, depth: usize) -> Result<Val, ParseError> {
    if depth > MAX_DEPTH {
        return err("too_deep", "expression nests too deeply");
    }
    match e {
        Expr::Const(v) => Ok(v.clone()),
        Expr::Unary(op, inner) => {
            let v = eval(inner, depth + 1)?;
            if *op == '+' {
                if matches!(v, Val::Int(_) | Val::Float(_) | Val::Bool(_)) { Ok(v) } else { negate(&v) }
            } else {
                negate(&v)
            }
        }
        Expr::List(items) => Ok(Val::List(items.iter().map(|x| eval(x, depth + 1)).collect::<Result<_, _>>()?)),
        Expr::Tuple(items) => Ok(Val::Tuple(items.iter().map(|x| eval(x, depth + 1)).collect::<Result<_, _>>()?)),
        Expr::Bin(op, a, b) => binop(op, eval(a, depth + 1)?, eval(b, depth + 1)?),
        _ => err("syntax", "unsupported operand in arithmetic"),
    }
}

fn binop(op: &str, a: Val, b: Val) -> Result<Val, ParseError> {
    let as_f = |v: &Val| match v {
        Val::Int(i) => Some(*i as f64),
        Val::Bool(b) => Some(f64::from(u8::from(*b))),
        Val::Float(f) => Some(*f),
        _ => None,
    };
    let as_i = |v: &Val| match v {
        Val::Int(i) => Some(*i),
        Val::Bool(b) => Some(i128::from(*b)),
        _ => None,
    };
    let overflow = || ParseError { kind: "syntax", message: "integer overflow in arithmetic".into() };
    let zero = || ParseError { kind: "syntax", message: "division by zero".into() };
    match (op, &a, &b) {
        ("+", Val::Str(x), Val::Str(y)) => return Ok(Val::Str(compact_str::format_compact!("{x}{y}"))),
        ("+", Val::List(x), Val::List(y)) => {
            return Ok(Val::List(x.iter().chain(y).cloned().collect()));
        }
        _ => {}
    }
    if let (Some(x), Some(y)) = (as_i(&a), as_i(&b)) {
        return match op {
            "+" => x.checked_add(y).map(Val::Int).ok_or_else(overflow),
            "-" => x.checked_sub(y).map(Val::Int).ok_or_else(overflow),
            "*" => x.checked_mul(y).map(Val::Int).ok_or_else(overflow),
            "/" if y == 0 => Err(zero()),
            "/" => Ok(Val::Float(x as f64 / y as f64)),
            "//" if y == 0 => Err(zero()),
            "//" => Ok(Val::Int(x.div_euclid(y) - if y < 0 && x.rem_euclid(y) != 0 { 1 } else { 0 })),
            "%" if y == 0 => Err(zero()),
            "%" => Ok(Val::Int(((x % y) + y) % y)),
            "**" if y < 0 => Ok(Val::Float((x as f64).powf(y as f64))),
            "**" if y > MAX_POW => Err(overflow()),
            "**" => x.checked_pow(y as u32).map(Val::Int).ok_or_else(overflow),
            _ => err("syntax", format!("unsupported operator {op}")),
        };
    }
    if let (Some(x), Some(y)) = (as_f(&a), as_f(&b)) {
        return match op {
            "+" => Ok(Val::Float(x + y)),
            "-" => Ok(Val::Float(x - y)),
            "*" => Ok(Val::Float(x * y)),
            "/" | "//" | "%" if y == 0.0 => Err(zero()),
            "/" => Ok(Val::Float(x / y)),
            "//" => Ok(Val::Float((x / y).floor())),
            "%" => Ok(Val::Float(x - y * (x / y).floor())),
            "**" => Ok(Val::Float(x.powf(y))),
            _ => err("syntax", format!("unsupported operator {op}")),
        };
    }
    err("syntax", format!("unsupported operand types for {op}"))
}

/// Python's `ast.unparse` for the expressions we read (used for nested calls without keywords).
fn unparse(e: &Expr) -> String {
    let list = |items: &[Expr]| items.iter().map(unparse).collect::<Vec<_>>().join(", ");
    match e {
        Expr::Const(v) => v.repr(),
        Expr::Name(n) | Expr::Attr(n) => n.clone(),
        Expr::List(items) => format!("[{}]", list(items)),
        Expr::Set(items) => format!("{{{}}}", list(items)),
        Expr::Tuple(items) if items.len() == 1 => format!("({},)", unparse(&items[0])),
        Expr::Tuple(items) => format!("({})", list(items)),
        Expr::Dict(pairs) => {
            let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{}: {}", unparse(k), unparse(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Expr::Unary(op, inner) => format!("{op}{}", unparse(inner)),
        Expr::Bin(op, a, b) => format!("{} {op} {}", unparse(a), unparse(b)),
        Expr::Call { name, args, kwargs } => {
            let mut parts: Vec<String> = args.iter().map(unparse).collect();
            parts.extend(kwargs.iter().map(|(k, v)| format!("{k}={}", unparse(v))));
            format!("{name}({})", parts.join(", "))
        }
    }
}

/// The syntax tree of the Python subset we read.
#[derive(Clone, Debug)]
enum Expr {
    Const(Val),
    Name(String),
    Attr(String),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Set(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Unary(char, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Call { name: String, args: Vec<Expr>, kwargs: Vec<(String, Expr)> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Python,
    Json,
}

/// Python's keywords other than `True`, `False` and `None` (by first letter: most names are
/// rejected without comparing any text).
fn is_keyword(name: &str) -> bool {
    let candidates: &[&str] = match name.as_bytes().first() {
        Some(b'a') => &["and", "as", "assert", "async", "await"],
        Some(b'b') => &["break"],
        Some(b'c') => &["class", "continue"],
        Some(b'd') => &["def", "del"],
        Some(b'e') => &["elif", "else", "except"],
        Some(b'f') => &["finally", "for", "from"],
        Some(b'g') => &["global"],
        Some(b'i') => &["if", "import", "in", "is"],
        Some(b'l') => &["lambda"],
        Some(b'n') => &["nonlocal", "not"],
        Some(b'o') => &["or"],
        Some(b'p') => &["pass"],
        Some(b'r') => &["raise", "return"],
        Some(b't') => &["try"],
        Some(b'w') => &["while", "with"],
        Some(b'y') => &["yield"],
        _ => return false,
    };
    candidates.contains(&name)
}

/// `True`, `False` or `None`.
fn is_constant_name(name: &str) -> bool {
    matches!(name.as_bytes().first(), Some(b'T' | b'F' | b'N')) && matches!(name, "True" | "False" | "None")
}

/// ASCII letters, digits and `_`, by byte: one load per character of a name.
const IDENT_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_';
        c += 1;
    }
    t
};

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    dialect: Dialect,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
        Self { src, pos: 0, depth: 0, dialect }
    }

    /// The common case in one pass, straight to values: `[name(kw=value, ...), ...]` whose
    /// values are literals, names, and lists, tuples and dicts of them. `None` sends the text
    /// to the general path (syntax tree, then values), which gives every error and every rarer
    /// form; where this succeeds, that path would return the same calls. A keyword value this
    /// pass does not read is read by the general path where it stands.
    fn fast_calls(&mut self) -> Option<Vec<Call>> {
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
    fn fast_call(&mut self) -> Option<Call> {
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
    fn fast_value(&mut self, depth: usize) -> Option<Val> {
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
    fn fast_json(&mut self, depth: usize) -> Option<Val> {
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
    fn fast_hermes(&mut self) -> Option<Call> {
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
    fn fast_key(&mut self) -> Option<CompactString> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let k = self.strings(false).ok()?;
        self.ws();
        self.eat(":").then_some(k)
    }

    /// The arguments object of [`Self::fast_hermes`], at its `{`.
    fn fast_args(&mut self) -> Option<Vec<(CompactString, Val)>> {
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
    fn fast_seq(
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
    fn fast_items(&mut self, close: u8, depth: usize) -> Option<(Vec<Val>, bool)> {
        let mut items = Vec::new();
        let trailing = self.fast_seq(close, true, |p| p.fast_value(depth + 1).map(|v| items.push(v)))?;
        Some((items, trailing))
    }

    fn fail<T>(&self, what: &str) -> Result<T, ParseError> {
        err("syntax", format!("{what} at byte {}", self.pos))
    }

    /// One JSON value filling the whole input.
    fn whole(&mut self) -> Result<Val, ParseError> {
        if self.dialect == Dialect::Json {
            if let Some(v) = self.fast_json(0) {
                self.ws();
                if self.pos == self.src.len() {
                    return Ok(v);
                }
            }
            self.pos = 0;
        }
        let e = self.whole_expr()?;
        // JSON has no expressions beyond literals; the JSON dialect never builds anything else.
        resolve(e)
    }

    fn whole_expr(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        let e = self.expr()?;
        self.ws();
        if self.pos != self.src.len() {
            return self.fail("unexpected text after the expression");
        }
        Ok(e)
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Skips whitespace, comments and line continuations. Most calls find none, so that test is
    /// inlined at each call and the loop is not.
    #[inline]
    fn ws(&mut self) {
        if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\\' | b'#')) {
            self.skip_ws();
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.pos += 1,
                b'\\' if self.dialect == Dialect::Python && self.rest().starts_with("\\\n") => self.pos += 2,
                b'#' if self.dialect == Dialect::Python => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("too_deep", format!("nesting deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        if self.dialect == Dialect::Json {
            return self.atom();
        }
        self.enter()?;
        let e = self.sum();
        self.depth -= 1;
        e
    }

    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.term()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some(b'+') => "+",
                Some(b'-') => "-",
                _ => return Ok(left),
            };
            self.pos += 1;
            self.ws();
            let right = self.term()?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            self.ws();
            let op = if self.rest().starts_with("**") {
                return Ok(left);
            } else if self.eat("//") {
                "//"
            } else if self.eat("*") {
                "*"
            } else if self.eat("/") {
                "/"
            } else if self.eat("%") {
                "%"
            } else {
                return Ok(left);
            };
            self.ws();
            let right = self.unary()?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        match self.peek() {
            Some(c @ (b'-' | b'+')) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.unary();
                self.depth -= 1;
                Ok(Expr::Unary(c as char, Box::new(inner?)))
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        self.ws();
        if self.eat("**") {
            self.ws();
            self.enter()?;
            let exp = self.unary();
            self.depth -= 1;
            return Ok(Expr::Bin("**", Box::new(base), Box::new(exp?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        let Some(c) = self.peek() else {
            return self.fail("unexpected end of input");
        };
        match c {
            b'[' => {
                self.pos += 1;
                self.enter()?;
                let items = self.seq(b']')?;
                self.depth -= 1;
                Ok(Expr::List(items.0))
            }
            b'(' if self.dialect == Dialect::Python => {
                self.pos += 1;
                self.enter()?;
                let (items, trailing_comma) = self.seq(b')')?;
                self.depth -= 1;
                if items.len() == 1 && !trailing_comma {
                    Ok(items.into_iter().next().expect("one item"))
                } else {
                    Ok(Expr::Tuple(items))
                }
            }
            b'{' => {
                self.pos += 1;
                self.enter()?;
                let d = self.dict();
                self.depth -= 1;
                d
            }
            b'"' | b'\'' => Ok(Expr::Const(Val::Str(self.strings(false)?))),
            b'0'..=b'9' | b'.' => Ok(Expr::Const(self.number()?)),
            b'-' if self.dialect == Dialect::Json => Ok(Expr::Const(self.number()?)),
            _ => self.name_or_call(),
        }
    }

    /// Items up to `close`, comma-separated, trailing comma allowed (Python) or not (JSON).
    fn seq(&mut self, close: u8) -> Result<(Vec<Expr>, bool), ParseError> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            self.ws();
            if self.peek() == Some(close) {
                if trailing && self.dialect == Dialect::Json {
                    return self.fail("trailing comma");
                }
                self.pos += 1;
                return Ok((items, trailing));
            }
            if !items.is_empty() && !trailing {
                return self.fail("expected `,`");
            }
            items.push(self.expr()?);
            self.ws();
            trailing = self.eat(",");
        }
    }

    fn dict(&mut self) -> Result<Expr, ParseError> {
        let mut pairs = Vec::new();
        let mut set = Vec::new();
        let mut trailing = false;
        loop {
            self.ws();
            if self.eat("}") {
                if trailing && self.dialect == Dialect::Json {
                    return self.fail("trailing comma");
                }
                return Ok(if set.is_empty() { Expr::Dict(pairs) } else { Expr::Set(set) });
            }
            if (!pairs.is_empty() || !set.is_empty()) && !trailing {
                return self.fail("expected `,`");
            }
            let k = self.expr()?;
            if self.dialect == Dialect::Json && !matches!(k, Expr::Const(Val::Str(_))) {
                return self.fail("object keys must be strings");
            }
            self.ws();
            if self.eat(":") {
                if !set.is_empty() {
                    return self.fail("mixed set and dict");
                }
                let v = self.expr()?;
                pairs.push((k, v));
            } else if self.dialect == Dialect::Python && pairs.is_empty() {
                set.push(k);
            } else {
                return self.fail("expected `:`");
            }
            self.ws();
            trailing = self.eat(",");
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        let start = self.pos;
        // All-ASCII names (nearly all of them) without decoding characters; a digit first or a
        // non-ASCII character next takes the general loop below.
        let b = self.rest().as_bytes();
        let mut n = 0;
        while n < b.len() && IDENT_BYTE[usize::from(b[n])] {
            n += 1;
        }
        let starts_with_digit = n > 0 && b[0].is_ascii_digit();
        if !starts_with_digit && b.get(n).is_none_or(u8::is_ascii) {
            self.pos = start + n;
            return (n > 0).then(|| &self.src[start..start + n]);
        }
        for (i, ch) in self.rest().char_indices() {
            let ok = ch == '_' || ch.is_alphabetic() || (i > 0 && ch.is_alphanumeric());
            if !ok {
                self.pos = start + i;
                return (i > 0).then(|| &self.src[start..start + i]);
            }
        }
        self.pos = self.src.len();
        (self.pos > start).then(|| &self.src[start..])
    }

    fn name_or_call(&mut self) -> Result<Expr, ParseError> {
        let Some(first) = self.ident() else {
            return self.fail("unexpected character");
        };
        if self.dialect == Dialect::Json {
            return match first {
                "true" => Ok(Expr::Const(Val::Bool(true))),
                "false" => Ok(Expr::Const(Val::Bool(false))),
                "null" => Ok(Expr::Const(Val::None)),
                _ => self.fail("unexpected name"),
            };
        }
        match first {
            "True" => return Ok(Expr::Const(Val::Bool(true))),
            "False" => return Ok(Expr::Const(Val::Bool(false))),
            "None" => return Ok(Expr::Const(Val::None)),
            _ if is_keyword(first) => {
                return self.fail(&format!("unsupported keyword `{first}`"));
            }
            _ => {}
        }
        // String prefixes: r'..' is a raw string; b'..', f'..' are values we do not model.
        if let Some(b'\'' | b'"') = self.peek() {
            let lower = first.to_ascii_lowercase();
            if lower == "r" || lower == "u" {
                return Ok(Expr::Const(Val::Str(self.strings(lower == "r")?)));
            }
            return self.fail("unsupported string prefix");
        }
        let mut name = first.to_string();
        let mut dotted = false;
        loop {
            let save = self.pos;
            self.ws();
            if self.eat(".") {
                self.ws();
                match self.ident() {
                    Some(part) => {
                        name.push('.');
                        name.push_str(part);
                        dotted = true;
                    }
                    None => return self.fail("expected a name after `.`"),
                }
            } else {
                self.pos = save;
                break;
            }
        }
        let save = self.pos;
        self.ws();
        if !self.eat("(") {
            self.pos = save;
            return Ok(if dotted { Expr::Attr(name) } else { Expr::Name(name) });
        }
        self.enter()?;
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Expr)> = Vec::new();
        let mut trailing = false;
        loop {
            self.ws();
            if self.eat(")") {
                break;
            }
            let first = args.is_empty() && kwargs.is_empty();
            if !first && !trailing {
                return self.fail("expected `,` in call");
            }
            if self.rest().starts_with("**") || (self.peek() == Some(b'*')) {
                return self.fail("star arguments are not supported");
            }
            let save = self.pos;
            let kw = self.ident().filter(|k| !is_keyword(k) && !is_constant_name(k));
            self.ws();
            let is_kw = kw.is_some() && self.peek() == Some(b'=') && !self.rest().starts_with("==");
            if let (Some(k), true) = (kw, is_kw) {
                self.pos += 1;
                if kwargs.iter().any(|(old, _)| old == k) {
                    return self.fail(&format!("keyword argument repeated: {k}"));
                }
                let v = self.expr()?;
                kwargs.push((k.to_string(), v));
            } else {
                self.pos = save;
                if !kwargs.is_empty() {
                    return self.fail("positional argument follows keyword argument");
                }
                args.push(self.expr()?);
            }
            self.ws();
            trailing = self.eat(",");
        }
        self.depth -= 1;
        Ok(Expr::Call { name, args, kwargs })
    }

    /// A string literal, and in Python those adjacent to it, concatenated; `raw` for an `r` prefix.
    fn strings(&mut self, raw: bool) -> Result<CompactString, ParseError> {
        let mut out = self.string(raw)?;
        if self.dialect == Dialect::Python {
            loop {
                let save = self.pos;
                self.ws();
                match self.peek() {
                    Some(b'\'' | b'"') => out.push_str(&self.string(false)?),
                    Some(b'r' | b'R') if matches!(self.src.as_bytes().get(self.pos + 1), Some(b'\'' | b'"')) => {
                        self.pos += 1;
                        out.push_str(&self.string(true)?);
                    }
                    _ => {
                        self.pos = save;
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn string(&mut self, raw: bool) -> Result<CompactString, ParseError> {
        let q = self.peek().expect("called on a quote");
        if self.dialect == Dialect::Json && q != b'"' {
            return self.fail("JSON strings use double quotes");
        }
        let triple = self.dialect == Dialect::Python && self.rest().as_bytes().starts_with(&[q, q, q]);
        self.pos += if triple { 3 } else { 1 };
        if !triple {
            // Most strings have no escapes: copy them whole when the closing quote comes first.
            let json = self.dialect == Dialect::Json;
            let rest = self.rest();
            let special = rest.bytes().position(|c| c == q || c == b'\\' || c == b'\n' || (json && c < 0x20));
            if let Some(i) = special.filter(|&i| rest.as_bytes()[i] == q) {
                self.pos += i + 1;
                return Ok(rest[..i].into());
            }
        }
        let mut out = CompactString::default();
        loop {
            let rest = self.rest();
            let Some(ch) = rest.chars().next() else {
                return self.fail("unterminated string");
            };
            if ch as u32 == q as u32 {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if rest.as_bytes().starts_with(&[q, q, q]) {
                    self.pos += 3;
                    return Ok(out);
                }
            }
            if (ch == '\n' && !triple) || (self.dialect == Dialect::Json && (ch as u32) < 0x20) {
                return self.fail("newline in string");
            }
            self.pos += ch.len_utf8();
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            let Some(e) = self.rest().chars().next() else {
                return self.fail("unterminated escape");
            };
            if raw {
                out.push('\\');
                out.push(e);
                self.pos += e.len_utf8();
                continue;
            }
            self.pos += e.len_utf8();
            match (e, self.dialect) {
                ('n', _) => out.push('\n'),
                ('t', _) => out.push('\t'),
                ('r', _) => out.push('\r'),
                ('b', _) => out.push('\u{8}'),
                ('f', _) => out.push('\u{c}'),
                ('\\', _) | ('"', _) => out.push(e),
                ('/', Dialect::Json) => out.push('/'),
                ('\'', Dialect::Python) => out.push('\''),
                ('\n', Dialect::Python) => {}
                ('a', Dialect::Python) => out.push('\u{7}'),
                ('v', Dialect::Python) => out.push('\u{b}'),
                ('0'..='7', Dialect::Python) => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                ('x', Dialect::Python) => out.push(self.hex_char(2)?),
                ('u', Dialect::Python) => out.push(self.hex_char(4)?),
                ('U', Dialect::Python) => out.push(self.hex_char(8)?),
                ('u', Dialect::Json) => {
                    let hi = self.hex(4)?;
                    if (0xD800..0xDC00).contains(&hi) && self.eat("\\u") {
                        let lo = self.hex(4)?;
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff);
                        out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                    } else {
                        out.push(char::from_u32(hi).unwrap_or('\u{fffd}'));
                    }
                }
                (_, Dialect::Python) => {
                    out.push('\\');
                    out.push(e);
                }
                (_, Dialect::Json) => return self.fail("invalid escape"),
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<u32, ParseError> {
        let digits = self.rest().get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(d) = digits else {
            return self.fail("bad hex escape");
        };
        self.pos += n;
        u32::from_str_radix(d, 16).or_else(|_| self.fail("bad hex escape"))
    }

    fn hex_char(&mut self, n: usize) -> Result<char, ParseError> {
        let v = self.hex(n)?;
        char::from_u32(v).map_or_else(|| self.fail("escape outside Unicode"), Ok)
    }

    fn number(&mut self) -> Result<Val, ParseError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        if self.dialect == Dialect::Python
            && b[start] == b'0'
            && matches!(b.get(start + 1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B'))
        {
            let radix = match b[start + 1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            self.pos += 2;
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                self.pos += 1;
            }
            let digits: String = self.src[start + 2..self.pos].chars().filter(|&c| c != '_').collect();
            return match i128::from_str_radix(&digits, radix) {
                Ok(v) => Ok(Val::Int(v)),
                Err(_) => self.fail("bad integer literal"),
            };
        }
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let (mut float, mut underscore) = (false, false);
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => self.pos += 1,
                b'_' if self.dialect == Dialect::Python => {
                    underscore = true;
                    self.pos += 1
                }
                b'.' => {
                    float = true;
                    self.pos += 1
                }
                b'e' | b'E' => {
                    float = true;
                    self.pos += 1;
                    if matches!(self.peek(), Some(b'+' | b'-')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return self.fail("unsupported number literal");
        }
        let raw = &self.src[start..self.pos];
        let filtered: String;
        let text = if underscore {
            filtered = raw.chars().filter(|&c| c != '_').collect();
            filtered.as_str()
        } else {
            raw
        };
        if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() || self.dialect == Dialect::Python => Ok(Val::Float(f)),
                _ => self.fail("bad number"),
            }
        } else if text.is_empty() || text == "-" {
            self.fail("bad number")
        } else {
            let digits = text.trim_start_matches('-');
            if digits.len() > 1
                && digits.starts_with('0')
                && (self.dialect == Dialect::Json || digits.bytes().any(|c| c != b'0'))
            {
                return self.fail("leading zeros in a number");
            }
            // Up to 18 digits cannot overflow an i64: summed directly, the common case.
            if digits.len() <= 18 {
                let v = digits.bytes().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
                return Ok(Val::Int(i128::from(if digits.len() < text.len() { -v } else { v })));
            }
            match text.parse::<i128>() {
                Ok(i) => Ok(Val::Int(i)),
                Err(_) if self.dialect == Dialect::Json => self.fail("number out of range"),
                Err(_) => Ok(Val::BigInt(text.trim_start_matches('0').to_string())),
            }
        }
    }
}

/// Sets `k` in a dict's pairs as Python does: a later equal key replaces the earlier value and
/// keeps its place.
fn insert(out: &mut Vec<(Val, Val)>, k: Val, v: Val) {
    match out.iter_mut().find(|(old, _)| py_eq(old, &k)) {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Call {
        let mut calls = parse_calls(text).unwrap();
        assert_eq!(calls.len(), 1, "{text}");
        calls.remove(0)
    }

    #[test]
    fn python_calls_as_bfcl_decodes_them() {
        let c = one("[spotify.play(artist='Taylor Swift', duration=20)]");
        assert_eq!(c.name, "spotify.play");
        assert_eq!(c.args[0].0, "artist");
        assert_eq!(c.arg("duration").unwrap().repr(), "20");
        // No brackets, backticks, a positional argument (dropped), names, nested calls, arithmetic.
        let c = one("```f(1, a=x, b=math.sqrt(2), c=g(k=1), d=2*3, e=-1.5, f=+2, g=(1, 2), h={'k': [1]})```");
        let got: Vec<String> = c.args.iter().map(|(k, v)| format!("{k}={}", v.repr())).collect();
        assert_eq!(
            got,
            ["a='x'", "b='math.sqrt(2)'", "c={'g': {'k': 1}}", "d=6", "e=-1.5", "f=-2", "g=(1, 2)", "h={'k': [1]}"]
        );
        assert_eq!(parse_calls("[a(), b(x=\"y\" 'z')]").unwrap()[1].arg("x").unwrap().repr(), "'yz'");
        assert_eq!(parse_calls("").unwrap().len(), 0);
    }

    #[test]
    fn one_pass_reading_agrees_with_the_syntax_tree() {
        let texts = [
            "[f(a=1, b='x', c=[1, 2.5, -3], d=(1,), e=(2), f={'k': [True, None]}, g=name, h=+4, i=-.5)]",
            "[a.b . c(x = 'p' \"q\", y={'k': 1, 'k': 2, 1: 'one', True: 't'}), g(), h(1, 2, z=3)]",
            "[f(a=1e400, b=123456789012345678901234567890123456789012, c=0x1f, d=1_000, e=r'a\\b', f=u'x')]",
            "[f(a=g(k=1), b=math.sqrt(2), c=2*3, d=-x, e=--1, f=-2**2, g=[1, 2] + [3], h='a' 'b' + 'c')]",
            "[f(a={1, 2}, b=[1, 2][0], c=x.y, d=(1, 2), e={(1, 2): 3}, f={[1]: 2}, g=-True, h={})]",
            "[f(a=1), g(b=2),]",
            "[f(a=1) + g(b=2)]",
            "[f(a=1)] * 2",
            "[f(a=1, a=2)]",
            "[f(a=1, 2)]",
            "[f(*a)]",
            "[1, f()]",
            "[[f()]]",
            "[f(a=1) # comment\n]",
            "[f(a=[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]])]",
            "[True(a=1)]",
            "[f(a=1 < 2)]",
            "[f(a=lambda: 1)]",
            "[f(a=b'x')]",
            "[f(a='unterminated)]",
            "[f(a=1.)]",
            "[f(a=.)]",
            "[f(if=1)]",
            "[f(a=None, b=False, c=(), d=[], e=[1,], f=(1, 2,), g={'a': 1,})]",
            "[a . b(x=1), a.\\\nb(x=1), a.b .c(x=1), a.1(x=1), a.(x=1), a.if(x=1)]",
        ];
        for text in texts {
            let fast = Parser::new(text, Dialect::Python).fast_calls();
            let general = python_calls(text);
            match (&fast, &general) {
                (None, _) => {}
                (Some(f), Ok(g)) => {
                    let f: Vec<String> = f.iter().map(Call::to_python).collect();
                    let g: Vec<String> = g.iter().map(Call::to_python).collect();
                    assert_eq!(f, g, "{text}");
                }
                (Some(_), Err(e)) => panic!("{text}: the one pass read what the general path rejects ({e})"),
            }
        }
        // The common forms take the one pass.
        assert!(Parser::new(texts[0], Dialect::Python).fast_calls().is_some());
        assert!(Parser::new(texts[5], Dialect::Python).fast_calls().is_some());
    }

    #[test]
    fn one_pass_json_agrees_with_the_syntax_tree() {
        let texts = [
            r#"{"name": "f", "arguments": {"a": [1, -2.5e3, true, null, "x\u00e9"], "b": {"c": {}}, "a": 3}}"#,
            r#" [ 1 , 2 ] "#,
            r#"[1, 2,]"#,
            r#"{"a": 1,}"#,
            r#"{'a': 1}"#,
            r#"{1: 2}"#,
            r#"[01]"#,
            r#"[1e999]"#,
            r#"[NaN]"#,
            r#"{"a" 1}"#,
            r#"[1] x"#,
            r#"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"#,
        ];
        for text in texts {
            let fast = Parser::new(text, Dialect::Json).fast_json(0);
            let mut general = Parser::new(text, Dialect::Json);
            let general = general.whole_expr().and_then(resolve);
            match (fast, general) {
                (None, _) => {}
                (Some(f), Ok(g)) => assert_eq!(f.repr(), g.repr(), "{text}"),
                (Some(f), Err(e)) => {
                    // The one pass may stop early; `whole` then still requires the end of input.
                    let mut p = Parser::new(text, Dialect::Json);
                    p.fast_json(0);
                    p.ws();
                    assert!(p.pos != text.len(), "{text}: read {} where the general path fails ({e})", f.repr());
                }
            }
        }
        assert!(Parser::new(texts[0], Dialect::Json).fast_json(0).is_some());
    }

    #[test]
    fn one_pass_tool_call_agrees_with_the_json_value() {
        let bodies = [
            r#"{"name": "f", "arguments": {"a": [1, {"b": null}], "c": "x", "a": 2}}"#,
            r#"{"arguments": {"x": 1}, "name": "f", "id": 7}"#,
            r#"{"name": "f", "parameters": {"x": 1}}"#,
            r#"{"name": "f", "parameters": {"x": 1}, "arguments": {"y": 2}}"#,
            r#"{"name": "f"}"#,
            r#"{"name": "f", "name": "g", "arguments": {}}"#,
            r#"{"name": "f", "arguments": {"x": 1}, "arguments": "{"y": 2}"}"#,
            r#"{"name": "f", "arguments": "{"y": 2}", "arguments": {"x": 1}}"#,
            r#"{"name": "f", "arguments": [1]}"#,
            r#"{"name": 3, "arguments": {}}"#,
            r#"{"arguments": {}}"#,
            r#"{"name": "f", "arguments": {"x": 1},}"#,
            r#"{"name": "f", "arguments": {"x": 1}} tail"#,
            r#"[{"name": "f"}]"#,
        ];
        for body in bodies {
            let fast = Parser::new(body, Dialect::Json).fast_hermes();
            let general = hermes_block_general(body, 0);
            match (fast, general) {
                (None, _) => {}
                (Some(f), Ok(g)) => assert_eq!(f.to_python(), g.to_python(), "{body}"),
                (Some(f), Err(e)) => {
                    panic!("{body}: one pass read {} where the general path fails ({e})", f.to_python())
                }
            }
        }
        assert!(Parser::new(bodies[0], Dialect::Json).fast_hermes().is_some());
        assert!(Parser::new(bodies[3], Dialect::Json).fast_hermes().is_some());
    }

    #[test]
    fn keywords_are_pythons() {
        let python = "and as assert async await break class continue def del elif else except finally for from \
                      global if import in is lambda nonlocal not or pass raise return try while with yield";
        for k in python.split_whitespace() {
            assert!(is_keyword(k), "{k}");
        }
        for name in ["", "a", "True", "None", "radius", "format", "ifs", "i", "yields", "Lambda", "_if"] {
            assert!(!is_keyword(name), "{name}");
        }
    }

    #[test]
    fn hermes_calls() {
        let t = "I'll call.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": 1.0}}\n</tool_call>\
                 <tool_call>{\"name\": \"neg\", \"arguments\": \"{\\\"x\\\": 3}\"}</tool_call>";
        let calls = parse_calls(t).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].to_python(), "add(b=2, a=1.0)", "argument order is kept");
        assert_eq!(calls[1].to_python(), "neg(x=3)");
    }

    #[test]
    fn bad_input_is_a_categorised_error() {
        let kind = |t: &str| parse_calls(t).unwrap_err().kind;
        assert_eq!(kind("<tool_call>{\"name\": \"a\"}"), "unbalanced_tags");
        assert_eq!(kind("</tool_call>"), "unbalanced_tags");
        assert_eq!(kind("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": NaN}}</tool_call>"), "syntax");
        assert_eq!(kind("<tool_call>[1]</tool_call>"), "not_a_call");
        assert_eq!(kind("<tool_call>{\"name\": 1}</tool_call>"), "not_a_call");
        assert_eq!(kind("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1e999}}</tool_call>"), "syntax");
        assert_eq!(kind("[f(a=1"), "syntax");
        assert_eq!(kind("[f(a=1, a=2)]"), "syntax");
        assert_eq!(kind("I think the answer is 42."), "syntax");
        assert_eq!(kind("[1, f()]"), "not_a_call");
        assert_eq!(kind("[f(x=10**100000)]"), "syntax");
        assert_eq!(kind("[f(x=1/0)]"), "syntax");
        let deep = format!("[f(x={}{})]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(kind(&deep), "too_deep");
        let deep_json =
            format!("<tool_call>{{\"name\": \"f\", \"arguments\": {{\"x\": {}}}}}</tool_call>", "[".repeat(10_000));
        assert_eq!(kind(&deep_json), "too_deep");
        assert_eq!(kind(&"a".repeat(MAX_LEN + 1)), "too_long");
    }

    #[test]
    fn huge_and_special_numbers() {
        let c = one("[f(a=123456789012345678901234567890123456789012, b=1e400, c=0x10, d=1_000)]");
        assert_eq!(c.arg("a").unwrap().repr(), "123456789012345678901234567890123456789012");
        assert_eq!(c.arg("b").unwrap().repr(), "inf");
        assert_eq!(c.arg("c").unwrap().repr(), "16");
        assert_eq!(c.arg("d").unwrap().repr(), "1000");
    }

    /// A cheap stand-in for the cargo-fuzz target that runs on stable in every `cargo test`:
    /// seeded byte-level mutations of valid calls must parse or fail, never panic.
    #[test]
    fn mutated_inputs_never_panic() {
        let seeds = [
            r#"[f(a=1, b=[{'k': (1, 2.5e3)}], c=g(x=None), d=-0x1f, e='''t\n''', f=2**3//2)]"#,
            r#"<tool_call>{"name": "f", "arguments": {"a": [1, {"b": "\u00e9\ud83d\ude00"}], "c": -1.5e3}}</tool_call>"#,
        ];
        let alphabet = b"()[]{},:'\"=<>/\\-+*._0123456789eExjJ \ntool_call";
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            h
        };
        for s in seeds {
            for _ in 0..3000 {
                let mut b = s.as_bytes().to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() % b.len() as u64) as usize;
                    let c = alphabet[(next() % alphabet.len() as u64) as usize];
                    match next() % 3 {
                        0 => b[i] = c,
                        1 if b.len() > 1 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, c),
                    }
                }
                if let Ok(text) = std::str::from_utf8(&b) {
                    let _ = parse_calls(text);
                }
            }
        }
    }
}
