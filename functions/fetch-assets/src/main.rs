//! `fetch-assets`: pages every asset out of Lansweeper, normalises it and stages it in the store.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::{FetchInput, FetchOutput, fetch_assets};
use shared::store::Store;

/// One invocation of the state machine's `fetch-assets` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<FetchInput>,
) -> Result<FetchOutput, StepError> {
    let input = &event.payload;
    let work = fetch_assets(&env.lansweeper, &env.store, &env.settings, input, |_, _| {});
    lambda::step("fetch-assets", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
