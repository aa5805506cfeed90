//! The asset synchronisation's five steps as plain async functions over clients and a
//! store, one module per state of the state machine. The Lambda functions and
//! `lscw sync` call exactly these. Steps hand each other references (run id, store
//! keys), never asset arrays: Step Functions allows 256 KiB a state.

mod approve;
mod create;
mod fetch;
mod r#match;
mod modify;
mod references;
mod report;
mod run;
mod summary;
mod write;

pub use approve::{Approval, approve_retirement};
pub use create::bulk_create;
pub use fetch::{FetchInput, FetchOutput, fetch_assets, staged_parts};
pub use r#match::{
    ConflictReport, CreateItem, GROUP_SIZE, LANES, LaneInput, MatchOutput, ModifyItem,
    match_assets, planned_groups,
};
pub use modify::bulk_modify;
pub use references::{EnsureOutput, ensure_references};
pub use report::{Plan, RunReport, RunStatus, SectionReport, plan, report};
pub use run::{Progress, run_sync};
pub use summary::{
    METRIC_NAMESPACE, RECENT_RUNS_KEY, ReportInput, RunSummary, recent_runs, record_report,
    summary_key,
};
pub use write::{
    BatchInput, BatchOutput, GroupInput, GroupOutput, LaneOutput, WriteKind, write_group,
    write_lane,
};
