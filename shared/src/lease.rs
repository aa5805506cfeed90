//! One run at a time. A run holds the lease item of the table from its first step to
//! its report; the schedule firing while a run is still writing, or an operator's
//! `lscw sync` during a scheduled run, finds the lease held and ends as skipped,
//! writing nothing. Every step renews the lease; a run that died without releasing it
//! leaves it to expire, and the next run after the expiry takes it over.

use std::future::Future;

use crate::clock::epoch_seconds as now;
use crate::error::PipelineError;
use crate::layout::{LEASE, LEASE_TTL, LeaseHolder};
use crate::store::{Claim, Store, StoreError, StoreExt};

/// Takes the lease for `run_id` (or renews it, if the run holds it already); answers the
/// holder when another run holds it.
pub async fn acquire<S: Store>(store: &S, run_id: &str) -> Result<Option<LeaseHolder>, StoreError> {
    let started_at = match holder(store).await? {
        Some(held) if held.run_id == run_id => held.started_at,
        _ => now(),
    };
    let mine = LeaseHolder {
        run_id: run_id.to_string(),
        started_at,
        expires_at: now() + LEASE_TTL.as_secs(),
    };
    let text = serde_json::to_string(&mine).map_err(|e| StoreError::Corrupt {
        key: LEASE.into(),
        reason: e.to_string(),
    })?;
    for _ in 0..CLAIMS {
        match store.claim(LEASE, run_id, text.clone(), LEASE_TTL).await? {
            Claim::Taken => return Ok(None),
            // Released between the refused claim and the read of its holder: free again.
            Claim::HeldBy(value) if value.is_empty() => {}
            Claim::HeldBy(value) => {
                return serde_json::from_str(&value)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        key: LEASE.into(),
                        reason: e.to_string(),
                    });
            }
        }
    }
    Err(StoreError::Backend(format!(
        "the lease changed hands {CLAIMS} times while run {run_id} claimed it"
    )))
}

/// Claims of one acquisition: a lease released while it is claimed is claimed again.
const CLAIMS: usize = 3;

/// Renews the lease of a run that holds it; an error when another run has taken it over
/// (this run's lease lapsed), so that the step stops before writing.
pub async fn renew<S: Store>(store: &S, run_id: &str) -> Result<(), PipelineError> {
    match acquire(store, run_id).await? {
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
        release(store, run_id).await?;
    }
    outcome
}

/// Gives the lease up, if `run_id` holds it.
pub async fn release<S: Store>(store: &S, run_id: &str) -> Result<bool, StoreError> {
    store.release(LEASE, Some(run_id)).await
}

/// Gives up whoever's lease it is (an operator's `lscw lease release`); answers whose it was.
pub async fn force_release<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    let held = holder(store).await?;
    store.release(LEASE, None).await?;
    Ok(held)
}

/// The run that holds the lease, unless it is free.
pub async fn holder<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    store.get(LEASE).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::store::MemoryStore;

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

    /// A store whose first claim finds the lease held, but released before its holder
    /// could be read: what DynamoDB answers when a run releases the lease between a
    /// refused conditional put and the read that follows it.
    struct ReleasedWhileClaimed {
        store: MemoryStore,
        raced: std::sync::atomic::AtomicBool,
    }

    impl Store for ReleasedWhileClaimed {
        async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
            self.store.put_raw(key, value, ttl).await
        }

        async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.store.get_raw(key).await
        }

        async fn claim(
            &self,
            key: &str,
            owner: &str,
            value: String,
            ttl: Duration,
        ) -> Result<Claim, StoreError> {
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Ok(Claim::HeldBy(String::new()));
            }
            self.store.claim(key, owner, value, ttl).await
        }

        async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
            self.store.release(key, owner).await
        }
    }

    /// Breaking it looks like: a run that starts as the last one releases the lease
    /// fails, its holder read as corrupt.
    #[tokio::test]
    async fn a_lease_released_while_it_is_claimed_is_taken() {
        let store = ReleasedWhileClaimed {
            store: MemoryStore::new(),
            raced: std::sync::atomic::AtomicBool::new(false),
        };
        assert_eq!(acquire(&store, "run-next").await.unwrap(), None);
        assert_eq!(holder(&store).await.unwrap().unwrap().run_id, "run-next");
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
