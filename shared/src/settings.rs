//! What a deployment sets: the sync's targets and tuning, read from the environment or
//! the secret (same keys), validated once at start.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::PipelineError;
use crate::lifecycle::RetirePolicy;
use crate::matching::MatchSpec;
use crate::policy::{FieldPolicies, ValueMaps};

/// Tuning and targets of a sync, from the environment or the secret.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `CW_TARGET_COMPANY`: company identifier or id that new configurations belong to,
    /// when no mapping is stored (with `LS_SITE_ID`, a one-site mapping).
    pub target_company: String,
    /// `CW_LOCATION_STRUCTURE_LEVEL`: structure level id of new locations.
    pub structure_level: Option<i64>,
    /// `CW_CUSTOM_FIELD_IDS`: `ls_asset_id=5,ls_asset_url=6,…`; discovered by caption when unset.
    pub custom_field_ids: HashMap<String, i64>,
    /// `CW_CONFIGURATION_POD_ID`: the configurations screen's `podId` among ConnectWise's
    /// custom field definitions; found from a configuration's fields when unset.
    pub configuration_pod_id: Option<i64>,
    /// `CW_CREATE_CUSTOM_FIELDS=true`: ensure-references creates the sync's custom fields
    /// that ConnectWise lacks (off by default: `lscw doctor --fix` does it once).
    pub create_custom_fields: bool,
    /// `CW_MATCH_CONDITIONS`: which configurations take part in matching.
    pub match_conditions: Option<String>,
    pub staging_ttl: Duration,
    pub reference_ttl: Duration,
    /// How long a run's recorded summary is kept.
    pub report_ttl: Duration,
    /// `AUDIT_RETENTION_DAYS`: how long a run's audit trail (what it changed, before and
    /// after) is kept, and with it what `lscw revert` can take back (default 90).
    pub audit_ttl: Duration,
    pub batch_size: usize,
    pub dry_run: bool,
    /// `CW_FIELD_POLICY`: who owns each synced field.
    pub field_policies: FieldPolicies,
    /// `CW_TYPE_MAP`, `CW_STATUS_MAP`, `CW_UNMAPPED_VALUES`.
    pub value_maps: ValueMaps,
    /// `CW_RETIRED_STATES`, `CW_RETIRED_STATUS`, `CW_RETIRE_GUARD_COUNT`,
    /// `CW_RETIRE_GUARD_PERCENT`.
    pub retire: RetirePolicy,
    /// `ENRICH_FULL_REFRESH_DAYS`: how often the enrichment reads ConnectWise whole
    /// rather than what changed (default 7).
    pub enrich_full_refresh: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            target_company: String::new(),
            structure_level: None,
            custom_field_ids: HashMap::new(),
            configuration_pod_id: None,
            create_custom_fields: false,
            match_conditions: None,
            // Longer than a run may last (the state machine stops one after three days,
            // a first enrichment of 100,000 assets included): a run's records outlive it.
            staging_ttl: Duration::from_secs(4 * 24 * 3600),
            reference_ttl: Duration::from_secs(24 * 3600),
            report_ttl: Duration::from_secs(90 * 24 * 3600),
            audit_ttl: Duration::from_secs(90 * 24 * 3600),
            batch_size: 50,
            dry_run: false,
            field_policies: FieldPolicies::default(),
            value_maps: ValueMaps::default(),
            retire: RetirePolicy::default(),
            enrich_full_refresh: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl SyncSettings {
    /// Reads the settings through `get` (environment, secret, or both).
    ///
    /// # Errors
    /// A value that is not of its kind.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PipelineError> {
        let value = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |key: &str| -> Result<Option<i64>, PipelineError> {
            value(key)
                .map(|v| {
                    v.parse().map_err(|_| {
                        PipelineError::Config(format!("{key} must be an integer, got `{v}`"))
                    })
                })
                .transpose()
        };
        let custom_field_ids = match value("CW_CUSTOM_FIELD_IDS") {
            Some(text) => custom_field_ids(&text)?,
            None => HashMap::new(),
        };
        Ok(Self {
            target_company: value("CW_TARGET_COMPANY").unwrap_or_default(),
            structure_level: number("CW_LOCATION_STRUCTURE_LEVEL")?,
            custom_field_ids,
            configuration_pod_id: number("CW_CONFIGURATION_POD_ID")?,
            create_custom_fields: match value("CW_CREATE_CUSTOM_FIELDS").as_deref() {
                None | Some("false" | "0" | "") => false,
                Some("true" | "1") => true,
                Some(other) => {
                    return Err(PipelineError::Config(format!(
                        "CW_CREATE_CUSTOM_FIELDS must be true or false, got `{other}`"
                    )));
                }
            },
            match_conditions: value("CW_MATCH_CONDITIONS"),
            field_policies: match value("CW_FIELD_POLICY") {
                Some(text) => FieldPolicies::parse(&text, &MatchSpec::for_staged_assets())
                    .map_err(PipelineError::Config)?,
                None => FieldPolicies::default(),
            },
            value_maps: ValueMaps::parse(
                value("CW_TYPE_MAP").as_deref(),
                value("CW_STATUS_MAP").as_deref(),
                value("CW_UNMAPPED_VALUES").as_deref(),
            )
            .map_err(PipelineError::Config)?,
            retire: retire_policy(&value)?,
            enrich_full_refresh: match number("ENRICH_FULL_REFRESH_DAYS")? {
                Some(days) if days >= 0 => Duration::from_secs(days.unsigned_abs() * 24 * 3600),
                Some(days) => {
                    return Err(PipelineError::Config(format!(
                        "ENRICH_FULL_REFRESH_DAYS must be 0 or more, got {days}"
                    )));
                }
                None => Duration::from_secs(7 * 24 * 3600),
            },
            audit_ttl: match number("AUDIT_RETENTION_DAYS")? {
                Some(days) if days >= 1 => Duration::from_secs(days.unsigned_abs() * 24 * 3600),
                Some(days) => {
                    return Err(PipelineError::Config(format!(
                        "AUDIT_RETENTION_DAYS must be 1 or more, got {days}"
                    )));
                }
                None => Duration::from_secs(90 * 24 * 3600),
            },
            ..Self::default()
        })
    }
}

/// The retirement settings, with the guard's limits checked.
fn retire_policy(value: &dyn Fn(&str) -> Option<String>) -> Result<RetirePolicy, PipelineError> {
    let defaults = RetirePolicy::default();
    let parsed = |key: &str, what: &str| -> Result<Option<f64>, PipelineError> {
        value(key)
            .map(|v| {
                v.trim_end_matches('%')
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| {
                        PipelineError::Config(format!("{key} must be {what}, got `{v}`"))
                    })
            })
            .transpose()
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked non-negative; a count"
    )]
    let guard_count =
        parsed("CW_RETIRE_GUARD_COUNT", "a count")?.map_or(defaults.guard_count, |n| n as u64);
    Ok(RetirePolicy {
        retired_states: value("CW_RETIRED_STATES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        retired_status: value("CW_RETIRED_STATUS").unwrap_or(defaults.retired_status),
        guard_count,
        guard_percent: parsed("CW_RETIRE_GUARD_PERCENT", "a percentage")?
            .map_or(defaults.guard_percent, |p| p),
    })
}

/// `ls_asset_id=5,ls_asset_url=6` → caption → id.
fn custom_field_ids(text: &str) -> Result<HashMap<String, i64>, PipelineError> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .and_then(|(caption, id)| {
                    Some((caption.trim().to_string(), id.trim().parse().ok()?))
                })
                .ok_or_else(|| {
                    PipelineError::Config(format!(
                        "CW_CUSTOM_FIELD_IDS: `{pair}` is not caption=id"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// Breaking it looks like: a long run (a first enrichment at Lansweeper's hourly
    /// quota) outlives its own records and fails on a missing plan near its end.
    #[test]
    fn a_run_s_records_outlive_the_longest_run_the_state_machine_allows() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../infra/statemachine/sync.asl.json")).unwrap();
        let timeout = definition["TimeoutSeconds"].as_u64().unwrap();
        let ttl = super::SyncSettings::default().staging_ttl.as_secs();
        assert!(
            ttl > timeout,
            "records live {ttl} s, a run up to {timeout} s"
        );
    }

    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn settings_are_read_and_checked() {
        let settings = SyncSettings::from_lookup(lookup(&[
            ("CW_TARGET_COMPANY", " BlueLightCo "),
            ("CW_CUSTOM_FIELD_IDS", "ls_asset_id=5, ls_asset_url = 6,"),
            ("CW_LOCATION_STRUCTURE_LEVEL", "3"),
        ]))
        .unwrap();
        assert_eq!(settings.target_company, "BlueLightCo");
        assert_eq!(settings.custom_field_ids["ls_asset_url"], 6);
        assert_eq!(settings.structure_level, Some(3));

        // Without a target company the stored mapping must say where assets go.
        let unset = SyncSettings::from_lookup(lookup(&[])).unwrap();
        assert!(unset.target_company.is_empty());
        let bad = SyncSettings::from_lookup(lookup(&[
            ("CW_TARGET_COMPANY", "x"),
            ("CW_CUSTOM_FIELD_IDS", "ls_asset_id:5"),
        ]))
        .unwrap_err();
        assert!(bad.to_string().contains("`ls_asset_id:5`"), "{bad}");
        let level = SyncSettings::from_lookup(lookup(&[
            ("CW_TARGET_COMPANY", "x"),
            ("CW_LOCATION_STRUCTURE_LEVEL", "top"),
        ]))
        .unwrap_err();
        assert!(level.to_string().contains("must be an integer"), "{level}");
    }

    /// Breaking it looks like: a trail kept for the default whatever the operator set, or
    /// a retention of 0 days that keeps no trail at all and leaves nothing to revert.
    #[test]
    fn the_audit_retention_is_read_in_days_and_never_zero() {
        let default = SyncSettings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(default.audit_ttl, Duration::from_secs(90 * 24 * 3600));
        let year = SyncSettings::from_lookup(lookup(&[("AUDIT_RETENTION_DAYS", "365")])).unwrap();
        assert_eq!(year.audit_ttl, Duration::from_secs(365 * 24 * 3600));
        let none = SyncSettings::from_lookup(lookup(&[("AUDIT_RETENTION_DAYS", "0")])).unwrap_err();
        assert!(none.to_string().contains("AUDIT_RETENTION_DAYS"), "{none}");
    }
}
