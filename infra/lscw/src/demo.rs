//! `lscw demo` (what `make demo` runs): both simulators in-process with an MSP's estate
//! (three Lansweeper sites, four clients' companies in ConnectWise), the mapping
//! suggested and set, the whole sync with its report per site and company, then the same
//! sync again to show that a second run writes nothing, then the enrichment twice, and
//! last the revert of the run that wrote (a dry run first).

use anyhow::Context;
use shared::environment::{Environment, Lookup};
use shared::lansweeper::LansweeperOptions;
use shared::operator::MergeOptions;
use shared::pipeline::{Progress, Scope};
use shared::settings::SyncSettings;
use simulators::lansweeper::{self as ls_sim, SiteSpec};
use simulators::scenario::{self, LinkedPair};

use crate::mapping::{self, MappingAction};
use crate::store::AnyStore;
use crate::sync;

/// The demo runs the Lansweeper quota this much faster than real time.
const SPEED: f64 = 60.0;

#[allow(
    clippy::too_many_lines,
    reason = "the demo's script: each step printed as a user follows it"
)]
pub async fn run() -> anyhow::Result<()> {
    let ls_options = ls_sim::LansweeperOptions::sped_up(SPEED);
    let window = ls_options.rate_window;
    let spec = SiteSpec {
        seed: 1,
        assets: 2_000,
    };
    let pair = LinkedPair::start_estate(&spec, ls_options, "127.0.0.1:0", "127.0.0.1:0")
        .await
        .map_err(anyhow::Error::msg)?;
    let (cw, ls) = (&pair.connectwise, &pair.lansweeper);
    println!("ConnectWise simulator: {}", cw.base_url());
    println!(
        "Lansweeper simulator:  {} (sites {})\n",
        ls.api_url(),
        ls.site_ids().join(", ")
    );
    let users = cw
        .with_tenant(|tenant| ls.with_site(|site| scenario::give_users(tenant, site, 10)))
        .map_err(anyhow::Error::msg)?;
    println!(
        "Blue Light Co's devices have last logged-on users: {} are a contact by e-mail, {} by name, {} are two contacts and {} none (the configuration's contact is set for the first two; the others are reported).\n",
        users.by_email, users.by_name, users.ambiguous, users.unknown
    );

    let lookup = Lookup::from_values(pair.settings());
    let pacing = LansweeperOptions {
        rate_window: window,
        hourly_window: window * 60,
        ..LansweeperOptions::default()
    };
    let store = AnyStore::Memory(shared::store::MemoryStore::new());
    let mut env = Environment::connect_with(&lookup, store, pacing).await?;
    let settings = env.settings.clone();

    println!("Mapping: which site goes to which company. `lscw mapping suggest` proposes:");
    mapping::run(&env, MappingAction::Suggest).await?;
    println!("\nThe mapping the operator sets (`lscw mapping set`):");
    for (site, company, rules) in [
        (ls_sim::SITE_ID, Some(scenario::TARGET_COMPANY), vec![]),
        (scenario::CONTOSO_SITE, Some("Contoso"), vec![]),
        (
            scenario::SHARED_SITE,
            None,
            vec![
                format!("custom:{}=Northwind->Northwind", scenario::CUSTOMER_FIELD),
                format!("custom:{}=Fabrikam->Fabrikam", scenario::CUSTOMER_FIELD),
            ],
        ),
    ] {
        mapping::run(
            &env,
            MappingAction::Set {
                site: site.into(),
                company: company.map(Into::into),
                rules,
            },
        )
        .await?;
    }

    println!("\nFirst run: a dry run shows the plan.");
    env.settings = SyncSettings {
        dry_run: true,
        ..settings.clone()
    };
    let (report, plan) = sync::run(&env).await?;
    env.settings = settings;
    if let Some(plan) = &plan {
        sync::print_plan(plan);
    }
    sync::print_report(&report);

    println!("\nSecond run: the sync for real.");
    let writes_before = cw.control().writes();
    let (report, _) = sync::run(&env).await?;
    sync::print_report(&report);
    println!(
        "  ConnectWise write requests: {}",
        cw.control().writes() - writes_before
    );
    let page = std::env::temp_dir().join("lscw-demo-report.html");
    let trails = crate::revert::trails(&env.store, &report.run_id).await?;
    crate::html::write(&env.store, &lookup, &report, &trails, &page).await?;
    let written_run = report.run_id.clone();
    println!(
        "  The run on one page (`lscw report RUN --html FILE`): {}",
        page.display()
    );

    println!("\nThird run: nothing changed in Lansweeper, so nothing is written.");
    // The sync and its enrichment as the state machine runs them, the writes of each
    // counted where the enrichment begins.
    let writes_before = cw.control().writes();
    let at_enrichment = std::sync::Mutex::new((0, 0));
    let (run, _) = sync::run_local(&env, Scope::Both, &|progress| {
        if *progress == Progress::Step("Enrich") {
            let counts = (
                cw.control().writes(),
                ls.control().count("POST graphql:editAsset"),
            );
            *at_enrichment
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
        }
    })
    .await?;
    let (writes_at, edits_at) = at_enrichment
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = run.sync.context("the sync ran")?;
    sync::print_report(&report);
    let writes = writes_at - writes_before;
    println!("  ConnectWise write requests: {writes}");
    if writes != 0 || report.counts.created + report.counts.modified != 0 {
        anyhow::bail!("the repeated run wrote {writes} requests; it should write none");
    }

    println!("\nEnrichment: tickets, agreements and SLA back onto the Lansweeper assets.");
    let enriched = run.enrichment.context("the enrichment ran")?;
    sync::print_enrich_report(&enriched);
    println!(
        "  editAsset requests: {}",
        ls.control().count("POST graphql:editAsset") - edits_at
    );

    println!("\nEnrichment again: nothing changed in ConnectWise, so nothing is written.");
    let edits_before = ls.control().count("POST graphql:editAsset");
    let again = sync::enrich(&env).await?;
    sync::print_enrich_report(&again);
    let edits = ls.control().count("POST graphql:editAsset") - edits_before;
    println!("  editAsset requests: {edits}");
    if edits != 0 {
        anyhow::bail!("the repeated enrichment made {edits} editAsset calls; it should make none");
    }
    merge_duplicates(&env, report.conflicts.len()).await?;
    revert_last(&mut env, &pair, &written_run, &enriched.run_id).await
}

/// The demo's end: the run that wrote is taken back (`lscw revert`), a dry run first,
/// then for real, then again to show a revert is written once.
async fn revert_last(
    env: &mut Environment<AnyStore>,
    pair: &LinkedPair,
    run_id: &str,
    enrichment_run_id: &str,
) -> anyhow::Result<()> {
    let cw = &pair.connectwise;
    println!(
        "\nRevert: the operator takes run {run_id} back. First `lscw revert {run_id} --dry-run`:"
    );
    let settings = env.settings.clone();
    env.settings.dry_run = true;
    let writes_before = cw.control().writes();
    crate::revert::run(env, run_id, false).await?;
    env.settings = settings;
    if cw.control().writes() != writes_before {
        anyhow::bail!("the dry run of the revert wrote to ConnectWise");
    }
    println!("\nThen for real, its many retirements approved (`lscw revert {run_id} --approve`):");
    crate::revert::run(env, run_id, true).await?;
    println!(
        "  ConnectWise write requests: {}",
        cw.control().writes() - writes_before
    );
    println!("\nReverting again writes nothing:");
    let writes_before = cw.control().writes();
    crate::revert::run(env, run_id, true).await?;
    let writes = cw.control().writes() - writes_before;
    if writes != 0 {
        anyhow::bail!("the second revert wrote {writes} requests; it should write none");
    }
    // The enrichment wrote under its own run here (the state machine's shares the
    // sync's, and one `lscw revert` takes both back).
    let ls = &pair.lansweeper;
    let edits = || ls.control().count("POST graphql:editAsset");
    println!("\nThe enrichment's values too (`lscw revert {enrichment_run_id}`), a dry run first:");
    let settings = env.settings.clone();
    env.settings.dry_run = true;
    let edits_before = edits();
    crate::revert::run(env, enrichment_run_id, false).await?;
    env.settings = settings;
    anyhow::ensure!(
        edits() == edits_before,
        "the dry run of the revert wrote to Lansweeper"
    );
    println!("\nThen for real:");
    crate::revert::run(env, enrichment_run_id, false).await?;
    println!("  editAsset requests: {}", edits() - edits_before);
    println!("\nReverting the enrichment again writes nothing:");
    let edits_before = edits();
    crate::revert::run(env, enrichment_run_id, false).await?;
    let written = edits() - edits_before;
    anyhow::ensure!(
        written == 0,
        "the second revert made {written} editAsset calls; it should make none"
    );
    Ok(())
}

/// Groups and merges the demo prints of each list.
const SHOWN: usize = 3;

/// The conflicts the runs reported are configurations entered twice before the
/// integration: listed, merged (a dry run first), and the next sync reports none.
async fn merge_duplicates(env: &Environment<AnyStore>, conflicts: usize) -> anyhow::Result<()> {
    println!(
        "\nDuplicates: the {conflicts} conflicts are devices ConnectWise has twice (`lscw duplicates`)."
    );
    let (cw_before, ls_before) = (env.connectwise.api_calls(), env.lansweeper.api_calls());
    crate::merge::duplicates(env, None, SHOWN).await?;
    println!(
        "  read in {} ConnectWise requests (the tickets the enrichment knows, read again only where changed) and {} Lansweeper requests (filters, not the sites)",
        env.connectwise.api_calls() - cw_before,
        env.lansweeper.api_calls() - ls_before
    );
    println!("\n`lscw merge --all-suggested --dry-run`:");
    let mut options = MergeOptions {
        dry_run: true,
        approve: false,
    };
    crate::merge::merge(env, &[], true, None, options, SHOWN).await?;
    println!(
        "\n`lscw merge --all-suggested` (within the guard: 40 retirements are 2% of the linked configurations):"
    );
    options.dry_run = false;
    let cw_before = env.connectwise.api_calls();
    let merged = crate::merge::merge(env, &[], true, None, options, SHOWN).await?;
    println!(
        "  {} ConnectWise requests, the duplicates found again included",
        env.connectwise.api_calls() - cw_before
    );
    anyhow::ensure!(merged.failed.is_empty(), "some merges failed");
    println!("\nThe sync again: the merged devices are one configuration each.");
    let (report, _) = sync::run(env).await?;
    sync::print_report(&report);
    if !report.conflicts.is_empty() {
        anyhow::bail!(
            "{} conflicts after the merges; there should be none",
            report.conflicts.len()
        );
    }
    Ok(())
}
