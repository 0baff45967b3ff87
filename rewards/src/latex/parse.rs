//! The recursive-descent parser: answers (lists, relations, sets, intervals, matrices) over
//! scalar expressions.

use super::compare::is_name;
use super::lex::{self, Tok};
use super::{Expr, MAX_DEPTH, MAX_LEN, ParseError, Rel, Value, err};
use num_bigint::BigInt;

struct Parser {
    toks: Vec<Tok>,
    /// The column where each token starts in `text`.
    cols: Vec<usize>,
    /// The answer as lexed (after cleaning), which the columns count in.
    text: String,
    pos: usize,
    depth: usize,
    /// Sums read so far: at most [`MAX_SUMS`], as nested sums multiply the evaluation's work.
    sums: usize,
    /// Open `|...|` around the cursor: inside one, a `|` after a factor closes it; outside,
    /// it opens a factor (`2|x|` is 2·|x|).
    abs: usize,
}

/// Most `\sum` in one answer.
const MAX_SUMS: usize = 2;

/// Parses an answer in the supported subset.
pub fn parse(s: &str) -> Result<Value, ParseError> {
    if s.len() > MAX_LEN {
        return err(format!("answer longer than {MAX_LEN} bytes"));
    }
    if let Some(words) = lex::whole_text(s) {
        // `\text{13}` is the number 13; `\text{Evelyn}` is a word.
        if words.bytes().any(|b| b.is_ascii_digit())
            && let Ok(v) = parse(words)
        {
            return Ok(v);
        }
        let key = text_key(words);
        if !key.is_empty() {
            return Ok(Value::Text(key));
        }
    }
    let cleaned = lex::clean(s);
    if cleaned.is_empty() {
        return err("empty answer");
    }
    let (toks, cols) = lex::lex(&cleaned)?;
    let mut p = Parser { toks, cols, text: cleaned, pos: 0, depth: 0, sums: 0, abs: 0 };
    let v = p.top()?;
    if p.pos != p.toks.len() {
        return Err(p.unexpected(p.pos));
    }
    Ok(v)
}

/// A word answer as compared: lowercase, no spaces, a choice letter without its brackets.
pub(super) fn text_key(words: &str) -> String {
    let t: String = words.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    match t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) if !inner.is_empty() => inner.to_string(),
        _ => t,
    }
}

pub(super) fn scalar(expr: Expr) -> Value {
    Value::Scalar { expr, percent: false }
}

fn is_cmd(t: Option<&Tok>, name: &str) -> bool {
    matches!(t, Some(Tok::Cmd(c)) if c == name)
}

fn one_or(mut items: Vec<Value>, many: fn(Vec<Value>) -> Value) -> Value {
    if items.len() == 1 { items.pop().expect("one item") } else { many(items) }
}

/// Most expression nodes a computed matrix may hold: products of matrices grow their cells.
const MAX_MATRIX_NODES: usize = 100_000;

/// Matrix environments (a `vmatrix` is a determinant, a number, and is not supported).
const MATRICES: [&str; 6] = ["pmatrix", "bmatrix", "Bmatrix", "matrix", "smallmatrix", "array"];

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

    /// `group (; group)*`: semicolons separate answers, each of which may be a list.
    fn top(&mut self) -> Result<Value, ParseError> {
        let mut groups = vec![self.group()?];
        while self.eat(';') {
            if self.peek().is_some() {
                groups.push(self.group()?);
            }
        }
        Ok(one_or(groups, Value::List))
    }

    /// `relation (, relation)*`; empty items ("19, 46, and 82") are skipped.
    fn group(&mut self) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        loop {
            if !matches!(self.peek(), None | Some(Tok::Sym(',' | ';'))) {
                items.push(self.relation()?);
            }
            if !self.eat(',') {
                break;
            }
        }
        if items.is_empty() {
            return Err(self.unexpected(self.pos));
        }
        Ok(one_or(items, Value::List))
    }

    /// A side, or a chain of sides joined by relations; `x \in S` is `S`.
    fn relation(&mut self) -> Result<Value, ParseError> {
        let first = self.union()?;
        if is_cmd(self.peek(), "in") {
            self.pos += 1;
            return self.union();
        }
        let mut sides = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(r)) = self.peek().cloned() {
            self.pos += 1;
            let r = match r {
                Rel::Approx if !ops.is_empty() => {
                    // `x = 1/3 \approx 0.33`: what follows an approximation is not the answer.
                    self.skip_side(false);
                    break;
                }
                Rel::Approx => Rel::Eq,
                r => r,
            };
            let at = self.pos;
            match self.union() {
                Ok(side) => {
                    sides.push(side);
                    ops.push(r);
                }
                // A chain of equalities is read for its ends; a middle step that does not parse
                // (`1 = \zzz = x = 0`) is skipped when another `=` follows.
                Err(e) => {
                    self.pos = at;
                    if !(r == Rel::Eq && ops.iter().all(|o| *o == Rel::Eq) && self.skip_side(true)) {
                        return Err(e);
                    }
                }
            }
        }
        if ops.is_empty() {
            return Ok(sides.pop().expect("one side"));
        }
        if ops.len() >= 2 && ops.iter().all(|o| *o == Rel::Eq) {
            let last = sides.pop().expect("sides");
            let first = sides.swap_remove(0);
            return Ok(if is_name(&first) { Value::Relation(vec![first, last], vec![Rel::Eq]) } else { last });
        }
        Ok(Value::Relation(sides, ops))
    }

    /// Moves past the tokens of one side: to the next `=` at this level when `to_eq` (true if
    /// there is one), else to the end of this relation.
    fn skip_side(&mut self, to_eq: bool) -> bool {
        let mut depth = 0usize;
        let mut i = self.pos;
        while let Some(t) = self.toks.get(i) {
            match t {
                Tok::Sym('(' | '[' | '{') | Tok::LBraceLit | Tok::Begin(_) => depth += 1,
                Tok::Sym(')' | ']' | '}') | Tok::RBraceLit | Tok::End(_) => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                Tok::Sym(',' | ';') if depth == 0 => break,
                Tok::Rel(Rel::Eq) if depth == 0 && to_eq => {
                    self.pos = i;
                    return true;
                }
                _ => {}
            }
            i += 1;
        }
        if to_eq {
            return false;
        }
        self.pos = i;
        true
    }

    fn union(&mut self) -> Result<Value, ParseError> {
        let mut parts = vec![self.item()?];
        while is_cmd(self.peek(), "cup") || self.peek() == Some(&Tok::Letter('U')) {
            self.pos += 1;
            parts.push(self.item()?);
        }
        Ok(one_or(parts, Value::Union))
    }

    /// Items up to the closing token, separated by `,` or `;`.
    fn items(&mut self, close: &Tok) -> Result<Vec<Value>, ParseError> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() != Some(close) {
            items.push(self.relation()?);
            while self.eat(',') || self.eat(';') {
                items.push(self.relation()?);
            }
        }
        if self.peek() != Some(close) {
            return err(format!("expected `{close}`, found {}", self.describe(self.pos)));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(items)
    }

    /// A bracketed collection (tuple, interval, set), a matrix, or a scalar expression.
    fn item(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(Tok::LBraceLit) => {
                self.pos += 1;
                return Ok(Value::Set(self.items(&Tok::RBraceLit)?));
            }
            Some(Tok::Sym('{')) if self.separator_ahead() => {
                self.pos += 1;
                return Ok(Value::Set(self.items(&Tok::Sym('}'))?));
            }
            Some(Tok::Begin(_)) => return self.matrix_expr(),
            Some(Tok::Sym('(' | '[')) if matches!(self.toks.get(self.pos + 1), Some(Tok::Begin(_))) => {
                let close = if self.peek() == Some(&Tok::Sym('(')) { ')' } else { ']' };
                self.pos += 1;
                self.enter()?;
                let m = self.matrix_expr()?;
                self.expect(close)?;
                self.depth -= 1;
                return Ok(m);
            }
            Some(Tok::Sym(open @ ('(' | '['))) if self.separator_ahead() => {
                let open = *open;
                self.pos += 1;
                self.enter()?;
                let mut items = vec![self.relation()?];
                while self.eat(',') || self.eat(';') {
                    items.push(self.relation()?);
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
        // `2 \begin{pmatrix}..\end{pmatrix}`: a number times a matrix.
        if matches!(self.peek(), Some(Tok::Begin(_))) {
            let Value::Matrix(m) = self.matrix_expr()? else { unreachable!("matrix_expr gives a matrix") };
            let scaled = m
                .into_iter()
                .map(|row| row.into_iter().map(|c| Expr::Mul(Box::new(expr.clone()), Box::new(c))).collect())
                .collect();
            return Ok(Value::Matrix(scaled));
        }
        let percent = self.eat('%');
        Ok(Value::Scalar { expr, percent })
    }

    /// Whether the bracket at the cursor holds a `,` or `;` at its own level: then it is a
    /// tuple, an interval or a set, else a group inside an expression. Deciding by a scan
    /// (bounded by [`MAX_LEN`]) avoids parsing twice, which nested brackets would make
    /// exponential.
    fn separator_ahead(&self) -> bool {
        let mut depth = 0usize;
        for t in &self.toks[self.pos..] {
            match t {
                Tok::Sym('(' | '[' | '{') | Tok::LBraceLit | Tok::Begin(_) => depth += 1,
                Tok::Sym(')' | ']' | '}') | Tok::RBraceLit | Tok::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return false;
                    }
                }
                Tok::Sym(',' | ';') if depth == 1 => return true,
                _ => {}
            }
        }
        false
    }

    /// A matrix, or matrices joined by `+`, `-` and products, computed.
    fn matrix_expr(&mut self) -> Result<Value, ParseError> {
        let mut m = self.matrix()?;
        loop {
            let product = self.eat('*')
                || self.eat_cmd("cdot")
                || self.eat_cmd("times")
                || matches!(self.peek(), Some(Tok::Begin(_)));
            if !product {
                if self.eat('+') {
                    m = combine(m, self.matrix()?, |a, b| Expr::Add(Box::new(a), Box::new(b)))?;
                    continue;
                }
                if self.eat('-') {
                    m = combine(m, self.matrix()?, |a, b| Expr::Sub(Box::new(a), Box::new(b)))?;
                    continue;
                }
                return Ok(Value::Matrix(m));
            }
            m = multiply(&m, &self.matrix()?)?;
            if m.iter().flatten().map(Expr::size).sum::<usize>() > MAX_MATRIX_NODES {
                return err("matrix product too large");
            }
        }
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}`.
    fn matrix(&mut self) -> Result<Vec<Vec<Expr>>, ParseError> {
        let env = match self.peek() {
            Some(Tok::Begin(env)) if MATRICES.contains(&env.as_str()) => env.clone(),
            Some(Tok::Begin(env)) => return err(format!("unsupported environment `{env}`")),
            _ => return err(format!("expected a matrix, found {}", self.describe(self.pos))),
        };
        self.pos += 1;
        self.enter()?;
        let mut rows: Vec<Vec<Expr>> = vec![Vec::new()];
        loop {
            match self.peek() {
                Some(Tok::End(e)) if *e == env => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::RowSep) => {
                    self.pos += 1;
                    rows.push(Vec::new());
                }
                Some(Tok::Sym('&')) => {
                    self.pos += 1;
                }
                None => return err(format!("`\\begin{{{env}}}` without `\\end{{{env}}}`")),
                _ => {
                    let cell = self.expr()?;
                    rows.last_mut().expect("a row").push(cell);
                }
            }
        }
        self.depth -= 1;
        rows.retain(|r| !r.is_empty());
        let width = rows.first().map_or(0, Vec::len);
        if width == 0 || rows.iter().any(|r| r.len() != width) {
            return err(format!("a `{env}` needs rows of one length"));
        }
        Ok(rows)
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.term()?;
        loop {
            if self.eat('+') {
                e = Expr::Add(Box::new(e), Box::new(self.term()?));
            } else if self.eat('-') {
                e = Expr::Sub(Box::new(e), Box::new(self.term()?));
            } else if self.eat('±') {
                e = Expr::PlusMinus(Box::new(e), Box::new(self.term()?));
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
            } else if self.eat('/') || self.eat(':') || self.eat_cmd("div") {
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
            Some(Tok::Sym('|')) => self.abs == 0,
            Some(Tok::Cmd(c)) => !matches!(c.as_str(), "cdot" | "times" | "div" | "cup" | "in"),
            _ => false,
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        // Signs are iterative so that "------1" cannot exhaust the stack.
        let mut negate = false;
        let mut plus_minus = false;
        loop {
            if self.eat('-') {
                negate = !negate;
            } else if self.eat('±') {
                plus_minus = true;
            } else if !self.eat('+') {
                break;
            }
        }
        let mut e = self.power()?;
        if negate {
            e = Expr::Neg(Box::new(e));
        }
        if plus_minus {
            e = Expr::PlusMinus(Box::new(num("0")), Box::new(e));
        }
        Ok(e)
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.postfix()?;
        if self.eat('^') {
            let exp = self.exponent()?;
            return Ok(Expr::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn exponent(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let exp = if self.peek() == Some(&Tok::Sym('-')) { self.unary()? } else { self.arg()? };
        self.depth -= 1;
        Ok(exp)
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
            Tok::Num(n) if self.peek() == Some(&Tok::Sym('_')) => self.based(&n),
            Tok::Num(n) => Ok(num(&n)),
            Tok::Letter(c) => self.subscripted(c.to_string()),
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
                self.abs += 1;
                let e = self.expr();
                self.abs -= 1;
                let e = e?;
                self.expect('|')?;
                self.depth -= 1;
                Ok(Expr::Func("abs", Box::new(e)))
            }
            Tok::Cmd(c) => self.command(&c),
            _ => Err(self.unexpected(self.pos - 1)),
        }
    }

    /// `204_5`: digits in a base from 2 to 10.
    fn based(&mut self, digits: &str) -> Result<Expr, ParseError> {
        self.pos += 1; // `_`
        let base = match self.arg()? {
            Expr::Num { v, exact: true, .. } if (2.0..=10.0).contains(&v) => v as u32,
            _ => return err(format!("`{digits}_...`: a base must be an integer from 2 to 10")),
        };
        let value = (!digits.contains('.'))
            .then(|| BigInt::parse_bytes(digits.as_bytes(), base))
            .flatten()
            .ok_or_else(|| ParseError(format!("`{digits}` is not a number in base {base}")))?;
        Ok(num(&value.to_string()))
    }

    /// A letter and its subscript: `x_1` and `x_{1}` are the variable `x_1`; `a_{n-1}` is an
    /// unknown for each value of `n - 1`.
    fn subscripted(&mut self, name: String) -> Result<Expr, ParseError> {
        if !self.eat('_') {
            return Ok(Expr::Var(name));
        }
        let index = self.arg()?;
        Ok(match index {
            Expr::Num { v, exact: true, .. } => Expr::Var(format!("{name}_{v}")),
            other => Expr::Indexed(name, Box::new(other)),
        })
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
            "sum" => self.sum(),
            // Decorations of a name: `\vec{v}` is `v`.
            "vec" | "overline" | "overrightarrow" | "hat" | "bar" | "tilde" | "widehat" | "underline" | "mathbb"
            | "mathcal" => self.arg(),
            _ => match function(c) {
                Some(name) => self.function(c, name),
                None => err(format!("unsupported command `\\{c}`")),
            },
        }
    }

    /// A function and its argument: `\sin x`, `\sin^2(x)` (the square of the sine),
    /// `\sin^{-1} x` (the inverse), `\log_2 8`.
    fn function(&mut self, c: &str, name: &'static str) -> Result<Expr, ParseError> {
        let base = if c == "log" && self.eat('_') { Some(self.arg()?) } else { None };
        let mut power = if self.eat('^') { Some(self.exponent()?) } else { None };
        let mut name = name;
        if let Some(Expr::Neg(one)) = &power
            && matches!(**one, Expr::Num { v: 1.0, .. })
            && let Some(inverse) = inverse(name)
        {
            name = inverse;
            power = None;
        }
        self.enter()?;
        // `\sin 2x` is sin(2x) and `\sin \pi x` is sin(πx): an argument without brackets runs
        // over the implicit product that follows, up to an operator or another function;
        // `\sin(x) y` is sin(x)·y.
        let bracketed = self.peek() == Some(&Tok::Sym('('));
        let mut x = self.power()?;
        while !bracketed
            && self.starts_primary()
            && !matches!(self.peek(), Some(Tok::Sym('(' | '{' | '|')))
            && !matches!(self.peek(), Some(Tok::Cmd(c)) if function(c).is_some() || c == "sum")
        {
            x = Expr::Mul(Box::new(x), Box::new(self.power()?));
        }
        self.depth -= 1;
        let mut f = Expr::Func(name, Box::new(x));
        if let Some(b) = base {
            f = Expr::Div(Box::new(f), Box::new(Expr::Func("ln", Box::new(b))));
        }
        Ok(match power {
            Some(p) => Expr::Pow(Box::new(f), Box::new(p)),
            None => f,
        })
    }

    /// `\sum_{k=lo}^{hi} body`, where the body is the product that follows.
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let bad = || ParseError("a sum must be written `\\sum_{k=a}^{b} ...`".into());
        self.sums += 1;
        if self.sums > MAX_SUMS {
            return err(format!("more than {MAX_SUMS} sums in one answer"));
        }
        if !(self.eat('_') && self.eat('{')) {
            return Err(bad());
        }
        let Some(Tok::Letter(var)) = self.peek().cloned() else { return Err(bad()) };
        self.pos += 1;
        if self.peek() != Some(&Tok::Rel(Rel::Eq)) {
            return Err(bad());
        }
        self.pos += 1;
        self.enter()?;
        let lo = self.expr()?;
        self.expect('}')?;
        if !self.eat('^') {
            return Err(bad());
        }
        let hi = self.arg()?;
        let body = self.term()?;
        self.depth -= 1;
        Ok(Expr::Sum { var: var.to_string(), lo: Box::new(lo), hi: Box::new(hi), body: Box::new(body) })
    }
}

/// The evaluator's name of a LaTeX function command.
fn function(c: &str) -> Option<&'static str> {
    Some(match c {
        "sin" => "sin",
        "cos" => "cos",
        "tan" => "tan",
        "sec" => "sec",
        "csc" => "csc",
        "cot" => "cot",
        "arcsin" => "asin",
        "arccos" => "acos",
        "arctan" => "atan",
        "sinh" => "sinh",
        "cosh" => "cosh",
        "tanh" => "tanh",
        "exp" => "exp",
        "ln" | "log" => "ln",
        _ => return None,
    })
}

fn inverse(f: &str) -> Option<&'static str> {
    Some(match f {
        "sin" => "asin",
        "cos" => "acos",
        "tan" => "atan",
        _ => return None,
    })
}

fn combine(a: Vec<Vec<Expr>>, b: Vec<Vec<Expr>>, op: fn(Expr, Expr) -> Expr) -> Result<Vec<Vec<Expr>>, ParseError> {
    if a.len() != b.len() || a[0].len() != b[0].len() {
        return err("matrices of different shapes cannot be added");
    }
    Ok(a.into_iter().zip(b).map(|(r, s)| r.into_iter().zip(s).map(|(x, y)| op(x, y)).collect()).collect())
}

fn multiply(a: &[Vec<Expr>], b: &[Vec<Expr>]) -> Result<Vec<Vec<Expr>>, ParseError> {
    if a[0].len() != b.len() {
        return err("matrices of these shapes cannot be multiplied");
    }
    // Each cell's sum is a balanced tree, so its depth (and the evaluator's recursion) grows
    // with the logarithm of the width, not the width.
    let cell = |i: usize, j: usize| {
        let mut terms: Vec<Expr> =
            (0..b.len()).map(|k| Expr::Mul(Box::new(a[i][k].clone()), Box::new(b[k][j].clone()))).collect();
        while terms.len() > 1 {
            let mut next = Vec::with_capacity(terms.len().div_ceil(2));
            let mut it = terms.into_iter();
            while let Some(x) = it.next() {
                next.push(match it.next() {
                    Some(y) => Expr::Add(Box::new(x), Box::new(y)),
                    None => x,
                });
            }
            terms = next;
        }
        terms.pop().expect("a matrix has a column")
    };
    Ok((0..a.len()).map(|i| (0..b[0].len()).map(|j| cell(i, j)).collect()).collect())
}

pub(super) fn num(s: &str) -> Expr {
    let exact = !s.contains('.');
    // Decimals keep their digits too: `994908.000000000001` is not the integer 994908, which
    // f64 cannot tell.
    let digits = (!exact || s.len() > 15).then(|| s.into());
    Expr::Num { v: s.parse().unwrap_or(f64::NAN), exact, digits }
}

fn as_expr(v: Value) -> Result<Expr, ParseError> {
    match v {
        Value::Scalar { expr, percent: false } => Ok(expr),
        _ => err("an interval end must be a number"),
    }
}
