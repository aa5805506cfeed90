//! The ConnectWise custom fields the sync writes on configurations, by caption, and the
//! check that the ids it writes to are those fields. An id is what a write names: a
//! wrong one in `CW_CUSTOM_FIELD_IDS` would overwrite another custom field on every
//! configuration, so ids are checked against ConnectWise's captions and types before
//! the run writes anything.

use std::collections::HashMap;

use serde_json::Value;

use crate::connectwise::{ConnectWiseClient, ListQuery, endpoint, same_caption};
use crate::error::PipelineError;

/// Caption → the ConnectWise types the field may have.
pub const FIELDS: &[(&str, &[&str])] = &[
    ("ls_asset_id", &["Text"]),
    ("ls_asset_url", &["Text", "Hyperlink"]),
    ("ls_software", &["TextArea", "Text"]),
    ("ls_asset_location", &["Text", "TextArea"]),
];

/// The ids to write each field to: `configured` (caption → id, from
/// `CW_CUSTOM_FIELD_IDS`) checked against ConnectWise, or, when nothing is configured,
/// found by caption.
pub async fn resolve(
    connectwise: &ConnectWiseClient,
    configured: &HashMap<String, i64>,
) -> Result<HashMap<String, i64>, PipelineError> {
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
    let defined: Vec<(i64, String, String)> = sample
        .first()
        .and_then(|c| c.get("customFields"))
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
    if sample.is_empty() {
        if configured.is_empty() {
            return Err(PipelineError::Config(
                "ConnectWise has no configuration to read the custom fields' ids from; set CW_CUSTOM_FIELD_IDS (ls_asset_id=ID,ls_asset_url=ID,ls_software=ID,ls_asset_location=ID)".into(),
            ));
        }
        tracing::warn!("no configuration yet: CW_CUSTOM_FIELD_IDS taken unchecked");
        return check_complete(configured);
    }
    let mut ids = HashMap::new();
    for (caption, types) in FIELDS {
        let found = match configured.get(*caption) {
            Some(id) => defined.iter().find(|(defined_id, ..)| defined_id == id).ok_or_else(|| {
                PipelineError::Config(format!(
                    "CW_CUSTOM_FIELD_IDS: {caption}={id}, but ConnectWise's configurations have no custom field {id}; nothing was written"
                ))
            })?,
            None if configured.is_empty() => defined
                .iter()
                .find(|(_, defined_caption, _)| same_caption(defined_caption, caption))
                .ok_or_else(|| {
                    PipelineError::Config(format!(
                        "custom field {caption} not found on ConnectWise configurations; create it or set CW_CUSTOM_FIELD_IDS"
                    ))
                })?,
            None => {
                return Err(PipelineError::Config(format!(
                    "CW_CUSTOM_FIELD_IDS names no id for {caption}"
                )));
            }
        };
        let (id, defined_caption, field_type) = found;
        if !same_caption(defined_caption, caption) {
            return Err(PipelineError::Config(format!(
                "CW_CUSTOM_FIELD_IDS: {caption}={id}, but ConnectWise's custom field {id} is `{defined_caption}`; nothing was written"
            )));
        }
        if !types.contains(&field_type.as_str()) {
            return Err(PipelineError::Config(format!(
                "custom field {caption} ({id}) is of type {field_type}; the sync writes it as {}",
                types.join(" or ")
            )));
        }
        ids.insert((*caption).to_string(), *id);
    }
    Ok(ids)
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
