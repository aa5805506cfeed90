//! `lscw`: the operator's command line. Runs connector actions against the configured
//! connection, serves the simulators, and demonstrates the sync on one machine.

mod demo;
mod devenv;
mod sync;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::connectwise::{
    ACTION_KEYS, ClientOptions, ConnectWiseClient, ConnectionConfig, run_action,
};
use shared::lansweeper::{ASSET_PATHS, LansweeperClient, LansweeperConfig, LansweeperOptions};
use simulators::connectwise::{ConnectWiseSimulator, TenantData, TenantSpec};
use simulators::lansweeper::{LansweeperSimulator, SiteData, SiteSpec};

#[derive(Parser)]
#[command(
    name = "lscw",
    version,
    about = "Lansweeper ⇄ ConnectWise PSA sync: operator CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one ConnectWise connector action and print its JSON result.
    ///
    /// The connection comes from CW_SITE or CW_BASE_URL, CW_COMPANY_ID, CW_PUBLIC_KEY,
    /// CW_PRIVATE_KEY and CW_CLIENT_ID.
    Action {
        /// The action's key, e.g. listOfLocationsAction.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(ACTION_KEYS))]
        key: String,
        /// The action's input as JSON, or @FILE to read it from a file.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Serve an API simulator until stopped.
    Simulate {
        #[command(subcommand)]
        api: SimulatedApi,
    },
    /// List the Lansweeper sites the token (LS_TOKEN) can see, to find LS_SITE_ID.
    Sites,
    /// Print the site's assets as JSON lines (LS_TOKEN, LS_SITE_ID, LS_API_URL).
    Assets {
        /// Field paths to read, comma-separated; more than 30 are split over requests.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// Run the asset sync (Lansweeper → ConnectWise) on this machine.
    ///
    /// Needs the ConnectWise and Lansweeper connections and CW_TARGET_COMPANY. The store is
    /// DynamoDB when AWS_ENDPOINT_URL or SYNC_TABLE is set, an embedded one otherwise.
    Sync {
        /// Write nothing to ConnectWise; print what would be created and changed.
        #[arg(long)]
        dry_run: bool,
        /// Also write the run report as JSON to this file.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// Write tickets, agreements and SLA from ConnectWise onto Lansweeper assets.
    Enrich {
        /// Write nothing to Lansweeper; count what would be written.
        #[arg(long)]
        dry_run: bool,
        /// Also write the enrichment report as JSON to this file.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// The report of a run from the store (DynamoDB in a deployment: set SYNC_TABLE).
    Report {
        /// The run id (the state machine's execution name).
        run_id: String,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// The state machine's whole order on this machine: the sync, then the enrichment.
    Run {
        #[arg(long)]
        dry_run: bool,
    },
    /// The whole sync against in-process simulators, twice: no AWS account needed.
    Demo,
    /// Simulators, table, secret and a staged sample run for `cargo lambda invoke`,
    /// against a running moto server (what `make invoke` uses).
    DevEnv {
        /// The moto server.
        #[arg(long, default_value = "http://127.0.0.1:5055")]
        moto: String,
        /// Where to write the functions' environment (KEY=VALUE lines).
        #[arg(long, default_value = "target/dev-env.env")]
        env_file: std::path::PathBuf,
        /// Also write each function's sample event (a real input) into this folder.
        #[arg(long)]
        write_events: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum SimulatedApi {
    /// ConnectWise PSA REST API (company `sim`, public key `simpub`, private key `simpriv`).
    Connectwise {
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: String,
        /// Tenant data (JSON); without it a generated tenant is served.
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        /// Seed of the generated tenant.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Configurations in the generated tenant.
        #[arg(long, default_value_t = 500)]
        configurations: usize,
    },
    /// Both APIs, with a tenant and a site that know each other (the demo's scenario).
    Pair {
        #[arg(long, default_value = "127.0.0.1:8480")]
        connectwise_listen: String,
        #[arg(long, default_value = "127.0.0.1:8490")]
        lansweeper_listen: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2_000)]
        assets: usize,
        /// Run the Lansweeper rate-limit clock this many times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// Lansweeper Data API (token `simtoken`, site `sim-site`).
    Lansweeper {
        #[arg(long, default_value = "127.0.0.1:8490")]
        listen: String,
        /// Site data (JSON); without it a generated site is served.
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Assets in the generated site.
        #[arg(long, default_value_t = 2_000)]
        assets: usize,
        /// Run the rate-limit clock this many times faster (for tests).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Action { key, input } => {
            let input = read_input(&input)?;
            let config = ConnectionConfig::from_env().map_err(|e| e.to_string())?;
            let client = ConnectWiseClient::connect(&config, client_options())
                .await
                .map_err(|e| e.to_string())?;
            let output = run_action(&client, &key, input)
                .await
                .map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&output).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
        Command::Simulate {
            api:
                SimulatedApi::Connectwise {
                    listen,
                    data,
                    seed,
                    configurations,
                },
        } => {
            let tenant = match data {
                Some(path) => {
                    let data: TenantData = read_json_file(&path)?;
                    let mut tenant = simulators::connectwise::Tenant::from_data(data)?;
                    tenant.complete_custom_fields();
                    tenant
                }
                None => simulators::connectwise::generate(&TenantSpec {
                    seed,
                    configurations,
                    ..TenantSpec::default()
                })?,
            };
            let simulator = ConnectWiseSimulator::start(tenant, &listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            eprintln!("ConnectWise simulator listening on {}", simulator.site());
            eprintln!("  export CW_BASE_URL={}", simulator.base_url());
            eprintln!(
                "  export CW_COMPANY_ID={} CW_PUBLIC_KEY={} CW_PRIVATE_KEY={} CW_CLIENT_ID={}",
                simulators::connectwise::COMPANY_ID,
                simulators::connectwise::PUBLIC_KEY,
                simulators::connectwise::PRIVATE_KEY,
                simulators::connectwise::CLIENT_ID
            );
            tokio::select! {
                () = simulator.wait() => Ok(()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Simulate {
            api:
                SimulatedApi::Lansweeper {
                    listen,
                    data,
                    seed,
                    assets,
                    speed,
                },
        } => {
            let site = match data {
                Some(path) => {
                    simulators::lansweeper::Site::new(read_json_file::<SiteData>(&path)?)?
                }
                None => simulators::lansweeper::generate(&SiteSpec { seed, assets })?,
            };
            let options = simulators::lansweeper::LansweeperOptions::sped_up(speed);
            let simulator = LansweeperSimulator::start(site, options, &listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            eprintln!("Lansweeper simulator listening on {}", simulator.api_url());
            eprintln!(
                "  export LS_API_URL={} LS_TOKEN={} LS_SITE_ID={}",
                simulator.api_url(),
                simulators::lansweeper::TOKEN,
                simulator.site_id()
            );
            tokio::select! {
                () = simulator.wait() => Ok(()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Simulate {
            api:
                SimulatedApi::Pair {
                    connectwise_listen,
                    lansweeper_listen,
                    seed,
                    assets,
                    speed,
                },
        } => {
            let (tenant, site) = simulators::scenario::linked(&SiteSpec { seed, assets })?;
            let cw = ConnectWiseSimulator::start(tenant, &connectwise_listen)
                .await
                .map_err(|e| format!("cannot listen on {connectwise_listen}: {e}"))?;
            let ls = LansweeperSimulator::start(
                site,
                simulators::lansweeper::LansweeperOptions::sped_up(speed),
                &lansweeper_listen,
            )
            .await
            .map_err(|e| format!("cannot listen on {lansweeper_listen}: {e}"))?;
            eprintln!(
                "  export CW_BASE_URL={} CW_COMPANY_ID=sim CW_PUBLIC_KEY=simpub CW_PRIVATE_KEY=simpriv CW_CLIENT_ID={} CW_TARGET_COMPANY=BlueLightCo",
                cw.base_url(),
                simulators::connectwise::CLIENT_ID
            );
            eprintln!(
                "  export LS_API_URL={} LS_TOKEN=simtoken LS_SITE_ID={}",
                ls.api_url(),
                ls.site_id()
            );
            tokio::select! {
                () = cw.wait() => Ok(()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Sites => {
            let client = lansweeper_client()?;
            for site in client.sites().await.map_err(|e| e.to_string())? {
                println!("{}\t{}", site.id, site.name);
            }
            Ok(())
        }
        Command::Assets { fields } => {
            let client = lansweeper_client()?;
            let paths: Vec<&str> = if fields.is_empty() {
                ASSET_PATHS.to_vec()
            } else {
                fields.iter().map(String::as_str).collect()
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let stats = client
                .for_each_asset_page(&paths, None, |page| {
                    for asset in page {
                        serde_json::to_writer(&mut out, asset.raw())
                            .and_then(|()| {
                                std::io::Write::write_all(&mut out, b"\n")
                                    .map_err(serde_json::Error::io)
                            })
                            .map_err(|e| {
                                shared::lansweeper::LansweeperError::Decode(e.to_string())
                            })?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            eprintln!("{} assets in {} requests", stats.items, client.api_calls());
            Ok(())
        }
        Command::Sync { dry_run, report } => {
            let (connectwise, lansweeper, settings, store) = connections(dry_run).await?;
            let (run_report, plan) =
                sync::run(&connectwise, &lansweeper, &store, &settings).await?;
            if let Some(plan) = &plan {
                sync::print_plan(plan);
            }
            sync::print_report(&run_report);
            if let Some(path) = report {
                sync::write_json(&path, &run_report)?;
            }
            Ok(())
        }
        Command::Enrich { dry_run, report } => {
            let (connectwise, lansweeper, settings, store) = connections(dry_run).await?;
            let enrich_report = sync::enrich(&connectwise, &lansweeper, &store, &settings).await?;
            sync::print_enrich_report(&enrich_report);
            if let Some(path) = report {
                sync::write_json(&path, &enrich_report)?;
            }
            Ok(())
        }
        Command::Run { dry_run } => {
            let (connectwise, lansweeper, settings, store) = connections(dry_run).await?;
            let (run_report, _) = sync::run(&connectwise, &lansweeper, &store, &settings).await?;
            sync::print_report(&run_report);
            let enrich_report = sync::enrich(&connectwise, &lansweeper, &store, &settings).await?;
            sync::print_enrich_report(&enrich_report);
            Ok(())
        }
        Command::Report { run_id, json } => {
            let store = sync::AnyStore::from_env().await;
            let run_report = sync::report(&store, &run_id).await?;
            sync::print_report(&run_report);
            if let Some(path) = json {
                sync::write_json(&path, &run_report)?;
            }
            Ok(())
        }
        Command::Demo => demo::run().await,
        Command::DevEnv {
            moto,
            env_file,
            write_events,
        } => devenv::run(&moto, &env_file, write_events.as_deref()).await,
    }
}

/// Client tuning from the environment (`CW_MAX_CONCURRENCY`), defaults otherwise.
fn client_options() -> ClientOptions {
    let mut options = ClientOptions::default();
    if let Some(n) = std::env::var("CW_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.max_concurrent = n;
    }
    options
}

/// Both connections, the settings and the store, from the environment.
async fn connections(
    dry_run: bool,
) -> Result<
    (
        ConnectWiseClient,
        LansweeperClient,
        shared::pipeline::SyncSettings,
        sync::AnyStore,
    ),
    String,
> {
    let config = ConnectionConfig::from_env().map_err(|e| e.to_string())?;
    let connectwise = ConnectWiseClient::connect(&config, client_options())
        .await
        .map_err(|e| e.to_string())?;
    let lansweeper = lansweeper_client()?;
    let mut settings = shared::pipeline::SyncSettings::from_lookup(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())?;
    settings.dry_run = dry_run;
    let store = sync::AnyStore::from_env().await;
    eprintln!("store: {}", store.describe());
    Ok((connectwise, lansweeper, settings, store))
}

fn lansweeper_client() -> Result<LansweeperClient, String> {
    let config = LansweeperConfig::from_env().map_err(|e| e.to_string())?;
    LansweeperClient::new(config, LansweeperOptions::default()).map_err(|e| e.to_string())
}

fn read_json_file<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_input(input: &str) -> Result<Value, String> {
    let text = match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => input.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| format!("--input is not JSON: {e}"))
}
