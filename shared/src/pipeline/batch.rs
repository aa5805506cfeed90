//! A batch: the configurations one bulk request writes. How a plan is stored as batches,
//! what a bulk function is invoked with for one, and how its outcome is recorded.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::{ApiErrorBody, BulkItemResult, ConnectWiseClient, ConnectWiseError};
use crate::error::PipelineError;
use crate::layout::{self, BatchRecord, CreateItem, Keyed, ModifyItem};
use crate::references::{self, EnsureOptions, ReferenceKind};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::states::RunId;
use crate::store::{PART_BYTES, SizedGroups, Store, StoreError, StoreExt};
use crate::trail::{self, TrailEntry};

/// What a write step does to the configurations of its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteKind {
    /// New configurations (bulk POST): `bulk-create`.
    Create,
    /// Changed fields of matched configurations (bulk PUT): `bulk-modify`.
    Modify,
}

impl WriteKind {
    /// The state machine's name for the step.
    pub fn step(self) -> &'static str {
        match self {
            Self::Create => "bulk-create",
            Self::Modify => "bulk-modify",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchInput {
    pub run_id: RunId,
    pub batch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutput {
    pub run_id: RunId,
    pub batch: String,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// The assets (key, name) a batch holds, whatever its kind.
pub(crate) async fn batch_assets<S: Store>(
    store: &S,
    batch: &str,
    kind: WriteKind,
) -> Result<Vec<(String, String)>, PipelineError> {
    Ok(match kind {
        WriteKind::Create => store
            .require::<Vec<CreateItem>>(batch)
            .await?
            .into_iter()
            .map(|i| (i.asset_key, i.name))
            .collect(),
        WriteKind::Modify => store
            .require::<Vec<ModifyItem>>(batch)
            .await?
            .into_iter()
            .map(|i| (i.asset_key, i.name))
            .collect(),
    })
}

/// Records the batch's outcome per asset (the report reads it) and the trail of what
/// it wrote (`trail_of` an asset written).
pub(super) async fn finish_batch<S: Store>(
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
    meter: &CallMeter<'_>,
    outcomes: Vec<(String, Result<(), String>)>,
    trail_of: impl Fn(&str) -> Option<TrailEntry>,
) -> Result<BatchOutput, PipelineError> {
    let record = record_result(
        store,
        settings,
        &input.batch,
        outcomes,
        trail_of,
        meter.read(),
    )
    .await?;
    Ok(BatchOutput {
        run_id: input.run_id.clone(),
        batch: input.batch.clone(),
        written: record.written.len() as u64,
        failed: record.failed.len() as u64,
        api_calls: record.api_calls,
    })
}

/// Stores a batch's trail, then its result: a batch whose result is recorded has its
/// trail (a writer that dies between the two writes the batch again, and its trail
/// anew). The trail is the batch's alone, so no step holds more of it than a batch.
pub(super) async fn record_result<S: Store>(
    store: &S,
    settings: &SyncSettings,
    batch: &str,
    outcomes: Vec<(String, Result<(), String>)>,
    trail_of: impl Fn(&str) -> Option<TrailEntry>,
    api_calls: ApiCalls,
) -> Result<BatchRecord, PipelineError> {
    let mut record = BatchRecord::default();
    let mut entries = Vec::new();
    for (asset_key, outcome) in outcomes {
        match outcome {
            Ok(()) => {
                entries.extend(trail_of(&asset_key));
                record.written.push(asset_key);
            }
            Err(reason) => record.failed.push(Rejected { asset_key, reason }),
        }
    }
    record.api_calls = api_calls;
    record.trail = trail::put_entries(
        store,
        &layout::batch_trail(batch),
        &entries,
        settings.audit_ttl,
    )
    .await?;
    store
        .put(&layout::batch_result(batch), &record, settings.staging_ttl)
        .await?;
    Ok(record)
}

/// ConnectWise's reason for a failed item, as the report shows it.
pub(super) fn reason(result: &BulkItemResult) -> String {
    match &result.error {
        Some(error) => {
            let details: Vec<String> = error
                .errors
                .iter()
                .map(|e| match (&e.field, &e.message) {
                    (Some(field), Some(message)) => format!("{field}: {message}"),
                    (_, Some(message)) => message.clone(),
                    _ => String::new(),
                })
                .filter(|d| !d.is_empty())
                .collect();
            let mut text = format!(
                "ConnectWise {} {}: {}",
                result.status_code, error.code, error.message
            );
            if !details.is_empty() {
                text.push_str(&format!(" ({})", details.join("; ")));
            }
            text
        }
        None => format!("ConnectWise answered {}", result.status_code),
    }
    .chars()
    .take(REASON_MAX)
    .collect()
}

/// The longest reason kept for a failed item: enough to act on, never enough to fill a
/// batch's record.
const REASON_MAX: usize = 1_000;

/// Stores `items` in batches of at most `batch_size` items and [`PART_BYTES`] bytes
/// each, and answers their keys; an item too large for a batch of its own fails alone.
pub(crate) async fn put_batches<S: Store, T: Serialize + Sync + Keyed>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    kind: &str,
    items: &[T],
    failed: &mut Vec<Rejected>,
) -> Result<Vec<String>, PipelineError> {
    let planned = items.iter().map(Planned::of).collect::<Result<_, _>>()?;
    put_planned(store, settings, run_id, kind, planned, failed).await
}

/// An item serialised as soon as it is decided: a run's plan is held as compact JSON
/// text until its batches are stored, not as parsed values (several times larger).
pub(crate) struct Planned {
    asset_key: String,
    text: String,
}

impl Planned {
    pub(super) fn of<T: Serialize + Keyed>(item: &T) -> Result<Self, PipelineError> {
        let mut text = serde_json::to_string(item).map_err(|e| StoreError::Corrupt {
            key: "(planned item)".into(),
            reason: e.to_string(),
        })?;
        // Serialising doubles the buffer as it grows; a plan holds many of these.
        text.shrink_to_fit();
        Ok(Self {
            asset_key: item.asset_key().to_string(),
            text,
        })
    }
}

/// [`put_batches`] of items serialised already.
pub(super) async fn put_planned<S: Store>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    kind: &str,
    items: Vec<Planned>,
    failed: &mut Vec<Rejected>,
) -> Result<Vec<String>, PipelineError> {
    let (keys, texts): (Vec<String>, Vec<String>) =
        items.into_iter().map(|p| (p.asset_key, p.text)).unzip();
    let sized = SizedGroups::of_texts(texts, settings.batch_size, PART_BYTES);
    for &index in &sized.too_large {
        failed.push(Rejected {
            asset_key: keys[index].clone(),
            reason: format!(
                "too large to write: {} bytes serialised, a batch holds at most {PART_BYTES}",
                sized.texts[index].len()
            ),
        });
    }
    let mut keys = Vec::with_capacity(sized.groups.len());
    for (n, group) in sized.groups.iter().enumerate() {
        let key = layout::batch(run_id, kind, n);
        let texts: Vec<&str> = group.iter().map(|&i| sized.texts[i].as_str()).collect();
        store
            .put_raw(&key, format!("[{}]", texts.join(",")), settings.staging_ttl)
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// The reference a bulk item was refused for, as its body named it
/// ([`references::refused_reference`]): a refusal of the item's input, never one of the
/// credentials, the quota or the server.
pub(super) fn stale_reference(
    result: &BulkItemResult,
    body: &Value,
) -> Option<(ReferenceKind, i64)> {
    if !(400..500).contains(&result.status_code) || [401, 403, 429].contains(&result.status_code) {
        return None;
    }
    references::refused_reference(result.error.as_ref()?, body)
}

/// Whether ConnectWise refused what was sent (a 4xx), not the credentials (401, 403),
/// the path (404: on cloud tenants also a bad login) or the pace (429).
fn refuses_input(status: u16) -> bool {
    (400..500).contains(&status) && ![401, 403, 404, 429].contains(&status)
}

/// A bulk write's answer with a whole refusal of its input turned into one refused
/// result per item ([`refused_whole`]), and whether it was one.
pub(super) fn per_item(
    answer: Result<Vec<BulkItemResult>, ConnectWiseError>,
    items: usize,
) -> (Result<Vec<BulkItemResult>, ConnectWiseError>, bool) {
    match answer {
        Err(error) => match refused_whole(&error, items) {
            Some(results) => (Ok(results), true),
            None => (Err(error), false),
        },
        answered => (answered, false),
    }
}

/// A bulk request ConnectWise refused whole for its input (a 4xx other than the
/// credentials', a missing endpoint's or the quota's: nothing of it was saved), as one
/// refused result per item, each carrying the refusal: what a per-item refusal would
/// say, so a refused reference is found and healed the same way whatever the shape.
fn refused_whole(error: &ConnectWiseError, items: usize) -> Option<Vec<BulkItemResult>> {
    let ConnectWiseError::Api {
        status,
        code,
        message,
        errors,
    } = error
    else {
        return None;
    };
    if !refuses_input(*status) {
        return None;
    }
    let refusal = ApiErrorBody {
        code: code.clone(),
        message: format!("refused the batch whole: {message}"),
        errors: errors.clone(),
    };
    Some(
        (0..items)
            .map(|index| BulkItemResult {
                success: false,
                original_index: index,
                status_code: *status,
                data: None,
                error: Some(refusal.clone()),
            })
            .collect(),
    )
}

/// References refused as gone, healed over as many rounds as each brings one no round
/// tried yet (so as many as a batch holds, never more).
pub(super) struct Healing<'a> {
    connectwise: &'a ConnectWiseClient,
    settings: &'a SyncSettings,
    run_id: &'a str,
    tried: HashSet<(ReferenceKind, i64)>,
    renewed: HashMap<(ReferenceKind, i64), i64>,
}

impl<'a> Healing<'a> {
    pub(super) fn new(
        connectwise: &'a ConnectWiseClient,
        settings: &'a SyncSettings,
        run_id: &'a str,
    ) -> Self {
        Self {
            connectwise,
            settings,
            run_id,
            tried: HashSet::new(),
            renewed: HashMap::new(),
        }
    }

    /// Resolves the references of `stale` (item index, reference) that no round tried yet,
    /// and answers which items of the request go again: those refused for a renewed
    /// reference, and, for a request refused whole (which saved nothing), every item it
    /// carried (`sent`), the others having been refused only for those. None when nothing
    /// new was renewed. A body goes again through [`Healing::apply`].
    pub(super) async fn round<S: Store>(
        &mut self,
        store: &S,
        stale: &[(usize, (ReferenceKind, i64))],
        whole_refusal: bool,
        sent: &[usize],
    ) -> Result<Vec<usize>, PipelineError> {
        let untried: Vec<(ReferenceKind, i64)> = stale
            .iter()
            .map(|(_, reference)| *reference)
            .filter(|reference| self.tried.insert(*reference))
            .collect();
        if untried.is_empty() {
            return Ok(Vec::new());
        }
        let renewed = renew_stale_references(
            self.connectwise,
            store,
            self.settings,
            self.run_id,
            &untried,
        )
        .await?;
        if renewed.is_empty() {
            return Ok(Vec::new());
        }
        self.renewed.extend(renewed);
        Ok(if whole_refusal {
            sent.to_vec()
        } else {
            stale
                .iter()
                .filter(|(_, reference)| self.renewed.contains_key(reference))
                .map(|(index, _)| *index)
                .collect()
        })
    }

    /// Points a body's references at the ids renewed so far.
    pub(super) fn apply(&self, body: &mut Value) {
        for (&(kind, stale), &fresh) in &self.renewed {
            if kind.id_in(body) == Some(stale)
                && let Some(body) = body.as_object_mut()
            {
                kind.point_at(body, fresh);
            }
        }
    }
}

/// Resolves each stale reference again (dropped from the cache; created anew when
/// ConnectWise no longer has the name); answers (kind, stale id) → the id now in force,
/// for those that now have another id.
async fn renew_stale_references<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    stale: &[(ReferenceKind, i64)],
) -> Result<HashMap<(ReferenceKind, i64), i64>, PipelineError> {
    let fetched = layout::read_fetch(store, run_id).await?;
    let spellings = layout::read_reference_names(store, &fetched).await?;
    let (ensured, _) = layout::read_ensured(store, run_id).await?;
    let options = EnsureOptions {
        structure_level: settings.structure_level,
        cache_key: layout::reference_cache,
        cache_ttl: settings.reference_ttl,
        dry_run: false,
    };
    let mut renewed = HashMap::new();
    let mut seen = HashSet::new();
    for &(kind, stale_id) in stale {
        if !seen.insert((kind, stale_id)) {
            continue;
        }
        let fresh = references::replace_stale(
            connectwise,
            store,
            kind,
            stale_id,
            &ensured.ids,
            &spellings,
            &options,
        )
        .await?;
        if let Some(fresh) = fresh.filter(|id| *id != stale_id) {
            renewed.insert((kind, stale_id), fresh);
        }
    }
    Ok(renewed)
}
