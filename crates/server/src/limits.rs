//! Connection limits: in total and per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use crate::error::ApiError;

/// Counts open connections and refuses those over the limits.
///
/// `max-connections` is what subscribers may take; a few connections more
/// (the reserve) are admitted so that publishers, health checks and the
/// subscription API still get through when subscribers fill the hub. A
/// connection is admitted before its request is read, so the subscriber
/// count is checked again when a request turns out to be a subscription.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    reserve: usize,
    open: Mutex<Counts>,
    subscribers: AtomicUsize,
}

/// A subscription's place in the limits; dropping it frees it.
#[derive(Debug)]
pub(crate) struct SubscriberSlot {
    /// `None` once handed to its connection's guard.
    limits: Option<Arc<ConnectionLimitsRef>>,
}

impl SubscriberSlot {
    /// Lets the connection's guard free the place when the connection ends:
    /// one guard per lean subscriber rather than two, since every subscriber
    /// holds it for its life.
    pub(crate) fn into_guard(mut self, guard: &mut ConnectionGuard) {
        if self.limits.take().is_some() {
            guard.subscriber = true;
        }
    }
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        if let Some(state) = &self.limits {
            state.limits.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An HTTP/2 stream's place in its client's per-IP count: one connection
/// carries many streams, and each counts as a connection would.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    limits: Arc<ConnectionLimitsRef>,
    ip: IpAddr,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.limits.limits.release_ip(self.ip);
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// An admitted connection; dropping it frees its place (and its
/// subscriber's, once it holds one).
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    limits: Arc<ConnectionLimitsRef>,
    ip: IpAddr,
    subscriber: bool,
}

/// What a guard needs to find its counters again.
pub(crate) type ConnectionLimitsRef = crate::state::AppState;

/// Connections kept beyond the subscriber limit for publishes and probes:
/// 2 % of the limit, at least 8 and at most 256.
fn reserve_for(max_subscribers: usize) -> usize {
    (max_subscribers / 50).clamp(8, 256)
}

/// Files a hub holds besides its connections: stdio, listeners, the
/// runtime's epoll and wake-up descriptors, the history's files, Redis
/// connections, certificates being read.
const FILES_BESIDES_CONNECTIONS: u64 = 64;

/// The subscriber limit this process's open-file limit allows: every
/// connection is a file, and the reserve and the hub's own files must fit
/// too. 15 000 where the limit cannot be read.
pub fn default_max_connections() -> usize {
    open_file_limit().map_or(15_000, max_connections_within)
}

/// This process's soft open-file limit, if it has one.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The largest subscriber limit whose connections, reserve included, fit
/// in `files` open files.
pub(crate) fn max_connections_within(files: u64) -> usize {
    let room =
        usize::try_from(files.saturating_sub(FILES_BESIDES_CONNECTIONS)).unwrap_or(usize::MAX);
    // The reserve depends on the limit: start near the answer, then step.
    let mut max = room.saturating_sub(reserve_for(room));
    while max + 1 + reserve_for(max + 1) <= room {
        max += 1;
    }
    while max > 0 && max + reserve_for(max) > room {
        max -= 1;
    }
    // With a tiny limit, still a usable (if small) hub.
    max.max(1)
}

/// Raises this process's soft open-file limit to its hard limit (what
/// servers such as nginx with `worker_rlimit_nofile`, or Go's runtime, do):
/// the soft limit is often 1 024 while the hard one allows far more.
/// Returns the soft limit now in force, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    open_file_limit()
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_total,
            max_per_ip,
            reserve: reserve_for(max_total),
            open: Mutex::default(),
            subscribers: AtomicUsize::new(0),
        }
    }

    /// Takes a subscriber's place, or says the hub is full of subscribers.
    pub(crate) fn subscribe(state: &Arc<ConnectionLimitsRef>) -> Result<SubscriberSlot, ApiError> {
        let limits = &state.limits;
        if limits.subscribers.fetch_add(1, Ordering::Relaxed) >= limits.max_total {
            limits.subscribers.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!("tidings_connections_rejected_total", "reason" => "subscribers")
                .increment(1);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the hub is at its limit of {} subscribers; retry later",
                    limits.max_total
                ),
            )
            .retry_after(5));
        }
        Ok(SubscriberSlot {
            limits: Some(state.clone()),
        })
    }

    /// Takes an HTTP/2 stream's place in its client's per-IP count.
    pub(crate) fn stream(
        state: &Arc<ConnectionLimitsRef>,
        ip: IpAddr,
    ) -> Result<StreamSlot, ApiError> {
        state.limits.admit_ip(ip)?;
        Ok(StreamSlot {
            limits: state.clone(),
            ip,
        })
    }

    fn admit_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let mut counts = self.counts();
        let for_ip = counts.per_ip.entry(ip).or_default();
        if *for_ip >= self.max_per_ip {
            return Err(self.too_many_from(ip));
        }
        *for_ip += 1;
        Ok(())
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut counts = self.counts();
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }

    fn too_many_from(&self, ip: IpAddr) -> ApiError {
        metrics::counter!("tidings_connections_rejected_total", "reason" => "per-ip").increment(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many connections from {ip} (limit {}); close some or retry later",
                self.max_per_ip
            ),
        )
        .retry_after(5)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip`, or says why not: 503 over the total,
    /// 429 over the per-IP limit, both with `Retry-After`.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<(), ApiError> {
        let mut counts = self.counts();
        if counts.total >= self.max_total + self.reserve {
            metrics::counter!("tidings_connections_rejected_total", "reason" => "total")
                .increment(1);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the hub is at its limit of {} connections; retry later",
                    self.max_total
                ),
            )
            .retry_after(5));
        }
        let for_ip = counts.per_ip.entry(ip).or_default();
        if *for_ip >= self.max_per_ip {
            return Err(self.too_many_from(ip));
        }
        *for_ip += 1;
        counts.total += 1;
        metrics::gauge!("tidings_connections").set(counts.total as f64);
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        let total = {
            let mut counts = self.counts();
            counts.total -= 1;
            counts.total
        };
        self.release_ip(ip);
        metrics::gauge!("tidings_connections").set(total as f64);
    }
}

impl ConnectionGuard {
    /// Admits a connection and returns its guard.
    pub(crate) fn admit(
        state: &Arc<ConnectionLimitsRef>,
        ip: IpAddr,
    ) -> Result<ConnectionGuard, ApiError> {
        state.limits.admit(ip)?;
        Ok(ConnectionGuard {
            limits: state.clone(),
            ip,
            subscriber: false,
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let limits = &self.limits.limits;
        if self.subscriber {
            limits.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        limits.release(self.ip);
    }
}

#[cfg(test)]
mod default_tests {
    use super::{FILES_BESIDES_CONNECTIONS, max_connections_within, reserve_for};

    #[test]
    fn the_default_limit_fills_the_open_file_limit_and_no_more() {
        for files in [0, 64, 100, 1_024, 4_096, 20_000, 65_536, 1 << 20] {
            let max = max_connections_within(files);
            assert!(max >= 1, "{files}");
            let room = files.saturating_sub(FILES_BESIDES_CONNECTIONS) as usize;
            if room > 300 {
                assert!(max + reserve_for(max) <= room, "{files}: {max}");
                assert!(
                    max + 1 + reserve_for(max + 1) > room,
                    "{files}: {max} is not the largest"
                );
            }
        }
        assert_eq!(max_connections_within(20_000), 19_680);
        assert_eq!(max_connections_within(1_024), 942);
    }
}
