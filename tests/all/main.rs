//! Whole-flow tests, compiled as one binary (one link step instead of one per file).

mod arith;
mod rewards;
mod run;
mod runner;
