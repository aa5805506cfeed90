//! `match`: the state machine's match step. Wires clients once; the work is
//! `shared::pipeline::match_assets`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::Environment;
use shared::pipeline::{self, EnsureOutput};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EnsureOutput>| async move {
            let span = tracing::info_span!("match", run_id = %event.payload.run_id);
            pipeline::match_assets(&env.connectwise, &env.store, &env.settings, &event.payload)
                .instrument(span)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
