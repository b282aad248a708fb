//! The hub's errors.

use std::path::PathBuf;

/// What went wrong in the hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The update cannot be published as given; the message says why.
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// An update with this id is already in the history.
    #[error("an update with id {0:?} was already published")]
    DuplicateId(String),
    /// A subscription named no topic selector.
    #[error("a subscription needs at least one topic selector")]
    NoSelector,
    /// The store failed; the update was not accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    Closed,
}

/// A result with the hub's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of a [`Store`](crate::Store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory or database file could not be opened or created.
    #[error("cannot open the history store at {path}: {reason}")]
    Open {
        /// The file or directory involved.
        path: PathBuf,
        /// What the system or the database said.
        reason: String,
    },
    /// Reading or writing the history failed.
    #[error("history store failure: {0}")]
    Io(String),
    /// A stored record could not be decoded: the file is damaged or from
    /// another program.
    #[error("history store is corrupted: {0}")]
    Corrupt(String),
}
