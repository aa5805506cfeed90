//! The store of one process: tests, the demo and `lscw` without AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{Claim, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    items: Arc<Mutex<HashMap<String, Item>>>,
    /// Every call lets other tasks run first, as a store across a network does: a read
    /// and the write after it are then not one step (what tests of concurrent writers
    /// need).
    interleaved: bool,
}

#[derive(Debug, Clone)]
struct Item {
    value: String,
    expires: SystemTime,
    owner: Option<String>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose every call lets other tasks run first (see `interleaved`).
    pub fn interleaved() -> Self {
        Self {
            interleaved: true,
            ..Self::default()
        }
    }

    async fn turn(&self) {
        if self.interleaved {
            tokio::task::yield_now().await;
        }
    }

    /// Bytes of the value at `key`, as stored.
    pub fn raw_len(&self, key: &str) -> Option<usize> {
        self.items().get(key).map(|item| item.value.len())
    }

    pub fn keys(&self) -> Vec<String> {
        let items = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keys: Vec<String> = items.keys().cloned().collect();
        keys.sort();
        keys
    }
}

impl MemoryStore {
    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        self.turn().await;
        let item = Item {
            value,
            expires: SystemTime::now() + ttl,
            owner: None,
        };
        self.items().insert(key.to_string(), item);
        Ok(())
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.turn().await;
        Ok(self
            .items()
            .get(key)
            .filter(|item| item.expires > SystemTime::now())
            .map(|item| item.value.clone()))
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        self.turn().await;
        let mut items = self.items();
        let now = SystemTime::now();
        if let Some(held) = items.get(key)
            && held.expires > now
            && held.owner.as_deref() != Some(owner)
        {
            return Ok(Claim::HeldBy(held.value.clone()));
        }
        let item = Item {
            value,
            expires: now + ttl,
            owner: Some(owner.to_string()),
        };
        items.insert(key.to_string(), item);
        Ok(Claim::Taken)
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.turn().await;
        let mut items = self.items();
        let owned = items
            .get(key)
            .is_some_and(|item| owner.is_none_or(|o| item.owner.as_deref() == Some(o)));
        Ok(owned && items.remove(key).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        super::super::contract::check(&MemoryStore::new()).await;
    }
}
