//! `lscw`: the operator's command line. Runs connector actions against the configured
//! connection, serves the simulators, and demonstrates the sync on one machine.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::connectwise::{
    ACTION_KEYS, ClientOptions, ConnectWiseClient, ConnectionConfig, run_action,
};
use simulators::connectwise::{ConnectWiseSimulator, TenantData, TenantSpec};

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
    /// Start the simulators in-process and demonstrate the connector against them.
    Demo,
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
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let data: TenantData = serde_json::from_str(&text)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
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
        Command::Demo => demo::run().await,
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

fn read_input(input: &str) -> Result<Value, String> {
    let text = match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => input.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| format!("--input is not JSON: {e}"))
}
