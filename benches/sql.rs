//! SQL benchmarks, side by side with the Python reference in one run.
//!
//! ```text
//! python3 -m pip install sqlparse==0.6.1
//! cargo bench --bench sql --no-default-features --features sql
//! ```
//!
//! 1. Execution-match scoring throughput (pairs per second) of the whole `sql/execution-match`
//!    rubric, with 1 and 2 threads, against `benches/sql_exec_match.py` (test-suite-sql-eval's
//!    pipeline with `sqlite3`) on the same databases and (gold, predicted) pairs. The Python
//!    reference opens a connection per query, as test-suite-sql-eval does; it is also run with one
//!    connection per database, as ours keeps, so the ratio is not only connection cost. Every
//!    pair's verdict is compared between the two; any disagreement is printed.
//! 2. Episode reset cost: `sql/text2sql-v0` reset on a 1 MB and a 50 MB database, as an in-memory
//!    copy (backup API, multi-turn) and as a read-only connection (both include reading the
//!    schema for the prompt); Python's `sqlite3` backup of the same file into `:memory:` beside it.
//!
//! Environment: `SQL_BENCH_PAIRS` (default 3000) pairs.

use rlvr::engine::{Config, Environment, Split, Task, Trajectory};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn python(args: &[&str]) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sql_exec_match.py");
    let out = Command::new("python3").arg(&script).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!("python reference failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn score_all(rubric: &rlvr::engine::Rubric, pairs: &[(Task, String)]) -> Vec<f64> {
    pairs
        .iter()
        .map(|(task, completion)| {
            let s = rubric.score(task, &Trajectory::from_completion(vec![], completion));
            s.get("execution_match").expect("execution_match scored")
        })
        .collect()
}

fn throughput(dir: &Path) {
    let n: usize = std::env::var("SQL_BENCH_PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let cfg = rlvr::envs::sql::synth::SynthConfig { db_dir: Some(dir.join("synth")), rows: 200, ..Default::default() };
    let tasks = rlvr::envs::sql::synth::SynthTasks::new(cfg, 1, "spider", false).unwrap();
    use rlvr::engine::TaskSource;
    let mut pairs = Vec::with_capacity(n);
    let jsonl = dir.join("pairs.jsonl");
    let mut file = std::fs::File::create(&jsonl).unwrap();
    for i in 0..n {
        let task = tasks.task(Split::Train, i as u64).unwrap();
        let gold = task.str_field("gold").unwrap().to_string();
        let db = task.str_field("db").unwrap().to_string();
        // Half right, a third wrong (a cut result), the rest wrong (does not parse).
        let pred = match i % 6 {
            0..=2 => gold.clone(),
            3 | 4 => format!("SELECT * FROM ({gold}) LIMIT 2"),
            _ => gold.replacen("SELECT", "SELEC", 1),
        };
        writeln!(file, "{}", json!({"db": db, "gold": gold, "pred": pred})).unwrap();
        pairs.push((Task::new(i.to_string(), json!({"db": db, "gold": gold})), format!("```sql\n{pred}\n```")));
    }
    drop(file);
    let registry = rlvr::builtin_registry();
    let rubric = registry.make_reward("sql/execution-match", &Config::new()).unwrap();

    let t = Instant::now();
    let ours = score_all(&rubric, &pairs);
    let one = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (a, b) = pairs.split_at(n / 2);
    std::thread::scope(|s| {
        let ha = s.spawn(|| score_all(&rubric, a));
        let hb = s.spawn(|| score_all(&rubric, b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let two = n as f64 / t.elapsed().as_secs_f64();
    let matched = ours.iter().filter(|&&v| v == 1.0).count();
    println!("execution match, {n} pairs ({matched} matching), whole rubric:");
    println!("  rlvr   1 thread : {one:>10.0} pairs/s");
    println!("  rlvr   2 threads: {two:>10.0} pairs/s");
    let path = jsonl.to_str().unwrap();
    for (label, args) in
        [("connection per query", vec![path]), ("connection per db   ", vec![path, "--reuse-connection"])]
    {
        let Some(py) = python(&args) else {
            println!("  python ({label}): not run (see stderr)");
            continue;
        };
        let rate = py["pairs_per_s"].as_f64().unwrap();
        println!("  python 1 process, {label}: {rate:>10.0} pairs/s   ratio rlvr(1 thread)/python: {:.1}x", one / rate);
        let theirs: Vec<f64> = py["verdicts"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let differ: Vec<usize> = (0..n).filter(|&i| theirs[i] != ours[i]).collect();
        println!("    verdicts that differ from the reference: {}", differ.len());
        for &i in differ.iter().take(5) {
            println!("      pair {i}: ours {} theirs {}: {}", ours[i], theirs[i], pairs[i].1.replace('\n', " "));
        }
    }
}

fn make_db(path: &Path, bytes: usize) {
    let _ = std::fs::remove_file(path);
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT)").unwrap();
    {
        let mut ins = tx.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in 0..(bytes / 120) as i64 {
            let note: String = (0..80).map(|k| (b'a' + ((i * 31 + k * 7) % 26) as u8) as char).collect();
            ins.execute(rusqlite::params![i, format!("name {i}"), i as f64 * 0.5, note]).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn reset_cost(dir: &Path) {
    println!("episode reset (sql/text2sql-v0):");
    for (label, bytes, reps) in [("1 MB", 1usize << 20, 50u32), ("50 MB", 50 << 20, 5)] {
        let db: PathBuf = dir.join(format!("reset-{bytes}.sqlite"));
        make_db(&db, bytes);
        let size = std::fs::metadata(&db).unwrap().len() as f64 / (1 << 20) as f64;
        let task = Task::new("r", json!({"db": db, "question": "How many rows?", "gold": "SELECT count(*) FROM t"}));
        let mut line = format!("  {label} ({size:.1} MiB file):");
        for (mode, turns) in [("copy", 2u32), ("read-only", 1)] {
            let cfg: Config = toml::from_str(&format!("turns = {turns}")).unwrap();
            let config: rlvr::envs::sql::SqlConfig = rlvr::engine::parse_config(&cfg).unwrap();
            let config = std::sync::Arc::new(config);
            let t = Instant::now();
            for _ in 0..reps {
                let mut env = rlvr::envs::sql::SqlEnv::new(config.clone());
                std::hint::black_box(env.reset(&task, 0).unwrap());
            }
            line.push_str(&format!("  rlvr {mode} {:.2} ms", t.elapsed().as_secs_f64() * 1000.0 / f64::from(reps)));
        }
        if let Some(py) = python(&["--backup", db.to_str().unwrap(), &reps.to_string()]) {
            line.push_str(&format!("  python sqlite3 backup {:.2} ms", py["ms_per_copy"].as_f64().unwrap()));
        }
        println!("{line}");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    throughput(dir.path());
    reset_cost(dir.path());
}
