//! A small LaTeX math parser and an equivalence test, modelled on Hugging Face's `math-verify`.
//!
//! The subset: integers, decimals, thousands separators (`1,000` when that is the whole
//! answer), `\frac`/`\dfrac`/`\tfrac` (also `\frac12`), `\sqrt{x}` and `\sqrt[n]{x}`, powers
//! (`x^2`, `x^{10}`), `\pi`, `\infty`, `+ - * / \cdot \times \div`, implicit multiplication
//! (`2x`, `2\pi`, `3(x+1)`), `|x|`, `\sin \cos \tan \ln \log \exp`, percentages, sets `\{..\}`,
//! tuples `(a, b)`, bare lists `a, b`, intervals with open or closed ends (`(-\infty, 3]`) and
//! their unions (`\cup`), and answers written `x = 5`. `\text{..}` (units), `^\circ`, `\left`,
//! `\right`, `$` and spacing commands are dropped.
//!
//! ## Design
//! Parsing is iterative where input controls the length and recursive only to a fixed depth
//! ([`MAX_DEPTH`]); answers longer than [`MAX_LEN`] bytes are refused, so time and stack are
//! bounded whatever the completion. Equivalence is decided numerically, never by a symbolic
//! simplifier: closed-form numbers are evaluated (tracking whether the value is exact), and
//! expressions with variables are evaluated at fixed sample points, which for polynomials is the
//! same test as expanding both sides (two different polynomials of low degree cannot agree on
//! every sample point). The rules for numbers follow `math-verify`: an exact integer on either
//! side is compared exactly; otherwise both sides are rounded to 6 decimal places.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Pow, Signed, ToPrimitive, Zero};
use std::fmt;

/// Longest answer (bytes) the parser accepts.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of groups the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// Why an answer could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// A scalar expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal; `exact` is false for decimals.
    Num {
        /// Its value.
        v: f64,
        /// Written without a decimal point or exponent.
        exact: bool,
        /// The digits of an integer literal longer than f64 holds exactly (over 15 digits), so
        /// that large integers compare exactly; `None` for every other literal.
        digits: Option<Box<str>>,
    },
    /// A variable.
    Var(String),
    /// π.
    Pi,
    /// Positive infinity.
    Inf,
    /// Sum.
    Add(Box<Expr>, Box<Expr>),
    /// Difference.
    Sub(Box<Expr>, Box<Expr>),
    /// Product.
    Mul(Box<Expr>, Box<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Power.
    Pow(Box<Expr>, Box<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// A named function of one argument (`sqrt`, `sin`, `ln`, `abs`, ...).
    Func(&'static str, Box<Expr>),
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number or expression; `percent` when written with `%`.
    Scalar {
        /// The expression.
        expr: Expr,
        /// Written as a percentage.
        percent: bool,
    },
    /// `(a, b, ...)`: ordered.
    Tuple(Vec<Value>),
    /// `\{a, b\}`: unordered, duplicates ignored.
    Set(Vec<Value>),
    /// `a, b` without brackets: compared as a set, or in order against a tuple.
    List(Vec<Value>),
    /// An interval with its ends.
    Interval {
        /// Lower end.
        lo: Expr,
        /// Upper end.
        hi: Expr,
        /// `[` rather than `(`.
        lo_closed: bool,
        /// `]` rather than `)`.
        hi_closed: bool,
    },
    /// A union of intervals (or sets).
    Union(Vec<Value>),
    /// `lhs = rhs`, where lhs is not a lone variable (`x = 5` parses as `5`).
    Equation(Box<Value>, Box<Value>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    Sym(char),
    LBraceLit,
    RBraceLit,
}

/// A token as it is written in LaTeX, for messages.
impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => f.write_str(n),
            Tok::Letter(c) | Tok::Sym(c) => write!(f, "{c}"),
            Tok::Cmd(c) => write!(f, "\\{c}"),
            Tok::LBraceLit => f.write_str("\\{"),
            Tok::RBraceLit => f.write_str("\\}"),
        }
    }
}

/// Drops what carries no mathematical meaning: `$`, `\left`, spacing, `\text{..}` (units),
/// degree marks, a trailing period.
fn clean(s: &str) -> String {
    let mut out = s.trim().to_string();
    for (from, to) in [
        ("\\displaystyle", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\%", "%"),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
        ("\\$", ""),
        ("$", ""),
        ("~", ""),
        ("\\[", ""),
        ("\\]", ""),
        ("\\(", ""),
        ("\\)", ""),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    // `\text{...}`, `\mbox{...}`: units and words, dropped. `\mathrm{..}`, `\mathbf{..}`: kept.
    for cmd in ["\\text", "\\mbox", "\\textbf"] {
        while let Some(i) = out.find(&format!("{cmd}{{")) {
            let open = i + cmd.len();
            let close = match_brace(&out, open).unwrap_or(out.len() - 1);
            out.replace_range(i..=close, "");
        }
    }
    for cmd in ["\\mathrm", "\\mathbf", "\\boldsymbol"] {
        out = out.replace(cmd, "");
    }
    let t = out.trim().trim_end_matches('.').trim();
    // `1,234,567` as a whole answer is one number, not a list.
    if is_thousands(t) {
        return t.replace(',', "");
    }
    t.to_string()
}

fn match_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_thousands(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let int = t.split('.').next().unwrap_or("");
    if t.split('.').count() > 2 || !int.contains(',') {
        return false;
    }
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
        && t.split('.').nth(1).is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The tokens of `s`, each with the column (1-based, in characters) where it starts.
fn lex(s: &str) -> Result<(Vec<Tok>, Vec<usize>), ParseError> {
    let mut toks = Vec::new();
    let mut cols = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if !c.is_whitespace() {
            cols.push(i + 1);
        }
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < cs.len() && cs[i] == '.' && cs[i + 1].is_ascii_digit() {
                i += 1;
                while i < cs.len() && cs[i].is_ascii_digit() {
                    i += 1;
                }
            } else if i < cs.len() && cs[i] == '.' && start < i {
                i += 1; // "2." is 2.0
            }
            toks.push(Tok::Num(cs[start..i].iter().collect()));
        } else if c == '\\' {
            let start = i + 1;
            i += 1;
            while i < cs.len() && cs[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                match cs.get(i) {
                    Some('{') => toks.push(Tok::LBraceLit),
                    Some('}') => toks.push(Tok::RBraceLit),
                    Some(other) => return err(format!("unsupported escape `\\{other}`")),
                    None => return err("dangling backslash"),
                }
                i += 1;
            } else {
                toks.push(Tok::Cmd(cs[start..i].iter().collect()));
            }
        } else if c.is_alphabetic() {
            toks.push(Tok::Letter(c));
            i += 1;
        } else if "+-*/^_(){}[],|=%!".contains(c) {
            toks.push(Tok::Sym(c));
            i += 1;
        } else if c == '·' || c == '×' {
            toks.push(Tok::Sym('*'));
            i += 1;
        } else if c == '−' {
            toks.push(Tok::Sym('-'));
            i += 1;
        } else if c == 'π' {
            toks.push(Tok::Cmd("pi".into()));
            i += 1;
        } else if c == '∞' {
            toks.push(Tok::Cmd("infty".into()));
            i += 1;
        } else {
            return err(format!("unsupported character `{c}` at column {}", i + 1));
        }
    }
    Ok((toks, cols))
}

struct Parser {
    toks: Vec<Tok>,
    /// The column where each token starts in `text`.
    cols: Vec<usize>,
    /// The answer as lexed (after cleaning), which the columns count in.
    text: String,
    pos: usize,
    depth: usize,
}

/// Parses an answer in the supported subset.
pub fn parse(s: &str) -> Result<Value, ParseError> {
    if s.len() > MAX_LEN {
        return err(format!("answer longer than {MAX_LEN} bytes"));
    }
    let cleaned = clean(s);
    if cleaned.is_empty() {
        return err("empty answer");
    }
    let (toks, cols) = lex(&cleaned)?;
    let mut p = Parser { toks, cols, text: cleaned, pos: 0, depth: 0 };
    let v = p.top()?;
    if p.pos != p.toks.len() {
        return Err(p.unexpected(p.pos));
    }
    Ok(v)
}

fn scalar(expr: Expr) -> Value {
    Value::Scalar { expr, percent: false }
}

fn is_cmd(t: Option<&Tok>, name: &str) -> bool {
    matches!(t, Some(Tok::Cmd(c)) if c == name)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// Where token `at` stands, in LaTeX terms: "`_` at column 4 of `x+_2`", or "the end".
    fn describe(&self, at: usize) -> String {
        match (self.toks.get(at), self.cols.get(at)) {
            (Some(t), Some(col)) => format!("`{t}` at column {col} of `{}`", self.text),
            _ => "the end of the answer".into(),
        }
    }

    fn unexpected(&self, at: usize) -> ParseError {
        ParseError(format!("unexpected {}", self.describe(at)))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) { Ok(()) } else { err(format!("expected `{c}`, found {}", self.describe(self.pos))) }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    /// `list ( = list )?`; a lone variable on the left is dropped (`x = 5` is `5`).
    fn top(&mut self) -> Result<Value, ParseError> {
        let lhs = self.list()?;
        if !self.eat('=') {
            return Ok(lhs);
        }
        let rhs = self.list()?;
        match lhs {
            Value::Scalar { expr: Expr::Var(_), .. } => Ok(rhs),
            _ => Ok(Value::Equation(Box::new(lhs), Box::new(rhs))),
        }
    }

    fn list(&mut self) -> Result<Value, ParseError> {
        let mut items = vec![self.union()?];
        while self.eat(',') {
            items.push(self.union()?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one item") } else { Value::List(items) })
    }

    fn union(&mut self) -> Result<Value, ParseError> {
        let mut parts = vec![self.item()?];
        while is_cmd(self.peek(), "cup") || self.peek() == Some(&Tok::Letter('U')) {
            self.pos += 1;
            parts.push(self.item()?);
        }
        Ok(if parts.len() == 1 { parts.pop().expect("one part") } else { Value::Union(parts) })
    }

    /// A bracketed collection (tuple, interval, set) or a scalar expression.
    fn item(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(Tok::LBraceLit) => {
                self.pos += 1;
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() != Some(&Tok::RBraceLit) {
                    items.push(self.union()?);
                    while self.eat(',') {
                        items.push(self.union()?);
                    }
                }
                if self.peek() != Some(&Tok::RBraceLit) {
                    return err("unclosed `\\{`");
                }
                self.pos += 1;
                self.depth -= 1;
                return Ok(Value::Set(items));
            }
            Some(Tok::Sym(open @ ('(' | '['))) if self.top_comma_ahead() => {
                let open = *open;
                self.pos += 1;
                self.enter()?;
                let mut items = vec![self.union()?];
                while self.eat(',') {
                    items.push(self.union()?);
                }
                let close = match self.peek() {
                    Some(Tok::Sym(c @ (')' | ']'))) => *c,
                    _ => return err(format!("expected `)` or `]`, found {}", self.describe(self.pos))),
                };
                self.pos += 1;
                self.depth -= 1;
                if items.len() >= 2 {
                    let interval = items.len() == 2 && (open == '[' || close == ']');
                    if interval {
                        let hi = as_expr(items.pop().expect("two"))?;
                        let lo = as_expr(items.pop().expect("two"))?;
                        return Ok(Value::Interval { lo, hi, lo_closed: open == '[', hi_closed: close == ']' });
                    }
                    return Ok(Value::Tuple(items));
                }
                return err("a bracket with a comma must hold two or more items");
            }
            _ => {}
        }
        let expr = self.expr()?;
        let percent = self.eat('%');
        Ok(Value::Scalar { expr, percent })
    }

    /// Whether the bracket at the cursor holds a comma at its own level: then it is a tuple or
    /// an interval, else a group inside an expression. Deciding by a scan (bounded by
    /// [`MAX_LEN`]) avoids parsing twice, which nested brackets would make exponential.
    fn top_comma_ahead(&self) -> bool {
        let mut depth = 0usize;
        for t in &self.toks[self.pos..] {
            match t {
                Tok::Sym('(' | '[' | '{') | Tok::LBraceLit => depth += 1,
                Tok::Sym(')' | ']' | '}') | Tok::RBraceLit => {
                    depth -= 1;
                    if depth == 0 {
                        return false;
                    }
                }
                Tok::Sym(',') if depth == 1 => return true,
                _ => {}
            }
        }
        false
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.term()?;
        loop {
            if self.eat('+') {
                e = Expr::Add(Box::new(e), Box::new(self.term()?));
            } else if self.eat('-') {
                e = Expr::Sub(Box::new(e), Box::new(self.term()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        loop {
            if self.eat('*') || self.eat_cmd("cdot") || self.eat_cmd("times") {
                e = Expr::Mul(Box::new(e), Box::new(self.unary()?));
            } else if self.eat('/') || self.eat_cmd("div") {
                e = Expr::Div(Box::new(e), Box::new(self.unary()?));
            } else if self.starts_primary() {
                e = Expr::Mul(Box::new(e), Box::new(self.power()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn eat_cmd(&mut self, name: &str) -> bool {
        if is_cmd(self.peek(), name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_)) => self.peek() != Some(&Tok::Letter('U')),
            Some(Tok::Sym('(' | '{')) => true,
            Some(Tok::Cmd(c)) => !matches!(c.as_str(), "cdot" | "times" | "div" | "cup"),
            _ => false,
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        // Signs are iterative so that "------1" cannot exhaust the stack.
        let mut negate = false;
        loop {
            if self.eat('-') {
                negate = !negate;
            } else if !self.eat('+') {
                break;
            }
        }
        let e = self.power()?;
        Ok(if negate { Expr::Neg(Box::new(e)) } else { e })
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.postfix()?;
        if self.eat('^') {
            self.enter()?;
            let exp = if self.peek() == Some(&Tok::Sym('-')) { self.unary()? } else { self.arg()? };
            self.depth -= 1;
            return Ok(Expr::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        while self.eat('!') {
            e = Expr::Func("factorial", Box::new(e));
        }
        Ok(e)
    }

    /// A command or `^` argument: `{...}`, or a single digit, letter or command.
    fn arg(&mut self) -> Result<Expr, ParseError> {
        if let Some(Tok::Num(n)) = self.peek()
            && n.len() > 1
            && !n.contains('.')
        {
            let n = n.clone();
            let (first, rest) = n.split_at(1);
            self.toks[self.pos] = Tok::Num(rest.to_string());
            return Ok(num(first));
        }
        if self.eat('{') {
            self.enter()?;
            let e = self.expr()?;
            self.expect('}')?;
            self.depth -= 1;
            return Ok(e);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return err("unexpected end of answer");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(num(&n)),
            Tok::Letter(c) => Ok(Expr::Var(c.to_string())),
            Tok::Sym('(') | Tok::Sym('{') | Tok::Sym('[') => {
                let close = match tok {
                    Tok::Sym('(') => ')',
                    Tok::Sym('[') => ']',
                    _ => '}',
                };
                self.enter()?;
                let e = self.expr()?;
                self.expect(close)?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::Sym('|') => {
                self.enter()?;
                let e = self.expr()?;
                self.expect('|')?;
                self.depth -= 1;
                Ok(Expr::Func("abs", Box::new(e)))
            }
            Tok::Cmd(c) => self.command(&c),
            _ => Err(self.unexpected(self.pos - 1)),
        }
    }

    fn command(&mut self, c: &str) -> Result<Expr, ParseError> {
        match c {
            "pi" => Ok(Expr::Pi),
            "infty" | "infinity" => Ok(Expr::Inf),
            "frac" => {
                let n = self.arg()?;
                let d = self.arg()?;
                Ok(Expr::Div(Box::new(n), Box::new(d)))
            }
            "sqrt" => {
                let root = if self.eat('[') {
                    let r = self.expr()?;
                    self.expect(']')?;
                    Some(r)
                } else {
                    None
                };
                let x = self.arg()?;
                Ok(match root {
                    None => Expr::Func("sqrt", Box::new(x)),
                    Some(r) => Expr::Pow(Box::new(x), Box::new(Expr::Div(Box::new(num("1")), Box::new(r)))),
                })
            }
            "sin" | "cos" | "tan" | "ln" | "exp" | "log" => {
                let name = match c {
                    "sin" => "sin",
                    "cos" => "cos",
                    "tan" => "tan",
                    "exp" => "exp",
                    _ => "ln",
                };
                let base = if c == "log" && self.eat('_') { Some(self.arg()?) } else { None };
                self.enter()?;
                let x = self.power()?;
                self.depth -= 1;
                let f = Expr::Func(name, Box::new(x));
                Ok(match base {
                    None => f,
                    Some(b) => Expr::Div(Box::new(f), Box::new(Expr::Func("ln", Box::new(b)))),
                })
            }
            other => err(format!("unsupported command `\\{other}`")),
        }
    }
}

fn num(s: &str) -> Expr {
    let exact = !s.contains('.');
    let digits = (exact && s.len() > 15).then(|| s.into());
    Expr::Num { v: s.parse().unwrap_or(f64::NAN), exact, digits }
}

fn as_expr(v: Value) -> Result<Expr, ParseError> {
    match v {
        Value::Scalar { expr, percent: false } => Ok(expr),
        _ => err("an interval end must be a number"),
    }
}

/// Largest result, in bits, of a power computed exactly (about 1.3 million decimal digits,
/// 512 KiB): `2^{1000000}` is compared exactly; a larger power is compared only when its
/// floating-point value stays in range.
pub const MAX_EXACT_BITS: u64 = 1 << 22;

/// Largest `n!` computed exactly (about 36,000 digits).
const MAX_EXACT_FACTORIAL: u64 = 10_000;

/// A number and whether it is exact (no decimal literal, no irrational step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num {
    /// The value.
    pub v: f64,
    /// Exact: built from integers by `+ - * /` and integer powers.
    pub exact: bool,
    /// A step left f64's range: finite operands gave an infinity, or nonzero ones gave zero
    /// (`10^{400}`, `2^{-2000}`). Then `v` is not the expression's value and must not be
    /// compared: two different huge numbers would both read as infinity.
    pub out_of_range: bool,
}

impl Expr {
    /// Evaluates with each variable bound by `var`.
    pub fn eval(&self, var: &dyn Fn(&str) -> f64) -> Num {
        let n = |v: f64, exact: bool| Num { v, exact, out_of_range: false };
        // Whether `v`, computed from finite operands `ops`, left f64's range.
        let lost = |v: f64, ops: &[Num]| {
            ops.iter().any(|o| o.out_of_range)
                || (ops.iter().all(|o| o.v.is_finite())
                    && (v.is_infinite() || (v == 0.0 && ops.iter().all(|o| o.v != 0.0))))
        };
        match self {
            Expr::Num { v, exact, .. } => n(*v, *exact),
            Expr::Var(name) => n(var(name), false),
            Expr::Pi => n(std::f64::consts::PI, false),
            Expr::Inf => n(f64::INFINITY, true),
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) => {
                let (x, y) = (a.eval(var), b.eval(var));
                let v = match self {
                    Expr::Add(..) => x.v + y.v,
                    Expr::Sub(..) => x.v - y.v,
                    Expr::Mul(..) => x.v * y.v,
                    _ => x.v / y.v,
                };
                // A sum or difference reaches zero legitimately (`2 - 2`); only its overflow counts.
                let lost = if matches!(self, Expr::Add(..) | Expr::Sub(..)) {
                    x.out_of_range || y.out_of_range || (x.v.is_finite() && y.v.is_finite() && v.is_infinite())
                } else {
                    lost(v, &[x, y])
                };
                Num { out_of_range: lost, ..n(v, x.exact && y.exact) }
            }
            Expr::Pow(a, b) => {
                let (x, y) = (a.eval(var), b.eval(var));
                let v = x.v.powf(y.v);
                let exact = x.exact && y.exact && (y.v.fract() == 0.0 || v.fract() == 0.0);
                Num { out_of_range: lost(v, &[x]) || y.out_of_range, ..n(v, exact) }
            }
            Expr::Neg(a) => {
                let x = a.eval(var);
                Num { v: -x.v, ..x }
            }
            Expr::Func(f, a) => {
                let x = a.eval(var);
                let v = match *f {
                    "sqrt" => x.v.sqrt(),
                    "sin" => x.v.sin(),
                    "cos" => x.v.cos(),
                    "tan" => x.v.tan(),
                    "ln" => x.v.ln(),
                    "exp" => x.v.exp(),
                    "abs" => x.v.abs(),
                    "factorial" if x.v >= 0.0 && x.v.fract() == 0.0 && x.v <= 170.0 => {
                        (1..=x.v as u64).map(|k| k as f64).product()
                    }
                    _ => f64::NAN,
                };
                let exact = x.exact && matches!(*f, "sqrt" | "abs" | "factorial") && v.fract() == 0.0;
                Num { out_of_range: x.out_of_range || (x.v.is_finite() && v.is_infinite()), ..n(v, exact) }
            }
        }
    }

    /// The exact value of a variable-free expression built from integer literals by `+ - * /`,
    /// integer powers, negation, absolute value and factorial, with integers of any size;
    /// `None` for anything else (a decimal literal, π, a root, a variable, ∞, a division by
    /// zero, or a power whose result would exceed [`MAX_EXACT_BITS`]).
    pub fn exact_value(&self) -> Option<BigRational> {
        let v = match self {
            Expr::Num { exact: true, digits: Some(d), .. } => BigRational::from_integer(d.parse::<BigInt>().ok()?),
            // Up to 15 digits, f64 holds the integer exactly.
            Expr::Num { exact: true, v, digits: None } => BigRational::from_integer(BigInt::from(*v as i64)),
            Expr::Add(a, b) => a.exact_value()? + b.exact_value()?,
            Expr::Sub(a, b) => a.exact_value()? - b.exact_value()?,
            Expr::Mul(a, b) => a.exact_value()? * b.exact_value()?,
            Expr::Div(a, b) => {
                let d = b.exact_value()?;
                if d.is_zero() {
                    return None;
                }
                a.exact_value()? / d
            }
            Expr::Pow(a, b) => {
                let (base, exp) = (a.exact_value()?, b.exact_value()?);
                if !exp.is_integer() {
                    return None;
                }
                let e = exp.to_integer().abs().to_u64()?;
                let bits = base.numer().bits().max(base.denom().bits()).max(1);
                if bits.checked_mul(e)? > MAX_EXACT_BITS || (base.is_zero() && exp.is_negative()) {
                    return None;
                }
                let p = Pow::pow(base, e);
                if exp.is_negative() { p.recip() } else { p }
            }
            Expr::Neg(a) => -a.exact_value()?,
            Expr::Func("abs", a) => a.exact_value()?.abs(),
            Expr::Func("factorial", a) => {
                let x = a.exact_value()?;
                let k = x.is_integer().then(|| x.to_integer().to_u64()).flatten()?;
                if k > MAX_EXACT_FACTORIAL {
                    return None;
                }
                BigRational::from_integer((1..=k).map(BigInt::from).product())
            }
            _ => return None,
        };
        // Every step is bounded, so a chain of huge products cannot take the verifier's time.
        (v.numer().bits().max(v.denom().bits()) <= MAX_EXACT_BITS).then_some(v)
    }

    fn vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Var(v) if !out.contains(v) => out.push(v.clone()),
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) | Expr::Pow(a, b) => {
                a.vars(out);
                b.vars(out);
            }
            Expr::Neg(a) | Expr::Func(_, a) => a.vars(out),
            _ => {}
        }
    }
}

/// Sample values for variables: positive and irrational-looking, so that `sqrt(x)` and `ln x`
/// are defined and accidental agreement of different expressions is vanishingly unlikely.
const SAMPLES: [f64; 7] = [0.713_245_1, 1.418_925_3, 2.236_067_9, 0.377_219_4, 1.902_713_6, 2.903_117_4, 0.529_177_2];

fn round6(x: f64) -> f64 {
    (x * 1e6).round()
}

fn close(x: f64, y: f64, rel: f64) -> bool {
    x == y || (x - y).abs() <= rel * x.abs().max(y.abs())
}

/// Whether two numbers agree under `math-verify`'s rules: an exact integer on either side is
/// compared exactly; otherwise both are rounded to 6 decimal places.
pub fn numbers_equal(a: Num, b: Num) -> bool {
    if a.v.is_nan() || b.v.is_nan() || a.out_of_range || b.out_of_range {
        return false;
    }
    if a.v.is_infinite() || b.v.is_infinite() {
        return a.v == b.v;
    }
    let is_int = |n: Num| n.exact && n.v.fract() == 0.0;
    if is_int(a) || is_int(b) {
        return close(a.v, b.v, 1e-12);
    }
    close(a.v, b.v, 1e-12) || (a.v.abs() < 1e12 && round6(a.v) == round6(b.v))
}

fn scalars_equal(a: &Expr, b: &Expr) -> bool {
    let mut vars = Vec::new();
    a.vars(&mut vars);
    b.vars(&mut vars);
    if vars.is_empty() {
        let (x, y) = (a.eval(&|_| f64::NAN), b.eval(&|_| f64::NAN));
        let in_f64 = numbers_equal(x, y);
        // Integers and fractions compare exactly, whatever their size. Only where it can change
        // the verdict: a match in f64 may be two numbers rounded to one double, and a value out
        // of f64's range has no f64 verdict; a mismatch in range is a mismatch.
        if (in_f64 || x.out_of_range || y.out_of_range)
            && x.exact
            && y.exact
            && let (Some(p), Some(q)) = (a.exact_value(), b.exact_value())
        {
            return p == q;
        }
        return in_f64;
    }
    // Polynomial identity by evaluation: compare at three points, each variable shifted.
    let mut compared = 0;
    for k in 0..3 {
        let env = |name: &str| {
            let i = vars.iter().position(|v| v == name).unwrap_or(0);
            SAMPLES[(i + 2 * k) % SAMPLES.len()] + i as f64 * 0.173
        };
        let (x, y) = (a.eval(&env), b.eval(&env));
        if x.out_of_range || y.out_of_range {
            return false;
        }
        let (x, y) = (x.v, y.v);
        if x.is_nan() && y.is_nan() {
            continue;
        }
        if !close(x, y, 1e-9) {
            return false;
        }
        compared += 1;
    }
    compared > 0
}

fn with_percent(expr: &Expr, percent: bool) -> Vec<Expr> {
    if percent {
        vec![expr.clone(), Expr::Div(Box::new(expr.clone()), Box::new(num("100")))]
    } else {
        vec![expr.clone()]
    }
}

/// Whether `answer` is equivalent to `gold`.
pub fn equivalent(gold: &Value, answer: &Value) -> bool {
    use Value::*;
    match (gold, answer) {
        (Scalar { expr: a, percent: pa }, Scalar { expr: b, percent: pb }) => {
            with_percent(a, *pa).iter().any(|x| with_percent(b, *pb).iter().any(|y| scalars_equal(x, y)))
        }
        (Tuple(a), Tuple(b)) | (Tuple(a), List(b)) | (List(a), Tuple(b)) => ordered(a, b),
        (Set(a) | List(a), Set(b) | List(b)) => same_set(a, b),
        (Set(a), s @ Scalar { .. }) | (s @ Scalar { .. }, Set(a)) => a.len() == 1 && equivalent(&a[0], s),
        (Interval { lo, hi, lo_closed, hi_closed }, Interval { lo: lo2, hi: hi2, lo_closed: lc2, hi_closed: hc2 }) => {
            lo_closed == lc2 && hi_closed == hc2 && scalars_equal(lo, lo2) && scalars_equal(hi, hi2)
        }
        (Interval { .. }, Tuple(t)) | (Tuple(t), Interval { .. }) => {
            let i = if matches!(gold, Interval { .. }) { gold } else { answer };
            match (i, t.as_slice()) {
                (Interval { lo, hi, lo_closed: false, hi_closed: false }, [a, b]) => {
                    equivalent(&scalar(lo.clone()), a) && equivalent(&scalar(hi.clone()), b)
                }
                _ => false,
            }
        }
        (Union(a), Union(b)) => same_set(a, b),
        (Equation(l1, r1), Equation(l2, r2)) => {
            (equivalent(l1, l2) && equivalent(r1, r2)) || (equivalent(l1, r2) && equivalent(r1, l2))
        }
        _ => false,
    }
}

fn ordered(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equivalent(x, y))
}

fn same_set(a: &[Value], b: &[Value]) -> bool {
    a.iter().all(|x| b.iter().any(|y| equivalent(x, y))) && b.iter().all(|y| a.iter().any(|x| equivalent(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(g: &str, a: &str) -> bool {
        equivalent(&parse(g).unwrap(), &parse(a).unwrap())
    }

    #[test]
    fn numbers_beyond_f64_compare_exactly_or_not_at_all() {
        // Each of these scored 1 when both sides were rounded to f64 (to infinity, to zero, or
        // to the nearest double).
        for (g, a) in [
            ("2^{1000000}", "2^{1000001}"),
            ("10^{400}", "10^{401}"),
            ("2^{10000}", "3^{10000}"),
            ("10^{400}", "\\infty"),
            ("10^{-400}", "0"),
            ("2^{64}", "18446744073709551617"),
            ("2^{53}+1", "2^{53}"),
            ("123456789012345678901", "123456789012345678902"),
            ("2^{10^{7}}", "2^{10^{7}+1}"),
            ("0.5^{2000}", "0"),
            ("x^{10000}", "x^{10001}"),
            ("2^{4000000} \\cdot 2^{4000000} \\cdot 2^{4000000}", "2^{12000001}"),
        ] {
            assert!(!eq(g, a), "{g} = {a}");
            assert!(!eq(a, g), "{a} = {g}");
        }
        for (g, a) in [
            ("2^{64}", "18446744073709551616"),
            ("10^{400}", "10^{400}"),
            ("\\frac{2^{100}}{2^{99}}", "2"),
            ("10^{-400} \\cdot 10^{400}", "1"),
            ("\\frac{1}{3}", "0.333333"),
            ("20!", "2432902008176640000"),
        ] {
            assert!(eq(g, a), "{g} != {a}");
        }
    }

    #[test]
    fn parse_errors_name_the_token_as_written_and_its_column() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(e("x+_2"), "unexpected `_` at column 3 of `x+_2`");
        assert_eq!(e("(1, 2"), "expected `)` or `]`, found the end of the answer");
        assert_eq!(e("\\frac{1}{2}}"), "unexpected `}` at column 12 of `\\frac{1}{2}}`");
        assert_eq!(e("\\sqrt{2"), "expected `}`, found the end of the answer");
        assert_eq!(e("1 \\{ 2"), "unexpected `\\{` at column 3 of `1 \\{ 2`");
        assert_eq!(e("2 # 3"), "unsupported character `#` at column 3");
    }

    #[test]
    fn fractions_roots_powers_pi() {
        assert!(eq(r"\frac{1}{2}", "0.5"));
        assert!(eq(r"\dfrac{3}{4}", "3/4"));
        assert!(eq(r"\frac12", r"\frac{2}{4}"));
        assert!(eq(r"-\frac{1}{2}", r"\frac{-1}{2}"));
        assert!(eq(r"\sqrt{8}", r"2\sqrt{2}"));
        assert!(eq(r"\sqrt[3]{27}", "3"));
        assert!(eq("2^{10}", "1024"));
        assert!(eq(r"\pi/2", r"\frac{\pi}{2}"));
        assert!(eq(r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"));
        assert!(!eq(r"\frac{1}{2}", r"\frac{1}{3}"));
        assert!(!eq("2^{10}", "1000"));
    }

    #[test]
    fn number_rules_follow_math_verify() {
        assert!(eq(r"\frac{1}{3}", "0.333333"));
        assert!(!eq(r"\frac{1}{3}", "0.333"));
        assert!(eq(r"\frac{2}{3}", "0.666667"));
        assert!(!eq(r"\frac{2}{3}", "0.666666"));
        assert!(eq(r"\pi", "3.141593"));
        assert!(!eq(r"\pi", "3.14"));
        assert!(!eq("3", "3.0000001"), "an exact integer is compared exactly");
        assert!(eq("3.0", "3.0000001"));
        assert!(eq("2", "2.0"));
        assert!(!eq("123456789", "123456789.4"));
        assert!(eq("1000", "1,000"));
        assert!(eq("1234567.5", "1,234,567.5"));
    }

    #[test]
    fn percent_matches_either_reading() {
        assert!(eq(r"50\%", "0.5"));
        assert!(eq(r"50\%", "50"));
        assert!(eq("0.5", "50%"));
        assert!(!eq(r"50\%", "5"));
    }

    #[test]
    fn sets_tuples_lists() {
        assert!(eq(r"\{1,2\}", r"\{2,1\}"));
        assert!(eq(r"\{1,2\}", r"\{1,2,2\}"));
        assert!(!eq(r"\{1,2\}", r"\{1,3\}"));
        assert!(!eq("(1,2)", "(2,1)"));
        assert!(eq("(1,2)", "1,2"));
        assert!(eq("1,2", "2,1"));
        assert!(eq(r"\{1\}", "1"));
        assert!(eq(r"\{\frac{1}{2}, -3\}", r"-3, 0.5"));
    }

    #[test]
    fn intervals_keep_their_ends() {
        assert!(eq("(1,2]", "(1,2]"));
        assert!(!eq("(1,2]", "(1,2)"));
        assert!(!eq("[1,2]", "(1,2)"));
        assert!(!eq("(1,2)", "[1,2)"));
        assert!(eq(r"(-\infty, 3)", r"\left(-\infty,3\right)"));
        assert!(eq(r"(-\infty, 3) \cup (4, 5]", r"(4,5] \cup (-\infty,3)"));
        assert!(!eq(r"(-\infty, 3) \cup (4, 5]", r"(-\infty,3) \cup [4,5]"));
        assert!(eq(r"[\frac{1}{2}, \infty)", "[0.5, \\infty)"));
    }

    #[test]
    fn polynomials_by_evaluation() {
        assert!(eq("x^2+2x+1", "(x+1)^2"));
        assert!(eq("x^2-1", "(x-1)(x+1)"));
        assert!(!eq("x^2-1", "(x-1)(x-1)"));
        assert!(eq("a+b", "b+a"));
        assert!(eq(r"\frac{x}{2}", "0.5x"));
        assert!(!eq("x", "y"));
        assert!(eq("2xy", "2 y x"));
        assert!(eq("x^3 - 6x^2 + 11x - 6", "(x-1)(x-2)(x-3)"));
    }

    #[test]
    fn answers_with_units_assignment_and_decoration() {
        assert!(eq("5", "x=5"));
        assert!(eq("5", r"5\text{ cm}"));
        assert!(eq("10", r"10^\circ"));
        assert!(eq("10", "$10$."));
        assert!(eq("y = 2x + 1", "y = 1 + 2x"));
        assert!(eq(r"\infty", r"\infty"));
    }

    #[test]
    fn bad_input_is_a_parse_error_not_a_panic() {
        assert!(parse("").is_err());
        assert!(parse(r"\frac{1}{").is_err());
        assert!(parse(r"\unknown{3}").is_err());
        assert!(parse(&"(".repeat(1000)).is_err());
        assert!(parse(&format!("{}1{}", "{".repeat(500), "}".repeat(500))).is_err());
        assert!(parse(&"1+".repeat(5000)).is_err(), "too long");
        assert!(parse(&"-".repeat(2000)).is_err());
        assert!(parse("(1,2").is_err());
        assert!(parse("nan").is_ok(), "letters are variables");
        assert!(!eq("1", "0/0"));
    }
}
