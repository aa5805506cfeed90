//! Nothing the store keeps grows past what one item holds, whatever the tenant: a
//! ConnectWise tenant with 20,000 locations, against the simulator.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use lscw_tests::{cw_config, fast_options, start_cw};
use serde_json::json;
use shared::connectwise::ConnectWiseClient;
use shared::layout;
use shared::references::{self, EnsureOptions, ReferenceKind, ReferenceNames};
use shared::store::{MAX_VALUE_BYTES, MemoryStore};
use simulators::connectwise::{self as cw_sim, Tenant, TenantSpec};

/// Breaking it looks like: a tenant with thousands of locations fails ensure-references
/// on every run, the reference cache over the store's item limit.
#[tokio::test]
async fn a_tenant_of_20_000_locations_is_cached_within_item_limits_and_read_once() {
    let names: Vec<String> = (0..20_000)
        .map(|i| format!("Branch office number {i:05}"))
        .collect();
    // The tenant's data written whole: 20,000 creations through the API would take the
    // simulator minutes.
    let mut data = cw_sim::generate(&TenantSpec::default()).unwrap().to_data();
    let level = data.collections["corporateStructureLevels"][0]["id"].clone();
    let locations = data.collections.get_mut("locations").unwrap();
    let first_id = locations
        .iter()
        .filter_map(|l| l["id"].as_i64())
        .max()
        .unwrap_or(0)
        + 1;
    for (id, name) in (first_id..).zip(&names) {
        locations.push(json!({"id": id, "name": name, "structureLevel": {"id": level}}));
    }
    let cw = start_cw(Tenant::from_data(data).unwrap()).await;
    let client = ConnectWiseClient::connect(&cw_config(&cw), fast_options())
        .await
        .unwrap();
    let mut needed = ReferenceNames::default();
    for name in names.iter().chain([&"A branch opened today".to_string()]) {
        needed.add(ReferenceKind::Location, Some(name));
    }
    let store = MemoryStore::new();
    let options = EnsureOptions {
        structure_level: None,
        cache_key: layout::reference_cache,
        cache_ttl: Duration::from_secs(600),
        dry_run: false,
    };
    let outcome = references::ensure(&client, &store, &needed, &options)
        .await
        .unwrap();
    assert_eq!(
        outcome.created[&ReferenceKind::Location],
        ["A branch opened today"]
    );
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert!(
        names
            .iter()
            .all(|n| outcome.ids.get(ReferenceKind::Location, n).is_some())
    );
    let keys = store.keys();
    assert!(keys.len() > 2, "the cache in parts: {keys:?}");
    for key in keys {
        let bytes = store.raw_len(&key).unwrap();
        assert!(bytes <= MAX_VALUE_BYTES, "{key}: {bytes} bytes");
    }

    let before = client.api_calls();
    let again = references::ensure(&client, &store, &needed, &options)
        .await
        .unwrap();
    assert_eq!(
        client.api_calls(),
        before,
        "the second run reads the cache only"
    );
    assert!(again.created.is_empty());
    assert_eq!(again.ids, outcome.ids);
}
