//! One invocation of `ticket-agreement-enrich`: plans on the first, then writes the
//! planned edits until its deadline and hands back where it stopped.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::enrich_key;
use super::plan::{AssetEdit, EnrichPlan, plan, plan_key};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, LansweeperError};
use crate::lease::{self, LeaseHolder};
use crate::run::new_run_id;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    /// Another run holds the lease: this enrichment wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// What one invocation wrote, as the report reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnrichProgress {
    pub written: u64,
    pub failed: Vec<Rejected>,
    pub api_calls: ApiCalls,
}

pub(crate) fn progress_key(run_id: &str, start: usize) -> String {
    enrich_key(run_id, &format!("progress/{start:07}"))
}

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
    let run_id = input.run_id.clone().unwrap_or_else(new_run_id);
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
    let plan: EnrichPlan = store.require(&plan_key(&run_id)).await?;
    let edits: Vec<AssetEdit> = store.get_parts(&plan.edits).await?;
    let mut progress = EnrichProgress::default();
    let mut next = start;
    if settings.dry_run {
        next = edits.len();
    } else {
        while next < edits.len() {
            // At least one write per invocation, so a continuation always progresses.
            if next > start && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let edit = &edits[next];
            match lansweeper
                .edit_asset_custom_fields(&edit.asset_key, &edit.values)
                .await
            {
                Ok(_) => progress.written += 1,
                Err(error @ (LansweeperError::GraphQl { .. } | LansweeperError::Http { .. })) => {
                    progress.failed.push(Rejected {
                        asset_key: edit.asset_key.clone(),
                        reason: error.to_string(),
                    });
                }
                Err(other) => return Err(other.into()),
            }
            next += 1;
        }
    }
    progress.api_calls = meter.read();
    store
        .put(
            &progress_key(&run_id, start),
            &progress,
            settings.staging_ttl,
        )
        .await?;
    Ok(EnrichOutput {
        run_id,
        done: next >= edits.len(),
        next,
        edits: edits.len(),
        api_calls: progress.api_calls,
        skipped_for: None,
    })
}
