//! Queries on the three rungs of the causal ladder, as JSON and resolved against a model.

use super::network::Model;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The rung of the causal ladder a query sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// P(Y | evidence): seeing.
    Associational,
    /// P(Y | do(X = x), evidence): doing; the intervention cuts X's incoming edges.
    Interventional,
    /// P(Y_{X=x} | factual evidence): imagining, on the twin network.
    Counterfactual,
}

impl Level {
    /// All levels, in ladder order.
    pub const ALL: [Level; 3] = [Level::Associational, Level::Interventional, Level::Counterfactual];

    /// The lower-case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Level::Associational => "associational",
            Level::Interventional => "interventional",
            Level::Counterfactual => "counterfactual",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| format!("unknown level `{s}`; use associational, interventional or counterfactual"))
    }
}

/// A query as exported: names and value names, so that anyone can check it with their tools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Which rung.
    pub level: Level,
    /// The variable whose distribution is asked for.
    pub target: String,
    /// Observed values; for a counterfactual, the factual observation. A JSON number is read as
    /// the value of that name (`1` as `"1"`).
    #[serde(default, deserialize_with = "value_names")]
    pub evidence: BTreeMap<String, String>,
    /// The intervention do(X = x); empty for an associational query.
    #[serde(default, deserialize_with = "value_names")]
    pub intervention: BTreeMap<String, String>,
}

fn value_names<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            other => Err(serde::de::Error::custom(format!("the value of `{k}` must be a value name, found {other}"))),
        })
        .collect()
}

/// A query resolved against a model: variables and values as indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Which rung.
    pub level: Level,
    /// The target variable.
    pub target: usize,
    /// (variable, value) observations.
    pub evidence: Vec<(usize, usize)>,
    /// (variable, value) interventions.
    pub intervention: Vec<(usize, usize)>,
}

/// A query that does not fit its network: the task's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A name that is not a variable of the network.
    #[error("query: `{0}` is not a variable of the network")]
    UnknownVariable(String),
    /// A value the variable does not take (`what` is `evidence` or `intervention`).
    #[error("query: {what} `{var}` = `{value}`, but `{var}` has values {known:?}")]
    UnknownValue {
        /// Where the pair stands.
        what: &'static str,
        /// The variable.
        var: String,
        /// The value asked for.
        value: String,
        /// The values it takes.
        known: Vec<String>,
    },
    /// An associational query with an intervention, or another level without one.
    #[error("query: {}", intervention_rule(.0))]
    Intervention(Level),
    /// The target is intervened on.
    #[error("query: the target is intervened on, so its distribution is fixed")]
    TargetIntervened,
}

fn intervention_rule(level: &Level) -> String {
    match level {
        Level::Associational => "an associational query has no intervention".into(),
        _ => format!("a {} query needs an intervention", level.name()),
    }
}

impl Query {
    /// Resolves names against `model`; an error names what does not fit.
    pub fn resolve(&self, model: &Model) -> Result<Resolved, QueryError> {
        let var = |name: &str| model.var(name).ok_or_else(|| QueryError::UnknownVariable(name.into()));
        let pairs = |map: &BTreeMap<String, String>, what: &'static str| {
            map.iter()
                .map(|(k, v)| {
                    let i = var(k)?;
                    let x = model.values[i].iter().position(|n| n == v).ok_or_else(|| QueryError::UnknownValue {
                        what,
                        var: k.clone(),
                        value: v.clone(),
                        known: model.values[i].clone(),
                    })?;
                    Ok((i, x))
                })
                .collect::<Result<Vec<_>, QueryError>>()
        };
        let target = var(&self.target)?;
        let evidence = pairs(&self.evidence, "evidence")?;
        let intervention = pairs(&self.intervention, "intervention")?;
        match (self.level, intervention.is_empty()) {
            (Level::Associational, false) | (Level::Interventional | Level::Counterfactual, true) => {
                return Err(QueryError::Intervention(self.level));
            }
            _ => {}
        }
        if intervention.iter().any(|&(x, _)| x == target) {
            return Err(QueryError::TargetIntervened);
        }
        Ok(Resolved { level: self.level, target, evidence, intervention })
    }
}

impl Resolved {
    /// Difficulty: the number of variables in the relevant ancestral subgraph, the ancestral
    /// closure of the target, the evidence and the intervened variables. For interventional
    /// queries it is taken in the mutilated graph (intervened variables lose their parents); for
    /// counterfactual queries in the factual graph, whose ancestors the abduction step reasons over.
    pub fn difficulty(&self, model: &Model) -> usize {
        let mut parents = model.parents.clone();
        if self.level == Level::Interventional {
            for &(x, _) in &self.intervention {
                parents[x].clear();
            }
        }
        let start = std::iter::once(self.target)
            .chain(self.evidence.iter().map(|e| e.0))
            .chain(self.intervention.iter().map(|e| e.0));
        Model::ancestors(&parents, start).into_iter().filter(|&b| b).count()
    }
}

fn assignments(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
}

/// The question as prompt text, with the counterfactual semantics spelled out so that the
/// answer is identifiable from the CPTs alone.
pub fn render_question(q: &Query, target_values: &[String]) -> String {
    let y = &q.target;
    let mut out = String::with_capacity(600);
    match q.level {
        Level::Associational if q.evidence.is_empty() => {
            out.push_str(&format!("Question (associational): what is the marginal distribution of {y}, P({y})?\n"));
        }
        Level::Associational => {
            let e = assignments(&q.evidence);
            out.push_str(&format!("Question (associational): we observe {e}. What is P({y} | {e})?\n"));
        }
        Level::Interventional => {
            let x = assignments(&q.intervention);
            out.push_str(&format!(
                "Question (interventional): we intervene to set {x}, which cuts the intervened variables off from their parents (do({x}))."
            ));
            if q.evidence.is_empty() {
                out.push_str(&format!(" What is P({y} | do({x}))?\n"));
            } else {
                let e = assignments(&q.evidence);
                out.push_str(&format!(" After the intervention we observe {e}. What is P({y} | do({x}), {e})?\n"));
            }
        }
        Level::Counterfactual => {
            let x = assignments(&q.intervention);
            let e = assignments(&q.evidence);
            out.push_str(
                "Counterfactual semantics: each variable V has one independent exogenous selector U[V, pa] for each \
                 assignment pa of its parents, distributed as the CPT row of pa; V takes the value of the selector of \
                 its parents' actual assignment. The factual and the counterfactual world share every selector.\n",
            );
            out.push_str(&format!(
                "Question (counterfactual): in the factual world we observed {e}. Had {x} been the case (an intervention \
                 do({x}) in the same world), what would the distribution of {y} have been?\n"
            ));
        }
    }
    out.push_str(&format!(
        "Give the probabilities of {y} taking the values [{}] in that order. End your reply with one line of the form:\nANSWER [{}]\n",
        target_values.join(", "),
        (0..target_values.len()).map(|k| format!("p{k}")).collect::<Vec<_>>().join(", ")
    ));
    out
}
