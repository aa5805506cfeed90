//! The error of the domain layer: what a pipeline step or the enrichment can fail with.

use crate::connectwise::ConnectWiseError;
use crate::lansweeper::LansweeperError;
use crate::references::ReferenceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    ConnectWise(#[from] ConnectWiseError),
    #[error(transparent)]
    Lansweeper(#[from] LansweeperError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    References(#[from] ReferenceError),
    #[error("run {run_id} lost its lease to run {holder} (it lapsed); stopped before writing more")]
    LeaseLost { run_id: String, holder: String },
}
