//! What the tail loop tells the rest of the hub about itself: whether it has
//! reached the log, is connected, and keeps up. Readiness is built from it.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A tail behind for longer than this makes the node not ready. Shorter
/// stretches are normal under a burst of publishes, and a probe that flaps
/// with every burst would take the node out of its load balancer for nothing.
const BEHIND_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Health {
    /// True once the tail loop has reached the log and set the head.
    pub(crate) opened: watch::Sender<bool>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Why the log cannot be reached, while it cannot.
    disconnected: Option<String>,
    /// Since when the tail has been reading pages with more behind them.
    behind_since: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            opened: watch::Sender::new(false),
            state: Mutex::default(),
        }
    }
}

impl Health {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tail cannot reach the log. Returns true when this is news (so the
    /// caller logs it once, not at every retry).
    pub(crate) fn disconnected(&self, why: String) -> bool {
        let mut state = self.state();
        let news = state.disconnected.is_none();
        state.disconnected = Some(why);
        news
    }

    /// The tail read from the log; `more` when it is behind. Returns true
    /// when the tail was disconnected before.
    pub(crate) fn connected(&self, more: bool) -> bool {
        let mut state = self.state();
        let was_down = state.disconnected.take().is_some();
        match (more, state.behind_since) {
            (true, None) => state.behind_since = Some(Instant::now()),
            (false, _) => state.behind_since = None,
            (true, Some(_)) => {}
        }
        was_down
    }

    pub(crate) fn opening_error(&self) -> String {
        match &self.state().disconnected {
            Some(why) => format!("the log has not been reached yet: {why}"),
            None => "the log has not been reached yet".to_owned(),
        }
    }

    /// Whether the tail is connected and caught up; the reason if not.
    pub(crate) fn tail_ready(&self) -> Result<(), String> {
        if !*self.opened.borrow() {
            return Err(self.opening_error());
        }
        let state = self.state();
        if let Some(why) = &state.disconnected {
            return Err(format!("the tail is disconnected from the log: {why}"));
        }
        match state.behind_since {
            Some(since) if since.elapsed() > BEHIND_GRACE => Err(format!(
                "the tail has been catching up with the log for {:.1} s",
                since.elapsed().as_secs_f64()
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_opened_connected_and_caught_up() {
        let health = Health::default();
        assert!(
            health
                .tail_ready()
                .unwrap_err()
                .contains("not been reached")
        );
        assert!(health.disconnected("connection refused".into()));
        assert!(
            !health.disconnected("connection refused".into()),
            "said once"
        );
        assert!(health.opening_error().contains("connection refused"));
        health.opened.send_replace(true);
        assert!(health.tail_ready().unwrap_err().contains("disconnected"));
        assert!(health.connected(true));
        assert!(health.tail_ready().is_ok(), "a short burst is not behind");
        health.state().behind_since = Some(Instant::now() - 2 * BEHIND_GRACE);
        assert!(health.tail_ready().unwrap_err().contains("catching up"));
        health.connected(false);
        assert!(health.tail_ready().is_ok());
    }
}
