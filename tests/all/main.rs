//! Whole-flow tests, compiled as one binary (one link step instead of one per file).

mod arith;
#[cfg(feature = "causal")]
mod causal;
#[cfg(feature = "code")]
mod code;
mod policies;
#[cfg(feature = "code")]
mod python_env;
mod rewards;
mod run;
mod runner;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "tools")]
mod tools;
mod train;
