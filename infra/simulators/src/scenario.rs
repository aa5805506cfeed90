//! A ConnectWise tenant and a Lansweeper site that know each other, as an MSP's are a
//! while into using the integration: about half the assets already have a
//! configuration (some linked by `ls_asset_id`, some only sharing a serial, MAC or name,
//! some with fields that changed since), some match two configurations, and some of the
//! references the assets need do not exist yet.

use serde_json::{Value, json};

use crate::connectwise::{self, CONFIGURATIONS, CONTACTS, Tenant, TenantSpec};
use crate::lansweeper::{self, Site, SiteSpec};

/// Whether [`linked`] gives the asset at `index` a configuration entered by hand before
/// the integration: every other asset, when it has a name.
pub fn has_configuration(index: usize, asset: &Value) -> bool {
    index.is_multiple_of(2) && asset["assetBasicInfo"]["name"].is_string()
}

/// Whether that configuration carries the asset's `ls_asset_id`: every fourth asset's.
pub const fn is_linked(index: usize) -> bool {
    index.is_multiple_of(4)
}

/// Whether that configuration's address changed since: every eighth from the third.
pub const fn is_stale(index: usize) -> bool {
    index % 8 == 2
}

/// Whether that configuration has a twin (the same serial, MAC, address and model, named
/// `… (old)`): every fiftieth from the seventh. Unless the asset is linked, it matches
/// both: a conflict to resolve by hand.
pub const fn has_twin(index: usize) -> bool {
    index % 50 == 6
}

pub fn linked(spec: &SiteSpec) -> Result<(Tenant, Site), String> {
    let site = lansweeper::generate(spec)?;
    let mut tenant = connectwise::generate(&TenantSpec {
        seed: spec.seed,
        configurations: 0,
        ..TenantSpec::default()
    })?;
    let text = |asset: &Value, path: &str| -> Option<String> {
        path.split('.')
            .try_fold(asset, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for (index, asset) in site.data.assets.iter().enumerate() {
        if !has_configuration(index, asset) {
            continue;
        }
        let Some(name) = text(asset, "assetBasicInfo.name") else {
            continue;
        };
        let mut body = json!({
            "name": name.chars().take(100).collect::<String>(),
            "type": {"id": 1 + (index % 10) as i64},
            "company": {"id": 1},
            "notes": "Entered by hand before the integration",
        });
        for (path, field, max) in [
            ("assetCustom.serialNumber", "serialNumber", 250),
            ("assetBasicInfo.mac", "macAddress", 25),
            ("assetBasicInfo.ipAddress", "ipAddress", 50),
            ("assetCustom.model", "modelNumber", 50),
        ] {
            if let Some(value) = text(asset, path) {
                body[field] = json!(value.chars().take(max).collect::<String>());
            }
        }
        if is_linked(index) {
            let key = text(asset, "key").unwrap_or_default();
            body["customFields"] = json!([{"id": 5, "value": key}]);
        }
        if is_stale(index) {
            // Changed since: a stale address.
            body["ipAddress"] = json!("192.168.254.254");
        }
        tenant
            .create(&CONFIGURATIONS, &body)
            .map_err(|e| format!("scenario configuration: {}", e.body))?;
        if has_twin(index) {
            // A second configuration with the same serial: a conflict to resolve by hand.
            body["name"] = json!(format!("{name} (old)"));
            body.as_object_mut().map(|b| b.remove("customFields"));
            tenant
                .create(&CONFIGURATIONS, &body)
                .map_err(|e| format!("scenario configuration: {}", e.body))?;
        }
    }
    connectwise::generate::add_service_history(&mut tenant, spec.seed)?;
    Ok((tenant, site))
}

/// The mail domain of [`TARGET_COMPANY`]'s users.
pub const MAIL_DOMAIN: &str = "bluelight.example";

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kofi",
    "Lena", "Marta", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "García", "Müller", "Nguyen", "Kowalski", "Rossi", "Dubois", "Svensson", "Tanaka",
    "Okafor", "Novak",
];

/// How the users [`give_users`] made are found among the contacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Users {
    /// A contact with the user's e-mail.
    pub by_email: usize,
    /// A contact with the user's names and no e-mail.
    pub by_name: usize,
    /// Two contacts with the user's names and no e-mail: reported, none written.
    pub ambiguous: usize,
    /// No contact at all: reported, none written.
    pub unknown: usize,
}

/// Gives every `every`th asset of `site` a last logged-on user of [`TARGET_COMPANY`]
/// (`first.last` of [`MAIL_DOMAIN`]), and the company the contacts they are: mostly by
/// e-mail, some by name alone, a few twice by name, a few not at all.
///
/// # Errors
/// The tenant has no [`TARGET_COMPANY`] or refuses a contact.
pub fn give_users(tenant: &mut Tenant, site: &mut Site, every: usize) -> Result<Users, String> {
    let company = tenant
        .records("companies")
        .find(|c| c["identifier"] == TARGET_COMPANY)
        .and_then(|c| c["id"].as_i64())
        .ok_or_else(|| format!("the tenant has no company {TARGET_COMPANY}"))?;
    let mut users = Users::default();
    let mut contact = |first: &str, last: &str, email: Option<&str>| {
        let items: Vec<Value> = email
            .map(|e| json!({"type": {"id": 1, "name": "Email"}, "value": e, "communicationType": "Email", "defaultFlag": true}))
            .into_iter()
            .collect();
        tenant
            .create(
                &CONTACTS,
                &json!({"firstName": first, "lastName": last, "company": {"id": company},
                    "communicationItems": items, "inactiveFlag": false}),
            )
            .map(|_| ())
            .map_err(|e| format!("scenario contact: {}", e.body))
    };
    for (n, asset) in site
        .data
        .assets
        .iter_mut()
        .step_by(every.max(1))
        .enumerate()
    {
        let first = FIRST_NAMES[n % FIRST_NAMES.len()];
        let last = LAST_NAMES[(n / FIRST_NAMES.len()) % LAST_NAMES.len()];
        let generation = n / (FIRST_NAMES.len() * LAST_NAMES.len());
        let last = if generation == 0 {
            last.to_string()
        } else {
            format!("{last}{generation}")
        };
        let user = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        asset["assetBasicInfo"]["userName"] = json!(user);
        asset["assetBasicInfo"]["userDomain"] = json!(MAIL_DOMAIN);
        match n % 20 {
            0..=14 => {
                contact(first, &last, Some(&format!("{user}@{MAIL_DOMAIN}")))?;
                users.by_email += 1;
            }
            15 | 16 => {
                contact(first, &last, None)?;
                users.by_name += 1;
            }
            17 => {
                contact(first, &last, None)?;
                contact(first, &last, None)?;
                users.ambiguous += 1;
            }
            _ => users.unknown += 1,
        }
    }
    Ok(users)
}

/// The company the scenario's assets belong to (`CW_TARGET_COMPANY`).
pub const TARGET_COMPANY: &str = "BlueLightCo";

/// The estate's second client: a site of its own.
pub const CONTOSO_SITE: &str = "contoso-site";
/// The estate's site shared by two customers, told apart by the `Customer` field.
pub const SHARED_SITE: &str = "shared-site";
/// The custom field that tells the shared site's customers apart.
pub const CUSTOMER_FIELD: &str = "Customer";

/// An MSP's estate: [`linked`]'s site (its first client, `BlueLightCo`, 2,000 assets by
/// default) and two more sites served to the same token — Contoso's own, and one whose
/// assets belong to Northwind or Fabrikam by their `Customer` custom field (a few have
/// none, so no rule maps them). ConnectWise has those companies, none of the new
/// clients' configurations yet, and a company whose name is a near miss.
///
/// # Errors
/// A site cannot be generated.
pub fn estate(spec: &SiteSpec) -> Result<(Tenant, Vec<Site>), String> {
    let (tenant, mut first) = linked(spec)?;
    first.data.name = "Blue Light Co".into();
    let client_assets = (spec.assets / 8).max(20);
    let mut contoso = lansweeper::generate(&SiteSpec {
        seed: spec.seed.wrapping_add(101),
        assets: client_assets,
    })?;
    contoso.data.id = CONTOSO_SITE.into();
    contoso.data.name = "Contoso Ltd.".into();
    let mut shared = lansweeper::generate(&SiteSpec {
        seed: spec.seed.wrapping_add(202),
        assets: client_assets,
    })?;
    shared.data.id = SHARED_SITE.into();
    shared.data.name = "Northwind & Fabrikam".into();
    let field = lansweeper::CustomFieldDef {
        key: "cf-0001".into(),
        name: CUSTOMER_FIELD.into(),
        field_type: "INPUT".into(),
    };
    for (index, asset) in shared.data.assets.iter_mut().enumerate() {
        let customer = match index % 10 {
            0..=5 => "Northwind",
            6..=8 => "Fabrikam",
            _ => continue,
        };
        if let Some(custom) = asset.get_mut("assetCustom").and_then(Value::as_object_mut) {
            custom.insert(
                "fields".into(),
                json!([{"fieldKey": field.key, "name": field.name, "value": customer}]),
            );
        }
    }
    shared.data.custom_fields.push(field);
    let sites = [first, contoso, shared]
        .into_iter()
        .map(|site| Site::new(site.data))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((tenant, sites))
}

/// A linked tenant and site, each served by its simulator.
pub struct LinkedPair {
    pub connectwise: crate::connectwise::ConnectWiseSimulator,
    pub lansweeper: crate::lansweeper::LansweeperSimulator,
}

impl LinkedPair {
    /// Serves [`estate`]'s tenant and sites (what `make demo` and `lscw simulate` serve).
    ///
    /// # Errors
    /// As [`LinkedPair::start`].
    pub async fn start_estate(
        spec: &SiteSpec,
        options: lansweeper::LansweeperOptions,
        connectwise_listen: &str,
        lansweeper_listen: &str,
    ) -> Result<Self, String> {
        let (tenant, sites) = estate(spec)?;
        let connectwise =
            crate::connectwise::ConnectWiseSimulator::start(tenant, connectwise_listen)
                .await
                .map_err(|e| format!("ConnectWise simulator on {connectwise_listen}: {e}"))?;
        let lansweeper =
            crate::lansweeper::LansweeperSimulator::start_sites(sites, options, lansweeper_listen)
                .await
                .map_err(|e| format!("Lansweeper simulator on {lansweeper_listen}: {e}"))?;
        Ok(Self {
            connectwise,
            lansweeper,
        })
    }

    /// Serves [`linked`]'s tenant and site on the given addresses (`127.0.0.1:0`: any port).
    ///
    /// # Errors
    /// The scenario cannot be generated or an address cannot be listened on.
    pub async fn start(
        spec: &SiteSpec,
        options: lansweeper::LansweeperOptions,
        connectwise_listen: &str,
        lansweeper_listen: &str,
    ) -> Result<Self, String> {
        let (tenant, site) = linked(spec)?;
        let connectwise =
            crate::connectwise::ConnectWiseSimulator::start(tenant, connectwise_listen)
                .await
                .map_err(|e| format!("ConnectWise simulator on {connectwise_listen}: {e}"))?;
        let lansweeper =
            crate::lansweeper::LansweeperSimulator::start(site, options, lansweeper_listen)
                .await
                .map_err(|e| format!("Lansweeper simulator on {lansweeper_listen}: {e}"))?;
        Ok(Self {
            connectwise,
            lansweeper,
        })
    }

    /// What a user would configure to sync this pair: both connections and the target
    /// company, by the keys the functions and `lscw` read.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CW_BASE_URL", self.connectwise.base_url()),
            ("CW_COMPANY_ID", connectwise::COMPANY_ID.into()),
            ("CW_PUBLIC_KEY", connectwise::PUBLIC_KEY.into()),
            ("CW_PRIVATE_KEY", connectwise::PRIVATE_KEY.into()),
            ("CW_CLIENT_ID", connectwise::CLIENT_ID.into()),
            ("CW_TARGET_COMPANY", TARGET_COMPANY.into()),
            ("LS_TOKEN", lansweeper::TOKEN.into()),
            ("LS_SITE_ID", self.lansweeper.site_id()),
            ("LS_API_URL", self.lansweeper.api_url()),
        ]
    }
}
