//! The `rlvr` binary: the CLI over the built-in plugins.

fn main() -> std::process::ExitCode {
    rlvr::keep_freed_memory();
    rlvr::cli::main()
}
