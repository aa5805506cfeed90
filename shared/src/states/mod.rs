//! The run's contract: what each state of the state machine (`infra/statemachine/
//! sync.asl.json`) hands the next, one type per state, named after it. Only the run id
//! and counts cross a state, never lists that grow with the estate (Step Functions allows
//! 256 KiB a state); what a step leaves for the others in the store is in
//! [`crate::layout`]. The test beside it walks the state machine's definition and holds
//! every Task's `Parameters`, `ResultSelector`, `ResultPath` and `OutputPath` to these
//! types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calls::ApiCalls;
use crate::layout::LeaseHolder;
use crate::references::ReferenceKind;

#[cfg(any(test, feature = "contract"))]
pub mod walk;

/// One Lambda Task of the state machine: the function it invokes (by the template
/// parameter naming its ARN in `sync.asl.json`, and by its binary), the type its payload
/// is read into and the type it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoc {
    pub state: &'static str,
    pub function_arn: &'static str,
    pub binary: &'static str,
    pub input: &'static str,
    pub output: &'static str,
}

/// Every Lambda Task of `sync.asl.json`: what the manual's table of the run's contract is
/// rendered from, and what the walk of the state machine holds each Task to.
pub const TASKS: &[TaskDoc] = &[
    TaskDoc {
        state: "FetchAssets",
        function_arn: "FetchAssetsFunctionArn",
        binary: "fetch-assets",
        input: "FetchAssetsInput",
        output: "FetchAssetsOutput",
    },
    TaskDoc {
        state: "EnsureReferences",
        function_arn: "EnsureReferencesFunctionArn",
        binary: "ensure-references",
        input: "FetchAssetsOutput",
        output: "EnsureReferencesOutput",
    },
    TaskDoc {
        state: "Match",
        function_arn: "MatchFunctionArn",
        binary: "match",
        input: "EnsureReferencesOutput",
        output: "MatchOutput",
    },
    TaskDoc {
        state: "BulkCreate",
        function_arn: "BulkCreateFunctionArn",
        binary: "bulk-create",
        input: "BulkWriteInput",
        output: "BulkWriteOutput",
    },
    TaskDoc {
        state: "BulkModify",
        function_arn: "BulkModifyFunctionArn",
        binary: "bulk-modify",
        input: "BulkWriteInput",
        output: "BulkWriteOutput",
    },
    TaskDoc {
        state: "Enrich",
        function_arn: "EnrichFunctionArn",
        binary: "ticket-agreement-enrich",
        input: "EnrichInput",
        output: "EnrichOutput",
    },
    TaskDoc {
        state: "RecordReport",
        function_arn: "RunReportFunctionArn",
        binary: "run-report",
        input: "RecordReportInput",
        output: "RunSummary",
    },
    TaskDoc {
        state: "RecordSkipped",
        function_arn: "RunReportFunctionArn",
        binary: "run-report",
        input: "RecordReportInput",
        output: "RunSummary",
    },
    TaskDoc {
        state: "RecordFailure",
        function_arn: "RunReportFunctionArn",
        binary: "run-report",
        input: "RecordReportInput",
        output: "RunSummary",
    },
];

/// A run's id: the state machine's execution name (`run-{epoch}-{hex}` when the product
/// names it), the key every record of the run sits under. A type of its own, so a run id
/// is never mistaken for another text (a batch key, an asset key) on its way.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A new run's id: sortable by time, unique enough to share a table.
    pub fn generate() -> Self {
        Self(format!(
            "run-{}-{:04x}",
            crate::clock::epoch_seconds(),
            fastrand::u16(..)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for RunId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RunId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        Self(id.to_string())
    }
}

impl PartialEq<str> for RunId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RunId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let (a, b) = (RunId::generate(), RunId::generate());
        assert!(a.starts_with("run-") && b.starts_with("run-"));
        let seconds = |id: &str| -> u64 { id.split('-').nth(1).unwrap().parse().unwrap() };
        assert!(seconds(&a) <= seconds(&b));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!(a.as_str())
        );
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchAssetsInput {
    /// Continue this run id (the state machine's execution name), or make one.
    #[serde(default)]
    pub run_id: Option<RunId>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchAssetsOutput {
    pub run_id: RunId,
    /// Assets staged in the store (the fetch record lists their parts): the state
    /// carries counts, never lists that grow with the estate.
    #[serde(default)]
    pub staged: u64,
    /// Assets Lansweeper returned, rejected ones included.
    pub assets: u64,
    pub rejected: u64,
    /// Assets no mapping rule sends to a company: reported, never written.
    #[serde(default)]
    pub unmapped: u64,
    /// Distinct reference names found (the fetch record lists them).
    #[serde(default)]
    pub reference_names: u64,
    pub api_calls: ApiCalls,
    /// Another run holds the lease: this one ended at once and wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnsureReferencesOutput {
    pub run_id: RunId,
    pub references_created: BTreeMap<ReferenceKind, usize>,
    pub reference_failures: usize,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchOutput {
    pub run_id: RunId,
    /// Groups of up to [`crate::pipeline::GROUP_SIZE`] batches to create and to modify; their keys stay
    /// in the store ([`crate::pipeline::planned_groups`]), so the state is the same size at any estate.
    pub create_groups: usize,
    pub modify_groups: usize,
    /// The Maps' items: at most [`crate::pipeline::LANES`] each.
    pub create_lanes: Vec<BulkWriteInput>,
    pub modify_lanes: Vec<BulkWriteInput>,
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

/// One write lane: what a bulk function is invoked with, first by the Map (`next` =
/// `lane`), then again with the `next` its last invocation answered, until `done`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkWriteInput {
    pub run_id: RunId,
    pub lane: usize,
    pub lanes: usize,
    /// The group to write next.
    pub next: usize,
}

/// What one invocation of a write lane did, and where the lane goes on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkWriteOutput {
    pub run_id: RunId,
    pub lane: usize,
    pub lanes: usize,
    /// The group the next invocation starts at.
    pub next: usize,
    /// Every group of the lane is written: the Map iteration ends.
    pub done: bool,
    pub groups: usize,
    pub batches: usize,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichInput {
    #[serde(default)]
    pub run_id: Option<RunId>,
    /// Where the previous invocation stopped; absent on the first.
    #[serde(default)]
    pub next: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichOutput {
    pub run_id: RunId,
    pub done: bool,
    pub next: usize,
    pub edits: usize,
    pub api_calls: ApiCalls,
    /// Lansweeper's quota is spent for longer than this invocation has left: wait this
    /// long (the state machine's `Wait` state, costing no Lambda time) before the next.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_seconds: u64,
    /// Another run holds the lease: this enrichment wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
}

/// The run whose report to record: what the state machine's `RecordReport` hands over,
/// and its `RecordSkipped` (the holder of the lease) and `RecordFailure` (the error
/// Step Functions caught), so every run is recorded and counted the same way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordReportInput {
    pub run_id: RunId,
    /// The run found the lease held by this run and wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
    /// The run stopped: the error Step Functions caught (`Error`, `Cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_zero(value: &u64) -> bool {
    *value == 0
}
