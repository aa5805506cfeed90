//! Shared fixtures of the end-to-end tests: simulators started in-process on free ports
//! and clients pointed at them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use shared::http::RetryPolicy;
use simulators::connectwise::{self as cw_sim, ConnectWiseSimulator, Tenant, TenantSpec};

/// Retries as in production, with delays shrunk so failure paths run in milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        max_elapsed: Duration::from_secs(10),
        rate_limit_fallback: Duration::from_millis(20),
    }
}

pub fn fast_options() -> ClientOptions {
    ClientOptions {
        retry: fast_retry(),
        ..ClientOptions::default()
    }
}

/// The connection a user would configure for this simulator, by base URL.
pub fn cw_config(simulator: &ConnectWiseSimulator) -> ConnectionConfig {
    cw_config_with(simulator, |_| None)
}

/// As [`cw_config`], with some keys overridden (`Some(value)`).
pub fn cw_config_with(
    simulator: &ConnectWiseSimulator,
    overrides: impl Fn(&str) -> Option<String>,
) -> ConnectionConfig {
    let base_url = simulator.base_url();
    ConnectionConfig::from_lookup(|key| {
        overrides(key).or_else(|| match key {
            "CW_BASE_URL" => Some(base_url.clone()),
            "CW_COMPANY_ID" => Some(cw_sim::COMPANY_ID.into()),
            "CW_PUBLIC_KEY" => Some(cw_sim::PUBLIC_KEY.into()),
            "CW_PRIVATE_KEY" => Some(cw_sim::PRIVATE_KEY.into()),
            "CW_CLIENT_ID" => Some(cw_sim::CLIENT_ID.into()),
            _ => None,
        })
    })
    .expect("simulator connection is complete")
}

pub async fn start_cw(tenant: Tenant) -> ConnectWiseSimulator {
    ConnectWiseSimulator::start(tenant, "127.0.0.1:0")
        .await
        .expect("simulator starts")
}

/// The default generated tenant and a client for it.
pub async fn default_cw() -> (ConnectWiseSimulator, ConnectWiseClient) {
    cw_with(TenantSpec::default()).await
}

pub async fn cw_with(spec: TenantSpec) -> (ConnectWiseSimulator, ConnectWiseClient) {
    let simulator = start_cw(cw_sim::generate(&spec).expect("tenant generates")).await;
    let client = ConnectWiseClient::connect(&cw_config(&simulator), fast_options())
        .await
        .expect("client connects");
    (simulator, client)
}

use shared::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use simulators::lansweeper::{self as ls_sim, LansweeperSimulator, Site, SiteSpec};

/// How much faster than real time the Lansweeper quota runs in tests: a minute is 0.3 s.
pub const LS_SPEED: f64 = 200.0;

pub fn ls_sim_options() -> ls_sim::LansweeperOptions {
    ls_sim::LansweeperOptions::sped_up(LS_SPEED)
}

/// The production pacing, on the tests' clock.
pub fn ls_options() -> LansweeperOptions {
    let window = ls_sim_options().rate_window;
    LansweeperOptions {
        retry: RetryPolicy {
            rate_limit_fallback: window,
            ..fast_retry()
        },
        rate_window: window,
        hourly_window: window * 60,
        ..LansweeperOptions::default()
    }
}

pub async fn start_ls(site: Site) -> LansweeperSimulator {
    LansweeperSimulator::start(site, ls_sim_options(), "127.0.0.1:0")
        .await
        .expect("simulator starts")
}

pub fn ls_client_for(
    simulator: &LansweeperSimulator,
    token: &str,
    options: LansweeperOptions,
) -> LansweeperClient {
    let api_url = simulator.api_url();
    let site_id = simulator.site_id();
    let config = LansweeperConfig::from_lookup(|key| match key {
        "LS_TOKEN" => Some(token.to_string()),
        "LS_SITE_ID" => Some(site_id.clone()),
        "LS_API_URL" => Some(api_url.clone()),
        _ => None,
    })
    .expect("config is complete");
    LansweeperClient::new(config, options).expect("client builds")
}

pub async fn ls_with(assets: usize) -> (LansweeperSimulator, LansweeperClient) {
    let site = ls_sim::generate(&SiteSpec { seed: 7, assets }).expect("site generates");
    let simulator = start_ls(site).await;
    let client = ls_client_for(&simulator, ls_sim::TOKEN, ls_options());
    (simulator, client)
}
pub mod aws;
pub mod dying;
pub mod world;

/// The ConnectWise keys of a connection to this simulator, as the secret holds them.
pub fn cw_sim_credentials(simulator: &ConnectWiseSimulator) -> serde_json::Value {
    serde_json::json!({
        "CW_BASE_URL": simulator.base_url(),
        "CW_COMPANY_ID": cw_sim::COMPANY_ID,
        "CW_PUBLIC_KEY": cw_sim::PUBLIC_KEY,
        "CW_PRIVATE_KEY": cw_sim::PRIVATE_KEY,
        "CW_CLIENT_ID": cw_sim::CLIENT_ID,
    })
}

/// The sync's custom field definitions taken off the configurations screen, as on a
/// tenant that never had them (or lost them).
pub fn drop_sync_fields(tenant: &mut Tenant) {
    let ours: Vec<i64> = tenant
        .records("userDefinedFields")
        .filter(|d| d["podId"] == cw_sim::CONFIGURATION_POD)
        .map(|d| d["id"].as_i64().unwrap_or_default())
        .collect();
    for id in ours {
        tenant
            .delete(&cw_sim::USER_DEFINED_FIELDS, id)
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
}

/// A custom field the sync does not own (`warranty_contact`, id 9), as an MSP adds its
/// own: updates must leave its values alone.
pub fn add_foreign_custom_field(tenant: &mut Tenant) {
    tenant.custom_fields.push(cw_sim::CustomFieldDef {
        id: 9,
        caption: "warranty_contact".into(),
        field_type: "Text".into(),
        entry_method: "EntryField".into(),
        number_of_decimals: 0,
    });
    tenant.complete_custom_fields();
}
