//! `ticket-agreement-enrich`: tickets, agreements and SLA onto Lansweeper assets. Works
//! within the invocation's time and answers a continuation; the state machine invokes
//! it again until `done`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::enrichment::enrich;
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::states::{EnrichInput, EnrichOutput};
use shared::store::Store;

/// One invocation of the state machine's enrichment loop.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<EnrichInput>,
) -> Result<EnrichOutput, StepError> {
    let input = &event.payload;
    let deadline = lambda::deadline(&event.context);
    let work = enrich(
        &env.connectwise,
        &env.lansweeper,
        &env.store,
        &env.settings,
        input,
        Some(deadline),
    );
    lambda::step("ticket-agreement-enrich", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}
