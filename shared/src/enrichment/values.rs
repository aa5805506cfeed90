//! What an asset should show: the values of the enrichment's Lansweeper fields, derived
//! from a configuration, its agreements and its tickets. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lansweeper::CustomFieldType;
use crate::normalize;

/// The Lansweeper custom fields the enrichment writes, with their types.
pub const FIELDS: &[(&str, CustomFieldType)] = &[
    ("cw_total_tickets", CustomFieldType::Number),
    ("cw_open_tickets", CustomFieldType::Number),
    ("cw_closed_tickets", CustomFieldType::Number),
    ("cw_configuration_url", CustomFieldType::Hyperlink),
    ("cw_agreement_id", CustomFieldType::Text),
    ("cw_agreement_name", CustomFieldType::Text),
    ("cw_agreement_type", CustomFieldType::Text),
    ("cw_agreement_status", CustomFieldType::Text),
    ("cw_agreement_start_date", CustomFieldType::Date),
    ("cw_agreement_end_date", CustomFieldType::Date),
    ("cw_sla", CustomFieldType::Text),
];

/// The agreement an asset shows when its configuration has several: an active one
/// before any other, then the one ending last (no end date counts as latest), then the
/// newest.
pub fn chosen_agreement(agreements: &[Value]) -> Option<&Value> {
    agreements.iter().max_by_key(|a| {
        let active = a.get("agreementStatus").and_then(Value::as_str) == Some("Active");
        let open_ended = a
            .get("noEndingDateFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || a.get("endDate").is_none_or(Value::is_null);
        let end = a
            .get("endDate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let id = a.get("id").and_then(Value::as_i64).unwrap_or(0);
        (active, open_ended, end, id)
    })
}

/// Field name → value an asset should show (empty string: nothing to show).
pub fn desired_values(
    configuration: Option<&Value>,
    agreements: &[Value],
    tickets: &[Value],
    configuration_url: impl Fn(i64) -> String,
) -> BTreeMap<&'static str, String> {
    let mut values: BTreeMap<&'static str, String> = FIELDS
        .iter()
        .map(|(name, _)| (*name, String::new()))
        .collect();
    let Some(configuration) = configuration else {
        return values;
    };
    let closed = tickets
        .iter()
        .filter(|t| t.get("closedFlag").and_then(Value::as_bool) == Some(true))
        .count();
    values.insert("cw_total_tickets", tickets.len().to_string());
    values.insert("cw_open_tickets", (tickets.len() - closed).to_string());
    values.insert("cw_closed_tickets", closed.to_string());
    if let Some(id) = configuration.get("id").and_then(Value::as_i64) {
        values.insert("cw_configuration_url", configuration_url(id));
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let day = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(normalize::iso_day)
            .unwrap_or_default()
    };
    let agreement = chosen_agreement(agreements);
    if let Some(a) = agreement {
        values.insert(
            "cw_agreement_id",
            a.get("id").map(ToString::to_string).unwrap_or_default(),
        );
        values.insert("cw_agreement_name", text(a.get("name")));
        values.insert(
            "cw_agreement_type",
            text(a.get("type").and_then(|t| t.get("name"))),
        );
        values.insert("cw_agreement_status", text(a.get("agreementStatus")));
        values.insert("cw_agreement_start_date", day(a.get("startDate")));
        values.insert("cw_agreement_end_date", day(a.get("endDate")));
    }
    let sla = configuration
        .get("sla")
        .and_then(|s| s.get("name"))
        .or_else(|| {
            agreement
                .and_then(|a| a.get("sla"))
                .and_then(|s| s.get("name"))
        });
    values.insert("cw_sla", text(sla));
    values
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::connectwise::configuration_url;

    fn link(id: i64) -> String {
        configuration_url("https://x/v4_6_release/apis/3.0", "myco", id)
    }
    #[test]
    fn the_active_agreement_ending_last_is_shown() {
        let agreements = vec![
            json!({"id": 1, "agreementStatus": "Expired", "endDate": "2030-01-01T00:00:00Z"}),
            json!({"id": 2, "agreementStatus": "Active", "endDate": "2026-01-01T00:00:00Z"}),
            json!({"id": 3, "agreementStatus": "Active", "endDate": "2027-01-01T00:00:00Z"}),
        ];
        assert_eq!(chosen_agreement(&agreements).unwrap()["id"], 3);
        let open = json!({"id": 4, "agreementStatus": "Active", "noEndingDateFlag": true});
        assert_eq!(
            chosen_agreement(&[agreements[2].clone(), open]).unwrap()["id"],
            4
        );
        assert!(chosen_agreement(&[]).is_none());
    }

    #[test]
    fn values_without_configuration_or_history_are_empty_or_zero() {
        let empty = desired_values(None, &[], &[], link);
        assert!(empty.values().all(String::is_empty));
        let configuration = json!({"id": 7, "sla": {"id": 1, "name": "Premium"}});
        let tickets = vec![
            json!({"closedFlag": true}),
            json!({"closedFlag": false}),
            json!({"closedFlag": false}),
        ];
        let values = desired_values(Some(&configuration), &[], &tickets, |id| {
            configuration_url(
                "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
                "myco",
                id,
            )
        });
        assert_eq!(values["cw_total_tickets"], "3");
        assert_eq!(values["cw_open_tickets"], "2");
        assert_eq!(values["cw_closed_tickets"], "1");
        assert_eq!(values["cw_sla"], "Premium");
        assert_eq!(values["cw_agreement_name"], "");
        assert_eq!(
            values["cw_configuration_url"],
            "https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?companyName=myco&recordType=ConfigFv&recid=7"
        );
        let zero = desired_values(Some(&configuration), &[], &[], link);
        assert_eq!(zero["cw_total_tickets"], "0");
    }

    #[test]
    fn agreement_dates_are_calendar_days() {
        let configuration = json!({"id": 1});
        let agreement = json!({"id": 2, "agreementStatus": "Active",
            "startDate": "2025-02-28T00:00:00Z", "endDate": "2025-02-30T00:00:00Z"});
        let values = desired_values(Some(&configuration), &[agreement], &[], link);
        assert_eq!(values["cw_agreement_start_date"], "2025-02-28");
        assert_eq!(
            values["cw_agreement_end_date"], "",
            "2025-02-30 is not a date"
        );
    }
}
