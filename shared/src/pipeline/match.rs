//! `match`: reads the configurations in scope once and the staged assets, matches them
//! level by level, and stores the create and modify batches the writers take.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fetch::{self, FetchRecord};
use super::references::{EnsureOutput, checked_custom_fields, ensured, resolved_companies};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::{ConnectWiseClient, ListQuery, actions};
use crate::error::PipelineError;
use crate::lease;
use crate::lifecycle::{self, RetireGuard};
use crate::matching::{self, Compact, FieldDiff, Fields, MatchSpec, Target};
use crate::overrides;
use crate::payload::{self, WriteContext};
use crate::references::{self, ReferenceIds, ReferenceKind};
use crate::run::run_key;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{PART_BYTES, SizedGroups, Store, StoreError, StoreExt};

/// Batches a write lane writes between two looks at its deadline. 10 batches of 50 keep
/// a 100,000-asset run at 200 groups per Map, so even one group an invocation stays far
/// under Step Functions' 25,000-event history, and one group's work (10–30 ConnectWise
/// requests) well inside the margin a lane keeps before Lambda's deadline.
pub const GROUP_SIZE: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchOutput {
    pub run_id: String,
    /// Groups of up to [`GROUP_SIZE`] batches to create and to modify; their keys stay
    /// in the store ([`planned_groups`]), so the state is the same size at any estate.
    pub create_groups: usize,
    pub modify_groups: usize,
    /// The Maps' items: at most [`LANES`] each.
    pub create_lanes: Vec<LaneInput>,
    pub modify_lanes: Vec<LaneInput>,
    pub to_create: u64,
    pub to_modify: u64,
    /// Configurations to retire (their batches are among the modify groups).
    #[serde(default)]
    pub to_retire: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// A configuration to create, as the create batches hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateItem {
    pub asset_key: String,
    pub name: String,
    pub body: Value,
}

/// A configuration to change, as the modify batches hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyItem {
    pub asset_key: String,
    pub name: String,
    pub configuration_id: i64,
    pub unmatched_fields: Vec<FieldDiff>,
    /// A retirement of a configuration whose asset left its site: not one of the run's
    /// assets, so outside its accounting of assets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asset_gone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictReport {
    pub asset_key: String,
    pub name: String,
    pub reason: String,
    pub candidates: Vec<i64>,
}

/// What the writers and the report read of the match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MatchRecord {
    /// One per site and company, in the mapping's order.
    pub sections: Vec<SectionRecord>,
    /// Why the run retires nothing, when the guard held or the listing was incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<RetireGuard>,
    /// The retirements the guard held (parts of [`ModifyItem`]s): what `lscw retire
    /// --approve` writes.
    #[serde(default)]
    pub held: Vec<String>,
    /// `lscw retire --approve` wrote the held retirements (their batches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved: Vec<String>,
    pub custom_field_ids: HashMap<String, i64>,
    pub api_calls: ApiCalls,
}

/// The assets of one site that go to one company, and what became of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SectionRecord {
    pub site: String,
    pub company: String,
    pub company_id: i64,
    pub assets: u64,
    pub unchanged: u64,
    /// Assets the operator's overrides keep out of every write.
    #[serde(default)]
    pub ignored: u64,
    pub conflicts: Vec<String>,
    pub failed: Vec<String>,
    pub create_batches: Vec<String>,
    pub modify_batches: Vec<String>,
    /// Retirements ([`ModifyItem`]s changing status and active flag).
    #[serde(default)]
    pub retire_batches: Vec<String>,
    /// Modifies that reactivate a retired configuration (planned).
    #[serde(default)]
    pub reactivated: u64,
}

/// What matching decided for one section, before it is stored.
#[derive(Default)]
struct SectionPlan {
    assets: u64,
    unchanged: u64,
    ignored: u64,
    creates: Pending,
    modifies: Pending,
    conflicts: Vec<ConflictReport>,
    failed: Vec<Rejected>,
    retires: Vec<ModifyItem>,
    reactivated: u64,
}

/// What match reads of a staged asset besides the spec's paths (its section, the
/// references a failure names).
const ASSET_FIELDS: &[&str] = &[
    "key",
    "name",
    "site",
    "company",
    "retired",
    "type",
    "state",
    "manufacturer",
    "location",
];

/// What match reads of a configuration besides the spec's targets (its keys, company,
/// and whether it is retired).
const CONFIGURATION_FIELDS: &[&str] = &[
    "id",
    "name",
    "serialNumber",
    "macAddress",
    "company.id",
    "activeFlag",
    "status.name",
];

impl SectionPlan {
    /// The plan of the `n`th section: its batches are named for it.
    fn numbered(n: usize) -> Self {
        Self {
            creates: Pending::of_kind(format!("create/{n:03}")),
            modifies: Pending::of_kind(format!("modify/{n:03}")),
            ..Self::default()
        }
    }
}

/// Planned items held at most before they are stored: a run's plan is stored as it is
/// made, never held whole, whatever the size of the estate.
const HELD_ITEMS: usize = 2_000;

/// The items of one kind of one section, stored in batches as they are planned.
#[derive(Default)]
struct Pending {
    kind: String,
    items: Vec<Planned>,
    /// Items planned, stored or not.
    planned: usize,
    /// How many times items were stored: each time's batches are numbered apart.
    stored: usize,
    batches: Vec<String>,
}

impl Pending {
    fn of_kind(kind: String) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    async fn add<S: Store>(
        &mut self,
        item: Planned,
        store: &S,
        settings: &SyncSettings,
        run_id: &str,
        failed: &mut Vec<Rejected>,
    ) -> Result<(), PipelineError> {
        self.items.push(item);
        self.planned += 1;
        if self.items.len() >= HELD_ITEMS {
            self.store(store, settings, run_id, failed).await?;
        }
        Ok(())
    }

    /// Stores the items held; one too large for a batch fails alone, into `failed`.
    async fn store<S: Store>(
        &mut self,
        store: &S,
        settings: &SyncSettings,
        run_id: &str,
        failed: &mut Vec<Rejected>,
    ) -> Result<(), PipelineError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let kind = format!("{}/{:02}", self.kind, self.stored);
        let items = std::mem::take(&mut self.items);
        self.batches
            .extend(put_planned(store, settings, run_id, &kind, items, failed).await?);
        self.stored += 1;
        Ok(())
    }
}

pub(crate) fn record_key(run_id: &str) -> String {
    run_key(run_id, "match")
}

/// Reads the scoped configurations once and the staged assets, matches them and writes
/// the create and modify batches.
pub async fn match_assets<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnsureOutput,
) -> Result<MatchOutput, PipelineError> {
    let run_id = &input.run_id;
    if !settings.dry_run {
        lease::renew(store, run_id).await?;
    }
    let meter = CallMeter::connectwise(connectwise);
    let spec = MatchSpec::for_staged_assets();
    let (ensured, _) = ensured(store, run_id).await?;
    let mut ids: ReferenceIds = ensured.ids.clone();
    if settings.dry_run {
        // References a real run would create: placeholder ids, so the plan is complete.
        for (kind, names) in &ensured.created {
            for name in names {
                ids.insert(*kind, name, 0);
            }
        }
    }
    let create_spec = settings.field_policies.create_spec(&spec);
    // Staged assets held compact, chunk by chunk as they are read: only the values
    // matching, the writes and the report read.
    let asset_targets = Compact::targets(
        ASSET_FIELDS
            .iter()
            .map(|f| Target::Field((*f).to_string()))
            .chain(
                spec.targets()
                    .into_iter()
                    .chain(create_spec.targets())
                    .map(|(path, _)| Target::Field(path.to_string())),
            ),
    );
    let fetched: FetchRecord = store.require(&fetch::record_key(run_id)).await?;
    let chunks: Vec<String> = store.get_parts(&fetched.chunks).await?;
    let mut values: Vec<Compact> = Vec::new();
    for chunk in &chunks {
        let part: Vec<Value> = store.require(chunk).await?;
        values.extend(part.iter().map(|a| Compact::of(a, &asset_targets, None)));
    }
    let text = |asset: &Compact, field: &str| -> String { asset.at(field).unwrap_or_default() };
    let companies = distinct(values.iter().map(|v| text(v, "company")));
    let company_ids = resolved_companies(store, run_id).await?;
    let query = ListQuery {
        conditions: settings.match_conditions.clone(),
        fields: Some(format!(
            "{},company/id,activeFlag",
            spec.configuration_fields()
        )),
        ..ListQuery::default()
    };
    // Of each configuration, only what matching, the retirements and the report read (a
    // long custom field value as its fingerprint): a tenant's other fields and the
    // software lists would otherwise dominate the memory.
    let configuration_targets = Compact::targets(
        CONFIGURATION_FIELDS
            .iter()
            .map(|f| Target::Field((*f).to_string()))
            .chain(spec.targets().into_iter().map(|(_, target)| target))
            .chain([Target::Custom(spec.link_caption.clone())]),
    );
    let configurations = connectwise
        .list_complete_as(actions::CONFIGURATIONS, &query, |configuration| {
            Compact::of(
                &configuration,
                &configuration_targets,
                Some(spec.case_sensitive_match),
            )
        })
        .await?;
    let custom_field_ids = checked_custom_fields(store, run_id).await?;

    let reference_failures: HashMap<(ReferenceKind, String), String> = ensured
        .failures
        .iter()
        .map(|f| ((f.kind, references::name_key(&f.name)), f.reason.clone()))
        .collect();
    let why_missing = |error: String, asset: &Compact| -> String {
        for (kind, field) in [
            (ReferenceKind::Type, "type"),
            (ReferenceKind::Status, "state"),
            (ReferenceKind::Manufacturer, "manufacturer"),
            (ReferenceKind::Location, "location"),
        ] {
            let name = asset.at(field);
            if let Some(reason) = name
                .as_deref()
                .and_then(|n| reference_failures.get(&(kind, references::name_key(n))))
            {
                return format!(
                    "{} `{}` could not be created: {reason}",
                    kind.configuration_field(),
                    name.as_deref().unwrap_or("")
                );
            }
        }
        error
    };

    // Which company holds each linked configuration: an asset linked in another company
    // than its mapping's is a conflict, never a second configuration.
    let link = Target::Custom(spec.link_caption.clone());
    let company_of = |c: &Compact| c.at("company.id").and_then(|id| id.parse::<i64>().ok());
    let mut linked_in: HashMap<String, Vec<(i64, Option<i64>)>> = HashMap::new();
    for configuration in &configurations {
        if let Some(key) = configuration.text(&link) {
            let id = matching::configuration_id(configuration);
            linked_in
                .entry(key.to_lowercase())
                .or_default()
                .push((id, company_of(configuration)));
        }
    }
    let mut by_company: HashMap<i64, Vec<Compact>> = HashMap::new();
    for configuration in configurations {
        if let Some(company) = company_of(&configuration)
            && company_ids.values().any(|&id| id == company)
        {
            by_company.entry(company).or_default().push(configuration);
        }
    }
    let identifier_of = |id: i64| {
        companies
            .iter()
            .find(|c| company_ids.get(&references::name_key(c)) == Some(&id))
            .map_or_else(|| format!("company {id}"), |c| format!("company {c}"))
    };

    let overrides = overrides::load(store).await?;
    let retire = &settings.retire;
    // Every key the sites listed (unmapped and rejected ones too): a configuration linked
    // to any of them is not retired. An incomplete or empty listing retires nothing.
    let mut listed: HashSet<String> = values
        .iter()
        .map(|v| text(v, "key").to_lowercase())
        .collect();
    for site in &fetched.sites {
        for part in [&site.unmapped, &site.rejected] {
            let entries: Vec<Rejected> = store.get_parts(part).await?;
            listed.extend(entries.into_iter().map(|e| e.asset_key.to_lowercase()));
        }
    }
    let incomplete = fetched
        .sites
        .iter()
        .find(|s| s.error.is_some() || s.assets == 0)
        .map(|s| match &s.error {
            Some(error) => format!("site {} was not read whole ({error})", s.site),
            None => format!("site {} listed no asset", s.site),
        });
    let mut company_section: HashMap<i64, usize> = HashMap::new();
    let mut linked_total = 0u64;
    // Sections in the order their assets came (the mapping's), each company matched once
    // against its own configurations, whichever sites its assets came from.
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut section_of: HashMap<(String, String), usize> = HashMap::new();
    let mut plans: Vec<SectionPlan> = Vec::new();
    let mut grouped: HashMap<i64, Vec<(usize, Compact)>> = HashMap::new();
    for asset in values {
        let section = (text(&asset, "site"), text(&asset, "company"));
        let index = *section_of.entry(section.clone()).or_insert_with(|| {
            sections.push(section.clone());
            plans.push(SectionPlan::numbered(sections.len() - 1));
            sections.len() - 1
        });
        plans[index].assets += 1;
        let Some(&company_id) = company_ids.get(&references::name_key(&section.1)) else {
            plans[index].failed.push(Rejected {
                asset_key: text(&asset, "key"),
                reason: format!(
                    "the mapping sends it to company {}, which ConnectWise does not have (`lscw mapping list`)",
                    section.1
                ),
            });
            continue;
        };
        let key = text(&asset, "key").to_lowercase();
        if overrides.ignores_asset(&key) {
            plans[index].ignored += 1;
            // Still matched, so its configuration stays out of other assets' reach.
            grouped.entry(company_id).or_default().push((index, asset));
            continue;
        }
        let elsewhere: Vec<&(i64, Option<i64>)> = linked_in
            .get(&key)
            .map(|found| {
                found
                    .iter()
                    .filter(|(_, c)| *c != Some(company_id))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((configuration, company)) = elsewhere.first() {
            plans[index].conflicts.push(ConflictReport {
                asset_key: text(&asset, "key"),
                name: text(&asset, "name"),
                reason: format!(
                    "linked configuration {configuration} is in {}, the mapping says {}",
                    company.map_or_else(|| "another company".to_string(), identifier_of),
                    identifier_of(company_id),
                ),
                candidates: elsewhere.iter().map(|(id, _)| *id).collect(),
            });
            continue;
        }
        company_section.entry(company_id).or_insert(index);
        grouped.entry(company_id).or_default().push((index, asset));
    }

    for (company_id, members) in grouped {
        let configurations = by_company.remove(&company_id).unwrap_or_default();
        let (owners, assets): (Vec<usize>, Vec<Compact>) = members.into_iter().unzip();
        let outcome = matching::pair(&spec, &assets, &configurations);
        let context = WriteContext {
            company_id,
            references: ids.clone(),
            custom_field_ids: custom_field_ids.clone(),
        };
        let ignored_asset = |asset: &Compact| overrides.ignores_asset(&text(asset, "key"));
        let retired_state = |asset: &Compact| asset.at("retired").as_deref() == Some("true");
        for &index in &outcome.unmatched {
            let asset = &assets[index];
            if ignored_asset(asset) {
                continue;
            }
            let plan = &mut plans[owners[index]];
            if retired_state(asset) {
                // Retired before it ever had a configuration: nothing to write.
                plan.unchanged += 1;
                continue;
            }
            match payload::create_body(&create_spec, asset, &context) {
                Ok(body) => {
                    let item = Planned::of(&CreateItem {
                        asset_key: text(asset, "key"),
                        name: text(asset, "name"),
                        body,
                    })?;
                    plan.creates
                        .add(item, store, settings, run_id, &mut plan.failed)
                        .await?;
                }
                Err(error) => plan.failed.push(Rejected {
                    asset_key: text(asset, "key"),
                    reason: why_missing(error, asset),
                }),
            }
        }
        // Differences taken one match at a time: held once, as the planned item's text.
        for matched in &outcome.matched {
            let asset = &assets[matched.asset_index];
            let plan = &mut plans[owners[matched.asset_index]];
            if ignored_asset(asset) {
                continue;
            }
            if overrides.ignores_configuration(matched.configuration_id) {
                plan.ignored += 1;
                continue;
            }
            let configuration = configurations.get(matched.configuration_index);
            if retired_state(asset) {
                match configuration {
                    Some(c) if !retire.is_retired(c) => plan.retires.push(ModifyItem {
                        asset_key: text(asset, "key"),
                        name: text(asset, "name"),
                        configuration_id: matched.configuration_id,
                        unmatched_fields: retire.retirement(c),
                        asset_gone: false,
                    }),
                    _ => plan.unchanged += 1,
                }
                continue;
            }
            // What ConnectWise owns (or fills) is left as the service desk keeps it.
            let differences = configuration
                .map(|c| matching::differences(&spec, asset, c))
                .unwrap_or_default();
            let mut changes = settings.field_policies.allowed(&differences);
            if configuration.is_some_and(|c| retire.is_retired(c)) {
                // The asset came back: active again, its status from the asset.
                changes.push(lifecycle::active_flag(true));
                plan.reactivated += 1;
            }
            if changes.is_empty() {
                plan.unchanged += 1;
                continue;
            }
            // A reference a changed field needs must exist, or the update cannot be written.
            let probe = payload::update_body(&json!({}), &changes, &context);
            if let Err(error) = probe {
                plan.failed.push(Rejected {
                    asset_key: text(asset, "key"),
                    reason: why_missing(error, asset),
                });
                continue;
            }
            let item = Planned::of(&ModifyItem {
                asset_key: text(asset, "key"),
                name: text(asset, "name"),
                configuration_id: matched.configuration_id,
                unmatched_fields: changes,
                asset_gone: false,
            })?;
            plan.modifies
                .add(item, store, settings, run_id, &mut plan.failed)
                .await?;
        }
        // Configurations linked to an asset no site listed any more.
        let (linked, gone) = gone_assets(&configurations, &listed, &overrides, retire, &link);
        linked_total += linked;
        let section = company_section.get(&company_id).copied().unwrap_or(0);
        plans[section].retires.extend(gone);
        for conflict in &outcome.conflicts {
            let asset = &assets[conflict.asset_index];
            if ignored_asset(asset) {
                continue;
            }
            plans[owners[conflict.asset_index]]
                .conflicts
                .push(ConflictReport {
                    asset_key: text(asset, "key"),
                    name: text(asset, "name"),
                    reason: conflict.reason.clone(),
                    candidates: conflict.candidates.clone(),
                });
        }
    }

    // The mapped companies no asset went to this run: their linked configurations too.
    for (company_id, configurations) in by_company {
        let (linked, gone) = gone_assets(&configurations, &listed, &overrides, retire, &link);
        linked_total += linked;
        if gone.is_empty() {
            continue;
        }
        let company = fetched
            .companies
            .iter()
            .find(|c| company_ids.get(&references::name_key(c)) == Some(&company_id))
            .cloned()
            .unwrap_or_else(|| company_id.to_string());
        sections.push((String::new(), company));
        plans.push(SectionPlan {
            retires: gone,
            ..SectionPlan::default()
        });
    }

    let ttl = settings.staging_ttl;
    let would_retire: u64 = plans.iter().map(|p| p.retires.len() as u64).sum();
    let incomplete_listing = incomplete.is_some();
    let verdict = incomplete
        .map(|why| format!("{why}: an incomplete listing never counts as assets leaving"))
        .or_else(|| retire.guard(would_retire, linked_total));
    let mut guard = None;
    let mut held = Vec::new();
    if let Some(reason) = verdict
        && (would_retire > 0 || (incomplete_listing && linked_total > 0))
    {
        let mut items: Vec<ModifyItem> = Vec::new();
        for plan in &mut plans {
            for item in std::mem::take(&mut plan.retires) {
                if !item.asset_gone {
                    // A listed asset in a retired state: not written this run, and said so.
                    plan.failed.push(Rejected {
                        asset_key: item.asset_key.clone(),
                        reason: format!("its retirement is held by the guard: {reason}"),
                    });
                }
                items.push(item);
            }
        }
        tracing::warn!(%run_id, would_retire, linked = linked_total, %reason, "retirement guard held");
        held = store
            .put_parts(&run_key(run_id, "retire-held"), &items, ttl)
            .await?;
        guard = Some(RetireGuard {
            reason,
            would_retire,
            linked: linked_total,
            first: items.iter().take(5).map(|i| i.name.clone()).collect(),
        });
    }
    let mut records = Vec::with_capacity(sections.len());
    let mut totals = MatchOutput {
        run_id: run_id.clone(),
        ..MatchOutput::default()
    };
    for (n, ((site, company), mut plan)) in sections.into_iter().zip(plans).enumerate() {
        let part = |what: &str| format!("{what}/{n:03}");
        let (creates, modifies) = (plan.creates.planned, plan.modifies.planned);
        plan.creates
            .store(store, settings, run_id, &mut plan.failed)
            .await?;
        plan.modifies
            .store(store, settings, run_id, &mut plan.failed)
            .await?;
        let create_batches = std::mem::take(&mut plan.creates.batches);
        let modify_batches = std::mem::take(&mut plan.modifies.batches);
        let retire_batches = put_batches(
            store,
            settings,
            run_id,
            &part("retire"),
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
                .put_parts(&run_key(run_id, &part("conflicts")), &plan.conflicts, ttl)
                .await?,
            failed: store
                .put_parts(&run_key(run_id, &part("match-failed")), &plan.failed, ttl)
                .await?,
            create_batches,
            modify_batches,
            retire_batches,
            reactivated: plan.reactivated,
        });
    }
    totals.api_calls = meter.read();
    let record = MatchRecord {
        sections: records,
        guard,
        held,
        approved: Vec::new(),
        custom_field_ids,
        api_calls: totals.api_calls,
    };
    store.put(&record_key(run_id), &record, ttl).await?;
    let (create, modify) = record.groups();
    totals.create_groups = create.len();
    totals.modify_groups = modify.len();
    totals.create_lanes = LaneInput::lanes(run_id, create.len());
    totals.modify_lanes = LaneInput::lanes(run_id, modify.len());
    Ok(totals)
}

impl MatchRecord {
    /// The run's create and modify batches in groups of [`GROUP_SIZE`], in the order the
    /// write lanes take them; retirements are modifies, written by the same step.
    fn groups(&self) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        let all = |pick: fn(&SectionRecord) -> &Vec<String>| -> Vec<String> {
            self.sections
                .iter()
                .flat_map(|s| pick(s).iter().cloned())
                .collect()
        };
        let groups =
            |batches: Vec<String>| batches.chunks(GROUP_SIZE).map(<[String]>::to_vec).collect();
        let mut modify_batches = all(|s| &s.modify_batches);
        modify_batches.extend(all(|s| &s.retire_batches));
        (groups(all(|s| &s.create_batches)), groups(modify_batches))
    }
}

/// The groups of batches a run's match planned: (create, modify), as the write lanes
/// read them from the store.
pub async fn planned_groups<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<(Vec<Vec<String>>, Vec<Vec<String>>), PipelineError> {
    let record: MatchRecord = store.require(&record_key(run_id)).await?;
    Ok(record.groups())
}

/// Write lanes a run's Map runs side by side (its `MaxConcurrency`): each lane writes
/// the groups `lane`, `lane + lanes`, … one invocation after the other, so the state
/// names at most this many lanes whatever the size of the estate.
pub const LANES: usize = 4;

/// One write lane: what a bulk function is invoked with, first by the Map (`next` =
/// `lane`), then again with the `next` its last invocation answered, until `done`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaneInput {
    pub run_id: String,
    pub lane: usize,
    pub lanes: usize,
    /// The group to write next.
    pub next: usize,
}

impl LaneInput {
    /// The lanes that write `groups` groups: as many as [`LANES`], fewer for fewer groups.
    pub fn lanes(run_id: &str, groups: usize) -> Vec<Self> {
        let lanes = groups.min(LANES);
        (0..lanes)
            .map(|lane| Self {
                run_id: run_id.to_string(),
                lane,
                lanes,
                next: lane,
            })
            .collect()
    }
}

/// Of `configurations`, how many are linked, and the retirements of those whose asset
/// no site listed (neither ignored nor retired already).
fn gone_assets(
    configurations: &[Compact],
    listed: &HashSet<String>,
    overrides: &overrides::Overrides,
    retire: &lifecycle::RetirePolicy,
    link: &Target,
) -> (u64, Vec<ModifyItem>) {
    let mut linked = 0;
    let mut gone = Vec::new();
    for configuration in configurations {
        let Some(key) = configuration.text(link) else {
            continue;
        };
        linked += 1;
        let id = matching::configuration_id(configuration);
        if listed.contains(&key.to_lowercase())
            || overrides.ignores_configuration(id)
            || retire.is_retired(configuration)
        {
            continue;
        }
        gone.push(ModifyItem {
            asset_key: key,
            name: configuration.at("name").unwrap_or_default(),
            configuration_id: id,
            unmatched_fields: retire.retirement(configuration),
            asset_gone: true,
        });
    }
    (linked, gone)
}

/// Each value once, in first-seen order.
fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .filter(|v| seen.insert(references::name_key(v)))
        .collect()
}

/// Stores `items` in batches of at most `batch_size` items and [`PART_BYTES`] bytes
/// each, and answers their keys; an item too large for a batch of its own fails alone.
pub(crate) async fn put_batches<S: Store, T: Serialize + Sync + Keyed>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    kind: &str,
    items: &[T],
    failed: &mut Vec<Rejected>,
) -> Result<Vec<String>, PipelineError> {
    let planned = items.iter().map(Planned::of).collect::<Result<_, _>>()?;
    put_planned(store, settings, run_id, kind, planned, failed).await
}

/// An item serialised as soon as it is decided: a run's plan is held as compact JSON
/// text until its batches are stored, not as parsed values (several times larger).
pub(crate) struct Planned {
    asset_key: String,
    text: String,
}

impl Planned {
    fn of<T: Serialize + Keyed>(item: &T) -> Result<Self, PipelineError> {
        let mut text = serde_json::to_string(item).map_err(|e| StoreError::Corrupt {
            key: "(planned item)".into(),
            reason: e.to_string(),
        })?;
        // Serialising doubles the buffer as it grows; a plan holds many of these.
        text.shrink_to_fit();
        Ok(Self {
            asset_key: item.asset_key().to_string(),
            text,
        })
    }
}

/// [`put_batches`] of items serialised already.
async fn put_planned<S: Store>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    kind: &str,
    items: Vec<Planned>,
    failed: &mut Vec<Rejected>,
) -> Result<Vec<String>, PipelineError> {
    let (keys, texts): (Vec<String>, Vec<String>) =
        items.into_iter().map(|p| (p.asset_key, p.text)).unzip();
    let sized = SizedGroups::of_texts(texts, settings.batch_size, PART_BYTES);
    for &index in &sized.too_large {
        failed.push(Rejected {
            asset_key: keys[index].clone(),
            reason: format!(
                "too large to write: {} bytes serialised, a batch holds at most {PART_BYTES}",
                sized.texts[index].len()
            ),
        });
    }
    let mut keys = Vec::with_capacity(sized.groups.len());
    for (n, group) in sized.groups.iter().enumerate() {
        let key = run_key(run_id, &format!("{kind}/{n:04}"));
        let texts: Vec<&str> = group.iter().map(|&i| sized.texts[i].as_str()).collect();
        store
            .put_raw(&key, format!("[{}]", texts.join(",")), settings.staging_ttl)
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Items that belong to an asset.
pub(crate) trait Keyed {
    fn asset_key(&self) -> &str;
}

impl Keyed for CreateItem {
    fn asset_key(&self) -> &str {
        &self.asset_key
    }
}

impl Keyed for ModifyItem {
    fn asset_key(&self) -> &str {
        &self.asset_key
    }
}
