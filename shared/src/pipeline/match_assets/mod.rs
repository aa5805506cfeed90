//! `match`: reads the configurations in scope once and the staged assets, matches them
//! company by company, level by level, guards the retirements and stores the create and
//! modify batches the write lanes take.

mod company;
mod contact;
mod guard;
mod load;
mod section;

use std::collections::{HashMap, HashSet};

use super::batch::put_batches;
use super::lanes;
use crate::calls::CallMeter;
use crate::connectwise::ConnectWiseClient;
use crate::error::PipelineError;
use crate::layout::{self, FetchRecord, MatchRecord, SectionRecord};
use crate::lease;
use crate::lifecycle::RetireGuard;
use crate::matching::{Compact, MatchSpec, Target};
use crate::references::{self, EnsureOutcome, ReferenceIds};
use crate::settings::SyncSettings;
use crate::states::{BulkWriteInput, EnsureReferencesOutput, MatchOutput};
use crate::store::{Store, StoreExt};
use company::{MissingReferences, Planner};
use load::Inputs;
use section::Sections;

/// Reads the scoped configurations once and the staged assets, matches them and writes
/// the create and modify batches.
pub async fn match_assets<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnsureReferencesOutput,
) -> Result<MatchOutput, PipelineError> {
    let run_id = &input.run_id;
    if !settings.dry_run {
        lease::renew(store, run_id).await?;
    }
    let meter = CallMeter::connectwise(connectwise);
    let spec = MatchSpec::for_staged_assets();
    let create_spec = settings.field_policies.create_spec(&spec);
    let Inputs {
        ensured,
        fetched,
        assets,
        company_ids,
        configurations,
        custom_field_ids,
        overrides,
        contacts,
    } = Inputs::read(connectwise, store, settings, run_id, &spec, &create_spec).await?;
    let companies = distinct(assets.iter().map(|a| load::text(a, "company")));
    let link = Target::Custom(spec.link_caption.clone());
    let linked_in = load::links(&configurations, &link);
    let mut by_company = load::by_company(configurations, &company_ids);
    let listed = load::listed_keys(store, &fetched, &assets).await?;

    // Sections in the order their assets came (the mapping's), each company matched once
    // against its own configurations, whichever sites its assets came from.
    let mut sections = Sections::default();
    let (grouped, first_section) = company::assign(
        assets,
        &companies,
        &company_ids,
        &linked_in,
        &overrides,
        &mut sections,
    );
    let references = reference_ids(&ensured, settings.dry_run);
    let missing = MissingReferences::of(&ensured.failures);
    let planner = Planner {
        store,
        settings,
        run_id,
        spec: &spec,
        create_spec: &create_spec,
        references: &references,
        custom_field_ids: &custom_field_ids,
        overrides: &overrides,
        missing: &missing,
        listed: &listed,
        link: &link,
        tickets: tokio::sync::OnceCell::new(),
    };
    let mut linked: HashMap<i64, u64> = HashMap::new();
    for (company_id, members) in grouped {
        let configurations = by_company.remove(&company_id).unwrap_or_default();
        let section = first_section.get(&company_id).copied().unwrap_or(0);
        let company_linked = planner
            .plan_company(
                company_id,
                members,
                &configurations,
                &mut sections.plans,
                section,
            )
            .await?;
        linked.insert(company_id, company_linked);
    }
    linked.extend(retire_in_companies_without_assets(
        &planner,
        by_company,
        &fetched,
        &company_ids,
        &mut sections,
    ));
    let (guard, held) = guard_retirements(
        store,
        settings,
        run_id,
        &fetched,
        &company_ids,
        &linked,
        &mut sections,
    )
    .await?;
    let (records, mut totals) =
        store_sections(store, settings, run_id, sections, &company_ids).await?;
    totals.api_calls = meter.read();
    let record = MatchRecord {
        sections: records,
        guard,
        held,
        approved: Vec::new(),
        custom_field_ids,
        api_calls: totals.api_calls,
        contacts,
    };
    store
        .put(&layout::match_record(run_id), &record, settings.staging_ttl)
        .await?;
    count_lanes(&mut totals, run_id, &record);
    Ok(totals)
}

/// The write groups and lanes of the match's batches, for the state machine's maps.
fn count_lanes(totals: &mut MatchOutput, run_id: &str, record: &MatchRecord) {
    let (create, modify) = lanes::groups_of(record);
    totals.create_groups = create.len();
    totals.modify_groups = modify.len();
    totals.create_lanes = BulkWriteInput::lanes(run_id, create.len());
    totals.modify_lanes = BulkWriteInput::lanes(run_id, modify.len());
}

/// The mapped companies no asset went to this run: the retirements of their linked
/// configurations, each company a section of its own. Answers how many each has linked.
fn retire_in_companies_without_assets<S: Store>(
    planner: &Planner<'_, S>,
    by_company: HashMap<i64, Vec<Compact>>,
    fetched: &FetchRecord,
    company_ids: &HashMap<String, i64>,
    sections: &mut Sections,
) -> HashMap<i64, u64> {
    let mut linked = HashMap::new();
    for (company_id, configurations) in by_company {
        let (company_linked, gone) = guard::gone_assets(
            &configurations,
            planner.listed,
            planner.overrides,
            &planner.settings.retire,
            planner.link,
        );
        linked.insert(company_id, company_linked);
        if !gone.is_empty() {
            let company = fetched
                .companies
                .iter()
                .find(|c| company_ids.get(&references::name_key(c)) == Some(&company_id))
                .cloned()
                .unwrap_or_else(|| company_id.to_string());
            sections.add_retirements(company, gone);
        }
    }
    linked
}

/// The guard over the planned retirements ([`guard::judge`]): answers its verdict and the
/// parts of the retirements it held, for `lscw retire --approve`.
async fn guard_retirements<S: Store>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    fetched: &FetchRecord,
    company_ids: &HashMap<String, i64>,
    linked: &HashMap<i64, u64>,
    sections: &mut Sections,
) -> Result<(Option<RetireGuard>, Vec<String>), PipelineError> {
    let id_of = |company: &str| {
        company_ids
            .get(&references::name_key(company))
            .copied()
            .or_else(|| company.parse().ok())
    };
    let unread: HashMap<Option<i64>, String> = guard::unread_companies(fetched)
        .into_iter()
        .map(|(company, why)| (company_ids.get(&company).copied(), why))
        .collect();
    let companies: Vec<(Option<i64>, String)> = sections
        .names
        .iter()
        .map(|(_, company)| (id_of(company), company.clone()))
        .collect();
    let (guard, held) = guard::judge(
        &settings.retire,
        &mut sections.plans,
        &companies,
        &unread,
        linked,
    );
    let parts = if held.is_empty() {
        Vec::new()
    } else {
        let linked_total: u64 = linked.values().sum();
        tracing::warn!(%run_id, held = held.len(), linked = linked_total, "retirement guard held");
        store
            .put_parts(
                &layout::held_retirements(run_id),
                &held,
                settings.staging_ttl,
            )
            .await?
    };
    Ok((guard, parts))
}

/// The ensured references' ids; in a dry run, those a real run would create too, with
/// placeholder ids, so the plan is complete.
fn reference_ids(ensured: &EnsureOutcome, dry_run: bool) -> ReferenceIds {
    let mut ids = ensured.ids.clone();
    if dry_run {
        for (kind, names) in &ensured.created {
            for name in names {
                ids.insert(*kind, name, 0);
            }
        }
    }
    ids
}

/// Stores each section's last planned items, its retirements, conflicts and failures,
/// and answers the sections' records with the run's totals.
async fn store_sections<S: Store>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    sections: Sections,
    company_ids: &HashMap<String, i64>,
) -> Result<(Vec<SectionRecord>, MatchOutput), PipelineError> {
    let ttl = settings.staging_ttl;
    let mut records = Vec::with_capacity(sections.names.len());
    let mut totals = MatchOutput {
        run_id: run_id.into(),
        ..MatchOutput::default()
    };
    for (n, ((site, company), mut plan)) in
        sections.names.into_iter().zip(sections.plans).enumerate()
    {
        let (creates, modifies) = (plan.creates.planned, plan.modifies.planned);
        plan.creates
            .store(store, settings, run_id, &mut plan.failed)
            .await?;
        plan.modifies
            .store(store, settings, run_id, &mut plan.failed)
            .await?;
        let retire_batches = put_batches(
            store,
            settings,
            run_id,
            &format!("retire/{n:03}"),
            &plan.retires,
            &mut plan.failed,
        )
        .await?;
        totals.to_retire += plan.retires.len() as u64;
        totals.to_create += creates as u64;
        totals.to_modify += modifies as u64;
        totals.unchanged += plan.unchanged;
        totals.conflicts += plan.conflicts.len() as u64;
        totals.failed += plan.failed.len() as u64;
        tracing::info!(%run_id, %site, %company, create = creates, modify = modifies, unchanged = plan.unchanged, conflicts = plan.conflicts.len(), failed = plan.failed.len(), "matched");
        records.push(SectionRecord {
            company_id: company_ids
                .get(&references::name_key(&company))
                .copied()
                .unwrap_or(0),
            site,
            company,
            assets: plan.assets,
            unchanged: plan.unchanged,
            ignored: plan.ignored,
            conflicts: store
                .put_parts(&layout::section_conflicts(run_id, n), &plan.conflicts, ttl)
                .await?,
            failed: store
                .put_parts(&layout::section_failed(run_id, n), &plan.failed, ttl)
                .await?,
            create_batches: plan.creates.batches,
            modify_batches: plan.modifies.batches,
            retire_batches,
            reactivated: plan.reactivated,
        });
    }
    Ok((records, totals))
}

/// Each value once, in first-seen order.
fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .filter(|v| seen.insert(references::name_key(v)))
        .collect()
}
