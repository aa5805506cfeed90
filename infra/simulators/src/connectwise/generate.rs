//! The generated tenant: realistic reference data and configurations, deterministic from
//! a seed.

use serde_json::{Value, json};

use super::schema::{
    COMPANIES, CONFIGURATION_STATUSES, CONFIGURATION_TYPES, CONFIGURATIONS,
    CORPORATE_STRUCTURE_LEVELS, LOCATIONS, MANUFACTURERS, Resource,
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

/// A tenant with reference data and no configurations, ready for callers that add their own.
pub fn empty_tenant() -> Result<Tenant, String> {
    let mut tenant = Tenant::from_data(TenantData {
        company_id: COMPANY_ID.into(),
        public_key: PUBLIC_KEY.into(),
        private_key: PRIVATE_KEY.into(),
        codebase: "v4_6_release/".into(),
        company_name: "Simulated MSP".into(),
        configuration_custom_fields: integration_custom_fields(),
        collections: Default::default(),
    })?;
    for name in LEVEL_NAMES {
        create(
            &mut tenant,
            &CORPORATE_STRUCTURE_LEVELS,
            json!({"name": name}),
        )?;
    }
    for (identifier, name) in COMPANY_NAMES {
        create(
            &mut tenant,
            &COMPANIES,
            json!({"identifier": identifier, "name": name}),
        )?;
    }
    Ok(tenant)
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
            json!({"name": name, "structureLevel": {"id": lowest_level}}),
        )?;
    }
    for i in 0..spec.manufacturers {
        let name = numbered(
            MANUFACTURER_NAMES[i % MANUFACTURER_NAMES.len()],
            i / MANUFACTURER_NAMES.len(),
        );
        create(&mut tenant, &MANUFACTURERS, json!({"name": name}))?;
    }
    for i in 0..spec.configuration_types {
        let name = numbered(TYPE_NAMES[i % TYPE_NAMES.len()], i / TYPE_NAMES.len());
        create(&mut tenant, &CONFIGURATION_TYPES, json!({"name": name}))?;
    }
    for i in 0..spec.configuration_statuses {
        let (description, closed, default) = STATUSES[i % STATUSES.len()];
        let description = numbered(description, i / STATUSES.len());
        create(
            &mut tenant,
            &CONFIGURATION_STATUSES,
            json!({"description": description, "closedFlag": closed, "defaultFlag": default && i < STATUSES.len()}),
        )?;
    }
    for i in 0..spec.configurations {
        let body = configuration(&mut rng, i, spec);
        create(&mut tenant, &CONFIGURATIONS, body)?;
    }
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
        body["location"] = json!({"id": 1 + rng.below(spec.locations) as i64});
    }
    if spec.manufacturers > 0 {
        body["manufacturer"] = json!({"id": 1 + rng.below(spec.manufacturers) as i64});
    }
    body
}

fn create(tenant: &mut Tenant, resource: &Resource, body: Value) -> Result<(), String> {
    tenant
        .create(resource, &body)
        .map(|_| ())
        .map_err(|error| format!("generated {} is invalid: {}", resource.name, error.body))
}
