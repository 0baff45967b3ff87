//! Policies: what writes the assistant's turns. The burn language models arrive here; until
//! then, and for tests and demos ever after, the scripted policy plays an environment's gold
//! answers with a chosen accuracy.

#![deny(missing_docs)]

pub mod scripted;

use rlvr_engine::Registry;

/// Registers every policy compiled in.
pub fn register(registry: &mut Registry) {
    scripted::register(registry);
}
