//! An operator's corrections: assets and configurations the sync must never write
//! (`lscw ignore`), kept in the store, and a configuration pinned to an asset by writing
//! its link (`lscw link`, `lscw unlink`), which ConnectWise then keeps for every run.
//! A link is two writes or more (the configuration's, then each other's cleared): under
//! the sync's lease, its plan stored before the first, so a link stopped between them
//! (the asset on two configurations) is finished by the next `lscw link` or `unlink`.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::epoch_seconds;
use crate::connectwise::linked::configurations_linked_to;
use crate::connectwise::{ConnectWiseClient, endpoint};
use crate::error::PipelineError;
use crate::matching::link_caption;
use crate::store::{Store, StoreExt};
use crate::{layout, lease};

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

/// A link `lscw link` writes: the asset's key on the configuration, cleared from the
/// others carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub asset_key: String,
    pub configuration_id: i64,
}

/// A link written, with the configurations its key was cleared from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub pin: Pin,
    pub cleared: Vec<i64>,
}

/// `lscw link` and `lscw unlink`: a stopped link first (from its stored plan), then
/// `pin` ([`link`]) or `unpin` ([`unlink`]), under the sync's lease. Answers the links
/// written (a stopped one first) and what `unpin` cleared.
///
/// # Errors
/// Another run holds the lease, the store fails, or ConnectWise refuses a write (the
/// plan stays: the next `lscw link` or `unlink` finishes it).
pub async fn pin<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    custom_field_ids: &HashMap<String, i64>,
    pin: Option<Pin>,
    unpin: Option<i64>,
) -> Result<(Vec<Pinned>, Option<String>), PipelineError> {
    let run_id = format!("link-{}-{:04x}", epoch_seconds(), fastrand::u16(..));
    if let Some(holder) = lease::acquire(store, &run_id).await? {
        return Err(PipelineError::Config(format!(
            "run {} holds the lease; link when it has ended",
            holder.run_id
        )));
    }
    let work = async {
        let stopped = store.get::<Option<Pin>>(layout::LINK_PLAN).await?.flatten();
        let mut pinned = Vec::new();
        let asked = pin.filter(|pin| stopped.as_ref() != Some(pin));
        for pin in stopped.into_iter().chain(asked) {
            store
                .put(layout::LINK_PLAN, &Some(&pin), layout::KEPT)
                .await?;
            let linked = link(
                connectwise,
                custom_field_ids,
                &pin.asset_key,
                pin.configuration_id,
            )
            .await;
            let cleared = match linked {
                Ok(cleared) => cleared,
                Err(error) => {
                    // Refused for what it asks (no such configuration, say): never to go
                    // through, so it is not kept to block every later link.
                    if !error.is_transient() {
                        store
                            .put(layout::LINK_PLAN, &None::<Pin>, layout::KEPT)
                            .await?;
                    }
                    return Err(error);
                }
            };
            store
                .put(layout::LINK_PLAN, &None::<Pin>, layout::KEPT)
                .await?;
            pinned.push(Pinned { pin, cleared });
        }
        let unpinned = match unpin {
            Some(id) => unlink(connectwise, custom_field_ids, id).await?,
            None => None,
        };
        Ok::<_, PipelineError>((pinned, unpinned))
    };
    lease::release_after(store, &run_id, work, |_| true).await
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
    // Written already (by a link stopped after this write, say): nothing to send again.
    let held = previous.as_deref().map(str::trim).filter(|v| !v.is_empty());
    if held.map(str::to_lowercase) == asset_key.map(str::to_lowercase) {
        return Ok(held.map(str::to_string));
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
