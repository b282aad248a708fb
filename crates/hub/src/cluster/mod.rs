//! The cluster: the hub's log, tail and presence shared by every node, on
//! one of two engines behind the same seams: Redis Streams ([`RedisLog`],
//! [`RedisPresence`]) or NATS JetStream ([`NatsLog`], [`NatsPresence`]).

#[cfg(any(feature = "redis", feature = "nats"))]
mod consecutive;
#[cfg(any(feature = "redis", feature = "nats"))]
mod ledger;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "redis", feature = "nats"))]
mod tls;

#[cfg(feature = "nats")]
pub use self::nats::{NatsLog, NatsOptions, NatsPresence};
#[cfg(feature = "redis")]
pub use self::redis::{RedisLog, RedisOptions, RedisPresence, RedisTls};
