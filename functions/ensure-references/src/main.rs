//! `ensure-references`: the state machine's ensure-references step. Wires clients once; the work is
//! `shared::pipeline::ensure_references`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::lambda::Environment;
use shared::pipeline::{self, FetchOutput};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FetchOutput>| async move {
            let span = tracing::info_span!("ensure-references", run_id = %event.payload.run_id);
            pipeline::ensure_references(&env.connectwise, &env.store, &env.settings, &event.payload)
                .instrument(span)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
