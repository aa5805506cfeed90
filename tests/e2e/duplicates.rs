//! Duplicates already in ConnectWise: configurations of one company that share a serial,
//! a MAC address or a link, grouped with the one to keep; merged into it (tickets, link,
//! retirement and a name that says where it went), exactly once, under the guard.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use shared::duplicates::Group;
use shared::operator::{MergeOptions, MergeReport, MergeRequest};
use shared::settings::SyncSettings;
use simulators::connectwise::{CONFIGURATIONS, TICKETS, Tenant};
use simulators::control::LostAnswer;

use lscw_tests::dying::{killed_after_write, saved_writes_of};
use lscw_tests::world::{World, link_of, scenario, settings, sync, world, world_of};

/// The ls_asset_id field's id in the scenario's tenant.
const LINK_FIELD: i64 = 5;

fn add(tenant: &mut Tenant, name: &str, serial: &str, mac: &str, link: Option<&str>) -> i64 {
    let mut body = json!({"name": name, "type": {"id": 1}, "company": {"id": 1},
        "serialNumber": serial, "macAddress": mac});
    if let Some(link) = link {
        body["customFields"] = json!([{"id": LINK_FIELD, "value": link}]);
    }
    tenant.create(&CONFIGURATIONS, &body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

fn open_ticket(tenant: &mut Tenant, configurations: &[i64]) -> i64 {
    let ticket = tenant
        .create(
            &TICKETS,
            &json!({"summary": "Fault", "recordType": "ServiceTicket",
                "status": {"id": 1, "name": "New"}, "company": {"id": 1}, "closedFlag": false}),
        )
        .unwrap();
    let id = ticket["id"].as_i64().unwrap();
    for configuration in configurations {
        tenant.attach(&TICKETS, id, *configuration).unwrap();
    }
    id
}

async fn duplicates(world: &World, settings: &SyncSettings) -> Vec<Group> {
    shared::operator::find_duplicates(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        settings,
        None,
    )
    .await
    .unwrap()
}

async fn merge(
    world: &World,
    settings: &SyncSettings,
    requests: &[MergeRequest],
    approve: bool,
) -> MergeReport {
    shared::operator::merge(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        settings,
        requests,
        MergeOptions {
            dry_run: false,
            approve,
        },
    )
    .await
    .unwrap()
}

/// The deployed order: the enrichment (which reads the tickets), then the sync, whose
/// report names each conflict's merge.
async fn enrich_then_sync(world: &World) -> shared::pipeline::RunReport {
    shared::enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    sync(world).await
}

/// A configuration as ConnectWise answers it (references with their names).
async fn configuration(world: &World, id: i64) -> Value {
    world
        .cw_client
        .get(&format!("company/configurations/{id}"))
        .await
        .unwrap()
}

fn ids(group: &Group) -> BTreeSet<i64> {
    group.members.iter().map(|m| m.id).collect()
}

/// Breaking it looks like: a placeholder serial or a zero MAC grouping unrelated
/// devices, a MAC in another notation or a link not grouping, a twin found without its
/// asset, or a linked twin not kept.
#[tokio::test]
async fn duplicates_are_grouped_by_serial_mac_and_link_never_by_a_placeholder() {
    let mut made = Vec::new();
    let world = world_of(9, 200, |t| {
        made = vec![
            add(t, "by-serial-a", "DUP-SERIAL-1", "", None),
            add(t, "by-serial-b", "dup-serial-1 ", "", None),
            add(t, "by-mac-a", "M-1", "02:00:00:00:00:01", None),
            add(t, "by-mac-b", "M-2", "02-00-00-00-00-01", None),
            add(t, "by-link-a", "L-1", "", Some("zz-gone-asset")),
            add(t, "by-link-b", "L-2", "", Some("ZZ-GONE-ASSET")),
            add(
                t,
                "oem-a",
                "To be filled by O.E.M.",
                "00:00:00:00:00:00",
                None,
            ),
            add(
                t,
                "oem-b",
                "To be filled by O.E.M.",
                "00:00:00:00:00:00",
                None,
            ),
            add(t, "zeros-a", "0000000", "", None),
            add(t, "zeros-b", "0000000", "", None),
        ];
    })
    .await;
    let groups = duplicates(&world, &settings()).await;
    let found: Vec<BTreeSet<i64>> = groups.iter().map(ids).collect();
    for pair in made[..6].chunks(2) {
        assert!(
            found.contains(&pair.iter().copied().collect()),
            "{pair:?} are one device: {found:?}"
        );
    }
    for placeholder in &made[6..] {
        assert!(
            !found.iter().any(|g| g.contains(placeholder)),
            "{placeholder} shares only a placeholder: never grouped"
        );
    }
    // The scenario's twins: each found with its asset; a linked one kept.
    let twins: Vec<&Group> = groups.iter().filter(|g| g.asset.is_some()).collect();
    assert_eq!(
        twins.len(),
        4,
        "the scenario has 4 twins in 200 assets: {groups:#?}"
    );
    for twin in &twins {
        let key = &twin.asset.as_ref().unwrap().key.to_lowercase();
        let linked: Vec<i64> = twin
            .members
            .iter()
            .filter(|m| m.link.as_ref() == Some(key))
            .map(|m| m.id)
            .collect();
        if let [linked] = linked.as_slice() {
            assert_eq!(
                twin.keep,
                Some(*linked),
                "the linked one is kept: {twin:#?}"
            );
            assert_eq!(twin.why, "linked to the asset");
        }
    }
    let by_link = groups.iter().find(|g| ids(g).contains(&made[4])).unwrap();
    assert_eq!(by_link.shared, ["ls_asset_id zz-gone-asset"]);
    assert!(by_link.asset.is_none(), "no asset has that key");
}

/// A merge of a conflict's twins, as the report names it once the enrichment has read
/// the tickets (the deployed order: the sync, then the enrichment, every hour). Breaking
/// it looks like: the report naming another merge than `lscw duplicates`, a ticket of
/// the dropped one not on the kept one, the link not moved, the dropped one deleted or
/// left active, the conflict still there on the next run, or a second merge writing.
#[tokio::test]
async fn a_merge_moves_tickets_and_the_link_retires_the_other_and_ends_the_conflict() {
    let world = world(200).await;
    let twins = scenario(&world).twins;
    assert_eq!(sync(&world).await.conflicts.len(), twins.len());
    let before = duplicates(&world, &settings()).await;
    let twin = before
        .iter()
        .find(|g| {
            g.asset
                .as_ref()
                .is_some_and(|a| twins.contains(&a.key.to_lowercase()))
        })
        .unwrap();
    let asset_key = twin.asset.as_ref().unwrap().key.to_lowercase();
    // Tickets make the older one the keeper; one ticket has both already.
    let older = twin.members.iter().map(|m| m.id).min().unwrap();
    let newer = twin.members.iter().map(|m| m.id).max().unwrap();
    let opened: Vec<i64> = world.cw.with_tenant(|t| {
        let mut opened: Vec<i64> = (0..3).map(|_| open_ticket(t, &[older])).collect();
        opened.push(open_ticket(t, &[older, newer]));
        opened
    });
    let reported = enrich_then_sync(&world).await;
    let conflict = reported
        .conflicts
        .iter()
        .find(|c| c.asset_key.to_lowercase() == asset_key)
        .unwrap();
    let groups = duplicates(&world, &settings()).await;
    let group = groups
        .iter()
        .find(|g| {
            g.asset
                .as_ref()
                .is_some_and(|a| a.key.to_lowercase() == asset_key)
        })
        .unwrap();
    assert_eq!(group.keep, Some(older), "most tickets: {group:#?}");
    assert_eq!(
        conflict.merge,
        group.command(),
        "the report names the merge"
    );
    let (keep, drop) = (older, newer);
    let dropped_tickets: Vec<i64> = world.cw.with_tenant(|t| {
        t.records("tickets")
            .map(|r| r["id"].as_i64().unwrap())
            .filter(|id| t.attached(&TICKETS, *id).contains(&drop))
            .collect()
    });
    assert!(dropped_tickets.contains(&opened[3]));

    let request = MergeRequest::suggested(group).unwrap();
    let report = merge(&world, &settings(), std::slice::from_ref(&request), false).await;
    assert!(report.failed.is_empty(), "{report:#?}");
    assert_eq!(report.merged.len(), 1);
    assert_eq!(report.merged[0].already_attached, 1, "one ticket had both");
    check_merged(&world, keep, drop, &asset_key, &dropped_tickets).await;

    let next = sync(&world).await;
    assert!(
        !next
            .conflicts
            .iter()
            .any(|c| c.asset_key.to_lowercase() == asset_key),
        "the merged asset is no longer a conflict: {:?}",
        next.conflicts
    );
    assert_eq!(next.conflicts.len(), twins.len() - 1);
    assert!(
        !duplicates(&world, &settings())
            .await
            .iter()
            .any(|g| ids(g).contains(&drop)),
        "a merged configuration is in no group"
    );

    let writes = world.cw.control().writes();
    let again = merge(&world, &settings(), &[request], false).await;
    assert!(again.merged.iter().all(|m| m.already_merged), "{again:#?}");
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "a second merge writes nothing"
    );
}

/// The kept configuration has the dropped one's tickets and the link; the dropped one
/// is retired and renamed, never deleted.
async fn check_merged(world: &World, keep: i64, drop: i64, asset_key: &str, tickets: &[i64]) {
    world.cw.with_tenant(|t| {
        for ticket in tickets {
            let attached = t.attached(&TICKETS, *ticket);
            assert!(
                attached.contains(&keep),
                "ticket {ticket} is on the kept one"
            );
            assert!(
                attached.contains(&drop),
                "and stays in the dropped one's history"
            );
        }
    });
    let kept = configuration(world, keep).await;
    assert_eq!(link_of(&kept).as_deref(), Some(asset_key));
    let dropped = configuration(world, drop).await;
    assert_eq!(dropped["activeFlag"], false);
    assert_eq!(dropped["status"]["name"], "Inactive");
    assert!(
        dropped["name"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" (merged into {keep})")),
        "{}",
        dropped["name"]
    );
    assert_eq!(link_of(&dropped), None);
}

/// Every attachment's answer is lost after ConnectWise saved it (502), and ConnectWise
/// refuses a configuration attached twice. Breaking it looks like: the attachment sent
/// again blindly (refused: the merge fails), or a ticket left without the kept one.
#[tokio::test]
async fn a_merge_under_lost_answers_attaches_each_ticket_once() {
    let world = world(200).await;
    let groups = duplicates(&world, &settings()).await;
    let group = groups.iter().find(|g| g.keep.is_some()).unwrap();
    let (keep, drop) = (group.keep.unwrap(), group.drops()[0]);
    let tickets: Vec<i64> = world
        .cw
        .with_tenant(|t| (0..4).map(|_| open_ticket(t, &[drop])).collect());
    let control = world.cw.control();
    control.lose_answers_to("/service/tickets", &[(LostAnswer::BadGateway, 1)]);
    // As `lscw merge KEEP DROP` asks: the tickets are read by the merge.
    let request = MergeRequest {
        keep,
        drop: vec![drop],
        asset_key: None,
        tickets: std::collections::BTreeMap::new(),
    };
    let report = merge(&world, &settings(), &[request], false).await;
    assert!(report.failed.is_empty(), "{report:#?}");
    assert!(
        control.answers_lost_at("POST /service/tickets/{id}/configurations") >= 4,
        "every attachment lost its answer"
    );
    assert_eq!(
        control.refused(),
        0,
        "nothing was attached twice: {:?}",
        control.refusals()
    );
    world.cw.with_tenant(|t| {
        for ticket in &tickets {
            assert!(t.attached(&TICKETS, *ticket).contains(&keep));
        }
    });
}

/// Breaking it looks like: a merge of more than the guard's limits written without
/// `--approve`, or a write made before the guard's verdict.
#[tokio::test]
async fn the_guard_holds_a_mass_merge() {
    let world = world(200).await;
    let strict = SyncSettings {
        retire: shared::lifecycle::RetirePolicy {
            guard_count: 2,
            guard_percent: 1.0,
            ..shared::lifecycle::RetirePolicy::default()
        },
        ..settings()
    };
    let requests: Vec<MergeRequest> = duplicates(&world, &strict)
        .await
        .iter()
        .filter_map(MergeRequest::suggested)
        .collect();
    assert_eq!(requests.len(), 4);
    let writes = world.cw.control().writes();
    let held = merge(&world, &strict, &requests, false).await;
    assert!(held.held.as_deref().unwrap().contains("4 of"), "{held:#?}");
    assert!(held.merged.is_empty());
    assert_eq!(world.cw.control().writes(), writes, "nothing written");

    let approved = merge(&world, &strict, &requests, true).await;
    assert_eq!(approved.held, None);
    assert_eq!(approved.merged.len(), 4, "{approved:#?}");
    assert!(approved.failed.is_empty());
}

/// Two configurations that share only their link, merged by `--all-suggested`, the
/// merge stopped after the link moved and before the dropped one was retired (its
/// retirement refused): the next `--all-suggested` finds no group any more (the link
/// moved), yet finishes the stopped merge from the stored plan, and then has nothing
/// left to do.
///
/// Breaking it looks like: "merged 0 configurations" after the stop, the dropped
/// configuration left active, unlinked, under its old name, with nothing to show it.
#[tokio::test]
async fn a_merge_stopped_after_moving_the_link_is_finished_by_the_next_all_suggested() {
    let world = world(12).await;
    let (a, b) = world.cw.with_tenant(|tenant| {
        let a = add(tenant, "twin-a", "SER-TWIN-A", "", Some("twin-key"));
        let b = add(tenant, "twin-b", "SER-TWIN-B", "", Some("twin-key"));
        open_ticket(tenant, &[b]);
        (a, b)
    });
    let suggested = |groups: &[Group]| -> Vec<MergeRequest> {
        groups.iter().filter_map(MergeRequest::suggested).collect()
    };
    let groups = duplicates(&world, &settings()).await;
    let twins = groups
        .iter()
        .find(|g| g.members.iter().any(|m| m.id == a))
        .expect("the twins are a group");
    let (keep, drop) = (twins.keep.unwrap(), twins.drops()[0]);
    assert_eq!((keep, drop), (b, a), "the one with a ticket is kept");
    // The dropped one's link is cleared (its first PATCH); its retirement (the next) is
    // refused, as a process killed there leaves it.
    world
        .cw
        .control()
        .fail_after(1, 1, 400, None, Some("PATCH /company/configurations/{id}"));
    let twins_only = [MergeRequest::suggested(twins).unwrap()];
    let stopped = merge(&world, &settings(), &twins_only, true).await;
    assert_eq!(stopped.failed.len(), 1, "{stopped:?}");
    let half = world
        .cw
        .with_tenant(|t| t.get("configurations", drop).unwrap().clone());
    assert!(
        link_of(&half).is_none() && half["activeFlag"] == true,
        "{half}"
    );

    let groups = duplicates(&world, &settings()).await;
    assert!(
        groups
            .iter()
            .all(|g| g.members.iter().all(|m| m.id != drop)),
        "the group is gone once the link moved: {groups:?}"
    );
    let finished = merge(&world, &settings(), &suggested(&groups), true).await;
    assert!(finished.failed.is_empty(), "{finished:?}");
    assert!(
        finished
            .merged
            .iter()
            .any(|m| m.keep == keep && m.drop == drop),
        "{finished:?}"
    );
    let dropped = world
        .cw
        .with_tenant(|t| t.get("configurations", drop).unwrap().clone());
    assert_eq!(dropped["activeFlag"], false);
    assert!(
        dropped["name"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(merged into {keep})")),
        "{dropped}"
    );
    let writes = world.cw.control().writes();
    let groups = duplicates(&world, &settings()).await;
    let again = merge(&world, &settings(), &suggested(&groups), true).await;
    assert!(
        again.merged.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
    assert_eq!(world.cw.control().writes(), writes, "nothing left to do");
}

/// Three configurations of one device (two share a serial, two a MAC, one carries a
/// link), their tickets spread over them: answers the world and every ticket.
async fn trio() -> (World, Vec<i64>) {
    let mut tickets = Vec::new();
    let world = world_of(9, 12, |tenant| {
        let a = add(tenant, "trio-a", "SER-TRIO", "", Some("trio-key"));
        let b = add(tenant, "trio-b", "SER-TRIO", "0A:1B:2C:3D:4E:5F", None);
        let c = add(tenant, "trio-c", "", "0a-1b-2c-3d-4e-5f", None);
        tickets.push(open_ticket(tenant, &[b]));
        tickets.push(open_ticket(tenant, &[b]));
        tickets.push(open_ticket(tenant, &[b, c]));
        tickets.push(open_ticket(tenant, &[a]));
        tickets.push(open_ticket(tenant, &[c]));
    })
    .await;
    (world, tickets)
}

/// Every configuration as ConnectWise keeps it (but its timestamps), and every ticket's
/// configurations.
fn end_state(world: &World, tickets: &[i64]) -> (BTreeMap<i64, Value>, BTreeMap<i64, Vec<i64>>) {
    world.cw.with_tenant(|t| {
        let configurations = t
            .records("configurations")
            .map(|c| {
                let mut c = t.render(&CONFIGURATIONS, c, "");
                c.as_object_mut().unwrap().remove("_info");
                (c["id"].as_i64().unwrap(), c)
            })
            .collect();
        let attached = tickets
            .iter()
            .map(|id| {
                let mut on = t.attached(&TICKETS, *id);
                on.sort_unstable();
                (*id, on)
            })
            .collect();
        (configurations, attached)
    })
}

/// `lscw merge --all-suggested --approve`, as an operator runs it.
async fn merge_all_suggested(world: &World) -> MergeReport {
    let requests: Vec<MergeRequest> = duplicates(world, &settings())
        .await
        .iter()
        .filter_map(MergeRequest::suggested)
        .collect();
    merge(world, &settings(), &requests, true).await
}

/// `lscw merge --all-suggested --approve` killed after each of its writes in turn
/// (ConnectWise saved it, the answer never came back), a dropped configuration still
/// active renamed by hand while it was stopped, and the same command run again under
/// lost answers: each ends as the uninterrupted merge did (tickets, links, retirements),
/// the hand-typed name kept in the merged name.
///
/// Breaking it looks like: a kill point after which the search no longer sees the group
/// and the merge is never finished, a ticket attached twice (refused) or left off the
/// kept one, or the operator's name lost.
#[tokio::test]
async fn a_merge_killed_after_any_of_its_writes_ends_as_an_uninterrupted_one() {
    let (clean, tickets) = trio().await;
    let (merged, kill_points) =
        saved_writes_of(clean.cw.control(), merge_all_suggested(&clean)).await;
    assert!(
        merged.merged.len() >= 3 && merged.failed.is_empty(),
        "{merged:#?}"
    );
    let (expected, attached) = end_state(&clean, &tickets);
    assert!(kill_points >= 6, "{kill_points} writes");

    for k in 1..=kill_points {
        let (world, _) = trio().await;
        let control = world.cw.control();
        let killed = killed_after_write(control, k, merge_all_suggested(&world)).await;
        assert!(killed.is_none(), "killed after write {k}");
        shared::lease::force_release(&world.store).await.unwrap();

        let still_active = merged
            .merged
            .iter()
            .map(|m| (m.drop, m.keep))
            .find(|(drop, _)| {
                world
                    .cw
                    .with_tenant(|t| t.get("configurations", *drop).unwrap()["activeFlag"] == true)
            });
        if let Some((drop, _)) = still_active {
            world.cw.with_tenant(|t| {
                let mut body = t.get("configurations", drop).unwrap().clone();
                body["name"] = json!("renamed by hand");
                t.replace(&CONFIGURATIONS, drop, &body).unwrap();
            });
        }

        control.lose_answers(&[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)]);
        let resumed = merge_all_suggested(&world).await;
        control.lose_answers(&[]);
        assert!(resumed.failed.is_empty(), "kill point {k}: {resumed:#?}");
        assert_eq!(
            control.refused(),
            0,
            "kill point {k}: {:?}",
            control.refusals()
        );

        let (mut want, want_attached) = (expected.clone(), attached.clone());
        if let Some((drop, keep)) = still_active {
            want.get_mut(&drop).unwrap()["name"] =
                json!(format!("renamed by hand (merged into {keep})"));
        }
        let (end, end_attached) = end_state(&world, &tickets);
        assert_eq!(end_attached, want_attached, "kill point {k}: tickets");
        for (id, configuration) in &want {
            assert_eq!(
                &end[id], configuration,
                "kill point {k}: configuration {id}"
            );
        }
        assert_eq!(end.len(), want.len(), "kill point {k}");
    }
}

/// A conflict's twins (one serial), one of them sharing a MAC address (in another
/// notation) with a third configuration that has the most tickets: once the enrichment
/// has read the tickets, the run report's merge is the whole group `lscw duplicates`
/// builds, the third kept.
///
/// Breaking it looks like: the report suggesting a merge of the twins alone (`lscw merge
/// 2012 2011`), keeping the wrong one and leaving a second merge to make.
#[tokio::test]
async fn the_report_s_merge_is_the_group_lscw_duplicates_builds() {
    let world = world(200).await;
    let first = sync(&world).await;
    let conflict = first
        .conflicts
        .iter()
        .find(|c| c.candidates.len() == 2)
        .unwrap()
        .clone();
    let twin = conflict.candidates[1];
    let third = world.cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", twin).unwrap().clone();
        body["macAddress"] = json!("0A:0B:0C:0D:0E:0F");
        tenant.replace(&CONFIGURATIONS, twin, &body).unwrap();
        let third = add(tenant, "same-device", "SER-ELSE", "0a0b.0c0d.0e0f", None);
        for _ in 0..3 {
            open_ticket(tenant, &[third]);
        }
        third
    });
    let reported = enrich_then_sync(&world).await;
    let merge = reported
        .conflicts
        .iter()
        .find(|c| c.asset_key == conflict.asset_key)
        .unwrap()
        .merge
        .clone();
    let group = duplicates(&world, &settings())
        .await
        .into_iter()
        .find(|g| g.members.iter().any(|m| m.id == twin))
        .unwrap();
    assert_eq!(group.keep, Some(third), "{group:#?}");
    assert_eq!(
        ids(&group),
        BTreeSet::from([conflict.candidates[0], twin, third])
    );
    assert_eq!(merge, group.command(), "the report names the group's merge");
}
