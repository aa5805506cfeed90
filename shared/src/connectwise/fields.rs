//! Custom fields as ConnectWise shapes them on a record (`customFields: [{id, caption,
//! type, value}]`). ConnectWise compares captions without case (`LS_ASSET_ID` is the
//! field `ls_asset_id`), and so does every reader here.

use serde_json::Value;

/// Whether two captions name the same custom field.
pub fn same_caption(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The custom field of `record` captioned `caption`, whatever its case.
pub fn custom_field<'a>(record: &'a Value, caption: &str) -> Option<&'a Value> {
    record.get("customFields")?.as_array()?.iter().find(|f| {
        f.get("caption")
            .and_then(Value::as_str)
            .is_some_and(|c| same_caption(c, caption))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_caption_names_its_field_whatever_its_case() {
        let record = json!({"customFields": [
            {"id": 1, "caption": "Other", "value": "x"},
            {"id": 2, "caption": "LS_ASSET_ID ", "value": "k1"},
        ]});
        assert_eq!(custom_field(&record, "ls_asset_id").unwrap()["id"], 2);
        assert_eq!(custom_field(&record, "missing"), None);
        assert_eq!(custom_field(&json!({}), "ls_asset_id"), None);
        assert!(same_caption("Ls_Asset_Id", "ls_asset_id"));
        assert!(!same_caption("ls_asset_ids", "ls_asset_id"));
    }
}
