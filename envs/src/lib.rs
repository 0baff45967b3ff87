//! Environments shipped with rlvr, each a plugin written against `rlvr-engine` exactly as a
//! user's would be.
//!
//! Each family is one folder (`src/<family>/`) that owns its environment, sandbox, parser and
//! judge (`reward.rs`), and takes answer extraction from `rlvr-rewards`. Each sits behind a cargo
//! feature of the same name, so a user who needs one does not compile the others' sandboxes. A
//! new family is its folder, a `register` function in its `mod.rs`, and one line in
//! the `families!` list below (plus a feature in `Cargo.toml` if it needs dependencies of its
//! own).

#![deny(missing_docs)]

/// Pinned wheels fetched at first use; it lives in the engine so that policies can use it too.
#[cfg(any(feature = "code", feature = "tools"))]
pub use rlvr_engine::fetch;

use rlvr_engine::Registry;

/// Declares each family's module and registers it with its rewards, one line a family.
macro_rules! families {
    ($($(#[$cfg:meta])* $family:ident),* $(,)?) => {
        $($(#[$cfg])* pub mod $family;)*

        /// Registers every environment compiled in, with the rewards its family owns.
        pub fn register(registry: &mut Registry) {
            $($(#[$cfg])* $family::register(registry);)*
        }
    };
}

families! {
    arith,
    #[cfg(feature = "causal")] causal,
    #[cfg(feature = "code")] code,
    #[cfg(feature = "math")] math,
    #[cfg(feature = "sql")] sql,
    #[cfg(feature = "tools")] tools,
}
