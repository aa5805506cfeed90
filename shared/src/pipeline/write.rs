//! `bulk-create` and `bulk-modify`: one Map iteration writes a group of batches of
//! configurations through ConnectWise's bulk endpoint and records each batch's result.

use std::collections::HashMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::r#match::{CreateItem, MatchRecord, ModifyItem, record_key as match_key};
use super::references::ensured;
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::{BulkItemResult, ConnectWiseClient, Field, ListQuery, actions};
use crate::error::PipelineError;
use crate::matching::FieldDiff;
use crate::payload::{self, WriteContext};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

/// What a write step does to the configurations of its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteKind {
    /// New configurations (bulk POST): `bulk-create`.
    Create,
    /// Changed fields of matched configurations (bulk PUT): `bulk-modify`.
    Modify,
}

impl WriteKind {
    /// The state machine's name for the step.
    pub fn step(self) -> &'static str {
        match self {
            Self::Create => "bulk-create",
            Self::Modify => "bulk-modify",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    pub run_id: String,
    pub batch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutput {
    pub run_id: String,
    pub batch: String,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// A group of batches, what one Map iteration hands a bulk function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInput {
    pub run_id: String,
    pub batches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOutput {
    pub run_id: String,
    pub batches: usize,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// What the report reads of a written batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchRecord {
    pub written: Vec<String>,
    pub failed: Vec<Rejected>,
    pub api_calls: ApiCalls,
}

pub(crate) fn result_key(batch: &str) -> String {
    format!("{batch}/result")
}

/// The assets (key, name) a batch holds, whatever its kind.
pub(crate) async fn batch_assets<S: Store>(
    store: &S,
    batch: &str,
    kind: WriteKind,
) -> Result<Vec<(String, String)>, PipelineError> {
    Ok(match kind {
        WriteKind::Create => store
            .require::<Vec<CreateItem>>(batch)
            .await?
            .into_iter()
            .map(|i| (i.asset_key, i.name))
            .collect(),
        WriteKind::Modify => store
            .require::<Vec<ModifyItem>>(batch)
            .await?
            .into_iter()
            .map(|i| (i.asset_key, i.name))
            .collect(),
    })
}

/// Creates or updates every batch of a group, one after the other.
pub async fn write_group<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &GroupInput,
    kind: WriteKind,
) -> Result<GroupOutput, PipelineError> {
    let mut output = GroupOutput {
        run_id: input.run_id.clone(),
        batches: input.batches.len(),
        ..GroupOutput::default()
    };
    for batch in &input.batches {
        let one = BatchInput {
            run_id: input.run_id.clone(),
            batch: batch.clone(),
        };
        let done = match kind {
            WriteKind::Create => bulk_create(connectwise, store, settings, &one).await?,
            WriteKind::Modify => bulk_modify(connectwise, store, settings, &one).await?,
        };
        output.written += done.written;
        output.failed += done.failed;
        output.api_calls += done.api_calls;
    }
    Ok(output)
}

/// Creates one batch through the bulk endpoint; an item that fails is sent alone once
/// more, then reported with ConnectWise's reason.
pub async fn bulk_create<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
) -> Result<BatchOutput, PipelineError> {
    let meter = CallMeter::connectwise(connectwise);
    let items: Vec<CreateItem> = store.require(&input.batch).await?;
    let bodies: Vec<Value> = items.iter().map(|i| i.body.clone()).collect();
    let outcomes = write_with_one_retry(connectwise, Method::POST, &bodies).await?;
    let outcomes = items.iter().map(|i| i.asset_key.clone()).zip(outcomes);
    finish_batch(store, settings, input, &meter, outcomes.collect()).await
}

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
    let record: MatchRecord = store.require(&match_key(&input.run_id)).await?;
    let (ensured, _) = ensured(store, &input.run_id).await?;
    let context = WriteContext {
        company_id: record.company_id,
        references: ensured.ids,
        custom_field_ids: record.custom_field_ids,
    };
    let ids = items.iter().map(|i| i.configuration_id);
    let condition = Field::new("id")?.is_in(ids);
    let current = connectwise
        .list(
            actions::CONFIGURATIONS,
            &ListQuery {
                conditions: Some(condition.to_string()),
                page_size: Some(items.len().clamp(1, 1000) as u32),
                ..ListQuery::default()
            },
        )
        .await?;
    let by_id: HashMap<i64, &Value> = current
        .iter()
        .filter_map(|c| Some((c.get("id")?.as_i64()?, c)))
        .collect();
    let mut bodies = Vec::new();
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
    let written = write_with_one_retry(connectwise, Method::PUT, &bodies).await?;
    outcomes.extend(keys.into_iter().zip(written));
    finish_batch(store, settings, input, &meter, outcomes).await
}

async fn finish_batch<S: Store>(
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
    meter: &CallMeter<'_>,
    outcomes: Vec<(String, Result<(), String>)>,
) -> Result<BatchOutput, PipelineError> {
    let mut record = BatchRecord::default();
    for (asset_key, outcome) in outcomes {
        match outcome {
            Ok(()) => record.written.push(asset_key),
            Err(reason) => record.failed.push(Rejected { asset_key, reason }),
        }
    }
    record.api_calls = meter.read();
    store
        .put(&result_key(&input.batch), &record, settings.staging_ttl)
        .await?;
    Ok(BatchOutput {
        run_id: input.run_id.clone(),
        batch: input.batch.clone(),
        written: record.written.len() as u64,
        failed: record.failed.len() as u64,
        api_calls: record.api_calls,
    })
}
/// One bulk request; the items that failed are sent alone once more.
async fn write_with_one_retry(
    connectwise: &ConnectWiseClient,
    method: Method,
    bodies: &[Value],
) -> Result<Vec<Result<(), String>>, PipelineError> {
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let needs_id = method == Method::PUT;
    let first = actions::bulk(connectwise, method.clone(), bodies, needs_id).await?;
    let mut outcomes = Vec::with_capacity(bodies.len());
    for (index, result) in first.into_iter().enumerate() {
        if result.success {
            outcomes.push(Ok(()));
            continue;
        }
        // A 4xx from validation will fail again; only a server-side failure is retried.
        let retry = result.status_code >= 500;
        let outcome = if retry {
            match actions::bulk(
                connectwise,
                method.clone(),
                &bodies[index..=index],
                needs_id,
            )
            .await?
            .pop()
            {
                Some(second) if second.success => Ok(()),
                Some(second) => Err(reason(&second)),
                None => Err(reason(&result)),
            }
        } else {
            Err(reason(&result))
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn reason(result: &BulkItemResult) -> String {
    match &result.error {
        Some(error) => {
            let details: Vec<String> = error
                .errors
                .iter()
                .map(|e| match (&e.field, &e.message) {
                    (Some(field), Some(message)) => format!("{field}: {message}"),
                    (_, Some(message)) => message.clone(),
                    _ => String::new(),
                })
                .filter(|d| !d.is_empty())
                .collect();
            let mut text = format!(
                "ConnectWise {} {}: {}",
                result.status_code, error.code, error.message
            );
            if !details.is_empty() {
                text.push_str(&format!(" ({})", details.join("; ")));
            }
            text
        }
        None => format!("ConnectWise answered {}", result.status_code),
    }
}
