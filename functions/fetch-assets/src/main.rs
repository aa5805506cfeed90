//! `fetch-assets`: pages every asset out of Lansweeper, normalises it and stages it in the store.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::environment::Environment;
use shared::lambda::{self, StepError};
use shared::pipeline::fetch_assets;
use shared::states::{FetchAssetsInput, FetchAssetsOutput};
use shared::store::Store;

/// One invocation of the state machine's `fetch-assets` state.
pub async fn handler<S: Store>(
    env: &Environment<S>,
    event: LambdaEvent<FetchAssetsInput>,
) -> Result<FetchAssetsOutput, StepError> {
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

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, Diagnostic, LambdaEvent};
    use shared::environment::{Environment, Lookup};
    use shared::store::{MemoryStore, StoreExt};
    use simulators::lansweeper::{LansweeperOptions, SiteSpec};
    use simulators::scenario::LinkedPair;

    use super::*;

    async fn pair(assets: usize) -> LinkedPair {
        let spec = SiteSpec { seed: 7, assets };
        LinkedPair::start(
            &spec,
            LansweeperOptions::sped_up(200.0),
            "127.0.0.1:0",
            "127.0.0.1:0",
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_handler_stages_every_asset_under_the_run_and_answers_the_keys() {
        let pair = pair(120).await;
        let lookup = Lookup::from_values(pair.settings());
        let env = Environment::connect(&lookup, MemoryStore::new())
            .await
            .unwrap();
        let input = FetchAssetsInput {
            run_id: Some("handler-run".into()),
        };
        let output = handler(&env, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();

        assert_eq!(output.run_id, "handler-run");
        assert_eq!(output.assets, 120);
        assert!(output.api_calls.lansweeper >= 1);
        assert_eq!(output.api_calls.connectwise, 0);
        let chunks = shared::layout::staged_parts(&env.store, "handler-run")
            .await
            .unwrap();
        assert!(!chunks.is_empty());
        assert!(
            chunks
                .iter()
                .all(|key| key.starts_with("run/handler-run/assets/")),
            "{chunks:?}"
        );
        let staged: Vec<serde_json::Value> = env.store.get_parts(&chunks).await.unwrap();
        assert_eq!(staged.len() as u64, output.staged);
        assert_eq!(staged.len() as u64, output.assets - output.rejected);
        let keys: std::collections::HashSet<&str> = staged
            .iter()
            .filter_map(|asset| asset["key"].as_str())
            .collect();
        assert_eq!(keys.len(), staged.len(), "every asset staged once");
    }

    #[test]
    fn a_misspelt_key_is_refused_rather_than_read_as_a_new_run() {
        let error =
            serde_json::from_value::<FetchAssetsInput>(serde_json::json!({"runID": "run-1"}))
                .unwrap_err()
                .to_string();
        assert!(error.contains("unknown field `runID`"), "{error}");
    }

    #[tokio::test]
    async fn a_failure_reaches_the_runtime_typed_named_and_without_the_secret() {
        let pair = pair(10).await;
        let wrong_token = "wrong-token-that-must-not-leak";
        let mut settings = pair.settings();
        settings.retain(|(key, _)| *key != "LS_TOKEN");
        settings.push(("LS_TOKEN", wrong_token.into()));
        let env = Environment::connect(&Lookup::from_values(settings), MemoryStore::new())
            .await
            .unwrap();
        let event = LambdaEvent::new(FetchAssetsInput::default(), Context::default());
        let error = handler(&env, event).await.unwrap_err();

        assert_eq!(error.step, "fetch-assets");
        let diagnostic = Diagnostic::from(error);
        assert_eq!(
            diagnostic.error_type, "Permanent",
            "a refused token will be refused again"
        );
        assert!(
            diagnostic.error_message.starts_with("fetch-assets: "),
            "{}",
            diagnostic.error_message
        );
        assert!(!diagnostic.error_message.contains(wrong_token));
        // Nothing staged; the run's lease stays for the state machine's ReleaseLease.
        let keys = env.store.keys();
        assert!(
            keys.iter().all(|key| !key.starts_with("run/")),
            "nothing staged: {keys:?}"
        );
    }
}
