//! One run at a time. A run holds the lease item of the table from its first step to
//! its report; the schedule firing while a run is still writing, or an operator's
//! `lscw sync` during a scheduled run, finds the lease held and ends as skipped,
//! writing nothing. Every step renews the lease; a run that died without releasing it
//! leaves it to expire, and the next run after the expiry takes it over.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::store::{Claim, Store, StoreError, StoreExt};

/// The lease's item in the store.
pub const LEASE_KEY: &str = "lease/sync";

/// How long a lease lasts unless renewed: far longer than any step between two renewals
/// (a Lambda invocation lasts at most 15 minutes), short enough that a run that died
/// unreleased blocks the schedule for two hours at most.
pub const LEASE_TTL: Duration = Duration::from_secs(2 * 3600);

/// Who holds the lease, as a skipped run records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseHolder {
    pub run_id: String,
    /// When the holder's run took the lease (epoch seconds).
    pub started_at: u64,
    /// When the lease lapses unless renewed (epoch seconds).
    pub expires_at: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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
        key: LEASE_KEY.into(),
        reason: e.to_string(),
    })?;
    match store.claim(LEASE_KEY, run_id, text, LEASE_TTL).await? {
        Claim::Taken => Ok(None),
        Claim::HeldBy(value) => Ok(Some(serde_json::from_str(&value).map_err(|e| {
            StoreError::Corrupt {
                key: LEASE_KEY.into(),
                reason: e.to_string(),
            }
        })?)),
    }
}

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

/// Gives the lease up, if `run_id` holds it.
pub async fn release<S: Store>(store: &S, run_id: &str) -> Result<bool, StoreError> {
    store.release(LEASE_KEY, Some(run_id)).await
}

/// Gives up whoever's lease it is (an operator's `lscw lease release`); answers whose it was.
pub async fn force_release<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    let held = holder(store).await?;
    store.release(LEASE_KEY, None).await?;
    Ok(held)
}

/// The run that holds the lease, unless it is free.
pub async fn holder<S: Store>(store: &S) -> Result<Option<LeaseHolder>, StoreError> {
    store.get(LEASE_KEY).await
}

#[cfg(test)]
mod tests {
    use super::*;
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
            .claim(LEASE_KEY, "run-dead", text, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(acquire(&store, "run-new").await.unwrap(), None);
        assert_eq!(holder(&store).await.unwrap().unwrap().run_id, "run-new");
    }
}
