//! Every GraphQL document the product sends to Lansweeper, in one place, each written
//! against Lansweeper's published schema (`infra/contract/lansweeper.graphql`, which the
//! contract tests check every one of these against).

/// The sites an application token sees.
pub const AUTHORIZED_SITES: &str = "query { authorizedSites { sites { id name } } }";

/// The sites a personal access token sees, through its profiles.
pub const PROFILE_SITES: &str = "query { me { profiles { site { id name } } } }";

/// The site's custom field definitions.
pub const CUSTOM_FIELDS: &str = "query CustomFields($siteId: ID!) {
  site(id: $siteId) { customFields { key name type } }
}";

/// One custom field definition made.
pub const CREATE_CUSTOM_FIELD: &str =
    "mutation CreateCustomField($siteId: ID!, $field: CustomFieldInput!) {
  site(id: $siteId) { createCustomField(field: $field) { key name type } }
}";

/// The first page of a listing: Lansweeper answers `total` only with `FIRST` (it refuses
/// a query that selects it with `NEXT`, `PREV` or `LAST`).
pub const FIRST_PAGE: &str = "query Assets($siteId: ID!, $pagination: AssetsPaginationInputValidated, $fields: [String!]!, $filters: AssetsFilterGroupedInput) {
  site(id: $siteId) {
    assetResources(assetPagination: $pagination, fields: $fields, filters: $filters) {
      total
      pagination { limit current next page }
      items
    }
  }
}";

/// Every later page of a listing, without `total`.
pub const NEXT_PAGE: &str = "query Assets($siteId: ID!, $pagination: AssetsPaginationInputValidated, $fields: [String!]!, $filters: AssetsFilterGroupedInput) {
  site(id: $siteId) {
    assetResources(assetPagination: $pagination, fields: $fields, filters: $filters) {
      pagination { limit current next page }
      items
    }
  }
}";

/// The alias of the `index`th edit of [`edit_assets`].
pub fn edit_alias(index: usize) -> String {
    format!("e{index}")
}

/// `count` assets' edits in one request, each `editAsset` under its own alias
/// ([`edit_alias`]), with variables `$siteId`, `$k{i}` (the asset key) and `$f{i}` (its
/// `EditAssetInput`). Each answer is known by its alias: the selection is one Lansweeper's
/// own examples make (`EditAssetResponse` has no key to tell the answers apart by).
pub fn edit_assets(count: usize) -> String {
    let mut declared = vec!["$siteId: ID!".to_string()];
    let mut selections = Vec::with_capacity(count);
    for index in 0..count {
        declared.push(format!("$k{index}: ID!, $f{index}: EditAssetInput!"));
        selections.push(format!(
            "{}: site(id: $siteId) {{ editAsset(key: $k{index}, fields: $f{index}) {{ assetBasicInfo {{ name }} }} }}",
            edit_alias(index)
        ));
    }
    format!(
        "mutation EditAssets({}) {{ {} }}",
        declared.join(", "),
        selections.join(" ")
    )
}
