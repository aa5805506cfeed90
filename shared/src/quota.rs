//! Lansweeper's quota, shared by everything that uses the token. Lansweeper counts 150
//! requests a minute and 2,000 an hour per token, whoever sends them: every step and
//! invocation of a run, the next scheduled run, an operator's `lscw`. So what each of
//! them spent is kept in the store; each loads it before its first request and saves it
//! back as it goes, and paces itself against the whole.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::epoch_millis;
use crate::lansweeper::LansweeperClient;
use crate::layout;
use crate::store::{Store, StoreError, StoreExt};

/// When each request still counting against the quotas finished (epoch ms).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ledger {
    spent: Vec<u64>,
}

/// Counts what others spent with this token against the client's quotas.
pub async fn load<S: Store>(store: &S, lansweeper: &LansweeperClient) -> Result<(), StoreError> {
    if let Some(ledger) = store
        .get::<Ledger>(&layout::lansweeper_quota(lansweeper.token_hash()))
        .await?
    {
        lansweeper.adopt_spent(&ledger.spent).await;
    }
    Ok(())
}

/// Adds what the client spent to what the store holds.
pub async fn save<S: Store>(store: &S, lansweeper: &LansweeperClient) -> Result<(), StoreError> {
    let key = layout::lansweeper_quota(lansweeper.token_hash());
    let horizon = lansweeper.quota_horizon();
    let now = epoch_millis();
    let oldest = now.saturating_sub(horizon.as_millis() as u64);
    let mut spent = store.get::<Ledger>(&key).await?.unwrap_or_default().spent;
    spent.extend(lansweeper.spent().await);
    spent.retain(|&at| at > oldest);
    spent.sort_unstable();
    spent.dedup();
    // Kept a little longer than the horizon, so a run starting just after still sees it.
    let ttl = horizon + Duration::from_secs(300);
    store.put(&key, &Ledger { spent }, ttl).await
}
