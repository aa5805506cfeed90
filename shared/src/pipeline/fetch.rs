//! `fetch-assets`: pages every asset out of Lansweeper, normalises it and stages it in
//! the store, page by page, so memory holds one page and not the site.

use serde::{Deserialize, Serialize};

use crate::calls::{ApiCalls, CallMeter};
use crate::error::PipelineError;
use crate::lansweeper::{ASSET_PATHS, LansweeperClient, LansweeperError};
use crate::layout::{self, FetchRecord, LeaseHolder, SiteFetch};
use crate::lease;
use crate::mapping::{self, Destination, RuleValues};
use crate::quota;
use crate::references::{ReferenceKind, ReferenceNames};
use crate::settings::SyncSettings;
use crate::staging::{Rejected, StagedAsset};
use crate::store::{Store, StoreExt};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchInput {
    /// Continue this run id (the state machine's execution name), or make one.
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchOutput {
    pub run_id: String,
    /// Assets staged in the store (the fetch record lists their parts): the state
    /// carries counts, never lists that grow with the estate.
    #[serde(default)]
    pub staged: u64,
    /// Assets Lansweeper returned, rejected ones included.
    pub assets: u64,
    pub rejected: u64,
    /// Assets no mapping rule sends to a company: reported, never written.
    #[serde(default)]
    pub unmapped: u64,
    /// Distinct reference names found (the fetch record lists them).
    #[serde(default)]
    pub reference_names: u64,
    pub api_calls: ApiCalls,
    /// Another run holds the lease: this one ended at once and wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// Takes the run's lease, pages every asset out of Lansweeper, normalises it and stages
/// it in chunks; `progress` hears (assets seen, total when known) after each page. When
/// another run holds the lease, ends at once as skipped.
pub async fn fetch_assets<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchInput,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<FetchOutput, PipelineError> {
    let run_id = input.run_id.clone().unwrap_or_else(layout::new_run_id);
    if !settings.dry_run
        && let Some(holder) = lease::acquire(store, &run_id).await?
    {
        tracing::warn!(%run_id, holder = %holder.run_id, "another run holds the lease; skipped");
        let record = FetchRecord {
            skipped_for: Some(holder.clone()),
            ..FetchRecord::default()
        };
        store
            .put(
                &layout::fetch_record(&run_id),
                &record,
                settings.staging_ttl,
            )
            .await?;
        return Ok(FetchOutput {
            run_id,
            skipped_for: Some(holder),
            ..FetchOutput::default()
        });
    }
    let mapping = mapping::in_force(
        store,
        Some(lansweeper.site_id()),
        Some(&settings.target_company),
    )
    .await?;
    mapping.check()?;
    quota::load(store, lansweeper).await?;
    let meter = CallMeter::lansweeper(lansweeper);
    let mut names = ReferenceNames::default();
    // The status retired configurations get: created with the other references if missing.
    names.add(ReferenceKind::Status, Some(&settings.retire.retired_status));
    let mut seen = 0u64;
    let mut chunks = Vec::new();
    let mut staged_count = 0u64;
    let mut sites = Vec::with_capacity(mapping.sites.len());
    let (mut rejected_total, mut unmapped_total) = (0u64, 0u64);
    for (site_index, site) in mapping.sites.iter().enumerate() {
        let client = lansweeper.for_site(&site.site);
        let mut rejected: Vec<Rejected> = Vec::new();
        let mut unmapped: Vec<Rejected> = Vec::new();
        let mut site_assets = 0u64;
        let mut pager = client.asset_pager(ASSET_PATHS, None)?;
        let mut site_error = None;
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                // A site the token lost access to fails alone; the other clients go on.
                Err(LansweeperError::Forbidden(reason)) => {
                    tracing::warn!(%run_id, site = %site.site, %reason, "site not readable");
                    site_error = Some(format!(
                        "Lansweeper refused access to site {}: {reason}",
                        site.site
                    ));
                    break;
                }
                Err(other) => return Err(other.into()),
            };
            seen += page.len() as u64;
            site_assets += page.len() as u64;
            let mut staged = Vec::with_capacity(page.len());
            for asset in &page {
                let company = match site.destination(&RuleValues::of(asset)) {
                    Destination::Company(company) => company,
                    Destination::Unmapped(reason) => {
                        unmapped.push(Rejected {
                            asset_key: asset.key().unwrap_or_default(),
                            reason,
                        });
                        continue;
                    }
                };
                match StagedAsset::from_lansweeper(asset)
                    .and_then(|staged| translated(staged, settings))
                {
                    Ok(mut asset) => {
                        names.add(ReferenceKind::Location, asset.location.as_deref());
                        names.add(ReferenceKind::Manufacturer, asset.manufacturer.as_deref());
                        names.add(ReferenceKind::Status, asset.state.as_deref());
                        names.add(ReferenceKind::Type, Some(&asset.asset_type));
                        asset.site.clone_from(&site.site);
                        asset.company = company;
                        staged.push(asset);
                    }
                    Err(reason) => rejected.push(reason),
                }
            }
            staged_count += staged.len() as u64;
            if !staged.is_empty() {
                let prefix = layout::staged_page(&run_id, site_index, pager.stats.requests);
                chunks.extend(
                    store
                        .put_parts(&prefix, &staged, settings.staging_ttl)
                        .await?,
                );
            }
            // The total is known per site; across several, only once the last is read.
            let total = pager.stats.total.filter(|_| mapping.sites.len() == 1);
            progress(seen, total);
        }
        rejected_total += rejected.len() as u64;
        unmapped_total += unmapped.len() as u64;
        if !unmapped.is_empty() {
            tracing::info!(%run_id, site = %site.site, unmapped = unmapped.len(), "assets no mapping rule sends to a company");
        }
        sites.push(SiteFetch {
            site: site.site.clone(),
            error: site_error,
            assets: site_assets,
            rejected: store
                .put_parts(
                    &layout::site_rejected(&run_id, site_index),
                    &rejected,
                    settings.staging_ttl,
                )
                .await?,
            unmapped: store
                .put_parts(
                    &layout::site_unmapped(&run_id, site_index),
                    &unmapped,
                    settings.staging_ttl,
                )
                .await?,
        });
    }
    progress(seen, Some(seen));
    let staged_chunks = store
        .put_parts(
            &layout::staged_index(&run_id),
            &chunks,
            settings.staging_ttl,
        )
        .await?;
    let name_list: Vec<(ReferenceKind, &String)> = names
        .0
        .iter()
        .flat_map(|(kind, set)| set.iter().map(move |name| (*kind, name)))
        .collect();
    let reference_parts = store
        .put_parts(
            &layout::reference_names(&run_id),
            &name_list,
            settings.staging_ttl,
        )
        .await?;
    let api_calls = meter.read();
    quota::save(store, lansweeper).await?;
    store
        .put(
            &layout::fetch_record(&run_id),
            &FetchRecord {
                assets: seen,
                rejected: Vec::new(),
                sites,
                chunks: staged_chunks,
                references: reference_parts,
                companies: mapping.companies(),
                api_calls,
                skipped_for: None,
            },
            settings.staging_ttl,
        )
        .await?;
    tracing::info!(%run_id, assets = seen, rejected = rejected_total, unmapped = unmapped_total, chunks = chunks.len(), "assets staged");
    Ok(FetchOutput {
        run_id,
        staged: staged_count,
        assets: seen,
        rejected: rejected_total,
        unmapped: unmapped_total,
        reference_names: name_list.len() as u64,
        api_calls,
        skipped_for: None,
    })
}

/// The asset with its type and state named as ConnectWise names them
/// (`CW_TYPE_MAP`, `CW_STATUS_MAP`), or why it cannot be synced.
fn translated(mut asset: StagedAsset, settings: &SyncSettings) -> Result<StagedAsset, Rejected> {
    // Retired states are Lansweeper's names, before any map.
    asset.retired = settings.retire.is_retired_state(asset.state.as_deref());
    let maps = &settings.value_maps;
    let reject = |reason: String| Rejected {
        asset_key: asset.key.clone(),
        reason,
    };
    let asset_type = maps.type_name(&asset.asset_type).map_err(reject)?;
    let state = match &asset.state {
        Some(state) => Some(maps.status_name(state).map_err(reject)?),
        None => None,
    };
    asset.asset_type = asset_type;
    asset.state = state;
    Ok(asset)
}
