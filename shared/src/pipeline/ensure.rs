//! `ensure-references`: the spec's four subflows (location, manufacturer, status, type)
//! over the names the fetch found; the ids go to the store for match and the writers.

use std::collections::HashMap;

use serde_json::Value;

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
use crate::states::{EnsureReferencesOutput, FetchAssetsOutput};
use crate::store::{Store, StoreExt};

/// Finds or creates every reference the staged assets name.
pub async fn ensure_references<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchAssetsOutput,
) -> Result<EnsureReferencesOutput, PipelineError> {
    if !settings.dry_run {
        lease::renew(store, &input.run_id).await?;
    }
    let meter = CallMeter::connectwise(connectwise);
    // Before anything is written: a wrong custom field id must stop the run here.
    let custom_field_ids = custom_fields::resolve(connectwise, settings).await?;
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
    Ok(EnsureReferencesOutput {
        run_id: input.run_id.clone(),
        references_created: outcome.created.iter().map(|(k, v)| (*k, v.len())).collect(),
        reference_failures: outcome.failures.len(),
        api_calls,
    })
}

/// The mapping's companies as ids (by [`references::name_key`] of how the mapping
/// names them): each looked up as a company's identifier first, all in one request while
/// the URL allows, so an identifier made of digits (`1042`) is that company and never
/// the company whose id is 1042; a number no identifier matches is taken as a company id
/// once ConnectWise shows it exists.
pub(crate) async fn resolve_companies(
    connectwise: &ConnectWiseClient,
    companies: &[String],
) -> Result<HashMap<String, i64>, PipelineError> {
    let mut ids = HashMap::new();
    let found = companies_where(
        connectwise,
        "identifier",
        companies.iter().map(String::as_str),
    )
    .await?;
    for company in found {
        if let (Some(id), Some(identifier)) = (
            company.get("id").and_then(Value::as_i64),
            company.get("identifier").and_then(Value::as_str),
        ) {
            ids.insert(references::name_key(identifier), id);
        }
    }
    // Numbers no identifier matched, by how the mapping spells them (`0042`, ` 42`).
    let numbers: Vec<(String, i64)> = companies
        .iter()
        .map(|c| references::name_key(c))
        .filter(|key| !ids.contains_key(key))
        .filter_map(|key| key.parse().ok().map(|id| (key, id)))
        .collect();
    if !numbers.is_empty() {
        let texts: Vec<String> = numbers.iter().map(|(_, id)| id.to_string()).collect();
        let found = companies_where(connectwise, "id", texts.iter().map(String::as_str)).await?;
        let existing: std::collections::HashSet<i64> = found
            .iter()
            .filter_map(|c| c.get("id").and_then(Value::as_i64))
            .collect();
        for (key, id) in numbers {
            if existing.contains(&id) {
                ids.insert(key, id);
            }
        }
    }
    Ok(ids)
}

/// The companies whose `field` is one of `values`, in as few requests as the URL allows.
async fn companies_where<'a>(
    connectwise: &ConnectWiseClient,
    field: &str,
    values: impl Iterator<Item = &'a str>,
) -> Result<Vec<Value>, PipelineError> {
    let mut found = Vec::new();
    for condition in Field::new(field)?.is_in_chunks(values, MAX_CONDITION_CHARS) {
        // One page holds every company a condition names (far fewer than 1,000).
        let query = ListQuery {
            page_size: Some(MAX_PAGE_SIZE),
            ..ListQuery::with_conditions(condition.as_str()).with_fields(&["id", "identifier"])
        };
        found.extend(connectwise.list(endpoint::COMPANIES, &query).await?);
    }
    Ok(found)
}
