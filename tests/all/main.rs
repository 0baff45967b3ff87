//! Whole-flow tests, compiled as one binary (one link step instead of one per file).

mod arith;
mod run;
mod runner;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "tools")]
mod tools;
