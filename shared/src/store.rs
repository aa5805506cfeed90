//! Where the pipeline keeps what passes between its steps (staged assets, batches,
//! results) and what outlives a run (the reference cache). One trait, two stores: in
//! memory for one machine and tests, DynamoDB for Lambda.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
            let mut keys = Vec::new();
            for part in split_by_size(items, PART_BYTES)? {
                let key = format!("{prefix}/{:04}", keys.len());
                self.put_raw(&key, part, ttl).await?;
                keys.push(key);
            }
            Ok(keys)
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

/// Serialised JSON arrays of the items, each under `limit` bytes.
fn split_by_size<T: Serialize>(items: &[T], limit: usize) -> Result<Vec<String>, StoreError> {
    let sized = SizedGroups::of(items, usize::MAX, limit)?;
    if let Some(&index) = sized.too_large.first() {
        return Err(StoreError::TooLarge {
            key: format!("(list item {index})"),
            bytes: sized.texts[index].len(),
        });
    }
    let mut parts: Vec<String> = sized
        .groups
        .iter()
        .map(|group| {
            let texts: Vec<&str> = group.iter().map(|&i| sized.texts[i].as_str()).collect();
            format!("[{}]", texts.join(","))
        })
        .collect();
    if parts.is_empty() {
        parts.push("[]".into());
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

/// The store of one process: tests and `lscw sync` without AWS.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    items: Arc<Mutex<HashMap<String, Item>>>,
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
        let item = Item {
            value,
            expires: SystemTime::now() + ttl,
            owner: None,
        };
        self.items().insert(key.to_string(), item);
        Ok(())
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
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
        let mut items = self.items();
        let owned = items
            .get(key)
            .is_some_and(|item| owner.is_none_or(|o| item.owner.as_deref() == Some(o)));
        Ok(owned && items.remove(key).is_some())
    }
}

/// DynamoDB: one item per key (`pk` = key, `sk` = "v"), the JSON in `body`, TTL in
/// `expiresAt` (epoch seconds). Expired items are ignored on read, since DynamoDB
/// deletes them lazily.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(aws_sdk_dynamodb::Client::new(&config), table)
    }
}

fn epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Store for DynamoStore {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("sk", AttributeValue::S("v".into()))
            .item("body", AttributeValue::S(value))
            .item(
                "expiresAt",
                AttributeValue::N(epoch(SystemTime::now() + ttl).to_string()),
            )
            .send()
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "put {key}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .key("sk", AttributeValue::S("v".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "get {key}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ))
            })?;
        let Some(item) = answer.item else {
            return Ok(None);
        };
        let expires: u64 = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX);
        if expires <= epoch(SystemTime::now()) {
            return Ok(None);
        }
        match item.get("body").and_then(|v| v.as_s().ok()) {
            Some(body) => Ok(Some(body.clone())),
            None => Err(StoreError::Corrupt {
                key: key.to_string(),
                reason: "no body attribute".into(),
            }),
        }
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let now = epoch(SystemTime::now());
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("sk", AttributeValue::S("v".into()))
            .item("body", AttributeValue::S(value))
            .item("owner", AttributeValue::S(owner.to_string()))
            .item(
                "expiresAt",
                AttributeValue::N(epoch(SystemTime::now() + ttl).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR expiresAt <= :now OR #owner = :owner",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Claim::Taken),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception) =>
            {
                // Held by another owner: read what it holds (it may have expired since,
                // in which case the next claim takes it).
                Ok(Claim::HeldBy(self.get_raw(key).await?.unwrap_or_default()))
            }
            Err(error) => Err(StoreError::Backend(format!(
                "claim {key}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(error)
            ))),
        }
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .key("sk", AttributeValue::S("v".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        request = match owner {
            Some(owner) => request
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", AttributeValue::S(owner.to_string())),
            None => request,
        };
        match request.send().await {
            Ok(answer) => Ok(answer.attributes.is_some()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(error) => Err(StoreError::Backend(format!(
                "release {key}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(error)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_split_by_size_and_come_back_in_order() {
        let store = MemoryStore::new();
        let items: Vec<String> = (0..2_000).map(|i| format!("{i:0>400}")).collect();
        let keys = store
            .put_parts("run/x/list", &items, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(keys.len() > 1, "{} parts", keys.len());
        let back: Vec<String> = store.get_parts(&keys).await.unwrap();
        assert_eq!(back, items);
        let empty = store
            .put_parts::<String>("run/x/empty", &[], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(empty.len(), 1);
        assert!(store.get_parts::<String>(&empty).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn expired_values_are_gone() {
        let store = MemoryStore::new();
        store.put("k", &1, Duration::ZERO).await.unwrap();
        assert_eq!(store.get::<i32>("k").await.unwrap(), None);
        store.put("k", &2, Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get::<i32>("k").await.unwrap(), Some(2));
        assert!(
            store
                .put("big", &"x".repeat(MAX_VALUE_BYTES), Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}
