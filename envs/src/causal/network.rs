//! Causal Bayesian networks over discrete variables: the JSON shape users read and write, its
//! validation, and the compiled form inference runs on.
//!
//! The JSON shape is the public contract of exported tasks (outside tools check our answers
//! against it), so it is plain: variables with names, value names, parent names and CPT rows,
//! parent assignments in row-major order of the parents as listed (the first parent varies
//! slowest).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One variable of a network, exactly as exported and shown in the prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Its name, unique in the network.
    pub name: String,
    /// The names of its values, in the order CPT rows and answers use.
    pub values: Vec<String>,
    /// Its parents (direct causes), by name; their order fixes the order of CPT rows.
    pub parents: Vec<String>,
    /// `cpt[row][k]` = `P(this = values[k] | parents = row's assignment)`, one row per parent
    /// assignment in row-major order of `parents` (the last parent varies fastest).
    pub cpt: Vec<Vec<f64>>,
}

/// A causal Bayesian network: the edges are causal, so interventions cut them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The variables, parents before children in generated networks (any order on import).
    pub variables: Vec<Variable>,
}

/// Why a network cannot be used. Messages name the variable and, for CPTs, the row.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// The JSON does not have the network's shape.
    #[error("network: {0}")]
    Shape(String),
    /// A variable is malformed (names, values, parents, CPT size).
    #[error("variable `{name}`: {reason}")]
    Variable {
        /// The variable.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A CPT row is not a probability distribution.
    #[error("variable `{name}`, CPT row {row} ({assignment}): {reason}")]
    Row {
        /// The variable.
        name: String,
        /// The row index (0-based).
        row: usize,
        /// The parent assignment of that row, as `A=0, B=1`.
        assignment: String,
        /// What is wrong.
        reason: String,
    },
    /// The parent relation has a cycle through this variable.
    #[error("the parents form a cycle through variable `{0}`")]
    Cycle(String),
}

/// Most parent assignments one CPT may have; larger tables are rejected rather than allocated.
pub const MAX_ROWS: usize = 1 << 16;

/// Tolerance on a CPT row's sum.
pub const ROW_SUM_TOLERANCE: f64 = 1e-6;

/// A validated network with variables and values as indices: what inference reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Variable names, indexed like the network's `variables`.
    pub names: Vec<String>,
    /// Value names of each variable.
    pub values: Vec<Vec<String>>,
    /// Number of values of each variable.
    pub cards: Vec<usize>,
    /// Parents of each variable, as indices, in the listed order.
    pub parents: Vec<Vec<usize>>,
    /// CPT of each variable, flat: `cpt[v][row * cards[v] + k]`.
    pub cpt: Vec<Vec<f64>>,
    /// A topological order: every variable after its parents.
    pub order: Vec<usize>,
}

impl Network {
    /// Reads a network from JSON, naming the variable when one is malformed.
    pub fn from_json(value: &Value) -> Result<Self, NetworkError> {
        let Some(obj) = value.as_object() else {
            return Err(NetworkError::Shape("must be an object with a `variables` array".into()));
        };
        if let Some(key) = obj.keys().find(|k| *k != "variables") {
            return Err(NetworkError::Shape(format!("unknown field `{key}`; expected only `variables`")));
        }
        let Some(vars) = obj.get("variables").and_then(Value::as_array) else {
            return Err(NetworkError::Shape("`variables` must be an array".into()));
        };
        let variables = vars
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Variable::deserialize(v).map_err(|e| {
                    let name = v.get("name").and_then(Value::as_str).map(String::from).unwrap_or(format!("#{i}"));
                    NetworkError::Variable { name, reason: e.to_string() }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Network { variables })
    }

    /// Validates the network and indexes it.
    pub fn compile(&self) -> Result<Model, NetworkError> {
        let vars = &self.variables;
        if vars.is_empty() {
            return Err(NetworkError::Shape("has no variables".into()));
        }
        let index: std::collections::HashMap<&str, usize> =
            vars.iter().enumerate().map(|(i, v)| (v.name.as_str(), i)).collect();
        let bad = |v: &Variable, reason: String| NetworkError::Variable { name: v.name.clone(), reason };
        for (i, v) in vars.iter().enumerate() {
            if v.name.trim().is_empty() {
                return Err(bad(v, "the name is empty".into()));
            }
            if index[v.name.as_str()] != i {
                return Err(bad(v, "the name is used by two variables".into()));
            }
            if v.values.is_empty() {
                return Err(bad(v, "has no values".into()));
            }
            if let Some(dup) = first_duplicate(&v.values) {
                return Err(bad(v, format!("value `{dup}` is listed twice")));
            }
        }
        let mut parents = Vec::with_capacity(vars.len());
        for v in vars {
            let mut ps = Vec::with_capacity(v.parents.len());
            for p in &v.parents {
                match index.get(p.as_str()) {
                    None => {
                        return Err(bad(v, format!("parent `{p}` is not a variable of the network")));
                    }
                    Some(_) if *p == v.name => return Err(bad(v, "is its own parent".into())),
                    Some(&j) if ps.contains(&j) => {
                        return Err(bad(v, format!("parent `{p}` is listed twice")));
                    }
                    Some(&j) => ps.push(j),
                }
            }
            parents.push(ps);
        }
        let cards: Vec<usize> = vars.iter().map(|v| v.values.len()).collect();
        let mut cpt = Vec::with_capacity(vars.len());
        for (i, v) in vars.iter().enumerate() {
            let rows = parents[i]
                .iter()
                .try_fold(1usize, |acc, &p| acc.checked_mul(cards[p]).filter(|&r| r <= MAX_ROWS))
                .ok_or_else(|| bad(v, format!("more than {MAX_ROWS} parent assignments")))?;
            if v.cpt.len() != rows {
                return Err(bad(v, format!("the CPT has {} rows; its parents have {rows} assignments", v.cpt.len())));
            }
            let mut flat = Vec::with_capacity(rows * cards[i]);
            for (r, row) in v.cpt.iter().enumerate() {
                let row_err = |reason: String| NetworkError::Row {
                    name: v.name.clone(),
                    row: r,
                    assignment: assignment_label(vars, &parents[i], &cards, r),
                    reason,
                };
                if row.len() != cards[i] {
                    return Err(row_err(format!("has {} entries; the variable has {} values", row.len(), cards[i])));
                }
                if let Some(p) = row.iter().find(|p| !p.is_finite() || **p < 0.0 || **p > 1.0) {
                    return Err(row_err(format!("{p} is not a probability")));
                }
                let sum: f64 = row.iter().sum();
                if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
                    return Err(row_err(format!("the probabilities sum to {sum}, not 1")));
                }
                flat.extend_from_slice(row);
            }
            cpt.push(flat);
        }
        let order = topological_order(&parents).map_err(|v| NetworkError::Cycle(vars[v].name.clone()))?;
        Ok(Model {
            names: vars.iter().map(|v| v.name.clone()).collect(),
            values: vars.iter().map(|v| v.values.clone()).collect(),
            cards,
            parents,
            cpt,
            order,
        })
    }
}

impl Model {
    /// The index of the variable called `name`.
    pub fn var(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True for a model without variables (never the case for a compiled network).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The CPT row index of a parent assignment given as values of the parents in order.
    pub fn row(&self, v: usize, parent_values: impl IntoIterator<Item = usize>) -> usize {
        self.parents[v].iter().zip(parent_values).fold(0, |acc, (&p, x)| acc * self.cards[p] + x)
    }

    /// Every variable `vars` reach by following child edges, the starting ones excluded
    /// unless reachable from another.
    pub fn descendants(&self, vars: &[usize]) -> Vec<bool> {
        let mut children = vec![Vec::new(); self.len()];
        for (c, ps) in self.parents.iter().enumerate() {
            for &p in ps {
                children[p].push(c);
            }
        }
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = vars.iter().flat_map(|&v| children[v].iter().copied()).collect();
        while let Some(v) = stack.pop() {
            if !std::mem::replace(&mut seen[v], true) {
                stack.extend(children[v].iter().copied());
            }
        }
        seen
    }

    /// The ancestral closure of `vars` (themselves included), following `parents`.
    pub fn ancestors(parents: &[Vec<usize>], vars: impl IntoIterator<Item = usize>) -> Vec<bool> {
        let mut seen = vec![false; parents.len()];
        let mut stack: Vec<usize> = vars.into_iter().collect();
        while let Some(v) = stack.pop() {
            if !std::mem::replace(&mut seen[v], true) {
                stack.extend(parents[v].iter().copied());
            }
        }
        seen
    }
}

fn first_duplicate(xs: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    xs.iter().find(|x| !seen.insert(x.as_str())).map(String::as_str)
}

/// `A=0, B=1` for row `r` of a variable with these parents; `no parents` for a root.
fn assignment_label(vars: &[Variable], parents: &[usize], cards: &[usize], mut r: usize) -> String {
    if parents.is_empty() {
        return "no parents".into();
    }
    let mut parts = vec![String::new(); parents.len()];
    for (k, &p) in parents.iter().enumerate().rev() {
        parts[k] = format!("{}={}", vars[p].name, vars[p].values[r % cards[p]]);
        r /= cards[p];
    }
    parts.join(", ")
}

/// Kahn's algorithm; on a cycle, returns a variable on it (one never freed).
fn topological_order(parents: &[Vec<usize>]) -> Result<Vec<usize>, usize> {
    let n = parents.len();
    let mut missing: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut children = vec![Vec::new(); n];
    for (c, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(c);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&v| missing[v] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        for &c in &children[order[i]] {
            missing[c] -= 1;
            if missing[c] == 0 {
                order.push(c);
            }
        }
        i += 1;
    }
    if order.len() == n {
        return Ok(order);
    }
    // A variable still waiting whose every waiting ancestor chain loops: walk up waiting parents.
    let mut v = (0..n).find(|&v| missing[v] > 0).expect("some variable is left");
    for _ in 0..n {
        v = *parents[v].iter().find(|&&p| missing[p] > 0).expect("a waiting variable has a waiting parent");
    }
    Err(v)
}

/// A probability as shown in prompts: two decimals when that is exact (generated CPTs), else
/// the shortest exact form, so the prompt always shows the numbers the reference uses.
pub fn show_probability(p: f64) -> String {
    if ((p * 100.0).round() - p * 100.0).abs() < 1e-9 { format!("{p:.2}") } else { format!("{p}") }
}

/// The network as prompt text: one block per variable, its values, parents and CPT rows.
pub fn render(net: &Network) -> String {
    let mut out = String::with_capacity(net.variables.len() * 160);
    for v in &net.variables {
        out.push_str(&v.name);
        out.push_str(": values {");
        out.push_str(&v.values.join(", "));
        if v.parents.is_empty() {
            out.push_str("}; no parents\n");
        } else {
            out.push_str("}; parents ");
            out.push_str(&v.parents.join(", "));
            out.push('\n');
        }
        let cards: Vec<usize> = v
            .parents
            .iter()
            .map(|p| net.variables.iter().find(|w| w.name == *p).map_or(1, |w| w.values.len()))
            .collect();
        let mut assign = vec![0usize; v.parents.len()];
        for row in &v.cpt {
            out.push_str("  P(");
            out.push_str(&v.name);
            if !v.parents.is_empty() {
                out.push_str(" | ");
                for (k, p) in v.parents.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    let values = &net.variables.iter().find(|w| w.name == *p).map(|w| &w.values);
                    out.push_str(p);
                    out.push('=');
                    out.push_str(values.and_then(|vs| vs.get(assign[k])).map_or("?", String::as_str));
                }
            }
            out.push_str(") = [");
            for (k, p) in row.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                out.push_str(&show_probability(*p));
            }
            out.push_str("]\n");
            // Odometer over parent assignments, last parent fastest.
            for k in (0..assign.len()).rev() {
                assign[k] += 1;
                if assign[k] < cards[k] {
                    break;
                }
                assign[k] = 0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net(v: Value) -> Result<Model, NetworkError> {
        Network::from_json(&v)?.compile()
    }

    #[test]
    fn errors_name_the_variable_and_row() {
        let e = net(json!({"variables": [
            {"name": "A", "values": ["0", "1"], "parents": [], "cpt": [[0.5, 0.5]]},
            {"name": "B", "values": ["0", "1"], "parents": ["A"], "cpt": [[0.5, 0.5], [0.3, 0.6]]}
        ]}))
        .unwrap_err();
        assert_eq!(e.to_string(), "variable `B`, CPT row 1 (A=1): the probabilities sum to 0.8999999999999999, not 1");
        let e =
            net(json!({"variables": [{"name": "A", "values": ["0"], "parents": ["Z"], "cpt": [[1.0]]}]})).unwrap_err();
        assert_eq!(e.to_string(), "variable `A`: parent `Z` is not a variable of the network");
        let e = net(json!({"variables": [{"name": "A", "values": ["0", "1"], "parents": []}]})).unwrap_err();
        assert!(e.to_string().starts_with("variable `A`: missing field `cpt`"), "{e}");
        let e = net(json!({"variables": [{"name": "A", "values": ["0", "1"], "parents": [], "cpt": [[-0.5, 1.5]]}]}))
            .unwrap_err();
        assert_eq!(e.to_string(), "variable `A`, CPT row 0 (no parents): -0.5 is not a probability");
        let e = net(
            json!({"variables": [{"name": "A", "values": ["0", "1"], "parents": [], "cpt": [[0.5, 0.5], [0.5, 0.5]]}]}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "variable `A`: the CPT has 2 rows; its parents have 1 assignments");
    }

    #[test]
    fn cycles_are_found() {
        let e = net(json!({"variables": [
            {"name": "A", "values": ["0"], "parents": ["B"], "cpt": [[1.0]]},
            {"name": "B", "values": ["0"], "parents": ["A"], "cpt": [[1.0]]},
            {"name": "C", "values": ["0"], "parents": [], "cpt": [[1.0]]}
        ]}))
        .unwrap_err();
        assert!(matches!(e, NetworkError::Cycle(ref v) if v == "A" || v == "B"), "{e}");
    }

    #[test]
    fn rows_are_row_major_and_rendered_so() {
        let n = Network::from_json(&json!({"variables": [
            {"name": "C", "values": ["x", "y"], "parents": ["A", "B"], "cpt": [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.25, 0.75]]},
            {"name": "A", "values": ["0", "1"], "parents": [], "cpt": [[0.5, 0.5]]},
            {"name": "B", "values": ["0", "1", "2"], "parents": [], "cpt": [[0.125, 0.375, 0.5]]}
        ]}))
        .unwrap();
        let m = n.compile().unwrap();
        assert_eq!(m.row(0, [1, 2]), 5);
        assert_eq!(m.order, vec![1, 2, 0]);
        let text = render(&n);
        assert!(text.contains("  P(C | A=0, B=1) = [0.20, 0.80]\n"), "{text}");
        assert!(text.contains("  P(C | A=1, B=2) = [0.25, 0.75]\n"), "{text}");
        assert!(text.contains("  P(B) = [0.125, 0.375, 0.50]\n"), "{text}");
    }
}
