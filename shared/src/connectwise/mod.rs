//! ConnectWise PSA (Manage) REST connector: connection, query inputs, paging, bulk
//! writes. Every request goes through [`crate::http::HttpExecutor`].

mod bulk;
mod client;
mod condition;
mod config;
pub mod contacts;
mod error;
mod fields;
pub mod known;
pub mod linked;
mod query;

pub use bulk::{
    CONFIGURATION_NAME_MAX, REFERENCE_NAME_MAX, bulk, checked_name, validate_configuration,
};
pub use client::{
    ApiErrorBody, BulkItemResult, ClientOptions, ConnectWiseClient, configuration_url,
};
pub use condition::{Condition, Field, Literal, encoded_len};
pub use config::ConnectionConfig;
pub use error::{ApiErrorDetail, ConnectWiseError};
pub use fields::{custom_field, same_caption};
pub use query::{ListQuery, MAX_CONDITION_CHARS, MAX_PAGE_SIZE, PagePlan, endpoint};

/// The model version pinned on every call, so a ConnectWise upgrade cannot change shapes.
pub const API_VERSION: &str = "2025.8";
/// Path of the REST API under a site, for the default codebase.
pub const DEFAULT_CODEBASE: &str = "v4_6_release/";
