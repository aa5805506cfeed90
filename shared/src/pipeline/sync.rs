//! A whole run on one machine in the state machine's order, with the same functions and
//! the same store layout as the Lambda functions: what `lscw sync`, `lscw enrich`,
//! `lscw run` and `lscw demo` run, drawing only its progress.

use super::batch::WriteKind;
use super::ensure::ensure_references;
use super::fetch::fetch_assets;
use super::match_assets::match_assets;
use super::report::{RunReport, report};
use super::summary::{Retention, record_report};
use super::write_lane::write_lane;
use crate::connectwise::ConnectWiseClient;
use crate::enrichment::{self, EnrichReport, LocalEnrichment};
use crate::error::PipelineError;
use crate::lansweeper::LansweeperClient;
use crate::lease;
use crate::settings::SyncSettings;
use crate::states::{FetchAssetsInput, RecordReportInput, RunId};
use crate::store::Store;

/// What a whole run reports as it goes, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Fetching {
        seen: u64,
        total: Option<u64>,
    },
    /// A state of the state machine begins (its name in `sync.asl.json`).
    Step(&'static str),
    Writing {
        written: u64,
        total: u64,
    },
    /// An invocation of the enrichment ended: `written` of `total` edits, and how long
    /// Lansweeper's quota makes the next wait.
    Enriching {
        written: u64,
        total: u64,
        wait_seconds: u64,
    },
}

/// What a local run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The sync alone, its report recorded (`lscw sync`).
    Sync,
    /// The enrichment alone, under a run id of its own (`lscw enrich`).
    Enrichment,
    /// Both, as the state machine runs them: the enrichment under the sync's run id,
    /// then the report (`lscw run`, `lscw demo`).
    Both,
}

/// What a local run did.
#[derive(Debug, Clone, Default)]
pub struct LocalRun {
    pub sync: Option<RunReport>,
    pub enrichment: Option<EnrichReport>,
}

/// A whole run on one machine, in the state machine's order: `FetchAssets`,
/// `EnsureReferences`, `Match`, the write lanes, `ReleaseLease`, `Enrich` (its
/// invocations to the end, waiting out Lansweeper's quota as its `Wait` state does),
/// `RecordReport` and `ReleaseEnrichmentLease`; a run that finds the lease held records
/// itself skipped and stops (`RecordSkipped`), one that fails records its error
/// (`RecordFailure`). Each state is told to `progress` as it begins.
///
/// # Errors
/// A step fails past its retries (recorded first, but in a dry run).
pub async fn run_locally<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    scope: Scope,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<LocalRun, PipelineError> {
    let mut run = LocalRun::default();
    let run_id = RunId::generate();
    let record = |input: RecordReportInput, state: &'static str| async move {
        if settings.dry_run {
            return Ok(());
        }
        progress(Progress::Step(state));
        record_report(store, &input, &Retention::of(settings))
            .await
            .map(|_| ())
    };
    if scope != Scope::Enrichment {
        let synced = sync_under_lease(connectwise, lansweeper, store, settings, &run_id, progress);
        let synced = match synced.await {
            Ok(synced) => synced,
            Err(error) => {
                record(failure(&run_id, &error), "RecordFailure").await?;
                return Err(error);
            }
        };
        if let Some(holder) = &synced.skipped_for {
            let skipped = RecordReportInput {
                run_id: run_id.as_str().into(),
                skipped_for: Some(holder.clone()),
                ..RecordReportInput::default()
            };
            record(skipped, "RecordSkipped").await?;
            run.sync = Some(synced);
            return Ok(run);
        }
        run.sync = Some(synced);
    }
    let report_input = RecordReportInput {
        run_id: run_id.as_str().into(),
        ..RecordReportInput::default()
    };
    if scope == Scope::Sync {
        record(report_input, "RecordReport").await?;
        return Ok(run);
    }
    progress(Progress::Step("Enrich"));
    let watch = |output: &crate::states::EnrichOutput| {
        progress(Progress::Enriching {
            written: output.next as u64,
            total: output.edits as u64,
            wait_seconds: output.wait_seconds,
        });
    };
    let local = LocalEnrichment {
        // Invocations of 20 s, as the state machine's are of their time: progress moves
        // between them.
        budget: Some(std::time::Duration::from_secs(20)),
        run_id: run.sync.as_ref().map(|_| run_id.as_str()),
        watch: &watch,
    };
    // The report is recorded before the enrichment's lease is given up, as the state
    // machine's RecordReport comes before its ReleaseEnrichmentLease.
    let reported = std::sync::atomic::AtomicBool::new(false);
    let recorded = |_: &EnrichReport| async {
        if scope == Scope::Both {
            record(report_input, "RecordReport").await?;
            reported.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if !settings.dry_run {
            progress(Progress::Step("ReleaseEnrichmentLease"));
        }
        Ok(())
    };
    let enriched =
        enrichment::run_enrich_watched(connectwise, lansweeper, store, settings, &local, recorded)
            .await;
    match enriched {
        Ok((report, _)) => {
            run.enrichment = Some(report);
            Ok(run)
        }
        Err(error) => {
            // The sync's run failed in its enrichment: recorded as the state machine's
            // RecordFailure records it, unless its report was recorded already (the
            // lease's release is what failed then).
            if scope == Scope::Both && !reported.load(std::sync::atomic::Ordering::SeqCst) {
                record(failure(&run_id, &error), "RecordFailure").await?;
            }
            Err(error)
        }
    }
}

/// The record of a run that failed: the error as Step Functions' Catch hands it on.
fn failure(run_id: &RunId, error: &PipelineError) -> RecordReportInput {
    RecordReportInput {
        run_id: run_id.clone(),
        error: Some(serde_json::json!({
            "Error": if error.is_transient() { "Transient" } else { "Permanent" },
            "Cause": error.to_string(),
        })),
        ..RecordReportInput::default()
    }
}

/// The sync's steps alone, in the state machine's order, on one machine. The run holds
/// the lease from its first step and gives it up at the end, failed or not.
///
/// # Errors
/// A step fails past its retries.
pub async fn run_sync<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    let run_id = RunId::generate();
    sync_under_lease(connectwise, lansweeper, store, settings, &run_id, progress).await
}

async fn sync_under_lease<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    let work = steps(connectwise, lansweeper, store, settings, run_id, progress);
    let held = |outcome: &Result<RunReport, PipelineError>| {
        !settings.dry_run && !outcome.as_ref().is_ok_and(|r| r.skipped_for.is_some())
    };
    let report = lease::release_after(store, run_id, work, held).await?;
    if !settings.dry_run && report.skipped_for.is_none() {
        progress(Progress::Step("ReleaseLease"));
    }
    Ok(report)
}

async fn steps<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    progress(Progress::Step("FetchAssets"));
    let input = FetchAssetsInput {
        run_id: Some(run_id.into()),
    };
    let fetched = fetch_assets(lansweeper, store, settings, &input, |seen, total| {
        progress(Progress::Fetching { seen, total });
    })
    .await?;
    if fetched.skipped_for.is_some() {
        return report(store, run_id, settings.dry_run).await;
    }
    progress(Progress::Step("EnsureReferences"));
    let ensured = ensure_references(connectwise, store, settings, &fetched).await?;
    progress(Progress::Step("Match"));
    let matched = match_assets(connectwise, store, settings, &ensured).await?;
    if !settings.dry_run {
        let total = matched.to_create + matched.to_modify;
        let mut written = 0;
        progress(Progress::Writing { written, total });
        for (lanes, kind, state) in [
            (
                &matched.create_lanes,
                WriteKind::Create,
                "CreateConfigurations",
            ),
            (
                &matched.modify_lanes,
                WriteKind::Modify,
                "ModifyConfigurations",
            ),
        ] {
            if !lanes.is_empty() {
                progress(Progress::Step(state));
            }
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
    report(store, &matched.run_id, settings.dry_run).await
}
