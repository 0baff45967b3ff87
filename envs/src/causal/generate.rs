//! Seeded generation of networks and queries, and the graph hash that keeps splits apart.

use super::network::{Model, Network, Variable};
use super::query::{Level, Query, Resolved};
use rlvr_engine::seed;
use std::collections::BTreeMap;

/// A SplitMix64 stream: small, fast, and fully determined by its seed, so that task `i` can be
/// rebuilt from `(seed, split, i)` alone.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        seed::mix(self.0)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is below 2^-50 for the small n used here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i + 1));
        }
    }

    /// `k` distinct elements of `xs`, in random order.
    pub fn choose<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let mut v = xs.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

/// The knobs of the generator (the paper's setup by default).
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Variables per network.
    pub variables: usize,
    /// Root count, drawn uniformly in this range.
    pub roots: (usize, usize),
    /// Parents of each later variable, drawn uniformly in this range (among earlier variables).
    pub parents: (usize, usize),
    /// Values per variable, drawn uniformly in this range.
    pub values: (usize, usize),
}

/// A random DAG in topological order: `parents[v]` are all below `v`.
pub fn structure(rng: &mut Rng, shape: &Shape) -> Vec<Vec<usize>> {
    let n = shape.variables;
    let roots = rng.range(shape.roots.0, shape.roots.1).min(n);
    let all: Vec<usize> = (0..n).collect();
    (0..n)
        .map(|v| {
            if v < roots.max(1) {
                return Vec::new();
            }
            let k = rng.range(shape.parents.0, shape.parents.1).min(v);
            let mut ps = rng.choose(&all[..v], k);
            ps.sort_unstable();
            ps
        })
        .collect()
}

/// A Weisfeiler-Lehman hash of a DAG's shape: isomorphic graphs get the same hash whatever
/// their labels, so it deduplicates graphs and assigns each isomorphism class to one split.
/// Each round refines a node's colour with the multisets of its parents' and children's
/// colours; the hash is the multiset of colours of every round.
pub fn wl_hash(parents: &[Vec<usize>]) -> u64 {
    let n = parents.len();
    let mut children = vec![Vec::new(); n];
    for (c, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(c);
        }
    }
    let mut colour = vec![1u64; n];
    let mut all = Vec::with_capacity(n * (n + 1));
    for _round in 0..=n {
        let mut next = Vec::with_capacity(n);
        for v in 0..n {
            let mut up: Vec<u64> = parents[v].iter().map(|&p| colour[p]).collect();
            let mut down: Vec<u64> = children[v].iter().map(|&c| colour[c]).collect();
            up.sort_unstable();
            down.sort_unstable();
            let mut h = seed::derive(colour[v], &[up.len() as u64, down.len() as u64]);
            for x in up {
                h = seed::derive(h, &[1, x]);
            }
            for x in down {
                h = seed::derive(h, &[2, x]);
            }
            next.push(h);
        }
        colour = next;
        let mut sorted = colour.clone();
        sorted.sort_unstable();
        all.push(seed::derive(n as u64, &sorted));
    }
    seed::derive(0x5eed, &all)
}

/// A network on `parents` (topological order) with random sizes, Dirichlet(1) CPT rows
/// rounded to hundredths (each at least 0.01, so no evidence is impossible), and shuffled
/// names, so that names reveal nothing of the order.
pub fn network(rng: &mut Rng, parents: &[Vec<usize>], shape: &Shape) -> Network {
    let n = parents.len();
    let mut names: Vec<String> = if n <= 26 {
        (0..n).map(|i| char::from(b'A' + i as u8).to_string()).collect()
    } else {
        (0..n).map(|i| format!("X{i}")).collect()
    };
    rng.shuffle(&mut names);
    let cards: Vec<usize> = (0..n).map(|_| rng.range(shape.values.0, shape.values.1)).collect();
    let variables = (0..n)
        .map(|v| {
            let rows: usize = parents[v].iter().map(|&p| cards[p]).product();
            Variable {
                name: names[v].clone(),
                values: (0..cards[v]).map(|k| k.to_string()).collect(),
                parents: parents[v].iter().map(|&p| names[p].clone()).collect(),
                cpt: (0..rows).map(|_| dirichlet_hundredths(rng, cards[v])).collect(),
            }
        })
        .collect();
    Network { variables }
}

/// A Dirichlet(1, ..., 1) draw rounded to hundredths summing to exactly 1, each entry at
/// least 0.01: one hundredth each, then the rest split by largest remainders.
fn dirichlet_hundredths(rng: &mut Rng, k: usize) -> Vec<f64> {
    let e: Vec<f64> = (0..k).map(|_| -rng.unit().ln()).collect();
    let total: f64 = e.iter().sum();
    let spare = 100 - k.min(100);
    let exact: Vec<f64> = e.iter().map(|x| x / total * spare as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| 1 + x.floor() as usize).collect();
    let mut left = 100usize.saturating_sub(counts.iter().sum());
    let mut by_remainder: Vec<usize> = (0..k).collect();
    by_remainder.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &i in by_remainder.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts.into_iter().map(|c| c as f64 / 100.0).collect()
}

/// The settings of query drawing.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryShape {
    /// Most observed variables besides those a level always observes.
    pub max_evidence: usize,
    /// Probability that a counterfactual query also observes the target's factual value.
    pub observe_target: f64,
}

/// A random query of `level` on `model`. Interventions target a variable with descendants and
/// the target is one of them (otherwise the answer would not depend on the intervention);
/// counterfactuals observe the intervened variable's factual value, different from the
/// intervened one.
pub fn query(rng: &mut Rng, model: &Model, level: Level, shape: &QueryShape) -> Resolved {
    let n = model.len();
    let all: Vec<usize> = (0..n).collect();
    let pick_value = |rng: &mut Rng, v: usize| rng.below(model.cards[v]);
    let (target, intervention) = match level {
        Level::Associational => (rng.below(n), Vec::new()),
        _ => {
            let with_children: Vec<usize> =
                all.iter().copied().filter(|&v| model.parents.iter().any(|ps| ps.contains(&v))).collect();
            if with_children.is_empty() {
                (rng.below(n), Vec::new())
            } else {
                let x = with_children[rng.below(with_children.len())];
                let below = model.descendants(&[x]);
                let ys: Vec<usize> = all.iter().copied().filter(|&v| below[v]).collect();
                (ys[rng.below(ys.len())], vec![(x, pick_value(rng, x))])
            }
        }
    };
    let mut evidence = Vec::new();
    if level == Level::Counterfactual {
        if let Some(&(x, v)) = intervention.first() {
            let card = model.cards[x];
            let factual = if card > 1 { (v + 1 + rng.below(card - 1)) % card } else { v };
            evidence.push((x, factual));
        }
        if rng.unit() <= shape.observe_target {
            evidence.push((target, pick_value(rng, target)));
        }
    }
    let taken: Vec<usize> =
        std::iter::once(target).chain(intervention.iter().map(|e| e.0)).chain(evidence.iter().map(|e| e.0)).collect();
    let free: Vec<usize> = all.iter().copied().filter(|v| !taken.contains(v)).collect();
    let extra = rng.range(0, shape.max_evidence);
    for v in rng.choose(&free, extra) {
        evidence.push((v, pick_value(rng, v)));
    }
    let level = if intervention.is_empty() { Level::Associational } else { level };
    Resolved { level, target, evidence, intervention }
}

/// The named form of a resolved query.
pub fn named(model: &Model, q: &Resolved) -> Query {
    let map = |pairs: &[(usize, usize)]| -> BTreeMap<String, String> {
        pairs.iter().map(|&(v, x)| (model.names[v].clone(), model.values[v][x].clone())).collect()
    };
    Query {
        level: q.level,
        target: model.names[q.target].clone(),
        evidence: map(&q.evidence),
        intervention: map(&q.intervention),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wl_hash_ignores_labels_but_not_shape() {
        // 0 -> 1 -> 2 and 0 -> 2, relabelled.
        let a = vec![vec![], vec![0], vec![0, 1]];
        let b = vec![vec![1, 2], vec![], vec![1]];
        assert_eq!(wl_hash(&a), wl_hash(&b));
        // A chain differs from a fork with the same edge count.
        let chain = vec![vec![], vec![0], vec![1]];
        let fork = vec![vec![], vec![0], vec![0]];
        let collider = vec![vec![], vec![], vec![0, 1]];
        assert_ne!(wl_hash(&chain), wl_hash(&fork));
        assert_ne!(wl_hash(&fork), wl_hash(&collider));
    }

    #[test]
    fn rows_are_hundredths_summing_to_one() {
        let mut rng = Rng::new(3);
        for k in 2..=3 {
            for _ in 0..1000 {
                let row = dirichlet_hundredths(&mut rng, k);
                let hundredths: Vec<u64> = row.iter().map(|p| (p * 100.0).round() as u64).collect();
                assert_eq!(hundredths.iter().sum::<u64>(), 100);
                assert!(hundredths.iter().all(|&h| h >= 1));
            }
        }
    }

    #[test]
    fn structure_follows_the_shape() {
        let shape = Shape { variables: 10, roots: (1, 3), parents: (1, 2), values: (2, 3) };
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let s = structure(&mut rng, &shape);
            let roots = s.iter().take_while(|p| p.is_empty()).count();
            assert!((1..=3).contains(&roots));
            assert!(s[roots..].iter().all(|p| (1..=2).contains(&p.len())));
            assert!(s.iter().enumerate().all(|(v, ps)| ps.iter().all(|&p| p < v)));
        }
    }
}
