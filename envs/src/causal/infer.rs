//! Exact inference by variable elimination, for all three rungs.
//!
//! - Associational: P(Y | e) on the network, after pruning to the ancestors of Y and e (other
//!   variables are barren: they sum to one).
//! - Interventional: the do-operator replaces each intervened variable's CPT by a root (its
//!   incoming edges cut) and fixes its value: P(Y | do(x), e) = P_mutilated(Y | x, e).
//! - Counterfactual: abduction, action and prediction on a twin network. With one independent
//!   exogenous selector U[V, pa] per (variable, parent assignment), the factual V and its
//!   counterfactual twin V* share selectors, and summing the selectors out leaves, per
//!   variable, P(V* = b | V = a, pa, pa*) = [a = b] when pa = pa* (the same selector answers)
//!   and P(b | pa*) otherwise (an independent one). Only descendants of the intervened
//!   variables get a twin; the others are the same in both worlds.
//!
//! Elimination order: greedy, each step eliminating the variable whose product factor is
//! smallest (min-weight), which is optimal or close on graphs of this size.

use super::network::Model;
use super::query::{Level, Resolved};

/// Why a query has no answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InferError {
    /// The evidence has probability zero, so conditioning on it is undefined.
    #[error("the evidence has probability zero")]
    ImpossibleEvidence,
    /// The evidence contradicts an intervention on the same variable.
    #[error("the evidence on `{0}` contradicts the intervention on it")]
    Contradiction(String),
}

/// A conditional distribution P(child | parents), flat: `table[row * card(child) + value]`,
/// rows in row-major order of `parents`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cpd {
    /// The variable it defines.
    pub child: usize,
    /// Its parents, in row order.
    pub parents: Vec<usize>,
    /// The table.
    pub table: Vec<f64>,
}

/// A factor over `vars` (ascending), values row-major with the last variable fastest.
#[derive(Clone, Debug, PartialEq)]
struct Factor {
    vars: Vec<usize>,
    cards: Vec<usize>,
    vals: Vec<f64>,
}

impl Factor {
    fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.vars.len()];
        for j in (0..self.vars.len().saturating_sub(1)).rev() {
            s[j] = s[j + 1] * self.cards[j + 1];
        }
        s
    }

    /// The product of `factors` over the union of their scopes.
    fn product(factors: &[&Factor]) -> Factor {
        let mut scope: Vec<(usize, usize)> =
            factors.iter().flat_map(|f| f.vars.iter().copied().zip(f.cards.iter().copied())).collect();
        scope.sort_unstable();
        scope.dedup();
        let (vars, cards): (Vec<usize>, Vec<usize>) = scope.into_iter().unzip();
        let size: usize = cards.iter().product();
        // strides[k][d]: how far factor k's index moves when variable d of the scope steps.
        let strides: Vec<Vec<usize>> = factors
            .iter()
            .map(|f| {
                let own = f.strides();
                vars.iter().map(|v| f.vars.iter().position(|w| w == v).map_or(0, |j| own[j])).collect()
            })
            .collect();
        let mut idx = vec![0usize; factors.len()];
        let mut assign = vec![0usize; vars.len()];
        let mut vals = Vec::with_capacity(size);
        for _ in 0..size {
            vals.push(factors.iter().zip(&idx).map(|(f, &i)| f.vals[i]).product());
            for d in (0..vars.len()).rev() {
                assign[d] += 1;
                if assign[d] < cards[d] {
                    idx.iter_mut().zip(&strides).for_each(|(i, s)| *i += s[d]);
                    break;
                }
                assign[d] = 0;
                idx.iter_mut().zip(&strides).for_each(|(i, s)| *i -= s[d] * (cards[d] - 1));
            }
        }
        Factor { vars, cards, vals }
    }

    /// Sums variable `v` out.
    fn sum_out(&self, v: usize) -> Factor {
        let p = self.vars.iter().position(|&w| w == v).expect("summed variable is in scope");
        let inner: usize = self.cards[p + 1..].iter().product();
        let outer: usize = self.cards[..p].iter().product();
        let card = self.cards[p];
        let mut vals = vec![0.0; outer * inner];
        for o in 0..outer {
            for k in 0..card {
                let base = (o * card + k) * inner;
                for i in 0..inner {
                    vals[o * inner + i] += self.vals[base + i];
                }
            }
        }
        let mut vars = self.vars.clone();
        let mut cards = self.cards.clone();
        vars.remove(p);
        cards.remove(p);
        Factor { vars, cards, vals }
    }

    /// The factor of a CPD with the variables in `fixed` set to their values.
    fn from_cpd(cpd: &Cpd, cards: &[usize], fixed: &[Option<usize>]) -> Factor {
        // The table's stride of each of its variables: the child is fastest.
        let mut table_vars: Vec<(usize, usize)> = Vec::with_capacity(cpd.parents.len() + 1);
        let mut stride = cards[cpd.child];
        table_vars.push((cpd.child, 1));
        for &p in cpd.parents.iter().rev() {
            table_vars.push((p, stride));
            stride *= cards[p];
        }
        let mut offset = 0;
        let mut free: Vec<(usize, usize)> = Vec::with_capacity(table_vars.len());
        for &(v, s) in &table_vars {
            match fixed[v] {
                Some(x) => offset += x * s,
                None => free.push((v, s)),
            }
        }
        free.sort_unstable();
        let f_cards: Vec<usize> = free.iter().map(|&(v, _)| cards[v]).collect();
        let size: usize = f_cards.iter().product();
        let mut vals = Vec::with_capacity(size);
        let mut assign = vec![0usize; free.len()];
        let mut idx = offset;
        for _ in 0..size {
            vals.push(cpd.table[idx]);
            for d in (0..free.len()).rev() {
                assign[d] += 1;
                if assign[d] < f_cards[d] {
                    idx += free[d].1;
                    break;
                }
                assign[d] = 0;
                idx -= free[d].1 * (f_cards[d] - 1);
            }
        }
        Factor { vars: free.into_iter().map(|(v, _)| v).collect(), cards: f_cards, vals }
    }
}

/// P(target | evidence) in the network given by `cpds` (one per variable, `cpds[v].child == v`).
pub fn posterior(
    cards: &[usize],
    cpds: &[Cpd],
    evidence: &[(usize, usize)],
    target: usize,
) -> Result<Vec<f64>, InferError> {
    let parents: Vec<Vec<usize>> = cpds.iter().map(|c| c.parents.clone()).collect();
    let relevant = Model::ancestors(&parents, std::iter::once(target).chain(evidence.iter().map(|e| e.0)));
    let mut fixed = vec![None; cards.len()];
    for &(v, x) in evidence {
        match fixed[v] {
            Some(y) if y != x => return Err(InferError::ImpossibleEvidence),
            _ => fixed[v] = Some(x),
        }
    }
    let mut factors: Vec<Factor> =
        (0..cards.len()).filter(|&v| relevant[v]).map(|v| Factor::from_cpd(&cpds[v], cards, &fixed)).collect();
    let mut todo: Vec<usize> = (0..cards.len()).filter(|&v| relevant[v] && fixed[v].is_none() && v != target).collect();
    while !todo.is_empty() {
        // Min-weight: the variable whose joined factor is smallest.
        let (pos, _) = todo
            .iter()
            .enumerate()
            .map(|(pos, &v)| {
                let mut scope: Vec<usize> =
                    factors.iter().filter(|f| f.vars.contains(&v)).flat_map(|f| f.vars.iter().copied()).collect();
                scope.sort_unstable();
                scope.dedup();
                (pos, scope.iter().map(|&w| cards[w]).product::<usize>())
            })
            .min_by_key(|&(_, w)| w)
            .expect("todo is not empty");
        let v = todo.swap_remove(pos);
        let (with, without): (Vec<Factor>, Vec<Factor>) = factors.into_iter().partition(|f| f.vars.contains(&v));
        factors = without;
        factors.push(Factor::product(&with.iter().collect::<Vec<_>>()).sum_out(v));
    }
    let joint = Factor::product(&factors.iter().collect::<Vec<_>>());
    let mut dist = match fixed[target] {
        // The target is observed: its distribution is a point mass, if the evidence is possible.
        Some(x) => {
            let z: f64 = joint.vals.iter().sum();
            let mut d = vec![0.0; cards[target]];
            d[x] = z;
            d
        }
        None => joint.vals,
    };
    let z: f64 = dist.iter().sum();
    if !(z > 0.0 && z.is_finite()) {
        return Err(InferError::ImpossibleEvidence);
    }
    dist.iter_mut().for_each(|p| *p /= z);
    Ok(dist)
}

/// The network's own CPDs.
pub fn cpds(model: &Model) -> Vec<Cpd> {
    (0..model.len()).map(|v| Cpd { child: v, parents: model.parents[v].clone(), table: model.cpt[v].clone() }).collect()
}

fn uniform_root(v: usize, card: usize) -> Cpd {
    Cpd { child: v, parents: Vec::new(), table: vec![1.0 / card as f64; card] }
}

/// The exact answer to a query: the distribution of its target over the target's values.
pub fn answer(model: &Model, q: &Resolved) -> Result<Vec<f64>, InferError> {
    match q.level {
        Level::Associational => posterior(&model.cards, &cpds(model), &q.evidence, q.target),
        Level::Interventional => {
            let mut cpds = cpds(model);
            for &(x, _) in &q.intervention {
                cpds[x] = uniform_root(x, model.cards[x]);
            }
            check_contradictions(model, q)?;
            let evidence: Vec<(usize, usize)> = q.evidence.iter().chain(&q.intervention).copied().collect();
            posterior(&model.cards, &cpds, &evidence, q.target)
        }
        Level::Counterfactual => {
            let twin = Twin::new(model, &q.intervention);
            let evidence: Vec<(usize, usize)> =
                q.evidence.iter().copied().chain(q.intervention.iter().map(|&(x, v)| (twin.cf[x], v))).collect();
            posterior(&twin.cards, &twin.cpds, &evidence, twin.cf[q.target])
        }
    }
}

fn check_contradictions(model: &Model, q: &Resolved) -> Result<(), InferError> {
    for &(x, v) in &q.intervention {
        if q.evidence.iter().any(|&(e, w)| e == x && w != v) {
            return Err(InferError::Contradiction(model.names[x].clone()));
        }
    }
    Ok(())
}

/// The twin network of a model under an intervention.
pub struct Twin {
    /// Cardinalities of factual variables, then of twins.
    pub cards: Vec<usize>,
    /// One CPD per variable of the twin network.
    pub cpds: Vec<Cpd>,
    /// `cf[v]`: the variable standing for `v` in the counterfactual world (`v` itself when the
    /// intervention cannot change it).
    pub cf: Vec<usize>,
}

impl Twin {
    /// Builds the twin network for `intervention` ((variable, value) pairs).
    pub fn new(model: &Model, intervention: &[(usize, usize)]) -> Twin {
        let n = model.len();
        let intervened: Vec<usize> = intervention.iter().map(|e| e.0).collect();
        let below = model.descendants(&intervened);
        let mut cf: Vec<usize> = (0..n).collect();
        let mut cards = model.cards.clone();
        let mut cpds = cpds(model);
        for &v in &model.order {
            if intervened.contains(&v) || below[v] {
                cf[v] = cards.len();
                cards.push(model.cards[v]);
                let cpd = if intervened.contains(&v) {
                    // The intervened twin is a root fixed by evidence to its value.
                    uniform_root(cf[v], model.cards[v])
                } else {
                    twin_cpd(model, &cf, &cards, v)
                };
                cpds.push(cpd);
            }
        }
        Twin { cards, cpds, cf }
    }
}

/// P(v* | v, pa(v), pa*(v)) with the selectors summed out.
fn twin_cpd(model: &Model, cf: &[usize], cards: &[usize], v: usize) -> Cpd {
    let pa = &model.parents[v];
    let mut parents = vec![v];
    for &p in pa.iter().chain(pa.iter().map(|&p| &cf[p])) {
        if !parents.contains(&p) {
            parents.push(p);
        }
    }
    let pos = |w: usize| parents.iter().position(|&u| u == w).expect("listed above");
    let (factual_pos, twin_pos): (Vec<usize>, Vec<usize>) = pa.iter().map(|&p| (pos(p), pos(cf[p]))).unzip();
    let card = model.cards[v];
    let rows: usize = parents.iter().map(|&p| cards[p]).product();
    let mut table = Vec::with_capacity(rows * card);
    let mut assign = vec![0usize; parents.len()];
    for _ in 0..rows {
        let same = factual_pos.iter().zip(&twin_pos).all(|(&f, &t)| assign[f] == assign[t]);
        let twin_row = model.row(v, twin_pos.iter().map(|&t| assign[t]));
        for b in 0..card {
            table.push(if same { f64::from(u8::from(assign[0] == b)) } else { model.cpt[v][twin_row * card + b] });
        }
        for d in (0..parents.len()).rev() {
            assign[d] += 1;
            if assign[d] < cards[parents[d]] {
                break;
            }
            assign[d] = 0;
        }
    }
    Cpd { child: cf[v], parents, table }
}
