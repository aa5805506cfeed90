//! `lscw revert RUN`: takes back what a run wrote to ConnectWise, from its audit trail.
//!
//! Each field goes back to its value before the run where ConnectWise still holds what
//! the run wrote; a field changed since is reported and left as it is. What the run
//! retired is active again (its fields back), what it created is retired (never
//! deleted). The revert is a run of its own (`{run}-revert`): planned once, written in
//! batches by `bulk-modify` (a PUT: sent again after a lost answer, it writes the same)
//! under the sync's lease, recorded with its report and trail. A revert that stopped
//! midway goes on where it stopped; a finished one is never written again.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::linked::configurations_linked_to;
use crate::connectwise::{
    ConnectWiseClient, Field, ListQuery, MAX_CONDITION_CHARS, MAX_PAGE_SIZE, endpoint,
};
use crate::error::PipelineError;
use crate::layout::{
    self, BatchRecord, ConflictReport, FetchRecord, MatchRecord, ModifyItem, SectionRecord,
};
use crate::lease;
use crate::matching::{FieldDiff, Fields, LOCATION_NAME, is_fingerprint};
use crate::payload::target_from_label;
use crate::pipeline::{
    BatchInput, Retention, RunReport, bulk_modify, plan as stored_plan, put_batches, record_report,
    report,
};
use crate::references::{self, EnsureOptions, EnsureOutcome, ReferenceKind, ReferenceNames};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::states::RecordReportInput;
use crate::store::{Store, StoreExt};
use crate::trail::{self, Action, RevertMark, System, Trail, TrailEntry};

/// What a revert does, planned or done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revert {
    /// The run reverted.
    pub run_id: String,
    /// The revert's own run.
    pub revert_run_id: String,
    pub dry_run: bool,
    /// The run was reverted already (by this run): nothing was written now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_by: Option<String>,
    /// Configurations whose fields go back to their values before the run (the
    /// reactivations of what it retired among them).
    pub restore: Vec<ModifyItem>,
    /// Configurations the run created, retired.
    pub retire: Vec<ModifyItem>,
    /// Configurations with nothing left to take back.
    pub unchanged: u64,
    /// Fields changed since the run: left as they are.
    pub changed_since: Vec<ConflictReport>,
    pub failed: Vec<Rejected>,
    /// The retirement guard's verdict on the creations to retire (`--approve` passes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// The revert run's report, once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RunReport>,
}

/// Reverts `run_id`'s writes to ConnectWise; with `dry_run`, only says what it would
/// write. More retirements than the guard allows need `approve`.
///
/// # Errors
/// The run has no trail (never written, or older than the audit retention), the guard
/// holds, another run holds the lease, or ConnectWise fails past its retries.
pub async fn revert_run<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    approve: bool,
) -> Result<Revert, PipelineError> {
    let revert_run_id = format!("{run_id}-revert");
    let mut outcome = Revert {
        run_id: run_id.to_string(),
        revert_run_id: revert_run_id.clone(),
        dry_run: settings.dry_run,
        ..Revert::default()
    };
    if let Some(mark) = trail::revert_mark(store, run_id, System::ConnectWise).await?
        && mark.finished
    {
        outcome.already_by = Some(mark.revert_run_id);
        return Ok(outcome);
    }
    let resumed = store
        .get::<MatchRecord>(&layout::match_record(&revert_run_id))
        .await?
        .is_some();
    if !resumed {
        let trail = trail::load(store, run_id, System::ConnectWise)
            .await?
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "no trail of run {run_id} (a trail is kept {} days)",
                    settings.audit_ttl.as_secs() / 86_400
                ))
            })?;
        let planned = plan(connectwise, settings, &trail).await?;
        outcome.guard = settings
            .retire
            .guard(planned.retire.len() as u64, trail.entries.len() as u64);
        if settings.dry_run {
            planned.into_outcome(&mut outcome);
            return Ok(outcome);
        }
        if let Some(reason) = &outcome.guard
            && !approve
        {
            return Err(PipelineError::Config(format!(
                "{reason}: nothing written; `lscw revert {run_id} --approve` retires them"
            )));
        }
        if let Some(holder) = lease::acquire(store, &revert_run_id).await? {
            return Err(lease_held(&holder.run_id));
        }
        let stored = store_plan(connectwise, store, settings, &trail, planned).await;
        if let Err(error) = stored {
            lease::release(store, &revert_run_id).await?;
            return Err(error);
        }
    } else if settings.dry_run {
        // Planned already: what is stored is what it writes.
        let stored = stored_plan(store, &revert_run_id).await?;
        outcome.restore = stored.modify;
        outcome.retire = stored.retire;
        outcome.changed_since = stored.conflicts;
        return Ok(outcome);
    } else if let Some(holder) = lease::acquire(store, &revert_run_id).await? {
        return Err(lease_held(&holder.run_id));
    }
    let work = write(connectwise, store, settings, run_id, &revert_run_id);
    let report = lease::release_after(store, &revert_run_id, work, |_| true).await?;
    let stored = stored_plan(store, &revert_run_id).await?;
    outcome.restore = stored.modify;
    outcome.retire = stored.retire;
    outcome.unchanged = report.counts.unchanged;
    outcome.changed_since.clone_from(&report.conflicts);
    outcome.failed.clone_from(&report.failed);
    outcome.failed.extend(report.retire_failed.iter().cloned());
    outcome.report = Some(report);
    Ok(outcome)
}

fn lease_held(holder: &str) -> PipelineError {
    PipelineError::Config(format!(
        "run {holder} holds the lease; revert when it has ended"
    ))
}

/// What the revert writes, decided from the trail and ConnectWise as it is now.
#[derive(Debug, Default)]
struct Planned {
    restore: Vec<ModifyItem>,
    retire: Vec<ModifyItem>,
    reactivated: u64,
    unchanged: u64,
    changed_since: Vec<ConflictReport>,
    failed: Vec<Rejected>,
}

impl Planned {
    fn into_outcome(self, outcome: &mut Revert) {
        outcome.restore = self.restore;
        outcome.retire = self.retire;
        outcome.unchanged = self.unchanged;
        outcome.changed_since = self.changed_since;
        outcome.failed = self.failed;
    }
}

/// Reads the configurations the run wrote (its creations by their link) and plans each
/// one's way back.
async fn plan(
    connectwise: &ConnectWiseClient,
    settings: &SyncSettings,
    trail: &Trail,
) -> Result<Planned, PipelineError> {
    let created: Vec<String> = trail
        .entries
        .iter()
        .filter(|e| e.action == Action::Created && e.configuration_id.is_none())
        .map(|e| e.asset_key.clone())
        .collect();
    let linked = configurations_linked_to(connectwise, &created).await?;
    let ids: Vec<i64> = trail
        .entries
        .iter()
        .filter_map(|e| e.configuration_id)
        .chain(linked.values().flatten().copied())
        .collect();
    let mut current = configurations(connectwise, &ids).await?;
    let names_location = trail
        .entries
        .iter()
        .flat_map(|e| &e.fields)
        .any(|f| f.field == LOCATION_NAME);
    if names_location {
        let names = references::names_by_id(connectwise, ReferenceKind::Location).await?;
        for configuration in current.values_mut() {
            references::name_location(configuration, &names);
        }
    }
    let mut planned = Planned::default();
    for entry in &trail.entries {
        let id = match (entry.configuration_id, entry.action) {
            (Some(id), _) => id,
            (None, _) => match linked
                .get(&entry.asset_key.to_lowercase())
                .map(Vec::as_slice)
            {
                Some([id]) => *id,
                Some(several) if several.len() > 1 => {
                    planned.failed.push(rejected(
                        entry,
                        format!("several configurations carry its link ({several:?}): retire the one it created by hand"),
                    ));
                    continue;
                }
                _ => {
                    planned.failed.push(rejected(
                        entry,
                        "no configuration carries its link any more".into(),
                    ));
                    continue;
                }
            },
        };
        let Some(configuration) = current.get(&id) else {
            planned.failed.push(rejected(
                entry,
                format!("configuration {id} no longer exists"),
            ));
            continue;
        };
        if entry.action == Action::Created {
            if settings.retire.is_retired(configuration) {
                planned.unchanged += 1;
            } else {
                let retirement = settings.retire.retirement(configuration);
                planned.retire.push(item(entry, id, retirement, true));
            }
            continue;
        }
        planned.way_back(entry, id, configuration);
    }
    Ok(planned)
}

impl Planned {
    /// Each field of a changed configuration back where ConnectWise still holds what
    /// the run wrote.
    fn way_back(&mut self, entry: &TrailEntry, id: i64, configuration: &Value) {
        let mut back = Vec::new();
        let mut changed = Vec::new();
        for change in &entry.fields {
            let Some(target) = target_from_label(&change.field) else {
                continue;
            };
            let now = configuration.text(&target);
            if target.holds(now.as_deref(), change.after.as_deref()) {
                if change.before.as_deref().is_some_and(is_fingerprint) {
                    self.failed.push(rejected(
                        entry,
                        format!(
                            "{}: its value before the run was longer than matching keeps, so it is not in the trail; left as the run wrote it",
                            change.field
                        ),
                    ));
                    continue;
                }
                back.push(FieldDiff {
                    field: change.field.clone(),
                    target: None,
                    current: now,
                    desired: change.before.clone().unwrap_or_default(),
                });
            } else if !target.holds(now.as_deref(), change.before.as_deref()) {
                changed.push(format!(
                    "{}: the run wrote {}, now {}",
                    change.field,
                    trail::shown(change.after.as_deref()),
                    trail::shown(now.as_deref())
                ));
            }
        }
        if !changed.is_empty() {
            self.changed_since.push(ConflictReport {
                asset_key: entry.asset_key.clone(),
                name: entry.name.clone(),
                reason: format!(
                    "changed since the run, left as it is: {}",
                    changed.join("; ")
                ),
                candidates: vec![id],
                merge: None,
            });
        }
        if back.is_empty() {
            if changed.is_empty() {
                self.unchanged += 1;
            }
            return;
        }
        if entry.action == Action::Retired {
            self.reactivated += 1;
        }
        self.restore.push(item(entry, id, back, false));
    }
}

fn item(entry: &TrailEntry, id: i64, fields: Vec<FieldDiff>, asset_gone: bool) -> ModifyItem {
    ModifyItem {
        asset_key: entry.asset_key.clone(),
        name: entry.name.clone(),
        configuration_id: id,
        unmatched_fields: fields,
        asset_gone,
    }
}

fn rejected(entry: &TrailEntry, reason: String) -> Rejected {
    Rejected {
        asset_key: entry.asset_key.clone(),
        reason,
    }
}

/// The configurations of `ids` as ConnectWise holds them now, by id.
async fn configurations(
    connectwise: &ConnectWiseClient,
    ids: &[i64],
) -> Result<HashMap<i64, Value>, PipelineError> {
    let mut found = HashMap::new();
    for condition in Field::new("id")?.is_in_chunks(ids.iter().copied(), MAX_CONDITION_CHARS) {
        let query = ListQuery {
            conditions: Some(condition.to_string()),
            page_size: Some(MAX_PAGE_SIZE),
            ..ListQuery::default()
        };
        for configuration in connectwise
            .list_complete(endpoint::CONFIGURATIONS, &query)
            .await?
        {
            if let Some(id) = configuration.get("id").and_then(Value::as_i64) {
                found.insert(id, configuration);
            }
        }
    }
    Ok(found)
}

/// Stores the plan as the revert run's records, as a run's match leaves them: what
/// `bulk-modify` writes from and the report reads.
async fn store_plan<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    trail: &Trail,
    mut planned: Planned,
) -> Result<(), PipelineError> {
    let meter = CallMeter::connectwise(connectwise);
    let revert_run_id = format!("{}-revert", trail.run_id);
    let ttl = settings.staging_ttl;
    let ensured = references_named(connectwise, store, settings, &planned).await?;
    let custom_field_ids = crate::custom_fields::resolve(connectwise, settings).await?;
    let before = planned.failed.len();
    let modify_batches = put_batches(
        store,
        settings,
        &revert_run_id,
        "modify/000/00",
        &planned.restore,
        &mut planned.failed,
    )
    .await?;
    let retire_batches = put_batches(
        store,
        settings,
        &revert_run_id,
        "retire/000",
        &planned.retire,
        &mut planned.failed,
    )
    .await?;
    let batched =
        planned.restore.len() - (planned.failed.len() - before).min(planned.restore.len());
    let assets =
        (batched + planned.changed_since.len() + planned.failed.len()) as u64 + planned.unchanged;
    let section = SectionRecord {
        site: "revert".into(),
        company: format!("run {}", trail.run_id),
        assets,
        unchanged: planned.unchanged,
        conflicts: store
            .put_parts(
                &layout::section_conflicts(&revert_run_id, 0),
                &planned.changed_since,
                ttl,
            )
            .await?,
        failed: store
            .put_parts(
                &layout::section_failed(&revert_run_id, 0),
                &planned.failed,
                ttl,
            )
            .await?,
        modify_batches,
        retire_batches,
        reactivated: planned.reactivated,
        ..SectionRecord::default()
    };
    let fetched = FetchRecord {
        assets,
        api_calls: meter.read(),
        ..FetchRecord::default()
    };
    store
        .put(&layout::fetch_record(&revert_run_id), &fetched, ttl)
        .await?;
    layout::write_ensured(store, &revert_run_id, &ensured, ApiCalls::default(), ttl).await?;
    // Its trail names the run it reverts from the start: recorded again at its report.
    trail::save(
        store,
        &revert_run_id,
        System::ConnectWise,
        Some(&trail.run_id),
        &[],
        settings.audit_ttl,
    )
    .await?;
    let record = MatchRecord {
        sections: vec![section],
        custom_field_ids,
        ..MatchRecord::default()
    };
    // Last: a revert whose match record is stored is planned, and goes on from it.
    store
        .put(&layout::match_record(&revert_run_id), &record, ttl)
        .await?;
    trail::mark_reverted(
        store,
        &trail.run_id,
        System::ConnectWise,
        &RevertMark {
            revert_run_id,
            finished: false,
        },
        settings.audit_ttl,
    )
    .await?;
    Ok(())
}

/// The references the old values name, as ConnectWise has them: a revert creates none
/// (a name gone since fails its configuration alone).
async fn references_named<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    planned: &Planned,
) -> Result<EnsureOutcome, PipelineError> {
    let mut names = ReferenceNames::default();
    let items = planned.restore.iter().chain(&planned.retire);
    for diff in items.flat_map(|i| &i.unmatched_fields) {
        if let Some(kind) = diff
            .field
            .strip_suffix(".name")
            .and_then(ReferenceKind::from_configuration_field)
        {
            names.add(kind, Some(&diff.desired));
        }
    }
    let options = EnsureOptions {
        structure_level: settings.structure_level,
        cache_key: layout::reference_cache,
        cache_ttl: settings.reference_ttl,
        dry_run: true,
    };
    let mut ensured = references::ensure(connectwise, store, &names, &options).await?;
    ensured.created.clear();
    Ok(ensured)
}

/// Writes every batch of the stored plan not written yet, records the revert run and
/// marks the run reverted.
async fn write<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    revert_run_id: &str,
) -> Result<RunReport, PipelineError> {
    let record = layout::read_match(store, revert_run_id).await?;
    let batches = record
        .sections
        .iter()
        .flat_map(|s| s.modify_batches.iter().chain(&s.retire_batches));
    for batch in batches {
        if store
            .get::<BatchRecord>(&layout::batch_result(batch))
            .await?
            .is_some()
        {
            continue;
        }
        lease::renew(store, revert_run_id).await?;
        let input = BatchInput {
            run_id: revert_run_id.into(),
            batch: batch.clone(),
        };
        bulk_modify(connectwise, store, settings, &input).await?;
    }
    let input = RecordReportInput {
        run_id: revert_run_id.into(),
        ..RecordReportInput::default()
    };
    record_report(store, &input, &Retention::of(settings)).await?;
    let done = report(store, revert_run_id, false).await?;
    trail::mark_reverted(
        store,
        run_id,
        System::ConnectWise,
        &RevertMark {
            revert_run_id: revert_run_id.to_string(),
            finished: true,
        },
        settings.audit_ttl,
    )
    .await?;
    tracing::info!(%run_id, %revert_run_id, restored = done.counts.modified, retired = done.counts.retired, "run reverted");
    Ok(done)
}
