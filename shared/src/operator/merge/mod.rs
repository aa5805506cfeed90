//! `lscw duplicates` and `lscw merge`: configurations that are one device, found and
//! merged into the one kept. A merge attaches the dropped configurations' tickets to the
//! kept one, makes the kept one the asset's (its link), and retires each dropped one
//! (status and active flag, as the sync retires) under a name that says where it went —
//! never deletes. Under the sync's lease, held by the retirement guard, and exactly once:
//! every write is looked at before it is made again.

mod find;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::epoch_seconds;
use crate::connectwise::linked::linked_asset_key;
use crate::connectwise::{ConnectWiseClient, ConnectWiseError, Field, ListQuery, endpoint};
use crate::duplicates::{self, Group};
use crate::error::PipelineError;
use crate::lansweeper::LansweeperClient;
use crate::lease;
use crate::matching::{self, Fields};
use crate::normalize;
use crate::references::{self, EnsureOptions, ReferenceKind, ReferenceNames, name_key};
use crate::settings::SyncSettings;
use crate::store::{Store, StoreExt};
use crate::{custom_fields, layout, overrides};

/// The groups of duplicates of the mapping's companies (or of `company` alone), each with
/// its Lansweeper asset when one matches it.
///
/// # Errors
/// No mapping, an unknown company, or either API fails past its retries.
pub async fn find_duplicates<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    company: Option<&str>,
) -> Result<Vec<Group>, PipelineError> {
    let (mapping, company_ids) =
        find::companies(connectwise, store, settings, lansweeper, company).await?;
    let companies: BTreeSet<i64> = company_ids.values().copied().collect();
    let configurations = find::configurations(connectwise, &companies).await?;
    // Tickets are read only for the companies that have duplicates.
    let with_duplicates: BTreeSet<i64> = find::group(&configurations, settings, &HashMap::new())
        .iter()
        .map(|g| g.company)
        .collect();
    if with_duplicates.is_empty() {
        return Ok(Vec::new());
    }
    let tickets = find::tickets_by_configuration(connectwise, store, &with_duplicates).await?;
    let mut groups = find::group(&configurations, settings, &tickets);
    // Each company as the operator spells it (the ids are keyed by a comparable form).
    let spelled = company.map_or_else(|| mapping.companies(), |c| vec![c.to_string()]);
    let names: HashMap<i64, String> = spelled
        .into_iter()
        .filter_map(|name| Some((*company_ids.get(&name_key(&name))?, name)))
        .collect();
    for group in &mut groups {
        if let Some(name) = names.get(&group.company) {
            group.company_name.clone_from(name);
        }
    }
    find::find_assets(lansweeper, &mapping, &company_ids, &mut groups).await?;
    Ok(groups)
}

/// One merge: `drop` into `keep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeRequest {
    pub keep: i64,
    pub drop: Vec<i64>,
    /// The asset the kept configuration is linked to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_key: Option<String>,
    /// The dropped configurations' tickets, when read with their group: not read again
    /// (each is looked at before it is attached anyway).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tickets: BTreeMap<i64, Vec<i64>>,
}

impl MergeRequest {
    /// The merge `lscw duplicates` suggests for a group (none when no configuration is
    /// to be kept).
    pub fn suggested(group: &Group) -> Option<Self> {
        let keep = group.keep?;
        Some(Self {
            keep,
            drop: group.drops(),
            asset_key: group.asset.as_ref().map(|a| a.key.clone()),
            tickets: group
                .members
                .iter()
                .filter(|m| m.id != keep)
                .map(|m| (m.id, m.ticket_ids.clone()))
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Read and plan; write nothing.
    pub dry_run: bool,
    /// Past the retirement guard's limits.
    pub approve: bool,
}

/// One configuration merged (or, in a dry run, to merge) into another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    pub keep: i64,
    pub drop: i64,
    /// The dropped configuration's tickets, attached to the kept one.
    pub tickets: Vec<i64>,
    /// Of those, the ones the kept configuration had already.
    pub already_attached: usize,
    /// The asset key the kept configuration carries after the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The dropped configuration's new name.
    pub renamed: String,
    /// Merged by an earlier merge: nothing written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_merged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeFailure {
    pub keep: i64,
    pub drop: i64,
    pub reason: String,
}

/// What `lscw merge` did, or would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeReport {
    pub dry_run: bool,
    pub merged: Vec<Merged>,
    pub failed: Vec<MergeFailure>,
    /// Why nothing was written: the guard held more retirements than it lets through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// The name a configuration merged into `keep` takes (ConnectWise's 100 UTF-16 units).
pub fn merged_name(name: &str, keep: i64) -> String {
    let suffix = format!(" (merged into {keep})");
    if name.ends_with(&suffix) {
        return normalize::shorten(name, 100);
    }
    let budget = 100usize.saturating_sub(normalize::cw_len(&suffix));
    format!("{}{suffix}", normalize::shorten(name, budget))
}

/// Merges each request's dropped configurations into its kept one.
///
/// # Errors
/// The configurations cannot be read, another run holds the lease, or the store fails;
/// a merge ConnectWise refuses fails alone, in the report.
pub async fn merge<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    requests: &[MergeRequest],
    options: MergeOptions,
) -> Result<MergeReport, PipelineError> {
    let mut report = MergeReport {
        dry_run: options.dry_run,
        ..MergeReport::default()
    };
    let requests = &with_stopped(store, requests).await?;
    let ids = requests
        .iter()
        .flat_map(|r| std::iter::once(r.keep).chain(r.drop.iter().copied()));
    let read: HashMap<i64, Value> = find::configurations_by_id(connectwise, ids)
        .await?
        .into_iter()
        .map(|c| (matching::configuration_id(&c), c))
        .collect();
    let mut planned: Vec<Planned> = Vec::new();
    for request in requests {
        for drop in &request.drop {
            match plan_one(&read, settings, request, *drop) {
                Ok(Some(one)) => planned.push(one),
                Ok(None) => report.merged.push(Merged {
                    keep: request.keep,
                    drop: *drop,
                    renamed: read
                        .get(drop)
                        .and_then(|c| c.at("name"))
                        .unwrap_or_default(),
                    already_merged: true,
                    ..Merged::default()
                }),
                Err(reason) => report.failed.push(MergeFailure {
                    keep: request.keep,
                    drop: *drop,
                    reason,
                }),
            }
        }
    }
    if planned.is_empty() {
        return Ok(report);
    }
    let companies: BTreeSet<i64> = planned.iter().map(|p| p.company).collect();
    if !options.approve
        && let Some(reason) = settings.retire.guard(
            planned.len() as u64,
            linked_count(connectwise, &companies).await?,
        )
    {
        report.held = Some(format!("{reason}: nothing merged; `--approve` merges them"));
        return Ok(report);
    }
    let mut tickets: HashMap<i64, Vec<i64>> = requests
        .iter()
        .flat_map(|r| r.tickets.iter().map(|(id, t)| (*id, t.clone())))
        .collect();
    let unread: BTreeSet<i64> = planned
        .iter()
        .filter(|p| !tickets.contains_key(&p.drop))
        .map(|p| p.company)
        .collect();
    tickets.extend(find::tickets_by_configuration(connectwise, store, &unread).await?);
    link_targets(
        connectwise,
        lansweeper,
        store,
        settings,
        &read,
        &mut planned,
    )
    .await?;
    for one in &mut planned {
        one.tickets = tickets.get(&one.drop).cloned().unwrap_or_default();
    }
    if options.dry_run {
        report
            .merged
            .extend(planned.iter().map(|p| p.outcome(p.tickets.clone(), 0)));
        return Ok(report);
    }
    let run_id = format!("merge-{}-{:04x}", epoch_seconds(), fastrand::u16(..));
    if let Some(holder) = lease::acquire(store, &run_id).await? {
        return Err(PipelineError::Config(format!(
            "run {} holds the lease; merge when it has ended",
            holder.run_id
        )));
    }
    let work = apply_planned(connectwise, store, settings, requests, &planned, report);
    lease::release_after(store, &run_id, work, |_| true).await
}

/// [`apply`] under the stored plan: the plan first, so a merge stopped from there on is
/// finished by the next one; what is left of it once it ends is what failed midway (the
/// next merge goes on with those).
async fn apply_planned<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    requests: &[MergeRequest],
    planned: &[Planned],
    report: MergeReport,
) -> Result<MergeReport, PipelineError> {
    let stored: Vec<MergeRequest> = requests
        .iter()
        .map(|r| MergeRequest {
            tickets: BTreeMap::new(),
            ..r.clone()
        })
        .collect();
    store
        .put_list(layout::MERGE_PLAN, &stored, layout::KEPT)
        .await?;
    let refused_before = report.failed.len();
    let report = apply(connectwise, store, settings, planned, report).await?;
    let unfinished: Vec<MergeRequest> = report.failed[refused_before..]
        .iter()
        .map(|failed| MergeRequest {
            keep: failed.keep,
            drop: vec![failed.drop],
            asset_key: requests
                .iter()
                .find(|r| r.keep == failed.keep && r.drop.contains(&failed.drop))
                .and_then(|r| r.asset_key.clone()),
            tickets: BTreeMap::new(),
        })
        .collect();
    store
        .put_list(layout::MERGE_PLAN, &unfinished, layout::KEPT)
        .await?;
    Ok(report)
}

/// `requests`, after the merges a stopped `lscw merge` set out to make and did not end
/// (its stored plan): a merge moves the link before it retires, so a search made after a
/// stop may no longer see the merge it left half done.
async fn with_stopped<S: Store>(
    store: &S,
    requests: &[MergeRequest],
) -> Result<Vec<MergeRequest>, PipelineError> {
    let stopped: Vec<MergeRequest> = store
        .get_list(layout::MERGE_PLAN)
        .await?
        .unwrap_or_default();
    let mut all = Vec::with_capacity(stopped.len() + requests.len());
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    for request in stopped.into_iter().chain(requests.iter().cloned()) {
        let drop: Vec<i64> = request
            .drop
            .iter()
            .copied()
            .filter(|drop| seen.insert((request.keep, *drop)))
            .collect();
        if !drop.is_empty() {
            all.push(MergeRequest { drop, ..request });
        }
    }
    Ok(all)
}

/// One dropped configuration's merge, checked.
#[derive(Debug, Clone)]
struct Planned {
    keep: i64,
    drop: i64,
    company: i64,
    /// The dropped configuration's name now.
    name: String,
    /// The asset key each carries.
    keep_link: Option<String>,
    drop_link: Option<String>,
    /// The asset key the kept configuration is to carry.
    link: Option<String>,
    tickets: Vec<i64>,
}

impl Planned {
    fn outcome(&self, tickets: Vec<i64>, already_attached: usize) -> Merged {
        Merged {
            keep: self.keep,
            drop: self.drop,
            tickets,
            already_attached,
            link: self.link.clone().or_else(|| self.keep_link.clone()),
            renamed: merged_name(&self.name, self.keep),
            already_merged: false,
        }
    }
}

/// Checks one merge: `Ok(None)` when an earlier merge did it already.
fn plan_one(
    read: &HashMap<i64, Value>,
    settings: &SyncSettings,
    request: &MergeRequest,
    drop: i64,
) -> Result<Option<Planned>, String> {
    let keep = request.keep;
    let find = |id: i64| {
        read.get(&id)
            .ok_or_else(|| format!("ConnectWise has no configuration {id}"))
    };
    let (kept, dropped) = (find(keep)?, find(drop)?);
    if keep == drop {
        return Err(format!("{keep} is both the one kept and one dropped"));
    }
    let company = |c: &Value| c.at("company.id").and_then(|id| id.parse::<i64>().ok());
    if company(kept) != company(dropped) {
        return Err(format!(
            "{keep} and {drop} belong to different companies: never merged"
        ));
    }
    if settings.retire.is_retired(kept) {
        return Err(format!("{keep}, the one to keep, is retired"));
    }
    let name = dropped.at("name").unwrap_or_default();
    if settings.retire.is_retired(dropped) {
        if name.ends_with(&format!(" (merged into {keep})")) {
            return Ok(None);
        }
        return Err(format!("{drop} is retired already"));
    }
    let key = |c: &Value| linked_asset_key(c).map(|k| k.trim().to_lowercase());
    let (keep_link, drop_link) = (key(kept), key(dropped));
    let asset = request.asset_key.as_ref().map(|k| k.trim().to_lowercase());
    let links: BTreeSet<&String> = [&keep_link, &drop_link, &asset]
        .into_iter()
        .flatten()
        .collect();
    if links.len() > 1 {
        let links: Vec<&str> = links.into_iter().map(String::as_str).collect();
        return Err(format!(
            "linked to different assets ({}): two devices, never merged",
            links.join(", ")
        ));
    }
    let link = links.into_iter().next().cloned();
    Ok(Some(Planned {
        keep,
        drop,
        company: company(kept).unwrap_or(0),
        name,
        link,
        keep_link,
        drop_link,
        tickets: Vec::new(),
    }))
}

/// How many configurations of `companies` are linked: what the guard weighs a merge's
/// retirements against, as it weighs a run's.
async fn linked_count(
    connectwise: &ConnectWiseClient,
    companies: &BTreeSet<i64>,
) -> Result<u64, PipelineError> {
    let mut linked = 0;
    for condition in Field::new("company/id")?.is_in_chunks(
        companies.iter().copied(),
        crate::connectwise::MAX_CONDITION_CHARS,
    ) {
        let query = ListQuery {
            custom_field_conditions: Some(format!(
                "caption=\"{}\" AND value != null",
                matching::link_caption()
            )),
            ..ListQuery::with_conditions(condition.as_str())
        };
        linked += connectwise.count(endpoint::CONFIGURATIONS, &query).await?;
    }
    Ok(linked)
}

/// The asset each kept configuration is to carry when neither configuration does: the
/// Lansweeper asset that shares their serial, MAC address or key. Linked, the kept one
/// is the asset's for good, and the sync no longer sees two configurations for it.
async fn link_targets<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    read: &HashMap<i64, Value>,
    planned: &mut [Planned],
) -> Result<(), PipelineError> {
    let mut groups: Vec<(usize, Group)> = Vec::new();
    for (index, one) in planned.iter().enumerate() {
        if one.link.is_some() {
            continue;
        }
        let pair: Vec<&Value> = [one.keep, one.drop]
            .iter()
            .filter_map(|id| read.get(id))
            .collect();
        if let Some(group) = duplicates::groups(&pair, &HashMap::new()).pop() {
            groups.push((index, group));
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let (mapping, company_ids) =
        find::companies(connectwise, store, settings, lansweeper, None).await?;
    let mut found: Vec<Group> = groups.iter().map(|(_, g)| g.clone()).collect();
    find::find_assets(lansweeper, &mapping, &company_ids, &mut found).await?;
    for ((index, _), group) in groups.iter().zip(found) {
        planned[*index].link = group.asset.map(|a| a.key.to_lowercase());
    }
    Ok(())
}

/// Writes the planned merges: tickets, then the link, then the retirement, so that a
/// merge stopped halfway is finished by the next (the dropped one stays in use, and in
/// its group, until its retirement).
async fn apply<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    planned: &[Planned],
    mut report: MergeReport,
) -> Result<MergeReport, PipelineError> {
    let status = retired_status(connectwise, store, settings).await?;
    let needs_link = planned
        .iter()
        .any(|p| p.link.is_some() || p.drop_link.is_some());
    let field_ids = if needs_link {
        custom_fields::resolve(connectwise, settings).await?
    } else {
        HashMap::new()
    };
    for one in planned {
        match merge_one(connectwise, &field_ids, status, one).await {
            Ok(merged) => report.merged.push(merged),
            Err(error) => {
                tracing::warn!(keep = one.keep, drop = one.drop, %error, "merge failed");
                report.failed.push(MergeFailure {
                    keep: one.keep,
                    drop: one.drop,
                    reason: error.to_string(),
                });
            }
        }
    }
    tracing::info!(
        merged = report.merged.len(),
        failed = report.failed.len(),
        "merges written"
    );
    Ok(report)
}

async fn merge_one(
    connectwise: &ConnectWiseClient,
    field_ids: &HashMap<String, i64>,
    status: i64,
    one: &Planned,
) -> Result<Merged, PipelineError> {
    let mut moved = Vec::new();
    let mut already = 0;
    for ticket in &one.tickets {
        match attach(connectwise, *ticket, one.keep).await? {
            Attached::Now => moved.push(*ticket),
            Attached::Before => {
                moved.push(*ticket);
                already += 1;
            }
            Attached::TicketGone => {}
        }
    }
    if let Some(key) = &one.link
        && one.keep_link.as_ref() != Some(key)
    {
        // Clears the link of every other configuration carrying the key, the dropped
        // one among them.
        overrides::link(connectwise, field_ids, key, one.keep).await?;
    } else if one.drop_link.is_some() {
        overrides::unlink(connectwise, field_ids, one.drop).await?;
    }
    let path = format!("{}/{}", endpoint::CONFIGURATIONS, one.drop);
    connectwise
        .patch(
            &path,
            &json!([
                {"op": "replace", "path": "name", "value": merged_name(&one.name, one.keep)},
                {"op": "replace", "path": "status", "value": {"id": status}},
                {"op": "replace", "path": "activeFlag", "value": false},
            ]),
        )
        .await?;
    Ok(one.outcome(moved, already))
}

enum Attached {
    Now,
    Before,
    TicketGone,
}

/// Attaches a ticket to a configuration, once: what the ticket has is read before each
/// attempt, as an answer lost after ConnectWise saved the attachment leaves it there.
async fn attach(
    connectwise: &ConnectWiseClient,
    ticket: i64,
    configuration: i64,
) -> Result<Attached, ConnectWiseError> {
    let path = format!("{}/{ticket}/configurations", endpoint::TICKETS);
    let query = ListQuery::default().with_fields(&["id"]);
    for attempt in 0..3 {
        let mut attached = false;
        let read = connectwise
            .for_each_page(&path, &query, |page| {
                attached |= page
                    .iter()
                    .any(|c| c.get("id").and_then(Value::as_i64) == Some(configuration));
                Ok(())
            })
            .await;
        match read {
            Ok(_) => {}
            Err(error) if error.status() == Some(404) => return Ok(Attached::TicketGone),
            Err(error) => return Err(error),
        }
        if attached {
            return Ok(if attempt == 0 {
                Attached::Before
            } else {
                Attached::Now
            });
        }
        match connectwise.post(&path, &json!({"id": configuration})).await {
            Ok(_) => return Ok(Attached::Now),
            Err(error) if error.may_have_been_applied() => {
                tracing::info!(ticket, configuration, %error, "attachment's answer lost: looking again");
            }
            Err(error) => return Err(error),
        }
    }
    Err(ConnectWiseError::invalid(
        "configurations",
        format!("ticket {ticket}: the attachment of {configuration} kept losing its answer"),
    ))
}

/// The id of the status retired configurations get (`CW_RETIRED_STATUS`), made when
/// ConnectWise has none, as the sync makes it.
async fn retired_status<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
) -> Result<i64, PipelineError> {
    let mut needed = ReferenceNames::default();
    needed.add(ReferenceKind::Status, Some(&settings.retire.retired_status));
    let ensured = references::ensure(
        connectwise,
        store,
        &needed,
        &EnsureOptions {
            structure_level: settings.structure_level,
            cache_key: layout::reference_cache,
            cache_ttl: settings.reference_ttl,
            dry_run: false,
        },
    )
    .await?;
    ensured
        .ids
        .get(ReferenceKind::Status, &settings.retire.retired_status)
        .ok_or_else(|| {
            PipelineError::Config(format!(
                "ConnectWise has no status {} and it could not be made",
                settings.retire.retired_status
            ))
        })
}
