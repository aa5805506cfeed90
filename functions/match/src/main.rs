//! `match`: matches the staged assets to the configurations in scope and stores the write batches.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::match_assets;
use shared::states::{EnsureReferencesOutput, MatchOutput};
use shared::store::Store;

/// One invocation of the state machine's `match` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<EnsureReferencesOutput>,
) -> Result<MatchOutput, StepError> {
    let input = &event.payload;
    let work = match_assets(&env.connectwise, &env.store, &env.settings, input);
    lambda::step("match", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
