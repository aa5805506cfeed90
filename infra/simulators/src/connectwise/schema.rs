//! The resources the simulator serves, with the fields, limits and references ConnectWise
//! documents for them. Fields not listed here are dropped on write, as ConnectWise's
//! deserializer ignores members it does not know.

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Text with a maximum length (characters); `usize::MAX` for unbounded text.
    Text(usize),
    Int,
    Bool {
        default: bool,
    },
    /// ISO-8601 UTC, `2025-10-09T07:34:42Z`.
    Date,
    Reference(&'static Reference),
    /// An object stored as given (a ticket's board status `{id, name}`).
    Inline,
    CustomFields,
    /// An array of objects stored as given (a contact's communication items): reached
    /// only by `childConditions`, as ConnectWise searches arrays.
    Items,
}

#[derive(Debug, PartialEq)]
pub struct Reference {
    pub collection: &'static str,
    /// The target's path, for `_info` links.
    pub path: &'static str,
    /// Members copied from the target: (name on the reference, name on the target).
    pub labels: &'static [(&'static str, &'static str)],
}

#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

#[derive(Debug)]
pub struct Resource {
    /// Singular name used in error bodies (`"resource": "configuration"`).
    pub name: &'static str,
    pub collection: &'static str,
    /// Path under `/apis/3.0/`.
    pub path: &'static str,
    pub writable: bool,
    pub bulk: bool,
    /// Field that must be unique (compared case-insensitively).
    pub unique: Option<&'static str>,
    pub fields: &'static [FieldSpec],
}

impl Resource {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const fn field(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
    }
}

const fn required(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
    }
}

const UNBOUNDED: usize = usize::MAX;

pub static TYPE_REF: Reference = Reference {
    collection: "configurationTypes",
    path: "company/configurations/types",
    labels: &[("name", "name")],
};
pub static STATUS_REF: Reference = Reference {
    collection: "configurationStatuses",
    path: "company/configurations/statuses",
    labels: &[("name", "description")],
};
pub static COMPANY_REF: Reference = Reference {
    collection: "companies",
    path: "company/companies",
    labels: &[("identifier", "identifier"), ("name", "name")],
};
pub static LOCATION_REF: Reference = Reference {
    collection: "locations",
    path: "system/locations",
    labels: &[("name", "name")],
};
pub static MANUFACTURER_REF: Reference = Reference {
    collection: "manufacturers",
    path: "procurement/manufacturers",
    labels: &[("name", "name")],
};
pub static STRUCTURE_LEVEL_REF: Reference = Reference {
    collection: "corporateStructureLevels",
    path: "system/myCompany/corporateStructureLevels",
    labels: &[("name", "name")],
};

/// A contact as a configuration names it: ConnectWise shows `{id, name}`, the name
/// being the contact's first and last names (see `Tenant::render`).
pub static CONTACT_REF: Reference = Reference {
    collection: "contacts",
    path: "company/contacts",
    labels: &[],
};

pub static SLA_REF: Reference = Reference {
    collection: "slas",
    path: "service/SLAs",
    labels: &[("name", "name")],
};
pub static AGREEMENT_TYPE_REF: Reference = Reference {
    collection: "agreementTypes",
    path: "finance/agreements/types",
    labels: &[("name", "name")],
};
pub static AGREEMENT_REF: Reference = Reference {
    collection: "agreements",
    path: "finance/agreements",
    labels: &[("name", "name")],
};

pub static CONFIGURATIONS: Resource = Resource {
    name: "configuration",
    collection: "configurations",
    path: "company/configurations",
    writable: true,
    bulk: true,
    unique: None,
    fields: &[
        required("name", Kind::Text(100)),
        required("type", Kind::Reference(&TYPE_REF)),
        required("company", Kind::Reference(&COMPANY_REF)),
        field("status", Kind::Reference(&STATUS_REF)),
        // ConnectWise's model gives a configuration its location by id alone (no
        // `location` object): an id no location has is refused.
        field("locationId", Kind::Int),
        field("manufacturer", Kind::Reference(&MANUFACTURER_REF)),
        field("deviceIdentifier", Kind::Text(100)),
        field("serialNumber", Kind::Text(250)),
        field("modelNumber", Kind::Text(50)),
        field("tagNumber", Kind::Text(50)),
        field("purchaseDate", Kind::Date),
        field("installationDate", Kind::Date),
        field("warrantyExpirationDate", Kind::Date),
        field("vendorNotes", Kind::Text(UNBOUNDED)),
        field("notes", Kind::Text(UNBOUNDED)),
        field("macAddress", Kind::Text(25)),
        field("lastLoginName", Kind::Text(100)),
        field("contact", Kind::Reference(&CONTACT_REF)),
        field("billFlag", Kind::Bool { default: false }),
        field("ipAddress", Kind::Text(50)),
        field("defaultGateway", Kind::Text(50)),
        field("osType", Kind::Text(250)),
        field("osInfo", Kind::Text(250)),
        field("cpuSpeed", Kind::Text(100)),
        field("ram", Kind::Text(25)),
        field("localHardDrives", Kind::Text(UNBOUNDED)),
        field("activeFlag", Kind::Bool { default: true }),
        field("managementLink", Kind::Text(1000)),
        field("remoteLink", Kind::Text(1000)),
        field("mobileGuid", Kind::Text(UNBOUNDED)),
        field("companyLocationId", Kind::Int),
        field("showRemoteFlag", Kind::Bool { default: false }),
        field("showAutomateFlag", Kind::Bool { default: false }),
        field("needsRenewalFlag", Kind::Bool { default: false }),
        field("manufacturerPartNumber", Kind::Text(50)),
        field("sla", Kind::Reference(&SLA_REF)),
        field("customFields", Kind::CustomFields),
    ],
};

pub static LOCATIONS: Resource = Resource {
    name: "location",
    collection: "locations",
    path: "system/locations",
    writable: true,
    bulk: false,
    unique: Some("name"),
    fields: &[
        required("name", Kind::Text(50)),
        required("structureLevel", Kind::Reference(&STRUCTURE_LEVEL_REF)),
        field("ownerLevelId", Kind::Int),
        field("locationFlag", Kind::Bool { default: false }),
        field("clientFlag", Kind::Bool { default: false }),
    ],
};

pub static MANUFACTURERS: Resource = Resource {
    name: "manufacturer",
    collection: "manufacturers",
    path: "procurement/manufacturers",
    writable: true,
    bulk: false,
    unique: Some("name"),
    fields: &[
        required("name", Kind::Text(50)),
        field("inactiveFlag", Kind::Bool { default: false }),
    ],
};

pub static CONFIGURATION_TYPES: Resource = Resource {
    name: "configurationType",
    collection: "configurationTypes",
    path: "company/configurations/types",
    writable: true,
    bulk: false,
    unique: Some("name"),
    fields: &[
        required("name", Kind::Text(50)),
        field("inactiveFlag", Kind::Bool { default: false }),
        field("systemFlag", Kind::Bool { default: false }),
    ],
};

pub static CONFIGURATION_STATUSES: Resource = Resource {
    name: "configurationStatus",
    collection: "configurationStatuses",
    path: "company/configurations/statuses",
    writable: true,
    bulk: false,
    unique: Some("description"),
    fields: &[
        required("description", Kind::Text(50)),
        field("closedFlag", Kind::Bool { default: false }),
        field("defaultFlag", Kind::Bool { default: false }),
    ],
};

pub static COMPANIES: Resource = Resource {
    name: "company",
    collection: "companies",
    path: "company/companies",
    writable: false,
    bulk: false,
    unique: Some("identifier"),
    fields: &[
        required("identifier", Kind::Text(30)),
        required("name", Kind::Text(50)),
    ],
};

pub static CORPORATE_STRUCTURE_LEVELS: Resource = Resource {
    name: "corporateStructureLevel",
    collection: "corporateStructureLevels",
    path: "system/myCompany/corporateStructureLevels",
    writable: false,
    bulk: false,
    unique: None,
    fields: &[required("name", Kind::Text(50))],
};

/// Custom field definitions of every screen (`podId`): those of the configurations'
/// screen are the `customFields` every configuration shows.
pub static USER_DEFINED_FIELDS: Resource = Resource {
    name: "userDefinedField",
    collection: "userDefinedFields",
    path: "system/userDefinedFields",
    writable: true,
    bulk: false,
    // A caption is unique on its screen, not across screens: checked on creation.
    unique: None,
    fields: &[
        required("podId", Kind::Int),
        required("caption", Kind::Text(25)),
        required("sequenceNumber", Kind::Int),
        required("fieldTypeIdentifier", Kind::Text(50)),
        field("entryTypeIdentifier", Kind::Text(50)),
        field("numberDecimals", Kind::Int),
        field("helpText", Kind::Text(1000)),
        field("requiredFlag", Kind::Bool { default: false }),
        field("displayOnScreenFlag", Kind::Bool { default: true }),
        field("readOnlyFlag", Kind::Bool { default: false }),
        field("listViewFlag", Kind::Bool { default: false }),
    ],
};

pub static SLAS: Resource = Resource {
    name: "sla",
    collection: "slas",
    path: "service/SLAs",
    writable: false,
    bulk: false,
    unique: Some("name"),
    fields: &[required("name", Kind::Text(100))],
};

pub static AGREEMENT_TYPES: Resource = Resource {
    name: "agreementType",
    collection: "agreementTypes",
    path: "finance/agreements/types",
    writable: false,
    bulk: false,
    unique: Some("name"),
    fields: &[required("name", Kind::Text(50))],
};

pub static AGREEMENTS: Resource = Resource {
    name: "agreement",
    collection: "agreements",
    path: "finance/agreements",
    writable: true,
    bulk: false,
    unique: None,
    fields: &[
        required("name", Kind::Text(100)),
        required("type", Kind::Reference(&AGREEMENT_TYPE_REF)),
        required("company", Kind::Reference(&COMPANY_REF)),
        field("startDate", Kind::Date),
        field("endDate", Kind::Date),
        field("noEndingDateFlag", Kind::Bool { default: false }),
        field("cancelledFlag", Kind::Bool { default: false }),
        field("agreementStatus", Kind::Text(20)),
        field("sla", Kind::Reference(&SLA_REF)),
    ],
};

pub static TICKETS: Resource = Resource {
    name: "ticket",
    collection: "tickets",
    path: "service/tickets",
    writable: true,
    bulk: false,
    unique: None,
    fields: &[
        required("summary", Kind::Text(100)),
        field("recordType", Kind::Text(30)),
        field("status", Kind::Inline),
        required("company", Kind::Reference(&COMPANY_REF)),
        field("agreement", Kind::Reference(&AGREEMENT_REF)),
        field("closedFlag", Kind::Bool { default: false }),
        field("closedDate", Kind::Date),
        field("sla", Kind::Reference(&SLA_REF)),
    ],
};

/// A company's people. Read-only here: the sync only reads them; tests and scenarios put
/// them in the tenant directly.
pub static CONTACTS: Resource = Resource {
    name: "contact",
    collection: "contacts",
    path: "company/contacts",
    writable: false,
    bulk: false,
    unique: None,
    fields: &[
        required("firstName", Kind::Text(30)),
        field("lastName", Kind::Text(30)),
        required("company", Kind::Reference(&COMPANY_REF)),
        field("inactiveFlag", Kind::Bool { default: false }),
        field("defaultFlag", Kind::Bool { default: false }),
        // `{type{id,name}, value, communicationType (Email|Phone|Fax|Direct), defaultFlag}`.
        field("communicationItems", Kind::Items),
    ],
};

/// Resources whose records have configurations attached (`/{id}/configurations`).
pub static WITH_CONFIGURATIONS: &[&str] = &["agreements", "tickets"];

pub static RESOURCES: &[&Resource] = &[
    &SLAS,
    &AGREEMENT_TYPES,
    &AGREEMENTS,
    &TICKETS,
    &CONFIGURATIONS,
    &LOCATIONS,
    &MANUFACTURERS,
    &CONFIGURATION_TYPES,
    &CONFIGURATION_STATUSES,
    &COMPANIES,
    &CONTACTS,
    &CORPORATE_STRUCTURE_LEVELS,
    &USER_DEFINED_FIELDS,
];

/// The resource served at a path, with what follows it (`["17"]`, `["count"]`, `["bulk"]`).
/// The longest resource path wins (`company/configurations/types` before
/// `company/configurations`).
pub fn route(path: &str) -> Option<(&'static Resource, Vec<&str>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    RESOURCES
        .iter()
        .filter_map(|resource| {
            let own: Vec<&str> = resource.path.split('/').collect();
            let matches = segments.len() >= own.len()
                && own
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b));
            matches.then_some((*resource, own.len()))
        })
        .max_by_key(|(_, len)| *len)
        .map(|(resource, len)| (resource, segments[len..].to_vec()))
}
