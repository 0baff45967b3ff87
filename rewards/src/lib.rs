//! Reward plugins: verifiers, one file each, registered under versioned ids.
//!
//! Every verifier is a pure function of (task, trajectory) and returns diagnostics with its
//! value, so a wrong reward can be traced to the answer it saw. The general verifiers (answers,
//! numbers, mathematics, choices, patterns, JSON) are always compiled; those that reuse an
//! environment's machinery come with that environment's feature.

#![deny(missing_docs)]

pub mod bench;
#[cfg(feature = "causal")]
pub mod causal;
pub mod choice;
#[cfg(feature = "code")]
pub mod code;
pub mod exact;
pub mod extract;
pub mod json_schema;
pub mod latex;
pub mod math;
pub mod numeric;
pub mod pattern;
#[cfg(feature = "code")]
pub mod python;
pub mod shaping;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "tools")]
pub mod tools;

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
    #[cfg(feature = "tools")]
    tools::register(registry);
    #[cfg(feature = "sql")]
    sql::register(registry);
    #[cfg(feature = "causal")]
    causal::register(registry);
    #[cfg(feature = "code")]
    code::register(registry);
    #[cfg(feature = "code")]
    python::register(registry);
}
