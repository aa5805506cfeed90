//! Enrichment (ConnectWise → Lansweeper): tickets, agreements and SLA of each linked
//! configuration written onto its Lansweeper asset as custom fields.
//!
//! Query plan (see [`crate::connectwise::linked`]): the linked configurations in one
//! forward-only read; the agreements and tickets of their companies; each one's
//! `/configurations`. Calls ≈ configurations/1000 + agreements + tickets + a few,
//! whatever the number of configurations they touch.
//!
//! Writes. One `editAsset` per asset whose values changed: current values are read
//! with the assets, so a second run writes nothing. Lansweeper allows 150 requests a
//! minute, so the writing works within a time budget and hands back a continuation.

mod outcome;
mod plan;
mod values;
mod write;

pub use outcome::{
    EnrichReport, LocalEnrichment, recorded, report, run_enrich, run_enrich_watched,
};
pub use plan::{AssetEdit, ensure_fields, known_tickets, ticket_counts};
pub use values::{FIELDS, chosen_agreement, desired_values};
pub use write::enrich;
pub(crate) use write::{Batching, entry_of, write_batch};
