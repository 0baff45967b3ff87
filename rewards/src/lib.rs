//! Reward plugins: verifiers, one file each, registered under versioned ids.
//!
//! Every verifier is a pure function of (task, trajectory) and returns diagnostics with its
//! value, so a wrong reward can be traced to the answer it saw.

#![deny(missing_docs)]

#[cfg(feature = "rewards")]
pub mod bench;
#[cfg(feature = "rewards")]
pub mod choice;
pub mod exact;
pub mod extract;
#[cfg(feature = "rewards")]
pub mod json_schema;
#[cfg(feature = "rewards")]
pub mod latex;
#[cfg(feature = "rewards")]
pub mod math;
#[cfg(feature = "rewards")]
pub mod numeric;
#[cfg(feature = "rewards")]
pub mod pattern;
#[cfg(feature = "rewards")]
pub mod shaping;

use rlvr_engine::Registry;

/// Registers every reward compiled in.
pub fn register(registry: &mut Registry) {
    exact::register(registry);
    #[cfg(feature = "rewards")]
    {
        math::register(registry);
        numeric::register(registry);
        choice::register(registry);
        pattern::register(registry);
        json_schema::register(registry);
        shaping::register(registry);
    }
}
