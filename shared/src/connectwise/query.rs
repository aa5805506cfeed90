//! Query inputs of the list actions, and how `page` / `pageSize` become requests.
//!
//! The spec's "Pagination Scenarios" table, as implemented:
//!
//! | page | pageSize | result |
//! |------|----------|--------|
//! | –    | –        | every record, read with forward-only paging, 1000 a request |
//! | 2    | –        | records 26–50 (default page size 25) |
//! | 2    | 100      | records 101–200 |
//! | 2    | 200      | records 201–400 |
//! | –    | 300      | records 1–300 |
//! | any  | > 1000   | an error before any call |
//!
//! The spec's row "page 2, size 200 → 201 to 300 (only up to 100 returned)" contradicts
//! its own rule ("skip the first page, fetch the next page of `pageSize`"); we follow the
//! rule, which is also what ConnectWise itself answers for `page=2&pageSize=200`.

use serde::{Deserialize, Serialize};

use super::error::ConnectWiseError;

/// The REST paths the connector reads and writes, under the API base.
pub mod endpoint {
    pub const LOCATIONS: &str = "system/locations";
    pub const CORPORATE_STRUCTURE_LEVELS: &str = "system/myCompany/corporateStructureLevels";
    pub const CONFIGURATION_TYPES: &str = "company/configurations/types";
    pub const CONFIGURATION_STATUSES: &str = "company/configurations/statuses";
    pub const MANUFACTURERS: &str = "procurement/manufacturers";
    pub const COMPANIES: &str = "company/companies";
    pub const CONTACTS: &str = "company/contacts";
    pub const CONFIGURATIONS: &str = "company/configurations";
    pub const CONFIGURATIONS_BULK: &str = "company/configurations/bulk";
    pub const AGREEMENTS: &str = "finance/agreements";
    pub const TICKETS: &str = "service/tickets";
    pub const USER_DEFINED_FIELDS: &str = "system/userDefinedFields";
}

/// Longest `in (…)` condition one request carries, percent-encoded: ConnectWise refuses
/// URLs much over 2,000 characters, and the rest of the URL needs room.
pub const MAX_CONDITION_CHARS: usize = 1_400;

pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 25;

/// The query inputs every list action takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_field_conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// Only these fields are returned (`id,name,type/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

/// What a [`ListQuery`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePlan {
    /// Every record, forward-only, `page_size` a request.
    All { page_size: u32 },
    /// One page of the navigable listing.
    Single { page: u32, page_size: u32 },
}

impl ListQuery {
    pub fn with_conditions(conditions: impl Into<String>) -> Self {
        Self {
            conditions: Some(conditions.into()),
            ..Self::default()
        }
    }

    pub fn with_fields(mut self, fields: &[&str]) -> Self {
        self.fields = Some(fields.join(","));
        self
    }

    /// Validates the paging inputs and says which requests they mean.
    pub fn plan(&self) -> Result<PagePlan, ConnectWiseError> {
        if let Some(size) = self.page_size
            && !(1..=MAX_PAGE_SIZE).contains(&size)
        {
            return Err(ConnectWiseError::invalid(
                "pageSize",
                format!("must be between 1 and {MAX_PAGE_SIZE}, got {size}"),
            ));
        }
        if self.page == Some(0) {
            return Err(ConnectWiseError::invalid(
                "page",
                "pages are numbered from 1",
            ));
        }
        Ok(match (self.page, self.page_size) {
            (None, None) => PagePlan::All {
                page_size: MAX_PAGE_SIZE,
            },
            (page, size) => PagePlan::Single {
                page: page.unwrap_or(1),
                page_size: size.unwrap_or(DEFAULT_PAGE_SIZE),
            },
        })
    }

    /// The filter parameters (everything but paging), as query pairs.
    pub fn filter_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        let mut push = |key: &'static str, value: &Option<String>| {
            if let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty()) {
                params.push((key, v.clone()));
            }
        };
        push("conditions", &self.conditions);
        push("childConditions", &self.child_conditions);
        push("customFieldConditions", &self.custom_field_conditions);
        push("fields", &self.fields);
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(page: Option<u32>, page_size: Option<u32>) -> Result<PagePlan, ConnectWiseError> {
        ListQuery {
            page,
            page_size,
            ..ListQuery::default()
        }
        .plan()
    }

    #[test]
    fn pagination_table() {
        assert_eq!(plan(None, None).unwrap(), PagePlan::All { page_size: 1000 });
        assert_eq!(
            plan(Some(2), None).unwrap(),
            PagePlan::Single {
                page: 2,
                page_size: 25
            }
        );
        assert_eq!(
            plan(Some(2), Some(100)).unwrap(),
            PagePlan::Single {
                page: 2,
                page_size: 100
            }
        );
        assert_eq!(
            plan(Some(2), Some(200)).unwrap(),
            PagePlan::Single {
                page: 2,
                page_size: 200
            }
        );
        assert_eq!(
            plan(None, Some(300)).unwrap(),
            PagePlan::Single {
                page: 1,
                page_size: 300
            }
        );
        let err = plan(None, Some(1001)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input `pageSize`: must be between 1 and 1000, got 1001"
        );
        assert!(plan(Some(0), None).is_err());
        assert!(plan(None, Some(0)).is_err());
    }

    #[test]
    fn unknown_inputs_are_refused() {
        let err = serde_json::from_str::<ListQuery>(r#"{"pagesize": 10}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `pagesize`"),
            "{err}"
        );
    }
}
