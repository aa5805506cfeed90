//! `lscw demo` (what `make demo` runs): both simulators in-process with a tenant and a
//! site that know each other, the whole sync with progress bars, its report, then the
//! same sync again to show that a second run writes nothing.

use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use shared::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use shared::pipeline::SyncSettings;
use simulators::connectwise::{self as cw_sim, ConnectWiseSimulator};
use simulators::lansweeper::{self as ls_sim, LansweeperSimulator, SiteSpec};

use crate::sync::{self, AnyStore};

/// The demo runs the Lansweeper quota this much faster than real time.
const SPEED: f64 = 60.0;

pub async fn run() -> Result<(), String> {
    let (tenant, site) = simulators::scenario::linked(&SiteSpec {
        seed: 1,
        assets: 2_000,
    })?;
    let cw = ConnectWiseSimulator::start(tenant, "127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let ls_options = ls_sim::LansweeperOptions::sped_up(SPEED);
    let window = ls_options.rate_window;
    let ls = LansweeperSimulator::start(site, ls_options, "127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!("ConnectWise simulator: {}", cw.base_url());
    println!("Lansweeper simulator:  {} (2,000 assets)\n", ls.api_url());

    let config = ConnectionConfig::from_lookup(|key| match key {
        "CW_SITE" => Some(cw.site()),
        "CW_COMPANY_ID" => Some(cw_sim::COMPANY_ID.into()),
        "CW_PUBLIC_KEY" => Some(cw_sim::PUBLIC_KEY.into()),
        "CW_PRIVATE_KEY" => Some(cw_sim::PRIVATE_KEY.into()),
        "CW_CLIENT_ID" => Some(cw_sim::CLIENT_ID.into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let connectwise = ConnectWiseClient::connect(&config, ClientOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let lansweeper = LansweeperClient::new(
        LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some(ls_sim::TOKEN.into()),
            "LS_SITE_ID" => Some(ls.site_id()),
            "LS_API_URL" => Some(ls.api_url()),
            _ => None,
        })
        .map_err(|e| e.to_string())?,
        LansweeperOptions {
            rate_window: window,
            hourly_window: window * 60,
            ..LansweeperOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let settings = SyncSettings {
        target_company: "BlueLightCo".into(),
        ..SyncSettings::default()
    };
    let store = AnyStore::Memory(shared::store::MemoryStore::new());

    println!("First run: a dry run shows the plan.");
    let dry = SyncSettings {
        dry_run: true,
        ..settings.clone()
    };
    let (report, plan) = sync::run(&connectwise, &lansweeper, &store, &dry).await?;
    if let Some(plan) = &plan {
        sync::print_plan(plan);
    }
    sync::print_report(&report);

    println!("\nSecond run: the sync for real.");
    let writes_before = cw.control().writes();
    let (report, _) = sync::run(&connectwise, &lansweeper, &store, &settings).await?;
    sync::print_report(&report);
    println!(
        "  ConnectWise write requests: {}",
        cw.control().writes() - writes_before
    );

    println!("\nThird run: nothing changed in Lansweeper, so nothing is written.");
    let writes_before = cw.control().writes();
    let (report, _) = sync::run(&connectwise, &lansweeper, &store, &settings).await?;
    sync::print_report(&report);
    let writes = cw.control().writes() - writes_before;
    println!("  ConnectWise write requests: {writes}");
    if writes != 0 || report.created + report.modified != 0 {
        return Err(format!(
            "the repeated run wrote {writes} requests; it should write none"
        ));
    }

    println!("\nEnrichment: tickets, agreements and SLA back onto the Lansweeper assets.");
    let edits_before = ls.control().count("POST graphql:editAsset");
    let enriched = sync::enrich(&connectwise, &lansweeper, &store, &settings).await?;
    sync::print_enrich_report(&enriched);
    println!(
        "  editAsset requests: {}",
        ls.control().count("POST graphql:editAsset") - edits_before
    );

    println!("\nEnrichment again: nothing changed in ConnectWise, so nothing is written.");
    let edits_before = ls.control().count("POST graphql:editAsset");
    let again = sync::enrich(&connectwise, &lansweeper, &store, &settings).await?;
    sync::print_enrich_report(&again);
    let edits = ls.control().count("POST graphql:editAsset") - edits_before;
    println!("  editAsset requests: {edits}");
    if edits != 0 {
        return Err(format!(
            "the repeated enrichment made {edits} editAsset calls; it should make none"
        ));
    }
    Ok(())
}
