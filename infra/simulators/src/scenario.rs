//! A ConnectWise tenant and a Lansweeper site that know each other, as an MSP's are a
//! while into using the integration: about half the assets already have a
//! configuration (some linked by `ls_asset_id`, some only sharing a serial, MAC or name,
//! some with fields that changed since), some match two configurations, and some of the
//! references the assets need do not exist yet.

use serde_json::{Value, json};

use crate::connectwise::{self, CONFIGURATIONS, Tenant, TenantSpec};
use crate::lansweeper::{self, Site, SiteSpec};

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
        if index % 2 == 1 {
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
        if index % 4 == 0 {
            let key = text(asset, "key").unwrap_or_default();
            body["customFields"] = json!([{"id": 5, "value": key}]);
        }
        if index % 8 == 2 {
            // Changed since: a stale address.
            body["ipAddress"] = json!("192.168.254.254");
        }
        tenant
            .create(&CONFIGURATIONS, &body)
            .map_err(|e| format!("scenario configuration: {}", e.body))?;
        if index % 50 == 6 {
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
