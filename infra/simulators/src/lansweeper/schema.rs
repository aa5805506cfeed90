//! The GraphQL schema, with Lansweeper's own type, field and argument names for
//! everything the project uses. async-graphql parses and validates every query against
//! it, so a query the real API would reject is rejected here too.

#![allow(
    clippy::unused_async,
    reason = "async-graphql refuses resolvers that take a Context unless they are async"
)]

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, Enum, ErrorExtensions, ID, InputObject, Json, Object, Schema,
    SimpleObject,
};
use serde_json::{Value, json};

use super::Shared;
use super::site::{
    self, CustomFieldDef, DEFAULT_PAGE_SIZE, FilterCondition, FilterGroup, MAX_PAGE_SIZE,
};

pub type LansweeperSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub fn build(shared: Arc<Shared>) -> LansweeperSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(shared)
        .finish()
}

fn shared<'a>(ctx: &Context<'a>) -> &'a Arc<Shared> {
    ctx.data_unchecked::<Arc<Shared>>()
}

fn error(message: impl Into<String>, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn check_site(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<()> {
    shared(ctx)
        .with_site(id.as_str(), |_| ())
        .ok_or_else(|| error("You don't have access to this site", "FORBIDDEN"))
}

/// Runs `f` on the site a resolver belongs to (checked on entry, so it is there).
fn on_site<T>(
    ctx: &Context<'_>,
    id: &str,
    f: impl FnOnce(&mut super::Site) -> T,
) -> async_graphql::Result<T> {
    shared(ctx)
        .with_site(id, f)
        .ok_or_else(|| error("You don't have access to this site", "FORBIDDEN"))
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    async fn site(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<SiteQuery> {
        check_site(ctx, &id)?;
        Ok(SiteQuery(id.to_string()))
    }

    async fn authorized_sites(&self, ctx: &Context<'_>) -> AuthorizedSites {
        AuthorizedSites {
            sites: site_refs(ctx),
        }
    }

    async fn me(&self, ctx: &Context<'_>) -> Me {
        Me {
            profiles: site_refs(ctx)
                .into_iter()
                .map(|site| Profile { site })
                .collect(),
        }
    }
}

fn site_refs(ctx: &Context<'_>) -> Vec<SiteRef> {
    shared(ctx)
        .sites()
        .iter()
        .map(|site| SiteRef {
            id: ID(site.data.id.clone()),
            name: site.data.name.clone(),
            branding_name: None,
        })
        .collect()
}

#[derive(SimpleObject)]
#[graphql(name = "Site")]
struct SiteRef {
    id: ID,
    name: String,
    branding_name: Option<String>,
}

#[derive(SimpleObject)]
struct AuthorizedSites {
    sites: Vec<SiteRef>,
}

#[derive(SimpleObject)]
struct Profile {
    site: SiteRef,
}

#[derive(SimpleObject)]
struct Me {
    profiles: Vec<Profile>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Hash, Debug)]
#[graphql(name = "AssetsPaginationPage")]
pub enum PaginationPage {
    #[graphql(name = "FIRST")]
    First,
    #[graphql(name = "NEXT")]
    Next,
    #[graphql(name = "PREV")]
    Prev,
    #[graphql(name = "LAST")]
    Last,
}

#[derive(InputObject, Debug)]
pub struct AssetsPaginationInputValidated {
    limit: Option<i32>,
    page: Option<PaginationPage>,
    cursor: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Conjunction {
    #[graphql(name = "AND")]
    And,
    #[graphql(name = "OR")]
    Or,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "FilterOperator")]
pub enum FilterOperator {
    #[graphql(name = "EQUAL")]
    Equal,
    #[graphql(name = "NOT_EQUAL")]
    NotEqual,
    #[graphql(name = "GREATER_THAN")]
    GreaterThan,
    #[graphql(name = "GREATER_THAN_OR_EQUAL")]
    GreaterThanOrEqual,
    #[graphql(name = "SMALLER_THAN")]
    SmallerThan,
    #[graphql(name = "SMALLER_THAN_OR_EQUAL")]
    SmallerThanOrEqual,
    #[graphql(name = "EXISTS")]
    Exists,
    #[graphql(name = "LIKE")]
    Like,
    #[graphql(name = "REGEXP")]
    Regexp,
}

impl FilterOperator {
    fn name(self) -> &'static str {
        match self {
            Self::Equal => "EQUAL",
            Self::NotEqual => "NOT_EQUAL",
            Self::GreaterThan => "GREATER_THAN",
            Self::GreaterThanOrEqual => "GREATER_THAN_OR_EQUAL",
            Self::SmallerThan => "SMALLER_THAN",
            Self::SmallerThanOrEqual => "SMALLER_THAN_OR_EQUAL",
            Self::Exists => "EXISTS",
            Self::Like => "LIKE",
            Self::Regexp => "REGEXP",
        }
    }
}

#[derive(InputObject, Debug)]
pub struct AssetsFilterConditionInput {
    operator: FilterOperator,
    path: String,
    value: String,
}

#[derive(InputObject, Debug)]
pub struct AssetsFilterGroupedInput {
    conjunction: Option<Conjunction>,
    conditions: Option<Vec<AssetsFilterConditionInput>>,
    groups: Option<Vec<AssetsFilterGroupedInput>>,
}

impl AssetsFilterGroupedInput {
    fn to_group(&self) -> FilterGroup {
        FilterGroup {
            any: self.conjunction == Some(Conjunction::Or),
            conditions: self
                .conditions
                .iter()
                .flatten()
                .map(|c| FilterCondition {
                    operator: c.operator.name().to_string(),
                    path: c.path.clone(),
                    value: c.value.clone(),
                })
                .collect(),
            groups: self.groups.iter().flatten().map(Self::to_group).collect(),
        }
    }
}

#[derive(SimpleObject)]
struct AssetsPagination {
    limit: i32,
    current: Option<String>,
    next: Option<String>,
    page: Option<PaginationPage>,
}

#[derive(SimpleObject)]
struct AssetResources {
    /// Answered with `FIRST` only.
    total: Option<i64>,
    pagination: AssetsPagination,
    items: Vec<Json<Value>>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CustomFieldType {
    #[graphql(name = "INPUT")]
    Input,
    #[graphql(name = "TEXTAREA")]
    TextArea,
    #[graphql(name = "SELECT")]
    Select,
    #[graphql(name = "NUMERIC")]
    Numeric,
    #[graphql(name = "DATE")]
    Date,
    #[graphql(name = "TIME")]
    Time,
    #[graphql(name = "CURRENCY")]
    Currency,
    #[graphql(name = "HYPERLINK")]
    Hyperlink,
}

impl CustomFieldType {
    fn name(self) -> &'static str {
        match self {
            Self::Input => "INPUT",
            Self::TextArea => "TEXTAREA",
            Self::Select => "SELECT",
            Self::Numeric => "NUMERIC",
            Self::Date => "DATE",
            Self::Time => "TIME",
            Self::Currency => "CURRENCY",
            Self::Hyperlink => "HYPERLINK",
        }
    }
}

#[derive(SimpleObject, Clone)]
struct CustomFieldProps {
    options: Option<Vec<String>>,
}

#[derive(SimpleObject)]
struct CustomField {
    key: ID,
    name: String,
    #[graphql(name = "type")]
    field_type: String,
    props: Option<CustomFieldProps>,
}

impl From<&CustomFieldDef> for CustomField {
    fn from(def: &CustomFieldDef) -> Self {
        Self {
            key: ID(def.key.clone()),
            name: def.name.clone(),
            field_type: def.field_type.clone(),
            props: None,
        }
    }
}

pub struct SiteQuery(String);

#[Object(name = "SiteQueries")]
impl SiteQuery {
    async fn id(&self) -> ID {
        ID(self.0.clone())
    }

    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        on_site(ctx, &self.0, |site| site.data.name.clone())
    }

    async fn custom_fields(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CustomField>> {
        on_site(ctx, &self.0, |site| {
            site.data
                .custom_fields
                .iter()
                .map(CustomField::from)
                .collect()
        })
    }

    async fn asset_resources(
        &self,
        ctx: &Context<'_>,
        asset_pagination: Option<AssetsPaginationInputValidated>,
        fields: Vec<String>,
        filters: Option<AssetsFilterGroupedInput>,
    ) -> async_graphql::Result<AssetResources> {
        site::check_paths(&fields).map_err(|m| error(m, "BAD_USER_INPUT"))?;
        let filter = filters.as_ref().map(AssetsFilterGroupedInput::to_group);
        if let Some(filter) = &filter {
            filter.check().map_err(|m| error(m, "BAD_USER_INPUT"))?;
        }
        let limit = asset_pagination
            .as_ref()
            .and_then(|p| p.limit)
            .map_or(DEFAULT_PAGE_SIZE, |l| l.max(1) as usize)
            .min(MAX_PAGE_SIZE);
        let page = asset_pagination
            .as_ref()
            .and_then(|p| p.page)
            .unwrap_or(PaginationPage::First);
        // Lansweeper's published restriction: `total` comes with the first page only.
        if page != PaginationPage::First && ctx.look_ahead().field("total").exists() {
            return Err(error(
                "total can only be requested with page FIRST",
                "BAD_USER_INPUT",
            ));
        }
        let cursor = asset_pagination.as_ref().and_then(|p| p.cursor.clone());
        // A cursor belongs to one combination of fields and filters.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        fields.hash(&mut hasher);
        format!("{filters:?}").hash(&mut hasher);
        let fingerprint = hasher.finish();

        let sites = shared(ctx).sites();
        let site = sites
            .iter()
            .find(|s| s.data.id == self.0)
            .ok_or_else(|| error("You don't have access to this site", "FORBIDDEN"))?;
        let matching: Vec<&Value> = site
            .data
            .assets
            .iter()
            .filter(|asset| filter.as_ref().is_none_or(|f| f.matches(asset)))
            .collect();
        let total = matching.len();
        let from_cursor = |cursor: &Option<String>| -> async_graphql::Result<usize> {
            let cursor = cursor
                .as_deref()
                .ok_or_else(|| error("NEXT and PREV need a cursor", "BAD_USER_INPUT"))?;
            site::decode_cursor(cursor, fingerprint).map_err(|m| error(m, "BAD_USER_INPUT"))
        };
        let start = match page {
            PaginationPage::First => 0,
            PaginationPage::Next => from_cursor(&cursor)?,
            PaginationPage::Prev => from_cursor(&cursor)?.saturating_sub(2 * limit),
            PaginationPage::Last => total.saturating_sub(1) / limit * limit,
        };
        let items: Vec<Json<Value>> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|asset| Json(site::shape(asset, &fields)))
            .collect();
        let end = start + items.len();
        Ok(AssetResources {
            total: (page == PaginationPage::First).then_some(total as i64),
            pagination: AssetsPagination {
                limit: limit as i32,
                current: Some(site::encode_cursor(start, fingerprint)),
                next: (end < total).then(|| site::encode_cursor(end, fingerprint)),
                page: Some(page),
            },
            items,
        })
    }
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    async fn site(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<SiteMutation> {
        check_site(ctx, &id)?;
        Ok(SiteMutation(id.to_string()))
    }
}

#[derive(InputObject)]
pub struct CustomFieldInput {
    name: String,
    #[graphql(name = "type")]
    field_type: CustomFieldType,
    props: Option<Json<Value>>,
}

#[derive(InputObject)]
pub struct AssetCustomFieldInput {
    field_key: ID,
    value: Option<String>,
}

#[derive(InputObject)]
pub struct AssetCustomInput {
    fields: Option<Vec<AssetCustomFieldInput>>,
}

#[derive(InputObject)]
pub struct EditAssetInput {
    asset_custom: Option<AssetCustomInput>,
}

#[derive(SimpleObject)]
struct AssetCustomFieldValue {
    field_key: ID,
    name: String,
    value: Option<String>,
}

#[derive(SimpleObject)]
struct AssetCustomOutput {
    fields: Vec<AssetCustomFieldValue>,
}

#[derive(SimpleObject)]
#[graphql(name = "AssetBasicInfo")]
struct AssetBasicInfoOutput {
    name: Option<String>,
    description: Option<String>,
    ip_address: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "CloudAssetCustom")]
struct CloudAssetCustomOutput {
    industry: Option<String>,
    vendor_name: Option<String>,
}

/// What `editAsset` answers: the asset's parts, never its key (Lansweeper's
/// `EditAssetResponse` has these three fields and no other).
#[derive(SimpleObject)]
#[graphql(name = "EditAssetResponse")]
struct EditedAsset {
    asset_basic_info: AssetBasicInfoOutput,
    asset_custom: AssetCustomOutput,
    cloud_asset_custom: Option<CloudAssetCustomOutput>,
}

pub struct SiteMutation(String);

#[Object(name = "SiteMutations")]
impl SiteMutation {
    async fn create_custom_field(
        &self,
        ctx: &Context<'_>,
        field: CustomFieldInput,
    ) -> async_graphql::Result<CustomField> {
        let _ = field.props;
        let name = field.name.trim().to_string();
        if name.is_empty() {
            return Err(error("name is required", "BAD_USER_INPUT"));
        }
        let shared = shared(ctx);
        let mut sites = shared.sites();
        let site = sites
            .iter_mut()
            .find(|s| s.data.id == self.0)
            .ok_or_else(|| error("You don't have access to this site", "FORBIDDEN"))?;
        if site
            .data
            .custom_fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&name))
        {
            return Err(error(
                format!("A custom field named {name} already exists"),
                "BAD_USER_INPUT",
            ));
        }
        let key = format!("cf-{:04}", site.data.custom_fields.len() + 1);
        let def = CustomFieldDef {
            key,
            name,
            field_type: field.field_type.name().to_string(),
        };
        site.data.custom_fields.push(def.clone());
        Ok(CustomField::from(&def))
    }

    async fn edit_asset(
        &self,
        ctx: &Context<'_>,
        key: ID,
        fields: EditAssetInput,
    ) -> async_graphql::Result<EditedAsset> {
        let shared = shared(ctx);
        let mut sites = shared.sites();
        let site = sites
            .iter_mut()
            .find(|s| s.data.id == self.0)
            .ok_or_else(|| error("You don't have access to this site", "FORBIDDEN"))?;
        let definitions = site.data.custom_fields.clone();
        let updates = fields
            .asset_custom
            .and_then(|c| c.fields)
            .unwrap_or_default();
        // Check every value before writing any: an edit applies whole or not at all.
        let mut checked = Vec::new();
        for update in updates {
            let def = definitions
                .iter()
                .find(|d| d.key == update.field_key.as_str())
                .ok_or_else(|| {
                    error(
                        format!("Unknown custom field {}", update.field_key.as_str()),
                        "BAD_USER_INPUT",
                    )
                })?;
            // An empty string clears a field of any type, as Lansweeper documents; so does
            // `null`, which the input's nullable `value` lets through.
            let cleared = update.value.as_deref().is_none_or(|v| v.trim().is_empty());
            let value = update.value.unwrap_or_default();
            if !cleared && !fits(&def.field_type, &value) {
                return Err(error(
                    format!(
                        "{} is not a valid {} value for {}",
                        value, def.field_type, def.name
                    ),
                    "BAD_USER_INPUT",
                ));
            }
            checked.push((def.clone(), value));
        }
        let asset = site
            .asset_mut(key.as_str())
            .ok_or_else(|| error(format!("Asset {} not found", key.as_str()), "NOT_FOUND"))?;
        let custom = asset
            .as_object_mut()
            .map(|a| a.entry("assetCustom").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| error("asset is malformed", "INTERNAL_SERVER_ERROR"))?;
        let stored = custom.entry("fields").or_insert_with(|| json!([]));
        let mut list: Vec<Value> = stored.as_array().cloned().unwrap_or_default();
        for (def, value) in checked {
            list.retain(|f| f.get("fieldKey").and_then(Value::as_str) != Some(def.key.as_str()));
            if !value.is_empty() {
                list.push(json!({"fieldKey": def.key, "name": def.name, "value": value}));
            }
        }
        *stored = Value::Array(list.clone());
        let basic = site
            .asset_mut(key.as_str())
            .map(|asset| asset["assetBasicInfo"].clone())
            .unwrap_or_default();
        let text = |field: &str| basic.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(EditedAsset {
            asset_basic_info: AssetBasicInfoOutput {
                name: text("name"),
                description: text("description"),
                ip_address: text("ipAddress"),
            },
            cloud_asset_custom: None,
            asset_custom: AssetCustomOutput {
                fields: list
                    .iter()
                    .map(|f| AssetCustomFieldValue {
                        field_key: ID(f["fieldKey"].as_str().unwrap_or_default().to_string()),
                        name: f["name"].as_str().unwrap_or_default().to_string(),
                        value: f["value"].as_str().map(str::to_string),
                    })
                    .collect(),
            },
        })
    }
}

/// Whether a value fits a custom field type.
fn fits(field_type: &str, value: &str) -> bool {
    match field_type {
        "NUMERIC" | "CURRENCY" => value.trim().parse::<f64>().is_ok(),
        "DATE" => {
            let date = value.split('T').next().unwrap_or("");
            let parts: Vec<&str> = date.split('-').collect();
            parts.len() == 3
                && parts[0].len() == 4
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        }
        "HYPERLINK" => value.starts_with("http://") || value.starts_with("https://"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_uses_lansweepers_names() {
        let sdl = Schema::build(QueryRoot, MutationRoot, EmptySubscription)
            .finish()
            .sdl();
        for expected in [
            "assetResources(assetPagination: AssetsPaginationInputValidated, fields: [String!]!, filters: AssetsFilterGroupedInput): AssetResources!",
            "createCustomField(field: CustomFieldInput!): CustomField!",
            "editAsset(key: ID!, fields: EditAssetInput!): EditAssetResponse!",
            "authorizedSites: AuthorizedSites!",
            "site(id: ID!): SiteQueries!",
        ] {
            assert!(sdl.contains(expected), "missing {expected}\n{sdl}");
        }
    }
}
