//! `run-report`: the state machine's `RecordReport` state. Puts the run's report
//! together from the store and records its summary (status, counts) at `report/{run}`;
//! reads no API, so its role holds no secret.

// The runtime's future around the store's (the AWS SDK's) nests deeper than the default.
#![recursion_limit = "256"]

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::{self, StepError};
use shared::pipeline::{ReportInput, RunSummary, record_report};
use shared::settings::SyncSettings;
use shared::store::Store;

/// One invocation of the state machine's `RecordReport` state.
pub async fn handler<S: Store>(
    store: &S,
    report_ttl: Duration,
    event: LambdaEvent<ReportInput>,
) -> Result<RunSummary, StepError> {
    let input = &event.payload;
    let summary = lambda::step(
        "run-report",
        &event,
        record_report(store, input, report_ttl),
    )
    .await?;
    // Embedded metric format: CloudWatch reads these raw lines of the log as metrics.
    for line in summary.metric_lines() {
        println!("{line}");
    }
    Ok(summary)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = lambda::start_store().await?;
    let (store, ttl) = (&store, SyncSettings::default().report_ttl);
    lambda_runtime::run(service_fn(move |event| handler(store, ttl, event))).await
}
