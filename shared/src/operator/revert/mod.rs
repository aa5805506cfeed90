//! `lscw revert RUN`: a run's writes taken back from its audit trail, on both sides: its
//! ConnectWise configurations ([`revert_run`]) and its enrichment's Lansweeper values
//! ([`revert_enrichment`]). A field changed since the run is left as it is and reported.

mod assets;
mod configurations;

pub use assets::{EnrichRevert, revert_enrichment};
pub use configurations::{Revert, revert_run};
