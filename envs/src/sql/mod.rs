//! `sql/text2sql-v0`: text-to-SQL on SQLite, single- or multi-turn, with untrusted SQL
//! contained.
//!
//! The prompt shows the database schema as its `CREATE TABLE` text (optionally with sample rows)
//! and a question; the model answers with one query in a ```sql block. In multi-turn mode
//! (`turns > 1`) the model may first run exploratory queries in `<explore>...</explore>` tags and
//! sees each (truncated) result, or the named error or limit it hit, before it commits the final
//! ```sql query. Tasks come from the seeded generator ([`synth`]) or from a Spider/BIRD dataset
//! on disk ([`dataset`]). Its reward is `sql/execution-match` (in `rlvr-rewards`), which runs the
//! final query and the gold query on the task's database through the same [`sandbox`].
//!
//! Each episode works on its own database: an in-memory copy made with SQLite's backup API
//! (multi-turn, writes allowed), or a read-only connection to the file where writes are
//! forbidden (`read_only`, per config or per task) or nothing runs (single-turn). Writes of one
//! rollout are therefore invisible to every other rollout and to the file.

pub mod dataset;
pub mod reward;
pub mod sandbox;
pub mod synth;

use rlvr_rewards::extract::{Fences, fenced_blocks, last_tag};
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Role, Status, Step, Task, TaskSource,
    parse_config,
};
use sandbox::{Limits, Sandbox, render_result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "sql/text2sql-v0";

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// Assistant turns per episode. 1 (default): single-turn, answer with one ```sql block.
    /// N > 1: up to N - 1 exploratory queries in `<explore>` tags, then the final query.
    pub turns: u32,
    /// Forbid writes: episodes use a read-only connection to the file instead of an in-memory
    /// copy (faster reset; a write is reported as `read_only`). A task's own `read_only` field
    /// overrides this. Default false.
    pub read_only: bool,
    /// Sample rows shown under each table in the prompt. Default 0.
    pub sample_rows: usize,
    /// Rows of an exploratory result shown to the model. Default 10.
    pub show_rows: usize,
    /// Characters of an exploratory result shown to the model. Default 2000.
    pub show_chars: usize,
    /// Comparison the tasks ask their reward for: `spider` (test-suite-sql-eval) or `bird`.
    /// Default `spider`.
    pub compare: String,
    /// Spider comparison only: keep DISTINCT (the reference's `--keep_distinct`). Default false,
    /// as in the reference.
    pub keep_distinct: bool,
    /// Limits on each exploratory query.
    pub limits: Limits,
    /// The synthetic generator's settings (used when no `dataset` is given).
    pub synthetic: synth::SynthConfig,
    /// A Spider/BIRD dataset on disk; replaces the synthetic generator.
    pub dataset: Option<dataset::DatasetConfig>,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            turns: 1,
            read_only: false,
            sample_rows: 0,
            show_rows: 10,
            show_chars: 2000,
            compare: "spider".into(),
            keep_distinct: false,
            limits: Limits::default(),
            synthetic: synth::SynthConfig::default(),
            dataset: None,
        }
    }
}

const SINGLE: &str = "You write SQLite queries. Read the database schema and the question, then answer with one SQL \
query in a ```sql code block. Only the last ```sql block counts.";

fn multi_prompt(explorations: u32) -> String {
    format!(
        "You write SQLite queries. Read the database schema and the question. You may first run up to {explorations} \
         exploratory queries, one per message, each inside <explore></explore> tags; you will see its result (truncated) \
         or its error. When ready, give your final query in a ```sql code block; that ends the episode."
    )
}

/// The content of the last ```sql (or ```sqlite) fenced block of `text`, trimmed; fences may
/// open mid-line. `None` if there is none, and when the text ends inside an unclosed block of
/// any language: a generation cut off mid-block has not committed to a final query.
pub fn final_sql(text: &str) -> Option<&str> {
    let mut last = None;
    for block in fenced_blocks(text, Fences::Anywhere) {
        if !block.closed {
            return None;
        }
        if block.info.eq_ignore_ascii_case("sql") || block.info.eq_ignore_ascii_case("sqlite") {
            last = Some(block.body.text);
        }
    }
    last
}

/// The query of the last complete `<explore>...</explore>` of `text`, trimmed.
pub fn explore_query(text: &str) -> Option<&str> {
    last_tag(text, "explore").map(|f| f.text)
}

/// One episode.
pub struct SqlEnv {
    config: Arc<SqlConfig>,
    sandbox: Option<Sandbox>,
    explored: u32,
}

impl SqlEnv {
    /// A fresh environment; `reset` opens the task's database.
    pub fn new(config: Arc<SqlConfig>) -> Self {
        Self { config, sandbox: None, explored: 0 }
    }
}

impl Environment for SqlEnv {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let db = task.str_field("db")?;
        let question = task.str_field("question")?;
        let read_only = task.data.get("read_only").and_then(|v| v.as_bool()).unwrap_or(self.config.read_only);
        let limits = self.config.limits.clone();
        // Single-turn episodes run nothing, so they never need a copy.
        let sandbox = if self.config.turns > 1 && !read_only {
            Sandbox::open_copy(Path::new(db), limits)
        } else {
            Sandbox::open_read_only(Path::new(db), limits)
        }
        .map_err(|e| EnvError::InvalidTask(format!("task {}: {e}", task.id)))?;
        let schema = sandbox
            .schema_text(self.config.sample_rows)
            .map_err(|e| EnvError::InvalidTask(format!("task {}: reading the schema of {db}: {e}", task.id)))?;
        self.sandbox = Some(sandbox);
        self.explored = 0;
        let mut user = format!("Database schema:\n```sql\n{schema}```\n\n");
        if let Some(ev) = task.data.get("evidence").and_then(|v| v.as_str()) {
            user.push_str(&format!("Hint: {ev}\n\n"));
        }
        user.push_str(&format!("Question: {question}"));
        let system = if self.config.turns > 1 { multi_prompt(self.config.turns - 1) } else { SINGLE.to_string() };
        Ok(vec![Message::system(system), Message::user(user)])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let sandbox = self.sandbox.as_mut().ok_or(EnvError::NotReset)?;
        let text = &action.text;
        let turns = self.config.turns;
        if turns > 1
            && let Some(query) = explore_query(text)
        {
            if self.explored + 1 >= turns {
                return Ok(Step {
                    observation: Vec::new(),
                    status: Status::Truncated,
                    info: json!({ "kind": "explore", "limit": "turns", "explored": self.explored }),
                });
            }
            self.explored += 1;
            let left = turns - 1 - self.explored;
            let (mut content, info) = match sandbox.run(query) {
                Ok(r) => (
                    render_result(&r, self.config.show_rows, self.config.show_chars),
                    json!({ "kind": "explore", "rows": r.rows.len(), "error": null }),
                ),
                Err(e) => (
                    format!("Error ({}): {}", e.kind.name(), e.message),
                    json!({ "kind": "explore", "error": e.kind.name(), "limit": e.kind.is_limit().then(|| e.kind.name()) }),
                ),
            };
            content.push_str(&if left == 0 {
                "\nNo exploratory queries left: give your final query in a ```sql block now.".to_string()
            } else {
                format!("\n({left} exploratory queries left.)")
            });
            return Ok(Step::running(vec![Message::tool("sql", content)], info));
        }
        Ok(Step::terminated(
            json!({ "kind": "final", "final_query": final_sql(text).is_some(), "explored": self.explored }),
        ))
    }
}

/// The gold player: in multi-turn mode one look at the tables, then the gold query.
pub fn gold_answer(task: &Task, messages: &[Message], turns: u32) -> Result<String, BoxError> {
    let gold = task.str_field("gold")?;
    if turns > 1 && !messages.iter().any(|m| m.role == Role::Assistant) {
        return Ok("<explore>SELECT name FROM sqlite_master WHERE type = 'table'</explore>".into());
    }
    Ok(format!("```sql\n{gold}\n```"))
}

/// Builds the spec from `[env.config]`.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: SqlConfig = parse_config(config)?;
    if cfg.turns == 0 {
        return Err("turns must be at least 1".into());
    }
    if cfg.compare != "spider" && cfg.compare != "bird" {
        return Err(format!("unknown compare `{}`; use spider or bird", cfg.compare).into());
    }
    let tasks: Arc<dyn TaskSource> = match &cfg.dataset {
        Some(d) => Arc::new(dataset::load(d, &cfg.compare, cfg.keep_distinct)?),
        None => Arc::new(synth::SynthTasks::new(cfg.synthetic.clone(), seed, &cfg.compare, cfg.keep_distinct)?),
    };
    let turns = cfg.turns;
    let cfg = Arc::new(cfg);
    Ok(EnvSpec::new(tasks, move || Ok(SqlEnv::new(Arc::clone(&cfg))), "sql/execution-match")
        .with_gold(move |task, messages| gold_answer(task, messages, turns)))
}

/// Registers `sql/text2sql-v0`.
pub fn register(registry: &mut Registry) {
    reward::register(registry);
    registry.env(
        ID,
        "text-to-SQL on SQLite (synthetic or Spider/BIRD on disk), single- or multi-turn with exploratory queries",
        spec,
    );
    registry.defaults(rlvr_engine::Kind::Env, ID, SqlConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Split;

    fn config(dir: &Path, extra: &str) -> Config {
        toml::from_str(&format!("{extra}\n[synthetic]\ndb_dir = {:?}\n", dir.to_str().unwrap())).unwrap()
    }

    #[test]
    fn final_sql_takes_the_last_closed_sql_block() {
        assert_eq!(final_sql("```sql\nSELECT 1\n```"), Some("SELECT 1"));
        assert_eq!(final_sql("a ```sql\nSELECT 1\n``` b ```SQL\n SELECT 2;\n```"), Some("SELECT 2;"));
        assert_eq!(final_sql("```python\nx\n``` ```sql\nSELECT 3\n```"), Some("SELECT 3"));
        assert_eq!(final_sql("```sql\nSELECT 1\n``` ```python\nx\n```"), Some("SELECT 1"));
        assert_eq!(final_sql("```sql\nSELECT 1"), None);
        assert_eq!(final_sql("SELECT 1"), None);
        assert_eq!(explore_query("<explore> SELECT 1 </explore>"), Some("SELECT 1"));
    }

    #[test]
    fn multi_turn_explores_then_commits_and_errors_are_observations() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(&config(dir.path(), "turns = 3"), 1).unwrap();
        let task = spec.tasks.task(Split::Train, 0).unwrap();
        let mut env = (spec.make)().unwrap();
        let opening = env.reset(&task, 0).unwrap();
        assert!(opening[1].content.contains("CREATE TABLE"), "{}", opening[1].content);
        let s = env.step(&Action::text("<explore>SELEC 1</explore>")).unwrap();
        assert_eq!(s.status, Status::Running);
        assert!(s.observation[0].content.starts_with("Error (syntax):"), "{}", s.observation[0].content);
        assert_eq!(s.info["error"], "syntax");
        let s = env.step(&Action::text("<explore>SELECT 1 AS one</explore>")).unwrap();
        assert!(s.observation[0].content.starts_with("one\n1\n(1 rows)"), "{}", s.observation[0].content);
        assert!(s.observation[0].content.contains("No exploratory queries left"));
        let s = env.step(&Action::text("<explore>SELECT 2</explore>")).unwrap();
        assert_eq!((s.status, &s.info["limit"]), (Status::Truncated, &json!("turns")));
    }

    #[test]
    fn writes_in_one_episode_are_invisible_to_others_and_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(&config(dir.path(), "turns = 4"), 1).unwrap();
        let task = spec.tasks.task(Split::Train, 0).unwrap();
        let (mut a, mut b) = ((spec.make)().unwrap(), (spec.make)().unwrap());
        a.reset(&task, 0).unwrap();
        b.reset(&task, 0).unwrap();
        let tables = "SELECT count(*) FROM sqlite_master WHERE type = 'table'";
        let s = a.step(&Action::text("<explore>CREATE TABLE scratch(a)</explore>")).unwrap();
        assert_eq!(s.info["error"], json!(null), "{:?}", s);
        a.step(&Action::text("<explore>INSERT INTO scratch VALUES (1)</explore>")).unwrap();
        let s = a.step(&Action::text(format!("<explore>{tables}</explore>"))).unwrap();
        assert!(s.observation[0].content.contains("\n3\n"), "{}", s.observation[0].content);
        let s = b.step(&Action::text(format!("<explore>{tables}</explore>"))).unwrap();
        assert!(s.observation[0].content.contains("\n2\n"), "{}", s.observation[0].content);
        let mut file = Sandbox::open_read_only(Path::new(task.str_field("db").unwrap()), Limits::default()).unwrap();
        assert_eq!(file.run(tables).unwrap().rows[0][0], sandbox::Value::Int(2));
        // A read-only task refuses the write and names why.
        let mut ro = task.clone();
        ro.data["read_only"] = json!(true);
        let mut c = (spec.make)().unwrap();
        c.reset(&ro, 0).unwrap();
        let s = c.step(&Action::text("<explore>CREATE TABLE z(a)</explore>")).unwrap();
        assert_eq!(s.info["error"], "read_only");
        assert!(s.observation[0].content.starts_with("Error (read_only):"));
    }

    #[test]
    fn missing_database_is_an_invalid_task_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(&config(dir.path(), ""), 1).unwrap();
        let task = Task::new("x", json!({"db": "/nonexistent/db.sqlite", "question": "q", "gold": "SELECT 1"}));
        let mut env = (spec.make)().unwrap();
        match env.reset(&task, 0) {
            Err(EnvError::InvalidTask(m)) => assert!(m.contains("/nonexistent/db.sqlite"), "{m}"),
            other => panic!("expected InvalidTask, got {:?}", other.map(|_| ())),
        }
    }
}
