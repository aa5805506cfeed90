//! `lscw sync`, `enrich` and `run`: a local run (the library's [`pipeline::run_locally`])
//! drawn with progress bars, and its reports printed.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shared::enrichment::EnrichReport;
use shared::environment::Environment;
use shared::error::PipelineError;
use shared::pipeline::{self, LocalRun, Progress, RunReport, Scope};
use shared::store::StoreError;

use crate::store::AnyStore;

/// A local run with progress bars (and `observe` told each step as it comes); in a dry
/// run, also the sync's plan. The run itself is the library's: this only draws it.
pub async fn run_local(
    env: &Environment<AnyStore>,
    scope: Scope,
    observe: &(dyn Fn(&Progress) + Sync),
) -> anyhow::Result<(LocalRun, Option<pipeline::Plan>)> {
    let bars = MultiProgress::new();
    let style = |template: &str| {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    };
    let fetch = bars.add(ProgressBar::hidden());
    fetch.set_style(style(
        "{spinner} fetch-assets  {bar:30} {pos}/{len} assets {msg}",
    ));
    let write = bars.add(ProgressBar::hidden());
    write.set_style(style("  bulk writes   {bar:30} {pos}/{len} configurations"));
    let enrich = bars.add(ProgressBar::hidden());
    enrich.set_style(style(
        "{spinner} enrichment   {bar:30} {pos}/{len} assets written {msg}",
    ));
    let step = bars.add(ProgressBar::new_spinner());
    let show = |bar: &ProgressBar| {
        if bar.is_hidden() {
            // Drawn only on a terminal (indicatif's default for standard error).
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    };
    let on_progress = |event: Progress| {
        observe(&event);
        match event {
            Progress::Fetching { seen, total } => {
                show(&fetch);
                fetch.set_length(total.unwrap_or(seen));
                fetch.set_position(seen);
            }
            Progress::Step(name) => {
                if name != "FetchAssets" {
                    fetch.finish();
                }
                if name == "Enrich" {
                    show(&enrich);
                    enrich.set_message("(reading ConnectWise and Lansweeper)");
                }
                step.set_message(format!("step: {name}"));
            }
            Progress::Writing { written, total } => {
                show(&write);
                write.set_length(total);
                write.set_position(written);
            }
            Progress::Enriching {
                written,
                total,
                wait_seconds,
            } => {
                enrich.set_length(total);
                enrich.set_position(written);
                enrich.set_message(if wait_seconds > 0 {
                    format!("(Lansweeper's quota is spent: {wait_seconds} s until the next write)")
                } else {
                    String::new()
                });
            }
        }
    };
    let run = pipeline::run_locally(
        &env.connectwise,
        &env.lansweeper,
        &env.store,
        &env.settings,
        scope,
        &on_progress,
    )
    .await;
    for bar in [&fetch, &write, &enrich] {
        bar.finish_and_clear();
    }
    step.finish_and_clear();
    let run = run?;
    let plan = match &run.sync {
        Some(report) if env.settings.dry_run => {
            Some(pipeline::plan(&env.store, &report.run_id).await?)
        }
        _ => None,
    };
    Ok((run, plan))
}

/// `lscw sync`: the sync alone, its report recorded; in a dry run, also its plan.
pub async fn run(
    env: &Environment<AnyStore>,
) -> anyhow::Result<(RunReport, Option<pipeline::Plan>)> {
    let (run, plan) = run_local(env, Scope::Sync, &|_| {}).await?;
    let report = run.sync.context("the sync ran")?;
    Ok((report, plan))
}

/// `lscw enrich`: the enrichment alone, under a run id of its own.
pub async fn enrich(env: &Environment<AnyStore>) -> anyhow::Result<EnrichReport> {
    let (run, _) = run_local(env, Scope::Enrichment, &|_| {}).await?;
    run.enrichment.context("the enrichment ran")
}

/// A run's report from the store, with what to do when it is not there.
pub async fn report(store: &AnyStore, run_id: &str) -> anyhow::Result<Option<RunReport>> {
    match pipeline::report(store, run_id, false).await {
        Ok(report) => Ok(Some(report)),
        Err(PipelineError::Store(StoreError::Missing(_))) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Why `lscw report` has nothing for `run_id`.
pub fn no_run(store: &AnyStore, run_id: &str) -> anyhow::Error {
    match store {
        AnyStore::Memory(_) => anyhow::anyhow!("no run {run_id} in this process's store"),
        AnyStore::Embedded(embedded) => anyhow::anyhow!(
            "no run {run_id} in {} (missing, or its records and trail expired)",
            embedded.path().display()
        ),
        AnyStore::Dynamo(_) => {
            anyhow::anyhow!(
                "no run {run_id} in the table (missing, or its records and trail expired)"
            )
        }
    }
}

#[allow(clippy::too_many_lines, reason = "the report as printed, part by part")]
pub fn print_report(report: &RunReport) {
    if let Some(holder) = &report.skipped_for {
        println!(
            "Run {} skipped: run {} holds the lease (since {}, epoch s); nothing was written",
            report.run_id, holder.run_id, holder.started_at
        );
        return;
    }
    let verb = if report.dry_run { "(would be)" } else { "" };
    println!(
        "Run {}{}",
        report.run_id,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    println!("  assets      {:>6}", report.assets);
    println!("  created     {:>6} {verb}", report.counts.created);
    println!("  modified    {:>6} {verb}", report.counts.modified);
    println!("  unchanged   {:>6}", report.counts.unchanged);
    if report.counts.ignored > 0 {
        println!("  ignored     {:>6}", report.counts.ignored);
    }
    println!("  conflicts   {:>6}", report.conflicts.len());
    println!("  failed      {:>6}", report.failed.len());
    if !report.unmapped.is_empty() {
        println!("  unmapped    {:>6}", report.unmapped.len());
    }
    if report.counts.retired + report.counts.reactivated > 0 {
        println!("  retired     {:>6} {verb}", report.counts.retired);
        println!("  reactivated {:>6} {verb}", report.counts.reactivated);
    }
    if let Some(guard) = &report.guard {
        println!(
            "  retirement held: {} (would retire: {}{}); `lscw retire --approve {}` lets them through",
            guard.reason,
            guard.first.join(", "),
            if guard.would_retire > guard.first.len() as u64 {
                ", …"
            } else {
                ""
            },
            report.run_id
        );
    }
    for failure in report.retire_failed.iter().take(5) {
        println!(
            "  retirement failed: {}: {}",
            failure.asset_key, failure.reason
        );
    }
    if report.sections.len() > 1 {
        println!(
            "  {:<34} {:>6} {:>7} {:>8} {:>9} {:>9} {:>6} {:>8}",
            "by site → company",
            "assets",
            "created",
            "modified",
            "unchanged",
            "conflicts",
            "failed",
            "unmapped"
        );
        for section in &report.sections {
            let company = section.company.as_deref().unwrap_or("(none)");
            println!(
                "  {:<34} {:>6} {:>7} {:>8} {:>9} {:>9} {:>6} {:>8}",
                format!("{} → {company}", section.site),
                section.assets,
                section.counts.created,
                section.counts.modified,
                section.counts.unchanged,
                section.conflicts,
                section.failed,
                section.unmapped
            );
        }
    }
    let references: Vec<String> = report
        .references_created
        .iter()
        .map(|(kind, names)| format!("{} {:?}", names.len(), kind).to_lowercase())
        .collect();
    if !references.is_empty() {
        println!("  references created {verb}: {}", references.join(", "));
    }
    println!(
        "  API calls   ConnectWise {}, Lansweeper {}",
        report.api_calls.connectwise, report.api_calls.lansweeper
    );
    for conflict in report.conflicts.iter().take(5) {
        let merge = conflict
            .merge
            .as_deref()
            .map(|m| format!("; one device entered twice: `{m}`"))
            .unwrap_or_default();
        println!(
            "  conflict: {} ({}): {}; candidates {:?}{merge}",
            conflict.name, conflict.asset_key, conflict.reason, conflict.candidates
        );
    }
    if report.conflicts.len() > 5 {
        println!(
            "  … {} more conflicts in the JSON report",
            report.conflicts.len() - 5
        );
    }
    print_first(&report.failed, 5, "failed: ", "failures");
    for section in &report.sections {
        if let Some(error) = &section.error {
            println!("  site {}: {error}", section.site);
        }
    }
    print_first(&report.unmapped, 3, "unmapped: ", "unmapped assets");
    // Assets whose user is no contact, or several: their contact was left as it is.
    print_first(
        &report.contacts,
        3,
        "",
        "assets whose contact was left as it is,",
    );
}

/// The first `shown` assets of a list with their reasons, and how many more the JSON
/// report holds.
fn print_first(assets: &[shared::staging::Rejected], shown: usize, label: &str, what: &str) {
    for asset in assets.iter().take(shown) {
        println!("  {label}{}: {}", asset.asset_key, asset.reason);
    }
    if assets.len() > shown {
        println!(
            "  … {} more {what} in the JSON report",
            assets.len() - shown
        );
    }
}

pub fn print_plan(plan: &pipeline::Plan) {
    println!("Plan");
    for (kind, names) in &plan.references {
        println!(
            "  create {:?} {}",
            kind,
            names.join(", ").chars().take(200).collect::<String>()
        );
    }
    for item in plan.create.iter().take(10) {
        println!(
            "  create configuration {:?} ({})",
            item.name, item.asset_key
        );
    }
    if plan.create.len() > 10 {
        println!(
            "  … and {} more configurations to create",
            plan.create.len() - 10
        );
    }
    for item in plan.modify.iter().take(10) {
        println!(
            "  change configuration {} {:?}:",
            item.configuration_id, item.name
        );
        for diff in &item.unmatched_fields {
            let current = diff.current.as_deref().unwrap_or("(empty)");
            println!(
                "      {}: {:?} → {:?}",
                diff.field,
                current.chars().take(60).collect::<String>(),
                diff.desired.chars().take(60).collect::<String>()
            );
        }
    }
    if plan.modify.len() > 10 {
        println!(
            "  … and {} more configurations to change",
            plan.modify.len() - 10
        );
    }
    let held = if plan.guard.is_some() {
        " (held by the guard)"
    } else {
        ""
    };
    for item in plan.retire.iter().take(10) {
        let why = if item.asset_gone {
            "its asset left Lansweeper"
        } else {
            "its asset is in a retired state"
        };
        println!(
            "  retire configuration {} {:?}{held}: {why}",
            item.configuration_id, item.name
        );
    }
    if plan.retire.len() > 10 {
        println!(
            "  … and {} more configurations to retire{held}",
            plan.retire.len() - 10
        );
    }
    if let Some(guard) = &plan.guard {
        println!("  retirement guard: {}", guard.reason);
    }
    for conflict in plan.conflicts.iter().take(10) {
        println!(
            "  blocked {:?} ({}): {}; candidates {:?}",
            conflict.name, conflict.asset_key, conflict.reason, conflict.candidates
        );
    }
}

pub fn print_enrich_report(report: &EnrichReport) {
    if let Some(holder) = &report.skipped_for {
        println!(
            "Enrichment {} skipped: run {} holds the lease; nothing was written",
            report.run_id, holder.run_id
        );
        return;
    }
    let verb = if report.dry_run { "(would be)" } else { "" };
    println!(
        "Enrichment {}{}",
        report.run_id,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    println!("  assets      {:>6}", report.assets);
    println!("  written     {:>6} {verb}", report.written);
    println!("  unchanged   {:>6}", report.unchanged);
    println!("  failed      {:>6}", report.failed.len());
    for site in &report.sites_unread {
        println!("  not enriched: {site}");
    }
    println!(
        "  API calls   ConnectWise {}, Lansweeper {} ({})",
        report.api_calls.connectwise,
        report.api_calls.lansweeper,
        if report.full_read {
            "ConnectWise read whole"
        } else {
            "only what changed in ConnectWise was read"
        }
    );
    for failure in report.failed.iter().take(5) {
        println!("  failed: {}: {}", failure.asset_key, failure.reason);
    }
}

/// `lscw runs`: the recent runs, newest first.
pub async fn print_runs(store: &AnyStore) -> anyhow::Result<()> {
    let runs = pipeline::recent_runs(store).await?;
    if runs.is_empty() {
        println!("no run recorded in this store ({})", store.describe());
        return Ok(());
    }
    println!(
        "{:<28} {:<16} {:>6} {:<24} {:>6} {:>7} {:>8} {:>7} {:>9} {:>6} {:>8}",
        "run",
        "started (UTC)",
        "took",
        "status",
        "assets",
        "created",
        "modified",
        "retired",
        "conflicts",
        "failed",
        "enriched"
    );
    for run in runs.iter().rev() {
        let status = serde_json::to_value(run.status)?;
        let started = run.duration_seconds.map_or_else(
            || "-".to_string(),
            |took| shared::clock::utc_minute(run.recorded_at.saturating_sub(took)),
        );
        let took = run
            .duration_seconds
            .map_or_else(|| "-".to_string(), |s| format!("{}m", s.div_ceil(60)));
        let enriched = run
            .enrichment
            .as_ref()
            .map_or_else(|| "-".to_string(), |e| e.written.to_string());
        println!(
            "{:<28} {:<16} {:>6} {:<24} {:>6} {:>7} {:>8} {:>7} {:>9} {:>6} {:>8}",
            run.run_id,
            started,
            took,
            status.as_str().unwrap_or_default(),
            run.assets,
            run.counts.created,
            run.counts.modified,
            run.counts.retired,
            run.conflicts,
            run.failed,
            enriched
        );
        if let Some(holder) = &run.skipped_for {
            println!("  skipped: run {} held the lease", holder.run_id);
        }
        if let Some(error) = &run.error {
            let first_line = error.lines().next().unwrap_or_default();
            println!("  failed: {}", shared::normalize::shorten(first_line, 160));
        }
    }
    Ok(())
}

pub fn write_json<T: serde::Serialize>(path: &Path, report: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
