//! Simulators of the two SaaS APIs the sync talks to, as real HTTP servers: strict about
//! what they accept, faithful in what they answer, with faults to inject and counters to
//! read from tests and benchmarks.

pub mod connectwise;
pub mod control;
pub mod lansweeper;
mod rng;
pub mod scenario;
mod server;

pub use control::Control;
