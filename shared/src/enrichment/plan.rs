//! The enrichment's first invocation: reads the linked configurations, their agreements
//! and tickets, and the assets' current values, and stores one edit per asset whose
//! values changed, so a run over unchanged data writes nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::values::{FIELDS, desired_values};
use crate::calls::{ApiCalls, CallMeter};
use crate::clock::epoch_seconds;
use crate::connectwise::endpoint::{AGREEMENTS, CONFIGURATIONS, TICKETS};
use crate::connectwise::known::{self, Known, KnownRecords, RecordText, Refresh, Scope};
use crate::connectwise::linked::{
    AGREEMENT_FIELDS, LINK_CAPTION, TICKET_FIELDS, keep_link_only, linked_asset_key,
};
use crate::connectwise::{ConnectWiseClient, Field, ListQuery, MAX_CONDITION_CHARS};
use crate::error::PipelineError;
use crate::lansweeper::{Asset, LansweeperClient, LansweeperError, site_refused};
use crate::layout::{self, KNOWN_TTL};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

/// One `editAsset`: the asset and the values that change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetEdit {
    /// The Lansweeper site the asset is in (empty: the connection's own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
    pub asset_key: String,
    /// Lansweeper field key → value.
    pub values: Vec<(String, String)>,
    /// Each field's name and the value the asset showed when the plan was made (empty:
    /// none), one per value and in its order: the run's trail, and what its revert
    /// writes back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<(String, String)>,
    /// The asset's name and page in Lansweeper, as read with its values.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What the first invocation planned, as the later ones and the report read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnrichPlan {
    /// Everything was read from ConnectWise again (first run, weekly, scope changed);
    /// otherwise only what changed since the last enrichment.
    #[serde(default)]
    pub full_read: bool,
    pub assets: u64,
    pub unchanged: u64,
    pub edits: Vec<String>,
    /// How many edits each part of `edits` holds (absent from a plan stored before they
    /// were counted: then its parts are read whole).
    #[serde(default)]
    pub edit_counts: Vec<usize>,
    pub total: usize,
    /// Keys of the parts holding the assets that cannot be enriched, with why.
    pub failed: Vec<String>,
    /// The mapped sites that could not be read, with why: not enriched this run.
    #[serde(default)]
    pub sites_unread: Vec<String>,
    /// Requests of the planning invocations before the one that finished the plan.
    #[serde(default)]
    pub api_calls: ApiCalls,
}

/// Makes sure every field exists; answers name → field key.
pub async fn ensure_fields(
    lansweeper: &LansweeperClient,
) -> Result<HashMap<String, String>, LansweeperError> {
    let mut keys = existing_fields(lansweeper).await?;
    for (name, field_type) in FIELDS {
        if !keys.contains_key(*name) {
            let created = lansweeper.create_custom_field(name, *field_type).await?;
            keys.insert((*name).to_string(), created.key);
        }
    }
    Ok(FIELDS
        .iter()
        .filter_map(|(name, _)| Some(((*name).to_string(), keys.get(*name)?.clone())))
        .collect())
}

/// Lansweeper's custom fields, lower-cased name → field key.
async fn existing_fields(
    lansweeper: &LansweeperClient,
) -> Result<HashMap<String, String>, LansweeperError> {
    Ok(lansweeper
        .custom_fields()
        .await?
        .into_iter()
        .map(|f| (f.name.to_lowercase(), f.key))
        .collect())
}

/// What the last enrichment learned: configurations, agreements and tickets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownHead {
    /// When everything was last read whole (epoch seconds).
    full_at: u64,
    configurations: KnownPart,
    agreements: KnownPart,
    tickets: KnownPart,
}

/// One kind's records, in parts, with where its next refresh starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownPart {
    parts: Vec<String>,
    scope: String,
    newest: Option<String>,
    /// Parts of the records read whose `/configurations` are still to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
}

async fn load_part<S: Store>(store: &S, part: &KnownPart) -> Result<KnownRecords, PipelineError> {
    let records: Vec<(i64, Known)> = store.get_parts(&part.parts).await?;
    Ok(KnownRecords {
        records: records.into_iter().collect(),
        scope: part.scope.clone(),
        newest: part.newest.clone(),
        pending: store.get_parts(&part.pending).await?,
    })
}

/// The tickets the enrichment knows, each with its configurations; none when it knows
/// none yet or its read of them is unfinished.
///
/// # Errors
/// The store cannot be read.
pub async fn known_tickets<S: Store>(store: &S) -> Result<KnownRecords, PipelineError> {
    let Some(head) = store.get::<KnownHead>(layout::KNOWN).await? else {
        return Ok(KnownRecords::default());
    };
    let tickets = load_part(store, &head.tickets).await?;
    Ok(if tickets.is_complete() {
        tickets
    } else {
        KnownRecords::default()
    })
}

/// How many known tickets each configuration has, read a part at a time: only the
/// counts are held, never the tickets (a run's match names merges at 100,000 assets).
/// Empty when the enrichment knows no tickets yet or its read of them is unfinished.
///
/// # Errors
/// The store cannot be read.
pub async fn ticket_counts<S: Store>(store: &S) -> Result<HashMap<i64, usize>, PipelineError> {
    /// A known ticket as far as counting goes.
    #[derive(Deserialize)]
    struct Attached {
        #[serde(default)]
        configurations: Vec<i64>,
    }
    let mut counts: HashMap<i64, usize> = HashMap::new();
    let Some(head) = store.get::<KnownHead>(layout::KNOWN).await? else {
        return Ok(counts);
    };
    let pending: Vec<serde::de::IgnoredAny> = store.get_parts(&head.tickets.pending).await?;
    if !pending.is_empty() {
        return Ok(counts);
    }
    for key in &head.tickets.parts {
        let part: Vec<(i64, Attached)> = store.require(key).await?;
        for (_, ticket) in part {
            for configuration in ticket.configurations {
                *counts.entry(configuration).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

async fn save_part<S: Store>(
    store: &S,
    kind: &str,
    known: &KnownRecords,
) -> Result<KnownPart, PipelineError> {
    let records: Vec<(&i64, &Known)> = known.records.iter().collect();
    Ok(KnownPart {
        parts: store
            .put_parts(&layout::known_records(kind), &records, KNOWN_TTL)
            .await?,
        scope: known.scope.clone(),
        newest: known.newest.clone(),
        pending: store
            .put_parts(&layout::known_pending(kind), &known.pending, KNOWN_TTL)
            .await?,
    })
}

/// The linked configurations, and the agreements and tickets by configuration: what
/// changed since the last enrichment is read, the rest comes from the store; everything
/// is read whole on the first run and every `ENRICH_FULL_REFRESH_DAYS`. A read that
/// `until` stops halfway is saved as it is and answers `None`: the next invocation (or
/// run) goes on from there.
async fn linked_records<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    until: Option<Instant>,
) -> Result<Option<Linked>, PipelineError> {
    let head: Option<KnownHead> = store.get(layout::KNOWN).await?;
    let now = epoch_seconds();
    let full = head
        .as_ref()
        .is_none_or(|h| now.saturating_sub(h.full_at) >= settings.enrich_full_refresh.as_secs());
    let head = head.unwrap_or_default();
    let mut configurations = load_part(store, &head.configurations).await?;
    let mut agreements = load_part(store, &head.agreements).await?;
    let mut tickets = load_part(store, &head.tickets).await?;
    // A full read still being finished is not started again.
    let full = full && agreements.is_complete() && tickets.is_complete();

    let linked = Scope {
        path: CONFIGURATIONS,
        fields: &["id", "name", "company/id", "sla", "customFields"],
        queries: vec![ListQuery {
            custom_field_conditions: Some(format!("caption=\"{LINK_CAPTION}\" AND value != null")),
            ..ListQuery::default()
        }],
        attachments: false,
        keep: keep_link_only,
    };
    let mut outcomes =
        vec![known::refresh(connectwise, &linked, &mut configurations, full, until).await?];
    let companies: BTreeSet<i64> = configurations
        .records
        .values()
        .filter_map(|k| k.record.value().get("company")?.get("id")?.as_i64())
        .collect();
    let companies: Vec<i64> = companies.into_iter().collect();
    let by_company: Vec<ListQuery> = if companies.is_empty() {
        Vec::new()
    } else {
        Field::new("company/id")?
            .is_in_chunks(companies, MAX_CONDITION_CHARS)
            .iter()
            .map(|c| ListQuery::with_conditions(c.as_str()))
            .collect()
    };
    for (path, fields, known) in [
        (AGREEMENTS, AGREEMENT_FIELDS, &mut agreements),
        (TICKETS, TICKET_FIELDS, &mut tickets),
    ] {
        let scope = Scope {
            path,
            fields,
            queries: by_company.clone(),
            attachments: true,
            keep: known::whole,
        };
        outcomes.push(known::refresh(connectwise, &scope, known, full, until).await?);
    }
    let unchanged = outcomes.iter().all(|o| {
        *o == Refresh::Changes {
            changed: 0,
            deleted: 0,
        }
    });
    if !unchanged {
        let saved = KnownHead {
            // When the full read began: one that takes several invocations is finished,
            // not begun again, by the next.
            full_at: if full { now } else { head.full_at },
            configurations: save_part(store, "configurations", &configurations).await?,
            agreements: save_part(store, "agreements", &agreements).await?,
            tickets: save_part(store, "tickets", &tickets).await?,
        };
        store.put(layout::KNOWN, &saved, KNOWN_TTL).await?;
    }
    let complete = agreements.is_complete() && tickets.is_complete();
    tracing::info!(full, complete, outcomes = ?outcomes, "ConnectWise's side of the enrichment read");
    // A full read finished by this invocation was begun by an earlier one.
    let resumed = outcomes
        .iter()
        .any(|o| matches!(o, Refresh::Resumed { .. }));
    Ok(complete.then_some(Linked {
        configurations,
        agreements,
        tickets,
        full: full || resumed,
    }))
}

/// ConnectWise's side of an enrichment, each record held once.
struct Linked {
    configurations: KnownRecords,
    agreements: KnownRecords,
    tickets: KnownRecords,
    /// Everything was read whole.
    full: bool,
}

/// The enrichment's fields of one site, name → key; created unless `dry_run` (which
/// creates nothing: a field that does not exist yet gets its name as key).
async fn site_field_keys(
    lansweeper: &LansweeperClient,
    dry_run: bool,
) -> Result<HashMap<String, String>, LansweeperError> {
    if !dry_run {
        return ensure_fields(lansweeper).await;
    }
    let existing = existing_fields(lansweeper).await?;
    Ok(FIELDS
        .iter()
        .map(|(n, _)| {
            (
                (*n).to_string(),
                existing
                    .get(*n)
                    .cloned()
                    .unwrap_or_else(|| (*n).to_string()),
            )
        })
        .collect())
}

/// Edits held before they are stored: a run's plan is stored as it is made, never held
/// whole, whatever the size of the estate.
const EDITS_HELD: usize = 5_000;

/// The agreements and tickets of each configuration, by configuration id.
struct Related<'a> {
    agreements: HashMap<i64, Vec<&'a RecordText>>,
    tickets: HashMap<i64, Vec<&'a RecordText>>,
}

/// A field whose value changes: its key, the value it gets, its name and the value it
/// had.
struct Changed {
    key: String,
    value: String,
    name: String,
    before: String,
}

/// The fields of `asset` whose value differs from what its configuration (`linked`, at
/// most one) says; or why the asset cannot be enriched.
fn changes_of(
    asset: &Asset,
    linked: &[(i64, &RecordText)],
    related: &Related<'_>,
    field_keys: &HashMap<String, String>,
    configuration_url: impl Fn(i64) -> String,
) -> Result<Vec<Changed>, String> {
    if linked.len() > 1 {
        let ids: Vec<String> = linked.iter().map(|(id, _)| id.to_string()).collect();
        return Err(format!(
            "linked from several configurations ({}); resolve in ConnectWise",
            ids.join(", ")
        ));
    }
    let parsed = |records: Option<&Vec<&RecordText>>| -> Vec<Value> {
        records.into_iter().flatten().map(|r| r.value()).collect()
    };
    let configuration = linked.first().map(|(id, c)| (*id, c.value()));
    let id = configuration.as_ref().map_or(-1, |(id, _)| *id);
    let desired = desired_values(
        configuration.as_ref().map(|(_, c)| c),
        &parsed(related.agreements.get(&id)),
        &parsed(related.tickets.get(&id)),
        configuration_url,
    );
    let current: HashMap<String, String> = asset
        .values_at("assetCustom.fields")
        .into_iter()
        .filter_map(|f| {
            Some((
                f.get("fieldKey")?.as_str()?.to_string(),
                f.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect();
    Ok(desired
        .iter()
        .filter_map(|(name, value)| {
            let field_key = field_keys.get(*name)?;
            let now = current.get(field_key).map_or("", String::as_str);
            (now.trim() != value.trim()).then(|| Changed {
                key: field_key.clone(),
                value: value.clone(),
                name: (*name).to_string(),
                before: now.to_string(),
            })
        })
        .collect())
}

/// What a page's assets are checked against: the linked configurations by asset, their
/// agreements and tickets, the site's field keys, the link into ConnectWise.
type PageContext<'a, 'r> = (
    &'a HashMap<String, Vec<(i64, &'r RecordText)>>,
    &'a Related<'r>,
    &'a HashMap<String, String>,
    &'a dyn Fn(i64) -> String,
);

/// The run's edits as they are planned, stored every [`EDITS_HELD`] and at the end of
/// each site: what a planning invocation stopped at its deadline hands to the next.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Edits {
    #[serde(skip)]
    held: Vec<AssetEdit>,
    /// The stored parts' keys, and how many edits each holds.
    parts: Vec<String>,
    #[serde(default)]
    part_counts: Vec<usize>,
    total: usize,
    #[serde(skip)]
    failed: Vec<Rejected>,
    /// Where `failed` is stored (at a checkpoint).
    failed_parts: Vec<String>,
    unchanged: u64,
    assets: u64,
    /// Mapped sites planned whole, in the mapping's order.
    sites_done: usize,
    sites_unread: Vec<String>,
    /// ConnectWise's side was read whole for this plan.
    full_read: bool,
    /// Requests of the planning invocations that stopped before the plan was whole.
    api_calls: ApiCalls,
    /// Where the site being planned when an invocation stopped goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site_cursor: Option<String>,
    /// The counts when that site began: what is kept should its cursor be refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site_start: Option<Counts>,
}

/// The plan's counts at a moment, to go back to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    parts: usize,
    total: usize,
    failed: usize,
    unchanged: u64,
    assets: u64,
}

impl Edits {
    /// Each asset of a page: an edit of its fields that differ, unchanged, or failed.
    fn plan_page(&mut self, site: &str, assets: &[Asset], context: PageContext<'_, '_>) {
        let (by_asset, related, field_keys, configuration_url) = context;
        self.assets += assets.len() as u64;
        for asset in assets {
            let Some(asset_key) = asset.key() else {
                continue;
            };
            let linked = by_asset
                .get(&asset_key.to_lowercase())
                .map_or(&[][..], Vec::as_slice);
            match changes_of(asset, linked, related, field_keys, configuration_url) {
                Ok(changes) if changes.is_empty() => self.unchanged += 1,
                Ok(changes) => self.held.push(AssetEdit {
                    site: site.to_string(),
                    name: asset.text("assetBasicInfo.name").unwrap_or_default(),
                    url: asset.text("url"),
                    asset_key,
                    before: changes
                        .iter()
                        .map(|c| (c.name.clone(), c.before.clone()))
                        .collect(),
                    values: changes.into_iter().map(|c| (c.key, c.value)).collect(),
                }),
                Err(reason) => self.failed.push(Rejected { asset_key, reason }),
            }
        }
    }

    /// Stores the edits held.
    async fn store<S: Store>(
        &mut self,
        store: &S,
        run_id: &str,
        ttl: std::time::Duration,
    ) -> Result<(), PipelineError> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.total += self.held.len();
        let key = layout::enrich_edits(run_id, self.parts.len());
        let held = std::mem::take(&mut self.held);
        for (part, count) in store.put_counted_parts(&key, &held, ttl).await? {
            self.parts.push(part);
            self.part_counts.push(count);
        }
        Ok(())
    }

    fn counts(&self) -> Counts {
        Counts {
            parts: self.parts.len(),
            total: self.total,
            failed: self.failed.len(),
            unchanged: self.unchanged,
            assets: self.assets,
        }
    }

    /// Back to `counts`: what was planned of a site since is dropped.
    fn back_to(&mut self, counts: Counts) {
        self.held.clear();
        self.parts.truncate(counts.parts);
        self.part_counts.truncate(counts.parts);
        self.total = counts.total;
        self.failed.truncate(counts.failed);
        self.unchanged = counts.unchanged;
        self.assets = counts.assets;
    }

    /// Where the last planning invocation of the run stopped (nothing planned yet when
    /// none did).
    async fn resumed<S: Store>(store: &S, run_id: &str) -> Result<Self, PipelineError> {
        let Some(mut edits) = store.get::<Self>(&layout::enrich_planning(run_id)).await? else {
            return Ok(Self::default());
        };
        edits.failed = store.get_parts(&edits.failed_parts).await?;
        Ok(edits)
    }

    /// Stores the edits held and where planning stands, for the next invocation.
    async fn checkpoint<S: Store>(
        &mut self,
        store: &S,
        run_id: &str,
        ttl: std::time::Duration,
    ) -> Result<(), PipelineError> {
        self.store(store, run_id, ttl).await?;
        self.failed_parts = store
            .put_parts(&layout::enrich_plan_failed(run_id), &self.failed, ttl)
            .await?;
        store
            .put(&layout::enrich_planning(run_id), &*self, ttl)
            .await?;
        Ok(())
    }
}

/// How planning went in one invocation.
pub(crate) enum Planned {
    Whole(EnrichPlan),
    /// Stopped at the deadline (or for Lansweeper's quota: wait this long first); the
    /// next invocation goes on where this one stopped.
    Unfinished {
        wait_seconds: u64,
    },
}

/// How one site's planning went.
enum SitePlanned {
    Whole,
    /// The token cannot read it (why): not enriched this run.
    Unread(String),
    /// Stopped before its end; nothing of it is kept.
    Stopped {
        wait_seconds: u64,
    },
}

/// Reads both sides and stores the edits of the run, for every mapped site, until
/// `until`: a plan left unfinished is taken up by the next invocation where it stopped
/// (ConnectWise's attachments read so far, the sites planned whole).
pub(crate) async fn plan<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    until: Option<Instant>,
    meter: &CallMeter<'_>,
) -> Result<Planned, PipelineError> {
    let ttl = settings.staging_ttl;
    let mut edits = Edits::resumed(store, run_id).await?;
    let stopped = |mut edits: Edits, wait_seconds| async move {
        edits.api_calls += meter.read();
        edits.checkpoint(store, run_id, ttl).await?;
        Ok::<Planned, PipelineError>(Planned::Unfinished { wait_seconds })
    };
    let Some(linked) = linked_records(connectwise, store, settings, until).await? else {
        return stopped(edits, 0).await;
    };
    edits.full_read |= linked.full;
    let related = Related {
        agreements: linked.agreements.by_configuration(),
        tickets: linked.tickets.by_configuration(),
    };
    let mut by_asset: HashMap<String, Vec<(i64, &RecordText)>> = HashMap::new();
    for (&id, known) in &linked.configurations.records {
        if let Some(link) = linked_asset_key(&known.record.value()) {
            by_asset
                .entry(link.to_lowercase())
                .or_default()
                .push((id, &known.record));
        }
    }
    let mapping = crate::mapping::in_force(
        store,
        Some(lansweeper.site_id()),
        Some(&settings.target_company),
    )
    .await?;
    let configuration_url = |id| connectwise.configuration_url(id);
    let configuration_url: &dyn Fn(i64) -> String = &configuration_url;
    for site in mapping.sites.iter().skip(edits.sites_done) {
        let context = (&by_asset, &related, configuration_url);
        let site_lansweeper = lansweeper.for_site(&site.site);
        match plan_site(
            &site_lansweeper,
            store,
            settings,
            run_id,
            &mut edits,
            context,
            until,
        )
        .await?
        {
            SitePlanned::Whole => {}
            SitePlanned::Unread(reason) => {
                tracing::warn!(%run_id, site = %site.site, %reason, "site not readable; not enriched");
                edits.sites_unread.push(site_refused(&site.site, &reason));
            }
            SitePlanned::Stopped { wait_seconds } => return stopped(edits, wait_seconds).await,
        }
        edits.sites_done += 1;
        edits.site_cursor = None;
        edits.site_start = None;
        edits.checkpoint(store, run_id, ttl).await?;
    }
    edits.store(store, run_id, ttl).await?;
    let plan = EnrichPlan {
        full_read: edits.full_read,
        assets: edits.assets,
        unchanged: edits.unchanged,
        total: edits.total,
        edits: edits.parts,
        edit_counts: edits.part_counts,
        failed: store
            .put_parts(&layout::enrich_plan_failed(run_id), &edits.failed, ttl)
            .await?,
        sites_unread: edits.sites_unread,
        api_calls: edits.api_calls,
    };
    store.put(&layout::enrich_plan(run_id), &plan, ttl).await?;
    let unchanged = plan.unchanged;
    tracing::info!(%run_id, assets = plan.assets, edits = plan.total, unchanged, "enrichment planned");
    Ok(Planned::Whole(plan))
}

/// What a site's pages are checked against: the linked configurations by asset, their
/// agreements and tickets, the link into ConnectWise.
type SiteContext<'a, 'r> = (
    &'a HashMap<String, Vec<(i64, &'r RecordText)>>,
    &'a Related<'r>,
    &'a dyn Fn(i64) -> String,
);

/// One site's edits, page by page, until `until` (or until Lansweeper's quota would
/// make the next page wait past it): a site stopped halfway goes on from its cursor in
/// the next invocation. At least one page a call, so a deadline already past still
/// makes progress.
async fn plan_site<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    edits: &mut Edits,
    context: SiteContext<'_, '_>,
    until: Option<Instant>,
) -> Result<SitePlanned, PipelineError> {
    let (by_asset, related, configuration_url) = context;
    // Custom fields are site-wide: each site has its own, with its own keys.
    let field_keys = match site_field_keys(lansweeper, settings.dry_run).await {
        Ok(keys) => keys,
        Err(LansweeperError::Forbidden(reason)) => return Ok(SitePlanned::Unread(reason)),
        Err(other) => return Err(other.into()),
    };
    // The name and page only for the run's trail: in the same request.
    let paths = [
        "key",
        "url",
        "assetBasicInfo.name",
        "assetCustom.fields.fieldKey",
        "assetCustom.fields.value",
    ];
    let mut pages = lansweeper.asset_pager(&paths, None)?;
    let mut resumed = edits.site_cursor.take();
    if let Some(cursor) = &resumed {
        pages = pages.resume_at(cursor);
    } else {
        edits.site_start = Some(edits.counts());
    }
    let mut planned_pages = 0;
    loop {
        if let Some(until) = until {
            let wait = lansweeper.wait_before_next().await;
            let now = Instant::now();
            // Stopped only where the next invocation can go on: before the first page, or
            // at a cursor (a site read to its end is finished here).
            let resumable = planned_pages == 0 || pages.cursor().is_some();
            let late =
                (planned_pages > 0 && now >= until) || (!wait.is_zero() && now + wait >= until);
            if resumable && late {
                edits.site_cursor = pages.cursor().map(str::to_string);
                // A wait under a second is still a wait: handed back as one.
                let wait_seconds = if wait.is_zero() {
                    0
                } else {
                    lansweeper.quota_seconds(wait)
                };
                return Ok(SitePlanned::Stopped { wait_seconds });
            }
        }
        let assets = match pages.next_page().await {
            Ok(Some(assets)) => assets,
            Ok(None) => return Ok(SitePlanned::Whole),
            Err(LansweeperError::Forbidden(reason)) => return Ok(SitePlanned::Unread(reason)),
            // The cursor an earlier invocation stopped at is refused (expired): the site
            // is planned again from its start, what was planned of it dropped.
            Err(LansweeperError::GraphQl { .. }) if resumed.take().is_some() => {
                tracing::warn!(%run_id, site = lansweeper.site_id(), "cursor refused; site planned again");
                if let Some(start) = edits.site_start {
                    edits.back_to(start);
                }
                pages = lansweeper.asset_pager(&paths, None)?;
                continue;
            }
            // Refused for rate past the retries (another user of the token): stopped at
            // this page, as at a deadline, for the next invocation after the wait.
            Err(error)
                if error.rate_limited_for().is_some()
                    && (planned_pages == 0 || pages.cursor().is_some()) =>
            {
                edits.site_cursor = pages.cursor().map(str::to_string);
                let wait = error.rate_limited_for().unwrap_or_default();
                tracing::warn!(%run_id, wait_s = wait.as_secs(), "Lansweeper refused for rate; planning goes on after the wait");
                return Ok(SitePlanned::Stopped {
                    wait_seconds: lansweeper.quota_seconds(wait),
                });
            }
            Err(other) => return Err(other.into()),
        };
        resumed = None;
        planned_pages += 1;
        let site = lansweeper.site_id().to_string();
        let page_context = (by_asset, related, &field_keys, configuration_url);
        edits.plan_page(&site, &assets, page_context);
        if edits.held.len() >= EDITS_HELD {
            edits.store(store, run_id, settings.staging_ttl).await?;
        }
    }
}
