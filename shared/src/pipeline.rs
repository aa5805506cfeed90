//! The asset synchronisation's five steps as plain async functions over clients and a
//! store. The Lambda functions and `lscw sync` call exactly these. Steps hand each other
//! references (run id, store keys), never asset arrays: Step Functions allows 256 KiB a
//! state.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connectwise::{ConnectWiseClient, ConnectWiseError, Field, ListQuery, actions};
use crate::lansweeper::{ASSET_PATHS, LansweeperClient, LansweeperError};
use crate::matching::{self, FieldDiff, MatchSpec};
use crate::payload::{self, WriteContext};
use crate::references::{
    self, EnsureOptions, ReferenceError, ReferenceIds, ReferenceKind, ReferenceNames,
};
use crate::staging::{Rejected, StagedAsset};
use crate::store::{Store, StoreError, StoreExt};

/// Tuning and targets of a sync, from the environment or the secret.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `CW_TARGET_COMPANY`: company identifier or id that new configurations belong to.
    pub target_company: String,
    /// `CW_LOCATION_STRUCTURE_LEVEL`: structure level id of new locations.
    pub structure_level: Option<i64>,
    /// `CW_CUSTOM_FIELD_IDS`: `ls_asset_id=5,ls_asset_url=6,…`; discovered by caption when unset.
    pub custom_field_ids: HashMap<String, i64>,
    /// `CW_MATCH_CONDITIONS`: which configurations take part in matching.
    pub match_conditions: Option<String>,
    pub staging_ttl: Duration,
    pub reference_ttl: Duration,
    pub batch_size: usize,
    pub dry_run: bool,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            target_company: String::new(),
            structure_level: None,
            custom_field_ids: HashMap::new(),
            match_conditions: None,
            staging_ttl: Duration::from_secs(48 * 3600),
            reference_ttl: Duration::from_secs(24 * 3600),
            batch_size: 50,
            dry_run: false,
        }
    }
}

impl SyncSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PipelineError> {
        let value = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |key: &str| -> Result<Option<i64>, PipelineError> {
            value(key)
                .map(|v| {
                    v.parse().map_err(|_| {
                        PipelineError::Config(format!("{key} must be an integer, got `{v}`"))
                    })
                })
                .transpose()
        };
        let mut custom_field_ids = HashMap::new();
        if let Some(text) = value("CW_CUSTOM_FIELD_IDS") {
            for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
                let (caption, id) = pair
                    .split_once('=')
                    .and_then(|(c, i)| Some((c.trim().to_string(), i.trim().parse().ok()?)))
                    .ok_or_else(|| {
                        PipelineError::Config(format!(
                            "CW_CUSTOM_FIELD_IDS: `{pair}` is not caption=id"
                        ))
                    })?;
                custom_field_ids.insert(caption, id);
            }
        }
        Ok(Self {
            target_company: value("CW_TARGET_COMPANY").ok_or_else(|| {
                PipelineError::Config(
                    "CW_TARGET_COMPANY is not set (company identifier or id)".into(),
                )
            })?,
            structure_level: number("CW_LOCATION_STRUCTURE_LEVEL")?,
            custom_field_ids,
            match_conditions: value("CW_MATCH_CONDITIONS"),
            ..Self::default()
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    ConnectWise(#[from] ConnectWiseError),
    #[error(transparent)]
    Lansweeper(#[from] LansweeperError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    References(#[from] ReferenceError),
}

/// Requests each API answered for a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCalls {
    pub connectwise: u64,
    pub lansweeper: u64,
}

impl std::ops::AddAssign for ApiCalls {
    fn add_assign(&mut self, other: Self) {
        self.connectwise += other.connectwise;
        self.lansweeper += other.lansweeper;
    }
}

/// A run id: sortable by time, unique enough to share a table.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("run-{}-{:04x}", now.as_secs(), fastrand::u16(..))
}

fn key(run_id: &str, rest: &str) -> String {
    format!("run/{run_id}/{rest}")
}

// ---------------------------------------------------------------- fetch-assets

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchInput {
    /// Continue this run id (the state machine's execution name), or make one.
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchOutput {
    pub run_id: String,
    pub chunks: Vec<String>,
    /// Assets Lansweeper returned, rejected ones included.
    pub assets: u64,
    pub rejected: u64,
    pub references: ReferenceNames,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchRecord {
    assets: u64,
    rejected: Vec<String>,
    api_calls: ApiCalls,
}

/// Pages every asset out of Lansweeper, normalises it and stages it in chunks.
pub async fn fetch_assets<S: Store>(
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchInput,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<FetchOutput, PipelineError> {
    let run_id = input.run_id.clone().unwrap_or_else(new_run_id);
    let calls_before = lansweeper.api_calls();
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut names = ReferenceNames::default();
    let mut seen = 0u64;
    let mut chunks = Vec::new();
    // Each page is staged as it arrives, in parts sized for DynamoDB items, so memory
    // holds one page, not the site.
    let mut pager = lansweeper.asset_pager(ASSET_PATHS, None)?;
    while let Some(page) = pager.next_page().await? {
        seen += page.len() as u64;
        let mut staged = Vec::with_capacity(page.len());
        for asset in &page {
            match StagedAsset::from_lansweeper(asset) {
                Ok(asset) => {
                    names.add(ReferenceKind::Location, asset.location.as_deref());
                    names.add(ReferenceKind::Manufacturer, asset.manufacturer.as_deref());
                    names.add(ReferenceKind::Status, asset.state.as_deref());
                    names.add(ReferenceKind::Type, Some(&asset.asset_type));
                    staged.push(asset);
                }
                Err(reason) => rejected.push(reason),
            }
        }
        if !staged.is_empty() {
            let prefix = key(&run_id, &format!("assets/{:05}", pager.stats.requests));
            chunks.extend(
                store
                    .put_parts(&prefix, &staged, settings.staging_ttl)
                    .await?,
            );
        }
        progress(seen, pager.stats.total);
    }
    progress(seen, pager.stats.total.or(Some(seen)));
    let rejected_keys = store
        .put_parts(&key(&run_id, "rejected"), &rejected, settings.staging_ttl)
        .await?;
    let api_calls = ApiCalls {
        lansweeper: lansweeper.api_calls() - calls_before,
        connectwise: 0,
    };
    store
        .put(
            &key(&run_id, "fetch"),
            &FetchRecord {
                assets: seen,
                rejected: rejected_keys,
                api_calls,
            },
            settings.staging_ttl,
        )
        .await?;
    tracing::info!(%run_id, assets = seen, rejected = rejected.len(), chunks = chunks.len(), "assets staged");
    Ok(FetchOutput {
        run_id,
        chunks,
        assets: seen,
        rejected: rejected.len() as u64,
        references: names,
        api_calls,
    })
}

// ----------------------------------------------------------- ensure-references

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureOutput {
    pub run_id: String,
    pub chunks: Vec<String>,
    pub references_created: BTreeMap<ReferenceKind, usize>,
    pub reference_failures: usize,
    pub api_calls: ApiCalls,
}

/// The spec's four subflows; the ids go to the store for match and the writers.
pub async fn ensure_references<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &FetchOutput,
) -> Result<EnsureOutput, PipelineError> {
    let calls_before = connectwise.api_calls();
    let outcome = references::ensure(
        connectwise,
        store,
        &input.references,
        &EnsureOptions {
            structure_level: settings.structure_level,
            cache_ttl: settings.reference_ttl,
            dry_run: settings.dry_run,
        },
    )
    .await?;
    let api_calls = ApiCalls {
        connectwise: connectwise.api_calls() - calls_before,
        lansweeper: 0,
    };
    store
        .put(
            &key(&input.run_id, "references"),
            &(&outcome, api_calls),
            settings.staging_ttl,
        )
        .await?;
    Ok(EnsureOutput {
        run_id: input.run_id.clone(),
        chunks: input.chunks.clone(),
        references_created: outcome.created.iter().map(|(k, v)| (*k, v.len())).collect(),
        reference_failures: outcome.failures.len(),
        api_calls,
    })
}

// ------------------------------------------------------------------------ match

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateItem {
    pub asset_key: String,
    pub name: String,
    pub body: Value,
}

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchRecord {
    unchanged: u64,
    conflicts: Vec<String>,
    failed: Vec<String>,
    create_batches: Vec<String>,
    modify_batches: Vec<String>,
    company_id: i64,
    custom_field_ids: HashMap<String, i64>,
    api_calls: ApiCalls,
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
    let calls_before = connectwise.api_calls();
    let spec = MatchSpec::for_staged_assets();
    let (ensured, _): (references::EnsureOutcome, ApiCalls) =
        store.require(&key(run_id, "references")).await?;
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
    let configurations = connectwise.list(actions::CONFIGURATIONS, &query).await?;
    let custom_field_ids = if settings.custom_field_ids.is_empty() {
        discover_custom_fields(connectwise, &configurations).await?
    } else {
        settings.custom_field_ids.clone()
    };
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
    let mut create_batches = Vec::new();
    for (n, batch) in creates.chunks(settings.batch_size.max(1)).enumerate() {
        let batch_key = key(run_id, &format!("create/{n:04}"));
        store.put(&batch_key, &batch, ttl).await?;
        create_batches.push(batch_key);
    }
    let mut modify_batches = Vec::new();
    for (n, batch) in modifies.chunks(settings.batch_size.max(1)).enumerate() {
        let batch_key = key(run_id, &format!("modify/{n:04}"));
        store.put(&batch_key, &batch, ttl).await?;
        modify_batches.push(batch_key);
    }
    let api_calls = ApiCalls {
        connectwise: connectwise.api_calls() - calls_before,
        lansweeper: 0,
    };
    let record = MatchRecord {
        unchanged,
        conflicts: store
            .put_parts(&key(run_id, "conflicts"), &conflicts, ttl)
            .await?,
        failed: store
            .put_parts(&key(run_id, "match-failed"), &failed, ttl)
            .await?,
        create_batches: create_batches.clone(),
        modify_batches: modify_batches.clone(),
        company_id,
        custom_field_ids,
        api_calls,
    };
    store.put(&key(run_id, "match"), &record, ttl).await?;
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

/// The integration's custom field ids, read off the configurations ConnectWise returned.
async fn discover_custom_fields(
    connectwise: &ConnectWiseClient,
    configurations: &[Value],
) -> Result<HashMap<String, i64>, PipelineError> {
    let sample = match configurations.first() {
        Some(c) => c.clone(),
        None => connectwise
            .list(
                actions::CONFIGURATIONS,
                &ListQuery {
                    page_size: Some(1),
                    fields: Some("customFields".into()),
                    ..ListQuery::default()
                },
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or(Value::Null),
    };
    let found: HashMap<String, i64> = sample
        .get("customFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("caption")?.as_str()?.to_string(),
                f.get("id")?.as_i64()?,
            ))
        })
        .collect();
    let spec = MatchSpec::for_staged_assets();
    let missing: Vec<&str> = spec
        .custom_field_mappings
        .iter()
        .map(|(_, c)| c.as_str())
        .filter(|c| !found.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::Config(format!(
            "custom fields {} not found on ConnectWise configurations; create them or set CW_CUSTOM_FIELD_IDS",
            missing.join(", ")
        )));
    }
    Ok(found)
}

// ----------------------------------------------------- bulk-create, bulk-modify

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    pub run_id: String,
    pub batch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutput {
    pub run_id: String,
    pub batch: String,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchRecord {
    written: Vec<String>,
    failed: Vec<Rejected>,
    api_calls: ApiCalls,
}

/// Batches per Map iteration. 10 batches of 50 keep a 100,000-asset run at 200
/// iterations per Map, far under Step Functions' 25,000-event history, and one
/// iteration's work (10–30 ConnectWise requests) well inside a Lambda's time.
pub const GROUP_SIZE: usize = 10;

/// A group of batches, what one Map iteration hands a bulk function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInput {
    pub run_id: String,
    pub batches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOutput {
    pub run_id: String,
    pub batches: usize,
    pub written: u64,
    pub failed: u64,
    pub api_calls: ApiCalls,
}

/// Creates or updates every batch of a group, one after the other.
pub async fn write_group<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &GroupInput,
    create: bool,
) -> Result<GroupOutput, PipelineError> {
    let mut output = GroupOutput {
        run_id: input.run_id.clone(),
        batches: input.batches.len(),
        ..GroupOutput::default()
    };
    for batch in &input.batches {
        let one = BatchInput {
            run_id: input.run_id.clone(),
            batch: batch.clone(),
        };
        let done = if create {
            bulk_create(connectwise, store, settings, &one).await?
        } else {
            bulk_modify(connectwise, store, settings, &one).await?
        };
        output.written += done.written;
        output.failed += done.failed;
        output.api_calls += done.api_calls;
    }
    Ok(output)
}

fn result_key(batch: &str) -> String {
    format!("{batch}/result")
}

/// Creates one batch through the bulk endpoint; an item that fails is sent alone once
/// more, then reported with ConnectWise's reason.
pub async fn bulk_create<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
) -> Result<BatchOutput, PipelineError> {
    let calls_before = connectwise.api_calls();
    let items: Vec<CreateItem> = store.require(&input.batch).await?;
    let bodies: Vec<Value> = items.iter().map(|i| i.body.clone()).collect();
    let outcomes = write_with_one_retry(connectwise, Method::POST, &bodies).await?;
    finish_batch(
        connectwise,
        store,
        settings,
        input,
        calls_before,
        items
            .iter()
            .map(|i| i.asset_key.clone())
            .zip(outcomes)
            .collect(),
    )
    .await
}

/// Updates one batch: reads the configurations whole, changes only the differing
/// fields, and writes them back through the bulk endpoint.
pub async fn bulk_modify<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
) -> Result<BatchOutput, PipelineError> {
    let calls_before = connectwise.api_calls();
    let items: Vec<ModifyItem> = store.require(&input.batch).await?;
    let record: MatchRecord = store.require(&key(&input.run_id, "match")).await?;
    let (ensured, _): (references::EnsureOutcome, ApiCalls) =
        store.require(&key(&input.run_id, "references")).await?;
    let context = WriteContext {
        company_id: record.company_id,
        references: ensured.ids,
        custom_field_ids: record.custom_field_ids,
    };
    let ids = items.iter().map(|i| i.configuration_id);
    let condition = Field::new("id")?.is_in(ids);
    let current = connectwise
        .list(
            actions::CONFIGURATIONS,
            &ListQuery {
                conditions: Some(condition.to_string()),
                page_size: Some(items.len().clamp(1, 1000) as u32),
                ..ListQuery::default()
            },
        )
        .await?;
    let by_id: HashMap<i64, &Value> = current
        .iter()
        .filter_map(|c| Some((c.get("id")?.as_i64()?, c)))
        .collect();
    let mut bodies = Vec::new();
    let mut keys = Vec::new();
    let mut outcomes: Vec<(String, Result<(), String>)> = Vec::new();
    for item in &items {
        let body = by_id
            .get(&item.configuration_id)
            .ok_or_else(|| format!("configuration {} no longer exists", item.configuration_id))
            .and_then(|current| {
                let diffs: Vec<FieldDiff> = item
                    .unmatched_fields
                    .iter()
                    .cloned()
                    .map(|mut d| {
                        d.target = payload::target_from_label(&d.field);
                        d
                    })
                    .collect();
                payload::update_body(current, &diffs, &context)
            });
        match body {
            Ok(body) => {
                bodies.push(body);
                keys.push(item.asset_key.clone());
            }
            Err(reason) => outcomes.push((item.asset_key.clone(), Err(reason))),
        }
    }
    let written = write_with_one_retry(connectwise, Method::PUT, &bodies).await?;
    outcomes.extend(keys.into_iter().zip(written));
    finish_batch(connectwise, store, settings, input, calls_before, outcomes).await
}

async fn finish_batch<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
    calls_before: u64,
    outcomes: Vec<(String, Result<(), String>)>,
) -> Result<BatchOutput, PipelineError> {
    let mut record = BatchRecord::default();
    for (asset_key, outcome) in outcomes {
        match outcome {
            Ok(()) => record.written.push(asset_key),
            Err(reason) => record.failed.push(Rejected { asset_key, reason }),
        }
    }
    record.api_calls = ApiCalls {
        connectwise: connectwise.api_calls() - calls_before,
        lansweeper: 0,
    };
    store
        .put(&result_key(&input.batch), &record, settings.staging_ttl)
        .await?;
    Ok(BatchOutput {
        run_id: input.run_id.clone(),
        batch: input.batch.clone(),
        written: record.written.len() as u64,
        failed: record.failed.len() as u64,
        api_calls: record.api_calls,
    })
}

/// One bulk request; the items that failed are sent alone once more.
async fn write_with_one_retry(
    connectwise: &ConnectWiseClient,
    method: Method,
    bodies: &[Value],
) -> Result<Vec<Result<(), String>>, PipelineError> {
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let needs_id = method == Method::PUT;
    let first = actions::bulk(connectwise, method.clone(), bodies, needs_id).await?;
    let mut outcomes = Vec::with_capacity(bodies.len());
    for (index, result) in first.into_iter().enumerate() {
        if result.success {
            outcomes.push(Ok(()));
            continue;
        }
        // A 4xx from validation will fail again; only a server-side failure is retried.
        let retry = result.status_code >= 500;
        let outcome = if retry {
            match actions::bulk(
                connectwise,
                method.clone(),
                &bodies[index..=index],
                needs_id,
            )
            .await?
            .pop()
            {
                Some(second) if second.success => Ok(()),
                Some(second) => Err(reason(&second)),
                None => Err(reason(&result)),
            }
        } else {
            Err(reason(&result))
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn reason(result: &crate::connectwise::BulkItemResult) -> String {
    match &result.error {
        Some(error) => {
            let details: Vec<String> = error
                .errors
                .iter()
                .map(|e| match (&e.field, &e.message) {
                    (Some(field), Some(message)) => format!("{field}: {message}"),
                    (_, Some(message)) => message.clone(),
                    _ => String::new(),
                })
                .filter(|d| !d.is_empty())
                .collect();
            let mut text = format!(
                "ConnectWise {} {}: {}",
                result.status_code, error.code, error.message
            );
            if !details.is_empty() {
                text.push_str(&format!(" ({})", details.join("; ")));
            }
            text
        }
        None => format!("ConnectWise answered {}", result.status_code),
    }
}

// ------------------------------------------------------------------------ report

/// What a run did. created + modified + unchanged + conflicts + failed = assets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub dry_run: bool,
    pub assets: u64,
    pub created: u64,
    pub modified: u64,
    pub unchanged: u64,
    pub conflicts: Vec<ConflictReport>,
    pub failed: Vec<Rejected>,
    pub references_created: BTreeMap<ReferenceKind, Vec<String>>,
    pub api_calls: ApiCalls,
}

impl RunReport {
    pub fn accounted(&self) -> u64 {
        self.created
            + self.modified
            + self.unchanged
            + self.conflicts.len() as u64
            + self.failed.len() as u64
    }
}

/// Puts the run's report together from what its steps stored. In a dry run nothing was
/// written: `created` and `modified` count what would have been.
pub async fn report<S: Store>(
    store: &S,
    run_id: &str,
    dry_run: bool,
) -> Result<RunReport, PipelineError> {
    let fetch: FetchRecord = store.require(&key(run_id, "fetch")).await?;
    let (ensured, reference_calls): (references::EnsureOutcome, ApiCalls) =
        store.require(&key(run_id, "references")).await?;
    let matched: MatchRecord = store.require(&key(run_id, "match")).await?;
    let mut report = RunReport {
        run_id: run_id.to_string(),
        dry_run,
        assets: fetch.assets,
        unchanged: matched.unchanged,
        conflicts: store.get_parts(&matched.conflicts).await?,
        references_created: ensured.created,
        ..RunReport::default()
    };
    report
        .failed
        .extend(store.get_parts::<Rejected>(&fetch.rejected).await?);
    report
        .failed
        .extend(store.get_parts::<Rejected>(&matched.failed).await?);
    report.api_calls += fetch.api_calls;
    report.api_calls += reference_calls;
    report.api_calls += matched.api_calls;
    for (batches, created) in [
        (&matched.create_batches, true),
        (&matched.modify_batches, false),
    ] {
        for batch in batches {
            if dry_run {
                let count = if created {
                    store.require::<Vec<CreateItem>>(batch).await?.len()
                } else {
                    store.require::<Vec<ModifyItem>>(batch).await?.len()
                } as u64;
                *(if created {
                    &mut report.created
                } else {
                    &mut report.modified
                }) += count;
                continue;
            }
            match store.get::<BatchRecord>(&result_key(batch)).await? {
                Some(result) => {
                    let written = result.written.len() as u64;
                    *(if created {
                        &mut report.created
                    } else {
                        &mut report.modified
                    }) += written;
                    report.failed.extend(result.failed);
                    report.api_calls += result.api_calls;
                }
                None => {
                    // The batch never ran (its step failed for good): its assets are not lost.
                    let keys: Vec<(String, String)> = if created {
                        store
                            .require::<Vec<CreateItem>>(batch)
                            .await?
                            .into_iter()
                            .map(|i| (i.asset_key, i.name))
                            .collect()
                    } else {
                        store
                            .require::<Vec<ModifyItem>>(batch)
                            .await?
                            .into_iter()
                            .map(|i| (i.asset_key, i.name))
                            .collect()
                    };
                    report
                        .failed
                        .extend(keys.into_iter().map(|(asset_key, _)| Rejected {
                            asset_key,
                            reason: format!("batch {batch} was not written (its step failed)"),
                        }));
                }
            }
        }
    }
    Ok(report)
}

/// The dry run's plan: what would be created, changed field by field, and what conflicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub create: Vec<CreateItem>,
    pub modify: Vec<ModifyItem>,
    pub conflicts: Vec<ConflictReport>,
    pub references: BTreeMap<ReferenceKind, Vec<String>>,
}

pub async fn plan<S: Store>(store: &S, run_id: &str) -> Result<Plan, PipelineError> {
    let matched: MatchRecord = store.require(&key(run_id, "match")).await?;
    let (ensured, _): (references::EnsureOutcome, ApiCalls) =
        store.require(&key(run_id, "references")).await?;
    let mut plan = Plan {
        conflicts: store.get_parts(&matched.conflicts).await?,
        references: ensured.created,
        ..Plan::default()
    };
    for batch in &matched.create_batches {
        plan.create
            .extend(store.require::<Vec<CreateItem>>(batch).await?);
    }
    for batch in &matched.modify_batches {
        plan.modify
            .extend(store.require::<Vec<ModifyItem>>(batch).await?);
    }
    Ok(plan)
}

// ------------------------------------------------------------- one machine

/// What a whole run reports as it goes, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Fetching { seen: u64, total: Option<u64> },
    Step(&'static str),
    Writing { written: u64, total: u64 },
}

/// The five steps in the state machine's order, on one machine: what `lscw sync` runs.
pub async fn run_sync<S: Store>(
    connectwise: &ConnectWiseClient,
    lansweeper: &LansweeperClient,
    store: &S,
    settings: &SyncSettings,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, PipelineError> {
    progress(Progress::Step("fetch-assets"));
    let fetched = fetch_assets(
        lansweeper,
        store,
        settings,
        &FetchInput::default(),
        |seen, total| progress(Progress::Fetching { seen, total }),
    )
    .await?;
    progress(Progress::Step("ensure-references"));
    let ensured = ensure_references(connectwise, store, settings, &fetched).await?;
    progress(Progress::Step("match"));
    let matched = match_assets(connectwise, store, settings, &ensured).await?;
    if !settings.dry_run {
        let total = matched.to_create + matched.to_modify;
        let mut written = 0;
        progress(Progress::Writing { written, total });
        for (groups, create) in [
            (&matched.create_groups, true),
            (&matched.modify_groups, false),
        ] {
            for group in groups {
                let input = GroupInput {
                    run_id: matched.run_id.clone(),
                    batches: group.clone(),
                };
                let done = write_group(connectwise, store, settings, &input, create).await?;
                written += done.written + done.failed;
                progress(Progress::Writing { written, total });
            }
        }
    }
    progress(Progress::Step("report"));
    report(store, &matched.run_id, settings.dry_run).await
}
