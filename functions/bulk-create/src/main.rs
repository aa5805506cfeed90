//! `bulk-create`: one Map iteration: creates the configurations of a group of batches.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::{GroupInput, GroupOutput, WriteKind, write_group};
use shared::store::Store;

/// One invocation of the state machine's `bulk-create` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<GroupInput>,
) -> Result<GroupOutput, StepError> {
    let input = &event.payload;
    let work = write_group(
        &env.connectwise,
        &env.store,
        &env.settings,
        input,
        WriteKind::Create,
    );
    lambda::step("bulk-create", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
