//! The connector actions of the spec, by key (`lscw action`): each parses and validates
//! its input before any call, so a bad input costs no request. Above both the ConnectWise
//! connector and matching, as `matchConfigurationsAction` needs the two.

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::connectwise::endpoint::{
    COMPANIES, CONFIGURATION_STATUSES, CONFIGURATION_TYPES, CONFIGURATIONS,
    CORPORATE_STRUCTURE_LEVELS, LOCATIONS, MANUFACTURERS,
};
use crate::connectwise::{
    ConnectWiseClient, ConnectWiseError, ListQuery, REFERENCE_NAME_MAX, bulk, checked_name, linked,
};

/// Every key `run_action` answers to, as `lscw action --help` lists them.
pub const ACTION_KEYS: &[&str] = &[
    "listOfLocationsAction",
    "createLocationAction",
    "listConfigurationTypes",
    "createConfigurationTypeAction",
    "listOfManufacturersAction",
    "createManufacturerAction",
    "listConfigurationStatus",
    "createConfigurationStatusAction",
    "companies",
    "listCorporateStructureLevelsAction",
    "listConfigurationsAction",
    "bulkCreateConfigurationsAction",
    "bulkModifyConfigurationsAction",
    "matchConfigurationsAction",
    "listAgreementsForConfigurationsAction",
    "listTicketsForConfigurationsAction",
];

/// Runs the action `key` with its JSON input and answers its JSON output.
pub async fn run_action(
    client: &ConnectWiseClient,
    key: &str,
    input: Value,
) -> Result<Value, ConnectWiseError> {
    match key {
        "listOfLocationsAction" => list(client, LOCATIONS, full_query(input)?).await,
        "listConfigurationTypes" => list(client, CONFIGURATION_TYPES, full_query(input)?).await,
        "listOfManufacturersAction" => list(client, MANUFACTURERS, simple_query(input)?).await,
        "listConfigurationStatus" => {
            list(client, CONFIGURATION_STATUSES, simple_query(input)?).await
        }
        "companies" => list(client, COMPANIES, full_query(input)?).await,
        "listCorporateStructureLevelsAction" => {
            list(client, CORPORATE_STRUCTURE_LEVELS, full_query(input)?).await
        }
        "listConfigurationsAction" => list(client, CONFIGURATIONS, full_query(input)?).await,
        "createLocationAction" => {
            let input: CreateLocation = parse(input)?;
            let name = checked_name("name", &input.name, REFERENCE_NAME_MAX)?;
            let level = input.structure_level_id.as_id("structureLevelId")?;
            client
                .post(
                    LOCATIONS,
                    &json!({"name": name, "structureLevel": {"id": level}}),
                )
                .await
        }
        "createConfigurationTypeAction" => {
            let input: CreateNamed = parse(input)?;
            let name = checked_name("name", &input.name, REFERENCE_NAME_MAX)?;
            client
                .post(CONFIGURATION_TYPES, &json!({"name": name}))
                .await
        }
        "createManufacturerAction" => {
            let input: CreateNamed = parse(input)?;
            let name = checked_name("name", &input.name, REFERENCE_NAME_MAX)?;
            client.post(MANUFACTURERS, &json!({"name": name})).await
        }
        "createConfigurationStatusAction" => {
            let input: CreateStatus = parse(input)?;
            let description = checked_name("description", &input.description, REFERENCE_NAME_MAX)?;
            client
                .post(
                    CONFIGURATION_STATUSES,
                    &json!({
                        "description": description,
                        "closedFlag": input.closed_flag,
                        "defaultFlag": input.default_flag,
                    }),
                )
                .await
        }
        "bulkCreateConfigurationsAction" => {
            let input: BulkInput = parse(input)?;
            let results = bulk(client, Method::POST, &input.configurations, false).await?;
            to_json(&results)
        }
        "bulkModifyConfigurationsAction" => {
            let input: BulkInput = parse(input)?;
            let results = bulk(client, Method::PUT, &input.configurations, true).await?;
            to_json(&results)
        }
        "matchConfigurationsAction" => match_configurations(client, input).await,
        "listAgreementsForConfigurationsAction" => {
            linked::list_agreements_for_configurations(client, &configuration_payload(input)?).await
        }
        "listTicketsForConfigurationsAction" => {
            linked::list_tickets_for_configurations(client, &configuration_payload(input)?).await
        }
        other => Err(ConnectWiseError::UnknownAction(other.to_string())),
    }
}

/// The configuration payload of the agreement and ticket actions: `{"configurations":
/// [...]}` or the bare array, each with at least an id.
fn configuration_payload(input: Value) -> Result<Vec<Value>, ConnectWiseError> {
    let items = match input {
        Value::Array(items) => items,
        other => parse::<BulkInput>(other)?.configurations,
    };
    for (index, item) in items.iter().enumerate() {
        if item.get("id").and_then(Value::as_i64).is_none() {
            return Err(ConnectWiseError::invalid(
                format!("configurations[{index}].id"),
                "is required",
            ));
        }
    }
    Ok(items)
}

/// The spec's matchConfigurationsAction: reads the configurations the conditions scope
/// (forward-only, only the fields matching needs) and matches the external data to them.
async fn match_configurations(
    client: &ConnectWiseClient,
    input: Value,
) -> Result<Value, ConnectWiseError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MatchInput {
        #[serde(default)]
        conditions: Option<String>,
        #[serde(flatten)]
        spec: crate::matching::MatchSpec,
        external_data: Vec<Value>,
    }
    let input: MatchInput = parse(input)?;
    let spec = input.spec;
    if spec.targets().is_empty() {
        return Err(ConnectWiseError::invalid(
            "paths",
            "give at least one path to match or compare",
        ));
    }
    let query = ListQuery {
        conditions: input.conditions,
        fields: Some(spec.configuration_fields()),
        ..ListQuery::default()
    };
    let mut configurations = client.list(CONFIGURATIONS, &query).await?;
    let locations = crate::references::location_names(client, &spec).await?;
    for configuration in &mut configurations {
        crate::references::name_location(configuration, &locations);
    }
    let outcome =
        crate::matching::match_with_differences(&spec, &input.external_data, &configurations);
    let asset = |index: usize| input.external_data[index].clone();
    Ok(json!({
        "matched": outcome.matched.iter().map(|m| json!({
            "asset": asset(m.asset_index),
            "configurationId": m.configuration_id,
            "matchedBy": m.matched_by,
            "unmatchedFields": m.unmatched_fields,
        })).collect::<Vec<_>>(),
        "unmatched": outcome.unmatched.iter().map(|&i| asset(i)).collect::<Vec<_>>(),
        "conflicts": outcome.conflicts.iter().map(|c| json!({
            "asset": asset(c.asset_index),
            "reason": c.reason,
            "candidates": c.candidates,
        })).collect::<Vec<_>>(),
    }))
}

async fn list(
    client: &ConnectWiseClient,
    path: &str,
    query: ListQuery,
) -> Result<Value, ConnectWiseError> {
    Ok(Value::Array(client.list(path, &query).await?))
}

/// Inputs of the list actions that take all three kinds of conditions.
fn full_query(input: Value) -> Result<ListQuery, ConnectWiseError> {
    let query: ListQuery = parse(input)?;
    query.plan()?;
    Ok(query)
}

/// Inputs of the list actions the spec gives only conditions and paging.
fn simple_query(input: Value) -> Result<ListQuery, ConnectWiseError> {
    let query = full_query(input)?;
    for (field, given) in [
        ("childConditions", query.child_conditions.is_some()),
        (
            "customFieldConditions",
            query.custom_field_conditions.is_some(),
        ),
    ] {
        if given {
            return Err(ConnectWiseError::invalid(
                field,
                "this action takes only conditions, page and pageSize",
            ));
        }
    }
    Ok(query)
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ConnectWiseError> {
    let input = if input.is_null() { json!({}) } else { input };
    serde_json::from_value(input).map_err(|e| ConnectWiseError::invalid("input", e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ConnectWiseError> {
    serde_json::to_value(value).map_err(|e| ConnectWiseError::Decode(e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateLocation {
    #[serde(default)]
    name: String,
    structure_level_id: IdInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateNamed {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateStatus {
    #[serde(default)]
    description: String,
    #[serde(default)]
    closed_flag: bool,
    #[serde(default)]
    default_flag: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkInput {
    configurations: Vec<Value>,
}

/// The spec types ids as strings ("1"); numbers are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdInput {
    Number(i64),
    Text(String),
}

impl IdInput {
    fn as_id(&self, field: &str) -> Result<i64, ConnectWiseError> {
        let id = match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        };
        id.filter(|id| *id > 0)
            .ok_or_else(|| ConnectWiseError::invalid(field, "must be a positive integer id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_level_ids_accept_strings_and_numbers() {
        let input: CreateLocation =
            serde_json::from_value(json!({"name": "x", "structureLevelId": "3"})).unwrap();
        assert_eq!(input.structure_level_id.as_id("f").unwrap(), 3);
        let input: CreateLocation =
            serde_json::from_value(json!({"name": "x", "structureLevelId": 4})).unwrap();
        assert_eq!(input.structure_level_id.as_id("f").unwrap(), 4);
        let input: CreateLocation =
            serde_json::from_value(json!({"name": "x", "structureLevelId": "one"})).unwrap();
        assert!(input.structure_level_id.as_id("f").is_err());
    }
}
