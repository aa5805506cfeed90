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
use crate::store::{Store, StoreError, StoreExt, exclusive};

/// How much longer than the quota's horizon the ledger is kept, so a run starting just
/// after still sees it.
pub const LEDGER_MARGIN: Duration = Duration::from_secs(300);

/// When each request still counting against the quotas finished (epoch ms).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ledger {
    spent: Vec<u64>,
    /// Requests the last sync's fetch made: what the enrichment leaves of the hour.
    #[serde(default)]
    fetch_requests: u64,
}

/// The least of the hourly quota the enrichment leaves for the sync's next fetch.
const MIN_FETCH_RESERVE: usize = 50;

/// Lansweeper's minute, split between the two that run beside each other: the sync's
/// fetch and the enrichment (its own lease, its own hours-long loop). Each within its
/// share, they never exceed the minute together. Each pacing itself to the whole minute,
/// they did; and as every request during the penalty minute that follows restarts it,
/// neither got through again before its retries ran out (both runs failed). The
/// enrichment's third, 50 a minute, is still more than the hour leaves it (2,000).
pub const SYNC_SHARE: (usize, usize) = (2, 3);
/// The enrichment's part of the minute (see [`SYNC_SHARE`]).
pub const ENRICHMENT_SHARE: (usize, usize) = (1, 3);

/// How the token's hour is shared, as the ledger says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Requests of the hour the enrichment leaves untouched, so the hourly sync's fetch
    /// is never starved by a long enrichment: the last fetch's requests and a quarter more.
    pub fetch_reserve: usize,
}

/// Counts what others spent with this token against the client's quotas; answers how
/// the hour is shared.
pub async fn load<S: Store>(store: &S, lansweeper: &LansweeperClient) -> Result<Share, StoreError> {
    let ledger = store
        .get::<Ledger>(&layout::lansweeper_quota(lansweeper.token_hash()))
        .await?
        .unwrap_or_default();
    lansweeper.adopt_spent(&ledger.spent).await;
    let last_fetch = usize::try_from(ledger.fetch_requests).unwrap_or(usize::MAX);
    Ok(Share {
        fetch_reserve: last_fetch
            .saturating_add(last_fetch / 4)
            .max(MIN_FETCH_RESERVE),
    })
}

/// Adds what the client spent to what the store holds.
pub async fn save<S: Store>(store: &S, lansweeper: &LansweeperClient) -> Result<(), StoreError> {
    merge(store, lansweeper, None).await
}

/// As [`save`], after a sync's fetch that made `requests` requests.
pub async fn save_after_fetch<S: Store>(
    store: &S,
    lansweeper: &LansweeperClient,
    requests: u64,
) -> Result<(), StoreError> {
    merge(store, lansweeper, Some(requests)).await
}

/// Adds what the client spent to the ledger, with no other process's save between the
/// read and the write (one lost would let the next process find room the quota lacks).
async fn merge<S: Store>(
    store: &S,
    lansweeper: &LansweeperClient,
    fetch_requests: Option<u64>,
) -> Result<(), StoreError> {
    let key = layout::lansweeper_quota(lansweeper.token_hash());
    let update = merge_unlocked(store, lansweeper, &key, fetch_requests);
    exclusive(store, &key, update).await
}

async fn merge_unlocked<S: Store>(
    store: &S,
    lansweeper: &LansweeperClient,
    key: &str,
    fetch_requests: Option<u64>,
) -> Result<(), StoreError> {
    let horizon = lansweeper.quota_horizon();
    let now = epoch_millis();
    let oldest = now.saturating_sub(horizon.as_millis() as u64);
    let mut ledger = store.get::<Ledger>(key).await?.unwrap_or_default();
    ledger.spent.extend(lansweeper.spent().await);
    ledger.spent.retain(|&at| at > oldest);
    ledger.spent.sort_unstable();
    ledger.spent.dedup();
    if let Some(requests) = fetch_requests {
        ledger.fetch_requests = requests;
    }
    let ttl = horizon + LEDGER_MARGIN;
    store.put(key, &ledger, ttl).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lansweeper::{LansweeperConfig, LansweeperOptions};
    use crate::store::MemoryStore;

    fn client(token: &str) -> LansweeperClient {
        let config = LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some(token.to_string()),
            "LS_SITE_ID" => Some("site".into()),
            _ => None,
        })
        .unwrap();
        LansweeperClient::new(config, LansweeperOptions::default()).unwrap()
    }

    /// What one client of a token spent counts, once, for the next client of that token
    /// to load the ledger, and for no other token's; spend older than the hour is
    /// dropped.
    ///
    /// Breaking it looks like: the next process finding room the quota does not have (the
    /// spend lost, or shared across tokens), or waiting for spend counted twice.
    #[tokio::test]
    async fn what_a_client_spent_counts_once_for_the_next_client_of_its_token() {
        let store = MemoryStore::new();
        let first = client("token-a");
        let now = epoch_millis();
        // A minute's quota spent in the last ten seconds, and a request of two hours ago.
        let mut spent: Vec<u64> = (0..150).map(|n| now - 10_000 + n).collect();
        spent.push(now - 7_200_000);
        first.adopt_spent(&spent).await;
        save(&store, &first).await.unwrap();
        save(&store, &first).await.unwrap();

        let next = client("token-a");
        assert_eq!(next.wait_before_next().await, Duration::ZERO);
        load(&store, &next).await.unwrap();
        load(&store, &next).await.unwrap();
        assert_eq!(next.spent().await.len(), 150, "each request once");
        let wait = next.wait_before_next().await;
        assert!(
            wait > Duration::from_secs(45) && wait <= Duration::from_secs(51),
            "the minute is full until its first request is a minute old: {wait:?}"
        );

        let other = client("token-b");
        load(&store, &other).await.unwrap();
        assert!(other.spent().await.is_empty(), "another token's quota");
        assert_eq!(other.wait_before_next().await, Duration::ZERO);
    }

    /// The enrichment leaves the hour's last requests to the sync: the last fetch's
    /// requests and a quarter more (at least fifty), so an enrichment writing for hours
    /// never makes the hourly fetch wait for the quota.
    ///
    /// Breaking it looks like: an enrichment that spends the whole hour, and the next sync
    /// stalled behind it.
    #[tokio::test]
    async fn the_enrichment_leaves_the_sync_s_fetch_its_share_of_the_hour() {
        let store = MemoryStore::new();
        let enrichment = client("token-a");
        assert_eq!(
            load(&store, &enrichment).await.unwrap().fetch_reserve,
            MIN_FETCH_RESERVE,
            "before any fetch"
        );
        let fetch = client("token-a");
        save_after_fetch(&store, &fetch, 400).await.unwrap();
        let share = load(&store, &enrichment).await.unwrap();
        assert_eq!(share.fetch_reserve, 500);
        // 1,600 requests of the hour spent, spread so the minute's quota is free.
        let now = epoch_millis();
        let spent: Vec<u64> = (0..1_600).map(|n| now - 3_000_000 + n * 1_000).collect();
        enrichment.adopt_spent(&spent).await;
        assert_eq!(
            enrichment.wait_before_next().await,
            Duration::ZERO,
            "the sync itself may go on"
        );
        let wait = enrichment
            .wait_before_next_leaving(share.fetch_reserve)
            .await;
        assert!(
            wait > Duration::from_secs(500),
            "the enrichment waits for requests to age out of the hour: {wait:?}"
        );
        // An enrichment's own save keeps the fetch's count for the next load.
        save(&store, &enrichment).await.unwrap();
        assert_eq!(load(&store, &fetch).await.unwrap().fetch_reserve, 500);
    }

    /// Breaking it looks like: two processes saving at once, one's requests lost from the
    /// ledger, and the next process finding room the quota lacks.
    #[tokio::test]
    async fn processes_saving_at_once_lose_none_of_each_other_s_requests() {
        let store = MemoryStore::interleaved();
        let now = epoch_millis();
        let mut saves = tokio::task::JoinSet::new();
        for n in 0..8 {
            let store = store.clone();
            saves.spawn(async move {
                let process = client("token-a");
                let spent: Vec<u64> = (0..10).map(|i| now - 1_000_000 + n * 100 + i).collect();
                process.adopt_spent(&spent).await;
                save(&store, &process).await
            });
        }
        while let Some(saved) = saves.join_next().await {
            saved.unwrap().unwrap();
        }
        let next = client("token-a");
        load(&store, &next).await.unwrap();
        assert_eq!(
            next.spent().await.len(),
            80,
            "every process's requests, once"
        );
    }
}
