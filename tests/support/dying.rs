//! A store that dies once, as a killed process does, between sending a batch and
//! recording what came of it.

use std::sync::Mutex;

use shared::store::{MemoryStore, StoreError, Watched};

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
