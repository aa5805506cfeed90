//! `lscw sync`: the five steps on one machine, with progress bars and the run report.

use std::path::Path;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shared::connectwise::ConnectWiseClient;
use shared::enrichment::{self, EnrichReport};
use shared::lansweeper::LansweeperClient;
use shared::pipeline::{self, Progress, RunReport, SyncSettings};
use shared::store::{DynamoStore, MemoryStore, Store};

/// DynamoDB when `AWS_ENDPOINT_URL` or `SYNC_TABLE` is set, the embedded store otherwise.
pub enum AnyStore {
    Memory(MemoryStore),
    Dynamo(DynamoStore),
}

impl AnyStore {
    pub async fn from_env() -> Self {
        let table = std::env::var("SYNC_TABLE").ok().filter(|t| !t.is_empty());
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty());
        match (table, endpoint) {
            (None, None) => Self::Memory(MemoryStore::new()),
            (table, _) => Self::Dynamo(
                DynamoStore::from_env(table.unwrap_or_else(|| "lscw-sync".into())).await,
            ),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Memory(_) => "embedded store",
            Self::Dynamo(_) => "DynamoDB",
        }
    }
}

pub async fn run(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &AnyStore,
    settings: &SyncSettings,
) -> Result<(RunReport, Option<pipeline::Plan>), String> {
    match store {
        AnyStore::Memory(store) => run_on(connectwise, lansweeper, store, settings).await,
        AnyStore::Dynamo(store) => run_on(connectwise, lansweeper, store, settings).await,
    }
}

async fn run_on<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
) -> Result<(RunReport, Option<pipeline::Plan>), String> {
    let bars = MultiProgress::new();
    let fetch = bars.add(ProgressBar::new_spinner());
    fetch.set_style(
        ProgressStyle::with_template("{spinner} fetch-assets  {bar:30} {pos}/{len} assets {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    fetch.enable_steady_tick(Duration::from_millis(120));
    let write = bars.add(ProgressBar::hidden());
    write.set_style(
        ProgressStyle::with_template("  bulk writes   {bar:30} {pos}/{len} configurations")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let step = bars.add(ProgressBar::new_spinner());
    let on_progress = |event: Progress| match event {
        Progress::Fetching { seen, total } => {
            fetch.set_length(total.unwrap_or(seen));
            fetch.set_position(seen);
        }
        Progress::Step(name) => {
            if name != "fetch-assets" {
                fetch.finish();
            }
            step.set_message(format!("step: {name}"));
        }
        Progress::Writing { written, total } => {
            if write.is_hidden() {
                write.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            write.set_length(total);
            write.set_position(written);
        }
    };
    let report = pipeline::run_sync(connectwise, lansweeper, store, settings, &on_progress)
        .await
        .map_err(|e| e.to_string())?;
    fetch.finish();
    write.finish();
    step.finish_and_clear();
    let plan = if settings.dry_run {
        Some(
            pipeline::plan(store, &report.run_id)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    Ok((report, plan))
}

pub async fn report(store: &AnyStore, run_id: &str) -> Result<RunReport, String> {
    let report = match store {
        AnyStore::Memory(store) => pipeline::report(store, run_id, false).await,
        AnyStore::Dynamo(store) => pipeline::report(store, run_id, false).await,
    };
    report.map_err(|e| match (e, store) {
        (pipeline::PipelineError::Store(shared::store::StoreError::Missing(_)), AnyStore::Memory(_)) => {
            format!("no run {run_id}: without SYNC_TABLE the store lives only as long as one lscw process")
        }
        (pipeline::PipelineError::Store(shared::store::StoreError::Missing(key)), AnyStore::Dynamo(_)) => {
            format!("no run {run_id} in the table ({key} is missing or expired)")
        }
        (other, _) => other.to_string(),
    })
}

pub fn print_report(report: &RunReport) {
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
    println!("  created     {:>6} {verb}", report.created);
    println!("  modified    {:>6} {verb}", report.modified);
    println!("  unchanged   {:>6}", report.unchanged);
    println!("  conflicts   {:>6}", report.conflicts.len());
    println!("  failed      {:>6}", report.failed.len());
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
        println!(
            "  conflict: {} ({}): {}; candidates {:?}",
            conflict.name, conflict.asset_key, conflict.reason, conflict.candidates
        );
    }
    if report.conflicts.len() > 5 {
        println!(
            "  … {} more conflicts in the JSON report",
            report.conflicts.len() - 5
        );
    }
    for failure in report.failed.iter().take(5) {
        println!("  failed: {}: {}", failure.asset_key, failure.reason);
    }
    if report.failed.len() > 5 {
        println!(
            "  … {} more failures in the JSON report",
            report.failed.len() - 5
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
    for conflict in plan.conflicts.iter().take(10) {
        println!(
            "  blocked {:?} ({}): {}; candidates {:?}",
            conflict.name, conflict.asset_key, conflict.reason, conflict.candidates
        );
    }
}

pub async fn enrich(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &AnyStore,
    settings: &SyncSettings,
) -> Result<EnrichReport, String> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(
        "ticket-agreement-enrich: reading ConnectWise and Lansweeper, writing changed assets",
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let outcome = match store {
        AnyStore::Memory(store) => {
            enrichment::run_enrich(connectwise, lansweeper, store, settings, None).await
        }
        AnyStore::Dynamo(store) => {
            enrichment::run_enrich(connectwise, lansweeper, store, settings, None).await
        }
    };
    spinner.finish_and_clear();
    outcome.map(|(report, _)| report).map_err(|e| e.to_string())
}

pub fn print_enrich_report(report: &EnrichReport) {
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
    println!(
        "  API calls   ConnectWise {}, Lansweeper {}",
        report.api_calls.connectwise, report.api_calls.lansweeper
    );
    for failure in report.failed.iter().take(5) {
        println!("  failed: {}: {}", failure.asset_key, failure.reason);
    }
}

pub fn write_json<T: serde::Serialize>(path: &Path, report: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
