//! An operator's corrections: assets and configurations the sync must never write
//! (`lscw ignore`), kept in the store, and a configuration pinned to an asset by writing
//! its link (`lscw link`, `lscw unlink`), which ConnectWise then keeps for every run.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connectwise::linked::configurations_linked_to;
use crate::connectwise::{ConnectWiseClient, endpoint};
use crate::error::PipelineError;
use crate::layout;
use crate::matching::link_caption;
use crate::store::{Store, StoreExt};

/// What the sync keeps its hands off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    /// Asset keys, lower case.
    #[serde(default)]
    pub ignored_assets: BTreeSet<String>,
    #[serde(default)]
    pub ignored_configurations: BTreeSet<i64>,
}

impl Overrides {
    pub fn ignores_asset(&self, key: &str) -> bool {
        self.ignored_assets.contains(&key.to_lowercase())
    }

    pub fn ignores_configuration(&self, id: i64) -> bool {
        self.ignored_configurations.contains(&id)
    }
}

/// # Errors
/// The store cannot be read or holds something else.
pub async fn load<S: Store>(store: &S) -> Result<Overrides, PipelineError> {
    Ok(store.get(layout::OVERRIDES).await?.unwrap_or_default())
}

/// # Errors
/// The store cannot be written.
pub async fn save<S: Store>(store: &S, overrides: &Overrides) -> Result<(), PipelineError> {
    Ok(store
        .put(layout::OVERRIDES, overrides, layout::KEPT)
        .await?)
}

/// Makes `configuration_id` the configuration of `asset_key`: writes the asset's key in its
/// link field and clears the link of any other configuration carrying it. Answers the
/// configurations the link was cleared from.
///
/// # Errors
/// The configuration does not exist, or ConnectWise refuses a write.
pub async fn link(
    connectwise: &ConnectWiseClient,
    custom_field_ids: &HashMap<String, i64>,
    asset_key: &str,
    configuration_id: i64,
) -> Result<Vec<i64>, PipelineError> {
    let field = link_field(custom_field_ids)?;
    let carrying = configurations_linked_to(connectwise, &[asset_key.to_string()]).await?;
    let others: Vec<i64> = carrying
        .values()
        .flatten()
        .copied()
        .filter(|id| *id != configuration_id)
        .collect();
    set_link(connectwise, field, configuration_id, Some(asset_key)).await?;
    for other in &others {
        set_link(connectwise, field, *other, None).await?;
    }
    Ok(others)
}

/// Clears the link of `configuration_id`; answers the asset key it carried.
///
/// # Errors
/// The configuration does not exist, or ConnectWise refuses the write.
pub async fn unlink(
    connectwise: &ConnectWiseClient,
    custom_field_ids: &HashMap<String, i64>,
    configuration_id: i64,
) -> Result<Option<String>, PipelineError> {
    let field = link_field(custom_field_ids)?;
    set_link(connectwise, field, configuration_id, None).await
}

fn link_field(custom_field_ids: &HashMap<String, i64>) -> Result<i64, PipelineError> {
    custom_field_ids
        .get(&link_caption())
        .copied()
        .ok_or_else(|| {
            PipelineError::Config(format!(
                "ConnectWise has no custom field {} on configurations",
                link_caption()
            ))
        })
}

/// Writes (or clears) one configuration's link; every other custom field keeps its
/// value, as ConnectWise replaces the list whole. Answers the link it held before.
async fn set_link(
    connectwise: &ConnectWiseClient,
    field: i64,
    configuration_id: i64,
    asset_key: Option<&str>,
) -> Result<Option<String>, PipelineError> {
    let path = format!("{}/{configuration_id}", endpoint::CONFIGURATIONS);
    let current = connectwise.get(&path).await?;
    let mut previous = None;
    let mut fields: Vec<Value> = Vec::new();
    for custom in current
        .get("customFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(value)) = (
            custom.get("id").and_then(Value::as_i64),
            custom.get("value"),
        ) else {
            continue;
        };
        if id == field {
            previous = value.as_str().map(str::to_string);
        } else if !value.is_null() {
            fields.push(json!({"id": id, "value": value}));
        }
    }
    if let Some(key) = asset_key {
        fields.push(json!({"id": field, "value": key}));
    }
    connectwise
        .patch(
            &path,
            &json!([{"op": "replace", "path": "customFields", "value": fields}]),
        )
        .await?;
    Ok(previous)
}
