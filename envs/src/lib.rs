//! Environments shipped with rlvr, each a plugin written against `rlvr-engine` exactly as a
//! user's would be. Each family sits behind a cargo feature of the same name, so a user who
//! needs one does not compile the others' sandboxes.

#![deny(missing_docs)]

pub mod arith;
#[cfg(feature = "causal")]
pub mod causal;
#[cfg(feature = "code")]
pub mod code;
/// Pinned wheels fetched at first use; it lives in the engine so that policies can use it too.
#[cfg(any(feature = "code", feature = "tools"))]
pub use rlvr_engine::fetch;
#[cfg(feature = "rewards")]
pub mod rewards;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "tools")]
pub mod tools;

use rlvr_engine::Registry;

/// Registers every environment compiled in.
pub fn register(registry: &mut Registry) {
    arith::register(registry);
    #[cfg(feature = "tools")]
    tools::register(registry);
    #[cfg(feature = "sql")]
    sql::register(registry);
    #[cfg(feature = "causal")]
    causal::register(registry);
    #[cfg(feature = "rewards")]
    rewards::register(registry);
    #[cfg(feature = "code")]
    code::register(registry);
}
