//! The revert of an enrichment run: each custom field the run wrote goes back to the
//! value the asset showed before the run (an empty one cleared), where Lansweeper still
//! holds what the run wrote; a field changed since is reported and left as it is.
//!
//! The current values are read with the asset pager, a hundred keys a filter (the most
//! Lansweeper takes), and the edits written in batches as the enrichment writes them,
//! under the enrichment's lease and within the quota it respects. Each batch's assets are
//! read again just before it is written, so a field edited by hand while the revert ran
//! is left as it is and reported too. An edit sets a value,
//! so one sent again after a lost answer writes the same; a revert stopped midway and
//! run again finds the fields it wrote already back (nothing left to take back there)
//! and writes the rest. A finished revert is marked, and never written again.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::enrichment::{AssetEdit, Batching, entry_of, write_batch};
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, MAX_FILTER_CONDITIONS};
use crate::lease;
use crate::matching::{fingerprint, is_fingerprint};
use crate::quota;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::Store;
use crate::trail::{self, RevertMark, System, Trail, TrailEntry};

/// What the revert of an enrichment run does, planned or done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichRevert {
    pub run_id: String,
    pub revert_run_id: String,
    pub dry_run: bool,
    /// Reverted already (by this run): nothing was written now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_by: Option<String>,
    /// The edits that take the run's values back: each field's value before the run
    /// (`values`), and what it holds now (`before`).
    pub restore: Vec<AssetEdit>,
    /// Assets with nothing left to take back.
    pub unchanged: u64,
    /// Fields changed since the run, left as they are: by asset, why.
    pub changed_since: Vec<Rejected>,
    pub failed: Vec<Rejected>,
    /// Edits Lansweeper accepted.
    pub written: u64,
}

/// Reverts the Lansweeper values of the enrichment of `run_id`; with `settings.dry_run`
/// only says what it would write. `None` when the run enriched nothing.
///
/// # Errors
/// Another enrichment holds the lease, or Lansweeper or the store fails (the revert
/// run again goes on).
pub async fn revert_enrichment<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
) -> Result<Option<EnrichRevert>, PipelineError> {
    let lansweeper = &lansweeper.with_window_share(quota::ENRICHMENT_SHARE);
    let Some(trail) = trail::load(store, run_id, System::Lansweeper).await? else {
        return Ok(None);
    };
    let revert_run_id = format!("{run_id}-revert");
    let mut outcome = EnrichRevert {
        run_id: run_id.to_string(),
        revert_run_id: revert_run_id.clone(),
        dry_run: settings.dry_run,
        ..EnrichRevert::default()
    };
    if let Some(mark) = trail::revert_mark(store, run_id, System::Lansweeper).await?
        && mark.finished
    {
        outcome.already_by = Some(mark.revert_run_id);
        return Ok(Some(outcome));
    }
    if settings.dry_run {
        plan(lansweeper, store, &trail, &mut outcome).await?;
        return Ok(Some(outcome));
    }
    if let Some(holder) = lease::ENRICHMENT.acquire(store, &revert_run_id).await? {
        return Err(PipelineError::Config(format!(
            "run {} holds the enrichment's lease; revert when it has ended",
            holder.run_id
        )));
    }
    let work = async {
        plan(lansweeper, store, &trail, &mut outcome).await?;
        write(lansweeper, store, settings, &trail, &mut outcome).await?;
        Ok::<_, PipelineError>(())
    };
    lease::ENRICHMENT
        .release_after(store, &revert_run_id, work, |_| true)
        .await?;
    Ok(Some(outcome))
}

/// Reads what the run's assets hold now and plans each field's way back.
async fn plan<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    trail: &Trail,
    outcome: &mut EnrichRevert,
) -> Result<(), PipelineError> {
    quota::load(store, lansweeper).await?;
    let mut by_site: BTreeMap<&str, Vec<&TrailEntry>> = BTreeMap::new();
    for entry in &trail.entries {
        by_site.entry(&entry.site).or_default().push(entry);
    }
    for (site, entries) in by_site {
        let client = if site.is_empty() {
            lansweeper.clone()
        } else {
            lansweeper.for_site(site)
        };
        let current = current_values(&client, &entries).await?;
        for entry in entries {
            let now = current.get(&entry.asset_key.to_lowercase());
            way_back(entry, now, outcome);
        }
    }
    quota::save(store, lansweeper).await?;
    Ok(())
}

/// The custom field values of the assets of `entries` (of one site), lower-cased key →
/// field key → value: a request per hundred assets (and page of 500).
async fn current_values(
    lansweeper: &LansweeperClient,
    entries: &[&TrailEntry],
) -> Result<HashMap<String, HashMap<String, String>>, PipelineError> {
    let paths = [
        "key",
        "assetCustom.fields.fieldKey",
        "assetCustom.fields.value",
    ];
    let mut found = HashMap::new();
    for chunk in entries.chunks(MAX_FILTER_CONDITIONS) {
        let filters = json!({
            "conjunction": "OR",
            "conditions": chunk.iter().map(|e| json!({
                "operator": "EQUAL", "path": "key", "value": e.asset_key,
            })).collect::<Vec<_>>(),
        });
        lansweeper
            .for_each_asset_page(&paths, Some(&filters), |page| {
                for asset in page {
                    let Some(key) = asset.key() else { continue };
                    let values = asset
                        .values_at("assetCustom.fields")
                        .into_iter()
                        .filter_map(|f| {
                            Some((
                                f.get("fieldKey")?.as_str()?.to_string(),
                                f.get("value").and_then(Value::as_str)?.to_string(),
                            ))
                        })
                        .collect();
                    found.insert(key.to_lowercase(), values);
                }
                Ok(())
            })
            .await?;
    }
    Ok(found)
}

/// The way back of one asset: each field that still holds what the run wrote gets its
/// value before the run; one changed since is reported.
fn way_back(entry: &TrailEntry, now: Option<&HashMap<String, String>>, outcome: &mut EnrichRevert) {
    let Some(now) = now else {
        outcome
            .failed
            .push(rejected(entry, "no longer in Lansweeper".into()));
        return;
    };
    let mut values = Vec::new();
    let mut before = Vec::new();
    let mut changed = Vec::new();
    for change in &entry.fields {
        let Some(key) = &change.key else { continue };
        let held = now.get(key).map_or("", String::as_str);
        if same(held, change.after.as_deref()) {
            let back = change.before.clone().unwrap_or_default();
            if is_fingerprint(&back) {
                outcome.failed.push(rejected(
                    entry,
                    format!("{}: its value before the run was a long value, not kept; left as the run wrote it", change.field),
                ));
                continue;
            }
            values.push((key.clone(), back));
            before.push((change.field.clone(), held.to_string()));
        } else if !same(held, change.before.as_deref()) {
            changed.push(format!(
                "{}: the run wrote {}, now {}",
                change.field,
                trail::shown(change.after.as_deref()),
                trail::shown(Some(held).filter(|v| !v.is_empty()))
            ));
        }
    }
    if !changed.is_empty() {
        outcome.changed_since.push(rejected(
            entry,
            format!(
                "changed since the run, left as it is: {}",
                changed.join("; ")
            ),
        ));
    }
    if values.is_empty() {
        if changed.is_empty() {
            outcome.unchanged += 1;
        }
        return;
    }
    outcome.restore.push(AssetEdit {
        site: entry.site.clone(),
        asset_key: entry.asset_key.clone(),
        values,
        before,
        name: entry.name.clone(),
        url: entry.url.clone(),
    });
}

/// Whether a value Lansweeper holds is one the trail kept (whole, or as its
/// fingerprint); empty is none, outer spaces do not count (as the enrichment compares).
fn same(held: &str, kept: Option<&str>) -> bool {
    match kept {
        None => held.trim().is_empty(),
        Some(kept) if is_fingerprint(kept) => fingerprint(held, true) == kept,
        Some(kept) => held.trim() == kept.trim(),
    }
}

/// The way back of `entries` (one site's, one batch's) as their assets hold now, read
/// just before it is written: a field changed since the plan read it is reported and left
/// as it is, as one changed before. Each asset's planned edit and report are replaced by
/// the fresh ones.
async fn still_to_restore(
    lansweeper: &LansweeperClient,
    site: &str,
    entries: &[&TrailEntry],
    outcome: &mut EnrichRevert,
) -> Result<Vec<AssetEdit>, PipelineError> {
    let client = if site.is_empty() {
        lansweeper.clone()
    } else {
        lansweeper.for_site(site)
    };
    let current = current_values(&client, entries).await?;
    let keys: HashSet<String> = entries.iter().map(|e| e.asset_key.to_lowercase()).collect();
    // Nothing of the batch is written yet: what the plan said of its assets is said anew.
    outcome
        .changed_since
        .retain(|r| !keys.contains(&r.asset_key.to_lowercase()));
    outcome
        .failed
        .retain(|r| !keys.contains(&r.asset_key.to_lowercase()));
    let restored_before = outcome.restore.len();
    for entry in entries {
        way_back(entry, current.get(&entry.asset_key.to_lowercase()), outcome);
    }
    Ok(outcome.restore[restored_before..].to_vec())
}

fn rejected(entry: &TrailEntry, reason: String) -> Rejected {
    Rejected {
        asset_key: entry.asset_key.clone(),
        reason,
    }
}

/// Writes the planned edits in batches (a site's a request, as the enrichment writes),
/// each after its assets are read again and the quota leaves room for the sync's next
/// fetch; then records the
/// revert's own trail and marks the run reverted.
async fn write<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    trail: &Trail,
    outcome: &mut EnrichRevert,
) -> Result<(), PipelineError> {
    let share = quota::load(store, lansweeper).await?;
    let mut batching = Batching::load(store).await?;
    let entries: HashMap<(&str, String), &TrailEntry> = trail
        .entries
        .iter()
        .map(|e| ((e.site.as_str(), e.asset_key.to_lowercase()), e))
        .collect();
    let planned = std::mem::take(&mut outcome.restore);
    let mut written = Vec::new();
    let mut next = 0;
    while next < planned.len() {
        lease::ENRICHMENT
            .renew(store, &outcome.revert_run_id)
            .await?;
        // Room for the batch's read and its write.
        let wait = lansweeper
            .wait_before_next_leaving(share.fetch_reserve + 1)
            .await;
        tokio::time::sleep(wait).await;
        let site = &planned[next].site;
        let taken: Vec<&TrailEntry> = planned[next..]
            .iter()
            .take(batching.size())
            .take_while(|edit| &edit.site == site)
            .filter_map(|edit| entries.get(&(site.as_str(), edit.asset_key.to_lowercase())))
            .copied()
            .collect();
        next += taken.len();
        let batch = still_to_restore(lansweeper, site, &taken, outcome).await?;
        let batch: Vec<&AssetEdit> = batch.iter().collect();
        let answers = write_batch(lansweeper, &batch, &mut batching, store).await;
        quota::save(store, lansweeper).await?;
        for (edit, answer) in batch.iter().zip(answers?) {
            match answer {
                Ok(()) => written.push(entry_of(edit)),
                Err(refused) => outcome.failed.push(refused),
            }
        }
    }
    outcome.written = written.len() as u64;
    let ttl = settings.audit_ttl;
    let key = crate::layout::trail(&outcome.revert_run_id, System::Lansweeper.key());
    let parts = trail::put_entries(store, &format!("{key}/part"), &written, ttl).await?;
    trail::save_index(
        store,
        &outcome.revert_run_id,
        System::Lansweeper,
        Some(&trail.run_id),
        outcome.written,
        &parts,
        ttl,
    )
    .await?;
    let mark = RevertMark {
        revert_run_id: outcome.revert_run_id.clone(),
        finished: true,
    };
    trail::mark_reverted(store, &trail.run_id, System::Lansweeper, &mark, ttl).await?;
    tracing::info!(run_id = %trail.run_id, written = outcome.written, changed_since = outcome.changed_since.len(), "enrichment reverted");
    Ok(())
}
