//! What every Lambda function shares: the environment built once per container over
//! DynamoDB, JSON logs, and [`step`], which runs one invocation's work in a span with
//! the run id and maps its error to the runtime's diagnostic.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use tracing::Instrument;

use crate::environment::{Environment, Lookup};
use crate::error::PipelineError;
use crate::pipeline::GroupInput;
use crate::states::{
    BulkWriteInput, EnrichInput, EnsureReferencesOutput, FetchAssetsInput, FetchAssetsOutput,
    MatchOutput, RecordReportInput,
};
use crate::store::DynamoStore;

/// Stop starting work this long before Lambda's deadline (a fifth of the time left
/// when that is shorter, as under `cargo lambda watch`).
const SAFETY_MARGIN: Duration = Duration::from_secs(60);

/// Logs (JSON when the function's log format says so) and the environment: the
/// secret, the clients and the table named by `SYNC_TABLE`.
///
/// # Errors
/// The secret cannot be read, or a setting is missing or malformed.
pub async fn start() -> Result<Environment<DynamoStore>, lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let lookup = Lookup::load().await?;
    let table = lookup
        .get("SYNC_TABLE")
        .ok_or_else(|| PipelineError::Config("SYNC_TABLE is not set".into()))?;
    let store = DynamoStore::from_env(table).await;
    Ok(Environment::connect(&lookup, store).await?)
}

/// Logs and the store alone, for a function that reads and writes nothing else (its
/// role is granted no secret).
///
/// # Errors
/// `SYNC_TABLE` is not set.
pub async fn start_store() -> Result<DynamoStore, lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("SYNC_TABLE")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| PipelineError::Config("SYNC_TABLE is not set".into()))?;
    Ok(DynamoStore::from_env(table).await)
}

/// The run an input belongs to, for the span of every log line of the invocation.
pub trait RunScoped {
    /// `None` while the run has no id yet (its first step makes one).
    fn run_id(&self) -> Option<&str>;
}

impl RunScoped for FetchAssetsInput {
    fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }
}

impl RunScoped for EnrichInput {
    fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }
}

macro_rules! run_scoped {
    ($($input:ty),*) => {$(
        impl RunScoped for $input {
            fn run_id(&self) -> Option<&str> {
                Some(&self.run_id)
            }
        }
    )*};
}
run_scoped!(
    FetchAssetsOutput,
    EnsureReferencesOutput,
    MatchOutput,
    GroupInput,
    BulkWriteInput,
    RecordReportInput
);

/// A step's failure as the state machine sees it: the error type names the kind of
/// failure, the message says which step and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct StepError {
    pub step: &'static str,
    #[source]
    pub source: PipelineError,
}

impl StepError {
    /// The `Error` the state machine's `Retry` and `Catch` match on: `Transient` is
    /// retried with backoff, `Permanent` fails the run at once with its record.
    pub fn error_type(&self) -> &'static str {
        if self.source.is_transient() {
            "Transient"
        } else {
            "Permanent"
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(error: StepError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// Runs one invocation's `work` inside a span with the step, the run id and the request
/// id, and logs a failure once before it goes back to the runtime.
///
/// # Errors
/// The work's error, as a [`StepError`] of `step`.
pub async fn step<In: RunScoped, Out>(
    step: &'static str,
    event: &LambdaEvent<In>,
    work: impl Future<Output = Result<Out, PipelineError>>,
) -> Result<Out, StepError> {
    let span = tracing::info_span!(
        "step",
        step,
        run_id = event.payload.run_id().unwrap_or("new"),
        request_id = %event.context.request_id,
    );
    async {
        work.await.map_err(|source| {
            let error = StepError { step, source };
            tracing::error!(error_type = error.error_type(), error = %error, "step failed");
            error
        })
    }
    .instrument(span)
    .await
}

/// When an invocation should stop starting work: Lambda's deadline less a margin.
pub fn deadline(context: &Context) -> Instant {
    let remaining = context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + remaining.saturating_sub(SAFETY_MARGIN.min(remaining / 5))
}
