//! Reward plugins: verifiers, one file each, registered under versioned ids.
//!
//! Every verifier is a pure function of (task, trajectory) and returns diagnostics with its
//! value, so a wrong reward can be traced to the answer it saw.

#![deny(missing_docs)]

#[cfg(feature = "causal")]
pub mod causal;
pub mod exact;
pub mod extract;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "tools")]
pub mod tools;

use rlvr_engine::Registry;

/// Registers every reward compiled in.
pub fn register(registry: &mut Registry) {
    exact::register(registry);
    #[cfg(feature = "tools")]
    tools::register(registry);
    #[cfg(feature = "sql")]
    sql::register(registry);
    #[cfg(feature = "causal")]
    causal::register(registry);
}
