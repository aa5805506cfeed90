//! A run always ends, with every asset accounted for; a bad asset fails alone; a limit
//! is planned for, never hit — and no run leaves the next one stuck.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::{Value, json};
use shared::error::PipelineError;
use shared::pipeline::RunStatus;
use shared::settings::SyncSettings;
use shared::store::{MAX_VALUE_BYTES, MemoryStore};

use lscw_tests::world::{World, settings, state, sync, world};

/// Long software lists on every linked asset (`generation` makes each update differ).
fn install_long_software(world: &World, generation: usize) -> Vec<String> {
    world.ls.with_site(|site| {
        let mut linked = Vec::new();
        for (index, asset) in site.data.assets.iter_mut().enumerate() {
            if !simulators::scenario::is_linked(index) || asset.get("operatingSystem").is_none() {
                continue;
            }
            let software: Vec<Value> = (0..400)
                .map(|n| {
                    json!({
                        "name": format!("Enterprise Application Suite Component {n:03} for asset {index}"),
                        "version": format!("{generation}.{n}.{}", index % 97),
                        "publisher": "A Publisher With A Long Registered Company Name GmbH",
                    })
                })
                .collect();
            asset["softwares"] = Value::Array(software);
            linked.push(asset["key"].as_str().unwrap().to_string());
        }
        linked
    })
}

/// Long software lists on many linked assets, updated twice, are written in batches
/// that fit the store, with nothing failed.
///
/// Breaking it looks like: a stored value over the store's limit, or assets failed for a
/// batch too large.
#[tokio::test]
async fn software_updates_on_many_linked_assets_never_make_a_batch_too_large() {
    let world = world(600).await;
    sync(&world).await;
    for generation in 1..=2 {
        let updated = install_long_software(&world, generation);
        assert!(updated.len() >= 100, "{} linked assets", updated.len());
        let report = sync(&world).await;
        assert!(report.failed.is_empty(), "{:#?}", report.failed);
        assert!(
            report.counts.modified as usize >= updated.len(),
            "update {generation}: {} modified for {} updated",
            report.counts.modified,
            updated.len()
        );
        // Every stored value fits the store, and the batches took more than 50's count.
        for key in world.store.keys() {
            let size = world.store.raw_len(&key).unwrap_or(0);
            assert!(size <= MAX_VALUE_BYTES, "{key} is {size} bytes");
        }
    }
    let settled = sync(&world).await;
    assert_eq!(
        (settled.counts.created, settled.counts.modified),
        (0, 0),
        "{settled:#?}"
    );
    state(&world.cw);
}

#[tokio::test]
async fn a_huge_value_or_a_huge_software_list_fails_or_is_capped_alone() {
    let world = world(80).await;
    let (huge_key, many_software) = world.ls.with_site(|site| {
        let mut huge = site.data.assets[1].clone();
        huge["key"] = json!("k".repeat(10 * 1024 * 1024));
        huge["assetBasicInfo"]["name"] = json!("asset with a 10 MB key");
        site.add_asset(huge).unwrap();
        let mut named = site.data.assets[3].clone();
        named["key"] = json!("asset-with-a-10-mb-name");
        named["assetBasicInfo"]["name"] = json!("n".repeat(10 * 1024 * 1024));
        named["assetCustom"]["serialNumber"] = json!("SERIAL-HUGE-NAME");
        named["assetBasicInfo"]["mac"] = Value::Null;
        site.add_asset(named).unwrap();
        let mut busy = site.data.assets[5].clone();
        busy["key"] = json!("asset-with-5000-software");
        busy["assetBasicInfo"]["name"] = json!("asset with 5000 software entries");
        busy["assetCustom"]["serialNumber"] = json!("SERIAL-5000-SOFTWARE");
        busy["assetBasicInfo"]["mac"] = Value::Null;
        busy["softwares"] = Value::Array(
            (0..5_000)
                .map(
                    |n| json!({"name": format!("Package {n}"), "version": "1.0", "publisher": "P"}),
                )
                .collect(),
        );
        site.add_asset(busy).unwrap();
        ("k".repeat(40), "asset-with-5000-software")
    });
    let report = sync(&world).await;
    assert_eq!(report.status, RunStatus::SucceededWithFailures);
    let rejected: Vec<&str> = report.failed.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        report.failed.len(),
        1,
        "only the 10 MB key fails: {rejected:#?}"
    );
    assert!(report.failed[0].asset_key.starts_with(&huge_key));
    assert!(
        report.failed[0].asset_key.len() < 1_000,
        "the key is not echoed whole"
    );
    assert!(
        rejected[0].contains("cannot be shortened"),
        "{}",
        rejected[0]
    );
    let (linked, _) = state(&world.cw);
    let busy = &linked[many_software];
    assert_eq!(busy["name"], "asset with 5000 software entries");
    let named = &linked["asset-with-a-10-mb-name"];
    assert_eq!(named["name"].as_str().unwrap().chars().count(), 100);
    assert!(report.counts.created > 30, "the others sync: {report:#?}");
}

#[tokio::test]
async fn a_batch_refused_whole_and_one_failing_past_its_retries_fail_alone() {
    let world = world(400).await;
    // The first bulk create is refused as a whole; the first bulk modify fails with 500
    // on every attempt.
    world
        .cw
        .control()
        .fail_next(1, 400, None, Some("POST /company/configurations/bulk"));
    world
        .cw
        .control()
        .fail_next(4, 500, None, Some("PUT /company/configurations/bulk"));
    let report = sync(&world).await;
    assert_eq!(report.status, RunStatus::SucceededWithFailures);
    let refused = report
        .failed
        .iter()
        .filter(|f| f.reason.contains("refused the batch") && f.reason.contains("400"))
        .count();
    let broken = report
        .failed
        .iter()
        .filter(|f| f.reason.contains("the batch failed") && f.reason.contains("500"))
        .count();
    assert_eq!(refused, 50, "{:#?}", report.failed);
    assert!(broken > 0 && broken <= 50, "{:#?}", report.failed);
    assert!(
        report.counts.created > 0 && report.counts.modified > 0,
        "{report:#?}"
    );

    // The next run writes what failed, and then nothing is left.
    let next = sync(&world).await;
    assert_eq!(
        next.status,
        RunStatus::SucceededWithFailures,
        "conflicts remain"
    );
    assert!(next.failed.is_empty(), "{:#?}", next.failed);
    assert_eq!(next.counts.created as usize, refused);
    assert_eq!(next.counts.modified as usize, broken);
    let settled = sync(&world).await;
    assert_eq!((settled.counts.created, settled.counts.modified), (0, 0));
}

#[tokio::test]
async fn a_wrong_custom_field_id_stops_the_run_before_any_write_naming_the_field() {
    let world = world(60).await;
    let wrong = SyncSettings {
        // 9 is another field: the MSP's own warranty contact.
        custom_field_ids: [
            ("ls_asset_id", 5),
            ("ls_asset_url", 9),
            ("ls_software", 7),
            ("ls_asset_location", 8),
        ]
        .into_iter()
        .map(|(caption, id)| (caption.to_string(), id))
        .collect(),
        ..settings()
    };
    world.cw.with_tenant(lscw_tests::add_foreign_custom_field);
    let store = MemoryStore::new();
    let error =
        shared::pipeline::run_sync(&world.cw_client, &world.ls_client, &store, &wrong, &|_| {})
            .await
            .unwrap_err();
    assert!(matches!(error, PipelineError::Config(_)), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("ls_asset_url") && text.contains("warranty_contact"),
        "{text}"
    );
    assert_eq!(world.cw.control().writes(), 0);
}

/// An enrichment that needs more than an hour's quota waits for it between invocations
/// (handing the wait back), never within one past its deadline, and Lansweeper refuses
/// nothing; a later client pacing by the shared ledger finds nothing left to write.
///
/// Breaking it looks like: an invocation that sleeps for the quota (it overruns its
/// deadline by most of the hour, and no wait is handed back), or a refused request.
#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: two simulators on one clock, the invocation loop, and the fresh client after it"
)]
async fn an_enrichment_over_the_hour_s_quota_waits_between_invocations_never_within() {
    use std::time::{Duration, Instant};

    use shared::connectwise::ConnectWiseClient;
    use shared::enrichment::{enrich, run_enrich};
    use shared::lansweeper::LansweeperOptions;
    use shared::states::EnrichInput;
    use simulators::lansweeper::{LansweeperSimulator, SiteSpec};

    // 40 requests an "hour" of 3 s (a "minute" of 50 ms), on both sides alike.
    let minute = Duration::from_millis(50);
    let hour = minute * 60;
    let hourly_limit = 40;
    let (tenant, site) = simulators::scenario::linked(&SiteSpec {
        seed: 4,
        assets: 100,
    })
    .unwrap();
    let cw = lscw_tests::start_cw(tenant).await;
    let ls = LansweeperSimulator::start(
        site,
        simulators::lansweeper::LansweeperOptions {
            rate_window: minute,
            hourly_limit,
            ..simulators::lansweeper::LansweeperOptions::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let cw_client =
        ConnectWiseClient::connect(&lscw_tests::cw_config(&cw), lscw_tests::fast_options())
            .await
            .unwrap();
    let options = LansweeperOptions {
        retry: shared::http::RetryPolicy {
            rate_limit_fallback: minute,
            ..lscw_tests::fast_retry()
        },
        rate_window: minute,
        hourly_window: hour,
        hourly_limit,
        ..LansweeperOptions::default()
    };
    let ls_client = lscw_tests::ls_client_for(&ls, simulators::lansweeper::TOKEN, options.clone());
    let store = MemoryStore::new();
    shared::pipeline::run_sync(&cw_client, &ls_client, &store, &settings(), &|_| {})
        .await
        .unwrap();

    // As the state machine runs it: invocations with a deadline, waiting between them.
    // The hour's quota is spent well within a budget; what is left of the hour then is
    // longer than what is left of the budget.
    let budget = Duration::from_secs(1);
    let mut input = EnrichInput::default();
    let (mut invocations, mut waits) = (0, 0);
    let edits;
    loop {
        let started = Instant::now();
        let output = enrich(
            &cw_client,
            &ls_client,
            &store,
            &settings(),
            &input,
            Some(started + budget),
        )
        .await
        .unwrap();
        invocations += 1;
        if invocations > 1 {
            // Past its deadline by one write at most: a wait for the quota within it
            // would take most of the hour.
            assert!(
                started.elapsed() < budget + hour / 2,
                "invocation {invocations} overran its deadline: {:?}",
                started.elapsed()
            );
        }
        if output.done {
            edits = output.edits;
            break;
        }
        if output.wait_seconds > 0 {
            waits += 1;
            tokio::time::sleep(Duration::from_secs(output.wait_seconds)).await;
        }
        input = EnrichInput {
            run_id: Some(output.run_id),
            next: Some(output.next),
        };
    }
    assert!(
        edits > 2 * hourly_limit,
        "{edits} edits: over two hours' quota"
    );
    assert!(
        waits > 0,
        "the hour's quota ran out and was waited for between invocations"
    );
    assert_eq!(ls.rate_refusals(), 0, "Lansweeper never refused a request");
    shared::lease::release(&store, input.run_id.as_deref().unwrap())
        .await
        .unwrap();

    // What an unconstrained run would leave: a fresh client (no pacing history of its
    // own) that reads the shared ledger finds nothing left to write.
    let fresh = lscw_tests::ls_client_for(&ls, simulators::lansweeper::TOKEN, options);
    let (again, _) = run_enrich(&cw_client, &fresh, &store, &settings(), None)
        .await
        .unwrap();
    assert_eq!(again.written, 0, "{again:#?}");
    assert!(again.failed.is_empty(), "{:#?}", again.failed);
    assert_eq!(
        ls.rate_refusals(),
        0,
        "the fresh client paced by the shared ledger"
    );
}

/// Whether the site's asset shows every value of `edit`.
fn shows(world: &World, edit: &shared::enrichment::AssetEdit) -> bool {
    world.ls.with_site(|site| {
        let fields = &site.asset(&edit.asset_key).unwrap()["assetCustom"]["fields"];
        edit.values.iter().all(|(key, value)| {
            fields.as_array().is_some_and(|fields| {
                fields
                    .iter()
                    .any(|f| f["fieldKey"] == key.as_str() && f["value"] == value.as_str())
            })
        })
    })
}

/// The edits the run's first invocation planned, in the order they are written.
async fn planned_edits(world: &World, run_id: &str) -> Vec<shared::enrichment::AssetEdit> {
    use shared::store::StoreExt;

    let plan: Value = world
        .store
        .require(&shared::layout::enrich_plan(run_id))
        .await
        .unwrap();
    let parts: Vec<String> = serde_json::from_value(plan["edits"].clone()).unwrap();
    world.store.get_parts(&parts).await.unwrap()
}

/// An invocation whose deadline has passed before it starts still writes one batch of
/// edits (one request) when the quota has room, so a run of such invocations always
/// progresses.
///
/// Breaking it looks like: an invocation that writes nothing (its edits are not in
/// Lansweeper, the next one starts where this one did), or one that sends more than one
/// request.
#[tokio::test]
async fn an_invocation_past_its_deadline_still_writes_one_batch_when_the_quota_has_room() {
    use std::time::{Duration, Instant};

    use shared::enrichment::enrich;
    use shared::states::EnrichInput;
    use shared::store::Store;

    let world = world(40).await;
    sync(&world).await;
    // The batch size an earlier enrichment found goes through (the simulator's cap).
    world
        .store
        .put_raw(
            shared::layout::LANSWEEPER_EDIT_BATCH,
            format!(
                r#"{{"size":{}}}"#,
                simulators::lansweeper::MUTATIONS_PER_REQUEST
            ),
            Duration::from_secs(3_600),
        )
        .await
        .unwrap();
    let requests = || world.ls.control().count("POST graphql:editAsset");
    let first = enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        &EnrichInput::default(),
        Some(Instant::now()),
    )
    .await
    .unwrap();
    assert_eq!(first.wait_seconds, 0, "no quota to wait for");
    let planned = planned_edits(&world, &first.run_id).await;
    assert!(
        first.next > 1 && first.next < planned.len(),
        "one batch written: {first:?} of {} edits",
        planned.len()
    );
    assert_eq!(requests(), 1, "one request sent");
    assert!(
        shows(&world, &planned[first.next - 1]),
        "the batch's last edit is in Lansweeper"
    );
    assert!(!shows(&world, &planned[first.next]), "the next is not yet");
    let second = enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        &EnrichInput {
            run_id: Some(first.run_id.clone()),
            next: Some(first.next),
        },
        Some(Instant::now()),
    )
    .await
    .unwrap();
    assert!(
        second.next > first.next,
        "every invocation progresses: {second:?}"
    );
    assert_eq!(requests(), 2, "one more request sent");
    assert!(
        shows(&world, &planned[second.next - 1]),
        "the second batch is in Lansweeper"
    );
}
