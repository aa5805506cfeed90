//! `lscw doctor`: checks a configuration end to end before the first run, reading only.
//! One line per check, with the fix for each failure; the exit code says whether all
//! passed.

use std::collections::HashMap;

use serde_json::Value;
use shared::connectwise::{
    ClientOptions, ConnectWiseClient, ConnectionConfig, ListQuery, endpoint,
};
use shared::environment::Lookup;
use shared::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use shared::mapping::{self, Mapping};
use shared::settings::SyncSettings;
use shared::store::Store;

use crate::store::AnyStore;

/// What the checks found.
#[derive(Default)]
struct Findings {
    passed: usize,
    failed: usize,
}

impl Findings {
    fn pass(&mut self, check: &str, detail: &str) {
        self.passed += 1;
        println!("ok    {check}: {detail}");
    }

    fn fail(&mut self, check: &str, problem: &str, fix: &str) {
        self.failed += 1;
        println!("FAIL  {check}: {problem}\n      fix: {fix}");
    }
}

/// Runs every check; answers whether all passed.
#[allow(
    clippy::too_many_lines,
    reason = "the checks in the order an operator fixes them, each line printed as it is made"
)]
pub async fn run(fix: bool) -> anyhow::Result<bool> {
    let mut findings = Findings::default();
    let lookup = match Lookup::load().await {
        Ok(lookup) => {
            if std::env::var("SECRET_ARN").is_ok_and(|s| !s.is_empty()) {
                findings.pass("secret", "read");
            }
            lookup
        }
        Err(error) => {
            findings.fail(
                "secret",
                &error.to_string(),
                "check SECRET_ARN, the region and that your role may read it",
            );
            return Ok(false);
        }
    };
    let get = |key: &str| lookup.get(key);

    let settings = match SyncSettings::from_lookup(get) {
        Ok(settings) => {
            findings.pass("settings", "every sync setting is well formed");
            settings
        }
        Err(error) => {
            findings.fail("settings", &error.to_string(), "correct the setting named");
            SyncSettings::default()
        }
    };

    let store = AnyStore::from_lookup(&lookup).await;
    match store.get_raw("doctor/probe").await {
        Ok(_) => findings.pass("store", &store.describe()),
        Err(error) => findings.fail(
            "store",
            &error.to_string(),
            "check SYNC_TABLE (the stack's table) and that your role may read it",
        ),
    }

    let connectwise = connectwise(&mut findings, get).await;
    let lansweeper = lansweeper(&mut findings, get).await;

    if let Some(client) = &connectwise {
        match shared::custom_fields::find_or_create(client, &settings, fix).await {
            Ok(found) => {
                let mut listed: Vec<String> = found
                    .ids
                    .iter()
                    .map(|(caption, id)| format!("{caption}={id}"))
                    .collect();
                listed.sort();
                let mut text = listed.join(", ");
                if !found.created.is_empty() {
                    text.push_str(&format!(" (created now: {})", found.created.join(", ")));
                }
                findings.pass("custom fields", &text);
            }
            Err(error) => {
                findings.fail(
                    "custom fields",
                    &error.to_string(),
                    "`lscw doctor --fix` creates the missing ones (ls_asset_id, ls_asset_url, ls_asset_location as Text, ls_software as TextArea), or correct CW_CUSTOM_FIELD_IDS",
                );
                list_screens(client).await;
            }
        }
    }

    // The site the settings name, whether or not the token worked.
    let site = lansweeper
        .as_ref()
        .map(|c| c.site_id().to_string())
        .or_else(|| lookup.get("LS_SITE_ID"));
    let in_force = mapping::in_force(&store, site.as_deref(), Some(&settings.target_company)).await;
    match in_force {
        Ok(mapping) => {
            check_mapping(
                &mut findings,
                &mapping,
                connectwise.as_ref(),
                lansweeper.as_ref(),
            )
            .await;
        }
        Err(error) => findings.fail(
            "mapping",
            &error.to_string(),
            "`lscw mapping set SITE --company IDENTIFIER`, or set LS_SITE_ID and CW_TARGET_COMPANY",
        ),
    }

    if let Some(client) = &lansweeper {
        match shared::quota::load(&store, client).await {
            Ok(share) => {
                let wait = client.wait_before_next().await;
                let spent = client.spent().await.len();
                if wait.is_zero() {
                    findings.pass(
                        "Lansweeper quota",
                        &format!(
                            "room now ({spent} requests of this token still count against its windows; \
                             the enrichment leaves {} of each hour to the sync's fetch)",
                            share.fetch_reserve
                        ),
                    );
                } else {
                    findings.fail(
                        "Lansweeper quota",
                        &format!("spent: the next request waits {} s", wait.as_secs()),
                        "let the running sync or enrichment finish, or wait",
                    );
                }
            }
            Err(error) => findings.fail("Lansweeper quota", &error.to_string(), "check the store"),
        }
    }
    println!(
        "{}",
        if findings.failed == 0 {
            "every check passed".to_string()
        } else {
            format!(
                "{} check(s) failed, {} passed",
                findings.failed, findings.passed
            )
        }
    );
    Ok(findings.failed == 0)
}

async fn connectwise(
    findings: &mut Findings,
    get: impl Fn(&str) -> Option<String>,
) -> Option<ConnectWiseClient> {
    let config = match ConnectionConfig::from_lookup(get) {
        Ok(config) => config,
        Err(error) => {
            findings.fail(
                "ConnectWise settings",
                &error.to_string(),
                "set CW_SITE (or CW_BASE_URL), CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY, CW_CLIENT_ID",
            );
            return None;
        }
    };
    let client = match ConnectWiseClient::connect(&config, ClientOptions::default()).await {
        Ok(client) => {
            findings.pass("ConnectWise reachable", "codebase found");
            client
        }
        Err(error) => {
            findings.fail(
                "ConnectWise reachable",
                &error.to_string(),
                "check CW_SITE / CW_BASE_URL and CW_COMPANY_ID (the company you sign in with)",
            );
            return None;
        }
    };
    match client
        .count(endpoint::CONFIGURATIONS, &ListQuery::default())
        .await
    {
        Ok(count) => {
            findings.pass(
                "ConnectWise credentials",
                &format!("keys and clientId accepted; {count} configurations visible"),
            );
            Some(client)
        }
        Err(error) => {
            findings.fail(
                "ConnectWise credentials",
                &error.to_string(),
                "check the API member's keys (CW_PUBLIC_KEY, CW_PRIVATE_KEY), its security role (configurations, companies, service, finance) and CW_CLIENT_ID",
            );
            None
        }
    }
}

async fn lansweeper(
    findings: &mut Findings,
    get: impl Fn(&str) -> Option<String>,
) -> Option<LansweeperClient> {
    let built = LansweeperConfig::from_lookup(get)
        .and_then(|config| LansweeperClient::new(config, LansweeperOptions::default()));
    let client = match built {
        Ok(client) => client,
        Err(error) => {
            findings.fail(
                "Lansweeper settings",
                &error.to_string(),
                "set LS_TOKEN (and LS_API_URL for another region)",
            );
            return None;
        }
    };
    match client.sites().await {
        Ok(sites) => {
            let names: Vec<String> = sites
                .iter()
                .map(|s| format!("{} ({})", s.id, s.name))
                .collect();
            findings.pass(
                "Lansweeper token",
                &format!("accepted; sites: {}", names.join(", ")),
            );
            Some(client)
        }
        Err(error) => {
            findings.fail(
                "Lansweeper token",
                &error.to_string(),
                "create a personal access token (or an app's) with access to the sites, in LS_TOKEN",
            );
            None
        }
    }
}

async fn check_mapping(
    findings: &mut Findings,
    mapping: &Mapping,
    connectwise: Option<&ConnectWiseClient>,
    lansweeper: Option<&LansweeperClient>,
) {
    if let Err(error) = mapping.check() {
        findings.fail(
            "mapping",
            &error.to_string(),
            "`lscw mapping set` or `lscw mapping import` a valid one",
        );
        return;
    }
    let (Some(connectwise), Some(lansweeper)) = (connectwise, lansweeper) else {
        return;
    };
    let sites: Vec<String> = match lansweeper.sites().await {
        Ok(sites) => sites.into_iter().map(|s| s.id).collect(),
        Err(_) => return,
    };
    let companies = connectwise
        .list_complete(
            endpoint::COMPANIES,
            &ListQuery::default().with_fields(&["id", "identifier"]),
        )
        .await;
    let companies: Vec<(i64, String)> = match companies {
        Ok(found) => found
            .iter()
            .filter_map(|c| {
                Some((
                    c.get("id")?.as_i64()?,
                    c.get("identifier").and_then(Value::as_str)?.to_string(),
                ))
            })
            .collect(),
        Err(error) => {
            findings.fail(
                "mapping",
                &error.to_string(),
                "the API member needs to read companies",
            );
            return;
        }
    };
    match mapping.check_known(&sites, &companies) {
        Ok(()) => {
            let pairs: HashMap<&str, Vec<&str>> = mapping
                .sites
                .iter()
                .map(|s| (s.site.as_str(), s.companies().collect()))
                .collect();
            let mut shown: Vec<String> = pairs
                .iter()
                .map(|(site, companies)| format!("{site} → {}", companies.join(", ")))
                .collect();
            shown.sort();
            findings.pass("mapping", &shown.join("; "));
        }
        Err(error) => findings.fail(
            "mapping",
            &error.to_string(),
            "`lscw mapping list`, then `lscw mapping set` the site with an existing company",
        ),
    }
}

/// The custom field screens (`podId`) and their captions, so an operator can name the
/// configurations' in `CW_CONFIGURATION_POD_ID`.
async fn list_screens(client: &shared::connectwise::ConnectWiseClient) {
    let Ok(definitions) = shared::custom_fields::definitions(client, "id > 0").await else {
        return;
    };
    let mut screens: std::collections::BTreeMap<i64, Vec<String>> =
        std::collections::BTreeMap::new();
    for definition in &definitions {
        if let (Some(pod), Some(caption)) = (
            definition.get("podId").and_then(serde_json::Value::as_i64),
            definition
                .get("caption")
                .and_then(serde_json::Value::as_str),
        ) {
            screens.entry(pod).or_default().push(caption.to_string());
        }
    }
    for (pod, captions) in screens {
        println!("    screen podId {pod}: {}", captions.join(", "));
    }
}
