//! The store's layout: every key the product writes, what it holds and how long it
//! lives, and the records one step leaves for another. Steps read and write each other's
//! records through this module, never through each other.
//!
//! A run's items sit under `run/{run_id}/`, so one run's never mix with another's; what
//! outlives a run (the deployment's items) sits beside them.
//!
//! Every key is listed in [`KEYS`], what it holds, who writes it and how long it lives:
//! the manual's table of the store (`docs/how-it-works.md`) is rendered from it, and a test
//! holds it to the key functions below.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calls::ApiCalls;
use crate::lifecycle::RetireGuard;
use crate::matching::FieldDiff;
use crate::references::{EnsureOutcome, ReferenceKind, ReferenceNames};
use crate::staging::Rejected;
use crate::store::{Store, StoreError, StoreExt};

/// How long an item lives: the store's TTL, its value where it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lives {
    /// The run's records (`SyncSettings::staging_ttl`).
    Run,
    /// The audit trail (`SyncSettings::audit_ttl`): outlives the run's records.
    Audit,
    /// Run summaries (`SyncSettings::report_ttl`).
    Report,
    /// The reference cache (`SyncSettings::reference_ttl`).
    ReferenceCache,
    /// [`KNOWN_TTL`].
    Known,
    /// [`LEASE_TTL`], unless renewed.
    Lease,
    /// A create batch's claim, renewed before every send.
    Claim,
    /// The quota ledger: the quota's horizon and a margin.
    QuotaLedger,
    /// One read-change-write's lock.
    WriteLock,
    /// [`KEPT`]: until an operator changes it.
    Kept,
}

/// One row of the store's layout: its keys (`{name}` stands for a part of the key,
/// `{a,b}` for one of those words), what they hold, who writes them, how long they live.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    pub keys: &'static [&'static str],
    pub holds: &'static str,
    pub written_by: &'static str,
    pub lives: Lives,
}

/// Every key the product writes. A run's items sit under `run/{id}/`; what outlives a
/// run sits beside them.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        keys: &["run/{id}/fetch"],
        holds: "`FetchRecord`",
        written_by: "fetch-assets",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/assets/{site}/{request}/{part}"],
        holds: "staged assets (`StagedAsset`)",
        written_by: "fetch-assets",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/staged/{part}"],
        holds: "the keys of the staged parts",
        written_by: "fetch-assets",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &[
            "run/{id}/rejected/{site}/{part}",
            "run/{id}/unmapped/{site}/{part}",
        ],
        holds: "assets refused or unmapped at fetch (`Rejected`)",
        written_by: "fetch-assets",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/reference-names/{part}"],
        holds: "the distinct reference names, `(kind, name)`",
        written_by: "fetch-assets",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &[
            "run/{id}/references",
            "run/{id}/references/{ids,created,failures}/{part}",
        ],
        holds: "the ensured references (`EnsuredReferences`), their lists in parts",
        written_by: "ensure-references",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/companies"],
        holds: "the mapping's companies, name key → id",
        written_by: "ensure-references",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/custom-fields"],
        holds: "the checked custom field ids, caption → id",
        written_by: "ensure-references",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/match"],
        holds: "`MatchRecord`",
        written_by: "match (and `lscw retire --approve`)",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/{create,modify}/{section}/{round}/{n}"],
        holds: "a batch: `CreateItem`s or `ModifyItem`s",
        written_by: "match",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &[
            "run/{id}/retire/{section}/{n}",
            "run/{id}/retire-approved/{n}",
        ],
        holds: "a batch of retirements (`ModifyItem`s)",
        written_by: "match, `lscw retire --approve`",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["{batch}/intent"],
        holds: "`CreateIntent`",
        written_by: "bulk-create",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["{batch}/claim"],
        holds: "the invocation sending a create batch now",
        written_by: "bulk-create",
        lives: Lives::Claim,
    },
    KeyDoc {
        keys: &["{batch}/result"],
        holds: "`BatchRecord`",
        written_by: "bulk-create, bulk-modify",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["{batch}/trail/{part}"],
        holds: "the batch's audit trail: each configuration it wrote, each field before and after, long values as fingerprints (`TrailEntry`)",
        written_by: "bulk-create, bulk-modify (before the result)",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["run/{id}/retire-held/{part}"],
        holds: "retirements the guard held (`ModifyItem`s)",
        written_by: "match",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/conflicts/{section}/{part}"],
        holds: "`ConflictReport`s",
        written_by: "match",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/match-failed/{section}/{part}"],
        holds: "assets match failed (`Rejected`)",
        written_by: "match",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/contacts/{part}"],
        holds: "assets whose user is not exactly one contact (`Rejected`: `contact: none`, `contact: 2 candidates (…)`)",
        written_by: "match",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/plan"],
        holds: "the enrichment's plan",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/planning"],
        holds: "where planning stands when an invocation stopped before the plan was whole",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/edits/{n}/{part}"],
        holds: "the planned asset edits",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/plan-failed/{part}"],
        holds: "assets the plan could not edit (`Rejected`)",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &[
            "run/{id}/enrich/progress/{start}",
            "run/{id}/enrich/failed/{start}/{part}",
        ],
        holds: "one write invocation's outcome",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Run,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/trail/part/{from}/{part}"],
        holds: "the trail of the edits Lansweeper accepted, from edit `from` to the next checkpoint: each field's value before and after (`TrailEntry`)",
        written_by: "ticket-agreement-enrich (before the progress naming it)",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &[
            "run/{id}/enrich/trail",
            "run/{id}/enrich/trail/index/{part}",
        ],
        holds: "the enrichment's trail (`TrailRecord`, `System::Lansweeper`) and its index of parts",
        written_by: "ticket-agreement-enrich, at the end of each invocation",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["run/{id}/enrich/trail/reverted"],
        holds: "the revert of the enrichment's writes (`RevertMark`)",
        written_by: "`lscw revert`",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["enrich/known", "enrich/known/{kind}/{part}"],
        holds: "tickets and agreements read so far, for the next incremental read",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Known,
    },
    KeyDoc {
        keys: &["enrich/known/{kind}-pending/{part}"],
        holds: "records read whose `/configurations` the next invocation reads (a read stopped at its deadline)",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Known,
    },
    KeyDoc {
        keys: &["run/{id}/trail", "run/{id}/trail/index/{part}"],
        holds: "the run's audit trail (`TrailRecord`) and its index: the keys of its batches' trail parts, in parts",
        written_by: "run-report, from the batches' results (`lscw revert` names the run it reverts)",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["run/{id}/trail/part/{part}"],
        holds: "a trail saved whole (a revert's, before it writes)",
        written_by: "`lscw revert`",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["run/{id}/trail/reverted"],
        holds: "the revert of the run's writes (`RevertMark`): by which run, finished or not",
        written_by: "`lscw revert`",
        lives: Lives::Audit,
    },
    KeyDoc {
        keys: &["report/{id}"],
        holds: "the run's summary (`RunSummary`)",
        written_by: "run-report",
        lives: Lives::Report,
    },
    KeyDoc {
        keys: &["runs/recent"],
        holds: "the recent runs' summaries, newest last",
        written_by: "run-report",
        lives: Lives::Report,
    },
    KeyDoc {
        keys: &[
            "cache/references/{kind}",
            "cache/references/{kind}/part/{part}",
        ],
        holds: "reference name → id, per kind, in parts",
        written_by: "ensure-references",
        lives: Lives::ReferenceCache,
    },
    KeyDoc {
        keys: &["lease/sync"],
        holds: "the run holding the sync's lease (`LeaseHolder`)",
        written_by: "fetch-assets, every step renews; `lscw merge`, `link`, `unlink`, `revert`, `retire --approve` while they write",
        lives: Lives::Lease,
    },
    KeyDoc {
        keys: &["lease/enrich"],
        holds: "the run holding the enrichment's lease (`LeaseHolder`)",
        written_by: "ticket-agreement-enrich, every invocation renews; `lscw revert` of an enrichment",
        lives: Lives::Lease,
    },
    KeyDoc {
        keys: &["quota/lansweeper/{token hash}"],
        holds: "when each request of the token's hour was sent",
        written_by: "every Lansweeper user",
        lives: Lives::QuotaLedger,
    },
    KeyDoc {
        keys: &["mapping"],
        holds: "sites to companies (`mapping`)",
        written_by: "`lscw mapping`",
        lives: Lives::Kept,
    },
    KeyDoc {
        keys: &["mapping/lock", "quota/lansweeper/{token hash}/lock"],
        holds: "the write lock of one read-change-write (`exclusive`)",
        written_by: "whoever writes the item",
        lives: Lives::WriteLock,
    },
    KeyDoc {
        keys: &["tuning/lansweeper-edit-batch"],
        holds: "how many `editAsset`s one request carries (what last worked)",
        written_by: "ticket-agreement-enrich",
        lives: Lives::Kept,
    },
    KeyDoc {
        keys: &["merge/plan", "merge/plan/part/{part}"],
        holds: "the merges a `lscw merge` set out to make (`MergeRequest`, without their tickets), empty once it ended",
        written_by: "`lscw merge`",
        lives: Lives::Kept,
    },
    KeyDoc {
        keys: &["link/plan"],
        holds: "the link a `lscw link` set out to write (`Pin`), `null` once written",
        written_by: "`lscw link` (`lscw unlink` finishes a stopped one)",
        lives: Lives::Kept,
    },
    KeyDoc {
        keys: &["overrides"],
        holds: "assets and configurations the sync leaves alone (`overrides`)",
        written_by: "`lscw ignore`",
        lives: Lives::Kept,
    },
];

/// Items an operator sets (mapping, overrides): kept until changed.
pub const KEPT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What the enrichment knows of tickets and agreements: longer than the full-read period
/// (`ENRICH_FULL_REFRESH_DAYS`), so an incremental read always has its base.
pub const KNOWN_TTL: Duration = Duration::from_secs(60 * 24 * 3600);

/// How long a lease lasts unless renewed: far longer than any step between two renewals
/// (a Lambda invocation lasts at most 15 minutes), short enough that a run that died
/// unreleased blocks the schedule for two hours at most.
pub const LEASE_TTL: Duration = Duration::from_secs(2 * 3600);

/// The key of `rest` within the run.
fn in_run(run_id: &str, rest: &str) -> String {
    format!("run/{run_id}/{rest}")
}

pub fn fetch_record(run_id: &str) -> String {
    in_run(run_id, "fetch")
}

/// The prefix of the parts staging one page of a site's assets.
pub fn staged_page(run_id: &str, site: usize, request: u64) -> String {
    in_run(run_id, &format!("assets/{site:03}/{request:05}"))
}

/// The prefix of the parts listing the staged parts' keys.
pub fn staged_index(run_id: &str) -> String {
    in_run(run_id, "staged")
}

/// The prefix of the parts of a site's assets refused at fetch.
pub fn site_rejected(run_id: &str, site: usize) -> String {
    in_run(run_id, &format!("rejected/{site:03}"))
}

/// The prefix of the parts of a site's assets no mapping rule sends anywhere.
pub fn site_unmapped(run_id: &str, site: usize) -> String {
    in_run(run_id, &format!("unmapped/{site:03}"))
}

pub fn reference_names(run_id: &str) -> String {
    in_run(run_id, "reference-names")
}

pub fn ensured_references(run_id: &str) -> String {
    in_run(run_id, "references")
}

pub fn resolved_companies(run_id: &str) -> String {
    in_run(run_id, "companies")
}

pub fn checked_custom_fields(run_id: &str) -> String {
    in_run(run_id, "custom-fields")
}

pub fn match_record(run_id: &str) -> String {
    in_run(run_id, "match")
}

/// The key of the `n`th batch of a kind (`create/000/00`, `retire/001`, `approved`).
pub fn batch(run_id: &str, kind: &str, n: usize) -> String {
    in_run(run_id, &format!("{kind}/{n:04}"))
}

pub fn batch_intent(batch: &str) -> String {
    format!("{batch}/intent")
}

/// Who is sending a create batch now: claimed before sending, made to lapse once its
/// result is recorded.
pub fn batch_claim(batch: &str) -> String {
    format!("{batch}/claim")
}

pub fn batch_result(batch: &str) -> String {
    format!("{batch}/result")
}

/// The trail of what a batch wrote, in parts (`{batch}/trail/{part}`): written with its
/// result, kept for the audit retention.
pub fn batch_trail(batch: &str) -> String {
    format!("{batch}/trail")
}

pub fn held_retirements(run_id: &str) -> String {
    in_run(run_id, "retire-held")
}

pub fn contact_reports(run_id: &str) -> String {
    in_run(run_id, "contacts")
}

pub fn section_conflicts(run_id: &str, section: usize) -> String {
    in_run(run_id, &format!("conflicts/{section:03}"))
}

pub fn section_failed(run_id: &str, section: usize) -> String {
    in_run(run_id, &format!("match-failed/{section:03}"))
}

pub fn enrich_plan(run_id: &str) -> String {
    in_run(run_id, "enrich/plan")
}

pub fn enrich_edits(run_id: &str, n: usize) -> String {
    in_run(run_id, &format!("enrich/edits/{n:04}"))
}

/// Where the enrichment's planning stands when an invocation stopped before the plan
/// was whole.
pub fn enrich_planning(run_id: &str) -> String {
    in_run(run_id, "enrich/planning")
}

/// The prefix of the parts of the assets the enrichment's plan could not edit.
pub fn enrich_plan_failed(run_id: &str) -> String {
    in_run(run_id, "enrich/plan-failed")
}

pub fn enrich_progress(run_id: &str, start: usize) -> String {
    in_run(run_id, &format!("enrich/progress/{start:07}"))
}

pub fn enrich_failed(run_id: &str, start: usize) -> String {
    in_run(run_id, &format!("enrich/failed/{start:07}"))
}

/// The trail of the edits an invocation wrote from edit `from` to its next checkpoint,
/// in parts: named by where they start, so an invocation entered again from its
/// checkpoint writes the same parts anew.
pub fn enrich_trail_part(run_id: &str, from: usize) -> String {
    in_run(run_id, &format!("enrich/trail/part/{from:07}"))
}

/// What the enrichment knows of tickets and agreements (their parts under it, per kind).
pub const KNOWN: &str = "enrich/known";

pub fn known_records(kind: &str) -> String {
    format!("{KNOWN}/{kind}")
}

/// The records of `kind` read whose `/configurations` are still to read.
pub fn known_pending(kind: &str) -> String {
    format!("{KNOWN}/{kind}-pending")
}

/// The audit trail of a run's writes (`kind`: `trail`, `enrich/trail`): its record, its
/// parts under it.
pub fn trail(run_id: &str, kind: &str) -> String {
    in_run(run_id, kind)
}

/// Whether a run's trail (`kind`) was reverted.
pub fn trail_reverted(run_id: &str, kind: &str) -> String {
    format!("{}/reverted", trail(run_id, kind))
}

pub fn run_summary(run_id: &str) -> String {
    format!("report/{run_id}")
}

/// The recent runs' summaries (newest last), as `lscw runs` shows them.
pub const RECENT_RUNS: &str = "runs/recent";

/// The reference cache of one kind (its [`ReferenceKind::label`]).
pub fn reference_cache(kind: ReferenceKind) -> String {
    format!("cache/references/{}", kind.label())
}

/// The sync's lease item.
pub const LEASE: &str = "lease/sync";

/// The enrichment's lease item: held beside the sync's, so the hourly sync goes on while
/// a long enrichment writes.
pub const ENRICH_LEASE: &str = "lease/enrich";

/// Where every user of one Lansweeper token keeps the requests it spent: named by a
/// hash of the token, never by the token.
pub fn lansweeper_quota(token_hash: u64) -> String {
    format!("quota/lansweeper/{token_hash:016x}")
}

pub const MAPPING: &str = "mapping";

/// The merges a `lscw merge` set out to make, stored before its first write and emptied
/// when it ends: a merge stopped midway is finished by the next, whatever it is asked.
pub const MERGE_PLAN: &str = "merge/plan";

/// The link a `lscw link` set out to write, stored before its first write and removed
/// when it ends: a link stopped between its writes is finished by the next `lscw link`
/// or `lscw unlink`.
pub const LINK_PLAN: &str = "link/plan";

/// How many `editAsset`s the enrichment sends in one request: what last worked.
pub const LANSWEEPER_EDIT_BATCH: &str = "tuning/lansweeper-edit-batch";

pub const OVERRIDES: &str = "overrides";

/// Who holds the lease, as a skipped run records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseHolder {
    pub run_id: String,
    /// When the holder's run took the lease (epoch seconds).
    pub started_at: u64,
    /// When the lease lapses unless renewed (epoch seconds).
    pub expires_at: u64,
}

/// What fetch-assets staged, as the later steps and the report read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchRecord {
    pub assets: u64,
    pub rejected: Vec<String>,
    /// What each mapped site held.
    #[serde(default)]
    pub sites: Vec<SiteFetch>,
    /// Parts of the list of the staged assets' parts.
    #[serde(default)]
    pub chunks: Vec<String>,
    /// Parts of the distinct reference names, `(kind, name)`.
    #[serde(default)]
    pub references: Vec<String>,
    /// Every company the mapping names (identifier or id).
    #[serde(default)]
    pub companies: Vec<String>,
    pub api_calls: ApiCalls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// One site's part of the fetch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteFetch {
    pub site: String,
    /// Why the site could not be read (whole or in part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub assets: u64,
    /// Assets rejected before mapping (no key, no name): their keys' parts.
    pub rejected: Vec<String>,
    /// Assets no rule maps.
    pub unmapped: Vec<String>,
    /// The companies the mapping sends this site's assets to: those whose listing is
    /// incomplete when the site is.
    #[serde(default)]
    pub companies: Vec<String>,
}

/// The references ensure-references found or created, with what it cost.
pub type EnsuredReferences = (EnsureOutcome, ApiCalls);

/// [`EnsuredReferences`] as stored: its lists in parts, since a tenant's names (every
/// id of four kinds, the names created) can be many more than one item holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnsuredRecord {
    /// Parts of `(kind, name key, id)`.
    ids: Vec<String>,
    /// Parts of `(kind, name)`.
    created: Vec<String>,
    /// Parts of [`crate::references::ReferenceFailure`]s.
    failures: Vec<String>,
    api_calls: ApiCalls,
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

/// Items that belong to an asset.
pub trait Keyed {
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

/// An asset match could not pair with exactly one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictReport {
    pub asset_key: String,
    pub name: String,
    pub reason: String,
    pub candidates: Vec<i64>,
    /// The merge that resolves it, when the candidates are one device entered twice
    /// (`lscw merge KEEP DROP…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<String>,
}

/// What the writers and the report read of the match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRecord {
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
    /// The assets whose user is no one contact, or several (parts of [`Rejected`]):
    /// reported, their configuration's contact left as it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
}

/// The assets of one site that go to one company, and what became of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionRecord {
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

/// Written before a create batch is sent: the batch (and so its assets) may be in
/// ConnectWise from then on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIntent {
    /// Times a step started sending this batch.
    pub entries: u32,
    /// When the last of them started (epoch seconds).
    pub since: u64,
}

/// A written batch's outcome per asset, as the report reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub written: Vec<String>,
    pub failed: Vec<Rejected>,
    pub api_calls: ApiCalls,
    /// The parts of the batch's trail ([`batch_trail`]): one entry per asset written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trail: Vec<String>,
}

/// The run's fetch record.
pub async fn read_fetch<S: Store>(store: &S, run_id: &str) -> Result<FetchRecord, StoreError> {
    store.require(&fetch_record(run_id)).await
}

/// The run's match record.
pub async fn read_match<S: Store>(store: &S, run_id: &str) -> Result<MatchRecord, StoreError> {
    store.require(&match_record(run_id)).await
}

/// Stores the references the run ensured, with what it cost.
pub async fn write_ensured<S: Store>(
    store: &S,
    run_id: &str,
    outcome: &EnsureOutcome,
    api_calls: ApiCalls,
    ttl: Duration,
) -> Result<(), StoreError> {
    let key = ensured_references(run_id);
    let ids: Vec<(ReferenceKind, &String, i64)> = outcome
        .ids
        .0
        .iter()
        .flat_map(|(kind, ids)| ids.iter().map(move |(name, id)| (*kind, name, *id)))
        .collect();
    let created: Vec<(ReferenceKind, &String)> = outcome
        .created
        .iter()
        .flat_map(|(kind, names)| names.iter().map(move |name| (*kind, name)))
        .collect();
    let record = EnsuredRecord {
        ids: store.put_parts(&format!("{key}/ids"), &ids, ttl).await?,
        created: store
            .put_parts(&format!("{key}/created"), &created, ttl)
            .await?,
        failures: store
            .put_parts(&format!("{key}/failures"), &outcome.failures, ttl)
            .await?,
        api_calls,
    };
    store.put(&key, &record, ttl).await
}

/// The references the run ensured, with what it cost.
pub async fn read_ensured<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<EnsuredReferences, StoreError> {
    let record: EnsuredRecord = store.require(&ensured_references(run_id)).await?;
    let mut outcome = EnsureOutcome::default();
    let ids: Vec<(ReferenceKind, String, i64)> = store.get_parts(&record.ids).await?;
    for (kind, name, id) in ids {
        outcome.ids.0.entry(kind).or_default().insert(name, id);
    }
    let created: Vec<(ReferenceKind, String)> = store.get_parts(&record.created).await?;
    for (kind, name) in created {
        outcome.created.entry(kind).or_default().push(name);
    }
    outcome.failures = store.get_parts(&record.failures).await?;
    Ok((outcome, record.api_calls))
}

/// The mapping's companies the run found, name key → id; a company ConnectWise does not
/// have is absent (its assets fail alone).
pub async fn read_companies<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<HashMap<String, i64>, StoreError> {
    store.require(&resolved_companies(run_id)).await
}

/// The custom field ids the run checked, as the writers use them.
pub async fn read_custom_fields<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<HashMap<String, i64>, StoreError> {
    store.require(&checked_custom_fields(run_id)).await
}

/// The keys of the parts holding a run's staged assets.
pub async fn staged_parts<S: Store>(store: &S, run_id: &str) -> Result<Vec<String>, StoreError> {
    let record = read_fetch(store, run_id).await?;
    store.get_parts(&record.chunks).await
}

/// The distinct reference names a run's assets use.
pub async fn read_reference_names<S: Store>(
    store: &S,
    record: &FetchRecord,
) -> Result<ReferenceNames, StoreError> {
    let list: Vec<(ReferenceKind, String)> = store.get_parts(&record.references).await?;
    let mut names = ReferenceNames::default();
    for (kind, name) in &list {
        names.add(*kind, Some(name));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `key` is one of `pattern`'s: `{name}` stands for any part of a key (a
    /// batch's key spans several segments), `{a,b}` for one of those words.
    fn is_of(pattern: &str, key: &str) -> bool {
        let Some(open) = pattern.find('{') else {
            return pattern == key;
        };
        let (literal, rest) = pattern.split_at(open);
        let Some(key) = key.strip_prefix(literal) else {
            return false;
        };
        let close = rest.find('}').unwrap_or(rest.len() - 1);
        let (placeholder, after) = (&rest[1..close], &rest[close + 1..]);
        if placeholder.contains(',') {
            return placeholder
                .split(',')
                .any(|word| key.strip_prefix(word).is_some_and(|k| is_of(after, k)));
        }
        (1..=key.len())
            .filter(|end| key.is_char_boundary(*end))
            .any(|end| is_of(after, &key[end..]))
    }

    /// A key function's key, or a list's under it (its parts, its index).
    fn is_listed_as(pattern: &str, key: &str) -> bool {
        ["", "/0000", "/part/0000", "/index/0000"]
            .iter()
            .any(|suffix| is_of(pattern, &format!("{key}{suffix}")))
    }

    /// Breaking it looks like: a key the product writes that the manual's table of the
    /// store does not list, or a row of it that no key function writes any more.
    #[test]
    fn every_key_is_in_the_table_and_every_row_is_a_key() {
        let run = "run-1-abcd";
        let batch = batch(run, "create/000/00", 1);
        let samples = [
            fetch_record(run),
            staged_page(run, 2, 7),
            staged_index(run),
            site_rejected(run, 1),
            site_unmapped(run, 1),
            reference_names(run),
            ensured_references(run),
            format!("{}/ids", ensured_references(run)),
            resolved_companies(run),
            checked_custom_fields(run),
            match_record(run),
            batch.clone(),
            super::batch(run, "modify/001/02", 3),
            super::batch(run, "retire/001", 3),
            super::batch(run, "retire-approved", 3),
            batch_intent(&batch),
            batch_claim(&batch),
            batch_result(&batch),
            batch_trail(&batch),
            held_retirements(run),
            contact_reports(run),
            section_conflicts(run, 2),
            section_failed(run, 2),
            enrich_plan(run),
            enrich_edits(run, 4),
            enrich_planning(run),
            enrich_plan_failed(run),
            enrich_progress(run, 5),
            enrich_failed(run, 5),
            enrich_trail_part(run, 5),
            KNOWN.to_string(),
            known_records("tickets"),
            known_pending("tickets"),
            trail(run, "trail"),
            trail(run, "enrich/trail"),
            trail_reverted(run, "trail"),
            trail_reverted(run, "enrich/trail"),
            run_summary(run),
            RECENT_RUNS.to_string(),
            reference_cache(ReferenceKind::Type),
            LEASE.to_string(),
            ENRICH_LEASE.to_string(),
            lansweeper_quota(0xfeed),
            format!("{}/lock", lansweeper_quota(0xfeed)),
            MAPPING.to_string(),
            format!("{MAPPING}/lock"),
            LANSWEEPER_EDIT_BATCH.to_string(),
            MERGE_PLAN.to_string(),
            LINK_PLAN.to_string(),
            OVERRIDES.to_string(),
        ];
        let patterns: Vec<&str> = KEYS
            .iter()
            .flat_map(|row| row.keys.iter().copied())
            .collect();
        for key in &samples {
            assert!(
                patterns.iter().any(|p| is_listed_as(p, key)),
                "{key} is in no row of layout::KEYS"
            );
        }
        for pattern in &patterns {
            assert!(
                samples.iter().any(|key| is_listed_as(pattern, key)),
                "no key function writes {pattern}"
            );
        }
    }

    #[test]
    fn a_runs_keys_sit_under_its_id_and_batch_keys_carry_their_batch() {
        let run = "run-1-abcd";
        for key in [
            fetch_record(run),
            staged_page(run, 2, 7),
            staged_index(run),
            site_rejected(run, 1),
            site_unmapped(run, 1),
            reference_names(run),
            ensured_references(run),
            resolved_companies(run),
            checked_custom_fields(run),
            match_record(run),
            batch(run, "create/000/00", 3),
            held_retirements(run),
            section_conflicts(run, 0),
            section_failed(run, 0),
            enrich_plan(run),
            enrich_edits(run, 0),
            enrich_plan_failed(run),
            enrich_progress(run, 0),
            enrich_failed(run, 0),
            trail(run, "trail"),
            trail_reverted(run, "enrich/trail"),
        ] {
            assert!(key.starts_with("run/run-1-abcd/"), "{key}");
        }
        let one = batch(run, "create/000/00", 3);
        assert_eq!(one, "run/run-1-abcd/create/000/00/0003");
        assert_eq!(batch_intent(&one), format!("{one}/intent"));
        assert_eq!(batch_result(&one), format!("{one}/result"));
        assert_ne!(batch_intent(&one), batch_result(&one));
        assert_eq!(batch_claim(&one), format!("{one}/claim"));
        assert_eq!(staged_page(run, 2, 7), "run/run-1-abcd/assets/002/00007");
    }

    #[test]
    fn deployment_keys_never_collide_with_a_run() {
        let keys = [
            run_summary("run-1"),
            RECENT_RUNS.to_string(),
            reference_cache(ReferenceKind::Type),
            LEASE.to_string(),
            ENRICH_LEASE.to_string(),
            lansweeper_quota(0xfeed),
            MAPPING.to_string(),
            LANSWEEPER_EDIT_BATCH.to_string(),
            MERGE_PLAN.to_string(),
            LINK_PLAN.to_string(),
            OVERRIDES.to_string(),
            KNOWN.to_string(),
            known_records("tickets"),
        ];
        for key in &keys {
            assert!(!key.starts_with("run/"), "{key}");
        }
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        assert_eq!(
            lansweeper_quota(0xfeed),
            "quota/lansweeper/000000000000feed"
        );
    }

    /// Breaking it looks like: a tenant with thousands of locations fails
    /// ensure-references on every run, its record over the store's item limit.
    #[tokio::test]
    async fn the_ensured_references_of_20_000_names_are_stored_within_item_limits() {
        let store = crate::store::MemoryStore::new();
        let ttl = Duration::from_secs(60);
        let mut outcome = EnsureOutcome::default();
        for i in 0..20_000 {
            let name = format!("Head office, building {i:05}, floor 3");
            outcome.ids.insert(ReferenceKind::Location, &name, i);
            outcome
                .created
                .entry(ReferenceKind::Location)
                .or_default()
                .push(name);
        }
        outcome.failures.push(crate::references::ReferenceFailure {
            kind: ReferenceKind::Type,
            name: "x".repeat(60),
            reason: "longer than 50 characters".into(),
        });
        let calls = ApiCalls {
            connectwise: 3,
            lansweeper: 0,
        };
        write_ensured(&store, "run-1", &outcome, calls, ttl)
            .await
            .unwrap();
        for key in store.keys() {
            let bytes = store.raw_len(&key).unwrap();
            assert!(
                bytes <= crate::store::MAX_VALUE_BYTES,
                "{key}: {bytes} bytes"
            );
        }
        let (back, back_calls) = read_ensured(&store, "run-1").await.unwrap();
        assert_eq!(back, outcome);
        assert_eq!(back_calls, calls);
    }
}
