//! `bulk-modify`'s batch: the configurations read whole, only the differing fields
//! changed, written back with bulk PUT. A PUT replaces the record it names, so sending
//! it again is safe: an item that failed on ConnectWise's side is sent once more.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use super::batch::{
    BatchInput, BatchOutput, Healing, finish_batch, per_item, reason, stale_reference,
};
use super::run_trail::modified_entry;
use crate::calls::CallMeter;
use crate::connectwise::{BulkItemResult, ConnectWiseClient, Field, ListQuery, bulk, endpoint};
use crate::error::PipelineError;
use crate::layout::{self, MatchRecord, ModifyItem};
use crate::matching::{FieldDiff, LOCATION_NAME};
use crate::payload::{self, WriteContext};
use crate::references::{self, ReferenceKind};
use crate::settings::SyncSettings;
use crate::store::{Store, StoreExt};

/// Updates one batch: reads the configurations whole, changes only the differing
/// fields, and writes them back through the bulk endpoint.
pub async fn bulk_modify<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
) -> Result<BatchOutput, PipelineError> {
    let meter = CallMeter::connectwise(connectwise);
    let items: Vec<ModifyItem> = store.require(&input.batch).await?;
    let record = layout::read_match(store, &input.run_id).await?;
    let (ensured, _) = layout::read_ensured(store, &input.run_id).await?;
    let company_id = record
        .sections
        .iter()
        .find(|s| {
            s.modify_batches.contains(&input.batch) || s.retire_batches.contains(&input.batch)
        })
        .map_or(0, |s| s.company_id);
    let retire = is_retirement(&record, &input.batch);
    let context = WriteContext {
        company_id,
        references: ensured.ids,
        custom_field_ids: record.custom_field_ids,
    };
    let current = configurations(connectwise, &items).await?;
    let by_id: HashMap<i64, &Value> = current
        .iter()
        .filter_map(|c| Some((c.get("id")?.as_i64()?, c)))
        .collect();
    let locations = location_names(connectwise, &items).await?;
    let Prepared {
        mut bodies,
        keys,
        mut outcomes,
        changed_since,
        writes,
    } = prepare(&items, &by_id, &locations, &context);
    let (mut written, mut whole_refusal) =
        write_with_one_retry(connectwise, Method::PUT, &bodies).await?;
    // Refused for a reference ConnectWise no longer has: resolved again and written once
    // more with the new id (a PUT sets the record: sending it again is safe).
    let mut healing = Healing::new(connectwise, settings, &input.run_id);
    let mut sent: Vec<usize> = (0..bodies.len()).collect();
    loop {
        let stale: Vec<(usize, (ReferenceKind, i64))> = sent
            .iter()
            .filter_map(|&index| {
                let refused = written[index].as_ref().err()?;
                Some((index, stale_reference(refused, &bodies[index])?))
            })
            .collect();
        let again = healing.round(store, &stale, whole_refusal, &sent).await?;
        if again.is_empty() {
            break;
        }
        for &index in &again {
            healing.apply(&mut bodies[index]);
        }
        let resent: Vec<Value> = again.iter().map(|&index| bodies[index].clone()).collect();
        let (second, whole) = write_with_one_retry(connectwise, Method::PUT, &resent).await?;
        for (&index, outcome) in again.iter().zip(second) {
            written[index] = outcome;
        }
        (sent, whole_refusal) = (again, whole);
    }
    let written = written.into_iter().zip(keys).map(|(outcome, key)| {
        // Written, but for the fields changed since the plan: said as the asset's outcome.
        let outcome = match (outcome, changed_since.get(&key)) {
            (Ok(()), Some(changed)) => Err(format!("{changed} (its other fields were written)")),
            (Ok(()), None) => Ok(()),
            (Err(refused), _) => Err(reason(&refused)),
        };
        (key, outcome)
    });
    outcomes.extend(written);
    // The trail holds what was written: the changes still called for.
    let by_key: HashMap<&str, &ModifyItem> =
        writes.iter().map(|i| (i.asset_key.as_str(), i)).collect();
    let trail_of = |key: &str| Some(modified_entry(by_key.get(key)?, retire));
    finish_batch(store, settings, input, &meter, outcomes, trail_of).await
}

/// A batch's writes, made ready from the plan and the configurations as they are now.
#[derive(Default)]
struct Prepared {
    /// The PUT bodies, and the asset each is for.
    bodies: Vec<Value>,
    keys: Vec<String>,
    /// The assets settled without a write: gone, refused before sending, nothing left.
    outcomes: Vec<(String, Result<(), String>)>,
    /// Fields changed in ConnectWise since the plan, by asset: left as they are, reported.
    changed_since: HashMap<String, String>,
    /// What each written item writes: the plan's changes its configuration still calls for.
    writes: Vec<ModifyItem>,
}

/// Each item's body: its configuration as ConnectWise holds it (`by_id`) with the planned
/// changes it still calls for ([`payload::still_planned`]).
fn prepare(
    items: &[ModifyItem],
    by_id: &HashMap<i64, &Value>,
    locations: &HashMap<i64, String>,
    context: &WriteContext,
) -> Prepared {
    let mut prepared = Prepared::default();
    for item in items {
        let Some(current) = by_id.get(&item.configuration_id) else {
            let gone = format!("configuration {} no longer exists", item.configuration_id);
            prepared.outcomes.push((item.asset_key.clone(), Err(gone)));
            continue;
        };
        let mut named = (*current).clone();
        references::name_location(&mut named, locations);
        let (planned, changed) = payload::still_planned(&named, &item.unmatched_fields);
        let changed = (!changed.is_empty()).then(|| {
            format!(
                "changed in ConnectWise since this was planned, left as it is: {}",
                changed.join("; ")
            )
        });
        if planned.is_empty() {
            let outcome = changed.map_or(Ok(()), Err);
            prepared.outcomes.push((item.asset_key.clone(), outcome));
            continue;
        }
        if let Some(changed) = changed {
            prepared
                .changed_since
                .insert(item.asset_key.clone(), changed);
        }
        let diffs: Vec<FieldDiff> = planned
            .iter()
            .cloned()
            .map(|mut d| {
                d.target = payload::target_from_label(&d.field);
                d
            })
            .collect();
        match payload::update_body(current, &diffs, context) {
            Ok(body) => {
                prepared.bodies.push(body);
                prepared.keys.push(item.asset_key.clone());
                prepared.writes.push(ModifyItem {
                    unmatched_fields: planned,
                    ..item.clone()
                });
            }
            Err(reason) => prepared
                .outcomes
                .push((item.asset_key.clone(), Err(reason))),
        }
    }
    prepared
}

/// The names of ConnectWise's locations by id, when a change of the batch is to a
/// location (ConnectWise holds it by id; the plan by name).
async fn location_names(
    connectwise: &ConnectWiseClient,
    items: &[ModifyItem],
) -> Result<HashMap<i64, String>, PipelineError> {
    let changes_location = items
        .iter()
        .flat_map(|i| &i.unmatched_fields)
        .any(|d| d.field == LOCATION_NAME);
    if !changes_location {
        return Ok(HashMap::new());
    }
    Ok(references::names_by_id(connectwise, ReferenceKind::Location).await?)
}

/// The batch's configurations as ConnectWise holds them now: what a PUT starts from.
async fn configurations(
    connectwise: &ConnectWiseClient,
    items: &[ModifyItem],
) -> Result<Vec<Value>, PipelineError> {
    let ids = items.iter().map(|i| i.configuration_id);
    let condition = Field::new("id")?.is_in(ids);
    let query = ListQuery {
        conditions: Some(condition.to_string()),
        page_size: Some(items.len().clamp(1, 1000) as u32),
        ..ListQuery::default()
    };
    Ok(connectwise.list(endpoint::CONFIGURATIONS, &query).await?)
}

/// Whether a batch holds retirements (the match's, or those approved since).
fn is_retirement(record: &MatchRecord, batch: &String) -> bool {
    record.approved.contains(batch)
        || record
            .sections
            .iter()
            .any(|s| s.retire_batches.contains(batch))
}

/// One bulk PUT; the items that failed on ConnectWise's side are sent alone once more.
/// Answers each item's outcome (written, or the result that refused it) and whether
/// ConnectWise refused the request whole.
async fn write_with_one_retry(
    connectwise: &ConnectWiseClient,
    method: Method,
    bodies: &[Value],
) -> Result<(Vec<Result<(), BulkItemResult>>, bool), PipelineError> {
    if bodies.is_empty() {
        return Ok((Vec::new(), false));
    }
    let needs_id = method == Method::PUT;
    // Refused whole for its input: each item carries the refusal, as an item's own would.
    let (first, whole_refusal) = per_item(
        bulk(connectwise, method.clone(), bodies, needs_id).await,
        bodies.len(),
    );
    let first = first?;
    let mut outcomes = Vec::with_capacity(bodies.len());
    for (index, result) in first.into_iter().enumerate() {
        if result.success {
            outcomes.push(Ok(()));
            continue;
        }
        // A 4xx from validation will fail again; only a server-side failure is retried.
        let retry = result.status_code >= 500;
        let outcome = if retry {
            let (again, _) = per_item(
                bulk(
                    connectwise,
                    method.clone(),
                    &bodies[index..=index],
                    needs_id,
                )
                .await,
                1,
            );
            match again?.pop() {
                Some(second) if second.success => Ok(()),
                Some(second) => Err(second),
                None => Err(result),
            }
        } else {
            Err(result)
        };
        outcomes.push(outcome);
    }
    Ok((outcomes, whole_refusal))
}
