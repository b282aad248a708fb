//! The cluster: the hub's log, tail and presence shared by every node.
//!
//! One backend today, Redis Streams ([`RedisLog`], [`RedisPresence`]); the
//! seams are narrow so that NATS JetStream can follow.

mod redis;

pub use self::redis::{RedisLog, RedisOptions, RedisPresence, RedisTls};
