//! Writing configurations in bulk: each item checked as ConnectWise would check it before
//! the request, so an invalid one fails alone, locally, with its reason.

use reqwest::Method;
use serde_json::Value;

use super::client::{ApiErrorBody, BulkItemResult, ConnectWiseClient};
use super::error::{ApiErrorDetail, ConnectWiseError};
use super::query::endpoint::CONFIGURATIONS_BULK;

/// Longest reference names ConnectWise stores.
pub const REFERENCE_NAME_MAX: usize = 50;
pub const CONFIGURATION_NAME_MAX: usize = 100;

/// Sends the valid items in one bulk request; invalid ones fail alone, locally, with the
/// reason, and take their place in the answer so every item has a result.
pub async fn bulk(
    client: &ConnectWiseClient,
    method: Method,
    configurations: &[Value],
    needs_id: bool,
) -> Result<Vec<BulkItemResult>, ConnectWiseError> {
    let mut results: Vec<Option<BulkItemResult>> = vec![None; configurations.len()];
    let mut to_send = Vec::new();
    let mut sent_index = Vec::new();
    for (index, item) in configurations.iter().enumerate() {
        match validate_configuration(item, needs_id) {
            Ok(()) => {
                to_send.push(item.clone());
                sent_index.push(index);
            }
            Err(error) => {
                results[index] = Some(local_failure(index, &error));
            }
        }
    }
    if !to_send.is_empty() {
        let answered = client.bulk(method, CONFIGURATIONS_BULK, &to_send).await?;
        for (mut result, index) in answered.into_iter().zip(sent_index) {
            result.original_index = index;
            results[index] = Some(result);
        }
    }
    Ok(results.into_iter().flatten().collect())
}

fn local_failure(index: usize, error: &ConnectWiseError) -> BulkItemResult {
    let (field, message) = match error {
        ConnectWiseError::InvalidInput { field, message } => (field.clone(), message.clone()),
        other => (String::new(), other.to_string()),
    };
    let message = format!("{field} {message}");
    BulkItemResult {
        success: false,
        original_index: index,
        status_code: 400,
        data: None,
        error: Some(ApiErrorBody {
            code: "InvalidInput".into(),
            message: format!("not sent: {message}"),
            errors: vec![ApiErrorDetail {
                code: Some("InvalidInput".into()),
                message: Some(message),
                resource: Some("configuration".into()),
                field: Some(field),
            }],
        }),
    }
}

/// The checks ConnectWise would make, made before the call.
pub fn validate_configuration(item: &Value, needs_id: bool) -> Result<(), ConnectWiseError> {
    let object = item
        .as_object()
        .ok_or_else(|| ConnectWiseError::invalid("configuration", "must be an object"))?;
    if needs_id && object.get("id").and_then(Value::as_i64).is_none() {
        return Err(ConnectWiseError::invalid("id", "is required to update"));
    }
    let name = object.get("name").and_then(Value::as_str).unwrap_or("");
    checked_name("name", name, CONFIGURATION_NAME_MAX)?;
    for reference in ["type", "company"] {
        if object
            .get(reference)
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            .is_none()
        {
            return Err(ConnectWiseError::invalid(
                format!("{reference}/id"),
                "is required",
            ));
        }
    }
    Ok(())
}

/// Trimmed, non-empty and within `max` characters as ConnectWise counts them (UTF-16
/// units: an emoji counts two).
pub fn checked_name<'a>(
    field: &str,
    value: &'a str,
    max: usize,
) -> Result<&'a str, ConnectWiseError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ConnectWiseError::invalid(field, "is required"));
    }
    let length = crate::normalize::cw_len(trimmed);
    if length > max {
        return Err(ConnectWiseError::invalid(
            field,
            format!("is {length} characters long; ConnectWise allows {max}"),
        ));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("name", "  Dell ", 50).unwrap(), "Dell");
        assert!(checked_name("name", "   ", 50).is_err());
        let long = "é".repeat(51);
        let err = checked_name("name", &long, 50).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input `name`: is 51 characters long; ConnectWise allows 50"
        );
        assert!(checked_name("name", &"é".repeat(50), 50).is_ok());
        // ConnectWise counts UTF-16 units: 26 emoji are 52.
        assert!(checked_name("name", &"🙂".repeat(26), 50).is_err());
    }

    #[test]
    fn configurations_need_name_type_and_company() {
        let ok = json!({"name": "pc", "type": {"id": 1}, "company": {"id": 2}});
        assert!(validate_configuration(&ok, false).is_ok());
        assert!(validate_configuration(&ok, true).is_err());
        let no_type = json!({"name": "pc", "company": {"id": 2}});
        assert_eq!(
            validate_configuration(&no_type, false)
                .unwrap_err()
                .to_string(),
            "invalid input `type/id`: is required"
        );
        let long = json!({"name": "x".repeat(101), "type": {"id": 1}, "company": {"id": 2}});
        assert!(validate_configuration(&long, false).is_err());
    }
}
