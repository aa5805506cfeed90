//! A process killed midway: a store that dies once between sending a batch and
//! recording what came of it, or an action stopped right after ConnectWise saved a write.

use std::sync::Mutex;
use std::time::Duration;

use shared::store::{MemoryStore, StoreError, Watched};
use simulators::control::{Control, LostAnswer};

/// The world's store, but for one batch's result (a key ending in `{batch}/result`):
/// its first write fails as the process is killed; everything after goes through.
pub fn dies_before_recording(
    store: &MemoryStore,
    batch: impl Into<String>,
) -> Watched<MemoryStore> {
    let result = format!("{}/result", batch.into());
    let dies = Mutex::new(true);
    Watched::new(store.clone()).before_put(move |key, _| {
        let mut dies = dies.lock().unwrap();
        if *dies && key.ends_with(&result) {
            *dies = false;
            return Err(StoreError::Backend("the process was killed".into()));
        }
        Ok(())
    })
}

/// Runs `action` until the simulator `control` steers (ConnectWise's, or Lansweeper's for
/// its edits) has saved its `k`th write from now, and stops it there, before the answer
/// comes back, as a process killed at that point: `None` then, or the action's outcome
/// when it ended before that write.
pub async fn killed_after_write<T>(
    control: &Control,
    k: u64,
    action: impl Future<Output = T>,
) -> Option<T> {
    // The `k`th write's answer is held back long enough for the kill to come first.
    control.lose_answers_to("", &[(LostAnswer::Late(Duration::from_secs(600)), k)]);
    let killed = async {
        while control.writes_seen() < k {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let outcome = tokio::select! {
        outcome = action => Some(outcome),
        () = killed => None,
    };
    control.lose_answers(&[]);
    outcome
}

/// The writes the simulator saves while `action` runs: the kill points of
/// [`killed_after_write`].
pub async fn saved_writes_of<T>(control: &Control, action: impl Future<Output = T>) -> (T, u64) {
    // A rule whose turn never comes: every saved write is counted, none loses its answer.
    control.lose_answers_to("", &[(LostAnswer::Late(Duration::ZERO), u64::MAX)]);
    let outcome = action.await;
    let saved = control.writes_seen();
    control.lose_answers(&[]);
    (outcome, saved)
}
