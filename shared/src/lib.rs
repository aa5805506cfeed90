//! The domain layer of the Lansweeper ⇄ ConnectWise sync. Connectors (`connectwise`,
//! `lansweeper`) and pure modules (`normalize`, `staging`, `matching`, `payload`) at the
//! bottom; the steps (`pipeline`, `enrichment`) over them; `environment` and `lambda`
//! on top, for the functions and the CLI.

pub mod actions;
pub mod calls;
pub mod clock;
pub mod connectwise;
pub mod contacts;
pub mod custom_fields;
pub mod duplicates;
pub mod enrichment;
pub mod environment;
pub mod error;
pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod lansweeper;
pub mod layout;
pub mod lease;
pub mod lifecycle;
#[cfg(any(test, feature = "contract"))]
pub mod manual;
pub mod mapping;
pub mod matching;
pub mod normalize;
pub mod operator;
pub mod overrides;
pub mod payload;
pub mod pipeline;
pub mod policy;
pub mod quota;
pub mod references;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod settings;
pub mod staging;
pub mod states;
pub mod store;
pub mod trail;
