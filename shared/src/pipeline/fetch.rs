//! `fetch-assets`: pages every asset out of Lansweeper, normalises it and stages it in
//! the store, page by page, so memory holds one page and not the site.

use std::collections::HashSet;

use crate::calls::CallMeter;
use crate::error::PipelineError;
use crate::lansweeper::{ASSET_PATHS, Asset, LansweeperClient, LansweeperError, site_refused};
use crate::layout::{self, FetchRecord, LeaseHolder, SiteFetch};
use crate::lease;
use crate::mapping::{self, Destination, RuleValues, SiteMapping};
use crate::quota;
use crate::references::{ReferenceKind, ReferenceNames};
use crate::settings::SyncSettings;
use crate::staging::{Rejected, StagedAsset};
use crate::states::{FetchAssetsInput, FetchAssetsOutput, RunId};
use crate::store::{Store, StoreExt};

/// Takes the run's lease, pages every asset out of Lansweeper, normalises it and stages
/// it in chunks; `progress` hears (assets seen, total when known) after each page. When
/// another run holds the lease, ends at once as skipped.
pub async fn fetch_assets<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchAssetsInput,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<FetchAssetsOutput, PipelineError> {
    let run_id = input.run_id.clone().unwrap_or_else(RunId::generate);
    if !settings.dry_run
        && let Some(holder) = lease::acquire(store, &run_id).await?
    {
        return skipped(store, settings, run_id, holder).await;
    }
    let mapping = mapping::in_force(
        store,
        Some(lansweeper.site_id()),
        Some(&settings.target_company),
    )
    .await?;
    mapping.check()?;
    let lansweeper = &lansweeper.with_window_share(quota::SYNC_SHARE);
    quota::load(store, lansweeper).await?;
    let meter = CallMeter::lansweeper(lansweeper);
    let mut staging = Staging::new(&run_id, settings);
    let mut sites = Vec::with_capacity(mapping.sites.len());
    let single_site = mapping.sites.len() == 1;
    for (site_index, site) in mapping.sites.iter().enumerate() {
        let client = lansweeper.for_site(&site.site);
        let fetched = staging
            .stage_site(store, &client, site_index, site, single_site, &mut progress)
            .await?;
        sites.push(fetched);
    }
    progress(staging.seen, Some(staging.seen));
    let staged_chunks = store
        .put_parts(
            &layout::staged_index(&run_id),
            &staging.chunks,
            settings.staging_ttl,
        )
        .await?;
    let name_list: Vec<(ReferenceKind, &String)> = staging
        .names
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
    quota::save_after_fetch(store, lansweeper, api_calls.lansweeper).await?;
    let record = FetchRecord {
        assets: staging.seen,
        rejected: Vec::new(),
        sites,
        chunks: staged_chunks,
        references: reference_parts,
        companies: mapping.companies(),
        api_calls,
        skipped_for: None,
    };
    store
        .put(
            &layout::fetch_record(&run_id),
            &record,
            settings.staging_ttl,
        )
        .await?;
    tracing::info!(%run_id, assets = staging.seen, rejected = staging.rejected, unmapped = staging.unmapped, chunks = staging.chunks.len(), "assets staged");
    Ok(FetchAssetsOutput {
        run_id: run_id.clone(),
        staged: staging.staged,
        assets: staging.seen,
        rejected: staging.rejected,
        unmapped: staging.unmapped,
        reference_names: name_list.len() as u64,
        api_calls,
        skipped_for: None,
    })
}

/// A run that found the lease held: recorded as skipped, having read and written nothing.
async fn skipped<S: Store>(
    store: &S,
    settings: &SyncSettings,
    run_id: RunId,
    holder: LeaseHolder,
) -> Result<FetchAssetsOutput, PipelineError> {
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
    Ok(FetchAssetsOutput {
        run_id,
        skipped_for: Some(holder),
        ..FetchAssetsOutput::default()
    })
}

/// What the fetch has staged so far, over the sites read.
struct Staging<'a> {
    run_id: &'a str,
    settings: &'a SyncSettings,
    names: ReferenceNames,
    /// Assets Lansweeper listed.
    seen: u64,
    /// The staged parts' keys.
    chunks: Vec<String>,
    staged: u64,
    rejected: u64,
    unmapped: u64,
}

/// What one page of a site's assets came to.
#[derive(Default)]
struct PageOutcome {
    staged: Vec<StagedAsset>,
    rejected: Vec<Rejected>,
    unmapped: Vec<Rejected>,
}

impl<'a> Staging<'a> {
    fn new(run_id: &'a str, settings: &'a SyncSettings) -> Self {
        let mut names = ReferenceNames::default();
        // The status retired configurations get: created with the other references if
        // missing.
        names.add(ReferenceKind::Status, Some(&settings.retire.retired_status));
        Self {
            run_id,
            settings,
            names,
            seen: 0,
            chunks: Vec::new(),
            staged: 0,
            rejected: 0,
            unmapped: 0,
        }
    }

    /// Pages one site's assets into the store; a site the token lost access to fails
    /// alone, with the reason, and the other clients go on.
    async fn stage_site<S: Store>(
        &mut self,
        store: &S,
        client: &LansweeperClient,
        site_index: usize,
        site: &SiteMapping,
        single_site: bool,
        progress: &mut impl FnMut(u64, Option<u64>),
    ) -> Result<SiteFetch, PipelineError> {
        let (run_id, ttl) = (self.run_id, self.settings.staging_ttl);
        let mut outcome = PageOutcome::default();
        let mut site_assets = 0u64;
        let mut pager = client.asset_pager(ASSET_PATHS, None)?;
        let mut site_error = None;
        let mut listed: HashSet<String> = HashSet::new();
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(LansweeperError::Forbidden(reason)) => {
                    tracing::warn!(%run_id, site = %site.site, %reason, "site not readable");
                    site_error = Some(site_refused(&site.site, &reason));
                    break;
                }
                Err(other) => return Err(other.into()),
            };
            // A listing repeats an asset across pages when the estate changes while it
            // is paged: the asset is the one listed first, never a second asset.
            let listed_before = page.len();
            let page: Vec<Asset> = page
                .into_iter()
                .filter(|a| a.key().is_none_or(|k| listed.insert(k.to_lowercase())))
                .collect();
            if page.len() < listed_before {
                // The listing shifted: an asset may as well have been skipped, so nothing
                // of this site is taken as gone this run.
                tracing::warn!(%run_id, site = %site.site, repeated = listed_before - page.len(), "assets listed again across pages; taken once");
                site_error.get_or_insert_with(|| {
                    format!(
                        "the listing of site {} changed while it was paged (an asset was listed twice)",
                        site.site
                    )
                });
            }
            self.seen += page.len() as u64;
            site_assets += page.len() as u64;
            self.sort_page(&page, site, &mut outcome);
            let staged = std::mem::take(&mut outcome.staged);
            self.staged += staged.len() as u64;
            if !staged.is_empty() {
                let prefix = layout::staged_page(run_id, site_index, pager.stats.requests);
                self.chunks
                    .extend(store.put_parts(&prefix, &staged, ttl).await?);
            }
            // The total is known per site; across several, only once the last is read.
            progress(self.seen, pager.stats.total.filter(|_| single_site));
        }
        self.rejected += outcome.rejected.len() as u64;
        self.unmapped += outcome.unmapped.len() as u64;
        if !outcome.unmapped.is_empty() {
            tracing::info!(%run_id, site = %site.site, unmapped = outcome.unmapped.len(), "assets no mapping rule sends to a company");
        }
        Ok(SiteFetch {
            site: site.site.clone(),
            companies: site.companies().map(str::to_string).collect(),
            error: site_error,
            assets: site_assets,
            rejected: store
                .put_parts(
                    &layout::site_rejected(run_id, site_index),
                    &outcome.rejected,
                    ttl,
                )
                .await?,
            unmapped: store
                .put_parts(
                    &layout::site_unmapped(run_id, site_index),
                    &outcome.unmapped,
                    ttl,
                )
                .await?,
        })
    }

    /// Each asset of a page: to its company, staged with its reference names; unmapped;
    /// or refused with the reason.
    fn sort_page(&mut self, page: &[Asset], site: &SiteMapping, outcome: &mut PageOutcome) {
        for asset in page {
            let company = match site.destination(&RuleValues::of(asset)) {
                Destination::Company(company) => company,
                Destination::Unmapped(reason) => {
                    outcome.unmapped.push(Rejected {
                        asset_key: asset.key().unwrap_or_default(),
                        reason,
                    });
                    continue;
                }
            };
            match StagedAsset::from_lansweeper(asset)
                .and_then(|staged| translated(staged, self.settings))
            {
                Ok(mut asset) => {
                    let names = &mut self.names;
                    names.add(ReferenceKind::Location, asset.location.as_deref());
                    names.add(ReferenceKind::Manufacturer, asset.manufacturer.as_deref());
                    names.add(ReferenceKind::Status, asset.state.as_deref());
                    names.add(ReferenceKind::Type, Some(&asset.asset_type));
                    asset.site.clone_from(&site.site);
                    asset.company = company;
                    outcome.staged.push(asset);
                }
                Err(reason) => outcome.rejected.push(reason),
            }
        }
    }
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
