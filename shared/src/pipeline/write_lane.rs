//! `bulk-create` and `bulk-modify`: a Map iteration is a write lane, invoked until done;
//! each invocation writes groups of batches of configurations through ConnectWise's bulk
//! endpoint ([`super::create`], [`super::modify`]) and records each batch's result.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::batch::{BatchInput, WriteKind, batch_assets, finish_batch};
use super::create::bulk_create;
use super::lanes::planned_groups;
use super::modify::bulk_modify;
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::layout::{self, BatchRecord};
use crate::lease;
use crate::settings::SyncSettings;
use crate::states::{BulkWriteInput, BulkWriteOutput, RunId};
use crate::store::{Store, StoreExt};

/// A group of batches, what one Map iteration hands a bulk function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupInput {
    pub run_id: RunId,
    pub batches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOutput {
    pub run_id: RunId,
    pub batches: usize,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// Writes the lane's groups (`next`, `next + lanes`, …) one after the other until all are
/// written or the next could not end before `deadline`, judged by the longest group so
/// far (a group is always written, so every invocation moves the lane on); answers where
/// the lane goes on.
pub async fn write_lane<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BulkWriteInput,
    kind: WriteKind,
    deadline: Option<Instant>,
) -> Result<BulkWriteOutput, PipelineError> {
    if input.lanes == 0 || input.lane >= input.lanes || input.next % input.lanes != input.lane {
        return Err(PipelineError::Config(format!(
            "lane {} of {} cannot start at group {}",
            input.lane, input.lanes, input.next
        )));
    }
    let (create, modify) = planned_groups(store, &input.run_id).await?;
    let groups = match kind {
        WriteKind::Create => create,
        WriteKind::Modify => modify,
    };
    let mut output = BulkWriteOutput {
        run_id: input.run_id.clone(),
        lane: input.lane,
        lanes: input.lanes,
        next: input.next,
        ..BulkWriteOutput::default()
    };
    // The longest a group has taken in this invocation: no group starts that could not
    // end before the deadline, as far as this invocation has seen.
    let mut longest = Duration::ZERO;
    while let Some(group) = groups.get(output.next) {
        if output.groups > 0
            && deadline.is_some_and(|d| !room_for_another(Instant::now(), d, longest))
        {
            break;
        }
        let started = Instant::now();
        let one = GroupInput {
            run_id: input.run_id.clone(),
            batches: group.clone(),
        };
        let done = write_group(connectwise, store, settings, &one, kind).await?;
        longest = longest.max(started.elapsed());
        output.groups += 1;
        output.batches += done.batches;
        output.written += done.written;
        output.failed += done.failed;
        output.api_calls += done.api_calls;
        output.next += input.lanes;
    }
    output.done = output.next >= groups.len();
    Ok(output)
}

/// Whether a group that may take as long as the longest so far ends before `deadline`.
fn room_for_another(now: Instant, deadline: Instant, longest: Duration) -> bool {
    now + longest < deadline
}

/// Creates or updates every batch of a group, one after the other.
pub async fn write_group<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &GroupInput,
    kind: WriteKind,
) -> Result<GroupOutput, PipelineError> {
    lease::renew(store, &input.run_id).await?;
    let mut output = GroupOutput {
        run_id: input.run_id.clone(),
        batches: input.batches.len(),
        ..GroupOutput::default()
    };
    for batch in &input.batches {
        let one = BatchInput {
            run_id: input.run_id.clone(),
            batch: batch.clone(),
        };
        let meter = CallMeter::connectwise(connectwise);
        let outcome = match kind {
            WriteKind::Create => bulk_create(connectwise, store, settings, &one).await,
            WriteKind::Modify => bulk_modify(connectwise, store, settings, &one).await,
        };
        let done = match outcome {
            Ok(done) => done,
            // ConnectWise failed this batch past every retry: its assets fail, with the
            // reason, and the group goes on. A creation that may have been saved is found
            // by the next run's match through its `ls_asset_id`.
            Err(PipelineError::ConnectWise(error)) => {
                if let Some(recorded) = store
                    .get::<BatchRecord>(&layout::batch_result(batch))
                    .await?
                {
                    // Another invocation took the batch over and wrote it meanwhile.
                    output.written += recorded.written.len() as u64;
                    output.failed += recorded.failed.len() as u64;
                    continue;
                }
                tracing::warn!(batch = %batch, %error, "batch failed; its assets are reported failed");
                let reason = format!("the batch failed: {error}");
                let outcomes = batch_assets(store, batch, kind)
                    .await?
                    .into_iter()
                    .map(|(asset_key, _)| (asset_key, Err(reason.clone())))
                    .collect();
                finish_batch(store, settings, &one, &meter, outcomes, |_| None).await?
            }
            Err(other) => return Err(other),
        };
        output.written += done.written;
        output.failed += done.failed;
        output.api_calls += done.api_calls;
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Breaking it looks like: a lane starts a group it cannot finish (a minute left,
    /// groups taking two), the invocation dies mid-group and its batches are reported
    /// failed.
    #[test]
    fn a_group_starts_only_when_the_longest_so_far_still_fits() {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(room_for_another(now, now + minute, Duration::from_secs(20)));
        assert!(!room_for_another(
            now,
            now + minute,
            Duration::from_secs(120)
        ));
        assert!(
            !room_for_another(now, now + minute, minute),
            "no room to spare"
        );
        assert!(
            !room_for_another(now + minute, now, Duration::ZERO),
            "past the deadline"
        );
    }
}
