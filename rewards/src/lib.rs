//! The general verifier library: answer extraction and the verifiers that need no environment
//! (exact answers, numbers, mathematics, choices, patterns, JSON), shaping terms, and the reward
//! benchmark, one file each, registered under versioned ids.
//!
//! Every verifier is a pure function of (task, trajectory) and returns diagnostics with its
//! value, so a wrong reward can be traced to the answer it saw. A verifier that needs an
//! environment's machinery (the SQL execution match runs the SQL sandbox) lives beside that
//! environment in `rlvr-envs`, and takes its extraction from [`extract`]: this crate depends on
//! no environment.

#![deny(missing_docs)]

pub mod bench;
pub mod choice;
pub mod exact;
pub mod extract;
pub mod json_schema;
pub mod latex;
pub mod math;
pub mod numeric;
pub mod pattern;
pub mod shaping;

use rlvr_engine::Registry;

/// Registers every reward compiled in.
pub fn register(registry: &mut Registry) {
    exact::register(registry);
    math::register(registry);
    numeric::register(registry);
    choice::register(registry);
    pattern::register(registry);
    json_schema::register(registry);
    shaping::register(registry);
}
