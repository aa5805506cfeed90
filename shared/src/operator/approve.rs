//! `lscw retire --approve <run-id>`: lets one run's held retirements through. Exactly the
//! configurations that run planned to retire are written, once, under the run lease.

use serde::Serialize;

use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::layout::{self, BatchRecord, MatchRecord, ModifyItem};
use crate::lease;
use crate::pipeline::{BatchInput, bulk_modify, put_batches};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

/// What an approval wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub retired: u64,
    pub failed: Vec<Rejected>,
}

/// Writes the retirements the guard held in `run_id`.
///
/// # Errors
/// The run held none (or they were approved already), its records expired, another run
/// holds the lease, or ConnectWise fails past its retries.
pub async fn approve_retirement<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
) -> Result<Approval, PipelineError> {
    let mut record: MatchRecord =
        store
            .get(&layout::match_record(run_id))
            .await?
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "no run {run_id} in the store (its records last {} hours)",
                    settings.staging_ttl.as_secs() / 3600
                ))
            })?;
    if !record.approved.is_empty() {
        return Err(PipelineError::Config(format!(
            "the retirements of run {run_id} were approved and written already"
        )));
    }
    if record.held.is_empty() {
        return Err(PipelineError::Config(format!(
            "run {run_id} held no retirement"
        )));
    }
    let approver = format!("{run_id}-approved");
    if let Some(holder) = lease::acquire(store, &approver).await? {
        return Err(PipelineError::Config(format!(
            "run {} holds the lease; approve when it has ended",
            holder.run_id
        )));
    }
    let work = write_held(connectwise, store, settings, run_id, &mut record);
    lease::release_after(store, &approver, work, |_| true).await
}

async fn write_held<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    record: &mut MatchRecord,
) -> Result<Approval, PipelineError> {
    let items: Vec<ModifyItem> = store.get_parts(&record.held).await?;
    let mut approval = Approval::default();
    let batches = put_batches(
        store,
        settings,
        run_id,
        "retire-approved",
        &items,
        &mut approval.failed,
    )
    .await?;
    for batch in &batches {
        let input = BatchInput {
            run_id: run_id.into(),
            batch: batch.clone(),
        };
        bulk_modify(connectwise, store, settings, &input).await?;
        let result: BatchRecord = store.require(&layout::batch_result(batch)).await?;
        approval.retired += result.written.len() as u64;
        approval.failed.extend(result.failed);
    }
    record.approved = batches;
    store
        .put(
            &layout::match_record(run_id),
            &*record,
            settings.staging_ttl,
        )
        .await?;
    tracing::info!(%run_id, retired = approval.retired, failed = approval.failed.len(), "held retirements approved");
    Ok(approval)
}
