//! Lansweeper Data API (GraphQL) connector: sites, assets with cursor paging and path
//! splitting, custom fields, `editAsset`, pacing under the 150-a-minute quota.

mod asset;
mod client;
mod config;
pub mod documents;
mod error;
mod pager;

pub use asset::{ASSET_PATHS, Asset, Software};
pub use client::{CustomField, CustomFieldType, LansweeperClient, LansweeperOptions, Site};
pub use config::LansweeperConfig;
pub use error::{GraphQlError, LansweeperError, site_refused};
pub use pager::{AssetPageStats, AssetPager};

pub const DEFAULT_API_URL: &str = "https://api.lansweeper.com/api/v2/graphql";
/// Lansweeper refuses requests naming more field paths than this.
pub const MAX_PATHS_PER_REQUEST: usize = 30;
/// Lansweeper refuses a filter of more conditions than this.
pub const MAX_FILTER_CONDITIONS: usize = 100;
/// The practical page maximum of `assetResources`.
pub const PAGE_SIZE: u32 = 500;
