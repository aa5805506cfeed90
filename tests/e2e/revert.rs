//! The audit trail and `lscw revert`: a run's writes kept field by field, and taken back
//! (values back where nobody changed them since, retired ones active, created ones
//! retired) once, under lost answers too.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared::pipeline::{self, Retention, RunReport};
use shared::policy::ValueMaps;
use shared::settings::SyncSettings;
use shared::states::RecordReportInput;
use shared::trail::{self, Action, System, Trail};
use simulators::connectwise::CONFIGURATIONS;
use simulators::control::LostAnswer;

use lscw_tests::dying::{dies_before_recording, killed_after_write, saved_writes_of};
use lscw_tests::world::{World, link_of, settings, sync_with, world};

/// Every configuration by id, as ConnectWise shows it.
fn configurations(world: &World) -> BTreeMap<i64, Value> {
    world.cw.with_tenant(|t| {
        t.records("configurations")
            .map(|r| t.render(&CONFIGURATIONS, r, ""))
            .map(|c| (c["id"].as_i64().unwrap(), c))
            .collect()
    })
}

/// What the sync writes of a configuration (custom fields by caption, the empty ones
/// left out), for comparing before and after.
fn synced(configuration: &Value) -> Value {
    let mut view = json!({});
    for field in [
        "name",
        "serialNumber",
        "macAddress",
        "ipAddress",
        "osInfo",
        "modelNumber",
        "activeFlag",
        "warrantyExpirationDate",
    ] {
        view[field] = configuration[field].clone();
    }
    view["locationId"] = configuration["locationId"].clone();
    for reference in ["type", "status", "manufacturer"] {
        view[reference] = configuration[reference]["name"].clone();
    }
    view["contact"] = configuration["contact"]["id"].clone();
    for custom in configuration["customFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(value) = custom["value"].as_str().filter(|v| !v.is_empty()) {
            view[custom["caption"].as_str().unwrap()] = json!(value);
        }
    }
    view
}

fn is_retired(configuration: &Value) -> bool {
    configuration["activeFlag"] == false && configuration["status"]["name"] == "Inactive"
}

/// The wrong map of the scenario: every Windows asset typed `Managed Workstation`.
fn wrong_map() -> SyncSettings {
    let mut wrong = settings();
    wrong.value_maps =
        ValueMaps::parse(Some(r#"{"Windows": "Managed Workstation"}"#), None, None).unwrap();
    wrong.retire.retired_states = vec!["sold".into()];
    wrong
}

/// A run under the wrong map, recorded as the state machine records it.
async fn wrong_run(world: &World, settings: &SyncSettings) -> (RunReport, Trail) {
    let report = sync_with(world, settings).await;
    let input = RecordReportInput {
        run_id: report.run_id.as_str().into(),
        ..RecordReportInput::default()
    };
    let retention = Retention::of(settings);
    let requests = world.cw.control().total();
    pipeline::record_report(&world.store, &input, &retention)
        .await
        .unwrap();
    assert_eq!(
        world.cw.control().total(),
        requests,
        "the trail is kept from what the writers stored, never read from ConnectWise"
    );
    let trail = trail::load(&world.store, &report.run_id, System::ConnectWise)
        .await
        .unwrap()
        .unwrap();
    (report, trail)
}

/// A run that created, modified and retired under a wrong type map is taken back: the
/// values it changed are back, what it retired is active, what it created is retired;
/// the one field an operator edited by hand since is left as it is and reported; the
/// guard holds the retirements until approved; reverting again writes nothing.
///
/// Breaking it looks like: a configuration still typed `Managed Workstation` after the
/// revert, a hand edit overwritten with the old value, a created configuration deleted
/// or left active, a retired one left retired, a second revert that writes again, or a
/// revert of many creations that retires them without `--approve`.
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: the run, a hand edit, the held, dry and approved reverts, the second"
)]
#[tokio::test]
async fn a_run_under_a_wrong_type_map_is_taken_back_but_for_a_field_edited_since() {
    let world = world(60).await;
    let sold = configurations(&world)
        .values()
        .find_map(link_of)
        .expect("a configuration linked to its asset");
    world.ls.with_site(|site| {
        let asset = site
            .data
            .assets
            .iter_mut()
            .find(|a| a["key"].as_str().unwrap().to_lowercase() == sold)
            .unwrap();
        asset["assetCustom"]["stateName"] = json!("Sold");
    });
    let before = configurations(&world);
    let wrong = wrong_map();
    let (report, trail) = wrong_run(&world, &wrong).await;
    assert!(
        report.counts.created > 10 && report.counts.modified > 0 && report.counts.retired == 1,
        "{report:#?}"
    );
    let count = |action| trail.entries.iter().filter(|e| e.action == action).count() as u64;
    assert_eq!(count(Action::Created), report.counts.created);
    assert_eq!(count(Action::Retired), 1);
    let retypes = trail.entries.iter().any(|e| {
        e.action == Action::Modified
            && e.fields.iter().any(|f| {
                f.field == "type.name" && f.after.as_deref() == Some("Managed Workstation")
            })
    });
    assert!(
        retypes,
        "the trail holds the wrong type written: {trail:#?}"
    );

    // An operator corrects one field by hand before anyone reverts.
    let (edited_id, edited_field) = trail
        .entries
        .iter()
        .filter(|e| e.action == Action::Modified)
        .find_map(|e| {
            let field = e.fields.iter().find(|f| {
                ["name", "serialNumber", "ipAddress", "osInfo"].contains(&f.field.as_str())
            })?;
            Some((e.configuration_id.unwrap(), field.field.clone()))
        })
        .expect("a modified configuration with a plain field changed");
    world.cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", edited_id).unwrap().clone();
        body[&edited_field] = json!("set by hand");
        tenant.replace(&CONFIGURATIONS, edited_id, &body).unwrap();
    });

    // Many creations to retire: the guard holds them until approved.
    let writes = world.cw.control().writes();
    let held = shared::operator::revert_run(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
        false,
    )
    .await
    .unwrap_err();
    assert!(held.to_string().contains("--approve"), "{held}");
    assert_eq!(world.cw.control().writes(), writes, "held: nothing written");

    let mut dry = settings();
    dry.dry_run = true;
    let planned =
        shared::operator::revert_run(&world.cw_client, &world.store, &dry, &report.run_id, false)
            .await
            .unwrap();
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "a dry run writes nothing"
    );
    assert_eq!(planned.retire.len() as u64, report.counts.created);

    let revert = shared::operator::revert_run(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        revert.restore, planned.restore,
        "the dry run said what the revert wrote"
    );
    let after = configurations(&world);
    for (id, was) in &before {
        let now = &after[id];
        let mut expected = synced(was);
        if *id == edited_id {
            expected[&edited_field] = json!("set by hand");
        }
        assert_eq!(
            synced(now),
            expected,
            "configuration {id} is back as it was"
        );
    }
    let created: Vec<&Value> = after
        .iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(created.len() as u64, report.counts.created, "never deleted");
    assert!(
        created.iter().all(|c| is_retired(c)),
        "every creation retired"
    );

    assert_eq!(revert.changed_since.len(), 1, "{:#?}", revert.changed_since);
    let reported = &revert.changed_since[0];
    assert_eq!(reported.candidates, vec![edited_id]);
    assert!(
        reported.reason.contains(&edited_field) && reported.reason.contains("set by hand"),
        "{reported:#?}"
    );
    assert!(revert.failed.is_empty(), "{:#?}", revert.failed);
    let done = revert.report.unwrap();
    assert_eq!(done.counts.retired, report.counts.created);
    assert_eq!(done.counts.reactivated, 1);
    assert_eq!(done.accounted(), done.assets, "{done:#?}");
    let own = trail::load(&world.store, &revert.revert_run_id, System::ConnectWise)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.reverts.as_deref(), Some(report.run_id.as_str()));
    assert_eq!(
        own.entries.len(),
        revert.restore.len() + revert.retire.len(),
        "the revert's own trail holds what it wrote"
    );

    let writes = world.cw.control().writes();
    let again = shared::operator::revert_run(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        again.already_by.as_deref(),
        Some(revert.revert_run_id.as_str())
    );
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "reverted once: nothing written again"
    );
}

/// A run under the wrong map in batches of 5, and its revert killed after sending its
/// second batch and before recording it: the run, and the settings to revert it with.
async fn revert_stopped_midway(world: &World) -> (RunReport, SyncSettings) {
    let mut wrong = wrong_map();
    wrong.batch_size = 5;
    let (report, _) = wrong_run(world, &wrong).await;
    let mut small = settings();
    small.batch_size = 5;
    let dying = dies_before_recording(&world.store, "modify/000/00/0001");
    let stopped =
        shared::operator::revert_run(&world.cw_client, &dying, &small, &report.run_id, true).await;
    assert!(stopped.is_err(), "{stopped:?}");
    (report, small)
}

/// A revert killed after sending its second batch and before recording it, run again
/// while ConnectWise loses answers (saved, then a 502 or a dropped connection), ends like
/// a clean one: each configuration back once, every batch recorded once, nothing
/// created, the first attempt's writes in the revert's report.
///
/// Breaking it looks like: a revert counted failed though ConnectWise saved it, a second
/// attempt that plans again from the half-reverted state (its report missing what the
/// first wrote, or calling it "changed since"), or a configuration created by a resend.
#[tokio::test]
async fn a_revert_killed_midway_and_run_again_under_lost_answers_ends_as_a_clean_one() {
    let world = world(40).await;
    let before = configurations(&world);
    let (report, small) = revert_stopped_midway(&world).await;

    world.cw.control().lose_answers_to(
        "/company/configurations",
        &[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)],
    );
    let revert =
        shared::operator::revert_run(&world.cw_client, &world.store, &small, &report.run_id, true)
            .await
            .unwrap();
    assert!(
        world.cw.control().answers_lost_at("PUT ") > 0,
        "answers were lost: {:?}",
        world.cw.control().answers_lost()
    );
    world.cw.control().lose_answers(&[]);

    let after = configurations(&world);
    for (id, was) in &before {
        assert_eq!(
            synced(&after[id]),
            synced(was),
            "configuration {id} is back"
        );
    }
    let created: Vec<&Value> = after
        .iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        created.len() as u64,
        report.counts.created,
        "nothing created by a resend"
    );
    assert!(created.iter().all(|c| is_retired(c)));
    assert!(
        revert.restore.len() > 5,
        "more than one batch: {}",
        revert.restore.len()
    );
    let done = revert.report.unwrap();
    assert_eq!(
        (done.counts.modified, done.counts.retired),
        (revert.restore.len() as u64, revert.retire.len() as u64),
        "each planned configuration written once, the first attempt's included: {done:#?}"
    );
    assert!(
        done.failed.is_empty() && done.conflicts.is_empty(),
        "{done:#?}"
    );
}

/// A revert stopped after its second batch, a configuration of a later batch given a
/// type by hand while it was stopped, and the revert run again: the hand edit stays and
/// is reported; every other field goes back.
///
/// Breaking it looks like: the resumed revert writing the stored "before" value over the
/// hand edit, its report naming only what changed before the revert began.
#[tokio::test]
async fn a_hand_edit_made_while_a_revert_was_stopped_is_left_and_reported() {
    use shared::layout::{self, ModifyItem};
    use shared::store::StoreExt;

    let world = world(40).await;
    let (report, small) = revert_stopped_midway(&world).await;

    // The last batch of the revert's plan is not written yet: one of its configurations
    // whose type the revert takes back is given another type by hand.
    let plan = layout::read_match(&world.store, &format!("{}-revert", report.run_id))
        .await
        .unwrap();
    let last = plan
        .sections
        .iter()
        .flat_map(|s| &s.modify_batches)
        .next_back()
        .unwrap()
        .clone();
    let items: Vec<ModifyItem> = world.store.require(&last).await.unwrap();
    let edited = items
        .iter()
        .find(|i| i.unmatched_fields.iter().any(|d| d.field == "type.name"))
        .expect("a type the revert takes back")
        .clone();
    let by_hand = world.cw.with_tenant(|tenant| {
        let mut body = tenant
            .get("configurations", edited.configuration_id)
            .unwrap()
            .clone();
        let current = body["type"]["id"].as_i64().unwrap();
        let other = tenant
            .records("configurationTypes")
            .find(|t| t["id"].as_i64() != Some(current))
            .unwrap()
            .clone();
        body["type"] = json!({"id": other["id"]});
        tenant
            .replace(&CONFIGURATIONS, edited.configuration_id, &body)
            .unwrap();
        other["name"].as_str().unwrap().to_string()
    });

    let revert =
        shared::operator::revert_run(&world.cw_client, &world.store, &small, &report.run_id, true)
            .await
            .unwrap();
    let after = configurations(&world);
    assert_eq!(
        after[&edited.configuration_id]["type"]["name"], by_hand,
        "the hand edit is left as it is"
    );
    let done = revert.report.unwrap();
    let reported = done
        .failed
        .iter()
        .find(|f| f.asset_key == edited.asset_key)
        .unwrap_or_else(|| panic!("the hand edit is reported: {:#?}", done.failed));
    assert!(
        reported.reason.contains("type.name") && reported.reason.contains("left as it is"),
        "{}",
        reported.reason
    );
}

/// Gives a configuration another type by hand; answers the type's name.
fn retype_by_hand(world: &World, id: i64, not: &[&Value]) -> String {
    world.cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", id).unwrap().clone();
        let other = tenant
            .records("configurationTypes")
            .find(|t| not.iter().all(|name| t["name"] != **name))
            .unwrap()
            .clone();
        body["type"] = json!({"id": other["id"]});
        tenant.replace(&CONFIGURATIONS, id, &body).unwrap();
        other["name"].as_str().unwrap().to_string()
    })
}

/// A revert killed after each of its writes in turn (ConnectWise saved it, the answer
/// never came back), a configuration whose type it had not taken back yet given another
/// type by hand while it was stopped, and the revert run again under lost answers: each
/// ends as the uninterrupted revert did, but for the hand edit, left and reported.
///
/// Breaking it looks like: a kill point after which the revert never finishes, writes a
/// field twice over a hand edit, leaves a configuration as the wrong run wrote it, or
/// retires a created configuration twice.
#[tokio::test]
async fn a_revert_killed_after_any_of_its_writes_ends_as_an_uninterrupted_one() {
    let mut wrong = wrong_map();
    wrong.batch_size = 5;
    let mut small = settings();
    small.batch_size = 5;
    let revert = |world: &World| {
        let (cw, store, small) = (world.cw_client.clone(), world.store.clone(), small.clone());
        async move |run_id: String| {
            shared::operator::revert_run(&cw, &store, &small, &run_id, true).await
        }
    };

    let clean = world(40).await;
    let (report, _) = wrong_run(&clean, &wrong).await;
    let (done, kill_points) =
        saved_writes_of(clean.cw.control(), revert(&clean)(report.run_id.clone())).await;
    assert!(done.unwrap().report.unwrap().failed.is_empty());
    let expected = configurations(&clean);
    assert!(kill_points > 5, "{kill_points} writes");

    for k in 1..=kill_points {
        let world = world(40).await;
        let (report, _) = wrong_run(&world, &wrong).await;
        let control = world.cw.control();
        let killed = killed_after_write(control, k, revert(&world)(report.run_id.clone())).await;
        assert!(killed.is_none(), "killed after write {k}");
        shared::lease::force_release(&world.store).await.unwrap();

        // A configuration whose type the revert has yet to take back, typed by hand.
        let now = configurations(&world);
        let pending = now
            .iter()
            .find(|(id, c)| c["type"]["name"] != expected[*id]["type"]["name"])
            .map(|(id, c)| {
                (
                    *id,
                    c["type"]["name"].clone(),
                    link_of(c).unwrap_or_default(),
                )
            });
        let by_hand = pending.as_ref().map(|(id, wrote, key)| {
            let type_name = retype_by_hand(&world, *id, &[wrote, &expected[id]["type"]["name"]]);
            (*id, type_name, key.clone())
        });

        control.lose_answers_to(
            "/company/configurations",
            &[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)],
        );
        let resumed = revert(&world)(report.run_id.clone()).await.unwrap();
        control.lose_answers(&[]);
        let done = resumed.report.unwrap();

        let after = configurations(&world);
        assert_eq!(
            after.len(),
            expected.len(),
            "kill point {k}: nothing created"
        );
        for (id, clean_end) in &expected {
            let mut end = synced(clean_end);
            if let Some((edited, type_name, _)) = &by_hand
                && edited == id
            {
                end["type"] = json!(type_name);
            }
            assert_eq!(
                synced(&after[id]),
                end,
                "kill point {k}: configuration {id}"
            );
        }
        if let Some((edited, _, key)) = by_hand {
            assert!(
                done.failed
                    .iter()
                    .any(|f| f.asset_key.eq_ignore_ascii_case(&key)
                        && f.reason.contains("type.name")),
                "kill point {k}: the hand edit of {edited} ({key}) is reported: {:#?}",
                done.failed
            );
        }
    }
}
