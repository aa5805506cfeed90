//! `run-report`: the state machine's `RecordReport` state. Puts the run's report
//! together from the store and records its summary (status, counts) at `report/{run}`;
//! reads no API, so its role holds no secret.

// The runtime's future around the store's (the AWS SDK's) nests deeper than the default.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::{self, StepError};
use shared::pipeline::{Retention, RunSummary, record_report};
use shared::settings::SyncSettings;
use shared::states::RecordReportInput;
use shared::store::Store;

/// One invocation of the state machine's `RecordReport` state.
pub async fn handler<S: Store>(
    store: &S,
    retention: Retention,
    event: LambdaEvent<RecordReportInput>,
) -> Result<RunSummary, StepError> {
    let input = &event.payload;
    let summary = lambda::step(
        "run-report",
        &event,
        record_report(store, input, &retention),
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
    // The audit retention from the environment (`AUDIT_RETENTION_DAYS`); this function
    // reads no secret, so nothing else of the settings.
    let settings = SyncSettings::from_lookup(|key| std::env::var(key).ok())?;
    let (store, retention) = (&store, Retention::of(&settings));
    lambda_runtime::run(service_fn(move |event| handler(store, retention, event))).await
}
