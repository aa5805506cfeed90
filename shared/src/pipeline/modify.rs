//! `bulk-modify`'s batch: the configurations read whole, only the differing fields
//! changed, written back with bulk PUT. A PUT replaces the record it names, so sending
//! it again is safe: an item that failed on ConnectWise's side is sent once more.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use super::batch::{
    BatchInput, BatchOutput, Healing, finish_batch, per_item, reason, stale_reference,
};
use super::trail::modified_entry;
use crate::calls::CallMeter;
use crate::connectwise::{BulkItemResult, ConnectWiseClient, Field, ListQuery, actions, endpoint};
use crate::error::PipelineError;
use crate::layout::{self, MatchRecord, ModifyItem};
use crate::matching::FieldDiff;
use crate::payload::{self, WriteContext};
use crate::references::ReferenceKind;
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
    let mut bodies: Vec<Value> = Vec::new();
    let mut keys = Vec::new();
    let mut outcomes: Vec<(String, Result<(), String>)> = Vec::new();
    for item in &items {
        let body = by_id
            .get(&item.configuration_id)
            .ok_or_else(|| format!("configuration {} no longer exists", item.configuration_id))
            .and_then(|current| {
                let diffs: Vec<FieldDiff> = item
                    .unmatched_fields
                    .iter()
                    .cloned()
                    .map(|mut d| {
                        d.target = payload::target_from_label(&d.field);
                        d
                    })
                    .collect();
                payload::update_body(current, &diffs, &context)
            });
        match body {
            Ok(body) => {
                bodies.push(body);
                keys.push(item.asset_key.clone());
            }
            Err(reason) => outcomes.push((item.asset_key.clone(), Err(reason))),
        }
    }
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
    let written = written
        .into_iter()
        .map(|outcome| outcome.map_err(|refused| reason(&refused)));
    outcomes.extend(keys.into_iter().zip(written));
    let by_key: HashMap<&str, &ModifyItem> =
        items.iter().map(|i| (i.asset_key.as_str(), i)).collect();
    let trail_of = |key: &str| Some(modified_entry(by_key.get(key)?, retire));
    finish_batch(store, settings, input, &meter, outcomes, trail_of).await
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
        actions::bulk(connectwise, method.clone(), bodies, needs_id).await,
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
                actions::bulk(
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
