//! Enrichment (ConnectWise → Lansweeper): tickets, agreements and SLA of each linked
//! configuration written onto its Lansweeper asset as custom fields.
//!
//! Query plan. ConnectWise lists no tickets or agreements *of a configuration*; the link
//! lives on the ticket and agreement side. So: the linked configurations in one
//! forward-only read; the agreements and tickets of the companies those configurations
//! belong to, one forward-only read each; then each agreement's and each ticket's
//! `/configurations`, one request each (8 in flight). Calls ≈ configurations/1000 +
//! agreements + tickets + a few, whatever the number of configurations they touch.
//!
//! Writes. One `editAsset` per asset whose values changed: current values are read
//! with the assets, so a second run writes nothing. Lansweeper allows 150 requests a
//! minute, so the writing works within a time budget and hands back a continuation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connectwise::{ConnectWiseClient, ConnectWiseError, Field, ListQuery};
use crate::lansweeper::{CustomFieldType, LansweeperClient, LansweeperError};
use crate::pipeline::{ApiCalls, PipelineError, SyncSettings, new_run_id};
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

pub const AGREEMENTS: &str = "finance/agreements";
pub const TICKETS: &str = "service/tickets";

/// The Lansweeper custom fields the enrichment writes, with their types.
pub const FIELDS: &[(&str, CustomFieldType)] = &[
    ("cw_total_tickets", CustomFieldType::Number),
    ("cw_open_tickets", CustomFieldType::Number),
    ("cw_closed_tickets", CustomFieldType::Number),
    ("cw_configuration_url", CustomFieldType::Hyperlink),
    ("cw_agreement_id", CustomFieldType::Text),
    ("cw_agreement_name", CustomFieldType::Text),
    ("cw_agreement_type", CustomFieldType::Text),
    ("cw_agreement_status", CustomFieldType::Text),
    ("cw_agreement_start_date", CustomFieldType::Date),
    ("cw_agreement_end_date", CustomFieldType::Date),
    ("cw_sla", CustomFieldType::Text),
];

/// Makes sure every field exists; answers name → field key.
pub async fn ensure_fields(
    lansweeper: &LansweeperClient,
) -> Result<HashMap<String, String>, LansweeperError> {
    let mut keys: HashMap<String, String> = lansweeper
        .custom_fields()
        .await?
        .into_iter()
        .map(|f| (f.name.to_lowercase(), f.key))
        .collect();
    for (name, field_type) in FIELDS {
        if !keys.contains_key(*name) {
            let created = lansweeper.create_custom_field(name, *field_type).await?;
            keys.insert(name.to_string(), created.key);
        }
    }
    Ok(FIELDS
        .iter()
        .filter_map(|(name, _)| Some((name.to_string(), keys.get(*name)?.clone())))
        .collect())
}

/// Records of `path` (agreements or tickets) and, for each, the configurations attached.
async fn attached(
    connectwise: &ConnectWiseClient,
    path: &str,
    fields: &[&str],
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    let mut query = ListQuery::default().with_fields(fields);
    if !companies.is_empty() {
        query.conditions = Some(
            Field::new("company/id")?
                .is_in(companies.iter().copied())
                .to_string(),
        );
    }
    let records = connectwise.list(path, &query).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for record in records {
        let Some(id) = record.get("id").and_then(Value::as_i64) else {
            continue;
        };
        let client = connectwise.clone();
        let sub = format!("{path}/{id}/configurations");
        tasks.spawn(async move {
            let mut ids = Vec::new();
            client
                .for_each_page(&sub, &ListQuery::default().with_fields(&["id"]), |page| {
                    ids.extend(
                        page.iter()
                            .filter_map(|c| c.get("id").and_then(Value::as_i64)),
                    );
                    Ok(())
                })
                .await
                .map(|_| (record, ids))
        });
    }
    let mut by_configuration: HashMap<i64, Vec<Value>> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (record, ids) =
            joined.map_err(|e| ConnectWiseError::Decode(format!("task: {e}")))??;
        for id in ids {
            by_configuration.entry(id).or_default().push(record.clone());
        }
    }
    for records in by_configuration.values_mut() {
        records.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
    }
    Ok(by_configuration)
}

pub async fn agreements_by_configuration(
    connectwise: &ConnectWiseClient,
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    attached(
        connectwise,
        AGREEMENTS,
        &[
            "id",
            "name",
            "type",
            "agreementStatus",
            "startDate",
            "endDate",
            "noEndingDateFlag",
            "sla",
        ],
        companies,
    )
    .await
}

pub async fn tickets_by_configuration(
    connectwise: &ConnectWiseClient,
    companies: &HashSet<i64>,
) -> Result<HashMap<i64, Vec<Value>>, ConnectWiseError> {
    attached(
        connectwise,
        TICKETS,
        &["id", "summary", "recordType", "status", "closedFlag"],
        companies,
    )
    .await
}

/// The agreement an asset shows when its configuration has several: an active one
/// before any other, then the one ending last (no end date counts as latest), then the
/// newest.
pub fn chosen_agreement(agreements: &[Value]) -> Option<&Value> {
    agreements.iter().max_by_key(|a| {
        let active = a.get("agreementStatus").and_then(Value::as_str) == Some("Active");
        let open_ended = a
            .get("noEndingDateFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || a.get("endDate").is_none_or(Value::is_null);
        let end = a
            .get("endDate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let id = a.get("id").and_then(Value::as_i64).unwrap_or(0);
        (active, open_ended, end, id)
    })
}

/// `2028-09-30T00:00:00Z` → `30/09/2028`, as the spec's sample output shows dates.
fn spec_date(value: Option<&Value>) -> Value {
    match value.and_then(Value::as_str).and_then(|d| d.get(0..10)) {
        Some(day) => {
            let parts: Vec<&str> = day.split('-').collect();
            if parts.len() == 3 {
                json!(format!("{}/{}/{}", parts[2], parts[1], parts[0]))
            } else {
                json!(day)
            }
        }
        None => Value::Null,
    }
}

fn link_value(configuration: &Value) -> Option<String> {
    configuration
        .get("customFields")?
        .as_array()?
        .iter()
        .find(|f| f.get("caption").and_then(Value::as_str) == Some("ls_asset_id"))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

fn companies_of(configurations: &[Value]) -> HashSet<i64> {
    configurations
        .iter()
        .filter_map(|c| c.get("company")?.get("id")?.as_i64())
        .collect()
}

fn configuration_head(configuration: &Value) -> Value {
    json!({
        "id": configuration.get("id"),
        "name": configuration.get("name"),
        "customFields": {"ls_asset_id": link_value(configuration)},
    })
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

/// The link to a configuration in ConnectWise's web UI, from the API base:
/// `https://api-na.myconnectwise.net/v4_6_release/apis/3.0` →
/// `https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?recordType=ConfigFv&recid=ID`.
pub fn configuration_url(api_base: &str, id: i64) -> String {
    let ui = api_base
        .trim_end_matches('/')
        .trim_end_matches("/apis/3.0")
        .replacen("://api-", "://", 1);
    format!("{ui}/services/system_io/router/openrecord.rails?recordType=ConfigFv&recid={id}")
}

/// Field name → value an asset should show (empty string: nothing to show).
pub fn desired_values(
    configuration: Option<&Value>,
    agreements: &[Value],
    tickets: &[Value],
    api_base: &str,
) -> BTreeMap<&'static str, String> {
    let mut values: BTreeMap<&'static str, String> = FIELDS
        .iter()
        .map(|(name, _)| (*name, String::new()))
        .collect();
    let Some(configuration) = configuration else {
        return values;
    };
    let closed = tickets
        .iter()
        .filter(|t| t.get("closedFlag").and_then(Value::as_bool) == Some(true))
        .count();
    values.insert("cw_total_tickets", tickets.len().to_string());
    values.insert("cw_open_tickets", (tickets.len() - closed).to_string());
    values.insert("cw_closed_tickets", closed.to_string());
    if let Some(id) = configuration.get("id").and_then(Value::as_i64) {
        values.insert("cw_configuration_url", configuration_url(api_base, id));
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let day = |v: Option<&Value>| text(v).get(0..10).unwrap_or("").to_string();
    let agreement = chosen_agreement(agreements);
    if let Some(a) = agreement {
        values.insert(
            "cw_agreement_id",
            a.get("id").map(|i| i.to_string()).unwrap_or_default(),
        );
        values.insert("cw_agreement_name", text(a.get("name")));
        values.insert(
            "cw_agreement_type",
            text(a.get("type").and_then(|t| t.get("name"))),
        );
        values.insert("cw_agreement_status", text(a.get("agreementStatus")));
        values.insert("cw_agreement_start_date", day(a.get("startDate")));
        values.insert("cw_agreement_end_date", day(a.get("endDate")));
    }
    let sla = configuration
        .get("sla")
        .and_then(|s| s.get("name"))
        .or_else(|| {
            agreement
                .and_then(|a| a.get("sla"))
                .and_then(|s| s.get("name"))
        });
    values.insert("cw_sla", text(sla));
    values
}

// ------------------------------------------------------------- the step

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichInput {
    #[serde(default)]
    pub run_id: Option<String>,
    /// Where the previous invocation stopped; absent on the first.
    #[serde(default)]
    pub next: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichOutput {
    pub run_id: String,
    pub done: bool,
    pub next: usize,
    pub edits: usize,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetEdit {
    pub asset_key: String,
    /// Lansweeper field key → value.
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrichPlan {
    assets: u64,
    unchanged: u64,
    edits: Vec<String>,
    total: usize,
    failed: Vec<Rejected>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrichProgress {
    written: u64,
    failed: Vec<Rejected>,
    api_calls: ApiCalls,
}

/// The enrichment report: written + unchanged + failed = assets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichReport {
    pub run_id: String,
    pub dry_run: bool,
    pub assets: u64,
    pub written: u64,
    pub unchanged: u64,
    pub failed: Vec<Rejected>,
    pub api_calls: ApiCalls,
}

fn key(run_id: &str, rest: &str) -> String {
    format!("run/{run_id}/enrich/{rest}")
}

/// One invocation: on the first, plan every edit; then write edits until `deadline`.
pub async fn enrich<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnrichInput,
    deadline: Option<Instant>,
) -> Result<EnrichOutput, PipelineError> {
    let calls = (connectwise.api_calls(), lansweeper.api_calls());
    let run_id = input.run_id.clone().unwrap_or_else(new_run_id);
    let start = match input.next {
        Some(next) => next,
        None => {
            plan(connectwise, lansweeper, store, settings, &run_id).await?;
            0
        }
    };
    let plan: EnrichPlan = store.require(&key(&run_id, "plan")).await?;
    let edits: Vec<AssetEdit> = store.get_parts(&plan.edits).await?;
    let mut progress = EnrichProgress::default();
    let mut next = start;
    if !settings.dry_run {
        while next < edits.len() {
            // At least one write per invocation, so a continuation always progresses.
            if next > start && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let edit = &edits[next];
            match lansweeper
                .edit_asset_custom_fields(&edit.asset_key, &edit.values)
                .await
            {
                Ok(_) => progress.written += 1,
                Err(error @ (LansweeperError::GraphQl { .. } | LansweeperError::Http { .. })) => {
                    progress.failed.push(Rejected {
                        asset_key: edit.asset_key.clone(),
                        reason: error.to_string(),
                    });
                }
                Err(other) => return Err(other.into()),
            }
            next += 1;
        }
    } else {
        next = edits.len();
    }
    let api_calls = ApiCalls {
        connectwise: connectwise.api_calls() - calls.0,
        lansweeper: lansweeper.api_calls() - calls.1,
    };
    progress.api_calls = api_calls;
    store
        .put(
            &key(&run_id, &format!("progress/{start:07}")),
            &progress,
            settings.staging_ttl,
        )
        .await?;
    Ok(EnrichOutput {
        run_id,
        done: next >= edits.len(),
        next,
        edits: edits.len(),
        api_calls,
    })
}

async fn plan<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
) -> Result<(), PipelineError> {
    let field_keys = if settings.dry_run {
        // A dry run creates nothing: fields that do not exist yet get their name as key.
        let existing: HashMap<String, String> = lansweeper
            .custom_fields()
            .await?
            .into_iter()
            .map(|f| (f.name.to_lowercase(), f.key))
            .collect();
        FIELDS
            .iter()
            .map(|(n, _)| {
                (
                    n.to_string(),
                    existing.get(*n).cloned().unwrap_or_else(|| n.to_string()),
                )
            })
            .collect()
    } else {
        ensure_fields(lansweeper).await?
    };
    let query = ListQuery {
        custom_field_conditions: Some("caption=\"ls_asset_id\" AND value != null".into()),
        fields: Some("id,name,company/id,sla,customFields".into()),
        ..ListQuery::default()
    };
    let configurations = connectwise
        .list(crate::connectwise::actions::CONFIGURATIONS, &query)
        .await?;
    let companies = companies_of(&configurations);
    let agreements = agreements_by_configuration(connectwise, &companies).await?;
    let tickets = tickets_by_configuration(connectwise, &companies).await?;
    let mut by_asset: HashMap<String, Vec<&Value>> = HashMap::new();
    for configuration in &configurations {
        if let Some(link) = link_value(configuration) {
            by_asset
                .entry(link.to_lowercase())
                .or_default()
                .push(configuration);
        }
    }

    let assets = lansweeper
        .assets(
            &[
                "key",
                "assetCustom.fields.fieldKey",
                "assetCustom.fields.value",
            ],
            None,
        )
        .await?;
    let mut edits = Vec::new();
    let mut failed = Vec::new();
    let mut unchanged = 0u64;
    for asset in &assets {
        let Some(asset_key) = asset.key() else {
            continue;
        };
        let linked = by_asset
            .get(&asset_key.to_lowercase())
            .cloned()
            .unwrap_or_default();
        if linked.len() > 1 {
            let ids: Vec<String> = linked
                .iter()
                .filter_map(|c| c.get("id"))
                .map(|i| i.to_string())
                .collect();
            failed.push(Rejected {
                asset_key,
                reason: format!(
                    "linked from several configurations ({}); resolve in ConnectWise",
                    ids.join(", ")
                ),
            });
            continue;
        }
        let configuration = linked.first().copied();
        let id = configuration
            .and_then(|c| c.get("id"))
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        let desired = desired_values(
            configuration,
            agreements.get(&id).map(Vec::as_slice).unwrap_or(&[]),
            tickets.get(&id).map(Vec::as_slice).unwrap_or(&[]),
            connectwise.base_url(),
        );
        let current: HashMap<String, String> = asset
            .values_at("assetCustom.fields")
            .into_iter()
            .filter_map(|f| {
                Some((
                    f.get("fieldKey")?.as_str()?.to_string(),
                    f.get("value")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let changes: Vec<(String, String)> = desired
            .iter()
            .filter_map(|(name, value)| {
                let field_key = field_keys.get(*name)?;
                let now = current.get(field_key).map(String::as_str).unwrap_or("");
                (now.trim() != value.trim()).then(|| (field_key.clone(), value.clone()))
            })
            .collect();
        if changes.is_empty() {
            unchanged += 1;
        } else {
            edits.push(AssetEdit {
                asset_key,
                values: changes,
            });
        }
    }
    let ttl = settings.staging_ttl;
    let plan = EnrichPlan {
        assets: assets.len() as u64,
        unchanged,
        total: edits.len(),
        edits: store.put_parts(&key(run_id, "edits"), &edits, ttl).await?,
        failed,
    };
    store.put(&key(run_id, "plan"), &plan, ttl).await?;
    tracing::info!(%run_id, assets = plan.assets, edits = plan.total, unchanged, "enrichment planned");
    Ok(())
}

/// Puts the enrichment's report together from what its invocations stored.
pub async fn report<S: Store>(
    store: &S,
    run_id: &str,
    invocations: &[usize],
    dry_run: bool,
) -> Result<EnrichReport, PipelineError> {
    let plan: EnrichPlan = store.require(&key(run_id, "plan")).await?;
    let mut report = EnrichReport {
        run_id: run_id.to_string(),
        dry_run,
        assets: plan.assets,
        unchanged: plan.unchanged,
        failed: plan.failed,
        ..EnrichReport::default()
    };
    for start in invocations {
        let progress: EnrichProgress = store
            .require(&key(run_id, &format!("progress/{start:07}")))
            .await?;
        report.written += progress.written;
        report.failed.extend(progress.failed);
        report.api_calls += progress.api_calls;
    }
    if dry_run {
        report.written = plan.total as u64;
    }
    Ok(report)
}

/// The enrichment on one machine: invocations until done (each within `budget`, as in
/// Lambda), then the report.
pub async fn run_enrich<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    budget: Option<std::time::Duration>,
) -> Result<(EnrichReport, usize), PipelineError> {
    let mut input = EnrichInput::default();
    let mut starts = Vec::new();
    loop {
        starts.push(input.next.unwrap_or(0));
        let deadline = budget.map(|b| Instant::now() + b);
        let output = enrich(connectwise, lansweeper, store, settings, &input, deadline).await?;
        if output.done {
            let report = report(store, &output.run_id, &starts, settings.dry_run).await?;
            return Ok((report, starts.len()));
        }
        input = EnrichInput {
            run_id: Some(output.run_id),
            next: Some(output.next),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_agreement_ending_last_is_shown() {
        let agreements = vec![
            json!({"id": 1, "agreementStatus": "Expired", "endDate": "2030-01-01T00:00:00Z"}),
            json!({"id": 2, "agreementStatus": "Active", "endDate": "2026-01-01T00:00:00Z"}),
            json!({"id": 3, "agreementStatus": "Active", "endDate": "2027-01-01T00:00:00Z"}),
        ];
        assert_eq!(chosen_agreement(&agreements).unwrap()["id"], 3);
        let open = json!({"id": 4, "agreementStatus": "Active", "noEndingDateFlag": true});
        assert_eq!(
            chosen_agreement(&[agreements[2].clone(), open]).unwrap()["id"],
            4
        );
        assert!(chosen_agreement(&[]).is_none());
    }

    #[test]
    fn values_without_configuration_or_history_are_empty_or_zero() {
        let empty = desired_values(None, &[], &[], "https://x/v4_6_release/apis/3.0");
        assert!(empty.values().all(String::is_empty));
        let configuration = json!({"id": 7, "sla": {"id": 1, "name": "Premium"}});
        let tickets = vec![
            json!({"closedFlag": true}),
            json!({"closedFlag": false}),
            json!({"closedFlag": false}),
        ];
        let values = desired_values(
            Some(&configuration),
            &[],
            &tickets,
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
        );
        assert_eq!(values["cw_total_tickets"], "3");
        assert_eq!(values["cw_open_tickets"], "2");
        assert_eq!(values["cw_closed_tickets"], "1");
        assert_eq!(values["cw_sla"], "Premium");
        assert_eq!(values["cw_agreement_name"], "");
        assert_eq!(
            values["cw_configuration_url"],
            "https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?recordType=ConfigFv&recid=7"
        );
        let zero = desired_values(
            Some(&configuration),
            &[],
            &[],
            "https://x/v4_6_release/apis/3.0",
        );
        assert_eq!(zero["cw_total_tickets"], "0");
    }
}
