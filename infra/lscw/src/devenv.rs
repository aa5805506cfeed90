//! `lscw dev-env`: everything `cargo lambda invoke` needs on one machine, against a moto
//! server already running: both simulators on fixed ports, the table and the secret in
//! moto, and a sample run staged up to `match` (run id `sample-run`), so every event in
//! `infra/events/` names data that exists. Writes the functions' environment to a file
//! for `cargo lambda watch --env-file`, then serves until stopped.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use shared::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use shared::pipeline::{self, FetchInput, SyncSettings};
use shared::store::DynamoStore;
use simulators::connectwise::{self as cw_sim, ConnectWiseSimulator};
use simulators::lansweeper::{self as ls_sim, LansweeperSimulator, SiteSpec};

pub const RUN_ID: &str = "sample-run";
const TABLE: &str = "lscw-sync";

pub async fn run(endpoint: &str, env_file: &Path, events: Option<&Path>) -> Result<(), String> {
    let (tenant, site) = simulators::scenario::linked(&SiteSpec {
        seed: 1,
        assets: 300,
    })?;
    let cw = ConnectWiseSimulator::start(tenant, "127.0.0.1:8480")
        .await
        .map_err(|e| format!("ConnectWise simulator on 127.0.0.1:8480: {e}"))?;
    let ls =
        LansweeperSimulator::start(site, ls_sim::LansweeperOptions::default(), "127.0.0.1:8490")
            .await
            .map_err(|e| format!("Lansweeper simulator on 127.0.0.1:8490: {e}"))?;

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
            .map_err(|e| e.to_string())
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
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
                format!(
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
                format!(
                    "secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?
            .arn()
            .unwrap_or_default()
            .to_string(),
    };

    // Stage the sample run the events refer to.
    let lookup = |key: &str| -> Option<String> {
        match key {
            "CW_BASE_URL" => Some(cw.base_url()),
            "CW_COMPANY_ID" => Some(cw_sim::COMPANY_ID.into()),
            "CW_PUBLIC_KEY" => Some(cw_sim::PUBLIC_KEY.into()),
            "CW_PRIVATE_KEY" => Some(cw_sim::PRIVATE_KEY.into()),
            "CW_CLIENT_ID" => Some(cw_sim::CLIENT_ID.into()),
            "LS_TOKEN" => Some(ls_sim::TOKEN.into()),
            "LS_SITE_ID" => Some(ls.site_id()),
            "LS_API_URL" => Some(ls.api_url()),
            "CW_TARGET_COMPANY" => Some("BlueLightCo".into()),
            _ => None,
        }
    };
    let connectwise = ConnectWiseClient::connect(
        &ConnectionConfig::from_lookup(lookup).map_err(|e| e.to_string())?,
        ClientOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let lansweeper = LansweeperClient::new(
        LansweeperConfig::from_lookup(lookup).map_err(|e| e.to_string())?,
        LansweeperOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let settings = SyncSettings::from_lookup(lookup).map_err(|e| e.to_string())?;
    let store = DynamoStore::new(dynamodb, TABLE);
    let input = FetchInput {
        run_id: Some(RUN_ID.into()),
    };
    let fetched = pipeline::fetch_assets(&lansweeper, &store, &settings, &input, |_, _| {})
        .await
        .map_err(|e| e.to_string())?;
    let ensured = pipeline::ensure_references(&connectwise, &store, &settings, &fetched)
        .await
        .map_err(|e| e.to_string())?;
    let matched = pipeline::match_assets(&connectwise, &store, &settings, &ensured)
        .await
        .map_err(|e| e.to_string())?;

    if let Some(dir) = events {
        // The sample events are real inputs: what the previous step answered.
        let write = |name: &str, value: &serde_json::Value| -> Result<(), String> {
            let path = dir.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
            std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
        };
        write("fetch-assets", &serde_json::json!({ "runId": RUN_ID }))?;
        write(
            "ensure-references",
            &serde_json::to_value(&fetched).map_err(|e| e.to_string())?,
        )?;
        write(
            "match",
            &serde_json::to_value(&ensured).map_err(|e| e.to_string())?,
        )?;
        let group = |groups: &[Vec<String>]| serde_json::json!({"runId": RUN_ID, "batches": groups.first().cloned().unwrap_or_default()});
        write("bulk-create", &group(&matched.create_groups))?;
        write("bulk-modify", &group(&matched.modify_groups))?;
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
        ("CW_TARGET_COMPANY", "BlueLightCo".into()),
    ];
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(env_file, text).map_err(|e| format!("{}: {e}", env_file.display()))?;
    eprintln!(
        "dev-env ready: run {RUN_ID} staged ({} assets, {} create groups, {} modify groups); environment in {}",
        fetched.assets,
        matched.create_groups.len(),
        matched.modify_groups.len(),
        env_file.display()
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
}
