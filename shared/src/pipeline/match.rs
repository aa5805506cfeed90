//! `match`: reads the configurations in scope once and the staged assets, matches them
//! level by level, and stores the create and modify batches the writers take.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::references::{EnsureOutput, checked_custom_fields, ensured};
use crate::calls::{ApiCalls, CallMeter};
use crate::connectwise::{ConnectWiseClient, Field, ListQuery, actions};
use crate::error::PipelineError;
use crate::lease;
use crate::matching::{self, FieldDiff, MatchSpec};
use crate::payload::{self, WriteContext};
use crate::references::{self, ReferenceIds, ReferenceKind};
use crate::run::run_key;
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{PART_BYTES, SizedGroups, Store, StoreExt};

/// Batches per Map iteration. 10 batches of 50 keep a 100,000-asset run at 200
/// iterations per Map, far under Step Functions' 25,000-event history, and one
/// iteration's work (10–30 ConnectWise requests) well inside a Lambda's time.
pub const GROUP_SIZE: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchOutput {
    pub run_id: String,
    /// Batch keys in groups of [`GROUP_SIZE`]: one state-machine Map iteration each.
    pub create_groups: Vec<Vec<String>>,
    pub modify_groups: Vec<Vec<String>>,
    pub to_create: u64,
    pub to_modify: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// A configuration to create, as the create batches hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateItem {
    pub asset_key: String,
    pub name: String,
    pub body: Value,
}

/// A configuration to change, as the modify batches hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyItem {
    pub asset_key: String,
    pub name: String,
    pub configuration_id: i64,
    pub unmatched_fields: Vec<FieldDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictReport {
    pub asset_key: String,
    pub name: String,
    pub reason: String,
    pub candidates: Vec<i64>,
}

/// What the writers and the report read of the match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MatchRecord {
    pub unchanged: u64,
    pub conflicts: Vec<String>,
    pub failed: Vec<String>,
    pub create_batches: Vec<String>,
    pub modify_batches: Vec<String>,
    pub company_id: i64,
    pub custom_field_ids: HashMap<String, i64>,
    pub api_calls: ApiCalls,
}

pub(crate) fn record_key(run_id: &str) -> String {
    run_key(run_id, "match")
}

/// Reads the scoped configurations once and the staged assets, matches them and writes
/// the create and modify batches.
pub async fn match_assets<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &EnsureOutput,
) -> Result<MatchOutput, PipelineError> {
    let run_id = &input.run_id;
    if !settings.dry_run {
        lease::renew(store, run_id).await?;
    }
    let meter = CallMeter::connectwise(connectwise);
    let spec = MatchSpec::for_staged_assets();
    let (ensured, _) = ensured(store, run_id).await?;
    let mut ids: ReferenceIds = ensured.ids.clone();
    if settings.dry_run {
        // References a real run would create: placeholder ids, so the plan is complete.
        for (kind, names) in &ensured.created {
            for name in names {
                ids.insert(*kind, name, 0);
            }
        }
    }
    let company_id = resolve_company(connectwise, &settings.target_company).await?;
    let query = ListQuery {
        conditions: settings.match_conditions.clone(),
        fields: Some(spec.configuration_fields()),
        ..ListQuery::default()
    };
    let configurations = connectwise
        .list_complete(actions::CONFIGURATIONS, &query)
        .await?;
    let custom_field_ids = checked_custom_fields(store, run_id).await?;
    let context = WriteContext {
        company_id,
        references: ids,
        custom_field_ids: custom_field_ids.clone(),
    };

    // Staged assets stay JSON: matching reads them by path, and one copy is enough.
    let values: Vec<Value> = store.get_parts(&input.chunks).await?;
    let text = |asset: &Value, field: &str| -> String {
        asset
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let outcome = matching::match_assets(&spec, &values, &configurations);

    let reference_failures: HashMap<(ReferenceKind, String), String> = ensured
        .failures
        .iter()
        .map(|f| ((f.kind, references::name_key(&f.name)), f.reason.clone()))
        .collect();
    let why_missing = |error: String, asset: &Value| -> String {
        for (kind, field) in [
            (ReferenceKind::Type, "type"),
            (ReferenceKind::Status, "state"),
            (ReferenceKind::Manufacturer, "manufacturer"),
            (ReferenceKind::Location, "location"),
        ] {
            let name = asset.get(field).and_then(Value::as_str);
            if let Some(reason) =
                name.and_then(|n| reference_failures.get(&(kind, references::name_key(n))))
            {
                return format!(
                    "{} `{}` could not be created: {reason}",
                    kind.configuration_field(),
                    name.unwrap_or("")
                );
            }
        }
        error
    };

    let mut failed: Vec<Rejected> = Vec::new();
    let mut creates = Vec::new();
    for &index in &outcome.unmatched {
        let asset = &values[index];
        match payload::create_body(&spec, asset, &context) {
            Ok(body) => creates.push(CreateItem {
                asset_key: text(asset, "key"),
                name: text(asset, "name"),
                body,
            }),
            Err(error) => failed.push(Rejected {
                asset_key: text(asset, "key"),
                reason: why_missing(error, asset),
            }),
        }
    }
    let mut modifies = Vec::new();
    let mut unchanged = 0u64;
    for matched in &outcome.matched {
        let asset = &values[matched.asset_index];
        if matched.unmatched_fields.is_empty() {
            unchanged += 1;
            continue;
        }
        // A reference a changed field needs must exist, or the update cannot be written.
        let probe = payload::update_body(&json!({}), &matched.unmatched_fields, &context);
        if let Err(error) = probe {
            failed.push(Rejected {
                asset_key: text(asset, "key"),
                reason: why_missing(error, asset),
            });
            continue;
        }
        modifies.push(ModifyItem {
            asset_key: text(asset, "key"),
            name: text(asset, "name"),
            configuration_id: matched.configuration_id,
            unmatched_fields: matched.unmatched_fields.clone(),
        });
    }
    let conflicts: Vec<ConflictReport> = outcome
        .conflicts
        .iter()
        .map(|c| ConflictReport {
            asset_key: text(&values[c.asset_index], "key"),
            name: text(&values[c.asset_index], "name"),
            reason: c.reason.clone(),
            candidates: c.candidates.clone(),
        })
        .collect();

    let ttl = settings.staging_ttl;
    let create_batches =
        put_batches(store, settings, run_id, "create", &creates, &mut failed).await?;
    let modify_batches =
        put_batches(store, settings, run_id, "modify", &modifies, &mut failed).await?;
    let api_calls = meter.read();
    let record = MatchRecord {
        unchanged,
        conflicts: store
            .put_parts(&run_key(run_id, "conflicts"), &conflicts, ttl)
            .await?,
        failed: store
            .put_parts(&run_key(run_id, "match-failed"), &failed, ttl)
            .await?,
        create_batches: create_batches.clone(),
        modify_batches: modify_batches.clone(),
        company_id,
        custom_field_ids,
        api_calls,
    };
    store.put(&record_key(run_id), &record, ttl).await?;
    tracing::info!(%run_id, create = creates.len(), modify = modifies.len(), unchanged, conflicts = conflicts.len(), failed = failed.len(), "matched");
    let groups = |batches: &[String]| batches.chunks(GROUP_SIZE).map(<[String]>::to_vec).collect();
    Ok(MatchOutput {
        run_id: run_id.clone(),
        create_groups: groups(&create_batches),
        modify_groups: groups(&modify_batches),
        to_create: creates.len() as u64,
        to_modify: modifies.len() as u64,
        unchanged,
        conflicts: conflicts.len() as u64,
        failed: failed.len() as u64,
        api_calls,
    })
}

/// Stores `items` in batches of at most `batch_size` items and [`PART_BYTES`] bytes
/// each, and answers their keys; an item too large for a batch of its own fails alone.
async fn put_batches<S: Store, T: Serialize + Sync + Keyed>(
    store: &S,
    settings: &SyncSettings,
    run_id: &str,
    kind: &str,
    items: &[T],
    failed: &mut Vec<Rejected>,
) -> Result<Vec<String>, PipelineError> {
    let sized = SizedGroups::of(items, settings.batch_size, PART_BYTES)?;
    for &index in &sized.too_large {
        failed.push(Rejected {
            asset_key: items[index].asset_key().to_string(),
            reason: format!(
                "too large to write: {} bytes serialised, a batch holds at most {PART_BYTES}",
                sized.texts[index].len()
            ),
        });
    }
    let mut keys = Vec::with_capacity(sized.groups.len());
    for (n, group) in sized.groups.iter().enumerate() {
        let key = run_key(run_id, &format!("{kind}/{n:04}"));
        let texts: Vec<&str> = group.iter().map(|&i| sized.texts[i].as_str()).collect();
        store
            .put_raw(&key, format!("[{}]", texts.join(",")), settings.staging_ttl)
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Items that belong to an asset.
trait Keyed {
    fn asset_key(&self) -> &str;
}

impl Keyed for CreateItem {
    fn asset_key(&self) -> &str {
        &self.asset_key
    }
}

impl Keyed for ModifyItem {
    fn asset_key(&self) -> &str {
        &self.asset_key
    }
}

/// `CW_TARGET_COMPANY` as an id: a number is taken as is, anything else is looked up
/// as the company identifier.
async fn resolve_company(
    connectwise: &ConnectWiseClient,
    target: &str,
) -> Result<i64, PipelineError> {
    if let Ok(id) = target.parse::<i64>() {
        return Ok(id);
    }
    let condition = Field::new("identifier")?.eq(target);
    let found = connectwise
        .list(
            actions::COMPANIES,
            &ListQuery::with_conditions(condition.as_str()).with_fields(&["id"]),
        )
        .await?;
    found
        .first()
        .and_then(|c| c.get("id"))
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            PipelineError::Config(format!(
                "CW_TARGET_COMPANY: ConnectWise has no company `{target}`"
            ))
        })
}
