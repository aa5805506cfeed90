//! `bulk-modify`: one Map iteration of the state machine, a group of batches of 50
//! configurations. Wires clients once; the work is `shared::pipeline::write_group`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::Environment;
use shared::pipeline::{self, GroupInput};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<GroupInput>| async move {
            let span = tracing::info_span!("bulk-modify", run_id = %event.payload.run_id);
            pipeline::write_group(
                &env.connectwise,
                &env.store,
                &env.settings,
                &event.payload,
                false,
            )
            .instrument(span)
            .await
            .map_err(Error::from)
        },
    ))
    .await
}
