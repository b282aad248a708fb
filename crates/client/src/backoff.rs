//! How long to wait before reconnecting.
//!
//! After a healthy stream the wait is exactly the reconnection time (the
//! builder's [`retry`](crate::EventSourceBuilder::retry), replaced by any
//! `retry:` field the server sends), as in a browser. After consecutive
//! failures it doubles, with jitter, up to a cap: a hub that restarts must not
//! be hit by every client at the same instant, nor by a client that retries a
//! dead address at full speed.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The smallest base for exponential backoff. A server may say `retry: 0`;
/// doubling zero stays zero, so failures would reconnect in a tight loop.
/// From 10 ms the doubling reaches a 30 s cap within a dozen failures.
const MIN_FAILURE_BASE: Duration = Duration::from_millis(10);

/// Failures beyond this many no longer double the delay (2^20 times any base
/// is past any sensible cap), which also keeps the multiplication in range.
const MAX_DOUBLINGS: u32 = 20;

/// Reconnection delays: the server's `retry`, then exponential backoff with
/// "equal jitter" on consecutive failures.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    /// The reconnection time: what a healthy stream waits before reconnecting.
    retry: Duration,
    /// The cap on backoff (never below `retry`, see [`Backoff::ceiling`]).
    max: Duration,
    /// Consecutive failures since the last healthy stream.
    failures: u32,
    /// Jitter only needs spread, not unpredictability: a small fast generator,
    /// seeded per client so that clients do not move in lockstep.
    rng: SmallRng,
}

impl Backoff {
    /// A backoff seeded from the operating system's randomness.
    pub(crate) fn new(retry: Duration, max: Duration) -> Backoff {
        Backoff::with_rng(retry, max, SmallRng::from_os_rng())
    }

    /// A backoff with a given jitter source (tests seed it).
    pub(crate) fn with_rng(retry: Duration, max: Duration, rng: SmallRng) -> Backoff {
        Backoff {
            retry,
            max,
            failures: 0,
            rng,
        }
    }

    /// The server sent `retry:`: the reconnection time changes from now on.
    pub(crate) fn set_retry(&mut self, retry: Duration) {
        self.retry = retry;
    }

    /// The delay before the next connection attempt.
    ///
    /// `healthy` says the connection that just ended was a good one: it resets
    /// the failure count and the wait is exactly the reconnection time.
    /// Otherwise the failure count grows and the wait backs off.
    pub(crate) fn next_delay(&mut self, healthy: bool) -> Duration {
        if healthy {
            self.failures = 0;
            return self.retry;
        }
        self.failures = self.failures.saturating_add(1);
        let fraction = self.rng.random::<f64>();
        self.delay_for(self.failures, fraction)
    }

    /// The delay after `failures` consecutive failures, with `fraction`
    /// (in `0.0..=1.0`) choosing where in the jitter range it falls.
    ///
    /// "Equal jitter": half the ceiling is fixed and half is random. Keeping a
    /// fixed half means the delay really grows with each failure (failure `n`
    /// never waits less than failure `n - 1` could at most), while the random
    /// half spreads out clients that all lost the same server at once.
    fn delay_for(&self, failures: u32, fraction: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(fraction.clamp(0.0, 1.0))
    }

    /// The most a wait after `failures` consecutive failures can be:
    /// `base * 2^failures`, capped.
    fn ceiling(&self, failures: u32) -> Duration {
        let base = self.retry.max(MIN_FAILURE_BASE);
        // A server that asks for a longer `retry` than our cap is obeyed: the
        // cap bounds our own backoff, not the server's explicit wish.
        let cap = self.max.max(self.retry);
        base.saturating_mul(1 << failures.min(MAX_DOUBLINGS))
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff(retry: u64, max: u64, seed: u64) -> Backoff {
        Backoff::with_rng(ms(retry), ms(max), SmallRng::seed_from_u64(seed))
    }

    #[test]
    fn healthy_streams_wait_exactly_the_retry_time() {
        let mut b = backoff(3000, 30_000, 1);
        assert_eq!(b.next_delay(true), ms(3000));
        b.set_retry(ms(25));
        assert_eq!(b.next_delay(true), ms(25));
        assert_eq!(b.next_delay(true), ms(25));
    }

    #[test]
    fn jitter_range_doubles_per_failure_and_is_capped() {
        let b = backoff(100, 1000, 1);
        // fraction 0 is the bottom of each range, fraction 1 the top.
        let lowest: Vec<_> = (1..=6).map(|n| b.delay_for(n, 0.0)).collect();
        let highest: Vec<_> = (1..=6).map(|n| b.delay_for(n, 1.0)).collect();
        assert_eq!(
            lowest,
            [ms(100), ms(200), ms(400), ms(500), ms(500), ms(500)]
        );
        assert_eq!(
            highest,
            [ms(200), ms(400), ms(800), ms(1000), ms(1000), ms(1000)]
        );
        assert_eq!(b.delay_for(2, 0.5), ms(300));
    }

    #[test]
    fn seeded_delays_are_deterministic_within_bounds_and_reset_when_healthy() {
        let run = |seed| {
            let mut b = backoff(100, 1000, seed);
            let mut delays: Vec<_> = (0..8).map(|_| b.next_delay(false)).collect();
            delays.push(b.next_delay(true));
            delays.push(b.next_delay(false));
            delays
        };
        let delays = run(7);
        assert_eq!(delays, run(7), "same seed, same delays");
        assert_ne!(delays, run(8), "another seed spreads differently");
        let bounds = [
            (100, 200),
            (200, 400),
            (400, 800),
            (500, 1000),
            (500, 1000),
            (500, 1000),
            (500, 1000),
            (500, 1000),
        ];
        for (delay, (low, high)) in delays.iter().zip(bounds) {
            assert!(
                (ms(low)..=ms(high)).contains(delay),
                "{delay:?} not in {low}..={high} ms"
            );
        }
        assert_eq!(delays[8], ms(100), "a healthy stream waits exactly retry");
        assert!(
            (ms(100)..=ms(200)).contains(&delays[9]),
            "the failure count restarted after the healthy stream: {:?}",
            delays[9]
        );
    }

    #[test]
    fn a_server_retry_above_the_cap_is_obeyed() {
        let mut b = backoff(100, 1000, 3);
        b.set_retry(ms(5000));
        assert_eq!(b.next_delay(true), ms(5000));
        assert_eq!(
            b.delay_for(1, 1.0),
            ms(5000),
            "capped at the server's retry"
        );
        assert_eq!(b.delay_for(1, 0.0), ms(2500));
    }

    #[test]
    fn retry_zero_still_backs_off() {
        let b = backoff(0, 30_000, 4);
        assert_eq!(b.delay_for(1, 1.0), ms(20));
        assert_eq!(b.delay_for(12, 1.0), ms(30_000));
        assert_eq!(b.delay_for(u32::MAX, 1.0), ms(30_000), "no overflow");
    }
}
