//! Agreements and tickets linked to configurations, and the spec's two actions over
//! them. ConnectWise lists no tickets or agreements *of a configuration*; the link lives
//! on the ticket and agreement side. So: the agreements and tickets of the companies the
//! configurations belong to, one forward-only read each; then each one's
//! `/configurations`, one request each (8 in flight).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::client::ConnectWiseClient;
use super::condition::Field;
use super::error::ConnectWiseError;
use super::fields::{custom_field, same_caption};
use super::known::{self, KnownRecords, Scope};
use super::query::endpoint::{AGREEMENTS, CONFIGURATIONS, TICKETS};
use super::query::{ListQuery, MAX_CONDITION_CHARS};
use crate::normalize;

/// The custom field that links a configuration to its Lansweeper asset.
pub const LINK_CAPTION: &str = "ls_asset_id";

/// The configurations whose `ls_asset_id` holds one of `keys`, by lower-cased key (a
/// key compares as ConnectWise's database compares it: without case). As many requests
/// as the URL length needs.
pub async fn configurations_linked_to(
    connectwise: &ConnectWiseClient,
    keys: &[String],
) -> Result<HashMap<String, Vec<i64>>, ConnectWiseError> {
    let caption = Field::new("caption")?.eq(LINK_CAPTION);
    let mut found: HashMap<String, Vec<i64>> = HashMap::new();
    for values in Field::new("value")?.is_in_chunks(keys, MAX_CONDITION_CHARS) {
        let query = ListQuery {
            custom_field_conditions: Some(caption.clone().and(&values).to_string()),
            fields: Some("id,customFields".into()),
            ..ListQuery::default()
        };
        connectwise
            .for_each_page(CONFIGURATIONS, &query, |page| {
                for configuration in page {
                    let id = configuration.get("id").and_then(Value::as_i64);
                    if let (Some(id), Some(key)) = (id, linked_asset_key(&configuration)) {
                        found.entry(key.to_lowercase()).or_default().push(id);
                    }
                }
                Ok(())
            })
            .await?;
    }
    Ok(found)
}

/// Records of `path` (agreements or tickets) of `companies`, by the configurations
/// attached to them (each list by record id): a full read, as the enrichment makes.
async fn attached(
    connectwise: &ConnectWiseClient,
    path: &str,
    fields: &[&str],
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    let mut ids: Vec<i64> = companies.iter().copied().collect();
    ids.sort_unstable();
    // As many requests as the URL length needs: a thousand companies do not fit one.
    let scope = Scope {
        path,
        fields,
        queries: Field::new("company/id")?
            .is_in_chunks(ids, MAX_CONDITION_CHARS)
            .iter()
            .map(|c| ListQuery::with_conditions(c.as_str()))
            .collect(),
        attachments: true,
        keep: known::whole,
    };
    let mut records = KnownRecords::default();
    known::refresh(connectwise, &scope, &mut records, true, None).await?;
    Ok(records
        .by_configuration()
        .into_iter()
        .map(|(id, found)| {
            (
                id,
                found.into_iter().map(known::RecordText::value).collect(),
            )
        })
        .collect())
}

/// What the enrichment reads of an agreement.
pub const AGREEMENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "agreementStatus",
    "startDate",
    "endDate",
    "noEndingDateFlag",
    "sla",
];
/// What the enrichment reads of a ticket.
pub const TICKET_FIELDS: &[&str] = &["id", "summary", "recordType", "status", "closedFlag"];

/// The agreements of `companies`, by the configurations attached to them.
pub async fn agreements_by_configuration(
    connectwise: &ConnectWiseClient,
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    attached(connectwise, AGREEMENTS, AGREEMENT_FIELDS, companies).await
}

/// The tickets of `companies`, by the configurations attached to them.
pub async fn tickets_by_configuration(
    connectwise: &ConnectWiseClient,
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    attached(connectwise, TICKETS, TICKET_FIELDS, companies).await
}

/// The Lansweeper asset key a configuration's `ls_asset_id` holds.
pub fn linked_asset_key(configuration: &Value) -> Option<String> {
    custom_field(configuration, LINK_CAPTION)?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// Keeps of a configuration's custom fields only the link, as caption and value: the
/// enrichment reads nothing else of them, and a tenant's other custom fields (software
/// lists) would be most of what it holds and stores.
pub fn keep_link_only(configuration: &mut Value) {
    let Some(fields) = configuration
        .get_mut("customFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    fields.retain(|f| {
        f.get("caption")
            .and_then(Value::as_str)
            .is_some_and(|c| same_caption(c, LINK_CAPTION))
    });
    for field in fields {
        if let Some(object) = field.as_object_mut() {
            object.retain(|key, _| key == "caption" || key == "value");
        }
    }
}

/// The companies the configurations belong to.
pub fn companies_of(configurations: &[Value]) -> HashSet<i64> {
    configurations
        .iter()
        .filter_map(|c| c.get("company")?.get("id")?.as_i64())
        .collect()
}

fn configuration_head(configuration: &Value) -> Value {
    json!({
        "id": configuration.get("id"),
        "name": configuration.get("name"),
        "customFields": {"ls_asset_id": linked_asset_key(configuration)},
    })
}

/// A ConnectWise date as the spec's sample output shows it (`30/09/2028`).
fn spec_date(value: Option<&Value>) -> Value {
    value
        .and_then(Value::as_str)
        .and_then(normalize::day_month_year)
        .map_or(Value::Null, Value::String)
}

/// The spec's listAgreementsForConfigurationsAction.
pub async fn list_agreements_for_configurations(
    connectwise: &ConnectWiseClient,
    configurations: &[Value],
) -> Result<Value, ConnectWiseError> {
    let by_configuration =
        agreements_by_configuration(connectwise, &companies_of(configurations)).await?;
    Ok(Value::Array(
        configurations
            .iter()
            .map(|configuration| {
                let id = configuration.get("id").and_then(Value::as_i64).unwrap_or(0);
                let mut entry = configuration_head(configuration);
                entry["sla"] = configuration.get("sla").cloned().unwrap_or(Value::Null);
                entry["agreements"] = Value::Array(
                    by_configuration
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            json!({
                                "id": a.get("id"),
                                "name": a.get("name"),
                                "startDate": spec_date(a.get("startDate")),
                                "endDate": spec_date(a.get("endDate")),
                                "agreementStatus": a.get("agreementStatus"),
                                "type": a.get("type"),
                            })
                        })
                        .collect(),
                );
                entry
            })
            .collect(),
    ))
}

/// The spec's listTicketsForConfigurationsAction; open and closed come from `closedFlag`.
pub async fn list_tickets_for_configurations(
    connectwise: &ConnectWiseClient,
    configurations: &[Value],
) -> Result<Value, ConnectWiseError> {
    let by_configuration =
        tickets_by_configuration(connectwise, &companies_of(configurations)).await?;
    Ok(Value::Array(
        configurations
            .iter()
            .map(|configuration| {
                let id = configuration.get("id").and_then(Value::as_i64).unwrap_or(0);
                let tickets: Vec<&Value> = by_configuration.get(&id).into_iter().flatten().collect();
                let closed = tickets
                    .iter()
                    .filter(|t| t.get("closedFlag").and_then(Value::as_bool) == Some(true))
                    .count();
                let mut entry = configuration_head(configuration);
                entry["tickets"] = Value::Array(
                    tickets
                        .iter()
                        .map(|t| {
                            json!({
                                "id": t.get("id"),
                                "summary": t.get("summary"),
                                "recordType": t.get("recordType"),
                                "status": t.get("status"),
                                "closedFlag": t.get("closedFlag").and_then(Value::as_bool).unwrap_or(false),
                            })
                        })
                        .collect(),
                );
                entry["ticketsInfo"] = json!({
                    "totalTickets": tickets.len(),
                    "openTickets": tickets.len() - closed,
                    "closedTickets": closed,
                });
                entry
            })
            .collect(),
    ))
}
