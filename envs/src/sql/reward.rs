//! `sql/execution-match`: runs the final ```sql query and the gold query on the task's database
//! (through the contained sandbox of [`super::sandbox`]) and compares their results with the
//! semantics people report numbers in:
//!
//! - `spider`: test-suite-sql-eval's `eval_exec_match` + `result_eq`. Both queries get its
//!   post-processing (`> =` to `>=` ...), DISTINCT tokens removed unless `keep_distinct`, and
//!   `YEAR(CURDATE())` replaced by 2020. Row order matters only when the (processed) gold query
//!   contains `order by`; otherwise rows compare as a multiset. Columns may be permuted. Values
//!   compare as Python compares them (`1 == 1.0`), including the reference's quick rejection,
//!   which sorts each row by `str(value) + str(type(value))`.
//! - `bird`: BIRD's `calculate_ex`: `set(predicted) == set(gold)`: order and duplicates ignored,
//!   column order significant.
//!
//! Ours, off by default: `float_tolerance = t` treats two numbers as equal when
//! `|a - b| <= t * max(1, |a|, |b|)`; rows are then aligned by sorting before comparison.
//!
//! Terms: `execution_match` (weight 1), `format` (a final query that SQLite can parse; a metric
//! unless `format_weight` says otherwise), and the metric `exploratory_queries`. A gold query
//! that fails, or a missing database, is a verifier error, never a zero.

use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use super::sandbox::{ErrorKind, Limits, QueryError, QueryResult, Sandbox, Value};
use super::{explore_query, final_sql};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The id this reward is registered under.
pub const ID: &str = "sql/execution-match";

/// Settings of the reward's config. `compare`, `keep_distinct` and `float_tolerance` may also be
/// given per task, in fields of the same names, which win.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecMatchConfig {
    /// `spider` or `bird`. Default `spider`.
    pub compare: String,
    /// Spider only: keep DISTINCT instead of removing it from both queries. Default false, as in
    /// test-suite-sql-eval (`--keep_distinct` off).
    pub keep_distinct: bool,
    /// Ours: relative-or-absolute tolerance for numbers. Default none (exact, as the references).
    pub float_tolerance: Option<f64>,
    /// Weight of the `format` term. Default 0 (a metric), so the reward stays 1.0 or 0.0.
    pub format_weight: f64,
    /// Limits on each query (gold and predicted).
    pub limits: Limits,
}

impl Default for ExecMatchConfig {
    fn default() -> Self {
        Self {
            compare: "spider".into(),
            keep_distinct: false,
            float_tolerance: None,
            format_weight: 0.0,
            limits: Limits::default(),
        }
    }
}

/// Which comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// test-suite-sql-eval.
    Spider,
    /// BIRD.
    Bird,
}

impl Compare {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "spider" => Ok(Compare::Spider),
            "bird" => Ok(Compare::Bird),
            other => Err(format!("unknown compare `{other}`; use spider or bird")),
        }
    }
}

struct Settings {
    compare: Compare,
    keep_distinct: bool,
    tolerance: Option<f64>,
}

impl Settings {
    fn for_task(cfg: &ExecMatchConfig, task: &Task) -> Result<Self, RewardError> {
        let d = &task.data;
        let compare = d.get("compare").and_then(|v| v.as_str()).unwrap_or(&cfg.compare);
        let tolerance = match d.get("float_tolerance") {
            Some(v) if v.is_null() => None,
            Some(v) => {
                Some(v.as_f64().ok_or_else(|| RewardError::new("task field `float_tolerance` must be a number"))?)
            }
            None => cfg.float_tolerance,
        };
        if let Some(t) = tolerance
            && !(t >= 0.0 && t.is_finite())
        {
            return Err(RewardError::new(format!("float_tolerance must be a finite number >= 0, got {t}")));
        }
        Ok(Self {
            compare: Compare::parse(compare).map_err(RewardError)?,
            keep_distinct: d.get("keep_distinct").and_then(|v| v.as_bool()).unwrap_or(cfg.keep_distinct),
            tolerance,
        })
    }
}

/// The gold query of a task: `gold`, or a Spider (`query`) / BIRD (`SQL`) row's own field.
fn gold_of(task: &Task) -> Result<&str, RewardError> {
    ["gold", "query", "SQL"]
        .iter()
        .find_map(|k| task.data.get(*k).and_then(|v| v.as_str()))
        .ok_or_else(|| RewardError::new(format!("task {}: missing field `gold` (the gold SQL query)", task.id)))
}

// ---------------------------------------------------------------------------------------------
// Query rewriting, as test-suite-sql-eval does it.

/// test-suite-sql-eval's `postprocess`: joins `> =`, `< =` and `! =`.
pub fn postprocess(sql: &str) -> String {
    sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")
}

/// test-suite-sql-eval's `replace_cur_year`: `YEAR(CURDATE())` (any case, any spaces, and the
/// spaces after it) becomes `2020`.
pub fn replace_cur_year(sql: &str) -> String {
    fn ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    fn word(b: &[u8], i: usize, w: &str) -> Option<usize> {
        let end = i + w.len();
        (end <= b.len() && b[i..end].eq_ignore_ascii_case(w.as_bytes())).then_some(end)
    }
    fn punct(b: &[u8], i: usize, c: u8) -> Option<usize> {
        (b.get(i) == Some(&c)).then_some(i + 1)
    }
    let b = sql.as_bytes();
    let matches_at = |i: usize| -> Option<usize> {
        let i = ws(b, word(b, i, "year")?);
        let i = ws(b, punct(b, i, b'(')?);
        let i = ws(b, word(b, i, "curdate")?);
        let i = ws(b, punct(b, i, b'(')?);
        let i = ws(b, punct(b, i, b')')?);
        let i = ws(b, punct(b, i, b')')?);
        Some(i)
    };
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        match matches_at(i) {
            Some(end) => {
                out.push_str(&sql[copied..i]);
                out.push_str("2020");
                i = end;
                copied = end;
            }
            None => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    out
}

/// test-suite-sql-eval's `remove_distinct`: keeps the first statement (as `sqlparse.parse(s)[0]`
/// does) and drops every token that reads `distinct` in any case, keeping all other text as it
/// was. Strings, quoted identifiers and comments are single tokens, so a `'distinct'` literal
/// stays.
pub fn remove_distinct(sql: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let mut take_until = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                              stop: &dyn Fn(char) -> bool| {
            while let Some(&(i, d)) = chars.peek() {
                if stop(d) {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
        };
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                loop {
                    match chars.next() {
                        None => break,
                        Some((i, d)) if d == close => {
                            end = i + 1;
                            // A doubled quote is an escaped quote inside the token.
                            if close != ']' && chars.peek().map(|&(_, n)| n) == Some(close) {
                                chars.next();
                                continue;
                            }
                            break;
                        }
                        Some((i, d)) => end = i + d.len_utf8(),
                    }
                }
            }
            '-' if chars.peek().map(|&(_, n)| n) == Some('-') => take_until(&mut chars, &|d| d == '\n'),
            '/' if chars.peek().map(|&(_, n)| n) == Some('*') => {
                chars.next();
                let mut prev = ' ';
                end = sql.len();
                for (i, d) in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        end = i + 1;
                        break;
                    }
                    prev = d;
                }
            }
            '@' | ':' | '$' | '?' => take_until(&mut chars, &|d| !(is_word(d) || d == '$' || d == '#')),
            c if is_word(c) => take_until(&mut chars, &|d| !(is_word(d) || d == '$' || d == '#')),
            ';' => {
                out.push(';');
                return out;
            }
            _ => {}
        }
        let token = &sql[start..end];
        if !token.eq_ignore_ascii_case("distinct") {
            out.push_str(token);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Comparison.

/// Python's `repr(float)` (which `str` equals): the shortest round-trip digits, in fixed notation
/// for exponents in [-4, 16) and scientific (`1e+16`, `1.5e-05`) otherwise.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let point = exp as usize + 1;
            if digits.len() <= point {
                format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { '"' } else { '\'' };
    let mut s = format!("b{quote}");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c == quote as u8 => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

/// The reference's sort key of a cell: `str(x) + str(type(x))`.
fn py_sort_key(v: &Value) -> String {
    match v {
        Value::Null => "None<class 'NoneType'>".into(),
        Value::Int(i) => format!("{i}<class 'int'>"),
        Value::Real(f) => format!("{}<class 'float'>", py_float_repr(*f)),
        Value::Text(s) => format!("{s}<class 'str'>"),
        Value::Blob(b) => format!("{}<class 'bytes'>", py_bytes_repr(b)),
    }
}

/// The reference's `unorder_row`: the row's values sorted (stably) by [`py_sort_key`].
fn unorder_row(row: &[Value]) -> Vec<&Value> {
    if row.len() < 2 {
        return row.iter().collect();
    }
    let mut keyed: Vec<(String, &Value)> = row.iter().map(|v| (py_sort_key(v), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// The reference's `quick_rej`: true when the rows, each unordered, agree (as lists when order
/// matters, as sets otherwise). A necessary condition of equality, and part of its definition:
/// its string sort can separate `1` from `1.0`, and the reference then rejects.
fn quick_rej(r1: &[Vec<Value>], r2: &[Vec<Value>], order_matters: bool) -> bool {
    let s1: Vec<Vec<&Value>> = r1.iter().map(|r| unorder_row(r)).collect();
    let s2: Vec<Vec<&Value>> = r2.iter().map(|r| unorder_row(r)).collect();
    if order_matters { s1 == s2 } else { s1.iter().collect::<HashSet<_>>() == s2.iter().collect::<HashSet<_>>() }
}

/// Calls `f` with each permutation `p` (gold column `i` <- predicted column `p[i]`) allowed by
/// `allowed[i][j]`, until `f` returns true.
fn any_permutation(allowed: &[Vec<bool>], f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
    fn go(
        i: usize,
        allowed: &[Vec<bool>],
        used: &mut [bool],
        perm: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        if i == allowed.len() {
            return f(perm);
        }
        for j in 0..allowed.len() {
            if allowed[i][j] && !used[j] {
                used[j] = true;
                perm.push(j);
                if go(i + 1, allowed, used, perm, f) {
                    return true;
                }
                perm.pop();
                used[j] = false;
            }
        }
        false
    }
    go(0, allowed, &mut vec![false; allowed.len()], &mut Vec::with_capacity(allowed.len()), f)
}

/// test-suite-sql-eval's `result_eq(result1 = gold, result2 = predicted, order_matters)`.
///
/// The reference prunes column permutations with 20 randomly sampled rows when there are more
/// than 3 columns; that only removes permutations that cannot match, so checking every row here
/// gives the same answer deterministically.
pub fn spider_result_eq(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool) -> bool {
    if gold.is_empty() && pred.is_empty() {
        return true;
    }
    if gold.len() != pred.len() {
        return false;
    }
    let n = gold[0].len();
    if pred[0].len() != n {
        return false;
    }
    if !quick_rej(gold, pred, order_matters) {
        return false;
    }
    let gold_cols: Vec<HashSet<&Value>> = (0..n).map(|i| gold.iter().map(|r| &r[i]).collect()).collect();
    let allowed: Vec<Vec<bool>> =
        (0..n).map(|i| (0..n).map(|j| pred.iter().all(|r| gold_cols[i].contains(&r[j]))).collect()).collect();
    let mut gold_counts: HashMap<Vec<&Value>, i64> = HashMap::new();
    if !order_matters {
        for r in gold {
            *gold_counts.entry(r.iter().collect()).or_default() += 1;
        }
    }
    any_permutation(&allowed, &mut |perm| {
        if order_matters {
            gold.iter().zip(pred).all(|(g, p)| perm.iter().enumerate().all(|(i, &j)| g[i] == p[j]))
        } else {
            let mut counts = gold_counts.clone();
            pred.iter().all(|p| {
                let key: Vec<&Value> = perm.iter().map(|&j| &p[j]).collect();
                match counts.get_mut(&key) {
                    Some(c) if *c > 0 => {
                        *c -= 1;
                        true
                    }
                    _ => false,
                }
            })
        }
    })
}

/// BIRD's `calculate_ex`: `set(predicted) == set(gold)`.
pub fn bird_eq(pred: &[Vec<Value>], gold: &[Vec<Value>]) -> bool {
    pred.iter().map(Vec::as_slice).collect::<HashSet<_>>() == gold.iter().map(Vec::as_slice).collect::<HashSet<_>>()
}

fn close(a: &Value, b: &Value, tol: f64) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= tol * 1f64.max(x.abs()).max(y.abs()),
        _ => a == b,
    }
}

fn total_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Int(_) | Value::Real(_) => 1,
        Value::Text(_) => 2,
        Value::Blob(_) => 3,
    };
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => std::cmp::Ordering::Equal,
        },
    })
}

fn sorted_rows<'a>(rows: impl Iterator<Item = Vec<&'a Value>>) -> Vec<Vec<&'a Value>> {
    let mut v: Vec<Vec<&Value>> = rows.collect();
    v.sort_by(|a, b| {
        a.iter().zip(b.iter()).map(|(x, y)| total_order(x, y)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    v
}

fn rows_close(a: &[Vec<&Value>], b: &[Vec<&Value>], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q, tol)))
}

/// Ours: the Spider rules (order only with ORDER BY, columns permutable, multiset rows) with
/// numbers equal within `tol`; unordered rows are aligned by sorting.
pub fn spider_eq_tolerant(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool, tol: f64) -> bool {
    if gold.is_empty() && pred.is_empty() {
        return true;
    }
    if gold.len() != pred.len() || gold[0].len() != pred[0].len() {
        return false;
    }
    let n = gold[0].len();
    fn column(rows: &[Vec<Value>], i: usize, sort: bool) -> Vec<&Value> {
        let mut c: Vec<&Value> = rows.iter().map(|r| &r[i]).collect();
        if sort {
            c.sort_by(|a, b| total_order(a, b));
        }
        c
    }
    let allowed: Vec<Vec<bool>> = (0..n)
        .map(|i| {
            let g = column(gold, i, !order_matters);
            (0..n).map(|j| g.iter().zip(column(pred, j, !order_matters)).all(|(a, b)| close(a, b, tol))).collect()
        })
        .collect();
    let gold_rows = if order_matters {
        gold.iter().map(|r| r.iter().collect()).collect()
    } else {
        sorted_rows(gold.iter().map(|r| r.iter().collect()))
    };
    any_permutation(&allowed, &mut |perm| {
        let permuted = pred.iter().map(|p| perm.iter().map(|&j| &p[j]).collect());
        let rows: Vec<Vec<&Value>> = if order_matters { permuted.collect() } else { sorted_rows(permuted) };
        rows_close(&gold_rows, &rows, tol)
    })
}

/// Ours: BIRD's set rule with numbers equal within `tol` (distinct rows aligned by sorting).
pub fn bird_eq_tolerant(pred: &[Vec<Value>], gold: &[Vec<Value>], tol: f64) -> bool {
    fn distinct(rows: &[Vec<Value>]) -> Vec<Vec<&Value>> {
        let set: HashSet<&[Value]> = rows.iter().map(Vec::as_slice).collect();
        sorted_rows(set.into_iter().map(|r| r.iter().collect()))
    }
    rows_close(&distinct(pred), &distinct(gold), tol)
}

// ---------------------------------------------------------------------------------------------
// Execution.

struct Cached {
    path: PathBuf,
    limits: Limits,
    stamp: (Option<SystemTime>, u64),
    sandbox: Sandbox,
}

thread_local! {
    /// Read-only sandboxes by database, per scoring thread: opening one and reading its schema
    /// costs more than a typical Spider query, and a rubric scores many episodes per database.
    static SANDBOXES: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

const CACHED_DATABASES: usize = 16;

/// Runs `f` on a read-only sandbox of `path`, reusing this thread's open one if the file has not
/// changed (same modification time and length).
fn with_sandbox<T>(path: &Path, limits: &Limits, f: impl FnOnce(&mut Sandbox) -> T) -> Result<T, RewardError> {
    let meta = std::fs::metadata(path).map_err(|e| RewardError::new(format!("database {}: {e}", path.display())))?;
    let stamp = (meta.modified().ok(), meta.len());
    SANDBOXES.with(|cell| {
        let mut cache = cell.borrow_mut();
        let hit = cache.iter().position(|c| c.path == path && c.stamp == stamp && &c.limits == limits);
        let i = match hit {
            Some(i) => i,
            None => {
                let sandbox =
                    Sandbox::open_read_only(path, limits.clone()).map_err(|e| RewardError::new(e.to_string()))?;
                cache.retain(|c| c.path != path);
                if cache.len() >= CACHED_DATABASES {
                    cache.remove(0);
                }
                cache.push(Cached { path: path.to_path_buf(), limits: limits.clone(), stamp, sandbox });
                cache.len() - 1
            }
        };
        Ok(f(&mut cache[i].sandbox))
    })
}

/// The outcome of comparing one predicted query with the gold query.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// Whether the results match.
    pub matched: bool,
    /// Diagnostics: the error or limit the predicted query hit, row counts, `order_matters`.
    pub info: serde_json::Value,
}

fn pred_failed(e: &QueryError) -> Verdict {
    Verdict {
        matched: false,
        info: json!({
            "error": e.kind.name(),
            "limit": e.kind.is_limit().then(|| e.kind.name()),
            "message": e.message,
        }),
    }
}

fn gold_failed(db: &Path, gold: &str, e: impl std::fmt::Display) -> RewardError {
    RewardError::new(format!("gold query failed on {}: {e}; query: {gold}", db.display()))
}

/// Compares `pred` with `gold` on the database at `db` under `compare`, exactly as the
/// reference evaluators would (or with `tolerance`, ours). A failing gold query is an `Err`.
pub fn execution_match(
    db: &Path,
    pred: &str,
    gold: &str,
    compare: Compare,
    keep_distinct: bool,
    tolerance: Option<f64>,
    limits: &Limits,
) -> Result<Verdict, RewardError> {
    with_sandbox(db, limits, |sb| match compare {
        Compare::Spider => {
            let (mut p, mut g) = (postprocess(pred), postprocess(gold));
            if !keep_distinct {
                p = remove_distinct(&p);
                g = remove_distinct(&g);
            }
            let order_matters = g.to_lowercase().contains("order by");
            let gold_rows = sb.run(&replace_cur_year(&g)).map_err(|e| gold_failed(db, gold, e))?;
            let pred_rows = match sb.run(&replace_cur_year(&p)) {
                Ok(r) => r,
                Err(e) => return Ok(pred_failed(&e)),
            };
            let matched = match tolerance {
                None => spider_result_eq(&gold_rows.rows, &pred_rows.rows, order_matters),
                Some(t) => spider_eq_tolerant(&gold_rows.rows, &pred_rows.rows, order_matters, t),
            };
            Ok(verdict(matched, &gold_rows, &pred_rows, json!({ "order_matters": order_matters })))
        }
        Compare::Bird => {
            // BIRD runs the prediction first, and its `sqlite3` fails on text that is not UTF-8.
            let pred_rows = match sb.run(pred) {
                Ok(r) if r.invalid_utf8 => {
                    return Ok(pred_failed(&QueryError {
                        kind: ErrorKind::Runtime,
                        message: "Could not decode to UTF-8".into(),
                    }));
                }
                Ok(r) => r,
                Err(e) => return Ok(pred_failed(&e)),
            };
            let gold_rows = sb.run(gold).map_err(|e| gold_failed(db, gold, e))?;
            if gold_rows.invalid_utf8 {
                return Err(gold_failed(db, gold, "its result holds text that is not UTF-8"));
            }
            let matched = match tolerance {
                None => bird_eq(&pred_rows.rows, &gold_rows.rows),
                Some(t) => bird_eq_tolerant(&pred_rows.rows, &gold_rows.rows, t),
            };
            Ok(verdict(matched, &gold_rows, &pred_rows, json!({})))
        }
    })?
}

fn verdict(matched: bool, gold: &QueryResult, pred: &QueryResult, mut info: serde_json::Value) -> Verdict {
    info["gold_rows"] = json!(gold.rows.len());
    info["pred_rows"] = json!(pred.rows.len());
    info["error"] = json!(null);
    Verdict { matched, info }
}

/// Builds the rubric: `execution_match` (weight 1), `format` (weight `format_weight`, default 0)
/// and the metric `exploratory_queries`.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: ExecMatchConfig = parse_config(config)?;
    Compare::parse(&cfg.compare)?;
    if let Some(t) = cfg.float_tolerance
        && !(t >= 0.0 && t.is_finite())
    {
        return Err(format!("float_tolerance must be a finite number >= 0, got {t}").into());
    }
    let format_weight = cfg.format_weight;
    let (c1, c2) = (cfg.clone(), cfg);
    Ok(Rubric::new()
        .term("execution_match", 1.0, move |task: &Task, tr: &Trajectory| {
            let s = Settings::for_task(&c1, task)?;
            let db = Path::new(task.str_field("db")?);
            let gold = gold_of(task)?;
            let Some(pred) = final_sql(tr.final_answer()) else {
                return Ok(Reward::with_info(0.0, json!({ "error": "no_sql_block" })));
            };
            let v = execution_match(db, pred, gold, s.compare, s.keep_distinct, s.tolerance, &c1.limits)?;
            let mut info = v.info;
            info["compare"] = json!(if s.compare == Compare::Spider { "spider" } else { "bird" });
            info["query"] = json!(pred);
            Ok(Reward::with_info(if v.matched { 1.0 } else { 0.0 }, info))
        })
        .term("format", format_weight, move |task: &Task, tr: &Trajectory| {
            let Some(pred) = final_sql(tr.final_answer()) else {
                return Ok(Reward::with_info(0.0, json!({ "error": "no_sql_block" })));
            };
            let db = Path::new(task.str_field("db")?);
            let checked = with_sandbox(db, &c2.limits, |sb| sb.check(&postprocess(pred)))?;
            Ok(match checked {
                Err(e) if matches!(e.kind, ErrorKind::Syntax | ErrorKind::Empty | ErrorKind::MultipleStatements) => {
                    Reward::with_info(0.0, json!({ "error": e.kind.name(), "message": e.message }))
                }
                _ => Reward::from(1.0),
            })
        })
        .metric("exploratory_queries", |_: &Task, tr: &Trajectory| {
            Ok(Reward::from(tr.assistant_messages().filter(|m| explore_query(&m.content).is_some()).count() as f64))
        }))
}

/// Registers `sql/execution-match`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        ID,
        "runs the final ```sql query and the gold query on the task's SQLite database; compares results as \
         test-suite-sql-eval (spider) or BIRD (bird) do",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, ID, ExecMatchConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use Value::{Int as I, Null as N, Real as R};

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn rows(r: &[&[Value]]) -> Vec<Vec<Value>> {
        r.iter().map(|r| r.to_vec()).collect()
    }

    #[test]
    fn spider_rows_are_a_multiset_unless_gold_orders() {
        let a = rows(&[&[I(1)], &[I(2)]]);
        let b = rows(&[&[I(2)], &[I(1)]]);
        assert!(spider_result_eq(&a, &b, false));
        assert!(!spider_result_eq(&a, &b, true));
        assert!(spider_result_eq(&a, &a, true));
    }

    #[test]
    fn spider_columns_may_be_permuted_bird_columns_may_not() {
        let a = rows(&[&[I(1), t("x")], &[I(2), t("y")]]);
        let b = rows(&[&[t("y"), I(2)], &[t("x"), I(1)]]);
        assert!(spider_result_eq(&a, &b, false));
        assert!(!spider_result_eq(&a, &b, true), "rows are in another order");
        assert!(!bird_eq(&b, &a));
        // A permutation must be consistent across rows: here col 0 <-> col 1 only in one row.
        let c = rows(&[&[I(1), I(2)], &[I(3), I(4)]]);
        let d = rows(&[&[I(2), I(1)], &[I(3), I(4)]]);
        assert!(!spider_result_eq(&c, &d, false));
        // Five columns: the reference's sampled pruning path.
        let e = rows(&[&[I(1), I(2), I(3), I(4), I(5)], &[I(6), I(7), I(8), I(9), I(10)]]);
        let f = rows(&[&[I(5), I(4), I(3), I(2), I(1)], &[I(10), I(9), I(8), I(7), I(6)]]);
        assert!(spider_result_eq(&e, &f, true));
    }

    #[test]
    fn duplicates_count_for_spider_not_for_bird() {
        let a = rows(&[&[I(1)], &[I(1)], &[I(2)]]);
        let b = rows(&[&[I(1)], &[I(2)], &[I(2)]]);
        assert!(!spider_result_eq(&a, &b, false), "same set, different multiset");
        assert!(bird_eq(&a, &b));
        let c = rows(&[&[I(1)], &[I(2)]]);
        assert!(!spider_result_eq(&a, &c, false), "different lengths");
        assert!(bird_eq(&a, &c));
    }

    #[test]
    fn one_equals_one_point_zero() {
        assert!(spider_result_eq(&rows(&[&[I(1)]]), &rows(&[&[R(1.0)]]), false));
        assert!(bird_eq(&rows(&[&[I(3), t("a")]]), &rows(&[&[R(3.0), t("a")]])));
        assert!(!spider_result_eq(&rows(&[&[I(1)]]), &rows(&[&[R(1.5)]]), false));
        assert!(!spider_result_eq(&rows(&[&[I(1)]]), &rows(&[&[t("1")]]), false));
        // The reference's quick rejection sorts a row by str(x) + str(type(x)): "1<class 'int'>"
        // sorts after "1.0x<class 'str'>" but "1.0<class 'float'>" before it, so these rows,
        // equal under Python's ==, are rejected.
        assert!(!spider_result_eq(&rows(&[&[I(1), t("1.0x")]]), &rows(&[&[R(1.0), t("1.0x")]]), false));
        assert!(bird_eq(&rows(&[&[I(1), t("1.0x")]]), &rows(&[&[R(1.0), t("1.0x")]])));
    }

    #[test]
    fn empty_results() {
        let empty: Vec<Vec<Value>> = vec![];
        assert!(spider_result_eq(&empty, &empty, true));
        assert!(bird_eq(&empty, &empty));
        assert!(!spider_result_eq(&empty, &rows(&[&[N]]), false));
        assert!(!bird_eq(&rows(&[&[N]]), &empty));
        assert!(spider_result_eq(&rows(&[&[N]]), &rows(&[&[N]]), false));
    }

    #[test]
    fn distinct_is_removed_as_the_reference_does() {
        assert_eq!(remove_distinct("SELECT DISTINCT name FROM t"), "SELECT  name FROM t");
        assert_eq!(remove_distinct("select count(distinct a) from t"), "select count( a) from t");
        assert_eq!(
            remove_distinct("SELECT 'distinct', \"Distinct\" FROM t -- distinct"),
            "SELECT 'distinct', \"Distinct\" FROM t -- distinct"
        );
        assert_eq!(remove_distinct("SELECT distinct_id FROM t"), "SELECT distinct_id FROM t");
        assert_eq!(remove_distinct("SELECT 1; DROP TABLE t"), "SELECT 1;");
        assert_eq!(
            remove_distinct("SELECT 'it''s distinct' /* distinct */ FROM t"),
            "SELECT 'it''s distinct' /* distinct */ FROM t"
        );
        assert_eq!(postprocess("a > = 1 AND b ! = 2"), "a >= 1 AND b != 2");
        assert_eq!(replace_cur_year("SELECT year( CURDATE ( ) )  - age"), "SELECT 2020- age");
    }

    #[test]
    fn python_float_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (1e100, "1e+100"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(py_float_repr(f), s);
        }
        assert_eq!(py_bytes_repr(b"a'\x00"), "b\"a'\\x00\"");
    }

    #[test]
    fn tolerance_is_ours_and_off_by_default() {
        let a = rows(&[&[R(0.1 + 0.2), t("x")]]);
        let b = rows(&[&[R(0.3), t("x")]]);
        assert!(!spider_result_eq(&a, &b, false));
        assert!(spider_eq_tolerant(&a, &b, false, 1e-9));
        assert!(bird_eq_tolerant(&a, &b, 1e-9));
        assert!(!spider_eq_tolerant(&a, &rows(&[&[R(0.31), t("x")]]), false, 1e-9));
        let c = rows(&[&[R(2.0), R(1.0)], &[R(4.0), R(3.0)]]);
        let d = rows(&[&[R(3.0000000001), R(4.0)], &[R(1.0), R(2.0)]]);
        assert!(spider_eq_tolerant(&c, &d, false, 1e-6));
        assert!(!spider_eq_tolerant(&c, &d, true, 1e-6));
    }
}

#[cfg(test)]
mod scoring_tests {
    use super::*;
    use rlvr_engine::Scored;

    /// The concert database of the Spider-layout fixture that `rlvr_envs` writes.
    fn fixture(dir: &Path) -> PathBuf {
        crate::sql::dataset::write_fixture(dir).unwrap();
        dir.join("database/concert/concert.sqlite")
    }

    fn score(task: serde_json::Value, completion: &str) -> Scored {
        rubric(&Config::new()).unwrap().score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    fn sql(q: &str) -> String {
        format!("Let me think.\n```sql\n{q}\n```")
    }

    #[test]
    fn the_rlvr_score_task_shape_scores_one_or_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let db = path.to_str().unwrap();
        let gold = "SELECT name FROM singer WHERE country = 'France' ORDER BY age DESC";
        let task = json!({"db": db, "gold": gold, "compare": "spider", "keep_distinct": false});
        let s = score(task.clone(), &sql(gold));
        assert_eq!((s.total(), s.get("execution_match"), s.get("format")), (Some(1.0), Some(1.0), Some(1.0)));
        // ORDER BY in gold: order matters.
        let s = score(task.clone(), &sql("SELECT name FROM singer WHERE country = 'France' ORDER BY age ASC"));
        assert_eq!(s.total(), Some(0.0));
        assert_eq!(s.terms[0].info["order_matters"], true);
        // A syntax error is a zero with its name, and a format failure.
        let s = score(task.clone(), &sql("SELEC name FROM singer"));
        assert_eq!((s.total(), s.get("format")), (Some(0.0), Some(0.0)));
        assert_eq!(s.terms[0].info["error"], "syntax");
        // No block: zero.
        let s = score(task.clone(), gold);
        assert_eq!((s.total(), s.get("format")), (Some(0.0), Some(0.0)));
        // A limit is named in the diagnostics.
        let s = score(
            task,
            &sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT name FROM singer, c"),
        );
        assert_eq!(s.total(), Some(0.0));
        assert_eq!(s.terms[0].info["limit"], "row_cap");
    }

    #[test]
    fn keep_distinct_and_bird_on_a_real_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let db = path.to_str().unwrap();
        let gold = "SELECT DISTINCT country FROM singer";
        let pred = sql("SELECT country FROM singer");
        // DISTINCT removed from both (reference default): 5 rows vs 5 rows.
        assert_eq!(score(json!({"db": db, "gold": gold}), &pred).total(), Some(1.0));
        assert_eq!(score(json!({"db": db, "gold": gold, "keep_distinct": true}), &pred).total(), Some(0.0));
        // BIRD ignores duplicates.
        assert_eq!(score(json!({"db": db, "gold": gold, "compare": "bird"}), &pred).total(), Some(1.0));
        // BIRD keeps column order; Spider permutes.
        let gold2 = "SELECT name, age FROM singer";
        let pred2 = sql("SELECT age, name FROM singer");
        assert_eq!(score(json!({"db": db, "gold": gold2, "compare": "bird"}), &pred2).total(), Some(0.0));
        assert_eq!(score(json!({"db": db, "gold": gold2, "compare": "spider"}), &pred2).total(), Some(1.0));
        // AVG gives 1.0-style floats; an integer answer with the same value matches.
        let gold3 = "SELECT avg(age) FROM singer WHERE country = 'Netherlands'";
        assert_eq!(score(json!({"db": db, "gold": gold3}), &sql("SELECT 52")).total(), Some(1.0));
    }

    #[test]
    fn a_broken_gold_or_database_is_a_verifier_error_not_a_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let db = path.to_str().unwrap();
        let s = score(json!({"db": db, "gold": "SELECT nope FROM singer"}), &sql("SELECT 1"));
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("gold query failed"), "{:?}", s.error());
        let s = score(json!({"db": "/no/such/dir/x.sqlite", "gold": "SELECT 1"}), &sql("SELECT 1"));
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("/no/such/dir/x.sqlite"), "{:?}", s.error());
        let s = score(json!({"db": db, "gold": "SELECT 1", "compare": "mysql"}), &sql("SELECT 1"));
        assert!(s.error().unwrap().contains("unknown compare `mysql`"));
        let s = score(json!({"db": db}), &sql("SELECT 1"));
        assert!(s.error().unwrap().contains("missing field `gold`"));
    }

    #[test]
    fn writes_and_attach_in_a_prediction_are_zero_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let db = path.to_str().unwrap();
        let task = json!({"db": db, "gold": "SELECT count(*) FROM singer"});
        let s = score(task.clone(), &sql("DELETE FROM singer"));
        assert_eq!((s.total(), &s.terms[0].info["error"]), (Some(0.0), &json!("read_only")));
        let s = score(task.clone(), &sql("ATTACH 'x.db' AS x"));
        assert_eq!((s.total(), &s.terms[0].info["error"]), (Some(0.0), &json!("forbidden")));
        assert_eq!(score(task, &sql("SELECT count(*) FROM singer")).total(), Some(1.0), "the file is intact");
    }

    #[test]
    fn exploratory_queries_are_counted() {
        let tr = Trajectory {
            messages: vec![
                rlvr_engine::Message::assistant("<explore>SELECT 1</explore>"),
                rlvr_engine::Message::tool("sql", "1"),
                rlvr_engine::Message::assistant("<explore>SELECT 2</explore>"),
                rlvr_engine::Message::assistant("```sql\nSELECT 1\n```"),
            ],
            ..Trajectory::default()
        };
        let r = rubric(&Config::new()).unwrap();
        let s = r.score(&Task::new("t", json!({"db": "/x", "gold": "SELECT 1"})), &tr);
        assert_eq!(s.get("exploratory_queries"), Some(2.0));
    }
}
