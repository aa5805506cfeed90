//! `lscw`: the operator's command line. Runs connector actions against the configured
//! connection, serves the simulators, and demonstrates the sync on one machine.

mod demo;
mod devenv;
mod doctor;
mod embedded;
mod html;
mod mapping;
mod merge;
mod revert;
mod secret;
mod step;
mod store;
mod sync;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::actions::{ACTION_KEYS, run_action};
use shared::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use shared::environment::{Environment, Lookup};
use shared::lansweeper::{ASSET_PATHS, LansweeperClient, LansweeperConfig, LansweeperOptions};
use shared::pipeline::Scope;
use simulators::connectwise::{ConnectWiseSimulator, TenantData, TenantSpec};
use simulators::lansweeper::{LansweeperSimulator, SiteData, SiteSpec};

use crate::store::AnyStore;

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
    /// Needs the ConnectWise and Lansweeper connections and a mapping of sites to
    /// companies (`lscw mapping`, or LS_SITE_ID and CW_TARGET_COMPANY). The store is
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
        /// Also write the report as one self-contained HTML page to this file.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
    /// The state machine's whole order on this machine: the sync, then the enrichment.
    Run {
        #[arg(long)]
        dry_run: bool,
    },
    /// The recent runs with their status (the table's, or lscw's own store).
    Runs,
    /// Makes a configuration the asset's for good: writes the asset's key in its
    /// ls_asset_id and clears it from any other configuration (resolves a conflict).
    Link {
        asset_key: String,
        configuration_id: i64,
    },
    /// Lets a run's retirements through that the guard held: writes exactly that run's
    /// planned retirements.
    Retire {
        /// The run whose held retirements to write.
        #[arg(long = "approve", value_name = "RUN_ID")]
        approve: String,
    },
    /// Configurations of one company that are one device (a shared serial, MAC address
    /// or ls_asset_id), grouped, with the one the sync would keep and why.
    Duplicates {
        /// Only this company (identifier or id); the mapping's companies otherwise.
        #[arg(long)]
        company: Option<String>,
        /// Also write the groups as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Merges configurations into the one kept: their tickets attached to it, the link
    /// moved to it, each retired (status and active flag) and renamed — never deleted.
    Merge {
        /// The configuration to keep, then those to merge into it.
        ids: Vec<i64>,
        /// Every merge `lscw duplicates` suggests.
        #[arg(long)]
        all_suggested: bool,
        /// With --all-suggested: only this company's.
        #[arg(long, requires = "all_suggested")]
        company: Option<String>,
        /// Print the plan; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Past the retirement guard's limits (many merges at once).
        #[arg(long)]
        approve: bool,
    },
    /// Takes back what a run wrote, from its audit trail: each field back to its value
    /// before the run where it still holds what the run wrote (a field changed since is
    /// reported, not touched), what it retired active again, what it created retired.
    /// Once: reverting again writes nothing.
    Revert {
        /// The run to take back (`lscw runs` lists them).
        run_id: String,
        /// Write nothing; print what would go back.
        #[arg(long)]
        dry_run: bool,
        /// Let more retirements through than the retirement guard allows.
        #[arg(long)]
        approve: bool,
    },
    /// Clears a configuration's ls_asset_id.
    Unlink { configuration_id: i64 },
    /// Keeps an asset or a configuration out of every write (kept in the store).
    Ignore {
        #[command(subcommand)]
        what: Ignored,
    },
    /// Lets an ignored asset or configuration be written again.
    Unignore {
        #[command(subcommand)]
        what: Ignored,
    },
    /// Which Lansweeper sites (and which assets within them) go to which ConnectWise
    /// companies: list, suggest, set, remove, export, import.
    Mapping {
        #[command(subcommand)]
        action: mapping::MappingAction,
    },
    /// The stack's credentials secret, filled from prompts (nothing echoed) once both APIs
    /// accept the values.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// The run leases: which run holds each, or give one up for a run that died holding it.
    Lease {
        #[command(subcommand)]
        action: LeaseAction,
    },
    /// Checks the configuration end to end, reading only: both APIs, credentials,
    /// custom fields, the mapping, the quota, the table and the secret.
    Doctor {
        /// Also create the sync's custom fields ConnectWise lacks, on the configurations
        /// screen (a field of the same caption and another type is never changed or reused).
        #[arg(long)]
        fix: bool,
    },
    /// The whole sync against in-process simulators, twice: no AWS account needed.
    Demo,
    /// One state of the state machine in a process of its own (what `make bench` runs).
    #[command(hide = true)]
    Step {
        #[arg(value_enum)]
        name: step::StepName,
        #[arg(long)]
        input: Option<std::path::PathBuf>,
        #[arg(long)]
        output: std::path::PathBuf,
    },
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
enum Ignored {
    /// A Lansweeper asset, by key.
    Asset { key: String },
    /// A ConnectWise configuration, by id.
    Configuration { id: i64 },
}

#[derive(Subcommand)]
enum SecretAction {
    /// Asks for CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY, CW_CLIENT_ID and LS_TOKEN
    /// (CW_SITE or CW_BASE_URL, and LS_API_URL, from the environment), checks them
    /// against both APIs and writes them to the secret.
    Set {
        /// The secret's ARN (the stack's `CredentialsSecretArn` output).
        #[arg(long, env = "SECRET_ARN")]
        secret_arn: String,
    },
}

#[derive(Subcommand)]
enum LeaseAction {
    /// Which run holds each lease (the sync's, the enrichment's), since when, until when.
    Show,
    /// Give the sync's lease up whoever holds it (only for a run that is known to be dead:
    /// a live one would then overlap with the next).
    Release {
        /// The enrichment's lease instead of the sync's.
        #[arg(long)]
        enrichment: bool,
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
        /// Lost answers to saved writes, `KIND:N,…`: every Nth write is saved, then its
        /// answer is lost as KIND says (502-after-save, drop-after-save,
        /// timeout-after-save[=SECONDS]).
        #[arg(long)]
        faults: Option<simulators::control::LostAnswerRules>,
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
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one arm per command, each a call into its module"
)]
async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Action { key, input } => action(key, input).await,
        Command::Simulate { api } => simulate(api).await,
        Command::Sites => {
            let client = lansweeper_client().await?;
            for site in client.sites().await? {
                println!("{}\t{}", site.id, site.name);
            }
            Ok(())
        }
        Command::Assets { fields } => print_assets(fields).await,
        Command::Sync { dry_run, report } => {
            let env = environment(dry_run).await?;
            let (run_report, plan) = sync::run(&env).await?;
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
            let env = environment(dry_run).await?;
            let enrich_report = sync::enrich(&env).await?;
            sync::print_enrich_report(&enrich_report);
            if let Some(path) = report {
                sync::write_json(&path, &enrich_report)?;
            }
            Ok(())
        }
        Command::Run { dry_run } => {
            let env = environment(dry_run).await?;
            let (run, _) = sync::run_local(&env, Scope::Both, &|_| {}).await?;
            if let Some(run_report) = &run.sync {
                sync::print_report(run_report);
            }
            if let Some(enrich_report) = &run.enrichment {
                sync::print_enrich_report(enrich_report);
            }
            Ok(())
        }
        Command::Report { run_id, json, html } => report(run_id, json, html).await,
        Command::Mapping { action } => {
            let env = environment(false).await?;
            mapping::run(&env, action).await
        }
        Command::Link {
            asset_key,
            configuration_id,
        } => link(asset_key, configuration_id).await,
        Command::Retire { approve } => approve_retirements(approve).await,
        Command::Revert {
            run_id,
            dry_run,
            approve,
        } => {
            let env = environment(dry_run).await?;
            revert::run(&env, &run_id, approve).await
        }
        Command::Unlink { configuration_id } => unlink(configuration_id).await,
        Command::Duplicates { company, json } => {
            let env = environment(false).await?;
            merge::list(&env, company.as_deref(), json.as_deref()).await
        }
        Command::Merge {
            ids,
            all_suggested,
            company,
            dry_run,
            approve,
        } => {
            let env = environment(dry_run).await?;
            let options = shared::operator::MergeOptions { dry_run, approve };
            merge::run(&env, &ids, all_suggested, company.as_deref(), options).await
        }
        Command::Ignore { what } => set_ignored(what, true).await,
        Command::Unignore { what } => set_ignored(what, false).await,
        Command::Runs => {
            let store = AnyStore::from_lookup(&Lookup::load().await?).await;
            sync::print_runs(&store).await
        }
        Command::Lease { action } => lease(action).await,
        Command::Secret {
            action: SecretAction::Set { secret_arn },
        } => secret::set(&secret_arn).await,
        Command::Doctor { fix } => {
            if doctor::run(fix).await? {
                Ok(())
            } else {
                anyhow::bail!("lscw doctor found problems (above)")
            }
        }
        Command::Demo => demo::run().await,
        Command::Step {
            name,
            input,
            output,
        } => {
            let env = environment(false).await?;
            step::run(&env, name, input.as_deref(), &output).await
        }
        Command::DevEnv {
            moto,
            env_file,
            write_events,
        } => devenv::run(&moto, &env_file, write_events.as_deref()).await,
    }
}

/// Runs one connector action of the spec and prints its output.
async fn action(key: String, input: String) -> anyhow::Result<()> {
    let input = read_input(&input)?;
    let lookup = Lookup::load().await?;
    let config = ConnectionConfig::from_lookup(|k| lookup.get(k))?;
    let client = ConnectWiseClient::connect(&config, ClientOptions::default()).await?;
    let output = run_action(&client, &key, input).await?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

/// Prints the site's assets as JSON lines, page by page.
async fn print_assets(fields: Vec<String>) -> anyhow::Result<()> {
    let client = lansweeper_client().await?;
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
                        std::io::Write::write_all(&mut out, b"\n").map_err(serde_json::Error::io)
                    })
                    .map_err(|e| shared::lansweeper::LansweeperError::Decode(e.to_string()))?;
            }
            Ok(())
        })
        .await?;
    std::io::Write::flush(&mut out)?;
    eprintln!("{} assets in {} requests", stats.items, client.api_calls());
    Ok(())
}

/// Prints a recorded run's report, and writes it as JSON or HTML when asked.
async fn report(
    run_id: String,
    json: Option<std::path::PathBuf>,
    html: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let lookup = Lookup::load().await?;
    let store = AnyStore::from_lookup(&lookup).await;
    let trails = revert::trails(&store, &run_id).await?;
    let run_report = match sync::report(&store, &run_id).await? {
        Some(run_report) => {
            sync::print_report(&run_report);
            run_report
        }
        // The run's own records are kept days, its trail months: past the first, what
        // the run wrote is still told, from the trail.
        None if !trails.is_empty() => {
            let run_report = revert::report_from_trails(&run_id, &trails);
            println!("Run {run_id}: its records have expired; from its audit trail, it wrote:");
            revert::print_trail_counts(&run_report);
            run_report
        }
        None => return Err(sync::no_run(&store, &run_id)),
    };
    // The state machine's enrichment runs under the sync's run id.
    if let Some(enriched) = shared::enrichment::recorded(&store, &run_id).await? {
        sync::print_enrich_report(&enriched);
    }
    for trail in &trails {
        revert::print_trail(trail);
    }
    if let Some(path) = json {
        sync::write_json(&path, &html::WithTrails::of(&run_report, &trails))?;
    }
    if let Some(path) = html {
        html::write(&store, &lookup, &run_report, &trails, &path).await?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Makes a configuration the asset's, clearing the link of any other.
async fn link(asset_key: String, configuration_id: i64) -> anyhow::Result<()> {
    let pin = shared::overrides::Pin {
        asset_key,
        configuration_id,
    };
    pin_or_unpin(Some(pin), None).await
}

/// `lscw link` and `lscw unlink`: a link stopped midway is finished first.
async fn pin_or_unpin(
    pin: Option<shared::overrides::Pin>,
    unpin: Option<i64>,
) -> anyhow::Result<()> {
    let env = environment(false).await?;
    let ids = shared::custom_fields::resolve(&env.connectwise, &env.settings).await?;
    let (pinned, unpinned) =
        shared::overrides::pin(&env.connectwise, &env.store, &ids, pin, unpin).await?;
    for done in pinned {
        let (key, id) = (&done.pin.asset_key, done.pin.configuration_id);
        println!("configuration {id} is asset {key}'s");
        for other in done.cleared {
            println!("  cleared the link of configuration {other}");
        }
    }
    if let Some(id) = unpin {
        match unpinned {
            Some(key) => println!("configuration {id} no longer carries asset {key}"),
            None => println!("configuration {id} carried no link"),
        }
    }
    Ok(())
}

/// Writes the retirements the guard held in a run.
async fn approve_retirements(approve: String) -> anyhow::Result<()> {
    let env = environment(false).await?;
    let approval =
        shared::operator::approve_retirement(&env.connectwise, &env.store, &env.settings, &approve)
            .await?;
    println!("run {approve}: {} configurations retired", approval.retired);
    for failure in &approval.failed {
        println!("  failed: {}: {}", failure.asset_key, failure.reason);
    }
    anyhow::ensure!(approval.failed.is_empty(), "some retirements failed");
    Ok(())
}

/// Clears a configuration's link to its asset.
async fn unlink(configuration_id: i64) -> anyhow::Result<()> {
    pin_or_unpin(None, Some(configuration_id)).await
}

/// Shows both leases, or releases one.
async fn lease(action: LeaseAction) -> anyhow::Result<()> {
    let store = AnyStore::from_lookup(&Lookup::load().await?).await;
    let named = [
        ("sync", shared::lease::SYNC),
        ("enrichment", shared::lease::ENRICHMENT),
    ];
    match action {
        LeaseAction::Show => {
            let now = shared::clock::epoch_seconds();
            let minutes = |seconds: u64| seconds.div_ceil(60);
            for (name, lease) in named {
                match lease.holder(&store).await? {
                    None => println!("{name} lease: free"),
                    Some(holder) => println!(
                        "{name} lease: held by {} for {} min (since {}, epoch s); lapses in {} min unless renewed",
                        holder.run_id,
                        minutes(now.saturating_sub(holder.started_at)),
                        holder.started_at,
                        minutes(holder.expires_at.saturating_sub(now)),
                    ),
                }
            }
        }
        LeaseAction::Release { enrichment } => {
            let (name, lease) = named[usize::from(enrichment)];
            match lease.force_release(&store).await? {
                None => println!("the {name} lease is free"),
                Some(holder) => println!("released the {name} lease of {}", holder.run_id),
            }
        }
    }
    Ok(())
}

/// Adds (or takes back) an asset or a configuration to what the sync never writes.
async fn set_ignored(what: Ignored, ignore: bool) -> anyhow::Result<()> {
    let store = AnyStore::from_lookup(&Lookup::load().await?).await;
    let mut overrides = shared::overrides::load(&store).await?;
    let (changed, shown) = match &what {
        Ignored::Asset { key } => {
            let key = key.trim().to_lowercase();
            let changed = if ignore {
                overrides.ignored_assets.insert(key.clone())
            } else {
                overrides.ignored_assets.remove(&key)
            };
            (changed, format!("asset {key}"))
        }
        Ignored::Configuration { id } => {
            let changed = if ignore {
                overrides.ignored_configurations.insert(*id)
            } else {
                overrides.ignored_configurations.remove(id)
            };
            (changed, format!("configuration {id}"))
        }
    };
    shared::overrides::save(&store, &overrides).await?;
    let state = if ignore { "ignored" } else { "written again" };
    if changed {
        println!("{shown}: {state}");
    } else {
        println!("{shown}: already {state}");
    }
    Ok(())
}

/// Serves one simulator (or the pair) until stopped.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per simulator, with its options"
)]
async fn simulate(api: SimulatedApi) -> anyhow::Result<()> {
    match api {
        SimulatedApi::Connectwise {
            listen,
            data,
            seed,
            configurations,
            faults,
        } => {
            let tenant = match data {
                Some(path) => {
                    let data: TenantData = read_json_file(&path)?;
                    let mut tenant = simulators::connectwise::Tenant::from_data(data)
                        .map_err(anyhow::Error::msg)?;
                    tenant.complete_custom_fields();
                    tenant
                }
                None => simulators::connectwise::generate(&TenantSpec {
                    seed,
                    configurations,
                    ..TenantSpec::default()
                })
                .map_err(anyhow::Error::msg)?,
            };
            let simulator = ConnectWiseSimulator::start(tenant, &listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            if let Some(faults) = &faults {
                simulator.control().lose_answers(&faults.0);
            }
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
        SimulatedApi::Lansweeper {
            listen,
            data,
            seed,
            assets,
            speed,
        } => {
            let site = match data {
                Some(path) => simulators::lansweeper::Site::new(read_json_file::<SiteData>(&path)?)
                    .map_err(anyhow::Error::msg)?,
                None => simulators::lansweeper::generate(&SiteSpec { seed, assets })
                    .map_err(anyhow::Error::msg)?,
            };
            let options = simulators::lansweeper::LansweeperOptions::sped_up(speed);
            let simulator = LansweeperSimulator::start(site, options, &listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
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
        SimulatedApi::Pair {
            connectwise_listen,
            lansweeper_listen,
            seed,
            assets,
            speed,
        } => {
            let pair = simulators::scenario::LinkedPair::start(
                &SiteSpec { seed, assets },
                simulators::lansweeper::LansweeperOptions::sped_up(speed),
                &connectwise_listen,
                &lansweeper_listen,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            let exports: Vec<String> = pair
                .settings()
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            eprintln!("  export {}", exports.join(" "));
            let cw = pair.connectwise;
            tokio::select! {
                () = cw.wait() => Ok(()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
    }
}

/// The environment of a sync or enrichment on this machine: the same settings as the
/// Lambda functions read (environment, and the secret `SECRET_ARN` names), the table
/// when one is configured.
async fn environment(dry_run: bool) -> anyhow::Result<Environment<AnyStore>> {
    let lookup = Lookup::load().await?;
    let store = AnyStore::from_lookup(&lookup).await;
    eprintln!("store: {}", store.describe());
    let mut env = Environment::connect(&lookup, store).await?;
    env.settings.dry_run = dry_run;
    Ok(env)
}

async fn lansweeper_client() -> anyhow::Result<LansweeperClient> {
    let lookup = Lookup::load().await?;
    let config = LansweeperConfig::from_lookup(|k| lookup.get(k))?;
    Ok(LansweeperClient::new(config, LansweeperOptions::default())?)
}

fn read_json_file<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the expected JSON", path.display()))
}

fn read_input(input: &str) -> anyhow::Result<Value> {
    let text = match input.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => input.to_string(),
    };
    serde_json::from_str(&text).context("--input is not JSON")
}
