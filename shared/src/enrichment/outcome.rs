//! The enrichment's outcome: its report, from what its invocations stored, and the whole
//! enrichment on one machine.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::plan::EnrichPlan;
use super::write::{EnrichProgress, enrich, invocation_starts};
use crate::calls::ApiCalls;
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::lansweeper::LansweeperClient;
use crate::layout::{self, LeaseHolder};
use crate::lease;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::states::{EnrichInput, EnrichOutput, RunId};
use crate::store::{Store, StoreExt};

/// The enrichment report: written + unchanged + failed = assets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichReport {
    pub run_id: String,
    pub dry_run: bool,
    /// ConnectWise was read whole (first run, every ENRICH_FULL_REFRESH_DAYS, or the
    /// linked companies changed); otherwise only what changed since the last run.
    #[serde(default)]
    pub full_read: bool,
    pub assets: u64,
    pub written: u64,
    pub unchanged: u64,
    pub failed: Vec<Rejected>,
    /// The mapped sites that could not be read, with why: the others were enriched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites_unread: Vec<String>,
    pub api_calls: ApiCalls,
    /// Another run held the lease: this enrichment wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// Puts the enrichment's report together from what its invocations stored.
pub async fn report<S: Store>(
    store: &S,
    run_id: &str,
    invocations: &[usize],
    dry_run: bool,
) -> Result<EnrichReport, PipelineError> {
    let plan: EnrichPlan = store.require(&layout::enrich_plan(run_id)).await?;
    let mut report = EnrichReport {
        run_id: run_id.to_string(),
        dry_run,
        full_read: plan.full_read,
        assets: plan.assets,
        unchanged: plan.unchanged,
        failed: store.get_parts(&plan.failed).await?,
        sites_unread: plan.sites_unread.clone(),
        api_calls: plan.api_calls,
        ..EnrichReport::default()
    };
    for start in invocations {
        let progress: EnrichProgress = store
            .require(&layout::enrich_progress(run_id, *start))
            .await?;
        report.written += progress.written;
        report
            .failed
            .extend(store.get_parts::<Rejected>(&progress.failed).await?);
        report.api_calls += progress.api_calls;
    }
    if dry_run {
        report.written = plan.total as u64;
    }
    Ok(report)
}

/// The enrichment recorded under `run_id`, whichever invocations wrote it (each one's
/// progress names where the next started), or None when the run had none.
///
/// # Errors
/// The store cannot be read.
pub async fn recorded<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<Option<EnrichReport>, PipelineError> {
    if store
        .get::<EnrichPlan>(&layout::enrich_plan(run_id))
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let starts = invocation_starts(store, run_id).await?;
    Ok(Some(report(store, run_id, &starts, false).await?))
}

/// The enrichment on one machine: invocations until done (each within `budget`, as in
/// Lambda), then the report and how many invocations it took. The run holds the
/// enrichment's lease throughout and gives it up at the end, failed or not.
///
/// # Errors
/// An invocation fails past its retries.
pub async fn run_enrich<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    budget: Option<Duration>,
) -> Result<(EnrichReport, usize), PipelineError> {
    let local = LocalEnrichment {
        budget,
        run_id: None,
        watch: &|_| {},
    };
    run_enrich_watched(
        connectwise,
        lansweeper,
        store,
        settings,
        &local,
        |_| async { Ok(()) },
    )
    .await
}

/// How the enrichment runs on one machine.
pub struct LocalEnrichment<'a> {
    /// Each invocation's time, as Lambda's deadline gives it.
    pub budget: Option<Duration>,
    /// A sync's run id, as the state machine runs the enrichment after it; a new one
    /// when none.
    pub run_id: Option<&'a str>,
    /// Told what each invocation did (for progress bars).
    pub watch: &'a (dyn Fn(&EnrichOutput) + Sync),
}

/// As [`run_enrich`], as `local` says, running `before_release` with the report before
/// the lease is given up (the state machine records the run's report before it releases
/// the enrichment's lease); a skipped enrichment runs it too.
///
/// # Errors
/// An invocation or `before_release` fails.
pub async fn run_enrich_watched<S, F, Fut>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    local: &LocalEnrichment<'_>,
    before_release: F,
) -> Result<(EnrichReport, usize), PipelineError>
where
    S: Store,
    F: FnOnce(&EnrichReport) -> Fut,
    Fut: Future<Output = Result<(), PipelineError>>,
{
    // Named before the first invocation, so the lease that invocation takes is given up
    // whatever it comes to (given up only by its holder: a skipped run's stays).
    let run_id = local.run_id.map_or_else(RunId::generate, RunId::from);
    let work = async {
        let first = enrich(
            connectwise,
            lansweeper,
            store,
            settings,
            &EnrichInput {
                run_id: Some(run_id.clone()),
                next: None,
            },
            local.budget.map(|b| Instant::now() + b),
        )
        .await?;
        if let Some(holder) = first.skipped_for {
            let report = EnrichReport {
                run_id: first.run_id.to_string(),
                dry_run: settings.dry_run,
                skipped_for: Some(holder),
                ..EnrichReport::default()
            };
            before_release(&report).await?;
            return Ok((report, 1));
        }
        (local.watch)(&first);
        let done = invocations(
            connectwise,
            lansweeper,
            store,
            settings,
            local.budget,
            first,
            local.watch,
        )
        .await?;
        before_release(&done.0).await?;
        Ok(done)
    };
    lease::ENRICHMENT
        .release_after(store, &run_id, work, |_| !settings.dry_run)
        .await
}

/// The invocations after `first`, until done, then the report.
async fn invocations<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    budget: Option<Duration>,
    first: EnrichOutput,
    watch: &(dyn Fn(&EnrichOutput) + Sync),
) -> Result<(EnrichReport, usize), PipelineError> {
    let mut starts = vec![0];
    let mut output = first;
    while !output.done {
        if output.wait_seconds > 0 {
            // What the state machine's Wait state does between two invocations: its seconds
            // are the quota's.
            tokio::time::sleep(lansweeper.quota_wait(output.wait_seconds)).await;
        }
        // An invocation that only handed back a wait shares its start (and its progress
        // record) with the one after it.
        if starts.last() != Some(&output.next) {
            starts.push(output.next);
        }
        let input = EnrichInput {
            run_id: Some(output.run_id.clone()),
            next: Some(output.next),
        };
        let deadline = budget.map(|b| Instant::now() + b);
        output = enrich(connectwise, lansweeper, store, settings, &input, deadline).await?;
        watch(&output);
    }
    let report = report(store, &output.run_id, &starts, settings.dry_run).await?;
    Ok((report, starts.len()))
}
