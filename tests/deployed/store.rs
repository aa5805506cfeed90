//! The DynamoDB store held to the store contract every store keeps, against moto's
//! DynamoDB with the table the template declares.

use lscw_tests::aws::{create_table, sdk_config, start_moto};
use shared::store::{DynamoStore, contract};

#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    let moto = start_moto();
    let aws = sdk_config(&moto).await;
    create_table(&aws, "contract").await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), "contract");
    contract::check(&store).await;
}
