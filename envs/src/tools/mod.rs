//! Tool calling: tools declared in JSON Schema, calls parsed from model text, BFCL-grade
//! verification, and deterministic executable tools for multi-turn episodes.
//!
//! - [`parse`]: calls from `<tool_call>` JSON blocks or Python-call syntax, bounded and total.
//! - [`schema`]: argument validation against OpenAI-format tool declarations, by error category.
//! - [`ast_check`]: the Berkeley Function Calling Leaderboard's AST checker, rule for rule.
//! - [`backend`], [`exec`]: executable tools and the `tools/exec-v0` environment.
//! - [`bfcl`]: BFCL data (fetched and cached at first use) and the `tools/bfcl-v0` environment.

pub mod ast_check;
pub mod backend;
pub mod bfcl;
pub mod exec;
pub mod parse;
pub mod reward;
pub mod schema;
pub mod value;

use rlvr_engine::Registry;

/// Registers `tools/exec-v0` and `tools/bfcl-v0`.
pub fn register(registry: &mut Registry) {
    reward::register(registry);
    registry.env(
        exec::ID,
        "multi-turn calls to deterministic tools (calculator, units, inventory, calendar, lookup); levels 1-3",
        exec::spec,
    );
    registry.env(
        bfcl::ID,
        "Berkeley Function Calling Leaderboard tasks (simple, multiple, parallel, live); one answer",
        bfcl::spec,
    );
    registry.defaults(rlvr_engine::Kind::Env, exec::ID, exec::ExecConfig::default());
    registry.defaults(rlvr_engine::Kind::Env, bfcl::ID, bfcl::BfclConfig::default());
}
