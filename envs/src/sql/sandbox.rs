//! The SQL sandbox: one SQLite connection that runs a model's statements under containment.
//!
//! Every statement is prepared under an authorizer that refuses ATTACH/DETACH, extension loading,
//! file functions, virtual tables, transactions, pragma writes, and (on a read-only sandbox) any
//! write; it then runs under a progress handler that enforces an instruction budget and a
//! wall-clock deadline, and its result is capped in rows and bytes. Each refusal or limit comes
//! back as a [`QueryError`] whose [`ErrorKind`] names it, so the environment can show it to the
//! model and the reward can log it.
//!
//! ## Design
//! Defence in depth, because the SQL is untrusted: besides the authorizer, the connection has
//! `SQLITE_LIMIT_ATTACHED = 0` (no second database can ever be opened, which also stops
//! `VACUUM INTO`), a read-only sandbox additionally requires `sqlite3_stmt_readonly`, temporary
//! storage is kept in memory (no temp files), and string/blob values are capped in length so a
//! `zeroblob(1e9)` cannot exhaust memory. The instruction budget is deterministic (the same query
//! hits it at the same point on any machine); the deadline is a backstop against slow single
//! operations and machine load.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ffi};
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many virtual-machine instructions pass between two calls of the progress handler.
const PROGRESS_PERIOD: u64 = 1000;

/// Resource limits of one statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// SQLite virtual-machine instructions per statement (counted in steps of 1000). Default
    /// 50,000,000: a few seconds of work, far above any Spider or BIRD gold query. Deterministic:
    /// the same statement stops at the same point whatever the machine load.
    pub max_instructions: u64,
    /// Wall-clock milliseconds per statement. Default 5000. A backstop for slow single
    /// instructions; depends on machine load, so keep the instruction budget the binding limit.
    pub timeout_ms: u64,
    /// Rows a result may hold. Default 100,000.
    pub max_rows: usize,
    /// Bytes a result may hold (text and blob lengths, 8 per number). Default 32 MiB.
    pub max_bytes: usize,
    /// Longest string or blob a statement may build, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instructions: 50_000_000,
            timeout_ms: 5000,
            max_rows: 100_000,
            max_bytes: 32 << 20,
            max_value_bytes: 1 << 20,
        }
    }
}

/// Whether statements may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Reads only; any write is refused and reported as `read_only`.
    ReadOnly,
    /// Writes allowed (on a private in-memory copy).
    Writable,
}

/// A value of a result cell.
///
/// Equality and hashing follow Python's, which the reference evaluators (test-suite-sql-eval,
/// BIRD) use on `sqlite3` rows: `1 == 1.0`, an integer equals a float only when they are exactly
/// the same number, text never equals a blob, `NULL == NULL`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL (Python `None`).
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// A double (SQLite never returns NaN; it stores NULL instead).
    Real(f64),
    /// Text.
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
}

impl Value {
    /// The float as an exact integer, if it is one within `i64`.
    fn real_as_int(f: f64) -> Option<i64> {
        // 2^63 is exactly representable; every integral float in [-2^63, 2^63) fits i64 exactly.
        (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)).then_some(f as i64)
    }

    /// The number as f64, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Real(f) => Some(f),
            _ => None,
        }
    }

    /// Bytes this value counts against [`Limits::max_bytes`].
    fn weight(&self) -> usize {
        match self {
            Value::Null | Value::Int(_) | Value::Real(_) => 8,
            Value::Text(s) => s.len(),
            Value::Blob(b) => b.len(),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Real(a), Value::Real(b)) => a == b,
            (Value::Int(i), Value::Real(f)) | (Value::Real(f), Value::Int(i)) => Value::real_as_int(*f) == Some(*i),
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Blob(a), Value::Blob(b)) => a == b,
            _ => false,
        }
    }
}

// SQLite returns no NaN, so equality is reflexive on every value a query can produce.
impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Null => state.write_u8(0),
            Value::Int(i) => {
                state.write_u8(1);
                state.write_i64(*i);
            }
            Value::Real(f) => match Value::real_as_int(*f) {
                // Hash an integral float as the integer it equals, so that 1 and 1.0 collide.
                Some(i) => {
                    state.write_u8(1);
                    state.write_i64(i);
                }
                None => {
                    state.write_u8(2);
                    state.write_u64(f.to_bits());
                }
            },
            Value::Text(s) => {
                state.write_u8(3);
                s.hash(state);
            }
            Value::Blob(b) => {
                state.write_u8(4);
                b.hash(state);
            }
        }
    }
}

/// The result of one statement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, in the order SQLite returned them.
    pub rows: Vec<Vec<Value>>,
    /// Some text value was not valid UTF-8; its invalid bytes were dropped (as the Spider
    /// evaluator's `errors="ignore"` decoding does; BIRD's evaluator fails on such rows).
    pub invalid_utf8: bool,
    /// Rows changed by a write.
    pub changes: u64,
}

/// Why a statement gave no result. [`ErrorKind::name`] is the stable name shown to the model and
/// logged by rewards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No statement (empty or only comments).
    Empty,
    /// More than one statement.
    MultipleStatements,
    /// SQLite could not parse it.
    Syntax,
    /// It parsed but failed (no such table, type errors, constraint failures ...).
    Runtime,
    /// The authorizer refused it (ATTACH, extension loading, pragma writes, file access).
    Forbidden,
    /// A write on a read-only sandbox.
    ReadOnly,
    /// The instruction budget ran out.
    InstructionBudget,
    /// The wall-clock deadline passed.
    Deadline,
    /// The result had more rows than allowed.
    RowCap,
    /// The result had more bytes than allowed, or a value was longer than allowed.
    ByteCap,
}

impl ErrorKind {
    /// The stable name, e.g. `instruction_budget`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Empty => "empty",
            ErrorKind::MultipleStatements => "multiple_statements",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::InstructionBudget => "instruction_budget",
            ErrorKind::Deadline => "deadline",
            ErrorKind::RowCap => "row_cap",
            ErrorKind::ByteCap => "byte_cap",
        }
    }

    /// True for the resource limits (budget, deadline, caps), as opposed to errors in the SQL.
    pub fn is_limit(self) -> bool {
        matches!(self, ErrorKind::InstructionBudget | ErrorKind::Deadline | ErrorKind::RowCap | ErrorKind::ByteCap)
    }
}

/// A statement failed: which way, and SQLite's (or our) message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} error: {message}", kind.name())]
pub struct QueryError {
    /// The category.
    pub kind: ErrorKind,
    /// A short human-readable message.
    pub message: String,
}

impl QueryError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// A database could not be opened: a missing or corrupt file, named by path.
#[derive(Debug, thiserror::Error)]
#[error("database {}: {message}", path.display())]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// State shared with the authorizer and progress handler (they must be `Send + 'static`).
#[derive(Debug)]
struct Guard {
    access: Access,
    /// Set by the authorizer when it refuses an action: (kind, what was refused).
    denied: Option<(ErrorKind, String)>,
    ops_left: u64,
    deadline: Instant,
    /// Set by the progress handler when it interrupts.
    hit: Option<ErrorKind>,
    /// Disarmed while the sandbox runs its own trusted statements.
    armed: bool,
}

/// One contained connection. Cheap to keep: reuse it for many statements on the same database.
pub struct Sandbox {
    conn: Connection,
    guard: Arc<Mutex<Guard>>,
    limits: Limits,
    path: PathBuf,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("path", &self.path).field("limits", &self.limits).finish()
    }
}

fn open_error(path: &Path, message: impl std::fmt::Display) -> OpenError {
    OpenError { path: path.to_path_buf(), message: message.to_string() }
}

fn open_source(path: &Path) -> Result<Connection, OpenError> {
    if !path.is_file() {
        return Err(open_error(path, "no such file"));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    // Opening is lazy; reading the schema is what finds a corrupt or non-database file.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| open_error(path, format!("not a readable SQLite database ({e})")))?;
    Ok(conn)
}

impl Sandbox {
    /// A read-only sandbox directly on the file at `path`: no copy, so it opens in microseconds;
    /// for tasks that forbid writes, and for rewards.
    pub fn open_read_only(path: &Path, limits: Limits) -> Result<Self, OpenError> {
        let conn = open_source(path)?;
        Self::contain(conn, path, Access::ReadOnly, limits)
    }

    /// A writable sandbox on a private in-memory copy of the file at `path`, made with SQLite's
    /// backup API: writes are invisible to the file and to every other sandbox.
    pub fn open_copy(path: &Path, limits: Limits) -> Result<Self, OpenError> {
        let src = open_source(path)?;
        let mut mem = Connection::open_in_memory().map_err(|e| open_error(path, e))?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut mem).map_err(|e| open_error(path, e))?;
            // One step of -1 pages copies the whole database at once.
            match backup.step(-1).map_err(|e| open_error(path, format!("copy failed: {e}")))? {
                rusqlite::backup::StepResult::Done => {}
                other => return Err(open_error(path, format!("copy did not finish ({other:?})"))),
            }
        }
        drop(src);
        Self::contain(mem, path, Access::Writable, limits)
    }

    fn contain(mut conn: Connection, path: &Path, access: Access, limits: Limits) -> Result<Self, OpenError> {
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            conn.pragma_update(None, "temp_store", "MEMORY")?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            let value = i32::try_from(limits.max_value_bytes.max(1)).unwrap_or(i32::MAX);
            conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, value)?;
            conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 20)?;
            Ok(())
        };
        setup(&conn).map_err(|e| open_error(path, e))?;
        let guard = Arc::new(Mutex::new(Guard {
            access,
            denied: None,
            ops_left: 0,
            deadline: Instant::now(),
            hit: None,
            armed: false,
        }));
        let g = Arc::clone(&guard);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
            if !g.armed {
                return Authorization::Allow;
            }
            match authorize(&ctx, g.access) {
                Ok(()) => Authorization::Allow,
                Err(denied) => {
                    g.denied.get_or_insert(denied);
                    Authorization::Deny
                }
            }
        }))
        .map_err(|e| open_error(path, e))?;
        let g = Arc::clone(&guard);
        conn.progress_handler(
            PROGRESS_PERIOD as i32,
            Some(move || {
                let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
                if !g.armed {
                    return false;
                }
                if g.ops_left <= PROGRESS_PERIOD {
                    g.hit = Some(ErrorKind::InstructionBudget);
                    return true;
                }
                g.ops_left -= PROGRESS_PERIOD;
                if Instant::now() >= g.deadline {
                    g.hit = Some(ErrorKind::Deadline);
                    return true;
                }
                false
            }),
        )
        .map_err(|e| open_error(path, e))?;
        Ok(Self { conn, guard, limits, path: path.to_path_buf() })
    }

    /// The file this sandbox was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether statements may write.
    pub fn access(&self) -> Access {
        self.guard().access
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arm(&self) {
        let mut g = self.guard();
        g.armed = true;
        g.denied = None;
        g.hit = None;
        g.ops_left = self.limits.max_instructions;
        g.deadline = Instant::now() + Duration::from_millis(self.limits.timeout_ms);
    }

    fn disarm(&self) -> (Option<(ErrorKind, String)>, Option<ErrorKind>) {
        let mut g = self.guard();
        g.armed = false;
        (g.denied.take(), g.hit.take())
    }

    /// Runs one untrusted statement under every containment rule.
    pub fn run(&mut self, sql: &str) -> Result<QueryResult, QueryError> {
        self.arm();
        let result = self.run_armed(sql);
        let (denied, hit) = self.disarm();
        result.map_err(|e| classify(e, denied, hit))
    }

    /// Checks that `sql` is one statement that SQLite can prepare here, without running it.
    pub fn check(&mut self, sql: &str) -> Result<(), QueryError> {
        self.arm();
        let result = self.conn.prepare_cached(sql).map(|_| ()).map_err(Failure::Sqlite);
        let (denied, hit) = self.disarm();
        result.map_err(|e| classify(e, denied, hit))
    }

    fn run_armed(&self, sql: &str) -> Result<QueryResult, Failure> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(Failure::Sqlite)?;
        if self.guard().access == Access::ReadOnly && !stmt.readonly() {
            return Err(Failure::Ours(QueryError::new(ErrorKind::ReadOnly, "this database is read-only")));
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let width = columns.len();
        let mut out = QueryResult { columns, ..QueryResult::default() };
        let mut bytes = 0usize;
        {
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(Failure::Sqlite)? {
                if out.rows.len() == self.limits.max_rows {
                    return Err(Failure::Ours(QueryError::new(
                        ErrorKind::RowCap,
                        format!("the result has more than {} rows", self.limits.max_rows),
                    )));
                }
                let mut cells = Vec::with_capacity(width);
                for i in 0..width {
                    let v = match row.get_ref(i).map_err(Failure::Sqlite)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(i) => Value::Int(i),
                        ValueRef::Real(f) => Value::Real(f),
                        ValueRef::Text(t) => Value::Text(match std::str::from_utf8(t) {
                            Ok(s) => s.to_string(),
                            Err(_) => {
                                out.invalid_utf8 = true;
                                decode_ignoring_errors(t)
                            }
                        }),
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    };
                    bytes += v.weight();
                    cells.push(v);
                }
                if bytes > self.limits.max_bytes {
                    return Err(Failure::Ours(QueryError::new(
                        ErrorKind::ByteCap,
                        format!("the result is larger than {} bytes", self.limits.max_bytes),
                    )));
                }
                out.rows.push(cells);
            }
        }
        if width == 0 {
            out.changes = self.conn.changes();
        }
        Ok(out)
    }

    /// The schema as the `CREATE` statements stored in the database (tables and views, in
    /// file order), each followed by up to `sample_rows` rows as an SQL comment.
    pub fn schema_text(&self, sample_rows: usize) -> Result<String, QueryError> {
        let sqlite = |e: rusqlite::Error| QueryError::new(ErrorKind::Runtime, e.to_string());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL \
                 AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )
            .map_err(sqlite)?;
        let tables: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sqlite)?
            .collect::<Result<_, _>>()
            .map_err(sqlite)?;
        let mut out = String::new();
        for (name, sql) in tables {
            out.push_str(sql.trim());
            out.push_str(";\n");
            if sample_rows > 0 {
                let q = format!("SELECT * FROM \"{}\" LIMIT {sample_rows}", name.replace('"', "\"\""));
                let mut s = self.conn.prepare(&q).map_err(sqlite)?;
                let width = s.column_count();
                let mut rows = s.raw_query();
                let mut shown = Vec::new();
                while let Some(row) = rows.next().map_err(sqlite)? {
                    let cells: Vec<String> =
                        (0..width).map(|i| row.get_ref(i).map(|v| render_ref(v, 40)).unwrap_or_default()).collect();
                    shown.push(format!("-- ({})", cells.join(", ")));
                }
                if !shown.is_empty() {
                    out.push_str(&format!("-- {} sample rows of {name}:\n", shown.len()));
                    out.push_str(&shown.join("\n"));
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }
}

/// Which actions a model's statement may take. `Err` names the refusal.
fn authorize(ctx: &AuthContext<'_>, access: Access) -> Result<(), (ErrorKind, String)> {
    let forbid = |what: &str| Err((ErrorKind::Forbidden, what.to_string()));
    let write = |what: String| match access {
        Access::Writable => Ok(()),
        Access::ReadOnly => Err((ErrorKind::ReadOnly, what)),
    };
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => match function_name.to_ascii_lowercase().as_str() {
            "load_extension" => forbid("load_extension: loading extensions is not allowed"),
            "readfile" | "writefile" | "edit" | "fts3_tokenizer" => {
                forbid(&format!("{function_name}: functions that touch files are not allowed"))
            }
            _ => Ok(()),
        },
        AuthAction::Attach { .. } => forbid("ATTACH: opening other database files is not allowed"),
        AuthAction::Detach { .. } => forbid("DETACH is not allowed"),
        AuthAction::Pragma { pragma_name, pragma_value } => {
            const READS: &[&str] = &[
                "table_info",
                "table_xinfo",
                "index_list",
                "index_info",
                "index_xinfo",
                "foreign_key_list",
                "table_list",
            ];
            let name = pragma_name.to_ascii_lowercase();
            // For the listed pragmas the argument is a table name, not a setting.
            if READS.contains(&name.as_str()) {
                Ok(())
            } else if pragma_value.is_some() {
                forbid(&format!("PRAGMA {pragma_name}: changing settings is not allowed"))
            } else {
                forbid(&format!("PRAGMA {pragma_name}: only schema pragmas (table_info, index_list, ...) are allowed"))
            }
        }
        AuthAction::CreateVtable { .. } | AuthAction::DropVtable { .. } => forbid("virtual tables are not allowed"),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            forbid("transactions are not allowed; each statement commits on its own")
        }
        AuthAction::Insert { table_name } => write(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => write(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => write(format!("DELETE from {table_name}")),
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::Analyze { .. } => write("schema changes".to_string()),
        _ => forbid("this kind of statement is not allowed"),
    }
}

enum Failure {
    Sqlite(rusqlite::Error),
    Ours(QueryError),
}

/// Turns a failure into a named error: the guard's record of a refusal or a limit wins over
/// SQLite's generic "not authorized" / "interrupted".
fn classify(failure: Failure, denied: Option<(ErrorKind, String)>, hit: Option<ErrorKind>) -> QueryError {
    let e = match failure {
        Failure::Ours(e) => return e,
        Failure::Sqlite(e) => e,
    };
    match e {
        rusqlite::Error::MultipleStatement => {
            return QueryError::new(ErrorKind::MultipleStatements, "only one statement may run at a time");
        }
        rusqlite::Error::Empty => {
            return QueryError::new(ErrorKind::Empty, "no SQL statement found");
        }
        _ => {}
    }
    if let Some(kind) = hit {
        let message = match kind {
            ErrorKind::Deadline => "the query ran past its time limit".to_string(),
            _ => "the query ran past its instruction budget".to_string(),
        };
        return QueryError::new(kind, message);
    }
    if let Some((kind, what)) = denied {
        return QueryError::new(kind, what);
    }
    let message = match &e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    };
    let code = e.sqlite_error().map(|c| c.extended_code & 0xff);
    let kind = if code == Some(ffi::SQLITE_TOOBIG) {
        ErrorKind::ByteCap
    } else if code == Some(ffi::SQLITE_READONLY) {
        ErrorKind::ReadOnly
    } else if code == Some(ffi::SQLITE_AUTH) {
        ErrorKind::Forbidden
    } else if message.contains("syntax error")
        || message.contains("incomplete input")
        || message.contains("unrecognized token")
    {
        ErrorKind::Syntax
    } else {
        ErrorKind::Runtime
    };
    QueryError::new(kind, message)
}

/// Decodes UTF-8, dropping invalid bytes (Python's `bytes.decode(errors="ignore")`).
pub fn decode_ignoring_errors(bytes: &[u8]) -> String {
    bytes.utf8_chunks().map(|c| c.valid()).collect()
}

fn render_ref(v: ValueRef<'_>, max_chars: usize) -> String {
    let s = match v {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) => format!("'{}'", decode_ignoring_errors(t)),
        ValueRef::Blob(b) => format!("<blob {} bytes>", b.len()),
    };
    truncate_chars(&s, max_chars)
}

/// `s` cut to at most `max` characters, with "..." when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Renders a result as a small text table for the model: at most `max_rows` rows, each cell at
/// most 40 characters, the whole at most `max_chars` characters; says what was cut.
pub fn render_result(result: &QueryResult, max_rows: usize, max_chars: usize) -> String {
    if result.columns.is_empty() {
        return format!("OK, {} rows changed.", result.changes);
    }
    let mut out = result.columns.join(" | ");
    out.push('\n');
    for row in result.rows.iter().take(max_rows) {
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                let s = match v {
                    Value::Null => "NULL".to_string(),
                    Value::Int(i) => i.to_string(),
                    Value::Real(f) => format!("{f:?}"),
                    Value::Text(t) => t.clone(),
                    Value::Blob(b) => format!("<blob {} bytes>", b.len()),
                };
                truncate_chars(&s, 40)
            })
            .collect();
        let line = cells.join(" | ");
        if out.len() + line.len() > max_chars {
            out.push_str("... (output cut)\n");
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    let n = result.rows.len();
    if n > max_rows {
        out.push_str(&format!("({n} rows, first {max_rows} shown)"));
    } else {
        out.push_str(&format!("({n} rows)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn db(dir: &Path) -> PathBuf {
        let path = dir.join("t.sqlite");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE big(x INTEGER); \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) INSERT INTO big SELECT x FROM c;\
             CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');",
        )
        .unwrap();
        path
    }

    fn kind(r: Result<QueryResult, QueryError>) -> &'static str {
        r.err().map(|e| e.kind.name()).unwrap_or("ok")
    }

    #[test]
    fn python_equality_and_hash() {
        assert_eq!(Value::Int(1), Value::Real(1.0));
        assert_ne!(Value::Int(1), Value::Real(1.5));
        assert_ne!(Value::Int(9_007_199_254_740_993), Value::Real(9_007_199_254_740_992.0));
        assert_ne!(Value::Text("1".into()), Value::Int(1));
        assert_ne!(Value::Text("a".into()), Value::Blob(b"a".to_vec()));
        assert_eq!(Value::Real(0.0), Value::Real(-0.0));
        let set: HashSet<Value> =
            [Value::Int(1), Value::Real(1.0), Value::Real(-0.0), Value::Int(0)].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn adversarial_statements_are_contained_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(dir.path());
        let limits = Limits { max_instructions: 2_000_000, max_rows: 1000, ..Limits::default() };
        let mut s = Sandbox::open_read_only(&path, limits.clone()).unwrap();
        let host = dir.path().join("host.sqlite");
        assert_eq!(kind(s.run(&format!("ATTACH DATABASE '{}' AS h", host.display()))), "forbidden");
        assert!(!host.exists(), "ATTACH must not create the file");
        assert_eq!(kind(s.run("SELECT load_extension('/tmp/evil')")), "forbidden");
        let e = s.run("SELECT load_extension('x')").unwrap_err();
        assert!(e.message.contains("load_extension"), "{e}");
        assert_eq!(
            kind(s.run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")),
            "instruction_budget"
        );
        assert_eq!(kind(s.run("SELECT count(*) FROM big a, big b, big c")), "instruction_budget");
        assert_eq!(kind(s.run("SELECT * FROM big a, big b")), "row_cap");
        assert_eq!(kind(s.run("DELETE FROM t")), "read_only");
        assert_eq!(kind(s.run("CREATE TEMP TABLE x(a)")), "read_only");
        assert_eq!(kind(s.run("PRAGMA journal_mode = WAL")), "forbidden");
        assert_eq!(kind(s.run("PRAGMA table_info(t)")), "ok");
        assert_eq!(kind(s.run(&format!("VACUUM INTO '{}'", host.display()))), "read_only");
        assert!(!host.exists(), "VACUUM INTO must not create the file");
        assert_eq!(kind(s.run("SELECT zeroblob(100000000)")), "byte_cap");
        assert_eq!(kind(s.run("SELEC 1")), "syntax");
        assert_eq!(kind(s.run("SELECT nope FROM t")), "runtime");
        assert_eq!(kind(s.run("SELECT 1; SELECT 2")), "multiple_statements");
        assert_eq!(kind(s.run("  -- nothing\n")), "empty");
        assert_eq!(kind(s.run("BEGIN")), "forbidden");
        // After all that, the sandbox still works.
        assert_eq!(s.run("SELECT a FROM t ORDER BY a").unwrap().rows, vec![vec![Value::Int(1)], vec![Value::Int(2)]]);
    }

    #[test]
    fn deadline_is_its_own_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(dir.path());
        let limits = Limits { max_instructions: u64::MAX, timeout_ms: 50, ..Limits::default() };
        let mut s = Sandbox::open_read_only(&path, limits).unwrap();
        let t = Instant::now();
        assert_eq!(kind(s.run("SELECT count(*) FROM big a, big b, big c")), "deadline");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn copies_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(dir.path());
        let mut a = Sandbox::open_copy(&path, Limits::default()).unwrap();
        let mut b = Sandbox::open_copy(&path, Limits::default()).unwrap();
        assert_eq!(a.run("DELETE FROM t").unwrap().changes, 2);
        assert_eq!(a.run("SELECT count(*) FROM t").unwrap().rows, vec![vec![Value::Int(0)]]);
        assert_eq!(b.run("SELECT count(*) FROM t").unwrap().rows, vec![vec![Value::Int(2)]]);
        let mut file = Sandbox::open_read_only(&path, Limits::default()).unwrap();
        assert_eq!(file.run("SELECT count(*) FROM t").unwrap().rows, vec![vec![Value::Int(2)]]);
        // Even a writable copy cannot attach files, write one with VACUUM INTO, or load extensions.
        let out = dir.path().join("out.sqlite");
        assert_eq!(kind(a.run(&format!("ATTACH '{}' AS x", out.display()))), "forbidden");
        assert_ne!(kind(a.run(&format!("VACUUM INTO '{}'", out.display()))), "ok");
        assert!(!out.exists());
        assert_eq!(kind(a.run("SELECT load_extension('x')")), "forbidden");
    }

    #[test]
    fn missing_and_corrupt_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sqlite");
        let e = Sandbox::open_read_only(&missing, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("missing.sqlite") && e.contains("no such file"), "{e}");
        let corrupt = dir.path().join("corrupt.sqlite");
        std::fs::write(&corrupt, b"this is not a database, just text padding it out to a page or so").unwrap();
        let e = Sandbox::open_copy(&corrupt, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("corrupt.sqlite") && e.contains("not a readable SQLite database"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_dropped_and_flagged() {
        assert_eq!(decode_ignoring_errors(b"a\xffb\xe2\x82"), "ab");
        let dir = tempfile::tempdir().unwrap();
        let path = db(dir.path());
        let mut s = Sandbox::open_read_only(&path, Limits::default()).unwrap();
        let r = s.run("SELECT CAST(x'61ff62' AS TEXT)").unwrap();
        assert!(r.invalid_utf8);
        assert_eq!(r.rows[0][0], Value::Text("ab".into()));
    }

    #[test]
    fn schema_shows_create_statements_and_samples() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sandbox::open_read_only(&db(dir.path()), Limits::default()).unwrap();
        let text = s.schema_text(1).unwrap();
        assert!(text.contains("CREATE TABLE t(a INTEGER, b TEXT);"), "{text}");
        assert!(text.contains("-- (1, 'one')"), "{text}");
    }
}
