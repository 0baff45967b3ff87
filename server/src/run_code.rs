//! SandboxFusion's `POST /run_code`, on the wasmtime sandbox.
//!
//! Request and response follow SandboxFusion's own models (`sandbox/server/sandbox_api.py`,
//! `sandbox/runners/types.py`) field for field, so the `sandbox-fusion` client and verl's
//! `sandbox_fusion.compute_score` need no change:
//!
//! - request `{code, language, compile_timeout, run_timeout, memory_limit_MB, stdin, files,
//!   fetch_files}`; unknown keys are ignored, as pydantic does;
//! - response `{status, message, compile_result, run_result: {status, execution_time,
//!   return_code, stdout, stderr}, executor_pod_name, files}` with SandboxFusion's values:
//!   `Success` / `Failed` / `SandboxError`, and a run status of `Finished` or
//!   `TimeLimitExceeded`. Always HTTP 200 once the request parses (422 when it does not).
//!
//! Where the sandbox knows more than SandboxFusion says, it adds keys its clients ignore:
//! `run_result.limit` names the limit that stopped or cut the program, as data.

use crate::{Shared, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rlvr_envs::code::{Execution, LimitKind, Limits, Mount, Sandbox, Session};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// SandboxFusion's `RunCodeRequest`. Its `compile_timeout` is ignored with the other unknown keys:
/// Python has no compile step.
#[derive(Deserialize)]
struct RunCodeRequest {
    code: String,
    language: String,
    /// Seconds of wall-clock time for the program.
    #[serde(default = "ten")]
    run_timeout: f64,
    /// MiB; zero or less asks for no particular limit (the server's default applies).
    #[serde(rename = "memory_limit_MB", default = "minus_one")]
    memory_limit_mb: i64,
    stdin: Option<String>,
    /// Relative path -> base64 content, written into the program's working directory.
    #[serde(default)]
    files: BTreeMap<String, Option<String>>,
    /// Relative paths read back after the run (those that exist).
    #[serde(default)]
    fetch_files: Vec<String>,
}

fn ten() -> f64 {
    10.0
}

fn minus_one() -> i64 {
    -1
}

/// SandboxFusion's `CommandRunResult`, plus `limit`.
#[derive(Serialize)]
struct CommandRunResult {
    status: &'static str,
    execution_time: Option<f64>,
    return_code: Option<i32>,
    stdout: Option<String>,
    stderr: Option<String>,
    /// The sandbox limit that stopped or cut the program (`deadline`, `fuel`, `memory`,
    /// `output`, `files`), when one did.
    limit: Option<&'static str>,
}

/// SandboxFusion's `RunCodeResponse`.
#[derive(Serialize)]
struct RunCodeResponse {
    status: &'static str,
    message: String,
    compile_result: Option<CommandRunResult>,
    run_result: Option<CommandRunResult>,
    executor_pod_name: Option<String>,
    files: BTreeMap<String, String>,
}

impl RunCodeResponse {
    fn sandbox_error(message: impl Into<String>) -> Self {
        Self {
            status: "SandboxError",
            message: message.into(),
            compile_result: None,
            run_result: None,
            executor_pod_name: None,
            files: BTreeMap::new(),
        }
    }
}

/// Largest memory cap a program may ask for, in MiB (the sandbox's own ceiling).
const MAX_MEMORY_MB: u64 = 2048;

/// Output kept per stream: SandboxFusion reads at most 1 MiB of each.
const OUTPUT_BYTES: usize = 1 << 20;

/// Where `files` land and `fetch_files` are read, and the program's working directory.
const WORKDIR: &str = "/workdir";

pub(crate) async fn run_code(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: RunCodeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid run_code request: {e}")),
    };
    if request.language != "python" {
        return Json(RunCodeResponse::sandbox_error(format!(
            "rlvr serve runs Python only (in its wasmtime sandbox); language {:?} is not supported",
            request.language
        )))
        .into_response();
    }
    if !(request.run_timeout.is_finite() && request.run_timeout > 0.0) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "run_timeout must be a positive number of seconds");
    }
    let deadline = shared.deadline();
    // The program's own deadline ends before the request's, so a program that runs to its time
    // limit is still answered.
    let budget_ms = shared.options.request_timeout.as_millis().saturating_sub(1000).max(1) as u64;
    let limits = Limits {
        deadline_ms: ((request.run_timeout * 1e3).ceil() as u64).clamp(1, budget_ms),
        // The time limit is wall-clock, as SandboxFusion's is; fuel would cut it shorter.
        fuel: u64::MAX / 4,
        memory_mb: if request.memory_limit_mb > 0 {
            (request.memory_limit_mb as u64).min(MAX_MEMORY_MB)
        } else {
            shared.options.run_code_memory_mb
        },
        output_bytes: OUTPUT_BYTES,
        ..Limits::default()
    };
    let job_shared = shared.clone();
    let job_limits = limits.clone();
    let result = shared
        .job(deadline, move || {
            job_shared.metrics.programs_live.fetch_add(1, Ordering::Relaxed);
            let r = execute(&request, &job_limits);
            job_shared.metrics.programs_live.fetch_sub(1, Ordering::Relaxed);
            r
        })
        .await;
    match result {
        Ok(Ok((e, files))) => {
            if let Some(l) = e.limit {
                shared.metrics.limit(l.name());
            }
            Json(response(e, &limits, files)).into_response()
        }
        Ok(Err(message)) => Json(RunCodeResponse::sandbox_error(message)).into_response(),
        Err(e) => error(e.status(), e.message()),
    }
}

/// Runs the request's program; `Err` is the sandbox's own failure (SandboxFusion's
/// `SandboxError`), never the program's.
fn execute(request: &RunCodeRequest, limits: &Limits) -> Result<(Execution, BTreeMap<String, String>), String> {
    let sandbox = Sandbox::shared().map_err(|e| format!("the sandbox could not start: {e}"))?;
    let stdin = request.stdin.as_deref().unwrap_or("").as_bytes();
    if request.files.is_empty() && request.fetch_files.is_empty() {
        let mut s = Session::with_stdin(&sandbox, limits, &[], 0, stdin).map_err(|e| e.to_string())?;
        let mut e = s.turn(&request.code, limits).map_err(|e| e.to_string())?;
        e.elapsed_ms = s.elapsed_ms();
        return Ok((e, BTreeMap::new()));
    }
    // Files: a fresh host directory, writable by the program and its working directory.
    let dir = tempfile::tempdir().map_err(|e| format!("creating the working directory: {e}"))?;
    for (name, content) in &request.files {
        let Some(content) = content else { continue };
        if name.contains("IGNORE_THIS_FILE") {
            continue;
        }
        let rel = relative(name)?;
        let bytes = B64.decode(content).map_err(|e| format!("files[{name:?}] is not base64: {e}"))?;
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("writing {name:?}: {e}"))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("writing {name:?}: {e}"))?;
    }
    let mounts = [Mount { host: dir.path().to_path_buf(), guest: WORKDIR.into(), writable: true }];
    let mut s = Session::with_stdin(&sandbox, limits, &mounts, 0, stdin).map_err(|e| e.to_string())?;
    let cd = s.turn(&format!("import os\nos.chdir({WORKDIR:?})"), limits).map_err(|e| e.to_string())?;
    if !cd.ok() {
        return Err(format!("entering the working directory failed: {}", cd.stderr));
    }
    let mut e = s.turn(&request.code, limits).map_err(|e| e.to_string())?;
    e.elapsed_ms = s.elapsed_ms();
    let mut files = BTreeMap::new();
    for name in &request.fetch_files {
        let rel = relative(name)?;
        // Only regular files inside the working directory (a symlink cannot point out of it:
        // the guest cannot create one that escapes its mount).
        let path = dir.path().join(rel);
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
        {
            files.insert(name.clone(), B64.encode(bytes));
        }
    }
    Ok((e, files))
}

/// `name` as a path inside the working directory: relative, no `..`. Absolute paths, which
/// SandboxFusion writes on its host, are refused here.
fn relative(name: &str) -> Result<&Path, String> {
    let p = Path::new(name);
    let inside = p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() || !inside {
        return Err(format!("file path {name:?} must be relative to the working directory, without `..`"));
    }
    Ok(p)
}

/// The sandbox's account of a run, in SandboxFusion's words.
fn response(e: Execution, limits: &Limits, files: BTreeMap<String, String>) -> RunCodeResponse {
    let seconds = Some(e.elapsed_ms / 1e3);
    let mut stderr = e.stderr;
    let (status, return_code) = match (e.exit_code, e.limit) {
        (_, Some(LimitKind::Deadline | LimitKind::Fuel)) => ("TimeLimitExceeded", None),
        (Some(rc), _) => ("Finished", Some(rc)),
        // Stopped by the memory or open-files cap, or a trap: the process "died", as one
        // killed by the kernel does under SandboxFusion; say why in its stderr.
        (None, limit) => {
            let why = match limit {
                Some(LimitKind::Memory) => format!("stopped by the memory limit ({} MiB)", limits.memory_mb),
                Some(l) => format!("stopped by the {} limit", l.name()),
                None => format!("stopped by a trap: {}", e.trap.as_deref().unwrap_or("unknown")),
            };
            if !stderr.is_empty() && !stderr.ends_with('\n') {
                stderr.push('\n');
            }
            stderr.push_str(&format!("[rlvr sandbox] {why}\n"));
            ("Finished", Some(if limit == Some(LimitKind::Memory) { 137 } else { 1 }))
        }
    };
    let ok = status == "Finished" && return_code == Some(0);
    RunCodeResponse {
        status: if ok { "Success" } else { "Failed" },
        message: String::new(),
        compile_result: None,
        run_result: Some(CommandRunResult {
            status,
            execution_time: seconds,
            return_code,
            stdout: Some(e.stdout),
            stderr: Some(stderr),
            limit: e.limit.map(LimitKind::name),
        }),
        executor_pod_name: None,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_working_directory() {
        assert!(relative("data/in.txt").is_ok());
        assert!(relative("./a.txt").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", ""] {
            assert!(relative(bad).is_err(), "{bad}");
        }
    }

    fn exec(exit_code: Option<i32>, limit: Option<LimitKind>) -> Execution {
        Execution {
            stdout: "out".into(),
            stderr: String::new(),
            exit_code,
            limit,
            fuel_used: 1,
            elapsed_ms: 12.0,
            truncated: vec![],
            trap: None,
        }
    }

    #[test]
    fn statuses_are_sandbox_fusions() {
        let l = Limits::default();
        let r = response(exec(Some(0), None), &l, BTreeMap::new());
        let rr = r.run_result.as_ref().unwrap();
        assert_eq!((r.status, rr.status, rr.return_code), ("Success", "Finished", Some(0)));
        assert_eq!(rr.execution_time, Some(0.012));
        let r = response(exec(Some(1), None), &l, BTreeMap::new());
        assert_eq!((r.status, r.run_result.as_ref().unwrap().return_code), ("Failed", Some(1)));
        let r = response(exec(None, Some(LimitKind::Deadline)), &l, BTreeMap::new());
        let rr = r.run_result.as_ref().unwrap();
        assert_eq!(
            (r.status, rr.status, rr.return_code, rr.limit),
            ("Failed", "TimeLimitExceeded", None, Some("deadline"))
        );
        let r = response(exec(None, Some(LimitKind::Memory)), &l, BTreeMap::new());
        let rr = r.run_result.as_ref().unwrap();
        assert_eq!((r.status, rr.status, rr.return_code), ("Failed", "Finished", Some(137)));
        assert!(rr.stderr.as_deref().unwrap().contains("memory limit (512 MiB)"));
        // An output flood is cut, not stopped: the exit status decides.
        let r = response(exec(Some(0), Some(LimitKind::Output)), &l, BTreeMap::new());
        let rr = r.run_result.as_ref().unwrap();
        assert_eq!((r.status, rr.status, rr.limit), ("Success", "Finished", Some("output")));
    }
}
