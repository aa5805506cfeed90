//! `ensure-references`: the spec's four subflows (location, manufacturer, status, type)
//! over the names the fetch found; the ids go to the store for match and the writers.

use std::collections::HashMap;

use serde_json::Value;

use super::states::{EnsureOutput, FetchOutput};
use crate::calls::CallMeter;
use crate::connectwise::{
    ConnectWiseClient, Field, ListQuery, MAX_CONDITION_CHARS, MAX_PAGE_SIZE, endpoint,
};
use crate::custom_fields;
use crate::error::PipelineError;
use crate::layout;
use crate::lease;
use crate::references::{self, EnsureOptions};
use crate::settings::SyncSettings;
use crate::store::{Store, StoreExt};

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
            &layout::checked_custom_fields(&input.run_id),
            &custom_field_ids,
            settings.staging_ttl,
        )
        .await?;
    // Before anything is written: a mapping whose companies ConnectWise has none of
    // stops the run here; a company that alone is missing fails its own assets (match).
    let fetched = layout::read_fetch(store, &input.run_id).await?;
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
            &layout::resolved_companies(&input.run_id),
            &company_ids,
            settings.staging_ttl,
        )
        .await?;
    let names = layout::read_reference_names(store, &fetched).await?;
    let outcome = references::ensure(
        connectwise,
        store,
        &names,
        &EnsureOptions {
            structure_level: settings.structure_level,
            cache_key: layout::reference_cache,
            cache_ttl: settings.reference_ttl,
            dry_run: settings.dry_run,
        },
    )
    .await?;
    let api_calls = meter.read();
    layout::write_ensured(
        store,
        &input.run_id,
        &outcome,
        api_calls,
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
        let found = connectwise.list(endpoint::COMPANIES, &query).await?;
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
