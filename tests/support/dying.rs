//! A store that dies once, as a killed process does, between sending a batch and
//! recording what came of it.

use std::sync::Mutex;
use std::time::Duration;

use shared::store::{Claim, MemoryStore, Store, StoreError};

/// The world's store, but for one batch's result (a key ending in `{batch}/result`):
/// its first write fails as the process is killed; everything after goes through.
pub struct DiesBeforeRecording<'a> {
    inner: &'a MemoryStore,
    batch: Mutex<Option<String>>,
}

impl<'a> DiesBeforeRecording<'a> {
    pub fn at(inner: &'a MemoryStore, batch: impl Into<String>) -> Self {
        Self {
            inner,
            batch: Mutex::new(Some(batch.into())),
        }
    }
}

impl Store for DiesBeforeRecording<'_> {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        let dies = {
            let mut batch = self.batch.lock().unwrap();
            let dies = batch
                .as_deref()
                .is_some_and(|b| key.ends_with(&format!("{b}/result")));
            if dies {
                *batch = None;
            }
            dies
        };
        if dies {
            return Err(StoreError::Backend("the process was killed".into()));
        }
        self.inner.put_raw(key, value, ttl).await
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_raw(key).await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(key, owner, value, ttl).await
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.inner.release(key, owner).await
    }
}
