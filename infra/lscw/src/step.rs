//! `lscw step NAME --input FILE --output FILE`: one state of the state machine in a
//! process of its own, with the state's real input and output, as a Lambda invocation
//! would run it. What `make bench` measures each step's memory, time and state size with.

use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::environment::Environment;
use shared::pipeline::{self, WriteKind};
use shared::states::{BulkWriteInput, RecordReportInput};

use crate::store::AnyStore;

/// The states `lscw step` runs.
#[derive(Clone, Copy, ValueEnum)]
pub enum StepName {
    FetchAssets,
    EnsureReferences,
    Match,
    BulkCreate,
    BulkModify,
    RunReport,
    /// The state machine's ReleaseLease (input: `{"runId": …}`).
    ReleaseLease,
    /// Not a state: the store's item count and largest item (JSON).
    StoreStats,
}

pub async fn run(
    env: &Environment<AnyStore>,
    step: StepName,
    input: Option<&Path>,
    output: &Path,
) -> anyhow::Result<()> {
    let (cw, ls, store, settings) = (&env.connectwise, &env.lansweeper, &env.store, &env.settings);
    let input = || -> anyhow::Result<&Path> { input.context("this step needs --input") };
    match step {
        StepName::FetchAssets => {
            let answer =
                pipeline::fetch_assets(ls, store, settings, &read(input()?)?, |_, _| {}).await?;
            write(output, &answer)
        }
        StepName::EnsureReferences => {
            let answer = pipeline::ensure_references(cw, store, settings, &read(input()?)?).await?;
            write(output, &answer)
        }
        StepName::Match => {
            let answer = pipeline::match_assets(cw, store, settings, &read(input()?)?).await?;
            write(output, &answer)
        }
        StepName::BulkCreate | StepName::BulkModify => {
            let kind = if matches!(step, StepName::BulkCreate) {
                WriteKind::Create
            } else {
                WriteKind::Modify
            };
            let lane: BulkWriteInput = read(input()?)?;
            // As in Lambda: the template's 300 s, less the margin the functions keep.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
            let answer =
                pipeline::write_lane(cw, store, settings, &lane, kind, Some(deadline)).await?;
            write(output, &answer)
        }
        StepName::RunReport => {
            let report_input: RecordReportInput = read(input()?)?;
            let retention = pipeline::Retention::of(settings);
            let answer = pipeline::record_report(store, &report_input, &retention).await?;
            write(output, &answer)
        }
        StepName::ReleaseLease => {
            let report_input: RecordReportInput = read(input()?)?;
            let released = shared::lease::release(store, &report_input.run_id).await?;
            write(output, &released)
        }
        StepName::StoreStats => {
            let AnyStore::Embedded(embedded) = store else {
                anyhow::bail!("store-stats reads lscw's embedded store");
            };
            let (items, largest, key) = embedded.stats().await?;
            write(
                output,
                &serde_json::json!({"items": items, "largestBytes": largest, "largestKey": key}),
            )
        }
    }
}

fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not this step's input", path.display()))
}

fn write<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}
