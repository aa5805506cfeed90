//! What the real APIs refuse or store differently, through a whole sync: emoji at the
//! length limits, control characters, names ConnectWise's collation holds equal, two
//! new assets sharing a serial. ConnectWise's resulting state is checked directly.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashMap;

use serde_json::{Value, json};
use shared::pipeline::RunStatus;
use simulators::connectwise::ReferenceRefusal;

use lscw_tests::world::{state, sync, world, world_of};

/// Hostile values (emoji at the length limits, control characters, names ConnectWise
/// holds equal, twins sharing a serial) sync with no request refused by either API (no
/// 4xx answer, no bulk item refused), nothing failed, and no duplicate.
///
/// Breaking it looks like: a 400 for a name over ConnectWise's limit or with a control
/// character, a second "Rotterdam DC", or a twin written.
#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: each hostile value set up beside the check it needs"
)]
async fn a_site_of_hostile_values_syncs_without_a_refused_request_or_a_duplicate() {
    let world = world(40).await;
    let rocket_name = format!("{}🚀", "a".repeat(99));
    let emoji_name = "😀".repeat(60);
    world.ls.with_site(|site| {
        let base = site.data.assets[1].clone();
        let mut add = |key: &str, name: &str, edit: &dyn Fn(&mut Value)| {
            let mut asset = base.clone();
            asset["key"] = json!(key);
            asset["assetBasicInfo"]["name"] = json!(name);
            asset["assetCustom"]["serialNumber"] = json!(format!("SER-{key}"));
            asset["assetBasicInfo"]["mac"] = Value::Null;
            edit(&mut asset);
            site.add_asset(asset).unwrap();
        };
        add("rocket", &rocket_name, &|_| {});
        add("emoji", &emoji_name, &|a| {
            a["assetCustom"]["location"] = json!("🏢".repeat(30));
        });
        add("nul", "pc\u{0}-with\u{7}-controls\u{1b}", &|a| {
            a["assetCustom"]["model"] = json!("Model\u{0}X");
        });
        for (n, location) in ["Rotterdam DC", "rotterdam dc", "ROTTERDAM DC  "]
            .iter()
            .enumerate()
        {
            add(&format!("loc-{n}"), &format!("pc-loc-{n}"), &|a| {
                a["assetCustom"]["location"] = json!(location);
            });
        }
        for (n, maker) in ["UBIQUITI", "Ubiquiti", "ubiquiti"].iter().enumerate() {
            add(&format!("maker-{n}"), &format!("pc-maker-{n}"), &|a| {
                a["assetCustom"]["manufacturer"] = json!(maker);
            });
        }
        for n in 0..2 {
            add(&format!("twin-{n}"), &format!("pc-twin-{n}"), &|a| {
                a["assetCustom"]["serialNumber"] = json!("SHARED-SERIAL-1");
            });
        }
    });
    let report = sync(&world).await;
    for (api, control) in [
        ("ConnectWise", world.cw.control()),
        ("Lansweeper", world.ls.control()),
    ] {
        assert_eq!(
            control.refused(),
            0,
            "{api} refused nothing: {:#?}",
            control.refusals()
        );
    }
    assert_eq!(
        report.status,
        RunStatus::SucceededWithFailures,
        "the twins conflict"
    );
    assert!(
        report.failed.is_empty(),
        "nothing refused: {:#?}",
        report.failed
    );
    let twins: Vec<&str> = report
        .conflicts
        .iter()
        .filter(|c| c.asset_key.starts_with("twin-"))
        .map(|c| c.reason.as_str())
        .collect();
    assert_eq!(twins.len(), 2, "{:#?}", report.conflicts);
    assert!(twins[0].contains("share serial number SHARED-SERIAL-1"));

    let (linked, _) = state(&world.cw);
    assert!(!linked.contains_key("twin-0") && !linked.contains_key("twin-1"));
    let rocket = linked["rocket"]["name"].as_str().unwrap();
    assert!(rocket.encode_utf16().count() <= 100, "{rocket}");
    assert!(rocket.starts_with("aaaa"));
    let emoji = linked["emoji"]["name"].as_str().unwrap();
    assert!(emoji.encode_utf16().count() <= 100 && emoji.starts_with('😀'));
    let location = linked["emoji"]["location"].as_str().unwrap();
    assert!(location.encode_utf16().count() <= 50, "{location}");
    assert_eq!(linked["nul"]["name"], "pc-with-controls");

    world.cw.with_tenant(|tenant| {
        // No control character anywhere in what ConnectWise holds.
        for collection in ["configurations", "locations", "manufacturers"] {
            for record in tenant.records(collection) {
                let text = record.to_string();
                let decoded: Value = serde_json::from_str(&text).unwrap();
                let mut stack = vec![&decoded];
                while let Some(value) = stack.pop() {
                    match value {
                        Value::String(s) => assert!(
                            !s.chars().any(|c| c.is_control() && c != '\n'),
                            "{collection}: {s:?}"
                        ),
                        Value::Array(items) => stack.extend(items),
                        Value::Object(map) => stack.extend(map.values()),
                        _ => {}
                    }
                }
            }
        }
        // One reference per name as ConnectWise compares names.
        for (collection, field) in [("locations", "name"), ("manufacturers", "name")] {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for record in tenant.records(collection) {
                let name = record[field].as_str().unwrap_or_default();
                *seen.entry(name.trim_end().to_lowercase()).or_default() += 1;
            }
            let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "{collection}: {twice:?}");
        }
    });
    let rotterdam = report
        .references_created
        .values()
        .flatten()
        .filter(|name| name.to_lowercase().starts_with("rotterdam"))
        .count();
    assert_eq!(rotterdam, 1, "{:#?}", report.references_created);
    let again = sync(&world).await;
    assert_eq!(
        (again.counts.created, again.counts.modified),
        (0, 0),
        "{again:#?}"
    );
}

/// Breaking it looks like: a tenant whose custom fields are captioned in capitals shows
/// the sync no link, so an answer lost after a saved creation makes a second
/// configuration (40 of 80 assets had two), and every rerun writes again.
#[tokio::test]
async fn captions_in_capitals_are_the_sync_s_fields_and_nothing_is_created_twice() {
    let world = world_of(9, 80, |tenant| {
        let mut data = tenant.to_data();
        for field in &mut data.configuration_custom_fields {
            field.caption = field.caption.to_uppercase();
        }
        *tenant = simulators::connectwise::Tenant::from_data(data).unwrap();
    })
    .await;
    world
        .cw
        .control()
        .lose_answers(&[(simulators::control::LostAnswer::BadGateway, 2)]);
    let first = sync(&world).await;
    assert!(first.counts.created > 0, "{first:#?}");
    // Panics on an asset with two configurations.
    let (linked, _) = state(&world.cw);
    world.cw.control().lose_answers(&[]);
    let again = sync(&world).await;
    assert!(again.failed.is_empty(), "{:#?}", again.failed);
    let settled = sync(&world).await;
    assert_eq!(
        (settled.counts.created, settled.counts.modified),
        (0, 0),
        "the links are seen: nothing left to write"
    );
    let (after, _) = state(&world.cw);
    assert!(after.len() >= linked.len());
    assert_eq!(after.len(), 80 - settled.conflicts.len(), "{settled:#?}");
}

/// Breaking it looks like: a client whose company identifier is made of digits has its
/// assets written into whichever company has that number as its id.
#[tokio::test]
async fn a_company_identifier_made_of_digits_is_that_company_not_an_id() {
    let decoy_id = 1042;
    let world = world_of(9, 40, |tenant| {
        let mut data = tenant.to_data();
        let companies = data.collections.get_mut("companies").unwrap();
        let target = companies
            .iter_mut()
            .find(|c| c["identifier"] == simulators::scenario::TARGET_COMPANY)
            .unwrap();
        target["identifier"] = json!(decoy_id.to_string());
        assert_ne!(target["id"], decoy_id);
        companies.push(json!({"id": decoy_id, "identifier": "Decoy", "name": "Decoy Ltd"}));
        *tenant = simulators::connectwise::Tenant::from_data(data).unwrap();
    })
    .await;
    let target_id = world.cw.with_tenant(|tenant| {
        tenant
            .records("companies")
            .find(|c| c["identifier"].as_str() == Some("1042"))
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    });
    let settings = shared::settings::SyncSettings {
        target_company: decoy_id.to_string(),
        ..lscw_tests::world::settings()
    };
    let report = shared::pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings,
        &|_| {},
    )
    .await
    .unwrap();
    assert!(report.counts.created > 0, "{report:#?}");
    assert!(
        report
            .conflicts
            .iter()
            .all(|c| !c.reason.contains("the mapping says")),
        "{:#?}",
        report.conflicts
    );
    let companies: Vec<i64> = world.cw.with_tenant(|tenant| {
        tenant
            .records("configurations")
            .filter_map(|c| c["company"]["id"].as_i64())
            .collect()
    });
    assert!(
        companies.iter().all(|&c| c != decoy_id),
        "nothing in the decoy"
    );
    assert!(companies.contains(&target_id));
    let mapping = shared::mapping::Mapping {
        version: 0,
        sites: vec![
            serde_json::from_value(json!({"site": "s", "company": decoy_id.to_string()})).unwrap(),
        ],
    };
    let known = [
        (target_id, decoy_id.to_string()),
        (decoy_id, "Decoy".into()),
    ];
    let refused = mapping
        .check_known(&["s".to_string()], &known)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("the identifier of company"), "{refused}");
}

/// A manufacturer deleted (or merged into another) in ConnectWise after the sync cached
/// its id: the next run's creations that use it are refused as naming a missing record.
/// The reference is dropped from the cache, resolved again (created anew here, its name
/// gone too) and the refused items sent once more in the same run, whatever shape the
/// refusal takes: the member named as `manufacturer`, `manufacturer/id` or
/// `manufacturer.id`, only in a message, or the bulk request refused whole.
///
/// Breaking it looks like: every new asset of that manufacturer failed `… not found` run
/// after run until the cache expires a day later (5 of 5 measured), on a tenant whose
/// refusal is worded otherwise than the one the healing was written for.
#[tokio::test]
async fn a_reference_deleted_behind_the_cache_is_resolved_again_in_the_same_run() {
    for shape in ReferenceRefusal::ALL {
        reference_deleted_behind_the_cache(shape).await;
    }
}

async fn reference_deleted_behind_the_cache(shape: ReferenceRefusal) {
    let world = world(30).await;
    world.cw.with_tenant(|t| t.reference_refusal = shape);
    let first = sync(&world).await;
    assert!(first.failed.is_empty(), "{:#?}", first.failed);
    // Two manufacturers deleted (a request refused whole names one at a time), and one
    // kept: its assets share the batch, refused only for the others'.
    let (bases, makers) = world.ls.with_site(|site| {
        let mut bases: Vec<Value> = Vec::new();
        for asset in &site.data.assets {
            let maker = &asset["assetCustom"]["manufacturer"];
            if maker.is_string()
                && bases
                    .iter()
                    .all(|b| &b["assetCustom"]["manufacturer"] != maker)
            {
                bases.push(asset.clone());
            }
        }
        bases.truncate(3);
        let makers: Vec<String> = bases
            .iter()
            .map(|b| {
                b["assetCustom"]["manufacturer"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        (bases, makers)
    });
    assert_eq!(makers.len(), 3, "three manufacturers in the site");
    let manufacturers = *simulators::connectwise::RESOURCES
        .iter()
        .find(|r| r.collection == "manufacturers")
        .unwrap();
    let id_of = |maker: &str| {
        world.cw.with_tenant(|t| {
            t.records("manufacturers")
                .find(|m| m["name"].as_str() == Some(maker))
                .unwrap()["id"]
                .as_i64()
                .unwrap()
        })
    };
    let deleted: Vec<i64> = makers[..2].iter().map(|m| id_of(m)).collect();
    world.cw.with_tenant(|t| {
        for id in &deleted {
            t.delete(manufacturers, *id).unwrap();
        }
    });
    world.ls.with_site(|site| {
        for (b, base) in bases.iter().enumerate() {
            for n in 0..2 {
                let mut asset = base.clone();
                asset["key"] = json!(format!("after-delete-{b}-{n}"));
                asset["assetBasicInfo"]["name"] = json!(format!("pc-after-delete-{b}-{n}"));
                asset["assetCustom"]["serialNumber"] = json!(format!("SER-AFTER-{b}-{n}"));
                asset["assetBasicInfo"]["mac"] = Value::Null;
                site.add_asset(asset).unwrap();
            }
        }
    });
    let second = sync(&world).await;
    assert!(second.failed.is_empty(), "{shape:?}: {:#?}", second.failed);
    assert!(second.counts.created >= 6, "{shape:?}: {second:#?}");
    for (maker, deleted) in makers.iter().zip(&deleted) {
        assert_ne!(
            id_of(maker),
            *deleted,
            "{shape:?}: {maker} made again under a new id"
        );
    }
    // Every new configuration, the bystanders' too, points at its manufacturer.
    let (linked, _) = state(&world.cw);
    for (b, maker) in makers.iter().enumerate() {
        for n in 0..2 {
            assert_eq!(
                linked[&format!("after-delete-{b}-{n}")]["manufacturer"],
                maker.as_str(),
                "{shape:?}"
            );
        }
    }
    let dangling = world.cw.with_tenant(|t| {
        t.records("configurations")
            .filter(|c| deleted.iter().any(|d| c["manufacturer"]["id"] == *d))
            .count()
    });
    assert_eq!(
        dangling, 0,
        "{shape:?}: no configuration left naming a deleted one"
    );
    let third = sync(&world).await;
    let settled = (
        third.counts.created,
        third.counts.modified,
        third.failed.len(),
    );
    assert_eq!(settled, (0, 0, 0), "{shape:?}: settled");
}

/// New type and manufacturer names that differ only in case, each first created under
/// an answer lost after ConnectWise saved it: one reference each, and no asset fails for
/// the case variant ("already exists").
///
/// Breaking it looks like: the variant's creation sent and refused as existing, its
/// assets failed for the run.
#[tokio::test]
async fn case_variants_of_a_reference_made_under_lost_answers_are_one_reference() {
    let world = world(20).await;
    world.ls.with_site(|site| {
        let base = site.data.assets[1].clone();
        for (n, (kind, maker)) in [
            ("Thin Client", "Igel Technology"),
            ("THIN CLIENT", "IGEL TECHNOLOGY"),
            ("thin client ", "igel technology"),
        ]
        .iter()
        .enumerate()
        {
            let mut asset = base.clone();
            asset["key"] = json!(format!("variant-{n}"));
            asset["assetBasicInfo"]["name"] = json!(format!("pc-variant-{n}"));
            asset["assetBasicInfo"]["type"] = json!(kind);
            asset["assetCustom"]["manufacturer"] = json!(maker);
            asset["assetCustom"]["serialNumber"] = json!(format!("SER-VARIANT-{n}"));
            asset["assetBasicInfo"]["mac"] = Value::Null;
            site.add_asset(asset).unwrap();
        }
    });
    world
        .cw
        .control()
        .lose_answers(&[(simulators::control::LostAnswer::BadGateway, 2)]);
    let report = sync(&world).await;
    let lost = world
        .cw
        .control()
        .answers_lost_at("POST /company/configurations/types")
        + world
            .cw
            .control()
            .answers_lost_at("POST /procurement/manufacturers");
    assert!(lost >= 1, "a reference's creation lost its answer");
    world.cw.control().lose_answers(&[]);
    let variants: Vec<_> = report
        .failed
        .iter()
        .filter(|f| f.asset_key.starts_with("variant-"))
        .collect();
    assert!(variants.is_empty(), "{variants:#?}");
    let (linked, _) = state(&world.cw);
    for n in 0..3 {
        assert!(
            linked.contains_key(&format!("variant-{n}")),
            "variant-{n} created"
        );
    }
    let count = |collection: &str, name: &str| {
        world.cw.with_tenant(|t| {
            t.records(collection)
                .filter(|r| {
                    r["name"]
                        .as_str()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
                })
                .count()
        })
    };
    assert_eq!(count("configurationTypes", "thin client"), 1);
    assert_eq!(count("manufacturers", "igel technology"), 1);
    let refused = world.cw.control().refusals();
    for creation in [
        "POST /company/configurations/types",
        "POST /procurement/manufacturers",
    ] {
        assert_eq!(
            refused.get(creation),
            None,
            "{creation} refused: {refused:?}"
        );
    }
}

/// A name's creation that failed (its answer lost, or refused) is not sent again in the
/// same run under another spelling of the name: a creation whose answer was lost may
/// well be saved, and ConnectWise compares names without case. The variants' assets fail
/// with the first spelling's reason; the next run resolves the name once for all.
///
/// Breaking it looks like: `POST …/types {"name":"access point"}` sent after `Access
/// Point` was saved with its answer lost, refused as already existing.
#[tokio::test]
async fn a_variant_of_a_name_whose_creation_failed_is_not_sent_in_that_run() {
    let world = world(20).await;
    world.ls.with_site(|site| {
        let base = site.data.assets[1].clone();
        for (n, kind) in ["Access Point", "ACCESS POINT", "access point"]
            .iter()
            .enumerate()
        {
            let mut asset = base.clone();
            asset["key"] = json!(format!("variant-{n}"));
            asset["assetBasicInfo"]["name"] = json!(format!("ap-{n}"));
            asset["assetBasicInfo"]["type"] = json!(kind);
            asset["assetCustom"]["serialNumber"] = json!(format!("SER-AP-{n}"));
            asset["assetBasicInfo"]["mac"] = Value::Null;
            site.add_asset(asset).unwrap();
        }
    });
    world.cw.control().record_requests(true);
    // The creations of the name, however spelt (other new types are created besides).
    let posts = || {
        world
            .cw
            .control()
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/company/configurations/types")
            .filter(|s| {
                s.body
                    .as_ref()
                    .and_then(|b| b["name"].as_str())
                    .is_some_and(|name| name.trim().eq_ignore_ascii_case("access point"))
            })
            .count()
    };
    world
        .cw
        .control()
        .fail_next(1, 400, None, Some("POST /company/configurations/types"));
    let first = sync(&world).await;
    assert_eq!(posts(), 1, "one creation for the three spellings");
    let variants: Vec<_> = first
        .failed
        .iter()
        .filter(|f| f.asset_key.starts_with("variant-"))
        .collect();
    assert_eq!(variants.len(), 3, "{:#?}", first.failed);
    let second = sync(&world).await;
    assert_eq!(posts(), 2, "made once, by the next run");
    assert!(
        second
            .failed
            .iter()
            .all(|f| !f.asset_key.starts_with("variant-")),
        "{:#?}",
        second.failed
    );
    let (linked, _) = state(&world.cw);
    for n in 0..3 {
        assert!(
            linked[&format!("variant-{n}")]["type"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("access point")
        );
    }
}

/// An MSP that starts using configurations with this product: no configuration in
/// ConnectWise yet, and not the sync's custom fields either (only other screens' fields,
/// one of them captioned `ls_asset_id` on tickets). The sync says what to set; with the
/// configurations screen named, `lscw doctor --fix`'s creation makes the four fields
/// (once: again, it makes nothing), and the sync then creates configurations with every
/// field set, `CW_CUSTOM_FIELD_IDS` unset.
///
/// Breaking it looks like: a new tenant that cannot start, or the tickets screen's field
/// taken for the configurations' link.
#[tokio::test]
async fn an_empty_tenant_gets_its_custom_fields_made_then_syncs() {
    use simulators::connectwise::{CONFIGURATION_POD, CONFIGURATIONS};
    let world = world_of(9, 12, |tenant| {
        let configurations: Vec<i64> = tenant
            .records("configurations")
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        for id in configurations {
            tenant.delete(&CONFIGURATIONS, id).unwrap();
        }
        lscw_tests::drop_sync_fields(tenant);
    })
    .await;
    let settings = lscw_tests::world::settings();
    let unstarted = shared::pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings,
        &|_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(unstarted.contains("CW_CONFIGURATION_POD_ID"), "{unstarted}");

    let named = shared::settings::SyncSettings {
        configuration_pod_id: Some(CONFIGURATION_POD),
        ..settings.clone()
    };
    let missing = shared::custom_fields::resolve(&world.cw_client, &named)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("ls_asset_id") && missing.contains("lscw doctor --fix"),
        "the tickets screen's ls_asset_id is not the configurations': {missing}"
    );
    let made = shared::custom_fields::find_or_create(&world.cw_client, &named, true)
        .await
        .unwrap();
    assert_eq!(made.created.len(), 4, "{made:?}");
    let again = shared::custom_fields::find_or_create(&world.cw_client, &named, true)
        .await
        .unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.ids, made.ids);
    let types: HashMap<String, String> = world.cw.with_tenant(|t| {
        t.records("userDefinedFields")
            .filter(|d| d["podId"] == CONFIGURATION_POD)
            .map(|d| {
                (
                    d["caption"].as_str().unwrap().to_string(),
                    d["fieldTypeIdentifier"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    });
    assert_eq!(types["ls_software"], "TextArea");
    assert_eq!(types["ls_asset_id"], "Text");

    let report = shared::pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &named,
        &|_| {},
    )
    .await
    .unwrap();
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert_eq!(report.counts.created, 12, "{report:#?}");
    let (linked, _) = state(&world.cw);
    assert_eq!(linked.len(), 12, "every configuration carries its link");
    let unset: Vec<String> = world.cw.with_tenant(|t| {
        t.records("configurations")
            .flat_map(|c| c["customFields"].as_array().cloned().unwrap_or_default())
            .filter(|f| {
                f["caption"] != "ls_software"
                    && f["value"].as_str().is_none_or(|v| v.trim().is_empty())
            })
            .map(|f| f["caption"].to_string())
            .collect()
    });
    assert!(unset.is_empty(), "fields left unset: {unset:?}");
}

/// A tenant with configurations that lacks one of the sync's fields: `--fix` finds the
/// configurations' screen from a field they show (no setting needed), makes the missing
/// field there, and leaves a field of the same caption and another type alone.
///
/// Breaking it looks like: the field made on the wrong screen, or a Number field reused
/// for text.
#[tokio::test]
async fn a_missing_field_is_made_on_the_configurations_screen_a_wrong_typed_one_never_reused() {
    use simulators::connectwise::{CONFIGURATION_POD, USER_DEFINED_FIELDS};
    let drop_field = |caption: &'static str| {
        move |tenant: &mut simulators::connectwise::Tenant| {
            let id = tenant
                .records("userDefinedFields")
                .find(|d| d["podId"] == CONFIGURATION_POD && d["caption"] == caption)
                .unwrap()["id"]
                .as_i64()
                .unwrap();
            tenant.delete(&USER_DEFINED_FIELDS, id).unwrap();
        }
    };
    let world = world_of(9, 6, drop_field("ls_asset_location")).await;
    let settings = lscw_tests::world::settings();
    let made = shared::custom_fields::find_or_create(&world.cw_client, &settings, true)
        .await
        .unwrap();
    assert_eq!(made.created, ["ls_asset_location"]);
    let on_screen = world.cw.with_tenant(|t| {
        t.records("userDefinedFields")
            .filter(|d| d["caption"] == "ls_asset_location")
            .map(|d| d["podId"].as_i64().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(on_screen, [CONFIGURATION_POD]);

    let world = world_of(9, 6, |tenant| {
        drop_field("ls_software")(tenant);
        tenant
            .create(
                &USER_DEFINED_FIELDS,
                &json!({"podId": CONFIGURATION_POD, "caption": "LS_SOFTWARE", "sequenceNumber": 9,
                        "fieldTypeIdentifier": "Number"}),
            )
            .unwrap();
    })
    .await;
    let refused = shared::custom_fields::find_or_create(&world.cw_client, &settings, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("type Number") && refused.contains("neither changed nor reused"),
        "{refused}"
    );
    let numbers = world.cw.with_tenant(|t| {
        t.records("userDefinedFields")
            .filter(|d| {
                d["caption"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case("ls_software"))
            })
            .count()
    });
    assert_eq!(numbers, 1, "no second ls_software made beside it");
}
