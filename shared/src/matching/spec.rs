//! What matching reads and compares: the match action's inputs (which asset paths hold
//! the keys, which fields are compared), and how a value is read off an asset.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectwise::custom_field;
use crate::normalize;

/// The match action's inputs that say how to read assets and what to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchSpec {
    #[serde(default = "yes")]
    pub case_sensitive_match: bool,
    #[serde(default)]
    pub configuration_name_path: Option<String>,
    #[serde(default)]
    pub serial_number_path: Option<String>,
    #[serde(default)]
    pub mac_address_path: Option<String>,
    #[serde(default)]
    pub model_number_path: Option<String>,
    #[serde(default)]
    pub ip_address_path: Option<String>,
    /// Asset path → ConnectWise path (`type.name`, `warrantyExpirationDate`, …).
    #[serde(default, deserialize_with = "pairs")]
    pub additional_field_mappings: Vec<(String, String)>,
    /// Asset path → custom field caption.
    #[serde(default, deserialize_with = "pairs")]
    pub custom_field_mappings: Vec<(String, String)>,
    /// The caption of the custom field that links a configuration to its asset.
    #[serde(default = "link_caption")]
    pub link_caption: String,
}

/// Mappings as the spec writes them: an object (`{"a.b": "warrantyDetails"}`), a list of
/// one-entry objects (`[{"asset.general.key": "ls_asset_id"}]`) or a list of pairs.
fn pairs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    use serde::de::Error;
    let value = Value::deserialize(d)?;
    let mut out = Vec::new();
    fn take_object<E: serde::de::Error>(
        object: &serde_json::Map<String, Value>,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), E> {
        for (key, target) in object {
            let target = target
                .as_str()
                .ok_or_else(|| E::custom(format!("mapping of `{key}` must be a string")))?;
            out.push((key.clone(), target.to_string()));
        }
        Ok(())
    }
    match &value {
        Value::Null => {}
        Value::Object(object) => take_object::<D::Error>(object, &mut out)?,
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(object) => take_object::<D::Error>(object, &mut out)?,
                    Value::Array(pair) if pair.len() == 2 => {
                        let (Some(a), Some(b)) = (pair[0].as_str(), pair[1].as_str()) else {
                            return Err(D::Error::custom("a mapping pair holds two strings"));
                        };
                        out.push((a.to_string(), b.to_string()));
                    }
                    _ => return Err(D::Error::custom("a mapping is an object or a pair")),
                }
            }
        }
        _ => return Err(D::Error::custom("mappings are an object or a list")),
    }
    Ok(out)
}

fn yes() -> bool {
    true
}

/// Where an asset holds the id of the contact its user is, once match has found it.
pub const CONTACT_PATH: &str = "contactId";

pub fn link_caption() -> String {
    "ls_asset_id".into()
}

impl MatchSpec {
    /// How the pipeline reads its own staged assets (see [`crate::staging::StagedAsset`]).
    pub fn for_staged_assets() -> Self {
        let pairs = |items: &[(&str, &str)]| {
            items
                .iter()
                .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
                .collect()
        };
        Self {
            case_sensitive_match: false,
            configuration_name_path: Some("name".into()),
            serial_number_path: Some("serialNumber".into()),
            mac_address_path: Some("macAddress".into()),
            model_number_path: Some("model".into()),
            ip_address_path: Some("ipAddress".into()),
            additional_field_mappings: pairs(&[
                ("type", "type.name"),
                ("state", "status.name"),
                ("manufacturer", "manufacturer.name"),
                ("location", LOCATION_NAME),
                ("warrantyDate", "warrantyExpirationDate"),
                ("osInfo", "osInfo"),
                // Not staged: match finds it from the asset's user and the company's
                // contacts (`crate::contacts`) before it compares.
                (CONTACT_PATH, "contact.id"),
            ]),
            custom_field_mappings: pairs(&[
                ("key", "ls_asset_id"),
                ("url", "ls_asset_url"),
                ("software", "ls_software"),
                ("location", "ls_asset_location"),
            ]),
            link_caption: link_caption(),
        }
    }

    /// Every (asset path, target) pair the spec maps.
    pub fn targets(&self) -> Vec<(&str, Target)> {
        let mut targets = Vec::new();
        let fixed = [
            (&self.configuration_name_path, "name"),
            (&self.serial_number_path, "serialNumber"),
            (&self.mac_address_path, "macAddress"),
            (&self.model_number_path, "modelNumber"),
            (&self.ip_address_path, "ipAddress"),
        ];
        for (path, field) in fixed {
            if let Some(path) = path {
                targets.push((path.as_str(), Target::Field(field.to_string())));
            }
        }
        for (path, field) in &self.additional_field_mappings {
            targets.push((path.as_str(), Target::Field(field.clone())));
        }
        for (path, caption) in &self.custom_field_mappings {
            targets.push((path.as_str(), Target::Custom(caption.clone())));
        }
        targets
    }

    pub(super) fn link_path(&self) -> Option<&str> {
        self.custom_field_mappings
            .iter()
            .find(|(_, caption)| *caption == self.link_caption)
            .map(|(path, _)| path.as_str())
    }

    /// The `fields` parameter that reads only what matching needs.
    pub fn configuration_fields(&self) -> String {
        let mut fields = vec![
            "id".to_string(),
            "name".into(),
            "serialNumber".into(),
            "macAddress".into(),
        ];
        for (_, target) in self.targets() {
            let field = match target {
                // Read as ConnectWise holds it: by id (named again by the reader).
                Target::Field(path) if path == LOCATION_NAME => "locationId".into(),
                Target::Field(path) => path.replace('.', "/"),
                Target::Custom(_) => "customFields".into(),
            };
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        if !fields.iter().any(|f| f == "customFields") {
            fields.push("customFields".into());
        }
        fields.join(",")
    }
}

/// The location as matching compares it, by name: ConnectWise holds it as `locationId`,
/// named by [`crate::references::name_location`] when read.
pub const LOCATION_NAME: &str = "location.name";

/// Where a value goes in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// A dotted path: `serialNumber`, `type.name`.
    Field(String),
    /// A custom field, by caption.
    Custom(String),
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::Field(path) => path.clone(),
            Target::Custom(caption) => format!("customFields.{caption}"),
        }
    }

    /// The value a configuration holds for this target, as text.
    pub fn current(&self, configuration: &Value) -> Option<String> {
        let value = match self {
            Target::Field(path) => path
                .split('.')
                .try_fold(configuration, |v, key| v.get(key))?,
            Target::Custom(caption) => custom_field(configuration, caption)?.get("value")?,
        };
        as_text(value)
    }

    /// Whether a configuration holding `now` still holds `value`, as this target compares
    /// them: empty is none, and a value kept as its fingerprint (a long one, taken with
    /// or without case) is the same as a text with that fingerprint.
    pub fn holds(&self, now: Option<&str>, value: Option<&str>) -> bool {
        let empty = |v: Option<&str>| v.is_none_or(|v| v.trim().is_empty());
        match (now, value) {
            (_, None) | (None, _) => empty(now) && empty(value),
            (Some(now), Some(kept)) if is_fingerprint(kept) => {
                self.same(Some(kept), now, true) || self.same(Some(kept), now, false)
            }
            (Some(now), Some(value)) => self.same(Some(now), value, true),
        }
    }

    /// Equal once both are in the target's normal form.
    pub fn same(&self, current: Option<&str>, desired: &str, case_sensitive: bool) -> bool {
        let Some(current) = current else {
            return false;
        };
        match self {
            _ if current.starts_with(FINGERPRINT) => {
                current == fingerprint(desired, case_sensitive)
            }
            Target::Field(path) if path == "macAddress" => {
                normalize::mac_address(current) == normalize::mac_address(desired)
            }
            Target::Field(path) if path.ends_with("Date") => {
                normalize::date(current) == normalize::date(desired)
            }
            // References are matched by name case-insensitively when they are ensured.
            Target::Field(path) if path.ends_with(".name") => {
                normalize::comparable(current, false) == normalize::comparable(desired, false)
            }
            _ => {
                normalize::comparable(current, case_sensitive)
                    == normalize::comparable(desired, case_sensitive)
            }
        }
    }
}

/// Text values longer than this (in characters) are held of a configuration as their
/// [`fingerprint`]: a software list is kilobytes, and matching only asks whether it changed.
pub const LONG_VALUE: usize = 256;

/// Starts every fingerprint: normalisation strips control characters from every real
/// value, so a fingerprint is never mistaken for one.
const FINGERPRINT: char = '\u{1}';

/// A stand-in for a long text: the length and a hash of its normal form, equal for two
/// texts exactly when their normal forms are (within one process).
pub fn fingerprint(text: &str, case_sensitive: bool) -> String {
    // FNV-1a, not the standard hasher: the audit trail keeps fingerprints for months,
    // and a later build must compute the same one for the same text.
    let normal = normalize::comparable(text, case_sensitive);
    format!(
        "{FINGERPRINT}{} characters, fingerprint {:016x}",
        normal.chars().count(),
        normalize::fnv1a(&normal)
    )
}

/// Whether a text is a [`fingerprint`] (what matching holds of a long text), not a value.
pub fn is_fingerprint(text: &str) -> bool {
    text.starts_with(FINGERPRINT)
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => normalize::text(s).map(|_| s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The text at a dotted path of an asset.
pub fn asset_value(asset: &Value, path: &str) -> Option<String> {
    path.split('.')
        .try_fold(asset, |v, key| v.get(key))
        .and_then(as_text)
}

/// What matching reads of an asset or a configuration: its values as text, by target.
pub trait Fields {
    /// The value of `target`, as text.
    fn text(&self, target: &Target) -> Option<String>;

    /// The value at a dotted path (`type.name`), as text.
    fn at(&self, path: &str) -> Option<String> {
        self.text(&Target::Field(path.to_string()))
    }
}

impl<T: Fields + ?Sized> Fields for &T {
    fn text(&self, target: &Target) -> Option<String> {
        (**self).text(target)
    }

    fn at(&self, path: &str) -> Option<String> {
        (**self).at(path)
    }
}

impl Fields for Value {
    fn text(&self, target: &Target) -> Option<String> {
        target.current(self)
    }

    fn at(&self, path: &str) -> Option<String> {
        asset_value(self, path)
    }
}

/// A record reduced to the texts matching reads, each under its target: all of them in
/// one string, and where each ends. Parsed JSON is several times the size of its values,
/// and a run holds every asset and configuration of the estate at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact {
    /// What the texts are of, shared by every record made alike.
    targets: Arc<[Target]>,
    texts: Box<str>,
    /// Where the text of each of `targets` ends in `texts`; an empty one is a missing
    /// value (a value read as text is never empty).
    ends: Box<[u32]>,
}

impl Compact {
    /// The texts of `record` at `targets`; with `long_as_fingerprint`, a custom field's
    /// value longer than [`LONG_VALUE`] as its [`fingerprint`] (compared as the text would
    /// be; the flag says whether case counts).
    pub fn of(record: &Value, targets: &Arc<[Target]>, long_as_fingerprint: Option<bool>) -> Self {
        let mut texts = String::new();
        let mut ends = Vec::with_capacity(targets.len());
        for target in targets.iter() {
            if let Some(mut text) = target.current(record) {
                if let (Some(case_sensitive), Target::Custom(_)) = (long_as_fingerprint, target)
                    && text.chars().count() > LONG_VALUE
                {
                    text = fingerprint(&text, case_sensitive);
                }
                texts.push_str(&text);
            }
            // A staged or ConnectWise value is far below 4 GiB; the saturation never bites.
            ends.push(u32::try_from(texts.len()).unwrap_or(u32::MAX));
        }
        Self {
            targets: Arc::clone(targets),
            texts: texts.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The targets to keep, each once: shared by every record made with them.
    pub fn targets(targets: impl IntoIterator<Item = Target>) -> Arc<[Target]> {
        let mut kept: Vec<Target> = Vec::new();
        for target in targets {
            if !kept.contains(&target) {
                kept.push(target);
            }
        }
        kept.into()
    }

    /// The same record with `target`'s text set to `value` (a target it was not made
    /// with is left out: every record made alike keeps the same targets).
    #[must_use]
    pub fn with_text(&self, target: &Target, value: &str) -> Self {
        let mut texts = String::new();
        let mut ends = Vec::with_capacity(self.targets.len());
        for (index, own) in self.targets.iter().enumerate() {
            if own == target {
                texts.push_str(value);
            } else if let Some(text) = self.nth(index) {
                texts.push_str(&text);
            }
            ends.push(u32::try_from(texts.len()).unwrap_or(u32::MAX));
        }
        Self {
            targets: Arc::clone(&self.targets),
            texts: texts.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The text of the `index`th target, if it has one.
    fn nth(&self, index: usize) -> Option<String> {
        let start = match index {
            0 => 0,
            n => *self.ends.get(n - 1)? as usize,
        };
        let end = *self.ends.get(index)? as usize;
        let text = self.texts.get(start..end)?;
        (!text.is_empty()).then(|| text.to_string())
    }
}

impl Fields for Compact {
    fn text(&self, target: &Target) -> Option<String> {
        self.nth(self.targets.iter().position(|t| t == target)?)
    }

    fn at(&self, path: &str) -> Option<String> {
        let index = self
            .targets
            .iter()
            .position(|t| matches!(t, Target::Field(p) if p == path))?;
        self.nth(index)
    }
}
