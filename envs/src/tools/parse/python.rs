//! Python-call syntax as BFCL prompts for (`[func(a=1), other(b=[1, 2])]`), and the reader
//! behind both formats: a recursive-descent parser of the Python subset we model, with JSON as a
//! stricter dialect of it (the `<tool_call>` bodies).

use super::eval::{resolve, resolve_kwargs};
use super::{Call, MAX_DEPTH, MAX_LEN, ParseError, err};
use crate::tools::value::{CompactString, Val, py_eq};

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
pub(super) fn python_calls(cleaned: &str) -> Result<Vec<Call>, ParseError> {
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

/// The syntax tree of the Python subset we read.
#[derive(Clone, Debug)]
pub(super) enum Expr {
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
pub(super) enum Dialect {
    Python,
    Json,
}

/// Python's keywords other than `True`, `False` and `None` (by first letter: most names are
/// rejected without comparing any text).
pub(super) fn is_keyword(name: &str) -> bool {
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
pub(super) fn is_constant_name(name: &str) -> bool {
    matches!(name.as_bytes().first(), Some(b'T' | b'F' | b'N')) && matches!(name, "True" | "False" | "None")
}

/// ASCII letters, digits and `_`, by byte: one load per character of a name.
pub(super) const IDENT_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_';
        c += 1;
    }
    t
};

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) depth: usize,
    pub(super) dialect: Dialect,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str, dialect: Dialect) -> Self {
        Self { src, pos: 0, depth: 0, dialect }
    }

    pub(super) fn fail<T>(&self, what: &str) -> Result<T, ParseError> {
        err("syntax", format!("{what} at byte {}", self.pos))
    }

    /// One JSON value filling the whole input.
    pub(super) fn whole(&mut self) -> Result<Val, ParseError> {
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

    pub(super) fn whole_expr(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        let e = self.expr()?;
        self.ws();
        if self.pos != self.src.len() {
            return self.fail("unexpected text after the expression");
        }
        Ok(e)
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Skips whitespace, comments and line continuations. Most calls find none, so that test is
    /// inlined at each call and the loop is not.
    #[inline]
    pub(super) fn ws(&mut self) {
        if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\\' | b'#')) {
            self.skip_ws();
        }
    }

    pub(super) fn skip_ws(&mut self) {
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

    pub(super) fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("too_deep", format!("nesting deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
        if self.dialect == Dialect::Json {
            return self.atom();
        }
        self.enter()?;
        let e = self.sum();
        self.depth -= 1;
        e
    }

    pub(super) fn sum(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn term(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn unary(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn power(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn atom(&mut self) -> Result<Expr, ParseError> {
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
    pub(super) fn seq(&mut self, close: u8) -> Result<(Vec<Expr>, bool), ParseError> {
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

    pub(super) fn dict(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn ident(&mut self) -> Option<&'a str> {
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

    pub(super) fn name_or_call(&mut self) -> Result<Expr, ParseError> {
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
    pub(super) fn strings(&mut self, raw: bool) -> Result<CompactString, ParseError> {
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

    pub(super) fn string(&mut self, raw: bool) -> Result<CompactString, ParseError> {
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

    pub(super) fn hex(&mut self, n: usize) -> Result<u32, ParseError> {
        let digits = self.rest().get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(d) = digits else {
            return self.fail("bad hex escape");
        };
        self.pos += n;
        u32::from_str_radix(d, 16).or_else(|_| self.fail("bad hex escape"))
    }

    pub(super) fn hex_char(&mut self, n: usize) -> Result<char, ParseError> {
        let v = self.hex(n)?;
        char::from_u32(v).map_or_else(|| self.fail("escape outside Unicode"), Ok)
    }

    pub(super) fn number(&mut self) -> Result<Val, ParseError> {
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
pub(super) fn insert(out: &mut Vec<(Val, Val)>, k: Val, v: Val) {
    match out.iter_mut().find(|(old, _)| py_eq(old, &k)) {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    }
}
