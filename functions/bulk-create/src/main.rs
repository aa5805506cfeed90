//! `bulk-create`: one invocation of a write lane: creates the configurations of its
//! groups of batches (`next`, `next + lanes`, …) within its time, and answers where the
//! lane goes on.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::{WriteKind, write_lane};
use shared::states::{BulkWriteInput, BulkWriteOutput};
use shared::store::Store;

/// One invocation of the state machine's `bulk-create` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<BulkWriteInput>,
) -> Result<BulkWriteOutput, StepError> {
    let input = &event.payload;
    let deadline = lambda::deadline(&event.context);
    let work = write_lane(
        &env.connectwise,
        &env.store,
        &env.settings,
        input,
        WriteKind::Create,
        Some(deadline),
    );
    lambda::step("bulk-create", &event, work).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::start().await?;
    let env = &env;
    lambda_runtime::run(service_fn(move |event| handler(env, event))).await
}

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};
    use shared::connectwise::linked::linked_asset_key;
    use shared::connectwise::{ListQuery, endpoint};
    use shared::environment::{Environment, Lookup};
    use shared::layout::CreateItem;
    use shared::pipeline::{
        GroupInput, ensure_references, fetch_assets, match_assets, planned_groups,
    };
    use shared::states::FetchAssetsInput;
    use shared::store::{MemoryStore, StoreExt};
    use simulators::lansweeper::{LansweeperOptions, SiteSpec};
    use simulators::scenario::LinkedPair;

    use super::*;

    #[tokio::test]
    async fn the_handler_creates_its_group_and_the_configurations_carry_their_assets() {
        let spec = SiteSpec {
            seed: 11,
            assets: 160,
        };
        let pair = LinkedPair::start(
            &spec,
            LansweeperOptions::sped_up(200.0),
            "127.0.0.1:0",
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let env = Environment::connect(&Lookup::from_values(pair.settings()), MemoryStore::new())
            .await
            .unwrap();
        let input = FetchAssetsInput {
            run_id: Some("create-run".into()),
        };
        let (cw, store, settings) = (&env.connectwise, &env.store, &env.settings);
        let fetched = fetch_assets(&env.lansweeper, store, settings, &input, |_, _| {})
            .await
            .unwrap();
        let ensured = ensure_references(cw, store, settings, &fetched)
            .await
            .unwrap();
        let matched = match_assets(cw, store, settings, &ensured).await.unwrap();
        assert!(
            matched.to_create > 0,
            "the scenario leaves assets to create"
        );
        let lane = matched.create_lanes[0].clone();
        let (groups, _) = planned_groups(store, &matched.run_id).await.unwrap();
        let group = GroupInput {
            run_id: matched.run_id.clone(),
            batches: groups[0].clone(),
        };
        let writes_before = pair.connectwise.control().writes();

        // No time left (the default context's deadline has passed): one group, then the
        // lane goes on at its next group.
        let output = handler(&env, LambdaEvent::new(lane.clone(), Context::default()))
            .await
            .unwrap();

        assert_eq!(output.run_id, "create-run");
        assert_eq!(output.groups, 1);
        assert_eq!(output.next, lane.next + lane.lanes);
        assert_eq!(output.done, output.next >= matched.create_groups);
        assert_eq!(output.batches, group.batches.len());
        assert_eq!(output.failed, 0);
        assert_eq!(output.written, matched.to_create.min(500));
        assert_eq!(
            pair.connectwise.control().writes() - writes_before,
            group.batches.len() as u64,
            "one bulk request per batch"
        );
        let linked: Vec<String> = cw
            .list(
                endpoint::CONFIGURATIONS,
                &ListQuery {
                    custom_field_conditions: Some(
                        "caption=\"ls_asset_id\" AND value != null".into(),
                    ),
                    fields: Some("id,customFields".into()),
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap()
            .iter()
            .filter_map(linked_asset_key)
            .collect();
        for batch in &group.batches {
            let items: Vec<CreateItem> = store.require(batch).await.unwrap();
            for item in items {
                let copies = linked.iter().filter(|k| **k == item.asset_key).count();
                assert_eq!(
                    copies, 1,
                    "{} is linked from {copies} configurations",
                    item.asset_key
                );
            }
        }
        let rematched = match_assets(cw, store, settings, &ensured).await.unwrap();
        assert_eq!(rematched.to_create, matched.to_create - output.written);
    }
}
