//! The simulated site's data and the rules `assetResources` applies to it: valid paths,
//! items shaped by the requested paths with empty values left out, filters, opaque
//! cursors.

use std::collections::HashMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Asset field paths the simulator knows, all names Lansweeper's Data API uses.
pub const VALID_PATHS: &[&str] = &[
    "key",
    "url",
    "assetBasicInfo.name",
    "assetBasicInfo.type",
    "assetBasicInfo.subType",
    "assetBasicInfo.domain",
    "assetBasicInfo.description",
    "assetBasicInfo.firstSeen",
    "assetBasicInfo.lastSeen",
    "assetBasicInfo.ipAddress",
    "assetBasicInfo.mac",
    "assetBasicInfo.userName",
    "assetBasicInfo.userDomain",
    "assetBasicInfo.fqdn",
    "assetCustom.manufacturer",
    "assetCustom.model",
    "assetCustom.serialNumber",
    "assetCustom.sku",
    "assetCustom.location",
    "assetCustom.department",
    "assetCustom.contact",
    "assetCustom.stateName",
    "assetCustom.purchaseDate",
    "assetCustom.warrantyDate",
    "assetCustom.lastPatched",
    "assetCustom.comment",
    "assetCustom.barCode",
    "assetCustom.orderNumber",
    "assetCustom.dnsName",
    "assetCustom.fields.fieldKey",
    "assetCustom.fields.name",
    "assetCustom.fields.value",
    "operatingSystem.caption",
    "operatingSystem.version",
    "operatingSystem.buildNumber",
    "softwares.name",
    "softwares.version",
    "softwares.publisher",
];

pub const MAX_PATHS: usize = 30;
pub const MAX_PAGE_SIZE: usize = 500;
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_FILTER_CONDITIONS: usize = 100;

/// A site-wide custom field definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    pub key: String,
    pub name: String,
    /// INPUT, TEXTAREA, SELECT, NUMERIC, DATE, TIME, CURRENCY, HYPERLINK
    #[serde(rename = "type")]
    pub field_type: String,
}

/// What `--data FILE` holds, and what the generator makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteData {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldDef>,
    /// Full assets, shaped like Lansweeper's asset type (`assetBasicInfo`, `assetCustom`, …).
    #[serde(default)]
    pub assets: Vec<Value>,
}

pub struct Site {
    pub data: SiteData,
    by_key: HashMap<String, usize>,
}

impl Site {
    pub fn new(data: SiteData) -> Result<Self, String> {
        let mut by_key = HashMap::new();
        for (index, asset) in data.assets.iter().enumerate() {
            let key = asset
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("asset #{index} has no key"))?;
            if by_key.insert(key.to_string(), index).is_some() {
                return Err(format!("asset key {key} appears twice"));
            }
        }
        Ok(Self { data, by_key })
    }

    pub fn asset_mut(&mut self, key: &str) -> Option<&mut Value> {
        let index = *self.by_key.get(key)?;
        self.data.assets.get_mut(index)
    }

    pub fn asset(&self, key: &str) -> Option<&Value> {
        self.data.assets.get(*self.by_key.get(key)?)
    }

    pub fn add_asset(&mut self, asset: Value) -> Result<(), String> {
        let key = asset
            .get("key")
            .and_then(Value::as_str)
            .ok_or("asset has no key")?
            .to_string();
        if self.by_key.contains_key(&key) {
            return Err(format!("asset key {key} exists"));
        }
        self.by_key.insert(key, self.data.assets.len());
        self.data.assets.push(asset);
        Ok(())
    }

    /// Adds an asset ahead of the others, as an estate changes while a client pages it:
    /// every later asset moves one place on, so a cursor handed out before names one
    /// asset earlier than it did (Lansweeper's pages then repeat an item across them).
    pub fn add_asset_first(&mut self, asset: Value) -> Result<(), String> {
        self.add_asset(asset)?;
        let added = self.data.assets.pop().ok_or("no asset added")?;
        self.data.assets.insert(0, added);
        for index in self.by_key.values_mut() {
            *index += 1;
        }
        let key = self.data.assets[0]["key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.by_key.insert(key, 0);
        Ok(())
    }
}

pub fn check_paths(paths: &[String]) -> Result<(), String> {
    if paths.is_empty() {
        return Err("fields: at least one path is required".into());
    }
    if paths.len() > MAX_PATHS {
        return Err(format!(
            "fields: at most {MAX_PATHS} paths per request, got {}",
            paths.len()
        ));
    }
    for path in paths {
        if !VALID_PATHS.contains(&path.as_str()) {
            return Err(format!("Invalid path: {path}"));
        }
    }
    Ok(())
}

/// The item for `asset` with only `paths`, empty values left out.
pub fn shape(asset: &Value, paths: &[String]) -> Value {
    let mut item = Map::new();
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        copy(asset, &segments, &mut item);
    }
    Value::Object(item)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn copy(source: &Value, path: &[&str], target: &mut Map<String, Value>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(value) = source.get(*first) else {
        return;
    };
    if rest.is_empty() {
        if !is_empty(value) {
            target.insert((*first).to_string(), value.clone());
        }
        return;
    }
    match value {
        Value::Object(_) => {
            let slot = target
                .entry((*first).to_string())
                .or_insert_with(|| json!({}));
            if let Some(child) = slot.as_object_mut() {
                copy(value, rest, child);
            }
            if slot.as_object().is_some_and(Map::is_empty) {
                target.remove(*first);
            }
        }
        Value::Array(elements) => {
            // Parts of one element requested by several paths land in the same object.
            let existing = target
                .remove(*first)
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_else(|| vec![json!({}); elements.len()]);
            let merged: Vec<Value> = elements
                .iter()
                .zip(existing)
                .map(|(element, mut slot)| {
                    if let Some(child) = slot.as_object_mut() {
                        copy(element, rest, child);
                    }
                    slot
                })
                .collect();
            if merged.iter().any(|m| !is_empty(m)) {
                target.insert((*first).to_string(), Value::Array(merged));
            }
        }
        _ => {}
    }
}

/// `filters`: `{conjunction, conditions:[{operator, path, value}], groups:[…]}`.
#[derive(Debug, Clone)]
pub struct FilterGroup {
    pub any: bool,
    pub conditions: Vec<FilterCondition>,
    pub groups: Vec<FilterGroup>,
}

#[derive(Debug, Clone)]
pub struct FilterCondition {
    pub operator: String,
    pub path: String,
    pub value: String,
}

impl FilterGroup {
    pub fn count(&self) -> usize {
        self.conditions.len() + self.groups.iter().map(FilterGroup::count).sum::<usize>()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.count() > MAX_FILTER_CONDITIONS {
            return Err(format!("at most {MAX_FILTER_CONDITIONS} filter conditions"));
        }
        for condition in &self.conditions {
            if !VALID_PATHS.contains(&condition.path.as_str()) {
                return Err(format!("Invalid path: {}", condition.path));
            }
            if condition.operator == "REGEXP" {
                return Err("the simulator does not evaluate REGEXP filters".into());
            }
        }
        self.groups.iter().try_for_each(FilterGroup::check)
    }

    pub fn matches(&self, asset: &Value) -> bool {
        let results = self
            .conditions
            .iter()
            .map(|c| c.matches(asset))
            .chain(self.groups.iter().map(|g| g.matches(asset)));
        let mut results = results.peekable();
        if results.peek().is_none() {
            return true;
        }
        if self.any {
            results.into_iter().any(|r| r)
        } else {
            results.into_iter().all(|r| r)
        }
    }
}

impl FilterCondition {
    fn matches(&self, asset: &Value) -> bool {
        let mut values = Vec::new();
        collect(
            asset,
            &self.path.split('.').collect::<Vec<_>>(),
            &mut values,
        );
        let texts: Vec<String> = values
            .iter()
            .filter(|v| !is_empty(v))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let wanted = self.value.to_lowercase();
        let compare = |text: &String| -> Option<std::cmp::Ordering> {
            match (text.parse::<f64>(), self.value.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(text.to_lowercase().cmp(&wanted)),
            }
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self.operator.as_str() {
            "EXISTS" => {
                let should_exist = wanted != "false";
                texts.is_empty() != should_exist
            }
            "EQUAL" => texts.iter().any(|t| t.to_lowercase() == wanted),
            "NOT_EQUAL" => texts.iter().all(|t| t.to_lowercase() != wanted),
            "LIKE" => texts.iter().any(|t| t.to_lowercase().contains(&wanted)),
            "GREATER_THAN" => texts.iter().any(|t| compare(t) == Some(Greater)),
            "GREATER_THAN_OR_EQUAL" => texts
                .iter()
                .any(|t| matches!(compare(t), Some(Greater | Equal))),
            "SMALLER_THAN" => texts.iter().any(|t| compare(t) == Some(Less)),
            "SMALLER_THAN_OR_EQUAL" => texts
                .iter()
                .any(|t| matches!(compare(t), Some(Less | Equal))),
            _ => false,
        }
    }
}

fn collect<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect(item, path, out)),
        _ if path.is_empty() => out.push(value),
        Value::Object(map) => {
            if let Some(child) = map.get(path[0]) {
                collect(child, &path[1..], out);
            }
        }
        _ => {}
    }
}

/// Cursors are opaque to clients: they name a position and the query they belong to.
pub fn encode_cursor(position: usize, fingerprint: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("sim:{position}:{fingerprint:x}"))
}

pub fn decode_cursor(cursor: &str, fingerprint: u64) -> Result<usize, String> {
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("invalid cursor")?;
    let mut parts = text.split(':');
    let (Some("sim"), Some(position), Some(print), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("invalid cursor".into());
    };
    if print != format!("{fingerprint:x}") {
        return Err("cursor does not belong to this query".into());
    }
    position.parse().map_err(|_| "invalid cursor".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_hold_only_requested_non_empty_paths() {
        let asset = json!({
            "key": "k", "url": "",
            "assetBasicInfo": {"name": "PC", "mac": null},
            "softwares": [{"name": "A", "version": "1"}, {"name": "B", "version": ""}]
        });
        let paths: Vec<String> = [
            "key",
            "url",
            "assetBasicInfo.name",
            "assetBasicInfo.mac",
            "softwares.name",
            "softwares.version",
            "assetCustom.model",
        ]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
        assert_eq!(
            shape(&asset, &paths),
            json!({"key": "k", "assetBasicInfo": {"name": "PC"}, "softwares": [{"name": "A", "version": "1"}, {"name": "B"}]})
        );
    }

    #[test]
    fn cursors_are_tied_to_their_query() {
        let cursor = encode_cursor(500, 42);
        assert_eq!(decode_cursor(&cursor, 42), Ok(500));
        assert!(decode_cursor(&cursor, 43).is_err());
        assert!(decode_cursor("garbage", 42).is_err());
    }
}
