//! The generated tenant: realistic reference data and configurations, deterministic from
//! a seed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::schema::{
    AGREEMENT_TYPES, AGREEMENTS, COMPANIES, CONFIGURATION_STATUSES, CONFIGURATION_TYPES,
    CONFIGURATIONS, CORPORATE_STRUCTURE_LEVELS, LOCATIONS, MANUFACTURERS, Resource, SLAS, TICKETS,
};
use super::tenant::{CustomFieldDef, Tenant, TenantData};
use crate::rng::Rng;

/// Credentials of the generated tenant.
pub const COMPANY_ID: &str = "sim";
pub const PUBLIC_KEY: &str = "simpub";
pub const PRIVATE_KEY: &str = "simpriv";

/// How big a generated tenant is.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub seed: u64,
    pub locations: usize,
    pub manufacturers: usize,
    pub configuration_types: usize,
    pub configuration_statuses: usize,
    pub configurations: usize,
}

impl Default for TenantSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            locations: 60,
            manufacturers: 40,
            configuration_types: 10,
            configuration_statuses: 6,
            configurations: 500,
        }
    }
}

pub const CITIES: &[&str] = &[
    "Amsterdam",
    "Atlanta",
    "Austin",
    "Berlin",
    "Boston",
    "Brussels",
    "Chicago",
    "Dallas",
    "Denver",
    "Dublin",
    "Gent",
    "Houston",
    "Lisbon",
    "London",
    "Lyon",
    "Madrid",
    "Miami",
    "Milan",
    "Munich",
    "Oslo",
    "Paris",
    "Phoenix",
    "Portland",
    "Prague",
    "Seattle",
    "Sydney",
    "Toronto",
    "Vienna",
    "Warsaw",
    "Zürich",
];
pub const SITE_KINDS: &[&str] = &["HQ", "Branch", "Warehouse", "Plant", "Datacenter", "Store"];

pub const MANUFACTURER_NAMES: &[&str] = &[
    "Dell Inc.",
    "HP",
    "Lenovo",
    "Apple Inc.",
    "Microsoft Corporation",
    "Cisco Systems",
    "Juniper Networks",
    "Aruba Networks",
    "Ubiquiti",
    "Fortinet",
    "Palo Alto Networks",
    "Netgear",
    "TP-Link",
    "Synology",
    "QNAP",
    "Brother",
    "Canon",
    "Epson",
    "Xerox",
    "Ricoh",
    "Kyocera",
    "Lexmark",
    "Samsung",
    "LG Electronics",
    "ASUS",
    "Acer",
    "Supermicro",
    "Fujitsu",
    "Toshiba",
    "Panasonic",
    "Siemens",
    "Rockwell Automation",
    "Schneider Electric",
    "ABB",
    "Honeywell",
    "VMware, Inc.",
    "Zebra Technologies",
    "Axis Communications",
    "APC",
    "Intel Corporation",
];

pub const TYPE_NAMES: &[&str] = &[
    "Workstation",
    "Laptop",
    "Server",
    "Virtual Machine",
    "Network Switch",
    "Router",
    "Firewall",
    "Printer",
    "Mobile Device",
    "OT Controller",
];

/// (description, closedFlag, defaultFlag)
pub const STATUSES: &[(&str, bool, bool)] = &[
    ("Active", false, true),
    ("Inactive", true, false),
    ("In Repair", false, false),
    ("On Order", false, false),
    ("Spare", false, false),
    ("Retired", true, false),
];

pub const LEVEL_NAMES: &[&str] = &["Company", "Region", "Territory", "Market", "Location"];

/// (identifier, name)
pub const COMPANY_NAMES: &[(&str, &str)] = &[
    ("BlueLightCo", "Blue Light, Co."),
    ("Contoso", "Contoso Ltd."),
    ("Northwind", "Northwind Traders"),
    ("Fabrikam", "Fabrikam, Inc."),
    // A near miss: alike in name to a client, and not that client.
    ("ContosoPharma", "Contoso Pharmaceuticals"),
];

/// The custom fields a tenant set up for this integration has on configurations.
pub fn integration_custom_fields() -> Vec<CustomFieldDef> {
    [
        ("ls_asset_id", "Text"),
        ("ls_asset_url", "Text"),
        ("ls_software", "TextArea"),
        ("ls_asset_location", "Text"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (caption, field_type))| CustomFieldDef {
        id: 5 + i as i64,
        caption: (*caption).into(),
        field_type: (*field_type).into(),
        entry_method: "EntryField".into(),
        number_of_decimals: 0,
    })
    .collect()
}

/// The configurations screen's `podId` in generated tenants.
pub const CONFIGURATION_POD: i64 = 17;

/// Custom fields of other screens, as a tenant in use has them: one captioned as the
/// sync's link, on tickets, which a look by caption alone would take for the sync's.
fn other_screens_fields() -> BTreeMap<String, Vec<Value>> {
    let definition = |id: i64, pod: i64, caption: &str, field_type: &str| {
        json!({"id": id, "podId": pod, "caption": caption, "sequenceNumber": 1,
               "fieldTypeIdentifier": field_type, "entryTypeIdentifier": "EntryField",
               "numberDecimals": 0, "requiredFlag": false, "displayOnScreenFlag": true,
               "readOnlyFlag": false, "listViewFlag": false})
    };
    BTreeMap::from([(
        "userDefinedFields".to_string(),
        vec![
            definition(101, 3, "Customer Tier", "Text"),
            definition(102, 12, "ls_asset_id", "Text"),
        ],
    )])
}

/// A tenant with reference data and no configurations, ready for callers that add their own.
pub fn empty_tenant() -> Result<Tenant, String> {
    let mut tenant = Tenant::from_data(TenantData {
        company_id: COMPANY_ID.into(),
        public_key: PUBLIC_KEY.into(),
        private_key: PRIVATE_KEY.into(),
        codebase: "v4_6_release/".into(),
        company_name: "Simulated MSP".into(),
        configuration_custom_fields: integration_custom_fields(),
        configuration_pod_id: CONFIGURATION_POD,
        collections: other_screens_fields(),
        attachments: BTreeMap::default(),
    })?;
    for name in LEVEL_NAMES {
        create(
            &mut tenant,
            &CORPORATE_STRUCTURE_LEVELS,
            &json!({"name": name}),
        )?;
    }
    for (identifier, name) in COMPANY_NAMES {
        create(
            &mut tenant,
            &COMPANIES,
            &json!({"identifier": identifier, "name": name}),
        )?;
    }
    for name in SLA_NAMES {
        create(&mut tenant, &SLAS, &json!({"name": name}))?;
    }
    for name in AGREEMENT_TYPE_NAMES {
        create(&mut tenant, &AGREEMENT_TYPES, &json!({"name": name}))?;
    }
    Ok(tenant)
}

pub const SLA_NAMES: &[&str] = &["Standard", "Premium", "24x7 Critical"];
pub const AGREEMENT_TYPE_NAMES: &[&str] = &[
    "Managed Services",
    "Block Time - One time",
    "Hardware Warranty",
];
const AGREEMENT_STATUSES: &[&str] = &[
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Expired",
    "Expired",
    "Cancelled",
    "Inactive",
];
/// (id, name, closed)
const TICKET_STATUSES: &[(i64, &str, bool)] = &[
    (16, "New (not responded)", false),
    (17, "In Progress", false),
    (18, "Waiting Customer", false),
    (19, "Completed", true),
    (20, "Closed", true),
];

/// Agreements, tickets and SLAs over the tenant's configurations, as years of service
/// leave them: about one agreement per 15 configurations covering 1–20 of them, about
/// 1.2 tickets per configuration (some on two), SLAs on some configurations.
pub fn add_service_history(tenant: &mut Tenant, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ 0xA6EE);
    let configurations: Vec<(i64, i64)> = tenant
        .records("configurations")
        .filter_map(|c| {
            Some((
                c.get("id")?.as_i64()?,
                c.get("company")?.get("id")?.as_i64()?,
            ))
        })
        .collect();
    if configurations.is_empty() {
        return Ok(());
    }
    for &(id, _) in &configurations {
        if rng.chance(30) {
            let mut record = tenant
                .get("configurations", id)
                .cloned()
                .unwrap_or_default();
            record["sla"] = json!({"id": 1 + rng.below(SLA_NAMES.len()) as i64});
            tenant
                .replace(&CONFIGURATIONS, id, &record)
                .map_err(|e| format!("sla on configuration {id}: {}", e.body))?;
        }
    }
    let agreements = configurations.len().div_ceil(15);
    for n in 0..agreements {
        let status = *rng.pick(AGREEMENT_STATUSES);
        let start_year = 2018 + rng.below(7);
        let open_ended = rng.chance(15);
        let mut body = json!({
            "name": format!("{} {}", rng.pick(AGREEMENT_TYPE_NAMES), n + 1),
            "type": {"id": 1 + rng.below(AGREEMENT_TYPE_NAMES.len()) as i64},
            "company": {"id": 1},
            "startDate": format!("{start_year}-{:02}-01T00:00:00Z", 1 + rng.below(12)),
            "agreementStatus": status,
            "cancelledFlag": status == "Cancelled",
            "noEndingDateFlag": open_ended,
        });
        if !open_ended {
            body["endDate"] = json!(format!(
                "{}-{:02}-28T00:00:00Z",
                start_year + 1 + rng.below(8),
                1 + rng.below(12)
            ));
        }
        let agreement = tenant
            .create(&AGREEMENTS, &body)
            .map_err(|e| format!("agreement: {}", e.body))?;
        let agreement_id = agreement["id"].as_i64().unwrap_or(0);
        for _ in 0..=rng.below(20) {
            let (configuration, _) = *rng.pick(&configurations);
            tenant
                .attach(&AGREEMENTS, agreement_id, configuration)
                .map_err(|e| e.body.to_string())?;
        }
    }
    let tickets = configurations.len() * 6 / 5;
    for n in 0..tickets {
        let (configuration, company) = *rng.pick(&configurations);
        let (status_id, status_name, closed) = *rng.pick(TICKET_STATUSES);
        let summary = *rng.pick(&[
            "Printer offline",
            "Slow login",
            "Disk almost full",
            "Replace battery",
            "VPN drops",
            "Firmware update",
        ]);
        let ticket = tenant
            .create(
                &TICKETS,
                &json!({
                    "summary": format!("{summary} #{}", n + 1),
                    "recordType": "ServiceTicket",
                    "status": {"id": status_id, "name": status_name},
                    "company": {"id": company},
                    "closedFlag": closed,
                }),
            )
            .map_err(|e| format!("ticket: {}", e.body))?;
        let ticket_id = ticket["id"].as_i64().unwrap_or(0);
        tenant
            .attach(&TICKETS, ticket_id, configuration)
            .map_err(|e| e.body.to_string())?;
        if rng.chance(10) {
            let (other, _) = *rng.pick(&configurations);
            tenant
                .attach(&TICKETS, ticket_id, other)
                .map_err(|e| e.body.to_string())?;
        }
    }
    Ok(())
}

/// The default tenant: `TenantSpec::default()` reference data and configurations.
pub fn generate(spec: &TenantSpec) -> Result<Tenant, String> {
    let mut rng = Rng::new(spec.seed);
    let mut tenant = empty_tenant()?;
    let lowest_level = LEVEL_NAMES.len() as i64;
    for i in 0..spec.locations {
        let name = numbered(
            &format!(
                "{} {}",
                CITIES[i % CITIES.len()],
                SITE_KINDS[(i / CITIES.len()) % SITE_KINDS.len()]
            ),
            i / (CITIES.len() * SITE_KINDS.len()),
        );
        create(
            &mut tenant,
            &LOCATIONS,
            &json!({"name": name, "structureLevel": {"id": lowest_level}}),
        )?;
    }
    for i in 0..spec.manufacturers {
        let name = numbered(
            MANUFACTURER_NAMES[i % MANUFACTURER_NAMES.len()],
            i / MANUFACTURER_NAMES.len(),
        );
        create(&mut tenant, &MANUFACTURERS, &json!({"name": name}))?;
    }
    for i in 0..spec.configuration_types {
        let name = numbered(TYPE_NAMES[i % TYPE_NAMES.len()], i / TYPE_NAMES.len());
        create(&mut tenant, &CONFIGURATION_TYPES, &json!({"name": name}))?;
    }
    for i in 0..spec.configuration_statuses {
        let (description, closed, default) = STATUSES[i % STATUSES.len()];
        let description = numbered(description, i / STATUSES.len());
        create(
            &mut tenant,
            &CONFIGURATION_STATUSES,
            &json!({"description": description, "closedFlag": closed, "defaultFlag": default && i < STATUSES.len()}),
        )?;
    }
    for i in 0..spec.configurations {
        let body = configuration(&mut rng, i, spec);
        create(&mut tenant, &CONFIGURATIONS, &body)?;
    }
    add_service_history(&mut tenant, spec.seed)?;
    Ok(tenant)
}

fn numbered(base: &str, round: usize) -> String {
    if round == 0 {
        base.to_string()
    } else {
        format!("{base} {}", round + 1)
    }
}

fn configuration(rng: &mut Rng, index: usize, spec: &TenantSpec) -> Value {
    let type_index = rng.below(spec.configuration_types.max(1));
    let type_name = TYPE_NAMES[type_index % TYPE_NAMES.len()];
    let prefix = match type_name {
        "Workstation" => "DESKTOP",
        "Laptop" => "LT",
        "Server" => "SRV",
        "Virtual Machine" => "VM",
        "Network Switch" => "SW",
        "Router" => "RTR",
        "Firewall" => "FW",
        "Printer" => "PRN",
        "Mobile Device" => "MOB",
        _ => "PLC",
    };
    let name = format!("{prefix}-{}-{index:04}", rng.alnum_upper(5));
    let mac: Vec<String> = (0..6).map(|_| rng.hex(2).to_uppercase()).collect();
    // Most devices belong to the MSP's main client.
    let company = if rng.chance(80) {
        1
    } else {
        1 + rng.below(COMPANY_NAMES.len()) as i64
    };
    let mut body = json!({
        "name": name,
        "type": {"id": type_index as i64 + 1},
        "company": {"id": company},
        "status": {"id": 1 + rng.below(spec.configuration_statuses.max(1)) as i64},
        "serialNumber": rng.alnum_upper(10),
        "modelNumber": format!("{}-{}", rng.alnum_upper(3), rng.below(9000) + 1000),
        "macAddress": mac.join(":"),
        "ipAddress": format!("10.{}.{}.{}", rng.below(255), rng.below(255), 1 + rng.below(253)),
        "warrantyExpirationDate": format!("20{:02}-{:02}-{:02}T00:00:00Z", 24 + rng.below(6), 1 + rng.below(12), 1 + rng.below(28)),
        "osInfo": *rng.pick(&["Windows 11 Pro", "Windows Server 2022 Standard", "Ubuntu 22.04.4 LTS", "macOS 14.5", "Cisco IOS 15.2", ""]),
        "billFlag": rng.chance(20),
    });
    if spec.locations > 0 {
        body["locationId"] = json!(1 + rng.below(spec.locations) as i64);
    }
    if spec.manufacturers > 0 {
        body["manufacturer"] = json!({"id": 1 + rng.below(spec.manufacturers) as i64});
    }
    body
}

fn create(tenant: &mut Tenant, resource: &Resource, body: &Value) -> Result<(), String> {
    tenant
        .create(resource, body)
        .map(|_| ())
        .map_err(|error| format!("generated {} is invalid: {}", resource.name, error.body))
}
