//! `lscw dev-env`: everything `cargo lambda invoke` needs on one machine, against a moto
//! server already running: both simulators on fixed ports, the table and the secret in
//! moto, and a sample run staged up to `match` (run id `sample-run`), so every event in
//! `infra/events/` names data that exists. Writes the functions' environment to a file
//! for `cargo lambda watch --env-file`, then serves until stopped.

use std::path::Path;

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use shared::environment::{Environment, Lookup};
use shared::pipeline::{self};
use shared::states::FetchAssetsInput;
use shared::store::DynamoStore;
use simulators::connectwise as cw_sim;
use simulators::lansweeper::{self as ls_sim, SiteSpec};
use simulators::scenario::{LinkedPair, TARGET_COMPANY};

pub const RUN_ID: &str = "sample-run";
const TABLE: &str = "lscw-sync";

#[allow(
    clippy::too_many_lines,
    reason = "the local deployment resource by resource, in the order the deployment steps (docs/deploying.md) create them"
)]
pub async fn run(endpoint: &str, env_file: &Path, events: Option<&Path>) -> anyhow::Result<()> {
    let spec = SiteSpec {
        seed: 1,
        assets: 300,
    };
    let pair = LinkedPair::start(
        &spec,
        ls_sim::LansweeperOptions::default(),
        "127.0.0.1:8480",
        "127.0.0.1:8490",
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let (cw, ls) = (&pair.connectwise, &pair.lansweeper);

    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "dev-env",
        ))
        .load()
        .await;
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    if dynamodb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .is_err()
    {
        dynamodb
            .create_table()
            .table_name(TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "create table: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
    }
    let secret = serde_json::json!({
        "CW_COMPANY_ID": cw_sim::COMPANY_ID,
        "CW_PUBLIC_KEY": cw_sim::PUBLIC_KEY,
        "CW_PRIVATE_KEY": cw_sim::PRIVATE_KEY,
        "CW_CLIENT_ID": cw_sim::CLIENT_ID,
        "LS_TOKEN": ls_sim::TOKEN,
    });
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let secret_arn = match secrets
        .create_secret()
        .name("lscw/credentials")
        .secret_string(secret.to_string())
        .send()
        .await
    {
        Ok(created) => created.arn().unwrap_or_default().to_string(),
        Err(_) => secrets
            .describe_secret()
            .secret_id("lscw/credentials")
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?
            .arn()
            .unwrap_or_default()
            .to_string(),
    };

    // Stage the sample run the events refer to.
    let lookup = Lookup::from_values(pair.settings());
    let env = Environment::connect(&lookup, DynamoStore::new(dynamodb, TABLE)).await?;
    let Environment {
        connectwise,
        lansweeper,
        store,
        settings,
    } = &env;
    let input = FetchAssetsInput {
        run_id: Some(RUN_ID.into()),
    };
    let fetched = pipeline::fetch_assets(lansweeper, store, settings, &input, |_, _| {}).await?;
    let ensured = pipeline::ensure_references(connectwise, store, settings, &fetched).await?;
    let matched = pipeline::match_assets(connectwise, store, settings, &ensured).await?;

    if let Some(dir) = events {
        // The sample events are real inputs: what the previous step answered.
        let write = |name: &str, value: &serde_json::Value| -> anyhow::Result<()> {
            let path = dir.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(value)?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))
        };
        write("fetch-assets", &serde_json::json!({ "runId": RUN_ID }))?;
        write("ensure-references", &serde_json::to_value(&fetched)?)?;
        write("match", &serde_json::to_value(&ensured)?)?;
        // A Map's first lane, as the state machine hands it over.
        let lane = |lanes: &[shared::states::BulkWriteInput]| -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::to_value(
                lanes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| shared::states::BulkWriteInput {
                        run_id: RUN_ID.into(),
                        lanes: 1,
                        ..shared::states::BulkWriteInput::default()
                    }),
            )?)
        };
        write("bulk-create", &lane(&matched.create_lanes)?)?;
        write("bulk-modify", &lane(&matched.modify_lanes)?)?;
        write(
            "ticket-agreement-enrich",
            &serde_json::json!({ "runId": RUN_ID }),
        )?;
    }
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("SECRET_ARN", secret_arn),
        ("SYNC_TABLE", TABLE.into()),
        ("CW_BASE_URL", cw.base_url()),
        ("LS_API_URL", ls.api_url()),
        ("LS_SITE_ID", ls.site_id()),
        ("CW_TARGET_COMPANY", TARGET_COMPANY.into()),
    ];
    let text: String = env
        .iter()
        .flat_map(|(key, value)| [key, "=", value.as_str(), "\n"])
        .collect();
    std::fs::write(env_file, text)
        .with_context(|| format!("cannot write {}", env_file.display()))?;
    eprintln!(
        "dev-env ready: run {RUN_ID} staged ({} assets, {} create groups, {} modify groups); environment in {}",
        fetched.assets,
        matched.create_groups,
        matched.modify_groups,
        env_file.display()
    );
    Ok(tokio::signal::ctrl_c().await?)
}
