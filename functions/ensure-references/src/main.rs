//! `ensure-references`: finds or creates the locations, manufacturers, statuses and types the assets name.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::ensure_references;
use shared::states::{EnsureReferencesOutput, FetchAssetsOutput};
use shared::store::Store;

/// One invocation of the state machine's `ensure-references` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<FetchAssetsOutput>,
) -> Result<EnsureReferencesOutput, StepError> {
    let input = &event.payload;
    let work = ensure_references(&env.connectwise, &env.store, &env.settings, input);
    lambda::step("ensure-references", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
