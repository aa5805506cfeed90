//! The asset synchronisation's five steps as plain async functions over clients and a
//! store, one module per state of the state machine. The Lambda functions and
//! `lscw sync` call exactly these. Steps hand each other references (run id, counts),
//! never asset arrays: Step Functions allows 256 KiB a state. What a step leaves for
//! another is in [`crate::layout`]; steps never read each other's modules.

mod batch;
mod create;
mod ensure;
mod fetch;
mod lanes;
mod match_assets;
mod modify;
mod report;
mod run_trail;
mod summary;
mod sync;
mod write_lane;

pub(crate) use batch::put_batches;
pub use batch::{BatchInput, BatchOutput, WriteKind};
pub use create::{CLAIM_TTL, bulk_create};
pub use ensure::ensure_references;
pub(crate) use ensure::resolve_companies;
pub use fetch::fetch_assets;
pub use lanes::{GROUP_SIZE, LANES, planned_groups};
pub use match_assets::match_assets;
pub use modify::bulk_modify;
pub use report::{Counts, Plan, RunReport, RunStatus, SectionReport, plan, report};
pub use run_trail::record_trail;
pub use summary::{METRIC_NAMESPACE, Retention, RunSummary, recent_runs, record_report};
pub use sync::{LocalRun, Progress, Scope, run_locally, run_sync};
pub use write_lane::{GroupInput, GroupOutput, write_group, write_lane};
