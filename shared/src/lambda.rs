//! What every Lambda function shares: credentials from Secrets Manager read once per
//! container, the clients built from them, the DynamoDB store, JSON logs.

use std::collections::HashMap;

use crate::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use crate::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use crate::pipeline::{PipelineError, SyncSettings};
use crate::store::DynamoStore;

/// Built once in `main`, handed to every invocation of a warm container.
pub struct Environment {
    pub connectwise: ConnectWiseClient,
    pub lansweeper: LansweeperClient,
    pub store: DynamoStore,
    pub settings: SyncSettings,
}

impl Environment {
    /// Reads the secret named by `SECRET_ARN` (a JSON object with the same keys as the
    /// environment variables; its values win) and connects.
    pub async fn load() -> Result<Self, PipelineError> {
        let aws = aws_config::load_from_env().await;
        let secret = match std::env::var("SECRET_ARN").ok().filter(|s| !s.is_empty()) {
            Some(arn) => read_secret(&aws, &arn).await?,
            None => HashMap::new(),
        };
        let lookup = |key: &str| {
            secret
                .get(key)
                .cloned()
                .filter(|v| !v.is_empty())
                .or_else(|| std::env::var(key).ok())
        };
        let table = lookup("SYNC_TABLE")
            .ok_or_else(|| PipelineError::Config("SYNC_TABLE is not set".into()))?;
        let connectwise_config = ConnectionConfig::from_lookup(lookup)?;
        let mut options = ClientOptions::default();
        if let Some(n) = lookup("CW_MAX_CONCURRENCY").and_then(|v| v.parse().ok()) {
            options.max_concurrent = n;
        }
        let connectwise = ConnectWiseClient::connect(&connectwise_config, options).await?;
        let lansweeper = LansweeperClient::new(
            LansweeperConfig::from_lookup(lookup)?,
            LansweeperOptions::default(),
        )?;
        Ok(Self {
            connectwise,
            lansweeper,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
            settings: SyncSettings::from_lookup(lookup)?,
        })
    }
}

async fn read_secret(
    aws: &aws_config::SdkConfig,
    arn: &str,
) -> Result<HashMap<String, String>, PipelineError> {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            PipelineError::Config(format!(
                "cannot read the secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            ))
        })?;
    let text = answer
        .secret_string()
        .ok_or_else(|| PipelineError::Config(format!("the secret {arn} has no string value")))?;
    // The values are secrets: a parse error must not echo them.
    let values: HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| PipelineError::Config(format!("the secret {arn} is not a JSON object")))?;
    Ok(values
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect())
}
