//! A run's identity, and where what it stores lives: every item of a run sits under
//! `run/{run_id}/`, so one run's items never mix with another's.

use std::time::{SystemTime, UNIX_EPOCH};

/// A run id: sortable by time, unique enough to share a table.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("run-{}-{:04x}", now.as_secs(), fastrand::u16(..))
}

/// The store key of `rest` within the run.
pub fn run_key(run_id: &str, rest: &str) -> String {
    format!("run/{run_id}/{rest}")
}
