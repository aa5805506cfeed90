//! The whole asset synchronisation on one machine (the code `lscw sync` and the Lambda
//! functions run) against both simulators.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::{Value, json};
use shared::pipeline::{self, Progress};
use shared::settings::SyncSettings;
use simulators::connectwise::CONFIGURATIONS;

use lscw_tests::world::{World, scenario, settings, sync_with as sync, world_of};

async fn world(assets: usize) -> World {
    // A custom field the sync does not own, filled in by hand on one configuration.
    world_of(3, assets, lscw_tests::add_foreign_custom_field).await
}

fn configuration_by_link<'a>(configurations: &'a [Value], key: &str) -> Vec<&'a Value> {
    configurations
        .iter()
        .filter(|c| {
            c["customFields"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f["caption"] == "ls_asset_id" && f["value"] == key)
            })
        })
        .collect()
}

/// A first run creates a configuration for each asset the scenario gave none, modifies
/// each one entered by hand but the twins (its conflicts), in bulk; a second run writes
/// nothing.
///
/// Breaking it looks like: an asset created though it had a configuration (or skipped),
/// a conflict the scenario did not make, or a second run writing.
#[tokio::test]
async fn first_run_writes_everything_second_run_writes_nothing() {
    let world = world(400).await;
    let before = world.cw.control().writes();
    let report = sync(&world, &settings()).await;
    assert_eq!(report.assets, 400);
    // As the scenario set it up: a configuration created for each asset without one,
    // each one entered by hand modified, but for the twins, each a conflict.
    let scenario = scenario(&world);
    assert!(
        !scenario.twins.is_empty(),
        "the scenario has duplicate serials"
    );
    assert_eq!(
        report.counts.created as usize,
        scenario.without_configuration.len(),
        "{report:#?}"
    );
    assert_eq!(
        report.counts.modified as usize,
        scenario.with_configuration.len() - scenario.twins.len(),
        "{report:#?}"
    );
    let conflicted: std::collections::BTreeSet<String> = report
        .conflicts
        .iter()
        .map(|c| c.asset_key.to_lowercase())
        .collect();
    assert_eq!(conflicted, scenario.twins, "{:#?}", report.conflicts);
    assert!(
        report
            .references_created
            .values()
            .map(Vec::len)
            .sum::<usize>()
            > 0
    );
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert!(world.cw.control().writes() > before);
    // Bulk writes: at most one request per 50 assets, plus the retries of failed items.
    let control = world.cw.control();
    let bulk = control.count("POST /company/configurations/bulk")
        + control.count("PUT /company/configurations/bulk");
    assert!(
        bulk <= report.counts.created.div_ceil(50) + report.counts.modified.div_ceil(50) + 2,
        "{bulk}"
    );

    // Every created configuration carries its references and custom fields.
    let (configurations, assets) = (
        world.cw.with_tenant(|t| {
            t.records("configurations")
                .map(|r| t.render(&CONFIGURATIONS, r, ""))
                .collect::<Vec<_>>()
        }),
        world.ls.with_site(|s| s.data.assets.clone()),
    );
    let created = assets.iter().enumerate().filter(|(_, a)| {
        scenario
            .without_configuration
            .contains(&a["key"].as_str().unwrap().to_lowercase())
    });
    let location_of = |c: &Value| world.cw.with_tenant(|t| t.location_name(c));
    for (index, asset) in created {
        let key = asset["key"].as_str().unwrap();
        let linked = configuration_by_link(&configurations, key);
        assert_eq!(linked.len(), 1, "asset #{index} {key}");
        let configuration = linked[0];
        assert_eq!(configuration["company"]["identifier"], "BlueLightCo");
        assert_eq!(
            configuration["type"]["name"],
            asset["assetBasicInfo"]["type"]
        );
        if let Some(location) = asset["assetCustom"]["location"].as_str() {
            assert_eq!(location_of(configuration), location);
        }
        let url = configuration["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["caption"] == "ls_asset_url")
            .unwrap();
        assert_eq!(url["value"], asset["url"]);
    }
    // Conflicts are not written.
    for conflict in &report.conflicts {
        assert!(configuration_by_link(&configurations, &conflict.asset_key).len() <= 1);
    }

    world.cw.control().reset_counts();
    let again = sync(&world, &settings()).await;
    assert_eq!(
        world.cw.control().writes(),
        0,
        "{:#?}",
        world.cw.control().requests()
    );
    assert_eq!(
        (again.counts.created, again.counts.modified),
        (0, 0),
        "{again:#?}"
    );
    assert_eq!(
        again.counts.unchanged,
        report.counts.created + report.counts.modified + report.counts.unchanged
    );
    assert_eq!(again.conflicts.len(), report.conflicts.len());
    assert!(again.references_created.is_empty());
}

#[tokio::test]
async fn a_hand_edit_the_sync_does_not_own_survives_a_modify() {
    let world = world(60).await;
    sync(&world, &settings()).await;
    let key = world.ls.with_site(|site| {
        let asset = &mut site.data.assets[4];
        asset["assetBasicInfo"]["ipAddress"] = json!("10.99.99.99");
        asset["key"].as_str().unwrap().to_string()
    });
    let config_id = world.cw.with_tenant(|tenant| {
        let record = tenant
            .records("configurations")
            .find(|c| {
                c["customFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["value"] == json!(key))
            })
            .unwrap()
            .clone();
        let id = record["id"].as_i64().unwrap();
        let mut body = record.clone();
        body["notes"] = json!("replaced the fan, 2026-11-02");
        body["tagNumber"] = json!("TAG-0042");
        let mut fields: Vec<Value> = body["customFields"].as_array().unwrap().clone();
        fields.push(json!({"id": 9, "value": "Jane at Dell"}));
        body["customFields"] = Value::Array(fields);
        tenant.replace(&CONFIGURATIONS, id, &body).unwrap();
        id
    });
    world.cw.control().reset_counts();
    let report = sync(&world, &settings()).await;
    assert_eq!(report.counts.modified, 1, "{report:#?}");
    assert_eq!(
        world.cw.control().count("PUT /company/configurations/bulk"),
        1
    );
    let after = world
        .cw_client
        .get(&format!("company/configurations/{config_id}"))
        .await
        .unwrap();
    assert_eq!(after["ipAddress"], "10.99.99.99");
    assert_eq!(after["notes"], "replaced the fan, 2026-11-02");
    assert_eq!(after["tagNumber"], "TAG-0042");
    let custom = |caption: &str| {
        after["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["caption"] == caption)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(custom("warranty_contact"), "Jane at Dell");
    assert_eq!(custom("ls_asset_id"), json!(key));
}

#[tokio::test]
async fn hostile_names_are_data_not_queries() {
    let world = world(20).await;
    let hostile = r#"x" or id>0 or name="y"#;
    world.ls.with_site(|site| {
        let mut asset = site.data.assets[1].clone();
        asset["key"] = json!("hostile-asset");
        asset["assetBasicInfo"]["name"] = json!(hostile);
        // Another device: its own serial, no MAC (a copy's would make both a conflict).
        asset["assetCustom"]["serialNumber"] = json!("HOSTILE-SERIAL-1");
        asset["assetBasicInfo"]["mac"] = Value::Null;
        asset["assetCustom"]["location"] = json!(hostile);
        asset["assetCustom"]["manufacturer"] = json!(r"back\slash [vendor]");
        site.add_asset(asset).unwrap();
    });
    let report = sync(&world, &settings()).await;
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    let configuration = world
        .cw_client
        .list(
            "company/configurations",
            &shared::connectwise::ListQuery::with_conditions(
                shared::connectwise::Field::new("name")
                    .unwrap()
                    .eq(hostile)
                    .as_str(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(configuration.len(), 1);
    assert_eq!(
        world.cw.with_tenant(|t| t.location_name(&configuration[0])),
        hostile
    );
    assert_eq!(
        configuration[0]["manufacturer"]["name"],
        r"back\slash [vendor]"
    );
    // Running again finds it by its link and the existing references by name.
    world.cw.control().reset_counts();
    sync(&world, &settings()).await;
    assert_eq!(world.cw.control().writes(), 0);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_plans_everything() {
    let world = world(100).await;
    let dry = SyncSettings {
        dry_run: true,
        ..settings()
    };
    let report = sync(&world, &dry).await;
    assert_eq!(world.cw.control().writes(), 0);
    assert!(report.counts.created > 0 && report.counts.modified > 0);
    let plan = pipeline::plan(&world.store, &report.run_id).await.unwrap();
    assert_eq!(plan.create.len() as u64, report.counts.created);
    assert_eq!(plan.modify.len() as u64, report.counts.modified);
    assert!(plan.modify.iter().all(|m| !m.unmatched_fields.is_empty()));
    assert!(!plan.references.is_empty());
    // The real run then does what the plan said.
    let real = sync(&world, &settings()).await;
    assert_eq!(
        (real.counts.created, real.counts.modified),
        (report.counts.created, report.counts.modified)
    );
}

#[tokio::test]
async fn a_failing_item_is_sent_once_more_after_reading_it_was_not_saved() {
    let world = world(40).await;
    let (flaky, broken) = world.ls.with_site(|site| {
        let name = |i: usize| {
            site.data.assets[i]["assetBasicInfo"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        };
        (name(1), name(3))
    });
    world.cw.control().fail_item(&flaky, 1);
    world.cw.control().fail_item(&broken, 5);
    let report = sync(&world, &settings()).await;
    let failed: Vec<&str> = report.failed.iter().map(|f| f.asset_key.as_str()).collect();
    let broken_key = world
        .ls
        .with_site(|s| s.data.assets[3]["key"].as_str().unwrap().to_string());
    assert_eq!(failed, [broken_key.as_str()], "{:#?}", report.failed);
    assert!(
        report.failed[0].reason.contains("500"),
        "{}",
        report.failed[0].reason
    );
    assert_eq!(
        world
            .cw
            .control()
            .count("POST /company/configurations/bulk"),
        2,
        "one bulk, then one resend of the two failed items"
    );
    let flaky_key = world
        .ls
        .with_site(|s| s.data.assets[1]["key"].as_str().unwrap().to_string());
    let linked = world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .filter(|c| {
                c["customFields"].as_array().is_some_and(|fields| {
                    fields
                        .iter()
                        .any(|f| f["caption"] == "ls_asset_id" && f["value"] == flaky_key.as_str())
                })
            })
            .count()
    });
    assert_eq!(linked, 1, "the flaky asset is created exactly once");
}

/// States carry counts and store keys, never lists that grow with the estate: what
/// fetch-assets, ensure-references and match hand on is the same size (to a few digits,
/// and match's at most [`pipeline::LANES`] lanes a Map) at 200 and at 5,000 assets,
/// though the larger run has five times the groups of batches to write.
#[tokio::test]
async fn the_states_between_steps_do_not_grow_with_the_estate() {
    let mut sizes = Vec::new();
    for assets in [200, 5_000] {
        let world = lscw_tests::world::world(assets).await;
        let (fetched, ensured, matched) = lscw_tests::world::stages(&world, "size-run").await;
        assert!(matched.create_lanes.len() <= pipeline::LANES);
        assert!(matched.modify_lanes.len() <= pipeline::LANES);
        // A state's size as Step Functions counts it: its JSON.
        sizes.push((
            serde_json::to_string(&fetched).unwrap().len(),
            serde_json::to_string(&ensured).unwrap().len(),
            serde_json::to_string(&matched).unwrap().len(),
            matched.create_groups + matched.modify_groups,
        ));
    }
    let (
        (fetch_small, ensure_small, match_small, groups_small),
        (fetch_large, ensure_large, match_large, groups_large),
    ) = (sizes[0], sizes[1]);
    assert!(groups_large >= 4 * groups_small.max(1), "{sizes:?}");
    assert!(fetch_large.abs_diff(fetch_small) <= 16, "{sizes:?}");
    assert!(ensure_large.abs_diff(ensure_small) <= 16, "{sizes:?}");
    // Lanes the small run did not need, at most: 2 Maps × 3 lanes of ≈60 bytes.
    assert!(match_large.abs_diff(match_small) <= 2 * 3 * 64, "{sizes:?}");
    assert!(match_large < 1024, "{sizes:?}");
}

/// Breaking it looks like: an asset the listing repeats across two pages (the estate
/// changed while it was paged) gets two configurations, having neither serial nor MAC to
/// tell the two listings apart.
#[tokio::test]
async fn an_asset_listed_twice_while_the_estate_changes_gets_one_configuration() {
    let world = world(1_200).await;
    // The last asset of the first page (500 a page): only its key names it.
    let (repeated, newcomer) = world.ls.with_site(|site| {
        let asset = &mut site.data.assets[499];
        asset["assetCustom"]["serialNumber"] = Value::Null;
        asset["assetBasicInfo"]["mac"] = Value::Null;
        let mut newcomer = asset.clone();
        newcomer["key"] = json!("added-while-paged");
        newcomer["assetBasicInfo"]["name"] = json!("added-while-paged");
        (asset["key"].as_str().unwrap().to_string(), newcomer)
    });
    let added = std::sync::atomic::AtomicBool::new(false);
    let report = pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        &|progress: Progress| {
            // After the first page: an asset appears ahead of the others.
            if let Progress::Fetching { seen: 500, .. } = progress
                && !added.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                world
                    .ls
                    .with_site(|site| site.add_asset_first(newcomer.clone()))
                    .unwrap();
            }
        },
    )
    .await
    .unwrap();
    assert!(added.into_inner(), "the estate changed while it was paged");
    assert_eq!(
        report.assets, 1_200,
        "the repeated asset counted once: {report:#?}"
    );
    assert_eq!(report.accounted(), report.assets);
    let links: Vec<String> = world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .filter_map(|c| lscw_tests::world::link_of(&tenant.render(&CONFIGURATIONS, c, "")))
            .filter(|link| *link == repeated.to_lowercase())
            .collect()
    });
    assert_eq!(links.len(), 1, "one configuration for {repeated}");
    // The whole tenant: no asset with two configurations.
    lscw_tests::world::state(&world.cw);
}

/// Breaking it looks like: Step Functions retries a bulk-create invocation that is still
/// running, both read no intent, and both send the batch: every asset of it twice.
#[tokio::test]
async fn a_batch_invoked_twice_at_once_is_sent_once() {
    let world = world(120).await;
    let (_, _, matched) = lscw_tests::world::stages(&world, "run-twice").await;
    let batch = lscw_tests::world::create_groups(&world, &matched).await[0][0].clone();
    let input = pipeline::BatchInput {
        run_id: "run-twice".into(),
        batch,
    };
    // Two invocations that both reach the batch's intent read it at the same moment, as
    // two Lambda invocations against DynamoDB can (each waits up to 2 s for the other
    // here). Without the batch's claim both read no intent and both send; with it, the
    // second waits at the claim and never reads it (the first waits out the 2 s).
    let meet = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let waiting = std::sync::atomic::AtomicUsize::new(0);
    let store = shared::store::Watched::new(world.store.clone()).before_get(move |key| {
        let meets = key.ends_with("/intent")
            && waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2;
        let meet = meet.clone();
        Box::pin(async move {
            if meets {
                // Neither goes on before the other has come to read it too.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), meet.wait()).await;
            }
            Ok(())
        })
    });
    let settings = settings();
    let (first, second) = tokio::join!(
        pipeline::bulk_create(&world.cw_client, &store, &settings, &input),
        pipeline::bulk_create(&world.cw_client, &store, &settings, &input),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.written, second.written, "both answer the one result");
    assert!(first.written > 0);
    assert_eq!(
        world
            .cw
            .control()
            .count("POST /company/configurations/bulk"),
        1,
        "the batch was sent once"
    );
    lscw_tests::world::state(&world.cw);
}

/// Breaking it looks like: with a scope of active configurations (natural once
/// retirement clears the active flag), an asset whose configuration was made inactive
/// gets a second configuration instead of being found by its link.
#[tokio::test]
async fn a_scope_never_hides_a_link() {
    let world = world(60).await;
    let scoped = SyncSettings {
        match_conditions: Some("activeFlag=true".into()),
        ..settings()
    };
    sync(&world, &settings()).await;
    let (id, key) = world.cw.with_tenant(|tenant| {
        let linked = tenant
            .records("configurations")
            .map(|c| tenant.render(&CONFIGURATIONS, c, ""))
            .find_map(|c| Some((c["id"].as_i64()?, lscw_tests::world::link_of(&c)?)))
            .unwrap();
        let operations = json!([{"op": "replace", "path": "activeFlag", "value": false}]);
        tenant
            .patch(&CONFIGURATIONS, linked.0, &operations)
            .unwrap();
        linked
    });
    let report = sync(&world, &scoped).await;
    assert_eq!(report.counts.created, 0, "{report:#?}");
    let carrying: Vec<i64> = world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .map(|c| tenant.render(&CONFIGURATIONS, c, ""))
            .filter(|c| lscw_tests::world::link_of(c).as_deref() == Some(key.as_str()))
            .filter_map(|c| c["id"].as_i64())
            .collect()
    });
    assert_eq!(
        carrying,
        [id],
        "one configuration, the one outside the scope"
    );
    lscw_tests::world::state(&world.cw);
}

/// A run on one machine (`lscw run`, `lscw demo`) passes through the state machine's
/// states in the machine's order, the enrichment under the sync's run id and the report
/// recorded after it: the one orchestrator is held to a walk of `sync.asl.json`.
///
/// Breaking it looks like: the report recorded before the enrichment (its summary
/// without the enrichment's counts), a lease given up out of turn, or a state the
/// machine runs that the local run skips.
#[tokio::test]
async fn a_run_on_one_machine_follows_the_state_machine_s_order() {
    let world = world(60).await;
    let steps = std::sync::Mutex::new(Vec::<&'static str>::new());
    let run = pipeline::run_locally(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        pipeline::Scope::Both,
        &|progress| {
            if let Progress::Step(state) = progress {
                let mut steps = steps.lock().unwrap();
                if steps.last() != Some(&state) {
                    steps.push(state);
                }
            }
        },
    )
    .await
    .unwrap();
    let sync = run.sync.unwrap();
    assert!(
        sync.counts.created > 0 && sync.counts.modified > 0,
        "both write lanes run: {:?}",
        sync.counts
    );
    let enrichment = run.enrichment.unwrap();
    assert_eq!(enrichment.run_id, sync.run_id, "under the sync's run id");
    assert_eq!(
        steps.into_inner().unwrap(),
        shared::states::walk::task_order(),
        "the state machine's order"
    );
    let recorded = pipeline::recent_runs(&world.store).await.unwrap();
    let summary = recorded.last().unwrap();
    assert_eq!(summary.run_id, sync.run_id);
    assert!(
        summary.enrichment.is_some(),
        "the report recorded after the enrichment counts it: {summary:?}"
    );
    assert!(
        summary.duration_seconds.is_some(),
        "recorded while the enrichment's lease was still held, as RecordReport comes before ReleaseEnrichmentLease: {summary:?}"
    );
    assert_eq!(
        shared::lease::ENRICHMENT
            .holder(&world.store)
            .await
            .unwrap(),
        None
    );
    assert_eq!(shared::lease::holder(&world.store).await.unwrap(), None);
}

/// A run on one machine whose enrichment fails for good is recorded failed, as the state
/// machine's RecordFailure records it, and leaves no lease held.
///
/// Breaking it looks like: `lscw runs` without the run, or every later enrichment skipped
/// for two hours behind a lease nobody gave up.
#[tokio::test]
async fn a_run_whose_enrichment_fails_is_recorded_failed_and_holds_no_lease() {
    let world = world(30).await;
    let outcome = pipeline::run_locally(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        pipeline::Scope::Both,
        &|progress| {
            if progress == Progress::Step("Enrich") {
                // Lansweeper takes the token back as the enrichment begins.
                world.ls.control().fail_next(1_000, 401, None, None);
            }
        },
    )
    .await;
    assert!(outcome.is_err(), "{outcome:?}");
    let recorded = pipeline::recent_runs(&world.store).await.unwrap();
    let summary = recorded.last().unwrap();
    assert_eq!(summary.status, pipeline::RunStatus::Failed, "{summary:?}");
    assert_eq!(
        shared::lease::ENRICHMENT
            .holder(&world.store)
            .await
            .unwrap(),
        None
    );
    assert_eq!(shared::lease::holder(&world.store).await.unwrap(), None);
}
