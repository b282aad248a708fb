//! The hub's errors.

use std::time::Duration;

pub use crate::log::LogError;

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
    /// A selector cannot be used as given (a URL pattern that does not
    /// compile); the message names it and says why.
    #[error("invalid selector {0}")]
    InvalidSelector(String),
    /// A subscription named no topic selector.
    #[error("a subscription needs at least one topic selector")]
    NoSelector,
    /// The log failed or cannot be reached; the update was not stored.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log failed while the update was on its way (a connection lost
    /// mid-request, say): it may or may not be stored. Publish again with the
    /// same id to be sure (a duplicate is refused).
    #[error(
        "{0}; the update may still have been stored: publish again with the same id to be sure it is stored once"
    )]
    Unconfirmed(LogError),
    /// The log did not accept the update in time. It was not stored unless
    /// the log took it just before the deadline: publish again with the same
    /// id to be sure (a duplicate is refused).
    #[error(
        "the log did not accept the update within {0:?}; publish again with the same id to be sure it is stored once"
    )]
    Timeout(Duration),
    /// The node cannot serve now; the message says why.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    Closed,
}

/// A result with the hub's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
