//! The run's audit trail, put together when the run is recorded from what the writers
//! stored: each batch's planned values (the match's before and after) and its result
//! (which configurations were written). It costs no ConnectWise request.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use crate::error::PipelineError;
use crate::layout::{self, BatchRecord, CreateItem, MatchRecord, ModifyItem};
use crate::references::{ReferenceIds, ReferenceKind};
use crate::store::{Store, StoreExt};
use crate::trail::{self, Action, FieldChange, System, TrailEntry, TrailRecord};

/// Records the trail of what `run_id` wrote to ConnectWise, for `ttl`; a run that never
/// reached its match has none. A revert's trail keeps the run it reverts.
///
/// # Errors
/// The store fails.
pub async fn record_trail<S: Store>(
    store: &S,
    run_id: &str,
    ttl: Duration,
) -> Result<Option<TrailRecord>, PipelineError> {
    let Some(record) = store
        .get::<MatchRecord>(&layout::match_record(run_id))
        .await?
    else {
        return Ok(None);
    };
    let reverts = store
        .get::<TrailRecord>(&layout::trail(run_id, System::ConnectWise.key()))
        .await?
        .and_then(|t| t.reverts);
    let references = match layout::read_ensured(store, run_id).await {
        Ok((ensured, _)) => ensured.ids,
        Err(_) => ReferenceIds::default(),
    };
    let names = Names::of(&references, &record.custom_field_ids);
    let mut entries = Vec::new();
    for section in &record.sections {
        for batch in &section.create_batches {
            let Some(written) = written(store, batch).await? else {
                continue;
            };
            let items: Vec<CreateItem> = store.require(batch).await?;
            entries.extend(
                items
                    .into_iter()
                    .filter(|i| written.contains(&i.asset_key))
                    .map(|i| created(&i, &names)),
            );
        }
        let modifies = section.modify_batches.iter().map(|b| (b, false));
        let retires = section.retire_batches.iter().map(|b| (b, true));
        for (batch, retire) in modifies.chain(retires) {
            modified(store, batch, retire, &mut entries).await?;
        }
    }
    for batch in &record.approved {
        modified(store, batch, true, &mut entries).await?;
    }
    Ok(Some(
        trail::save(
            store,
            run_id,
            System::ConnectWise,
            reverts.as_deref(),
            &entries,
            ttl,
        )
        .await?,
    ))
}

/// The assets a batch wrote, when its result is recorded.
async fn written<S: Store>(
    store: &S,
    batch: &str,
) -> Result<Option<HashSet<String>>, PipelineError> {
    Ok(store
        .get::<BatchRecord>(&layout::batch_result(batch))
        .await?
        .map(|result| result.written.into_iter().collect()))
}

/// The entries of a written batch of changes (retirements when `retire`).
async fn modified<S: Store>(
    store: &S,
    batch: &str,
    retire: bool,
    entries: &mut Vec<TrailEntry>,
) -> Result<(), PipelineError> {
    let Some(written) = written(store, batch).await? else {
        return Ok(());
    };
    let items: Vec<ModifyItem> = store.require(batch).await?;
    for item in items.into_iter().filter(|i| written.contains(&i.asset_key)) {
        let reactivated = item
            .unmatched_fields
            .iter()
            .any(|d| d.field == "activeFlag" && d.desired == "true");
        let action = match (retire, reactivated) {
            (true, _) => Action::Retired,
            (false, true) => Action::Reactivated,
            (false, false) => Action::Modified,
        };
        entries.push(TrailEntry {
            asset_key: item.asset_key,
            name: item.name,
            configuration_id: Some(item.configuration_id),
            site: String::new(),
            action,
            fields: item
                .unmatched_fields
                .into_iter()
                .map(|d| FieldChange {
                    field: d.field,
                    before: d.current,
                    after: Some(d.desired),
                })
                .collect(),
        });
    }
    Ok(())
}

/// The names of what a creation's body holds by id: references and custom fields.
struct Names {
    references: HashMap<(&'static str, i64), String>,
    captions: HashMap<i64, String>,
}

impl Names {
    fn of(references: &ReferenceIds, custom_field_ids: &HashMap<String, i64>) -> Self {
        let references = references
            .0
            .iter()
            .flat_map(|(kind, ids)| {
                let field = kind.configuration_field();
                ids.iter()
                    .map(move |(name, id)| ((field, *id), name.clone()))
            })
            .collect();
        let captions = custom_field_ids
            .iter()
            .map(|(caption, id)| (*id, caption.clone()))
            .collect();
        Self {
            references,
            captions,
        }
    }
}

/// A creation's entry: every field of its body, none before.
fn created(item: &CreateItem, names: &Names) -> TrailEntry {
    let mut fields = Vec::new();
    let after = |field: String, value: Option<String>| FieldChange {
        field,
        before: None,
        after: value,
    };
    for (key, value) in item.body.as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            // Said once, as `location.name`.
            ("locationId", _) => {}
            ("customFields", Value::Array(custom)) => {
                for field in custom {
                    let id = field.get("id").and_then(Value::as_i64).unwrap_or_default();
                    let caption = names
                        .captions
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| format!("#{id}"));
                    fields.push(after(
                        format!("customFields.{caption}"),
                        field.get("value").and_then(text),
                    ));
                }
            }
            (_, Value::Object(reference)) => {
                let id = reference
                    .get("id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default();
                // A reference ensured by name is shown by name (as ConnectWise compares
                // names: without case), any other (company, contact) by id.
                let field = ReferenceKind::from_configuration_field(key)
                    .map_or_else(|| key.clone(), |_| format!("{key}.name"));
                let name = names
                    .references
                    .get(&(key.as_str(), id))
                    .cloned()
                    .unwrap_or_else(|| format!("#{id}"));
                fields.push(after(field, Some(name)));
            }
            (_, value) => fields.push(after(key.clone(), text(value))),
        }
    }
    TrailEntry {
        asset_key: item.asset_key.clone(),
        name: item.name.clone(),
        configuration_id: None,
        site: String::new(),
        action: Action::Created,
        fields,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layout::SectionRecord;
    use crate::matching::FieldDiff;
    use crate::store::{MAX_VALUE_BYTES, MemoryStore};

    const RUN: &str = "run-1";
    const TTL: Duration = Duration::from_secs(600);

    fn diff(field: &str, current: &str, desired: &str) -> FieldDiff {
        FieldDiff {
            field: field.into(),
            target: None,
            current: Some(current.into()),
            desired: desired.into(),
        }
    }

    /// A run of 10,000 assets as its match and writers leave it: 5,000 creations (each
    /// with a software list of 4 KB) and 5,000 changes, in batches of 50, one asset of
    /// each batch refused.
    async fn ten_thousand_written(store: &MemoryStore) -> u64 {
        let software = "Microsoft Office 365 ProPlus 16.0.1 (Microsoft); ".repeat(80);
        let mut section = SectionRecord::default();
        let mut written = 0;
        for n in 0..100 {
            let creates: Vec<CreateItem> = (0..50)
                .map(|i| CreateItem {
                    asset_key: format!("new-{n:03}-{i:02}"),
                    name: format!("LAPTOP-{n:03}{i:02}"),
                    body: json!({
                        "name": format!("LAPTOP-{n:03}{i:02}"), "company": {"id": 3},
                        "type": {"id": 1}, "serialNumber": format!("SN{n:05}{i:02}"),
                        "customFields": [{"id": 5, "value": format!("new-{n:03}-{i:02}")},
                                         {"id": 7, "value": software}],
                    }),
                })
                .collect();
            let modifies: Vec<ModifyItem> = (0..50)
                .map(|i| ModifyItem {
                    asset_key: format!("old-{n:03}-{i:02}"),
                    name: format!("DESKTOP-{n:03}{i:02}"),
                    configuration_id: i64::from(n * 100 + i),
                    unmatched_fields: vec![
                        diff("type.name", "Windows", "Managed Workstation"),
                        diff("ipAddress", "10.0.0.1", "10.0.0.2"),
                        diff(
                            "customFields.ls_software",
                            "\u{1}4000 characters, fingerprint 0123456789abcdef",
                            &software,
                        ),
                    ],
                    asset_gone: false,
                })
                .collect();
            for (kind, keys, batches) in [
                (
                    "create",
                    creates
                        .iter()
                        .map(|c| c.asset_key.clone())
                        .collect::<Vec<_>>(),
                    &mut section.create_batches,
                ),
                (
                    "modify",
                    modifies.iter().map(|m| m.asset_key.clone()).collect(),
                    &mut section.modify_batches,
                ),
            ] {
                let batch = layout::batch(RUN, &format!("{kind}/000/00"), n as usize);
                if kind == "create" {
                    store.put(&batch, &creates, TTL).await.unwrap();
                } else {
                    store.put(&batch, &modifies, TTL).await.unwrap();
                }
                let (refused, ok) = keys.split_first().unwrap();
                let result = BatchRecord {
                    written: ok.to_vec(),
                    failed: vec![crate::staging::Rejected {
                        asset_key: refused.clone(),
                        reason: "ConnectWise 400".into(),
                    }],
                    ..BatchRecord::default()
                };
                store
                    .put(&layout::batch_result(&batch), &result, TTL)
                    .await
                    .unwrap();
                written += ok.len() as u64;
                batches.push(batch);
            }
        }
        let record = MatchRecord {
            sections: vec![section],
            custom_field_ids: [
                ("ls_asset_id".to_string(), 5),
                ("ls_software".to_string(), 7),
            ]
            .into_iter()
            .collect(),
            ..MatchRecord::default()
        };
        store
            .put(&layout::match_record(RUN), &record, TTL)
            .await
            .unwrap();
        written
    }

    /// Breaking it looks like: the run-report step of a large run failing on an item
    /// over the store's limit (and so no report and no trail), a refused asset in the
    /// trail as written, or a creation's custom fields shown by id.
    #[tokio::test]
    async fn the_trail_of_a_10_000_asset_run_stays_within_item_limits() {
        let store = MemoryStore::new();
        let written = ten_thousand_written(&store).await;
        let before: std::collections::HashSet<String> = store.keys().into_iter().collect();
        let record = record_trail(&store, RUN, TTL).await.unwrap().unwrap();
        assert_eq!(record.entries, written);
        let trail_keys: Vec<String> = store
            .keys()
            .into_iter()
            .filter(|k| !before.contains(k))
            .collect();
        let sizes: Vec<usize> = trail_keys
            .iter()
            .map(|k| store.raw_len(k).unwrap())
            .collect();
        let largest = sizes.iter().max().copied().unwrap_or_default();
        assert!(largest <= MAX_VALUE_BYTES, "{largest} bytes");
        println!(
            "trail of {written} configurations: {} items, {} bytes in all, the largest {largest} bytes",
            trail_keys.len(),
            sizes.iter().sum::<usize>()
        );
        let trail = trail::load(&store, RUN, System::ConnectWise)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(trail.entries.len() as u64, written);
        assert!(
            trail.entries.iter().all(|e| !e.asset_key.ends_with("-00")),
            "refused ones are not in it"
        );
        let created = trail
            .entries
            .iter()
            .find(|e| e.action == Action::Created)
            .unwrap();
        assert!(
            created
                .fields
                .iter()
                .any(|f| f.field == "customFields.ls_software")
        );
        assert!(
            created
                .fields
                .iter()
                .any(|f| f.field == "company" && f.after.as_deref() == Some("#3"))
        );
    }
}
