//! The operator's commands that write in steps: `lscw retire --approve` (the retirements
//! the guard held), `lscw merge` (duplicates into the one kept) and `lscw revert` (a
//! run's writes taken back, on both sides). Each keeps its plan in the store before its
//! first write, so one stopped anywhere is finished by the next. Above the pipeline and
//! the enrichment, whose writers they reuse.

mod approve;
mod merge;
pub mod revert;

pub use approve::{Approval, approve_retirement};
pub use merge::{
    MergeFailure, MergeOptions, MergeReport, MergeRequest, Merged, find_duplicates, merge,
    merged_name,
};
pub use revert::{EnrichRevert, Revert, revert_enrichment, revert_run};
