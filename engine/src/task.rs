//! Tasks: one serialisable row each, and the sources that produce them.

use crate::error::BoxError;
use crate::seed;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// One task: prompt material plus whatever its verifier needs, as JSON.
///
/// ## Design
/// A task is data, not behaviour: it is stored with every sampled trajectory, so a saved run can
/// be rescored with a new verifier, and `rlvr score` can build one from a line of JSONL. The
/// environment that reads it and the rubric that scores it are chosen by the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Stable identifier, unique within its source and split.
    pub id: String,
    /// The row itself; its fields are the plugin's business.
    pub data: Value,
}

impl Task {
    /// A task with the given id and data.
    pub fn new(id: impl Into<String>, data: Value) -> Self {
        Self { id: id.into(), data }
    }

    /// The string field `key`, or an error naming the task and the field. With `?` it becomes
    /// an [`EnvError::InvalidTask`](crate::EnvError::InvalidTask) in an environment, a
    /// [`RewardError`](crate::RewardError) in a verifier, a `BoxError` in a gold player.
    pub fn str_field(&self, key: &str) -> Result<&str, FieldError> {
        let missing = |found| FieldError { task: self.id.clone(), field: key.into(), found };
        match self.data.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(missing(Some(kind_of(other)))),
            None => Err(missing(None)),
        }
    }
}

/// A task lacks a field it needs, or holds it with the wrong type: the task's fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The task's id.
    pub task: String,
    /// The field asked for.
    pub field: String,
    /// What the field held instead (`a number`, `null` ...); `None` when it is missing.
    pub found: Option<&'static str>,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { task, field, found } = self;
        match found {
            Some(kind) => write!(f, "task {task}: field `{field}` must be a string, found {kind}"),
            None => write!(f, "task {task}: missing field `{field}`"),
        }
    }
}

impl std::error::Error for FieldError {}

/// For code that reports task errors as text.
impl From<FieldError> for String {
    fn from(e: FieldError) -> Self {
        e.to_string()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Which half of a task source: training tasks, or held-out tasks for evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Tasks the policy trains on.
    Train,
    /// Held-out tasks, never trained on.
    Test,
}

impl Split {
    /// A small number naming the split, for seed derivation.
    pub fn index(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Test => 1,
        }
    }
}

/// Where tasks come from: a seeded generator or a dataset.
///
/// ## Design
/// Tasks are addressed by index, not drawn from an iterator, so any task can be rebuilt from
/// `(split, index)` alone: runs resume without replaying a stream, and threads can build tasks in
/// any order. A generator derives task `i` from its seed and `i`; a dataset returns row `i`.
pub trait TaskSource: Send + Sync {
    /// How many distinct tasks the split holds; `None` for a generator without end.
    fn len(&self, split: Split) -> Option<u64>;

    /// Task `index` of `split`. For a finite source, `index < len`.
    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError>;
}

/// A task source over rows held in memory (a dataset that was loaded from a file).
#[derive(Clone, Debug, Default)]
pub struct VecTasks {
    /// Training rows.
    pub train: Vec<Task>,
    /// Held-out rows.
    pub test: Vec<Task>,
}

impl TaskSource for VecTasks {
    fn len(&self, split: Split) -> Option<u64> {
        Some(self.rows(split).len() as u64)
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        let rows = self.rows(split);
        rows.get(index as usize)
            .cloned()
            .ok_or_else(|| format!("{split:?} split has {} tasks, asked for {index}", rows.len()).into())
    }
}

impl VecTasks {
    fn rows(&self, split: Split) -> &[Task] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }
}

/// Task `index` of `split` from a seeded generator whose two splits partition the problems by
/// a hash of their question, so train and test never share a problem.
///
/// `draw(h)` makes a candidate from the seed `h` and returns its question (the key that decides
/// its split) and the task data. Candidates come from seeds derived from `(seed, split, index,
/// attempt)` until one's question falls in `split`; `test_per_mille` of all problems belong to
/// the test split. The search is bounded, so a generator with too few problems fails with an
/// error instead of hanging. Task ids are `train-<index>` and `test-<index>`.
pub fn draw_split_task(
    seed: u64,
    split: Split,
    index: u64,
    test_per_mille: u64,
    mut draw: impl FnMut(u64) -> Result<(String, Value), BoxError>,
) -> Result<Task, BoxError> {
    for attempt in 0..10_000u64 {
        let (question, data) = draw(seed::derive(seed, &[split.index(), index, attempt]))?;
        let key = question.bytes().fold(seed ^ 0x7e57, |h, b| seed::mix(h ^ u64::from(b)));
        if (key % 1000 < test_per_mille) == (split == Split::Test) {
            let name = if split == Split::Train { "train" } else { "test" };
            return Ok(Task::new(format!("{name}-{index}"), data));
        }
    }
    Err(format!("could not draw a {split:?} problem in 10000 tries; widen the generator's range").into())
}

/// The order in which a run visits a task source's training split.
///
/// Position `k` of the stream maps to a task index: a generator's task `k`, or, for a dataset of
/// `n` rows, row `perm_e(k mod n)` where `perm_e` is a seeded shuffle for epoch `e = k / n`.
pub struct TaskStream {
    source: Arc<dyn TaskSource>,
    seed: u64,
    split: Split,
    epoch: Option<(u64, Vec<u64>)>,
}

impl TaskStream {
    /// A stream over `split` of `source`, shuffled per epoch from `seed`.
    pub fn new(source: Arc<dyn TaskSource>, split: Split, seed: u64) -> Self {
        Self { source, seed, split, epoch: None }
    }

    /// The task index at stream position `k`, or an error if the split is empty.
    pub fn index_at(&mut self, k: u64) -> Result<u64, BoxError> {
        let Some(n) = self.source.len(self.split) else {
            return Ok(k);
        };
        if n == 0 {
            return Err(format!("the {:?} split has no tasks", self.split).into());
        }
        let epoch = k / n;
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.epoch = Some((epoch, shuffled(n, seed::derive(self.seed, &[seed::stream::TASK_ORDER, epoch]))));
        }
        let (_, perm) = self.epoch.as_ref().expect("epoch set above");
        Ok(perm[(k % n) as usize])
    }

    /// The task at stream position `k`, with its index in the split.
    pub fn task_at(&mut self, k: u64) -> Result<(u64, Task), BoxError> {
        let index = self.index_at(k)?;
        Ok((index, self.source.task(self.split, index)?))
    }
}

/// A Fisher-Yates shuffle of `0..n` driven by derived seeds.
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    for i in (1..v.len()).rev() {
        let j = (seed::derive(seed, &[i as u64]) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(n: usize) -> VecTasks {
        VecTasks { train: (0..n).map(|i| Task::new(i.to_string(), json!({ "i": i }))).collect(), test: vec![] }
    }

    #[test]
    fn dataset_stream_visits_every_row_once_per_epoch() {
        let mut s = TaskStream::new(Arc::new(rows(7)), Split::Train, 42);
        for epoch in 0..3 {
            let mut seen: Vec<u64> = (0..7).map(|k| s.index_at(epoch * 7 + k).unwrap()).collect();
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
        }
        let a: Vec<u64> = (0..7).map(|k| s.index_at(k).unwrap()).collect();
        let b: Vec<u64> = (7..14).map(|k| s.index_at(k).unwrap()).collect();
        assert_ne!(a, b, "epochs are shuffled differently");
    }

    #[test]
    fn split_draws_partition_problems_and_fail_instead_of_hanging() {
        let draw = |h: u64| Ok((format!("q{}", h % 50), json!({ "q": h % 50 })));
        let test: std::collections::HashSet<_> =
            (0..20).map(|i| draw_split_task(1, Split::Test, i, 300, draw).unwrap().data).collect();
        for i in 0..200 {
            let t = draw_split_task(1, Split::Train, i, 300, draw).unwrap();
            assert!(!test.contains(&t.data), "{:?} is in both splits", t.data);
            assert_eq!(t.id, format!("train-{i}"));
        }
        let only_one = |_: u64| Ok(("same".to_string(), Value::Null));
        let in_train = draw_split_task(1, Split::Train, 0, 300, only_one).is_ok();
        assert!(draw_split_task(1, if in_train { Split::Test } else { Split::Train }, 0, 300, only_one).is_err());
    }

    #[test]
    fn empty_split_is_an_error_not_a_panic() {
        let mut s = TaskStream::new(Arc::new(rows(3)), Split::Test, 0);
        assert!(s.index_at(0).is_err());
    }

    #[test]
    fn str_field_names_task_and_field() {
        let t = Task::new("t1", json!({ "a": 1 }));
        assert_eq!(t.str_field("a").unwrap_err().to_string(), "task t1: field `a` must be a string, found a number");
        assert_eq!(t.str_field("b").unwrap_err().to_string(), "task t1: missing field `b`");
    }
}
