//! The five steps in the state machine's order on one machine: what `lscw sync` runs,
//! with the same functions and the same store layout as the Lambda functions.

use super::fetch::{FetchInput, fetch_assets};
use super::r#match::match_assets;
use super::references::ensure_references;
use super::report::{RunReport, report};
use super::write::{GroupInput, WriteKind, write_group};
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::LansweeperClient;
use crate::lease;
use crate::run::new_run_id;
use crate::settings::SyncSettings;
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
    let outcome = steps(connectwise, lansweeper, store, settings, &run_id, progress).await;
    if !settings.dry_run
        && !matches!(
            outcome,
            Ok(RunReport {
                skipped_for: Some(_),
                ..
            })
        )
    {
        lease::release(store, &run_id).await?;
    }
    outcome
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
    let input = FetchInput {
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
        for (groups, kind) in [
            (&matched.create_groups, WriteKind::Create),
            (&matched.modify_groups, WriteKind::Modify),
        ] {
            for group in groups {
                let input = GroupInput {
                    run_id: matched.run_id.clone(),
                    batches: group.clone(),
                };
                let done = write_group(connectwise, store, settings, &input, kind).await?;
                written += done.written + done.failed;
                progress(Progress::Writing { written, total });
            }
        }
    }
    progress(Progress::Step("report"));
    report(store, &matched.run_id, settings.dry_run).await
}
