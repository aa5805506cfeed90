//! Enrichment (ConnectWise → Lansweeper) on one machine against both simulators:
//! the values written for assets with no, one and several tickets and agreements, a
//! second run that writes nothing, a run cut by its time budget that ends like an uncut
//! one, the spec's two actions, the deep link, and the quota never hit.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use shared::enrichment::{self};
use shared::operator::EnrichRevert;
use shared::pipeline::{self, Progress};
use shared::settings::SyncSettings;
use shared::store::{MemoryStore, Store, Watched};
use shared::trail::{self, System};
use simulators::connectwise::ConnectWiseSimulator;
use simulators::control::LostAnswer;
use simulators::lansweeper::{LansweeperSimulator, SiteSpec, Sites};

use lscw_tests::{cw_config, fast_options, ls_client_for, ls_options, start_cw};

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
    synced_world_with(assets, None).await
}

/// As [`synced_world`], Lansweeper taking at most `mutations_per_request` mutations in
/// one request.
async fn synced_world_with(assets: usize, mutations_per_request: Option<usize>) -> World {
    let (tenant, site) = simulators::scenario::linked(&SiteSpec { seed: 11, assets }).unwrap();
    let cw = start_cw(tenant).await;
    let ls = LansweeperSimulator::start(
        site,
        simulators::lansweeper::LansweeperOptions {
            mutations_per_request,
            ..lscw_tests::ls_sim_options()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
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
#[allow(
    clippy::too_many_lines,
    reason = "one synced estate's enrichment, then its rerun: each value checked against the tenant"
)]
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

/// A run cut by its time budget into many invocations ends with the same values in
/// Lansweeper as a run in one.
///
/// Breaking it looks like: an edit lost or repeated at a cut (values differing from the
/// uncut run's), or an invocation that writes nothing.
#[tokio::test]
async fn a_run_cut_by_its_time_budget_resumes_and_ends_like_an_uncut_one() {
    let cut = synced_world(120).await;
    let whole = synced_world(120).await;
    // More tickets than one invocation reads the attachments of under a spent budget.
    for world in [&cut, &whole] {
        open_tickets(world, 150);
    }
    let outputs = std::sync::Mutex::new(Vec::new());
    let local = enrichment::LocalEnrichment {
        // A budget spent before it starts: one chunk of reading or one batch of writes
        // an invocation, however fast the machine.
        budget: Some(Duration::ZERO),
        run_id: None,
        watch: &|output| outputs.lock().unwrap().push(output.clone()),
    };
    let (cut_report, invocations) = enrichment::run_enrich_watched(
        &cut.cw_client,
        &cut.ls_client,
        &cut.store,
        &settings(),
        &local,
        |_| async { Ok(()) },
    )
    .await
    .unwrap();
    let outputs = outputs.into_inner().unwrap();
    let planning = outputs.iter().filter(|o| !o.done && o.edits == 0).count();
    assert!(
        planning >= 2,
        "the plan (ConnectWise's attachments, the site's pages) went on over several \
         invocations: {planning}"
    );
    assert!(
        invocations > planning + 2,
        "the budget cut the writes too: {invocations} invocation(s)"
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
    let (cut_values, whole_values) = (portable_values(&cut), portable_values(&whole));
    let differing: Vec<&String> = cut_values
        .keys()
        .filter(|k| cut_values.get(*k) != whole_values.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "{} assets differ, e.g. {:?}: {:?} against {:?}",
        differing.len(),
        differing.first(),
        differing.first().map(|k| &cut_values[*k]),
        differing.first().map(|k| &whole_values[*k]),
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

    let tickets = shared::actions::run_action(
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

    let agreements = shared::actions::run_action(
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

    let err = shared::actions::run_action(
        &world.cw_client,
        "listTicketsForConfigurationsAction",
        json!({"configurations": [{"name": "x"}]}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("configurations[0].id"), "{err}");
}

/// Every asset's enrichment values, by asset key.
fn enriched_values(world: &World) -> BTreeMap<String, Value> {
    world.ls.with_site(|site| {
        site.data
            .assets
            .iter()
            .map(|a| {
                (
                    a["key"].as_str().unwrap().to_string(),
                    a["assetCustom"]["fields"].clone(),
                )
            })
            .collect()
    })
}

async fn enrich_with(world: &World, settings: &SyncSettings) -> enrichment::EnrichReport {
    enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        settings,
        None,
    )
    .await
    .unwrap()
    .0
}

/// After the incremental run, a full one finds nothing to write: both arrive at the
/// same values.
async fn incremental_equals_full(world: &World, change: &str) -> enrichment::EnrichReport {
    let incremental = enrich_with(world, &settings()).await;
    // ConnectWise's lastUpdated counts seconds: the next change comes in a later one, as
    // changes made by people do.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(!incremental.full_read, "{change}: read incrementally");
    let values = enriched_values(world);
    let full = enrich_with(
        world,
        &SyncSettings {
            enrich_full_refresh: Duration::ZERO,
            ..settings()
        },
    )
    .await;
    assert!(full.full_read);
    assert_eq!(
        full.written, 0,
        "{change}: the full read found more to write"
    );
    assert_eq!(enriched_values(world), values, "{change}");
    incremental
}

#[tokio::test]
async fn incremental_enrichment_equals_a_full_one_after_each_change() {
    use simulators::connectwise::{AGREEMENTS, TICKETS};

    let world = synced_world(160).await;
    let first = enrich_with(&world, &settings()).await;
    assert!(
        first.full_read,
        "the first enrichment reads ConnectWise whole"
    );
    let full_requests = first.api_calls.connectwise;

    // Nothing changed: a handful of requests, whatever the number of tickets.
    // Nothing changed: per kind (configurations, agreements, tickets) the changed
    // records' read with its count, and the count that would reveal a deletion — nine
    // requests, whatever the number of tickets.
    world.cw.control().reset_counts();
    let quiet = enrich_with(&world, &settings()).await;
    assert_eq!(quiet.written, 0);
    assert!(!quiet.full_read);
    assert_eq!(world.cw.control().total(), quiet.api_calls.connectwise);
    assert!(
        quiet.api_calls.connectwise <= 9,
        "a quiet rerun costs {} requests (a full read {full_requests}): {:#?}",
        quiet.api_calls.connectwise,
        world.cw.control().requests()
    );
    assert!(full_requests > 10 * quiet.api_calls.connectwise);
    incremental_equals_full(&world, "nothing changed").await;

    // Linked configurations, as ConnectWise holds them.
    let linked: Vec<i64> = world.cw.with_tenant(|t| {
        t.records("configurations")
            .filter(|c| {
                c["customFields"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f["id"] == 5 && f["value"].is_string()))
            })
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    });
    let (a, b) = (linked[0], linked[1]);
    let ticket_of = |configuration: i64| {
        world.cw.with_tenant(|t| {
            t.records("tickets")
                .map(|r| r["id"].as_i64().unwrap())
                .find(|id| t.attached(&TICKETS, *id).contains(&configuration))
        })
    };

    // A ticket opened on a linked configuration.
    let opened = world.cw.with_tenant(|t| {
        let ticket = t
            .create(
                &TICKETS,
                &json!({"summary": "New fault", "recordType": "ServiceTicket",
                        "status": {"id": 1, "name": "New"}, "company": {"id": 1}, "closedFlag": false}),
            )
            .unwrap();
        let id = ticket["id"].as_i64().unwrap();
        t.attach(&TICKETS, id, a).unwrap();
        id
    });
    let report = incremental_equals_full(&world, "a ticket opened").await;
    assert!(report.written >= 1);

    // That ticket closed.
    world.cw.with_tenant(|t| {
        let mut body = t.get("tickets", opened).unwrap().clone();
        body["closedFlag"] = json!(true);
        t.replace(&TICKETS, opened, &body).unwrap();
    });
    incremental_equals_full(&world, "a ticket closed").await;

    // A ticket re-linked to another configuration. Assumed: re-linking edits the ticket,
    // so its lastUpdated moves (unconfirmed; the weekly full read settles it otherwise).
    let moved = ticket_of(a).unwrap();
    world.cw.with_tenant(|t| {
        t.detach(&TICKETS, moved, a);
        t.attach(&TICKETS, moved, b).unwrap();
        let body = t.get("tickets", moved).unwrap().clone();
        t.replace(&TICKETS, moved, &body).unwrap();
    });
    incremental_equals_full(&world, "a ticket re-linked").await;

    // A ticket deleted: no lastUpdated tells, the count does.
    let deleted = ticket_of(b).unwrap();
    world
        .cw
        .with_tenant(|t| t.delete(&TICKETS, deleted).unwrap());
    incremental_equals_full(&world, "a ticket deleted").await;

    // An agreement ended, and a new one.
    world.cw.with_tenant(|t| {
        let id = t.records("agreements").next().unwrap()["id"]
            .as_i64()
            .unwrap();
        let mut body = t.get("agreements", id).unwrap().clone();
        body["agreementStatus"] = json!("Expired");
        body["endDate"] = json!("2020-01-31T00:00:00Z");
        body["noEndingDateFlag"] = json!(false);
        t.replace(&AGREEMENTS, id, &body).unwrap();
    });
    incremental_equals_full(&world, "an agreement ended").await;
    world.cw.with_tenant(|t| {
        let agreement = t
            .create(
                &AGREEMENTS,
                &json!({"name": "Managed Services 99", "type": {"id": 1}, "company": {"id": 1},
                        "startDate": "2026-01-01T00:00:00Z", "agreementStatus": "Active",
                        "cancelledFlag": false, "noEndingDateFlag": true}),
            )
            .unwrap();
        t.attach(&AGREEMENTS, agreement["id"].as_i64().unwrap(), b)
            .unwrap();
    });
    let report = incremental_equals_full(&world, "a new agreement").await;
    assert!(report.written >= 1);
}

/// A run's enrichment as the state machine's loop invokes it, under the run's lease,
/// each invocation past its deadline at once when `tight` (one write each) or with none;
/// `before` is called with each invocation's number before it. Answers every output.
async fn invoke_to_the_end(
    world: &World,
    run_id: &str,
    tight: bool,
    mut before: impl FnMut(usize),
) -> Vec<shared::states::EnrichOutput> {
    assert_eq!(
        shared::lease::acquire(&world.store, run_id).await.unwrap(),
        None
    );
    let mut input = shared::states::EnrichInput {
        run_id: Some(run_id.into()),
        next: None,
    };
    let mut outputs = Vec::new();
    loop {
        assert!(outputs.len() < 1_000, "the enrichment never ends");
        before(outputs.len());
        let output = enrichment::enrich(
            &world.cw_client,
            &world.ls_client,
            &world.store,
            &settings(),
            &input,
            tight.then(std::time::Instant::now),
        )
        .await
        .unwrap();
        input.next = Some(output.next);
        let done = output.done;
        outputs.push(output);
        if done {
            return outputs;
        }
    }
}

/// What run-report records and `lscw report` shows of a run's enrichment: every
/// invocation's writes, found by following where each stopped.
#[tokio::test]
async fn the_enrichment_of_a_run_is_put_together_from_all_its_invocations() {
    let world = synced_world(60).await;
    let run_id = "run-with-enrichment";
    // A deadline already past: one write an invocation, as under a tight budget.
    let invocations = invoke_to_the_end(&world, run_id, true, |_| {}).await.len();
    assert!(invocations > 2, "{invocations}");
    let recorded = enrichment::recorded(&world.store, run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recorded.written + recorded.unchanged + recorded.failed.len() as u64,
        recorded.assets
    );
    // Several assets' edits a request (aliased `editAsset`s): fewer requests than edits.
    let requests = world.ls.control().count("POST graphql:editAsset");
    assert!(
        requests < recorded.written && requests >= recorded.written.div_ceil(20),
        "{requests} requests for {} edits",
        recorded.written
    );
    assert!(
        enrichment::recorded(&world.store, "no-such-run")
            .await
            .unwrap()
            .is_none()
    );
}

/// Refused for rate past its retries (another user of the token spent the minute),
/// first while planning and then while writing: each invocation hands back Lansweeper's
/// wait and where it stopped, the next goes on from there, and the run ends with every
/// asset written, none failed.
///
/// Breaking it looks like: the invocation failing with the refusal (the state machine's
/// retries refused again, the run failed), or a stopped invocation starting over.
#[tokio::test]
async fn a_rate_refusal_past_the_retries_is_waited_for_never_a_failure() {
    let world = synced_world(60).await;
    let run_id = "run-refused-for-rate";
    let control = world.ls.control();
    // As many refusals as the client's attempts (the tests' retry policy makes 4).
    control.fail_next(4, 429, Some(1), Some("POST graphql:assetResources"));
    let waits: Vec<u64> = invoke_to_the_end(&world, run_id, false, |invocation| {
        if invocation == 1 {
            control.fail_next(4, 429, Some(1), Some("POST graphql:editAsset"));
        }
    })
    .await
    .iter()
    .map(|output| output.wait_seconds)
    .collect();
    assert!(
        waits.len() >= 3 && waits[0] >= 1 && waits[1] >= 1,
        "a wait handed back by the planning and by the writing invocation: {waits:?}"
    );
    let recorded = enrichment::recorded(&world.store, run_id)
        .await
        .unwrap()
        .unwrap();
    assert!(recorded.failed.is_empty(), "{:?}", recorded.failed);
    assert!(recorded.written > 0);
    assert_eq!(recorded.written + recorded.unchanged, recorded.assets);
    assert!(control.refused() >= 8, "{} refused", control.refused());
}

/// Every asset's enrichment values, each simulator's own address taken out of the links.
fn portable_values(world: &World) -> BTreeMap<String, BTreeMap<String, String>> {
    let site = world.cw.site();
    let mut values = site_values(world);
    for fields in values.values_mut() {
        for value in fields.values_mut() {
            *value = value.replace(&site, "CW");
        }
    }
    values
}

/// `count` tickets opened on the linked configurations, in turn.
fn open_tickets(world: &World, count: usize) {
    use simulators::connectwise::TICKETS;
    let mut linked: Vec<i64> = linked_configurations(world).into_values().collect();
    linked.sort_unstable();
    world.cw.with_tenant(|t| {
        for n in 0..count {
            let ticket = t
                .create(
                    &TICKETS,
                    &json!({"summary": format!("Fault {n}"), "recordType": "ServiceTicket",
                            "status": {"id": 1, "name": "New"}, "company": {"id": 1}, "closedFlag": false}),
                )
                .unwrap();
            t.attach(&TICKETS, ticket["id"].as_i64().unwrap(), linked[n % linked.len()])
                .unwrap();
        }
    });
}

/// Every agreement's name gains `suffix`, as an operator's edit in ConnectWise would.
fn rename_agreements(world: &World, suffix: &str) {
    use simulators::connectwise::AGREEMENTS;
    world.cw.with_tenant(|t| {
        let agreements: Vec<(i64, String)> = t
            .records(AGREEMENTS.collection)
            .map(|a| {
                (
                    a["id"].as_i64().unwrap(),
                    a["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (id, name) in agreements {
            t.patch(
                &AGREEMENTS,
                id,
                &json!([{"op": "replace", "path": "name", "value": format!("{name} {suffix}")}]),
            )
            .unwrap();
        }
    });
}

/// The batch size that last worked, as the store keeps it.
async fn batch_size(world: &World) -> Option<u64> {
    use shared::store::StoreExt;
    let stored: Option<Value> = world
        .store
        .get(shared::layout::LANSWEEPER_EDIT_BATCH)
        .await
        .unwrap();
    stored.map(|b| b["size"].as_u64().unwrap())
}

/// Lansweeper does not publish whether it takes several mutations in one request: a
/// server that takes at most 4 (then one, the batched form refused outright) gets every
/// edit all the same, the size that worked is remembered, and the next run sends that
/// size from its first request.
///
/// Breaking it looks like: edits failed for the refused batches, or every run paying
/// the refusals again.
#[tokio::test]
async fn batched_edits_halve_to_what_lansweeper_takes_and_remember_it() {
    for cap in [4, 1] {
        let world = synced_world_with(90, Some(cap)).await;
        let report = enrich_with(&world, &settings()).await;
        assert!(report.written > 40, "cap {cap}: {report:?}");
        assert!(report.failed.is_empty(), "cap {cap}: {:?}", report.failed);
        let size = batch_size(&world).await.unwrap();
        assert!(size <= cap as u64, "cap {cap}: remembered {size}");
        let refused = world.ls.control().refusals();
        let refused_edits = refused.get("POST graphql:editAsset").copied().unwrap_or(0);
        assert!(
            (1..=4).contains(&refused_edits),
            "cap {cap}: a few refusals while the size was found, then none: {refused:?}"
        );
        // Every asset holds its values: a second run has nothing to write.
        let again = enrich_with(&world, &settings()).await;
        assert_eq!(again.written, 0, "cap {cap}");
        // The next run that writes starts at the remembered size: no refusal.
        rename_agreements(&world, "renewed");
        let renamed = enrich_with(&world, &settings()).await;
        assert!(renamed.written > 0, "cap {cap}");
        let after = world.ls.control().refusals();
        assert_eq!(
            after.get("POST graphql:editAsset").copied().unwrap_or(0),
            refused_edits,
            "cap {cap}: no further refusal once the size is known"
        );
    }
}

/// An edit Lansweeper refuses inside a batch fails alone: the rest of the batch is
/// written, and the batch size stays (the refusal was the asset's, not the batch's).
#[tokio::test]
async fn an_edit_refused_in_a_batch_fails_alone() {
    let world = synced_world_with(60, None).await;
    let first = enrich_with(&world, &settings()).await;
    assert!(first.written > 20);
    // Lansweeper refuses any value for one field now (its type turned numeric), so every
    // asset whose value of that field changes is refused, at its alias.
    world.ls.with_site(|site| {
        for field in &mut site.data.custom_fields {
            if field.name == "cw_agreement_name" {
                field.field_type = "NUMERIC".into();
            }
        }
    });
    rename_agreements(&world, "renewed");
    let second = enrich_with(&world, &settings()).await;
    assert!(!second.failed.is_empty(), "{second:?}");
    assert!(
        second
            .failed
            .iter()
            .all(|f| f.reason.contains("not a valid")),
        "{:?}",
        second.failed
    );
    assert_eq!(batch_size(&world).await, None, "the size never halved");
}

/// A run that died while reading ConnectWise whole (its invocations timed out, its
/// execution stopped) leaves what it read: the next run goes on from there instead of
/// reading everything again, and ends with the values of a run that was never cut.
///
/// Breaking it looks like: a full read that never fits an invocation, begun again by
/// every run and never finished.
#[tokio::test]
async fn a_full_read_cut_short_is_finished_by_the_next_run_not_begun_again() {
    let cut = synced_world(60).await;
    let whole = synced_world(60).await;
    for world in [&cut, &whole] {
        open_tickets(world, 300);
    }
    whole.cw.control().reset_counts();
    let uncut = enrich_with(&whole, &settings()).await;
    let full_read_requests = whole.cw.control().total();

    // Two invocations under a spent budget, then the run is gone.
    let mut input = shared::states::EnrichInput {
        run_id: Some("run-that-died".into()),
        next: None,
    };
    for _ in 0..2 {
        let output = enrichment::enrich(
            &cut.cw_client,
            &cut.ls_client,
            &cut.store,
            &settings(),
            &input,
            Some(std::time::Instant::now()),
        )
        .await
        .unwrap();
        assert!(
            !output.done && output.edits == 0,
            "still planning: {output:?}"
        );
        input.next = Some(output.next);
    }
    assert!(
        shared::lease::ENRICHMENT
            .release(&cut.store, "run-that-died")
            .await
            .unwrap()
    );
    cut.cw.control().reset_counts();
    let next = enrich_with(&cut, &settings()).await;
    let requests = cut.cw.control().total();
    assert!(next.full_read, "the full read, finished");
    assert!(
        requests + 100 < full_read_requests,
        "the next run read {requests} requests' worth, a full read {full_read_requests}"
    );
    assert_eq!(next.written, uncut.written);
    assert_eq!(portable_values(&cut), portable_values(&whole));
}

/// The enrichment values of every asset by field name, empty ones left out (an empty
/// string clears a field).
fn set_values(world: &World) -> BTreeMap<String, BTreeMap<String, String>> {
    site_values(world)
        .into_iter()
        .map(|(asset, values)| {
            let set = values.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            (asset, set)
        })
        .collect()
}

/// Sets one asset's field (by name) as an operator would, in Lansweeper itself.
fn edit_by_hand(world: &World, asset: &str, field: &str, value: &str) {
    edit_site_by_hand(&world.ls.sites(), asset, field, value);
}

fn edit_site_by_hand(sites: &Sites, asset: &str, field: &str, value: &str) {
    sites.with_site(|site| {
        let key = site
            .data
            .custom_fields
            .iter()
            .find(|f| f.name == field)
            .unwrap()
            .key
            .clone();
        let asset = site
            .data
            .assets
            .iter_mut()
            .find(|a| a["key"] == asset)
            .unwrap();
        for custom in asset["assetCustom"]["fields"].as_array_mut().unwrap() {
            if custom["fieldKey"] == key.as_str() {
                custom["value"] = json!(value);
            }
        }
    });
}

async fn revert(world: &World, settings: &SyncSettings, run_id: &str) -> EnrichRevert {
    shared::operator::revert_enrichment(&world.ls_client, &world.store, settings, run_id)
        .await
        .unwrap()
        .unwrap()
}

/// An enrichment's trail holds, per asset, each field's value before (what the plan
/// read) and after, from what the run read anyway; its revert puts every value back but
/// the one an operator edited since (reported, left as it is), reading the assets a
/// hundred a request; a dry run writes nothing, and a second revert writes nothing.
///
/// Breaking it looks like: an extra Lansweeper read for the trail, a trail value that is
/// not what the asset held, a value left as the run wrote it after the revert, a hand
/// edit overwritten, an `editAsset` from a dry run or from a second revert.
#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: the run, its trail, a hand edit, the dry, real and second reverts"
)]
async fn an_enrichment_is_taken_back_once_but_for_a_value_edited_since() {
    let world = synced_world(60).await;
    let before = set_values(&world);
    let reads = world.ls.control().count("POST graphql:assetResources");
    let report = enrich_with(&world, &settings()).await;
    assert!(report.written > 20, "{report:#?}");
    assert_eq!(
        world.ls.control().count("POST graphql:assetResources") - reads,
        1,
        "the plan's one page of the site: the trail reads nothing more"
    );
    let enriched = set_values(&world);
    let trail = trail::load(&world.store, &report.run_id, System::Lansweeper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trail.entries.len() as u64, report.written);
    for entry in &trail.entries {
        assert!(
            entry
                .url
                .as_deref()
                .unwrap()
                .ends_with(&format!("/asset/{}/summary", entry.asset_key)),
            "{entry:?}"
        );
        assert!(!entry.name.is_empty());
        for change in &entry.fields {
            assert_eq!(
                change.before.as_ref(),
                before[&entry.asset_key].get(&change.field),
                "{entry:?}"
            );
            assert_eq!(
                change.after.as_ref(),
                enriched[&entry.asset_key].get(&change.field),
                "{entry:?}"
            );
        }
    }

    // An operator sets one written field by hand before anyone reverts.
    let edited = trail
        .entries
        .iter()
        .find(|e| e.fields.iter().any(|f| f.field == "cw_total_tickets"))
        .unwrap();
    edit_by_hand(&world, &edited.asset_key, "cw_total_tickets", "999");

    let edits = || world.ls.control().count("POST graphql:editAsset");
    let (written, reads) = (
        edits(),
        world.ls.control().count("POST graphql:assetResources"),
    );
    let mut dry = settings();
    dry.dry_run = true;
    let planned = revert(&world, &dry, &report.run_id).await;
    assert_eq!(edits(), written, "a dry run writes nothing");
    assert_eq!(
        world.ls.control().count("POST graphql:assetResources") - reads,
        1,
        "the run's assets read a hundred a request"
    );
    let done = revert(&world, &settings(), &report.run_id).await;
    assert_eq!(
        done.restore, planned.restore,
        "the dry run said what it wrote"
    );
    assert_eq!(done.written, done.restore.len() as u64);
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    assert!(
        edits() - written < done.restore.len() as u64,
        "several edits a request"
    );
    let now = set_values(&world);
    for (asset, was) in &before {
        let mut expected = was.clone();
        if asset == &edited.asset_key {
            expected.insert("cw_total_tickets".into(), "999".into());
        }
        // The fields the hand-edited asset's other fields went back too.
        assert_eq!(&now[asset], &expected, "asset {asset} is back as it was");
    }
    assert_eq!(done.changed_since.len(), 1, "{:?}", done.changed_since);
    let reported = &done.changed_since[0];
    assert_eq!(reported.asset_key, edited.asset_key);
    assert!(
        reported.reason.contains("cw_total_tickets") && reported.reason.contains("999"),
        "{reported:?}"
    );
    let own = trail::load(&world.store, &done.revert_run_id, System::Lansweeper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.reverts.as_deref(), Some(report.run_id.as_str()));
    assert_eq!(own.entries.len() as u64, done.written);

    let written = edits();
    let again = revert(&world, &settings(), &report.run_id).await;
    assert_eq!(
        again.already_by.as_deref(),
        Some(done.revert_run_id.as_str())
    );
    assert_eq!(edits(), written, "reverted once: no editAsset again");
}

/// A field edited by hand while a revert is writing (after the revert read it, before
/// its batch is written) is left as it is and reported, as one edited before the revert
/// began; every other value goes back.
///
/// Breaking it looks like: a revert that writes what it planned from its first read over
/// a value set since, and reports nothing.
#[tokio::test]
async fn a_hand_edit_made_while_a_revert_writes_is_left_and_reported() {
    let world = synced_world(60).await;
    let before = set_values(&world);
    let report = enrich_with(&world, &settings()).await;
    let mut dry = settings();
    dry.dry_run = true;
    let planned = revert(&world, &dry, &report.run_id).await;
    let last = planned.restore.last().unwrap().clone();
    let (field, _) = last.before.first().unwrap().clone();

    // Once the revert's first batch is written (its quota saved after it), an operator
    // sets a field of the asset the last batch takes back.
    let quota = shared::layout::lansweeper_quota(world.ls_client.token_hash());
    let saves = Mutex::new(0);
    let (sites, asset, by_hand) = (world.ls.sites(), last.asset_key.clone(), field.clone());
    let store = Watched::new(world.store.clone()).before_put(move |key, _| {
        let mut saves = saves.lock().unwrap();
        if key == quota {
            *saves += 1;
            // The first save ends the plan's read; the second, the first batch.
            if *saves == 2 {
                edit_site_by_hand(&sites, &asset, &by_hand, "set by hand");
            }
        }
        Ok(())
    });
    let done =
        shared::operator::revert_enrichment(&world.ls_client, &store, &settings(), &report.run_id)
            .await
            .unwrap()
            .unwrap();
    let now = set_values(&world);
    for (asset, was) in &before {
        let mut expected = was.clone();
        if asset == &last.asset_key {
            expected.insert(field.clone(), "set by hand".into());
        }
        assert_eq!(&now[asset], &expected, "asset {asset}");
    }
    assert_eq!(done.changed_since.len(), 1, "{:?}", done.changed_since);
    let reported = &done.changed_since[0];
    assert_eq!(reported.asset_key, last.asset_key);
    assert!(
        reported.reason.contains(&field) && reported.reason.contains("set by hand"),
        "{reported:?}"
    );
    assert!(done.failed.is_empty(), "{:?}", done.failed);
}

/// A revert whose edits' answers are lost (saved, then a 502 or a dropped connection)
/// on a Lansweeper that refuses more than four edits a request ends as a clean one:
/// run again after it stopped, every value is back and nothing is reported changed.
///
/// Breaking it looks like: a revert that stops for good on a lost answer, a field it
/// wrote before the loss reported "changed since" when run again, a batch refused whole
/// failing its assets, or a finished revert that writes again.
#[tokio::test]
async fn a_revert_under_lost_answers_and_refused_batches_ends_as_a_clean_one() {
    let world = synced_world_with(60, Some(4)).await;
    let before = set_values(&world);
    let report = enrich_with(&world, &settings()).await;
    assert!(
        report.written > 20 && report.failed.is_empty(),
        "{report:#?}"
    );
    // Forget the size the enrichment found: the revert finds it again.
    world
        .store
        .put_raw(
            shared::layout::LANSWEEPER_EDIT_BATCH,
            r#"{"size":20}"#.into(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    world.ls.control().lose_answers_to(
        "graphql:editAsset",
        &[(LostAnswer::BadGateway, 3), (LostAnswer::DropConnection, 4)],
    );
    let mut attempts = 0;
    let done = loop {
        attempts += 1;
        assert!(attempts <= 10, "the revert never finished");
        match shared::operator::revert_enrichment(
            &world.ls_client,
            &world.store,
            &settings(),
            &report.run_id,
        )
        .await
        {
            Ok(done) => break done.unwrap(),
            Err(error) => eprintln!("attempt {attempts} stopped: {error}"),
        }
    };
    assert!(
        world
            .ls
            .control()
            .answers_lost()
            .iter()
            .any(|(_, _, n)| *n > 0),
        "answers were lost"
    );
    world.ls.control().lose_answers(&[]);
    assert!(
        world
            .ls
            .control()
            .refusals()
            .contains_key("POST graphql:editAsset")
    );
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    assert!(done.changed_since.is_empty(), "{:?}", done.changed_since);
    assert_eq!(set_values(&world), before, "every value back");
    let edits = world.ls.control().count("POST graphql:editAsset");
    let again = revert(&world, &settings(), &report.run_id).await;
    assert!(again.already_by.is_some());
    assert_eq!(world.ls.control().count("POST graphql:editAsset"), edits);
}

/// The revert of an enrichment killed after each of its edit requests in turn (Lansweeper
/// saved it, the answer never came back), a field it had yet to take back set by hand
/// while it was stopped, and run again under lost answers: each ends as the
/// uninterrupted revert did, but for the hand edit, left and reported.
///
/// Breaking it looks like: a kill point after which the revert never finishes, calls
/// what it wrote itself "changed since", or writes over the hand edit.
#[tokio::test]
async fn an_enrichment_revert_killed_after_any_of_its_edits_ends_as_an_uninterrupted_one() {
    use lscw_tests::dying::{killed_after_write, saved_writes_of};

    let clean = synced_world(40).await;
    let report = enrich_with(&clean, &settings()).await;
    let (done, kill_points) = saved_writes_of(
        clean.ls.control(),
        revert(&clean, &settings(), &report.run_id),
    )
    .await;
    assert!(
        done.failed.is_empty() && done.changed_since.is_empty(),
        "{done:#?}"
    );
    let expected = set_values(&clean);
    assert!(kill_points > 1, "{kill_points} edit requests");

    for k in 1..=kill_points {
        let world = synced_world(40).await;
        let report = enrich_with(&world, &settings()).await;
        let control = world.ls.control();
        let killed =
            killed_after_write(control, k, revert(&world, &settings(), &report.run_id)).await;
        assert!(killed.is_none(), "killed after write {k}");
        shared::lease::ENRICHMENT
            .force_release(&world.store)
            .await
            .unwrap();

        // A field the revert has yet to take back, set by hand.
        let now = set_values(&world);
        let pending = now.iter().find_map(|(asset, values)| {
            let field = values
                .iter()
                .find(|(field, value)| expected[asset].get(*field) != Some(*value))?
                .0;
            Some((asset.clone(), field.clone()))
        });
        if let Some((asset, field)) = &pending {
            edit_by_hand(&world, asset, field, "set by hand");
        }

        control.lose_answers_to(
            "graphql:editAsset",
            &[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)],
        );
        let resumed = revert(&world, &settings(), &report.run_id).await;
        control.lose_answers(&[]);
        assert!(
            resumed.failed.is_empty(),
            "kill point {k}: {:?}",
            resumed.failed
        );

        let mut want = expected.clone();
        if let Some((asset, field)) = &pending {
            want.get_mut(asset)
                .unwrap()
                .insert(field.clone(), "set by hand".into());
        }
        assert_eq!(set_values(&world), want, "kill point {k}");
        let reported: Vec<&str> = resumed
            .changed_since
            .iter()
            .map(|r| r.asset_key.as_str())
            .collect();
        assert_eq!(
            reported,
            pending
                .iter()
                .map(|(asset, _)| asset.as_str())
                .collect::<Vec<_>>(),
            "kill point {k}: the hand edit, and only it, reported: {:?}",
            resumed.changed_since
        );
    }
}
