//! The spec's four reference subflows (location, manufacturer, status, type): make sure
//! every name the assets need exists in ConnectWise, creating what is missing, and cache
//! name → id so the next run reads the cache instead of ConnectWise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connectwise::{ConnectWiseClient, ConnectWiseError, Field, ListQuery, endpoint};
use crate::normalize;
use crate::store::{Store, StoreError, StoreExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReferenceKind {
    Location,
    Manufacturer,
    Status,
    Type,
}

impl ReferenceKind {
    pub const ALL: [ReferenceKind; 4] =
        [Self::Location, Self::Manufacturer, Self::Status, Self::Type];

    pub fn path(self) -> &'static str {
        match self {
            Self::Location => endpoint::LOCATIONS,
            Self::Manufacturer => endpoint::MANUFACTURERS,
            Self::Status => endpoint::CONFIGURATION_STATUSES,
            Self::Type => endpoint::CONFIGURATION_TYPES,
        }
    }

    /// The member holding the name (statuses call it `description`).
    pub fn name_field(self) -> &'static str {
        match self {
            Self::Status => "description",
            _ => "name",
        }
    }

    /// The configuration member that references it.
    pub fn configuration_field(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::Manufacturer => "manufacturer",
            Self::Status => "status",
            Self::Type => "type",
        }
    }

    /// The kind a configuration member references (`locationId` is the location's too).
    pub fn from_configuration_field(field: &str) -> Option<Self> {
        if field == "locationId" {
            return Some(Self::Location);
        }
        Self::ALL
            .into_iter()
            .find(|k| k.configuration_field() == field)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Location => "locations",
            Self::Manufacturer => "manufacturers",
            Self::Status => "statuses",
            Self::Type => "types",
        }
    }
}

/// The cached name → id of one kind: in parts, so a tenant's thousands of names fit. A
/// cache that cannot be read whole (an earlier version's, a part expired first) is no
/// cache: ConnectWise is read.
async fn cached<S: Store>(store: &S, key: &str) -> Result<HashMap<String, i64>, StoreError> {
    match store.get_list::<(String, i64)>(key).await {
        Ok(entries) => Ok(entries.unwrap_or_default().into_iter().collect()),
        Err(StoreError::Corrupt { .. } | StoreError::Missing(_)) => Ok(HashMap::new()),
        Err(other) => Err(other),
    }
}

/// How names are compared: trimmed, whitespace collapsed, case folded.
pub fn name_key(name: &str) -> String {
    normalize::comparable(name, false)
}

/// Distinct reference names, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceNames(pub BTreeMap<ReferenceKind, BTreeSet<String>>);

impl ReferenceNames {
    pub fn add(&mut self, kind: ReferenceKind, name: Option<&str>) {
        if let Some(name) = name.and_then(normalize::text) {
            self.0.entry(kind).or_default().insert(name);
        }
    }

    pub fn merge(&mut self, other: ReferenceNames) {
        for (kind, names) in other.0 {
            self.0.entry(kind).or_default().extend(names);
        }
    }
}

/// Name → id, per kind (names as [`name_key`] folds them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceIds(pub BTreeMap<ReferenceKind, HashMap<String, i64>>);

impl ReferenceIds {
    pub fn get(&self, kind: ReferenceKind, name: &str) -> Option<i64> {
        self.0.get(&kind)?.get(&name_key(name)).copied()
    }

    pub fn insert(&mut self, kind: ReferenceKind, name: &str, id: i64) {
        self.0.entry(kind).or_default().insert(name_key(name), id);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceFailure {
    pub kind: ReferenceKind,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureOutcome {
    pub ids: ReferenceIds,
    /// Created (or, in a dry run, to be created) per kind.
    pub created: BTreeMap<ReferenceKind, Vec<String>>,
    pub failures: Vec<ReferenceFailure>,
}

#[derive(Debug, Clone)]
pub struct EnsureOptions {
    /// Corporate structure level of new locations; the lowest ConnectWise has if unset.
    pub structure_level: Option<i64>,
    /// Where the cache of each kind lives in the store (the run layout says).
    pub cache_key: fn(ReferenceKind) -> String,
    pub cache_ttl: Duration,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    ConnectWise(#[from] ConnectWiseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ConnectWise has no corporate structure levels to put new locations in")]
    NoStructureLevel,
}

/// Ensures every needed name exists, kind by kind, as the spec's subflows do in order.
pub async fn ensure<S: Store>(
    client: &ConnectWiseClient,
    store: &S,
    needed: &ReferenceNames,
    options: &EnsureOptions,
) -> Result<EnsureOutcome, ReferenceError> {
    let mut outcome = EnsureOutcome::default();
    let mut structure_level = options.structure_level;
    for kind in ReferenceKind::ALL {
        let Some(names) = needed.0.get(&kind).filter(|n| !n.is_empty()) else {
            continue;
        };
        let mut known = cached(store, &(options.cache_key)(kind)).await?;
        let missing = |known: &HashMap<String, i64>| -> Vec<String> {
            names
                .iter()
                .filter(|n| !known.contains_key(&name_key(n)))
                .cloned()
                .collect()
        };
        if !missing(&known).is_empty() {
            // The cache misses some: read what ConnectWise has, once.
            known = list_names(client, kind).await?;
        }
        for name in missing(&known) {
            // Names ConnectWise compares as one ("UBIQUITI", "Ubiquiti ") are one
            // reference: the first spelling is created, the others take its id.
            if known.contains_key(&name_key(&name))
                || (options.dry_run
                    && outcome.created.get(&kind).is_some_and(|created| {
                        created.iter().any(|c| name_key(c) == name_key(&name))
                    }))
            {
                continue;
            }
            if options.dry_run {
                outcome.created.entry(kind).or_default().push(name);
                continue;
            }
            if kind == ReferenceKind::Location && structure_level.is_none() {
                structure_level = Some(lowest_structure_level(client).await?);
            }
            match create(client, kind, &name, structure_level).await {
                Ok(id) => {
                    known.insert(name_key(&name), id);
                    outcome.created.entry(kind).or_default().push(name);
                }
                Err(error) => {
                    tracing::warn!(kind = kind.label(), %name, %error, "could not create reference");
                    outcome.failures.push(ReferenceFailure {
                        kind,
                        name,
                        reason: error.to_string(),
                    });
                }
            }
        }
        if !options.dry_run {
            let entries: Vec<(&String, &i64)> = known.iter().collect();
            store
                .put_list(&(options.cache_key)(kind), &entries, options.cache_ttl)
                .await?;
        }
        for (name, id) in known {
            outcome.ids.0.entry(kind).or_default().insert(name, id);
        }
    }
    Ok(outcome)
}

/// A reference ConnectWise refused as missing (deleted or merged behind the cache): the
/// names that had `stale_id` (in the cache, or in `resolved`, the ids the run wrote with)
/// are dropped from the cache, and those of `spellings` (the run's names, as the assets
/// spell them) resolved again — the id ConnectWise now has for the name, else a new
/// reference. Answers the id now in force, or `None` when no name had the id.
///
/// # Errors
/// ConnectWise or the store fails.
pub async fn replace_stale<S: Store>(
    client: &ConnectWiseClient,
    store: &S,
    kind: ReferenceKind,
    stale_id: i64,
    resolved: &ReferenceIds,
    spellings: &ReferenceNames,
    options: &EnsureOptions,
) -> Result<Option<i64>, ReferenceError> {
    let key = (options.cache_key)(kind);
    let mut known = cached(store, &key).await?;
    let stale: BTreeSet<String> = known
        .iter()
        .chain(resolved.0.get(&kind).into_iter().flatten())
        .filter(|(_, id)| **id == stale_id)
        .map(|(name, _)| name.clone())
        .collect();
    if stale.is_empty() {
        return Ok(None);
    }
    if known.values().any(|id| *id == stale_id) {
        known.retain(|_, id| *id != stale_id);
        let entries: Vec<(&String, &i64)> = known.iter().collect();
        store.put_list(&key, &entries, options.cache_ttl).await?;
    }
    tracing::warn!(kind = kind.label(), stale_id, names = ?stale, "a cached reference is gone from ConnectWise; resolved again");
    let mut needed = ReferenceNames::default();
    for name in spellings.0.get(&kind).into_iter().flatten() {
        if stale.contains(&name_key(name)) {
            needed.add(kind, Some(name));
        }
    }
    let outcome = ensure(client, store, &needed, options).await?;
    Ok(stale.iter().find_map(|name| outcome.ids.get(kind, name)))
}

async fn list_names(
    client: &ConnectWiseClient,
    kind: ReferenceKind,
) -> Result<HashMap<String, i64>, ConnectWiseError> {
    let query = ListQuery::default().with_fields(&["id", kind.name_field()]);
    let mut names = HashMap::new();
    client
        .for_each_page(kind.path(), &query, |page| {
            for record in page {
                if let (Some(id), Some(name)) = (
                    record.get("id").and_then(Value::as_i64),
                    record.get(kind.name_field()).and_then(Value::as_str),
                ) {
                    // The first of two names that fold alike wins, every run.
                    names.entry(name_key(name)).or_insert(id);
                }
            }
            Ok(())
        })
        .await?;
    Ok(names)
}

async fn lowest_structure_level(client: &ConnectWiseClient) -> Result<i64, ReferenceError> {
    let levels = client
        .list(
            endpoint::CORPORATE_STRUCTURE_LEVELS,
            &ListQuery::default().with_fields(&["id"]),
        )
        .await?;
    levels
        .iter()
        .filter_map(|l| l.get("id").and_then(Value::as_i64))
        .max()
        .ok_or(ReferenceError::NoStructureLevel)
}

async fn create(
    client: &ConnectWiseClient,
    kind: ReferenceKind,
    name: &str,
    structure_level: Option<i64>,
) -> Result<i64, ConnectWiseError> {
    let mut body = json!({ kind.name_field(): name });
    if kind == ReferenceKind::Location {
        body["structureLevel"] = json!({ "id": structure_level });
    }
    let created = match client.post(kind.path(), &body).await {
        Ok(created) => created,
        // Someone created it since we listed: read its id.
        Err(error) if already_exists(&error) => find_by_name(client, kind, name)
            .await?
            .unwrap_or(Value::Null),
        // The answer was lost: what ConnectWise holds decides; names are unique, so a
        // second send can at worst be refused as existing.
        Err(error) if error.may_have_been_applied() => {
            match find_by_name(client, kind, name).await? {
                Some(found) => found,
                None => match client.post(kind.path(), &body).await {
                    Ok(created) => created,
                    Err(error) if already_exists(&error) => find_by_name(client, kind, name)
                        .await?
                        .unwrap_or(Value::Null),
                    Err(other) => return Err(other),
                },
            }
        }
        Err(other) => return Err(other),
    };
    created
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ConnectWiseError::Decode(format!("created {} has no id", kind.label())))
}

fn already_exists(error: &ConnectWiseError) -> bool {
    matches!(error, ConnectWiseError::Api { status: 400, errors, .. }
        if errors.iter().any(|e| e.code.as_deref() == Some("ObjectExists")))
}

/// The record of `kind` named `name`, if ConnectWise holds one.
async fn find_by_name(
    client: &ConnectWiseClient,
    kind: ReferenceKind,
    name: &str,
) -> Result<Option<Value>, ConnectWiseError> {
    let condition = Field::new(kind.name_field())?.eq(name);
    let found = client
        .list(
            kind.path(),
            &ListQuery::with_conditions(condition.as_str()).with_fields(&["id"]),
        )
        .await?;
    Ok(found.into_iter().next())
}
