//! What each state of the state machine hands the next: the run id and counts, never
//! lists that grow with the estate (Step Functions allows 256 KiB a state). What a step
//! leaves for the others in the store is in [`crate::layout`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lanes::LaneInput;
use crate::calls::ApiCalls;
use crate::layout::LeaseHolder;
use crate::references::ReferenceKind;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchInput {
    /// Continue this run id (the state machine's execution name), or make one.
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A misspelt key (`runID`) must be refused, never read as a new run.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchOutput {
    pub run_id: String,
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
pub struct EnsureOutput {
    pub run_id: String,
    pub references_created: BTreeMap<ReferenceKind, usize>,
    pub reference_failures: usize,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchOutput {
    pub run_id: String,
    /// Groups of up to [`super::lanes::GROUP_SIZE`] batches to create and to modify; their keys stay
    /// in the store ([`super::lanes::planned_groups`]), so the state is the same size at any estate.
    pub create_groups: usize,
    pub modify_groups: usize,
    /// The Maps' items: at most [`super::lanes::LANES`] each.
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
