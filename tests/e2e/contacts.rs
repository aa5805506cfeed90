//! A configuration's contact from its asset's last logged-on user: found by e-mail, then
//! by first and last names, exactly one or reported; a contact set by hand kept under
//! the default policy (`fill`); the company's contacts read once a run.
//!
//! What a user who changes does: under `fill` (the default) a configuration's contact,
//! once set, stays, whoever set it: ConnectWise does not say whether the sync or a
//! person chose it, and the sync keeps no record of what it wrote, so following the user
//! could overwrite the service desk's choice. Under `contact: lansweeper` the contact
//! follows the user whenever the new user is exactly one contact.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::{Value, json};
use shared::pipeline::RunReport;
use shared::policy::FieldPolicies;
use simulators::connectwise::{CONFIGURATIONS, CONTACTS, Tenant};
use simulators::scenario::TARGET_COMPANY;

use lscw_tests::world::{World, link_of, settings, sync_with, world_of};

const MAIL: &str = "bluelight.example";

/// The contacts of the scenario's company: `(first, last, e-mail)`.
const PEOPLE: &[(&str, &str, Option<&str>)] = &[
    ("John", "Smith", Some("John.Smith@bluelight.example")),
    ("Jane", "Doe", Some("jane.doe@bluelight.example")),
    ("Ann", "Lee", None),
    ("Pat", "Kim", None),
    ("Pat", "Kim", Some("pk@elsewhere.example")),
    ("Old", "Timer", Some("nobody@bluelight.example")),
];

/// The users given to the first assets: `(userName, userDomain)`.
const USERS: &[(&str, Option<&str>)] = &[
    ("john.smith", Some(MAIL)),           // e-mail, user@domain
    ("ann.lee", Some(MAIL)),              // no e-mail: by name
    ("pat.kim", Some("BLUELIGHT")),       // two by name: reported
    ("nobody", Some(MAIL)),               // no one: reported
    ("JANE.DOE@bluelight.example", None), // a user principal name
];

struct Estate {
    world: World,
    /// Contact ids in the order of [`PEOPLE`].
    contacts: Vec<i64>,
    /// Asset keys in the order of [`USERS`].
    keys: Vec<String>,
}

fn add_contacts(tenant: &mut Tenant) -> Vec<i64> {
    let company = tenant
        .records("companies")
        .find(|c| c["identifier"] == TARGET_COMPANY)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // Old Timer is inactive, with the address `nobody` would have: never a candidate.
    let mut ids: Vec<i64> = Vec::new();
    for (n, (first, last, email)) in PEOPLE.iter().enumerate() {
        let items: Vec<Value> = email
            .map(|e| json!({"type": {"id": 1, "name": "Email"}, "value": e, "communicationType": "Email", "defaultFlag": true}))
            .into_iter()
            .chain([json!({"type": {"id": 2, "name": "Direct"}, "value": format!("555-01{n:02}"), "communicationType": "Phone"})])
            .collect();
        let body = json!({"firstName": first, "lastName": last, "company": {"id": company},
            "communicationItems": items, "inactiveFlag": *first == "Old"});
        ids.push(
            tenant.create(&CONTACTS, &body).unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids
}

async fn estate() -> Estate {
    let mut contacts = Vec::new();
    let world = world_of(9, 30, |tenant| contacts = add_contacts(tenant)).await;
    let keys = world.ls.with_site(|site| {
        site.data
            .assets
            .iter_mut()
            .take(USERS.len())
            .zip(USERS)
            .map(|(asset, (user, domain))| {
                asset["assetBasicInfo"]["userName"] = json!(user);
                if let Some(domain) = domain {
                    asset["assetBasicInfo"]["userDomain"] = json!(domain);
                }
                asset["key"].as_str().unwrap().to_string()
            })
            .collect()
    });
    Estate {
        world,
        contacts,
        keys,
    }
}

/// The configuration linked to `key`, as ConnectWise shows it.
fn linked(world: &World, key: &str) -> Value {
    world.cw.with_tenant(|t| {
        t.records("configurations")
            .map(|r| t.render(&CONFIGURATIONS, r, ""))
            .find(|c| link_of(c).as_deref() == Some(&key.to_lowercase()))
            .unwrap()
    })
}

fn contact_of(world: &World, key: &str) -> Option<i64> {
    linked(world, key)["contact"]["id"].as_i64()
}

fn reason_of(report: &RunReport, key: &str) -> Option<String> {
    report
        .contacts
        .iter()
        .find(|r| r.asset_key == key)
        .map(|r| r.reason.clone())
}

fn set_user(world: &World, key: &str, user: &str) {
    world.ls.with_site(|site| {
        let asset = site
            .data
            .assets
            .iter_mut()
            .find(|a| a["key"] == key)
            .unwrap();
        asset["assetBasicInfo"]["userName"] = json!(user);
        asset["assetBasicInfo"]["userDomain"] = json!(MAIL);
    });
}

/// Each form of the user finds its one contact (`user@domain` and a user principal name
/// by e-mail, a user without an e-mail contact by first and last names), and two or no
/// candidates are reported and written nothing; the company's contacts are read in one
/// request for the run, not per asset, and a second run changes nothing. Breaking it
/// looks like a configuration without its user's contact, a contact picked between two
/// Pat Kims, an inactive contact taken, or one `/company/contacts` request per asset.
#[tokio::test]
async fn the_user_s_one_contact_is_found_by_e_mail_then_by_name() {
    let Estate {
        world,
        contacts,
        keys,
    } = estate().await;
    let report = sync_with(&world, &settings()).await;
    assert_eq!(
        contact_of(&world, &keys[0]),
        Some(contacts[0]),
        "by user@domain"
    );
    assert_eq!(contact_of(&world, &keys[1]), Some(contacts[2]), "by name");
    assert_eq!(contact_of(&world, &keys[4]), Some(contacts[1]), "by UPN");
    assert_eq!(
        contact_of(&world, &keys[2]),
        None,
        "two candidates: no guess"
    );
    assert_eq!(contact_of(&world, &keys[3]), None, "no one");
    assert_eq!(
        reason_of(&report, &keys[2]).unwrap(),
        format!(
            "contact: 2 candidates ({}, {}) (user bluelight\\pat.kim)",
            contacts[3], contacts[4]
        )
    );
    assert!(
        reason_of(&report, &keys[3])
            .unwrap()
            .starts_with("contact: none"),
        "{report:#?}"
    );
    assert_eq!(report.contacts.len(), 2, "{:?}", report.contacts);
    assert_eq!(world.cw.control().count("GET /company/contacts"), 1);

    let again = sync_with(&world, &settings()).await;
    assert_eq!(again.counts.modified, 0, "{again:#?}");
    assert_eq!(again.counts.created, 0);
    assert_eq!(
        world.cw.control().count("GET /company/contacts"),
        2,
        "once a run"
    );
}

/// Under `fill` (the default) a contact set by hand stays, even where the user is one
/// contact, and one the sync set stays when the user changes; under `lansweeper` the
/// contact follows the new user. Breaking it looks like the service desk's choice
/// overwritten by a sync, or a changed user never followed when the operator asked.
#[tokio::test]
async fn a_contact_set_by_hand_stays_under_fill_and_follows_the_user_under_lansweeper() {
    let Estate {
        world,
        contacts,
        keys,
    } = estate().await;
    sync_with(&world, &settings()).await;
    // By hand: the Pat Kim the sync could not choose, and another contact for Ann Lee.
    for (key, contact) in [(&keys[2], contacts[4]), (&keys[1], contacts[5])] {
        let id = linked(&world, key)["id"].as_i64().unwrap();
        world.cw.with_tenant(|tenant| {
            let mut body = tenant.get("configurations", id).unwrap().clone();
            body["contact"] = json!({"id": contact});
            tenant.replace(&CONFIGURATIONS, id, &body).unwrap();
        });
    }
    // John's device is Ann Lee's now.
    set_user(&world, &keys[0], "ann.lee");
    let report = sync_with(&world, &settings()).await;
    assert_eq!(report.counts.modified, 0, "{report:#?}");
    assert_eq!(
        contact_of(&world, &keys[2]),
        Some(contacts[4]),
        "by hand, kept"
    );
    assert_eq!(
        contact_of(&world, &keys[1]),
        Some(contacts[5]),
        "by hand, kept"
    );
    assert_eq!(contact_of(&world, &keys[0]), Some(contacts[0]), "set, kept");

    let mut follow = settings();
    follow.field_policies = FieldPolicies::parse(
        r#"{"contact": "lansweeper"}"#,
        &shared::matching::MatchSpec::for_staged_assets(),
    )
    .unwrap();
    let report = sync_with(&world, &follow).await;
    assert_eq!(
        contact_of(&world, &keys[0]),
        Some(contacts[2]),
        "follows the user"
    );
    assert_eq!(
        contact_of(&world, &keys[1]),
        Some(contacts[2]),
        "Lansweeper's wins"
    );
    assert_eq!(
        contact_of(&world, &keys[2]),
        Some(contacts[4]),
        "reported, untouched"
    );
    assert_eq!(report.counts.modified, 2, "{report:#?}");
}

/// An MSP's estate (four companies over three sites): one `/company/contacts` request
/// reads every company's contacts for the run, and each configuration gets the contact of
/// its own company, though every company has an Ann Lee. Breaking it looks like a request
/// per company or per asset, or a configuration given another client's contact.
#[tokio::test]
async fn every_company_s_contacts_are_read_in_one_request_and_kept_apart() {
    use simulators::scenario::{CONTOSO_SITE, SHARED_SITE};
    let world = lscw_tests::world::estate(9, 30).await;
    let ann_of: std::collections::HashMap<i64, i64> = world.cw.with_tenant(|tenant| {
        let companies: Vec<i64> = tenant
            .records("companies")
            .filter_map(|c| c["id"].as_i64())
            .collect();
        companies
            .into_iter()
            .map(|company| {
                let body =
                    json!({"firstName": "Ann", "lastName": "Lee", "company": {"id": company}});
                let id = tenant.create(&CONTACTS, &body).unwrap()["id"]
                    .as_i64()
                    .unwrap();
                (company, id)
            })
            .collect()
    });
    for site in [simulators::lansweeper::SITE_ID, CONTOSO_SITE, SHARED_SITE] {
        world.ls.with_site_id(site, |site| {
            for asset in &mut site.data.assets {
                asset["assetBasicInfo"]["userName"] = json!("ann.lee");
            }
        });
    }
    let report = sync_with(&world, &settings()).await;
    assert_eq!(world.cw.control().count("GET /company/contacts"), 1);
    let with_contact: Vec<Value> = world.cw.with_tenant(|t| {
        t.records("configurations")
            .filter(|c| c.get("contact").is_some_and(|v| !v.is_null()))
            .cloned()
            .collect()
    });
    let companies: std::collections::BTreeSet<i64> = with_contact
        .iter()
        .map(|c| c["company"]["id"].as_i64().unwrap())
        .collect();
    assert!(companies.len() >= 3, "{companies:?}: {report:#?}");
    for configuration in &with_contact {
        let company = configuration["company"]["id"].as_i64().unwrap();
        assert_eq!(
            configuration["contact"]["id"].as_i64(),
            ann_of.get(&company).copied(),
            "{configuration}"
        );
    }
}

/// The simulator serves `/company/contacts` as ConnectWise does: `conditions` on the
/// contact's own fields, `childConditions` on its communication items, both members of
/// one item holding of the same item, and a condition reaching into the items refused.
/// Breaking it looks like a phone number taken for an e-mail, an inactive contact
/// listed, or a simulator accepting a query ConnectWise refuses.
#[tokio::test]
async fn the_simulator_searches_contacts_and_their_communication_items() {
    let (cw, client) = lscw_tests::default_cw().await;
    let (company, ids) = cw.with_tenant(|tenant| {
        let company = tenant.records("companies").next().unwrap()["id"]
            .as_i64()
            .unwrap();
        let mut ids = Vec::new();
        for (first, items, inactive) in [
            (
                "Email",
                json!([{"communicationType": "Email", "value": "a@b.example"}]),
                false,
            ),
            (
                "Phone",
                json!([{"communicationType": "Phone", "value": "a@b.example"},
                             {"communicationType": "Email", "value": "p@b.example"}]),
                false,
            ),
            (
                "Gone",
                json!([{"communicationType": "Email", "value": "a@b.example"}]),
                true,
            ),
        ] {
            let body = json!({"firstName": first, "company": {"id": company},
                "communicationItems": items, "inactiveFlag": inactive});
            ids.push(
                tenant.create(&CONTACTS, &body).unwrap()["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        (company, ids)
    });
    let list = |conditions: Option<String>, child: Option<&str>| {
        let query = shared::connectwise::ListQuery {
            conditions,
            child_conditions: child.map(str::to_string),
            ..Default::default()
        };
        let client = &client;
        async move {
            client
                .list("company/contacts", &query)
                .await
                .map(|records| {
                    records
                        .iter()
                        .map(|r| r["id"].as_i64().unwrap())
                        .collect::<Vec<_>>()
                })
        }
    };
    let active = format!("company/id in ({company}) and inactiveFlag=False");
    assert_eq!(list(Some(active.clone()), None).await.unwrap(), ids[..2]);
    let email = r#"communicationItems/value="a@b.example" and communicationItems/communicationType="Email""#;
    assert_eq!(list(Some(active), Some(email)).await.unwrap(), ids[..1]);
    assert_eq!(list(None, Some(email)).await.unwrap(), [ids[0], ids[2]]);
    let refused = list(
        Some(r#"communicationItems/value="a@b.example""#.into()),
        None,
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}
