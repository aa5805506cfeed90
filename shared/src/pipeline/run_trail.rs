//! The run's audit trail. Each writer stores the trail of its batch as it records the
//! batch's result ([`super::batch::record_result`]): the match's before and after of
//! each configuration it wrote, a creation with the id ConnectWise answered. The
//! run-report step then only indexes the batches' parts, reading each batch's result
//! (a few kilobytes), never a trail part: whatever the run's size, no step holds more
//! of the trail than a batch's. It costs no ConnectWise request.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::error::PipelineError;
use crate::layout::{self, BatchRecord, CreateItem, MatchRecord, ModifyItem};
use crate::matching::LOCATION_NAME;
use crate::references::{ReferenceIds, ReferenceKind};
use crate::store::{Store, StoreExt};
use crate::trail::{self, Action, FieldChange, System, TrailEntry, TrailRecord};

/// Records the trail of what `run_id` wrote to ConnectWise, for `ttl`: the index of its
/// batches' trail parts. A run that never reached its match has none. A revert's trail
/// keeps the run it reverts.
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
    let batches = record
        .sections
        .iter()
        .flat_map(|s| {
            s.create_batches
                .iter()
                .chain(&s.modify_batches)
                .chain(&s.retire_batches)
        })
        .chain(&record.approved);
    let mut parts = Vec::new();
    let mut entries = 0;
    for batch in batches {
        if let Some(result) = store
            .get::<BatchRecord>(&layout::batch_result(batch))
            .await?
            && !result.trail.is_empty()
        {
            entries += result.written.len() as u64;
            parts.extend(result.trail);
        }
    }
    Ok(Some(
        trail::save_index(
            store,
            run_id,
            System::ConnectWise,
            reverts.as_deref(),
            entries,
            &parts,
            ttl,
        )
        .await?,
    ))
}

/// The entry of a written change (a retirement when `retire`).
pub(super) fn modified_entry(item: &ModifyItem, retire: bool) -> TrailEntry {
    let reactivated = item
        .unmatched_fields
        .iter()
        .any(|d| d.field == "activeFlag" && d.desired == "true");
    let action = match (retire, reactivated) {
        (true, _) => Action::Retired,
        (false, true) => Action::Reactivated,
        (false, false) => Action::Modified,
    };
    TrailEntry {
        asset_key: item.asset_key.clone(),
        name: item.name.clone(),
        configuration_id: Some(item.configuration_id),
        url: None,
        site: String::new(),
        action,
        fields: item
            .unmatched_fields
            .iter()
            .map(|d| FieldChange {
                field: d.field.clone(),
                key: None,
                before: d.current.clone(),
                after: Some(d.desired.clone()),
            })
            .collect(),
    }
}

/// The names of what a creation's body holds by id: references and custom fields.
pub(super) struct Names {
    references: HashMap<(&'static str, i64), String>,
    captions: HashMap<i64, String>,
}

impl Names {
    /// The run's: the references it ensured, the custom fields its match checked.
    pub(super) async fn of_run<S: Store>(store: &S, run_id: &str) -> Result<Self, PipelineError> {
        let record = layout::read_match(store, run_id).await?;
        let references = match layout::read_ensured(store, run_id).await {
            Ok((ensured, _)) => ensured.ids,
            Err(_) => ReferenceIds::default(),
        };
        Ok(Self::of(&references, &record.custom_field_ids))
    }

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

/// A creation's entry: every field of its body, none before; the configuration's id
/// when ConnectWise answered it.
pub(super) fn created_entry(
    item: &CreateItem,
    configuration_id: Option<i64>,
    names: &Names,
) -> TrailEntry {
    let mut fields = Vec::new();
    let after = |field: String, value: Option<String>| FieldChange {
        field,
        key: None,
        before: None,
        after: value,
    };
    for (key, value) in item.body.as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            // By name, as matching compares it.
            ("locationId", Value::Number(id)) => {
                let id = id.as_i64().unwrap_or_default();
                let name = names
                    .references
                    .get(&(ReferenceKind::Location.configuration_field(), id))
                    .cloned()
                    .unwrap_or_else(|| format!("#{id}"));
                fields.push(after(LOCATION_NAME.to_string(), Some(name)));
            }
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
        configuration_id,
        url: None,
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
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::super::batch::record_result;
    use super::*;
    use crate::calls::ApiCalls;
    use crate::layout::SectionRecord;
    use crate::matching::FieldDiff;
    use crate::settings::SyncSettings;
    use crate::store::{MAX_VALUE_BYTES, MemoryStore, Watched};

    const RUN: &str = "run-1";

    fn diff(field: &str, current: &str, desired: &str) -> FieldDiff {
        FieldDiff {
            field: field.into(),
            target: None,
            current: Some(current.into()),
            desired: desired.into(),
        }
    }

    /// A run of 10,000 assets as its match and writers leave it: 5,000 creations (each
    /// with a software list of 4 KB) and 5,000 changes (a software list among them), in
    /// batches of 50, one asset of each batch refused; each batch's result recorded as
    /// the writers record it, with its trail.
    #[allow(
        clippy::too_many_lines,
        reason = "one run's two kinds of batch, built and recorded side by side"
    )]
    async fn ten_thousand_written(store: &MemoryStore, settings: &SyncSettings) -> u64 {
        let software = "Microsoft Office 365 ProPlus 16.0.1 (Microsoft); ".repeat(80);
        let ttl = settings.staging_ttl;
        let custom_field_ids: HashMap<String, i64> = [
            ("ls_asset_id".to_string(), 5),
            ("ls_software".to_string(), 7),
        ]
        .into_iter()
        .collect();
        let names = Names::of(&ReferenceIds::default(), &custom_field_ids);
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
            // The first asset of each batch refused.
            let outcomes = |keys: Vec<String>| -> Vec<(String, Result<(), String>)> {
                keys.into_iter()
                    .enumerate()
                    .map(|(i, k)| {
                        (
                            k,
                            if i == 0 {
                                Err("ConnectWise 400".into())
                            } else {
                                Ok(())
                            },
                        )
                    })
                    .collect()
            };
            let batch = layout::batch(RUN, "create/000/00", n as usize);
            store.put(&batch, &creates, ttl).await.unwrap();
            let keys = creates.iter().map(|c| c.asset_key.clone()).collect();
            let result = record_result(
                store,
                settings,
                &batch,
                outcomes(keys),
                |key| {
                    let i = creates.iter().position(|c| c.asset_key == key)?;
                    Some(created_entry(
                        &creates[i],
                        Some(i64::from(n) * 1000 + i as i64),
                        &names,
                    ))
                },
                ApiCalls::default(),
            )
            .await
            .unwrap();
            written += result.written.len() as u64;
            section.create_batches.push(batch);

            let batch = layout::batch(RUN, "modify/000/00", n as usize);
            store.put(&batch, &modifies, ttl).await.unwrap();
            let keys = modifies.iter().map(|m| m.asset_key.clone()).collect();
            let result = record_result(
                store,
                settings,
                &batch,
                outcomes(keys),
                |key| {
                    Some(modified_entry(
                        modifies.iter().find(|m| m.asset_key == key)?,
                        false,
                    ))
                },
                ApiCalls::default(),
            )
            .await
            .unwrap();
            written += result.written.len() as u64;
            section.modify_batches.push(batch);
        }
        let record = MatchRecord {
            sections: vec![section],
            custom_field_ids,
            ..MatchRecord::default()
        };
        store
            .put(&layout::match_record(RUN), &record, ttl)
            .await
            .unwrap();
        written
    }

    /// Breaking it looks like: the run-report step of a large run reading the trail's
    /// parts (holding the run's trail whole: out of memory at 100,000 assets) or an item
    /// over the store's limit, a long value kept whole (the trail ten times larger), a
    /// refused asset in the trail as written, a creation without the id ConnectWise
    /// answered, or its custom fields shown by id.
    #[tokio::test]
    async fn the_trail_of_a_10_000_asset_run_is_written_per_batch_and_indexed_in_small_reads() {
        let settings = SyncSettings::default();
        let memory = MemoryStore::new();
        let before_writes: std::collections::HashSet<String> = memory.keys().into_iter().collect();
        let written = ten_thousand_written(&memory, &settings).await;
        let trail_keys: Vec<String> = memory
            .keys()
            .into_iter()
            .filter(|k| !before_writes.contains(k) && k.contains("/trail"))
            .collect();
        // The largest value read or written, and every key read: what the step holds
        // at once, measured.
        let largest = Arc::new(Mutex::new(0));
        let read = Arc::new(Mutex::new(Vec::new()));
        let saw = |largest: &Arc<Mutex<usize>>| {
            let largest = Arc::clone(largest);
            move |bytes: usize| {
                let mut largest = largest.lock().unwrap();
                *largest = (*largest).max(bytes);
            }
        };
        let (saw_put, saw_get, keys_read) = (saw(&largest), saw(&largest), Arc::clone(&read));
        let store = Watched::new(memory.clone())
            .before_put(move |_, value| {
                saw_put(value.len());
                Ok(())
            })
            .after_get(move |key, value| {
                saw_get(value.map_or(0, str::len));
                keys_read.lock().unwrap().push(key.to_string());
            });
        let record = record_trail(&store, RUN, settings.audit_ttl)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.entries, written);
        let largest_moved = *largest.lock().unwrap();
        let read = read.lock().unwrap().clone();
        assert!(
            read.iter().all(|k| !k.contains("/trail/")),
            "the report step reads no trail part: {read:?}"
        );
        // A batch's result (50 keys) is the most the step reads at once.
        assert!(largest_moved < 16 * 1024, "{largest_moved} bytes at once");
        let memory = &memory;
        let trail_keys: Vec<String> = trail_keys
            .into_iter()
            .chain(
                memory
                    .keys()
                    .into_iter()
                    .filter(|k| k.starts_with(&layout::trail(RUN, "trail"))),
            )
            .collect();
        let sizes: Vec<usize> = trail_keys
            .iter()
            .map(|k| memory.raw_len(k).unwrap())
            .collect();
        let largest = sizes.iter().max().copied().unwrap_or_default();
        let total = sizes.iter().sum::<usize>();
        assert!(largest <= MAX_VALUE_BYTES, "{largest} bytes");
        println!(
            "trail of {written} configurations: {} items, {total} bytes in all, the largest {largest} bytes; the report step moved at most {largest_moved} bytes at once",
            trail_keys.len(),
        );
        // Was 41.8 MB with long values kept whole.
        assert!(total < 8 * 1024 * 1024, "{total} bytes in all");
        let trail = trail::load(memory, RUN, System::ConnectWise)
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
            created.configuration_id.is_some(),
            "the id ConnectWise answered"
        );
        let software = created
            .fields
            .iter()
            .find(|f| f.field == "customFields.ls_software")
            .unwrap();
        assert!(
            trail::shown(software.after.as_deref()).starts_with("(long value, not kept"),
            "{:?}",
            software.after
        );
        assert!(
            created
                .fields
                .iter()
                .any(|f| f.field == "company" && f.after.as_deref() == Some("#3"))
        );
    }
}
