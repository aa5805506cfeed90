//! Many clients, one deployment: Lansweeper sites (and rules within them) mapped to
//! ConnectWise companies, against an estate of three sites and five companies.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use shared::enrichment;
use shared::layout;
use shared::mapping;
use shared::pipeline::RunReport;
use shared::store::StoreExt;
use simulators::connectwise::CONFIGURATIONS;
use simulators::lansweeper::SITE_ID;
use simulators::scenario::{CONTOSO_SITE, CUSTOMER_FIELD, SHARED_SITE, TARGET_COMPANY};

use lscw_tests::world::{World, estate, link_of, scenario, settings, sync, sync_on};

/// Company identifier → id, as the tenant has them.
fn company_ids(world: &World) -> HashMap<String, i64> {
    world.cw.with_tenant(|tenant| {
        tenant
            .records("companies")
            .map(|c| {
                (
                    c["identifier"].as_str().unwrap().to_string(),
                    c["id"].as_i64().unwrap(),
                )
            })
            .collect()
    })
}

/// Each asset's key (lower case) → the company the mapping sends it to (None: unmapped).
fn expected_companies(world: &World) -> HashMap<String, Option<&'static str>> {
    let mut expected = HashMap::new();
    for (site, default) in [
        (SITE_ID, Some(TARGET_COMPANY)),
        (CONTOSO_SITE, Some("Contoso")),
        (SHARED_SITE, None),
    ] {
        world.ls.with_site_id(site, |site| {
            for asset in &site.data.assets {
                let customer = asset["assetCustom"]["fields"]
                    .as_array()
                    .and_then(|f| f.iter().find(|f| f["name"] == CUSTOMER_FIELD))
                    .and_then(|f| f["value"].as_str());
                let company = default.or(match customer {
                    Some("Northwind") => Some("Northwind"),
                    Some("Fabrikam") => Some("Fabrikam"),
                    _ => None,
                });
                expected.insert(asset["key"].as_str().unwrap().to_lowercase(), company);
            }
        });
    }
    expected
}

/// Linked configurations: asset key (lower case) → company ids of its configurations.
fn configurations_by_link(world: &World) -> HashMap<String, Vec<i64>> {
    world.cw.with_tenant(|tenant| {
        let mut found: HashMap<String, Vec<i64>> = HashMap::new();
        for record in tenant.records("configurations") {
            let shown = tenant.render(&CONFIGURATIONS, record, "");
            if let Some(link) = link_of(&shown) {
                found
                    .entry(link)
                    .or_default()
                    .push(shown["company"]["id"].as_i64().unwrap());
            }
        }
        found
    })
}

/// The run's conflicts are exactly the scenario's twins, each between two
/// configurations; answers their keys.
fn assert_conflicts_are_the_twins(world: &World, report: &RunReport) -> BTreeSet<String> {
    // Only the first site's assets had configurations before.
    let twins = scenario(world).twins;
    assert!(!twins.is_empty(), "the scenario makes conflicts");
    let conflicted: BTreeSet<String> = report
        .conflicts
        .iter()
        .map(|c| c.asset_key.to_lowercase())
        .collect();
    assert_eq!(
        conflicted, twins,
        "the conflicts are the scenario's twins: {:#?}",
        report.conflicts
    );
    for conflict in &report.conflicts {
        assert!(
            conflict.reason.starts_with("matches 2 configurations")
                && conflict.candidates.len() == 2,
            "{conflict:?}"
        );
    }
    twins
}

fn assert_sections_add_up(report: &RunReport) {
    assert!(report.sections.len() >= 4, "{:#?}", report.sections);
    for section in &report.sections {
        assert_eq!(section.accounted(), section.assets, "{section:#?}");
    }
    let per_site: u64 = report.sections.iter().map(|s| s.assets).sum();
    assert_eq!(per_site, report.assets);
}

/// Every mapped asset has one configuration, in its client's company; none failed; the
/// only conflicts are the scenario's twins, and unmapped assets are written nowhere.
///
/// Breaking it looks like: an asset in another client's company (or in none), a failed
/// asset, or a conflict the scenario did not make.
#[tokio::test]
async fn every_asset_lands_in_its_clients_company_and_nowhere_else() {
    let world = estate(21, 160).await;
    let ids = company_ids(&world);
    let expected = expected_companies(&world);
    let report = sync(&world).await;
    assert_eq!(report.assets as usize, expected.len());
    assert_sections_add_up(&report);

    let unmapped: Vec<&String> = expected
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(k, _)| k)
        .collect();
    assert!(!unmapped.is_empty());
    assert_eq!(report.unmapped.len(), unmapped.len());
    for entry in &report.unmapped {
        assert!(
            entry.reason.contains("custom field \"Customer\" = (none)"),
            "{entry:?}"
        );
    }

    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    let twins = assert_conflicts_are_the_twins(&world, &report);

    let linked = configurations_by_link(&world);
    for (key, company) in &expected {
        match company {
            None => assert!(!linked.contains_key(key), "unmapped {key} was written"),
            Some(_) if twins.contains(key) => {
                assert!(!linked.contains_key(key), "conflicted {key} was written");
            }
            Some(company) => assert_eq!(
                linked.get(key),
                Some(&vec![ids[*company]]),
                "asset {key} must have one configuration, in {company}"
            ),
        }
    }
    for company in ["Contoso", "Northwind", "Fabrikam"] {
        let section = report
            .sections
            .iter()
            .find(|s| s.company.as_deref() == Some(company))
            .unwrap();
        assert!(section.counts.created > 0, "{section:#?}");
    }
    assert!(
        !linked
            .values()
            .flatten()
            .any(|c| *c == ids["ContosoPharma"]),
        "nothing lands in the near-miss company"
    );

    let writes = world.cw.control().writes();
    let again = sync(&world).await;
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "a rerun writes nothing"
    );
    assert_eq!(again.counts.created + again.counts.modified, 0);
    assert_eq!(again.unmapped.len(), unmapped.len());

    // The enrichment covers every mapped site: a Contoso asset shows its configuration.
    let (enriched, _) = enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(enriched.assets, report.assets);
    let urls = world
        .ls
        .with_site_id(CONTOSO_SITE, |site| {
            let field = site
                .data
                .custom_fields
                .iter()
                .find(|f| f.name == "cw_configuration_url")
                .map(|f| f.key.clone())
                .unwrap();
            site.data
                .assets
                .iter()
                .filter(|a| {
                    a["assetCustom"]["fields"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["fieldKey"] == field.as_str()))
                })
                .count()
        })
        .unwrap();
    assert!(urls > 0, "Contoso's assets are enriched in their own site");
}

#[tokio::test]
async fn one_serial_in_two_clients_sites_is_two_configurations_one_per_company() {
    let world = estate(22, 80).await;
    // A BlueLightCo asset whose configuration already exists (with its serial), and a
    // Contoso asset given the same serial.
    let (shared_serial, blue_key) = world.ls.with_site(|site| {
        let asset = site
            .data
            .assets
            .iter()
            .step_by(2)
            .find(|a| {
                a["assetCustom"]["serialNumber"]
                    .as_str()
                    .is_some_and(|s| s.len() > 6)
            })
            .unwrap();
        (
            asset["assetCustom"]["serialNumber"]
                .as_str()
                .unwrap()
                .to_string(),
            asset["key"].as_str().unwrap().to_lowercase(),
        )
    });
    let contoso_key = world
        .ls
        .with_site_id(CONTOSO_SITE, |site| {
            let asset = &mut site.data.assets[0];
            asset["assetCustom"]["serialNumber"] = json!(shared_serial);
            asset["key"].as_str().unwrap().to_lowercase()
        })
        .unwrap();
    let report = sync(&world).await;
    assert!(
        !report
            .conflicts
            .iter()
            .any(|c| [&blue_key, &contoso_key].contains(&&c.asset_key.to_lowercase())),
        "not a conflict: {:#?}",
        report.conflicts
    );
    let ids = company_ids(&world);
    let linked = configurations_by_link(&world);
    assert_eq!(linked[&blue_key], vec![ids[TARGET_COMPANY]]);
    assert_eq!(linked[&contoso_key], vec![ids["Contoso"]]);
    let with_serial = world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .filter(|c| c["serialNumber"] == shared_serial.as_str())
            .count()
    });
    assert!(with_serial >= 2, "one configuration per company");
}

#[tokio::test]
async fn a_site_moved_to_another_company_is_reported_and_nothing_moves() {
    let world = estate(23, 80).await;
    sync(&world).await;
    let before = configurations_by_link(&world);
    let mut moved = mapping::stored(&world.store).await.unwrap().unwrap();
    let version = moved.version;
    moved
        .sites
        .iter_mut()
        .find(|s| s.site == CONTOSO_SITE)
        .unwrap()
        .company = Some("Northwind".into());
    mapping::save(&world.store, moved, version).await.unwrap();

    let writes = world.cw.control().writes();
    let report = sync(&world).await;
    assert_eq!(
        world.cw.control().writes(),
        writes,
        "nothing moves, nothing is created"
    );
    assert_eq!(configurations_by_link(&world), before);
    let section = report
        .sections
        .iter()
        .find(|s| s.site == CONTOSO_SITE)
        .unwrap();
    assert_eq!(section.company.as_deref(), Some("Northwind"));
    assert_eq!(section.conflicts, section.assets, "{section:#?}");
    let conflict = report
        .conflicts
        .iter()
        .find(|c| c.reason.contains("the mapping says company Northwind"))
        .unwrap();
    assert!(
        conflict.reason.starts_with("linked configuration ")
            && conflict.reason.contains("is in company"),
        "{}",
        conflict.reason
    );
    assert_eq!(conflict.candidates.len(), 1);
}

#[tokio::test]
async fn an_invalid_mapping_is_refused_before_any_request() {
    let world = estate(24, 40).await;
    let invalid = json!({"version": 9, "sites": [
        {"site": SITE_ID, "company": TARGET_COMPANY},
        {"site": SHARED_SITE, "rules": [
            {"when": {"ipRange": {"cidr": "10.0.0.0/99"}}, "company": "Northwind"}
        ]}
    ]});
    world
        .store
        .put(
            layout::MAPPING,
            &invalid,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let connectwise_before = world.cw.control().total();
    let error = sync_on(&world, &world.store).await.unwrap_err().to_string();
    assert!(error.contains("the mapping is not valid"), "{error}");
    assert!(error.contains("`10.0.0.0/99`"), "{error}");
    assert_eq!(
        world.cw.control().total(),
        connectwise_before,
        "no ConnectWise request"
    );
    assert_eq!(world.ls.control().total(), 0, "no Lansweeper request");

    // A mapping naming no company ConnectWise has stops before any write.
    let unknown = json!({"sites": [{"site": SITE_ID, "company": "NoSuchClient"}]});
    world
        .store
        .put(
            layout::MAPPING,
            &unknown,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let error = sync_on(&world, &world.store).await.unwrap_err().to_string();
    assert!(
        error.contains("none of the mapping's companies (NoSuchClient)"),
        "{error}"
    );
    assert_eq!(world.cw.control().writes(), 0);

    // One client's company gone from ConnectWise: its assets fail alone, with why.
    let mut one_gone = lscw_tests::world::estate_mapping();
    one_gone.sites[1].company = Some("NoSuchClient".into());
    world
        .store
        .put(
            layout::MAPPING,
            &one_gone,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let report = sync(&world).await;
    let section = report
        .sections
        .iter()
        .find(|s| s.site == CONTOSO_SITE)
        .unwrap();
    assert_eq!(section.failed, section.assets, "{section:#?}");
    assert!(report.failed.iter().any(|f| {
        f.reason
            .contains("company NoSuchClient, which ConnectWise does not have")
    }));
    assert!(report.counts.created > 0, "the other clients are synced");
}

#[tokio::test]
async fn a_site_the_token_lost_fails_alone_and_the_other_clients_are_synced() {
    let world = estate(25, 40).await;
    let mut mapping = lscw_tests::world::estate_mapping();
    mapping.sites.insert(
        1,
        serde_json::from_value(json!({"site": "revoked-site", "company": "Contoso"})).unwrap(),
    );
    world
        .store
        .put(
            layout::MAPPING,
            &mapping,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let report = sync(&world).await;
    let revoked = report
        .sections
        .iter()
        .find(|s| s.site == "revoked-site")
        .unwrap();
    assert!(
        revoked
            .error
            .as_deref()
            .is_some_and(|e| e.contains("refused access to site revoked-site")),
        "{revoked:#?}"
    );
    assert_eq!(
        report.status,
        shared::pipeline::RunStatus::SucceededWithFailures
    );
    for site in [SITE_ID, CONTOSO_SITE, SHARED_SITE] {
        assert!(
            report
                .sections
                .iter()
                .any(|s| s.site == site && s.counts.created > 0),
            "{site} synced: {:#?}",
            report.sections
        );
    }
}

/// Whether a configuration is retired as the sync retires them (inactive).
fn inactive(world: &World) -> Vec<String> {
    world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .map(|c| tenant.render(&CONFIGURATIONS, c, ""))
            .filter(|c| c["activeFlag"] == false)
            .filter_map(|c| link_of(&c))
            .collect()
    })
}

/// Breaking it looks like: a client's site the token can no longer read holds every
/// other client's retirements run after run, or `lscw retire --approve` retires the
/// devices of the site nobody could read.
#[tokio::test]
async fn a_site_nobody_can_read_retires_nothing_and_the_other_clients_retire_theirs() {
    let world = estate(25, 40).await;
    sync(&world).await;
    assert!(inactive(&world).is_empty());
    // The token loses Contoso's site; an asset of the first client's site leaves.
    world
        .ls
        .with_site_id(CONTOSO_SITE, |site| {
            site.data.id = "contoso-site-moved".into();
        })
        .unwrap();
    let left = world
        .ls
        .with_site_id(SITE_ID, |site| {
            let asset = site.data.assets.pop().unwrap();
            let data = site.data.clone();
            *site = simulators::lansweeper::Site::new(data).unwrap();
            asset["key"].as_str().unwrap().to_lowercase()
        })
        .unwrap();
    let report = sync(&world).await;
    assert_eq!(
        inactive(&world),
        std::slice::from_ref(&left),
        "only the asset that left: {report:#?}"
    );
    assert_eq!(report.counts.retired, 1);
    let guard = report
        .guard
        .expect("the report says why Contoso retired nothing");
    assert!(
        guard
            .reason
            .contains("site contoso-site was not read whole"),
        "{}",
        guard.reason
    );
    let approval = shared::operator::approve_retirement(
        &world.cw_client,
        &world.store,
        &settings(),
        &report.run_id,
    )
    .await;
    assert!(
        approval.is_err_and(|e| e.to_string().contains("held no retirement")),
        "nothing of the unread site is approvable"
    );
    assert_eq!(inactive(&world), [left]);
}

/// Breaking it looks like: the token loses one client's site and the whole enrichment
/// ends `Lansweeper refused access`, no client enriched.
#[tokio::test]
async fn the_enrichment_of_the_other_sites_goes_on_when_one_cannot_be_read() {
    let world = estate(25, 40).await;
    sync(&world).await;
    world
        .ls
        .with_site_id(CONTOSO_SITE, |site| {
            site.data.id = "contoso-site-moved".into();
        })
        .unwrap();
    let (enriched, _) = enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(enriched.sites_unread.len(), 1, "{enriched:#?}");
    assert!(enriched.sites_unread[0].contains("refused access to site contoso-site"));
    assert!(
        enriched.written > 0,
        "the other sites were enriched: {enriched:#?}"
    );
}
