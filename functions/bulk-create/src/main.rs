//! `bulk-create`: the state machine's bulk-create step. Wires clients once; the work is
//! `shared::pipeline::bulk_create`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::Environment;
use shared::pipeline::{self, BatchInput};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<BatchInput>| async move {
            let span = tracing::info_span!("bulk-create", run_id = %event.payload.run_id);
            pipeline::bulk_create(&env.connectwise, &env.store, &env.settings, &event.payload)
                .instrument(span)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
