//! `fetch-assets`: the state machine's fetch-assets step. Wires clients once; the work is
//! `shared::pipeline::fetch_assets`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::Environment;
use shared::pipeline::{self, FetchInput};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<FetchInput>| async move {
        let span = tracing::info_span!("fetch-assets", run_id = %event.payload.run_id.as_deref().unwrap_or("new"));
        pipeline::fetch_assets(&env.lansweeper, &env.store, &env.settings, &event.payload, |_, _| {}).instrument(span).await.map_err(Error::from)
    }))
    .await
}
