//! The Lansweeper connector against the Lansweeper simulator: paging, path splitting,
//! custom fields and editAsset, pacing under the quota, and every error form.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lscw_tests::{fast_retry, ls_client_for, ls_options, ls_with};
use serde_json::{Value, json};
use shared::http::{RetryPolicy, TransportError};
use shared::lansweeper::{
    ASSET_PATHS, CustomFieldType, LansweeperClient, LansweeperError, LansweeperOptions,
};
use simulators::lansweeper::{self as ls_sim, SiteData, VALID_PATHS};

#[tokio::test]
async fn pages_through_every_asset_with_the_cursor() {
    let (sim, client) = ls_with(1_234).await;
    let mut pages = Vec::new();
    let stats = client
        .for_each_asset_page(ASSET_PATHS, None, |page| {
            pages.push(page);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [500, 500, 234]
    );
    assert_eq!(stats.total, Some(1_234));
    assert_eq!(stats.items, 1_234);
    assert_eq!(sim.control().count("POST graphql:assetResources"), 3);
    let keys: HashSet<String> = pages.iter().flatten().map(|a| a.key().unwrap()).collect();
    assert_eq!(keys.len(), 1_234);
    let expected: HashSet<String> = sim.with_site(|site| {
        site.data
            .assets
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect()
    });
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn an_empty_site_is_one_request_and_no_assets() {
    let (sim, client) = ls_with(0).await;
    let assets = client.assets(ASSET_PATHS, None).await.unwrap();
    assert!(assets.is_empty());
    assert_eq!(sim.control().total(), 1);
}

#[tokio::test]
async fn more_than_30_paths_are_split_and_merged_by_key() {
    let (sim, client) = ls_with(720).await;
    assert!(VALID_PATHS.len() > 30);
    let assets = client.assets(VALID_PATHS, None).await.unwrap();
    assert_eq!(assets.len(), 720);
    // Two requests per page, two pages.
    assert_eq!(sim.control().count("POST graphql:assetResources"), 4);
    let paths: Vec<String> = VALID_PATHS
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    sim.with_site(|site| {
        for (asset, original) in assets.iter().zip(&site.data.assets) {
            assert_eq!(asset.raw(), &ls_sim::shape(original, &paths));
        }
    });
}

#[tokio::test]
async fn the_simulator_refuses_more_than_30_paths_and_unknown_paths() {
    let (sim, client) = ls_with(10).await;
    let query = "query($siteId: ID!, $fields: [String!]!) { site(id: $siteId) { assetResources(fields: $fields) { items } } }";
    let err = client
        .graphql(
            query,
            json!({"siteId": sim.site_id(), "fields": VALID_PATHS}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at most 30 paths"), "{err}");
    let err = client
        .graphql(
            query,
            json!({"siteId": sim.site_id(), "fields": ["key", "assetBasicInfo.colour"]}),
        )
        .await
        .unwrap_err();
    let LansweeperError::GraphQl { errors, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(errors[0].message, "Invalid path: assetBasicInfo.colour");
    assert_eq!(errors[0].path_text(), "site.assetResources");
}

#[tokio::test]
async fn invalid_queries_are_rejected_by_the_schema_and_not_retried() {
    let (sim, client) = ls_with(10).await;
    for query in [
        "query { site(id: \"sim-site\") { assets { key } } }",
        "query { site(id: \"sim-site\") { assetResources(fields: [\"key\"]) { items total count } } }",
        "query { site { id } }",
        "query { site(id: \"sim-site\") { id ",
        "mutation { site(id: \"sim-site\") { editAsset(key: \"k\") { key } } }",
    ] {
        let err = client.graphql(query, json!({})).await.unwrap_err();
        assert!(
            matches!(err, LansweeperError::GraphQl { .. }),
            "{query}: {err}"
        );
    }
    assert_eq!(sim.control().total(), 5, "a rejected query is sent once");
}

#[tokio::test]
async fn total_comes_only_with_first_and_cursors_are_checked() {
    let (sim, client) = ls_with(30).await;
    let query = "query($siteId: ID!, $p: AssetsPaginationInputValidated, $fields: [String!]!) { site(id: $siteId) { assetResources(assetPagination: $p, fields: $fields) { total pagination { limit current next page } items } } }";
    let first = client
        .graphql(query, json!({"siteId": sim.site_id(), "fields": ["key"], "p": {"limit": 20, "page": "FIRST"}}))
        .await
        .unwrap();
    let resources = &first["site"]["assetResources"];
    assert_eq!(resources["total"], 30);
    let next = resources["pagination"]["next"]
        .as_str()
        .unwrap()
        .to_string();
    // Lansweeper refuses `total` with any page but FIRST: a later page's query omits it.
    let refused = client
        .graphql(query, json!({"siteId": sim.site_id(), "fields": ["key"], "p": {"limit": 20, "page": "NEXT", "cursor": next}}))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("total can only be requested with page FIRST"),
        "{refused}"
    );
    let later = query.replace(" total ", " ");
    let second = client
        .graphql(&later, json!({"siteId": sim.site_id(), "fields": ["key"], "p": {"limit": 20, "page": "NEXT", "cursor": next}}))
        .await
        .unwrap();
    let resources = &second["site"]["assetResources"];
    assert_eq!(resources["items"].as_array().unwrap().len(), 10);
    assert_eq!(resources["pagination"]["next"], Value::Null);
    let query = later.as_str();
    // A cursor belongs to its query: other fields, or a made-up cursor, are refused.
    for (fields, cursor) in [
        (json!(["key", "url"]), next.clone()),
        (json!(["key"]), "c2ltOjEwOmZm".to_string()),
    ] {
        let err = client
            .graphql(query, json!({"siteId": sim.site_id(), "fields": fields, "p": {"limit": 20, "page": "NEXT", "cursor": cursor}}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cursor"), "{err}");
    }
}

#[tokio::test]
async fn filters_select_assets() {
    let (_sim, client) = ls_with(300).await;
    let filters = json!({"conjunction": "AND", "conditions": [{"operator": "EQUAL", "path": "assetBasicInfo.type", "value": "windows"}]});
    let windows = client
        .assets(&["key", "assetBasicInfo.type"], Some(&filters))
        .await
        .unwrap();
    assert!(!windows.is_empty() && windows.len() < 300);
    assert!(
        windows
            .iter()
            .all(|a| a.asset_type().as_deref() == Some("Windows"))
    );
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one site's custom fields through their life: created, typed, written, read back"
)]
async fn custom_fields_are_created_with_their_types_and_written_with_edit_asset() {
    let (sim, client) = ls_with(5).await;
    assert!(client.custom_fields().await.unwrap().is_empty());
    let total = client
        .create_custom_field("cw_total_tickets", CustomFieldType::Number)
        .await
        .unwrap();
    let link = client
        .create_custom_field("cw_configuration_url", CustomFieldType::Hyperlink)
        .await
        .unwrap();
    let end = client
        .create_custom_field("cw_agreement_end_date", CustomFieldType::Date)
        .await
        .unwrap();
    assert_eq!(total.field_type, CustomFieldType::Number);
    let listed = client.custom_fields().await.unwrap();
    assert_eq!(listed, vec![total.clone(), link.clone(), end.clone()]);
    let err = client
        .create_custom_field("CW_TOTAL_TICKETS", CustomFieldType::Text)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    let key = sim.with_site(|site| site.data.assets[2]["key"].as_str().unwrap().to_string());
    edit(
        &client,
        &key,
        &[
            (total.key.clone(), "12".into()),
            (link.key.clone(), "https://cw.example/config/7".into()),
            (end.key.clone(), "2028-09-30".into()),
        ],
    )
    .await
    .unwrap();

    assert_eq!(
        custom_values(&client, &key).await,
        [
            json!("12"),
            json!("https://cw.example/config/7"),
            json!("2028-09-30")
        ]
    );

    // A wrong value fails the whole edit and writes nothing.
    let err = edit(
        &client,
        &key,
        &[
            (link.key.clone(), String::new()),
            (total.key.clone(), "twelve".into()),
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("not a valid NUMERIC value"), "{err}");
    assert_eq!(custom_values(&client, &key).await.len(), 3);

    // Lansweeper's documented way to clear: an empty string, on a field of any type
    // (text, number, date): what the connector sends for a value that is gone.
    edit(
        &client,
        &key,
        &[
            (link.key.clone(), String::new()),
            (end.key.clone(), String::new()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(custom_values(&client, &key).await, [json!("12")]);
    edit(&client, &key, &[(total.key.clone(), String::new())])
        .await
        .unwrap();
    assert!(custom_values(&client, &key).await.is_empty());

    let err = edit(&client, "no-such-asset", &[(total.key.clone(), "1".into())])
        .await
        .unwrap_err();
    assert!(err.contains("not found"), "{err}");
}

/// One asset's edit, as the enrichment sends it (a batch of one): written, or why not.
async fn edit(
    client: &LansweeperClient,
    key: &str,
    values: &[(String, String)],
) -> Result<(), String> {
    match client.edit_assets_custom_fields(&[(key, values)]).await {
        Ok(mut outcomes) => outcomes.remove(0),
        Err(error) => Err(error.to_string()),
    }
}

#[tokio::test]
async fn pacing_keeps_400_requests_under_the_quota() {
    let (sim, client) = ls_with(1).await;
    let started = Instant::now();
    let calls: Vec<_> = (0..400)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.custom_fields().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(sim.rate_refusals(), 0, "no request refused for rate");
    assert_eq!(sim.control().total(), 400, "no retries were needed");
    // 400 requests at 150 a window need at least two full windows.
    assert!(
        started.elapsed() >= ls_options().rate_window * 2,
        "{:?}",
        started.elapsed()
    );
}

/// The simulator's 151st request in a minute is refused, and so is every one after it
/// until a whole quiet minute has passed; a paced client waits that out.
///
/// Breaking it looks like: a greedy burst accepted past 150 (or refused before), or a
/// paced client that knocks again during the penalty instead of waiting it out.
#[tokio::test]
async fn without_pacing_the_quota_bites_and_the_penalty_is_waited_out() {
    // A 1-second "minute", held still during the burst: however slow the machine, the
    // 160 requests fall in one minute.
    let window = Duration::from_secs(1);
    let clock = ls_sim::QuotaClock::default();
    let site = ls_sim::generate(&ls_sim::SiteSpec { seed: 7, assets: 1 }).unwrap();
    let options = ls_sim::LansweeperOptions {
        rate_window: window,
        clock: clock.clone(),
        ..ls_sim::LansweeperOptions::default()
    };
    let limit = options.rate_limit;
    let sim = ls_sim::LansweeperSimulator::start(site, options, "127.0.0.1:0")
        .await
        .unwrap();
    let unpaced = LansweeperOptions {
        rate_limit: 100_000,
        retry: RetryPolicy {
            max_attempts: 1,
            ..fast_retry()
        },
        ..ls_options()
    };
    let greedy = ls_client_for(&sim, ls_sim::TOKEN, unpaced);
    let mut refused = 0;
    clock.hold();
    for _ in 0..limit + 10 {
        if let Err(err) = greedy.custom_fields().await {
            assert!(
                matches!(
                    err,
                    LansweeperError::Transport(TransportError::RateLimited { .. })
                ),
                "{err}"
            );
            refused += 1;
        }
    }
    assert_eq!(
        refused, 10,
        "the 151st request and all after it in the window"
    );
    assert_eq!(sim.rate_refusals(), 10);
    // Knocking during the penalty restarts it; a paced client waits it out and succeeds.
    // The clock runs on from the burst: the knock comes well within its minute.
    clock.release();
    let paced = ls_client_for(
        &sim,
        ls_sim::TOKEN,
        LansweeperOptions {
            rate_window: window,
            retry: RetryPolicy {
                rate_limit_fallback: window,
                ..fast_retry()
            },
            ..ls_options()
        },
    );
    let started = Instant::now();
    paced.custom_fields().await.unwrap();
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    assert_eq!(
        sim.rate_refusals(),
        11,
        "one knock, then a quiet window, then success"
    );
}

#[tokio::test]
async fn every_bad_token_form_is_one_clear_error() {
    let (sim, _) = ls_with(1).await;
    for token in ["wrong", "Bearer wrong"] {
        let client = ls_client_for(&sim, token, ls_options());
        let err = client.custom_fields().await.unwrap_err();
        assert!(
            matches!(err, LansweeperError::Unauthenticated),
            "{token}: {err}"
        );
        assert_eq!(
            err.to_string(),
            "Lansweeper rejected the token (check LS_TOKEN and that it is not expired)"
        );
        assert!(!err.to_string().contains("wrong"));
    }
    let response = reqwest::Client::new()
        .post(sim.api_url())
        .json(&json!({"query": "{ me { profiles { site { id } } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = reqwest::Client::new()
        .post(sim.api_url())
        .header("Authorization", "Token wrong")
        .json(&json!({"query": "{ me { profiles { site { id } } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Context creation failed: You must be logged in.")
    );
    assert_eq!(sim.control().total(), 4, "nothing retried");
}

#[tokio::test]
async fn another_site_is_forbidden_and_sites_are_listed() {
    let (sim, client) = ls_with(1).await;
    let sites = client.sites().await.unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].id, "sim-site");
    let other = shared::lansweeper::LansweeperClient::new(
        shared::lansweeper::LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some(ls_sim::TOKEN.into()),
            "LS_SITE_ID" => Some("someone-elses-site".into()),
            "LS_API_URL" => Some(sim.api_url()),
            _ => None,
        })
        .unwrap(),
        ls_options(),
    )
    .unwrap();
    let err = other.custom_fields().await.unwrap_err();
    assert!(matches!(err, LansweeperError::Forbidden(_)), "{err}");
}

#[tokio::test]
async fn a_429_and_5xx_are_retried() {
    let (sim, client) = ls_with(3).await;
    sim.control().fail_next(1, 429, Some(1), None);
    sim.control().fail_next(2, 502, None, None);
    let started = Instant::now();
    let assets = client.assets(ASSET_PATHS, None).await.unwrap();
    assert_eq!(assets.len(), 3);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(sim.control().total(), 4);
}

/// The default site (`SiteSpec::default()`) has the variety of a real estate and is the
/// same from the same seed.
///
/// Breaking it looks like: a kind of hostile value missing (no placeholder serials, MACs
/// in one form only), or two sites from one seed differing.
#[tokio::test]
async fn generated_site_has_the_variety_of_a_real_estate() {
    let spec = ls_sim::SiteSpec::default();
    let site = ls_sim::generate(&spec).unwrap();
    let data: &SiteData = &site.data;
    assert_eq!(data.assets.len(), spec.assets);
    let text = |a: &Value, p: &str| -> Option<String> {
        p.split('.')
            .try_fold(a, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let types: HashSet<String> = data
        .assets
        .iter()
        .filter_map(|a| text(a, "assetBasicInfo.type"))
        .collect();
    for t in ["Windows", "Linux", "Macintosh", "Switch", "OT"] {
        assert!(types.contains(t), "{t}");
    }
    let serials: Vec<String> = data
        .assets
        .iter()
        .filter_map(|a| text(a, "assetCustom.serialNumber"))
        .collect();
    for placeholder in ["To be filled by O.E.M.", "Default string", "0"] {
        assert!(serials.iter().any(|s| s == placeholder), "{placeholder}");
    }
    let macs: Vec<String> = data
        .assets
        .iter()
        .filter_map(|a| text(a, "assetBasicInfo.mac"))
        .collect();
    assert!(
        macs.iter()
            .any(|m| m.contains(':') && m.chars().any(|c| c.is_ascii_lowercase()))
    );
    assert!(macs.iter().any(|m| m.contains('-')));
    assert!(macs.iter().any(|m| m.contains('.')));
    assert!(macs.iter().any(|m| m.len() == 12));
    assert!(macs.len() < spec.assets, "some assets have no MAC");
    let names: Vec<String> = data
        .assets
        .iter()
        .filter_map(|a| text(a, "assetBasicInfo.name"))
        .collect();
    assert!(names.iter().any(|n| !n.is_ascii()));
    assert!(names.iter().any(|n| n.contains('"')));
    assert!(
        names.len() > names.iter().collect::<HashSet<_>>().len(),
        "duplicate names"
    );
    assert!(
        data.assets
            .iter()
            .any(|a| a["softwares"].as_array().is_some_and(|s| s.len() >= 300))
    );
    // Deterministic from the seed.
    let again = ls_sim::generate(&spec).unwrap();
    assert_eq!(again.data.assets, data.assets);
}

/// The custom field values of one asset, as a fresh read of the site shows them.
async fn custom_values(client: &shared::lansweeper::LansweeperClient, key: &str) -> Vec<Value> {
    let assets = client
        .assets(
            &[
                "key",
                "assetCustom.fields.fieldKey",
                "assetCustom.fields.value",
            ],
            None,
        )
        .await
        .unwrap();
    let asset = assets
        .into_iter()
        .find(|a| a.key().as_deref() == Some(key))
        .unwrap();
    asset
        .values_at("assetCustom.fields.value")
        .into_iter()
        .cloned()
        .collect()
}

/// The simulator holds an hour to its quota, and a client paced to the hour is never
/// refused: its request past the hour's quota waits for the hour.
///
/// Breaking it looks like: a greedy client's requests past the hour's quota accepted, or
/// the paced one refused (or not waiting for the hour).
#[tokio::test]
async fn the_hourly_quota_is_paced_too() {
    // A 0.05-second "minute", so the "hour" lasts 3 seconds; 20 requests an hour.
    let window = Duration::from_millis(50);
    let clock = ls_sim::QuotaClock::default();
    let site = ls_sim::generate(&ls_sim::SiteSpec { seed: 7, assets: 1 }).unwrap();
    let sim = ls_sim::LansweeperSimulator::start(
        site,
        ls_sim::LansweeperOptions {
            rate_window: window,
            hourly_limit: 20,
            clock: clock.clone(),
            ..ls_sim::LansweeperOptions::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let options = |hourly_limit: usize| LansweeperOptions {
        rate_window: window,
        hourly_limit,
        hourly_window: window * 60,
        retry: RetryPolicy {
            max_attempts: 1,
            ..fast_retry()
        },
        ..ls_options()
    };
    let unpaced = ls_client_for(&sim, ls_sim::TOKEN, options(100_000));
    let mut refused = 0;
    // Held still: the 25 requests fall in one hour however slow the machine.
    clock.hold();
    for _ in 0..25 {
        if unpaced.custom_fields().await.is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "the simulator holds the hour to 20 requests");

    // The hour passes on the simulator's clock, not waited for.
    clock.advance(window * 60);
    clock.release();
    let paced = ls_client_for(&sim, ls_sim::TOKEN, options(20));
    let before = sim.rate_refusals();
    let started = Instant::now();
    for _ in 0..25 {
        paced.custom_fields().await.unwrap();
    }
    assert_eq!(
        sim.rate_refusals(),
        before,
        "the paced client is never refused"
    );
    assert!(
        started.elapsed() >= window * 60,
        "the 21st request waited for the hour: {:?}",
        started.elapsed()
    );
}
