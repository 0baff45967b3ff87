//! The error type plugins return for their own failures.
//!
//! A leaf module, so that every module of the engine can name it without importing from the
//! facade that re-exports them all.

/// Any error a plugin raises (a config it rejects, a task it cannot read), boxed: plugins are
/// many and their failures open-ended, and the engine only reports them, tagged with the plugin
/// and task they came from.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
