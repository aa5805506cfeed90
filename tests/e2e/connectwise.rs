//! The ConnectWise connector against the ConnectWise simulator: every action, every row
//! of the spec's pagination table, the retry policy, hostile condition values, and the
//! simulator's own strictness.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use lscw_tests::{cw_config, cw_config_with, cw_with, default_cw, fast_options, start_cw};
use reqwest::Method;
use serde_json::{Value, json};
use shared::actions::run_action;
use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectWiseError, Field, ListQuery};
use shared::http::TransportError;
use simulators::connectwise::{self as cw_sim, TenantSpec};

fn ids(records: &Value) -> Vec<i64> {
    records
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_i64().expect("an id"))
        .collect()
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..=to).collect()
}

/// A tenant with more locations than one forward-only page holds.
fn big_tenant() -> TenantSpec {
    TenantSpec {
        locations: 2_345,
        configurations: 0,
        ..TenantSpec::default()
    }
}

// ---- the spec's pagination table, one test a row ----

/// The spec's table: what `page` and `pageSize` read, and in how many requests.
#[tokio::test]
async fn each_row_of_the_spec_s_paging_table_reads_its_records() {
    let (sim, client) = cw_with(big_tenant()).await;
    // (page, pageSize, the records read, the requests it takes)
    type Row = (Option<u32>, Option<u32>, (i64, i64), u64);
    let rows: [Row; 5] = [
        // Every record, forward-only, 1000 a page: 1000 + 1000 + 345.
        (None, None, (1, 2_345), 3),
        (Some(2), None, (26, 50), 1),
        (Some(2), Some(100), (101, 200), 1),
        // Following the rule: skip the first page, read the next of `pageSize`.
        (Some(2), Some(200), (201, 400), 1),
        (None, Some(300), (1, 300), 1),
    ];
    for (page, size, (from, to), requests) in rows {
        let mut input = json!({});
        if let Some(page) = page {
            input["page"] = json!(page);
        }
        if let Some(size) = size {
            input["pageSize"] = json!(size);
        }
        let before = sim.control().count("GET /system/locations");
        let records = run_action(&client, "listOfLocationsAction", input.clone())
            .await
            .unwrap();
        assert_eq!(ids(&records), range(from, to), "{input}");
        assert_eq!(
            sim.control().count("GET /system/locations") - before,
            requests,
            "{input}"
        );
    }
}

#[tokio::test]
async fn size_over_1000_is_refused_before_any_call() {
    let (sim, client) = cw_with(big_tenant()).await;
    for key in [
        "listOfLocationsAction",
        "listConfigurationTypes",
        "listOfManufacturersAction",
        "listConfigurationStatus",
        "companies",
        "listConfigurationsAction",
    ] {
        let err = run_action(&client, key, json!({"pageSize": 1001}))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ConnectWiseError::InvalidInput { field, .. } if field == "pageSize"),
            "{key}: {err}"
        );
    }
    assert_eq!(sim.control().total(), 0);
}

// ---- the issue's acceptance examples ----

#[tokio::test]
async fn default_tenant_serves_60_locations_and_page_2_is_26_to_50() {
    let (_sim, client) = default_cw().await;
    let all = run_action(&client, "listOfLocationsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(ids(&all), range(1, 60));
    let page = run_action(&client, "listOfLocationsAction", json!({"page": 2}))
        .await
        .unwrap();
    assert_eq!(ids(&page), range(26, 50));
    assert_eq!(page[0]["name"], all[25]["name"]);
}

/// The default tenant holds what its spec asks for: as many manufacturers, types,
/// statuses and configurations as `TenantSpec::default()` says, the generator's companies
/// and levels.
///
/// Breaking it looks like: a count off from the spec (the generator or a listing losing
/// or inventing records).
#[tokio::test]
async fn default_tenant_has_the_documented_shape() {
    let (_sim, client) = default_cw().await;
    let count = |key: &'static str| {
        let client = client.clone();
        async move {
            run_action(&client, key, json!({}))
                .await
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        }
    };
    let spec = TenantSpec::default();
    assert_eq!(count("listOfManufacturersAction").await, spec.manufacturers);
    assert_eq!(
        count("listConfigurationTypes").await,
        spec.configuration_types
    );
    assert_eq!(
        count("listConfigurationStatus").await,
        spec.configuration_statuses
    );
    assert_eq!(count("companies").await, cw_sim::COMPANY_NAMES.len());
    assert_eq!(
        count("listCorporateStructureLevelsAction").await,
        cw_sim::LEVEL_NAMES.len()
    );
    let configurations = run_action(&client, "listConfigurationsAction", json!({}))
        .await
        .unwrap();
    let configurations = configurations.as_array().unwrap();
    assert_eq!(configurations.len(), spec.configurations);
    for configuration in configurations {
        let captions: Vec<&str> = configuration["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["caption"].as_str().unwrap())
            .collect();
        assert_eq!(
            captions,
            [
                "ls_asset_id",
                "ls_asset_url",
                "ls_software",
                "ls_asset_location"
            ]
        );
        assert!(configuration["type"]["name"].is_string(), "{configuration}");
        assert!(configuration["company"]["identifier"].is_string());
    }
}

// ---- every action ----

#[tokio::test]
async fn create_location_needs_a_name_and_a_structure_level() {
    let (sim, client) = default_cw().await;
    let created = run_action(
        &client,
        "createLocationAction",
        json!({"name": "test-location", "structureLevelId": "1"}),
    )
    .await
    .unwrap();
    assert_eq!(created["name"], "test-location");
    assert_eq!(created["structureLevel"]["id"], 1);
    assert_eq!(created["structureLevel"]["name"], "Company");
    let found = run_action(
        &client,
        "listOfLocationsAction",
        json!({"conditions": "name=\"test-location\""}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&found), vec![created["id"].as_i64().unwrap()]);

    let before = sim.control().total();
    for bad in [
        json!({"name": "x"}),
        json!({"structureLevelId": 1}),
        json!({"name": "  ", "structureLevelId": 1}),
        json!({"name": "x".repeat(51), "structureLevelId": 1}),
        json!({"name": "x", "structureLevelId": "level one"}),
        json!({"name": "x", "structureLevelId": 1, "colour": "red"}),
    ] {
        assert!(
            matches!(
                run_action(&client, "createLocationAction", bad.clone()).await,
                Err(ConnectWiseError::InvalidInput { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        sim.control().total(),
        before,
        "invalid input must cost no request"
    );

    let err = run_action(
        &client,
        "createLocationAction",
        json!({"name": "y", "structureLevelId": 9}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("structureLevel"), "{err}");
}

#[tokio::test]
async fn create_type_and_manufacturer_enforce_50_characters_and_unique_names() {
    let (sim, client) = default_cw().await;
    for (key, list) in [
        ("createConfigurationTypeAction", "listConfigurationTypes"),
        ("createManufacturerAction", "listOfManufacturersAction"),
    ] {
        let name = "n".repeat(50);
        let created = run_action(&client, key, json!({"name": name}))
            .await
            .unwrap();
        assert_eq!(created["name"], name);
        let listed = run_action(
            &client,
            list,
            json!({"conditions": format!("id={}", created["id"])}),
        )
        .await
        .unwrap();
        assert_eq!(listed[0]["name"], name);

        let before = sim.control().total();
        let err = run_action(&client, key, json!({"name": "n".repeat(51)}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ConnectWise allows 50"), "{err}");
        assert_eq!(sim.control().total(), before);

        let duplicate = run_action(&client, key, json!({"name": name.to_uppercase()}))
            .await
            .unwrap_err();
        match duplicate {
            ConnectWiseError::Api { status, errors, .. } => {
                assert_eq!(status, 400);
                assert_eq!(errors[0].code.as_deref(), Some("ObjectExists"));
                assert_eq!(errors[0].field.as_deref(), Some("name"));
            }
            other => panic!("{key}: {other}"),
        }
    }
}

#[tokio::test]
async fn create_status_takes_description_and_flags() {
    let (sim, client) = default_cw().await;
    let created = run_action(
        &client,
        "createConfigurationStatusAction",
        json!({"description": "test-active", "closedFlag": true}),
    )
    .await
    .unwrap();
    assert_eq!(created["description"], "test-active");
    assert_eq!(created["closedFlag"], true);
    assert_eq!(created["defaultFlag"], false);

    let before = sim.control().total();
    let err = run_action(
        &client,
        "createConfigurationStatusAction",
        json!({"description": "d".repeat(51)}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`description`"), "{err}");
    let err = run_action(
        &client,
        "createConfigurationStatusAction",
        json!({"name": "x"}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `name`"), "{err}");
    assert_eq!(sim.control().total(), before);
}

#[tokio::test]
async fn manufacturer_and_status_lists_take_only_conditions_and_paging() {
    let (sim, client) = default_cw().await;
    for key in ["listOfManufacturersAction", "listConfigurationStatus"] {
        let err = run_action(&client, key, json!({"childConditions": "a/b=1"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("childConditions"), "{err}");
    }
    assert_eq!(sim.control().total(), 0);
    let found = run_action(
        &client,
        "listOfManufacturersAction",
        json!({"conditions": "name like \"Dell*\""}),
    )
    .await
    .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["name"], "Dell Inc.");
}

#[tokio::test]
async fn companies_and_structure_levels() {
    let (_sim, client) = default_cw().await;
    let companies = run_action(
        &client,
        "companies",
        json!({"conditions": "identifier=\"BlueLightCo\""}),
    )
    .await
    .unwrap();
    assert_eq!(companies[0]["name"], "Blue Light, Co.");
    let levels = run_action(&client, "listCorporateStructureLevelsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(ids(&levels), range(1, 5));
}

#[tokio::test]
async fn list_configurations_returns_only_the_requested_fields() {
    let (_sim, client) = default_cw().await;
    let records = run_action(
        &client,
        "listConfigurationsAction",
        json!({"fields": "id,name,type/name", "conditions": "type/name=\"server\""}),
    )
    .await
    .unwrap();
    let records = records.as_array().unwrap();
    assert!(!records.is_empty());
    for record in records {
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "type"], "{record}");
        assert_eq!(record["type"], json!({"name": "Server"}));
    }
}

#[tokio::test]
async fn custom_field_and_child_conditions() {
    let (sim, client) = default_cw().await;
    sim.with_tenant(|tenant| {
        let record = tenant.records("configurations").next().unwrap().clone();
        let mut body = record.clone();
        body["customFields"] = json!([{"id": 5, "value": "asset-key-1"}]);
        tenant
            .replace(&simulators::connectwise::CONFIGURATIONS, 1, &body)
            .unwrap();
    });
    for input in [
        json!({"customFieldConditions": "caption=\"ls_asset_id\" AND value=\"asset-key-1\""}),
        json!({"childConditions": "customFields/value=\"asset-key-1\""}),
    ] {
        let found = run_action(&client, "listConfigurationsAction", input.clone())
            .await
            .unwrap();
        assert_eq!(ids(&found), vec![1], "{input}");
    }
    let all_with_ids = run_action(
        &client,
        "listConfigurationsAction",
        json!({"customFieldConditions": "caption=\"ls_asset_id\" AND value != null"}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&all_with_ids), vec![1]);
}

#[tokio::test]
async fn bulk_create_answers_per_item_and_a_bad_item_fails_alone() {
    let (sim, client) = default_cw().await;
    sim.control().fail_item("FLAKY-1", 1);
    let results = run_action(
        &client,
        "bulkCreateConfigurationsAction",
        json!({"configurations": [
            {"name": "NEW-1", "type": {"id": 1}, "company": {"id": 1}, "serialNumber": "S1"},
            {"name": "NEW-2", "type": {"id": 4242}, "company": {"id": 1}},
            {"name": "NEW-3", "company": {"id": 1}},
            {"name": "FLAKY-1", "type": {"id": 2}, "company": {"id": 1}},
            {"name": "NEW-4", "type": {"id": 3}, "company": {"id": 2}, "macAddress": "x".repeat(26)},
            {"name": "NEW-5", "type": {"id": 3}, "company": {"id": 2}},
        ]}),
    )
    .await
    .unwrap();
    let results = results.as_array().unwrap();
    let outcomes: Vec<(bool, u64)> = results
        .iter()
        .map(|r| {
            (
                r["success"].as_bool().unwrap(),
                r["statusCode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (true, 201),
            (false, 400),
            (false, 400),
            (false, 500),
            (false, 400),
            (true, 201)
        ]
    );
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["originalIndex"], i);
    }
    assert_eq!(results[0]["data"]["serialNumber"], "S1");
    assert_eq!(results[1]["error"]["errors"][0]["field"], "type");
    assert_eq!(
        results[2]["error"]["errors"][0]["field"], "type/id",
        "checked before sending"
    );
    assert_eq!(results[4]["error"]["errors"][0]["field"], "macAddress");
    // One request for the five items that passed local validation.
    assert_eq!(sim.control().count("POST /company/configurations/bulk"), 1);
    let created = run_action(
        &client,
        "listConfigurationsAction",
        json!({"conditions": "name in (\"NEW-1\",\"NEW-5\",\"NEW-2\",\"FLAKY-1\")"}),
    )
    .await
    .unwrap();
    assert_eq!(created.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bulk_modify_replaces_whole_records_as_put_does() {
    let (sim, client) = default_cw().await;
    let original = client.get("company/configurations/7").await.unwrap();
    assert!(original["serialNumber"].is_string());
    let results = run_action(
        &client,
        "bulkModifyConfigurationsAction",
        json!({"configurations": [
            {"id": 7, "name": "RENAMED", "type": {"id": 1}, "company": {"id": 1}},
            {"name": "NO-ID", "type": {"id": 1}, "company": {"id": 1}},
            {"id": 99999, "name": "GONE", "type": {"id": 1}, "company": {"id": 1}},
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[1]["success"], false);
    assert_eq!(results[2]["statusCode"], 404);
    let updated = client.get("company/configurations/7").await.unwrap();
    assert_eq!(updated["name"], "RENAMED");
    // PUT semantics: what the body left out is gone.
    assert!(updated.get("serialNumber").is_none(), "{updated}");
    assert!(updated.get("manufacturer").is_none());
    assert_eq!(sim.control().count("PUT /company/configurations/bulk"), 1);
}

// ---- the simulator's PUT and PATCH semantics ----

#[tokio::test]
async fn put_resets_omitted_fields_and_patch_replaces_custom_fields_whole() {
    let (_sim, client) = default_cw().await;
    let path = "company/configurations/3";
    client
        .patch(
            path,
            &json!([
                {"op": "replace", "path": "notes", "value": "hand-written note"},
                {"op": "replace", "path": "customFields", "value": [
                    {"id": 5, "value": "key-3"}, {"id": 6, "value": "https://example/3"}
                ]},
            ]),
        )
        .await
        .unwrap();
    let patched = client.get(path).await.unwrap();
    assert_eq!(patched["notes"], "hand-written note");
    assert_eq!(patched["customFields"][0]["value"], "key-3");
    assert_eq!(patched["customFields"][1]["value"], "https://example/3");

    // A customFields array naming one field clears the others.
    client
        .patch(
            path,
            &json!([{"op": "replace", "path": "customFields", "value": [{"id": 6, "value": "u"}]}]),
        )
        .await
        .unwrap();
    let patched = client.get(path).await.unwrap();
    assert!(
        patched["customFields"][0].get("value").is_none(),
        "{patched}"
    );
    assert_eq!(
        patched["notes"], "hand-written note",
        "PATCH keeps what it does not name"
    );

    // A sub-path is refused: references and custom fields are replaced whole.
    let err = client
        .patch(
            path,
            &json!([{"op": "replace", "path": "type/id", "value": 2}]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));

    let mut body = patched.clone();
    body.as_object_mut().unwrap().remove("notes");
    body.as_object_mut().unwrap().remove("customFields");
    client.put(path, &body).await.unwrap();
    let put = client.get(path).await.unwrap();
    assert!(
        put.get("notes").is_none(),
        "PUT resets omitted fields: {put}"
    );
    assert!(
        put["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("value").is_none())
    );
    assert_eq!(put["serialNumber"], patched["serialNumber"]);
}

#[tokio::test]
async fn field_limits_and_required_fields_are_enforced() {
    let (_sim, client) = default_cw().await;
    let err = client
        .post(
            "company/configurations",
            &json!({"name": "x", "type": {"id": 1}, "company": {"id": 1}, "modelNumber": "m".repeat(51),
                    "warrantyExpirationDate": "30/09/2028"}),
        )
        .await
        .unwrap_err();
    let ConnectWiseError::Api {
        status,
        code,
        errors,
        ..
    } = err
    else {
        panic!("expected an API error");
    };
    assert_eq!((status, code.as_str()), (400, "InvalidObject"));
    let fields: Vec<_> = errors.iter().map(|e| e.field.clone().unwrap()).collect();
    assert_eq!(fields, ["modelNumber", "warrantyExpirationDate"]);
    let err = client
        .post("company/configurations", &json!({"type": {"id": 1}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name is required"), "{err}");
    assert!(err.to_string().contains("company is required"), "{err}");
}

// ---- hostile values ----

#[tokio::test]
async fn hostile_condition_values_match_only_their_literal() {
    let (sim, client) = default_cw().await;
    let hostile = [
        r#"x" or id>0 or name="y"#,
        r#"back\slash" or "1"="1"#,
        "[2016-08-20T18:04:26Z]",
        r"trailing backslash \",
        "quote\"inside",
        "Zürich « ünïcode » 東京",
    ];
    for name in hostile {
        run_action(&client, "createManufacturerAction", json!({"name": name}))
            .await
            .unwrap();
    }
    sim.control().reset_counts();
    let field = Field::new("name").unwrap();
    for name in hostile {
        let condition = field.eq(name);
        let found = client
            .list(
                "procurement/manufacturers",
                &ListQuery::with_conditions(condition.as_str()),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(found.len(), 1, "{name} → {condition}");
        assert_eq!(found[0]["name"], name);
        // The same condition in a larger expression stays one clause.
        let combined = condition.and(&Field::new("inactiveFlag").unwrap().eq(false));
        let found = client
            .list(
                "procurement/manufacturers",
                &ListQuery::with_conditions(combined.as_str()),
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{combined}");
    }
    let nothing = client
        .list(
            "procurement/manufacturers",
            &ListQuery::with_conditions(field.eq(r#"nope" or id>0 or name="nope"#).as_str()),
        )
        .await
        .unwrap();
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn malformed_conditions_are_a_400_not_a_retry() {
    let (sim, client) = default_cw().await;
    for conditions in [
        "name=",
        "name == \"x\"",
        "nosuchfield=1",
        "type/colour=\"x\"",
        "(id=1",
    ] {
        let err = run_action(
            &client,
            "listOfLocationsAction",
            json!({"conditions": conditions}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), Some(400), "{conditions}: {err}");
    }
    assert_eq!(sim.control().total(), 5, "each sent once");
}

// ---- the retry policy ----

#[tokio::test]
async fn a_429_waits_retry_after_then_succeeds() {
    let (sim, client) = default_cw().await;
    sim.control().fail_next(1, 429, Some(1), None);
    let started = Instant::now();
    let records = run_action(&client, "listConfigurationTypes", json!({}))
        .await
        .unwrap();
    assert_eq!(records.as_array().unwrap().len(), 10);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(sim.control().count("GET /company/configurations/types"), 2);
}

#[tokio::test]
async fn a_429_asking_longer_than_the_budget_fails_at_once() {
    let (sim, client) = default_cw().await;
    sim.control().fail_next(1, 429, Some(3600), None);
    let started = Instant::now();
    let err = run_action(&client, "listConfigurationTypes", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectWiseError::Transport(TransportError::RateLimited { .. })
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sim.control().total(), 1);
}

#[tokio::test]
async fn a_5xx_burst_is_retried_with_backoff() {
    let (sim, client) = default_cw().await;
    sim.control().fail_next(3, 503, None, None);
    let records = run_action(&client, "companies", json!({})).await.unwrap();
    assert_eq!(records.as_array().unwrap().len(), 5);
    assert_eq!(sim.control().count("GET /company/companies"), 4);
}

#[tokio::test]
async fn a_5xx_that_lasts_fails_after_the_attempt_bound_with_its_status() {
    let (sim, client) = default_cw().await;
    sim.control().fail_next(10, 500, None, None);
    let err = run_action(&client, "companies", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(sim.control().total(), 4, "max_attempts of the test policy");
}

#[tokio::test]
async fn a_400_is_sent_once() {
    let (sim, client) = default_cw().await;
    sim.control().fail_next(1, 400, None, None);
    let err = run_action(&client, "companies", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(sim.control().total(), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported_without_secrets() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (sim, _) = default_cw().await;
    let config = cw_config_with(&sim, |key| {
        (key == "CW_BASE_URL").then(|| format!("http://127.0.0.1:{port}/v4_6_release/apis/3.0"))
    });
    let client = ConnectWiseClient::connect(&config, fast_options())
        .await
        .unwrap();
    let err = run_action(&client, "companies", json!({}))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ConnectWiseError::Transport(TransportError::Connection { attempts: 4, .. })
        ),
        "{text}"
    );
    assert!(
        !text.contains(cw_sim::PRIVATE_KEY) && !text.contains(cw_sim::PUBLIC_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn concurrent_requests_are_capped() {
    let (sim, _) = default_cw().await;
    let client = ConnectWiseClient::connect(
        &cw_config(&sim),
        ClientOptions {
            max_concurrent: 3,
            ..fast_options()
        },
    )
    .await
    .unwrap();
    sim.control().set_latency(Duration::from_millis(30));
    let calls: Vec<_> = (1..=12)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move { client.get(&format!("system/locations/{id}")).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(sim.control().max_in_flight(), 3);
}

// ---- connection and authentication ----

#[tokio::test]
async fn the_codebase_is_looked_up_when_no_base_url_is_given() {
    let (sim, _) = default_cw().await;
    let config = cw_config_with(&sim, |key| match key {
        "CW_SITE" => Some(sim.site()),
        "CW_BASE_URL" => Some(String::new()),
        _ => None,
    });
    assert!(config.base_url.is_none());
    let client = ConnectWiseClient::connect(&config, fast_options())
        .await
        .unwrap();
    assert_eq!(client.base_url(), sim.base_url());
    let levels = run_action(&client, "listCorporateStructureLevelsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(levels.as_array().unwrap().len(), 5);

    let unknown = cw_config_with(&sim, |key| match key {
        "CW_SITE" => Some(sim.site()),
        "CW_BASE_URL" => Some(String::new()),
        "CW_COMPANY_ID" => Some("nobody".into()),
        _ => None,
    });
    let err = ConnectWiseClient::connect(&unknown, fast_options())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("knows no company `nobody`"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_credentials_get_a_401_with_a_connectwise_body() {
    let (sim, _) = default_cw().await;
    let config = cw_config_with(&sim, |key| {
        (key == "CW_PRIVATE_KEY").then(|| "wrong".into())
    });
    let client = ConnectWiseClient::connect(&config, fast_options())
        .await
        .unwrap();
    let err = run_action(&client, "companies", json!({}))
        .await
        .unwrap_err();
    let ConnectWiseError::Api { status, code, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!((*status, code.as_str()), (401, "Unauthorized"));
    assert!(!err.to_string().contains("wrong"));
    assert_eq!(sim.control().total(), 1, "a 401 is not retried");
}

/// Requests as another client would send them, to see the simulator's own answers.
async fn raw(
    sim: &simulators::connectwise::ConnectWiseSimulator,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request =
        reqwest::Client::new().request(method, format!("{}/{path_and_query}", sim.base_url()));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

const AUTH: (&str, &str) = ("Authorization", "Basic c2ltK3NpbXB1YjpzaW1wcml2"); // sim+simpub:simpriv
const CLIENT: (&str, &str) = ("clientId", cw_sim::CLIENT_ID);

#[tokio::test]
async fn the_simulator_requires_a_client_id_and_basic_auth() {
    let (sim, _) = default_cw().await;
    let response = raw(&sim, Method::GET, "company/companies", &[AUTH]).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("clientId"));
    let response = raw(&sim, Method::GET, "company/companies", &[CLIENT]).await;
    assert_eq!(response.status(), 401);
    let response = raw(&sim, Method::GET, "company/companies", &[AUTH, CLIENT]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_simulator_pages_with_link_headers_and_caps_page_size() {
    let (sim, _) = cw_with(big_tenant()).await;
    let response = raw(
        &sim,
        Method::GET,
        "system/locations?page=2&pageSize=1000",
        &[AUTH, CLIENT],
    )
    .await;
    let link = response.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("page=1&pageSize=1000>; rel=\"first\""),
        "{link}"
    );
    assert!(
        link.contains("page=3&pageSize=1000>; rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("page=3&pageSize=1000>; rel=\"last\""),
        "{link}"
    );
    let page: Value = response.json().await.unwrap();
    assert_eq!(ids(&page), range(1001, 2000));

    let response = raw(
        &sim,
        Method::GET,
        "system/locations?pageSize=5000",
        &[AUTH, CLIENT],
    )
    .await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1000, "capped at 1000");

    let forward = [AUTH, CLIENT, ("pagination-type", "forward-only")];
    let response = raw(
        &sim,
        Method::GET,
        "system/locations?pageSize=1000&pageId=2000&page=1&orderBy=name%20desc",
        &forward,
    )
    .await;
    assert_eq!(response.headers()["link"], "", "no next link at the end");
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        ids(&page),
        range(2001, 2345),
        "pageId means id > pageId; page and orderBy ignored"
    );

    let response = raw(
        &sim,
        Method::GET,
        "system/locations/count?conditions=id%3E2000",
        &[AUTH, CLIENT],
    )
    .await;
    let count: Value = response.json().await.unwrap();
    assert_eq!(count, json!({"count": 345}));

    let response = raw(&sim, Method::GET, "procurement/nothing", &[AUTH, CLIENT]).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn count_through_the_client() {
    let (_sim, client) = default_cw().await;
    let query = ListQuery::with_conditions("name like \"*HQ*\"");
    let count = client.count("system/locations", &query).await.unwrap();
    let listed = client.list("system/locations", &query).await.unwrap();
    assert_eq!(count as usize, listed.len());
    assert!(count > 0);
}

/// A tenant saved to a file and served again lists the same configurations.
///
/// Breaking it looks like: configurations lost (or doubled) on the way through the file.
#[tokio::test]
async fn tenant_data_round_trips_through_a_file() {
    let (sim, _) = default_cw().await;
    let data = sim.with_tenant(|tenant| tenant.to_data());
    let text = serde_json::to_string(&data).unwrap();
    let restored =
        simulators::connectwise::Tenant::from_data(serde_json::from_str(&text).unwrap()).unwrap();
    let again = start_cw(restored).await;
    let client = ConnectWiseClient::connect(&cw_config(&again), fast_options())
        .await
        .unwrap();
    let configurations = run_action(&client, "listConfigurationsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(
        configurations.as_array().unwrap().len(),
        TenantSpec::default().configurations
    );
}

#[tokio::test]
async fn match_configurations_action_takes_the_specs_inputs() {
    let (sim, client) = default_cw().await;
    let (serial, name) = sim.with_tenant(|t| {
        let c = t.get("configurations", 12).unwrap();
        (
            c["serialNumber"].as_str().unwrap().to_string(),
            c["name"].as_str().unwrap().to_string(),
        )
    });
    let output = run_action(
        &client,
        "matchConfigurationsAction",
        json!({
            "conditions": "id<100",
            "caseSensitiveMatch": false,
            "configurationNamePath": "asset.general.name",
            "serialNumberPath": "asset.general.serialNumber",
            "additionalFieldMappings": {"asset.general.warranty": "warrantyExpirationDate"},
            "customFieldMappings": [{"asset.general.key": "ls_asset_id"}],
            "externalData": [
                {"asset": {"general": {"key": "k-1", "name": "renamed", "serialNumber": serial.to_lowercase(), "warranty": "2030-01-01"}}},
                {"asset": {"general": {"key": "k-2", "name": name.to_lowercase()}}},
                {"asset": {"general": {"key": "k-3", "name": "NOT-THERE", "serialNumber": "To be filled by O.E.M."}}}
            ]
        }),
    )
    .await
    .unwrap();
    let matched = output["matched"].as_array().unwrap();
    assert_eq!(matched.len(), 1, "{output:#}");
    assert_eq!(matched[0]["configurationId"], 12);
    assert_eq!(matched[0]["matchedBy"], "serialNumber");
    let fields: Vec<&str> = matched[0]["unmatchedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "warrantyExpirationDate", "customFields.ls_asset_id"]
    );
    // The second asset names configuration 12 too, which the serial took: not a match.
    let unmatched: Vec<&str> = output["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asset"]["general"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(unmatched, ["k-2", "k-3"]);
    let err = run_action(
        &client,
        "matchConfigurationsAction",
        json!({"externalData": []}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("path"), "{err}");
}

// ---- creations are never resent blindly; listings are complete or an error ----

#[tokio::test]
async fn a_post_answered_5xx_is_sent_once_and_said_to_be_uncertain() {
    let (sim, client) = default_cw().await;
    sim.control()
        .fail_next(3, 502, None, Some("POST /procurement/manufacturers"));
    let err = run_action(
        &client,
        "createManufacturerAction",
        json!({"name": "Once Only"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.may_have_been_applied(), "{err}");
    assert_eq!(sim.control().count("POST /procurement/manufacturers"), 1);
}

#[tokio::test]
async fn a_saved_post_whose_connection_drops_is_not_resent() {
    let (sim, client) = default_cw().await;
    sim.control()
        .lose_answers(&[(simulators::control::LostAnswer::DropConnection, 1)]);
    let err = run_action(
        &client,
        "createManufacturerAction",
        json!({"name": "Saved Anyway"}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectWiseError::Transport(TransportError::OutcomeUnknown { .. })
        ),
        "{err}"
    );
    assert_eq!(sim.control().count("POST /procurement/manufacturers"), 1);
    let saved = sim.with_tenant(|t| {
        t.records("manufacturers")
            .filter(|m| m["name"] == "Saved Anyway")
            .count()
    });
    assert_eq!(saved, 1, "ConnectWise kept the write whose answer was lost");
}

#[tokio::test]
async fn a_put_whose_answer_is_lost_is_sent_again() {
    let (sim, client) = default_cw().await;
    let location = run_action(&client, "listOfLocationsAction", json!({"pageSize": 1}))
        .await
        .unwrap()[0]
        .clone();
    sim.control()
        .lose_answers(&[(simulators::control::LostAnswer::BadGateway, 1)]);
    let err = client
        .put(&format!("system/locations/{}", location["id"]), &location)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(502), "every answer lost: {err}");
    assert_eq!(
        sim.control().count("PUT /system/locations/{id}"),
        4,
        "idempotent: retried up to the attempt bound"
    );
}

#[tokio::test]
async fn an_endpoint_ignoring_forward_only_paging_is_read_by_numbered_pages() {
    let (sim, client) = cw_with(big_tenant()).await;
    sim.control().ignore_forward_only("GET /system/locations");
    let records = run_action(&client, "listOfLocationsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(ids(&records), range(1, 2_345));
    // The forward-only request (answered as page 1), pages 2 and 3, then /count.
    assert_eq!(sim.control().count("GET /system/locations"), 4);
}

/// A forward-only listing whose pages stop linking before `/count` is reached is an error
/// naming how many of how many were read, never a short list.
///
/// Breaking it looks like: the first pages handed back as if they were all.
#[tokio::test]
async fn a_forward_only_listing_cut_short_is_an_error() {
    let (sim, client) = cw_with(big_tenant()).await;
    sim.control().cut_listings(true);
    let err = run_action(&client, "listOfLocationsAction", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectWiseError::IncompleteListing { read, count, .. }
                if read == 2 * u64::from(shared::connectwise::MAX_PAGE_SIZE)
                    && count == big_tenant().locations as u64
        ),
        "the first two pages of 1000, of all the locations: {err}"
    );
}

#[tokio::test]
async fn a_listing_ending_on_a_full_page_is_confirmed_by_count() {
    let (sim, client) = cw_with(TenantSpec {
        locations: 1_000,
        configurations: 0,
        ..TenantSpec::default()
    })
    .await;
    let records = run_action(&client, "listOfLocationsAction", json!({}))
        .await
        .unwrap();
    assert_eq!(ids(&records), range(1, 1_000));
    assert_eq!(sim.control().count("GET /system/locations/count"), 1);
}
