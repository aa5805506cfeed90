//! The clock the Lansweeper simulator counts its quota by: real time, unless a test holds
//! it still (so a burst of requests falls in one minute however slow the machine is) or
//! moves it on (so an hour passes without being waited for).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared between a simulator and the test that started it; clones are the same clock.
#[derive(Debug, Clone)]
pub struct QuotaClock(Arc<Mutex<State>>);

#[derive(Debug)]
struct State {
    /// The clock read `at` when real time was `since`, and runs with it from there...
    at: Instant,
    since: Instant,
    /// ...unless held still at this reading.
    held: Option<Instant>,
}

impl Default for QuotaClock {
    fn default() -> Self {
        let now = Instant::now();
        Self(Arc::new(Mutex::new(State {
            at: now,
            since: now,
            held: None,
        })))
    }
}

impl QuotaClock {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn now(&self) -> Instant {
        let state = self.state();
        state
            .held
            .unwrap_or_else(|| state.at + state.since.elapsed())
    }

    /// Stops the clock: every request counts as made at this moment until
    /// [`QuotaClock::release`].
    pub fn hold(&self) {
        let now = self.now();
        self.state().held = Some(now);
    }

    /// Runs the clock again, on from where it was held (no time passed while it was).
    pub fn release(&self) {
        let mut state = self.state();
        if let Some(held) = state.held.take() {
            state.at = held;
            state.since = Instant::now();
        }
    }

    /// Moves the clock on by `by`, held or not.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        match &mut state.held {
            Some(held) => *held += by,
            None => state.at += by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_clock_stands_still_and_runs_on_from_there() {
        let clock = QuotaClock::default();
        clock.hold();
        let held = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), held, "held");
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            clock.now(),
            held + Duration::from_secs(60),
            "moved on while held"
        );
        let before = Instant::now();
        clock.release();
        let released = clock.now();
        let taken = before.elapsed();
        let moved = held + Duration::from_secs(60);
        assert!(
            released >= moved && released <= moved + taken,
            "the 20 ms held do not count"
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.now() > released, "runs again");
    }
}
