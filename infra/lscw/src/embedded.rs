//! The store of `lscw` without DynamoDB: an embedded database in a file (redb), so that
//! what a run leaves for the next (the reference cache, run reports, the run lease,
//! what enrichment remembers) survives between invocations exactly as in DynamoDB. The
//! file is opened for each operation and closed after it, so several `lscw` processes
//! share it one operation at a time. Expired items are deleted as DynamoDB's TTL deletes
//! them: a process's first write, and one an hour after, sweeps them out, so the file
//! holds what lives and never grows with the runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, DatabaseError, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shared::clock::epoch_seconds as now;
use shared::store::{Claim, Store, StoreError};

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");

/// How long an operation waits for another process to close the file.
const WAIT_FOR_FILE: Duration = Duration::from_secs(30);

/// How often a long-lived process sweeps expired items out (seconds).
const SWEEP_EVERY: u64 = 3600;

/// Where the file lives: `LSCW_DATA_DIR`, or `lscw` under the user's data directory.
pub fn default_path(data_dir: Option<String>) -> PathBuf {
    data_dir
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("lscw")))
        .unwrap_or_else(|| PathBuf::from(".lscw"))
        .join("store.redb")
}

#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    path: PathBuf,
    /// When this process last swept expired items out (epoch seconds; 0: never).
    swept_at: Arc<AtomicU64>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    value: String,
    expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

fn backend(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{}: {error}", path.display()))
}

impl EmbeddedStore {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            swept_at: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether this write sweeps expired items out first: the process's first, then one
    /// an hour.
    fn sweeps(&self) -> bool {
        let now = now();
        let last = self.swept_at.load(Ordering::SeqCst);
        now.saturating_sub(last) >= SWEEP_EVERY
            && self
                .swept_at
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unexpired items, and the largest (bytes, key): what a benchmark reports.
    pub async fn stats(&self) -> Result<(u64, usize, String), StoreError> {
        self.with_items(|table| {
            let (mut items, mut largest, mut largest_key) = (0, 0, String::new());
            for entry in table
                .iter()
                .map_err(|e| StoreError::Backend(e.to_string()))?
            {
                let (key, value) = entry.map_err(|e| StoreError::Backend(e.to_string()))?;
                let item: Item =
                    serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
                        key: key.value().to_string(),
                        reason: e.to_string(),
                    })?;
                if item.expires <= now() {
                    continue;
                }
                items += 1;
                if item.value.len() > largest {
                    largest = item.value.len();
                    largest_key = key.value().to_string();
                }
            }
            Ok((items, largest, largest_key))
        })
        .await
    }

    /// Runs `operation` in one write transaction on the file, off the async threads.
    async fn with_items<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| backend(&path, e))?;
            }
            let started = Instant::now();
            let database = loop {
                match Database::create(&path) {
                    Ok(database) => break database,
                    Err(DatabaseError::DatabaseAlreadyOpen)
                        if started.elapsed() < WAIT_FOR_FILE =>
                    {
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    Err(error) => return Err(backend(&path, error)),
                }
            };
            let transaction = database.begin_write().map_err(|e| backend(&path, e))?;
            let answer = {
                let mut table = transaction
                    .open_table(ITEMS)
                    .map_err(|e| backend(&path, e))?;
                operation(&mut table)?
            };
            transaction.commit().map_err(|e| backend(&path, e))?;
            Ok(answer)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task: {e}")))?
    }
}

fn read(table: &redb::Table<&str, &[u8]>, key: &str) -> Result<Option<Item>, StoreError> {
    let Some(bytes) = table
        .get(key)
        .map_err(|e| StoreError::Backend(e.to_string()))?
    else {
        return Ok(None);
    };
    let item: Item = serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok((item.expires > now()).then_some(item))
}

/// Deletes every expired item (an item that cannot be read is left for the read that
/// reports it).
fn sweep(table: &mut redb::Table<&str, &[u8]>) -> Result<(), StoreError> {
    let now = now();
    table
        .retain(|_, bytes| {
            serde_json::from_slice::<Item>(bytes).map_or(true, |item| item.expires > now)
        })
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn write(table: &mut redb::Table<&str, &[u8]>, key: &str, item: &Item) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(item).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    table
        .insert(key, bytes.as_slice())
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(())
}

impl Store for EmbeddedStore {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        let key = key.to_string();
        let sweeps = self.sweeps();
        self.with_items(move |table| {
            if sweeps {
                sweep(table)?;
            }
            let item = Item {
                value,
                expires: now() + ttl.as_secs(),
                owner: None,
            };
            write(table, &key, &item)
        })
        .await
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.with_items(move |table| Ok(read(table, &key)?.map(|item| item.value)))
            .await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.with_items(move |table| {
            if let Some(held) = read(table, &key)?
                && held.owner.as_deref() != Some(owner.as_str())
            {
                return Ok(Claim::HeldBy(held.value));
            }
            let item = Item {
                value,
                expires: now() + ttl.as_secs(),
                owner: Some(owner),
            };
            write(table, &key, &item)?;
            Ok(Claim::Taken)
        })
        .await
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_string(), owner.map(str::to_string));
        self.with_items(move |table| {
            let owned = read(table, &key)?
                .is_some_and(|item| owner.is_none() || item.owner.as_deref() == owner.as_deref());
            if owned {
                table
                    .remove(key.as_str())
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(owned)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use shared::store::StoreExt;

    use super::*;

    #[tokio::test]
    async fn the_embedded_store_keeps_the_contract() {
        let dir = std::env::temp_dir().join(format!("lscw-contract-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        shared::store::contract::check(&EmbeddedStore::new(dir.join("store.redb"))).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Breaking it looks like: a store file that keeps every run's records forever, reads
    /// skipping them while the file grows with every run.
    #[tokio::test]
    async fn expired_items_are_deleted_as_dynamodb_s_ttl_deletes_them() {
        let dir = std::env::temp_dir().join(format!("lscw-sweep-{}", std::process::id()));
        let path = dir.join("store.redb");
        let _ = std::fs::remove_dir_all(&dir);
        let entries = |path: &Path| {
            use redb::{ReadableDatabase, ReadableTableMetadata};
            let database = Database::create(path).unwrap();
            let read = database.begin_read().unwrap();
            read.open_table(ITEMS).unwrap().len().unwrap()
        };
        // Run after run, each leaving records that then expire: the file holds only what
        // still lives.
        for run in 0..20 {
            let store = EmbeddedStore::new(path.clone());
            for part in 0..10 {
                store
                    .put(&format!("run/{run}/part/{part}"), &part, Duration::ZERO)
                    .await
                    .unwrap();
            }
            store
                .put("mapping", &run, Duration::from_secs(600))
                .await
                .unwrap();
            assert!(entries(&path) <= 11, "run {run}: {} items", entries(&path));
        }
        let store = EmbeddedStore::new(path.clone());
        store
            .put("last", &1, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(entries(&path), 2, "what lives, and nothing else");
        assert_eq!(store.get::<i32>("mapping").await.unwrap(), Some(19));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn values_and_leases_outlive_the_store_that_wrote_them() {
        let dir = std::env::temp_dir().join(format!("lscw-embedded-{}", std::process::id()));
        let path = dir.join("store.redb");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = EmbeddedStore::new(path.clone());
            store.put("a", &41, Duration::from_secs(60)).await.unwrap();
            store.put("gone", &1, Duration::ZERO).await.unwrap();
            assert_eq!(shared::lease::acquire(&store, "run-1").await.unwrap(), None);
        }
        let reopened = EmbeddedStore::new(path);
        assert_eq!(reopened.get::<i32>("a").await.unwrap(), Some(41));
        assert_eq!(reopened.get::<i32>("gone").await.unwrap(), None);
        let held = shared::lease::acquire(&reopened, "run-2").await.unwrap();
        assert_eq!(held.unwrap().run_id, "run-1");
        assert!(shared::lease::release(&reopened, "run-1").await.unwrap());
        assert_eq!(
            shared::lease::acquire(&reopened, "run-2").await.unwrap(),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
