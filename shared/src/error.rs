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
    #[error(
        "batch {batch} was taken over by invocation {by} while this one sent it; nothing more was sent"
    )]
    BatchTakenOver { batch: String, by: String },
}

impl PipelineError {
    /// Whether trying again later may succeed: network errors, 5xx and 429 past the
    /// retry budget, a store that is throttled, a listing cut short. Bad credentials, bad
    /// settings, refused input and a lost lease are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Config(_) | Self::LeaseLost { .. } | Self::BatchTakenOver { .. } => false,
            Self::ConnectWise(error) => error.is_transient(),
            Self::Lansweeper(error) => error.is_transient(),
            Self::Store(error) => matches!(error, StoreError::Backend(_)),
            Self::References(ReferenceError::ConnectWise(error)) => error.is_transient(),
            Self::References(ReferenceError::Store(error)) => {
                matches!(error, StoreError::Backend(_))
            }
            Self::References(ReferenceError::NoStructureLevel) => false,
        }
    }
}
