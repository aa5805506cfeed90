//! `ensure-references`: the spec's four subflows (location, manufacturer, status, type)
//! over the names the fetch found; the ids go to the store for match and the writers.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use serde::{Deserialize, Serialize};

use super::fetch::{self, FetchOutput, FetchRecord};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::linked::MAX_CONDITION_CHARS;
use crate::connectwise::{ConnectWiseClient, Field, ListQuery, MAX_PAGE_SIZE, actions};
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
    pub references_created: BTreeMap<ReferenceKind, usize>,
    pub reference_failures: usize,
    pub api_calls: ApiCalls,
}

fn record_key(run_id: &str) -> String {
    run_key(run_id, "references")
}

fn companies_key(run_id: &str) -> String {
    run_key(run_id, "companies")
}

/// The mapping's companies the step found, name key → id; a company ConnectWise does
/// not have is absent (its assets fail alone).
pub(crate) async fn resolved_companies<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<HashMap<String, i64>, PipelineError> {
    Ok(store.require(&companies_key(run_id)).await?)
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
    // Before anything is written: a mapping whose companies ConnectWise has none of
    // stops the run here; a company that alone is missing fails its own assets (match).
    let fetched: FetchRecord = store.require(&fetch::record_key(&input.run_id)).await?;
    let company_ids = resolve_companies(connectwise, &fetched.companies).await?;
    let unknown: Vec<&str> = fetched
        .companies
        .iter()
        .filter(|c| !company_ids.contains_key(&references::name_key(c)))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(run_id = %input.run_id, unknown = ?unknown, "the mapping names companies ConnectWise does not have");
        if unknown.len() == fetched.companies.len() {
            return Err(PipelineError::Config(format!(
                "ConnectWise has none of the mapping's companies ({}); check the mapping (`lscw mapping list`) or CW_TARGET_COMPANY",
                unknown.join(", ")
            )));
        }
    }
    store
        .put(
            &companies_key(&input.run_id),
            &company_ids,
            settings.staging_ttl,
        )
        .await?;
    let names = fetch::reference_names(store, &fetched).await?;
    let outcome = references::ensure(
        connectwise,
        store,
        &names,
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
        references_created: outcome.created.iter().map(|(k, v)| (*k, v.len())).collect(),
        reference_failures: outcome.failures.len(),
        api_calls,
    })
}

/// The mapping's companies as ids (by [`references::name_key`] of how the mapping
/// names them): a number is taken as is, anything else is looked up as the company's
/// identifier, all in one request while the URL allows.
async fn resolve_companies(
    connectwise: &ConnectWiseClient,
    companies: &[String],
) -> Result<HashMap<String, i64>, PipelineError> {
    let mut ids = HashMap::new();
    let mut identifiers = Vec::new();
    for company in companies {
        match company.parse::<i64>() {
            Ok(id) => {
                ids.insert(references::name_key(company), id);
            }
            Err(_) => identifiers.push(company.as_str()),
        }
    }
    for condition in
        Field::new("identifier")?.is_in_chunks(identifiers.iter().copied(), MAX_CONDITION_CHARS)
    {
        // One page holds every company a condition names (far fewer than 1,000).
        let query = ListQuery {
            page_size: Some(MAX_PAGE_SIZE),
            ..ListQuery::with_conditions(condition.as_str()).with_fields(&["id", "identifier"])
        };
        let found = connectwise.list(actions::COMPANIES, &query).await?;
        for company in found {
            if let (Some(id), Some(identifier)) = (
                company.get("id").and_then(Value::as_i64),
                company.get("identifier").and_then(Value::as_str),
            ) {
                ids.insert(references::name_key(identifier), id);
            }
        }
    }
    Ok(ids)
}
