//! Enrichment (ConnectWise → Lansweeper) on one machine against both simulators:
//! the values written for assets with no, one and several tickets and agreements, a
//! second run that writes nothing, a run cut by its time budget that ends like an uncut
//! one, the spec's two actions, the deep link, and the quota never hit.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use shared::enrichment;
use shared::pipeline::{self, Progress};
use shared::settings::SyncSettings;
use shared::store::MemoryStore;
use simulators::connectwise::ConnectWiseSimulator;
use simulators::lansweeper::{LansweeperSimulator, SiteSpec};

use lscw_tests::{cw_config, fast_options, ls_client_for, ls_options, start_cw, start_ls};

struct World {
    cw: ConnectWiseSimulator,
    ls: LansweeperSimulator,
    cw_client: shared::connectwise::ConnectWiseClient,
    ls_client: shared::lansweeper::LansweeperClient,
    store: MemoryStore,
}

fn settings() -> SyncSettings {
    SyncSettings {
        target_company: "BlueLightCo".into(),
        ..SyncSettings::default()
    }
}

/// A tenant and site linked by a first sync, ready to enrich.
async fn synced_world(assets: usize) -> World {
    let (tenant, site) = simulators::scenario::linked(&SiteSpec { seed: 11, assets }).unwrap();
    let cw = start_cw(tenant).await;
    let ls = start_ls(site).await;
    let cw_client =
        shared::connectwise::ConnectWiseClient::connect(&cw_config(&cw), fast_options())
            .await
            .unwrap();
    let ls_client = ls_client_for(&ls, simulators::lansweeper::TOKEN, ls_options());
    let store = MemoryStore::new();
    pipeline::run_sync(
        &cw_client,
        &ls_client,
        &store,
        &settings(),
        &|_: Progress| {},
    )
    .await
    .unwrap();
    World {
        cw,
        ls,
        cw_client,
        ls_client,
        store,
    }
}

/// Every asset's enrichment values by field name, as the Lansweeper site holds them.
fn site_values(world: &World) -> BTreeMap<String, BTreeMap<String, String>> {
    world.ls.with_site(|site| {
        let names: HashMap<String, String> = site
            .data
            .custom_fields
            .iter()
            .map(|f| (f.key.clone(), f.name.clone()))
            .collect();
        site.data
            .assets
            .iter()
            .map(|asset| {
                let values = asset["assetCustom"]["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        (
                            names[f["fieldKey"].as_str().unwrap()].clone(),
                            f["value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                (asset["key"].as_str().unwrap().to_string(), values)
            })
            .collect()
    })
}

/// What ConnectWise holds for a configuration, read straight from the simulator.
struct History {
    tickets: Vec<Value>,
    agreements: Vec<Value>,
}

fn history(world: &World, configuration: i64) -> History {
    world.cw.with_tenant(|t| {
        let of = |collection: &str, resource: &simulators::connectwise::Resource| -> Vec<Value> {
            t.records(collection)
                .filter(|r| {
                    t.attached(resource, r["id"].as_i64().unwrap())
                        .contains(&configuration)
                })
                .cloned()
                .collect()
        };
        let resource = |name: &str| {
            *simulators::connectwise::RESOURCES
                .iter()
                .find(|r| r.collection == name)
                .unwrap()
        };
        History {
            tickets: of("tickets", resource("tickets")),
            agreements: of("agreements", resource("agreements")),
        }
    })
}

fn linked_configurations(world: &World) -> HashMap<String, i64> {
    world.cw.with_tenant(|t| {
        t.records("configurations")
            .filter_map(|c| {
                let link = c["customFields"]
                    .as_array()?
                    .iter()
                    .find(|f| f["caption"] == "ls_asset_id")?
                    .get("value")?
                    .as_str()?
                    .to_string();
                Some((link, c["id"].as_i64()?))
            })
            .collect()
    })
}

#[tokio::test]
async fn writes_counts_agreements_and_links_then_nothing_the_second_time() {
    let world = synced_world(240).await;
    let (report, invocations) = enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(invocations, 1);
    assert_eq!(
        report.written + report.unchanged + report.failed.len() as u64,
        report.assets
    );
    assert!(report.written > 200, "{report:#?}");
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert_eq!(world.ls.rate_refusals(), 0);

    let values = site_values(&world);
    let linked = linked_configurations(&world);
    let (mut none, mut one, mut several, mut several_agreements) = (0, 0, 0, 0);
    for (asset, configuration) in &linked {
        let written = &values[asset];
        let history = history(&world, *configuration);
        let closed = history
            .tickets
            .iter()
            .filter(|t| t["closedFlag"] == true)
            .count();
        assert_eq!(
            written["cw_total_tickets"],
            history.tickets.len().to_string(),
            "{asset}"
        );
        assert_eq!(written["cw_closed_tickets"], closed.to_string());
        assert_eq!(
            written["cw_open_tickets"],
            (history.tickets.len() - closed).to_string()
        );
        assert!(written["cw_configuration_url"].ends_with(&format!("recid={configuration}")));
        match history.agreements.len() {
            0 => assert!(
                !written.contains_key("cw_agreement_id"),
                "no agreement, no stale value"
            ),
            n => {
                let chosen = enrichment::chosen_agreement(&history.agreements).unwrap();
                assert_eq!(written["cw_agreement_id"], chosen["id"].to_string());
                assert_eq!(
                    written["cw_agreement_name"],
                    chosen["name"].as_str().unwrap()
                );
                assert_eq!(
                    written["cw_agreement_status"],
                    chosen["agreementStatus"].as_str().unwrap()
                );
                if n > 1 {
                    several_agreements += 1;
                }
            }
        }
        match history.tickets.len() {
            0 => none += 1,
            1 => one += 1,
            _ => several += 1,
        }
    }
    assert!(
        none > 0 && one > 0 && several > 0 && several_agreements > 0,
        "{none} {one} {several} {several_agreements}"
    );

    // The deep link opens the configuration in ConnectWise.
    let (asset, configuration) = linked.iter().next().unwrap();
    let page = reqwest::get(&values[asset]["cw_configuration_url"])
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let name = world.cw.with_tenant(|t| {
        t.get("configurations", *configuration).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&name.replace('<', "&lt;"))
    );

    let edits = world.ls.control().count("POST graphql:editAsset");
    let (again, _) = enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        world.ls.control().count("POST graphql:editAsset"),
        edits,
        "a second run makes no editAsset call"
    );
    assert_eq!(again.written, 0);
    assert_eq!(again.unchanged, again.assets);

    // A ticket closes in ConnectWise: only that asset is written again.
    let (asset, configuration) = linked
        .iter()
        .find(|(_, c)| {
            history(&world, **c)
                .tickets
                .iter()
                .any(|t| t["closedFlag"] == false)
        })
        .map(|(a, c)| (a.clone(), *c))
        .unwrap();
    world.cw.with_tenant(|t| {
        let resource = *simulators::connectwise::RESOURCES
            .iter()
            .find(|r| r.collection == "tickets")
            .unwrap();
        let ticket = t
            .records("tickets")
            .find(|r| {
                r["closedFlag"] == false
                    && t.attached(resource, r["id"].as_i64().unwrap())
                        .contains(&configuration)
            })
            .unwrap()
            .clone();
        let mut body = ticket.clone();
        body["closedFlag"] = json!(true);
        t.replace(resource, ticket["id"].as_i64().unwrap(), &body)
            .unwrap();
    });
    let (changed, _) = enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert!(
        changed.written >= 1 && changed.written <= 2,
        "the asset (and any other on that ticket): {changed:#?}"
    );
    let closed_now = history(&world, configuration)
        .tickets
        .iter()
        .filter(|t| t["closedFlag"] == true)
        .count();
    assert_eq!(
        site_values(&world)[&asset]["cw_closed_tickets"],
        closed_now.to_string()
    );
}

#[tokio::test]
async fn a_run_cut_by_its_time_budget_resumes_and_ends_like_an_uncut_one() {
    let cut = synced_world(120).await;
    let whole = synced_world(120).await;
    let (cut_report, invocations) = enrichment::run_enrich(
        &cut.cw_client,
        &cut.ls_client,
        &cut.store,
        &settings(),
        Some(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    assert!(
        invocations > 2,
        "the budget cut the run {invocations} time(s)"
    );
    let (whole_report, one) = enrichment::run_enrich(
        &whole.cw_client,
        &whole.ls_client,
        &whole.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(one, 1);
    assert_eq!(cut_report.written, whole_report.written);
    // Same values, once each simulator's own address is taken out of the links.
    let portable = |world: &World| {
        let site = world.cw.site();
        let mut values = site_values(world);
        for fields in values.values_mut() {
            for value in fields.values_mut() {
                *value = value.replace(&site, "CW");
            }
        }
        values
    };
    let (cut_values, whole_values) = (portable(&cut), portable(&whole));
    let differing: Vec<&String> = cut_values
        .keys()
        .filter(|k| cut_values.get(*k) != whole_values.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "{} assets differ, e.g. {:?}",
        differing.len(),
        differing.first()
    );
    assert_eq!(cut_values.len(), whole_values.len());
    assert_eq!(cut.ls.rate_refusals() + whole.ls.rate_refusals(), 0);
}

#[tokio::test]
async fn the_spec_actions_answer_the_sample_shapes() {
    let world = synced_world(60).await;
    let linked = linked_configurations(&world);
    let configuration = linked
        .values()
        .copied()
        .find(|c| {
            let h = history(&world, *c);
            !h.tickets.is_empty() && !h.agreements.is_empty()
        })
        .unwrap();
    let payload = json!({"configurations": [world.cw_client.get(&format!("company/configurations/{configuration}")).await.unwrap()]});

    let tickets = shared::connectwise::run_action(
        &world.cw_client,
        "listTicketsForConfigurationsAction",
        payload.clone(),
    )
    .await
    .unwrap();
    let entry = &tickets[0];
    let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["customFields", "id", "name", "tickets", "ticketsInfo"]
    );
    assert!(entry["customFields"]["ls_asset_id"].is_string());
    let ticket_keys: Vec<&String> = entry["tickets"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        ticket_keys,
        ["closedFlag", "id", "recordType", "status", "summary"]
    );
    let info = &entry["ticketsInfo"];
    assert_eq!(
        info["totalTickets"],
        history(&world, configuration).tickets.len()
    );
    assert_eq!(
        info["openTickets"].as_u64().unwrap() + info["closedTickets"].as_u64().unwrap(),
        info["totalTickets"].as_u64().unwrap()
    );

    let agreements = shared::connectwise::run_action(
        &world.cw_client,
        "listAgreementsForConfigurationsAction",
        payload,
    )
    .await
    .unwrap();
    let entry = &agreements[0];
    let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["agreements", "customFields", "id", "name", "sla"]);
    let agreement = &entry["agreements"][0];
    let agreement_keys: Vec<&String> = agreement.as_object().unwrap().keys().collect();
    assert_eq!(
        agreement_keys,
        [
            "agreementStatus",
            "endDate",
            "id",
            "name",
            "startDate",
            "type"
        ]
    );
    let start = agreement["startDate"].as_str().unwrap();
    assert!(
        start.len() == 10 && &start[2..3] == "/" && &start[5..6] == "/",
        "DD/MM/YYYY: {start}"
    );
    assert!(agreement["type"]["name"].is_string());

    let err = shared::connectwise::run_action(
        &world.cw_client,
        "listTicketsForConfigurationsAction",
        json!({"configurations": [{"name": "x"}]}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("configurations[0].id"), "{err}");
}
