//! A Lansweeper asset reduced to what the sync writes to ConnectWise, every value
//! normalised and fitted to ConnectWise's limits. This is what fetch-assets stages and
//! what match and the bulk writers read.

use serde::{Deserialize, Serialize};

use crate::lansweeper::Asset;
use crate::normalize;

/// ConnectWise requires a type; Lansweeper assets without one get this.
pub const DEFAULT_TYPE: &str = "Lansweeper asset";
/// The longest `ls_software` text written; longer lists end with a count of the rest.
pub const SOFTWARE_TEXT_MAX: usize = 4_000;

/// The longest asset key kept: it is the asset's identity in ConnectWise (`ls_asset_id`)
/// and cannot be shortened; Lansweeper's keys are far shorter.
pub const KEY_MAX: usize = 250;
/// The longest asset URL kept (`ls_asset_url`, as ConnectWise's links): a URL cut short
/// leads nowhere, so a longer one is left out.
pub const URL_MAX: usize = 1_000;

/// Limits of the ConnectWise fields the values land in.
const NAME_MAX: usize = 100;
const REFERENCE_MAX: usize = 50;
const SERIAL_MAX: usize = 250;
const MODEL_MAX: usize = 50;
const IP_MAX: usize = 50;
const OS_MAX: usize = 250;
/// Longer than any account or domain name; only bounds what a part holds.
const USER_MAX: usize = 250;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedAsset {
    pub key: String,
    /// The Lansweeper site it came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
    /// The ConnectWise company (identifier or id) the mapping sends it to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub company: String,
    /// Its Lansweeper state is a retired one: its configuration is retired.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub asset_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warranty_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// The last logged-on user, as Lansweeper names it: what match finds the contact by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain: Option<String>,
}

/// An asset that cannot be synchronised, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub asset_key: String,
    pub reason: String,
}

impl StagedAsset {
    pub fn from_lansweeper(asset: &Asset) -> Result<Self, Rejected> {
        let key = asset.key().ok_or_else(|| Rejected {
            asset_key: format!(
                "(no key; name {:?})",
                normalize::shorten(&asset.name().unwrap_or_default(), NAME_MAX)
            ),
            reason: "the asset has no key".into(),
        })?;
        if key.chars().count() > KEY_MAX {
            return Err(Rejected {
                asset_key: normalize::shorten(&key, KEY_MAX),
                reason: format!(
                    "the asset's key is {} characters long; a key identifies the asset in ConnectWise and cannot be shortened (at most {KEY_MAX})",
                    key.chars().count()
                ),
            });
        }
        let name = asset
            .name()
            .and_then(|n| normalize::text(&n))
            .ok_or_else(|| Rejected {
                asset_key: key.clone(),
                reason: "the asset has no name, and ConnectWise requires one".into(),
            })?;
        let reference = |value: Option<String>| {
            value
                .and_then(|v| normalize::text(&v))
                .map(|v| normalize::shorten(&v, REFERENCE_MAX))
        };
        let fitted = |value: Option<String>, max: usize| {
            value
                .and_then(|v| normalize::text(&v))
                .map(|v| normalize::shorten(&v, max))
        };
        Ok(Self {
            url: asset.url().filter(|url| url.chars().count() <= URL_MAX),
            name: normalize::shorten(&name, NAME_MAX),
            asset_type: reference(asset.asset_type()).unwrap_or_else(|| DEFAULT_TYPE.to_string()),
            state: reference(asset.state()),
            serial_number: fitted(asset.serial_number(), SERIAL_MAX)
                .filter(|s| !normalize::is_placeholder_serial(s)),
            mac_address: asset.mac().and_then(|m| normalize::mac_address(&m)),
            ip_address: fitted(asset.ip_address(), IP_MAX),
            model: fitted(asset.model(), MODEL_MAX),
            manufacturer: reference(asset.manufacturer()),
            location: reference(asset.location()),
            warranty_date: asset.warranty_date().and_then(|d| normalize::date(&d)),
            os_info: fitted(asset.os(), OS_MAX),
            software: software_text(asset),
            user_name: fitted(asset.user_name(), USER_MAX),
            user_domain: fitted(asset.user_domain(), USER_MAX),
            key,
            site: String::new(),
            company: String::new(),
            retired: false,
        })
    }
}

/// One line per title: `name version (publisher)`, sorted so the text is stable.
fn software_text(asset: &Asset) -> Option<String> {
    let mut lines: Vec<String> = asset
        .software()
        .into_iter()
        .filter_map(|s| {
            // Each part as any text: no control character, no line break of its own, so
            // the only newlines are the ones between titles.
            let mut line = normalize::text(&s.name)?;
            if let Some(version) = s.version.as_deref().and_then(normalize::text) {
                line.push(' ');
                line.push_str(&version);
            }
            if let Some(publisher) = s.publisher.as_deref().and_then(normalize::text) {
                line.push_str(&format!(" ({publisher})"));
            }
            Some(line)
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.sort();
    lines.dedup();
    let mut text = String::new();
    for (index, line) in lines.iter().enumerate() {
        let rest = lines.len() - index;
        let suffix = format!("… and {rest} more");
        if normalize::cw_len(&text) + normalize::cw_len(line) + 1 + normalize::cw_len(&suffix)
            > SOFTWARE_TEXT_MAX
        {
            text.push_str(&suffix);
            return Some(text);
        }
        text.push_str(line);
        text.push('\n');
    }
    Some(text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_and_fits() {
        let asset = Asset(json!({
            "key": "k1",
            "url": "https://app.lansweeper.com/s/asset/k1/summary",
            "assetBasicInfo": {"name": "  PC  one ", "mac": "aa-bb-cc-dd-ee-ff", "ipAddress": "10.0.0.1"},
            "assetCustom": {"serialNumber": "To be filled by O.E.M.", "manufacturer": "x".repeat(70), "warrantyDate": "2027-01-31T10:00:00Z"},
            "softwares": [{"name": "B", "version": "2"}, {"name": "A", "publisher": "P"}]
        }));
        let staged = StagedAsset::from_lansweeper(&asset).unwrap();
        assert_eq!(staged.name, "PC one");
        assert_eq!(staged.asset_type, DEFAULT_TYPE);
        assert_eq!(staged.serial_number, None);
        assert_eq!(staged.mac_address.as_deref(), Some("AA:BB:CC:DD:EE:FF"));
        assert_eq!(
            staged.manufacturer.as_ref().map(|m| m.chars().count()),
            Some(50)
        );
        assert_eq!(
            staged.warranty_date.as_deref(),
            Some("2027-01-31T00:00:00Z")
        );
        assert_eq!(staged.software.as_deref(), Some("A (P)\nB 2"));
    }

    #[test]
    fn assets_without_key_or_name_are_rejected_with_the_reason() {
        let err = StagedAsset::from_lansweeper(&Asset(
            json!({"key": "k2", "assetBasicInfo": {"name": "  "}}),
        ))
        .unwrap_err();
        assert_eq!(err.asset_key, "k2");
        assert!(err.reason.contains("no name"));
        assert!(
            StagedAsset::from_lansweeper(&Asset(json!({"assetBasicInfo": {"name": "x"}}))).is_err()
        );
    }

    #[test]
    fn long_software_lists_are_capped_with_a_count() {
        let software: Vec<_> = (0..500)
            .map(|i| json!({"name": format!("Package {i:03}"), "version": "1.0.0"}))
            .collect();
        let asset =
            Asset(json!({"key": "k", "assetBasicInfo": {"name": "n"}, "softwares": software}));
        let text = StagedAsset::from_lansweeper(&asset)
            .unwrap()
            .software
            .unwrap();
        assert!(text.chars().count() <= SOFTWARE_TEXT_MAX);
        assert!(text.ends_with("more"), "{}", &text[text.len() - 30..]);
    }
}
