//! The end-to-end tests that run in one process: the connectors, the pipeline and the
//! operator's commands against both simulators started in-process, one module a subject,
//! the fixtures shared from the `lscw_tests` library (`tests/support`).

mod bounded;
mod connectwise;
mod contacts;
mod duplicates;
mod enrich;
mod exactly_once;
mod lansweeper;
mod never_stuck;
mod policy;
mod quota;
mod real_tenants;
mod revert;
mod sites;
mod sync;
mod vendor_contract;
