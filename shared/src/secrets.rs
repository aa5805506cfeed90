//! The deployment's secret: the API credentials, kept in Secrets Manager and named by
//! `SECRET_ARN`. Built only with the `secrets` feature (the functions and `lscw`), so the
//! domain layer itself does not depend on Secrets Manager.

use std::collections::HashMap;

use crate::environment::Lookup;
use crate::error::PipelineError;

impl Lookup {
    /// The environment, and the secret `SECRET_ARN` names if it is set.
    ///
    /// # Errors
    /// The secret cannot be read or is not a JSON object.
    pub async fn load() -> Result<Self, PipelineError> {
        let secret = match std::env::var("SECRET_ARN").ok().filter(|s| !s.is_empty()) {
            Some(arn) => read_secret(&aws_config::load_from_env().await, &arn).await?,
            None => HashMap::new(),
        };
        Ok(Self {
            values: secret,
            environment: true,
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
