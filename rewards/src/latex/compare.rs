//! Equivalence of parsed answers.

use super::parse::{num, scalar};
use super::{Expr, Num, Rel, Value};
use std::borrow::Cow;

/// How answers are compared: `math-verify`'s options, with its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Decimal places both numbers are rounded to when neither is an exact integer (6).
    pub precision: u32,
    /// Variables must keep their names (`f(x)` is not `f(y)`). When false, the answer's
    /// variables may be renamed one for one to the gold's.
    pub strict: bool,
    /// A gold set or interval also matches a relation in the answer (`x \in [-2, 7]` against
    /// `-2 \le x \le 7`). A gold relation always matches the set it describes.
    pub set_matches_relation: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self { precision: 6, strict: true, set_matches_relation: false }
    }
}

/// Whether `answer` is equivalent to `gold` under the default [`Rules`].
pub fn equivalent(gold: &Value, answer: &Value) -> bool {
    equivalent_with(gold, answer, &Rules::default())
}

/// Whether `answer` is equivalent to `gold` under `rules`.
pub fn equivalent_with(gold: &Value, answer: &Value, rules: &Rules) -> bool {
    let (gold, answer) = (expanded(gold), expanded(answer));
    Cmp { rules: *rules }.values(&gold, &answer)
}

/// Whether a side names what an equation assigns (`x`, `a_3`, `f(x)`, `|AB|`, `A:B`,
/// `(p, q)`): then `x = 5` is an answer of 5, while `2x + z = 1` is an equation.
pub(super) fn is_name(v: &Value) -> bool {
    fn expr(e: &Expr) -> bool {
        match e {
            Expr::Var(_) | Expr::Indexed(..) => true,
            Expr::Mul(a, b) | Expr::Div(a, b) => expr(a) && expr(b),
            Expr::Func("abs", a) => expr(a),
            _ => false,
        }
    }
    match v {
        Value::Scalar { expr: e, percent: false } => expr(e),
        Value::Tuple(items) => items.iter().all(is_name),
        _ => false,
    }
}

fn is_assignment(sides: &[Value], ops: &[Rel]) -> bool {
    ops == [Rel::Eq] && is_name(&sides[0])
}

fn expr_has_pm(e: &Expr) -> bool {
    e.any(&|e| matches!(e, Expr::PlusMinus(..)))
}

fn has_pm(v: &Value) -> bool {
    match v {
        Value::Scalar { expr, .. } => expr_has_pm(expr),
        Value::Tuple(items) | Value::Set(items) | Value::List(items) | Value::Union(items) => items.iter().any(has_pm),
        Value::Relation(sides, _) => sides.iter().any(has_pm),
        _ => false,
    }
}

fn expanded(v: &Value) -> Cow<'_, Value> {
    if has_pm(v) { Cow::Owned(expand(v.clone())) } else { Cow::Borrowed(v) }
}

/// `1 \pm \sqrt 2` becomes the set of both values; such sets inside a list or set are merged
/// into it (`\{1 \pm \sqrt 5, -2\}` has three elements).
fn expand(v: Value) -> Value {
    let flatten = |items: Vec<Value>| {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let pm = matches!(&item, Value::Scalar { expr, .. } if expr_has_pm(expr));
            match expand(item) {
                Value::Set(values) if pm => out.extend(values),
                other => out.push(other),
            }
        }
        out
    };
    match v {
        Value::Scalar { expr, percent } if expr_has_pm(&expr) => {
            Value::Set(expr.plus_minus().into_iter().map(|expr| Value::Scalar { expr, percent }).collect())
        }
        Value::List(items) => Value::List(flatten(items)),
        Value::Set(items) => Value::Set(flatten(items)),
        Value::Tuple(items) => Value::Tuple(items.into_iter().map(expand).collect()),
        Value::Union(items) => Value::Union(items.into_iter().map(expand).collect()),
        Value::Relation(sides, ops) => Value::Relation(sides.into_iter().map(expand).collect(), ops),
        other => other,
    }
}

/// Sample values for variables: positive and irrational-looking, so that `sqrt(x)` and `ln x`
/// are defined and accidental agreement of different expressions is vanishingly unlikely.
const SAMPLES: [f64; 7] = [0.713_245_1, 1.418_925_3, 2.236_067_9, 0.377_219_4, 1.902_713_6, 2.903_117_4, 0.529_177_2];

fn round_to(x: f64, places: u32) -> f64 {
    (x * 10f64.powi(places as i32)).round()
}

fn close(x: f64, y: f64, rel: f64) -> bool {
    x == y || (x - y).abs() <= rel * x.abs().max(y.abs())
}

/// Whether two numbers agree under `math-verify`'s rules: an exact integer on either side is
/// compared exactly; otherwise both are rounded to 6 decimal places.
pub fn numbers_equal(a: Num, b: Num) -> bool {
    numbers_equal_to(a, b, 6)
}

fn numbers_equal_to(a: Num, b: Num, places: u32) -> bool {
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
    close(a.v, b.v, 1e-12) || (a.v.abs() < 1e12 && round_to(a.v, places) == round_to(b.v, places))
}

/// A cheap deterministic value in [0.5, 2.5) for an unknown with no sample of its own (an
/// indexed name such as `F_[3000000000]`), varying with the round `k`.
fn hashed(name: &str, k: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    0.5 + 2.0 * ((h >> 11) as f64 / (1u64 << 53) as f64)
}

/// The word a product of single letters spells (`odd` is o·d·d), for word answers.
fn letters(v: &Value) -> Option<String> {
    fn walk(e: &Expr, out: &mut String) -> bool {
        match e {
            Expr::Var(v) if v.chars().count() == 1 => {
                out.extend(v.chars().flat_map(char::to_lowercase));
                true
            }
            Expr::Mul(a, b) => walk(a, out) && walk(b, out),
            _ => false,
        }
    }
    let Value::Scalar { expr, percent: false } = v else { return None };
    let mut out = String::new();
    walk(expr, &mut out).then_some(out)
}

fn has_abs(e: &Expr) -> bool {
    e.any(&|e| matches!(e, Expr::Func("abs", _)))
}

/// A constant's value, if the expression has no variables.
fn constant(e: &Expr) -> Option<f64> {
    let mut vars = Vec::new();
    e.vars(&mut vars);
    vars.is_empty().then(|| e.eval(&|_| f64::NAN).v).filter(|v| !v.is_nan())
}

/// Relation sides as written left to right, with `>` chains turned around (`5 \ge x` is
/// `x \le 5`), so that chains compare side by side.
fn ascending(sides: &[Value], ops: &[Rel]) -> (Vec<Value>, Vec<Rel>) {
    if ops.iter().all(|o| matches!(o, Rel::Gt | Rel::Ge)) {
        (sides.iter().rev().cloned().collect(), ops.iter().rev().map(|o| o.flip()).collect())
    } else {
        (sides.to_vec(), ops.to_vec())
    }
}

fn scalar_sides(sides: &[Value]) -> Option<Vec<&Expr>> {
    sides.iter().map(|s| if let Value::Scalar { expr, percent: false } = s { Some(expr) } else { None }).collect()
}

/// Whether the relation holds at `x` for its single variable, within a tolerance so that a
/// boundary point is classified by whether the relation includes it.
fn holds(sides: &[&Expr], ops: &[Rel], x: f64) -> Option<bool> {
    let vals: Vec<f64> = sides.iter().map(|e| e.eval(&|_| x).v).collect();
    if vals.iter().any(|v| v.is_nan()) {
        return None;
    }
    Some(ops.iter().zip(vals.windows(2)).all(|(op, w)| {
        let (a, b) = (w[0], w[1]);
        let tol = 1e-9 * a.abs().max(b.abs()).max(1.0);
        match op {
            Rel::Lt => a < b - tol,
            Rel::Le => a <= b + tol,
            Rel::Gt => a > b + tol,
            Rel::Ge => a >= b - tol,
            Rel::Eq | Rel::Approx => (a - b).abs() <= tol,
            Rel::Ne => (a - b).abs() > tol,
        }
    }))
}

/// Whether a set of reals (an interval, a union, a finite set) contains `x`.
fn contains(set: &Value, x: f64) -> Option<bool> {
    let tol = 1e-9 * x.abs().max(1.0);
    match set {
        Value::Interval { lo, hi, lo_closed, hi_closed } => {
            let (lo, hi) = (lo.eval(&|_| f64::NAN).v, hi.eval(&|_| f64::NAN).v);
            if lo.is_nan() || hi.is_nan() {
                return None;
            }
            let above = if *lo_closed { x >= lo - tol } else { x > lo + tol };
            let below = if *hi_closed { x <= hi + tol } else { x < hi - tol };
            Some(above && below)
        }
        // `(a, b)` is also the open interval.
        Value::Tuple(ends) if ends.len() == 2 => {
            let (Value::Scalar { expr: lo, .. }, Value::Scalar { expr: hi, .. }) = (&ends[0], &ends[1]) else {
                return None;
            };
            contains(&Value::Interval { lo: lo.clone(), hi: hi.clone(), lo_closed: false, hi_closed: false }, x)
        }
        Value::Union(parts) => {
            let mut any = false;
            for p in parts {
                any |= contains(p, x)?;
            }
            Some(any)
        }
        Value::Set(points) => {
            let mut any = false;
            for p in points {
                let Value::Scalar { expr, percent: false } = p else { return None };
                any |= (constant(expr)? - x).abs() <= tol;
            }
            Some(any)
        }
        _ => None,
    }
}

/// The finite ends of a set of reals, where its membership may change.
fn ends(set: &Value, out: &mut Vec<f64>) {
    match set {
        Value::Interval { lo, hi, .. } => out.extend([lo, hi].iter().filter_map(|e| constant(e))),
        Value::Tuple(items) | Value::Union(items) | Value::Set(items) => {
            for i in items {
                match i {
                    Value::Scalar { expr, .. } => out.extend(constant(expr)),
                    other => ends(other, out),
                }
            }
        }
        _ => {}
    }
}

/// Where a relation in one variable may change: its literals and their negatives (`214 < x <
/// 216` changes at 214 and 216, `|x| < 3` at -3 and 3), and where each difference of adjacent
/// sides is zero if it is linear (`100 < 2x` at 50).
fn relation_points(sides: &[&Expr], out: &mut Vec<f64>) {
    for e in sides {
        e.visit(&mut |e| match e {
            Expr::Num { v, .. } => out.extend([*v, -v]),
            // Where an absolute value's argument is zero, if it is linear: a kink.
            Expr::Func("abs", a) => {
                let (d0, d1) = (a.eval(&|_| 0.0).v, a.eval(&|_| 1.0).v);
                let root = -d0 / (d1 - d0);
                if root.is_finite() {
                    out.push(root);
                }
            }
            _ => {}
        });
    }
    for w in sides.windows(2) {
        let d = |x: f64| w[0].eval(&|_| x).v - w[1].eval(&|_| x).v;
        let (d0, d1) = (d(0.0), d(1.0));
        let root = -d0 / (d1 - d0);
        if root.is_finite() {
            out.push(root);
        }
    }
}

/// Points on the real line where sets of reals are compared: ±10^(j/16) from 10^-3 to 10^6
/// (about 15% apart), and the integers from -20 to 20.
fn grid() -> Vec<f64> {
    let mut g: Vec<f64> =
        (-48..=96).flat_map(|j| [10f64.powf(j as f64 / 16.0), -(10f64.powf(j as f64 / 16.0))]).collect();
    g.extend((-20..=20).map(f64::from));
    g.sort_by(f64::total_cmp);
    g.dedup();
    g
}

struct Cmp {
    rules: Rules,
}

/// Sample rounds of an identity test, and the scale of each round's samples.
const ROUNDS: usize = 8;
const SCALES: [f64; ROUNDS] = [1.0, 1.0, 1.0, -2.3, -2.3, 6.1, -19.7, 71.3];

/// Extra sample points for an identity in one variable: beside each of its numbers and their
/// negatives (`|x - 100|` and `100 - x` differ only past 100).
fn near_literals(exprs: &[&Expr], vars: &[String]) -> Vec<f64> {
    if vars.len() != 1 {
        return Vec::new();
    }
    let mut points = Vec::new();
    relation_points(exprs, &mut points);
    points.retain(|p| p.is_finite() && p.abs() < 1e6);
    points.sort_by(f64::total_cmp);
    points.dedup();
    points.truncate(16);
    points.iter().flat_map(|p| [p + 0.371_9, p - 0.413_7]).collect()
}

impl Cmp {
    fn values(&self, gold: &Value, answer: &Value) -> bool {
        use Value::*;
        match (gold, answer) {
            (Relation(gs, go), Relation(a_s, ao)) => self.relations(gs, go, a_s, ao),
            (Relation(gs, go), _) if is_assignment(gs, go) => self.values(&gs[1], answer),
            (Relation(gs, go), Interval { .. } | Union(_) | Set(_) | Tuple(_)) => self.relation_is_set(gs, go, answer),
            (Relation(..), _) => false,
            // An answer written as an equation is its last side (`x = 11` against 11).
            (_, Relation(a_s, ao)) if ao.iter().all(|o| *o == Rel::Eq) => self.values(gold, a_s.last().expect("sides")),
            (Interval { .. } | Union(_) | Set(_), Relation(a_s, ao)) if self.rules.set_matches_relation => {
                self.relation_is_set(a_s, ao, gold)
            }
            (_, Relation(..)) => false,
            // A percentage against a plain number matches either reading; two percentages
            // compare as written (`51.4\%` is not `0.514\%`).
            (Scalar { expr: a, percent: pa }, Scalar { expr: b, percent: pb }) if pa == pb => self.scalars(a, b),
            (Scalar { expr: a, percent: pa }, Scalar { expr: b, percent: pb }) => {
                let (a, b) = (with_percent(a, *pa), with_percent(b, *pb));
                a.iter().any(|x| b.iter().any(|y| self.scalars(x, y)))
            }
            (Text(a), Text(b)) => a == b,
            (Text(t), s @ Scalar { .. }) | (s @ Scalar { .. }, Text(t)) => letters(s).is_some_and(|w| w == *t),
            (Matrix(a), Matrix(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| self.scalars(x, y)))
            }
            // A tuple against a set reads the set in its written order, as math-verify does.
            (Tuple(a), Tuple(b) | List(b) | Set(b)) | (List(a) | Set(a), Tuple(b)) => self.ordered(a, b),
            (Set(a) | List(a), Set(b) | List(b)) => self.same_set(a, b),
            (Set(a), s @ Scalar { .. }) => a.len() == 1 && self.values(&a[0], s),
            (s @ Scalar { .. }, Set(a)) => a.len() == 1 && self.values(s, &a[0]),
            (
                Interval { lo, hi, lo_closed, hi_closed },
                Interval { lo: lo2, hi: hi2, lo_closed: lc2, hi_closed: hc2 },
            ) => lo_closed == lc2 && hi_closed == hc2 && self.scalars(lo, lo2) && self.scalars(hi, hi2),
            (Interval { lo, hi, lo_closed: false, hi_closed: false }, Tuple(t)) if t.len() == 2 => {
                self.values(&scalar(lo.clone()), &t[0]) && self.values(&scalar(hi.clone()), &t[1])
            }
            (Tuple(t), Interval { lo, hi, lo_closed: false, hi_closed: false }) if t.len() == 2 => {
                self.values(&t[0], &scalar(lo.clone())) && self.values(&t[1], &scalar(hi.clone()))
            }
            (Union(a), Union(b)) => self.same_set(a, b),
            _ => false,
        }
    }

    fn ordered(&self, a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.values(x, y))
    }

    fn same_set(&self, a: &[Value], b: &[Value]) -> bool {
        a.iter().all(|x| b.iter().any(|y| self.values(x, y))) && b.iter().all(|y| a.iter().any(|x| self.values(x, y)))
    }

    /// Two relations: the same chain side by side; or, for two sides, one difference a
    /// constant multiple of the other (a scaled equation; a negative factor turns an
    /// inequality around); or, in one variable, the same solution set.
    fn relations(&self, gs: &[Value], go: &[Rel], a_s: &[Value], ao: &[Rel]) -> bool {
        // Two assignments say the same when they assign the same (`W(n) = 1`, `W(x) = 1`).
        // Not when a name is an absolute value: `|x| = 9` says less than `x = 9`.
        let plain = |sides: &[Value]| !matches!(&sides[0], Value::Scalar { expr, .. } if has_abs(expr));
        if is_assignment(gs, go) && is_assignment(a_s, ao) && plain(gs) && plain(a_s) && self.values(&gs[1], &a_s[1]) {
            return true;
        }
        let ((gs, go), (a_s, ao)) = (ascending(gs, go), ascending(a_s, ao));
        if go == ao && gs.len() == a_s.len() && gs.iter().zip(&a_s).all(|(g, a)| self.values(g, a)) {
            return true;
        }
        let (Some(g), Some(a)) = (scalar_sides(&gs), scalar_sides(&a_s)) else { return false };
        if g.len() == 2 && a.len() == 2 && self.scaled(g[0], g[1], go[0], a[0], a[1], ao[0]) {
            return true;
        }
        let equation = |ops: &[Rel]| ops.iter().any(|o| matches!(o, Rel::Eq | Rel::Ne));
        if equation(&go) || equation(&ao) {
            return false;
        }
        let mut vars = Vec::new();
        g.iter().chain(&a).for_each(|e| e.vars(&mut vars));
        if vars.len() != 1 {
            return false;
        }
        let mut points = Vec::new();
        relation_points(&g, &mut points);
        relation_points(&a, &mut points);
        self.same_solutions(&g, &go, |x| holds(&a, &ao, x), &points)
    }

    /// `gl op gr` and `al op2 ar` where `gl - gr = k (al - ar)` for a constant k != 0, with
    /// `op` the same as `op2` (k > 0) or as `op2` turned around (k < 0).
    fn scaled(&self, gl: &Expr, gr: &Expr, gop: Rel, al: &Expr, ar: &Expr, aop: Rel) -> bool {
        let d = |l: &Expr, r: &Expr| Expr::Sub(Box::new(l.clone()), Box::new(r.clone()));
        let (dg, da) = (d(gl, gr), d(al, ar));
        let mut vars = Vec::new();
        dg.vars(&mut vars);
        da.vars(&mut vars);
        // A kink (`|x - 4| < 3` against `x > 1`) can make two differences proportional on every
        // sample and not beyond it: with an absolute value, only in one variable, where the
        // extra points sit beside every kink and literal.
        if (has_abs(&dg) || has_abs(&da)) && vars.len() != 1 {
            return false;
        }
        let extra = near_literals(&[&dg, &da], &vars);
        let mut ratio: Option<f64> = None;
        for k in 0..ROUNDS + extra.len() {
            let env = |name: &str| self.sample(&vars, &[], &extra, name, k);
            let (x, y) = (dg.eval(&env).v, da.eval(&env).v);
            if x.is_nan() || y.is_nan() || (x == 0.0) != (y == 0.0) {
                return false;
            }
            if x == 0.0 {
                continue;
            }
            let r = x / y;
            match ratio {
                None => ratio = Some(r),
                Some(q) if close(q, r, 1e-9) => {}
                Some(_) => return false,
            }
        }
        match ratio {
            Some(r) if r > 0.0 => gop == aop,
            Some(r) if r < 0.0 => gop == aop.flip(),
            _ => false,
        }
    }

    /// A relation against a set of reals: in one variable, the same solution set; a chain
    /// `a < E < b` with constant ends (E in several unknowns, such as `f(x)`) is the
    /// interval of E.
    fn relation_is_set(&self, sides: &[Value], ops: &[Rel], set: &Value) -> bool {
        if ops.iter().any(|o| matches!(o, Rel::Eq | Rel::Ne | Rel::Approx)) {
            return false;
        }
        let (sides, ops) = ascending(sides, ops);
        let Some(s) = scalar_sides(&sides) else { return false };
        let mut vars = Vec::new();
        s.iter().for_each(|e| e.vars(&mut vars));
        if vars.len() == 1 {
            let mut points = Vec::new();
            ends(set, &mut points);
            relation_points(&s, &mut points);
            return self.same_solutions(&s, &ops, |x| contains(set, x), &points);
        }
        if s.len() == 3 && constant(s[0]).is_some() && constant(s[2]).is_some() && constant(s[1]).is_none() {
            let closed = |o: Rel| matches!(o, Rel::Le | Rel::Ge);
            let interval = Value::Interval {
                lo: s[0].clone(),
                hi: s[2].clone(),
                lo_closed: closed(ops[0]),
                hi_closed: closed(ops[1]),
            };
            return self.values(&interval, set);
        }
        false
    }

    /// Whether the relation (one variable) holds exactly where `other` does. Both are tested at
    /// the grid and the given points (literals, ends, roots); wherever either changes between
    /// two neighbouring points, the boundary is found by bisection and tested at, just beside
    /// and between.
    fn same_solutions(
        &self,
        sides: &[&Expr],
        ops: &[Rel],
        other: impl Fn(f64) -> Option<bool>,
        points: &[f64],
    ) -> bool {
        let mine = |x: f64| holds(sides, ops, x);
        let mut xs = grid();
        xs.extend(points.iter().copied().filter(|p| p.is_finite() && p.abs() <= 1e9));
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut keys: Vec<f64> = points.iter().copied().filter(|p| p.is_finite() && p.abs() <= 1e9).collect();
        for w in xs.windows(2) {
            for f in [&mine as &dyn Fn(f64) -> Option<bool>, &other] {
                let (Some(a), Some(b)) = (f(w[0]), f(w[1])) else { continue };
                if a != b {
                    let (mut lo, mut hi) = (w[0], w[1]);
                    for _ in 0..80 {
                        let mid = 0.5 * (lo + hi);
                        if f(mid) == Some(a) {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    keys.push(0.5 * (lo + hi));
                }
            }
        }
        // Each side finds a boundary at the edge of its own tolerance band: boundaries closer
        // than 1e-6 are one, tested at its round value when it has one (-2, not -1.999999999),
        // else at their mean.
        keys.sort_by(f64::total_cmp);
        let mut bounds: Vec<f64> = Vec::new();
        let mut cluster: Vec<f64> = Vec::new();
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
        for k in keys.into_iter().chain([f64::INFINITY]) {
            if cluster.last().is_some_and(|&c| !near(c, k)) {
                let mean = cluster.iter().sum::<f64>() / cluster.len() as f64;
                let round = (mean * 1e6).round() / 1e6;
                bounds.push(if (round - mean).abs() <= 1e-8 * mean.abs().max(1.0) { round } else { mean });
                cluster.clear();
            }
            cluster.push(k);
        }
        let mut tests = xs.clone();
        for w in xs.windows(2) {
            tests.push(0.5 * (w[0] + w[1]));
        }
        for (i, k) in bounds.iter().enumerate() {
            let d = 1e-6 * k.abs().max(1.0);
            tests.extend([*k, k - d, k + d]);
            if let Some(next) = bounds.get(i + 1) {
                tests.push(0.5 * (k + next));
            }
        }
        let mut compared = 0;
        for x in tests {
            match (mine(x), other(x)) {
                (Some(a), Some(b)) if a != b => return false,
                (Some(_), Some(_)) => compared += 1,
                _ => {}
            }
        }
        compared > 0
    }

    /// The value of variable `name` in sample round `k`: its own sample, scaled by the round's
    /// [`SCALES`] (negative and far points: `|x|` and `x`, `\sqrt{x^2}` and `x` agree on every
    /// positive point, `|\sin x|` and `\sin |x|` on every point within π of 0); past those
    /// rounds, the `extra` points of a single variable; an integer for a variable bounding a
    /// sum; a hashed value for an indexed unknown.
    fn sample(&self, vars: &[String], ints: &[String], extra: &[f64], name: &str, k: usize) -> f64 {
        match vars.iter().position(|v| v == name) {
            Some(i) if ints.iter().any(|v| v == name) => (3 + i + 2 * (k % 3)) as f64,
            Some(_) if k >= ROUNDS => extra[k - ROUNDS],
            Some(i) => SCALES[k] * (SAMPLES[(i + 2 * k) % SAMPLES.len()] + i as f64 * 0.173),
            None => hashed(name, k),
        }
    }

    fn scalars(&self, a: &Expr, b: &Expr) -> bool {
        let mut vars = Vec::new();
        a.vars(&mut vars);
        b.vars(&mut vars);
        if vars.is_empty() {
            let (x, y) = (a.eval(&|_| f64::NAN), b.eval(&|_| f64::NAN));
            // An exact integer against a number written as a decimal or fraction: compared
            // exactly (`3` is not `3.0000001`, nor `994908.000000000001`).
            let int = |n: Num| n.exact && n.v.fract() == 0.0 && !n.out_of_range;
            if (int(x) || int(y))
                && let (Some(p), Some(q)) = (a.exact_value(), b.exact_value())
            {
                return p == q;
            }
            let in_f64 = numbers_equal_to(x, y, self.rules.precision);
            // Integers and fractions compare exactly, whatever their size. Only where it can
            // change the verdict: a match in f64 may be two numbers rounded to one double, and
            // a value out of f64's range has no f64 verdict; a mismatch in range is a mismatch.
            if (in_f64 || x.out_of_range || y.out_of_range)
                && x.exact
                && y.exact
                && let (Some(p), Some(q)) = (a.exact_value(), b.exact_value())
            {
                return p == q;
            }
            return in_f64;
        }
        if self.by_samples(a, b, &vars, &[]) {
            return true;
        }
        if self.rules.strict {
            return false;
        }
        // Not strict: the answer's own variables may stand for the gold's, one for one.
        let (mut gv, mut av) = (Vec::new(), Vec::new());
        a.vars(&mut gv);
        b.vars(&mut av);
        let only_gold: Vec<&String> = gv.iter().filter(|v| !av.contains(v)).collect();
        let mut only_answer: Vec<&String> = av.iter().filter(|v| !gv.contains(v)).collect();
        if only_gold.is_empty() || only_gold.len() != only_answer.len() {
            return false;
        }
        let mut only_gold = only_gold;
        only_gold.sort();
        only_answer.sort();
        let rename: Vec<(String, String)> =
            only_answer.into_iter().cloned().zip(only_gold.into_iter().cloned()).collect();
        self.by_samples(a, b, &gv, &rename)
    }

    /// Identity by evaluation at three sample points (the answer's variables renamed by
    /// `rename` first).
    fn by_samples(&self, a: &Expr, b: &Expr, vars: &[String], rename: &[(String, String)]) -> bool {
        let mut ints = Vec::new();
        a.bound_vars(&mut ints);
        b.bound_vars(&mut ints);
        let extra = near_literals(&[a, b], vars);
        let mut compared = 0;
        for k in 0..ROUNDS + extra.len() {
            let env = |name: &str| self.sample(vars, &ints, &extra, name, k);
            let renamed = |name: &str| match rename.iter().find(|(from, _)| from == name) {
                Some((_, to)) => env(to),
                None => env(name),
            };
            let (x, y) = (a.eval(&env), b.eval(&renamed));
            // A value out of f64's range says nothing at this point (`e^{71 x}`); others decide.
            if x.out_of_range || y.out_of_range {
                continue;
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
}

fn with_percent(expr: &Expr, percent: bool) -> Vec<Expr> {
    if percent {
        vec![expr.clone(), Expr::Div(Box::new(expr.clone()), Box::new(num("100")))]
    } else {
        vec![expr.clone()]
    }
}
