//! One run at a time. A run holds the sync's lease item of the table from its first step
//! to its last write; the schedule firing while a run is still writing, or an operator's
//! `lscw sync` during a scheduled run, finds the lease held and ends as skipped,
//! writing nothing. Every step renews the lease; a run that died without releasing it
//! leaves it to expire, and the next run after the expiry takes it over.
//!
//! The enrichment has a lease of its own ([`ENRICHMENT`]): a first enrichment of a large
//! estate writes for many hours at Lansweeper's pace, and the hourly syncs go on beside
//! it; the enrichments of those runs are skipped while it holds its lease.

use std::future::Future;

use crate::clock::epoch_seconds as now;
use crate::error::PipelineError;
use crate::layout::{ENRICH_LEASE, LEASE, LEASE_TTL, LeaseHolder};
use crate::store::{Claim, Store, StoreError, StoreExt};

/// One lease item of the table: who holds it, taken and given up by run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    key: &'static str,
}

/// The sync's lease: fetch-assets to the last write of a run.
pub const SYNC: Lease = Lease { key: LEASE };

/// The enrichment's lease: its first invocation to its report.
pub const ENRICHMENT: Lease = Lease { key: ENRICH_LEASE };

/// Takes the sync's lease for `run_id` (see [`Lease::acquire`]).
pub async fn acquire<S: Store>(store: &S, run_id: &str) -> Result<Option<LeaseHolder>, StoreError> {
    SYNC.acquire(store, run_id).await
}

/// Renews the sync's lease (see [`Lease::renew`]).
pub async fn renew<S: Store>(store: &S, run_id: &str) -> Result<(), PipelineError> {
    SYNC.renew(store, run_id).await
}

/// Runs `work` under the sync's lease (see [`Lease::release_after`]).
pub async fn release_after<S, T, E>(
    store: &S,
    run_id: &str,
    work: impl Future<Output = Result<T, E>>,
    held: impl FnOnce(&Result<T, E>) -> bool,
) -> Result<T, E>
where
    S: Store,
    E: From<StoreError>,
{
    SYNC.release_after(store, run_id, work, held).await
}

/// Gives the sync's lease up, if `run_id` holds it.
pub async fn release<S: Store>(store: &S, run_id: &str) -> Result<bool, StoreError> {
    SYNC.release(store, run_id).await
}

/// Gives up whoever's sync lease it is (an operator's `lscw lease release`).
pub async fn force_release<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    SYNC.force_release(store).await
}

/// The run that holds the sync's lease, unless it is free.
pub async fn holder<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    SYNC.holder(store).await
}

impl Lease {
    /// The item's key in the table.
    pub fn key(self) -> &'static str {
        self.key
    }

    /// Takes the lease for `run_id` (or renews it, if the run holds it already); answers the
    /// holder when another run holds it.
    pub async fn acquire<S: Store>(
        self,
        store: &S,
        run_id: &str,
    ) -> Result<Option<LeaseHolder>, StoreError> {
        let started_at = match self.holder(store).await? {
            Some(held) if held.run_id == run_id => held.started_at,
            _ => now(),
        };
        let mine = LeaseHolder {
            run_id: run_id.to_string(),
            started_at,
            expires_at: now() + LEASE_TTL.as_secs(),
        };
        let text = serde_json::to_string(&mine).map_err(|e| StoreError::Corrupt {
            key: self.key.into(),
            reason: e.to_string(),
        })?;
        for _ in 0..CLAIMS {
            match store
                .claim(self.key, run_id, text.clone(), LEASE_TTL)
                .await?
            {
                Claim::Taken => return Ok(None),
                // Released between the refused claim and the read of its holder: free again.
                Claim::HeldBy(value) if value.is_empty() => {}
                Claim::HeldBy(value) => {
                    return serde_json::from_str(&value).map(Some).map_err(|e| {
                        StoreError::Corrupt {
                            key: self.key.into(),
                            reason: e.to_string(),
                        }
                    });
                }
            }
        }
        Err(StoreError::Backend(format!(
            "the lease changed hands {CLAIMS} times while run {run_id} claimed it"
        )))
    }

    /// Renews the lease of a run that holds it; an error when another run has taken it over
    /// (this run's lease lapsed), so that the step stops before writing.
    pub async fn renew<S: Store>(self, store: &S, run_id: &str) -> Result<(), PipelineError> {
        match self.acquire(store, run_id).await? {
            None => Ok(()),
            Some(other) => Err(PipelineError::LeaseLost {
                run_id: run_id.to_string(),
                holder: other.run_id,
            }),
        }
    }

    /// Runs `work` for `run_id`, then gives the lease up whatever the work came to (failed
    /// or not), unless `held` says the run never held it (a dry run, or a run skipped for
    /// another's lease).
    pub async fn release_after<S, T, E>(
        self,
        store: &S,
        run_id: &str,
        work: impl Future<Output = Result<T, E>>,
        held: impl FnOnce(&Result<T, E>) -> bool,
    ) -> Result<T, E>
    where
        S: Store,
        E: From<StoreError>,
    {
        let outcome = work.await;
        if held(&outcome) {
            self.release(store, run_id).await?;
        }
        outcome
    }

    /// Gives the lease up, if `run_id` holds it.
    pub async fn release<S: Store>(self, store: &S, run_id: &str) -> Result<bool, StoreError> {
        store.release(self.key, Some(run_id)).await
    }

    /// Gives up whoever's lease it is (an operator's `lscw lease release`); answers whose it was.
    pub async fn force_release<S: Store>(
        self,
        store: &S,
    ) -> Result<Option<LeaseHolder>, StoreError> {
        let held = self.holder(store).await?;
        store.release(self.key, None).await?;
        Ok(held)
    }

    /// The run that holds the lease, unless it is free.
    pub async fn holder<S: Store>(self, store: &S) -> Result<Option<LeaseHolder>, StoreError> {
        store.get(self.key).await
    }
}

/// Claims of one acquisition: a lease released while it is claimed is claimed again.
const CLAIMS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::store::{Claim, MemoryStore, Watched};

    #[tokio::test]
    async fn one_run_holds_the_lease_until_it_releases_it() {
        let store = MemoryStore::new();
        assert_eq!(acquire(&store, "run-a").await.unwrap(), None);
        let held = acquire(&store, "run-b").await.unwrap().unwrap();
        assert_eq!(held.run_id, "run-a");
        assert!(held.expires_at >= held.started_at + LEASE_TTL.as_secs());
        renew(&store, "run-a").await.unwrap();
        let lost = renew(&store, "run-b").await.unwrap_err();
        assert!(lost.to_string().contains("run-a"), "{lost}");
        assert!(
            !release(&store, "run-b").await.unwrap(),
            "not b's to release"
        );
        assert!(release(&store, "run-a").await.unwrap());
        assert_eq!(acquire(&store, "run-b").await.unwrap(), None);
        assert_eq!(
            force_release(&store).await.unwrap().unwrap().run_id,
            "run-b"
        );
        assert_eq!(holder(&store).await.unwrap(), None);
    }

    /// Breaking it looks like: a run that starts as the last one releases the lease
    /// fails, its holder read as corrupt.
    #[tokio::test]
    async fn a_lease_released_while_it_is_claimed_is_taken() {
        // The first claim finds the lease held, but released before its holder could be
        // read: what DynamoDB answers when a run releases the lease between a refused
        // conditional put and the read that follows it.
        let raced = std::sync::atomic::AtomicBool::new(false);
        let store = Watched::new(MemoryStore::new()).before_claim(move |_, _| {
            let first = !raced.swap(true, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { Ok(first.then(|| Claim::HeldBy(String::new()))) })
        });
        assert_eq!(acquire(&store, "run-next").await.unwrap(), None);
        assert_eq!(holder(&store).await.unwrap().unwrap().run_id, "run-next");
    }

    /// Breaking it looks like: every hourly sync skipped while a first enrichment writes
    /// for two days.
    #[tokio::test]
    async fn the_enrichment_holds_its_own_lease_beside_the_sync() {
        let store = MemoryStore::new();
        assert_eq!(ENRICHMENT.acquire(&store, "run-1").await.unwrap(), None);
        assert_eq!(
            acquire(&store, "run-2").await.unwrap(),
            None,
            "the sync runs"
        );
        let held = ENRICHMENT.acquire(&store, "run-2").await.unwrap().unwrap();
        assert_eq!(held.run_id, "run-1", "one enrichment at a time");
        assert!(release(&store, "run-2").await.unwrap());
        assert_eq!(
            ENRICHMENT.holder(&store).await.unwrap().unwrap().run_id,
            "run-1",
            "the sync's release leaves the enrichment's lease alone"
        );
        assert_ne!(SYNC.key(), ENRICHMENT.key());
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over() {
        let store = MemoryStore::new();
        let stale = LeaseHolder {
            run_id: "run-dead".into(),
            started_at: 1,
            expires_at: 2,
        };
        let text = serde_json::to_string(&stale).unwrap();
        store
            .claim(LEASE, "run-dead", text, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(acquire(&store, "run-new").await.unwrap(), None);
        assert_eq!(holder(&store).await.unwrap().unwrap().run_id, "run-new");
    }
}
