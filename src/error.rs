//! The error of the `rlvr` package's operations, and the exit code each kind maps to.
//!
//! Two kinds, told apart where the failure happens so the CLI never has to guess: the user's
//! input is at fault ([`Error::BadInput`], exit code 2: a malformed TOML file, an unknown plugin
//! id, a missing file, a run directory that is not a run), or something else failed
//! ([`Error::Failed`], exit code 1: I/O during a run, a training step, a bug). The libraries
//! below return their own typed errors; this is where they meet the command line.

use std::process::ExitCode;

/// What went wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input is at fault; the message names the file, line and field where it can.
    #[error("{0}")]
    BadInput(String),
    /// Anything else, with the chain of what was being done (print it with `{:#}`).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code that reports this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::BadInput(_) => ExitCode::from(2),
            Error::Failed(_) => ExitCode::from(1),
        }
    }

    /// Says what was being done when this failed, keeping the kind: bad input stays bad input.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            Error::BadInput(m) => Error::BadInput(format!("{what}: {m}")),
            Error::Failed(e) => Error::Failed(e.context(what.to_string())),
        }
    }
}

/// The library errors that reach a command through `?`: each is a failure (exit code 1); where
/// one is the user's fault, the caller says so with [`Error::BadInput`] at that point.
macro_rules! failures {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Failed(e.into())
            }
        })*
    };
}

failures!(
    std::io::Error,
    serde_json::Error,
    rusqlite::Error,
    rlvr_engine::PolicyError,
    rlvr_policies::algo::TrainError,
    rlvr_policies::weights::WeightsError,
);

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
