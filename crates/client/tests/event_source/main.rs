//! `EventSource` against real local servers that script every byte.
//!
//! One test binary (several modules) so the suite links once.

mod protocol;
mod reconnect;
mod redirects;
mod server;
