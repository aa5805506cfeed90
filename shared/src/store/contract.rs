#![allow(
    clippy::unwrap_used,
    reason = "a test suite: a store call that fails is a check that fails"
)]

//! What every [`Store`] must do, as one suite each store runs against itself: the memory
//! store in its unit tests, DynamoDB (through moto) in `tests/deployed/store.rs`, `lscw`'s
//! embedded store in its own. A store that passes it keeps a run's records, its lease
//! and its parts as the pipeline expects. Built for tests only (`contract` feature).
//!
//! Keys are made unique per call, so the suite runs against a shared table.

use std::time::Duration;

use super::{Claim, MAX_VALUE_BYTES, Store, StoreError, StoreExt};

const MINUTE: Duration = Duration::from_secs(60);

/// Runs every check against `store`; panics, naming the broken promise, on the first
/// that fails.
pub async fn check<S: Store>(store: &S) {
    let prefix = format!("contract/{:08x}", fastrand::u32(..));
    let key = |name: &str| format!("{prefix}/{name}");
    values_come_back_as_stored_and_absence_is_none(store, &key("value")).await;
    expired_values_are_gone(store, &key("expired")).await;
    a_value_over_the_limit_is_refused_and_nothing_is_stored(store, &key("large")).await;
    parts_split_by_size_and_come_back_in_order(store, &key("parts")).await;
    a_list_of_any_length_is_kept_whole(store, &key("list")).await;
    a_claim_is_held_by_one_owner_until_it_lapses_or_is_released(store, &key("claim")).await;
}

async fn values_come_back_as_stored_and_absence_is_none<S: Store>(store: &S, key: &str) {
    assert_eq!(store.get::<u32>(key).await.unwrap(), None, "absent is None");
    assert!(
        matches!(store.require::<u32>(key).await, Err(StoreError::Missing(k)) if k == key),
        "require of an absent key names it"
    );
    store.put(key, &vec!["a", "é"], MINUTE).await.unwrap();
    assert_eq!(
        store.get::<Vec<String>>(key).await.unwrap(),
        Some(vec!["a".to_string(), "é".to_string()])
    );
    store.put(key, &7u32, MINUTE).await.unwrap();
    assert_eq!(
        store.require::<u32>(key).await.unwrap(),
        7,
        "a put replaces"
    );
    assert!(
        matches!(
            store.get::<Vec<u32>>(key).await,
            Err(StoreError::Corrupt { .. })
        ),
        "a value of another shape is corrupt, never a default"
    );
}

async fn expired_values_are_gone<S: Store>(store: &S, key: &str) {
    store.put(key, &1u32, Duration::ZERO).await.unwrap();
    assert_eq!(
        store.get::<u32>(key).await.unwrap(),
        None,
        "expired reads as absent"
    );
    store.put(key, &2u32, MINUTE).await.unwrap();
    assert_eq!(store.get::<u32>(key).await.unwrap(), Some(2));
}

async fn a_value_over_the_limit_is_refused_and_nothing_is_stored<S: Store>(store: &S, key: &str) {
    let refused = store.put(key, &"x".repeat(MAX_VALUE_BYTES), MINUTE).await;
    assert!(
        matches!(refused, Err(StoreError::TooLarge { bytes, .. }) if bytes > MAX_VALUE_BYTES),
        "{refused:?}"
    );
    assert_eq!(store.get::<String>(key).await.unwrap(), None);
}

async fn parts_split_by_size_and_come_back_in_order<S: Store>(store: &S, key: &str) {
    let items: Vec<String> = (0..2_000).map(|i| format!("{i:0>400}")).collect();
    let keys = store.put_parts(key, &items, MINUTE).await.unwrap();
    assert!(keys.len() > 1, "800 KB in {} part(s)", keys.len());
    for part in &keys {
        let raw = store.get_raw(part).await.unwrap().unwrap();
        assert!(raw.len() <= MAX_VALUE_BYTES, "{part}: {} bytes", raw.len());
    }
    let back: Vec<String> = store.get_parts(&keys).await.unwrap();
    assert_eq!(back, items);
    let empty = store
        .put_parts::<String>(&format!("{key}-empty"), &[], MINUTE)
        .await
        .unwrap();
    assert_eq!(empty.len(), 1, "an empty list is one empty part");
    assert!(store.get_parts::<String>(&empty).await.unwrap().is_empty());
}

async fn a_list_of_any_length_is_kept_whole<S: Store>(store: &S, key: &str) {
    assert_eq!(store.get_list::<u32>(key).await.unwrap(), None);
    // 20,000 names of one kind with their ids: several times what one item holds.
    let names: Vec<(String, i64)> = (0..20_000)
        .map(|i| (format!("a reference name of forty characters {i:05}"), i))
        .collect();
    store.put_list(key, &names, MINUTE).await.unwrap();
    let index = store.get_raw(key).await.unwrap().unwrap();
    assert!(
        index.len() < 1_000,
        "the index lists parts: {} bytes",
        index.len()
    );
    assert_eq!(store.get_list(key).await.unwrap(), Some(names));
    store
        .put_list::<(String, i64)>(key, &[], MINUTE)
        .await
        .unwrap();
    assert_eq!(
        store.get_list::<(String, i64)>(key).await.unwrap(),
        Some(Vec::new())
    );
}

async fn a_claim_is_held_by_one_owner_until_it_lapses_or_is_released<S: Store>(
    store: &S,
    key: &str,
) {
    let claim = |owner: &'static str, ttl| store.claim(key, owner, format!("held by {owner}"), ttl);
    assert_eq!(claim("a", MINUTE).await.unwrap(), Claim::Taken);
    assert_eq!(
        claim("b", MINUTE).await.unwrap(),
        Claim::HeldBy("held by a".into()),
        "another owner is told who holds it"
    );
    assert_eq!(claim("a", MINUTE).await.unwrap(), Claim::Taken, "renewed");
    assert_eq!(
        store.get_raw(key).await.unwrap().as_deref(),
        Some("held by a")
    );
    assert!(!store.release(key, Some("b")).await.unwrap(), "not b's");
    assert!(store.release(key, Some("a")).await.unwrap());
    assert!(
        !store.release(key, Some("a")).await.unwrap(),
        "released once"
    );
    assert_eq!(claim("b", Duration::ZERO).await.unwrap(), Claim::Taken);
    assert_eq!(
        claim("c", MINUTE).await.unwrap(),
        Claim::Taken,
        "a lapsed claim is taken over"
    );
    assert!(
        store.release(key, None).await.unwrap(),
        "anyone's, for None"
    );
    assert_eq!(store.get_raw(key).await.unwrap(), None);
}
