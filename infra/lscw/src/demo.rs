//! `lscw demo`: the connector against an in-process simulator, no AWS account needed.

use serde_json::{Value, json};
use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig, run_action};
use simulators::connectwise::{self as sim, ConnectWiseSimulator, TenantSpec};

pub async fn run() -> Result<(), String> {
    let tenant = sim::generate(&TenantSpec::default())?;
    let simulator = ConnectWiseSimulator::start(tenant, "127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!("ConnectWise simulator on {}", simulator.base_url());
    let config = ConnectionConfig::from_lookup(|key| match key {
        "CW_SITE" => Some(simulator.site()),
        "CW_COMPANY_ID" => Some(sim::COMPANY_ID.into()),
        "CW_PUBLIC_KEY" => Some(sim::PUBLIC_KEY.into()),
        "CW_PRIVATE_KEY" => Some(sim::PRIVATE_KEY.into()),
        "CW_CLIENT_ID" => Some(sim::CLIENT_ID.into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let client = ConnectWiseClient::connect(&config, ClientOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("codebase looked up: API base {}\n", client.base_url());

    let action = |key: &'static str, input: Value| {
        let client = client.clone();
        async move {
            run_action(&client, key, input)
                .await
                .map_err(|e| format!("{key}: {e}"))
        }
    };
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);

    for (key, input) in [
        ("listOfLocationsAction", json!({})),
        ("listOfLocationsAction", json!({"page": 2})),
        ("listOfManufacturersAction", json!({"pageSize": 300})),
        ("listConfigurationTypes", json!({})),
        ("listConfigurationStatus", json!({})),
        ("companies", json!({})),
        ("listCorporateStructureLevelsAction", json!({})),
        (
            "listConfigurationsAction",
            json!({"fields": "id,name,serialNumber"}),
        ),
    ] {
        let result = action(key, input.clone()).await?;
        println!(
            "{key:<36} {:<40} → {} records",
            input.to_string(),
            count(&result)
        );
    }

    let created = action(
        "createManufacturerAction",
        json!({"name": "Demo Devices GmbH"}),
    )
    .await?;
    println!("\ncreateManufacturerAction → id {}", created["id"]);
    let again = action(
        "createManufacturerAction",
        json!({"name": "demo devices gmbh"}),
    )
    .await;
    println!(
        "creating it again        → {}",
        again.err().unwrap_or_default()
    );

    let bulk = action(
        "bulkCreateConfigurationsAction",
        json!({"configurations": [
            {"name": "DEMO-PC-1", "type": {"id": 1}, "company": {"id": 1}},
            {"name": "DEMO-PC-2", "type": {"id": 999}, "company": {"id": 1}},
            {"name": "", "type": {"id": 1}, "company": {"id": 1}},
        ]}),
    )
    .await?;
    println!("\nbulkCreateConfigurationsAction, one good item and two bad ones:");
    for item in bulk.as_array().into_iter().flatten() {
        let outcome = if item["success"] == json!(true) {
            format!("created id {}", item["data"]["id"])
        } else {
            format!(
                "failed: {}",
                item["error"]["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
            )
        };
        println!("  item {} → {outcome}", item["originalIndex"]);
    }
    println!("\nConnectWise API calls: {}", client.api_calls());
    Ok(())
}
