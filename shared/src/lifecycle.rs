//! Devices leave: a configuration whose asset is gone from its site's complete listing,
//! or whose asset is in a retired state, is retired (status and active flag, never
//! deleted); an asset that comes back is reactivated. The guard holds a run's
//! retirements when there are too many to be believed. Pure.

use serde::{Deserialize, Serialize};

use crate::matching::{FieldDiff, Fields, Target};

/// `CW_RETIRED_STATES`, `CW_RETIRED_STATUS` and the guard's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RetirePolicy {
    /// Lansweeper states that retire an asset's configuration (`Sold`, `Stolen`), compared
    /// without case.
    pub retired_states: Vec<String>,
    /// The ConnectWise status a retired configuration gets (created when missing).
    pub retired_status: String,
    /// The guard holds a run that would retire more than this many configurations…
    pub guard_count: u64,
    /// …and more than this share (percent) of the linked configurations.
    pub guard_percent: f64,
}

impl Default for RetirePolicy {
    fn default() -> Self {
        Self {
            retired_states: Vec::new(),
            retired_status: "Inactive".into(),
            guard_count: 10,
            guard_percent: 5.0,
        }
    }
}

impl RetirePolicy {
    pub fn is_retired_state(&self, state: Option<&str>) -> bool {
        state.is_some_and(|s| {
            self.retired_states
                .iter()
                .any(|r| r.trim().eq_ignore_ascii_case(s.trim()))
        })
    }

    /// Whether a configuration is retired as the sync retires them.
    pub fn is_retired(&self, configuration: &impl Fields) -> bool {
        let inactive = configuration.at("activeFlag").as_deref() == Some("false");
        let status = configuration.at("status.name");
        inactive
            && status.is_some_and(|s| s.trim().eq_ignore_ascii_case(self.retired_status.trim()))
    }

    /// The changes that retire a configuration.
    pub fn retirement(&self, configuration: &impl Fields) -> Vec<FieldDiff> {
        let status = configuration.at("status.name");
        vec![
            FieldDiff {
                field: "status.name".into(),
                target: Some(Target::Field("status.name".into())),
                current: status,
                desired: self.retired_status.clone(),
            },
            active_flag(false),
        ]
    }

    /// The guard's verdict on retiring `would_retire` of `linked` configurations: `None`
    /// lets them through.
    pub fn guard(&self, would_retire: u64, linked: u64) -> Option<String> {
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let share = if linked == 0 {
            100.0
        } else {
            would_retire as f64 * 100.0 / linked as f64
        };
        (would_retire > self.guard_count && share > self.guard_percent).then(|| {
            format!(
                "{would_retire} of {linked} linked configurations ({share:.1}%) would be retired: more than {} and more than {}%",
                self.guard_count, self.guard_percent
            )
        })
    }
}

/// The change that sets a configuration's active flag.
pub fn active_flag(active: bool) -> FieldDiff {
    FieldDiff {
        field: "activeFlag".into(),
        target: Some(Target::Field("activeFlag".into())),
        current: Some((!active).to_string()),
        desired: active.to_string(),
    }
}

/// What a run decided about retirements, as its report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireGuard {
    /// Why nothing was retired.
    pub reason: String,
    pub would_retire: u64,
    pub linked: u64,
    /// The first few configurations it would have retired, by name.
    pub first: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_guard_holds_only_many_and_a_large_share() {
        let policy = RetirePolicy::default();
        assert_eq!(policy.guard(10, 20), None, "not more than 10");
        assert_eq!(policy.guard(11, 1_000), None, "1.1% is not more than 5%");
        assert!(policy.guard(11, 100).unwrap().contains("11 of 100"));
        assert!(policy.guard(400, 1_000).is_some());
    }

    #[test]
    fn retired_is_inactive_with_the_retired_status() {
        let policy = RetirePolicy {
            retired_states: vec!["Sold".into(), " stolen".into()],
            ..RetirePolicy::default()
        };
        assert!(policy.is_retired_state(Some("STOLEN")));
        assert!(!policy.is_retired_state(Some("Active")));
        assert!(!policy.is_retired_state(None));
        let retired = json!({"activeFlag": false, "status": {"name": "inactive"}});
        assert!(policy.is_retired(&retired));
        assert!(!policy.is_retired(&json!({"activeFlag": false, "status": {"name": "Broken"}})));
        assert!(!policy.is_retired(&json!({"activeFlag": true, "status": {"name": "Inactive"}})));
        let diffs = policy.retirement(&json!({"status": {"name": "Active"}}));
        assert_eq!(diffs[0].desired, "Inactive");
        assert_eq!(
            (diffs[1].field.as_str(), diffs[1].desired.as_str()),
            ("activeFlag", "false")
        );
    }
}
