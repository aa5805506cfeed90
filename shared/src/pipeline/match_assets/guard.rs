//! Retirements and their guard: which linked configurations lost their asset, and whether
//! the run may retire them at all. An incomplete listing retires nothing, and neither
//! does a run that would retire more than the guard allows: its retirements are held
//! for `lscw retire --approve`.

use std::collections::{HashMap, HashSet};

use super::section::SectionPlan;
use crate::layout::{FetchRecord, ModifyItem};
use crate::lifecycle::{RetireGuard, RetirePolicy};
use crate::matching::{self, Compact, Fields, OUT_OF_SCOPE, Target};
use crate::overrides::Overrides;
use crate::references;
use crate::staging::Rejected;

/// Of `configurations`, how many are linked, and the retirements of those whose asset
/// no site listed (neither ignored nor retired already).
pub(super) fn gone_assets(
    configurations: &[Compact],
    listed: &HashSet<String>,
    overrides: &Overrides,
    retire: &RetirePolicy,
    link: &Target,
) -> (u64, Vec<ModifyItem>) {
    let mut linked = 0;
    let mut gone = Vec::new();
    for configuration in configurations {
        let Some(key) = configuration.text(link) else {
            continue;
        };
        if configuration.at(OUT_OF_SCOPE).is_some() {
            // Outside the run's scope: found by its link, never retired by this run.
            continue;
        }
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

/// Why a company's listing is incomplete, by the company's name key: a site sending it
/// assets was not read whole, or listed no asset. Such a company's configurations are
/// never taken as gone.
pub(super) fn unread_companies(fetched: &FetchRecord) -> HashMap<String, String> {
    let mut unread = HashMap::new();
    for site in fetched
        .sites
        .iter()
        .filter(|s| s.error.is_some() || s.assets == 0)
    {
        let why = match &site.error {
            Some(error) => format!("site {} was not read whole ({error})", site.site),
            None => format!("site {} listed no asset", site.site),
        };
        // A record of an earlier version names no companies per site: all of them.
        let companies = if site.companies.is_empty() {
            &fetched.companies
        } else {
            &site.companies
        };
        for company in companies {
            unread
                .entry(references::name_key(company))
                .or_insert_with(|| why.clone());
        }
    }
    unread
}

/// The guard over the run's planned retirements, section by section (`companies[i]` is
/// the company id of section `i`, `linked` the linked configurations of each company):
/// - a company whose listing is incomplete retires nothing of what looks gone (never
///   approvable: nothing showed those assets gone);
/// - a company retiring more than the guard allows of its own links, and then the run
///   retiring more than it allows overall, has its retirements held for
///   `lscw retire --approve`; a listed asset in a retired state among them fails this run
///   with the reason.
///
/// Answers the verdict and the held retirements.
pub(super) fn judge(
    retire: &RetirePolicy,
    plans: &mut [SectionPlan],
    companies: &[(Option<i64>, String)],
    unread: &HashMap<Option<i64>, String>,
    linked: &HashMap<i64, u64>,
) -> (Option<RetireGuard>, Vec<ModifyItem>) {
    let mut reasons: Vec<String> = Vec::new();
    let mut withheld: Vec<ModifyItem> = Vec::new();
    for (plan, (company, _)) in plans.iter_mut().zip(companies) {
        if unread.contains_key(company) {
            let (gone, kept): (Vec<ModifyItem>, Vec<ModifyItem>) =
                std::mem::take(&mut plan.retires)
                    .into_iter()
                    .partition(|r| r.asset_gone);
            plan.retires = kept;
            withheld.extend(gone);
        }
    }
    let mut unread: Vec<(&Option<i64>, &String)> = unread.iter().collect();
    unread.sort_unstable();
    for (company, why) in unread {
        let linked_here = company.and_then(|c| linked.get(&c)).copied().unwrap_or(0);
        let line = format!("{why}: an incomplete listing never counts as assets leaving");
        if linked_here > 0 && !reasons.contains(&line) {
            reasons.push(line);
        }
    }
    if !withheld.is_empty() && reasons.is_empty() {
        reasons.push(
            "a site was not read whole: an incomplete listing never counts as assets leaving"
                .into(),
        );
    }
    let mut held: Vec<ModifyItem> = Vec::new();
    let mut hold = |plan: &mut SectionPlan, reason: &str| {
        for item in std::mem::take(&mut plan.retires) {
            if !item.asset_gone {
                // A listed asset in a retired state: not written this run, and said so.
                plan.failed.push(Rejected {
                    asset_key: item.asset_key.clone(),
                    reason: format!("its retirement is held by the guard: {reason}"),
                });
            }
            held.push(item);
        }
    };
    let mut by_company: HashMap<i64, (u64, &str)> = HashMap::new();
    for (plan, (company, name)) in plans.iter().zip(companies) {
        if let Some(company) = company {
            by_company.entry(*company).or_insert((0, name)).0 += plan.retires.len() as u64;
        }
    }
    let mut sorted: Vec<(i64, (u64, &str))> = by_company.into_iter().collect();
    sorted.sort_unstable();
    for (company, (would, name)) in sorted {
        let own = linked.get(&company).copied().unwrap_or(0);
        if let Some(reason) = retire.guard(would, own) {
            let reason = format!("company {name}: {reason}");
            for (plan, _) in plans
                .iter_mut()
                .zip(companies)
                .filter(|(_, (c, _))| *c == Some(company))
            {
                hold(plan, &reason);
            }
            reasons.push(reason);
        }
    }
    let would: u64 = plans.iter().map(|p| p.retires.len() as u64).sum();
    let all_linked: u64 = linked.values().sum();
    if let Some(reason) = retire.guard(would, all_linked) {
        for plan in plans.iter_mut() {
            hold(plan, &reason);
        }
        reasons.push(reason);
    }
    if reasons.is_empty() {
        return (None, held);
    }
    let guard = RetireGuard {
        reason: reasons.join("; "),
        would_retire: (held.len() + withheld.len()) as u64,
        linked: all_linked,
        first: held
            .iter()
            .chain(&withheld)
            .take(5)
            .map(|i| i.name.clone())
            .collect(),
    };
    (Some(guard), held)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy() -> RetirePolicy {
        RetirePolicy::default()
    }

    fn retirement(key: &str, gone: bool) -> ModifyItem {
        ModifyItem {
            asset_key: key.into(),
            name: format!("pc-{key}"),
            configuration_id: 1,
            unmatched_fields: Vec::new(),
            asset_gone: gone,
        }
    }

    fn plans(retirements: &[&[(&str, bool)]]) -> Vec<SectionPlan> {
        retirements
            .iter()
            .map(|items| SectionPlan {
                retires: items.iter().map(|(k, gone)| retirement(k, *gone)).collect(),
                ..SectionPlan::default()
            })
            .collect()
    }

    fn companies(ids: &[i64]) -> Vec<(Option<i64>, String)> {
        ids.iter().map(|id| (Some(*id), format!("c{id}"))).collect()
    }

    fn keys(items: &[ModifyItem]) -> Vec<&str> {
        items.iter().map(|i| i.asset_key.as_str()).collect()
    }

    /// Breaking it looks like: one client's unreadable site holds every other client's
    /// retirements, or an approval retires the devices of the site nobody could read.
    #[test]
    fn an_unread_company_retires_nothing_gone_and_the_others_go_on() {
        let mut plans = plans(&[&[("gone-1", true), ("sold-1", false)], &[("gone-2", true)]]);
        let unread: HashMap<Option<i64>, String> =
            [(Some(1), "site s1 was not read whole (refused)".to_string())].into();
        let linked: HashMap<i64, u64> = [(1, 30), (2, 30)].into();
        let (guard, held) = judge(&policy(), &mut plans, &companies(&[1, 2]), &unread, &linked);
        assert!(
            held.is_empty(),
            "nothing approvable: nothing showed them gone"
        );
        assert_eq!(
            keys(&plans[0].retires),
            ["sold-1"],
            "a listed asset's retirement goes on"
        );
        assert_eq!(
            keys(&plans[1].retires),
            ["gone-2"],
            "the other client's goes on"
        );
        let guard = guard.unwrap();
        assert!(
            guard.reason.contains("site s1 was not read whole"),
            "{}",
            guard.reason
        );
        assert!(guard.reason.contains("incomplete listing"));
        assert_eq!(guard.would_retire, 1);
    }

    #[test]
    fn an_empty_listing_says_so_even_with_nothing_to_retire() {
        let mut plans = plans(&[&[]]);
        let unread: HashMap<Option<i64>, String> =
            [(Some(1), "site s1 listed no asset".to_string())].into();
        let linked: HashMap<i64, u64> = [(1, 5)].into();
        let (guard, held) = judge(&policy(), &mut plans, &companies(&[1]), &unread, &linked);
        assert!(held.is_empty());
        assert!(guard.unwrap().reason.contains("listed no asset"));
        let none: HashMap<Option<i64>, String> = HashMap::new();
        assert!(
            judge(&policy(), &mut plans, &companies(&[1]), &none, &linked)
                .0
                .is_none()
        );
    }

    #[test]
    fn a_company_retiring_most_of_its_links_is_held_alone() {
        let many: Vec<(String, bool)> = (0..20).map(|i| (format!("a{i}"), true)).collect();
        let many: Vec<(&str, bool)> = many.iter().map(|(k, g)| (k.as_str(), *g)).collect();
        let mut plans = plans(&[&many, &[("b0", true), ("b1", false)]]);
        let linked: HashMap<i64, u64> = [(1, 25), (2, 400)].into();
        let (guard, held) = judge(
            &policy(),
            &mut plans,
            &companies(&[1, 2]),
            &HashMap::new(),
            &linked,
        );
        assert_eq!(held.len(), 20);
        assert!(plans[0].retires.is_empty());
        assert_eq!(
            keys(&plans[1].retires),
            ["b0", "b1"],
            "the other company's go on"
        );
        let guard = guard.unwrap();
        assert!(
            guard.reason.starts_with("company c1: 20 of 25"),
            "{}",
            guard.reason
        );
        assert_eq!((guard.would_retire, guard.linked), (20, 425));
    }

    #[test]
    fn retiring_much_of_the_whole_estate_holds_everything_and_fails_listed_assets() {
        // Each company under the count, the estate over it: 12 of 100.
        let per: Vec<Vec<(String, bool)>> = (0..4)
            .map(|c| {
                (0..3)
                    .map(|i| (format!("c{c}-{i}"), !(c == 0 && i == 0)))
                    .collect()
            })
            .collect();
        let per: Vec<Vec<(&str, bool)>> = per
            .iter()
            .map(|items| items.iter().map(|(k, g)| (k.as_str(), *g)).collect())
            .collect();
        let refs: Vec<&[(&str, bool)]> = per.iter().map(Vec::as_slice).collect();
        let mut plans = plans(&refs);
        let linked: HashMap<i64, u64> = (1..=4).map(|c| (c, 25)).collect();
        let (guard, held) = judge(
            &policy(),
            &mut plans,
            &companies(&[1, 2, 3, 4]),
            &HashMap::new(),
            &linked,
        );
        assert_eq!(held.len(), 12);
        assert!(plans.iter().all(|p| p.retires.is_empty()));
        assert_eq!(
            plans[0].failed.len(),
            1,
            "the listed asset in a retired state fails"
        );
        assert!(plans[0].failed[0].reason.contains("held by the guard"));
        assert!(!guard.unwrap().reason.starts_with("company"));
        let (below, held) = judge(
            &policy(),
            &mut plans_of_one(),
            &companies(&[1]),
            &HashMap::new(),
            &[(1, 100)].into(),
        );
        assert!(below.is_none() && held.is_empty(), "1 of 100 goes through");
    }

    fn plans_of_one() -> Vec<SectionPlan> {
        plans(&[&[("x", true)]])
    }

    #[test]
    fn the_companies_of_an_unread_site_are_unread() {
        use crate::layout::SiteFetch;
        let site = |name: &str, assets: u64, error: Option<&str>, companies: &[&str]| SiteFetch {
            site: name.into(),
            assets,
            error: error.map(str::to_string),
            companies: companies.iter().map(ToString::to_string).collect(),
            ..SiteFetch::default()
        };
        let fetched = FetchRecord {
            sites: vec![
                site("a", 3, None, &["Acme"]),
                site("b", 0, None, &["Beta", "Gamma"]),
                site("c", 9, Some("refused"), &["Delta"]),
            ],
            companies: vec!["Acme".into(), "Beta".into(), "Gamma".into(), "Delta".into()],
            ..FetchRecord::default()
        };
        let unread = unread_companies(&fetched);
        assert_eq!(unread.len(), 3);
        assert_eq!(unread["beta"], "site b listed no asset");
        assert_eq!(unread["delta"], "site c was not read whole (refused)");
        assert!(!unread.contains_key("acme"));
    }

    #[test]
    fn only_linked_configurations_whose_asset_is_unlisted_are_gone() {
        let link = Target::Custom("ls_asset_id".into());
        let targets = Compact::targets([
            Target::Field("id".into()),
            Target::Field("name".into()),
            Target::Field("activeFlag".into()),
            Target::Field("status.name".into()),
            link.clone(),
        ]);
        let retired_status = policy().retired_status;
        let configuration = |id: i64, key: Option<&str>, active: bool| {
            let status = if active {
                "Active"
            } else {
                retired_status.as_str()
            };
            let fields = key.map_or_else(Vec::new, |k| {
                vec![json!({"id": 1, "caption": "ls_asset_id", "value": k})]
            });
            Compact::of(
                &json!({"id": id, "name": format!("c{id}"), "activeFlag": active,
                        "status": {"name": status}, "customFields": fields}),
                &targets,
                None,
            )
        };
        let configurations = [
            configuration(1, Some("Listed"), true),
            configuration(2, Some("gone"), true),
            configuration(3, None, true),
            configuration(4, Some("gone-too"), false),
        ];
        let listed: HashSet<String> = ["listed".to_string()].into();
        let (linked, gone) = gone_assets(
            &configurations,
            &listed,
            &Overrides::default(),
            &policy(),
            &link,
        );
        assert_eq!(linked, 3);
        let ids: Vec<i64> = gone.iter().map(|g| g.configuration_id).collect();
        assert_eq!(
            ids,
            [2],
            "listed (any case), unlinked and retired ones stay"
        );
        assert!(gone[0].asset_gone && !gone[0].unmatched_fields.is_empty());
    }
}
