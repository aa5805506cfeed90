//! The audit trail: what a run changed, field by field, before and after, kept for the
//! audit retention (`AUDIT_RETENTION_DAYS`) long after the run's own records expire, so
//! an operator can see it (`lscw report`) and take it back (`lscw revert`).
//!
//! A trail is one small record, an index in parts and its entries in parts, written by
//! the writers as they go (a part per batch): no item grows with the run, and no step
//! holds a run's trail whole. A long value (a software list) is kept as its
//! fingerprint: enough to tell whether a field still holds what the run wrote.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::layout;
use crate::store::{Store, StoreError, StoreExt};

/// Where a trail's writes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum System {
    /// The sync's writes: configurations.
    ConnectWise,
    /// The enrichment's writes: assets' custom fields.
    Lansweeper,
}

impl System {
    /// Where the system's trail sits within a run.
    pub fn key(self) -> &'static str {
        match self {
            Self::ConnectWise => "trail",
            Self::Lansweeper => "enrich/trail",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectWise => "ConnectWise",
            Self::Lansweeper => "Lansweeper",
        }
    }
}

/// What a write did to one configuration (or asset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Created,
    Modified,
    Retired,
    Reactivated,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Modified => "modified",
            Self::Retired => "retired",
            Self::Reactivated => "reactivated",
        }
    }
}

/// One field's value before and after the write; `None` is empty. A custom field is
/// named by its caption (`customFields.ls_asset_id`), a Lansweeper field by its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    /// The Lansweeper field key a custom field is written by (its name is `field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// What one run wrote to one configuration (or asset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailEntry {
    pub asset_key: String,
    pub name: String,
    /// The configuration written; for a creation, the id ConnectWise answered (unknown
    /// for one adopted after a lost answer that several configurations claim: found by
    /// its link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_id: Option<i64>,
    /// An enriched asset's page in Lansweeper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The Lansweeper site of an enriched asset (empty: the connection's own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
}

/// A run's trail as stored: its entries' parts, and what it was a trail of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailRecord {
    pub run_id: String,
    pub system: System,
    /// The run this one reverted, when it was a revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    pub entries: u64,
    /// The entries' parts, when saved at once ([`save`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// The parts of the index of the entries' parts, when the writers saved them as they
    /// went ([`save_index`]): the index is a list as long as the run's batches, so it is
    /// in parts too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index: Vec<String>,
    /// When it was recorded (epoch seconds).
    pub recorded_at: u64,
}

/// A run's trail, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trail {
    pub run_id: String,
    pub system: System,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    pub recorded_at: u64,
    pub entries: Vec<TrailEntry>,
}

/// Stores the trail of `run_id`'s writes to `system` for `ttl`, replacing any recorded
/// before (recording again after a retried step gives the same trail).
///
/// # Errors
/// The store fails.
pub async fn save<S: Store>(
    store: &S,
    run_id: &str,
    system: System,
    reverts: Option<&str>,
    entries: &[TrailEntry],
    ttl: Duration,
) -> Result<TrailRecord, StoreError> {
    let key = layout::trail(run_id, system.key());
    let record = TrailRecord {
        run_id: run_id.to_string(),
        system,
        reverts: reverts.map(str::to_string),
        entries: entries.len() as u64,
        parts: put_entries(store, &format!("{key}/part"), entries, ttl).await?,
        index: Vec::new(),
        recorded_at: clock::epoch_seconds(),
    };
    store.put(&key, &record, ttl).await?;
    Ok(record)
}

/// Stores a writer's entries (one batch's) in parts under `prefix`, long values as
/// their fingerprints; answers the parts' keys, for the run's index.
///
/// # Errors
/// The store fails.
pub async fn put_entries<S: Store>(
    store: &S,
    prefix: &str,
    entries: &[TrailEntry],
    ttl: Duration,
) -> Result<Vec<String>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let kept: Vec<TrailEntry> = entries.iter().cloned().map(TrailEntry::kept).collect();
    store.put_parts(prefix, &kept, ttl).await
}

/// Records the trail of `run_id`'s writes to `system` from the parts its writers stored
/// ([`put_entries`]): the parts' keys in an index of parts, and the record naming it.
/// Replaces any recorded before (recording again gives the same trail).
///
/// # Errors
/// The store fails.
pub async fn save_index<S: Store>(
    store: &S,
    run_id: &str,
    system: System,
    reverts: Option<&str>,
    entries: u64,
    parts: &[String],
    ttl: Duration,
) -> Result<TrailRecord, StoreError> {
    let key = layout::trail(run_id, system.key());
    let record = TrailRecord {
        run_id: run_id.to_string(),
        system,
        reverts: reverts.map(str::to_string),
        entries,
        parts: Vec::new(),
        index: store.put_parts(&format!("{key}/index"), parts, ttl).await?,
        recorded_at: clock::epoch_seconds(),
    };
    store.put(&key, &record, ttl).await?;
    Ok(record)
}

impl TrailEntry {
    /// The entry as the trail keeps it: a value longer than matching keeps as its
    /// fingerprint (case counts: the revert compares it so).
    #[must_use]
    pub fn kept(mut self) -> Self {
        for change in &mut self.fields {
            change.before = change.before.take().map(kept);
            change.after = change.after.take().map(kept);
        }
        self
    }
}

/// A value as the trail keeps it: whole, or its fingerprint when longer than matching
/// keeps ([`crate::matching::LONG_VALUE`]): a software list is kilobytes, a run writes
/// thousands, and the revert only asks whether a field still holds what the run wrote.
pub fn kept(value: String) -> String {
    if !crate::matching::is_fingerprint(&value)
        && value.chars().count() > crate::matching::LONG_VALUE
    {
        crate::matching::fingerprint(&value, true)
    } else {
        value
    }
}

/// The trail of `run_id`'s writes to `system`, when one is kept.
///
/// # Errors
/// The store fails, or a part of the trail expired before its record.
pub async fn load<S: Store>(
    store: &S,
    run_id: &str,
    system: System,
) -> Result<Option<Trail>, StoreError> {
    let Some(record) = store
        .get::<TrailRecord>(&layout::trail(run_id, system.key()))
        .await?
    else {
        return Ok(None);
    };
    let mut parts = record.parts;
    parts.extend(store.get_parts::<String>(&record.index).await?);
    Ok(Some(Trail {
        entries: store.get_parts(&parts).await?,
        run_id: record.run_id,
        system: record.system,
        reverts: record.reverts,
        recorded_at: record.recorded_at,
    }))
}

/// Whether a run's writes were reverted, and by which run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevertMark {
    pub revert_run_id: String,
    /// Every write of the revert is done: reverting again writes nothing.
    pub finished: bool,
}

/// The revert of `run_id`'s writes to `system`, when one started.
///
/// # Errors
/// The store fails.
pub async fn revert_mark<S: Store>(
    store: &S,
    run_id: &str,
    system: System,
) -> Result<Option<RevertMark>, StoreError> {
    store
        .get(&layout::trail_reverted(run_id, system.key()))
        .await
}

/// Records where the revert of `run_id`'s writes to `system` stands.
///
/// # Errors
/// The store fails.
pub async fn mark_reverted<S: Store>(
    store: &S,
    run_id: &str,
    system: System,
    mark: &RevertMark,
    ttl: Duration,
) -> Result<(), StoreError> {
    store
        .put(&layout::trail_reverted(run_id, system.key()), mark, ttl)
        .await
}

/// A value as a trail shows it: a fingerprint (what the trail keeps of a long text) as
/// the length it stands for.
pub fn shown(value: Option<&str>) -> String {
    match value {
        None => "(empty)".into(),
        Some(text) if crate::matching::is_fingerprint(text) => {
            let length = text
                .trim_start_matches('\u{1}')
                .split(',')
                .next()
                .unwrap_or_default();
            format!("(long value, not kept: {length})")
        }
        Some(text) => {
            // One line of it: a software list is many.
            let line = text.lines().next().unwrap_or_default();
            let mut short: String = line.chars().take(SHOWN_MAX).collect();
            if short.len() < text.trim_end().len() {
                short.push('…');
            }
            format!("`{short}`")
        }
    }
}

/// The longest value a printed trail shows whole.
const SHOWN_MAX: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn entry(i: usize) -> TrailEntry {
        TrailEntry {
            asset_key: format!("asset-{i}"),
            name: format!("PC-{i}"),
            configuration_id: Some(i as i64),
            url: None,
            site: String::new(),
            action: Action::Modified,
            fields: vec![FieldChange {
                field: "type.name".into(),
                key: None,
                before: Some("Windows".into()),
                after: Some("Linux".into()),
            }],
        }
    }

    /// Breaking it looks like: a trail read back differs from what was saved, or a
    /// revert of a run that wrote nothing finds no trail and fails.
    #[tokio::test]
    async fn a_trail_reads_back_as_saved_and_an_empty_one_is_kept_too() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        let entries: Vec<TrailEntry> = (0..3).map(entry).collect();
        save(&store, "run-1", System::ConnectWise, None, &entries, ttl)
            .await
            .unwrap();
        let back = load(&store, "run-1", System::ConnectWise)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.entries, entries);
        assert!(
            load(&store, "run-1", System::Lansweeper)
                .await
                .unwrap()
                .is_none(),
            "the enrichment's trail is another"
        );
        save(
            &store,
            "run-2",
            System::ConnectWise,
            Some("run-1"),
            &[],
            ttl,
        )
        .await
        .unwrap();
        let empty = load(&store, "run-2", System::ConnectWise)
            .await
            .unwrap()
            .unwrap();
        assert!(empty.entries.is_empty());
        assert_eq!(empty.reverts.as_deref(), Some("run-1"));
    }

    #[test]
    fn a_fingerprint_is_shown_as_what_it_stands_for() {
        let long = crate::matching::fingerprint(&"x".repeat(300), false);
        assert_eq!(shown(Some(&long)).chars().next(), Some('('));
        assert_eq!(shown(Some(&long)), "(long value, not kept: 300 characters)");
        assert_eq!(shown(None), "(empty)");
        assert_eq!(shown(Some("Linux")), "`Linux`");
        assert_eq!(
            shown(Some("7-Zip\nOffice")),
            "`7-Zip…`",
            "one line of a list"
        );
    }
}
