//! Lifecycle and policy: who owns each field, how types and states are named, pinning,
//! ignoring, and retiring configurations whose assets left (with the guard).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use shared::pipeline::{self, RunReport};
use shared::policy::{FieldPolicies, ValueMaps};
use shared::settings::SyncSettings;
use simulators::connectwise::CONFIGURATIONS;

use lscw_tests::world::{World, link_of, settings, sync_with, world};

/// Every configuration as ConnectWise shows it.
fn configurations(world: &World) -> Vec<Value> {
    world.cw.with_tenant(|t| {
        t.records("configurations")
            .map(|r| t.render(&CONFIGURATIONS, r, ""))
            .collect()
    })
}

/// The configuration linked to `key`.
fn linked(world: &World, key: &str) -> Value {
    configurations(world)
        .into_iter()
        .find(|c| link_of(c).as_deref() == Some(&key.to_lowercase()))
        .unwrap()
}

/// Edits a configuration as a person would in ConnectWise.
fn edit_by_hand(world: &World, id: i64, edit: impl FnOnce(&mut Value)) {
    world.cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", id).unwrap().clone();
        edit(&mut body);
        tenant.replace(&CONFIGURATIONS, id, &body).unwrap();
    });
}

/// Keys of the site's assets with an IP address and an OS, linked after a first sync.
fn keys_with_ip_and_os(world: &World, n: usize) -> Vec<String> {
    world.ls.with_site(|site| {
        site.data
            .assets
            .iter()
            .filter(|a| {
                a["assetBasicInfo"]["ipAddress"].is_string()
                    && a["operatingSystem"]["caption"].is_string()
            })
            .map(|a| a["key"].as_str().unwrap().to_string())
            .take(n)
            .collect()
    })
}

#[tokio::test]
async fn each_field_policy_keeps_or_overwrites_a_hand_edit() {
    let world = world(120).await;
    let mut settings = settings();
    settings.field_policies = FieldPolicies::parse(
        r#"{"ipAddress": "fill", "osInfo": "connectwise"}"#,
        &shared::matching::MatchSpec::for_staged_assets(),
    )
    .unwrap();
    let first = sync_with(&world, &settings).await;
    let keys: Vec<String> = keys_with_ip_and_os(&world, 40)
        .into_iter()
        .filter(|k| !first.conflicts.iter().any(|c| &c.asset_key == k))
        .take(2)
        .collect();
    let (edited, emptied) = (linked(&world, &keys[0]), linked(&world, &keys[1]));
    let asset_model = edited["modelNumber"].clone();
    edit_by_hand(&world, edited["id"].as_i64().unwrap(), |c| {
        c["ipAddress"] = json!("10.99.99.99");
        c["osInfo"] = json!("Typed by the service desk");
        c["modelNumber"] = json!("HAND-MODEL");
    });
    edit_by_hand(&world, emptied["id"].as_i64().unwrap(), |c| {
        c.as_object_mut().unwrap().remove("ipAddress");
        c.as_object_mut().unwrap().remove("osInfo");
    });

    let report = sync_with(&world, &settings).await;
    assert_eq!(report.counts.modified, 2, "{report:#?}");
    let after = linked(&world, &keys[0]);
    assert_eq!(
        after["ipAddress"], "10.99.99.99",
        "fill keeps what is there"
    );
    assert_eq!(
        after["osInfo"], "Typed by the service desk",
        "connectwise is never written"
    );
    assert_eq!(after["modelNumber"], asset_model, "lansweeper overwrites");
    let filled = linked(&world, &keys[1]);
    let asset_ip = world.ls.with_site(|site| {
        site.data
            .assets
            .iter()
            .find(|a| a["key"] == keys[1].as_str())
            .unwrap()["assetBasicInfo"]["ipAddress"]
            .clone()
    });
    assert_ne!(
        emptied["ipAddress"], asset_ip,
        "the first run kept a stale address"
    );
    assert_eq!(filled["ipAddress"], asset_ip, "fill fills an empty field");
    assert!(
        filled.get("osInfo").is_none_or(Value::is_null),
        "connectwise: left empty"
    );

    let writes = world.cw.control().writes();
    sync_with(&world, &settings).await;
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "a rerun writes nothing"
    );
}

/// Every configuration by id, as ConnectWise shows it, without its `_info`.
fn snapshot(world: &World) -> BTreeMap<i64, Value> {
    configurations(world)
        .into_iter()
        .map(|mut c| {
            c.as_object_mut().unwrap().remove("_info");
            (c["id"].as_i64().unwrap(), c)
        })
        .collect()
}

/// A sync with `settings`, and each configuration it wrote (created or changed) with
/// the asset it is linked to; as many as the report counts created and modified.
async fn sync_written(world: &World, settings: &SyncSettings) -> (RunReport, Vec<(Value, Value)>) {
    let before = snapshot(world);
    let report = sync_with(world, settings).await;
    let assets: HashMap<String, Value> = world.ls.with_site(|s| {
        s.data
            .assets
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_lowercase(), a.clone()))
            .collect()
    });
    let written: Vec<(Value, Value)> = snapshot(world)
        .into_iter()
        .filter(|(id, c)| before.get(id) != Some(c))
        .map(|(_, c)| {
            let link = link_of(&c).unwrap_or_else(|| panic!("written unlinked: {c:#}"));
            (c, assets[&link].clone())
        })
        .collect();
    assert_eq!(
        written.len() as u64,
        report.counts.created + report.counts.modified,
        "{report:#?}"
    );
    (report, written)
}

/// The name written for Lansweeper's `name`: exactly the map's `to` when the map names
/// it (answers true), else Lansweeper's own as ConnectWise compares names (an existing
/// "In Repair" is Lansweeper's "In repair").
fn assert_named(written: &Value, name: &str, (from, to): (&str, &str)) -> bool {
    if name == from {
        assert_eq!(written, to, "{name}");
        return true;
    }
    assert_eq!(
        written.as_str().map(str::to_lowercase),
        Some(name.to_lowercase()),
        "{name} is not mapped"
    );
    false
}

/// The type and status maps name the type and status of every configuration the sync
/// writes, created or modified; with unmapped values reported, only assets of a mapped
/// type are written.
///
/// Breaking it looks like: a configuration written with Lansweeper's own name for a
/// mapped type or state (a modified one kept its old type, say), or an asset of an
/// unmapped type written despite `report`.
#[tokio::test]
async fn type_and_status_maps_name_what_is_written() {
    let world = world(120).await;
    let mut settings = settings();
    settings.value_maps = ValueMaps::parse(
        Some(r#"{"Windows": "Managed Workstation"}"#),
        Some(r#"{"Active": "In Use"}"#),
        None,
    )
    .unwrap();
    let (report, written) = sync_written(&world, &settings).await;
    assert!(report.counts.created > 0 && report.counts.modified > 0);
    let (mut windows, mut active) = (0, 0);
    for (configuration, asset) in &written {
        let asset_type = asset["assetBasicInfo"]["type"].as_str().unwrap();
        windows += usize::from(assert_named(
            &configuration["type"]["name"],
            asset_type,
            ("Windows", "Managed Workstation"),
        ));
        if let Some(state) = asset["assetCustom"]["stateName"].as_str() {
            active += usize::from(assert_named(
                &configuration["status"]["name"],
                state,
                ("Active", "In Use"),
            ));
        }
    }
    let modified_windows = written.iter().filter(|(c, a)| {
        a["assetBasicInfo"]["type"] == "Windows"
            && c["notes"] == "Entered by hand before the integration"
    });
    assert!(
        modified_windows.count() > 0,
        "configurations entered beforehand were written too"
    );
    assert!(windows > 5 && active > 5, "{windows} {active}");

    // Unmapped values reported: only mapped types are written; the others fail alone.
    let strict = lscw_tests::world::world(80).await;
    let reporting = SyncSettings {
        value_maps: ValueMaps::parse(
            Some(r#"{"Windows": "Managed Workstation"}"#),
            None,
            Some("report"),
        )
        .unwrap(),
        ..lscw_tests::world::settings()
    };
    let (report, written) = sync_written(&strict, &reporting).await;
    let others = report
        .failed
        .iter()
        .filter(|f| f.reason.contains("is not in CW_TYPE_MAP"))
        .count();
    let unmapped = strict.ls.with_site(|s| {
        s.data
            .assets
            .iter()
            .filter(|a| {
                a["assetBasicInfo"]["type"]
                    .as_str()
                    .is_some_and(|t| t != "Windows")
            })
            .count()
    });
    assert!(unmapped > 0);
    assert_eq!(
        others, unmapped,
        "every asset of an unmapped type fails: {:#?}",
        report.failed
    );
    assert!(!written.is_empty(), "{report:#?}");
    for (configuration, asset) in &written {
        assert_eq!(
            asset["assetBasicInfo"]["type"], "Windows",
            "{configuration:#}"
        );
        assert_eq!(configuration["type"]["name"], "Managed Workstation");
    }
}

#[tokio::test]
async fn link_resolves_a_conflict_and_ignore_keeps_hands_off() {
    let world = world(120).await;
    let first = sync_with(&world, &settings()).await;
    let conflict = first
        .conflicts
        .iter()
        .find(|c| c.reason.contains("by serial number"))
        .unwrap()
        .clone();
    let chosen = conflict.candidates[0];
    let ids = shared::custom_fields::resolve(&world.cw_client, &SyncSettings::default())
        .await
        .unwrap();
    let cleared = shared::overrides::link(&world.cw_client, &ids, &conflict.asset_key, chosen)
        .await
        .unwrap();
    assert!(
        cleared.is_empty(),
        "no other configuration carried the asset"
    );
    let second = sync_with(&world, &settings()).await;
    assert!(
        !second
            .conflicts
            .iter()
            .any(|c| c.asset_key == conflict.asset_key),
        "the link resolved the conflict for good"
    );
    assert!(second.counts.modified >= 1);
    let pinned = linked(&world, &conflict.asset_key);
    assert_eq!(pinned["id"], chosen);
    let url = pinned["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["caption"] == "ls_asset_url")
        .unwrap();
    assert!(
        url["value"].is_string(),
        "the next run wrote the pinned configuration"
    );

    // Ignored: a configuration and an asset, both changed in Lansweeper, are not written.
    let keys = keys_with_ip_and_os(&world, 60);
    let (config_key, asset_key) = (&keys[0], &keys[1]);
    let ignored_configuration = linked(&world, config_key)["id"].as_i64().unwrap();
    let mut overrides = shared::overrides::load(&world.store).await.unwrap();
    overrides
        .ignored_configurations
        .insert(ignored_configuration);
    overrides
        .ignored_assets
        .insert(asset_key.to_uppercase().to_lowercase());
    shared::overrides::save(&world.store, &overrides)
        .await
        .unwrap();
    world.ls.with_site(|site| {
        for asset in &mut site.data.assets {
            if asset["key"] == config_key.as_str() || asset["key"] == asset_key.as_str() {
                asset["assetBasicInfo"]["ipAddress"] = json!("10.55.55.55");
            }
        }
    });
    let writes = world.cw.control().writes();
    let third = sync_with(&world, &settings()).await;
    assert_eq!(world.cw.control().writes(), writes, "{third:#?}");
    assert_eq!(third.counts.ignored, 2);
    for key in [config_key, asset_key] {
        assert_ne!(linked(&world, key)["ipAddress"], "10.55.55.55");
    }

    // Unignored, the change is written; unlinked, the configuration carries no asset.
    shared::overrides::save(&world.store, &shared::overrides::Overrides::default())
        .await
        .unwrap();
    let fourth = sync_with(&world, &settings()).await;
    assert_eq!((fourth.counts.modified, fourth.counts.ignored), (2, 0));
    let previous = shared::overrides::unlink(&world.cw_client, &ids, chosen)
        .await
        .unwrap();
    assert_eq!(previous.as_deref(), Some(conflict.asset_key.as_str()));
    assert!(
        configurations(&world)
            .iter()
            .find(|c| c["id"] == chosen)
            .is_some_and(|c| link_of(c).is_none())
    );
}

/// Removes the site's assets whose keys `pick` chooses; answers their keys.
fn remove_assets(world: &World, pick: impl Fn(usize, &Value) -> bool) -> Vec<String> {
    world.ls.with_site(|site| {
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for (index, asset) in site.data.assets.drain(..).enumerate() {
            if pick(index, &asset) {
                removed.push(asset["key"].as_str().unwrap().to_lowercase());
            } else {
                kept.push(asset);
            }
        }
        let data = simulators::lansweeper::SiteData {
            assets: kept,
            ..site.data.clone()
        };
        *site = simulators::lansweeper::Site::new(data).unwrap();
        removed
    })
}

/// Puts assets back into the site.
fn restore_assets(world: &World, assets: Vec<Value>) {
    world.ls.with_site(|site| {
        for asset in assets {
            site.add_asset(asset).unwrap();
        }
    });
}

fn is_retired(configuration: &Value) -> bool {
    configuration["activeFlag"] == false && configuration["status"]["name"] == "Inactive"
}

#[tokio::test]
async fn an_asset_that_left_is_retired_once_and_reactivated_when_it_comes_back() {
    let world = world(120).await;
    let first = sync_with(&world, &settings()).await;
    assert_eq!(first.counts.retired, 0);
    let linked_keys: Vec<String> = configurations(&world).iter().filter_map(link_of).collect();
    let gone_key = linked_keys[3].clone();
    let gone_asset = world.ls.with_site(|site| {
        site.data
            .assets
            .iter()
            .find(|a| a["key"].as_str().unwrap().to_lowercase() == gone_key)
            .unwrap()
            .clone()
    });
    let removed = remove_assets(&world, |_, a| {
        a["key"].as_str().unwrap().to_lowercase() == gone_key
    });
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0], gone_key);

    let second = sync_with(&world, &settings()).await;
    assert_eq!(second.counts.retired, 1, "{second:#?}");
    assert!(second.guard.is_none());
    let retired = linked(&world, &gone_key);
    assert!(is_retired(&retired), "{retired:#}");
    assert_eq!(
        link_of(&retired).as_deref(),
        Some(gone_key.as_str()),
        "the link stays"
    );

    let writes = world.cw.control().writes();
    let third = sync_with(&world, &settings()).await;
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "retired once: a rerun writes nothing"
    );
    assert_eq!(third.counts.retired, 0);

    restore_assets(&world, vec![gone_asset.clone()]);
    let fourth = sync_with(&world, &settings()).await;
    assert_eq!(fourth.counts.reactivated, 1, "{fourth:#?}");
    let back = linked(&world, &gone_key);
    assert_eq!(back["activeFlag"], true);
    if let Some(state) = gone_asset["assetCustom"]["stateName"].as_str() {
        assert_eq!(
            back["status"]["name"], state,
            "its status from the asset again"
        );
    }
    let writes = world.cw.control().writes();
    sync_with(&world, &settings()).await;
    assert_eq!(world.cw.control().writes(), writes);
}

#[tokio::test]
async fn a_listing_short_by_40_percent_retires_nothing_until_approved() {
    let world = world(200).await;
    sync_with(&world, &settings()).await;
    let linked_before: Vec<Value> = configurations(&world)
        .into_iter()
        .filter(|c| link_of(c).is_some())
        .collect();
    let removed = remove_assets(&world, |index, _| index % 5 < 2);
    // The rest of the sync goes on: a changed asset is still written.
    let changed = world.ls.with_site(|site| {
        let asset = site
            .data
            .assets
            .iter_mut()
            .find(|a| a["assetBasicInfo"]["ipAddress"].is_string())
            .unwrap();
        asset["assetBasicInfo"]["ipAddress"] = json!("10.66.66.66");
        asset["key"].as_str().unwrap().to_string()
    });

    // The dry run's plan lists the retirements and the guard's verdict, and writes nothing.
    let dry = SyncSettings {
        dry_run: true,
        ..settings()
    };
    let writes = world.cw.control().writes();
    let dry_report = sync_with(&world, &dry).await;
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "a dry run writes nothing"
    );
    let plan = pipeline::plan(&world.store, &dry_report.run_id)
        .await
        .unwrap();
    assert!(plan.guard.is_some());
    assert!(plan.retire.len() > 10, "{}", plan.retire.len());

    let report = sync_with(&world, &settings()).await;
    let guard = report.guard.clone().unwrap();
    assert!(
        guard.reason.contains("would be retired"),
        "{}",
        guard.reason
    );
    assert_eq!(report.counts.retired, 0);
    assert_eq!(report.status, pipeline::RunStatus::SucceededWithFailures);
    assert!(
        !configurations(&world).iter().any(is_retired),
        "nothing retired"
    );
    assert_eq!(
        linked(&world, &changed)["ipAddress"],
        "10.66.66.66",
        "the rest of the sync ran"
    );
    let planned: std::collections::BTreeSet<i64> = linked_before
        .iter()
        .filter(|c| removed.contains(&link_of(c).unwrap()))
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(guard.would_retire as usize, planned.len());

    let approval = shared::operator::approve_retirement(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
    )
    .await
    .unwrap();
    assert_eq!(approval.retired as usize, planned.len());
    assert!(approval.failed.is_empty());
    let retired: std::collections::BTreeSet<i64> = configurations(&world)
        .iter()
        .filter(|c| is_retired(c))
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(retired, planned, "exactly the planned set");
    let again = shared::operator::approve_retirement(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
    )
    .await
    .unwrap_err();
    assert!(
        again.to_string().contains("approved and written already"),
        "{again}"
    );
}

#[tokio::test]
async fn an_empty_listing_never_counts_as_every_asset_leaving() {
    let world = world(60).await;
    sync_with(&world, &settings()).await;
    remove_assets(&world, |_, _| true);
    let writes = world.cw.control().writes();
    let report = sync_with(&world, &settings()).await;
    assert_eq!(world.cw.control().writes(), writes);
    assert!(
        report.guard.unwrap().reason.contains("listed no asset"),
        "the guard says why"
    );
    assert!(!configurations(&world).iter().any(is_retired));
}

#[tokio::test]
async fn an_asset_in_a_retired_state_has_its_configuration_retired() {
    let world = world(60).await;
    sync_with(&world, &settings()).await;
    let key = configurations(&world)
        .iter()
        .filter_map(link_of)
        .nth(2)
        .unwrap();
    world.ls.with_site(|site| {
        let asset = site
            .data
            .assets
            .iter_mut()
            .find(|a| a["key"].as_str().unwrap().to_lowercase() == key)
            .unwrap();
        asset["assetCustom"]["stateName"] = json!("Sold");
    });
    let mut sold = settings();
    sold.retire.retired_states = vec!["sold".into()];
    let report = sync_with(&world, &sold).await;
    assert_eq!(
        (report.counts.retired, report.counts.modified),
        (1, 1),
        "{report:#?}"
    );
    assert!(is_retired(&linked(&world, &key)));
    let writes = world.cw.control().writes();
    sync_with(&world, &sold).await;
    assert_eq!(world.cw.control().writes(), writes);
}

/// A run whose retirements the guard held (40 % of the assets gone), in batches of 5.
async fn held_run(world: &World, small: &SyncSettings) -> RunReport {
    sync_with(world, small).await;
    remove_assets(world, |index, _| index % 5 < 2);
    let report = sync_with(world, small).await;
    assert!(report.guard.is_some(), "{report:#?}");
    report
}

/// `lscw retire --approve RUN` killed after each of its writes in turn (ConnectWise
/// saved it, the answer never came back), a configuration it had yet to retire given
/// another status by hand while it was stopped, and run again under lost answers: each
/// ends as the uninterrupted approval did, but for the hand-set status, left and
/// reported.
///
/// Breaking it looks like: a kill point after which the approval says it was written
/// already, never finishes, retires a configuration twice, or writes the retired status
/// over the one set by hand.
#[tokio::test]
async fn an_approval_killed_after_any_of_its_writes_ends_as_an_uninterrupted_one() {
    use lscw_tests::dying::{killed_after_write, saved_writes_of};
    use simulators::control::LostAnswer;

    let small = SyncSettings {
        batch_size: 5,
        ..settings()
    };
    let approve = |world: &World, run_id: String| {
        let (cw, store, small) = (world.cw_client.clone(), world.store.clone(), small.clone());
        async move { shared::operator::approve_retirement(&cw, &store, &small, &run_id).await }
    };
    let clean = world(60).await;
    let report = held_run(&clean, &small).await;
    let (approval, kill_points) =
        saved_writes_of(clean.cw.control(), approve(&clean, report.run_id.clone())).await;
    let approval = approval.unwrap();
    assert!(
        approval.retired > 10 && approval.failed.is_empty(),
        "{approval:#?}"
    );
    let expected = configurations(&clean);
    assert!(kill_points > 2, "{kill_points} writes");

    for k in 1..=kill_points {
        let world = world(60).await;
        let report = held_run(&world, &small).await;
        let control = world.cw.control();
        let killed = killed_after_write(control, k, approve(&world, report.run_id.clone())).await;
        assert!(killed.is_none(), "killed after write {k}");
        shared::lease::force_release(&world.store).await.unwrap();

        // A configuration the approval has yet to retire, given another status by hand.
        let pending = configurations(&world).into_iter().find(|c| {
            !is_retired(c) && expected.iter().any(|e| e["id"] == c["id"] && is_retired(e))
        });
        let by_hand = pending.map(|c| {
            let id = c["id"].as_i64().unwrap();
            let status = world.cw.with_tenant(|t| {
                t.records("configurationStatuses")
                    .find(|s| {
                        s["description"] != c["status"]["name"] && s["description"] != "Inactive"
                    })
                    .unwrap()
                    .clone()
            });
            edit_by_hand(&world, id, |body| {
                body["status"] = json!({"id": status["id"]});
            });
            (id, status["description"].clone(), link_of(&c).unwrap())
        });

        control.lose_answers(&[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)]);
        let resumed = approve(&world, report.run_id.clone()).await.unwrap();
        control.lose_answers(&[]);

        let end = configurations(&world);
        assert_eq!(end.len(), expected.len(), "kill point {k}");
        for (now, clean_end) in end.iter().zip(&expected) {
            assert_eq!(now["id"], clean_end["id"]);
            let (mut now, mut want) = (now.clone(), clean_end.clone());
            for c in [&mut now, &mut want] {
                c.as_object_mut().unwrap().remove("_info");
            }
            if let Some((id, status, _)) = &by_hand
                && now["id"] == *id
            {
                assert_eq!(
                    now["status"]["name"], *status,
                    "kill point {k}: the hand edit stays"
                );
                want["status"] = now["status"].clone();
            }
            assert_eq!(now, want, "kill point {k}");
        }
        if let Some((id, _, key)) = by_hand {
            assert!(
                resumed
                    .failed
                    .iter()
                    .any(|f| f.asset_key.eq_ignore_ascii_case(&key) && f.reason.contains("status")),
                "kill point {k}: the hand edit of {id} is reported: {:#?}",
                resumed.failed
            );
        }
    }
}

/// Every configuration's link, by id.
fn links(world: &World) -> BTreeMap<i64, Option<String>> {
    configurations(world)
        .iter()
        .map(|c| (c["id"].as_i64().unwrap(), link_of(c)))
        .collect()
}

/// `lscw link` (an asset moved to another configuration) killed after each of its writes
/// in turn, then `lscw unlink` of another configuration run under lost answers: each ends
/// as the two commands uninterrupted do, the asset on the one configuration asked.
///
/// Breaking it looks like: the asset left on two configurations (a conflict the next
/// sync reports, and a merge it suggests, where the operator asked for a link).
#[tokio::test]
async fn a_link_killed_after_any_of_its_writes_is_finished_by_the_next_link_or_unlink() {
    use lscw_tests::dying::{killed_after_write, saved_writes_of};
    use shared::overrides::{self, Pin};
    use simulators::control::LostAnswer;

    let linked_ids = |world: &World| -> Vec<(i64, String)> {
        links(world)
            .into_iter()
            .filter_map(|(id, link)| Some((id, link?)))
            .collect()
    };
    let run = |world: &World, pin: Option<Pin>, unpin: Option<i64>| {
        let (cw, store) = (world.cw_client.clone(), world.store.clone());
        async move {
            let ids = shared::custom_fields::resolve(&cw, &settings())
                .await
                .unwrap();
            overrides::pin(&cw, &store, &ids, pin, unpin).await
        }
    };
    let setup = async || {
        let world = world(40).await;
        sync_with(&world, &settings()).await;
        let linked = linked_ids(&world);
        // The first asset moves to the second's configuration; the third is unlinked.
        let pin = Pin {
            asset_key: linked[0].1.clone(),
            configuration_id: linked[1].0,
        };
        (world, pin, linked[2].0)
    };

    let (clean, pin, unpin) = setup().await;
    let (pinned, kill_points) =
        saved_writes_of(clean.cw.control(), run(&clean, Some(pin.clone()), None)).await;
    assert_eq!(pinned.unwrap().0[0].cleared.len(), 1);
    run(&clean, None, Some(unpin)).await.unwrap();
    let expected = links(&clean);
    assert_eq!(
        expected[&pin.configuration_id].as_deref(),
        Some(pin.asset_key.as_str())
    );
    assert_eq!(
        kill_points, 2,
        "the configuration's link, then the other's cleared"
    );

    for k in 1..=kill_points {
        let (world, pin, unpin) = setup().await;
        let control = world.cw.control();
        let killed = killed_after_write(control, k, run(&world, Some(pin.clone()), None)).await;
        assert!(killed.is_none(), "killed after write {k}");
        shared::lease::force_release(&world.store).await.unwrap();

        control.lose_answers(&[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)]);
        let (finished, _) = run(&world, None, Some(unpin)).await.unwrap();
        control.lose_answers(&[]);
        assert_eq!(
            finished.len(),
            1,
            "kill point {k}: the stopped link finished"
        );
        assert_eq!(finished[0].pin, pin);
        assert_eq!(links(&world), expected, "kill point {k}");

        let writes = control.writes();
        let (again, _) = run(&world, None, Some(unpin)).await.unwrap();
        assert!(again.is_empty(), "kill point {k}: finished once");
        assert_eq!(
            control.writes(),
            writes,
            "kill point {k}: nothing written again"
        );
    }
}

/// A link ConnectWise refuses for what it asks (no such configuration) fails alone: its
/// plan is not kept to block every later `lscw link` and `lscw unlink`.
///
/// Breaking it looks like: every link after a mistyped id failing on the same 404.
#[tokio::test]
async fn a_link_refused_for_what_it_asks_does_not_block_the_next() {
    use shared::overrides::{self, Pin};

    let world = world(20).await;
    sync_with(&world, &settings()).await;
    let ids = shared::custom_fields::resolve(&world.cw_client, &settings())
        .await
        .unwrap();
    let key = links(&world).into_values().flatten().next().unwrap();
    let mistyped = Pin {
        asset_key: key.clone(),
        configuration_id: 999_999,
    };
    let refused = overrides::pin(&world.cw_client, &world.store, &ids, Some(mistyped), None).await;
    assert!(refused.is_err(), "{refused:?}");
    let (id, _) = links(&world)
        .into_iter()
        .find(|(_, link)| link.as_deref() == Some(key.as_str()))
        .unwrap();
    let (unpinned, cleared) = overrides::pin(&world.cw_client, &world.store, &ids, None, Some(id))
        .await
        .unwrap();
    assert!(
        unpinned.is_empty(),
        "nothing stopped is replayed: {unpinned:?}"
    );
    assert_eq!(cleared.as_deref(), Some(key.as_str()));
}
