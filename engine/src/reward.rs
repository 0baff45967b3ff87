//! Reward functions, and rubrics that combine them into named, weighted terms.

use crate::task::Task;
use crate::trajectory::Trajectory;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A reward value with what the verifier saw (the extracted answer, the limit hit, the rule
/// that failed): the diagnostics that make a wrong reward debuggable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    /// The value; finite.
    pub value: f64,
    /// Diagnostics, or `Null`.
    pub info: Value,
}

impl Reward {
    /// A value with diagnostics.
    pub fn with_info(value: f64, info: Value) -> Self {
        Self { value, info }
    }
}

impl From<f64> for Reward {
    fn from(value: f64) -> Self {
        Self { value, info: Value::Null }
    }
}

impl From<bool> for Reward {
    fn from(ok: bool) -> Self {
        Self::from(if ok { 1.0 } else { 0.0 })
    }
}

/// The verifier could not judge: its own bug, or a task it cannot use (a gold query that fails).
///
/// This is never a zero reward. A wrong answer is `Ok(0.0)`; an `Err` marks the term as failed,
/// and the rollout is left out of training and counted, so a broken verifier shows up in the
/// metrics instead of silently teaching the policy that everything is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RewardError(pub String);

impl From<crate::task::FieldError> for RewardError {
    fn from(e: crate::task::FieldError) -> Self {
        Self(e.to_string())
    }
}

impl RewardError {
    /// An error with the given message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A verifier: a pure function of the task and the trajectory.
///
/// Purity is what lets a saved run be rescored, and lets the runner score episodes on any
/// thread while the policy generates.
pub trait RewardFn: Send + Sync {
    /// Judges one finished episode.
    fn score(&self, task: &Task, trajectory: &Trajectory) -> Result<Reward, RewardError>;
}

impl<F> RewardFn for F
where
    F: Fn(&Task, &Trajectory) -> Result<Reward, RewardError> + Send + Sync,
{
    fn score(&self, task: &Task, trajectory: &Trajectory) -> Result<Reward, RewardError> {
        self(task, trajectory)
    }
}

/// Several terms judged by one call: one reward per term, in the order the terms were given.
///
/// For verifiers whose terms all come from one expensive verdict (a match and its per-category
/// error metrics), so that the verdict is computed once per episode, not once per term.
pub trait RewardsFn: Send + Sync {
    /// Judges one finished episode, for every term of the group.
    fn score_all(&self, task: &Task, trajectory: &Trajectory) -> Result<Vec<Reward>, RewardError>;
}

impl<F> RewardsFn for F
where
    F: Fn(&Task, &Trajectory) -> Result<Vec<Reward>, RewardError> + Send + Sync,
{
    fn score_all(&self, task: &Task, trajectory: &Trajectory) -> Result<Vec<Reward>, RewardError> {
        self(task, trajectory)
    }
}

/// One named term of a rubric. Weight 0 makes it a metric: logged, not rewarded.
#[derive(Clone)]
pub struct Term {
    /// Name in metrics (`reward/<name>`) and in `rlvr score` output.
    pub name: String,
    /// Weight in the total.
    pub weight: f64,
    /// The verifier. For a term of a group, this runs the whole group and keeps this term's
    /// reward; [`Rubric::score`] runs each group once instead.
    pub func: Arc<dyn RewardFn>,
    group: Option<Member>,
}

/// A term's place in its group.
#[derive(Clone)]
struct Member {
    group: Arc<dyn RewardsFn>,
    index: usize,
    len: usize,
}

impl Member {
    /// This term's reward among the group's.
    fn pick(&self, all: &Result<Vec<Reward>, RewardError>) -> Result<Reward, RewardError> {
        match all {
            Ok(rewards) if rewards.len() == self.len => Ok(rewards[self.index].clone()),
            Ok(rewards) => {
                Err(RewardError(format!("returned {} rewards for a group of {} terms", rewards.len(), self.len)))
            }
            Err(e) => Err(e.clone()),
        }
    }
}

impl RewardFn for Member {
    fn score(&self, task: &Task, trajectory: &Trajectory) -> Result<Reward, RewardError> {
        self.pick(&self.group.score_all(task, trajectory))
    }
}

/// Named, weighted reward terms; the total is their weighted sum.
#[derive(Clone, Default)]
pub struct Rubric {
    terms: Vec<Term>,
}

impl std::fmt::Debug for Rubric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terms: Vec<_> = self.terms.iter().map(|t| (&t.name, t.weight)).collect();
        f.debug_struct("Rubric").field("terms", &terms).finish()
    }
}

impl Rubric {
    /// An empty rubric.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a weighted term.
    pub fn term(mut self, name: impl Into<String>, weight: f64, func: impl RewardFn + 'static) -> Self {
        self.terms.push(Term { name: name.into(), weight, func: Arc::new(func), group: None });
        self
    }

    /// Adds the named, weighted `terms` (weight 0 for a metric), all judged by one call of
    /// `func` per episode, which returns their rewards in this order. If it errs or panics,
    /// every term of the group keeps that error.
    pub fn group<N: Into<String>>(
        mut self,
        terms: impl IntoIterator<Item = (N, f64)>,
        func: impl RewardsFn + 'static,
    ) -> Self {
        let terms: Vec<(String, f64)> = terms.into_iter().map(|(n, w)| (n.into(), w)).collect();
        let group: Arc<dyn RewardsFn> = Arc::new(func);
        let len = terms.len();
        for (index, (name, weight)) in terms.into_iter().enumerate() {
            let member = Member { group: Arc::clone(&group), index, len };
            self.terms.push(Term { name, weight, func: Arc::new(member.clone()), group: Some(member) });
        }
        self
    }

    /// Adds a metric: a term of weight 0.
    pub fn metric(self, name: impl Into<String>, func: impl RewardFn + 'static) -> Self {
        self.term(name, 0.0, func)
    }

    /// Adds every term of `other`, with weights multiplied by `scale`.
    pub fn extend(mut self, other: Rubric, scale: f64) -> Self {
        self.terms.extend(other.terms.into_iter().map(|t| Term { weight: t.weight * scale, ..t }));
        self
    }

    /// The terms, in order.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The best total this rubric can give, assuming terms lie in [0, 1].
    pub fn max_total(&self) -> f64 {
        self.terms.iter().map(|t| t.weight.max(0.0)).sum()
    }

    /// Scores one episode. A term that errs, panics or returns a non-finite value keeps its
    /// error; the other terms are still computed.
    pub fn score(&self, task: &Task, trajectory: &Trajectory) -> Scored {
        // Each group runs once; its rewards are kept for its other terms.
        let mut groups: Vec<(*const (), Result<Vec<Reward>, RewardError>)> = Vec::new();
        let terms = self
            .terms
            .iter()
            .map(|t| {
                let result = match &t.group {
                    None => caught(|| t.func.score(task, trajectory)),
                    Some(m) => {
                        let key = Arc::as_ptr(&m.group) as *const ();
                        let i = match groups.iter().position(|(k, _)| *k == key) {
                            Some(i) => i,
                            None => {
                                groups.push((key, caught(|| m.group.score_all(task, trajectory))));
                                groups.len() - 1
                            }
                        };
                        m.pick(&groups[i].1)
                    }
                };
                let (value, info) = match result {
                    Ok(r) if r.value.is_finite() => (Ok(r.value), r.info),
                    Ok(r) => (Err(format!("returned a non-finite value ({})", r.value)), r.info),
                    Err(e) => (Err(e.0), Value::Null),
                };
                TermScore { name: t.name.clone(), weight: t.weight, value, info }
            })
            .collect();
        Scored { terms }
    }
}

/// `f()`, with a panic turned into an error.
fn caught<T>(f: impl FnOnce() -> Result<T, RewardError>) -> Result<T, RewardError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(RewardError(format!("panicked: {}", panic_message(&*panic)))))
}

/// The text of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// One term's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TermScore {
    /// The term's name.
    pub name: String,
    /// Its weight.
    pub weight: f64,
    /// Its value, or the verifier's error.
    pub value: Result<f64, String>,
    /// The verifier's diagnostics.
    pub info: Value,
}

/// Every term's result for one episode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// In rubric order.
    pub terms: Vec<TermScore>,
}

impl Scored {
    /// The weighted sum, or `None` when a term with non-zero weight failed: a total that
    /// silently dropped a term would be a wrong reward.
    pub fn total(&self) -> Option<f64> {
        self.terms.iter().filter(|t| t.weight != 0.0).map(|t| t.value.as_ref().ok().map(|v| v * t.weight)).sum()
    }

    /// The errors of the failed terms, as `name: error` joined by "; ". Terms that failed with
    /// the same message (a broken task fails every term that reads it) are named together,
    /// `a, b: error`, so the message is said once.
    pub fn error(&self) -> Option<String> {
        let mut errs: Vec<(Vec<&str>, String)> = Vec::new();
        for t in &self.terms {
            let Err(e) = &t.value else { continue };
            match errs.iter_mut().find(|(_, m)| *m == *e) {
                Some((names, _)) => names.push(&t.name),
                None => errs.push((vec![&t.name], e.clone())),
            }
        }
        let parts: Vec<String> = errs.iter().map(|(names, e)| format!("{}: {e}", names.join(", "))).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The value of the term `name`, if it exists and succeeded.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.terms.iter().find(|t| t.name == name).and_then(|t| t.value.clone().ok())
    }
}

/// One scored row as `rlvr score` writes it and `rlvr serve`'s `/score` answers it, serialised
/// straight from the scores rather than through a JSON tree: `id` (when the row had one),
/// `reward` (`null` when a weighted term failed), `terms` (each term's value, `null` when it
/// failed), `error`, and `details` (each term's diagnostics); or, for a row that could not be
/// scored at all, `reward: null`, `terms: {}` and the error.
///
/// One type for both, so a row means the same wherever a user reads it.
pub struct ScoreRow<'a> {
    /// Echoed first, so results join back to their source.
    pub id: Option<&'a Value>,
    /// The scores, or `None` when the row could not be scored.
    pub scored: Option<&'a Scored>,
    /// Why the row could not be scored (ignored when `scored` is set).
    pub error: Option<String>,
}

impl Serialize for ScoreRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(id) = self.id {
            m.serialize_entry("id", id)?;
        }
        match self.scored {
            Some(scored) => {
                m.serialize_entry("reward", &scored.total())?;
                m.serialize_entry("terms", &Terms(&scored.terms))?;
                m.serialize_entry("error", &scored.error())?;
                m.serialize_entry("details", &Details(scored))?;
            }
            None => {
                m.serialize_entry("reward", &())?;
                m.serialize_entry("terms", &Terms(&[]))?;
                m.serialize_entry("error", &self.error)?;
            }
        }
        m.end()
    }
}

/// Each term's value (`null` when it failed).
struct Terms<'a>(&'a [TermScore]);

impl Serialize for Terms<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|t| (&t.name, t.value.as_ref().ok())))
    }
}

/// Each term's diagnostics, for the terms that have some.
struct Details<'a>(&'a Scored);

impl Serialize for Details<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.terms.iter().filter(|t| !t.info.is_null()).map(|t| (&t.name, &t.info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> Task {
        Task::new("t", json!({}))
    }

    #[test]
    fn terms_failing_with_one_message_say_it_once() {
        let broken = |_: &Task, _: &Trajectory| -> Result<Reward, RewardError> { Err(RewardError::new("no answer")) };
        let r = Rubric::new()
            .term("a", 1.0, broken)
            .metric("b", |_: &Task, _: &Trajectory| Err(RewardError::new("other")))
            .metric("c", broken);
        let s = r.score(&task(), &Trajectory::from_completion(vec![], "x"));
        assert_eq!(s.error().as_deref(), Some("a, c: no answer; b: other"));
    }

    #[test]
    fn total_is_weighted_sum_and_metrics_do_not_count() {
        let r = Rubric::new()
            .term("a", 2.0, |_: &Task, _: &Trajectory| Ok(Reward::from(0.5)))
            .term("b", 1.0, |_: &Task, _: &Trajectory| Ok(Reward::from(1.0)))
            .metric("m", |_: &Task, _: &Trajectory| Ok(Reward::from(7.0)));
        let s = r.score(&task(), &Trajectory::default());
        assert_eq!(s.total(), Some(2.0));
        assert_eq!(s.get("m"), Some(7.0));
        assert_eq!(r.max_total(), 3.0);
    }

    #[test]
    fn failing_panicking_and_nan_terms_keep_their_errors() {
        let r = Rubric::new()
            .term("err", 1.0, |_: &Task, _: &Trajectory| Err(RewardError::new("gold query failed")))
            .term("panic", 1.0, |_: &Task, _: &Trajectory| -> Result<Reward, RewardError> { panic!("boom") })
            .term("nan", 1.0, |_: &Task, _: &Trajectory| Ok(Reward::from(f64::NAN)))
            .term("ok", 1.0, |_: &Task, _: &Trajectory| Ok(Reward::from(1.0)));
        let s = r.score(&task(), &Trajectory::default());
        assert_eq!(s.total(), None, "a failed weighted term makes the total unknown, not zero");
        assert_eq!(s.terms[0].value, Err("gold query failed".into()));
        assert_eq!(s.terms[1].value, Err("panicked: boom".into()));
        assert!(s.terms[2].value.as_ref().unwrap_err().contains("non-finite"));
        assert_eq!(s.get("ok"), Some(1.0));
        assert!(s.error().unwrap().starts_with("err: gold query failed; panic: panicked: boom"));
    }

    #[test]
    fn a_group_runs_once_per_episode_and_shares_its_errors() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let r = Rubric::new().metric("before", |_: &Task, _: &Trajectory| Ok(Reward::from(2.0))).group(
            [("a", 1.0), ("b", 0.0), ("c", 0.5)],
            move |_: &Task, _: &Trajectory| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(vec![Reward::with_info(1.0, json!({"why": "a"})), Reward::from(3.0), Reward::from(f64::NAN)])
            },
        );
        let s = r.score(&task(), &Trajectory::default());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one call for the three terms");
        let names: Vec<&str> = s.terms.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["before", "a", "b", "c"]);
        assert_eq!((s.get("a"), s.get("b")), (Some(1.0), Some(3.0)));
        assert_eq!(s.terms[1].info, json!({"why": "a"}));
        assert!(s.terms[3].value.as_ref().unwrap_err().contains("non-finite"));
        assert_eq!(r.max_total(), 1.5);
        // A term's own `func` still gives its reward alone.
        assert_eq!(r.terms()[2].func.score(&task(), &Trajectory::default()).unwrap().value, 3.0);

        let failing = Rubric::new()
            .group([("x", 1.0), ("y", 0.0)], |_: &Task, _: &Trajectory| Err(RewardError::new("bad task")))
            .group([("p", 1.0)], |_: &Task, _: &Trajectory| -> Result<Vec<Reward>, RewardError> { panic!("boom") })
            .group([("q", 1.0), ("r", 1.0)], |_: &Task, _: &Trajectory| Ok(vec![Reward::from(1.0)]));
        let s = failing.score(&task(), &Trajectory::default());
        assert_eq!(s.terms[0].value, Err("bad task".into()));
        assert_eq!(s.terms[1].value, Err("bad task".into()));
        assert_eq!(s.terms[2].value, Err("panicked: boom".into()));
        assert_eq!(s.terms[3].value, Err("returned 1 rewards for a group of 2 terms".into()));
        assert_eq!(s.total(), None);
    }

    #[test]
    fn failed_metric_does_not_void_the_total() {
        let r = Rubric::new()
            .term("a", 1.0, |_: &Task, _: &Trajectory| Ok(Reward::from(1.0)))
            .metric("m", |_: &Task, _: &Trajectory| Err(RewardError::new("x")));
        assert_eq!(r.score(&task(), &Trajectory::default()).total(), Some(1.0));
    }
}
