//! Matching assets to ConnectWise configurations, and what differs between them: pure,
//! O(assets + configurations) with hash indexes.
//!
//! An asset matches by the strongest key it shares with a configuration, in order: the
//! link custom field (`ls_asset_id` holding the asset's key), the serial number (never a
//! placeholder), the MAC address, the name. A configuration linked to another asset is
//! never matched by a weaker key. One asset matching several configurations, or several
//! assets matching one configuration with the same strength, is a conflict: reported with
//! the candidates and never written.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::normalize;

mod spec;

pub use spec::{
    CONTACT_PATH, Compact, Fields, LOCATION_NAME, LONG_VALUE, MatchSpec, Target, asset_value,
    fingerprint, is_fingerprint, link_caption,
};

/// Marks a configuration outside the run's scope (`CW_MATCH_CONDITIONS`), read only for
/// its link: an asset finds it by its `ls_asset_id`, never by a weaker key.
pub const OUT_OF_SCOPE: &str = "outOfScope";

/// Which key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchKey {
    Link,
    SerialNumber,
    MacAddress,
    Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDiff {
    pub field: String,
    #[serde(skip)]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    pub desired: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matched {
    pub asset_index: usize,
    pub configuration_id: i64,
    /// Where the configuration is in the list matched against.
    #[serde(skip)]
    pub configuration_index: usize,
    pub matched_by: MatchKey,
    pub unmatched_fields: Vec<FieldDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub asset_index: usize,
    pub reason: String,
    pub candidates: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchOutcome {
    pub matched: Vec<Matched>,
    pub unmatched: Vec<usize>,
    pub conflicts: Vec<Conflict>,
}

struct Index {
    by_key: HashMap<MatchKey, HashMap<String, Vec<usize>>>,
}

impl Index {
    fn candidates(&self, key: MatchKey, value: &str) -> &[usize] {
        self.by_key
            .get(&key)
            .and_then(|m| m.get(value))
            .map_or(&[], Vec::as_slice)
    }
}

fn serial_key(raw: &str) -> Option<String> {
    let text = normalize::text(raw)?;
    (!normalize::is_placeholder_serial(&text)).then(|| text.to_uppercase())
}

/// The asset's value for each matching key, in key order.
fn asset_keys(spec: &MatchSpec, asset: &impl Fields) -> Vec<(MatchKey, String)> {
    let mut keys = Vec::new();
    let read = |path: &Option<String>| path.as_deref().and_then(|p| asset.at(p));
    if let Some(link) = spec.link_path().and_then(|p| asset.at(p)) {
        keys.push((MatchKey::Link, link.to_lowercase()));
    }
    if let Some(serial) = read(&spec.serial_number_path).and_then(|s| serial_key(&s)) {
        keys.push((MatchKey::SerialNumber, serial));
    }
    if let Some(mac) = read(&spec.mac_address_path).and_then(|m| normalize::mac_address(&m)) {
        keys.push((MatchKey::MacAddress, mac));
    }
    if let Some(name) = read(&spec.configuration_name_path) {
        keys.push((
            MatchKey::Name,
            normalize::comparable(&name, spec.case_sensitive_match),
        ));
    }
    keys
}

fn build_index(spec: &MatchSpec, configurations: &[impl Fields]) -> Index {
    let mut by_key: HashMap<MatchKey, HashMap<String, Vec<usize>>> = HashMap::new();
    let link = Target::Custom(spec.link_caption.clone());
    for (index, configuration) in configurations.iter().enumerate() {
        let mut add = |key: MatchKey, value: Option<String>| {
            if let Some(value) = value {
                by_key
                    .entry(key)
                    .or_default()
                    .entry(value)
                    .or_default()
                    .push(index);
            }
        };
        add(
            MatchKey::Link,
            configuration.text(&link).map(|v| v.to_lowercase()),
        );
        if configuration.at(OUT_OF_SCOPE).is_some() {
            continue;
        }
        add(
            MatchKey::SerialNumber,
            configuration
                .at("serialNumber")
                .and_then(|s| serial_key(&s)),
        );
        add(
            MatchKey::MacAddress,
            configuration
                .at("macAddress")
                .and_then(|m| normalize::mac_address(&m)),
        );
        add(
            MatchKey::Name,
            configuration
                .at("name")
                .map(|n| normalize::comparable(&n, spec.case_sensitive_match)),
        );
    }
    Index { by_key }
}

/// What differs between what the asset says and what the configuration holds. A value
/// the asset lacks is left alone, never cleared.
pub fn differences(
    spec: &MatchSpec,
    asset: &impl Fields,
    configuration: &impl Fields,
) -> Vec<FieldDiff> {
    spec.targets()
        .into_iter()
        .filter_map(|(path, target)| {
            let desired = asset.at(path)?;
            let current = configuration.text(&target);
            if target.same(current.as_deref(), &desired, spec.case_sensitive_match) {
                return None;
            }
            Some(FieldDiff {
                field: target.label(),
                target: Some(target),
                current,
                desired,
            })
        })
        .collect()
}

/// Matches level by level, strongest key first: a configuration claimed by exactly one
/// asset at a level is that asset's; one claimed by several, or an asset claiming
/// several, is a conflict. A configuration taken or contested at a stronger level is
/// out of reach of weaker keys, so a run and the next one (when the winners carry their
/// link) decide alike.
pub fn match_with_differences(
    spec: &MatchSpec,
    assets: &[impl Fields],
    configurations: &[impl Fields],
) -> MatchOutcome {
    let mut outcome = pair(spec, assets, configurations);
    for matched in &mut outcome.matched {
        matched.unmatched_fields = differences(
            spec,
            &assets[matched.asset_index],
            &configurations[matched.configuration_index],
        );
    }
    outcome
}

/// [`match_with_differences`] without the differences of each match (`unmatched_fields` empty):
/// for a caller that takes them one match at a time, never all at once.
pub fn pair(
    spec: &MatchSpec,
    assets: &[impl Fields],
    configurations: &[impl Fields],
) -> MatchOutcome {
    let index = build_index(spec, configurations);
    let link = Target::Custom(spec.link_caption.clone());
    let id_of = |c: usize| configuration_id(&configurations[c]);
    let keys: Vec<Vec<(MatchKey, String)>> = assets.iter().map(|a| asset_keys(spec, a)).collect();
    let own_links: Vec<Option<String>> = keys
        .iter()
        .map(|k| {
            k.iter()
                .find(|(key, _)| *key == MatchKey::Link)
                .map(|(_, v)| v.clone())
        })
        .collect();
    let mut decided = vec![false; assets.len()];
    let mut unavailable = vec![false; configurations.len()];
    let mut outcome = MatchOutcome::default();

    for level in [
        MatchKey::Link,
        MatchKey::SerialNumber,
        MatchKey::MacAddress,
        MatchKey::Name,
    ] {
        let mut claims: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut contested = Vec::new();
        for (asset_index, asset_keys) in keys.iter().enumerate() {
            if decided[asset_index] {
                continue;
            }
            let Some((_, value)) = asset_keys.iter().find(|(key, _)| *key == level) else {
                continue;
            };
            let candidates: Vec<usize> = index
                .candidates(level, value)
                .iter()
                .copied()
                .filter(|&c| !unavailable[c])
                .filter(|&c| {
                    // Linked to another asset: not ours to take by a weaker key.
                    level == MatchKey::Link
                        || configurations[c]
                            .text(&link)
                            .is_none_or(|l| Some(l.to_lowercase()) == own_links[asset_index])
                })
                .collect();
            match candidates.len() {
                0 => {}
                1 => claims.entry(candidates[0]).or_default().push(asset_index),
                n => {
                    decided[asset_index] = true;
                    contested.extend(candidates.iter().copied());
                    let ids: Vec<i64> = candidates.iter().map(|&c| id_of(c)).collect();
                    outcome.conflicts.push(Conflict {
                        asset_index,
                        reason: ambiguous(level, n, &ids),
                        candidates: ids,
                    });
                }
            }
        }
        for (configuration, claimants) in claims {
            unavailable[configuration] = true;
            if let [asset_index] = claimants[..] {
                decided[asset_index] = true;
                outcome.matched.push(Matched {
                    asset_index,
                    configuration_id: id_of(configuration),
                    configuration_index: configuration,
                    matched_by: level,
                    unmatched_fields: Vec::new(),
                });
                continue;
            }
            for &asset_index in &claimants {
                decided[asset_index] = true;
                outcome.conflicts.push(Conflict {
                    asset_index,
                    reason: format!(
                        "{} assets match configuration {} by {}",
                        claimants.len(),
                        id_of(configuration),
                        describe(level)
                    ),
                    candidates: vec![id_of(configuration)],
                });
            }
        }
        for configuration in contested {
            unavailable[configuration] = true;
        }
    }
    refuse_shared_keys(&keys, &mut decided, &mut outcome);
    outcome.unmatched = (0..assets.len()).filter(|&a| !decided[a]).collect();
    outcome.matched.sort_by_key(|m| m.asset_index);
    outcome.conflicts.sort_by_key(|c| c.asset_index);
    outcome
}

/// Why an asset matching `n` configurations at `level` is a conflict.
fn ambiguous(level: MatchKey, n: usize, ids: &[i64]) -> String {
    let listed = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if level == MatchKey::Link {
        format!(
            "{n} configurations ({listed}) carry this asset's ls_asset_id: a duplicate, never written; keep one and clear the others' ls_asset_id"
        )
    } else {
        format!(
            "matches {n} configurations ({listed}) by {}",
            describe(level)
        )
    }
}

/// Assets left to create that share a real serial number or MAC address are one device
/// seen twice, or a data error: creating both would put the device in ConnectWise twice,
/// so neither is created.
fn refuse_shared_keys(
    keys: &[Vec<(MatchKey, String)>],
    decided: &mut [bool],
    outcome: &mut MatchOutcome,
) {
    for level in [MatchKey::SerialNumber, MatchKey::MacAddress] {
        let mut sharing: HashMap<&str, Vec<usize>> = HashMap::new();
        for (asset_index, asset_keys) in keys.iter().enumerate() {
            if decided[asset_index] {
                continue;
            }
            if let Some((_, value)) = asset_keys.iter().find(|(key, _)| *key == level) {
                sharing.entry(value.as_str()).or_default().push(asset_index);
            }
        }
        for (value, assets_sharing) in sharing {
            if assets_sharing.len() < 2 {
                continue;
            }
            for &asset_index in &assets_sharing {
                decided[asset_index] = true;
                outcome.conflicts.push(Conflict {
                    asset_index,
                    reason: format!(
                        "{} assets share {} {value} and no configuration carries either: one device seen twice, or a data error; none is created",
                        assets_sharing.len(),
                        describe(level)
                    ),
                    candidates: Vec::new(),
                });
            }
        }
    }
}

/// A configuration's id (0 when it has none, which ConnectWise never answers).
pub fn configuration_id(configuration: &impl Fields) -> i64 {
    configuration
        .at("id")
        .and_then(|id| id.parse().ok())
        .unwrap_or(0)
}

fn describe(key: MatchKey) -> &'static str {
    match key {
        MatchKey::Link => "ls_asset_id",
        MatchKey::SerialNumber => "serial number",
        MatchKey::MacAddress => "MAC address",
        MatchKey::Name => "name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn config(id: i64, name: &str, serial: &str, mac: &str, link: Option<&str>) -> Value {
        let mut custom = json!([{"id": 5, "caption": "ls_asset_id", "type": "Text"}]);
        if let Some(link) = link {
            custom[0]["value"] = json!(link);
        }
        json!({"id": id, "name": name, "serialNumber": serial, "macAddress": mac,
               "type": {"id": 1, "name": "Windows"}, "customFields": custom})
    }

    fn asset(key: &str, name: &str, serial: Option<&str>, mac: Option<&str>) -> Value {
        let mut a = json!({"key": key, "name": name, "type": "windows"});
        if let Some(s) = serial {
            a["serialNumber"] = json!(s);
        }
        if let Some(m) = mac {
            a["macAddress"] = json!(m);
        }
        a
    }

    #[test]
    fn a_fingerprint_is_the_same_in_every_build() {
        // The audit trail keeps fingerprints for months: a later compiler or standard
        // library must compute the same one (the standard hasher may change between them).
        assert_eq!(
            fingerprint("Program 1.0 (Vendor)", false),
            fingerprint("  PROGRAM 1.0 (vendor) ", false)
        );
        assert!(
            fingerprint("Program 1.0 (Vendor)", false)
                .ends_with("20 characters, fingerprint 3cd8c6a75a13e707"),
            "{}",
            fingerprint("Program 1.0 (Vendor)", false)
        );
    }

    #[test]
    fn a_long_value_held_as_its_fingerprint_compares_as_the_text_would() {
        let software = (0..200)
            .map(|i| format!("Program {i} 1.0 (Vendor)"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(software.chars().count() > LONG_VALUE);
        let held = fingerprint(&software, false);
        let target = Target::Custom("ls_software".into());
        assert!(!held.contains("Program"), "the text is not kept");
        assert!(target.same(Some(&held), &software, false));
        // Normalisation as for any value: case and outer spaces do not count.
        assert!(target.same(
            Some(&held),
            &format!("  {}  ", software.to_uppercase()),
            false
        ));
        assert!(!target.same(
            Some(&held),
            &software.replace("Program 7 ", "Program 8 "),
            false
        ));
        assert!(!target.same(Some(&held), "short", false));
    }

    #[test]
    fn compact_records_match_as_their_json_does() {
        let spec = MatchSpec::for_staged_assets();
        let software = (0..100)
            .map(|i| format!("Program {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut linked = config(1, "PC-A", "SER1", "", Some("key-a"));
        linked["customFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": 6, "caption": "ls_software", "value": software}));
        let configurations = vec![
            linked,
            config(2, "PC-B", "SER2", "aa-bb-cc-dd-ee-02", None),
            config(3, "pc-d", "", "", None),
        ];
        let mut changed = asset("key-a", "renamed", Some("SER1"), None);
        changed["software"] = json!(software.to_uppercase());
        let assets = vec![
            changed,
            asset("key-b", "x", Some("ser2"), None),
            asset("key-d", "PC-D", None, None),
            asset("key-new", "NEW", Some("SERX"), None),
        ];
        let configuration_targets = Compact::targets(
            ["id", "name", "serialNumber", "macAddress"]
                .into_iter()
                .map(|f| Target::Field(f.into()))
                .chain(spec.targets().into_iter().map(|(_, t)| t)),
        );
        let asset_targets = Compact::targets(
            spec.targets()
                .into_iter()
                .map(|(path, _)| Target::Field(path.into())),
        );
        let compact_configurations: Vec<Compact> = configurations
            .iter()
            .map(|c| Compact::of(c, &configuration_targets, Some(false)))
            .collect();
        let compact_assets: Vec<Compact> = assets
            .iter()
            .map(|a| Compact::of(a, &asset_targets, None))
            .collect();
        let held = compact_configurations[0].text(&Target::Custom("ls_software".into()));
        assert!(
            held.is_some_and(|h| !h.contains("Program")),
            "held as a fingerprint"
        );
        let from_json = match_with_differences(&spec, &assets, &configurations);
        let from_compact = match_with_differences(&spec, &compact_assets, &compact_configurations);
        assert_eq!(from_compact.unmatched, from_json.unmatched);
        assert_eq!(from_compact.conflicts, from_json.conflicts);
        let fields = |o: &MatchOutcome| -> Vec<(usize, i64, Vec<String>)> {
            o.matched
                .iter()
                .map(|m| {
                    let fields = m.unmatched_fields.iter().map(|d| d.field.clone()).collect();
                    (m.asset_index, m.configuration_id, fields)
                })
                .collect()
        };
        assert_eq!(fields(&from_compact), fields(&from_json));
        // Only the name changed: the software differs in case alone.
        assert_eq!(fields(&from_compact)[0], (0, 1, vec!["name".to_string()]));
        assert_eq!(from_compact.matched.len(), 3);
    }

    #[test]
    fn keys_are_tried_in_order_and_placeholders_never_match() {
        let spec = MatchSpec::for_staged_assets();
        let configurations = vec![
            config(1, "PC-A", "SER1", "", Some("key-a")),
            config(2, "PC-B", "SER2", "aa-bb-cc-dd-ee-02", None),
            config(3, "PC-C", "To be filled by O.E.M.", "", None),
            config(4, "pc-d", "", "", None),
        ];
        let assets = vec![
            asset("key-a", "renamed", Some("OTHER"), None),
            asset("key-b", "x", Some("ser2"), None),
            asset("key-c", "nope", Some("To be filled by O.E.M."), None),
            asset("key-e", "y", None, Some("AA:BB:CC:DD:EE:02")),
            asset("key-d", "PC-D", None, None),
            asset("key-new", "NEW", Some("SERX"), None),
        ];
        let outcome = match_with_differences(&spec, &assets, &configurations);
        let matched: Vec<(usize, i64, MatchKey)> = outcome
            .matched
            .iter()
            .map(|m| (m.asset_index, m.configuration_id, m.matched_by))
            .collect();
        assert_eq!(
            matched,
            [
                (0, 1, MatchKey::Link),
                (1, 2, MatchKey::SerialNumber),
                (4, 4, MatchKey::Name)
            ]
        );
        // Asset 3 shares only a MAC with configuration 2, which asset 1 took by serial:
        // a different device, to be created.
        assert!(outcome.conflicts.is_empty());
        assert_eq!(outcome.unmatched, [2, 3, 5]);
    }

    #[test]
    fn one_asset_matching_several_configurations_is_a_conflict() {
        let spec = MatchSpec::for_staged_assets();
        let configurations = vec![
            config(1, "dup", "", "", None),
            config(2, "DUP", "", "", None),
        ];
        let outcome =
            match_with_differences(&spec, &[asset("k", "Dup", None, None)], &configurations);
        assert!(outcome.matched.is_empty());
        assert_eq!(outcome.conflicts[0].candidates, [1, 2]);
        assert!(
            outcome.conflicts[0]
                .reason
                .contains("matches 2 configurations (1, 2) by name")
        );
    }

    #[test]
    fn two_new_assets_sharing_a_serial_or_a_mac_create_neither() {
        let spec = MatchSpec::for_staged_assets();
        let assets = [
            asset("k1", "pc-1", Some("SER-1"), None),
            asset("k2", "pc-2", Some("ser-1"), None),
            asset("k3", "pc-3", None, Some("AA:BB:CC:DD:EE:01")),
            asset("k4", "pc-4", None, Some("aa-bb-cc-dd-ee-01")),
            asset("k5", "pc-5", Some("SER-5"), None),
        ];
        let outcome = match_with_differences(&spec, &assets, &[] as &[Value]);
        assert_eq!(outcome.unmatched, [4], "only the asset with its own serial");
        let conflicted: Vec<usize> = outcome.conflicts.iter().map(|c| c.asset_index).collect();
        assert_eq!(conflicted, [0, 1, 2, 3]);
        assert!(
            outcome.conflicts[0]
                .reason
                .contains("2 assets share serial number")
        );
        assert!(outcome.conflicts[2].reason.contains("MAC address"));
        // With a configuration carrying the serial, the assets are matched as before.
        let configurations = vec![config(7, "pc-1", "SER-1", "", None)];
        let outcome = match_with_differences(&spec, &assets[..2], &configurations);
        assert_eq!(
            outcome.conflicts.len(),
            2,
            "two assets claim configuration 7"
        );
        assert!(
            outcome.conflicts[0]
                .reason
                .contains("match configuration 7")
        );
    }

    #[test]
    fn two_configurations_carrying_one_asset_s_link_are_a_duplicate_naming_both() {
        let spec = MatchSpec::for_staged_assets();
        let configurations = vec![
            config(31, "pc-1", "", "", Some("k")),
            config(32, "pc-1 copy", "", "", Some("K")),
        ];
        let outcome =
            match_with_differences(&spec, &[asset("k", "pc-1", None, None)], &configurations);
        assert!(outcome.matched.is_empty());
        assert!(outcome.unmatched.is_empty(), "never created a third time");
        assert_eq!(outcome.conflicts[0].candidates, [31, 32]);
        let reason = &outcome.conflicts[0].reason;
        assert!(
            reason.contains("(31, 32)") && reason.contains("duplicate"),
            "{reason}"
        );
    }

    #[test]
    fn two_assets_claiming_one_configuration_equally_are_both_conflicts() {
        let spec = MatchSpec::for_staged_assets();
        let configurations = vec![config(9, "same", "", "", None)];
        let outcome = match_with_differences(
            &spec,
            &[
                asset("k1", "same", None, None),
                asset("k2", "SAME", None, None),
            ],
            &configurations,
        );
        assert!(outcome.matched.is_empty());
        assert_eq!(outcome.conflicts.len(), 2);
        assert!(
            outcome.conflicts[0]
                .reason
                .contains("2 assets match configuration 9 by name")
        );
    }

    #[test]
    fn a_configuration_linked_to_another_asset_is_not_taken_by_a_weaker_key() {
        let spec = MatchSpec::for_staged_assets();
        let configurations = vec![config(1, "PC", "SER", "", Some("someone-else"))];
        let outcome = match_with_differences(
            &spec,
            &[asset("k", "PC", Some("SER"), None)],
            &configurations,
        );
        assert_eq!(outcome.unmatched, [0]);
    }

    #[test]
    fn unchanged_data_has_no_differences_whatever_its_notation() {
        let spec = MatchSpec::for_staged_assets();
        let configuration = json!({
            "id": 1, "name": "PC  One", "macAddress": "aa-bb-cc-dd-ee-ff",
            "warrantyExpirationDate": "2027-01-31T00:00:00Z", "type": {"name": "Windows"},
            "customFields": [{"caption": "ls_asset_id", "value": "k"}]
        });
        let asset = json!({"key": "k", "name": "pc one", "macAddress": "AA:BB:CC:DD:EE:FF",
                           "warrantyDate": "2027-01-31T00:00:00Z", "type": "WINDOWS"});
        assert_eq!(differences(&spec, &asset, &configuration), []);
        let changed = json!({"key": "k", "name": "PC Two", "type": "Linux", "serialNumber": "S"});
        let fields: Vec<String> = differences(&spec, &changed, &configuration)
            .into_iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["name", "serialNumber", "type.name"]);
    }

    #[test]
    fn fields_parameter_names_only_what_is_compared() {
        let fields = MatchSpec::for_staged_assets().configuration_fields();
        assert_eq!(
            fields,
            "id,name,serialNumber,macAddress,modelNumber,ipAddress,type/name,status/name,manufacturer/name,locationId,warrantyExpirationDate,osInfo,contact/id,customFields"
        );
    }
}
