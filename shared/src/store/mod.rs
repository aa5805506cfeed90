//! Where the pipeline keeps what passes between its steps (staged assets, batches,
//! results) and what outlives a run (the reference cache): one trait and its typed
//! extension here, the stores beside it — in memory for one machine and tests, DynamoDB
//! for Lambda — each held to the same [`contract`].

#[cfg(any(test, feature = "contract"))]
pub mod contract;
mod dynamodb;
mod memory;
#[cfg(any(test, feature = "contract"))]
mod watched;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;
#[cfg(any(test, feature = "contract"))]
pub use watched::Watched;

/// DynamoDB refuses items over 400 KB; values are kept well under.
pub const MAX_VALUE_BYTES: usize = 300 * 1024;

/// The most a list's part (or a batch) serialises to: room to spare under
/// [`MAX_VALUE_BYTES`] for what is stored beside it.
pub const PART_BYTES: usize = MAX_VALUE_BYTES - 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store: value at {key} is {bytes} bytes, over the {MAX_VALUE_BYTES}-byte limit")]
    TooLarge { key: String, bytes: usize },
    #[error("store: value at {key} is not what was expected: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store: nothing at {0}")]
    Missing(String),
}

pub trait Store: Send + Sync {
    /// Stores `value` at `key` for `ttl`.
    fn put_raw(
        &self,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The value at `key`, unless absent or expired.
    fn get_raw(&self, key: &str)
    -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Puts `value` at `key` for `owner`, unless an unexpired item there belongs to
    /// another owner: then answers that item's value and changes nothing. Atomic: of two
    /// owners claiming at once, one gets it.
    fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Deletes `key` when `owner` holds it (whoever does, for `None`); answers whether an
    /// item was deleted.
    fn release(
        &self,
        key: &str,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// How long a writer may hold an item's write lock: far longer than one read and write
/// of the item, short enough that a writer that died leaves it to lapse soon.
pub const WRITE_LOCK_TTL: Duration = Duration::from_secs(15);

/// Runs `work` (a read, change and write of `key`) with no other writer of `key` between
/// its read and its write: a lock item (`{key}/lock`, claimed as the lease is) is held
/// meanwhile, waited for while another holds it, and given up by letting it lapse (the
/// functions may not delete from the table). Two writers of one item (two operators'
/// mapping edits, two processes saving the quota ledger) then never lose each other's
/// change.
///
/// # Errors
/// The store fails, or `work` does.
pub async fn exclusive<S, T, E>(
    store: &S,
    key: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    S: Store,
    E: From<StoreError>,
{
    let lock = format!("{key}/lock");
    let writer = format!("writer-{:016x}", fastrand::u64(..));
    // A holder that died lets it lapse within the TTL: waiting longer means a live one.
    let deadline = std::time::Instant::now() + WRITE_LOCK_TTL * 2;
    loop {
        match store
            .claim(&lock, &writer, writer.clone(), WRITE_LOCK_TTL)
            .await?
        {
            Claim::Taken => break,
            Claim::HeldBy(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50 + fastrand::u64(..50))).await;
            }
            Claim::HeldBy(_) => {
                return Err(StoreError::Backend(format!(
                    "{key} is being written by another process; try again"
                ))
                .into());
            }
        }
    }
    let outcome = work.await;
    store
        .claim(&lock, &writer, writer.clone(), Duration::ZERO)
        .await?;
    outcome
}

/// What a [`Store::claim`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Taken,
    /// Another owner holds the key; its value.
    HeldBy(String),
}

/// Typed access over any [`Store`].
pub trait StoreExt: Store {
    fn put<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let text = serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            if text.len() > MAX_VALUE_BYTES {
                return Err(StoreError::TooLarge {
                    key: key.to_string(),
                    bytes: text.len(),
                });
            }
            self.put_raw(key, text, ttl).await
        }
    }

    fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        async move {
            match self.get_raw(key).await? {
                None => Ok(None),
                Some(text) => {
                    serde_json::from_str(&text)
                        .map(Some)
                        .map_err(|e| StoreError::Corrupt {
                            key: key.to_string(),
                            reason: e.to_string(),
                        })
                }
            }
        }
    }

    /// As [`StoreExt::get`], but absence is an error.
    fn require<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        async move {
            self.get(key)
                .await?
                .ok_or_else(|| StoreError::Missing(key.to_string()))
        }
    }

    /// Stores a list in as many parts as its size needs (`{prefix}/0000`, …) and
    /// answers the parts' keys.
    fn put_parts<T: Serialize + Sync>(
        &self,
        prefix: &str,
        items: &[T],
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        async move {
            let parts = self.put_counted_parts(prefix, items, ttl).await?;
            Ok(parts.into_iter().map(|(key, _)| key).collect())
        }
    }

    /// As [`StoreExt::put_parts`], answering with each part's key how many items it
    /// holds: a reader can then fetch only the part that holds the item it wants.
    fn put_counted_parts<T: Serialize + Sync>(
        &self,
        prefix: &str,
        items: &[T],
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<(String, usize)>, StoreError>> + Send {
        async move {
            let mut parts = Vec::new();
            for (part, count) in split_by_size(items, PART_BYTES)? {
                let key = format!("{prefix}/{:04}", parts.len());
                self.put_raw(&key, part, ttl).await?;
                parts.push((key, count));
            }
            Ok(parts)
        }
    }

    /// Stores a list of any length at `key`: its items in parts under `{key}/`, and at
    /// `key` the parts' keys, so no item grows with the list beyond what the store holds.
    fn put_list<T: Serialize + Sync>(
        &self,
        key: &str,
        items: &[T],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let parts = self.put_parts(&format!("{key}/part"), items, ttl).await?;
            self.put(key, &parts, ttl).await
        }
    }

    /// The list [`StoreExt::put_list`] stored at `key`, unless absent or expired (a part
    /// gone before its list is an error: the list would not be whole).
    fn get_list<T: DeserializeOwned + Send>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<T>>, StoreError>> + Send {
        async move {
            match self.get::<Vec<String>>(key).await? {
                None => Ok(None),
                Some(parts) => self.get_parts(&parts).await.map(Some),
            }
        }
    }

    /// Every item of the parts at `keys`, in order.
    fn get_parts<T: DeserializeOwned + Send>(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send {
        async move {
            let mut items = Vec::new();
            for key in keys {
                let part: Vec<T> = self.require(key).await?;
                items.extend(part);
            }
            Ok(items)
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Serialised JSON arrays of the items, each under `limit` bytes, with how many items
/// each holds.
fn split_by_size<T: Serialize>(
    items: &[T],
    limit: usize,
) -> Result<Vec<(String, usize)>, StoreError> {
    let sized = SizedGroups::of(items, usize::MAX, limit)?;
    if let Some(&index) = sized.too_large.first() {
        return Err(StoreError::TooLarge {
            key: format!("(list item {index})"),
            bytes: sized.texts[index].len(),
        });
    }
    let mut parts: Vec<(String, usize)> = sized
        .groups
        .iter()
        .map(|group| {
            let texts: Vec<&str> = group.iter().map(|&i| sized.texts[i].as_str()).collect();
            (format!("[{}]", texts.join(",")), group.len())
        })
        .collect();
    if parts.is_empty() {
        parts.push(("[]".into(), 0));
    }
    Ok(parts)
}

/// Items grouped in order so that no group holds more than `max_items` of them nor
/// serialises (as a JSON array) to more than `max_bytes`; an item too large to fit even
/// alone is set aside, never grouped.
pub struct SizedGroups {
    /// Item indices, per group.
    pub groups: Vec<Vec<usize>>,
    /// Indices of the items that fit no group.
    pub too_large: Vec<usize>,
    /// Each item serialised.
    pub texts: Vec<String>,
}

impl SizedGroups {
    pub fn of<T: Serialize>(
        items: &[T],
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Self, StoreError> {
        let texts = items
            .iter()
            .map(|item| {
                serde_json::to_string(item).map_err(|e| StoreError::Corrupt {
                    key: "(list item)".into(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<String>, _>>()?;
        Ok(Self::of_texts(texts, max_items, max_bytes))
    }

    /// The same grouping of items serialised already (each one JSON value).
    pub fn of_texts(texts: Vec<String>, max_items: usize, max_bytes: usize) -> Self {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut too_large = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        let mut size = 2;
        for (index, text) in texts.iter().enumerate() {
            if text.len() + 2 > max_bytes {
                too_large.push(index);
                continue;
            }
            if !current.is_empty()
                && (size + text.len() + 1 > max_bytes || current.len() >= max_items.max(1))
            {
                groups.push(std::mem::take(&mut current));
                size = 2;
            }
            size += text.len() + 1;
            current.push(index);
        }
        if !current.is_empty() {
            groups.push(current);
        }
        Self {
            groups,
            too_large,
            texts,
        }
    }
}
