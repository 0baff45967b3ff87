//! The library side of `rlvr sandbox run`: one snippet in a fresh sandbox.
//!
//! The CLI parses its flags into [`RunRequest`], calls [`run`], and prints either the
//! [`Execution`] as one JSON object (`--json`; keys `stdout`, `stderr`, `exit_code`, `limit`,
//! `fuel_used`, `elapsed_ms`, `truncated`, which scripts rely on) or [`human`]'s text.

use super::sandbox::{Execution, Limits, Sandbox, SandboxError};
use std::path::PathBuf;

/// What to run and under which limits; `None` limits keep [`Limits::default`].
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// The code (`-c CODE`).
    pub code: Option<String>,
    /// A file holding the code (`--file F`).
    pub file: Option<PathBuf>,
    /// `--deadline-ms N`.
    pub deadline_ms: Option<u64>,
    /// `--fuel N`.
    pub fuel: Option<u64>,
    /// `--memory-mb N`.
    pub memory_mb: Option<u64>,
    /// `--output-bytes N`.
    pub output_bytes: Option<usize>,
}

/// Why a request could not run (never the snippet's own failure, which is in the `Execution`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither or both of `-c` and `--file`.
    #[error("give exactly one of -c CODE or --file F")]
    Source,
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    File(PathBuf, std::io::Error),
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl RunRequest {
    /// The limits this request asks for.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            fuel: self.fuel.unwrap_or(d.fuel),
            deadline_ms: self.deadline_ms.unwrap_or(d.deadline_ms),
            memory_mb: self.memory_mb.unwrap_or(d.memory_mb),
            output_bytes: self.output_bytes.unwrap_or(d.output_bytes),
            open_files: d.open_files,
        }
    }

    fn source(&self) -> Result<String, RunError> {
        match (&self.code, &self.file) {
            (Some(c), None) => Ok(c.clone()),
            (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| RunError::File(f.clone(), e)),
            _ => Err(RunError::Source),
        }
    }
}

/// Runs the request in a fresh sandbox (the process's shared engine).
pub fn run(req: &RunRequest) -> Result<Execution, RunError> {
    let code = req.source()?;
    Ok(Sandbox::shared()?.run(&code, &req.limits())?)
}

/// The text form: the guest's stdout and stderr as they are, then one summary line.
pub fn human(e: &Execution) -> String {
    let mut s = e.stdout.clone();
    s.push_str(&e.stderr);
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    let status = match (e.exit_code, e.limit, &e.trap) {
        (Some(c), _, _) => format!("exit code {c}"),
        (None, Some(l), _) => format!("stopped by the {} limit", l.name()),
        (None, None, Some(t)) => format!("trapped: {t}"),
        (None, None, None) => "stopped".into(),
    };
    let mut line = format!("-- {status}; fuel {}; {:.2} ms", e.fuel_used, e.elapsed_ms);
    if !e.truncated.is_empty() {
        line.push_str(&format!("; truncated: {}", e.truncated.join(", ")));
    }
    s.push_str(&line);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source_is_required() {
        assert!(matches!(RunRequest::default().source(), Err(RunError::Source)));
        let both = RunRequest { code: Some("1".into()), file: Some("f".into()), ..RunRequest::default() };
        assert!(matches!(both.source(), Err(RunError::Source)));
    }

    #[test]
    fn flags_override_default_limits() {
        let r = RunRequest { fuel: Some(7), deadline_ms: Some(9), ..RunRequest::default() };
        let l = r.limits();
        assert_eq!((l.fuel, l.deadline_ms, l.memory_mb), (7, 9, Limits::default().memory_mb));
    }
}
