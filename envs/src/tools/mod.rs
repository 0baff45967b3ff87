//! Tool calling: JSON-schema tools, calls parsed from model text, BFCL-grade verification, and
//! executable tools for multi-turn episodes.

pub mod ast_check;
pub mod parse;
pub mod value;

use rlvr_engine::Registry;

/// Registers the tool-calling environments.
pub fn register(_registry: &mut Registry) {}
