//! BFCL's `resolve_ast_by_type`: the value each keyword argument's expression stands for,
//! arithmetic evaluated and nested calls turned into source text, quirks kept for agreement.

use super::python::{Expr, insert};
use super::{MAX_DEPTH, ParseError, err};
use crate::tools::value::{CompactString, Val};

/// Largest integer exponent evaluated in `a ** b` (Python would build a huge integer).
const MAX_POW: i128 = 4096;

pub(super) fn resolve_kwargs(kwargs: Vec<(String, Expr)>) -> Result<Vec<(CompactString, Val)>, ParseError> {
    kwargs.into_iter().map(|(k, e)| Ok((k.into(), resolve(e)?))).collect()
}

/// BFCL's `resolve_ast_by_type`: the value a keyword argument's expression stands for.
pub(super) fn resolve(e: Expr) -> Result<Val, ParseError> {
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

pub(super) fn negate(v: &Val) -> Result<Val, ParseError> {
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
