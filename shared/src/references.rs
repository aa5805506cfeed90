//! The spec's four reference subflows (location, manufacturer, status, type): make sure
//! every name the assets need exists in ConnectWise, creating what is missing, and cache
//! name → id so the next run reads the cache instead of ConnectWise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connectwise::{
    ApiErrorBody, ConnectWiseClient, ConnectWiseError, Field, ListQuery, endpoint,
};
use crate::matching::{LOCATION_NAME, MatchSpec, Target};
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

    /// The kind a configuration member references (`locationId` is the location's).
    pub fn from_configuration_field(field: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.configuration_field() == field || k.member() == field)
    }

    /// The member of a configuration's body that holds the reference: ConnectWise's model
    /// gives a configuration its location by id alone (`locationId`, a number), the others
    /// as a reference object (`{"id": n}`).
    pub fn member(self) -> &'static str {
        match self {
            Self::Location => "locationId",
            _ => self.configuration_field(),
        }
    }

    /// The id a configuration's body gives this reference.
    pub fn id_in(self, body: &Value) -> Option<i64> {
        match self {
            Self::Location => body.get(self.member())?.as_i64(),
            _ => body.get(self.member())?.get("id")?.as_i64(),
        }
    }

    /// Sets the reference in a configuration's body.
    pub fn point_at(self, body: &mut serde_json::Map<String, Value>, id: i64) {
        let value = match self {
            Self::Location => json!(id),
            _ => json!({ "id": id }),
        };
        body.insert(self.member().into(), value);
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

/// The reference of a configuration's `body` that ConnectWise refused it for, read from
/// the refusal as data, whatever its shape: a detail's `field` naming the member
/// (`manufacturer`, `manufacturer/id`, `manufacturer.id`, `locationId`), or else a message
/// (a detail's or the whole refusal's) naming both the kind and the id the body holds
/// (`manufacturer 35 was not found`). Nothing when the refusal names no reference of the
/// body: the sync sends references by id alone, so a refused one is an id ConnectWise no
/// longer has (deleted or merged behind the cache), and resolving it again by name is
/// safe either way (a name still at that id resolves to it).
pub fn refused_reference(error: &ApiErrorBody, body: &Value) -> Option<(ReferenceKind, i64)> {
    let by_field = error.errors.iter().find_map(|detail| {
        let field = detail.field.as_deref()?;
        let member = field
            .split(['/', '.'])
            .find(|part| !part.is_empty())
            .unwrap_or(field);
        let kind = ReferenceKind::ALL.into_iter().find(|kind| {
            member.eq_ignore_ascii_case(kind.configuration_field())
                || member.eq_ignore_ascii_case(kind.member())
        })?;
        Some((kind, kind.id_in(body)?))
    });
    let messages = error
        .errors
        .iter()
        .filter_map(|detail| detail.message.as_deref())
        .chain([error.message.as_str()]);
    by_field.or_else(|| {
        messages
            .flat_map(|message| {
                ReferenceKind::ALL
                    .into_iter()
                    .filter_map(move |kind| named_in(message, kind, body))
            })
            .next()
    })
}

/// The kind's id in `body` when `message` names both the kind (as a word) and that id.
fn named_in(message: &str, kind: ReferenceKind, body: &Value) -> Option<(ReferenceKind, i64)> {
    let id = kind.id_in(body)?;
    let words: Vec<String> = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let names_kind = words
        .iter()
        .any(|w| w == kind.configuration_field() || w.eq_ignore_ascii_case(kind.member()));
    let names_id = words.iter().any(|w| w == &id.to_string());
    (names_kind && names_id).then_some((kind, id))
}

/// A configuration as ConnectWise answers it, with its location named: ConnectWise gives
/// a configuration's location as `locationId` alone, while matching, the trail and a
/// revert compare it by name, as `location.name` (`#id` for an id no name has). Only for
/// reading: a body written back carries `locationId` alone.
pub fn name_location(configuration: &mut Value, location_names: &HashMap<i64, String>) {
    let Some(id) = configuration.get("locationId").and_then(Value::as_i64) else {
        return;
    };
    let name = location_names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("#{id}"));
    if let Some(object) = configuration.as_object_mut() {
        object.insert("location".into(), json!({ "id": id, "name": name }));
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
        // Why a name's creation failed, by name key: a later spelling of the same name is
        // the same reference, so it fails with it and is never sent (a creation whose
        // answer was lost may well be saved, and a second POST would be refused).
        let mut refused: HashMap<String, String> = HashMap::new();
        for name in missing(&known) {
            if let Some(reason) = refused.get(&name_key(&name)) {
                outcome.failures.push(ReferenceFailure {
                    kind,
                    name,
                    reason: reason.clone(),
                });
                continue;
            }
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
                    refused.insert(name_key(&name), error.to_string());
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

/// The names of ConnectWise's locations by id, when `spec` compares a configuration's
/// location (which ConnectWise holds by id alone); none otherwise. Read whole, one
/// request for up to a thousand locations: a location made since the run's references
/// were listed is named too.
///
/// # Errors
/// ConnectWise fails.
pub async fn location_names(
    client: &ConnectWiseClient,
    spec: &MatchSpec,
) -> Result<HashMap<i64, String>, ConnectWiseError> {
    let compares_location = spec
        .targets()
        .iter()
        .any(|(_, target)| *target == Target::Field(LOCATION_NAME.into()));
    if !compares_location {
        return Ok(HashMap::new());
    }
    names_by_id(client, ReferenceKind::Location).await
}

/// Id → name (as [`name_key`] folds it) of every reference of `kind` ConnectWise has.
///
/// # Errors
/// ConnectWise fails.
pub async fn names_by_id(
    client: &ConnectWiseClient,
    kind: ReferenceKind,
) -> Result<HashMap<i64, String>, ConnectWiseError> {
    Ok(list_names(client, kind)
        .await?
        .into_iter()
        .map(|(name, id)| (id, name))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> ApiErrorBody {
        serde_json::from_str(text).unwrap()
    }

    /// ConnectWise publishes no shape for a refused reference; tenants word it apart.
    ///
    /// Breaking it looks like: a manufacturer deleted behind the cache healed only when
    /// the refusal names the member exactly as one tenant does, and every new asset of
    /// that manufacturer failing run after run elsewhere.
    #[test]
    fn a_refused_reference_is_read_whatever_the_refusal_s_shape() {
        let body =
            json!({"name": "PC", "type": {"id": 3}, "manufacturer": {"id": 35}, "locationId": 8});
        for (shape, expected) in [
            (
                r#"{"code":"InvalidObject","message":"configuration object is invalid","errors":[{"code":"InvalidField","message":"no record with id 35","resource":"configuration","field":"manufacturer"}]}"#,
                Some((ReferenceKind::Manufacturer, 35)),
            ),
            (
                r#"{"code":"InvalidObject","message":"configuration object is invalid","errors":[{"code":"InvalidReference","message":"manufacturer 35 was not found","resource":"configuration","field":"manufacturer/id"}]}"#,
                Some((ReferenceKind::Manufacturer, 35)),
            ),
            (
                r#"{"code":"InvalidObject","message":"invalid","errors":[{"code":"InvalidReference","message":"not found","field":"Manufacturer.Id"}]}"#,
                Some((ReferenceKind::Manufacturer, 35)),
            ),
            (
                r#"{"code":"InvalidObject","message":"invalid","errors":[{"code":"InvalidReference","message":"The manufacturer (35) was not found."}]}"#,
                Some((ReferenceKind::Manufacturer, 35)),
            ),
            (
                r#"{"code":"InvalidObject","message":"manufacturer 35 was not found","errors":null}"#,
                Some((ReferenceKind::Manufacturer, 35)),
            ),
            (
                r#"{"code":"InvalidObject","message":"invalid","errors":[{"code":"InvalidField","message":"no record with id 8","field":"locationId"}]}"#,
                Some((ReferenceKind::Location, 8)),
            ),
            (
                r#"{"code":"InvalidObject","message":"location 8 does not exist","errors":[]}"#,
                Some((ReferenceKind::Location, 8)),
            ),
            // A kind named without the body's id, or an id without its kind: not a
            // reference of this body.
            (
                r#"{"code":"InvalidObject","message":"manufacturer 36 was not found","errors":null}"#,
                None,
            ),
            (
                r#"{"code":"InvalidObject","message":"name cannot be longer than 35 characters","errors":null}"#,
                None,
            ),
            (
                r#"{"code":"InvalidObject","message":"invalid","errors":[{"code":"InvalidField","message":"too long","field":"serialNumber"}]}"#,
                None,
            ),
        ] {
            assert_eq!(
                refused_reference(&refusal(shape), &body),
                expected,
                "{shape}"
            );
        }
    }

    #[test]
    fn a_location_is_named_from_its_id_for_reading() {
        let names = HashMap::from([(4, name_key("Rotterdam"))]);
        let mut known = json!({"id": 1, "locationId": 4});
        name_location(&mut known, &names);
        assert_eq!(known["location"], json!({"id": 4, "name": "rotterdam"}));
        let mut unknown = json!({"id": 2, "locationId": 9});
        name_location(&mut unknown, &names);
        assert_eq!(unknown["location"]["name"], "#9");
        let mut none = json!({"id": 3});
        name_location(&mut none, &names);
        assert!(none.get("location").is_none());
    }
}
