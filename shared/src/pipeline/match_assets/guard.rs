//! Retirements and their guard: which linked configurations lost their asset, and whether
//! the run may retire them at all. An incomplete listing retires nothing, and neither
//! does a run that would retire more than the guard allows: its retirements are held
//! for `lscw retire --approve`.

use std::collections::HashSet;

use super::section::SectionPlan;
use crate::layout::{self, ModifyItem};
use crate::lifecycle::{RetireGuard, RetirePolicy};
use crate::matching::{self, Compact, Fields, Target};
use crate::overrides::Overrides;
use crate::staging::Rejected;
use crate::store::{Store, StoreError, StoreExt};

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

/// Why the run may retire nothing, if it may not: an incomplete listing (`incomplete`
/// says which site) or more retirements than the guard allows. `None` when the
/// retirements go through, or there are none to hold.
pub(super) fn verdict(
    retire: &RetirePolicy,
    incomplete: Option<String>,
    would_retire: u64,
    linked: u64,
) -> Option<String> {
    let incomplete_listing = incomplete.is_some();
    let reason = incomplete
        .map(|why| format!("{why}: an incomplete listing never counts as assets leaving"))
        .or_else(|| retire.guard(would_retire, linked))?;
    (would_retire > 0 || (incomplete_listing && linked > 0)).then_some(reason)
}

/// Takes every planned retirement out of `plans` and stores it as held; a listed asset
/// in a retired state fails this run with the reason. Answers the held parts' keys and
/// the guard's record.
pub(super) async fn hold<S: Store>(
    store: &S,
    run_id: &str,
    ttl: std::time::Duration,
    plans: &mut [SectionPlan],
    reason: String,
    linked: u64,
) -> Result<(Vec<String>, RetireGuard), StoreError> {
    let would_retire: u64 = plans.iter().map(|p| p.retires.len() as u64).sum();
    let mut items: Vec<ModifyItem> = Vec::new();
    for plan in plans {
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
    tracing::warn!(%run_id, would_retire, linked, %reason, "retirement guard held");
    let held = store
        .put_parts(&layout::held_retirements(run_id), &items, ttl)
        .await?;
    let guard = RetireGuard {
        reason,
        would_retire,
        linked,
        first: items.iter().take(5).map(|i| i.name.clone()).collect(),
    };
    Ok((held, guard))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::MemoryStore;

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

    #[test]
    fn an_incomplete_listing_holds_even_one_retirement_and_a_complete_one_holds_none_below_the_limit()
     {
        let retire = policy();
        let held = verdict(&retire, Some("site s listed no asset".into()), 1, 100);
        assert!(held.unwrap().contains("incomplete listing"));
        assert_eq!(verdict(&retire, None, 1, 100), None, "1% of 100 linked");
        assert_eq!(verdict(&retire, None, 0, 0), None, "nothing to retire");
        // Nothing to retire, but a site unread among linked configurations: still held,
        // so the report says why nothing could have been retired.
        assert!(verdict(&retire, Some("site s was not read whole".into()), 0, 5).is_some());
        assert_eq!(verdict(&retire, Some("site s".into()), 0, 0), None);
    }

    #[test]
    fn retiring_most_of_what_is_linked_is_held() {
        let retire = policy();
        let reason = verdict(&retire, None, 90, 100).expect("90 of 100 is a mass retirement");
        assert!(!reason.is_empty());
    }

    #[tokio::test]
    async fn held_retirements_leave_the_plans_and_a_listed_asset_fails_with_the_reason() {
        let store = MemoryStore::new();
        let mut plans = vec![SectionPlan::default(), SectionPlan::default()];
        plans[0].retires = vec![retirement("a", true), retirement("b", false)];
        plans[1].retires = vec![retirement("c", true)];
        let (held, guard) = hold(
            &store,
            "run-1",
            std::time::Duration::from_secs(60),
            &mut plans,
            "too many".into(),
            4,
        )
        .await
        .unwrap();
        assert!(plans.iter().all(|p| p.retires.is_empty()));
        assert_eq!(plans[0].failed.len(), 1);
        assert_eq!(plans[0].failed[0].asset_key, "b");
        assert!(plans[0].failed[0].reason.contains("too many"));
        assert!(
            plans[1].failed.is_empty(),
            "a gone asset is not one of the run's"
        );
        assert_eq!((guard.would_retire, guard.linked), (3, 4));
        assert_eq!(guard.first, ["pc-a", "pc-b", "pc-c"]);
        let stored: Vec<ModifyItem> = store.get_parts(&held).await.unwrap();
        assert_eq!(stored.len(), 3);
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
