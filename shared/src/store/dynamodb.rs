//! The DynamoDB store, what the Lambda functions use: one item per key.

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Claim, Store, StoreError};
use crate::clock::epoch_seconds_of as epoch;

/// DynamoDB: one item per key (`pk` = key, `sk` = "v"), the JSON in `body`, TTL in
/// `expiresAt` (epoch seconds). Expired items are ignored on read, since DynamoDB
/// deletes them lazily.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(aws_sdk_dynamodb::Client::new(&config), table)
    }
}

/// A DynamoDB error as the store reports it: the operation, the key and DynamoDB's
/// whole context.
fn backend<E, R>(operation: &str, key: &str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Backend(format!("{operation} {key}: {}", DisplayErrorContext(error)))
}

impl Store for DynamoStore {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("sk", AttributeValue::S("v".into()))
            .item("body", AttributeValue::S(value))
            .item(
                "expiresAt",
                AttributeValue::N(epoch(SystemTime::now() + ttl).to_string()),
            )
            .send()
            .await
            .map_err(|e| backend("put", key, e))?;
        Ok(())
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .key("sk", AttributeValue::S("v".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("get", key, e))?;
        let Some(item) = answer.item else {
            return Ok(None);
        };
        let expires: u64 = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX);
        if expires <= epoch(SystemTime::now()) {
            return Ok(None);
        }
        match item.get("body").and_then(|v| v.as_s().ok()) {
            Some(body) => Ok(Some(body.clone())),
            None => Err(StoreError::Corrupt {
                key: key.to_string(),
                reason: "no body attribute".into(),
            }),
        }
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let now = epoch(SystemTime::now());
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("sk", AttributeValue::S("v".into()))
            .item("body", AttributeValue::S(value))
            .item("owner", AttributeValue::S(owner.to_string()))
            .item(
                "expiresAt",
                AttributeValue::N(epoch(SystemTime::now() + ttl).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR expiresAt <= :now OR #owner = :owner",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Claim::Taken),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception) =>
            {
                // Held by another owner: read what it holds (it may have expired since,
                // in which case the next claim takes it).
                Ok(Claim::HeldBy(self.get_raw(key).await?.unwrap_or_default()))
            }
            Err(error) => Err(backend("claim", key, error)),
        }
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .key("sk", AttributeValue::S("v".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        request = match owner {
            Some(owner) => request
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", AttributeValue::S(owner.to_string())),
            None => request,
        };
        match request.send().await {
            Ok(answer) => Ok(answer.attributes.is_some()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(error) => Err(backend("release", key, error)),
        }
    }
}
