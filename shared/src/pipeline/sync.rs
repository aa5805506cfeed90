//! The five steps in the state machine's order on one machine: what `lscw sync` runs,
//! with the same functions and the same store layout as the Lambda functions.

use super::batch::WriteKind;
use super::ensure::ensure_references;
use super::fetch::fetch_assets;
use super::match_assets::match_assets;
use super::report::{RunReport, report};
use super::write_lane::write_lane;
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::LansweeperClient;
use crate::layout::new_run_id;
use crate::lease;
use crate::settings::SyncSettings;
use crate::states::FetchAssetsInput;
use crate::store::Store;

/// What a whole run reports as it goes, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Fetching { seen: u64, total: Option<u64> },
    Step(&'static str),
    Writing { written: u64, total: u64 },
}

/// The five steps in the state machine's order, on one machine: what `lscw sync` runs.
/// The run holds the lease from its first step and gives it up at the end, failed or not.
pub async fn run_sync<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    let run_id = new_run_id();
    let work = steps(connectwise, lansweeper, store, settings, &run_id, progress);
    let held = |outcome: &Result<RunReport, PipelineError>| {
        !settings.dry_run && !outcome.as_ref().is_ok_and(|r| r.skipped_for.is_some())
    };
    lease::release_after(store, &run_id, work, held).await
}

async fn steps<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    progress(Progress::Step("fetch-assets"));
    let input = FetchAssetsInput {
        run_id: Some(run_id.to_string()),
    };
    let fetched = fetch_assets(lansweeper, store, settings, &input, |seen, total| {
        progress(Progress::Fetching { seen, total });
    })
    .await?;
    if fetched.skipped_for.is_some() {
        return report(store, run_id, settings.dry_run).await;
    }
    progress(Progress::Step("ensure-references"));
    let ensured = ensure_references(connectwise, store, settings, &fetched).await?;
    progress(Progress::Step("match"));
    let matched = match_assets(connectwise, store, settings, &ensured).await?;
    if !settings.dry_run {
        let total = matched.to_create + matched.to_modify;
        let mut written = 0;
        progress(Progress::Writing { written, total });
        for (lanes, kind) in [
            (&matched.create_lanes, WriteKind::Create),
            (&matched.modify_lanes, WriteKind::Modify),
        ] {
            // The Maps' lanes one after the other, each invoked until done; a deadline
            // already passed writes one group an invocation, so progress moves per group.
            for lane in lanes {
                let mut input = lane.clone();
                loop {
                    let now = Some(std::time::Instant::now());
                    let done = write_lane(connectwise, store, settings, &input, kind, now).await?;
                    written += done.written + done.failed;
                    progress(Progress::Writing { written, total });
                    if done.done {
                        break;
                    }
                    input.next = done.next;
                }
            }
        }
    }
    progress(Progress::Step("report"));
    report(store, &matched.run_id, settings.dry_run).await
}
