//! A typed view over one `assetResources` item. The raw JSON is kept: the match action
//! addresses assets by user-given dotted paths as well.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field paths of everything the sync reads from an asset.
pub const ASSET_PATHS: &[&str] = &[
    "key",
    "url",
    "assetBasicInfo.name",
    "assetBasicInfo.type",
    "assetBasicInfo.mac",
    "assetBasicInfo.ipAddress",
    "assetBasicInfo.domain",
    "assetBasicInfo.userName",
    "assetBasicInfo.userDomain",
    "assetCustom.manufacturer",
    "assetCustom.model",
    "assetCustom.serialNumber",
    "assetCustom.stateName",
    "assetCustom.location",
    "assetCustom.warrantyDate",
    "assetCustom.fields.name",
    "assetCustom.fields.value",
    "operatingSystem.caption",
    "softwares.name",
    "softwares.version",
    "softwares.publisher",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Asset(pub Value);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

impl Asset {
    pub fn raw(&self) -> &Value {
        &self.0
    }

    /// Every value at a dotted path; arrays on the way are walked element by element
    /// (`softwares.name` gives each software's name).
    pub fn values_at(&self, path: &str) -> Vec<&Value> {
        let mut found = Vec::new();
        collect(&self.0, &path.split('.').collect::<Vec<_>>(), &mut found);
        found
    }

    /// The first non-blank text (or number) at a dotted path, trimmed.
    pub fn text(&self, path: &str) -> Option<String> {
        self.values_at(path)
            .into_iter()
            .find_map(|value| match value {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
    }

    pub fn key(&self) -> Option<String> {
        self.text("key")
    }
    pub fn url(&self) -> Option<String> {
        self.text("url")
    }
    pub fn name(&self) -> Option<String> {
        self.text("assetBasicInfo.name")
    }
    pub fn asset_type(&self) -> Option<String> {
        self.text("assetBasicInfo.type")
    }
    pub fn mac(&self) -> Option<String> {
        self.text("assetBasicInfo.mac")
    }
    pub fn ip_address(&self) -> Option<String> {
        self.text("assetBasicInfo.ipAddress")
    }
    pub fn manufacturer(&self) -> Option<String> {
        self.text("assetCustom.manufacturer")
    }
    pub fn model(&self) -> Option<String> {
        self.text("assetCustom.model")
    }
    pub fn serial_number(&self) -> Option<String> {
        self.text("assetCustom.serialNumber")
    }
    pub fn state(&self) -> Option<String> {
        self.text("assetCustom.stateName")
    }
    pub fn location(&self) -> Option<String> {
        self.text("assetCustom.location")
    }
    pub fn warranty_date(&self) -> Option<String> {
        self.text("assetCustom.warrantyDate")
    }
    pub fn domain(&self) -> Option<String> {
        self.text("assetBasicInfo.domain")
    }
    /// The last logged-on user: an account name or a user principal name.
    pub fn user_name(&self) -> Option<String> {
        self.text("assetBasicInfo.userName")
    }
    pub fn user_domain(&self) -> Option<String> {
        self.text("assetBasicInfo.userDomain")
    }
    /// The asset's Lansweeper custom fields, name → value (what a mapping rule reads).
    pub fn custom_fields(&self) -> Vec<(String, String)> {
        self.values_at("assetCustom.fields")
            .into_iter()
            .filter_map(|field| {
                let name = field.get("name")?.as_str()?;
                let value = field.get("value").and_then(Value::as_str).unwrap_or("");
                Some((name.to_string(), value.to_string()))
            })
            .collect()
    }
    pub fn os(&self) -> Option<String> {
        self.text("operatingSystem.caption")
    }

    pub fn software(&self) -> Vec<Software> {
        self.values_at("softwares")
            .into_iter()
            .filter_map(|entry| {
                let field = |name: &str| {
                    entry
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                Some(Software {
                    name: field("name")?,
                    version: field("version"),
                    publisher: field("publisher"),
                })
            })
            .collect()
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

/// Merges `other` into `target`, member by member (objects recursively); used to put
/// together one asset from requests that each asked for part of its paths.
pub(crate) fn merge(target: &mut Value, other: Value) {
    match (target, other) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(into), Value::Array(from)) if into.len() == from.len() => {
            for (existing, value) in into.iter_mut().zip(from) {
                merge(existing, value);
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_view_and_paths() {
        let asset = Asset(json!({
            "key": "k1",
            "assetBasicInfo": {"name": "  PC-1 ", "mac": "aa-bb-cc-dd-ee-ff"},
            "assetCustom": {"serialNumber": ""},
            "softwares": [
                {"name": "Office", "version": "16", "publisher": "Microsoft"},
                {"name": "7-Zip"},
                {"version": "no name"}
            ]
        }));
        assert_eq!(asset.name().as_deref(), Some("PC-1"));
        assert_eq!(asset.serial_number(), None, "blank is absent");
        assert_eq!(asset.model(), None);
        assert_eq!(asset.software().len(), 2);
        assert_eq!(asset.values_at("softwares.name").len(), 2);
        assert_eq!(asset.software()[1].publisher, None);
    }

    #[test]
    fn merge_joins_partial_items() {
        let mut a =
            json!({"key": "k", "assetBasicInfo": {"name": "n"}, "softwares": [{"name": "x"}]});
        merge(
            &mut a,
            json!({"key": "k", "assetBasicInfo": {"type": "Windows"}, "softwares": [{"version": "1"}]}),
        );
        assert_eq!(
            a,
            json!({"key": "k", "assetBasicInfo": {"name": "n", "type": "Windows"}, "softwares": [{"name": "x", "version": "1"}]})
        );
    }
}
