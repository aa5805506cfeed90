//! Matching one company's assets to its configurations and planning what to write: a
//! creation for an asset without a configuration, the changed fields of a matched one,
//! a retirement for an asset in a retired state, a conflict where the keys disagree.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::guard::gone_assets;
use super::load::text;
use super::section::{SectionPlan, Sections};
use crate::duplicates;
use crate::error::PipelineError;
use crate::layout::{ConflictReport, CreateItem, ModifyItem};
use crate::lifecycle;
use crate::matching::{self, Compact, Fields, MatchSpec, Target};
use crate::overrides::Overrides;
use crate::payload::{self, WriteContext};
use crate::pipeline::batch::Planned;
use crate::references::{self, ReferenceFailure, ReferenceIds, ReferenceKind};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::Store;

/// Why an asset's write cannot be built: names the reference ensure-references could not
/// create, when that is the cause.
pub(super) struct MissingReferences(HashMap<(ReferenceKind, String), String>);

impl MissingReferences {
    pub fn of(failures: &[ReferenceFailure]) -> Self {
        Self(
            failures
                .iter()
                .map(|f| ((f.kind, references::name_key(&f.name)), f.reason.clone()))
                .collect(),
        )
    }

    /// `error`, or the reference of `asset` that could not be created.
    pub fn explain(&self, error: String, asset: &Compact) -> String {
        for (kind, field) in [
            (ReferenceKind::Type, "type"),
            (ReferenceKind::Status, "state"),
            (ReferenceKind::Manufacturer, "manufacturer"),
            (ReferenceKind::Location, "location"),
        ] {
            let name = asset.at(field);
            if let Some(reason) = name
                .as_deref()
                .and_then(|n| self.0.get(&(kind, references::name_key(n))))
            {
                return format!(
                    "{} `{}` could not be created: {reason}",
                    kind.configuration_field(),
                    name.as_deref().unwrap_or("")
                );
            }
        }
        error
    }
}

/// What planning every company shares.
pub(super) struct Planner<'a, S> {
    pub store: &'a S,
    pub settings: &'a SyncSettings,
    pub run_id: &'a str,
    pub spec: &'a MatchSpec,
    pub create_spec: &'a MatchSpec,
    pub references: &'a ReferenceIds,
    pub custom_field_ids: &'a HashMap<String, i64>,
    pub overrides: &'a Overrides,
    pub missing: &'a MissingReferences,
    /// Every key the sites listed, lower-cased.
    pub listed: &'a HashSet<String>,
    pub link: &'a Target,
    /// Tickets per configuration as the enrichment last read them, loaded at the first
    /// conflict that could be a merge: what picks the configuration its merge keeps.
    pub tickets: tokio::sync::OnceCell<HashMap<i64, usize>>,
}

/// The assets a company's matching takes, each with the section it is counted in.
pub(super) type Members = Vec<(usize, Compact)>;

/// Puts each asset in its section and its company's members; an asset whose company
/// ConnectWise lacks fails, one linked in another company is a conflict. An ignored
/// asset is still matched, so its configuration stays out of other assets' reach.
pub(super) fn assign(
    assets: Vec<Compact>,
    companies: &[String],
    company_ids: &HashMap<String, i64>,
    linked_in: &HashMap<String, Vec<(i64, Option<i64>)>>,
    overrides: &Overrides,
    sections: &mut Sections,
) -> (HashMap<i64, Members>, HashMap<i64, usize>) {
    let identifier_of = |id: i64| {
        companies
            .iter()
            .find(|c| company_ids.get(&references::name_key(c)) == Some(&id))
            .map_or_else(|| format!("company {id}"), |c| format!("company {c}"))
    };
    let mut grouped: HashMap<i64, Members> = HashMap::new();
    let mut first_section: HashMap<i64, usize> = HashMap::new();
    for asset in assets {
        let company = text(&asset, "company");
        let index = sections.of(text(&asset, "site"), company.clone());
        let plan = &mut sections.plans[index];
        plan.assets += 1;
        let Some(&company_id) = company_ids.get(&references::name_key(&company)) else {
            plan.failed.push(Rejected {
                asset_key: text(&asset, "key"),
                reason: format!(
                    "the mapping sends it to company {company}, which ConnectWise does not have (`lscw mapping list`)"
                ),
            });
            continue;
        };
        // The company's retirements are counted in its first section, whatever becomes
        // of this asset (ignored, in conflict): never in another company's.
        first_section.entry(company_id).or_insert(index);
        let key = text(&asset, "key").to_lowercase();
        if overrides.ignores_asset(&key) {
            plan.ignored += 1;
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
            plan.conflicts.push(ConflictReport {
                asset_key: text(&asset, "key"),
                name: text(&asset, "name"),
                reason: format!(
                    "linked configuration {configuration} is in {}, the mapping says {}",
                    company.map_or_else(|| "another company".to_string(), identifier_of),
                    identifier_of(company_id),
                ),
                candidates: elsewhere.iter().map(|(id, _)| *id).collect(),
                merge: None,
            });
            continue;
        }
        grouped.entry(company_id).or_default().push((index, asset));
    }
    (grouped, first_section)
}

impl<S: Store> Planner<'_, S> {
    fn ignored(&self, asset: &Compact) -> bool {
        self.overrides.ignores_asset(&text(asset, "key"))
    }

    /// Matches one company's assets to its configurations and plans every write into
    /// the assets' sections; the retirements of configurations whose asset no site
    /// listed go to `section`. Answers how many of its configurations are linked.
    pub async fn plan_company(
        &self,
        company_id: i64,
        members: Members,
        configurations: &[Compact],
        plans: &mut [SectionPlan],
        section: usize,
    ) -> Result<u64, PipelineError> {
        let (owners, assets): (Vec<usize>, Vec<Compact>) = members.into_iter().unzip();
        let outcome = matching::pair(self.spec, &assets, configurations);
        let context = WriteContext {
            company_id,
            references: self.references.clone(),
            custom_field_ids: self.custom_field_ids.clone(),
        };
        for &index in &outcome.unmatched {
            let asset = &assets[index];
            if !self.ignored(asset) {
                self.plan_creation(asset, &context, &mut plans[owners[index]])
                    .await?;
            }
        }
        // Differences taken one match at a time: held once, as the planned item's text.
        for matched in &outcome.matched {
            let asset = &assets[matched.asset_index];
            if self.ignored(asset) {
                continue;
            }
            let plan = &mut plans[owners[matched.asset_index]];
            if self
                .overrides
                .ignores_configuration(matched.configuration_id)
            {
                plan.ignored += 1;
                continue;
            }
            let configuration = configurations.get(matched.configuration_index);
            self.plan_change(
                asset,
                matched.configuration_id,
                configuration,
                &context,
                plan,
            )
            .await?;
        }
        let retire = &self.settings.retire;
        let (linked, gone) = gone_assets(
            configurations,
            self.listed,
            self.overrides,
            retire,
            self.link,
        );
        plans[section].retires.extend(gone);
        let by_id: HashMap<i64, &Compact> = if outcome.conflicts.is_empty() {
            HashMap::new()
        } else {
            configurations
                .iter()
                .map(|c| (matching::configuration_id(c), c))
                .collect()
        };
        let mut groups = None;
        for conflict in &outcome.conflicts {
            let asset = &assets[conflict.asset_index];
            if self.ignored(asset) {
                continue;
            }
            let merge = self
                .resolving_merge(&conflict.candidates, &by_id, &mut groups)
                .await?;
            plans[owners[conflict.asset_index]]
                .conflicts
                .push(ConflictReport {
                    asset_key: text(asset, "key"),
                    name: text(asset, "name"),
                    reason: conflict.reason.clone(),
                    candidates: conflict.candidates.clone(),
                    merge,
                });
        }
        Ok(linked)
    }

    /// The merge that resolves a conflict whose candidates are one device in use: the
    /// group `lscw duplicates` builds of the company's configurations in use (`groups`,
    /// built at the first conflict that could be a merge), with the same keeper.
    async fn resolving_merge(
        &self,
        candidates: &[i64],
        by_id: &HashMap<i64, &Compact>,
        groups: &mut Option<Vec<duplicates::Group>>,
    ) -> Result<Option<String>, PipelineError> {
        let found: Vec<&Compact> = candidates
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        if found.len() < 2
            || found.len() != candidates.len()
            || found.iter().any(|c| self.settings.retire.is_retired(c))
        {
            return Ok(None);
        }
        if groups.is_none() {
            let tickets = self
                .tickets
                .get_or_try_init(|| crate::enrichment::ticket_counts(self.store))
                .await?;
            let in_use: Vec<&Compact> = by_id
                .values()
                .copied()
                .filter(|c| !self.settings.retire.is_retired(*c))
                .collect();
            *groups = Some(duplicates::groups(&in_use, tickets));
        }
        Ok(groups
            .as_deref()
            .and_then(|groups| duplicates::resolving_merge(groups, candidates)))
    }

    /// An asset no configuration matched: a creation, unless it is retired already.
    async fn plan_creation(
        &self,
        asset: &Compact,
        context: &WriteContext,
        plan: &mut SectionPlan,
    ) -> Result<(), PipelineError> {
        if asset.at("retired").as_deref() == Some("true") {
            // Retired before it ever had a configuration: nothing to write.
            plan.unchanged += 1;
            return Ok(());
        }
        match payload::create_body(self.create_spec, asset, context) {
            Ok(body) => {
                let item = Planned::of(&CreateItem {
                    asset_key: text(asset, "key"),
                    name: text(asset, "name"),
                    body,
                })?;
                plan.creates
                    .add(
                        item,
                        self.store,
                        self.settings,
                        self.run_id,
                        &mut plan.failed,
                    )
                    .await?;
            }
            Err(error) => plan.failed.push(Rejected {
                asset_key: text(asset, "key"),
                reason: self.missing.explain(error, asset),
            }),
        }
        Ok(())
    }

    /// A matched asset: its retirement, its changed fields (what the field policies let
    /// the sync change, and a reactivation when it came back), or nothing.
    async fn plan_change(
        &self,
        asset: &Compact,
        configuration_id: i64,
        configuration: Option<&Compact>,
        context: &WriteContext,
        plan: &mut SectionPlan,
    ) -> Result<(), PipelineError> {
        let retire = &self.settings.retire;
        let item = |unmatched_fields| ModifyItem {
            asset_key: text(asset, "key"),
            name: text(asset, "name"),
            configuration_id,
            unmatched_fields,
            asset_gone: false,
        };
        if asset.at("retired").as_deref() == Some("true") {
            match configuration {
                Some(c) if !retire.is_retired(c) => plan.retires.push(item(retire.retirement(c))),
                _ => plan.unchanged += 1,
            }
            return Ok(());
        }
        // What ConnectWise owns (or fills) is left as the service desk keeps it.
        let differences = configuration
            .map(|c| matching::differences(self.spec, asset, c))
            .unwrap_or_default();
        let mut changes = self.settings.field_policies.allowed(&differences);
        if configuration.is_some_and(|c| retire.is_retired(c)) {
            // The asset came back: active again, its status from the asset.
            changes.push(lifecycle::active_flag(true));
            plan.reactivated += 1;
        }
        if changes.is_empty() {
            plan.unchanged += 1;
            return Ok(());
        }
        // A reference a changed field needs must exist, or the update cannot be written.
        if let Err(error) = payload::update_body(&json!({}), &changes, context) {
            plan.failed.push(Rejected {
                asset_key: text(asset, "key"),
                reason: self.missing.explain(error, asset),
            });
            return Ok(());
        }
        let planned = Planned::of(&item(changes))?;
        plan.modifies
            .add(
                planned,
                self.store,
                self.settings,
                self.run_id,
                &mut plan.failed,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn asset(key: &str, site: &str, company: &str) -> Compact {
        let targets = Compact::targets(
            ["key", "name", "site", "company"]
                .iter()
                .map(|f| Target::Field((*f).to_string())),
        );
        Compact::of(
            &json!({"key": key, "name": format!("pc-{key}"), "site": site, "company": company}),
            &targets,
            None,
        )
    }

    #[test]
    fn assets_go_to_their_company_and_the_mapping_s_mistakes_fail_alone() {
        let company_ids: HashMap<String, i64> =
            [("acme".to_string(), 1), ("beta".to_string(), 2)].into();
        let companies = vec!["Acme".to_string(), "Beta".to_string(), "Gone".to_string()];
        // K2's configuration 77 lives in Beta; the mapping sends it to Acme.
        let linked_in: HashMap<String, Vec<(i64, Option<i64>)>> =
            [("k2".to_string(), vec![(77, Some(2))])].into();
        let mut sections = Sections::default();
        let assets = vec![
            asset("k1", "s1", "Acme"),
            asset("K2", "s1", "Acme"),
            asset("k3", "s2", "Beta"),
            asset("k4", "s2", "Gone"),
            asset("k5", "s1", "Acme"),
        ];
        // Beta's only asset is kept out by the operator: its retirements still count in
        // Beta's own section.
        let mut overrides = Overrides::default();
        overrides.ignored_assets.insert("k3".into());
        let (grouped, first) = assign(
            assets,
            &companies,
            &company_ids,
            &linked_in,
            &overrides,
            &mut sections,
        );
        let names: Vec<(&str, &str)> = sections
            .names
            .iter()
            .map(|(s, c)| (s.as_str(), c.as_str()))
            .collect();
        assert_eq!(names, [("s1", "Acme"), ("s2", "Beta"), ("s2", "Gone")]);
        let keys = |company: i64| -> Vec<String> {
            grouped[&company]
                .iter()
                .map(|(_, a)| text(a, "key"))
                .collect()
        };
        assert_eq!(keys(1), ["k1", "k5"]);
        assert_eq!(keys(2), ["k3"]);
        assert_eq!((first[&1], first[&2]), (0, 1));
        assert_eq!(sections.plans[1].ignored, 1);
        let conflict = &sections.plans[0].conflicts[0];
        assert_eq!(conflict.asset_key, "K2");
        assert_eq!(conflict.candidates, [77]);
        assert_eq!(
            conflict.reason,
            "linked configuration 77 is in company Beta, the mapping says company Acme"
        );
        let failed = &sections.plans[2].failed[0];
        assert_eq!(failed.asset_key, "k4");
        assert!(
            failed
                .reason
                .contains("company Gone, which ConnectWise does not have")
        );
        let counted: Vec<u64> = sections.plans.iter().map(|p| p.assets).collect();
        assert_eq!(counted, [3, 1, 1], "every asset counted in its section");
    }

    #[test]
    fn a_missing_reference_is_named_as_the_reason() {
        let missing = MissingReferences::of(&[ReferenceFailure {
            kind: ReferenceKind::Manufacturer,
            name: "ACME Corp".into(),
            reason: "name too long".into(),
        }]);
        let targets = Compact::targets([Target::Field("manufacturer".into())]);
        let with = Compact::of(&json!({"manufacturer": "acme corp"}), &targets, None);
        let without = Compact::of(&json!({"manufacturer": "Other"}), &targets, None);
        assert_eq!(
            missing.explain("no id".into(), &with),
            "manufacturer `acme corp` could not be created: name too long"
        );
        assert_eq!(missing.explain("no id".into(), &without), "no id");
    }
}
