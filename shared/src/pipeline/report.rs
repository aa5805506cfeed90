//! The run's report and the dry run's plan, put together from what the steps stored,
//! so they read the same whether the steps ran on one machine or in Lambda.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::{WriteKind, batch_assets};
use crate::calls::ApiCalls;
use crate::error::PipelineError;
use crate::layout::{
    self, BatchRecord, ConflictReport, CreateItem, FetchRecord, LeaseHolder, ModifyItem,
    SectionRecord,
};
use crate::lifecycle::RetireGuard;
use crate::references::ReferenceKind;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

/// How a run ended, as its record (and an operator's alarm) says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Every asset created, modified or unchanged.
    #[default]
    Succeeded,
    /// The run ended, and some assets failed or conflict: they are in the report.
    SucceededWithFailures,
    /// The run stopped; its record says why.
    Failed,
    /// Another run held the lease; nothing was written.
    Skipped,
}

/// What became of a run's (or a section's) assets and configurations: the counts the
/// report, its sections and the recorded summary share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub created: u64,
    pub modified: u64,
    pub unchanged: u64,
    /// Kept out of every write by the operator (`lscw ignore`).
    #[serde(default)]
    pub ignored: u64,
    /// Configurations retired, whatever the cause; those whose asset is still listed
    /// (a retired state) count among `modified` too.
    #[serde(default)]
    pub retired: u64,
    /// Retired configurations active again, their asset back.
    #[serde(default)]
    pub reactivated: u64,
}

impl Counts {
    /// The assets these counts account for (retirements and reactivations are among the
    /// modified).
    pub fn assets(&self) -> u64 {
        self.created + self.modified + self.unchanged + self.ignored
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.modified += other.modified;
        self.unchanged += other.unchanged;
        self.ignored += other.ignored;
        self.retired += other.retired;
        self.reactivated += other.reactivated;
    }
}

/// What a run did. created + modified + unchanged + conflicts + failed + unmapped =
/// assets, overall and in each section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub dry_run: bool,
    pub assets: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub conflicts: Vec<ConflictReport>,
    pub failed: Vec<Rejected>,
    /// Assets no mapping rule sends to a company: never written.
    #[serde(default)]
    pub unmapped: Vec<Rejected>,
    /// Retirements of configurations whose asset left that ConnectWise refused (outside
    /// the accounting of assets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire_failed: Vec<Rejected>,
    /// Assets whose last user is no contact of their company, or several: the
    /// configuration's contact is left as it is (outside the accounting of assets; the
    /// rest of the asset is synced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Rejected>,
    /// Why nothing was retired: the guard held, or a listing was incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<RetireGuard>,
    /// One per site and company (a site's assets that failed or stayed unmapped before
    /// reaching a company: a section without company).
    #[serde(default)]
    pub sections: Vec<SectionReport>,
    pub references_created: BTreeMap<ReferenceKind, Vec<String>>,
    pub api_calls: ApiCalls,
    /// Another run held the lease: this one wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// One site's assets that go to one company, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionReport {
    pub site: String,
    /// None: the site's assets that never reached a company (rejected or unmapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub assets: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub conflicts: u64,
    pub failed: u64,
    pub unmapped: u64,
    /// Why the site could not be read (whole or in part): its assets are not all here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Retirements of listed assets ConnectWise refused, until they join `failed`.
    #[serde(skip)]
    pub(crate) failed_retirements: Vec<Rejected>,
}

impl SectionReport {
    /// Assets the section accounts for; equals `assets` when none was lost.
    pub fn accounted(&self) -> u64 {
        self.counts.assets() + self.conflicts + self.failed + self.unmapped
    }

    fn written(&mut self, kind: WriteKind) -> &mut u64 {
        match kind {
            WriteKind::Create => &mut self.counts.created,
            WriteKind::Modify => &mut self.counts.modified,
        }
    }
}

impl RunReport {
    /// Assets the report accounts for; equals `assets` when none was lost.
    pub fn accounted(&self) -> u64 {
        self.counts.assets()
            + self.conflicts.len() as u64
            + self.failed.len() as u64
            + self.unmapped.len() as u64
    }
}

/// Puts the run's report together from what its steps stored. In a dry run nothing was
/// written: `created` and `modified` count what would have been.
pub async fn report<S: Store>(
    store: &S,
    run_id: &str,
    dry_run: bool,
) -> Result<RunReport, PipelineError> {
    let fetched = layout::read_fetch(store, run_id).await?;
    if let Some(holder) = fetched.skipped_for {
        return Ok(RunReport {
            run_id: run_id.to_string(),
            status: RunStatus::Skipped,
            dry_run,
            skipped_for: Some(holder),
            ..RunReport::default()
        });
    }
    let (ensured, reference_calls) = layout::read_ensured(store, run_id).await?;
    let matched = layout::read_match(store, run_id).await?;
    let mut report = RunReport {
        run_id: run_id.to_string(),
        dry_run,
        assets: fetched.assets,
        references_created: ensured.created,
        ..RunReport::default()
    };
    report.api_calls += fetched.api_calls;
    report.api_calls += reference_calls;
    report.api_calls += matched.api_calls;
    report
        .failed
        .extend(store.get_parts::<Rejected>(&fetched.rejected).await?);
    add_unmatched_sites(store, &fetched, &mut report).await?;
    report
        .contacts
        .extend(store.get_parts::<Rejected>(&matched.contacts).await?);
    report.guard.clone_from(&matched.guard);
    for record in &matched.sections {
        add_section(store, record, dry_run, &mut report).await?;
    }
    // Sites in the mapping's order, each site's company sections after its unmapped one.
    let order: Vec<&str> = fetched.sites.iter().map(|s| s.site.as_str()).collect();
    report
        .sections
        .sort_by_key(|s| (order.iter().position(|o| *o == s.site), s.company.is_some()));
    if !report.failed.is_empty()
        || !report.conflicts.is_empty()
        || !report.unmapped.is_empty()
        || report.sections.iter().any(|s| s.error.is_some())
        || !report.retire_failed.is_empty()
        || report.guard.is_some()
    {
        report.status = RunStatus::SucceededWithFailures;
    }
    Ok(report)
}

/// Each site's assets that never reached a company (refused or unmapped at fetch), and a
/// site not read whole: a section without company.
async fn add_unmatched_sites<S: Store>(
    store: &S,
    fetched: &FetchRecord,
    report: &mut RunReport,
) -> Result<(), PipelineError> {
    for site in &fetched.sites {
        let rejected: Vec<Rejected> = store.get_parts(&site.rejected).await?;
        let unmapped: Vec<Rejected> = store.get_parts(&site.unmapped).await?;
        if !rejected.is_empty() || !unmapped.is_empty() || site.error.is_some() {
            report.sections.push(SectionReport {
                site: site.site.clone(),
                company: None,
                assets: (rejected.len() + unmapped.len()) as u64,
                failed: rejected.len() as u64,
                unmapped: unmapped.len() as u64,
                error: site.error.clone(),
                ..SectionReport::default()
            });
        }
        report.failed.extend(rejected);
        report.unmapped.extend(unmapped);
    }
    Ok(())
}

/// One section of the match, with what its batches wrote, into the report.
async fn add_section<S: Store>(
    store: &S,
    record: &SectionRecord,
    dry_run: bool,
    report: &mut RunReport,
) -> Result<(), PipelineError> {
    let mut section = SectionReport {
        site: record.site.clone(),
        company: Some(record.company.clone()),
        assets: record.assets,
        counts: Counts {
            unchanged: record.unchanged,
            ignored: record.ignored,
            reactivated: record.reactivated,
            ..Counts::default()
        },
        ..SectionReport::default()
    };
    for batch in &record.retire_batches {
        add_retirements(store, batch, dry_run, &mut section, report).await?;
    }
    let conflicts: Vec<ConflictReport> = store.get_parts(&record.conflicts).await?;
    let mut failed: Vec<Rejected> = store.get_parts(&record.failed).await?;
    failed.append(&mut section.failed_retirements);
    for (batches, kind) in [
        (&record.create_batches, WriteKind::Create),
        (&record.modify_batches, WriteKind::Modify),
    ] {
        for batch in batches {
            if dry_run {
                *section.written(kind) += batch_assets(store, batch, kind).await?.len() as u64;
                continue;
            }
            if let Some(result) = store
                .get::<BatchRecord>(&layout::batch_result(batch))
                .await?
            {
                *section.written(kind) += result.written.len() as u64;
                failed.extend(result.failed);
                report.api_calls += result.api_calls;
            } else {
                // The batch never ran (its step failed for good): its assets are not lost.
                let assets = batch_assets(store, batch, kind).await?;
                failed.extend(assets.into_iter().map(|(asset_key, _)| Rejected {
                    asset_key,
                    reason: never_written(batch),
                }));
            }
        }
    }
    section.conflicts = conflicts.len() as u64;
    section.failed = failed.len() as u64;
    report.counts += section.counts;
    report.conflicts.extend(conflicts);
    report.failed.extend(failed);
    report.sections.push(section);
    Ok(())
}

/// What one batch of retirements came to: retired, or refused (a listed asset's refusal
/// is its failure; a gone asset's is outside the accounting of assets).
async fn add_retirements<S: Store>(
    store: &S,
    batch: &str,
    dry_run: bool,
    section: &mut SectionReport,
    report: &mut RunReport,
) -> Result<(), PipelineError> {
    let items: Vec<ModifyItem> = store.require(batch).await?;
    let result = if dry_run {
        None
    } else {
        store
            .get::<BatchRecord>(&layout::batch_result(batch))
            .await?
    };
    if let Some(result) = &result {
        report.api_calls += result.api_calls;
    }
    for item in items {
        let refused = match &result {
            None if dry_run => None,
            None => Some(never_written(batch)),
            Some(result) => result
                .failed
                .iter()
                .find(|f| f.asset_key == item.asset_key)
                .map(|f| f.reason.clone()),
        };
        match (refused, item.asset_gone) {
            (None, gone) => {
                section.counts.retired += 1;
                if !gone {
                    section.counts.modified += 1;
                }
            }
            (Some(reason), true) => report.retire_failed.push(Rejected {
                asset_key: item.asset_key,
                reason: format!("retiring configuration {}: {reason}", item.configuration_id),
            }),
            (Some(reason), false) => section.failed_retirements.push(Rejected {
                asset_key: item.asset_key,
                reason,
            }),
        }
    }
    Ok(())
}

/// The dry run's plan: what would be created, changed field by field, and what conflicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub create: Vec<CreateItem>,
    pub modify: Vec<ModifyItem>,
    /// Configurations the run retires (or would, were the guard not holding them).
    #[serde(default)]
    pub retire: Vec<ModifyItem>,
    /// The guard's verdict: present when it holds the retirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<RetireGuard>,
    pub conflicts: Vec<ConflictReport>,
    pub references: BTreeMap<ReferenceKind, Vec<String>>,
}

pub async fn plan<S: Store>(store: &S, run_id: &str) -> Result<Plan, PipelineError> {
    let matched = layout::read_match(store, run_id).await?;
    let (ensured, _) = layout::read_ensured(store, run_id).await?;
    let mut plan = Plan {
        references: ensured.created,
        guard: matched.guard.clone(),
        retire: store.get_parts(&matched.held).await?,
        ..Plan::default()
    };
    for section in &matched.sections {
        plan.conflicts.extend(
            store
                .get_parts::<ConflictReport>(&section.conflicts)
                .await?,
        );
        for batch in &section.create_batches {
            plan.create
                .extend(store.require::<Vec<CreateItem>>(batch).await?);
        }
        for batch in &section.modify_batches {
            plan.modify
                .extend(store.require::<Vec<ModifyItem>>(batch).await?);
        }
        for batch in &section.retire_batches {
            plan.retire
                .extend(store.require::<Vec<ModifyItem>>(batch).await?);
        }
    }
    Ok(plan)
}

/// Why the assets of a batch with no recorded result failed: its step failed for good.
fn never_written(batch: &str) -> String {
    format!("batch {batch} was not written (its step failed)")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::layout::{MatchRecord, SiteFetch};
    use crate::references::EnsureOutcome;
    use crate::store::MemoryStore;

    const RUN: &str = "run-1";
    const TTL: Duration = Duration::from_secs(60);

    fn rejected(key: &str, reason: &str) -> Rejected {
        Rejected {
            asset_key: key.into(),
            reason: reason.into(),
        }
    }

    fn create(key: &str) -> CreateItem {
        CreateItem {
            asset_key: key.into(),
            name: format!("pc-{key}"),
            body: json!({"name": format!("pc-{key}")}),
        }
    }

    fn retirement(key: &str, gone: bool) -> ModifyItem {
        ModifyItem {
            asset_key: key.into(),
            name: format!("pc-{key}"),
            configuration_id: 9,
            unmatched_fields: Vec::new(),
            asset_gone: gone,
        }
    }

    /// A run of 11 assets on one site and company, as its steps would have stored it: 1
    /// unmapped at fetch, 2 unchanged, 1 conflict, 1 failed at match, a create batch of 3
    /// written with 1 refused, a create batch of 1 that never ran, a modify batch of 1
    /// written, a retirement of a listed asset written and one of a gone asset refused.
    async fn stored_run() -> MemoryStore {
        let store = MemoryStore::new();
        let unmapped = store
            .put_parts("u", &[rejected("u1", "no rule")], TTL)
            .await
            .unwrap();
        let fetched = FetchRecord {
            assets: 11,
            sites: vec![SiteFetch {
                site: "s1".into(),
                assets: 11,
                unmapped,
                ..SiteFetch::default()
            }],
            ..FetchRecord::default()
        };
        store
            .put(&layout::fetch_record(RUN), &fetched, TTL)
            .await
            .unwrap();
        layout::write_ensured(
            &store,
            RUN,
            &EnsureOutcome::default(),
            ApiCalls::default(),
            TTL,
        )
        .await
        .unwrap();
        let batch = |name: &str| layout::batch(RUN, name, 0);
        let (written, never, modified, retired) = (
            batch("create/a"),
            batch("create/b"),
            batch("modify"),
            batch("retire"),
        );
        let creates = [create("c1"), create("c2"), create("c3")];
        store.put(&written, &creates, TTL).await.unwrap();
        store.put(&never, &[create("c4")], TTL).await.unwrap();
        let change = ModifyItem {
            asset_gone: false,
            ..retirement("m1", false)
        };
        store.put(&modified, &[change], TTL).await.unwrap();
        let retirements = [retirement("r1", false), retirement("gone", true)];
        store.put(&retired, &retirements, TTL).await.unwrap();
        let result = |written: &[&str], failed: Vec<Rejected>| BatchRecord {
            written: written.iter().map(ToString::to_string).collect(),
            failed,
            api_calls: ApiCalls {
                connectwise: 2,
                lansweeper: 0,
            },
            ..BatchRecord::default()
        };
        for (key, record) in [
            (
                &written,
                result(&["c1", "c2"], vec![rejected("c3", "refused")]),
            ),
            (&modified, result(&["m1"], Vec::new())),
            (&retired, result(&["r1"], vec![rejected("gone", "locked")])),
        ] {
            store
                .put(&layout::batch_result(key), &record, TTL)
                .await
                .unwrap();
        }
        let conflict = ConflictReport {
            asset_key: "x1".into(),
            name: "pc-x1".into(),
            reason: "matches 2".into(),
            candidates: vec![1, 2],
            merge: None,
        };
        let section = SectionRecord {
            site: "s1".into(),
            company: "acme".into(),
            assets: 10,
            unchanged: 2,
            conflicts: store.put_parts("c", &[conflict], TTL).await.unwrap(),
            failed: store
                .put_parts("f", &[rejected("f1", "no type")], TTL)
                .await
                .unwrap(),
            create_batches: vec![written, never],
            modify_batches: vec![modified],
            retire_batches: vec![retired],
            ..SectionRecord::default()
        };
        let matched = MatchRecord {
            sections: vec![section],
            ..MatchRecord::default()
        };
        store
            .put(&layout::match_record(RUN), &matched, TTL)
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn the_report_accounts_for_every_asset_from_the_stored_records() {
        let store = stored_run().await;
        let report = report(&store, RUN, false).await.unwrap();
        assert_eq!(report.status, RunStatus::SucceededWithFailures);
        assert_eq!(report.counts.created, 2);
        // The written change and the written retirement of a listed asset.
        assert_eq!((report.counts.modified, report.counts.retired), (2, 1));
        assert_eq!(report.counts.unchanged, 2);
        assert_eq!(report.conflicts.len(), 1);
        let failed: Vec<&str> = report.failed.iter().map(|f| f.asset_key.as_str()).collect();
        assert_eq!(
            failed,
            ["f1", "c3", "c4"],
            "refused, and the batch that never ran"
        );
        assert!(report.failed[2].reason.contains("was not written"));
        assert_eq!(report.unmapped.len(), 1);
        assert_eq!(report.retire_failed.len(), 1, "a gone asset's refusal");
        assert!(report.retire_failed[0].reason.contains("configuration 9"));
        assert_eq!(report.accounted(), report.assets, "{report:#?}");
        let sections: Vec<Option<&str>> = report
            .sections
            .iter()
            .map(|s| s.company.as_deref())
            .collect();
        assert_eq!(sections, [None, Some("acme")], "the unmapped section first");
        assert_eq!(report.sections[1].accounted(), report.sections[1].assets);
        assert_eq!(
            report.api_calls.connectwise, 6,
            "each written batch's calls"
        );
    }

    #[tokio::test]
    async fn a_dry_run_counts_what_would_be_written_and_the_plan_lists_it() {
        let store = stored_run().await;
        let report = report(&store, RUN, true).await.unwrap();
        assert_eq!(report.counts.created, 4, "every planned creation");
        assert_eq!(report.counts.retired, 2);
        assert!(report.retire_failed.is_empty());
        let plan = plan(&store, RUN).await.unwrap();
        assert_eq!(plan.create.len(), 4);
        assert_eq!(plan.modify.len(), 1);
        assert_eq!(plan.retire.len(), 2);
        assert_eq!(plan.conflicts.len(), 1);
    }

    #[tokio::test]
    async fn a_skipped_run_reports_its_holder_and_nothing_else() {
        let store = MemoryStore::new();
        let holder = LeaseHolder {
            run_id: "run-0".into(),
            started_at: 1,
            expires_at: 2,
        };
        let fetched = FetchRecord {
            skipped_for: Some(holder.clone()),
            ..FetchRecord::default()
        };
        store
            .put(&layout::fetch_record(RUN), &fetched, TTL)
            .await
            .unwrap();
        let report = report(&store, RUN, false).await.unwrap();
        assert_eq!(report.status, RunStatus::Skipped);
        assert_eq!(report.skipped_for, Some(holder));
        assert_eq!(report.accounted(), 0);
    }
}
