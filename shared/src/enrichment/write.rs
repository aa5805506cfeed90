//! One invocation of `ticket-agreement-enrich`: plans on the first, then writes the
//! planned edits until its deadline and hands back where it stopped.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::plan::{AssetEdit, EnrichPlan, Planned, plan};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, LansweeperError};
use crate::layout;
use crate::lease;
use crate::quota;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::states::{EnrichInput, EnrichOutput, RunId};
use crate::store::{Store, StoreExt};
use crate::trail::{self, Action, FieldChange, System, TrailEntry};

/// What one invocation wrote, as the report reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnrichProgress {
    /// The next edit to write: where a re-entered invocation goes on.
    #[serde(default)]
    pub next: usize,
    pub written: u64,
    /// Keys of the parts holding the edits Lansweeper refused, with why.
    pub failed: Vec<String>,
    pub api_calls: ApiCalls,
    /// Keys of the parts of the trail of the edits Lansweeper accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trail: Vec<String>,
    /// The entries in those parts.
    #[serde(default)]
    pub trail_entries: u64,
}

/// Writes between two saves of an invocation's progress: a killed invocation repeats at
/// most this many edits (which set values, so repeating one changes nothing).
const CHECKPOINT_EVERY: usize = 50;

/// Edits sent in one request at first: Lansweeper counts its quota by request, so a
/// batch of aliased `editAsset`s writes that many assets for one request.
const FIRST_BATCH: usize = 20;

/// The batch size that last worked, kept between runs (a refused batched form halves
/// it, down to one edit a request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Batching {
    size: usize,
}

impl Batching {
    /// The size that last worked (the first size when none did yet).
    pub(crate) async fn load<S: Store>(store: &S) -> Result<Self, PipelineError> {
        Ok(store
            .get(layout::LANSWEEPER_EDIT_BATCH)
            .await?
            .unwrap_or(Self { size: FIRST_BATCH }))
    }

    /// How many edits the next request carries.
    pub(crate) fn size(self) -> usize {
        self.size.max(1)
    }
}

/// One invocation: plans until the plan is whole (over as many invocations as it
/// takes), then writes edits until `deadline`.
pub async fn enrich<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnrichInput,
    deadline: Option<Instant>,
) -> Result<EnrichOutput, PipelineError> {
    let lansweeper = &lansweeper.with_window_share(quota::ENRICHMENT_SHARE);
    let meter = CallMeter::both(connectwise, lansweeper);
    let run_id = input.run_id.clone().unwrap_or_else(RunId::generate);
    if !settings.dry_run {
        // The enrichment's own lease, taken by its first invocation: the sync's is given
        // up before the enrichment starts, so hourly syncs go on beside a long enrichment.
        if input.next.is_some() {
            lease::ENRICHMENT.renew(store, &run_id).await?;
        } else if let Some(holder) = lease::ENRICHMENT.acquire(store, &run_id).await? {
            tracing::warn!(%run_id, holder = %holder.run_id, "another enrichment holds its lease; skipped");
            return Ok(EnrichOutput {
                run_id,
                done: true,
                skipped_for: Some(holder),
                ..EnrichOutput::default()
            });
        }
    }
    let start = input.next.unwrap_or(0);
    let share = quota::load(store, lansweeper).await?;
    // Planned by an earlier invocation, or planned (on) now: a plan that needs more than
    // one invocation hands back, and the next goes on where this one stopped.
    let plan: EnrichPlan = match store.get(&layout::enrich_plan(&run_id)).await? {
        Some(plan) => plan,
        None => match plan(
            connectwise,
            lansweeper,
            store,
            settings,
            &run_id,
            deadline,
            &meter,
        )
        .await?
        {
            Planned::Whole(plan) => plan,
            Planned::Unfinished { wait_seconds } => {
                quota::save(store, lansweeper).await?;
                return Ok(EnrichOutput {
                    run_id,
                    done: false,
                    next: start,
                    edits: 0,
                    api_calls: meter.read(),
                    wait_seconds,
                    skipped_for: None,
                });
            }
        },
    };
    let mut edits = PlannedEdits::of(store, &plan);
    let mut writer = Writer {
        lansweeper,
        store,
        settings,
        run_id: &run_id,
        start,
        meter: &meter,
        fetch_reserve: share.fetch_reserve,
    };
    let (next, progress, wait_seconds) = writer.write(&mut edits, deadline).await?;
    Ok(EnrichOutput {
        run_id,
        done: next >= plan.total,
        next,
        edits: plan.total,
        api_calls: progress.api_calls,
        wait_seconds,
        skipped_for: None,
    })
}

/// The plan's edits, read a stored part at a time: an invocation holds the part it
/// writes from, never the run's edits (100,000 of them at the first enrichment of a
/// large estate).
struct PlannedEdits<'a, S: Store> {
    store: &'a S,
    parts: &'a [String],
    /// How many edits each part holds; none counted (an older plan): read whole.
    counts: &'a [usize],
    total: usize,
    loaded: Vec<AssetEdit>,
    /// The index of `loaded`'s first edit in the plan.
    loaded_from: usize,
}

impl<'a, S: Store> PlannedEdits<'a, S> {
    fn of(store: &'a S, plan: &'a EnrichPlan) -> Self {
        Self {
            store,
            parts: &plan.edits,
            counts: &plan.edit_counts,
            total: plan.total,
            loaded: Vec::new(),
            loaded_from: 0,
        }
    }

    /// The edits from `next` to the end of the part that holds it (none past the end).
    async fn from(&mut self, next: usize) -> Result<&[AssetEdit], PipelineError> {
        let held = next >= self.loaded_from && next < self.loaded_from + self.loaded.len();
        if !held {
            self.loaded = Vec::new();
            if self.counts.len() == self.parts.len() {
                let mut first = 0;
                for (key, &count) in self.parts.iter().zip(self.counts) {
                    if next < first + count {
                        self.loaded = self.store.require(key).await?;
                        self.loaded_from = first;
                        break;
                    }
                    first += count;
                }
            } else {
                self.loaded = self.store.get_parts(self.parts).await?;
                self.loaded_from = 0;
            }
        }
        Ok(self
            .loaded
            .get(next.saturating_sub(self.loaded_from)..)
            .filter(|_| next >= self.loaded_from)
            .unwrap_or_default())
    }
}

/// The write half of an invocation: the planned edits from `start`, in batches.
struct Writer<'a, S: Store> {
    lansweeper: &'a LansweeperClient,
    store: &'a S,
    settings: &'a SyncSettings,
    run_id: &'a str,
    start: usize,
    meter: &'a CallMeter<'a>,
    fetch_reserve: usize,
}

impl<S: Store> Writer<'_, S> {
    /// Writes edits until `deadline` (at least one batch, so a continuation always
    /// progresses); answers where it stopped, its progress and how long to wait for
    /// Lansweeper's quota before the next invocation.
    async fn write(
        &mut self,
        edits: &mut PlannedEdits<'_, S>,
        deadline: Option<Instant>,
    ) -> Result<(usize, EnrichProgress, u64), PipelineError> {
        let key = layout::enrich_progress(self.run_id, self.start);
        // An invocation entered again (Step Functions retried it after it died) goes on
        // from its last checkpoint instead of from its start.
        let mut progress: EnrichProgress = self.store.get(&key).await?.unwrap_or_default();
        let mut failed: Vec<Rejected> = self.store.get_parts(&progress.failed).await?;
        let calls_before = progress.api_calls;
        let mut next = progress.next.max(self.start);
        let mut wait_seconds = 0;
        let mut batching = Batching::load(self.store).await?;
        let mut last_checkpoint = next;
        // The trail of the edits accepted since the last checkpoint: stored with it.
        let mut trail: Vec<TrailEntry> = Vec::new();
        if self.settings.dry_run {
            next = edits.total;
        }
        while next < edits.total {
            if next > self.start && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            // The hour's quota, less what the sync's next fetch needs: waited for here when
            // the wait fits the invocation, else handed to the state machine's Wait state.
            let wait = self
                .lansweeper
                .wait_before_next_leaving(self.fetch_reserve)
                .await;
            if !wait.is_zero() {
                if deadline.is_some_and(|d| Instant::now() + wait > d) {
                    wait_seconds = self.lansweeper.quota_seconds(wait);
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            let window = edits.from(next).await?;
            let Some(site) = window.first().map(|edit| &edit.site) else {
                // The parts hold fewer edits than the plan counts: nothing more to write.
                tracing::warn!(run_id = %self.run_id, next, total = edits.total, "the plan's parts end early");
                next = edits.total;
                break;
            };
            let batch: Vec<&AssetEdit> = window
                .iter()
                .take(batching.size())
                .take_while(|edit| &edit.site == site)
                .collect();
            let outcomes = match write_batch(self.lansweeper, &batch, &mut batching, self.store)
                .await
            {
                Ok(outcomes) => outcomes,
                // Refused for rate past the retries (another user of the token): the
                // batch is sent again after the wait, by the next invocation; an edit
                // sets values, so one sent twice changes nothing more.
                Err(PipelineError::Lansweeper(error)) if error.rate_limited_for().is_some() => {
                    let wait = error.rate_limited_for().unwrap_or_default();
                    tracing::warn!(run_id = %self.run_id, wait_s = wait.as_secs(), "Lansweeper refused for rate; writing goes on after the wait");
                    wait_seconds = self.lansweeper.quota_seconds(wait);
                    break;
                }
                Err(error) => return Err(error),
            };
            for (edit, outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => {
                        progress.written += 1;
                        trail.push(entry_of(edit));
                    }
                    Err(refused) => failed.push(refused),
                }
            }
            next += batch.len();
            if next - last_checkpoint >= CHECKPOINT_EVERY {
                self.keep_trail(&mut progress, &mut trail, last_checkpoint)
                    .await?;
                progress = self
                    .checkpoint(progress, &failed, next, calls_before)
                    .await?;
                last_checkpoint = next;
            }
        }
        self.keep_trail(&mut progress, &mut trail, last_checkpoint)
            .await?;
        let progress = self
            .checkpoint(progress, &failed, next, calls_before)
            .await?;
        if !self.settings.dry_run {
            record_trail(self.store, self.run_id, self.settings.audit_ttl).await?;
        }
        Ok((next, progress, wait_seconds))
    }

    /// Stores the trail of the edits accepted since the checkpoint at `from`, before the
    /// checkpoint that names it: an invocation entered again from that checkpoint writes
    /// the same part anew.
    async fn keep_trail(
        &self,
        progress: &mut EnrichProgress,
        trail: &mut Vec<TrailEntry>,
        from: usize,
    ) -> Result<(), PipelineError> {
        let key = layout::enrich_trail_part(self.run_id, from);
        let ttl = self.settings.audit_ttl;
        progress
            .trail
            .extend(trail::put_entries(self.store, &key, trail, ttl).await?);
        progress.trail_entries += trail.len() as u64;
        trail.clear();
        Ok(())
    }

    /// Saves where the invocation stands (and the quota it spent).
    async fn checkpoint(
        &self,
        mut progress: EnrichProgress,
        failed: &[Rejected],
        next: usize,
        calls_before: ApiCalls,
    ) -> Result<EnrichProgress, PipelineError> {
        quota::save(self.store, self.lansweeper).await?;
        progress.next = next;
        progress.api_calls = calls_before;
        progress.api_calls += self.meter.read();
        let ttl = self.settings.staging_ttl;
        progress.failed = self
            .store
            .put_parts(&layout::enrich_failed(self.run_id, self.start), failed, ttl)
            .await?;
        self.store
            .put(
                &layout::enrich_progress(self.run_id, self.start),
                &progress,
                ttl,
            )
            .await?;
        Ok(progress)
    }
}

/// What the trail keeps of an edit Lansweeper accepted: each field's value before and
/// after (empty is none).
pub(crate) fn entry_of(edit: &AssetEdit) -> TrailEntry {
    let text = |value: &str| Some(value.to_string()).filter(|v| !v.trim().is_empty());
    TrailEntry {
        asset_key: edit.asset_key.clone(),
        name: edit.name.clone(),
        configuration_id: None,
        url: edit.url.clone(),
        site: edit.site.clone(),
        action: Action::Modified,
        fields: edit
            .values
            .iter()
            .enumerate()
            .map(|(index, (key, value))| {
                let before = edit.before.get(index);
                FieldChange {
                    field: before.map_or_else(|| key.clone(), |(name, _)| name.clone()),
                    key: Some(key.clone()),
                    before: before.and_then(|(_, value)| text(value)),
                    after: text(value),
                }
            })
            .collect(),
    }
}

/// Records the enrichment's trail as its invocations stored it so far: the index of
/// their trail parts (each invocation's progress names its own). Recorded again by each
/// invocation, so an enrichment stopped midway has the trail of what it wrote.
///
/// # Errors
/// The store fails.
pub(crate) async fn record_trail<S: Store>(
    store: &S,
    run_id: &str,
    ttl: std::time::Duration,
) -> Result<(), PipelineError> {
    let mut parts = Vec::new();
    let mut entries = 0;
    for start in invocation_starts(store, run_id).await? {
        let progress: EnrichProgress = store
            .require(&layout::enrich_progress(run_id, start))
            .await?;
        entries += progress.trail_entries;
        parts.extend(progress.trail);
    }
    trail::save_index(
        store,
        run_id,
        System::Lansweeper,
        None,
        entries,
        &parts,
        ttl,
    )
    .await?;
    Ok(())
}

/// Where each write invocation of the run started, in order (each one's progress names
/// where the next started).
pub(crate) async fn invocation_starts<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<Vec<usize>, PipelineError> {
    let Some(plan) = store
        .get::<EnrichPlan>(&layout::enrich_plan(run_id))
        .await?
    else {
        return Ok(Vec::new());
    };
    let mut starts = Vec::new();
    let mut start = 0;
    while let Some(progress) = store
        .get::<EnrichProgress>(&layout::enrich_progress(run_id, start))
        .await?
    {
        starts.push(start);
        if progress.next <= start || progress.next >= plan.total {
            break;
        }
        start = progress.next;
    }
    Ok(starts)
}

/// Writes a batch of one site's edits in one request, each asset refused alone; a batch
/// refused whole is split in two and each half tried again, down to single edits (a
/// part as large as one refused is split unsent). When the parts then go through whole,
/// the size was what was refused: `batching` becomes the largest that went through, and
/// is remembered.
pub(crate) async fn write_batch<S: Store>(
    lansweeper: &LansweeperClient,
    batch: &[&AssetEdit],
    batching: &mut Batching,
    store: &S,
) -> Result<Vec<Result<(), Rejected>>, PipelineError> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let site = if first.site.is_empty() {
        lansweeper.clone()
    } else {
        lansweeper.for_site(&first.site)
    };
    let rejected = |edit: &AssetEdit, reason: String| Rejected {
        asset_key: edit.asset_key.clone(),
        reason,
    };
    let mut outcomes: Vec<Option<Result<(), Rejected>>> = vec![None; batch.len()];
    let mut ranges = vec![(0, batch.len())];
    // The smallest batch refused whole so far: a part as large is split unsent.
    let mut refused_at = usize::MAX;
    // The largest batch written whole so far.
    let mut written_at = 1;
    while let Some((from, to)) = ranges.pop() {
        let part = &batch[from..to];
        if part.len() >= refused_at {
            let middle = from + part.len() / 2;
            ranges.push((middle, to));
            ranges.push((from, middle));
            continue;
        }
        // One document whatever the size, a single edit included: a request refused for
        // what it says (not how many edits it carries) fails its edits alone with the
        // reason, and never teaches that one edit a request is what goes through.
        let request: Vec<(&str, &[(String, String)])> = part
            .iter()
            .map(|e| (e.asset_key.as_str(), e.values.as_slice()))
            .collect();
        let answer = site.edit_assets_custom_fields(&request).await;
        match answer {
            Ok(answers) => {
                written_at = written_at.max(part.len());
                for (index, answer) in answers.into_iter().enumerate() {
                    let edit = part[index];
                    outcomes[from + index] = Some(answer.map_err(|reason| rejected(edit, reason)));
                }
            }
            // The site is lost to the token: each of its edits fails alone.
            Err(LansweeperError::Forbidden(reason)) => {
                for (index, edit) in part.iter().enumerate() {
                    outcomes[from + index] = Some(Err(rejected(edit, reason.clone())));
                }
            }
            Err(error @ (LansweeperError::GraphQl { .. } | LansweeperError::Http { .. }))
                if !error.is_transient() =>
            {
                if let [edit] = part {
                    outcomes[from] = Some(Err(rejected(edit, error.to_string())));
                } else {
                    refused_at = refused_at.min(part.len());
                    let middle = from + part.len() / 2;
                    ranges.push((middle, to));
                    ranges.push((from, middle));
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    let outcomes: Vec<Result<(), Rejected>> = outcomes.into_iter().flatten().collect();
    // Refused whole, then written whole in smaller batches: the size was refused (an
    // edit refused alone would have failed too).
    if refused_at != usize::MAX && outcomes.iter().all(Result::is_ok) && written_at < batching.size
    {
        batching.size = written_at;
        tracing::info!(
            size = batching.size,
            "Lansweeper refused a batch of edits whole; sending fewer a request"
        );
        store
            .put(layout::LANSWEEPER_EDIT_BATCH, batching, layout::KEPT)
            .await?;
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::store::{MemoryStore, Watched};

    fn edit(n: usize) -> AssetEdit {
        AssetEdit {
            site: format!("site-{}", n / 700),
            asset_key: format!("asset-{n}"),
            values: vec![("field".into(), "x".repeat(300))],
            before: Vec::new(),
            name: format!("PC-{n}"),
            url: None,
        }
    }

    /// An invocation reads the one part that holds the edits it writes from, whichever
    /// part that is, and the edits come in the plan's order across parts; a plan stored
    /// before its parts were counted is still read, whole.
    ///
    /// Breaking it looks like: every part read by every invocation (memory growing with
    /// the estate: the first enrichment of 100,000 assets held whole), an edit skipped or
    /// repeated at a part's edge, or an older plan written as empty.
    #[tokio::test]
    async fn an_invocation_reads_only_the_part_it_writes_from() {
        let memory = MemoryStore::new();
        let all: Vec<AssetEdit> = (0..2_000).map(edit).collect();
        let parts = memory
            .put_counted_parts("run/r/enrich/edits/0000", &all, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(parts.len() >= 2, "{} parts", parts.len());
        let plan = EnrichPlan {
            edits: parts.iter().map(|(key, _)| key.clone()).collect(),
            edit_counts: parts.iter().map(|(_, count)| *count).collect(),
            total: all.len(),
            ..EnrichPlan::default()
        };
        let read = Arc::new(Mutex::new(Vec::new()));
        let keys_read = Arc::clone(&read);
        let store = Watched::new(memory.clone()).after_get(move |key, _| {
            keys_read.lock().unwrap().push(key.to_string());
        });

        // Where a later invocation starts: in the last part.
        let start = all.len() - parts.last().unwrap().1 + 3;
        let mut edits = PlannedEdits::of(&store, &plan);
        let window = edits.from(start).await.unwrap();
        assert_eq!(window.first().unwrap().asset_key, all[start].asset_key);
        assert_eq!(window.len(), all.len() - start);
        assert_eq!(*read.lock().unwrap(), vec![parts.last().unwrap().0.clone()]);

        // From the start to the end, part by part: every edit once, in order, each part
        // read once.
        read.lock().unwrap().clear();
        let mut edits = PlannedEdits::of(&store, &plan);
        let mut next = 0;
        let mut seen = Vec::new();
        while next < plan.total {
            let window = edits.from(next).await.unwrap();
            let batch: Vec<String> = window.iter().take(7).map(|e| e.asset_key.clone()).collect();
            next += batch.len();
            seen.extend(batch);
        }
        let keys: Vec<String> = all.iter().map(|e| e.asset_key.clone()).collect();
        assert_eq!(seen, keys);
        assert_eq!(read.lock().unwrap().len(), parts.len());
        assert!(edits.from(plan.total).await.unwrap().is_empty());

        // A plan without its parts' counts.
        let older = EnrichPlan {
            edit_counts: Vec::new(),
            ..plan.clone()
        };
        let mut edits = PlannedEdits::of(&store, &older);
        assert_eq!(edits.from(start).await.unwrap().len(), all.len() - start);
    }
}
