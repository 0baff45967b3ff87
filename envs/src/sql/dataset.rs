//! Spider / BIRD datasets in the layout their releases use, loaded from the user's disk:
//!
//! ```text
//! ROOT/tables.json                       [{"db_id": ..., "table_names_original": [...], ...}]
//! ROOT/dev.json, ROOT/train_spider.json  [{"db_id", "question", "query"}]            (Spider)
//!                                        [{"db_id", "question", "evidence", "SQL"}]  (BIRD)
//! ROOT/database/<db_id>/<db_id>.sqlite   (BIRD: dev_databases/ or train_databases/)
//! ```
//!
//! No such data ships with any package we can reach, so [`write_fixture`] writes a tiny dataset
//! in exactly this layout for tests and examples.

use rlvr_engine::{BoxError, Task, VecTasks};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Settings of a dataset source (the `dataset` table of `[env.config]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// The dataset's root directory.
    pub root: PathBuf,
    /// Questions file of the training split, relative to `root` (e.g. `train_spider.json`).
    #[serde(default)]
    pub train: Option<String>,
    /// Questions file of the test split, relative to `root` (e.g. `dev.json`).
    #[serde(default)]
    pub test: Option<String>,
    /// Databases directory, relative to `root`. Default `database` (BIRD: `dev_databases`).
    #[serde(default = "default_databases")]
    pub databases: String,
    /// Schema file, relative to `root`. Default `tables.json`.
    #[serde(default = "default_tables")]
    pub tables: String,
}

fn default_databases() -> String {
    "database".into()
}

fn default_tables() -> String {
    "tables.json".into()
}

fn read_json(path: &Path) -> Result<Value, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()).into())
}

/// Loads both splits. Every question must name a `db_id` listed in `tables.json` whose database
/// file exists; otherwise the error names the question and the path.
pub fn load(config: &DatasetConfig, compare: &str, keep_distinct: bool) -> Result<VecTasks, BoxError> {
    if config.train.is_none() && config.test.is_none() {
        return Err("dataset: name at least one of `train` and `test` (questions files)".into());
    }
    let tables_path = config.root.join(&config.tables);
    let tables = read_json(&tables_path)?;
    let known: HashSet<&str> = tables
        .as_array()
        .ok_or_else(|| format!("{}: expected a JSON array", tables_path.display()))?
        .iter()
        .filter_map(|t| t.get("db_id").and_then(Value::as_str))
        .collect();
    let split = |file: &Option<String>, tag: &str| -> Result<Vec<Task>, BoxError> {
        let Some(file) = file else {
            return Ok(Vec::new());
        };
        let path = config.root.join(file);
        let rows = read_json(&path)?;
        let rows = rows.as_array().ok_or_else(|| format!("{}: expected a JSON array", path.display()))?;
        let mut checked: HashSet<String> = HashSet::new();
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let field = |k: &str| row.get(k).and_then(Value::as_str);
                let db_id = field("db_id").ok_or_else(|| format!("{}: row {i} has no `db_id`", path.display()))?;
                let question =
                    field("question").ok_or_else(|| format!("{}: row {i} has no `question`", path.display()))?;
                let gold = field("query").or_else(|| field("SQL")).ok_or_else(|| {
                    format!("{}: row {i} has neither `query` (Spider) nor `SQL` (BIRD)", path.display())
                })?;
                if !known.contains(db_id) {
                    return Err(format!(
                        "{}: row {i}: db_id `{db_id}` is not in {}",
                        path.display(),
                        tables_path.display()
                    ));
                }
                let db = config.root.join(&config.databases).join(db_id).join(format!("{db_id}.sqlite"));
                if checked.insert(db_id.to_string()) && !db.is_file() {
                    return Err(format!("{}: row {i}: database file {} does not exist", path.display(), db.display()));
                }
                let mut data = json!({
                    "db": db.to_string_lossy(),
                    "db_id": db_id,
                    "question": question,
                    "gold": gold,
                    "compare": compare,
                    "keep_distinct": keep_distinct,
                });
                if let Some(ev) = field("evidence").filter(|e| !e.trim().is_empty()) {
                    data["evidence"] = json!(ev);
                }
                if let Some(d) = field("difficulty").or_else(|| field("hardness")) {
                    data["level"] = json!(d);
                }
                Ok(Task::new(format!("{tag}-{i}"), data))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(BoxError::from)
    };
    Ok(VecTasks { train: split(&config.train, "train")?, test: split(&config.test, "test")? })
}

/// Writes a tiny dataset in the Spider/BIRD layout under `root`: two databases (`concert`,
/// `library`), `tables.json`, a Spider-style `dev.json` and a BIRD-style `train.json` (with
/// `evidence` and `SQL`). Returns the config that loads it.
pub fn write_fixture(root: &Path) -> Result<DatasetConfig, BoxError> {
    let dbs: [(&str, &str); 2] = [
        (
            "concert",
            "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
             CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, year INTEGER, singer_id INTEGER REFERENCES singer(singer_id));
             INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 52), (2, 'Timbaland', 'United States', 32),
               (3, 'Justin Brown', 'France', 29), (4, 'Rose White', 'France', 41), (5, 'John Nizinik', 'France', 43);
             INSERT INTO concert VALUES (1, 'Auditions', 2014, 1), (2, 'Super bootcamp', 2014, 2), (3, 'Home Visits', 2015, 2),
               (4, 'Week 1', 2014, 3), (5, 'Week 2', 2015, 5);",
        ),
        (
            "library",
            "CREATE TABLE book (book_id INTEGER PRIMARY KEY, title TEXT, author TEXT, price REAL, pages INTEGER);
             INSERT INTO book VALUES (1, 'Dune', 'Herbert', 9.5, 412), (2, 'Emma', 'Austen', 7.0, 474),
               (3, 'Ulysses', 'Joyce', 12.25, 730), (4, 'Persuasion', 'Austen', 7.0, 249);",
        ),
    ];
    let mut tables = Vec::new();
    for (db_id, sql) in dbs {
        let dir = root.join("database").join(db_id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{db_id}.sqlite"));
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path)?;
        conn.execute_batch(sql)?;
        let mut names = Vec::new();
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")?;
        for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
            names.push(name?);
        }
        tables.push(json!({ "db_id": db_id, "table_names_original": names }));
    }
    let write = |name: &str, v: Value| -> Result<(), BoxError> {
        let path = root.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&v)?).map_err(|e| format!("{}: {e}", path.display()).into())
    };
    write("tables.json", Value::Array(tables))?;
    write(
        "dev.json",
        json!([
            {"db_id": "concert", "question": "How many singers do we have?", "query": "SELECT count(*) FROM singer"},
            {"db_id": "concert", "question": "Show the names of singers from France, oldest first.",
             "query": "SELECT name FROM singer WHERE country = 'France' ORDER BY age DESC"},
            {"db_id": "concert", "question": "Show each country and its number of singers.",
             "query": "SELECT country, count(*) FROM singer GROUP BY country"},
            {"db_id": "library", "question": "List the distinct authors.", "query": "SELECT DISTINCT author FROM book"},
        ]),
    )?;
    write(
        "train.json",
        json!([
            {"question_id": 0, "db_id": "library", "question": "What is the title of the most expensive book?",
             "evidence": "most expensive refers to MAX(price)", "SQL": "SELECT title FROM book ORDER BY price DESC LIMIT 1",
             "difficulty": "simple"},
            {"question_id": 1, "db_id": "concert", "question": "Name the singers who gave a concert in 2015.",
             "evidence": "", "SQL": "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id WHERE T2.year = 2015",
             "difficulty": "moderate"},
        ]),
    )?;
    Ok(DatasetConfig {
        root: root.to_path_buf(),
        train: Some("train.json".into()),
        test: Some("dev.json".into()),
        databases: default_databases(),
        tables: default_tables(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::{Split, TaskSource};

    #[test]
    fn loads_spider_and_bird_rows() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_fixture(dir.path()).unwrap();
        let tasks = load(&cfg, "spider", false).unwrap();
        assert_eq!((tasks.len(Split::Train), tasks.len(Split::Test)), (Some(2), Some(4)));
        let bird = tasks.task(Split::Train, 0).unwrap();
        assert_eq!(bird.data["gold"], "SELECT title FROM book ORDER BY price DESC LIMIT 1");
        assert_eq!(bird.data["evidence"], "most expensive refers to MAX(price)");
        assert!(bird.data["db"].as_str().unwrap().ends_with("database/library/library.sqlite"));
        assert!(tasks.task(Split::Train, 1).unwrap().data.get("evidence").is_none(), "empty evidence is dropped");
        assert_eq!(tasks.task(Split::Test, 0).unwrap().data["gold"], "SELECT count(*) FROM singer");
    }

    #[test]
    fn missing_database_and_unknown_db_id_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_fixture(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("database/library/library.sqlite")).unwrap();
        let e = load(&cfg, "spider", false).unwrap_err().to_string();
        assert!(e.contains("library.sqlite does not exist"), "{e}");
        std::fs::write(dir.path().join("tables.json"), "[]").unwrap();
        let e = load(&cfg, "spider", false).unwrap_err().to_string();
        assert!(e.contains("db_id `library` is not in"), "{e}");
        std::fs::remove_file(dir.path().join("tables.json")).unwrap();
        let e = load(&cfg, "spider", false).unwrap_err().to_string();
        assert!(e.contains("tables.json"), "{e}");
    }
}
