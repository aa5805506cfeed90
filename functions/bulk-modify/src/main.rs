//! `bulk-modify`: one invocation of a write lane: writes the changed fields of its
//! groups of batches (`next`, `next + lanes`, …) within its time, and answers where the
//! lane goes on.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::{WriteKind, write_lane};
use shared::states::{BulkWriteInput, BulkWriteOutput};
use shared::store::Store;

/// One invocation of the state machine's `bulk-modify` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<BulkWriteInput>,
) -> Result<BulkWriteOutput, StepError> {
    let input = &event.payload;
    let deadline = lambda::deadline(&event.context);
    let work = write_lane(
        &env.connectwise,
        &env.store,
        &env.settings,
        input,
        WriteKind::Modify,
        Some(deadline),
    );
    lambda::step("bulk-modify", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
