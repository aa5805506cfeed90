//! What the sync may write and how it names things: who owns each synced field, and
//! how Lansweeper's asset types and states become ConnectWise's type and status names.
//! Read from settings, validated at start; applied in fetch and match. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::matching::{FieldDiff, MatchSpec, Target};
use crate::normalize;

/// Who owns a synced field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldPolicy {
    /// Lansweeper's value wins (the default).
    #[default]
    Lansweeper,
    /// Written only while ConnectWise's is empty: the service desk's edits are kept.
    Fill,
    /// Never written by the sync.
    Connectwise,
}

/// Fields a new configuration cannot do without, and the link: always Lansweeper's.
const ALWAYS_LANSWEEPER: &[&str] = &["name", "type", "ls_asset_id"];

/// `CW_FIELD_POLICY`: field → policy, by the field's short name (`ipAddress`, `status`,
/// `ls_software`: a reference without `.name`, a custom field by its caption).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPolicies(BTreeMap<String, FieldPolicy>);

/// A target's short name: `type.name` → `type`, `contact.id` → `contact`,
/// `customFields.ls_software` → `ls_software`.
pub fn short_name(label: &str) -> &str {
    let label = label.strip_prefix("customFields.").unwrap_or(label);
    label
        .strip_suffix(".name")
        .or_else(|| label.strip_suffix(".id"))
        .unwrap_or(label)
}

/// A field's policy when `CW_FIELD_POLICY` names none: Lansweeper's, except the contact,
/// which the service desk often sets by hand (`fill`: one set stays).
fn default_policy(short: &str) -> FieldPolicy {
    if short == "contact" {
        FieldPolicy::Fill
    } else {
        FieldPolicy::Lansweeper
    }
}

impl FieldPolicies {
    /// Parses `{"ipAddress": "fill", "osInfo": "connectwise"}` and checks every field is
    /// one the sync writes and may hand over.
    ///
    /// # Errors
    /// Not that JSON, an unknown field, or a field that must stay Lansweeper's.
    pub fn parse(text: &str, spec: &MatchSpec) -> Result<Self, String> {
        let policies: BTreeMap<String, FieldPolicy> = serde_json::from_str(text).map_err(|e| {
            format!("CW_FIELD_POLICY is not {{\"field\": \"lansweeper|fill|connectwise\"}}: {e}")
        })?;
        let known: Vec<String> = spec
            .targets()
            .iter()
            .map(|(_, target)| short_name(&target.label()).to_string())
            .collect();
        for (field, policy) in &policies {
            if !known.contains(field) {
                return Err(format!(
                    "CW_FIELD_POLICY: the sync does not write `{field}` (it writes {})",
                    known.join(", ")
                ));
            }
            if ALWAYS_LANSWEEPER.contains(&field.as_str()) && *policy != FieldPolicy::Lansweeper {
                return Err(format!(
                    "CW_FIELD_POLICY: `{field}` is always Lansweeper's (a configuration needs it, or it links the asset)"
                ));
            }
        }
        Ok(Self(policies))
    }

    pub fn of(&self, label: &str) -> FieldPolicy {
        let short = short_name(label);
        self.0
            .get(short)
            .copied()
            .unwrap_or_else(|| default_policy(short))
    }

    /// The differences the policies let through: `connectwise` fields never, `fill`
    /// fields only where ConnectWise holds nothing.
    pub fn allowed(&self, diffs: &[FieldDiff]) -> Vec<FieldDiff> {
        diffs
            .iter()
            .filter(|diff| match self.of(&diff.field) {
                FieldPolicy::Lansweeper => true,
                FieldPolicy::Fill => diff.current.as_deref().is_none_or(|c| c.trim().is_empty()),
                FieldPolicy::Connectwise => false,
            })
            .cloned()
            .collect()
    }

    /// The spec a new configuration is written with: without the `connectwise` fields.
    pub fn create_spec(&self, spec: &MatchSpec) -> MatchSpec {
        let keep = |target: &Target| self.of(&target.label()) != FieldPolicy::Connectwise;
        let mut kept = spec.clone();
        for (path, field) in [
            (&mut kept.serial_number_path, "serialNumber"),
            (&mut kept.mac_address_path, "macAddress"),
            (&mut kept.model_number_path, "modelNumber"),
            (&mut kept.ip_address_path, "ipAddress"),
        ] {
            if !keep(&Target::Field(field.into())) {
                *path = None;
            }
        }
        kept.additional_field_mappings
            .retain(|(_, field)| keep(&Target::Field(field.clone())));
        kept.custom_field_mappings
            .retain(|(_, caption)| keep(&Target::Custom(caption.clone())));
        kept
    }
}

/// What to do with a Lansweeper type or state a set map does not name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnmappedValues {
    /// Use Lansweeper's name as is (creating it in ConnectWise when missing).
    #[default]
    Create,
    /// Leave the asset unsynced and report it.
    Report,
}

/// `CW_TYPE_MAP` and `CW_STATUS_MAP`: Lansweeper name → ConnectWise name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueMaps {
    types: BTreeMap<String, String>,
    statuses: BTreeMap<String, String>,
    pub unmapped: UnmappedValues,
}

impl ValueMaps {
    /// # Errors
    /// A map that is not a JSON object of names, an empty name, or an unknown policy.
    pub fn parse(
        types: Option<&str>,
        statuses: Option<&str>,
        unmapped: Option<&str>,
    ) -> Result<Self, String> {
        let map = |key: &str, text: Option<&str>| -> Result<BTreeMap<String, String>, String> {
            let Some(text) = text else {
                return Ok(BTreeMap::new());
            };
            let raw: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
                format!("{key} is not {{\"Lansweeper name\": \"ConnectWise name\"}}: {e}")
            })?;
            raw.into_iter()
                .map(|(from, to)| {
                    let to = normalize::text(&to)
                        .ok_or_else(|| format!("{key}: `{from}` maps to an empty name"))?;
                    Ok((normalize::comparable(&from, false), to))
                })
                .collect()
        };
        let unmapped = match unmapped.map(str::trim) {
            None | Some("" | "create") => UnmappedValues::Create,
            Some("report") => UnmappedValues::Report,
            Some(other) => {
                return Err(format!(
                    "CW_UNMAPPED_VALUES is `create` or `report`, not `{other}`"
                ));
            }
        };
        Ok(Self {
            types: map("CW_TYPE_MAP", types)?,
            statuses: map("CW_STATUS_MAP", statuses)?,
            unmapped,
        })
    }

    /// The ConnectWise type name of a Lansweeper type.
    ///
    /// # Errors
    /// The map does not name it and unmapped values are reported.
    pub fn type_name(&self, lansweeper: &str) -> Result<String, String> {
        self.translate(&self.types, "type", "CW_TYPE_MAP", lansweeper)
    }

    /// The ConnectWise status name of a Lansweeper state.
    ///
    /// # Errors
    /// As [`ValueMaps::type_name`].
    pub fn status_name(&self, lansweeper: &str) -> Result<String, String> {
        self.translate(&self.statuses, "state", "CW_STATUS_MAP", lansweeper)
    }

    fn translate(
        &self,
        map: &BTreeMap<String, String>,
        what: &str,
        key: &str,
        value: &str,
    ) -> Result<String, String> {
        if let Some(name) = map.get(&normalize::comparable(value, false)) {
            return Ok(name.clone());
        }
        // A map that is not set maps nothing: names pass as they are.
        if map.is_empty() {
            return Ok(value.to_string());
        }
        match self.unmapped {
            UnmappedValues::Create => Ok(value.to_string()),
            UnmappedValues::Report => Err(format!(
                "its {what} `{value}` is not in {key}, and unmapped values are reported (CW_UNMAPPED_VALUES=report)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(field: &str, current: Option<&str>) -> FieldDiff {
        FieldDiff {
            field: field.into(),
            target: None,
            current: current.map(Into::into),
            desired: "new".into(),
        }
    }

    #[test]
    fn policies_filter_what_is_written() {
        let spec = MatchSpec::for_staged_assets();
        let policies = FieldPolicies::parse(
            r#"{"ipAddress": "fill", "osInfo": "connectwise", "status": "fill", "ls_software": "connectwise"}"#,
            &spec,
        )
        .unwrap();
        let diffs = [
            diff("ipAddress", Some("10.0.0.1")),
            diff("osInfo", None),
            diff("status.name", None),
            diff("customFields.ls_software", Some("x")),
            diff("serialNumber", Some("A")),
        ];
        let allowed: Vec<String> = policies
            .allowed(&diffs)
            .into_iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(allowed, ["status.name", "serialNumber"]);
        let create = policies.create_spec(&spec);
        assert!(
            create
                .additional_field_mappings
                .iter()
                .all(|(_, f)| f != "osInfo")
        );
        assert!(
            create
                .custom_field_mappings
                .iter()
                .all(|(_, c)| c != "ls_software")
        );
        assert_eq!(
            create.ip_address_path, spec.ip_address_path,
            "fill still fills a new one"
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        let spec = MatchSpec::for_staged_assets();
        for (text, expected) in [
            (r#"{"colour": "fill"}"#, "does not write `colour`"),
            (
                r#"{"name": "connectwise"}"#,
                "`name` is always Lansweeper's",
            ),
            (
                r#"{"ls_asset_id": "fill"}"#,
                "`ls_asset_id` is always Lansweeper's",
            ),
            (r#"{"ipAddress": "mine"}"#, "is not {"),
        ] {
            let error = FieldPolicies::parse(text, &spec).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn maps_translate_and_the_unmapped_policy_decides_the_rest() {
        let maps = ValueMaps::parse(
            Some(r#"{"windows": "Managed Workstation"}"#),
            Some(r#"{"Active": "In Use"}"#),
            None,
        )
        .unwrap();
        assert_eq!(maps.type_name("Windows").unwrap(), "Managed Workstation");
        assert_eq!(maps.type_name("Linux").unwrap(), "Linux");
        assert_eq!(maps.status_name(" active ").unwrap(), "In Use");
        let strict = ValueMaps::parse(Some(r#"{"Windows": "PC"}"#), None, Some("report")).unwrap();
        let error = strict.type_name("Linux").unwrap_err();
        assert!(error.contains("`Linux` is not in CW_TYPE_MAP"), "{error}");
        assert_eq!(
            strict.status_name("Broken").unwrap(),
            "Broken",
            "no status map: as is"
        );
        assert!(ValueMaps::parse(None, None, Some("guess")).is_err());
        assert!(ValueMaps::parse(Some(r#"{"Windows": " "}"#), None, None).is_err());
    }

    #[test]
    fn the_contact_is_filled_unless_a_policy_says_otherwise() {
        let spec = MatchSpec::for_staged_assets();
        let by_default = FieldPolicies::default();
        assert_eq!(by_default.of("contact.id"), FieldPolicy::Fill);
        assert_eq!(by_default.of("ipAddress"), FieldPolicy::Lansweeper);
        let set = [diff("contact.id", Some("12"))];
        assert!(by_default.allowed(&set).is_empty(), "a contact set stays");
        assert_eq!(by_default.allowed(&[diff("contact.id", None)]).len(), 1);
        let follow = FieldPolicies::parse(r#"{"contact": "lansweeper"}"#, &spec).unwrap();
        assert_eq!(follow.allowed(&set).len(), 1);
        let never = FieldPolicies::parse(r#"{"contact": "connectwise"}"#, &spec).unwrap();
        let kept = never.create_spec(&spec);
        assert!(
            !kept
                .additional_field_mappings
                .iter()
                .any(|(_, field)| field == "contact.id")
        );
    }
}
