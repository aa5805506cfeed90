//! `ticket-agreement-enrich`: tickets, agreements and SLA onto Lansweeper assets. Works
//! within the invocation's time budget and answers a continuation; the state machine
//! invokes it again until `done`. The work is `shared::enrichment::enrich`.

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::enrichment::{self, EnrichInput};
use shared::lambda::Environment;
use tracing::Instrument;

/// Stop starting writes this long before Lambda's deadline (a fifth of the time left
/// when that is shorter, as under `cargo lambda watch`).
const SAFETY_MARGIN: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Environment::load().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EnrichInput>| async move {
        let span = tracing::info_span!("ticket-agreement-enrich", run_id = %event.payload.run_id.as_deref().unwrap_or("new"));
        let remaining = event.context.deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let deadline = Instant::now() + remaining.saturating_sub(SAFETY_MARGIN.min(remaining / 5));
        enrichment::enrich(&env.connectwise, &env.lansweeper, &env.store, &env.settings, &event.payload, Some(deadline))
            .instrument(span)
            .await
            .map_err(Error::from)
    }))
    .await
}
