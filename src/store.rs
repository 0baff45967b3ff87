//! The run store: one directory per run.
//!
//! ```text
//! runs/<name>/
//!   config.toml          the resolved experiment (written atomically)
//!   run.db               SQLite, WAL: iterations, metrics, samples, reward_terms
//!   checkpoints/it-000012/   policy state after iteration 12 (written to .tmp-*, then renamed)
//! ```
//! Each iteration is committed in one transaction, so `run.db` never holds half an iteration;
//! a checkpoint directory is complete or absent.

use crate::error::{Error, Result};
use anyhow::Context;
use rlvr_engine::{Outcome, Sample, Split, Status, Task};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many checkpoints to keep; older ones are deleted after a new one lands.
const KEEP_CHECKPOINTS: usize = 2;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS iterations(
    iteration INTEGER PRIMARY KEY,
    finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics(iteration INTEGER NOT NULL, name TEXT NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS metrics_by_iteration ON metrics(iteration);
CREATE TABLE IF NOT EXISTS samples(
    iteration INTEGER NOT NULL,
    split TEXT NOT NULL,
    task_index INTEGER NOT NULL,
    sample_index INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    reward REAL,
    failure TEXT,
    trajectory TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_iteration ON samples(iteration);
CREATE TABLE IF NOT EXISTS reward_terms(
    iteration INTEGER NOT NULL,
    split TEXT NOT NULL,
    task_index INTEGER NOT NULL,
    sample_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    weight REAL NOT NULL,
    value REAL,
    error TEXT,
    info TEXT
);
CREATE INDEX IF NOT EXISTS reward_terms_by_iteration ON reward_terms(iteration);
";

/// One stored sample.
#[derive(Clone, Debug)]
pub struct SampleRow {
    /// Training or evaluation episode.
    pub split: Split,
    /// The task's index in its split.
    pub task_index: u64,
    /// The task.
    pub task: Arc<Task>,
    /// The episode and its outcome.
    pub sample: Sample,
}

/// Everything one iteration writes.
pub struct IterationRecord<'a> {
    /// Which iteration.
    pub iteration: u64,
    /// Its metrics by name.
    pub metrics: &'a BTreeMap<String, f64>,
    /// Its stored samples.
    pub samples: &'a [SampleRow],
}

/// A run directory, open.
pub struct RunStore {
    dir: PathBuf,
    db: Connection,
}

impl RunStore {
    /// Makes a new run in `dir` (created if needed); an existing run there is an error, so a
    /// run is never overwritten by accident.
    pub fn create(dir: &Path, config: &str) -> Result<Self> {
        if dir.join("run.db").exists() {
            return Err(Error::BadInput(format!(
                "{} already holds a run; pass --resume to continue it or --out to start elsewhere",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = Self::connect(dir)?;
        store.write_config(config)?;
        Ok(store)
    }

    /// Opens the run in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join("run.db").exists() || !dir.join("config.toml").exists() {
            return Err(Error::BadInput(format!("{} holds no run (no run.db and config.toml)", dir.display())));
        }
        Self::connect(dir)
    }

    /// Opens `run.db` read-only, for reports.
    pub fn open_read_only(dir: &Path) -> Result<Connection> {
        let path = dir.join("run.db");
        if !path.exists() {
            return Err(Error::BadInput(format!("{} holds no run.db", dir.display())));
        }
        Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))
            .map_err(Error::from)
    }

    fn connect(dir: &Path) -> Result<Self> {
        let path = dir.join("run.db");
        let db = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.execute_batch(SCHEMA).with_context(|| format!("preparing {}", path.display()))?;
        Ok(Self { dir: dir.to_path_buf(), db })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored `config.toml`.
    pub fn config(&self) -> Result<String> {
        let p = self.dir.join("config.toml");
        Ok(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)
    }

    /// Replaces `config.toml` atomically.
    pub fn write_config(&self, config: &str) -> Result<()> {
        write_atomic(&self.dir.join("config.toml"), config.as_bytes())
    }

    /// The last committed iteration.
    pub fn last_iteration(&self) -> Result<Option<u64>> {
        Ok(self
            .db
            .query_row("SELECT MAX(iteration) FROM iterations", [], |r| r.get::<_, Option<i64>>(0))?
            .map(|i| i as u64))
    }

    /// Deletes every row of iteration `from` and later: work after the last checkpoint that a
    /// resumed run will redo.
    pub fn discard_from(&mut self, from: u64) -> Result<()> {
        let tx = self.db.transaction()?;
        for table in ["iterations", "metrics", "samples", "reward_terms"] {
            tx.execute(&format!("DELETE FROM {table} WHERE iteration >= ?1"), params![from as i64])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes one iteration in one transaction.
    pub fn commit(&mut self, rec: &IterationRecord<'_>) -> Result<()> {
        let it = rec.iteration as i64;
        let tx = self.db.transaction()?;
        {
            tx.execute(
                "INSERT OR REPLACE INTO iterations(iteration, finished_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                params![it],
            )?;
            let mut m = tx.prepare_cached("INSERT INTO metrics(iteration, name, value) VALUES (?1, ?2, ?3)")?;
            for (name, value) in rec.metrics {
                m.execute(params![it, name, value.is_finite().then_some(*value)])?;
            }
            let mut s = tx.prepare_cached(
                "INSERT INTO samples(iteration, split, task_index, sample_index, task_id, task, status, reward, failure, trajectory)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut t = tx.prepare_cached(
                "INSERT INTO reward_terms(iteration, split, task_index, sample_index, name, weight, value, error, info)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for row in rec.samples {
                let split = split_name(row.split);
                let smp = &row.sample;
                let (status, failure) = match &smp.outcome {
                    Outcome::Failed { stage, error } => ("failed", Some(format!("{stage:?}: {error}"))),
                    Outcome::Scored(_) => (status_name(smp.trajectory.status), None),
                };
                s.execute(params![
                    it,
                    split,
                    row.task_index as i64,
                    smp.sample_index,
                    row.task.id,
                    serde_json::to_string(&row.task.data)?,
                    status,
                    smp.reward(),
                    failure,
                    serde_json::to_string(&smp.trajectory)?,
                ])?;
                if let Outcome::Scored(scored) = &smp.outcome {
                    for term in &scored.terms {
                        let info = (!term.info.is_null()).then(|| term.info.to_string());
                        t.execute(params![
                            it,
                            split,
                            row.task_index as i64,
                            smp.sample_index,
                            term.name,
                            term.weight,
                            term.value.as_ref().ok(),
                            term.value.as_ref().err(),
                            info,
                        ])?;
                    }
                }
            }
        }
        tx.commit().with_context(|| format!("committing iteration {}", rec.iteration))?;
        Ok(())
    }

    /// Writes a checkpoint for `iteration`: `fill` writes into a temporary directory, which is
    /// then renamed into place, so a crash leaves either the whole checkpoint or none.
    pub fn write_checkpoint(&self, iteration: u64, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let root = self.dir.join("checkpoints");
        std::fs::create_dir_all(&root)?;
        let tmp = root.join(format!(".tmp-it-{iteration:06}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        fill(&tmp)?;
        write_atomic(&tmp.join("state.json"), serde_json::json!({ "iteration": iteration }).to_string().as_bytes())?;
        let dest = root.join(checkpoint_name(iteration));
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(&tmp, &dest)?;
        sync_dir(&root);
        let all = self.checkpoints()?;
        for (_, old) in all.iter().rev().skip(KEEP_CHECKPOINTS) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(dest)
    }

    /// The newest complete checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, PathBuf)>> {
        Ok(self.checkpoints()?.pop())
    }

    /// Complete checkpoints, oldest first.
    fn checkpoints(&self) -> Result<Vec<(u64, PathBuf)>> {
        let root = self.dir.join("checkpoints");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Ok(out);
        };
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(it) = name.strip_prefix("it-").and_then(|n| n.parse::<u64>().ok())
                && e.path().join("state.json").exists()
            {
                out.push((it, e.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The connection, for queries of the caller's own.
    pub fn db(&self) -> &Connection {
        &self.db
    }
}

fn checkpoint_name(iteration: u64) -> String {
    format!("it-{iteration:06}")
}

/// The split's name as stored (`train`, `test`).
pub fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Test => "test",
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Terminated => "terminated",
        Status::Truncated => "truncated",
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Every metric of a run as `name -> [(iteration, value)]`, iterations ascending.
pub fn read_metrics(db: &Connection) -> Result<BTreeMap<String, Vec<(u64, f64)>>> {
    let mut stmt = db.prepare("SELECT iteration, name, value FROM metrics ORDER BY name, iteration")?;
    let mut out: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<f64>>(2)?)))?;
    for row in rows {
        let (it, name, value) = row?;
        if let Some(v) = value {
            out.entry(name).or_default().push((it as u64, v));
        }
    }
    Ok(out)
}

/// The number of committed iterations.
pub fn iteration_count(db: &Connection) -> Result<u64> {
    Ok(db.query_row("SELECT COUNT(*) FROM iterations", [], |r| r.get::<_, i64>(0)).optional()?.unwrap_or(0) as u64)
}
