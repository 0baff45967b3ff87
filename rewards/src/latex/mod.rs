//! A LaTeX math parser and an equivalence test, modelled on Hugging Face's `math-verify` and
//! checked against its own test suite (`rewards/data/math_verify.jsonl`).
//!
//! The subset:
//! - numbers: integers of any size, decimals, thousands separators (`1,000` when that is the
//!   whole answer, `14{,}916`), base subscripts (`204_5`), percentages (`28\%`, `28 percent`);
//! - expressions: `\frac` (also `\dfrac`, `\tfrac`, `\cfrac`, `\frac12`), `\sqrt{x}`,
//!   `\sqrt[n]{x}`, powers, `\pi`, `\infty`, `+ - * / : \cdot \times \div`, `\pm`, implicit
//!   multiplication (`2x`, `3(x+1)`), `|x|`, `n!`, the trigonometric, hyperbolic and
//!   logarithmic functions (also `\sin^2 x`, `\sin^{-1} x`), subscripted variables (`x_1`,
//!   `a_{n-1}`) and `\sum_{k=a}^{b}`;
//! - structures: sets `\{..\}` and `{..}`, tuples `(a, b)` and `(a; b)`, lists `a, b` and
//!   `a; b` (also joined by "and"/"or"), intervals with open or closed ends and their unions
//!   (`\cup`), matrices (`pmatrix`, `bmatrix`, `array`, with `+` and products), relations and
//!   their chains (`= < > \le \ge \neq \approx`, `x \in S`), and word answers (`\text{Evelyn}`).
//!
//! `\text{..}` beside math (units), `^\circ`, `\left`, `\right`, `$` and spacing commands are
//! dropped. An unknown command is a parse error that names it.
//!
//! ## Design
//! Parsing is iterative where input controls the length and recursive only to a fixed depth
//! ([`MAX_DEPTH`]); answers longer than [`MAX_LEN`] bytes are refused, so time and stack are
//! bounded whatever the completion. Equivalence is decided numerically, never by a symbolic
//! simplifier: closed-form numbers are evaluated (tracking whether the value is exact, and
//! exactly with big rationals where f64 could decide wrongly), and expressions with variables
//! are evaluated at fixed sample points, which for polynomials is the same test as expanding
//! both sides (two different polynomials of low degree cannot agree on every sample point).
//! The rules for numbers follow `math-verify`: an exact integer on either side is compared
//! exactly; otherwise both sides are rounded to [`Rules::precision`] decimal places.

mod compare;
mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

pub use compare::{Rules, equivalent, equivalent_with, numbers_equal};
pub use eval::{MAX_EXACT_BITS, Num};
pub use parse::parse;

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
        /// The literal as written, for a decimal or an integer longer than f64 holds exactly
        /// (over 15 digits), so that it compares exactly; `None` for short integers.
        digits: Option<Box<str>>,
    },
    /// A variable (`x`, `x_1`).
    Var(String),
    /// A variable with a subscript that is an expression (`a_{n-1}`): a different unknown for
    /// each value of the subscript.
    Indexed(String, Box<Expr>),
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
    /// `a \pm b`: two values. Answers holding it are expanded into both before comparison.
    PlusMinus(Box<Expr>, Box<Expr>),
    /// `\sum_{var=lo}^{hi} body`.
    Sum {
        /// The index variable.
        var: String,
        /// First index.
        lo: Box<Expr>,
        /// Last index.
        hi: Box<Expr>,
        /// The summand.
        body: Box<Expr>,
    },
}

/// A relation between two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `=`
    Eq,
    /// `\neq`
    Ne,
    /// `<`
    Lt,
    /// `\le`
    Le,
    /// `>`
    Gt,
    /// `\ge`
    Ge,
    /// `\approx`: read as `=` when alone, and ends a chain otherwise (`x = 1/3 \approx 0.33`).
    Approx,
}

impl Rel {
    /// The relation with its sides swapped (`<` becomes `>`).
    pub fn flip(self) -> Rel {
        match self {
            Rel::Lt => Rel::Gt,
            Rel::Le => Rel::Ge,
            Rel::Gt => Rel::Lt,
            Rel::Ge => Rel::Le,
            other => other,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Rel::Eq => "=",
            Rel::Ne => "\\neq",
            Rel::Lt => "<",
            Rel::Le => "\\le",
            Rel::Gt => ">",
            Rel::Ge => "\\ge",
            Rel::Approx => "\\approx",
        }
    }
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
    /// `\{a, b\}`: unordered, duplicates ignored. Also the values of an expression with `\pm`.
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
    /// `a < b \le c`, `2x + 4y = 3`, `x = 5`: the sides and the relations between them (one
    /// fewer). A chain of equalities keeps its first and last sides (`x = 2 + 3 = 5` is
    /// `x = 5`); one that does not start with a name is its last side (`1 + 1 = 2` is `2`).
    Relation(Vec<Value>, Vec<Rel>),
    /// A matrix, row by row.
    Matrix(Vec<Vec<Expr>>),
    /// A word answer (`\text{Evelyn}`, `\text{(C)}`): lowercase, without spaces or the
    /// brackets around a choice letter.
    Text(String),
}

fn match_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}
