//! Evaluation: in f64 with exactness tracked, and exactly with big rationals.

use super::Expr;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Pow, Signed, ToPrimitive, Zero};

/// Largest result, in bits, of a power computed exactly (about 1.3 million decimal digits,
/// 512 KiB): `2^{1000000}` is compared exactly; a larger power is compared only when its
/// floating-point value stays in range.
pub const MAX_EXACT_BITS: u64 = 1 << 22;

/// Largest `n!` computed exactly (about 36,000 digits).
const MAX_EXACT_FACTORIAL: u64 = 10_000;

/// Most terms a sum is evaluated over.
const MAX_SUM_TERMS: f64 = 1_000.0;

/// Most `\pm` signs expanded in one expression (2^4 = 16 values).
const MAX_PLUS_MINUS: usize = 4;

/// The value of the unknown `name_{i}`: a fixed pseudo-random function of the name and the
/// subscript's value, drawn through the caller's binding so that it changes with the sample.
fn indexed(name: &str, i: f64, var: &dyn Fn(&str) -> f64) -> f64 {
    // Subscripts that differ by rounding noise are the same subscript.
    let key = (i * 1e9).round();
    var(&format!("{name}_[{key}]"))
}

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
                    // A division by zero has no value (`12:00` is not infinity, nor equal to `1:00`).
                    _ if y.v == 0.0 => f64::NAN,
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
            Expr::Indexed(name, i) => {
                let i = i.eval(var);
                Num { out_of_range: i.out_of_range, ..n(indexed(name, i.v, var), false) }
            }
            // Expanded before comparison; evaluated alone it has no single value.
            Expr::PlusMinus(..) => n(f64::NAN, false),
            Expr::Sum { var: k, lo, hi, body } => {
                let (lo, hi) = (lo.eval(var), hi.eval(var));
                let terms = (hi.v - lo.v).floor() + 1.0;
                if !(lo.v.is_finite() && hi.v.is_finite()) || terms > MAX_SUM_TERMS {
                    return n(f64::NAN, false);
                }
                let mut total = n(0.0, lo.exact && hi.exact);
                for t in 0..terms.max(0.0) as u64 {
                    let at = lo.v + t as f64;
                    let term = body.eval(&|name: &str| if name == k { at } else { var(name) });
                    total = Num {
                        v: total.v + term.v,
                        exact: total.exact && term.exact,
                        out_of_range: total.out_of_range || term.out_of_range,
                    };
                }
                total
            }
            Expr::Func(f, a) => {
                let x = a.eval(var);
                let v = match *f {
                    "sqrt" => x.v.sqrt(),
                    "sin" => x.v.sin(),
                    "cos" => x.v.cos(),
                    "tan" => x.v.tan(),
                    "sec" => 1.0 / x.v.cos(),
                    "csc" => 1.0 / x.v.sin(),
                    "cot" => 1.0 / x.v.tan(),
                    "asin" => x.v.asin(),
                    "acos" => x.v.acos(),
                    "atan" => x.v.atan(),
                    "sinh" => x.v.sinh(),
                    "cosh" => x.v.cosh(),
                    "tanh" => x.v.tanh(),
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

    /// The exact value of a variable-free expression built from integer and decimal literals
    /// by `+ - * /`, integer powers, negation, absolute value and factorial, with numbers of any
    /// size; `None` for anything else (π, a root, a variable, ∞, a division by zero, or a power
    /// whose result would exceed [`MAX_EXACT_BITS`]).
    pub fn exact_value(&self) -> Option<BigRational> {
        let v = match self {
            Expr::Num { exact: true, digits: Some(d), .. } => BigRational::from_integer(d.parse::<BigInt>().ok()?),
            // A decimal literal is the rational it writes: `2.50` is 250/100.
            Expr::Num { exact: false, digits: Some(d), .. } => {
                let (int, frac) = d.split_once('.')?;
                let scale = BigInt::from(10u32).pow(u32::try_from(frac.len()).ok()?);
                let n: BigInt = format!("{int}{frac}").parse().ok()?;
                BigRational::new(n, scale)
            }
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

    /// The free variables, in order of appearance. An indexed name counts as `name_`.
    pub(super) fn vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Expr::Indexed(name, i) => {
                let v = format!("{name}_");
                if !out.contains(&v) {
                    out.push(v);
                }
                i.vars(out);
            }
            Expr::Add(a, b)
            | Expr::Sub(a, b)
            | Expr::Mul(a, b)
            | Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::PlusMinus(a, b) => {
                a.vars(out);
                b.vars(out);
            }
            Expr::Neg(a) | Expr::Func(_, a) => a.vars(out),
            Expr::Sum { var, lo, hi, body } => {
                lo.vars(out);
                hi.vars(out);
                let mut inner = Vec::new();
                body.vars(&mut inner);
                for v in inner {
                    if v != *var && !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            Expr::Num { .. } | Expr::Pi | Expr::Inf => {}
        }
    }

    /// The expressions directly inside this one (without allocating: this runs on every
    /// comparison).
    pub(super) fn children(&self) -> impl Iterator<Item = &Expr> {
        let kids: [Option<&Expr>; 3] = match self {
            Expr::Add(a, b)
            | Expr::Sub(a, b)
            | Expr::Mul(a, b)
            | Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::PlusMinus(a, b) => [Some(&**a), Some(&**b), None],
            Expr::Neg(a) | Expr::Func(_, a) | Expr::Indexed(_, a) => [Some(&**a), None, None],
            Expr::Sum { lo, hi, body, .. } => [Some(&**lo), Some(&**hi), Some(&**body)],
            Expr::Num { .. } | Expr::Var(_) | Expr::Pi | Expr::Inf => [None, None, None],
        };
        kids.into_iter().flatten()
    }

    /// Calls `f` on this expression and every one inside it, outermost first.
    pub(super) fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// Whether this expression or one inside it satisfies `f`.
    pub(super) fn any(&self, f: &impl Fn(&Expr) -> bool) -> bool {
        f(self) || self.children().any(|c| c.any(f))
    }

    /// Variables that bound a sum (`n` in `\sum_{k=0}^{n}`): sampled at integers.
    pub(super) fn bound_vars(&self, out: &mut Vec<String>) {
        self.visit(&mut |e| {
            if let Expr::Sum { lo, hi, .. } = e {
                lo.vars(out);
                hi.vars(out);
            }
        });
    }

    /// The number of nodes, to bound what computed matrices hold.
    pub(super) fn size(&self) -> usize {
        let mut n = 0;
        self.visit(&mut |_| n += 1);
        n
    }

    /// The values of an expression with `\pm`: every choice of signs (at most
    /// [`MAX_PLUS_MINUS`] of them); the expression itself otherwise.
    pub(super) fn plus_minus(&self) -> Vec<Expr> {
        let mut out = vec![self.clone()];
        for _ in 0..MAX_PLUS_MINUS {
            let mut next = Vec::new();
            let mut found = false;
            for e in &out {
                match e.split_first_pm() {
                    Some((plus, minus)) => {
                        found = true;
                        next.push(plus);
                        next.push(minus);
                    }
                    None => next.push(e.clone()),
                }
            }
            out = next;
            if !found {
                break;
            }
        }
        out
    }

    /// The expression with its first `\pm` read as `+`, and as `-`.
    fn split_first_pm(&self) -> Option<(Expr, Expr)> {
        let b = |e: &Expr| Box::new(e.clone());
        Some(match self {
            Expr::PlusMinus(a, c) => (Expr::Add(b(a), b(c)), Expr::Sub(b(a), b(c))),
            Expr::Add(x, y) | Expr::Sub(x, y) | Expr::Mul(x, y) | Expr::Div(x, y) | Expr::Pow(x, y) => {
                let rebuild = |l: Expr, r: Expr| match self {
                    Expr::Add(..) => Expr::Add(Box::new(l), Box::new(r)),
                    Expr::Sub(..) => Expr::Sub(Box::new(l), Box::new(r)),
                    Expr::Mul(..) => Expr::Mul(Box::new(l), Box::new(r)),
                    Expr::Div(..) => Expr::Div(Box::new(l), Box::new(r)),
                    _ => Expr::Pow(Box::new(l), Box::new(r)),
                };
                if let Some((p, m)) = x.split_first_pm() {
                    (rebuild(p, (**y).clone()), rebuild(m, (**y).clone()))
                } else {
                    let (p, m) = y.split_first_pm()?;
                    (rebuild((**x).clone(), p), rebuild((**x).clone(), m))
                }
            }
            Expr::Neg(a) => {
                let (p, m) = a.split_first_pm()?;
                (Expr::Neg(Box::new(p)), Expr::Neg(Box::new(m)))
            }
            Expr::Func(f, a) => {
                let (p, m) = a.split_first_pm()?;
                (Expr::Func(f, Box::new(p)), Expr::Func(f, Box::new(m)))
            }
            _ => return None,
        })
    }
}
