//! The ConnectWise custom fields the sync writes on configurations, by caption, and the
//! check that the ids it writes to are those fields. An id is what a write names: a
//! wrong one in `CW_CUSTOM_FIELD_IDS` would overwrite another custom field on every
//! configuration, so ids are checked against ConnectWise's captions and types before
//! the run writes anything.

use std::collections::HashMap;

use serde_json::Value;

use crate::connectwise::{ConnectWiseClient, ListQuery, endpoint, same_caption};
use crate::error::PipelineError;
use crate::settings::SyncSettings;

/// Caption → the ConnectWise types the field may have.
pub const FIELDS: &[(&str, &[&str])] = &[
    ("ls_asset_id", &["Text"]),
    ("ls_asset_url", &["Text", "Hyperlink"]),
    ("ls_software", &["TextArea", "Text"]),
    ("ls_asset_location", &["Text", "TextArea"]),
];

/// What was found, and made, of the sync's custom fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Caption → the id to write it to.
    pub ids: HashMap<String, i64>,
    /// Captions created now, on the configurations screen.
    pub created: Vec<String>,
}

/// The ids to write each field to: `CW_CUSTOM_FIELD_IDS` checked against ConnectWise, or,
/// when nothing is configured, found by caption — and made when missing if
/// `CW_CREATE_CUSTOM_FIELDS` says so.
///
/// # Errors
/// A field missing, of another type, or an id that is not the field it claims.
pub async fn resolve(
    connectwise: &ConnectWiseClient,
    settings: &SyncSettings,
) -> Result<HashMap<String, i64>, PipelineError> {
    Ok(
        find_or_create(connectwise, settings, settings.create_custom_fields)
            .await?
            .ids,
    )
}

/// A custom field of the configurations screen: id, caption, type.
type Defined = (i64, String, String);

/// As [`resolve`], creating the fields ConnectWise lacks when `create` (never changing
/// or reusing a field of another type), and saying what it made.
///
/// # Errors
/// As [`resolve`]; a creation ConnectWise refuses.
pub async fn find_or_create(
    connectwise: &ConnectWiseClient,
    settings: &SyncSettings,
    create: bool,
) -> Result<Found, PipelineError> {
    let configured = &settings.custom_field_ids;
    let (mut defined, pod) = defined_fields(connectwise, settings).await?;
    let Some(defined_list) = defined.as_mut() else {
        // No configuration and no screen named: the configured ids cannot be checked.
        if configured.is_empty() {
            return Err(PipelineError::Config(
                "ConnectWise has no configuration to read the custom fields' ids from: set CW_CONFIGURATION_POD_ID (the configurations screen's podId; `lscw doctor` lists the screens that have custom fields) or CW_CUSTOM_FIELD_IDS (ls_asset_id=ID,ls_asset_url=ID,ls_software=ID,ls_asset_location=ID)".into(),
            ));
        }
        tracing::warn!("no configuration yet: CW_CUSTOM_FIELD_IDS taken unchecked");
        return Ok(Found {
            ids: check_complete(configured)?,
            created: Vec::new(),
        });
    };
    let mut found = Found::default();
    for (caption, types) in FIELDS {
        let existing = match configured.get(*caption) {
            Some(id) => Some(defined_list.iter().find(|(defined_id, ..)| defined_id == id).ok_or_else(|| {
                PipelineError::Config(format!(
                    "CW_CUSTOM_FIELD_IDS: {caption}={id}, but ConnectWise's configurations have no custom field {id}; nothing was written"
                ))
            })?.clone()),
            None if configured.is_empty() => defined_list
                .iter()
                .find(|(_, defined_caption, _)| same_caption(defined_caption, caption))
                .cloned(),
            None => {
                return Err(PipelineError::Config(format!(
                    "CW_CUSTOM_FIELD_IDS names no id for {caption}"
                )));
            }
        };
        let (id, defined_caption, field_type) = match existing {
            Some(existing) => existing,
            None if create => {
                let made = create_field(
                    connectwise,
                    configurations_pod(connectwise, pod).await?,
                    caption,
                    types[0],
                    defined_list.len(),
                )
                .await?;
                found.created.push((*caption).to_string());
                defined_list.push(made.clone());
                made
            }
            None => {
                return Err(PipelineError::Config(format!(
                    "custom field {caption} not found on ConnectWise configurations: `lscw doctor --fix` creates it (or set CW_CREATE_CUSTOM_FIELDS=true), or set CW_CUSTOM_FIELD_IDS"
                )));
            }
        };
        if !same_caption(&defined_caption, caption) {
            return Err(PipelineError::Config(format!(
                "CW_CUSTOM_FIELD_IDS: {caption}={id}, but ConnectWise's custom field {id} is `{defined_caption}`; nothing was written"
            )));
        }
        if !types.contains(&field_type.as_str()) {
            return Err(PipelineError::Config(format!(
                "custom field {caption} ({id}) is of type {field_type}; the sync writes it as {} (it is neither changed nor reused: rename it, or name another in CW_CUSTOM_FIELD_IDS)",
                types.join(" or ")
            )));
        }
        found.ids.insert((*caption).to_string(), id);
    }
    Ok(found)
}

/// The configurations screen's pod, or why it is unknown.
async fn configurations_pod(
    connectwise: &ConnectWiseClient,
    pod: Pod,
) -> Result<i64, PipelineError> {
    let found = match pod {
        Pod::Named(pod) => Some(pod),
        Pod::OfField(id) => definitions(connectwise, &format!("id={id}"))
            .await?
            .first()
            .and_then(|d| d.get("podId")?.as_i64()),
        Pod::Unknown => None,
    };
    found.ok_or_else(|| {
        PipelineError::Config(
            "cannot tell which custom field screen is the configurations': set CW_CONFIGURATION_POD_ID (`lscw doctor` lists the screens that have custom fields)".into(),
        )
    })
}

/// The configurations screen's custom fields (from a configuration, which shows them
/// all, else from the definitions of the screen named in settings), and that screen's
/// pod when known. `None` when neither a configuration nor a pod is there to read.
async fn defined_fields(
    connectwise: &ConnectWiseClient,
    settings: &SyncSettings,
) -> Result<(Option<Vec<Defined>>, Pod), PipelineError> {
    let sample = connectwise
        .list(
            endpoint::CONFIGURATIONS,
            &ListQuery {
                page_size: Some(1),
                fields: Some("customFields".into()),
                ..ListQuery::default()
            },
        )
        .await?;
    if let Some(configuration) = sample.first() {
        let defined: Vec<Defined> = configuration
            .get("customFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f.get("id")?.as_i64()?,
                    f.get("caption")?.as_str()?.to_string(),
                    f.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ))
            })
            .collect();
        let pod = match (settings.configuration_pod_id, defined.first()) {
            (Some(pod), _) => Pod::Named(pod),
            (None, Some((id, ..))) => Pod::OfField(*id),
            (None, None) => Pod::Unknown,
        };
        return Ok((Some(defined), pod));
    }
    let Some(pod) = settings.configuration_pod_id else {
        return Ok((None, Pod::Unknown));
    };
    let defined = definitions(connectwise, &format!("podId={pod}"))
        .await?
        .iter()
        .filter_map(|d| {
            Some((
                d.get("id")?.as_i64()?,
                d.get("caption")?.as_str()?.to_string(),
                d.get("fieldTypeIdentifier")?.as_str()?.to_string(),
            ))
        })
        .collect();
    Ok((Some(defined), Pod::Named(pod)))
}

/// Where the configurations screen's pod comes from: looked up only when a field is to
/// be created, so a run that creates nothing pays no request for it.
#[derive(Debug, Clone, Copy)]
enum Pod {
    /// `CW_CONFIGURATION_POD_ID`.
    Named(i64),
    /// The screen of this field, which configurations show.
    OfField(i64),
    Unknown,
}

/// Custom field definitions matching `conditions`, every screen's.
///
/// # Errors
/// ConnectWise fails.
pub async fn definitions(
    connectwise: &ConnectWiseClient,
    conditions: &str,
) -> Result<Vec<Value>, PipelineError> {
    Ok(connectwise
        .list(
            endpoint::USER_DEFINED_FIELDS,
            &ListQuery::with_conditions(conditions).with_fields(&[
                "id",
                "podId",
                "caption",
                "fieldTypeIdentifier",
            ]),
        )
        .await?)
}

/// Creates one of the sync's fields on the configurations screen, after the `existing`
/// ones. Not sent twice: a second field of one caption is refused as existing.
async fn create_field(
    connectwise: &ConnectWiseClient,
    pod: i64,
    caption: &str,
    field_type: &str,
    existing: usize,
) -> Result<Defined, PipelineError> {
    let body = serde_json::json!({
        "podId": pod,
        "caption": caption,
        "sequenceNumber": existing + 1,
        "fieldTypeIdentifier": field_type,
        "entryTypeIdentifier": "EntryField",
        "displayOnScreenFlag": true,
    });
    let created = connectwise
        .post(endpoint::USER_DEFINED_FIELDS, &body)
        .await?;
    let id = created.get("id").and_then(Value::as_i64).ok_or_else(|| {
        PipelineError::Config(format!("ConnectWise made {caption} without an id"))
    })?;
    tracing::info!(caption, id, pod, "custom field created");
    Ok((id, caption.to_string(), field_type.to_string()))
}

fn check_complete(
    configured: &HashMap<String, i64>,
) -> Result<HashMap<String, i64>, PipelineError> {
    for (caption, _) in FIELDS {
        if !configured.contains_key(*caption) {
            return Err(PipelineError::Config(format!(
                "CW_CUSTOM_FIELD_IDS names no id for {caption}"
            )));
        }
    }
    Ok(configured.clone())
}
