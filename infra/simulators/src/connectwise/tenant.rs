//! The simulated tenant's data and the write rules ConnectWise applies to it: required
//! fields, length limits, references that must exist, unique names, PUT replacing the
//! whole record, PATCH applying JSON-patch, custom fields replaced as a whole array.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::schema::{CONFIGURATIONS, Kind, RESOURCES, Reference, Resource, USER_DEFINED_FIELDS};

/// A custom field defined on configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldDef {
    pub id: i64,
    pub caption: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default = "entry_field")]
    pub entry_method: String,
    #[serde(default)]
    pub number_of_decimals: i64,
}

fn entry_field() -> String {
    "EntryField".into()
}

fn default_configuration_pod() -> i64 {
    17
}

/// The field types a definition may have.
const FIELD_TYPES: &[&str] = &[
    "Button",
    "Checkbox",
    "Currency",
    "Date",
    "Hyperlink",
    "IPAddress",
    "Number",
    "Password",
    "Percent",
    "Text",
    "TextArea",
];

fn default_codebase() -> String {
    "v4_6_release/".into()
}

/// What `--data FILE` holds, and what the generator makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantData {
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    #[serde(default = "default_codebase")]
    pub codebase: String,
    #[serde(default)]
    pub company_name: String,
    #[serde(default)]
    pub configuration_custom_fields: Vec<CustomFieldDef>,
    /// The configurations screen's `podId` among the custom field definitions (it
    /// differs between tenants).
    #[serde(default = "default_configuration_pod")]
    pub configuration_pod_id: i64,
    /// Records by collection name (`locations`, `configurations`, …), as the API shows them.
    #[serde(default)]
    pub collections: BTreeMap<String, Vec<Value>>,
    /// Configurations attached to agreements and tickets: `"agreements/12"` → ids.
    #[serde(default)]
    pub attachments: BTreeMap<String, BTreeSet<i64>>,
}

/// One ConnectWise error: `{"code","message","errors":[…]}` with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"code": code, "message": message.into(), "errors": null}),
        }
    }

    fn invalid(resource: &str, errors: &[Value]) -> Self {
        Self {
            status: 400,
            body: json!({
                "code": "InvalidObject",
                "message": format!("{resource} object is invalid"),
                "errors": errors,
            }),
        }
    }
}

fn field_error(resource: &str, field: &str, code: &str, message: &str) -> Value {
    json!({"code": code, "message": message, "resource": resource, "field": field})
}

#[derive(Debug, Default)]
struct Collection {
    next_id: i64,
    records: BTreeMap<i64, Value>,
}

pub struct Tenant {
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    pub codebase: String,
    pub company_name: String,
    pub custom_fields: Vec<CustomFieldDef>,
    collections: HashMap<String, Collection>,
    attachments: BTreeMap<String, BTreeSet<i64>>,
    configuration_pod_id: i64,
    /// How a write naming a reference that is gone is refused.
    pub reference_refusal: ReferenceRefusal,
}

/// The shapes a refusal of a write naming a missing reference takes: ConnectWise
/// publishes none, and tenants (and versions) word it differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReferenceRefusal {
    /// `{"code":"InvalidField","field":"manufacturer","message":"no record with id 35 in …"}`.
    #[default]
    Member,
    /// `{"code":"InvalidReference","field":"manufacturer/id","message":"manufacturer 35 was not found"}`.
    SlashPath,
    /// As [`ReferenceRefusal::SlashPath`] with `field: "manufacturer.id"`.
    DotPath,
    /// No `field`, only the message: `manufacturer 35 was not found`.
    MessageOnly,
    /// A bulk write refused whole (nothing saved) with that message and no details.
    WholeRequest,
    /// A bulk write refused whole with one detail naming the member
    /// (`manufacturer/id`), not the id: which item it means is not said.
    WholeRequestByField,
}

impl ReferenceRefusal {
    pub const ALL: [Self; 6] = [
        Self::Member,
        Self::SlashPath,
        Self::DotPath,
        Self::MessageOnly,
        Self::WholeRequest,
        Self::WholeRequestByField,
    ];

    /// The detail a write naming `id` as its `member` (gone from `path`) is refused with.
    fn detail(self, resource: &str, member: &str, id: Option<i64>, path: &str) -> Value {
        let kind = member.strip_suffix("Id").unwrap_or(member);
        let id_text = id.map_or_else(|| "?".to_string(), |id| id.to_string());
        let not_found = format!("{kind} {id_text} was not found");
        match self {
            Self::Member => field_error(
                resource,
                member,
                "InvalidField",
                &format!("no record with id {id_text} in {path}"),
            ),
            Self::SlashPath => field_error(
                resource,
                &format!("{kind}/id"),
                "InvalidReference",
                &not_found,
            ),
            Self::DotPath => field_error(
                resource,
                &format!("{kind}.id"),
                "InvalidReference",
                &not_found,
            ),
            Self::MessageOnly | Self::WholeRequest => {
                json!({"code": "InvalidReference", "message": not_found, "resource": resource})
            }
            Self::WholeRequestByField => field_error(
                resource,
                &format!("{kind}/id"),
                "InvalidReference",
                "The referenced record was not found.",
            ),
        }
    }
}

impl Tenant {
    pub fn from_data(data: TenantData) -> Result<Self, String> {
        let mut collections: HashMap<String, Collection> = HashMap::new();
        for resource in RESOURCES {
            collections.insert(resource.collection.to_string(), Collection::default());
        }
        for (name, records) in data.collections {
            let collection = collections
                .get_mut(&name)
                .ok_or_else(|| format!("unknown collection `{name}` in tenant data"))?;
            for record in records {
                let id = record
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| format!("a record of `{name}` has no integer id"))?;
                collection.next_id = collection.next_id.max(id);
                collection.records.insert(id, record);
            }
        }
        // The configurations' custom fields are definitions of their screen, same ids.
        let definitions = collections
            .get_mut(USER_DEFINED_FIELDS.collection)
            .ok_or("no collection of custom field definitions")?;
        for (index, def) in data.configuration_custom_fields.iter().enumerate() {
            definitions.next_id = definitions.next_id.max(def.id);
            definitions.records.entry(def.id).or_insert_with(|| {
                json!({"id": def.id, "podId": data.configuration_pod_id, "caption": def.caption,
                       "sequenceNumber": index + 1, "fieldTypeIdentifier": def.field_type,
                       "entryTypeIdentifier": def.entry_method, "numberDecimals": def.number_of_decimals,
                       "requiredFlag": false, "displayOnScreenFlag": true, "readOnlyFlag": false,
                       "listViewFlag": false})
            });
        }
        Ok(Self {
            company_id: data.company_id,
            public_key: data.public_key,
            private_key: data.private_key,
            codebase: data.codebase,
            company_name: data.company_name,
            custom_fields: data.configuration_custom_fields,
            collections,
            attachments: data.attachments,
            configuration_pod_id: data.configuration_pod_id,
            reference_refusal: ReferenceRefusal::default(),
        })
    }

    pub fn to_data(&self) -> TenantData {
        TenantData {
            company_id: self.company_id.clone(),
            public_key: self.public_key.clone(),
            private_key: self.private_key.clone(),
            codebase: self.codebase.clone(),
            company_name: self.company_name.clone(),
            configuration_custom_fields: self.custom_fields.clone(),
            configuration_pod_id: self.configuration_pod_id,
            collections: self
                .collections
                .iter()
                .map(|(name, c)| (name.clone(), c.records.values().cloned().collect()))
                .collect(),
            attachments: self.attachments.clone(),
        }
    }

    /// Records of a collection in id order.
    pub fn records(&self, collection: &str) -> impl Iterator<Item = &Value> {
        self.collections
            .get(collection)
            .into_iter()
            .flat_map(|c| c.records.values())
    }

    /// Records with an id above `after`, in id order (forward-only paging).
    pub fn records_after(&self, collection: &str, after: i64) -> impl Iterator<Item = &Value> {
        self.collections
            .get(collection)
            .into_iter()
            .flat_map(move |c| c.records.range(after.saturating_add(1)..).map(|(_, r)| r))
    }

    pub fn delete(&mut self, resource: &Resource, id: i64) -> Result<(), ApiError> {
        self.collection_mut(resource)
            .records
            .remove(&id)
            .ok_or_else(|| not_found(resource, id))?;
        if resource.collection == USER_DEFINED_FIELDS.collection {
            self.follow_definitions();
        }
        Ok(())
    }

    /// Attaches a configuration to an agreement or ticket (`POST /{id}/configurations`).
    pub fn attach(
        &mut self,
        resource: &Resource,
        id: i64,
        configuration: i64,
    ) -> Result<(), ApiError> {
        if self.get(resource.collection, id).is_none() {
            return Err(not_found(resource, id));
        }
        if self.get("configurations", configuration).is_none() {
            return Err(ApiError::invalid(
                resource.name,
                &[field_error(
                    resource.name,
                    "id",
                    "InvalidField",
                    &format!("no configuration with id {configuration}"),
                )],
            ));
        }
        self.attachments
            .entry(format!("{}/{id}", resource.collection))
            .or_default()
            .insert(configuration);
        Ok(())
    }

    /// `POST /{id}/configurations`: attaches as [`Tenant::attach`], and refuses a
    /// configuration attached already, as ConnectWise refuses a record that exists.
    pub fn attach_once(
        &mut self,
        resource: &Resource,
        id: i64,
        configuration: i64,
    ) -> Result<(), ApiError> {
        if self.attached(resource, id).contains(&configuration) {
            return Err(ApiError::invalid(
                resource.name,
                &[field_error(
                    resource.name,
                    "id",
                    "ObjectExists",
                    &format!("configuration {configuration} is attached already"),
                )],
            ));
        }
        self.attach(resource, id, configuration)
    }

    /// Takes a configuration off a ticket or an agreement.
    pub fn detach(&mut self, resource: &Resource, id: i64, configuration: i64) {
        if let Some(ids) = self
            .attachments
            .get_mut(&format!("{}/{id}", resource.collection))
        {
            ids.retain(|c| *c != configuration);
        }
    }

    /// Configuration ids attached to an agreement or ticket, ascending.
    pub fn attached(&self, resource: &Resource, id: i64) -> Vec<i64> {
        self.attachments
            .get(&format!("{}/{id}", resource.collection))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The name of the location a configuration's `locationId` names; null when none.
    pub fn location_name(&self, configuration: &Value) -> Value {
        configuration
            .get("locationId")
            .and_then(Value::as_i64)
            .and_then(|id| self.get("locations", id))
            .map_or(Value::Null, |location| location["name"].clone())
    }

    pub fn get(&self, collection: &str, id: i64) -> Option<&Value> {
        self.collections.get(collection)?.records.get(&id)
    }

    /// POST: a new record from `body`.
    pub fn create(&mut self, resource: &Resource, body: &Value) -> Result<Value, ApiError> {
        let mut record = self.build(resource, body)?;
        self.check_unique(resource, &record, None)?;
        if resource.collection == USER_DEFINED_FIELDS.collection {
            self.check_definition(&record)?;
        }
        let collection = self.collection_mut(resource);
        collection.next_id += 1;
        let id = collection.next_id;
        record.insert("id".into(), json!(id));
        let now = now_iso();
        record.insert(
            "_info".into(),
            json!({"dateEntered": now, "enteredBy": "sim", "lastUpdated": now, "updatedBy": "sim"}),
        );
        let record = Value::Object(record);
        collection.records.insert(id, record.clone());
        if resource.collection == USER_DEFINED_FIELDS.collection {
            self.follow_definitions();
        }
        Ok(record)
    }

    /// A new definition: a known type, and a caption not already on its screen (compared
    /// as ConnectWise compares names).
    fn check_definition(&self, record: &Map<String, Value>) -> Result<(), ApiError> {
        let field_type = record["fieldTypeIdentifier"].as_str().unwrap_or("");
        if !FIELD_TYPES.contains(&field_type) {
            return Err(ApiError::invalid(
                USER_DEFINED_FIELDS.name,
                &[field_error(
                    USER_DEFINED_FIELDS.name,
                    "fieldTypeIdentifier",
                    "InvalidField",
                    &format!(
                        "fieldTypeIdentifier `{field_type}` is not one of {}.",
                        FIELD_TYPES.join(", ")
                    ),
                )],
            ));
        }
        let caption = record["caption"]
            .as_str()
            .unwrap_or("")
            .trim()
            .to_lowercase();
        let taken = self.records(USER_DEFINED_FIELDS.collection).any(|d| {
            d["podId"] == record["podId"]
                && d["caption"]
                    .as_str()
                    .is_some_and(|c| c.trim().to_lowercase() == caption)
        });
        if taken {
            return Err(ApiError::invalid(
                USER_DEFINED_FIELDS.name,
                &[field_error(
                    USER_DEFINED_FIELDS.name,
                    "caption",
                    "ObjectExists",
                    "A custom field with this caption already exists on this screen.",
                )],
            ));
        }
        Ok(())
    }

    /// The configurations' custom fields are their screen's definitions: rebuilt after a
    /// definition is created or deleted, every configuration showing the new set.
    fn follow_definitions(&mut self) {
        let pod = self.configuration_pod_id;
        self.custom_fields = self
            .records(USER_DEFINED_FIELDS.collection)
            .filter(|d| d["podId"].as_i64() == Some(pod))
            .filter_map(|d| {
                Some(CustomFieldDef {
                    id: d["id"].as_i64()?,
                    caption: d["caption"].as_str()?.to_string(),
                    field_type: d["fieldTypeIdentifier"].as_str()?.to_string(),
                    entry_method: d["entryTypeIdentifier"]
                        .as_str()
                        .unwrap_or("EntryField")
                        .to_string(),
                    number_of_decimals: d["numberDecimals"].as_i64().unwrap_or(0),
                })
            })
            .collect();
        self.complete_custom_fields();
    }

    /// PUT: the record becomes `body`; every field it omits is reset.
    pub fn replace(
        &mut self,
        resource: &Resource,
        id: i64,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let existing = self
            .get(resource.collection, id)
            .cloned()
            .ok_or_else(|| not_found(resource, id))?;
        let record = self.build(resource, body)?;
        self.store_update(resource, id, &existing, record)
    }

    /// PATCH: JSON-patch operations on the stored record.
    pub fn patch(
        &mut self,
        resource: &Resource,
        id: i64,
        operations: &Value,
    ) -> Result<Value, ApiError> {
        let existing = self
            .get(resource.collection, id)
            .cloned()
            .ok_or_else(|| not_found(resource, id))?;
        let operations = operations.as_array().ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidObject",
                "PATCH body must be an array of operations",
            )
        })?;
        let mut draft = existing.clone();
        let object = draft
            .as_object_mut()
            .ok_or_else(|| ApiError::new(500, "Internal", "stored record is not an object"))?;
        for operation in operations {
            let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
            let path = operation
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_start_matches('/');
            if path.contains('/') {
                return Err(ApiError::new(
                    400,
                    "InvalidObject",
                    format!(
                        "path `{path}`: reference and custom fields are replaced whole, not by sub-path"
                    ),
                ));
            }
            // Paths are case-sensitive in ConnectWise's JSON-patch.
            if resource.fields.iter().all(|f| f.name != path) {
                return Err(ApiError::new(
                    400,
                    "InvalidObject",
                    format!("path `{path}` is not a field of {}", resource.name),
                ));
            }
            match op {
                "add" | "replace" => {
                    let value = operation.get("value").cloned().ok_or_else(|| {
                        ApiError::new(
                            400,
                            "InvalidObject",
                            format!("`{op}` of `{path}` needs a value"),
                        )
                    })?;
                    object.insert(path.to_string(), value);
                }
                "remove" => {
                    object.remove(path);
                }
                other => {
                    return Err(ApiError::new(
                        400,
                        "InvalidObject",
                        format!("operation `{other}` is not supported"),
                    ));
                }
            }
        }
        let record = self.build(resource, &draft)?;
        self.store_update(resource, id, &existing, record)
    }

    fn store_update(
        &mut self,
        resource: &Resource,
        id: i64,
        existing: &Value,
        mut record: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        self.check_unique(resource, &record, Some(id))?;
        record.insert("id".into(), json!(id));
        let mut info = existing.get("_info").cloned().unwrap_or_else(|| json!({}));
        info["lastUpdated"] = json!(now_iso());
        info["updatedBy"] = json!("sim");
        record.insert("_info".into(), info);
        let record = Value::Object(record);
        self.collection_mut(resource)
            .records
            .insert(id, record.clone());
        Ok(record)
    }

    fn collection_mut(&mut self, resource: &Resource) -> &mut Collection {
        self.collections
            .entry(resource.collection.to_string())
            .or_default()
    }

    fn check_unique(
        &self,
        resource: &Resource,
        record: &Map<String, Value>,
        own_id: Option<i64>,
    ) -> Result<(), ApiError> {
        let Some(field) = resource.unique else {
            return Ok(());
        };
        let Some(value) = record.get(field).and_then(Value::as_str) else {
            return Ok(());
        };
        // As SQL Server's collation compares: without case, trailing spaces ignored.
        let collated = |text: &str| text.trim_end().to_lowercase();
        let key = collated(value);
        let taken = self.records(resource.collection).any(|other| {
            other.get("id").and_then(Value::as_i64) != own_id
                && other
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| collated(v) == key)
        });
        if taken {
            return Err(ApiError::invalid(
                resource.name,
                &[field_error(
                    resource.name,
                    field,
                    "ObjectExists",
                    &format!("The {field} '{value}' is already in use."),
                )],
            ));
        }
        Ok(())
    }

    /// The refusal of a whole bulk write, when this tenant refuses a missing reference
    /// that way ([`ReferenceRefusal::WholeRequest`]) and an item names one.
    pub fn whole_refusal(&self, resource: &Resource, items: &[Value]) -> Option<ApiError> {
        let by_field = match self.reference_refusal {
            ReferenceRefusal::WholeRequest => false,
            ReferenceRefusal::WholeRequestByField => true,
            _ => return None,
        };
        items.iter().find_map(|item| {
            let refused = self.build(resource, item).err()?;
            let detail = refused.body["errors"]
                .as_array()?
                .iter()
                .find(|d| d["code"] == "InvalidReference")?
                .clone();
            Some(if by_field {
                ApiError::invalid(resource.name, &[detail])
            } else {
                ApiError::new(
                    400,
                    "InvalidObject",
                    detail["message"].as_str().unwrap_or_default(),
                )
            })
        })
    }

    /// The record `body` describes, as stored: known fields only, validated, references
    /// resolved, booleans defaulted, custom fields complete.
    #[allow(
        clippy::too_many_lines,
        reason = "ConnectWise's checks of a record, in the order it makes them, each with its own error"
    )]
    fn build(&self, resource: &Resource, body: &Value) -> Result<Map<String, Value>, ApiError> {
        let input = body.as_object().ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidObject",
                format!("{} must be a JSON object", resource.name),
            )
        })?;
        let mut record = Map::new();
        let mut errors = Vec::new();
        for spec in resource.fields {
            let given = input.get(spec.name).filter(|v| !v.is_null());
            let problem =
                |code: &str, message: String| field_error(resource.name, spec.name, code, &message);
            match (spec.kind, given) {
                (Kind::Bool { default }, None) => {
                    record.insert(spec.name.into(), json!(default));
                }
                (Kind::CustomFields, given) => match self.custom_field_values(given) {
                    Ok(fields) => {
                        record.insert(spec.name.into(), Value::Array(fields));
                    }
                    Err(message) => errors.push(problem("InvalidField", message)),
                },
                (_, None) => {
                    if spec.required {
                        errors.push(problem(
                            "NullOrEmpty",
                            format!("{} is required.", spec.name),
                        ));
                    }
                }
                (Kind::Text(max), Some(value)) => match value.as_str() {
                    Some(text) if text.trim().is_empty() && spec.required => {
                        errors.push(problem(
                            "NullOrEmpty",
                            format!("{} is required.", spec.name),
                        ));
                    }
                    // .NET / nvarchar lengths: UTF-16 code units (an emoji counts two).
                    Some(text) if text.encode_utf16().count() > max => errors.push(problem(
                        "InvalidField",
                        format!("{} cannot be longer than {max} characters.", spec.name),
                    )),
                    Some(text) => {
                        record.insert(spec.name.into(), json!(text));
                    }
                    None => errors.push(problem(
                        "InvalidField",
                        format!("{} must be text.", spec.name),
                    )),
                },
                (Kind::Int, Some(value)) => match value.as_i64() {
                    Some(n) => {
                        record.insert(spec.name.into(), json!(n));
                    }
                    None => errors.push(problem(
                        "InvalidField",
                        format!("{} must be an integer.", spec.name),
                    )),
                },
                (Kind::Bool { .. }, Some(value)) => match value.as_bool() {
                    Some(b) => {
                        record.insert(spec.name.into(), json!(b));
                    }
                    None => errors.push(problem(
                        "InvalidField",
                        format!("{} must be true or false.", spec.name),
                    )),
                },
                (Kind::Date, Some(value)) => match value.as_str().and_then(normalise_date) {
                    Some(date) => {
                        record.insert(spec.name.into(), json!(date));
                    }
                    None => errors.push(problem(
                        "InvalidField",
                        format!(
                            "{} must be an ISO-8601 UTC date (2025-10-09T07:34:42Z).",
                            spec.name
                        ),
                    )),
                },
                (Kind::Items, Some(value)) => {
                    if value
                        .as_array()
                        .is_some_and(|items| items.iter().all(Value::is_object))
                    {
                        record.insert(spec.name.into(), value.clone());
                    } else {
                        errors.push(problem(
                            "InvalidField",
                            format!("{} must be an array of objects.", spec.name),
                        ));
                    }
                }
                (Kind::Inline, Some(value)) => {
                    if value.is_object() {
                        record.insert(spec.name.into(), value.clone());
                    } else {
                        errors.push(problem(
                            "InvalidField",
                            format!("{} must be an object.", spec.name),
                        ));
                    }
                }
                (Kind::Reference(reference), Some(value)) => match self.resolve(reference, value) {
                    Ok(resolved) => {
                        record.insert(spec.name.into(), resolved);
                    }
                    Err(_) if value.get("id").and_then(Value::as_i64).is_some() => {
                        errors.push(self.reference_refusal.detail(
                            resource.name,
                            spec.name,
                            value.get("id").and_then(Value::as_i64),
                            reference.path,
                        ));
                    }
                    Err(message) => errors.push(problem("InvalidField", message)),
                },
            }
        }
        // A configuration's location is an id that must name a location.
        if resource.fields.iter().any(|f| f.name == "locationId")
            && let Some(id) = record.get("locationId").and_then(Value::as_i64)
            && self
                .resolve(&super::schema::LOCATION_REF, &json!({"id": id}))
                .is_err()
        {
            errors.push(self.reference_refusal.detail(
                resource.name,
                "locationId",
                Some(id),
                super::schema::LOCATION_REF.path,
            ));
        }
        if errors.is_empty() {
            Ok(record)
        } else {
            Err(ApiError::invalid(resource.name, &errors))
        }
    }

    /// A reference is stored as `{id}`; [`Tenant::render`] adds what it points at.
    fn resolve(&self, reference: &Reference, value: &Value) -> Result<Value, String> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or("a reference needs an integer id")?;
        if self.get(reference.collection, id).is_none() {
            return Err(format!("no record with id {id} in {}", reference.path));
        }
        Ok(json!({ "id": id }))
    }

    /// A stored record as the API shows it: references carry the current name of what
    /// they point at and an `_info` link, as ConnectWise's joins do.
    pub fn render(&self, resource: &Resource, record: &Value, base: &str) -> Value {
        let mut shown = record.clone();
        for spec in resource.fields {
            let Kind::Reference(reference) = spec.kind else {
                continue;
            };
            let Some(slot) = shown.get_mut(spec.name) else {
                continue;
            };
            let Some(id) = slot.get("id").and_then(Value::as_i64) else {
                continue;
            };
            let mut resolved = Map::new();
            resolved.insert("id".into(), json!(id));
            if let Some(target) = self.get(reference.collection, id) {
                for (own, source) in reference.labels {
                    if let Some(label) = target.get(*source) {
                        resolved.insert((*own).into(), label.clone());
                    }
                }
                if reference.collection == "contacts" {
                    resolved.insert("name".into(), json!(contact_name(target)));
                }
            }
            let link_name = reference.path.rsplit('/').next().unwrap_or("ref");
            resolved.insert(
                "_info".into(),
                json!({ format!("{link_name}_href"): format!("{base}/{}/{id}", reference.path) }),
            );
            *slot = Value::Object(resolved);
        }
        shown
    }

    /// The whole custom field array: every definition, with the value given for it or none.
    fn custom_field_values(&self, given: Option<&Value>) -> Result<Vec<Value>, String> {
        let mut values: HashMap<i64, Value> = HashMap::new();
        if let Some(given) = given {
            let items = given.as_array().ok_or("customFields must be an array")?;
            for item in items {
                let id = item
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or("every custom field needs its integer id")?;
                let def = self
                    .custom_fields
                    .iter()
                    .find(|d| d.id == id)
                    .ok_or_else(|| format!("no custom field with id {id}"))?;
                let value = item.get("value").cloned().unwrap_or(Value::Null);
                let fits = match (def.field_type.as_str(), &value) {
                    (_, Value::Null) => true,
                    ("Number" | "Currency" | "Percent", v) => v.is_number(),
                    ("Checkbox", v) => v.is_boolean(),
                    ("Date", Value::String(s)) => normalise_date(s).is_some(),
                    (_, v) => v.is_string(),
                };
                if !fits {
                    return Err(format!(
                        "custom field {} ({}) got a value of the wrong type",
                        def.caption, def.field_type
                    ));
                }
                values.insert(id, value);
            }
        }
        Ok(self
            .custom_fields
            .iter()
            .map(|def| custom_field_entry(def, values.remove(&def.id)))
            .collect())
    }

    /// Configurations keep `customFields` complete even when written from raw data.
    pub fn complete_custom_fields(&mut self) {
        let defs = self.custom_fields.clone();
        if let Some(collection) = self.collections.get_mut(CONFIGURATIONS.collection) {
            for record in collection.records.values_mut() {
                let existing: Vec<Value> = record
                    .get("customFields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let fields: Vec<Value> = defs
                    .iter()
                    .map(|def| {
                        let value = existing
                            .iter()
                            .find(|e| e.get("id").and_then(Value::as_i64) == Some(def.id))
                            .and_then(|e| e.get("value"))
                            .cloned();
                        custom_field_entry(def, value)
                    })
                    .collect();
                record["customFields"] = Value::Array(fields);
            }
        }
    }
}

/// A configuration's custom field as ConnectWise shows it; no `value` when it has none.
fn custom_field_entry(def: &CustomFieldDef, value: Option<Value>) -> Value {
    let mut entry = json!({
        "id": def.id,
        "caption": def.caption,
        "type": def.field_type,
        "entryMethod": def.entry_method,
        "numberOfDecimals": def.number_of_decimals,
    });
    if let Some(value) = value.filter(|v| !v.is_null()) {
        entry["value"] = value;
    }
    entry
}

pub fn not_found(resource: &Resource, id: i64) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{} with id {id} was not found.", resource.name),
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or a bare date) → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn normalise_date(text: &str) -> Option<String> {
    let text = text.trim();
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, time.strip_suffix('Z')?),
        None => (text, "00:00:00"),
    };
    let date_parts: Vec<&str> = date.split('-').collect();
    let time = time.split('.').next()?;
    let time_parts: Vec<&str> = time.split(':').collect();
    let numeric = |s: &&str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_digit());
    if date_parts.len() != 3
        || !numeric(&date_parts[0], 4)
        || !numeric(&date_parts[1], 2)
        || !numeric(&date_parts[2], 2)
        || time_parts.len() != 3
        || !time_parts.iter().all(|p| numeric(p, 2))
    {
        return None;
    }
    let month: u32 = date_parts[1].parse().ok()?;
    let day: u32 = date_parts[2].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{date}T{time}Z"))
}

pub fn now_iso() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    iso_from_unix(seconds as i64)
}

/// Civil date from days since the epoch (Howard Hinnant's algorithm).
pub fn iso_from_unix(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A contact's name as ConnectWise shows it on what names the contact: first and last.
fn contact_name(contact: &Value) -> String {
    ["firstName", "lastName"]
        .iter()
        .filter_map(|f| contact.get(*f).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_from_unix(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            normalise_date("2025-10-09T07:34:42.123Z").as_deref(),
            Some("2025-10-09T07:34:42Z")
        );
        assert_eq!(
            normalise_date("2025-10-09").as_deref(),
            Some("2025-10-09T00:00:00Z")
        );
        assert_eq!(normalise_date("09/10/2025"), None);
        assert_eq!(normalise_date("2025-13-09T00:00:00Z"), None);
    }
}
