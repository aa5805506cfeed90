//! `ensure-references`: the spec's four subflows (location, manufacturer, status, type)
//! over the names the fetch found; the ids go to the store for match and the writers.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::fetch::FetchOutput;
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::ConnectWiseClient;
use crate::custom_fields;
use crate::error::PipelineError;
use crate::lease;
use crate::references::{self, EnsureOptions, EnsureOutcome, ReferenceKind};
use crate::run::run_key;
use crate::settings::SyncSettings;
use crate::store::{Store, StoreExt};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnsureOutput {
    pub run_id: String,
    pub chunks: Vec<String>,
    pub references_created: BTreeMap<ReferenceKind, usize>,
    pub reference_failures: usize,
    pub api_calls: ApiCalls,
}

fn record_key(run_id: &str) -> String {
    run_key(run_id, "references")
}

fn custom_fields_key(run_id: &str) -> String {
    run_key(run_id, "custom-fields")
}

/// The custom field ids the step checked, as the writers use them.
pub(crate) async fn checked_custom_fields<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<HashMap<String, i64>, PipelineError> {
    Ok(store.require(&custom_fields_key(run_id)).await?)
}

/// The references the step ensured, with what it cost, as later steps read them.
pub(crate) async fn ensured<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<(EnsureOutcome, ApiCalls), PipelineError> {
    Ok(store.require(&record_key(run_id)).await?)
}

/// Finds or creates every reference the staged assets name.
pub async fn ensure_references<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchOutput,
) -> Result<EnsureOutput, PipelineError> {
    if !settings.dry_run {
        lease::renew(store, &input.run_id).await?;
    }
    let meter = CallMeter::connectwise(connectwise);
    // Before anything is written: a wrong custom field id must stop the run here.
    let custom_field_ids = custom_fields::resolve(connectwise, &settings.custom_field_ids).await?;
    store
        .put(
            &custom_fields_key(&input.run_id),
            &custom_field_ids,
            settings.staging_ttl,
        )
        .await?;
    let outcome = references::ensure(
        connectwise,
        store,
        &input.references,
        &EnsureOptions {
            structure_level: settings.structure_level,
            cache_ttl: settings.reference_ttl,
            dry_run: settings.dry_run,
        },
    )
    .await?;
    let api_calls = meter.read();
    store
        .put(
            &record_key(&input.run_id),
            &(&outcome, api_calls),
            settings.staging_ttl,
        )
        .await?;
    Ok(EnsureOutput {
        run_id: input.run_id.clone(),
        chunks: input.chunks.clone(),
        references_created: outcome.created.iter().map(|(k, v)| (*k, v.len())).collect(),
        reference_failures: outcome.failures.len(),
        api_calls,
    })
}
