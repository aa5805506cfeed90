//! What an enrichment learned of tickets and agreements, kept between runs so the next
//! reads only what changed: each record (the fields the enrichment uses) with the
//! configurations attached to it. A refresh reads the records updated since the newest
//! change it saw, with their `/configurations`, and notices deletions by a count; a full
//! read rebuilds everything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::client::ConnectWiseClient;
use super::condition::{Condition, Field};
use super::error::ConnectWiseError;
use super::query::{ListQuery, MAX_CONDITION_CHARS};

/// One ticket or agreement, as the enrichment remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub record: RecordText,
    /// The configurations attached (tickets and agreements; empty for configurations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<i64>,
    /// Its `lastUpdated` when read: a record read again unchanged costs nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

/// A record as read, held as its compact JSON text: parsed, a record is several times
/// the size of its text, and most known records are only compared and stored again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordText(Box<RawValue>);

impl RecordText {
    /// `None` only for text that is not JSON, which a [`Value`]'s own never is.
    pub fn of(record: &Value) -> Option<Self> {
        RawValue::from_string(record.to_string()).ok().map(Self)
    }

    /// The record, parsed (its text is JSON: it was made from one or checked when read).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl PartialEq for RecordText {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// Every known record of one kind (tickets or agreements), by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownRecords {
    pub records: BTreeMap<i64, Known>,
    /// What they were read for (the scopes' filters): another scope means a full read.
    pub scope: String,
    /// The newest `lastUpdated` seen: the next refresh reads from there.
    pub newest: Option<String>,
    /// Records read whose `/configurations` are not read yet (a refresh stopped at its
    /// deadline): the next refresh reads them before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Unattached>,
}

/// A record read, its `/configurations` still to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unattached {
    pub id: i64,
    pub record: RecordText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

impl KnownRecords {
    /// Every record read has its `/configurations` (no refresh stopped halfway).
    pub fn is_complete(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records by the configurations attached to them, each list by record id.
    pub fn by_configuration(&self) -> HashMap<i64, Vec<&RecordText>> {
        let mut by: HashMap<i64, Vec<&RecordText>> = HashMap::new();
        for known in self.records.values() {
            for configuration in &known.configurations {
                by.entry(*configuration).or_default().push(&known.record);
            }
        }
        by
    }
}

/// How a refresh went: requests are counted by the client's meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Everything was read again.
    Full,
    /// Only what changed: this many records read, deletions found by the count.
    Changes { changed: usize, deleted: usize },
    /// An earlier refresh stopped at its deadline: this many of its records' attachments
    /// were read now, nothing else.
    Resumed { attached: usize },
}

/// What to read of a kind of record.
pub struct Scope<'a> {
    pub path: &'a str,
    pub fields: &'a [&'a str],
    /// One query per part of the scope (conditions split under the URL limit).
    pub queries: Vec<ListQuery>,
    /// Whether each record's `/configurations` is read too.
    pub attachments: bool,
    /// Reduces a record to what is kept of it (e.g. one custom field of many), before it
    /// is compared with what is known and stored.
    pub keep: fn(&mut Value),
}

/// Keeps a record whole: [`Scope::keep`] when the fields asked for are all kept.
pub fn whole(_: &mut Value) {}

/// Brings `known` up to date: a full read when `full` is asked, when nothing is known
/// yet or when the scope changed; otherwise the records updated since the newest change
/// seen (a record read again unchanged costs nothing more), and a count that reveals
/// deletions. Each new or changed record's `/configurations` is read (one request each)
/// until `until`: what is left stays in [`KnownRecords::pending`], and the next refresh
/// goes on with it before reading anything else, so no deadline loses what was read.
///
/// # Errors
/// ConnectWise fails past its retries.
pub async fn refresh(
    connectwise: &ConnectWiseClient,
    scope: &Scope<'_>,
    known: &mut KnownRecords,
    full: bool,
    until: Option<Instant>,
) -> Result<Refresh, ConnectWiseError> {
    if !known.is_complete() {
        let attached = attach_pending(connectwise, scope, known, until).await?;
        return Ok(Refresh::Resumed { attached });
    }
    let key = scope_key(scope);
    let mut fields: Vec<&str> = scope.fields.to_vec();
    fields.push("_info/lastUpdated");
    let since = known.newest.clone().filter(|_| !full && known.scope == key);
    let Some(since) = since else {
        *known = KnownRecords {
            scope: key,
            ..KnownRecords::default()
        };
        let records = read(connectwise, scope, &fields, None).await?;
        queue(scope, records, known);
        attach_pending(connectwise, scope, known, until).await?;
        return Ok(Refresh::Full);
    };
    let changed_since = Field::new("lastUpdated")?.ge_datetime(&since)?;
    let records = read(connectwise, scope, &fields, Some(&changed_since)).await?;
    let changed = queue(scope, records, known);
    let mut count = 0;
    for query in &scope.queries {
        count += connectwise.count(scope.path, query).await?;
    }
    let mut deleted = 0;
    let pending_new = known
        .pending
        .iter()
        .filter(|p| !known.records.contains_key(&p.id))
        .count();
    if count != (known.records.len() + pending_new) as u64 {
        // Some were deleted (or appeared unseen): their ids settle which.
        let listed: HashSet<i64> = read(connectwise, scope, &["id"], None)
            .await?
            .iter()
            .map(|r| r.id)
            .collect();
        let before = known.records.len();
        known.records.retain(|id, _| listed.contains(id));
        known.pending.retain(|p| listed.contains(&p.id));
        deleted = before - known.records.len();
        let queued: HashSet<i64> = known.pending.iter().map(|p| p.id).collect();
        let unseen: Vec<i64> = listed
            .iter()
            .copied()
            .filter(|id| !known.records.contains_key(id) && !queued.contains(id))
            .collect();
        for condition in Field::new("id")?.is_in_chunks(unseen, MAX_CONDITION_CHARS) {
            let by_id = Scope {
                queries: vec![ListQuery::with_conditions(condition.as_str())],
                ..*scope
            };
            let records = read(connectwise, &by_id, &fields, None).await?;
            queue(scope, records, known);
        }
    }
    attach_pending(connectwise, scope, known, until).await?;
    Ok(Refresh::Changes { changed, deleted })
}

/// What [`KnownRecords::scope`] holds for `scope`: records known for another scope are
/// read again whole.
pub fn scope_key(scope: &Scope<'_>) -> String {
    let key: Vec<String> = scope
        .queries
        .iter()
        .map(|q| format!("{:?}", q.filter_params()))
        .collect();
    key.join("|")
}

/// A record as a refresh reads it.
struct Fresh {
    id: i64,
    /// Its `_info/lastUpdated`.
    updated: Option<String>,
    /// Without `_info`, reduced by the scope's [`Scope::keep`].
    record: RecordText,
}

impl Fresh {
    fn of(scope: &Scope<'_>, mut record: Value) -> Option<Self> {
        let id = record.get("id").and_then(Value::as_i64)?;
        let updated = record
            .get("_info")
            .and_then(|i| i.get("lastUpdated"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(object) = record.as_object_mut() {
            object.remove("_info");
        }
        (scope.keep)(&mut record);
        Some(Self {
            id,
            updated,
            record: RecordText::of(&record)?,
        })
    }
}

/// The records of every part of `scope` (narrowed by `extra`, when given), each made
/// compact as its page arrives.
async fn read(
    connectwise: &ConnectWiseClient,
    scope: &Scope<'_>,
    fields: &[&str],
    extra: Option<&Condition>,
) -> Result<Vec<Fresh>, ConnectWiseError> {
    let mut records = Vec::new();
    for query in &scope.queries {
        let mut query = query.clone().with_fields(fields);
        if let Some(extra) = extra {
            query.conditions = Some(match &query.conditions {
                Some(base) => Condition::raw(base.clone()).and(extra).to_string(),
                None => extra.to_string(),
            });
        }
        let page = connectwise
            .list_complete_as(scope.path, &query, |record| Fresh::of(scope, record))
            .await?;
        records.extend(page.into_iter().flatten());
    }
    Ok(records)
}

/// Puts the records in `known`: those new or changed since they were read wait in
/// [`KnownRecords::pending`] for their `/configurations` (when the scope has them);
/// answers how many were new or changed.
fn queue(scope: &Scope<'_>, records: Vec<Fresh>, known: &mut KnownRecords) -> usize {
    let mut changed = 0;
    for Fresh {
        id,
        updated,
        record,
    } in records
    {
        if updated > known.newest {
            known.newest.clone_from(&updated);
        }
        // Read again at the boundary second, unchanged: nothing more to read. (A change to
        // its configurations alone within the second of the last read waits for the next
        // change or the periodic full read.)
        if updated.is_some()
            && known
                .records
                .get(&id)
                .is_some_and(|k| k.updated == updated && k.record == record)
        {
            continue;
        }
        changed += 1;
        if scope.attachments {
            known.pending.retain(|p| p.id != id);
            known.pending.push(Unattached {
                id,
                record,
                updated,
            });
        } else {
            known.records.insert(
                id,
                Known {
                    record,
                    configurations: Vec::new(),
                    updated,
                },
            );
        }
    }
    changed
}

/// Attachments read between two looks at the clock: 8 requests in flight, a few seconds.
const ATTACH_CHUNK: usize = 64;

/// Reads the `/configurations` of the pending records (8 in flight) and moves them into
/// `known.records`, until none is left or `until` has passed; answers how many moved.
async fn attach_pending(
    connectwise: &ConnectWiseClient,
    scope: &Scope<'_>,
    known: &mut KnownRecords,
    until: Option<Instant>,
) -> Result<usize, ConnectWiseError> {
    let mut attached = 0;
    while !known.pending.is_empty() {
        // At least one chunk a call, so a deadline already past still makes progress.
        if attached > 0 && until.is_some_and(|until| Instant::now() >= until) {
            tracing::info!(
                path = scope.path,
                left = known.pending.len(),
                "attachments left for the next invocation"
            );
            break;
        }
        let take = known.pending.len().min(ATTACH_CHUNK);
        let chunk: Vec<Unattached> = known.pending.drain(..take).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for Unattached {
            id,
            record,
            updated,
        } in chunk.iter().cloned()
        {
            let client = connectwise.clone();
            let sub = format!("{}/{id}/configurations", scope.path);
            // The run id and step stay on whatever the task logs.
            tasks.spawn(
                async move {
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
                        .map(|_| (id, record, ids, updated))
                }
                .instrument(tracing::Span::current()),
            );
        }
        let mut done = Vec::with_capacity(take);
        while let Some(joined) = tasks.join_next().await {
            match joined.map_err(|e| ConnectWiseError::Decode(format!("task: {e}"))) {
                Ok(Ok(read)) => done.push(read),
                Ok(Err(error)) | Err(error) => {
                    // Nothing of the chunk is lost: it waits for the next refresh.
                    let read: HashSet<i64> = done.iter().map(|(id, ..)| *id).collect();
                    known
                        .pending
                        .extend(chunk.into_iter().filter(|p| !read.contains(&p.id)));
                    insert_attached(known, done);
                    return Err(error);
                }
            }
        }
        attached += done.len();
        insert_attached(known, done);
    }
    Ok(attached)
}

fn insert_attached(
    known: &mut KnownRecords,
    read: Vec<(i64, RecordText, Vec<i64>, Option<String>)>,
) {
    for (id, record, mut configurations, updated) in read {
        configurations.sort_unstable();
        known.records.insert(
            id,
            Known {
                record,
                configurations,
                updated,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::connectwise::linked::{keep_link_only, linked_asset_key};

    #[test]
    fn a_known_record_is_stored_as_the_json_it_was_and_read_back_equal() {
        let record = json!({"id": 7, "closedFlag": false, "status": {"id": 1, "name": "New"}});
        let known = Known {
            record: RecordText::of(&record).unwrap(),
            configurations: vec![3, 4],
            updated: Some("2026-11-01T00:00:00Z".into()),
        };
        let stored = serde_json::to_value(&known).unwrap();
        assert_eq!(stored["record"], record, "stored as an object, as before");
        let read: Known = serde_json::from_str(&stored.to_string()).unwrap();
        assert_eq!(read, known);
        assert_eq!(read.record.value(), record);
        let other = json!({"id": 7, "closedFlag": true, "status": {"id": 1, "name": "New"}});
        assert_ne!(read.record, RecordText::of(&other).unwrap());
    }

    #[test]
    fn a_configuration_keeps_only_its_link_of_its_custom_fields() {
        let mut configuration = json!({"id": 1, "company": {"id": 2}, "customFields": [
            {"id": 5, "caption": "ls_asset_id", "type": "Text", "value": "key-1"},
            {"id": 6, "caption": "ls_software", "type": "Text", "value": "a\nb\nc"},
            {"id": 9, "caption": "Warranty notes", "type": "Text", "value": "typed by hand"},
        ]});
        keep_link_only(&mut configuration);
        assert_eq!(
            configuration,
            json!({"id": 1, "company": {"id": 2}, "customFields": [
                {"caption": "ls_asset_id", "value": "key-1"},
            ]})
        );
        assert_eq!(linked_asset_key(&configuration).as_deref(), Some("key-1"));
    }
}
