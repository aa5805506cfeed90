//! The store `lscw` works on: in memory (the demo), the embedded store on disk (one
//! machine), or the deployment's DynamoDB table.

use std::time::Duration;

use shared::environment::Lookup;
use shared::store::{Claim, DynamoStore, MemoryStore, Store, StoreError};

use crate::embedded::{self, EmbeddedStore};

/// DynamoDB when `AWS_ENDPOINT_URL` or `SYNC_TABLE` is set, the embedded store on disk
/// otherwise (`LSCW_DATA_DIR`, default under the user's data directory); the demo keeps
/// its store in memory.
pub enum AnyStore {
    Memory(MemoryStore),
    Embedded(EmbeddedStore),
    Dynamo(DynamoStore),
}

impl AnyStore {
    pub async fn from_lookup(lookup: &Lookup) -> Self {
        let table = lookup.get("SYNC_TABLE").filter(|t| !t.is_empty());
        let endpoint = lookup.get("AWS_ENDPOINT_URL").filter(|e| !e.is_empty());
        match (table, endpoint) {
            (None, None) => Self::Embedded(EmbeddedStore::new(embedded::default_path(
                lookup.get("LSCW_DATA_DIR"),
            ))),
            (table, _) => Self::Dynamo(
                DynamoStore::from_env(table.unwrap_or_else(|| "lscw-sync".into())).await,
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Memory(_) => "in memory".into(),
            Self::Embedded(store) => format!("embedded, {}", store.path().display()),
            Self::Dynamo(_) => "DynamoDB".into(),
        }
    }
}

impl Store for AnyStore {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Self::Memory(store) => store.put_raw(key, value, ttl).await,
            Self::Embedded(store) => store.put_raw(key, value, ttl).await,
            Self::Dynamo(store) => store.put_raw(key, value, ttl).await,
        }
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Memory(store) => store.get_raw(key).await,
            Self::Embedded(store) => store.get_raw(key).await,
            Self::Dynamo(store) => store.get_raw(key).await,
        }
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        match self {
            Self::Memory(store) => store.claim(key, owner, value, ttl).await,
            Self::Embedded(store) => store.claim(key, owner, value, ttl).await,
            Self::Dynamo(store) => store.claim(key, owner, value, ttl).await,
        }
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        match self {
            Self::Memory(store) => store.release(key, owner).await,
            Self::Embedded(store) => store.release(key, owner).await,
            Self::Dynamo(store) => store.release(key, owner).await,
        }
    }
}
