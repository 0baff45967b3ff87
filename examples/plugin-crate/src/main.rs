//! The whole `rlvr` CLI plus this crate's plugins: `cargo run -- run letters.toml`.

fn main() -> std::process::ExitCode {
    rlvr::cli::main_with(rlvr_plugin_example::register)
}
