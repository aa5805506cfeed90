//! What `lscw duplicates` and `lscw merge` read: the mapped companies' configurations
//! still in use, the tickets attached to each, and the Lansweeper asset each group of
//! duplicates is.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::connectwise::known::{self, KnownRecords, Scope};
use crate::connectwise::linked::{TICKET_FIELDS, keep_link_only};
use crate::connectwise::{ConnectWiseClient, Field, ListQuery, MAX_CONDITION_CHARS, endpoint};
use crate::duplicates::{self, AssetHead, Group};
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, MAX_FILTER_CONDITIONS};
use crate::mapping::{self, Mapping};
use crate::normalize;
use crate::references::name_key;
use crate::settings::SyncSettings;
use crate::store::Store;

/// What is read of a configuration to group and merge it.
const CONFIGURATION_FIELDS: &[&str] = &[
    "id",
    "name",
    "serialNumber",
    "macAddress",
    "company/id",
    "activeFlag",
    "status/name",
    "customFields",
];

/// The mapping's companies (or the one named), as ids.
pub(super) async fn companies<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    lansweeper: &LansweeperClient,
    only: Option<&str>,
) -> Result<(Mapping, HashMap<String, i64>), PipelineError> {
    let mapping = mapping::in_force(
        store,
        Some(lansweeper.site_id()),
        Some(&settings.target_company),
    )
    .await?;
    let names = match only {
        Some(company) => vec![company.to_string()],
        None => mapping.companies(),
    };
    let ids = crate::pipeline::resolve_companies(connectwise, &names).await?;
    if let Some(company) = only
        && ids.is_empty()
    {
        return Err(PipelineError::Config(format!(
            "ConnectWise has no company `{company}` (by identifier or id)"
        )));
    }
    Ok((mapping, ids))
}

/// Configurations of `companies`, each with its link as its only custom field.
pub(super) async fn configurations(
    connectwise: &ConnectWiseClient,
    companies: &BTreeSet<i64>,
) -> Result<Vec<Value>, PipelineError> {
    by_condition(connectwise, "company/id", companies.iter().copied()).await
}

/// Configurations by id, each with its link as its only custom field.
pub(super) async fn configurations_by_id(
    connectwise: &ConnectWiseClient,
    ids: impl IntoIterator<Item = i64>,
) -> Result<Vec<Value>, PipelineError> {
    by_condition(connectwise, "id", ids).await
}

async fn by_condition(
    connectwise: &ConnectWiseClient,
    field: &str,
    values: impl IntoIterator<Item = i64>,
) -> Result<Vec<Value>, PipelineError> {
    let mut found = Vec::new();
    for condition in Field::new(field)?.is_in_chunks(values, MAX_CONDITION_CHARS) {
        let query =
            ListQuery::with_conditions(condition.as_str()).with_fields(CONFIGURATION_FIELDS);
        found.extend(
            connectwise
                .list_complete_as(endpoint::CONFIGURATIONS, &query, |mut c| {
                    keep_link_only(&mut c);
                    c
                })
                .await?,
        );
    }
    Ok(found)
}

/// The tickets of `companies`, by the configurations attached to them. What the
/// enrichment already knows is read only where it changed since (tickets updated since,
/// and tickets it has not seen); without it every ticket of the companies is read.
pub(super) async fn tickets_by_configuration<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    companies: &BTreeSet<i64>,
) -> Result<HashMap<i64, Vec<i64>>, PipelineError> {
    if companies.is_empty() {
        return Ok(HashMap::new());
    }
    let queries = Field::new("company/id")?
        .is_in_chunks(companies.iter().copied(), MAX_CONDITION_CHARS)
        .iter()
        .map(|c| ListQuery::with_conditions(c.as_str()))
        .collect();
    let scope = Scope {
        path: endpoint::TICKETS,
        fields: TICKET_FIELDS,
        queries,
        attachments: true,
        keep: known::whole,
    };
    let mut tickets: KnownRecords = crate::enrichment::known_tickets(store).await?;
    // The enrichment's tickets span more companies: the refresh keeps those of these
    // companies (by their ids listed) and reads what changed or is missing.
    tickets.scope = known::scope_key(&scope);
    known::refresh(connectwise, &scope, &mut tickets, false, None).await?;
    let mut by_configuration: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, ticket) in &tickets.records {
        for configuration in &ticket.configurations {
            by_configuration
                .entry(*configuration)
                .or_default()
                .push(*id);
        }
    }
    Ok(by_configuration)
}

/// The groups of duplicates among `configurations` still in use (the retired left out),
/// their tickets counted.
pub(super) fn group(
    configurations: &[Value],
    settings: &SyncSettings,
    tickets: &HashMap<i64, Vec<i64>>,
) -> Vec<Group> {
    let in_use: Vec<&Value> = configurations
        .iter()
        .filter(|c| !settings.retire.is_retired(*c))
        .collect();
    let counts: HashMap<i64, usize> = tickets.iter().map(|(id, t)| (*id, t.len())).collect();
    let mut groups = duplicates::groups(&in_use, &counts);
    for member in groups.iter_mut().flat_map(|g| g.members.iter_mut()) {
        member.ticket_ids = tickets.get(&member.id).cloned().unwrap_or_default();
    }
    groups
}

/// What is read of an asset to tell which group it is.
const ASSET_PATHS: &[&str] = &[
    "key",
    "assetBasicInfo.name",
    "assetBasicInfo.mac",
    "assetCustom.serialNumber",
];

/// Fills each group's asset: the one of the company's sites whose key, serial or MAC
/// address the group shares, found with filters (a request per site and hundred
/// conditions), never by reading the sites whole.
pub(super) async fn find_assets(
    lansweeper: &LansweeperClient,
    mapping: &Mapping,
    company_ids: &HashMap<String, i64>,
    groups: &mut [Group],
) -> Result<(), PipelineError> {
    for site in &mapping.sites {
        let companies: BTreeSet<i64> = site
            .companies()
            .filter_map(|c| company_ids.get(&name_key(c)).copied())
            .collect();
        let mut conditions: Vec<(String, String)> = Vec::new();
        for group in groups.iter().filter(|g| companies.contains(&g.company)) {
            for shared in &group.shared {
                conditions.extend(lookups(shared));
            }
        }
        conditions.sort();
        conditions.dedup();
        let client = lansweeper.for_site(&site.site);
        for chunk in conditions.chunks(MAX_FILTER_CONDITIONS) {
            let filters = serde_json::json!({
                "conjunction": "OR",
                "conditions": chunk.iter().map(|(path, value)| serde_json::json!({
                    "operator": "EQUAL", "path": path, "value": value,
                })).collect::<Vec<_>>(),
            });
            let mut found = Vec::new();
            client
                .for_each_asset_page(ASSET_PATHS, Some(&filters), |page| {
                    found.extend(page);
                    Ok(())
                })
                .await?;
            for asset in &found {
                let identities = asset_identities(asset);
                for group in groups
                    .iter_mut()
                    .filter(|g| g.asset.is_none() && companies.contains(&g.company))
                {
                    if group.shared.iter().any(|s| identities.contains(s)) {
                        group.asset = Some(AssetHead {
                            key: asset.key().unwrap_or_default(),
                            name: asset.text("assetBasicInfo.name").unwrap_or_default(),
                            site: site.site.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// The filter conditions that find the asset of a shared identity: a MAC address in each
/// notation Lansweeper may hold it in (its filters compare text).
fn lookups(shared: &str) -> Vec<(String, String)> {
    let Some((kind, value)) = shared.split_once(' ') else {
        return Vec::new();
    };
    let path = match kind {
        "serial" => "assetCustom.serialNumber",
        "MAC" => "assetBasicInfo.mac",
        "ls_asset_id" => "key",
        _ => return Vec::new(),
    };
    let values = if kind == "MAC" {
        let hex = value.replace(':', "");
        let mut forms = vec![
            value.to_string(),
            value.replace(':', "-"),
            format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12]),
            hex.clone(),
        ];
        forms.extend(forms.clone().iter().map(|f| f.to_lowercase()));
        forms
    } else {
        vec![value.to_string()]
    };
    values.into_iter().map(|v| (path.to_string(), v)).collect()
}

/// An asset's identities, spelled as [`duplicates::Group::shared`] spells them.
fn asset_identities(asset: &crate::lansweeper::Asset) -> Vec<String> {
    let mut identities = Vec::new();
    if let Some(serial) = asset
        .text("assetCustom.serialNumber")
        .and_then(|s| normalize::text(&s))
        .filter(|s| !normalize::is_placeholder_serial(s))
    {
        identities.push(format!("serial {}", serial.to_uppercase()));
    }
    if let Some(mac) = asset
        .text("assetBasicInfo.mac")
        .and_then(|m| normalize::mac_address(&m))
    {
        identities.push(format!("MAC {mac}"));
    }
    if let Some(key) = asset.key() {
        identities.push(format!("ls_asset_id {}", key.to_lowercase()));
    }
    identities
}
