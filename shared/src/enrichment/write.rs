//! One invocation of `ticket-agreement-enrich`: plans on the first, then writes the
//! planned edits until its deadline and hands back where it stopped.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::plan::{AssetEdit, EnrichPlan, plan};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, LansweeperError};
use crate::layout::{self, LeaseHolder};
use crate::lease;
use crate::quota;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichInput {
    #[serde(default)]
    pub run_id: Option<String>,
    /// Where the previous invocation stopped; absent on the first.
    #[serde(default)]
    pub next: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichOutput {
    pub run_id: String,
    pub done: bool,
    pub next: usize,
    pub edits: usize,
    pub api_calls: ApiCalls,
    /// Lansweeper's quota is spent for longer than this invocation has left: wait this
    /// long (the state machine's `Wait` state, costing no Lambda time) before the next.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_seconds: u64,
    /// Another run holds the lease: this enrichment wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

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
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Writes between two saves of an invocation's progress: a killed invocation repeats at
/// most this many edits (which set values, so repeating one changes nothing).
const CHECKPOINT_EVERY: usize = 50;

/// One invocation: on the first, plan every edit; then write edits until `deadline`.
pub async fn enrich<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnrichInput,
    deadline: Option<Instant>,
) -> Result<EnrichOutput, PipelineError> {
    let meter = CallMeter::both(connectwise, lansweeper);
    let run_id = input.run_id.clone().unwrap_or_else(layout::new_run_id);
    if !settings.dry_run {
        if input.run_id.is_some() {
            lease::renew(store, &run_id).await?;
        } else if let Some(holder) = lease::acquire(store, &run_id).await? {
            tracing::warn!(%run_id, holder = %holder.run_id, "another run holds the lease; skipped");
            return Ok(EnrichOutput {
                run_id,
                done: true,
                skipped_for: Some(holder),
                ..EnrichOutput::default()
            });
        }
    }
    let start = if let Some(next) = input.next {
        next
    } else {
        plan(connectwise, lansweeper, store, settings, &run_id).await?;
        0
    };
    let plan: EnrichPlan = store.require(&layout::enrich_plan(&run_id)).await?;
    let edits: Vec<AssetEdit> = store.get_parts(&plan.edits).await?;
    quota::load(store, lansweeper).await?;
    let mut wait_seconds = 0;
    // An invocation entered again (Step Functions retried it after it died) goes on from
    // its last checkpoint instead of from its start.
    let mut progress: EnrichProgress = store
        .get(&layout::enrich_progress(&run_id, start))
        .await?
        .unwrap_or_default();
    let mut failed: Vec<Rejected> = store.get_parts(&progress.failed).await?;
    let calls_before = progress.api_calls;
    let mut next = progress.next.max(start);
    let checkpoint = |progress: &mut EnrichProgress, failed: &[Rejected], next: usize| {
        progress.next = next;
        progress.api_calls = calls_before;
        progress.api_calls += meter.read();
        let progress = progress.clone();
        let failed = failed.to_vec();
        let run_id = run_id.clone();
        async move {
            quota::save(store, lansweeper).await?;
            let mut progress = progress;
            progress.failed = store
                .put_parts(
                    &layout::enrich_failed(&run_id, start),
                    &failed,
                    settings.staging_ttl,
                )
                .await?;
            store
                .put(
                    &layout::enrich_progress(&run_id, start),
                    &progress,
                    settings.staging_ttl,
                )
                .await?;
            Ok::<EnrichProgress, PipelineError>(progress)
        }
    };
    if settings.dry_run {
        next = edits.len();
    } else {
        while next < edits.len() {
            // At least one write per invocation, so a continuation always progresses.
            if next > start && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            // Never wait for the quota past the deadline: hand the wait back instead. With
            // no wait, the write goes ahead (at least one per invocation, as above).
            if let Some(deadline) = deadline {
                let wait = lansweeper.wait_before_next().await;
                if !wait.is_zero() && Instant::now() + wait > deadline {
                    wait_seconds = wait.as_secs().max(1);
                    break;
                }
            }
            match write_edit(lansweeper, &edits[next]).await? {
                Ok(()) => progress.written += 1,
                Err(refused) => failed.push(refused),
            }
            next += 1;
            if (next - start) % CHECKPOINT_EVERY == 0 {
                progress = checkpoint(&mut progress, &failed, next).await?;
            }
        }
    }
    let progress = checkpoint(&mut progress, &failed, next).await?;
    Ok(EnrichOutput {
        run_id,
        done: next >= edits.len(),
        next,
        edits: edits.len(),
        api_calls: progress.api_calls,
        wait_seconds,
        skipped_for: None,
    })
}

/// Writes one asset's edit: a refusal of that asset fails it alone (the outer error
/// stops the invocation).
async fn write_edit(
    lansweeper: &LansweeperClient,
    edit: &AssetEdit,
) -> Result<Result<(), Rejected>, PipelineError> {
    let site = if edit.site.is_empty() {
        lansweeper.clone()
    } else {
        lansweeper.for_site(&edit.site)
    };
    match site
        .edit_asset_custom_fields(&edit.asset_key, &edit.values)
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(
            error @ (LansweeperError::GraphQl { .. }
            | LansweeperError::Http { .. }
            | LansweeperError::Forbidden(_)),
        ) => Ok(Err(Rejected {
            asset_key: edit.asset_key.clone(),
            reason: error.to_string(),
        })),
        Err(other) => Err(other.into()),
    }
}
