//! Configuration bodies for ConnectWise, built from staged assets: pure functions.
//!
//! Updates are whole configurations: ConnectWise's PUT resets every field it omits and
//! replaces custom fields as a whole array, so an update starts from the configuration as
//! ConnectWise holds it and changes only the fields that differ. Fields and custom fields
//! the sync does not own survive.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::matching::{FieldDiff, Fields, MatchSpec, Target};
use crate::normalize;
use crate::references::{ReferenceIds, ReferenceKind};

/// What every write needs besides the asset.
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    pub company_id: i64,
    pub references: ReferenceIds,
    /// Custom field caption → id.
    pub custom_field_ids: HashMap<String, i64>,
}

/// Sets one target's value on a configuration body.
fn set(
    body: &mut Map<String, Value>,
    target: &Target,
    value: &str,
    context: &WriteContext,
) -> Result<(), String> {
    if value.is_empty() {
        // Empty clears: ConnectWise's PUT resets what the body omits (what a revert
        // writes back where a field was empty before the run).
        clear(body, target, context);
        return Ok(());
    }
    match target {
        Target::Field(path) => match path.split_once('.') {
            Some((field, "name")) => {
                let kind = ReferenceKind::from_configuration_field(field)
                    .ok_or_else(|| format!("the sync does not write `{path}`"))?;
                // `#id`: a reference no name was known for (as the trail keeps it).
                let known_id = value.strip_prefix('#').and_then(|id| id.parse().ok());
                let id = known_id
                    .or_else(|| context.references.get(kind, value))
                    .ok_or_else(|| {
                        format!(
                            "{} `{value}` does not exist in ConnectWise",
                            kind.configuration_field()
                        )
                    })?;
                kind.point_at(body, id);
            }
            Some(("contact", "id")) => {
                let id: i64 = value
                    .parse()
                    .map_err(|_| format!("`{value}` is not a contact id"))?;
                body.insert("contact".into(), json!({ "id": id }));
            }
            Some(_) => return Err(format!("the sync does not write `{path}`")),
            None if path == "activeFlag" => {
                body.insert(path.clone(), json!(value == "true"));
            }
            None => {
                let value = if path.ends_with("Date") {
                    normalize::date(value)
                        .ok_or_else(|| format!("`{value}` is not a date for {path}"))?
                } else if path == "macAddress" {
                    normalize::mac_address(value).unwrap_or_else(|| value.to_string())
                } else {
                    value.to_string()
                };
                body.insert(path.clone(), json!(value));
            }
        },
        Target::Custom(caption) => {
            let id = *context
                .custom_field_ids
                .get(caption)
                .ok_or_else(|| format!("no custom field `{caption}` in ConnectWise"))?;
            let fields = body
                .entry("customFields")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .ok_or("customFields is not a list")?;
            fields.retain(|f| f.get("id").and_then(Value::as_i64) != Some(id));
            fields.push(json!({ "id": id, "value": value }));
        }
    }
    Ok(())
}

/// Takes a target's value out of a configuration body.
fn clear(body: &mut Map<String, Value>, target: &Target, context: &WriteContext) {
    match target {
        Target::Field(path) => {
            let field = path
                .split_once('.')
                .map_or(path.as_str(), |(field, _)| field);
            body.remove(field);
            if let Some(kind) = ReferenceKind::from_configuration_field(field) {
                body.remove(kind.member());
            }
        }
        Target::Custom(caption) => {
            let id = context.custom_field_ids.get(caption).copied();
            if let Some(fields) = body.get_mut("customFields").and_then(Value::as_array_mut) {
                fields.retain(|f| id.is_none() || f.get("id").and_then(Value::as_i64) != id);
            }
        }
    }
}

/// A new configuration for an unmatched asset.
pub fn create_body(
    spec: &MatchSpec,
    asset: &impl Fields,
    context: &WriteContext,
) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("company".into(), json!({ "id": context.company_id }));
    for (path, target) in spec.targets() {
        if let Some(value) = asset.at(path) {
            set(&mut body, &target, &value, context)?;
        }
    }
    if !body.contains_key("name") {
        return Err("the asset has no name".into());
    }
    if !body.contains_key("type") {
        return Err("the asset has no configuration type".into());
    }
    Ok(Value::Object(body))
}

/// The configuration as ConnectWise holds it, with only `diffs` changed, ready for PUT:
/// read-only members dropped, references reduced to their id, custom fields complete.
pub fn update_body(
    current: &Value,
    diffs: &[FieldDiff],
    context: &WriteContext,
) -> Result<Value, String> {
    let object = current
        .as_object()
        .ok_or("the configuration is not an object")?;
    let mut body = Map::new();
    for (key, value) in object {
        match (key.as_str(), value) {
            ("_info", _) => {}
            ("customFields", Value::Array(fields)) => {
                let kept: Vec<Value> = fields
                    .iter()
                    .filter_map(|f| {
                        let value = f.get("value").filter(|v| !v.is_null())?;
                        Some(json!({ "id": f.get("id")?, "value": value }))
                    })
                    .collect();
                body.insert(key.clone(), Value::Array(kept));
            }
            (_, Value::Object(reference)) if reference.contains_key("id") => {
                body.insert(key.clone(), json!({ "id": reference["id"] }));
            }
            _ => {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    for diff in diffs {
        let target = diff
            .target
            .clone()
            .or_else(|| target_from_label(&diff.field))
            .ok_or_else(|| format!("unknown field `{}`", diff.field))?;
        set(&mut body, &target, &diff.desired, context)?;
    }
    Ok(Value::Object(body))
}

/// The changes of `diffs` a configuration (as ConnectWise holds it now, its location
/// named) still calls for: those whose field holds what the plan found there. A field
/// already holding the desired value needs no write; one changed to anything else since
/// the plan (by hand, most likely) is left as it is and described, for the report.
pub fn still_planned(configuration: &Value, diffs: &[FieldDiff]) -> (Vec<FieldDiff>, Vec<String>) {
    let mut planned = Vec::new();
    let mut changed = Vec::new();
    for diff in diffs {
        let Some(target) = diff
            .target
            .clone()
            .or_else(|| target_from_label(&diff.field))
        else {
            planned.push(diff.clone());
            continue;
        };
        let now = target.current(configuration);
        if target.holds(now.as_deref(), diff.current.as_deref()) {
            planned.push(diff.clone());
        } else if !target.holds(now.as_deref(), Some(&diff.desired)) {
            changed.push(format!(
                "{}: planned from {}, now {}",
                diff.field,
                crate::trail::shown(diff.current.as_deref()),
                crate::trail::shown(now.as_deref())
            ));
        }
    }
    (planned, changed)
}

/// The target a [`FieldDiff`] names, after a trip through JSON.
pub fn target_from_label(label: &str) -> Option<Target> {
    match label.strip_prefix("customFields.") {
        Some(caption) if !caption.is_empty() => Some(Target::Custom(caption.to_string())),
        Some(_) => None,
        None => Some(Target::Field(label.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::differences;

    fn context() -> WriteContext {
        let mut references = ReferenceIds::default();
        for (kind, name, id) in [
            (ReferenceKind::Type, "Windows", 1),
            (ReferenceKind::Type, "Linux", 2),
            (ReferenceKind::Manufacturer, "Dell Inc.", 7),
            (ReferenceKind::Location, "Rotterdam", 4),
        ] {
            references
                .0
                .entry(kind)
                .or_default()
                .insert(crate::references::name_key(name), id);
        }
        WriteContext {
            company_id: 3,
            references,
            custom_field_ids: [
                ("ls_asset_id", 5),
                ("ls_asset_url", 6),
                ("ls_software", 7),
                ("ls_asset_location", 8),
            ]
            .into_iter()
            .map(|(c, i)| (c.to_string(), i))
            .collect(),
        }
    }

    #[test]
    fn create_body_uses_reference_ids_and_custom_fields() {
        let asset = json!({"key": "k", "name": "PC", "type": "windows", "manufacturer": "DELL INC.",
                           "macAddress": "AA:BB:CC:DD:EE:FF", "url": "https://u"});
        let body = create_body(&MatchSpec::for_staged_assets(), &asset, &context()).unwrap();
        assert_eq!(body["company"], json!({"id": 3}));
        assert_eq!(body["type"], json!({"id": 1}));
        assert_eq!(body["manufacturer"], json!({"id": 7}));
        assert_eq!(
            body["customFields"],
            json!([{"id": 5, "value": "k"}, {"id": 6, "value": "https://u"}])
        );
        let missing = json!({"key": "k", "name": "PC", "type": "Plotter"});
        assert_eq!(
            create_body(&MatchSpec::for_staged_assets(), &missing, &context()).unwrap_err(),
            "type `Plotter` does not exist in ConnectWise"
        );
    }

    #[test]
    fn update_keeps_what_the_sync_does_not_own() {
        let current = json!({
            "id": 9, "name": "Old", "notes": "by hand", "type": {"id": 1, "name": "Windows", "_info": {}},
            "company": {"id": 3, "identifier": "X"},
            "customFields": [
                {"id": 5, "caption": "ls_asset_id", "value": "k"},
                {"id": 6, "caption": "ls_asset_url"},
                {"id": 42, "caption": "warranty_contact", "value": "Jane"}
            ],
            "_info": {"lastUpdated": "x"}
        });
        let asset = json!({"key": "k", "name": "New", "type": "Linux", "url": "https://u"});
        let diffs = differences(&MatchSpec::for_staged_assets(), &asset, &current);
        let body = update_body(&current, &diffs, &context()).unwrap();
        assert_eq!(body["name"], "New");
        assert_eq!(body["notes"], "by hand");
        assert_eq!(body["type"], json!({"id": 2}));
        assert_eq!(body["company"], json!({"id": 3}));
        assert!(body.get("_info").is_none());
        assert_eq!(
            body["customFields"],
            json!([{"id": 5, "value": "k"}, {"id": 42, "value": "Jane"}, {"id": 6, "value": "https://u"}])
        );
    }

    #[test]
    fn a_contact_is_written_as_its_id() {
        let asset = json!({"key": "k", "name": "PC", "type": "Windows", "contactId": "41"});
        let body = create_body(&MatchSpec::for_staged_assets(), &asset, &context()).unwrap();
        assert_eq!(body["contact"], json!({"id": 41}));
        let current = json!({"id": 9, "name": "PC", "contact": {"id": 40, "name": "Ann Lee"}});
        let diffs = differences(&MatchSpec::for_staged_assets(), &asset, &current);
        let body = update_body(&current, &diffs, &context()).unwrap();
        assert_eq!(body["contact"], json!({"id": 41}));
    }

    /// ConnectWise's model gives a configuration its location by id alone.
    ///
    /// Breaking it looks like: a `location` object in every bulk POST and PUT, a field
    /// the published model does not have.
    #[test]
    fn a_location_is_written_by_id_alone() {
        let spec = MatchSpec::for_staged_assets();
        let asset = json!({"key": "k", "name": "PC", "type": "Windows", "location": "ROTTERDAM"});
        let body = create_body(&spec, &asset, &context()).unwrap();
        assert_eq!(body["locationId"], 4);
        assert!(body.get("location").is_none(), "{body}");
        let current = json!({"id": 9, "name": "PC", "type": {"id": 1}, "locationId": 2});
        let diffs = [FieldDiff {
            field: "location.name".into(),
            target: None,
            current: Some("#2".into()),
            desired: "Rotterdam".into(),
        }];
        let body = update_body(&current, &diffs, &context()).unwrap();
        assert_eq!(body["locationId"], 4);
        assert!(body.get("location").is_none(), "{body}");
    }

    /// Breaking it looks like: a revert of a field that was empty before the run writes
    /// an empty string, or fails on a reference named ``, instead of clearing it.
    #[test]
    fn an_empty_value_clears_the_field() {
        let current = json!({
            "id": 9, "name": "PC", "manufacturer": {"id": 7, "name": "Dell Inc."},
            "locationId": 4, "serialNumber": "S1",
            "customFields": [{"id": 5, "value": "k"}, {"id": 6, "value": "https://u"}]
        });
        let clearing = |field: &str| FieldDiff {
            field: field.into(),
            target: None,
            current: None,
            desired: String::new(),
        };
        let diffs = [
            clearing("manufacturer.name"),
            clearing("location.name"),
            clearing("serialNumber"),
            clearing("customFields.ls_asset_url"),
        ];
        let body = update_body(&current, &diffs, &context()).unwrap();
        for gone in ["manufacturer", "location", "locationId", "serialNumber"] {
            assert!(body.get(gone).is_none(), "{gone}: {body}");
        }
        assert_eq!(body["customFields"], json!([{"id": 5, "value": "k"}]));
        assert_eq!(body["name"], "PC");
    }
}
