//! Whole-flow tests, compiled as one binary (one link step instead of one per file).

mod arith;
#[cfg(feature = "causal")]
mod causal;
#[cfg(feature = "code")]
mod code;
mod eval;
mod policies;
#[cfg(feature = "code")]
mod python_env;
mod rewards;
mod run;
mod runner;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "tools")]
mod tools;
mod train;

/// The path of `rel` in this checkout, read at run time rather than with `env!`: cargo may reuse a
/// test binary built from another checkout that shares the build cache, whose compiled-in path
/// names that checkout's files.
fn repo(rel: &str) -> String {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests");
    format!("{root}/{rel}")
}

/// Runs the `rlvr` binary in `cwd` (log level warn); returns its exit code, stdout and stderr.
fn rlvr(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
