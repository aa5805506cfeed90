//! A linked tenant and site with clients and a store: the world most pipeline tests
//! run in, and what they check a tenant against.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use shared::connectwise::{ClientOptions, ConnectWiseClient};
use shared::error::PipelineError;
use shared::lansweeper::LansweeperClient;
use shared::pipeline::{self, Progress, RunReport};
use shared::settings::SyncSettings;
use shared::states::{EnsureReferencesOutput, FetchAssetsInput, FetchAssetsOutput, MatchOutput};
use shared::store::{MemoryStore, Store};
use simulators::connectwise::{CONFIGURATIONS, ConnectWiseSimulator};
use simulators::lansweeper::{LansweeperSimulator, SiteSpec};

use crate::{cw_config, fast_retry, ls_client_for, ls_options, start_cw, start_ls};

/// The ConnectWise client's timeout in these worlds: generous, so a slow answer on a
/// busy machine is never taken for a lost one (lost answers come from the simulator's
/// faults). A test of timeouts gives its world a client of its own
/// ([`cw_client_timing_out`]).
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub struct World {
    pub cw: ConnectWiseSimulator,
    pub ls: LansweeperSimulator,
    pub cw_client: ConnectWiseClient,
    pub ls_client: LansweeperClient,
    pub store: MemoryStore,
}

pub async fn world(assets: usize) -> World {
    world_of(9, assets, |_| {}).await
}

/// The linked scenario of `seed` and `assets`, its tenant edited first (a custom field of
/// the MSP's own, say).
pub async fn world_of(
    seed: u64,
    assets: usize,
    edit_tenant: impl FnOnce(&mut simulators::connectwise::Tenant),
) -> World {
    let (mut tenant, site) = simulators::scenario::linked(&SiteSpec { seed, assets }).unwrap();
    edit_tenant(&mut tenant);
    let cw = start_cw(tenant).await;
    let ls = start_ls(site).await;
    let (cw_client, ls_client) = clients(&cw, &ls).await;
    World {
        cw,
        ls,
        cw_client,
        ls_client,
        store: MemoryStore::new(),
    }
}

/// Clients for a world's simulators: fast retries, the world's timeout.
async fn clients(
    cw: &ConnectWiseSimulator,
    ls: &LansweeperSimulator,
) -> (ConnectWiseClient, LansweeperClient) {
    let cw_client = cw_client_timing_out(cw, TIMEOUT).await;
    let ls_client = ls_client_for(ls, simulators::lansweeper::TOKEN, ls_options());
    (cw_client, ls_client)
}

/// A ConnectWise client as a world's, that gives up on an answer after `timeout`.
pub async fn cw_client_timing_out(
    cw: &ConnectWiseSimulator,
    timeout: Duration,
) -> ConnectWiseClient {
    let options = ClientOptions {
        retry: fast_retry(),
        timeout,
        ..ClientOptions::default()
    };
    ConnectWiseClient::connect(&cw_config(cw), options)
        .await
        .unwrap()
}

/// An MSP's estate ([`simulators::scenario::estate`]): three sites served to one token,
/// and the mapping of the demo saved in the store.
pub async fn estate(seed: u64, assets: usize) -> World {
    let (tenant, sites) = simulators::scenario::estate(&SiteSpec { seed, assets }).unwrap();
    let cw = start_cw(tenant).await;
    let ls = LansweeperSimulator::start_sites(sites, crate::ls_sim_options(), "127.0.0.1:0")
        .await
        .unwrap();
    let (cw_client, ls_client) = clients(&cw, &ls).await;
    let store = MemoryStore::new();
    shared::mapping::save(&store, estate_mapping(), 0)
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

/// The estate's clients: each site to its company, the shared site by its `Customer`
/// field, with no default (its assets without a customer stay unmapped).
pub fn estate_mapping() -> shared::mapping::Mapping {
    use simulators::scenario::{CONTOSO_SITE, CUSTOMER_FIELD, SHARED_SITE, TARGET_COMPANY};
    serde_json::from_value(json!({"sites": [
        {"site": simulators::lansweeper::SITE_ID, "company": TARGET_COMPANY},
        {"site": CONTOSO_SITE, "company": "Contoso"},
        {"site": SHARED_SITE, "rules": [
            {"when": {"customField": {"name": CUSTOMER_FIELD, "equals": "Northwind"}}, "company": "Northwind"},
            {"when": {"customField": {"name": CUSTOMER_FIELD, "equals": "Fabrikam"}}, "company": "Fabrikam"}
        ]}
    ]}))
    .unwrap()
}

pub fn settings() -> SyncSettings {
    SyncSettings {
        target_company: simulators::scenario::TARGET_COMPANY.into(),
        ..SyncSettings::default()
    }
}

pub async fn sync_on<S: Store>(world: &World, store: &S) -> Result<RunReport, PipelineError> {
    pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        store,
        &settings(),
        &|_: Progress| {},
    )
    .await
}

pub async fn sync(world: &World) -> RunReport {
    sync_with(world, &settings()).await
}

/// A whole run under `settings` on the world's store; every asset accounted for.
pub async fn sync_with(world: &World, settings: &SyncSettings) -> RunReport {
    let report = pipeline::run_sync(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        settings,
        &|_: Progress| {},
    )
    .await
    .unwrap();
    assert_eq!(
        report.accounted(),
        report.assets,
        "every asset accounted for: {report:#?}"
    );
    report
}

/// The stages up to match, under a run of the test's own: what each of them answered.
pub async fn stages(
    world: &World,
    run_id: &str,
) -> (FetchAssetsOutput, EnsureReferencesOutput, MatchOutput) {
    let (cw, store, settings) = (&world.cw_client, &world.store, &settings());
    let input = FetchAssetsInput {
        run_id: Some(run_id.into()),
    };
    let fetched = pipeline::fetch_assets(&world.ls_client, store, settings, &input, |_, _| {})
        .await
        .unwrap();
    let ensured = pipeline::ensure_references(cw, store, settings, &fetched)
        .await
        .unwrap();
    let matched = pipeline::match_assets(cw, store, settings, &ensured)
        .await
        .unwrap();
    (fetched, ensured, matched)
}

/// The stages up to match, under a run of the test's own.
pub async fn matched(world: &World, run_id: &str) -> MatchOutput {
    stages(world, run_id).await.2
}

/// The create groups a match planned (their batch keys, as the write lanes read them).
pub async fn create_groups(world: &World, matched: &MatchOutput) -> Vec<Vec<String>> {
    pipeline::planned_groups(&world.store, &matched.run_id)
        .await
        .unwrap()
        .0
}

/// What the linked scenario ([`simulators::scenario::linked`]) set up for the first
/// site's assets, as keys in lower case.
pub struct Scenario {
    /// Assets it gave no configuration: a first run creates theirs.
    pub without_configuration: BTreeSet<String>,
    /// Assets it gave a configuration entered by hand.
    pub with_configuration: BTreeSet<String>,
    /// Of those, the ones whose configuration has a twin and no link to choose between
    /// them: the run's conflicts.
    pub twins: BTreeSet<String>,
}

pub fn scenario(world: &World) -> Scenario {
    use simulators::scenario::{has_configuration, has_twin, is_linked};

    world.ls.with_site(|site| {
        let mut scenario = Scenario {
            without_configuration: BTreeSet::new(),
            with_configuration: BTreeSet::new(),
            twins: BTreeSet::new(),
        };
        for (index, asset) in site.data.assets.iter().enumerate() {
            let key = asset["key"].as_str().unwrap().to_lowercase();
            if !has_configuration(index, asset) {
                scenario.without_configuration.insert(key);
                continue;
            }
            if has_twin(index) && !is_linked(index) {
                scenario.twins.insert(key.clone());
            }
            scenario.with_configuration.insert(key);
        }
        scenario
    })
}

/// The asset key a configuration links to (its `ls_asset_id`, whatever the caption's
/// case), lower-cased.
pub fn link_of(configuration: &Value) -> Option<String> {
    shared::connectwise::custom_field(configuration, "ls_asset_id")?["value"]
        .as_str()
        .map(str::to_lowercase)
}

/// ConnectWise's configurations as a clean run leaves them: the linked ones by link
/// (ids and hand-made ones aside), so two tenants can be compared.
pub fn state(cw: &ConnectWiseSimulator) -> (BTreeMap<String, Value>, usize) {
    cw.with_tenant(|tenant| {
        let mut linked = BTreeMap::new();
        let mut unlinked = 0;
        for record in tenant.records("configurations") {
            let shown = tenant.render(&CONFIGURATIONS, record, "");
            let Some(link) = link_of(&shown) else {
                unlinked += 1;
                continue;
            };
            let projection = json!({
                "name": shown["name"], "serialNumber": shown["serialNumber"],
                "macAddress": shown["macAddress"], "ipAddress": shown["ipAddress"],
                "type": shown["type"]["name"], "status": shown["status"]["name"],
                "manufacturer": shown["manufacturer"]["name"],
                "location": tenant.location_name(&shown), "company": shown["company"]["id"],
            });
            assert!(
                linked.insert(link.clone(), projection).is_none(),
                "asset {link} has two configurations"
            );
        }
        (linked, unlinked)
    })
}

/// A clean world of the same size run once: what every test's end state must equal.
pub async fn clean_state(assets: usize) -> (BTreeMap<String, Value>, usize) {
    let clean = world(assets).await;
    sync(&clean).await;
    state(&clean.cw)
}
